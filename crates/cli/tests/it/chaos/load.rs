//! The load of a chaos run, and every "committed" the network told its clients.
//!
//! Three sources of load run while faults are injected:
//! - one `verity sim` process per validator, its devices streaming signed readings over MQTT
//!   to that validator's embedded broker (the heavy load);
//! - an [Observer] per validator, subscribed to every device's receipt topic on that broker,
//!   which records each `committed` receipt as a claim;
//! - tracked clients ([Workload]): accounts that send transfers and devices that post
//!   readings over HTTP, one at a time, to random live validators, resubmitting until some
//!   validator reports the item committed, which is recorded as a claim.
//!
//! The claims are what the checks hold the network to afterwards.

use super::Rng;
use crate::harness::{Net, load, number_record, transfer, verity_bin};
use serde_json::Value;
use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};
use verity_types::{
    AccountId, Algorithm, DeviceId, Hash, Nonce, SecretKey, Transaction, TxBody, hash::sha256,
    reading::sign::sign_reading,
};

/// Timeout of one API request of the load and the checks: short, because a validator stopped
/// with SIGSTOP accepts connections and never answers.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a tracked client waits for an answer before sending its item again, to another
/// validator (a killed validator loses its pool).
const RESUBMIT_AFTER: Duration = Duration::from_secs(2);
/// How often a tracked client asks whether its item is committed.
const POLL_EVERY: Duration = Duration::from_millis(100);
/// How long tracked clients may take, once told to stop, to see their last item committed.
pub const SETTLE_LIMIT: Duration = Duration::from_secs(90);
/// The receipt topics of every device.
const RECEIPTS_FILTER: &str = "verity/v1/receipts/+";

/// A blocking HTTP client with short timeouts.
#[derive(Clone)]
pub struct Api {
    http: reqwest::blocking::Client,
}

impl Default for Api {
    fn default() -> Self {
        Self {
            http: reqwest::blocking::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .connect_timeout(Duration::from_secs(1))
                .build()
                .expect("HTTP client builds"),
        }
    }
}

impl Api {
    /// `GET url`: the status and JSON body, or `None` if the node did not answer.
    pub fn get(&self, url: &str) -> Option<(u16, Value)> {
        let resp = self.http.get(url).send().ok()?;
        let status = resp.status().as_u16();
        Some((status, resp.json().ok()?))
    }

    /// `POST url` with `body`.
    pub fn post(&self, url: &str, content_type: &str, body: Vec<u8>) -> Option<(u16, Value)> {
        let resp = self
            .http
            .post(url)
            .header("content-type", content_type)
            .body(body)
            .send()
            .ok()?;
        let status = resp.status().as_u16();
        Some((status, resp.json().ok()?))
    }
}

/// The validators as the load sees them: their URLs and which are up (not killed, stopped or
/// restarting). The fault driver clears a flag before it touches a validator.
pub struct Nodes {
    pub urls: Vec<String>,
    up: Vec<AtomicBool>,
}

impl Nodes {
    pub fn new(net: &Net) -> Arc<Self> {
        let n = net.validators();
        Arc::new(Self {
            urls: (0..n).map(|i| net.url(i)).collect(),
            up: (0..n).map(|_| AtomicBool::new(true)).collect(),
        })
    }

    pub fn set_up(&self, i: usize, up: bool) {
        self.up[i].store(up, Ordering::SeqCst);
    }

    /// A random validator that is up, if any.
    pub fn pick(&self, rng: &mut Rng) -> Option<usize> {
        let up: Vec<usize> = (0..self.up.len())
            .filter(|&i| self.up[i].load(Ordering::SeqCst))
            .collect();
        (!up.is_empty()).then(|| up[rng.below(up.len() as u64) as usize])
    }
}

/// Where a claimed reading came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A tracked device over HTTP.
    Tracked,
    /// A `verity sim` device, seen in an MQTT receipt.
    Sim,
}

/// A node's word that a transaction is committed.
#[derive(Clone, Debug)]
pub struct TxClaim {
    pub height: u64,
    pub block_hash: String,
    pub node: usize,
}

/// A node's word that a reading is committed.
#[derive(Clone, Debug)]
pub struct ReadingClaim {
    pub height: u64,
    pub device: String,
    pub node: usize,
    pub source: Source,
    /// The reading's bytes, when the test signed it itself.
    pub bytes: Option<Vec<u8>>,
}

/// Every claim of the run, by id, and any two claims about one id that disagree.
#[derive(Default)]
pub struct Claims {
    inner: Mutex<ClaimsInner>,
}

#[derive(Default)]
struct ClaimsInner {
    txs: BTreeMap<String, TxClaim>,
    readings: BTreeMap<String, ReadingClaim>,
    conflicts: Vec<String>,
}

impl Claims {
    pub fn add_tx(&self, id: &str, claim: TxClaim) {
        let mut inner = self.inner.lock().expect("claims");
        match inner.txs.get(id) {
            Some(old) if old.height != claim.height || old.block_hash != claim.block_hash => {
                let conflict = format!(
                    "tx {id}: node{} said height {} block {}, node{} said height {} block {}",
                    old.node,
                    old.height,
                    old.block_hash,
                    claim.node,
                    claim.height,
                    claim.block_hash
                );
                inner.conflicts.push(conflict);
            }
            Some(_) => {}
            None => {
                inner.txs.insert(id.to_string(), claim);
            }
        }
    }

    pub fn add_reading(&self, id: &str, claim: ReadingClaim) {
        let mut inner = self.inner.lock().expect("claims");
        match inner.readings.get(id) {
            Some(old) if old.height != claim.height => {
                let conflict = format!(
                    "reading {id}: node{} said height {}, node{} said height {}",
                    old.node, old.height, claim.node, claim.height
                );
                inner.conflicts.push(conflict);
            }
            Some(_) => {}
            None => {
                inner.readings.insert(id.to_string(), claim);
            }
        }
    }

    pub fn txs(&self) -> BTreeMap<String, TxClaim> {
        self.inner.lock().expect("claims").txs.clone()
    }

    pub fn readings(&self) -> BTreeMap<String, ReadingClaim> {
        self.inner.lock().expect("claims").readings.clone()
    }

    pub fn conflicts(&self) -> Vec<String> {
        self.inner.lock().expect("claims").conflicts.clone()
    }

    /// (transactions, readings) claimed so far.
    pub fn counts(&self) -> (usize, usize) {
        let inner = self.inner.lock().expect("claims");
        (inner.txs.len(), inner.readings.len())
    }
}

/// How large the tracked workload and the simulated fleet are.
#[derive(Clone, Copy, Debug)]
pub struct LoadShape {
    /// Tracked accounts sending transfers.
    pub senders: usize,
    /// Tracked devices posting readings over HTTP.
    pub devices: usize,
    /// Devices of each validator's `verity sim`.
    pub sim_devices: usize,
    /// Readings per second of all `verity sim` processes together.
    pub sim_rate: f64,
}

/// What a tracked client did.
#[derive(Clone, Debug, Default)]
pub struct WorkerReport {
    pub name: String,
    /// Items reported committed (transfers or readings), in order.
    pub committed: u64,
    /// Sum of the amounts of committed transfers, minor units.
    pub amount_sum: u64,
    /// Times an item was sent again.
    pub resubmissions: u64,
    /// An item that was sent but never seen committed before the settle limit.
    pub unsettled: Option<String>,
    /// Items a node refused or rejected, with the code: a tracked item is always valid.
    pub refusals: Vec<String>,
}

/// The tracked accounts and devices, set up on a healthy network.
pub struct Tracked {
    pub senders: Vec<SecretKey>,
    pub sink: AccountId,
    pub devices: Vec<(DeviceId, SecretKey)>,
    pub chain_id: Hash,
}

impl Tracked {
    /// Funds the senders from the issuer and registers the devices with the operator key.
    pub fn set_up(net: &Net, shape: &LoadShape) -> Self {
        let client = net.client(0);
        let chain_id = client.chain_id().expect("chain id");
        let issuer = load(net, "issuer");
        let operator = load(net, "operator");
        let alg = |k: usize| {
            if k.is_multiple_of(2) {
                Algorithm::Ed25519
            } else {
                Algorithm::P256
            }
        };
        let senders: Vec<SecretKey> = (0..shape.senders)
            .map(|k| SecretKey::generate(alg(k)))
            .collect();
        let sink = SecretKey::generate(Algorithm::Ed25519)
            .public_key()
            .account_id();
        let tag = hex::encode(&sha256(&std::process::id().to_be_bytes()).0[..3]);
        let devices: Vec<(DeviceId, SecretKey)> = (0..shape.devices)
            .map(|k| {
                let id = format!("chaos-{tag}-{k}").parse().expect("device id");
                (id, SecretKey::generate(alg(k)))
            })
            .collect();
        let mut txs = Vec::new();
        for (k, s) in senders.iter().enumerate() {
            // 1,000.00 CNY each: far more than the run spends, within the anonymous tier.
            let body = transfer(s.public_key().account_id(), 100_000);
            let tx = client.sign(&issuer, body, Some(k as u64)).expect("signs");
            client.submit(&tx).expect("funding accepted");
            txs.push(tx);
        }
        for (k, (id, key)) in devices.iter().enumerate() {
            let body = TxBody::DeviceRegister {
                device: id.clone(),
                key: key.public_key(),
                meta: Default::default(),
            };
            let tx = client.sign(&operator, body, Some(k as u64)).expect("signs");
            client.submit(&tx).expect("registration accepted");
            txs.push(tx);
        }
        for tx in &txs {
            client
                .wait_final(&tx.id(), Duration::from_secs(60))
                .expect("set-up transaction final");
        }
        Self {
            senders,
            sink,
            devices,
            chain_id,
        }
    }
}

/// The tracked clients, each on its own thread.
pub struct Workload {
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<WorkerReport>>,
}

impl Workload {
    pub fn start(tracked: &Tracked, nodes: Arc<Nodes>, claims: Arc<Claims>, seed: u64) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::new();
        for (k, key) in tracked.senders.iter().enumerate() {
            let client = TrackedClient {
                nodes: nodes.clone(),
                claims: claims.clone(),
                stop: stop.clone(),
                rng: Rng::new(seed ^ (0x5e4d_0000 + k as u64)),
                api: Api::default(),
            };
            let (key, sink, chain_id) = (key.clone(), tracked.sink, tracked.chain_id);
            workers.push(std::thread::spawn(move || {
                client.send_transfers(k, &key, sink, &chain_id)
            }));
        }
        for (k, (id, key)) in tracked.devices.iter().enumerate() {
            let client = TrackedClient {
                nodes: nodes.clone(),
                claims: claims.clone(),
                stop: stop.clone(),
                rng: Rng::new(seed ^ (0xde71_0000 + k as u64)),
                api: Api::default(),
            };
            let (id, key) = (id.clone(), key.clone());
            workers.push(std::thread::spawn(move || client.send_readings(&id, &key)));
        }
        Self { stop, workers }
    }

    /// Asks every client to stop and waits until each has seen its last item committed (or
    /// [SETTLE_LIMIT] passed).
    pub fn stop(self) -> Vec<WorkerReport> {
        self.stop.store(true, Ordering::SeqCst);
        self.workers
            .into_iter()
            .map(|w| w.join().expect("tracked client did not panic"))
            .collect()
    }
}

/// One tracked client: sends one item at a time until a node reports it committed.
struct TrackedClient {
    nodes: Arc<Nodes>,
    claims: Arc<Claims>,
    stop: Arc<AtomicBool>,
    rng: Rng,
    api: Api,
}

/// How an item stands after one question to a node.
enum Answer {
    Committed(Value, usize),
    Waiting,
    Refused(String),
}

impl TrackedClient {
    fn send_transfers(
        mut self,
        k: usize,
        key: &SecretKey,
        sink: AccountId,
        chain_id: &Hash,
    ) -> WorkerReport {
        let mut report = WorkerReport {
            name: format!("sender{k} ({})", key.public_key().account_id()),
            ..Default::default()
        };
        let mut nonce = 0u64;
        while !self.stop.load(Ordering::SeqCst) {
            let amount = 1 + nonce % 7;
            let tx = Transaction {
                signer: key.public_key(),
                nonce: Nonce(nonce),
                body: transfer(sink, amount),
            }
            .sign(key, chain_id);
            let id = hex::encode(tx.id().0);
            let bytes = tx.to_bytes();
            let settled = self.settle(
                &id,
                &mut report,
                |c, node| {
                    let url = &c.nodes.urls[node];
                    match c.api.post(
                        &format!("{url}/v1/txs"),
                        "application/octet-stream",
                        bytes.clone(),
                    ) {
                        // Refused as already used: it committed, which a poll will show.
                        Some((422, v)) if v["error"]["code"] == "nonce_too_low" => Answer::Waiting,
                        Some((s, v)) if s >= 400 && s != 503 && s != 409 => {
                            Answer::Refused(format!("{}", v["error"]["code"]))
                        }
                        _ => Answer::Waiting,
                    }
                },
                |c, node| {
                    let url = &c.nodes.urls[node];
                    match c.api.get(&format!("{url}/v1/txs/{id}")) {
                        Some((200, v)) if v["status"] == "committed" => Answer::Committed(v, node),
                        Some((200, v)) if v["status"] == "rejected" => {
                            Answer::Refused(format!("rejected {}", v["code"]))
                        }
                        _ => Answer::Waiting,
                    }
                },
            );
            let Some((v, node)) = settled else { break };
            self.claims.add_tx(
                &id,
                TxClaim {
                    height: v["height"].as_u64().expect("committed tx has a height"),
                    block_hash: v["block_hash"].as_str().unwrap_or_default().to_string(),
                    node,
                },
            );
            report.committed += 1;
            report.amount_sum += amount;
            nonce += 1;
        }
        report
    }

    fn send_readings(mut self, device: &DeviceId, key: &SecretKey) -> WorkerReport {
        let mut report = WorkerReport {
            name: format!("device {device}"),
            ..Default::default()
        };
        let mut seq = 1u64;
        while !self.stop.load(Ordering::SeqCst) {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock after 1970")
                .as_secs_f64()
                .floor();
            let record = number_record("temperature", "Cel", now, 4.0 + (seq % 10) as f64 / 10.0);
            let bytes = sign_reading(key, device, seq, &[record]);
            let id = hex::encode(sha256(&bytes).0);
            let settled = self.settle(
                &id,
                &mut report,
                |c, node| {
                    let url = &c.nodes.urls[node];
                    match c.api.post(
                        &format!("{url}/v1/readings"),
                        "application/cose",
                        bytes.clone(),
                    ) {
                        // Sent again after it committed: the poll shows it committed.
                        Some((_, v)) if v["error"]["code"] == "replay" => Answer::Waiting,
                        Some((s, v)) if s >= 400 && s != 429 && s != 503 => {
                            Answer::Refused(format!("{}", v["error"]["code"]))
                        }
                        _ => Answer::Waiting,
                    }
                },
                |c, node| {
                    let url = &c.nodes.urls[node];
                    match c.api.get(&format!("{url}/v1/readings/{id}")) {
                        Some((200, v)) if v["status"] == "committed" => Answer::Committed(v, node),
                        Some((200, v)) if v["status"] == "rejected" => {
                            Answer::Refused(format!("rejected {}", v["code"]))
                        }
                        _ => Answer::Waiting,
                    }
                },
            );
            let Some((v, node)) = settled else { break };
            self.claims.add_reading(
                &id,
                ReadingClaim {
                    height: v["height"]
                        .as_u64()
                        .expect("committed reading has a height"),
                    device: device.to_string(),
                    node,
                    source: Source::Tracked,
                    bytes: Some(bytes),
                },
            );
            report.committed += 1;
            seq += 1;
        }
        report
    }

    /// Sends an item with `submit` and asks random live nodes with `poll` until one reports
    /// it committed; sends it again every [RESUBMIT_AFTER]. Returns `None` if the client was
    /// told to stop and the item did not commit within [SETTLE_LIMIT], or a node refused it.
    fn settle(
        &mut self,
        id: &str,
        report: &mut WorkerReport,
        submit: impl Fn(&Self, usize) -> Answer,
        poll: impl Fn(&Self, usize) -> Answer,
    ) -> Option<(Value, usize)> {
        let mut sent_at: Option<Instant> = None;
        let mut stop_seen: Option<Instant> = None;
        loop {
            if stop_seen.is_none() && self.stop.load(Ordering::SeqCst) {
                stop_seen = Some(Instant::now());
            }
            if stop_seen.is_some_and(|t| t.elapsed() > SETTLE_LIMIT) {
                report.unsettled = Some(id.to_string());
                return None;
            }
            if sent_at.is_none_or(|t| t.elapsed() > RESUBMIT_AFTER)
                && let Some(node) = self.nodes.pick(&mut self.rng)
            {
                if sent_at.is_some() {
                    report.resubmissions += 1;
                }
                sent_at = Some(Instant::now());
                if let Answer::Refused(code) = submit(self, node) {
                    report.refusals.push(format!("{id} by node{node}: {code}"));
                    return None;
                }
            }
            if let Some(node) = self.nodes.pick(&mut self.rng) {
                match poll(self, node) {
                    Answer::Committed(v, node) => return Some((v, node)),
                    Answer::Refused(code) => {
                        report.refusals.push(format!("{id} by node{node}: {code}"));
                        return None;
                    }
                    Answer::Waiting => {}
                }
            }
            std::thread::sleep(POLL_EVERY);
        }
    }
}

/// Follows every device's receipts on one validator's embedded broker and records each
/// `committed` receipt as a claim. Reconnects and subscribes again after the broker restarts.
pub struct Observer {
    stop: Arc<AtomicBool>,
    client: rumqttc::Client,
    /// Committed receipts seen.
    pub seen: Arc<AtomicU64>,
}

impl Observer {
    /// Connects to `broker` (node `node`'s) and waits until the subscription is confirmed.
    pub fn start(broker: SocketAddr, node: usize, claims: Arc<Claims>) -> Self {
        use rumqttc::{Event, MqttOptions, Packet, QoS};
        let mut options = MqttOptions::new(
            format!("chaos-observer-{node}-{}", std::process::id()),
            broker.ip().to_string(),
            broker.port(),
        );
        options.set_keep_alive(Duration::from_secs(5));
        options.set_max_packet_size(64 * 1024, 64 * 1024);
        let (client, mut connection) = rumqttc::Client::new(options, 100);
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(AtomicU64::new(0));
        let subscribed = Arc::new(AtomicBool::new(false));
        let (stop2, seen2, subscribed2, resubscribe) = (
            stop.clone(),
            seen.clone(),
            subscribed.clone(),
            client.clone(),
        );
        std::thread::spawn(move || {
            for event in connection.iter() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                match event {
                    // Every (re)connection starts a clean session: subscribe again.
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = resubscribe.try_subscribe(RECEIPTS_FILTER, QoS::AtLeastOnce);
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        subscribed2.store(true, Ordering::SeqCst);
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let Ok(v) = serde_json::from_slice::<Value>(&p.payload) else {
                            continue;
                        };
                        let device = p.topic.rsplit('/').next().unwrap_or_default();
                        if v["status"] == "committed"
                            && let (Some(id), Some(height)) =
                                (v["reading_id"].as_str(), v["height"].as_u64())
                        {
                            seen2.fetch_add(1, Ordering::Relaxed);
                            claims.add_reading(
                                id,
                                ReadingClaim {
                                    height,
                                    device: device.to_string(),
                                    node,
                                    source: Source::Sim,
                                    bytes: None,
                                },
                            );
                        }
                    }
                    Ok(_) => {}
                    Err(_) => std::thread::sleep(Duration::from_millis(200)),
                }
            }
        });
        crate::harness::wait_for(
            &format!("the receipt subscription on node{node}'s broker"),
            Duration::from_secs(30),
            || subscribed.load(Ordering::SeqCst).then_some(()),
        );
        Self { stop, client, seen }
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.client.try_disconnect();
    }
}

/// One `verity sim` process streaming to one validator's broker.
pub struct Sim {
    child: Child,
    /// The last progress line the sim printed.
    progress: Arc<Mutex<String>>,
}

impl Sim {
    /// Starts `verity sim` against node `node` and waits until it has registered its devices
    /// (the sims share the operator key, so they register one after another).
    pub fn start(net: &Net, node: usize, devices: usize, rate: f64, log: &std::path::Path) -> Self {
        let mut child = Command::new(verity_bin())
            .args(["sim", "--transport", "mqtt", "--duration", "86400"])
            .args(["--devices", &devices.to_string()])
            .args(["--rate", &format!("{rate:.1}")])
            .arg("--key")
            .arg(net.key("operator"))
            .args(["--node", &net.url(node)])
            .args(["--mqtt", &net.mqtt_addr(node).to_string()])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(log).expect("sim log"))
            .stderr(Stdio::piped())
            .spawn()
            .expect("verity sim starts");
        let stderr = child.stderr.take().expect("piped");
        let progress = Arc::new(Mutex::new(String::new()));
        let registered = Arc::new(AtomicBool::new(false));
        let (progress2, registered2) = (progress.clone(), registered.clone());
        std::thread::spawn(move || {
            // The progress line is rewritten with carriage returns.
            for line in BufReader::new(stderr).split(b'\r').map_while(Result::ok) {
                let line = String::from_utf8_lossy(&line).trim().to_string();
                if line.contains("registered") {
                    registered2.store(true, Ordering::SeqCst);
                }
                if !line.is_empty() {
                    *progress2.lock().expect("progress") = line;
                }
            }
        });
        let mut sim = Self { child, progress };
        crate::harness::wait_for(
            &format!("verity sim on node{node} to register its devices"),
            Duration::from_secs(120),
            || {
                if let Ok(Some(status)) = sim.child.try_wait() {
                    panic!("verity sim exited early ({status}): {}", sim.last_line());
                }
                registered.load(Ordering::SeqCst).then_some(())
            },
        );
        sim
    }

    pub fn last_line(&self) -> String {
        self.progress.lock().expect("progress").clone()
    }

    /// Whether the process is still running (it reconnects by itself after its node restarts).
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops the process (SIGKILL: its counts are in the last progress line).
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.last_line()
    }
}

impl Drop for Sim {
    /// A failed test must not leave a simulated fleet running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
