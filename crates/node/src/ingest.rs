//! Reading ingest shared by the HTTP and MQTT transports: a bounded queue drained in batches;
//! each batch is decoded and checked against the device registry, its signatures verified
//! together on a blocking thread (off the async executor), and the good ones admitted to the
//! pool. Every submitter gets its own answer.

use crate::{api::Ctx, chain::Chain, readings::verify_in_parallel};
use std::{sync::Arc, time::UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};
use verity_types::{DeviceId, PublicKey, Reading, ReadingError, RejectCode};

/// Readings waiting to be checked, at most.
pub const INGEST_QUEUE: usize = 65_536;
/// Readings checked together, at most.
pub const INGEST_BATCH: usize = 512;

/// A refused reading, with its seq when the bytes got far enough to have one.
#[derive(Debug)]
pub struct Refused {
    /// Why.
    pub error: ReadingError,
    /// The reading's seq, if it could be read.
    pub seq: Option<u64>,
}

type Answer = oneshot::Sender<Result<Arc<Reading>, Refused>>;

/// A reading to check: its bytes and, for MQTT, the device id its topic names.
pub(crate) type Job = (Vec<u8>, Option<DeviceId>, Answer);

/// The handle transports submit readings through.
#[derive(Clone)]
pub struct Ingest {
    queue: mpsc::Sender<Job>,
    /// Where refusals are counted (`None` in tests of the transports).
    chain: Option<Arc<Chain<Ctx>>>,
}

impl Ingest {
    /// Starts the ingest worker for `chain`.
    pub fn start(chain: Arc<Chain<Ctx>>) -> Self {
        let (queue, rx) = mpsc::channel(INGEST_QUEUE);
        tokio::spawn(run(chain.clone(), rx));
        Self {
            queue,
            chain: Some(chain),
        }
    }

    /// A handle whose queue of `capacity` readings nobody drains but the caller, for tests of
    /// the transports.
    #[cfg(test)]
    pub(crate) fn unstarted(capacity: usize) -> (Self, mpsc::Receiver<Job>) {
        let (queue, rx) = mpsc::channel(capacity);
        (Self { queue, chain: None }, rx)
    }

    /// Checks a reading and puts it in the pool; answers once it is accepted or refused.
    /// `topic_device` is the device id an MQTT topic names: it must equal the `kid`.
    pub async fn submit(
        &self,
        bytes: Vec<u8>,
        topic_device: Option<DeviceId>,
    ) -> Result<Arc<Reading>, Refused> {
        self.enqueue(bytes, topic_device)?.await
    }

    /// Queues a reading at once, in the caller's order (a device's readings must reach the
    /// pool in the order it sent them, or a later seq committed first makes the earlier ones
    /// replays), and returns the future of its answer.
    pub fn enqueue(
        &self,
        bytes: Vec<u8>,
        topic_device: Option<DeviceId>,
    ) -> Result<impl Future<Output = Result<Arc<Reading>, Refused>> + use<>, Refused> {
        let (tx, rx) = oneshot::channel();
        self.queue
            .try_send((bytes, topic_device, tx))
            .map_err(|_| self.busy())?;
        Ok(async move { rx.await.map_err(|_| busy())? })
    }

    /// Refuses a reading because the node cannot queue it now (`pool_full`), and counts it.
    pub fn busy(&self) -> Refused {
        let refused = busy();
        if let Some(chain) = &self.chain {
            chain.reading_refused(&refused.error);
        }
        refused
    }
}

fn busy() -> Refused {
    Refused {
        error: ReadingError::new(
            RejectCode::PoolFull,
            "the node's ingest queue is full; retry later",
        ),
        seq: None,
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

fn refused(error: ReadingError, bytes: &[u8]) -> Refused {
    let seq = Reading::decode(bytes).ok().map(|r| r.seq());
    Refused { error, seq }
}

async fn run(chain: Arc<Chain<Ctx>>, mut rx: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(INGEST_BATCH);
    while rx.recv_many(&mut batch, INGEST_BATCH).await > 0 {
        let now = now_ms();
        let mut prepared: Vec<(Arc<Reading>, PublicKey, u64, Answer)> = Vec::new();
        for (bytes, topic_device, answer) in batch.drain(..) {
            match chain
                .prepare_reading(&bytes, now, topic_device.as_ref())
                .await
            {
                Ok((reading, key, last_seq)) => prepared.push((reading, key, last_seq, answer)),
                Err(e) => {
                    chain.reading_refused(&e);
                    let _ = answer.send(Err(refused(e, &bytes)));
                }
            }
        }
        // Readings the pool has no room for are refused now: verifying their signatures
        // would only spend the CPU the others need (under overload, most of it).
        let room = chain.reading_room(prepared.iter().map(|(r, ..)| r.device()));
        let (prepared, full): (Vec<_>, Vec<_>) =
            prepared.into_iter().zip(room).partition(|(_, room)| *room);
        for ((reading, _, _, answer), _) in full {
            let error = crate::readings::pool_full();
            chain.reading_refused(&error);
            let seq = Some(reading.seq());
            let _ = answer.send(Err(Refused { error, seq }));
        }
        let prepared: Vec<_> = prepared.into_iter().map(|(p, _)| p).collect();
        if prepared.is_empty() {
            continue;
        }
        let items: Vec<(Arc<Reading>, PublicKey)> = prepared
            .iter()
            .map(|(r, k, _, _)| (r.clone(), *k))
            .collect();
        let verdicts = verify_in_parallel(items).await;
        for (i, (reading, key, last_seq, answer)) in prepared.into_iter().enumerate() {
            let ok = verdicts.get(i).copied().unwrap_or(false);
            let seq = Some(reading.seq());
            let result = chain
                .admit_reading(reading.clone(), key, last_seq, ok)
                .map(|()| reading)
                .map_err(|error| {
                    chain.reading_refused(&error);
                    Refused { error, seq }
                });
            let _ = answer.send(result);
        }
    }
}
