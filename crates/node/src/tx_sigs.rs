//! Transaction signatures: verified in batches and remembered by transaction id.
//!
//! A transaction's signature used to be verified one at a time wherever it was met: when a
//! client submitted it, again when another validator's gossip brought it, and again when a
//! block holding it was verified, each an Ed25519 verification of its own (about a third of a
//! validator's time under a stream of transfers). Now:
//!
//! - submissions over HTTP queue for [TxIngest], which verifies whatever has queued meanwhile
//!   in one batch on a blocking thread (a single submission waits for nothing);
//! - a gossip message's transactions are verified as one batch;
//! - a block's transactions not verified before are verified as one batch before it executes;
//! - every transaction that verified is remembered by its id ([TxSigCache]), which covers its
//!   whole signed encoding (signer, body and signature), so a remembered id can only be the
//!   same bytes that verified.
//!
//! Ed25519 signatures are batch-verified with ed25519-zebra (ZIP-215, the same rules as one by
//! one; a failing batch is verified one by one to find the bad ones); P-256 ones one by one.

use crate::recent::Recent;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};
use verity_types::{Hash, PublicKey, SignedTransaction};

/// Transaction ids whose signatures verified, remembered at most; each for at least half as
/// many newer ones.
pub const TX_SIG_CACHE_ENTRIES: usize = 262_144;

/// Submitted transactions waiting for their signatures to be checked, at most; a submission
/// beyond it waits for room.
pub const TX_VERIFY_QUEUE: usize = 16_384;

/// Transaction signatures verified together, at most.
pub const TX_VERIFY_BATCH: usize = 512;

/// Transactions whose signatures verified on this network, by id.
pub struct TxSigCache {
    chain_id: Hash,
    inner: Mutex<Recent<Hash, ()>>,
}

impl TxSigCache {
    /// A cache for the network `chain_id` holding at most `max` ids.
    pub fn new(chain_id: Hash, max: usize) -> Self {
        Self {
            chain_id,
            inner: Mutex::new(Recent::new(max)),
        }
    }

    /// Whether transaction `id` verified.
    pub fn verified(&self, id: &Hash) -> bool {
        self.inner
            .lock()
            .expect("tx sig cache lock")
            .get(id)
            .is_some()
    }

    /// Records that transaction `id` verified.
    pub fn insert(&self, id: Hash) {
        self.inner.lock().expect("tx sig cache lock").insert(id, ());
    }

    /// Verifies `tx` unless it verified before, and remembers it if it does.
    pub fn check_one(&self, tx: &SignedTransaction) -> bool {
        if self.verified(&tx.id()) {
            return true;
        }
        let ok = tx.verify_signature(&self.chain_id).is_ok();
        if ok {
            self.insert(tx.id());
        }
        ok
    }
}

impl verity_ledger::SignatureCheck for TxSigCache {
    fn check(&self, tx: &SignedTransaction, chain_id: &Hash) -> bool {
        if *chain_id != self.chain_id {
            return tx.verify_signature(chain_id).is_ok();
        }
        self.check_one(tx)
    }
}

/// Verifies the signatures of `txs` for the network `chain_id`: Ed25519 in one batch (one by
/// one if the batch fails, to find the bad ones), P-256 one by one (low-S only, as
/// [SignedTransaction::verify_signature]). One verdict each.
pub fn verify_txs(chain_id: &Hash, txs: &[SignedTransaction]) -> Vec<bool> {
    let messages: Vec<Vec<u8>> = txs.iter().map(|t| t.tx.signing_message(chain_id)).collect();
    let checks: Vec<(&PublicKey, &[u8], &verity_types::Signature)> = txs
        .iter()
        .zip(&messages)
        .map(|(t, m)| (&t.tx.signer, m.as_slice(), &t.signature))
        .collect();
    PublicKey::verify_many(&checks, true)
}

/// Where a node verifies batches of transaction signatures: on a blocking thread in a running
/// node ([blocking_tx_verifier]), inline in the deterministic simulation ([inline_tx_verifier]).
pub type TxVerifier = Arc<
    dyn Fn(Hash, Vec<SignedTransaction>) -> futures::future::BoxFuture<'static, Vec<bool>>
        + Send
        + Sync,
>;

/// Verifies on the calling thread.
pub fn inline_tx_verifier() -> TxVerifier {
    Arc::new(|chain_id, txs| Box::pin(std::future::ready(verify_txs(&chain_id, &txs))))
}

/// Verifies on tokio's blocking threads, off the async executor.
pub fn blocking_tx_verifier() -> TxVerifier {
    Arc::new(|chain_id, txs| {
        let len = txs.len();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || verify_txs(&chain_id, &txs))
                .await
                .unwrap_or_else(|_| vec![false; len])
        })
    })
}

type Job = (SignedTransaction, oneshot::Sender<()>);

/// Gathers the signature checks of transactions submitted at the same time into batches.
#[derive(Clone)]
pub struct TxIngest {
    queue: mpsc::Sender<Job>,
}

impl TxIngest {
    /// Starts the batching worker for `chain`. It verifies up to one batch per core at a time;
    /// while they all are busy, what arrives meanwhile queues and makes the next batch larger.
    pub fn start(chain: Arc<crate::chain::Chain<crate::api::Ctx>>) -> Self {
        let (queue, mut rx) = mpsc::channel::<Job>(TX_VERIFY_QUEUE);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let running = Arc::new(tokio::sync::Semaphore::new(cores));
        tokio::spawn(async move {
            let mut jobs = Vec::with_capacity(TX_VERIFY_BATCH);
            while rx.recv_many(&mut jobs, TX_VERIFY_BATCH).await > 0 {
                let Ok(permit) = running.clone().acquire_owned().await else {
                    break;
                };
                let (txs, done): (Vec<_>, Vec<_>) = jobs.drain(..).unzip();
                let chain = chain.clone();
                tokio::spawn(async move {
                    chain.verify_txs(&txs).await;
                    for d in done {
                        let _ = d.send(());
                    }
                    drop(permit);
                });
            }
        });
        Self { queue }
    }

    /// Checks `tx`'s signature together with those submitted meanwhile, and remembers it in
    /// the chain's cache if it verifies; [crate::chain::Chain::submit] then finds it there (and
    /// refuses it with `bad_signature` if it is not).
    pub async fn check(&self, tx: &SignedTransaction) {
        self.check_many(std::slice::from_ref(tx)).await;
    }

    /// Checks the signatures of `txs` (a batch submission) as [TxIngest::check] checks one:
    /// through the same queue, so that batch requests arriving together share the one worker
    /// and its bounded queue rather than each taking a blocking thread.
    pub async fn check_many(&self, txs: &[SignedTransaction]) {
        let mut waits = Vec::with_capacity(txs.len());
        for tx in txs {
            let (done, wait) = oneshot::channel();
            if self.queue.send((tx.clone(), done)).await.is_err() {
                break;
            }
            waits.push(wait);
        }
        for wait in waits {
            let _ = wait.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use verity_types::{Algorithm, Amount, Memo, Nonce, SecretKey, Transaction, TxBody};

    fn transfer(key: &SecretKey, chain_id: &Hash, nonce: u64) -> SignedTransaction {
        let tx = Transaction {
            signer: key.public_key(),
            nonce: Nonce(nonce),
            body: TxBody::Transfer {
                to: verity_types::AccountId([7; 20]),
                asset: "CNY".parse().unwrap(),
                amount: Amount(1),
                memo: Memo::new("").unwrap(),
            },
        };
        let signature = key.sign(&tx.signing_message(chain_id));
        SignedTransaction::new(tx, signature)
    }

    /// A batch gives each transaction the verdict verifying it alone gives: good ones of both
    /// algorithms pass, a forged one and one signed for another network fail, and the bad ones
    /// do not take the good ones of their batch down with them.
    #[test]
    fn a_batch_gives_each_transaction_its_own_verdict() {
        let chain_id = Hash::from([1; 32]);
        let other = Hash::from([2; 32]);
        let ed = SecretKey::generate(Algorithm::Ed25519);
        let p256 = SecretKey::generate(Algorithm::P256);
        let mut txs: Vec<SignedTransaction> = (0..40)
            .map(|n| transfer(if n % 5 == 0 { &p256 } else { &ed }, &chain_id, n))
            .collect();
        txs[7] = transfer(&ed, &other, 7);
        let mut forged = txs[13].clone();
        forged.signature.0[0] ^= 1;
        txs[13] = SignedTransaction::new(forged.tx, forged.signature);
        let verdicts = verify_txs(&chain_id, &txs);
        let alone: Vec<bool> = txs
            .iter()
            .map(|t| t.verify_signature(&chain_id).is_ok())
            .collect();
        assert_eq!(verdicts, alone);
        assert_eq!(verdicts.iter().filter(|v| !**v).count(), 2);
        assert!(!verdicts[7] && !verdicts[13]);
        // All good: one batch.
        let good: Vec<SignedTransaction> = (0..20).map(|n| transfer(&ed, &chain_id, n)).collect();
        assert!(verify_txs(&chain_id, &good).iter().all(|v| *v));
    }

    /// The cache remembers only what verified, and only on its own network.
    #[test]
    fn the_cache_remembers_what_verified() {
        use verity_ledger::SignatureCheck as _;
        let chain_id = Hash::from([1; 32]);
        let ed = SecretKey::generate(Algorithm::Ed25519);
        let cache = TxSigCache::new(chain_id, 16);
        let good = transfer(&ed, &chain_id, 0);
        let mut bad = transfer(&ed, &chain_id, 1);
        bad.signature.0[5] ^= 1;
        let bad = SignedTransaction::new(bad.tx, bad.signature);
        assert!(cache.check(&good, &chain_id));
        assert!(cache.verified(&good.id()));
        assert!(!cache.check(&bad, &chain_id));
        assert!(!cache.verified(&bad.id()));
        // Checked for another network, the remembered verdict does not apply.
        assert!(!cache.check(&good, &Hash::from([2; 32])));
    }
}
