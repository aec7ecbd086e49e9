//! `verity sim`: a fleet of simulated devices. Registers N devices (Ed25519 and P-256 in
//! turn) for an operator account, then streams realistic signed readings (temperature and
//! humidity, a power meter's energy, a GPS position) over MQTT or HTTP at a total rate,
//! showing a live progress line and a summary.
//!
//! Over MQTT every device holds its own connection and learns each reading's fate from its
//! receipts (latency is publish to committed receipt). Over HTTP the answer says accepted or
//! refused; commitment is observed by polling each device's highest committed seq twice a
//! second, so HTTP latencies are upper bounds, coarse by up to 0.5 s.

use anyhow::{Context as _, anyhow, bail};
use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};
use verity_client::Client;
use verity_types::{
    Algorithm, DeviceId, DeviceMeta, PublicKey, SecretKey, Signature, TxBody,
    hash::sha256,
    reading::{
        SenmlValue,
        sign::{NewRecord, senml_pack, sign_payload_with},
    },
};

/// Most simulated devices.
pub const MAX_SIM_DEVICES: usize = 10_000;
/// Highest total rate, readings per second.
pub const MAX_SIM_RATE: f64 = 100_000.0;

/// What to simulate.
pub struct SimArgs {
    /// The node's API URL.
    pub node: String,
    /// The MQTT brokers; device `i` uses broker `i % len` (at least one).
    pub mqtt: Vec<SocketAddr>,
    /// The operator account's key (registers the devices).
    pub key: SecretKey,
    /// Devices.
    pub devices: usize,
    /// Readings per second, all devices together.
    pub rate: f64,
    /// Seconds of streaming.
    pub duration: f64,
    /// `mqtt` or `http`.
    pub transport: String,
    /// Only devices of this algorithm (both in turn when none).
    pub alg: Option<Algorithm>,
    /// No progress line or summary (for `verity bench`).
    pub quiet: bool,
    /// Sign every reading before the clock starts (for `verity bench`: real devices sign on
    /// their own processors, so signing here must not take the node's share of this machine).
    pub presign: bool,
    /// Processes whose CPU time [SimReport::cpu_at_start] samples, with this one (for
    /// `verity bench`: the validators).
    pub watch_cpu: Vec<u32>,
}

/// What a simulation measured.
#[derive(Clone, Debug, Default)]
pub struct SimReport {
    /// Readings sent.
    pub sent: u64,
    /// Readings sent per second over the streaming time: the rate actually offered, which is
    /// below the rate asked for when this process could not keep up.
    pub sent_per_s: f64,
    /// Readings known committed.
    pub committed: u64,
    /// Readings refused (at ingest or by a block).
    pub rejected: u64,
    /// Committed readings per second, from the first reading sent to the last commit seen.
    pub committed_per_s: f64,
    /// Publish-to-committed latency, median, ms (MQTT: exact; HTTP: coarse upper bound).
    pub latency_p50_ms: Option<f64>,
    /// 99th percentile latency, ms.
    pub latency_p99_ms: Option<f64>,
    /// Publish (or HTTP post) to `accepted` (receipt or answer) latency, median, ms: the
    /// node's ingest, before a reading waits for a block.
    pub accepted_p50_ms: Option<f64>,
    /// 99th percentile of the same, ms.
    pub accepted_p99_ms: Option<f64>,
    /// Refusals by code.
    pub codes: HashMap<String, u64>,
    /// Some committed reading ids (up to [REPORT_SAMPLE_IDS]).
    pub committed_ids: Vec<[u8; 32]>,
    /// When the first reading was sent (the devices registered and connected).
    pub streaming_started: Option<Instant>,
    /// The CPU time of this process and of [SimArgs::watch_cpu] when the first reading was
    /// sent (after signing beforehand, which a real device does on its own processor).
    pub cpu_at_start: Option<crate::cpu::Sample>,
}

/// Committed reading ids a report keeps.
pub const REPORT_SAMPLE_IDS: usize = 2000;

#[derive(Default)]
struct Stats {
    sent: AtomicU64,
    accepted: AtomicU64,
    committed: AtomicU64,
    rejected: AtomicU64,
    latencies_ms: Mutex<Vec<f64>>,
    /// Send to `accepted`, ms.
    accepted_ms: Mutex<Vec<f64>>,
    codes: Mutex<HashMap<String, u64>>,
    /// Sent readings waiting to be committed: id → (device index, seq, sent at).
    pending: Mutex<HashMap<[u8; 32], (usize, u64, Instant)>>,
    /// When the last commit was seen.
    last_commit: Mutex<Option<Instant>>,
    /// Some committed ids.
    sample: Mutex<Vec<[u8; 32]>>,
}

impl Stats {
    fn reject(&self, id: &[u8; 32], code: &str) {
        self.pending.lock().expect("pending").remove(id);
        self.rejected.fetch_add(1, Relaxed);
        *self
            .codes
            .lock()
            .expect("codes")
            .entry(code.to_string())
            .or_default() += 1;
    }

    fn accept(&self, id: &[u8; 32]) {
        self.accepted.fetch_add(1, Relaxed);
        let sent_at = self.pending.lock().expect("pending").get(id).map(|p| p.2);
        if let Some(at) = sent_at {
            self.accepted_ms
                .lock()
                .expect("accepted latencies")
                .push(at.elapsed().as_secs_f64() * 1000.0);
        }
    }

    fn commit(&self, id: &[u8; 32]) {
        if let Some((_, _, at)) = self.pending.lock().expect("pending").remove(id) {
            self.committed.fetch_add(1, Relaxed);
            *self.last_commit.lock().expect("last commit") = Some(Instant::now());
            let mut sample = self.sample.lock().expect("sample");
            if sample.len() < REPORT_SAMPLE_IDS {
                sample.push(*id);
            }
            self.latencies_ms
                .lock()
                .expect("latencies")
                .push(at.elapsed().as_secs_f64() * 1000.0);
        }
    }

    /// Percentile `p` of publish-to-committed latency.
    fn percentile(&self, p: f64) -> Option<f64> {
        percentile(&self.latencies_ms.lock().expect("latencies"), p)
    }

    /// Percentile `p` of publish-to-accepted latency.
    fn accepted_percentile(&self, p: f64) -> Option<f64> {
        percentile(&self.accepted_ms.lock().expect("accepted latencies"), p)
    }

    fn line(&self) -> String {
        let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.0} ms"));
        format!(
            "sent {}  accepted {} (p50 {})  committed {}  rejected {}  latency p50 {}  p99 {}",
            self.sent.load(Relaxed),
            self.accepted.load(Relaxed),
            ms(self.accepted_percentile(0.5)),
            self.committed.load(Relaxed),
            self.rejected.load(Relaxed),
            ms(self.percentile(0.5)),
            ms(self.percentile(0.99))
        )
    }
}

/// Percentile `p` (0 to 1) of `v`, the nearest rank; `None` if `v` is empty.
pub(crate) fn percentile(v: &[f64], p: f64) -> Option<f64> {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    (!v.is_empty()).then(|| v[((v.len() - 1) as f64 * p).round() as usize])
}

/// Readings signed ahead of time, with their seqs, in sending order.
type Presigned = VecDeque<(u64, Vec<u8>)>;

/// How a simulated device signs. P-256 readings are signed with ring (random nonces), about
/// ten times faster here than the deterministic RustCrypto signer of [SecretKey], so that the
/// load generator leaves the cores it shares to the validators; readings accept either.
enum DeviceSigner {
    Key(SecretKey),
    Ring(ring::signature::EcdsaKeyPair),
}

impl DeviceSigner {
    fn new(key: SecretKey) -> anyhow::Result<Self> {
        let PublicKey::P256(public) = key.public_key() else {
            return Ok(Self::Key(key));
        };
        let pair = ring::signature::EcdsaKeyPair::from_private_key_and_public_key(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &key.to_bytes(),
            public.uncompressed(),
            &ring::rand::SystemRandom::new(),
        )
        .map_err(|e| anyhow!("P-256 key for ring: {e}"))?;
        Ok(Self::Ring(pair))
    }

    fn algorithm(&self) -> Algorithm {
        match self {
            Self::Key(k) => k.algorithm(),
            Self::Ring(_) => Algorithm::P256,
        }
    }

    fn sign(&self, msg: &[u8]) -> Signature {
        match self {
            Self::Key(k) => k.sign(msg),
            Self::Ring(pair) => {
                let sig = pair
                    .sign(&ring::rand::SystemRandom::new(), msg)
                    .expect("ring signs with the system's randomness");
                Signature(
                    sig.as_ref()
                        .try_into()
                        .expect("a fixed P-256 signature is 64 bytes"),
                )
            }
        }
    }
}

/// One simulated device: its id, key and the state of its sensors.
struct Device {
    id: DeviceId,
    key: DeviceSigner,
    seq: u64,
    energy_kwh: f64,
    lat: f64,
    lon: f64,
}

impl Device {
    /// The next reading: sensors in turn, values drifting like real ones.
    fn next_reading(&mut self, index: usize) -> Vec<u8> {
        self.seq += 1;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let t = (now * 1000.0).round() / 1000.0;
        let wave = ((self.seq as f64) / 20.0 + index as f64).sin();
        let num = |name: &str, unit: &str, v: f64| NewRecord {
            name: name.into(),
            time: t,
            unit: Some(unit.into()),
            value: SenmlValue::Number((v * 100.0).round() / 100.0),
        };
        let records = match self.seq % 3 {
            0 => vec![
                num("temperature", "Cel", 4.0 + 1.5 * wave),
                num("humidity", "%RH", 55.0 + 10.0 * wave),
            ],
            1 => {
                self.energy_kwh += 0.01 + 0.005 * wave.abs();
                vec![num("energy", "kWh", self.energy_kwh)]
            }
            _ => {
                self.lat += 0.0001 * wave;
                self.lon += 0.0001;
                vec![num("lat", "lat", self.lat), num("lon", "lon", self.lon)]
            }
        };
        sign_payload_with(
            self.key.algorithm(),
            &self.id,
            self.seq,
            senml_pack(&records),
            |tbs| self.key.sign(tbs),
        )
    }
}

/// Registers the devices and waits until every registration is final.
fn register(args: &SimArgs) -> anyhow::Result<Vec<Device>> {
    let client = Client::new(&args.node);
    let tag = hex::encode(
        &sha256(&rand_core::RngCore::next_u64(&mut rand_core::OsRng).to_be_bytes()).0[..3],
    );
    let operator = args.key.public_key().account_id();
    let first_nonce = client.account(&operator)?["nonce"].as_u64().unwrap_or(0);
    let mut devices = Vec::with_capacity(args.devices);
    let mut txs = Vec::new();
    for i in 0..args.devices {
        let alg = match args.alg {
            Some(a) => a,
            None if i % 2 == 0 => Algorithm::Ed25519,
            None => Algorithm::P256,
        };
        let key = SecretKey::generate(alg);
        let id: DeviceId = format!("sim-{tag}-{i}").parse()?;
        let body = TxBody::DeviceRegister {
            device: id.clone(),
            key: key.public_key(),
            meta: DeviceMeta::new([("source".to_string(), "verity sim".to_string())].into())?,
        };
        let tx = client.sign(&args.key, body, Some(first_nonce + i as u64))?;
        client.submit(&tx)?;
        txs.push(tx);
        devices.push(Device {
            id,
            key: DeviceSigner::new(key)?,
            seq: 0,
            energy_kwh: 1000.0 + i as f64,
            lat: 31.23 + (i as f64) * 0.001,
            lon: 121.47,
        });
        // Stay inside the node's per-account window of pending transactions.
        if txs.len() >= 200 {
            for tx in txs.drain(..) {
                client.wait_final(&tx.id(), Duration::from_secs(120))?;
            }
        }
    }
    for tx in &txs {
        client.wait_final(&tx.id(), Duration::from_secs(120))?;
    }
    if !args.quiet {
        eprintln!("registered {} devices (sim-{tag}-*)", devices.len());
    }
    Ok(devices)
}

/// Runs the simulation, printing progress and a summary.
pub fn run(args: SimArgs) -> anyhow::Result<()> {
    measure(args).map(|_| ())
}

/// Runs the simulation and returns what it measured.
pub fn measure(args: SimArgs) -> anyhow::Result<SimReport> {
    if args.devices == 0 || args.devices > MAX_SIM_DEVICES {
        bail!("--devices must be 1..={MAX_SIM_DEVICES}");
    }
    if !(args.rate > 0.0 && args.rate <= MAX_SIM_RATE) {
        bail!("--rate must be more than 0 and at most {MAX_SIM_RATE}");
    }
    if !(args.duration > 0.0 && args.duration.is_finite()) {
        bail!("--duration must be a positive number of seconds");
    }
    if args.mqtt.is_empty() {
        bail!("--mqtt needs at least one broker address");
    }
    if !matches!(args.transport.as_str(), "mqtt" | "http") {
        bail!("--transport must be mqtt or http");
    }
    let devices = register(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(stream(args, devices))
}

async fn stream(args: SimArgs, devices: Vec<Device>) -> anyhow::Result<SimReport> {
    let stats = Arc::new(Stats::default());
    let quiet = args.quiet;
    let interval = Duration::from_secs_f64(devices.len() as f64 / args.rate);
    let per_device = (args.duration / interval.as_secs_f64()).ceil() as usize + 1;
    let mut devices: Vec<(Device, Presigned)> = devices
        .into_iter()
        .enumerate()
        .map(|(index, mut device)| {
            let signed = if args.presign {
                (0..per_device)
                    .map(|_| {
                        let bytes = device.next_reading(index);
                        (device.seq, bytes)
                    })
                    .collect()
            } else {
                VecDeque::new()
            };
            (device, signed)
        })
        .collect();
    let ids: Vec<DeviceId> = devices.iter().map(|(d, _)| d.id.clone()).collect();
    let mut mqtt_clients = Vec::new();
    if args.transport == "mqtt" {
        for (i, (device, _)) in devices.iter().enumerate() {
            let broker = args.mqtt[i % args.mqtt.len()];
            mqtt_clients.push(Some(connect(broker, &device.id, stats.clone()).await?));
        }
    } else {
        mqtt_clients.resize_with(devices.len(), || None);
    }
    let cpu_at_start = crate::cpu::Sample::take(&args.watch_cpu);
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(args.duration);
    let mut senders = Vec::new();
    let http = reqwest::Client::new();
    for (index, ((mut device, mut signed), mqtt)) in devices.drain(..).zip(mqtt_clients).enumerate()
    {
        let stats = stats.clone();
        let (http, node) = (http.clone(), args.node.clone());
        // Spread the devices' start times over one interval.
        let offset = interval.mul_f64(index as f64 / ids.len() as f64);
        senders.push(tokio::spawn(async move {
            tokio::time::sleep(offset).await;
            let mut tick = tokio::time::interval(interval);
            // A device late for its ticks (the machine busy) sends what it owes at once, so
            // the rate offered is the rate asked for as long as this process keeps up; skipping
            // them offered about a fifth less than asked at 20,000/s here.
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            while Instant::now() < deadline {
                tick.tick().await;
                let (seq, bytes) = match signed.pop_front() {
                    Some(r) => r,
                    None => {
                        let bytes = device.next_reading(index);
                        (device.seq, bytes)
                    }
                };
                let id = sha256(&bytes).0;
                stats
                    .pending
                    .lock()
                    .expect("pending")
                    .insert(id, (index, seq, Instant::now()));
                stats.sent.fetch_add(1, Relaxed);
                match &mqtt {
                    Some(client) => {
                        let topic = format!("verity/v1/readings/{}", device.id);
                        if client
                            .publish(topic, rumqttc::QoS::AtLeastOnce, false, bytes)
                            .await
                            .is_err()
                        {
                            stats.reject(&id, "mqtt_unavailable");
                        }
                    }
                    None => post(&http, &node, bytes, &id, &stats).await,
                }
            }
        }));
    }
    if args.transport == "http" {
        tokio::spawn(poll_commits(args.node.clone(), ids.clone(), stats.clone()));
    }
    let mut progress = tokio::time::interval(Duration::from_secs(1));
    while Instant::now() < deadline {
        progress.tick().await;
        if !quiet {
            eprint!("\r{}    ", stats.line());
        }
    }
    for s in senders {
        let _ = s.await;
    }
    let streamed_s = started.elapsed().as_secs_f64();
    // Let what was accepted commit.
    let settle = Instant::now() + Duration::from_secs(30);
    while Instant::now() < settle && !stats.pending.lock().expect("pending").is_empty() {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if !quiet {
            eprint!("\r{}    ", stats.line());
        }
    }
    let codes = stats.codes.lock().expect("codes").clone();
    let sent = stats.sent.load(Relaxed);
    let committed = stats.committed.load(Relaxed);
    let busy_s = stats
        .last_commit
        .lock()
        .expect("last commit")
        .map_or(0.0, |t| t.duration_since(started).as_secs_f64());
    let sent_per_s = sent as f64 / streamed_s;
    let report = SimReport {
        sent,
        sent_per_s,
        committed,
        rejected: stats.rejected.load(Relaxed),
        committed_per_s: if busy_s > 0.0 {
            committed as f64 / busy_s
        } else {
            0.0
        },
        latency_p50_ms: stats.percentile(0.5),
        latency_p99_ms: stats.percentile(0.99),
        accepted_p50_ms: stats.accepted_percentile(0.5),
        accepted_p99_ms: stats.accepted_percentile(0.99),
        codes: codes.clone(),
        committed_ids: stats.sample.lock().expect("sample").clone(),
        streaming_started: Some(started),
        cpu_at_start: Some(cpu_at_start),
    };
    if quiet {
        return Ok(report);
    }
    eprintln!();
    println!("summary: {}", stats.line());
    println!(
        "  {} devices, {} over {:.0} s ({:.0} readings/s sent of {:.0} asked), {} not settled",
        ids.len(),
        args.transport,
        streamed_s,
        sent_per_s,
        args.rate,
        stats.pending.lock().expect("pending").len()
    );
    if sent_per_s < args.rate * 0.95 {
        println!("  this process sent less than asked: the machine could not run it faster");
    }
    for (code, n) in codes {
        println!("  rejected {code}: {n}");
    }
    Ok(report)
}

/// Posts one reading over HTTP.
async fn post(http: &reqwest::Client, node: &str, bytes: Vec<u8>, id: &[u8; 32], stats: &Stats) {
    let resp = http
        .post(format!("{node}/v1/readings"))
        .header("content-type", "application/cose")
        .body(bytes)
        .send()
        .await;
    match resp {
        Ok(r) if r.status().as_u16() == 202 => stats.accept(id),
        Ok(r) => {
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            let code = body["error"]["code"]
                .as_str()
                .unwrap_or("http_error")
                .to_string();
            stats.reject(id, &code);
        }
        Err(_) => stats.reject(id, "http_unavailable"),
    }
}

/// Over HTTP: marks readings committed once their device's committed seq reaches them.
async fn poll_commits(node: String, ids: Vec<DeviceId>, stats: Arc<Stats>) {
    let http = reqwest::Client::new();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        for (index, id) in ids.iter().enumerate() {
            let Ok(resp) = http.get(format!("{node}/v1/devices/{id}")).send().await else {
                continue;
            };
            let Ok(v) = resp.json::<serde_json::Value>().await else {
                continue;
            };
            let Some(last) = v["last_seq"].as_u64() else {
                continue;
            };
            let done: Vec<[u8; 32]> = stats
                .pending
                .lock()
                .expect("pending")
                .iter()
                .filter(|(_, (d, seq, _))| *d == index && *seq <= last)
                .map(|(k, _)| *k)
                .collect();
            for k in done {
                stats.commit(&k);
            }
        }
    }
}

/// The fields of a receipt (PROTOCOL.md §4) the simulator reads; the others are skipped
/// unparsed, which keeps the generator's share of the machine small at high rates.
#[derive(serde::Deserialize)]
struct Receipt<'a> {
    #[serde(borrow)]
    reading_id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    status: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    code: Option<std::borrow::Cow<'a, str>>,
}

/// Connects a device to the broker and follows its receipts.
async fn connect(
    broker: SocketAddr,
    device: &DeviceId,
    stats: Arc<Stats>,
) -> anyhow::Result<rumqttc::AsyncClient> {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let mut options = MqttOptions::new(
        format!("sim-{device}"),
        broker.ip().to_string(),
        broker.port(),
    );
    options.set_keep_alive(Duration::from_secs(30));
    options.set_max_packet_size(64 * 1024, 64 * 1024);
    let (client, mut events) = AsyncClient::new(options, 1000);
    client
        .subscribe(format!("verity/v1/receipts/{device}"), QoS::AtLeastOnce)
        .await
        .context("subscribing to receipts")?;
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    let mut ready_tx = Some(ready_tx);
    tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(tx) = ready_tx.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let Ok(receipt) = serde_json::from_slice::<Receipt>(&p.payload) else {
                        continue;
                    };
                    let Some(id) = verity_types::hash::parse_hash(&receipt.reading_id) else {
                        continue;
                    };
                    match &*receipt.status {
                        "accepted" => stats.accept(&id.0),
                        "committed" => stats.commit(&id.0),
                        "rejected" => {
                            stats.reject(&id.0, receipt.code.as_deref().unwrap_or("rejected"))
                        }
                        _ => {}
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), ready)
        .await
        .map_err(|_| anyhow!("the MQTT broker at {broker} did not confirm the subscription"))?
        .ok();
    Ok(client)
}
