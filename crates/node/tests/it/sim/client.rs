//! The clients of a simulated network and what they observe.
//!
//! Payers send transfers, the issuer mints, the operator registers devices, cheques go through
//! their lifecycles (each step once the step before it is final), and devices send signed
//! readings. Clients behave as users of the API do: a transaction goes to one validator (which
//! gossips it), a reading to every validator the device reaches (as through a shared broker);
//! whatever is not final after [RESUBMIT_MS] is sent again, to whichever validators are up.
//!
//! A transaction or reading is *reported final* the first time a validator's index says it is
//! committed at a height no higher than that validator's finalized tip (what the API answers).
//! Those reports are what the invariants hold the network to after recovery.

use super::{
    plan::{ChequeScript, Plan},
    world::{Node, World},
};
use commonware_utils::TestRng;
use rand_core10::Rng as _;
use std::collections::BTreeMap;
use verity_node::chain::Submitted;
use verity_types::{
    AccountId, Algorithm, Amount, DeviceId, DeviceMeta, Hash, Memo, Nonce, Reading, RejectCode,
    SecretKey, SignedTransaction, Transaction, TxBody,
    hash::sha256,
    reading::{
        SenmlValue,
        sign::{NewRecord, sign_reading},
    },
    receipt::OUTCOME_OK,
    tx::cheque_id,
};

/// How long a client waits for finality before sending again.
pub const RESUBMIT_MS: u64 = 3_000;
/// Starting balance of a payer, minor units.
pub const PAYER_BALANCE: u64 = 1_000_000;
/// Starting balance of a cheque's drawer, minor units.
pub const DRAWER_BALANCE: u64 = 100_000;

/// An account and its key.
#[derive(Clone)]
pub struct Party {
    /// Its key.
    pub key: SecretKey,
    /// Its account.
    pub id: AccountId,
}

fn party(name: &str) -> Party {
    let key = SecretKey::from_bytes(Algorithm::Ed25519, &sha256(name.as_bytes()).0)
        .expect("any 32 bytes are an Ed25519 key");
    Party {
        id: key.public_key().account_id(),
        key,
    }
}

/// The accounts and devices of a workload.
pub struct Cast {
    /// Admin of the issuing bank.
    pub issuer: Party,
    /// Admin of the operator organization (registers the devices).
    pub operator: Party,
    /// Senders of transfers, funded at genesis.
    pub payers: Vec<Party>,
    /// Per cheque: drawer (funded at genesis), payee, and a third party (endorsee or lender).
    pub cheques: Vec<[Party; 3]>,
    /// Devices and their keys (every second one P-256).
    pub devices: Vec<(DeviceId, SecretKey)>,
}

impl Cast {
    /// The cast of `plan`'s workload.
    pub fn new(plan: &Plan) -> Self {
        let w = &plan.workload;
        Self {
            issuer: party("sim/issuer"),
            operator: party("sim/operator"),
            payers: (0..w.payers)
                .map(|i| party(&format!("sim/payer/{i}")))
                .collect(),
            cheques: (0..w.cheques.len())
                .map(|i| {
                    [
                        party(&format!("sim/cheque/{i}/drawer")),
                        party(&format!("sim/cheque/{i}/payee")),
                        party(&format!("sim/cheque/{i}/third")),
                    ]
                })
                .collect(),
            devices: (0..w.devices)
                .map(|i| {
                    let alg = if i % 2 == 0 {
                        Algorithm::Ed25519
                    } else {
                        Algorithm::P256
                    };
                    let key =
                        SecretKey::from_bytes(alg, &sha256(format!("sim/device/{i}").as_bytes()).0)
                            .expect("a valid device key");
                    (format!("sim-dev-{i}").parse().expect("device id"), key)
                })
                .collect(),
        }
    }
}

/// A validator's report that something is final.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Final {
    /// Height of its block.
    pub height: u64,
    /// Its position in the block (transactions or readings).
    pub index: u32,
    /// For a reading: why the block rejected it, if it did.
    pub rejected: Option<RejectCode>,
    /// The validator that reported it first.
    pub by: usize,
    /// When, in milliseconds since the start.
    pub at_ms: u64,
}

/// What must happen before a transaction may be sent.
#[derive(Clone, Copy, Debug)]
enum Gate {
    /// Nothing.
    Open,
    /// The same account's previous transaction has been sent (nonces in order).
    Sent(usize),
    /// The previous step of a cheque's lifecycle is final.
    Final(usize),
}

/// A transaction of the workload.
pub struct TxItem {
    /// What it is, for messages.
    pub label: String,
    /// The signed transaction.
    pub tx: SignedTransaction,
    /// The receipt outcome it must get.
    pub outcome: &'static str,
    release_ms: u64,
    gate: Gate,
    sent_ms: Option<u64>,
    last_error: Option<String>,
    /// Reported final.
    pub fin: Option<Final>,
}

/// A reading of the workload.
pub struct ReadingItem {
    /// What it is, for messages.
    pub label: String,
    /// The signed reading.
    pub bytes: Vec<u8>,
    /// Its id.
    pub id: Hash,
    /// Index of its device in the cast.
    pub device: usize,
    /// Its seq.
    pub seq: u64,
    release_ms: u64,
    /// The transaction item that registers its device.
    registration: usize,
    sent_ms: Option<u64>,
    last_error: Option<String>,
    /// Reported final (accepted, or rejected by the block).
    pub fin: Option<Final>,
    /// A later reading of its device was committed first, so this one never can be.
    pub superseded: bool,
}

/// The clients.
pub struct Client {
    /// The transactions.
    pub txs: Vec<TxItem>,
    /// The readings.
    pub readings: Vec<ReadingItem>,
    /// Every cheque and the state it must end in.
    pub cheques: Vec<(Hash, &'static str)>,
    /// Every account the workload touches and its balance once everything is final.
    pub balances: BTreeMap<AccountId, u64>,
    /// Every account that signs and the nonce it must reach.
    pub nonces: BTreeMap<AccountId, u64>,
    rng: TestRng,
}

fn cny() -> verity_types::AssetCode {
    "CNY".parse().expect("asset code")
}

fn memo(s: &str) -> Memo {
    Memo::new(s).expect("short memo")
}

/// Builds transactions account by account, keeping nonces and the balance model.
struct Builder {
    chain_id: Hash,
    txs: Vec<TxItem>,
    nonces: BTreeMap<AccountId, u64>,
    balances: BTreeMap<AccountId, i128>,
}

impl Builder {
    fn push(
        &mut self,
        label: String,
        by: &Party,
        body: TxBody,
        release_ms: u64,
        gate: Gate,
        outcome: &'static str,
    ) -> usize {
        let nonce = self.nonces.entry(by.id).or_default();
        let tx = Transaction {
            signer: by.key.public_key(),
            nonce: Nonce(*nonce),
            body,
        }
        .sign(&by.key, &self.chain_id);
        *nonce += 1;
        self.txs.push(TxItem {
            label,
            tx,
            outcome,
            release_ms,
            gate,
            sent_ms: None,
            last_error: None,
            fin: None,
        });
        self.txs.len() - 1
    }

    fn moves(&mut self, from: Option<AccountId>, to: AccountId, amount: u64) {
        if let Some(from) = from {
            *self.balances.entry(from).or_default() -= amount as i128;
        }
        *self.balances.entry(to).or_default() += amount as i128;
    }
}

impl Client {
    /// The workload of `plan` on the network with `chain_id`. Items are released over the first
    /// three quarters of the fault phase.
    pub fn new(plan: &Plan, cast: &Cast, chain_id: Hash) -> Self {
        let w = &plan.workload;
        let mut rng = TestRng::new(plan.seed ^ 0x5eed_c11e);
        let span = plan.fault_ms * 3 / 4;
        let release = |rng: &mut TestRng| rng.next_u64() % span;
        let mut b = Builder {
            chain_id,
            txs: Vec::new(),
            nonces: BTreeMap::new(),
            balances: BTreeMap::new(),
        };
        for p in &cast.payers {
            b.balances.insert(p.id, PAYER_BALANCE as i128);
        }
        for [drawer, _, _] in &cast.cheques {
            b.balances.insert(drawer.id, DRAWER_BALANCE as i128);
        }

        // Device registrations first (readings wait for them), then the other streams.
        let mut registrations = Vec::new();
        let mut prev = None;
        for (i, (device, key)) in cast.devices.iter().enumerate() {
            let at = release(&mut rng) / 4;
            let gate = prev.map_or(Gate::Open, Gate::Sent);
            let body = TxBody::DeviceRegister {
                device: device.clone(),
                key: key.public_key(),
                meta: DeviceMeta::default(),
            };
            let item = b.push(
                format!("register device {i}"),
                &cast.operator,
                body,
                at,
                gate,
                OUTCOME_OK,
            );
            registrations.push(item);
            prev = Some(item);
        }
        for (pi, payer) in cast.payers.iter().enumerate() {
            let mut times: Vec<u64> = (0..w.transfers).map(|_| release(&mut rng)).collect();
            times.sort();
            let mut prev = None;
            for (n, at) in times.into_iter().enumerate() {
                let others: Vec<&Party> = cast
                    .payers
                    .iter()
                    .chain(cast.cheques.iter().map(|c| &c[1]))
                    .filter(|p| p.id != payer.id)
                    .collect();
                let to = others[(rng.next_u64() % others.len() as u64) as usize].id;
                let amount = 1 + rng.next_u64() % 500;
                b.moves(Some(payer.id), to, amount);
                let body = TxBody::Transfer {
                    to,
                    asset: cny(),
                    amount: Amount(amount),
                    memo: memo(&format!("payer {pi} #{n}")),
                };
                let gate = prev.map_or(Gate::Open, Gate::Sent);
                prev = Some(b.push(
                    format!("payer {pi} transfer {n}"),
                    payer,
                    body,
                    at,
                    gate,
                    OUTCOME_OK,
                ));
            }
        }
        let mut prev = None;
        let mut times: Vec<u64> = (0..w.mints).map(|_| release(&mut rng)).collect();
        times.sort();
        for (n, at) in times.into_iter().enumerate() {
            let to = cast.payers[n % cast.payers.len()].id;
            let amount = 1_000 + rng.next_u64() % 1_000;
            b.moves(None, to, amount);
            let body = TxBody::Mint {
                to,
                asset: cny(),
                amount: Amount(amount),
                memo: memo("sim mint"),
            };
            let gate = prev.map_or(Gate::Open, Gate::Sent);
            prev = Some(b.push(
                format!("mint {n}"),
                &cast.issuer,
                body,
                at,
                gate,
                OUTCOME_OK,
            ));
        }
        let mut cheques = Vec::new();
        for (ci, (script, [drawer, payee, third])) in
            w.cheques.iter().zip(&cast.cheques).enumerate()
        {
            let amount = 100 + rng.next_u64() % 5_000;
            let issue = b.push(
                format!("cheque {ci} ({script:?}) issue"),
                drawer,
                TxBody::ChequeIssue {
                    payee: payee.id,
                    asset: cny(),
                    amount: Amount(amount),
                    valid_from_ms: None,
                    expires_ms: None,
                    memo: memo(&format!("cheque {ci}")),
                },
                release(&mut rng),
                Gate::Open,
                OUTCOME_OK,
            );
            let id = cheque_id(&b.txs[issue].tx.id());
            let step = |b: &mut Builder,
                        after: usize,
                        name: &str,
                        by: &Party,
                        body: TxBody,
                        outcome: &'static str| {
                b.push(
                    format!("cheque {ci} ({script:?}) {name}"),
                    by,
                    body,
                    0,
                    Gate::Final(after),
                    outcome,
                )
            };
            let end = match script {
                ChequeScript::Endorsed => {
                    let body = TxBody::ChequeEndorse {
                        cheque: id,
                        to: third.id,
                    };
                    let e = step(&mut b, issue, "endorse", payee, body, OUTCOME_OK);
                    let body = TxBody::ChequePresent { cheque: id };
                    step(&mut b, e, "present", third, body, OUTCOME_OK);
                    b.moves(Some(drawer.id), third.id, amount);
                    "cleared"
                }
                ChequeScript::Stopped => {
                    let body = TxBody::ChequeStop {
                        cheque: id,
                        reason: memo("lost"),
                    };
                    let s = step(&mut b, issue, "stop", drawer, body, OUTCOME_OK);
                    let body = TxBody::ChequePresent { cheque: id };
                    step(&mut b, s, "present", payee, body, "dishonoured:stopped");
                    "dishonoured"
                }
                ChequeScript::Pledged => {
                    let body = TxBody::ChequePledge {
                        cheque: id,
                        to: third.id,
                    };
                    let p = step(&mut b, issue, "pledge", payee, body, OUTCOME_OK);
                    let body = TxBody::ChequeRelease { cheque: id };
                    let r = step(&mut b, p, "release", third, body, OUTCOME_OK);
                    let body = TxBody::ChequePresent { cheque: id };
                    step(&mut b, r, "present", payee, body, OUTCOME_OK);
                    b.moves(Some(drawer.id), payee.id, amount);
                    "cleared"
                }
                ChequeScript::Cancelled => {
                    let body = TxBody::ChequeCancel { cheque: id };
                    step(&mut b, issue, "cancel", drawer, body, OUTCOME_OK);
                    "cancelled"
                }
            };
            cheques.push((id, end));
        }
        assert_eq!(b.txs.len(), w.txs(), "the workload's size");

        let mut readings = Vec::new();
        for (d, (device, key)) in cast.devices.iter().enumerate() {
            let mut times: Vec<u64> = (0..w.readings).map(|_| release(&mut rng)).collect();
            times.sort();
            for (k, at) in times.into_iter().enumerate() {
                let seq = k as u64 + 1;
                let time = super::world::START_S as f64 + at as f64 / 1000.0;
                let records: Vec<NewRecord> = (0..1 + rng.next_u64() % 3)
                    .map(|r| NewRecord {
                        name: format!("sensor{r}"),
                        time,
                        unit: Some("Cel".into()),
                        value: SenmlValue::Number((rng.next_u64() % 4_000) as f64 / 100.0),
                    })
                    .collect();
                let bytes = sign_reading(key, device, seq, &records);
                let id = Reading::decode(&bytes).expect("a valid reading").id();
                readings.push(ReadingItem {
                    label: format!("device {d} reading {seq}"),
                    bytes,
                    id,
                    device: d,
                    seq,
                    release_ms: at,
                    registration: registrations[d],
                    sent_ms: None,
                    last_error: None,
                    fin: None,
                    superseded: false,
                });
            }
        }
        Self {
            txs: b.txs,
            readings,
            cheques,
            balances: b
                .balances
                .into_iter()
                .map(|(a, v)| (a, u64::try_from(v).expect("no balance goes negative")))
                .collect(),
            nonces: b.nonces,
            rng,
        }
    }

    fn pick(&mut self, live: &[usize]) -> usize {
        live[(self.rng.next_u64() % live.len() as u64) as usize]
    }

    /// Whether every transaction is final and every reading is final or superseded.
    pub fn done(&self) -> bool {
        self.txs.iter().all(|t| t.fin.is_some())
            && self
                .readings
                .iter()
                .all(|r| r.fin.is_some() || r.superseded)
    }

    /// What is still open, for a failure message.
    pub fn open_items(&self) -> String {
        let txs = self.txs.iter().filter(|t| t.fin.is_none()).map(|t| {
            format!(
                "{} (sent at {:?} ms, last error {:?})",
                t.label, t.sent_ms, t.last_error
            )
        });
        let readings = self
            .readings
            .iter()
            .filter(|r| r.fin.is_none() && !r.superseded)
            .map(|r| {
                format!(
                    "{} (sent at {:?} ms, last error {:?})",
                    r.label, r.sent_ms, r.last_error
                )
            });
        txs.chain(readings).take(12).collect::<Vec<_>>().join("; ")
    }

    /// Every report of finality: transactions and readings by id.
    pub fn finals(&self) -> BTreeMap<Hash, Final> {
        self.txs
            .iter()
            .filter_map(|t| t.fin.clone().map(|f| (t.tx.id(), f)))
            .chain(
                self.readings
                    .iter()
                    .filter_map(|r| r.fin.clone().map(|f| (r.id, f))),
            )
            .collect()
    }

    /// One round of client work: ask about what is outstanding, then send what is due.
    pub async fn tick(&mut self, world: &World<'_>) {
        let live = world.live();
        if live.is_empty() {
            return;
        }
        let now = world.now_ms();
        for i in 0..self.txs.len() {
            if self.txs[i].fin.is_some() || self.txs[i].sent_ms.is_none() {
                continue;
            }
            let v = self.pick(&live);
            if let Some((height, index)) = tx_final(world.node(v), &self.txs[i].tx.id()) {
                self.txs[i].fin = Some(Final {
                    height,
                    index,
                    rejected: None,
                    by: v,
                    at_ms: now,
                });
            }
        }
        for i in 0..self.readings.len() {
            let r = &self.readings[i];
            if r.fin.is_some() || r.superseded || r.sent_ms.is_none() {
                continue;
            }
            let (device, id, seq) = (r.device, r.id, r.seq);
            let v = self.pick(&live);
            let (device, _) = &world.cast.devices[device];
            match reading_final(world.node(v), device, &id, seq).await {
                ReadingState::Final(height, index, rejected) => {
                    self.readings[i].fin = Some(Final {
                        height,
                        index,
                        rejected,
                        by: v,
                        at_ms: now,
                    });
                }
                ReadingState::Superseded => self.readings[i].superseded = true,
                ReadingState::Open => {}
            }
        }
        for i in 0..self.txs.len() {
            let t = &self.txs[i];
            let ready = match t.gate {
                Gate::Open => true,
                Gate::Sent(p) => self.txs[p].sent_ms.is_some(),
                Gate::Final(p) => self.txs[p].fin.is_some(),
            };
            let due = t.sent_ms.is_none_or(|s| now >= s + RESUBMIT_MS);
            if t.fin.is_some() || t.release_ms > now || !ready || !due {
                continue;
            }
            let v = self.pick(&live);
            let tx = self.txs[i].tx.clone();
            let result = submit_tx(world.node(v), &tx).await;
            let t = &mut self.txs[i];
            t.sent_ms = Some(now);
            t.last_error = result.err().map(|e| format!("v{v}: {e}"));
        }
        // A device sends its readings in seq order to every validator it reaches.
        for i in 0..self.readings.len() {
            let r = &self.readings[i];
            let due = r.sent_ms.is_none_or(|s| now >= s + RESUBMIT_MS);
            if r.fin.is_some()
                || r.superseded
                || r.release_ms > now
                || self.txs[r.registration].fin.is_none()
                || !due
            {
                continue;
            }
            let mut errors = Vec::new();
            for &v in &live {
                if let Err(e) = submit_reading(world.node(v), &r.bytes, world.clock_ms()).await {
                    errors.push(format!("v{v}: {e}"));
                }
            }
            let r = &mut self.readings[i];
            r.sent_ms = Some(now);
            r.last_error = (!errors.is_empty()).then(|| errors.join(", "));
        }
    }
}

/// Where a validator's API would say a transaction is committed, if it is final there.
pub fn tx_final(node: &Node, id: &Hash) -> Option<(u64, u32)> {
    let index = node
        .chain
        .index
        .as_ref()
        .expect("simulated nodes keep an index");
    index
        .tx_location(id)
        .expect("index reads")
        .filter(|(h, _)| *h <= node.chain.tip().height)
}

enum ReadingState {
    Final(u64, u32, Option<RejectCode>),
    Superseded,
    Open,
}

async fn reading_final(node: &Node, device: &DeviceId, id: &Hash, seq: u64) -> ReadingState {
    // The device's committed seq first: the index is written before state commits, so a block
    // that moved the seq past this reading is indexed by the time the seq is seen.
    let last_seq = match node.chain.device(device).await {
        Ok(Some(d)) => d.last_seq,
        _ => 0,
    };
    let index = node
        .chain
        .index
        .as_ref()
        .expect("simulated nodes keep an index");
    match index.reading(id).expect("index reads") {
        Some(s) if s.height <= node.chain.tip().height => {
            ReadingState::Final(s.height, s.index, s.rejected)
        }
        _ if last_seq >= seq => ReadingState::Superseded,
        _ => ReadingState::Open,
    }
}

async fn submit_tx(node: &Node, tx: &SignedTransaction) -> Result<(), String> {
    match node.chain.submit(tx).await {
        Ok(Submitted::Pending) => {
            node.gossip.forward(tx.clone());
            Ok(())
        }
        Ok(Submitted::Committed(_)) => Ok(()),
        Err(e) => Err(format!("{}: {e}", e.code())),
    }
}

async fn submit_reading(node: &Node, bytes: &[u8], now_ms: u64) -> Result<(), String> {
    let chain = &node.chain;
    let (reading, key, last_seq) = chain
        .prepare_reading(bytes, now_ms, None)
        .await
        .map_err(|e| e.to_string())?;
    let verified = reading.verify(&key);
    chain
        .admit_reading(reading, key, last_seq, verified)
        .map_err(|e| e.to_string())
}
