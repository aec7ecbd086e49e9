//! A node's configuration file (`config.toml`): where it keeps its data, its keys, its
//! listen addresses, its peers, and the limits it enforces. Every field, default and limit is
//! documented in docs/configuration.md.

use serde::{Deserialize, Serialize};
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

/// Why a configuration is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("invalid configuration {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A value is out of its allowed range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The whole configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Identity and files.
    pub node: NodeSection,
    /// Validator-to-validator networking.
    pub p2p: P2pSection,
    /// The HTTP API.
    pub api: ApiSection,
    /// Consensus timing.
    #[serde(default)]
    pub consensus: ConsensusSection,
    /// Transaction pool limits.
    #[serde(default)]
    pub pool: PoolSection,
    /// The MQTT transport for device readings; absent means no MQTT.
    #[serde(default)]
    pub mqtt: Option<MqttSection>,
}

/// How the node speaks MQTT.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MqttMode {
    /// Run a broker inside the node.
    #[default]
    Embedded,
    /// Subscribe to an existing broker.
    External,
    /// No MQTT.
    Off,
}

/// `[mqtt]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttSection {
    /// Embedded broker or external one.
    #[serde(default)]
    pub mode: MqttMode,
    /// Embedded: address of the MQTT 3.1.1 listener.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// Embedded: address of the MQTT 5 listener (none if absent).
    #[serde(default)]
    pub listen_v5: Option<SocketAddr>,
    /// Embedded: most client connections.
    #[serde(default = "default_mqtt_max_connections")]
    pub max_connections: usize,
    /// External: the broker's address.
    #[serde(default)]
    pub broker: Option<SocketAddr>,
    /// External: the client id the node connects with (unique per node).
    #[serde(default = "default_mqtt_client_id")]
    pub client_id: String,
}

/// `[node]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// A human name for logs.
    pub name: String,
    /// Folder of all the node's storage (relative paths are relative to the config file).
    pub data_dir: PathBuf,
    /// The genesis file.
    pub genesis: PathBuf,
    /// The validator's consensus key file (hex of a 32-byte Ed25519 seed).
    pub key: PathBuf,
    /// Runtime worker threads.
    #[serde(default = "default_worker_threads")]
    pub worker_threads: usize,
    /// Memory the query index may use to cache its pages, in MiB (at most
    /// [MAX_INDEX_CACHE_MIB]).
    #[serde(default = "default_index_cache_mib")]
    pub index_cache_mib: usize,
}

/// Largest `node.index_cache_mib`.
pub const MAX_INDEX_CACHE_MIB: usize = 65_536;

/// A peer validator.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    /// Its consensus public key (hex).
    pub public_key: String,
    /// Where it listens for p2p.
    pub address: SocketAddr,
}

/// `[p2p]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct P2pSection {
    /// Address to listen on for validators.
    pub listen: SocketAddr,
    /// Every validator's address (this node's own entry may be included).
    pub peers: Vec<Peer>,
    /// Largest p2p message in bytes.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: u32,
}

/// `[api]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// Address of the HTTP API.
    pub listen: SocketAddr,
    /// Largest request body in bytes.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Largest page a list endpoint returns.
    #[serde(default = "default_max_page")]
    pub max_page: usize,
    /// Longest a client may take to send a request's headers (also how long an idle
    /// keep-alive connection stays open), in milliseconds; then the connection is closed.
    #[serde(default = "default_header_timeout_ms")]
    pub header_timeout_ms: u64,
    /// Longest a request may take from its headers to its answer, reading the body included, in
    /// milliseconds; then it is answered `408 request_timeout` and the connection is closed.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
}

/// `[consensus]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsensusSection {
    /// How long to wait for a leader's proposal.
    #[serde(default = "default_leader_timeout_ms")]
    pub leader_timeout_ms: u64,
    /// How long to wait for a notarized proposal to be certified.
    #[serde(default = "default_certification_timeout_ms")]
    pub certification_timeout_ms: u64,
    /// How often to retry after a timeout.
    #[serde(default = "default_timeout_retry_ms")]
    pub timeout_retry_ms: u64,
    /// Most transactions in a block.
    #[serde(default = "default_max_block_txs")]
    pub max_block_txs: usize,
    /// Most readings in a block.
    #[serde(default = "default_max_block_readings")]
    pub max_block_readings: usize,
    /// Most that the readings of a block this node proposes may cost to verify, in
    /// batch-verified Ed25519 signatures (a P-256 reading costs
    /// [crate::readings::P256_VERIFY_COST]).
    #[serde(default = "default_max_block_verify_cost")]
    pub max_block_verify_cost: usize,
    /// Most encoded bytes of a block.
    #[serde(default = "default_max_block_bytes")]
    pub max_block_bytes: usize,
    /// How far a block's timestamp may be ahead of this node's clock.
    #[serde(default = "default_max_clock_skew_ms")]
    pub max_clock_skew_ms: u64,
    /// While the network is idle, the least time between the empty blocks this node proposes
    /// (0: as fast as consensus goes); see [crate::pacing].
    #[serde(default = "default_idle_block_interval_ms")]
    pub idle_block_interval_ms: u64,
}

impl Default for ConsensusSection {
    fn default() -> Self {
        Self {
            leader_timeout_ms: default_leader_timeout_ms(),
            certification_timeout_ms: default_certification_timeout_ms(),
            timeout_retry_ms: default_timeout_retry_ms(),
            max_block_txs: default_max_block_txs(),
            max_block_readings: default_max_block_readings(),
            max_block_verify_cost: default_max_block_verify_cost(),
            max_block_bytes: default_max_block_bytes(),
            max_clock_skew_ms: default_max_clock_skew_ms(),
            idle_block_interval_ms: default_idle_block_interval_ms(),
        }
    }
}

/// `[pool]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSection {
    /// Most pending transactions in total.
    #[serde(default = "default_pool_max_txs")]
    pub max_txs: usize,
    /// Most pending transactions of one account (also how far ahead of the account's nonce a
    /// transaction may be).
    #[serde(default = "default_pool_max_per_account")]
    pub max_per_account: usize,
    /// Most pending readings in total.
    #[serde(default = "default_pool_max_readings")]
    pub max_readings: usize,
    /// Most pending readings of one device.
    #[serde(default = "default_pool_max_per_device")]
    pub max_per_device: usize,
}

impl Default for PoolSection {
    fn default() -> Self {
        Self {
            max_txs: default_pool_max_txs(),
            max_per_account: default_pool_max_per_account(),
            max_readings: default_pool_max_readings(),
            max_per_device: default_pool_max_per_device(),
        }
    }
}

fn default_mqtt_max_connections() -> usize {
    10_000
}
fn default_mqtt_client_id() -> String {
    "verity-node".into()
}
fn default_worker_threads() -> usize {
    2
}
/// Default of `node.index_cache_mib`.
pub fn default_index_cache_mib() -> usize {
    crate::index::DEFAULT_CACHE_BYTES >> 20
}
fn default_max_message_bytes() -> u32 {
    32 * 1024 * 1024
}
fn default_max_body_bytes() -> usize {
    64 * 1024
}
fn default_max_page() -> usize {
    1000
}
/// Default of `api.header_timeout_ms`.
pub fn default_header_timeout_ms() -> u64 {
    10_000
}
/// Default of `api.request_timeout_ms`.
pub fn default_request_timeout_ms() -> u64 {
    30_000
}
fn default_leader_timeout_ms() -> u64 {
    1000
}
/// Default of `consensus.idle_block_interval_ms`.
pub fn default_idle_block_interval_ms() -> u64 {
    400
}
fn default_certification_timeout_ms() -> u64 {
    2000
}
fn default_timeout_retry_ms() -> u64 {
    3000
}
fn default_max_block_txs() -> usize {
    5000
}
fn default_max_block_readings() -> usize {
    20_000
}
fn default_max_block_verify_cost() -> usize {
    20_000
}
/// Highest `consensus.max_block_verify_cost`: a block of the most readings, all P-256.
pub const MAX_BLOCK_VERIFY_COST: usize =
    verity_types::block::MAX_BLOCK_READINGS * crate::readings::P256_VERIFY_COST;
fn default_max_block_bytes() -> usize {
    16 * 1024 * 1024
}
fn default_pool_max_readings() -> usize {
    200_000
}
fn default_pool_max_per_device() -> usize {
    1024
}
fn default_max_clock_skew_ms() -> u64 {
    5000
}
fn default_pool_max_txs() -> usize {
    100_000
}
fn default_pool_max_per_account() -> usize {
    256
}

impl NodeConfig {
    /// Reads and validates a config file; relative paths in it become relative to its folder.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut cfg: Self = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [
            &mut cfg.node.data_dir,
            &mut cfg.node.genesis,
            &mut cfg.node.key,
        ] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks every limit.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        let c = &self.consensus;
        if c.leader_timeout_ms == 0 || c.certification_timeout_ms <= c.leader_timeout_ms {
            return bad("consensus.certification_timeout_ms must exceed leader_timeout_ms > 0");
        }
        if c.idle_block_interval_ms.saturating_mul(2) >= c.leader_timeout_ms {
            return bad(
                "consensus.idle_block_interval_ms must be below half of leader_timeout_ms (0: no pacing)",
            );
        }
        if c.timeout_retry_ms == 0 {
            return bad("consensus.timeout_retry_ms must be positive");
        }
        if c.max_block_txs == 0 || c.max_block_txs > verity_types::block::MAX_BLOCK_TXS {
            return bad("consensus.max_block_txs must be 1..=50000");
        }
        if c.max_block_readings == 0
            || c.max_block_readings > verity_types::block::MAX_BLOCK_READINGS
        {
            return bad("consensus.max_block_readings must be 1..=200000");
        }
        if c.max_block_verify_cost == 0 || c.max_block_verify_cost > MAX_BLOCK_VERIFY_COST {
            return bad("consensus.max_block_verify_cost must be 1..=800000");
        }
        if c.max_block_bytes < 64 * 1024 {
            return bad("consensus.max_block_bytes must be at least 65536");
        }
        if self.pool.max_txs == 0
            || self.pool.max_per_account == 0
            || self.pool.max_readings == 0
            || self.pool.max_per_device == 0
        {
            return bad("pool limits must be positive");
        }
        if self.api.max_body_bytes < verity_types::tx::MAX_TX_BYTES {
            return bad("api.max_body_bytes must hold a transaction (at least 4096)");
        }
        if self.api.max_page == 0 {
            return bad("api.max_page must be positive");
        }
        if self.api.header_timeout_ms == 0 || self.api.request_timeout_ms == 0 {
            return bad("api.header_timeout_ms and api.request_timeout_ms must be positive");
        }
        if (self.p2p.max_message_bytes as u64) < c.max_block_bytes as u64 + 64 * 1024 {
            return bad(
                "p2p.max_message_bytes must exceed consensus.max_block_bytes by at least 65536",
            );
        }
        if let Some(m) = &self.mqtt {
            match m.mode {
                MqttMode::Embedded if m.listen.is_none() => {
                    return bad("mqtt.listen is required when mqtt.mode is embedded");
                }
                MqttMode::External if m.broker.is_none() => {
                    return bad("mqtt.broker is required when mqtt.mode is external");
                }
                _ => {}
            }
            if m.listen.is_some() && m.listen == m.listen_v5 {
                return bad("mqtt.listen and mqtt.listen_v5 must differ");
            }
            if m.max_connections == 0 {
                return bad("mqtt.max_connections must be positive");
            }
            if m.client_id.is_empty() || m.client_id.len() > 64 {
                return bad("mqtt.client_id must be 1 to 64 characters");
            }
        }
        if self.node.worker_threads == 0 {
            return bad("node.worker_threads must be positive");
        }
        if self.node.index_cache_mib == 0 || self.node.index_cache_mib > MAX_INDEX_CACHE_MIB {
            return bad("node.index_cache_mib must be 1 to 65536");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[node]
name = "n"
data_dir = "data"
genesis = "genesis.json"
key = "validator.key"

[p2p]
listen = "127.0.0.1:7000"
peers = []

[api]
listen = "127.0.0.1:8000"
"#;

    fn parse(extra_node_fields: &str) -> Result<NodeConfig, ConfigError> {
        let text = MINIMAL.replace(
            "key = \"validator.key\"\n",
            &format!("key = \"validator.key\"\n{extra_node_fields}\n"),
        );
        let cfg: NodeConfig = toml::from_str(&text).expect("parses");
        cfg.validate().map(|()| cfg)
    }

    #[test]
    fn index_cache_has_a_default_and_bounds() {
        assert_eq!(parse("").unwrap().node.index_cache_mib, 128);
        assert_eq!(
            parse("index_cache_mib = 1").unwrap().node.index_cache_mib,
            1
        );
        for bad in ["index_cache_mib = 0", "index_cache_mib = 65537"] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(
                err.contains("node.index_cache_mib must be 1 to 65536"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn block_verify_cost_has_a_default_and_bounds() {
        let with = |v: &str| {
            let text = format!("{MINIMAL}\n[consensus]\nmax_block_verify_cost = {v}\n");
            let cfg: NodeConfig = toml::from_str(&text).expect("parses");
            cfg.validate().map(|()| cfg)
        };
        assert_eq!(parse("").unwrap().consensus.max_block_verify_cost, 20_000);
        assert_eq!(
            with("800000").unwrap().consensus.max_block_verify_cost,
            MAX_BLOCK_VERIFY_COST
        );
        for bad in ["0", "800001"] {
            let err = with(bad).unwrap_err().to_string();
            assert!(
                err.contains("consensus.max_block_verify_cost must be 1..=800000"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn idle_block_interval_has_a_default_and_stays_below_half_the_leader_timeout() {
        let with = |fields: &str| {
            let text = format!("{MINIMAL}\n[consensus]\n{fields}\n");
            let cfg: NodeConfig = toml::from_str(&text).expect("parses");
            cfg.validate().map(|()| cfg)
        };
        assert_eq!(parse("").unwrap().consensus.idle_block_interval_ms, 400);
        assert_eq!(
            with("idle_block_interval_ms = 0")
                .unwrap()
                .consensus
                .idle_block_interval_ms,
            0
        );
        assert!(with("idle_block_interval_ms = 499").is_ok());
        for bad in [
            "idle_block_interval_ms = 500",
            "leader_timeout_ms = 700\ncertification_timeout_ms = 1400",
        ] {
            let err = with(bad).unwrap_err().to_string();
            assert!(
                err.contains(
                    "consensus.idle_block_interval_ms must be below half of leader_timeout_ms"
                ),
                "{bad}: {err}"
            );
        }
    }
}
