//! The reading pool and the signature cache.
//!
//! The pool holds readings that passed ingest and wait for a block, bounded in total and per
//! device; the proposer takes them per device in seq order and round-robin across devices, so a
//! flooding device cannot starve the others. Readings dropped later (their device was revoked,
//! or a higher seq committed first) are remembered with their code for status queries.
//!
//! A reading another validator admitted arrives by gossip with the seq its device sent before
//! it, as far as that validator knew (`after`). Proposing it before that one would make the
//! earlier reading a replay, so it is held until `after` has committed or goes before it in
//! the same proposal, or until [GOSSIP_HOLD_BLOCKS] blocks have finalized since it arrived (the
//! validator that admitted the earlier reading proposes both when it leads, so the hold ends
//! that way in time; the limit only keeps a reading whose predecessor was lost from waiting for
//! ever). A reading this validator admitted itself is never held.
//!
//! The signature cache remembers which readings were verified under which key, so a node
//! verifies each reading once at ingest and reuses that when it verifies a block holding it.

use crate::recent::Recent;
use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use verity_ledger::ReadingCheck;
use verity_types::{DeviceId, Hash, PublicKey, Reading, RejectCode};

/// How many refused readings the pool remembers, at most; each is kept for at least half as
/// many newer refusals ([Recent]).
pub const REFUSED_READINGS_MEMORY: usize = 100_000;

/// How many devices' committed seqs the pool remembers, at most ([Recent]; a few MiB when
/// full): see [ReadingPool::prune_device].
pub const COMMITTED_SEQS_MEMORY: usize = 100_000;

/// Blocks finalized after a gossiped reading arrived beyond which it is no longer held for the
/// reading its device sent before it.
pub const GOSSIP_HOLD_BLOCKS: u64 = 16;

/// The refusal of a reading the pool has no room for.
pub fn pool_full() -> verity_types::ReadingError {
    verity_types::ReadingError::new(
        RejectCode::PoolFull,
        "the node's reading pool is full for this device or in total; retry later",
    )
}

/// A reading waiting, and since when (for the pool-wait metric only).
struct Pending {
    reading: Arc<Reading>,
    since: Instant,
    /// For a gossiped reading: the seq its device sent before it.
    after: Option<u64>,
    /// The pool's finalized height when it arrived.
    height: u64,
}

/// One device's waiting readings.
#[derive(Default)]
struct DeviceQueue {
    /// By seq.
    seqs: BTreeMap<u64, Hash>,
    /// The device's highest committed seq, as far as the pool was told.
    committed: u64,
}

/// The pool.
pub struct ReadingPool {
    max_total: usize,
    max_per_device: usize,
    by_id: HashMap<Hash, Pending>,
    by_device: BTreeMap<DeviceId, DeviceQueue>,
    refused: Recent<Hash, RejectCode>,
    /// The committed seq of the devices recent finalized blocks touched, kept whether or not
    /// they have readings waiting (a device's queue is dropped when it empties): a reading
    /// checked against the state before a block committed it (a gossiped copy of it, or the
    /// device sending it again) is then refused as the replay it is, instead of pooled and
    /// dropped as one at the next block, counted as a refusal of a reading that committed.
    committed: Recent<DeviceId, u64>,
    /// The last finalized height the pool was told of.
    height: u64,
}

impl ReadingPool {
    /// An empty pool.
    pub fn new(max_total: usize, max_per_device: usize) -> Self {
        Self {
            max_total,
            max_per_device,
            by_id: HashMap::new(),
            by_device: BTreeMap::new(),
            refused: Recent::new(REFUSED_READINGS_MEMORY),
            committed: Recent::new(COMMITTED_SEQS_MEMORY),
            height: 0,
        }
    }

    /// Readings waiting.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Whether `id` is waiting.
    pub fn contains(&self, id: &Hash) -> bool {
        self.by_id.contains_key(id)
    }

    /// A waiting reading.
    pub fn get(&self, id: &Hash) -> Option<Arc<Reading>> {
        self.by_id.get(id).map(|p| p.reading.clone())
    }

    /// How long a waiting reading has been in the pool.
    pub fn waited(&self, id: &Hash) -> Option<Duration> {
        self.by_id.get(id).map(|p| p.since.elapsed())
    }

    /// Adds a reading this validator admitted, whose device's committed seq is `last_seq`.
    /// Refuses a seq not above it or already pending (`replay`) and a reading beyond the limits
    /// (`pool_full`). Returns the seq the device sent before it, as far as this pool knows (the
    /// highest committed or pending seq below it), which is what gossip tells the others.
    pub fn insert(&mut self, reading: Arc<Reading>, last_seq: u64) -> Result<u64, RejectCode> {
        self.add(reading, last_seq, None)
    }

    /// Adds a reading another validator admitted and gossiped, with the seq its device sent
    /// before it (`after`); the same checks as [ReadingPool::insert].
    pub fn insert_gossiped(
        &mut self,
        reading: Arc<Reading>,
        last_seq: u64,
        after: u64,
    ) -> Result<(), RejectCode> {
        self.add(reading, last_seq, Some(after)).map(|_| ())
    }

    fn add(
        &mut self,
        reading: Arc<Reading>,
        last_seq: u64,
        after: Option<u64>,
    ) -> Result<u64, RejectCode> {
        let seq = reading.seq();
        let pending = self.by_device.get(reading.device());
        let committed = pending
            .map_or(0, |q| q.committed)
            .max(last_seq)
            .max(self.committed.get(reading.device()).copied().unwrap_or(0));
        if seq <= committed {
            return Err(RejectCode::Replay);
        }
        if pending.is_some_and(|q| q.seqs.contains_key(&seq)) {
            return Err(RejectCode::Replay);
        }
        if self.by_id.len() >= self.max_total
            || pending.is_some_and(|q| q.seqs.len() >= self.max_per_device)
        {
            return Err(RejectCode::PoolFull);
        }
        let queue = self.by_device.entry(reading.device().clone()).or_default();
        queue.committed = committed;
        let before = queue
            .seqs
            .range(..seq)
            .next_back()
            .map_or(committed, |(s, _)| *s);
        queue.seqs.insert(seq, reading.id());
        self.by_id.insert(
            reading.id(),
            Pending {
                reading,
                since: Instant::now(),
                after,
                height: self.height,
            },
        );
        Ok(before)
    }

    /// Whether the pool has room now for each of these readings' devices, taken in order, each
    /// counted against the room of the ones before it. A reading without room would be refused
    /// `pool_full` once admitted, so ingest and gossip refuse it before checking its signature:
    /// under overload, verifying readings only to refuse them took the CPU that the readings
    /// with room needed.
    pub fn room_for<'a>(&self, devices: impl IntoIterator<Item = &'a DeviceId>) -> Vec<bool> {
        let mut total = self.max_total.saturating_sub(self.by_id.len());
        let mut taken: HashMap<&'a DeviceId, usize> = HashMap::new();
        devices
            .into_iter()
            .map(|d| {
                let pending = taken
                    .entry(d)
                    .or_insert_with(|| self.by_device.get(d).map_or(0, |q| q.seqs.len()));
                if total == 0 || *pending >= self.max_per_device {
                    return false;
                }
                total -= 1;
                *pending += 1;
                true
            })
            .collect()
    }

    /// Up to `n` readings: per device in seq order, round-robin across devices. A device's
    /// readings stop at the first one held for an earlier reading (see the module's notes).
    pub fn candidates(&self, n: usize) -> Vec<Arc<Reading>> {
        struct Walk<'a> {
            seqs: std::collections::btree_map::Iter<'a, u64, Hash>,
            /// The highest seq that is committed or goes before the next one.
            covered: u64,
        }
        let mut walks: Vec<Walk<'_>> = self
            .by_device
            .values()
            .map(|q| Walk {
                seqs: q.seqs.iter(),
                covered: q.committed,
            })
            .collect();
        let mut out = Vec::with_capacity(n.min(self.by_id.len()));
        while out.len() < n && !walks.is_empty() {
            walks.retain_mut(|w| {
                if out.len() >= n {
                    return false;
                }
                let Some((seq, id)) = w.seqs.next() else {
                    return false;
                };
                let p = &self.by_id[id];
                let ready = match p.after {
                    None => true,
                    Some(after) => {
                        after <= w.covered
                            || self.height >= p.height.saturating_add(GOSSIP_HOLD_BLOCKS)
                    }
                };
                if ready {
                    out.push(p.reading.clone());
                    w.covered = *seq;
                }
                ready
            });
        }
        out
    }

    /// Tells the pool that the block at `height` finalized (holds of gossiped readings are
    /// counted in finalized blocks).
    pub fn finalized(&mut self, height: u64) {
        self.height = self.height.max(height);
    }

    fn remove(&mut self, id: &Hash) -> Option<Arc<Reading>> {
        let reading = self.by_id.remove(id)?.reading;
        if let Some(q) = self.by_device.get_mut(reading.device()) {
            q.seqs.remove(&reading.seq());
            if q.seqs.is_empty() {
                self.by_device.remove(reading.device());
            }
        }
        Some(reading)
    }

    /// Removes committed readings.
    pub fn remove_committed<'a>(&mut self, ids: impl Iterator<Item = &'a Hash>) {
        for id in ids {
            self.remove(id);
        }
    }

    /// Drops and remembers a reading the ledger refused; returns it if it was pending.
    pub fn refuse(&mut self, id: &Hash, code: RejectCode) -> Option<Arc<Reading>> {
        let reading = self.remove(id);
        self.refused.insert(*id, code);
        reading
    }

    /// Records that `device`'s committed seq is `last_seq`, and drops its pending readings with
    /// seq at most `last_seq` (now replays); returns them.
    pub fn prune_device(&mut self, device: &DeviceId, last_seq: u64) -> Vec<Arc<Reading>> {
        let known = self.committed.get(device).copied().unwrap_or(0);
        self.committed.insert(device.clone(), known.max(last_seq));
        let stale: Vec<Hash> = match self.by_device.get_mut(device) {
            Some(q) => {
                q.committed = q.committed.max(last_seq);
                q.seqs.range(..=last_seq).map(|(_, id)| *id).collect()
            }
            None => return Vec::new(),
        };
        stale
            .iter()
            .filter_map(|id| self.refuse(id, RejectCode::Replay))
            .collect()
    }

    /// Drops every pending reading of `device` with `code`; returns them.
    pub fn drop_device(&mut self, device: &DeviceId, code: RejectCode) -> Vec<Arc<Reading>> {
        let all: Vec<Hash> = match self.by_device.get(device) {
            Some(q) => q.seqs.values().copied().collect(),
            None => return Vec::new(),
        };
        all.iter().filter_map(|id| self.refuse(id, code)).collect()
    }

    /// Why a reading was dropped after ingest, if it was.
    pub fn refusal(&self, id: &Hash) -> Option<RejectCode> {
        self.refused.get(id).copied()
    }
}

/// Remembers readings verified under a key (bounded; the oldest are forgotten first).
///
/// Each entry is a reading id and a 64-bit fingerprint of the key it verified under, not the
/// key itself (a P-256 key is kept with its uncompressed point, 99 bytes): about 40 bytes per
/// reading instead of 140. The fingerprint is a hash keyed with random keys chosen when the
/// node starts, so nobody outside it can search for another key with the same fingerprint; a
/// different key matches by chance once in 2^64, and only a device's owner can put another key
/// in front of a reading already verified (by rotating the device's key while it waits).
pub struct SigCache {
    fingerprints: std::collections::hash_map::RandomState,
    inner: Mutex<Recent<Hash, u64>>,
}

impl SigCache {
    /// A cache that remembers at most `max` readings, each for at least `max / 2` newer ones.
    pub fn new(max: usize) -> Self {
        Self {
            fingerprints: std::collections::hash_map::RandomState::new(),
            inner: Mutex::new(Recent::new(max)),
        }
    }

    fn fingerprint(&self, key: &PublicKey) -> u64 {
        use std::hash::BuildHasher as _;
        self.fingerprints.hash_one(key)
    }

    /// Records that `reading` verified under `key`.
    pub fn insert(&self, reading: Hash, key: PublicKey) {
        let fingerprint = self.fingerprint(&key);
        self.inner
            .lock()
            .expect("sig cache lock")
            .insert(reading, fingerprint);
    }

    /// Whether `reading` verified under `key`.
    pub fn verified(&self, reading: &Hash, key: &PublicKey) -> bool {
        let fingerprint = self.fingerprint(key);
        self.inner.lock().expect("sig cache lock").get(reading) == Some(&fingerprint)
    }
}

impl ReadingCheck for SigCache {
    fn check(&self, reading: &Reading, key: &PublicKey) -> bool {
        if self.verified(&reading.id(), key) {
            return true;
        }
        let ok = reading.verify(key);
        if ok {
            self.insert(reading.id(), *key);
        }
        ok
    }
}

/// What verifying one P-256 reading costs, in batch-verified Ed25519 signatures: on the
/// reference 2-vCPU machine ring verifies about 28,000 P-256 signatures per second, and
/// batches of Ed25519 about 95,000 (3.4 times as many).
pub const P256_VERIFY_COST: usize = 4;

/// What verifying a reading's signature costs, in batch-verified Ed25519 signatures. A block
/// proposal's readings cost at most `consensus.max_block_verify_cost` together: every other
/// validator may have to verify all of them before it can vote, within the certification
/// timeout.
pub fn verify_cost(algorithm: verity_types::Algorithm) -> usize {
    match algorithm {
        verity_types::Algorithm::Ed25519 => 1,
        verity_types::Algorithm::P256 => P256_VERIFY_COST,
    }
}

/// Where a node verifies batches of reading signatures: on a blocking thread in a running node
/// ([blocking_verifier]), inline in the deterministic simulation ([inline_verifier]).
pub type BatchVerifier = Arc<
    dyn Fn(Vec<(Arc<Reading>, PublicKey)>) -> futures::future::BoxFuture<'static, Vec<bool>>
        + Send
        + Sync,
>;

/// Verifies on the calling thread.
pub fn inline_verifier() -> BatchVerifier {
    Arc::new(|items| Box::pin(std::future::ready(verify_batch(&items))))
}

/// Verifies on tokio's blocking threads, off the async executor.
pub fn blocking_verifier() -> BatchVerifier {
    Arc::new(|items| Box::pin(verify_in_parallel(items)))
}

/// Least verification work a blocking thread is given when a batch is split across the
/// machine's cores, in batch-verified Ed25519 signatures ([verify_cost]): below this, a batch
/// verifies faster on one thread than the threads cost. P-256 verification, unlike Ed25519's,
/// gains from the reference machine's second vCPU (ring: about 1.85 times the rate on two
/// threads), so a busy ingest's batches of a few hundred P-256 readings are split.
pub const MIN_PARALLEL_CHUNK: usize = 1024;

/// Where to cut `items` into `chunks` runs of about equal verification work: the end of each.
fn chunk_ends(items: &[(Arc<Reading>, PublicKey)], chunks: usize) -> Vec<usize> {
    let total: usize = items.iter().map(|(_, k)| verify_cost(k.algorithm())).sum();
    let mut ends = Vec::with_capacity(chunks);
    let mut done = 0;
    for (i, (_, key)) in items.iter().enumerate() {
        done += verify_cost(key.algorithm());
        // The first item whose work reaches the next share of the total ends a chunk.
        if done * chunks >= total * (ends.len() + 1)
            && ends.len() + 1 < chunks
            && i + 1 < items.len()
        {
            ends.push(i + 1);
        }
    }
    ends.push(items.len());
    ends
}

/// Verifies many readings (see [verify_batch]) on tokio's blocking threads, splitting a batch
/// with enough work ([MIN_PARALLEL_CHUNK], [verify_cost]) into one chunk of about equal
/// work per available core, so that a block's signatures, or a busy ingest's, take a fraction
/// of the time on a machine with several. Returns one verdict each (all false if a thread
/// fails).
pub async fn verify_in_parallel(items: Vec<(Arc<Reading>, PublicKey)>) -> Vec<bool> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cost: usize = items.iter().map(|(_, k)| verify_cost(k.algorithm())).sum();
    let chunks = (cost / MIN_PARALLEL_CHUNK).clamp(1, cores);
    let len = items.len();
    if chunks == 1 {
        return tokio::task::spawn_blocking(move || verify_batch(&items))
            .await
            .unwrap_or_else(|_| vec![false; len]);
    }
    let ends = chunk_ends(&items, chunks);
    let items = Arc::new(items);
    let threads: Vec<_> = ends
        .iter()
        .scan(0, |start, &end| {
            let range = *start..end;
            *start = end;
            Some(range)
        })
        .map(|range| {
            let items = items.clone();
            tokio::task::spawn_blocking(move || verify_batch(&items[range]))
        })
        .collect();
    let mut out = Vec::with_capacity(len);
    for t in threads {
        match t.await {
            Ok(v) => out.extend(v),
            Err(_) => return vec![false; len],
        }
    }
    out
}

/// Verifies many readings against their keys: Ed25519 in batches (falling back to one by one
/// when a batch fails, to find the bad ones), P-256 one by one. Returns one verdict each.
pub fn verify_batch(items: &[(Arc<Reading>, PublicKey)]) -> Vec<bool> {
    let messages: Vec<Vec<u8>> = items.iter().map(|(r, _)| r.signed_bytes()).collect();
    // A reading signed with another algorithm than its device's key fails without a check.
    let matching: Vec<usize> = (0..items.len())
        .filter(|&i| items[i].1.algorithm() == items[i].0.algorithm())
        .collect();
    let checks: Vec<(&PublicKey, &[u8], &verity_types::Signature)> = matching
        .iter()
        .map(|&i| (&items[i].1, messages[i].as_slice(), items[i].0.signature()))
        .collect();
    let mut out = vec![false; items.len()];
    for (i, ok) in matching
        .into_iter()
        .zip(PublicKey::verify_many(&checks, false))
    {
        out[i] = ok;
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use verity_types::{
        Algorithm, SecretKey,
        reading::{
            SenmlValue,
            sign::{NewRecord, sign_reading},
        },
    };

    /// A reading of `dev` with one record of `value`, signed by `key`.
    pub(crate) fn reading_with(
        key: &SecretKey,
        dev: &str,
        seq: u64,
        value: SenmlValue,
    ) -> Arc<Reading> {
        let bytes = sign_reading(
            key,
            &dev.parse().unwrap(),
            seq,
            &[NewRecord {
                name: "t".into(),
                time: 1_700_000_000.0,
                unit: None,
                value,
            }],
        );
        Arc::new(Reading::decode(&bytes).unwrap())
    }

    fn reading(key: &SecretKey, dev: &str, seq: u64) -> Arc<Reading> {
        reading_with(key, dev, seq, SenmlValue::Number(seq as f64))
    }

    #[test]
    fn pool_limits_order_and_fairness() {
        let k = SecretKey::generate(Algorithm::Ed25519);
        let mut pool = ReadingPool::new(10, 3);
        for seq in [3, 1, 2] {
            pool.insert(reading(&k, "a", seq), 0).unwrap();
        }
        assert_eq!(
            pool.insert(reading(&k, "a", 4), 0),
            Err(RejectCode::PoolFull)
        );
        assert_eq!(pool.insert(reading(&k, "a", 2), 0), Err(RejectCode::Replay));
        assert_eq!(pool.insert(reading(&k, "b", 5), 5), Err(RejectCode::Replay));
        pool.insert(reading(&k, "b", 6), 5).unwrap();
        let c: Vec<(String, u64)> = pool
            .candidates(10)
            .iter()
            .map(|r| (r.device().to_string(), r.seq()))
            .collect();
        // Round-robin: a's first, b's first, then the rest of a in seq order.
        assert_eq!(
            c,
            vec![
                ("a".into(), 1),
                ("b".into(), 6),
                ("a".into(), 2),
                ("a".into(), 3)
            ]
        );
        let dropped = pool.prune_device(&"a".parse().unwrap(), 2);
        assert_eq!(dropped.len(), 2);
        assert_eq!(pool.len(), 2);
        assert_eq!(pool.refusal(&dropped[0].id()), Some(RejectCode::Replay));
    }

    /// The room ingest looks at before verifying gives what inserting the same readings in the
    /// same order gives: per device and in total, counting the batch's earlier readings.
    #[test]
    fn room_before_verification_matches_what_insertion_refuses() {
        let k = SecretKey::generate(Algorithm::Ed25519);
        let mut pool = ReadingPool::new(6, 3);
        pool.insert(reading(&k, "a", 1), 0).unwrap();
        pool.insert(reading(&k, "a", 2), 0).unwrap();
        pool.insert(reading(&k, "b", 1), 0).unwrap();
        // a has room for one more, b for two, and the pool for three in all.
        let batch: Vec<Arc<Reading>> = [("a", 3), ("a", 4), ("b", 2), ("c", 1), ("b", 3), ("c", 2)]
            .iter()
            .map(|(d, s)| reading(&k, d, *s))
            .collect();
        let room = pool.room_for(batch.iter().map(|r| r.device()));
        assert_eq!(room, [true, false, true, true, false, false]);
        let inserted: Vec<bool> = batch
            .iter()
            .map(|r| pool.insert(r.clone(), 0).is_ok())
            .collect();
        assert_eq!(inserted, room);
        assert_eq!(pool.room_for(batch.iter().map(|r| r.device())), [false; 6]);
    }

    #[test]
    fn a_gossiped_reading_is_held_until_the_reading_before_it_is_decided() {
        let k = SecretKey::generate(Algorithm::Ed25519);
        let dev: DeviceId = "a".parse().unwrap();
        let seqs = |pool: &ReadingPool| -> Vec<u64> {
            pool.candidates(100).iter().map(|r| r.seq()).collect()
        };
        // What a validator tells the others: the seq the device sent before each reading.
        let mut origin = ReadingPool::new(100, 10);
        assert_eq!(origin.insert(reading(&k, "a", 3), 2), Ok(2));
        assert_eq!(origin.insert(reading(&k, "a", 5), 2), Ok(3));
        assert_eq!(origin.insert(reading(&k, "a", 4), 2), Ok(3));

        let mut pool = ReadingPool::new(100, 10);
        // 5 came first; 4, which its device sent before it, has not arrived.
        pool.insert_gossiped(reading(&k, "a", 5), 2, 4).unwrap();
        assert_eq!(seqs(&pool), Vec::<u64>::new());
        // 4 arrives, held for 3; a reading this validator admitted itself is not held, and
        // the ones after it follow it.
        pool.insert_gossiped(reading(&k, "a", 4), 2, 3).unwrap();
        assert_eq!(seqs(&pool), Vec::<u64>::new());
        pool.insert(reading(&k, "a", 3), 2).unwrap();
        assert_eq!(seqs(&pool), vec![3, 4, 5]);
        // Once 3 is committed (and gone from the pool), 4 and 5 are free.
        pool.remove_committed([reading(&k, "a", 3).id()].iter());
        assert_eq!(seqs(&pool), Vec::<u64>::new());
        pool.prune_device(&dev, 3);
        assert_eq!(seqs(&pool), vec![4, 5]);

        // A reading whose predecessor never arrives waits GOSSIP_HOLD_BLOCKS finalized blocks.
        let mut pool = ReadingPool::new(100, 10);
        pool.finalized(10);
        pool.insert_gossiped(reading(&k, "a", 9), 0, 8).unwrap();
        pool.insert_gossiped(reading(&k, "b", 1), 0, 0).unwrap();
        assert_eq!(seqs(&pool), vec![1]);
        pool.finalized(10 + GOSSIP_HOLD_BLOCKS - 1);
        assert_eq!(seqs(&pool), vec![1]);
        pool.finalized(10 + GOSSIP_HOLD_BLOCKS);
        assert_eq!(seqs(&pool), vec![9, 1]);
        // The committed seq the pool learned when a block finalized counts, though the
        // validator that gossiped a reading knew an older one.
        let mut pool = ReadingPool::new(100, 10);
        pool.insert(reading(&k, "a", 12), 0).unwrap();
        assert!(pool.prune_device(&dev, 10).is_empty());
        assert_eq!(
            pool.insert_gossiped(reading(&k, "a", 10), 0, 0),
            Err(RejectCode::Replay)
        );
        pool.insert_gossiped(reading(&k, "a", 11), 0, 10).unwrap();
        assert_eq!(seqs(&pool), vec![11, 12]);
    }

    /// A copy of a reading checked against the state before the block that committed it
    /// finalized (gossip verifying it meanwhile, or its device sending it again) arrives with a
    /// stale committed seq, after that block emptied the device's queue: it is refused as a
    /// replay at once, not pooled to be dropped and counted as refused at the next block.
    #[test]
    fn a_copy_of_a_reading_committed_while_it_was_checked_is_a_replay() {
        let k = SecretKey::generate(Algorithm::Ed25519);
        let dev: DeviceId = "a".parse().unwrap();
        for gossiped in [true, false] {
            let mut pool = ReadingPool::new(100, 10);
            let r7 = reading(&k, "a", 7);
            pool.insert(r7.clone(), 6).unwrap();
            // The block holding 7 finalizes: the queue empties, the committed seq is told.
            pool.remove_committed([r7.id()].iter());
            assert!(pool.prune_device(&dev, 7).is_empty());
            assert!(pool.is_empty());
            // A copy checked against the state before it (committed seq 6) arrives now.
            let late = if gossiped {
                pool.insert_gossiped(r7.clone(), 6, 6)
            } else {
                pool.insert(r7.clone(), 6).map(|_| ())
            };
            assert_eq!(late, Err(RejectCode::Replay), "gossiped: {gossiped}");
            assert!(pool.is_empty());
            // The next block finds nothing to drop, and the committed reading has no refusal.
            assert!(pool.prune_device(&dev, 7).is_empty());
            assert_eq!(pool.refusal(&r7.id()), None);
            // Told an older committed seq later, the pool keeps the higher one.
            pool.prune_device(&dev, 5);
            assert_eq!(pool.insert(r7.clone(), 5), Err(RejectCode::Replay));
            // The device's next reading is pooled as ever.
            pool.insert(reading(&k, "a", 8), 6).unwrap();
            assert_eq!(pool.len(), 1);
        }
    }

    #[test]
    fn batch_verification_finds_the_bad_one() {
        let e = SecretKey::generate(Algorithm::Ed25519);
        let p = SecretKey::generate(Algorithm::P256);
        let other = SecretKey::generate(Algorithm::Ed25519);
        let items = vec![
            (reading(&e, "a", 1), e.public_key()),
            (reading(&p, "b", 1), p.public_key()),
            (reading(&e, "a", 2), other.public_key()),
            (reading(&e, "a", 3), e.public_key()),
            (reading(&p, "b", 2), e.public_key()),
        ];
        assert_eq!(verify_batch(&items), vec![true, true, false, true, false]);
    }

    #[test]
    fn a_batch_splits_into_chunks_of_equal_verification_work() {
        let e = SecretKey::generate(Algorithm::Ed25519);
        let p = SecretKey::generate(Algorithm::P256);
        let r = reading(&e, "a", 1);
        let items = |keys: &[&SecretKey]| -> Vec<(Arc<Reading>, PublicKey)> {
            keys.iter().map(|k| (r.clone(), k.public_key())).collect()
        };
        // Equal work: halves by count.
        assert_eq!(chunk_ends(&items(&[&e; 10]), 2), vec![5, 10]);
        // P256_VERIFY_COST Ed25519 signatures weigh one P-256 signature.
        let mut mixed = vec![&p];
        mixed.extend(vec![&e; P256_VERIFY_COST]);
        assert_eq!(chunk_ends(&items(&mixed), 2), vec![1, 1 + P256_VERIFY_COST]);
        assert_eq!(chunk_ends(&items(&[&p, &p, &p]), 3), vec![1, 2, 3]);
        // Never an empty chunk, never more chunks than asked.
        assert_eq!(chunk_ends(&items(&[&e]), 2), vec![1]);
        assert_eq!(chunk_ends(&items(&[&e; 3]), 1), vec![3]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_split_batch_gives_each_reading_its_own_verdict() {
        let p = SecretKey::generate(Algorithm::P256);
        let other = SecretKey::generate(Algorithm::P256);
        // Enough P-256 work to be split across two threads.
        let n = 2 * MIN_PARALLEL_CHUNK / P256_VERIFY_COST;
        let items: Vec<(Arc<Reading>, PublicKey)> = (0..n as u64)
            .map(|seq| {
                let key = if seq % 97 == 5 { &other } else { &p };
                (reading(&p, "b", seq + 1), key.public_key())
            })
            .collect();
        let want: Vec<bool> = (0..n).map(|seq| seq % 97 != 5).collect();
        assert_eq!(verify_in_parallel(items).await, want);
    }

    #[test]
    fn the_signature_cache_answers_only_for_the_key_a_reading_verified_under() {
        let device = SecretKey::generate(Algorithm::Ed25519);
        let rotated = SecretKey::generate(Algorithm::Ed25519);
        let p256 = SecretKey::generate(Algorithm::P256);
        let cache = SigCache::new(4);
        let first = reading(&device, "a", 1);
        let forged = reading(&rotated, "a", 2);
        // A reading is verified once, then known under its key only.
        assert!(cache.check(&first, &device.public_key()));
        assert!(cache.verified(&first.id(), &device.public_key()));
        assert!(!cache.verified(&first.id(), &rotated.public_key()));
        assert!(!cache.verified(&first.id(), &p256.public_key()));
        // A bad signature is never remembered as good.
        assert!(!cache.check(&forged, &device.public_key()));
        assert!(!cache.verified(&forged.id(), &device.public_key()));
        // P-256 keys are told apart as well.
        let other = reading(&p256, "b", 1);
        assert!(cache.check(&other, &p256.public_key()));
        assert!(cache.verified(&other.id(), &p256.public_key()));
        assert!(!cache.verified(
            &other.id(),
            &SecretKey::generate(Algorithm::P256).public_key()
        ));
        // Bounded: the oldest are forgotten once enough newer readings verified.
        for seq in 10..20 {
            assert!(cache.check(&reading(&device, "c", seq), &device.public_key()));
        }
        assert!(!cache.verified(&first.id(), &device.public_key()));
    }
}
