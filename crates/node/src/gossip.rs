//! Gossip of transactions and readings: what one validator admits is forwarded to every other
//! validator, so whichever leads the next round can include it. Both are sent in batches (at
//! most [GOSSIP_BATCH_TXS] transactions or [GOSSIP_BATCH_READINGS] readings per message,
//! flushed every [GOSSIP_FLUSH]), each on its own p2p channel; received ones pass the same
//! checks as submissions (a reading's signature included) and are not forwarded again.
//!
//! A gossiped reading carries the seq its device sent before it, as far as the validator that
//! admitted it knew; the receiver holds it until that one is decided (see [crate::readings]),
//! so that no leader's proposal turns an accepted reading into a replay.
//!
//! An empty transaction batch is a wake: the sender admitted a reading while the network was
//! idle, and leaders waiting to propose an empty block should propose now ([crate::pacing]).

use crate::chain::Chain;
use commonware_codec::{Encode as _, RangeCfg, Read as _};
use commonware_cryptography::ed25519;
use commonware_p2p::{Receiver, Recipients, Sender};
use commonware_runtime::{Clock, Metrics, Spawner};
use futures::{
    StreamExt as _,
    channel::mpsc,
    future::{self, Either},
};
use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use tracing::debug;
use verity_types::{Reading, SignedTransaction};

/// Most transactions in one gossip message.
pub const GOSSIP_BATCH_TXS: usize = 512;
/// Longest a transaction waits before its batch is sent.
pub const GOSSIP_FLUSH: Duration = Duration::from_millis(5);
/// Most transactions queued for gossip before new ones are not forwarded.
pub const GOSSIP_QUEUE: usize = 16_384;
pub use verity_types::gossip::{GOSSIP_BATCH_READINGS, decode_readings, encode_readings};
/// Most bytes of readings in one gossip message: below the 64 KiB by which
/// `p2p.max_message_bytes` must exceed the largest block, so a batch always fits a message.
pub const GOSSIP_BATCH_BYTES: usize = 60 * 1024;
/// Most readings queued for gossip before new ones are not forwarded (the validator that
/// admitted them still proposes them when it leads).
pub const GOSSIP_READINGS_QUEUE: usize = 65_536;

/// Readings this validator admitted, waiting to be gossiped, each with the seq its device sent
/// before it. Filled by [Chain::admit_reading]; drained by the gossip task once it runs.
#[derive(Default)]
pub struct ReadingOutbox {
    running: AtomicBool,
    queue: Mutex<Vec<(Arc<Reading>, u64)>>,
    ready: tokio::sync::Notify,
}

impl ReadingOutbox {
    /// Queues `reading` for the other validators (dropped when the queue is full or nobody
    /// gossips).
    pub fn push(&self, reading: Arc<Reading>, after: u64) {
        if !self.running.load(Ordering::Relaxed) {
            return;
        }
        let mut q = self.queue.lock().expect("outbox lock");
        if q.len() < GOSSIP_READINGS_QUEUE {
            q.push((reading, after));
            if q.len() == 1 {
                self.ready.notify_one();
            }
        }
    }

    /// Starts keeping what is pushed (the gossip task does, when it starts).
    pub fn open(&self) {
        self.running.store(true, Ordering::Relaxed);
    }

    /// Everything queued, oldest first.
    pub fn take(&self) -> Vec<(Arc<Reading>, u64)> {
        std::mem::take(&mut *self.queue.lock().expect("outbox lock"))
    }
}

/// Queues transactions for gossip.
#[derive(Clone)]
pub struct Gossip {
    tx: mpsc::Sender<SignedTransaction>,
}

impl Gossip {
    /// Queues `tx` for the other validators (dropped if the queue is full; the submitter's
    /// node still proposes it when it leads).
    pub fn forward(&self, tx: SignedTransaction) {
        let _ = self.tx.clone().try_send(tx);
    }
}

/// Starts the gossip tasks on the transaction channel and the readings channel.
pub fn start<E, C, S, R>(
    context: E,
    chain: Arc<Chain<C>>,
    (mut sender, mut receiver): (S, R),
    (mut readings_out, mut readings_in): (S, R),
) -> Gossip
where
    E: Spawner + Clock + Metrics,
    C: commonware_storage::Context + Spawner + Metrics,
    S: Sender<PublicKey = ed25519::PublicKey>,
    R: Receiver<PublicKey = ed25519::PublicKey>,
{
    let (tx, mut rx) = mpsc::channel::<SignedTransaction>(GOSSIP_QUEUE);
    let wakes = chain.clone();
    context.child("gossip_out").spawn(move |ctx| async move {
        loop {
            let wake = std::pin::pin!(wakes.pacing.peers_to_wake());
            let first = match future::select(rx.next(), wake).await {
                Either::Left((Some(first), _)) => first,
                Either::Left((None, _)) => break,
                Either::Right(_) => {
                    let wake = Vec::<SignedTransaction>::new().encode().to_vec();
                    sender.send(Recipients::All, wake, true);
                    continue;
                }
            };
            let mut batch = vec![first];
            let deadline = ctx.current() + GOSSIP_FLUSH;
            while batch.len() < GOSSIP_BATCH_TXS {
                match rx.try_recv() {
                    Ok(t) => batch.push(t),
                    Err(mpsc::TryRecvError::Closed) => break,
                    Err(mpsc::TryRecvError::Empty) => {
                        if ctx.current() >= deadline {
                            break;
                        }
                        ctx.sleep(Duration::from_millis(1)).await;
                    }
                }
            }
            let bytes = batch.encode().to_vec();
            sender.send(Recipients::All, bytes, false);
        }
    });
    let outbox = chain.clone();
    if outbox.validators.len() > 1 {
        // Alone, a validator has nobody to tell.
        outbox.outbox.open();
    }
    context.child("readings_out").spawn(move |ctx| async move {
        loop {
            let ready = outbox.outbox.ready.notified();
            if outbox.outbox.queue.lock().expect("outbox lock").is_empty() {
                ready.await;
            }
            // Let a batch gather.
            ctx.sleep(GOSSIP_FLUSH).await;
            let queued = outbox.outbox.take();
            let mut rest = &queued[..];
            while !rest.is_empty() {
                let mut bytes = 0;
                let n = rest
                    .iter()
                    .take(GOSSIP_BATCH_READINGS)
                    .take_while(|(r, _)| {
                        bytes += 10 + r.bytes().len();
                        bytes <= GOSSIP_BATCH_BYTES
                    })
                    .count()
                    .max(1);
                let (batch, tail) = rest.split_at(n);
                readings_out.send(
                    Recipients::All,
                    encode_readings(batch.iter().map(|(r, after)| (*after, r.bytes()))),
                    false,
                );
                rest = tail;
            }
        }
    });
    let gossiped = chain.clone();
    context.child("readings_in").spawn(move |ctx| async move {
        while let Ok((peer, msg)) = readings_in.recv().await {
            let Some(batch) = decode_readings(msg.as_ref()) else {
                debug!(?peer, "malformed readings gossip");
                continue;
            };
            let now_ms = crate::chain::millis(ctx.current());
            gossiped.admit_gossiped(&batch, now_ms).await;
        }
    });
    context.child("gossip_in").spawn(move |_| async move {
        let cfg = (RangeCfg::from(0..=GOSSIP_BATCH_TXS), ());
        while let Ok((peer, msg)) = receiver.recv().await {
            let bytes = bytes::Bytes::copy_from_slice(msg.as_ref());
            let Ok(txs) = Vec::<SignedTransaction>::read_cfg(&mut bytes.clone(), &cfg) else {
                debug!(?peer, "malformed gossip");
                continue;
            };
            if txs.is_empty() {
                chain.woken_by_peer();
                continue;
            }
            // One batch for the message's signatures; each submission then finds its verdict.
            chain.verify_txs(&txs).await;
            for t in txs {
                let _ = chain.submit_gossiped(&t).await;
            }
        }
    });
    Gossip { tx }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readings::tests::reading_with;
    use verity_types::{Algorithm, SecretKey, reading::SenmlValue};

    fn reading(seq: u64, text: usize) -> Arc<Reading> {
        let key = SecretKey::generate(Algorithm::Ed25519);
        reading_with(&key, "d", seq, SenmlValue::String("x".repeat(text)))
    }

    #[test]
    fn the_outbox_keeps_nothing_until_opened_and_is_bounded() {
        let outbox = ReadingOutbox::default();
        let r = reading(1, 0);
        outbox.push(r.clone(), 0);
        assert!(outbox.take().is_empty());
        outbox.open();
        for _ in 0..GOSSIP_READINGS_QUEUE + 5 {
            outbox.push(r.clone(), 0);
        }
        assert_eq!(outbox.take().len(), GOSSIP_READINGS_QUEUE);
        assert!(outbox.take().is_empty());
    }
}
