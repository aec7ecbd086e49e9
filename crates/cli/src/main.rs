//! `verity`: run nodes and local networks, manage keys, move money and query the ledger.

mod bench;
mod cheques;
mod cpu;
mod devices;
mod sim;
mod testnet;
mod up;
mod wallets;

use anyhow::{Context as _, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use serde_json::Value;
use std::{net::IpAddr, path::PathBuf, process::ExitCode, time::Duration};
use verity_client::{Client, ClientError, DEFAULT_NODE};
use verity_types::{
    AccountId, Algorithm, Amount, AssetCode, KeyFile, Memo, SecretKey, TxBody, hash::parse_hash,
};

/// jemalloc serves every allocation of the `verity` executable: under a node's full load, with
/// the system allocator, about a fifth more memory stayed resident than the node was using, and
/// the node committed a fifth fewer readings (BENCHMARKS.md, "Memory").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "verity",
    version,
    about = "Verity: a permissioned ledger for the Internet of Things"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Args, Clone)]
struct NodeArg {
    /// The node's API URL.
    #[arg(long, env = "VERITY_NODE", default_value = DEFAULT_NODE, global = true)]
    node: String,
}

#[derive(Args, Clone)]
struct SubmitArgs {
    /// Key file of the signing account.
    #[arg(long)]
    key: PathBuf,
    /// Free-text memo (at most 256 bytes).
    #[arg(long, default_value = "")]
    memo: String,
    /// Use this nonce instead of the account's next one.
    #[arg(long)]
    nonce: Option<u64>,
    /// Return once the node accepted the transaction, without waiting for finality.
    #[arg(long)]
    no_wait: bool,
    /// How long to wait for finality, in seconds.
    #[arg(long, default_value_t = 60)]
    wait_secs: u64,
}

/// Who receives how much of which asset.
#[derive(Args, Clone)]
struct Payment {
    /// Recipient account id.
    #[arg(long)]
    to: String,
    /// Asset code, e.g. CNY.
    #[arg(long)]
    asset: String,
    /// Amount as a decimal, e.g. 12.34.
    #[arg(long)]
    amount: String,
}

impl Payment {
    /// Parses the recipient and the exact amount in the asset's minor units.
    fn resolve(&self, client: &Client) -> anyhow::Result<(AccountId, AssetCode, Amount)> {
        let (asset, amount) = asset_amount(client, &self.asset, &self.amount)?;
        Ok((self.to.parse()?, asset, amount))
    }
}

#[derive(Args, Clone)]
struct PortArgs {
    /// Host address of every listener.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// First p2p port (node i uses this + i).
    #[arg(long, default_value_t = 7000)]
    p2p_port: u16,
    /// First API port (node i uses this + i).
    #[arg(long, default_value_t = 8000)]
    api_port: u16,
    /// First MQTT port of the embedded brokers (node i uses this + i).
    #[arg(long, default_value_t = 1883)]
    mqtt_port: u16,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start a local network (created on first use) and keep it running until Ctrl-C.
    Up {
        /// Data folder of the network.
        #[arg(long, default_value = "./verity-data")]
        dir: PathBuf,
        /// Validators of a new network.
        #[arg(long, default_value_t = 4)]
        validators: usize,
        #[command(flatten)]
        ports: PortArgs,
    },
    /// Account keys.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Local consortium set-up.
    #[command(subcommand)]
    Testnet(TestnetCmd),
    /// Run a validator.
    #[command(subcommand)]
    Node(NodeCmd),
    /// Assets: mint, burn, show.
    #[command(subcommand)]
    Asset(AssetCmd),
    /// Move an amount of an asset to another account.
    Transfer {
        #[command(flatten)]
        payment: Payment,
        #[command(flatten)]
        submit: SubmitArgs,
        #[command(flatten)]
        node: NodeArg,
    },
    /// Accounts: show, history, tiers, freeze.
    #[command(subcommand)]
    Account(wallets::AccountCmd),
    /// Multi-signature treasuries: create, propose, approve, cancel, show.
    #[command(subcommand)]
    Multisig(wallets::MultisigCmd),
    /// Digital and truncated paper cheques: issue, endorse, present, stop, cancel, pledge,
    /// show, list, export.
    #[command(subcommand)]
    Cheque(cheques::ChequeCmd),
    /// Devices: register, lifecycle, readings.
    #[command(subcommand)]
    Device(devices::DeviceCmd),
    /// A reading by id, with its status and records.
    Reading {
        /// Reading id (64 hex characters).
        id: String,
        #[command(flatten)]
        node: NodeArg,
    },
    /// Inclusion proofs for offline verification.
    #[command(subcommand)]
    Proof(devices::ProofCmd),
    /// Simulate a fleet of devices streaming signed readings, with live progress.
    Sim {
        /// Devices to register and run (Ed25519 and P-256 in turn).
        #[arg(long, default_value_t = 10)]
        devices: usize,
        /// Readings per second, all devices together.
        #[arg(long, default_value_t = 10.0)]
        rate: f64,
        /// Seconds of streaming.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// How readings travel: mqtt or http.
        #[arg(long, default_value = "mqtt")]
        transport: String,
        /// Key file of an operator account, which registers the devices.
        #[arg(long)]
        key: PathBuf,
        /// The MQTT broker, or several separated by commas (the validators' brokers, say):
        /// devices connect to them in turn.
        #[arg(long, default_value = "127.0.0.1:1883", value_delimiter = ',')]
        mqtt: Vec<std::net::SocketAddr>,
        /// Only devices of this algorithm: ed25519 or p256 (both in turn when not given).
        #[arg(long)]
        alg: Option<Algorithm>,
        /// Sign every reading before streaming starts, so that the offered rate does not
        /// depend on how fast this machine signs.
        #[arg(long)]
        presign: bool,
        #[command(flatten)]
        node: NodeArg,
    },
    /// Benchmark: start a local network, drive it as real clients do, and report throughput,
    /// latency, proof and query speed, storage and memory (see BENCHMARKS.md).
    Bench {
        /// Validators of the benchmark network: 1 or 4.
        #[arg(long, default_value_t = 1)]
        validators: usize,
        /// Short runs that only prove the benchmark works.
        #[arg(long)]
        quick: bool,
        /// Repetitions of each throughput workload (median and spread are reported).
        #[arg(long)]
        runs: Option<usize>,
        /// Seconds each ingest or transfer run streams.
        #[arg(long)]
        duration: Option<f64>,
        /// Simulated devices of each ingest run (and of the soak), each with its own key
        /// (default: 100, or 20 with `--quick`).
        #[arg(long)]
        devices: Option<usize>,
        /// Write the JSON report here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Keep the benchmark network's folder.
        #[arg(long)]
        keep: bool,
        /// Instead of the workloads, stream readings at the maximum rate for this many minutes
        /// and report each validator's peak memory and its trend.
        #[arg(long, value_name = "MINUTES")]
        soak: Option<f64>,
        /// Run only these workloads (comma-separated; default: all). `ingest` includes the
        /// latency and proof figures, which need its readings.
        #[arg(long, value_delimiter = ',', value_name = "WORKLOADS")]
        only: Vec<bench::Workload>,
    },
    /// Check a proof offline against the network's genesis file.
    Verify {
        /// The proof JSON.
        proof: PathBuf,
        /// The network's genesis.json.
        #[arg(long)]
        genesis: PathBuf,
    },
    /// The node's status.
    Status {
        #[command(flatten)]
        node: NodeArg,
    },
    /// A finalized block by height (or `latest`).
    Block {
        /// Height or `latest`.
        height: String,
        #[command(flatten)]
        node: NodeArg,
    },
    /// A transaction by id.
    Tx {
        /// Transaction id (64 hex characters).
        id: String,
        #[command(flatten)]
        node: NodeArg,
    },
}

#[derive(Subcommand)]
enum KeysCmd {
    /// Make a new account key; prints the account id.
    New {
        /// Signature algorithm.
        #[arg(long, default_value = "ed25519")]
        alg: String,
        /// Where to write the key file (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the account id of a key file.
    Show {
        /// The key file.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum TestnetCmd {
    /// Write keys, genesis and node configs for an N-validator consortium.
    Init {
        /// Number of validators.
        #[arg(long, default_value_t = 4)]
        validators: usize,
        /// Folder to write into.
        #[arg(long)]
        dir: PathBuf,
        #[command(flatten)]
        ports: PortArgs,
    },
}

#[derive(Subcommand)]
enum NodeCmd {
    /// Run one validator.
    Run {
        /// Its config.toml.
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum AssetCmd {
    /// Create new units (issuer accounts only).
    Mint {
        #[command(flatten)]
        payment: Payment,
        #[command(flatten)]
        submit: SubmitArgs,
        #[command(flatten)]
        node: NodeArg,
    },
    /// Destroy units held by the signer (issuer accounts only).
    Burn {
        /// Asset code.
        #[arg(long)]
        asset: String,
        /// Amount as a decimal.
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        submit: SubmitArgs,
        #[command(flatten)]
        node: NodeArg,
    },
    /// Show an asset.
    Show {
        /// Asset code.
        code: String,
        #[command(flatten)]
        node: NodeArg,
    },
}

/// A failure with a stable code printed on stderr.
struct Failure {
    code: String,
    message: String,
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        match e.downcast_ref::<ClientError>() {
            Some(c) => Self {
                code: c.code().to_string(),
                message: c.message(),
            },
            None => Self {
                code: "error".into(),
                message: format!("{e:#}"),
            },
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let f = Failure::from(e);
            eprintln!("error: {}: {}", f.code, f.message);
            ExitCode::FAILURE
        }
    }
}

/// The embedded MQTT broker's log target. Its events are logged (from warnings up, as
/// [DEFAULT_LOG_FILTER] says), its spans never: it opens an error-level span for every message
/// it routes, with the topic formatted into it, which cost the node about a tenth of its time
/// under load (BENCHMARKS.md, "The broker's spans, and where a reading's time goes now").
const BROKER_LOG_TARGET: &str = "rumqttd";

/// Node logs: our own at info, the consensus library's chatter only from warnings up.
const DEFAULT_LOG_FILTER: &str = "info,commonware_consensus=warn,commonware_storage=warn,commonware_p2p=warn,commonware_broadcast=warn,commonware_resolver=warn,commonware_runtime=warn,rumqttd=warn";

/// The node's log subscriber: `filter` decides what is logged, except the broker's spans,
/// which never are.
fn node_logs<W>(
    filter: tracing_subscriber::EnvFilter,
    writer: W,
) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::layer::SubscriberExt as _;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(writer)
        .finish()
        .with(tracing_subscriber::filter::filter_fn(|m| {
            let broker = m.target() == BROKER_LOG_TARGET
                || m.target()
                    .strip_prefix(BROKER_LOG_TARGET)
                    .is_some_and(|rest| rest.starts_with("::"));
            !(broker && m.is_span())
        }))
}

fn print(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).expect("JSON prints"));
}

fn load_key(path: &PathBuf) -> anyhow::Result<SecretKey> {
    let text =
        std::fs::read(path).with_context(|| format!("cannot read key file {}", path.display()))?;
    let file: KeyFile = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a key file", path.display()))?;
    Ok(file.to_key()?)
}

fn asset_amount(client: &Client, asset: &str, amount: &str) -> anyhow::Result<(AssetCode, Amount)> {
    let code: AssetCode = asset.parse()?;
    let info = client.get(&format!("/v1/assets/{code}"))?;
    let decimals = info["decimals"]
        .as_u64()
        .ok_or_else(|| anyhow!("asset has no decimals"))? as u8;
    Ok((code, Amount::parse_decimal(amount, decimals)?))
}

fn submit(client: &Client, args: &SubmitArgs, body: TxBody) -> anyhow::Result<()> {
    submit_tx(client, args, body).map(|_| ())
}

/// Signs and submits `body`; unless `--no-wait`, waits for finality and prints where it was
/// committed and, when it did not simply succeed (a dishonoured cheque), its outcome. Returns
/// the transaction id and, once final, the node's view of it.
fn submit_tx(
    client: &Client,
    args: &SubmitArgs,
    body: TxBody,
) -> anyhow::Result<(verity_types::Hash, Option<Value>)> {
    let key = load_key(&args.key)?;
    let tx = client.sign(&key, body, args.nonce)?;
    let answer = client.submit(&tx)?;
    let id = tx.id();
    if args.no_wait {
        print(&answer);
        return Ok((id, None));
    }
    let done = client.wait_final(&id, Duration::from_secs(args.wait_secs))?;
    println!(
        "committed {} at height {}",
        hex::encode(id.0),
        done["height"]
    );
    if let Some(outcome) = done["receipt"]["outcome"].as_str()
        && outcome != verity_types::receipt::OUTCOME_OK
    {
        println!("outcome: {outcome}");
    }
    Ok((id, Some(done)))
}

fn run(cmd: Cmd) -> anyhow::Result<()> {
    match cmd {
        Cmd::Up {
            dir,
            validators,
            ports,
        } => up::run(&dir, validators, &ports.into()),
        Cmd::Keys(KeysCmd::New { alg, out }) => {
            let alg: Algorithm = alg.parse()?;
            if out.exists() {
                bail!("{} already exists; not overwriting a key", out.display());
            }
            let key = testnet::write_account_key(&out, alg)?;
            println!("{}", key.public_key().account_id());
            Ok(())
        }
        Cmd::Keys(KeysCmd::Show { file }) => {
            let key = load_key(&file)?;
            println!("{}", key.public_key().account_id());
            Ok(())
        }
        Cmd::Testnet(TestnetCmd::Init {
            validators,
            dir,
            ports,
        }) => {
            testnet::init(&dir, validators, &ports.into())?;
            println!(
                "wrote a {validators}-validator testnet to {}",
                dir.display()
            );
            Ok(())
        }
        Cmd::Node(NodeCmd::Run { config }) => {
            use tracing_subscriber::util::SubscriberInitExt as _;
            node_logs(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| DEFAULT_LOG_FILTER.into()),
                std::io::stdout,
            )
            .init();
            let cfg = verity_node::config::NodeConfig::load(&config)?;
            verity_node::runner::run(cfg)
        }
        Cmd::Asset(AssetCmd::Mint {
            payment,
            submit: args,
            node,
        }) => {
            let client = Client::new(&node.node);
            let (to, asset, amount) = payment.resolve(&client)?;
            submit(
                &client,
                &args,
                TxBody::Mint {
                    to,
                    asset,
                    amount,
                    memo: Memo::new(args.memo.clone())?,
                },
            )
        }
        Cmd::Asset(AssetCmd::Burn {
            asset,
            amount,
            submit: args,
            node,
        }) => {
            let client = Client::new(&node.node);
            let (asset, amount) = asset_amount(&client, &asset, &amount)?;
            submit(
                &client,
                &args,
                TxBody::Burn {
                    asset,
                    amount,
                    memo: Memo::new(args.memo.clone())?,
                },
            )
        }
        Cmd::Asset(AssetCmd::Show { code, node }) => {
            let code: AssetCode = code.parse()?;
            print(&Client::new(&node.node).get(&format!("/v1/assets/{code}"))?);
            Ok(())
        }
        Cmd::Transfer {
            payment,
            submit: args,
            node,
        } => {
            let client = Client::new(&node.node);
            let (to, asset, amount) = payment.resolve(&client)?;
            submit(
                &client,
                &args,
                TxBody::Transfer {
                    to,
                    asset,
                    amount,
                    memo: Memo::new(args.memo.clone())?,
                },
            )
        }
        Cmd::Account(cmd) => wallets::run_account(cmd),
        Cmd::Multisig(cmd) => wallets::run_multisig(cmd),
        Cmd::Cheque(cmd) => cheques::run(cmd),
        Cmd::Device(cmd) => devices::run_device(cmd),
        Cmd::Reading { id, node } => devices::show_reading(&id, &node),
        Cmd::Proof(cmd) => devices::run_proof(cmd),
        Cmd::Verify { proof, genesis } => devices::verify(&proof, &genesis),
        Cmd::Sim {
            devices,
            rate,
            duration,
            transport,
            key,
            mqtt,
            alg,
            presign,
            node,
        } => sim::run(sim::SimArgs {
            node: node.node,
            mqtt,
            key: load_key(&key)?,
            devices,
            rate,
            duration,
            transport,
            alg,
            quiet: false,
            presign,
            watch_cpu: Vec::new(),
        }),
        Cmd::Bench {
            validators,
            quick,
            runs,
            duration,
            devices,
            json,
            keep,
            soak,
            only,
        } => bench::run(bench::BenchArgs {
            validators,
            quick,
            runs: runs.unwrap_or(if quick { 1 } else { 3 }),
            duration: duration.unwrap_or(if quick { 3.0 } else { 10.0 }),
            devices: devices.unwrap_or(if quick {
                bench::QUICK_DEVICES
            } else {
                bench::DEVICES
            }),
            json,
            keep,
            soak_minutes: soak,
            only,
        }),
        Cmd::Status { node } => {
            print(&Client::new(&node.node).status()?);
            Ok(())
        }
        Cmd::Block { height, node } => {
            print(&Client::new(&node.node).get(&format!("/v1/blocks/{height}"))?);
            Ok(())
        }
        Cmd::Tx { id, node } => {
            let hash = parse_hash(&id)
                .ok_or_else(|| anyhow!("transaction id must be 64 hex characters"))?;
            print(&Client::new(&node.node).get(&format!("/v1/txs/{}", hex::encode(hash.0)))?);
            Ok(())
        }
    }
}

impl From<PortArgs> for testnet::Ports {
    fn from(p: PortArgs) -> Self {
        Self {
            host: p.host,
            p2p: p.p2p_port,
            api: p.api_port,
            mqtt: p.mqtt_port,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// What the node logs, captured.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn node_logs_keep_the_brokers_warnings_and_drop_its_spans() {
        let out = Captured::default();
        let writer = out.clone();
        let logs = node_logs(DEFAULT_LOG_FILTER.into(), move || writer.clone());
        tracing::subscriber::with_default(logs, || {
            // The broker opens a span like this for every message it routes.
            let routed = tracing::error_span!(target: "rumqttd::router::routing", "publish", topic = ?"verity/v1/readings/d1");
            assert!(routed.is_disabled(), "the broker's spans are not built");
            let _in = routed.enter();
            tracing::warn!(target: "rumqttd::router::routing", "broker trouble");
            tracing::info!(target: "rumqttd::router::routing", "broker chatter");
            drop(_in);
            let ours = tracing::info_span!(target: "verity_node::chain", "finalize", height = 7);
            assert!(!ours.is_disabled(), "the node's own spans still are");
            ours.in_scope(|| tracing::info!(target: "verity_node::chain", "finalized"));
            tracing::warn!(target: "rumqttdx", "another crate");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("broker trouble"), "{text}");
        assert!(!text.contains("broker chatter"), "{text}");
        assert!(!text.contains("verity/v1/readings/d1"), "{text}");
        assert!(text.contains("finalize{height=7}"), "{text}");
        assert!(text.contains("another crate"), "{text}");
    }
}
