//! `verity testnet init`: writes everything an N-validator consortium needs.

use anyhow::{Context as _, bail};
use std::{collections::BTreeMap, fs, net::IpAddr, path::Path};
use verity_node::config::{
    ApiSection, ConsensusSection, MqttMode, MqttSection, NodeConfig, NodeSection, P2pSection, Peer,
    PoolSection,
};
use verity_types::{
    Algorithm, Amount, KeyFile, SecretKey,
    genesis::{
        Genesis, GenesisAccount, GenesisAsset, GenesisOrganization, GenesisTier, GenesisValidator,
        Role, TierLimits,
    },
};

/// Initial CNY supply held by the issuer: 1,000,000,000.00 CNY in minor units.
pub const INITIAL_SUPPLY_MINOR: u64 = 100_000_000_000;

/// Where the nodes of a testnet listen.
pub struct Ports {
    /// Host address for every listener.
    pub host: IpAddr,
    /// Node `i` listens for p2p on `p2p + i`.
    pub p2p: u16,
    /// Node `i` serves the API on `api + i`.
    pub api: u16,
    /// Node `i` runs its embedded MQTT broker on `mqtt + i`.
    pub mqtt: u16,
}

fn write_new(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
}

/// Writes a key file for a fresh account key and returns the key.
pub fn write_account_key(path: &Path, alg: Algorithm) -> anyhow::Result<SecretKey> {
    let key = SecretKey::generate(alg);
    let json = serde_json::to_vec_pretty(&KeyFile::from_key(&key))?;
    write_new(path, &json)?;
    Ok(key)
}

/// The wallet tiers of a new testnet, modelled on tiered digital-currency wallets: an
/// anonymous tier (every new account) with low limits, a verified tier with higher ones, and an
/// unlimited tier for institutions. Amounts in CNY fen (minor units).
pub fn default_tiers() -> anyhow::Result<Vec<GenesisTier>> {
    let cny = |single: u64, daily: u64, balance: u64| -> anyhow::Result<_> {
        let limits = TierLimits {
            single_payment: Some(Amount(single * 100)),
            daily: Some(Amount(daily * 100)),
            balance: Some(Amount(balance * 100)),
        };
        Ok(BTreeMap::from([("CNY".parse()?, limits)]))
    };
    Ok(vec![
        GenesisTier {
            id: "anonymous".parse()?,
            name: "Anonymous wallet".into(),
            limits: cny(2_000, 5_000, 10_000)?,
        },
        GenesisTier {
            id: "verified".parse()?,
            name: "Verified wallet".into(),
            limits: cny(50_000, 200_000, 1_000_000)?,
        },
        GenesisTier {
            id: "institution".parse()?,
            name: "Institution".into(),
            limits: BTreeMap::new(),
        },
    ])
}

/// Writes the testnet into `dir`.
pub fn init(dir: &Path, validators: usize, ports: &Ports) -> anyhow::Result<()> {
    if validators == 0 || validators > verity_types::genesis::MAX_VALIDATORS {
        bail!(
            "--validators must be 1..={}",
            verity_types::genesis::MAX_VALIDATORS
        );
    }
    if dir.join("genesis.json").exists() {
        bail!(
            "{} already holds a testnet (genesis.json exists)",
            dir.display()
        );
    }
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let orgs = [
        (
            "issuer-bank",
            "Issuer Bank",
            vec![Role::Validator, Role::Issuer],
        ),
        (
            "operator-co",
            "Equipment Operator",
            vec![Role::Validator, Role::Operator],
        ),
        (
            "regulator",
            "Financial Regulator",
            vec![Role::Validator, Role::Regulator],
        ),
        ("maker-co", "Device Manufacturer", vec![Role::Validator]),
    ];
    let mut keys = Vec::new();
    let mut genesis_validators = Vec::new();
    for i in 0..validators {
        let seed = ed25519_zebra::SigningKey::new(rand_core::OsRng);
        let public = hex::encode(<[u8; 32]>::from(seed.verification_key()));
        keys.push((hex::encode(seed.to_bytes()), public.clone()));
        genesis_validators.push(GenesisValidator {
            name: format!("node{i}"),
            public_key: public,
            organization: orgs[i % orgs.len()].0.parse()?,
        });
    }
    let issuer = write_account_key(&dir.join("issuer.key"), Algorithm::Ed25519)?;
    let operator = write_account_key(&dir.join("operator.key"), Algorithm::Ed25519)?;
    let regulator = write_account_key(&dir.join("regulator.key"), Algorithm::P256)?;
    let account = |key: &SecretKey, org: &str, supply: u64| -> anyhow::Result<GenesisAccount> {
        let mut balances = BTreeMap::new();
        if supply > 0 {
            balances.insert("CNY".parse()?, Amount(supply));
        }
        Ok(GenesisAccount {
            account: key.public_key().account_id(),
            organization: Some(org.parse()?),
            // The founding accounts administer their organizations.
            admin: true,
            balances,
            tier: Some("institution".parse()?),
        })
    };
    let genesis = Genesis {
        chain_name: format!("verity-testnet-{validators}"),
        genesis_time_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis() as u64,
        validators: genesis_validators,
        organizations: orgs
            .iter()
            .map(|(id, name, roles)| {
                Ok(GenesisOrganization {
                    id: id.parse()?,
                    name: name.to_string(),
                    roles: roles.iter().copied().collect(),
                })
            })
            .collect::<anyhow::Result<_>>()?,
        assets: vec![GenesisAsset {
            code: "CNY".parse()?,
            decimals: 2,
            issuer: "issuer-bank".parse()?,
            name: "Tokenized yuan".into(),
        }],
        accounts: vec![
            account(&issuer, "issuer-bank", INITIAL_SUPPLY_MINOR)?,
            account(&operator, "operator-co", 0)?,
            account(&regulator, "regulator", 0)?,
        ],
        tiers: default_tiers()?,
        default_tier: Some("anonymous".parse()?),
    };
    genesis.validate()?;
    write_new(
        &dir.join("genesis.json"),
        &serde_json::to_vec_pretty(&genesis)?,
    )?;
    let peers: Vec<Peer> = keys
        .iter()
        .enumerate()
        .map(|(i, (_, public))| Peer {
            public_key: public.clone(),
            address: (ports.host, ports.p2p + i as u16).into(),
        })
        .collect();
    for (i, (secret, _)) in keys.iter().enumerate() {
        let node_dir = dir.join(format!("node{i}"));
        fs::create_dir_all(&node_dir)?;
        write_new(&node_dir.join("validator.key"), secret.as_bytes())?;
        let config = NodeConfig {
            node: NodeSection {
                name: format!("node{i}"),
                data_dir: "data".into(),
                genesis: "../genesis.json".into(),
                key: "validator.key".into(),
                worker_threads: 2,
                index_cache_mib: verity_node::config::default_index_cache_mib(),
            },
            p2p: P2pSection {
                listen: (ports.host, ports.p2p + i as u16).into(),
                peers: peers.clone(),
                max_message_bytes: 32 * 1024 * 1024,
            },
            api: ApiSection {
                listen: (ports.host, ports.api + i as u16).into(),
                max_body_bytes: 64 * 1024,
                max_page: 1000,
                header_timeout_ms: verity_node::config::default_header_timeout_ms(),
                request_timeout_ms: verity_node::config::default_request_timeout_ms(),
            },
            consensus: ConsensusSection::default(),
            pool: PoolSection::default(),
            mqtt: Some(MqttSection {
                mode: MqttMode::Embedded,
                listen: Some((ports.host, ports.mqtt + i as u16).into()),
                listen_v5: None,
                max_connections: 10_000,
                broker: None,
                client_id: format!("verity-node{i}"),
            }),
        };
        write_new(
            &node_dir.join("config.toml"),
            toml::to_string_pretty(&config)?.as_bytes(),
        )?;
    }
    Ok(())
}
