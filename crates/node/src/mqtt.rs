//! The MQTT transport of PROTOCOL.md §4: readings arrive on `verity/v1/readings/{device_id}`,
//! receipts leave on `verity/v1/receipts/{device_id}`.
//!
//! Two modes behind one pipeline: an embedded broker (rumqttd, MQTT 3.1.1 on `listen` and
//! MQTT 5 on `listen_v5`) that the node reads through an in-process link, or an existing broker
//! (Mosquitto, for example) that the node subscribes to with rumqttc. Each reading goes through
//! [Ingest]; the device gets an `accepted` or `rejected` receipt at once, then `committed` (with
//! the height) or `rejected` when its fate is decided in a block. Receipts are published only
//! for readings that arrived over MQTT at this node, so several nodes sharing one broker do not
//! repeat each other.

use crate::{
    api::Ctx,
    chain::{Chain, ReadingEvent},
    config::{MqttMode, MqttSection},
    ingest::Ingest,
    recent::Recent,
};
use anyhow::{Context as _, anyhow};
use bytes::Bytes;
use commonware_runtime::telemetry::metrics::Counter;
use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::sync::mpsc;
use tracing::{error, info, warn};
use verity_types::{DeviceId, Hash, RejectCode, hash::sha256};

/// Topic prefix of readings.
pub const READINGS_PREFIX: &str = "verity/v1/readings/";
/// Topic filter the node subscribes to.
pub const READINGS_FILTER: &str = "verity/v1/readings/+";
/// Topic prefix of receipts.
pub const RECEIPTS_PREFIX: &str = "verity/v1/receipts/";
/// Receipts waiting to be published, at most (older ones are dropped when full).
pub const RECEIPT_QUEUE: usize = 65_536;
/// A send to the embedded broker's queue of events that waits this long means the broker is
/// congested: the receipts waiting then go to it together ([publish_receipts]).
pub const RECEIPT_SEND_CONGESTED: Duration = Duration::from_millis(20);
/// Published readings waiting, in publish order, for their first receipt (`accepted` or a
/// refusal), at most: twice the ingest queue ([crate::ingest::INGEST_QUEUE]), so that when
/// readings come faster than ingest checks them, the full ingest queue refuses them
/// (`pool_full`) and those refusals still go out in order. Beyond this bound a reading is
/// refused at once, ahead of the answers still owed. The node never stops reading the broker:
/// a broker's buffer is bounded too (the embedded broker's log of readings, an external
/// broker's queue for the node's session), and what overflows it would be lost with no
/// receipt at all.
pub const PENDING_ANSWERS: usize = 2 * crate::ingest::INGEST_QUEUE;
/// Readings received over MQTT that still owe a receipt (from their publish until their final
/// receipt), at most; each is tracked for at least half as many newer readings
/// ([crate::recent::Recent]).
pub const TRACKED_READINGS: usize = 1 << 20;
/// Largest MQTT packet accepted: a 16 KiB reading plus topic and framing.
pub const MAX_PACKET_BYTES: usize = 16 * 1024 + 1024;
/// Embedded broker: longest a new client connection may take to send its MQTT CONNECT before it
/// is closed.
pub const CONNECT_TIMEOUT_MS: u16 = 10_000;
/// Size of each of the 4 in-memory segments of the embedded broker's log of published
/// readings. The node's own subscription drains it as readings arrive, never waiting on ingest
/// (readings it cannot queue are refused with `pool_full`, see [PENDING_ANSWERS]), so the log
/// only spans the moments between a publish and that read.
pub const READINGS_LOG_SEGMENT_BYTES: usize = 4 * 1024 * 1024;
/// Size of each of the 2 segments of the log that the embedded broker keeps for each device's
/// receipt topic (up to about 100 receipts each; a device reads its receipts as they come, so
/// this bounds the broker's memory per device to 32 KiB). The broker keeps a topic's log, once
/// a client subscribed to it, until it stops: so per device that subscribed since the node
/// started (docs/configuration.md, "Known limit of the embedded broker").
pub const RECEIPT_LOG_SEGMENT_BYTES: usize = 16 * 1024;
/// Most log entries the embedded broker hands an at-most-once subscriber each time it serves
/// it, the node's own link among them. The broker serves its connections in turn, and with
/// thousands of devices connected the node's turn comes seldom: each turn must be able to take
/// everything logged since the last one, or the log overwrites readings the node has not read
/// (with 4,096, 5,000 devices offering 12,000 readings/s lost 9,474; with this, none). A turn
/// is also bounded by what the log holds (4 × [READINGS_LOG_SEGMENT_BYTES]), which is what a
/// remote subscriber that stops reading can hold of the broker's memory (docs/security.md).
pub const SUBSCRIBER_READ_BATCH: u64 = 1 << 17;

/// A receipt: PROTOCOL.md §4's JSON (written by a derived serializer: one is sent per reading
/// accepted and one per reading decided, so it is on the hot path).
fn receipt(id: &Hash, seq: Option<u64>, outcome: Result<Option<u64>, RejectCode>) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Receipt<'a> {
        reading_id: &'a str,
        seq: Option<u64>,
        status: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        code: Option<&'static str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        height: Option<u64>,
    }
    let reading_id = verity_types::hash::hash_hex(id);
    let (status, code, height) = match outcome {
        Ok(None) => ("accepted", None, None),
        Ok(Some(h)) => ("committed", None, Some(h)),
        Err(c) => ("rejected", Some(c.code()), None),
    };
    serde_json::to_vec(&Receipt {
        reading_id: &reading_id,
        seq,
        status,
        code,
        height,
    })
    .expect("JSON encodes")
}

/// Where a reading that came in over MQTT here stands with its receipts, from its publish
/// until its final receipt is sent.
enum Owed {
    /// Ingest has not answered yet: the first receipt is owed.
    Answer,
    /// Accepted and announced: the final receipt is owed.
    Final(DeviceId),
    /// Its block decided before the `accepted` receipt went out (ingest admitted it to the
    /// pool, and the reading was committed, before its answer came round in publish order):
    /// both receipts go out together, `accepted` first. The outcome: its seq, and the height
    /// it was committed at or why it was rejected.
    Decided(u64, Result<u64, RejectCode>),
}

/// Readings that came in over MQTT here and still owe a receipt, by reading id. A reading is
/// tracked from its publish, before ingest can admit it, so that a block deciding it quickly
/// always finds it.
type Tracked = Recent<Hash, Owed>;

/// The queue of receipts to publish: topic and body.
#[derive(Clone)]
struct Receipts {
    queue: mpsc::Sender<(String, Vec<u8>)>,
    /// Receipts dropped because the queue was full, since start (the node's metric
    /// `chain_mqtt_receipts_dropped_total`).
    dropped: Counter,
}

impl Receipts {
    fn new(queue: mpsc::Sender<(String, Vec<u8>)>, dropped: Counter) -> Self {
        Self { queue, dropped }
    }

    /// Queues a receipt for `device`; drops it if [RECEIPT_QUEUE] receipts are already
    /// waiting, counts it, and logs the count of drops at 1, 2, 4, 8, … of them. (Once the
    /// broker is gone, receipts are dropped uncounted: the publisher logged that.)
    fn send(&self, device: &DeviceId, body: Vec<u8>) {
        let topic = format!("{RECEIPTS_PREFIX}{device}");
        if let Err(mpsc::error::TrySendError::Full(_)) = self.queue.try_send((topic, body)) {
            let dropped = self.dropped.inc() + 1;
            if dropped.is_power_of_two() {
                warn!(
                    dropped,
                    "MQTT receipt queue full: receipts dropped since start"
                );
            }
        }
    }
}

/// What both broker modes feed: ingest, the readings owed a final receipt, and the queue of
/// receipts to publish.
#[derive(Clone)]
struct Pipeline {
    ingest: Ingest,
    tracked: Arc<Mutex<Tracked>>,
    receipts: Receipts,
    /// Answers still to come, in the order their messages were published.
    pending: mpsc::Sender<PendingAnswer>,
}

/// A published reading waiting for ingest's answer: its id, the device its topic names, and
/// the answer.
type PendingAnswer = (
    Hash,
    DeviceId,
    Pin<
        Box<dyn Future<Output = Result<Arc<verity_types::Reading>, crate::ingest::Refused>> + Send>,
    >,
);

impl Pipeline {
    /// Handles one published message without waiting: queues it for ingest, in arrival order,
    /// and its first receipt is sent by [answer_in_order] once the answer comes. When
    /// [PENDING_ANSWERS] answers are already owed, the reading is refused (`pool_full`) at
    /// once instead.
    fn publish(&self, topic: Bytes, payload: Bytes) {
        let Some(device) = topic.strip_prefix(READINGS_PREFIX.as_bytes()) else {
            return;
        };
        // A topic that names no valid device id has no receipt topic either: nothing to answer.
        let Ok(device) = DeviceId::from_bytes(device) else {
            return;
        };
        let id = sha256(&payload);
        let Ok(slot) = self.pending.try_reserve() else {
            self.answer(&id, device, Err(self.ingest.busy()));
            return;
        };
        {
            let mut tracked = self.tracked.lock().expect("tracked lock");
            // A copy of a reading already owed keeps its entry (it will be refused as a replay).
            if tracked.get(&id).is_none() {
                tracked.insert(id, Owed::Answer);
            }
        }
        let answer = self.ingest.enqueue(payload.to_vec(), Some(device.clone()));
        let answer: Pin<Box<dyn Future<Output = _> + Send>> = match answer {
            Ok(pending) => Box::pin(pending),
            Err(refused) => Box::pin(std::future::ready(Err(refused))),
        };
        slot.send((id, device, answer));
    }

    /// Sends the first receipt of reading `id` published on `device`'s topic, and its final
    /// receipt too if its block has decided already.
    fn answer(
        &self,
        id: &Hash,
        device: DeviceId,
        answer: Result<Arc<verity_types::Reading>, crate::ingest::Refused>,
    ) {
        let seq = match &answer {
            Ok(reading) => Some(reading.seq()),
            Err(refused) => refused.seq,
        };
        let decided = {
            let mut tracked = self.tracked.lock().expect("tracked lock");
            match (&answer, tracked.remove(id)) {
                (Ok(_), Some(Owed::Decided(seq, outcome))) => Some((seq, outcome)),
                // Owed its first receipt, or no longer tracked: a refused copy published just
                // before it took the entry away, or it was forgotten.
                (Ok(_), _) => {
                    tracked.insert(*id, Owed::Final(device.clone()));
                    None
                }
                // A refused copy of a reading whose other copy is accepted and owed its final
                // receipt: that one stays tracked.
                (Err(_), Some(owed @ (Owed::Final(_) | Owed::Decided(..)))) => {
                    tracked.insert(*id, owed);
                    None
                }
                _ => None,
            }
        };
        let first = match answer {
            Ok(_) => receipt(id, seq, Ok(None)),
            Err(refused) => receipt(id, seq, Err(refused.error.code)),
        };
        self.receipts.send(&device, first);
        if let Some((seq, outcome)) = decided {
            self.receipts
                .send(&device, receipt(id, Some(seq), outcome.map(Some)));
        }
    }

    /// Sends the final receipts of the readings in `batch` that came in over MQTT here; a
    /// reading whose first receipt has not gone out yet gets both once it does.
    fn decided(&self, batch: &[ReadingEvent]) {
        let owed: Vec<(&ReadingEvent, DeviceId)> = {
            let mut tracked = self.tracked.lock().expect("tracked lock");
            batch
                .iter()
                .filter_map(|e| match tracked.remove(&e.reading_id)? {
                    Owed::Final(device) => Some((e, device)),
                    Owed::Answer => {
                        tracked.insert(e.reading_id, Owed::Decided(e.seq, e.outcome));
                        None
                    }
                    decided @ Owed::Decided(..) => {
                        tracked.insert(e.reading_id, decided);
                        None
                    }
                })
                .collect()
        };
        for (e, device) in owed {
            let body = receipt(&e.reading_id, Some(e.seq), e.outcome.map(Some));
            self.receipts.send(&device, body);
        }
    }
}

/// Sends the first receipts (`accepted` or refused) in the order the readings were published,
/// so that a device reads its answers in the order it sent: ingest answers a refusal found
/// before the signature check sooner than an acceptance, and answers awaited on separate tasks
/// could overtake one another.
async fn answer_in_order(pipeline: Pipeline, mut pending: mpsc::Receiver<PendingAnswer>) {
    while let Some((id, device, answer)) = pending.recv().await {
        let answer = answer.await;
        pipeline.answer(&id, device, answer);
    }
}

/// Publishes the final receipts of readings that came in over MQTT here.
async fn forward_events(chain: Arc<Chain<Ctx>>, pipeline: Pipeline) {
    let mut events = chain.reading_events();
    loop {
        match events.recv().await {
            Ok(batch) => pipeline.decided(&batch),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                warn!(
                    missed_batches = n,
                    "MQTT receipts fell behind; some were not sent"
                );
            }
            Err(_) => return,
        }
    }
}

/// Starts the MQTT transport configured in `section`.
pub fn start(chain: Arc<Chain<Ctx>>, ingest: Ingest, section: &MqttSection) -> anyhow::Result<()> {
    let (receipts, receipts_rx) = mpsc::channel(RECEIPT_QUEUE);
    let receipts = Receipts::new(receipts, chain.receipts_dropped_metric());
    let (pending, pending_rx) = mpsc::channel(PENDING_ANSWERS);
    let pipeline = Pipeline {
        ingest,
        tracked: Arc::new(Mutex::new(Recent::new(TRACKED_READINGS))),
        receipts,
        pending,
    };
    match section.mode {
        MqttMode::Off => return Ok(()),
        MqttMode::Embedded => embedded(section, pipeline.clone(), receipts_rx, chain.clone())?,
        MqttMode::External => external(section, pipeline.clone(), receipts_rx)?,
    }
    tokio::spawn(answer_in_order(pipeline.clone(), pending_rx));
    tokio::spawn(forward_events(chain, pipeline));
    Ok(())
}

/// Counts the readings the embedded broker's log lost before the node's link read them. The
/// log of the readings filter is created by the node's subscription, before the broker
/// listens, and numbers what it holds consecutively from 0; the link reads in that order. So a
/// jump in the numbers of the readings forwarded is as many readings overwritten (the log was
/// full: the node's link fell behind the devices) or expired (an MQTT 5 message expiry).
#[derive(Default)]
struct LogGaps {
    next: u64,
}

impl LogGaps {
    /// Readings skipped before the one the log numbers `offset`.
    fn before(&mut self, offset: u64) -> u64 {
        let lost = offset.saturating_sub(self.next);
        self.next = self.next.max(offset + 1);
        lost
    }
}

/// Reads the node's link to the embedded broker until it closes: hands each forwarded message
/// to `publish`, and each run of readings the broker's log lost before the link read them to
/// `lost` (with the total so far, [LogGaps]).
async fn read_link(
    mut link_rx: rumqttd::local::LinkRx,
    mut publish: impl FnMut(Bytes, Bytes),
    mut lost: impl FnMut(u64, u64),
) {
    use rumqttd::Notification;
    let mut gaps = LogGaps::default();
    let mut lost_total = 0u64;
    loop {
        match link_rx.next().await {
            Ok(Some(Notification::Forward(f))) => {
                // Retained messages, sent once on subscribing, have no place in the log.
                if let Some((_, offset)) = f.cursor {
                    let skipped = gaps.before(offset);
                    if skipped > 0 {
                        lost_total += skipped;
                        lost(skipped, lost_total);
                    }
                }
                publish(f.publish.topic, f.publish.payload);
            }
            // The router pauses a link whose buffer filled; ask for more.
            Ok(Some(Notification::Unschedule)) => {
                if link_rx.wake().await.is_err() {
                    break;
                }
            }
            Ok(_) => {}
            Err(e) => {
                warn!(error = %e, "embedded broker link closed");
                break;
            }
        }
    }
}

/// The embedded broker's router: the node's log of readings ([READINGS_LOG_SEGMENT_BYTES]),
/// a small log per device's receipt topic ([RECEIPT_LOG_SEGMENT_BYTES]) and what each turn
/// hands a subscriber ([SUBSCRIBER_READ_BATCH]).
fn router_config(max_connections: usize) -> rumqttd::RouterConfig {
    // Each receipt topic a device subscribes to gets a small log of its own.
    let custom = HashMap::from([(
        format!("{RECEIPTS_PREFIX}+"),
        rumqttd::SegmentConfig {
            max_segment_size: RECEIPT_LOG_SEGMENT_BYTES,
            max_segment_count: 2,
        },
    )]);
    rumqttd::RouterConfig {
        max_connections,
        max_outgoing_packet_count: SUBSCRIBER_READ_BATCH,
        max_segment_size: READINGS_LOG_SEGMENT_BYTES,
        max_segment_count: 4,
        custom_segment: Some(custom),
        initialized_filters: None,
        ..Default::default()
    }
}

/// Publishes the receipts queued on `receipts_rx` through the node's link to the embedded
/// broker, in order, until either side closes, and returns how many events it sent the broker.
/// Each receipt normally goes with an event of its own, as the router paces them: it serves
/// connections between rounds of events (up to 500 a round), so a block's worth of receipts to
/// one device does not reach that device's small log all at once ([RECEIPT_LOG_SEGMENT_BYTES]).
/// But with thousands of devices connected, the router's queue of events is full and a send
/// waits (seconds, measured) for a place, while receipts pile up behind it. The router takes
/// everything queued on the link for each event, so after a send that waited at least
/// `congested_after` ([RECEIPT_SEND_CONGESTED]), every receipt waiting goes on the link
/// together, announced by one event.
fn publish_receipts(
    mut link_tx: rumqttd::local::LinkTx,
    mut receipts_rx: mpsc::Receiver<(String, Vec<u8>)>,
    congested_after: Duration,
) -> u64 {
    use rumqttd::protocol::{Packet, Publish};
    let mut congested = false;
    let mut events = 0;
    while let Some(first) = receipts_rx.blocking_recv() {
        let mut last = first;
        if congested {
            // Released before the send below, which queues on the same buffer.
            let mut buffer = link_tx.buffer();
            while let Ok(next) = receipts_rx.try_recv() {
                let (topic, body) = std::mem::replace(&mut last, next);
                buffer.push_back(Packet::Publish(
                    Publish::new(Bytes::from(topic), Bytes::from(body), false),
                    None,
                ));
            }
        }
        // Queues the last one and sends the event that announces them all.
        let start = std::time::Instant::now();
        if let Err(e) = link_tx.publish(last.0, last.1) {
            warn!(error = %e, "embedded broker closed: MQTT receipts are no longer sent");
            break;
        }
        events += 1;
        congested = start.elapsed() >= congested_after;
    }
    events
}

fn embedded(
    section: &MqttSection,
    pipeline: Pipeline,
    receipts_rx: mpsc::Receiver<(String, Vec<u8>)>,
    chain: Arc<Chain<Ctx>>,
) -> anyhow::Result<()> {
    use rumqttd::{
        Config, ConnectionSettings, LinkType, Router, Server, ServerSettings,
        local::LinkBuilder,
        protocol::{v4::V4, v5::V5},
    };
    let connections = ConnectionSettings {
        connection_timeout_ms: CONNECT_TIMEOUT_MS,
        max_payload_size: MAX_PACKET_BYTES,
        max_inflight_count: 100,
        auth: None,
        external_auth: None,
        dynamic_filters: false,
    };
    let server = |name: &str, listen| ServerSettings {
        name: name.to_string(),
        listen,
        tls: None,
        next_connection_delay_ms: 0,
        connections: connections.clone(),
    };
    let config = Config {
        router: router_config(section.max_connections),
        ..Default::default()
    };
    // Fail now, with the address, if a port is taken (rumqttd would only log it).
    let listen = section
        .listen
        .ok_or_else(|| anyhow!("[mqtt] mode = \"embedded\" needs listen = \"IP:port\""))?;
    let mut listeners = vec![("v4", listen)];
    if let Some(v5) = section.listen_v5 {
        listeners.push(("v5", v5));
    }
    for (name, addr) in &listeners {
        std::net::TcpListener::bind(addr)
            .with_context(|| format!("cannot listen for MQTT ({name}) on {addr}"))?;
    }
    let router = Router::new(0, config.router).spawn();
    let (mut link_tx, link_rx, _) = LinkBuilder::new("verity-node", router.clone())
        .build()
        .map_err(|e| anyhow!("cannot link to the embedded broker: {e}"))?;
    link_tx
        .subscribe(READINGS_FILTER)
        .map_err(|e| anyhow!("cannot subscribe to readings: {e}"))?;
    for (name, addr) in listeners {
        let settings = server(name, addr);
        let router = router.clone();
        tokio::spawn(async move {
            let result = if name == "v4" {
                Server::new(settings, router, V4)
                    .start(LinkType::Remote)
                    .await
            } else {
                Server::new(settings, router, V5)
                    .start(LinkType::Remote)
                    .await
            };
            if let Err(e) = result {
                warn!(error = ?e, listener = name, "MQTT listener stopped");
            }
        });
        info!(%addr, protocol = name, "embedded MQTT broker listening");
    }
    // Receipts: LinkTx calls may block, so it lives on a blocking thread.
    tokio::task::spawn_blocking(move || {
        publish_receipts(link_tx, receipts_rx, RECEIPT_SEND_CONGESTED);
    });
    tokio::spawn(read_link(
        link_rx,
        move |topic, payload| pipeline.publish(topic, payload),
        move |lost, lost_total| {
            chain.readings_overwritten(lost);
            error!(
                lost,
                lost_total,
                "the embedded MQTT broker overwrote published readings before this node read \
                 them: they are lost, with no receipt (the broker cannot keep up with this \
                 many devices at this rate; see docs/configuration.md)"
            );
        },
    ));
    Ok(())
}

fn external(
    section: &MqttSection,
    pipeline: Pipeline,
    mut receipts_rx: mpsc::Receiver<(String, Vec<u8>)>,
) -> anyhow::Result<()> {
    use rumqttc::{AsyncClient, ConnectionError, Event, MqttOptions, Packet, QoS};
    let broker = section
        .broker
        .ok_or_else(|| anyhow!("[mqtt] mode = \"external\" needs broker = \"IP:port\""))?;
    let mut options = MqttOptions::new(&section.client_id, broker.ip().to_string(), broker.port());
    options
        .set_keep_alive(Duration::from_secs(30))
        .set_clean_session(false)
        .set_max_packet_size(MAX_PACKET_BYTES + 1024, MAX_PACKET_BYTES + 1024)
        .set_inflight(1000);
    let (client, mut events) = AsyncClient::new(options, 10_000);
    let publisher = client.clone();
    tokio::spawn(async move {
        while let Some((topic, body)) = receipts_rx.recv().await {
            if publisher
                .publish(topic, QoS::AtMostOnce, false, body)
                .await
                .is_err()
            {
                break;
            }
        }
    });
    info!(%broker, "subscribing to readings on an external MQTT broker");
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    backoff = Duration::from_millis(100);
                    let _ = client.try_subscribe(READINGS_FILTER, QoS::AtLeastOnce);
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    pipeline.publish(Bytes::from(p.topic.into_bytes()), p.payload);
                }
                Ok(_) => {}
                Err(ConnectionError::RequestsDone) => break,
                Err(e) => {
                    warn!(error = %e, ?backoff, "external MQTT broker unreachable; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A router for the tests: `max_outgoing_packet_count` and logs of 2 segments of
    /// `segment_bytes` (no per-topic logs).
    fn test_router(max_outgoing: u64, segment_bytes: usize) -> rumqttd::Router {
        rumqttd::Router::new(
            0,
            rumqttd::RouterConfig {
                max_connections: 10,
                max_outgoing_packet_count: max_outgoing,
                max_segment_size: segment_bytes,
                max_segment_count: 2,
                ..Default::default()
            },
        )
    }

    /// What [read_link] handed on from a link: each message's topic and payload, and each run
    /// of readings reported lost with the total reported with it.
    #[derive(Clone, Default)]
    struct Followed {
        messages: Arc<Mutex<Vec<(Bytes, Bytes)>>>,
        lost: Arc<Mutex<Vec<(u64, u64)>>>,
    }

    impl Followed {
        /// Reads `link_rx` with [read_link] on a task of its own, recording what it hands on.
        fn start(link_rx: rumqttd::local::LinkRx) -> Self {
            let followed = Self::default();
            let (messages, lost) = (followed.messages.clone(), followed.lost.clone());
            tokio::spawn(read_link(
                link_rx,
                move |topic, payload| messages.lock().unwrap().push((topic, payload)),
                move |n, total| lost.lock().unwrap().push((n, total)),
            ));
            followed
        }

        /// Messages handed on and readings reported lost so far.
        fn counts(&self) -> (u64, u64) {
            let lost = self.lost.lock().unwrap().iter().map(|(n, _)| n).sum();
            (self.messages.lock().unwrap().len() as u64, lost)
        }

        /// Waits until `done(messages, lost)` holds, failing after 20 s with what came.
        async fn wait_until(&self, done: impl Fn(u64, u64) -> bool) {
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            loop {
                let (messages, lost) = self.counts();
                if done(messages, lost) {
                    return;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "after 20 s: {messages} handed on, {lost} lost"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    /// The node's link reads the embedded broker's log of readings in the order the log
    /// numbers them, so readings the log overwrote before the link read them show as a jump in
    /// those numbers: with the link not reading while 5,000 readings are published into a log
    /// of two 4-KiB segments, every reading is either handed on or counted lost, and most are
    /// lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn readings_the_brokers_log_overwrote_are_counted() {
        use rumqttd::local::LinkBuilder;
        const PUBLISHED: u64 = 5_000;
        let router = test_router(200, 4 * 1024).spawn();
        let (mut node_tx, node_rx, _) = LinkBuilder::new("node", router.clone()).build().unwrap();
        node_tx.subscribe(READINGS_FILTER).unwrap();
        let (mut device, _device_rx, _) = LinkBuilder::new("device", router).build().unwrap();
        tokio::task::spawn_blocking(move || {
            for i in 0..PUBLISHED {
                let topic = format!("{READINGS_PREFIX}d{}", i % 7);
                device.publish(topic, i.to_be_bytes().to_vec()).unwrap();
            }
        })
        .await
        .unwrap();
        let followed = Followed::start(node_rx);
        followed
            .wait_until(|read, lost| read + lost >= PUBLISHED)
            .await;
        let read: Vec<u64> = followed
            .messages
            .lock()
            .unwrap()
            .iter()
            .map(|(_, payload)| u64::from_be_bytes(payload.as_ref().try_into().unwrap()))
            .collect();
        let reports = followed.lost.lock().unwrap().clone();
        // Each report's total is the sum of the runs reported so far.
        let mut so_far = 0;
        for (n, total) in &reports {
            so_far += n;
            assert_eq!(so_far, *total);
        }
        let lost = so_far;
        assert_eq!(read.len() as u64 + lost, PUBLISHED);
        assert!(lost > PUBLISHED / 2, "only {lost} lost");
        assert!(!reports.is_empty());
        // What was read came in publish order, and the newest reading survived.
        assert!(read.windows(2).all(|w| w[0] < w[1]), "{read:?}");
        assert_eq!(read.last(), Some(&(PUBLISHED - 1)));
    }

    /// With thousands of devices connected, the embedded broker serves the node's link seldom,
    /// so each turn must take everything logged since the last one: 5,000 readings logged at
    /// once reach the node's link in a single turn, in order, before the broker pauses the link
    /// (with turns of 200, as configured before, 5,000 devices offering 12,000 readings/s lost
    /// a third of them).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_nodes_link_takes_a_whole_backlog_in_one_turn() {
        use rumqttd::{
            Notification, Router,
            local::LinkBuilder,
            protocol::{Packet, Publish},
        };
        const BACKLOG: u64 = 5_000;
        let router = Router::new(0, router_config(10)).spawn();
        let (mut node_tx, mut node_rx, _) =
            LinkBuilder::new("node", router.clone()).build().unwrap();
        node_tx.subscribe(READINGS_FILTER).unwrap();
        let (mut devices, _devices_rx, _) = LinkBuilder::new("devices", router).build().unwrap();
        let reading = |i: u64| {
            (
                Bytes::from(format!("{READINGS_PREFIX}d{}", i % 7)),
                Bytes::from(i.to_be_bytes().to_vec()),
            )
        };
        // Logged in one go: all but the last queued on the link, the last announcing them.
        for i in 0..BACKLOG - 1 {
            let (topic, payload) = reading(i);
            devices
                .buffer()
                .push_back(Packet::Publish(Publish::new(topic, payload, false), None));
        }
        let (topic, payload) = reading(BACKLOG - 1);
        devices.publish(topic, payload).unwrap();
        let mut turn = Vec::new();
        let outcome = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                match node_rx.next().await.unwrap() {
                    Some(Notification::Forward(f)) => turn.push((
                        f.cursor.map(|(_, offset)| offset),
                        u64::from_be_bytes(f.publish.payload.as_ref().try_into().unwrap()),
                    )),
                    Some(Notification::Unschedule) => return "paused",
                    _ => {}
                }
                if turn.len() as u64 == BACKLOG {
                    return "all read";
                }
            }
        })
        .await;
        assert_eq!(
            outcome,
            Ok("all read"),
            "{} of {BACKLOG} readings in the first turn",
            turn.len()
        );
        let expected: Vec<(Option<u64>, u64)> = (0..BACKLOG).map(|i| (Some(i), i)).collect();
        assert_eq!(turn, expected, "every reading, in log order");
    }

    /// Each device's subscription gets every one of its receipts, in the order the node queued
    /// them, whether the node hands them to the broker one by one or, once a send waited
    /// (`congested_after`), all those waiting together. Returns the events the publisher sent.
    /// (The subscription's log here holds every receipt: what a device's small log drops when
    /// a device is served too seldom is another matter, counted by nothing.)
    async fn receipts_arrive_in_order(congested_after: Duration) -> u64 {
        use rumqttd::local::LinkBuilder;
        let router = test_router(SUBSCRIBER_READ_BATCH, 16 * 1024 * 1024).spawn();
        let (mut device_tx, device_rx, _) =
            LinkBuilder::new("devices", router.clone()).build().unwrap();
        device_tx.subscribe(format!("{RECEIPTS_PREFIX}+")).unwrap();
        let (node_tx, _node_rx, _) = LinkBuilder::new("node", router).build().unwrap();
        // All queued before the publisher starts.
        let (queue, queue_rx) = mpsc::channel(RECEIPTS);
        for i in 0..RECEIPTS {
            queue
                .try_send((
                    format!("{RECEIPTS_PREFIX}d{}", i % 3),
                    i.to_string().into_bytes(),
                ))
                .unwrap();
        }
        drop(queue);
        let publisher = tokio::task::spawn_blocking(move || {
            publish_receipts(node_tx, queue_rx, congested_after)
        });
        let followed = Followed::start(device_rx);
        followed
            .wait_until(|got, lost| {
                assert_eq!(lost, 0, "receipts lost in the broker");
                got >= RECEIPTS as u64
            })
            .await;
        let events = publisher.await.unwrap();
        let got: Vec<(String, usize)> = followed
            .messages
            .lock()
            .unwrap()
            .iter()
            .map(|(topic, payload)| {
                let topic = String::from_utf8(topic.to_vec()).unwrap();
                (
                    topic,
                    std::str::from_utf8(payload).unwrap().parse().unwrap(),
                )
            })
            .collect();
        let expected: Vec<(String, usize)> = (0..RECEIPTS)
            .map(|i| (format!("{RECEIPTS_PREFIX}d{}", i % 3), i))
            .collect();
        assert_eq!(got, expected);
        events
    }

    /// Receipts queued for [receipts_arrive_in_order].
    const RECEIPTS: usize = 20_000;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn receipts_sent_one_by_one_all_arrive_in_order() {
        let events = receipts_arrive_in_order(Duration::MAX).await;
        assert_eq!(events, RECEIPTS as u64, "one event per receipt");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn receipts_sent_together_when_congested_all_arrive_in_order() {
        let events = receipts_arrive_in_order(Duration::ZERO).await;
        // The first alone, then (every send counting as congested) all the others together.
        assert_eq!(events, 2);
    }

    /// A pipeline whose ingest queue (`ingest_queue` readings) and answers owed (`pending`)
    /// the test drains itself, and what it sends.
    struct Harness {
        pipeline: Pipeline,
        jobs: mpsc::Receiver<crate::ingest::Job>,
        receipts_rx: mpsc::Receiver<(String, Vec<u8>)>,
        pending_rx: mpsc::Receiver<PendingAnswer>,
    }

    fn harness(ingest_queue: usize, pending: usize) -> Harness {
        let (ingest, jobs) = Ingest::unstarted(ingest_queue);
        let (receipts, receipts_rx) = mpsc::channel(1024);
        let (pending, pending_rx) = mpsc::channel(pending);
        Harness {
            pipeline: Pipeline {
                ingest,
                tracked: Arc::new(Mutex::new(Recent::new(64))),
                receipts: Receipts::new(receipts, Counter::detached(Default::default())),
                pending,
            },
            jobs,
            receipts_rx,
            pending_rx,
        }
    }

    /// Sends the first receipts of the next `n` readings owed one, as [answer_in_order] does.
    async fn answer_next(h: &Pipeline, pending_rx: &mut mpsc::Receiver<PendingAnswer>, n: usize) {
        for _ in 0..n {
            let (id, device, answer) = pending_rx.try_recv().expect("an answer owed");
            h.answer(&id, device, answer.await);
        }
    }

    /// When ingest falls behind, the node keeps reading the broker and refuses what it cannot
    /// queue, each with a receipt, instead of leaving readings in the broker's bounded buffer.
    #[tokio::test]
    async fn readings_beyond_what_the_node_can_queue_are_refused_at_once() {
        let Harness {
            pipeline,
            jobs: _jobs,
            mut receipts_rx,
            mut pending_rx,
        } = harness(4, 8);
        let device = "cold-1";
        let payloads: Vec<Bytes> = (0..100u32)
            .map(|i| Bytes::from(format!("reading {i}")))
            .collect();
        for p in &payloads {
            pipeline.publish(Bytes::from(format!("{READINGS_PREFIX}{device}")), p.clone());
        }
        // The first 8 wait in order for their answers: 4 in the ingest queue, 4 refused by the
        // full ingest queue (their refusals go out once the 4 before them are answered).
        for p in &payloads[..8] {
            let (id, d, _) = pending_rx.try_recv().expect("an answer owed");
            assert_eq!((id, d.as_str()), (sha256(p), device));
        }
        // Every other one got its refusal already, on its device's receipt topic, in order.
        for p in &payloads[8..] {
            let (topic, body) = receipts_rx.try_recv().expect("a refusal receipt");
            assert_eq!(topic, format!("{RECEIPTS_PREFIX}{device}"));
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(body["reading_id"], hex::encode(sha256(p).0));
            assert_eq!(body["status"], "rejected");
            assert_eq!(body["code"], "pool_full");
        }
        assert!(receipts_rx.try_recv().is_err(), "one receipt per reading");
    }

    fn signed_reading(key: &verity_types::SecretKey, device: &DeviceId, seq: u64) -> Vec<u8> {
        use verity_types::reading::{
            SenmlValue,
            sign::{NewRecord, sign_reading},
        };
        let record = NewRecord {
            name: "temp".into(),
            time: 1_700_000_000.0 + seq as f64,
            unit: Some("Cel".into()),
            value: SenmlValue::Number(4.5),
        };
        sign_reading(key, device, seq, &[record])
    }

    fn next_receipt(rx: &mut mpsc::Receiver<(String, Vec<u8>)>) -> serde_json::Value {
        let (_, body) = rx.try_recv().expect("a receipt");
        serde_json::from_slice(&body).unwrap()
    }

    /// Every reading gets its final receipt, after its `accepted` one, even when its block
    /// decides it before ingest's answer has gone out (ingest admits readings to the pool
    /// before their answers come round in publish order), and a refused copy of an accepted
    /// reading does not cost the original its final receipt.
    #[tokio::test]
    async fn final_receipts_are_sent_whatever_comes_first() {
        let Harness {
            pipeline,
            mut jobs,
            mut receipts_rx,
            mut pending_rx,
        } = harness(16, 16);
        let device = DeviceId::from_bytes(b"cold-1").unwrap();
        let key = verity_types::SecretKey::generate(verity_types::Algorithm::Ed25519);
        let topic = || Bytes::from(format!("{READINGS_PREFIX}{device}"));
        let (a, b) = (
            signed_reading(&key, &device, 1),
            signed_reading(&key, &device, 2),
        );
        let (id_a, id_b) = (sha256(&a), sha256(&b));
        for bytes in [&a, &b, &b] {
            pipeline.publish(topic(), Bytes::from(bytes.clone()));
        }
        let event = |id: Hash, seq, outcome| ReadingEvent {
            reading_id: id,
            device: device.clone(),
            seq,
            outcome,
        };
        // Ingest admits A and B; A's block decides before any answer is sent.
        let mut answer = |outcome: Result<(), RejectCode>| {
            let (bytes, _, tx) = jobs.try_recv().expect("a queued reading");
            let reading = verity_types::Reading::decode(&bytes).unwrap();
            let result = match outcome {
                Ok(()) => Ok(Arc::new(reading)),
                Err(code) => Err(crate::ingest::Refused {
                    error: verity_types::ReadingError::new(code, "test"),
                    seq: Some(reading.seq()),
                }),
            };
            tx.send(result).ok().unwrap();
        };
        answer(Ok(()));
        answer(Ok(()));
        answer(Err(RejectCode::Replay));
        pipeline.decided(&[event(id_a, 1, Ok(7))]);
        assert!(
            receipts_rx.try_recv().is_err(),
            "nothing before the first answer"
        );
        // The answers go out in publish order: A accepted then committed, B accepted, B's copy
        // refused.
        answer_next(&pipeline, &mut pending_rx, 3).await;
        let got: Vec<serde_json::Value> = (0..4).map(|_| next_receipt(&mut receipts_rx)).collect();
        let summary: Vec<(String, &str)> = got
            .iter()
            .map(|r| {
                (
                    r["reading_id"].as_str().unwrap().to_string(),
                    r["status"].as_str().unwrap(),
                )
            })
            .collect();
        let (ha, hb) = (hex::encode(id_a.0), hex::encode(id_b.0));
        assert_eq!(
            summary,
            vec![
                (ha.clone(), "accepted"),
                (ha, "committed"),
                (hb.clone(), "accepted"),
                (hb.clone(), "rejected"),
            ]
        );
        assert_eq!(got[1]["height"], 7);
        assert_eq!(got[3]["code"], "replay");
        // B's block decides after its answer: its final receipt still comes.
        pipeline.decided(&[event(id_b, 2, Ok(8))]);
        let last = next_receipt(&mut receipts_rx);
        assert_eq!(
            (last["reading_id"].as_str(), last["status"].as_str()),
            (Some(hb.as_str()), Some("committed"))
        );
        assert_eq!(last["height"], 8);
        assert!(receipts_rx.try_recv().is_err());
        assert!(
            pipeline.tracked.lock().unwrap().is_empty(),
            "nothing left owed"
        );
    }

    /// A device that sends a reading again at once, before the refusal of the first copy
    /// (`pool_full`) went out, still gets the final receipt of the copy that was accepted.
    #[tokio::test]
    async fn a_copy_accepted_after_a_refused_one_gets_its_final_receipt() {
        let Harness {
            pipeline,
            mut jobs,
            mut receipts_rx,
            mut pending_rx,
        } = harness(16, 16);
        let device = DeviceId::from_bytes(b"cold-1").unwrap();
        let key = verity_types::SecretKey::generate(verity_types::Algorithm::Ed25519);
        let bytes = signed_reading(&key, &device, 1);
        let id = sha256(&bytes);
        for _ in 0..2 {
            pipeline.publish(
                Bytes::from(format!("{READINGS_PREFIX}{device}")),
                Bytes::from(bytes.clone()),
            );
        }
        let (_, _, first) = jobs.try_recv().unwrap();
        first.send(Err(pipeline.ingest.busy())).ok().unwrap();
        let (_, _, second) = jobs.try_recv().unwrap();
        let reading = verity_types::Reading::decode(&bytes).unwrap();
        second.send(Ok(Arc::new(reading))).ok().unwrap();
        answer_next(&pipeline, &mut pending_rx, 2).await;
        pipeline.decided(&[ReadingEvent {
            reading_id: id,
            device: device.clone(),
            seq: 1,
            outcome: Ok(9),
        }]);
        let statuses: Vec<String> = (0..3)
            .map(|_| {
                next_receipt(&mut receipts_rx)["status"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(statuses, ["rejected", "accepted", "committed"]);
    }
}
