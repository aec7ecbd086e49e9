//! Transaction gossip: a transaction accepted by one validator's API is forwarded to every
//! other validator, so whichever leads the next round can include it. Transactions are sent in
//! batches (at most [GOSSIP_BATCH_TXS] per message, flushed every [GOSSIP_FLUSH]); received ones
//! pass the same checks as API submissions and are not forwarded again.
//!
//! An empty batch is a wake: the sender admitted a reading while the network was idle, and
//! leaders waiting to propose an empty block should propose now ([crate::pacing]).

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
use std::{sync::Arc, time::Duration};
use tracing::debug;
use verity_types::SignedTransaction;

/// Most transactions in one gossip message.
pub const GOSSIP_BATCH_TXS: usize = 512;
/// Longest a transaction waits before its batch is sent.
pub const GOSSIP_FLUSH: Duration = Duration::from_millis(5);
/// Most transactions queued for gossip before new ones are not forwarded.
pub const GOSSIP_QUEUE: usize = 16_384;

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

/// Starts the gossip tasks on the transaction channel.
pub fn start<E, C, S, R>(
    context: E,
    chain: Arc<Chain<C>>,
    (mut sender, mut receiver): (S, R),
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
            for t in txs {
                let _ = chain.submit(&t).await;
            }
        }
    });
    Gossip { tx }
}
