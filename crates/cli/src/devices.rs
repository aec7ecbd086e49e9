//! `verity device …`, `verity reading …`, `verity proof …` and `verity verify`: the device
//! registry, signed readings, and offline inclusion proofs.

use crate::{NodeArg, SubmitArgs, load_key, print, submit, testnet::write_account_key};
use anyhow::{Context as _, anyhow, bail};
use clap::{Args, Subcommand};
use std::{collections::BTreeMap, path::PathBuf, time::Duration};
use verity_client::Client;
use verity_types::{
    Algorithm, DeviceId, DeviceMeta, DeviceStatus, Genesis, PublicKey, TxBody,
    hash::{parse_hash, sha256},
    proof::{ReadingProof, TxProof},
    reading::{
        SenmlValue,
        sign::{NewRecord, sign_reading},
    },
};

/// A device key: given as public key bytes, or generated into a key file.
#[derive(Args, Clone)]
#[group(required = true, multiple = true)]
pub struct DeviceKeyArgs {
    /// Algorithm of `--pubkey`.
    #[arg(long, requires = "pubkey")]
    alg: Option<String>,
    /// The device's public key in hex (32 bytes for Ed25519, the 33-byte compressed point for
    /// P-256).
    #[arg(long, requires = "alg")]
    pubkey: Option<String>,
    /// Generate a key of this algorithm (ed25519 or p256) and write it to `--out`.
    #[arg(long, requires = "out", conflicts_with_all = ["alg", "pubkey"])]
    generate: Option<String>,
    /// Where `--generate` writes the device key file (must not exist).
    #[arg(long, requires = "generate")]
    out: Option<PathBuf>,
}

impl DeviceKeyArgs {
    fn resolve(&self) -> anyhow::Result<PublicKey> {
        match (&self.generate, &self.out, &self.alg, &self.pubkey) {
            (Some(alg), Some(out), _, _) => {
                let alg: Algorithm = alg.parse()?;
                if out.exists() {
                    bail!("{} already exists; not overwriting a key", out.display());
                }
                Ok(write_account_key(out, alg)?.public_key())
            }
            (None, _, Some(alg), Some(hex)) => Ok(PublicKey::from_hex(alg.parse()?, hex)?),
            _ => bail!("give --alg and --pubkey, or --generate and --out"),
        }
    }
}

#[derive(Subcommand)]
pub enum DeviceCmd {
    /// Register a device owned by the signing account (of an operator organization); prints
    /// the device id.
    Register {
        /// The device id: 1 to 64 characters from A-Z a-z 0-9 . _ -
        #[arg(long)]
        id: String,
        #[command(flatten)]
        device_key: DeviceKeyArgs,
        /// A label, `key=value` (repeatable).
        #[arg(long = "meta", value_name = "KEY=VALUE")]
        meta: Vec<String>,
        #[command(flatten)]
        submit: SubmitArgs,
        #[command(flatten)]
        node: NodeArg,
    },
    /// List registered devices.
    List {
        /// Only the devices of this owner account.
        #[arg(long)]
        owner: Option<String>,
        /// Devices per page.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Start after this device id (the previous page's `next_after`).
        #[arg(long)]
        after: Option<String>,
        #[command(flatten)]
        node: NodeArg,
    },
    /// A device's registry record and lifecycle history.
    Show {
        /// Device id.
        id: String,
        #[command(flatten)]
        node: NodeArg,
    },
    /// A device's lifecycle history, with heights.
    History {
        /// Device id.
        id: String,
        #[command(flatten)]
        node: NodeArg,
    },
    /// Stop accepting a device's readings for now.
    Suspend(StatusArgs),
    /// Accept a suspended device's readings again.
    Resume(StatusArgs),
    /// Distrust a device's key (a key rotation makes it active again).
    Revoke(StatusArgs),
    /// Retire a device for good (its id is never reused).
    Decommission(StatusArgs),
    /// Give a device a new key, valid from the block that commits the change.
    RotateKey {
        /// Device id.
        id: String,
        #[command(flatten)]
        device_key: DeviceKeyArgs,
        #[command(flatten)]
        submit: SubmitArgs,
        #[command(flatten)]
        node: NodeArg,
    },
    /// Hand a device to another owner (an account of an operator organization).
    Transfer {
        /// Device id.
        id: String,
        /// The new owner's account id.
        #[arg(long)]
        to: String,
        #[command(flatten)]
        submit: SubmitArgs,
        #[command(flatten)]
        node: NodeArg,
    },
    /// A device's committed readings, oldest first.
    Readings {
        /// Device id.
        id: String,
        /// Only readings from this time on (seconds since the Unix epoch).
        #[arg(long)]
        from: Option<u64>,
        /// Only readings up to this time (seconds since the Unix epoch).
        #[arg(long)]
        to: Option<u64>,
        /// Readings per page.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Cursor from a previous page.
        #[arg(long)]
        cursor: Option<String>,
        /// Newest first.
        #[arg(long)]
        desc: bool,
        #[command(flatten)]
        node: NodeArg,
    },
    /// The latest committed value of each of a device's sensors.
    Latest {
        /// Device id.
        id: String,
        #[command(flatten)]
        node: NodeArg,
    },
    /// Sign one reading with a device key and send it over HTTP, as a device would; waits
    /// until it is committed and prints its id.
    Send {
        /// Device id.
        id: String,
        /// The device's key file.
        #[arg(long)]
        device_key: PathBuf,
        /// Sequence number (above every one sent before).
        #[arg(long)]
        seq: u64,
        /// Sensor name.
        #[arg(long, default_value = "temperature")]
        name: String,
        /// Numeric value.
        #[arg(long)]
        value: f64,
        /// Unit (SenML), e.g. Cel.
        #[arg(long)]
        unit: Option<String>,
        /// Return once accepted, without waiting for commitment.
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        node: NodeArg,
    },
}

/// Arguments of a lifecycle change.
#[derive(Args)]
pub struct StatusArgs {
    /// Device id.
    id: String,
    #[command(flatten)]
    submit: SubmitArgs,
    #[command(flatten)]
    node: NodeArg,
}

#[derive(Subcommand)]
pub enum ProofCmd {
    /// Fetch the proof of a committed transaction and what it did (outcome and every movement
    /// of value, so any history entry it caused can be proven).
    Tx {
        /// Transaction id (64 hex characters).
        id: String,
        /// Where to write the proof JSON (stdout if absent).
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        node: NodeArg,
    },
    /// Fetch the inclusion proof of a committed reading.
    Reading {
        /// Reading id (64 hex characters).
        id: String,
        /// Where to write the proof JSON (stdout if absent).
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        node: NodeArg,
    },
}

fn device_id(id: &str) -> anyhow::Result<DeviceId> {
    Ok(id.parse()?)
}

fn parse_meta(items: &[String]) -> anyhow::Result<DeviceMeta> {
    let mut m = BTreeMap::new();
    for item in items {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| anyhow!("--meta {item:?} is not KEY=VALUE"))?;
        m.insert(k.to_string(), v.to_string());
    }
    Ok(DeviceMeta::new(m)?)
}

fn set_status(a: StatusArgs, status: DeviceStatus) -> anyhow::Result<()> {
    let client = Client::new(&a.node.node);
    let body = TxBody::DeviceSetStatus {
        device: device_id(&a.id)?,
        status,
    };
    submit(&client, &a.submit, body)
}

/// Runs a `device` command.
pub fn run_device(cmd: DeviceCmd) -> anyhow::Result<()> {
    match cmd {
        DeviceCmd::Register {
            id,
            device_key,
            meta,
            submit: args,
            node,
        } => {
            let device = device_id(&id)?;
            let meta = parse_meta(&meta)?;
            let client = Client::new(&node.node);
            let key = device_key.resolve()?;
            let body = TxBody::DeviceRegister {
                device: device.clone(),
                key,
                meta,
            };
            let signer = load_key(&args.key)?;
            let tx = client.sign(&signer, body, args.nonce)?;
            client.submit(&tx)?;
            if !args.no_wait {
                client.wait_final(&tx.id(), Duration::from_secs(args.wait_secs))?;
            }
            println!("{device}");
            Ok(())
        }
        DeviceCmd::List {
            owner,
            limit,
            after,
            node,
        } => {
            let client = Client::new(&node.node);
            let mut path = format!("/v1/devices?limit={limit}");
            if let Some(o) = owner {
                path.push_str(&format!("&owner={o}"));
            }
            if let Some(a) = after {
                path.push_str(&format!("&after={}", device_id(&a)?));
            }
            print(&client.get(&path)?);
            Ok(())
        }
        DeviceCmd::Show { id, node } => {
            let client = Client::new(&node.node);
            print(&client.get(&format!("/v1/devices/{}", device_id(&id)?))?);
            Ok(())
        }
        DeviceCmd::History { id, node } => {
            let client = Client::new(&node.node);
            print(&client.get(&format!("/v1/devices/{}/history", device_id(&id)?))?);
            Ok(())
        }
        DeviceCmd::Suspend(a) => set_status(a, DeviceStatus::Suspended),
        DeviceCmd::Resume(a) => set_status(a, DeviceStatus::Active),
        DeviceCmd::Revoke(a) => set_status(a, DeviceStatus::Revoked),
        DeviceCmd::Decommission(a) => set_status(a, DeviceStatus::Decommissioned),
        DeviceCmd::RotateKey {
            id,
            device_key,
            submit: args,
            node,
        } => {
            let client = Client::new(&node.node);
            let body = TxBody::DeviceRotateKey {
                device: device_id(&id)?,
                key: device_key.resolve()?,
            };
            submit(&client, &args, body)
        }
        DeviceCmd::Transfer {
            id,
            to,
            submit: args,
            node,
        } => {
            let client = Client::new(&node.node);
            let body = TxBody::DeviceTransfer {
                device: device_id(&id)?,
                to: to.parse()?,
            };
            submit(&client, &args, body)
        }
        DeviceCmd::Readings {
            id,
            from,
            to,
            limit,
            cursor,
            desc,
            node,
        } => {
            let client = Client::new(&node.node);
            let mut path = format!("/v1/devices/{}/readings?limit={limit}", device_id(&id)?);
            if let Some(f) = from {
                path.push_str(&format!("&from={f}"));
            }
            if let Some(t) = to {
                path.push_str(&format!("&to={t}"));
            }
            if let Some(c) = cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            if desc {
                path.push_str("&order=desc");
            }
            print(&client.get(&path)?);
            Ok(())
        }
        DeviceCmd::Latest { id, node } => {
            let client = Client::new(&node.node);
            print(&client.get(&format!("/v1/devices/{}/latest", device_id(&id)?))?);
            Ok(())
        }
        DeviceCmd::Send {
            id,
            device_key,
            seq,
            name,
            value,
            unit,
            no_wait,
            node,
        } => {
            let client = Client::new(&node.node);
            let key = load_key(&device_key)?;
            let time = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs_f64();
            let bytes = sign_reading(
                &key,
                &device_id(&id)?,
                seq,
                &[NewRecord {
                    name,
                    time: (time * 1000.0).round() / 1000.0,
                    unit,
                    value: SenmlValue::Number(value),
                }],
            );
            let id = sha256(&bytes);
            client.submit_reading(&bytes)?;
            if !no_wait {
                client.wait_reading(&id, Duration::from_secs(60))?;
            }
            println!("{}", hex::encode(id.0));
            Ok(())
        }
    }
}

/// Runs `reading show`.
pub fn show_reading(id: &str, node: &NodeArg) -> anyhow::Result<()> {
    let hash = parse_hash(id).ok_or_else(|| anyhow!("reading id must be 64 hex characters"))?;
    let client = Client::new(&node.node);
    print(&client.get(&format!("/v1/readings/{}", hex::encode(hash.0)))?);
    Ok(())
}

/// Runs a `proof` command.
pub fn run_proof(cmd: ProofCmd) -> anyhow::Result<()> {
    match cmd {
        ProofCmd::Tx { id, out, node } => crate::wallets::proof_tx(&id, out, &node),
        ProofCmd::Reading { id, out, node } => {
            let hash =
                parse_hash(&id).ok_or_else(|| anyhow!("reading id must be 64 hex characters"))?;
            let client = Client::new(&node.node);
            let proof = client.get(&format!("/v1/readings/{}/proof", hex::encode(hash.0)))?;
            write_json(&proof, out.as_deref())?;
            Ok(())
        }
    }
}

/// Runs `verify`: checks a proof offline against a genesis file.
pub fn verify(proof: &PathBuf, genesis: &PathBuf) -> anyhow::Result<()> {
    let text = std::fs::read(proof).with_context(|| format!("cannot read {}", proof.display()))?;
    let genesis_text =
        std::fs::read(genesis).with_context(|| format!("cannot read {}", genesis.display()))?;
    let genesis: Genesis = serde_json::from_slice(&genesis_text)
        .map_err(|e| anyhow!("{} is not a genesis file: {e}", genesis.display()))?;
    let kind: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|e| anyhow!("{} is not JSON: {e}", proof.display()))?;
    if kind["type"] == "tx" {
        return verify_tx(&text, proof, &genesis);
    }
    let proof: ReadingProof = serde_json::from_slice(&text)
        .map_err(|e| anyhow!("{} is not a reading proof: {e}", proof.display()))?;
    let ok = proof
        .verify(&genesis)
        .map_err(|e| anyhow!("proof does not verify: {e}"))?;
    let reading = proof.decoded_reading();
    println!(
        "valid: reading {} of device {} (seq {}) committed at height {} in block {}, certified by {} of {} validators at height {}",
        hex::encode(ok.reading_id.0),
        reading
            .as_ref()
            .map_or("?".into(), |r| r.device().to_string()),
        reading.as_ref().map_or(0, |r| r.seq()),
        ok.height,
        hex::encode(ok.block_hash.0),
        ok.signers,
        genesis.validators.len(),
        ok.certified_height,
    );
    Ok(())
}

fn verify_tx(text: &[u8], path: &std::path::Path, genesis: &Genesis) -> anyhow::Result<()> {
    let proof: TxProof = serde_json::from_slice(text)
        .map_err(|e| anyhow!("{} is not a transaction proof: {e}", path.display()))?;
    let ok = proof
        .verify(genesis)
        .map_err(|e| anyhow!("proof does not verify: {e}"))?;
    println!(
        "valid: transaction {} ({}) by {} committed at height {} (block time {}) in block {}, certified by {} of {} validators at height {}",
        ok.tx.id(),
        ok.tx.tx.body.kind(),
        ok.tx.tx.account(),
        ok.height,
        crate::wallets::format_time_ms(ok.timestamp_ms),
        ok.block_hash,
        ok.signers,
        genesis.validators.len(),
        ok.certified_height,
    );
    println!("outcome: {}", ok.receipt.outcome);
    for m in &ok.receipt.movements {
        println!(
            "movement: account {} {} {} {} (counterparty {}, balance after {}, memo {:?})",
            m.account,
            if m.delta < 0 { "paid" } else { "received" },
            m.delta.unsigned_abs(),
            m.asset,
            m.counterparty.map_or("-".to_string(), |c| c.to_string()),
            m.balance_after,
            m.memo,
        );
    }
    Ok(())
}

/// Writes `value` as pretty JSON to `out`, or to stdout when none.
pub fn write_json(value: &serde_json::Value, out: Option<&std::path::Path>) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    match out {
        Some(path) => std::fs::write(path, text + "\n")
            .with_context(|| format!("cannot write {}", path.display())),
        None => {
            println!("{text}");
            Ok(())
        }
    }
}
