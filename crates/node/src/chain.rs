//! The chain a node follows: committed ledger state, blocks executed speculatively while
//! consensus decides on them, the transaction pool, the finalized tip and the query index.
//!
//! [App] is the consensus application (it builds and verifies blocks); [Chain::finalize]
//! applies finalized blocks in height order, as marshal delivers them.

use crate::{
    index::{FinalizedBlock, Index, IndexedReading},
    pacing::Pacing,
    pool::Pool,
    readings::{BatchVerifier, ReadingPool, SigCache, inline_verifier, verify_cost},
    tx_sigs::{TX_SIG_CACHE_ENTRIES, TxSigCache, TxVerifier, inline_tx_verifier},
};
use commonware_consensus::{
    Application, Heightable as _,
    marshal::ancestry::Ancestry,
    simplex::{scheme::ed25519::Scheme, types::Context},
};
use commonware_cryptography::{Digested, Digestible as _, ed25519};
use commonware_runtime::{
    Clock, Metrics, Spawner,
    telemetry::metrics::{
        Counter, CounterFamily, EncodeLabelSet, Gauge, GaugeExt as _, Histogram, MetricsExt as _,
    },
};
use futures::StreamExt as _;
use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::{Duration, Instant, UNIX_EPOCH},
};
use tracing::{debug, error, info, warn};
use verity_ledger::{
    BlockEnv, BuildLimits, Checks, ReadingReceipt, Receipt, TxError,
    cheques::{self, ChequeEvent},
    devices::{self, DeviceRecord},
    execute,
    state::{AccountRecord, AssetRecord, Overlay, StateReader, account_key, asset_key},
    store::{Committed, Speculative, Store, StoreError},
};
use verity_types::{
    AccountId, AssetCode, Block, DeviceId, DeviceStatus, Genesis, Hash, Header, PublicKey, Reading,
    ReadingError, RejectCode, SignedTransaction, TxBody,
};

/// How far after the node's clock a reading's record time may be (PROTOCOL.md §3).
pub const MAX_FUTURE_S: f64 = 300.0;
/// Reading verifications remembered between ingest and block verification, at most; each for at
/// least half as many newer ones, more than a readings pool holds by default (200,000).
pub const SIG_CACHE_ENTRIES: usize = 1 << 20;
/// Devices whose committed ingest view (status, key, seq) a node keeps in memory, at most; when
/// more are looked up the cache starts over.
pub const DEVICE_CACHE_ENTRIES: usize = 1 << 18;

/// What ingest needs of a committed device record.
#[derive(Clone, Copy, Debug)]
struct IngestView {
    status: DeviceStatus,
    key: PublicKey,
    last_seq: u64,
}

impl From<&DeviceRecord> for IngestView {
    fn from(d: &DeviceRecord) -> Self {
        Self {
            status: d.status,
            key: d.key,
            last_seq: d.last_seq,
        }
    }
}
/// Batches of reading outcomes (one per finalized block, or per batch of readings dropped from
/// the pool) buffered for a slow listener (MQTT receipts); a listener further behind misses
/// the oldest. A batch is freed once every listener has read it.
pub const EVENT_BUFFER: usize = 1024;

/// What happened to a reading after ingest, for receipts.
#[derive(Clone, Debug)]
pub struct ReadingEvent {
    /// The reading.
    pub reading_id: Hash,
    /// Its device.
    pub device: DeviceId,
    /// Its seq.
    pub seq: u64,
    /// Committed at a height, or rejected with a code.
    pub outcome: Result<u64, RejectCode>,
}

/// Finalized block hashes kept in memory (to answer late verification requests).
const RECENT_FINALIZED: usize = 4096;

/// A block executed on top of its parent but not yet finalized.
pub struct ExecutedBlock {
    /// The block.
    pub block: Block,
    /// Its state changes.
    pub spec: Speculative,
    /// The receipt of each transaction (outcome and movements of value).
    pub receipts: Vec<Receipt>,
    /// The cheque lifecycle steps it makes.
    pub cheque_events: Vec<(u32, ChequeEvent)>,
    /// The outcome of each reading.
    pub reading_receipts: Vec<ReadingReceipt>,
}

/// Buckets, in seconds, of the histograms that time a stage of a reading's or block's way.
const STAGE_BUCKETS: [f64; 14] = [
    0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0,
];

/// The latest finalized block.
#[derive(Clone, Copy, Debug)]
pub struct Tip {
    /// Height.
    pub height: u64,
    /// Block hash.
    pub hash: Hash,
    /// State root after it.
    pub state_root: Hash,
    /// Block time.
    pub timestamp_ms: u64,
}

/// Limits the chain enforces.
#[derive(Clone, Copy, Debug)]
pub struct ChainLimits {
    /// Most transactions in a block.
    pub max_block_txs: usize,
    /// Most readings in a block.
    pub max_block_readings: usize,
    /// Most that the readings of a proposed block may cost to verify together (see
    /// [crate::readings::verify_cost]); limits what this node proposes only.
    pub max_block_verify_cost: usize,
    /// Most encoded bytes of a block.
    pub max_block_bytes: usize,
    /// How far ahead of the local clock a block's time may be.
    pub max_clock_skew_ms: u64,
    /// How far ahead of an account's nonce a submitted transaction may be.
    pub max_nonce_ahead: u64,
}

struct ChainMetrics {
    height: Gauge,
    finalized_height: Gauge,
    blocks: Counter,
    txs: Counter,
    pool_size: Gauge,
    finality_latency: Histogram,
    pool_wait: Histogram,
    build_time: Histogram,
    verify_time: Histogram,
    apply_time: Histogram,
    proposed: Counter,
    paced: Counter,
    wakes: Counter,
    rejected_blocks: Counter,
    readings: Counter,
    readings_gossiped: Counter,
    readings_pool: Gauge,
    readings_rejected: CounterFamily<RejectLabel>,
    readings_overwritten: Counter,
    receipts_dropped: Counter,
}

/// The label of the rejected-readings counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectLabel {
    /// The error code.
    pub code: String,
}

/// Why a submitted transaction was refused.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// Malformed or too large.
    #[error(transparent)]
    Decode(#[from] verity_types::tx::TxDecodeError),
    /// Refused by the ledger rules against committed state.
    #[error(transparent)]
    Ledger(#[from] TxError),
    /// The pool would not take it.
    #[error(transparent)]
    Pool(#[from] crate::pool::PoolError),
}

impl SubmitError {
    /// The API error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Decode(verity_types::tx::TxDecodeError::TooLarge(_)) => "tx_too_large",
            Self::Decode(_) => "malformed",
            Self::Ledger(e) => e.code(),
            Self::Pool(e) => e.code(),
        }
    }
}

/// What became of a submitted transaction.
#[derive(Debug, PartialEq, Eq)]
pub enum Submitted {
    /// Now pending (or already was).
    Pending,
    /// Already committed at this height.
    Committed(u64),
}

/// A finalized block the node cannot apply: its state root disagrees with ours. The node stops
/// rather than diverge.
#[derive(Debug, thiserror::Error)]
#[error("cannot apply finalized block {height}: {reason}")]
pub struct FinalizeError {
    /// Height.
    pub height: u64,
    /// Why.
    pub reason: String,
}

/// The chain state of one node.
pub struct Chain<E: commonware_storage::Context + Spawner> {
    /// The genesis document.
    pub genesis: Genesis,
    /// The chain id (genesis hash).
    pub chain_id: Hash,
    /// The genesis block.
    pub genesis_block: Block,
    /// Consensus keys of the validators.
    pub validators: Vec<ed25519::PublicKey>,
    store: tokio::sync::RwLock<Store<E>>,
    pending: Mutex<HashMap<Hash, Arc<ExecutedBlock>>>,
    /// Transactions waiting for a block.
    pub pool: Mutex<Pool>,
    /// Readings waiting for a block.
    pub readings: Mutex<ReadingPool>,
    /// Readings verified under a key.
    pub sigs: SigCache,
    /// Transactions whose signatures verified.
    pub tx_sigs: TxSigCache,
    tx_verifier: TxVerifier,
    /// Committed devices as ingest sees them (`None`: not registered), so ingest reads neither
    /// the state nor its lock per reading. Filled under the store's read lock and updated by
    /// [Chain::finalize] under its write lock, so it never holds a record older than the
    /// committed state.
    devices: Mutex<HashMap<DeviceId, Option<IngestView>>>,
    verifier: BatchVerifier,
    events: tokio::sync::broadcast::Sender<Arc<[ReadingEvent]>>,
    tip: Mutex<Tip>,
    recent: Mutex<BTreeMap<u64, (Hash, Hash)>>,
    /// The query index (absent in simulations).
    pub index: Option<Index>,
    /// Limits.
    pub limits: ChainLimits,
    /// Pacing of empty blocks while the network is idle (off unless set).
    pub pacing: Pacing,
    /// Readings admitted here, to gossip to the other validators.
    pub outbox: crate::gossip::ReadingOutbox,
    metrics: ChainMetrics,
}

/// Milliseconds since the Unix epoch of `t` (0 before it).
pub(crate) fn millis(t: std::time::SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

impl<E: commonware_storage::Context + Spawner + Metrics> Chain<E> {
    /// Opens the chain's state (writing the genesis state on first start).
    pub async fn open(
        context: E,
        partition_prefix: &str,
        genesis: Genesis,
        validators: Vec<ed25519::PublicKey>,
        index: Option<Index>,
        limits: ChainLimits,
        (pool, readings): (Pool, ReadingPool),
    ) -> Result<Self, StoreError> {
        let metrics = ChainMetrics {
            height: context.gauge(
                "height",
                "Highest block executed here (proposed or verified, maybe not yet final)",
            ),
            finalized_height: context.gauge("finalized_height", "Latest finalized height"),
            blocks: context.counter("blocks", "Finalized blocks applied"),
            txs: context.counter("transactions", "Finalized transactions applied"),
            pool_size: context.gauge("pool_size", "Transactions waiting in the pool"),
            finality_latency: context.histogram(
                "finality_latency_seconds",
                "From a block's timestamp to its application here",
                [
                    0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0,
                ],
            ),
            pool_wait: context.histogram(
                "reading_pool_wait_seconds",
                "From a reading's admission to the pool to a block this node proposes with it",
                STAGE_BUCKETS,
            ),
            build_time: context.histogram(
                "block_build_seconds",
                "Building (executing and merkleizing) a block this node proposes",
                STAGE_BUCKETS,
            ),
            verify_time: context.histogram(
                "block_verify_seconds",
                "Verifying another validator's proposed block before voting on it",
                STAGE_BUCKETS,
            ),
            apply_time: context.histogram(
                "block_apply_seconds",
                "Applying a finalized block: indexing it and committing its state",
                STAGE_BUCKETS,
            ),
            proposed: context.counter("blocks_proposed", "Blocks this node proposed"),
            paced: context.counter(
                "blocks_paced",
                "Proposals this node held back while the network was idle",
            ),
            wakes: context.counter(
                "pacing_wakes",
                "Wakes from peers that admitted a reading while the network was idle",
            ),
            rejected_blocks: context.counter("blocks_rejected", "Proposed blocks that got no vote"),
            readings: context.counter("readings_committed", "Finalized readings accepted"),
            readings_gossiped: context.counter(
                "readings_gossiped",
                "Readings other validators admitted and gossiped, pooled here",
            ),
            readings_pool: context.gauge("readings_pool_size", "Readings waiting in the pool"),
            readings_rejected: context.family(
                "readings_rejected",
                "Readings refused, at ingest or in a block, by error code",
            ),
            readings_overwritten: context.counter(
                "mqtt_readings_overwritten",
                "Readings published to the embedded MQTT broker that its log overwrote (or \
                 expired) before this node read them: lost, with no receipt",
            ),
            receipts_dropped: context.counter(
                "mqtt_receipts_dropped",
                "MQTT receipts dropped because the queue of receipts to publish was full",
            ),
        };
        let store = Store::open(
            context.child("state"),
            &format!("{partition_prefix}-state"),
            &genesis,
        )
        .await?;
        let committed = store.committed();
        let genesis_block = Block::genesis(genesis.genesis_time_ms, committed.genesis_root);
        let chain_id = genesis.chain_id();
        if let Some(index) = &index
            && let Err(e) = index.truncate_above(committed.height)
        {
            return Err(StoreError::Db(e.to_string()));
        }
        let tip = Tip {
            height: committed.height,
            hash: if committed.height == 0 {
                genesis_block.hash()
            } else {
                Hash::from([0u8; 32])
            },
            state_root: committed.root,
            timestamp_ms: genesis.genesis_time_ms,
        };
        metrics.finalized_height.set(committed.height as i64);
        metrics.height.set(committed.height as i64);
        Ok(Self {
            genesis,
            chain_id,
            genesis_block,
            pacing: Pacing::new(Duration::ZERO, validators.len()),
            outbox: Default::default(),
            validators,
            store: tokio::sync::RwLock::new(store),
            pending: Mutex::new(HashMap::new()),
            pool: Mutex::new(pool),
            readings: Mutex::new(readings),
            sigs: SigCache::new(SIG_CACHE_ENTRIES),
            tx_sigs: TxSigCache::new(chain_id, TX_SIG_CACHE_ENTRIES),
            tx_verifier: inline_tx_verifier(),
            devices: Mutex::new(HashMap::new()),
            verifier: inline_verifier(),
            events: tokio::sync::broadcast::channel(EVENT_BUFFER).0,
            tip: Mutex::new(tip),
            recent: Mutex::new(BTreeMap::new()),
            index,
            limits,
            metrics,
        })
    }

    /// Chooses where block verification checks batches of reading signatures (inline unless
    /// set).
    pub fn set_verifier(&mut self, verifier: BatchVerifier) {
        self.verifier = verifier;
    }

    /// Chooses where batches of transaction signatures are checked (inline unless set).
    pub fn set_tx_verifier(&mut self, verifier: TxVerifier) {
        self.tx_verifier = verifier;
    }

    /// Verifies, in one batch, the signatures of `txs` not verified before, and remembers the
    /// ones that verify ([crate::tx_sigs]).
    pub async fn verify_txs(&self, txs: &[SignedTransaction]) {
        let todo: Vec<SignedTransaction> = txs
            .iter()
            .filter(|t| !self.tx_sigs.verified(&t.id()))
            .cloned()
            .collect();
        if todo.is_empty() {
            return;
        }
        let verdicts = (self.tx_verifier)(self.chain_id, todo.clone()).await;
        for (t, ok) in todo.iter().zip(verdicts) {
            if ok {
                self.tx_sigs.insert(t.id());
            }
        }
    }

    /// Paces the empty blocks this node proposes while the network is idle: at least
    /// `interval` apart (zero, the default, never waits). See [crate::pacing].
    pub fn set_idle_block_interval(&mut self, interval: Duration) {
        self.pacing = Pacing::new(interval, self.validators.len());
    }

    /// The embedded MQTT broker overwrote `n` published readings before this node read them
    /// ([crate::mqtt]).
    pub fn readings_overwritten(&self, n: u64) {
        self.metrics.readings_overwritten.inc_by(n);
    }

    /// The counter of MQTT receipts dropped because the queue of receipts to publish was full
    /// ([crate::mqtt::RECEIPT_QUEUE]).
    pub fn receipts_dropped_metric(&self) -> Counter {
        self.metrics.receipts_dropped.clone()
    }

    /// A peer admitted a reading while the network was idle: propose without waiting for a
    /// while ([crate::pacing]).
    pub fn woken_by_peer(&self) {
        self.metrics.wakes.inc();
        self.pacing.woken(self.tip().height);
    }

    /// Whether no transaction and no reading waits in this node's pools.
    pub fn pools_empty(&self) -> bool {
        self.pool.lock().expect("pool lock").is_empty()
            && self.readings.lock().expect("readings lock").is_empty()
    }

    /// When the leader of a child of `parent` proposes if no work arrives first: `parent`'s
    /// time plus the idle interval, if the pools are empty, no peer has woken this node for
    /// that height, and `parent` and the blocks before it, a whole rotation of the leaders,
    /// are all empty (`ancestry` continues from `parent`'s parent); `None` to propose now.
    pub async fn idle_deadline_ms(
        &self,
        parent: &Digested<Block>,
        mut ancestry: impl Ancestry<Block>,
    ) -> Option<u64> {
        let interval = self.pacing.interval();
        let header = &parent.inner().header;
        if interval.is_zero() || self.pacing.awake_at(header.height + 1) || !self.pools_empty() {
            return None;
        }
        let mut block = parent.clone();
        for seen in 1..=self.pacing.rotation() {
            let b = block.inner();
            if !b.txs.is_empty() || !b.readings.is_empty() {
                return None;
            }
            if seen == self.pacing.rotation() || b.header.height == 0 {
                break;
            }
            block = ancestry.next().await?;
        }
        Some(header.timestamp_ms + interval.as_millis() as u64)
    }

    /// Sets the tip from the last finalized block found on disk at start.
    pub fn restore_tip(&self, block: &Block) {
        let mut tip = self.tip.lock().expect("tip lock");
        tip.hash = block.hash();
        tip.timestamp_ms = block.header.timestamp_ms;
        tip.state_root = block.header.state_root;
        self.recent
            .lock()
            .expect("recent lock")
            .insert(block.header.height, (block.hash(), block.header.state_root));
    }

    /// The most recent finalized blocks applied here: height, block hash, and the state root
    /// this node computed after applying it.
    pub fn finalized_log(&self) -> Vec<(u64, Hash, Hash)> {
        let recent = self.recent.lock().expect("recent lock");
        recent.iter().map(|(h, (b, r))| (*h, *b, *r)).collect()
    }

    /// The latest finalized block.
    pub fn tip(&self) -> Tip {
        *self.tip.lock().expect("tip lock")
    }

    /// Height of committed state.
    pub async fn committed(&self) -> Committed {
        self.store.read().await.committed()
    }

    /// An account as committed.
    pub async fn account(&self, id: &AccountId) -> Result<Option<AccountRecord>, TxError> {
        let store = self.store.read().await;
        let reader = store.reader();
        let overlay = Overlay::new(&reader);
        overlay.get(&account_key(id)).await
    }

    /// Any ledger record as committed, by its state key.
    pub async fn record<T: commonware_codec::Read<Cfg = ()>>(
        &self,
        key: &verity_ledger::state::StateKey,
    ) -> Result<Option<T>, TxError> {
        let store = self.store.read().await;
        let reader = store.reader();
        let overlay = Overlay::new(&reader);
        overlay.get(key).await
    }

    /// An asset as committed.
    pub async fn asset(&self, code: &AssetCode) -> Result<Option<AssetRecord>, TxError> {
        let store = self.store.read().await;
        let reader = store.reader();
        let overlay = Overlay::new(&reader);
        overlay.get(&asset_key(code)).await
    }

    /// Checks a submitted transaction against committed state and puts it in the pool; one
    /// already committed is answered with its height.
    ///
    /// The index is asked only about a transaction whose nonce its account has passed: a
    /// committed transaction always is one (committing it advanced the nonce; a block holds no
    /// refused transaction), so the lookup, a read of the index's store, is spared for every
    /// new submission.
    pub async fn submit(&self, tx: &SignedTransaction) -> Result<Submitted, SubmitError> {
        let refused = match self.admit(tx).await {
            Err(e @ SubmitError::Ledger(TxError::BadNonce { expected, got }))
                if got.0 < expected.0 =>
            {
                e
            }
            other => return other,
        };
        if let Some(index) = &self.index
            && let Ok(Some((height, _))) = index.tx_location(&tx.id())
        {
            return Ok(Submitted::Committed(height));
        }
        Err(refused)
    }

    /// A transaction another validator gossiped: checked and pooled as [Chain::submit] does,
    /// without ever looking for it among the committed ones, since nobody waits for that
    /// answer. One already committed is refused `nonce_too_low`: a block holds no refused
    /// transaction, so committing it advanced its account's nonce past it.
    pub async fn submit_gossiped(&self, tx: &SignedTransaction) -> Result<Submitted, SubmitError> {
        self.admit(tx).await
    }

    async fn admit(&self, tx: &SignedTransaction) -> Result<Submitted, SubmitError> {
        if self.pool.lock().expect("pool lock").contains(&tx.id()) {
            return Ok(Submitted::Pending);
        }
        if !self.tx_sigs.check_one(tx) {
            return Err(TxError::BadSignature.into());
        }
        {
            let store = self.store.read().await;
            let reader = store.reader();
            let mut overlay = Overlay::new(&reader);
            let account: AccountRecord = overlay
                .get(&account_key(&tx.tx.account()))
                .await?
                .unwrap_or_default();
            let nonce = tx.tx.nonce;
            // Only accounts already on the ledger may queue transactions ahead of their nonce,
            // so fresh keys cannot fill the pool with transactions that never execute.
            let unknown_account = account == AccountRecord::default();
            if nonce.0 < account.nonce
                || nonce.0 >= account.nonce + self.limits.max_nonce_ahead
                || (unknown_account && nonce.0 > 0)
            {
                return Err(TxError::BadNonce {
                    expected: verity_types::Nonce(account.nonce),
                    got: nonce,
                }
                .into());
            }
            if nonce.0 == account.nonce {
                // A dry run against committed state gives the submitter an immediate answer.
                let env = BlockEnv {
                    chain_id: self.chain_id,
                    height: store.committed().height + 1,
                    timestamp_ms: self.tip().timestamp_ms,
                };
                execute::apply_tx(&mut overlay, &env, tx, &AlreadyVerified).await?;
            }
        }
        let mut pool = self.pool.lock().expect("pool lock");
        pool.insert(tx.clone())?;
        self.metrics.pool_size.set(pool.len() as i64);
        if pool.len() == 1 {
            // Gossip takes it to the other validators' pools, which wakes them in turn.
            self.pacing.work_arrived(false);
        }
        Ok(Submitted::Pending)
    }

    /// A pending transaction (waiting in the pool).
    pub fn pending_tx(&self, id: &Hash) -> bool {
        self.pool.lock().expect("pool lock").contains(id)
    }

    /// Why the pool dropped a transaction, if it did.
    pub fn refusal(&self, id: &Hash) -> Option<(String, String)> {
        self.pool.lock().expect("pool lock").refusal(id).cloned()
    }

    /// A device as committed.
    pub async fn device(&self, id: &DeviceId) -> Result<Option<DeviceRecord>, TxError> {
        let store = self.store.read().await;
        let reader = store.reader();
        let overlay = Overlay::new(&reader);
        devices::load(&overlay, id).await
    }

    /// Listens to what becomes of readings (committed or rejected after ingest), in batches.
    pub fn reading_events(&self) -> tokio::sync::broadcast::Receiver<Arc<[ReadingEvent]>> {
        self.events.subscribe()
    }

    fn count_rejected(&self, code: RejectCode) {
        self.metrics
            .readings_rejected
            .get_or_create(&RejectLabel {
                code: code.code().to_string(),
            })
            .inc();
    }

    /// Counts a reading refused at ingest.
    pub fn reading_refused(&self, e: &ReadingError) {
        self.count_rejected(e.code);
    }

    /// The state-free checks and the device lookup of ingest: returns the decoded reading, the
    /// device's key and its committed seq. The signature is checked next, by the caller, in
    /// batches and off the async executor; then [Chain::admit_reading].
    /// `topic_device` is the device id an MQTT topic names; it must equal the `kid`.
    pub async fn prepare_reading(
        &self,
        bytes: &[u8],
        now_ms: u64,
        topic_device: Option<&DeviceId>,
    ) -> Result<(Arc<Reading>, PublicKey, u64), ReadingError> {
        let reading = Reading::decode(bytes)?;
        if topic_device.is_some_and(|d| d != reading.device()) {
            return Err(ReadingError::new(
                RejectCode::BadHeader,
                "the topic's device id differs from the reading's kid",
            ));
        }
        let now_s = now_ms as f64 / 1000.0;
        if reading.max_time() > now_s + MAX_FUTURE_S {
            return Err(ReadingError::new(
                RejectCode::FutureTimestamp,
                format!("a record is dated more than {MAX_FUTURE_S} s after this node's clock"),
            ));
        }
        let id = reading.device();
        let device = self
            .ingest_view(id)
            .await
            .map_err(|e| ReadingError::new(RejectCode::PoolFull, e.to_string()))?
            .ok_or_else(|| {
                ReadingError::new(
                    RejectCode::UnknownDevice,
                    format!("no device {id} is registered"),
                )
            })?;
        if device.status != DeviceStatus::Active {
            return Err(ReadingError::new(
                RejectCode::DeviceNotActive,
                format!("device {id} is {}", device.status),
            ));
        }
        if device.key.algorithm() != reading.algorithm() {
            return Err(ReadingError::new(
                RejectCode::WrongAlgorithm,
                format!(
                    "device {id} is registered with {}, the reading uses {}",
                    device.key.algorithm(),
                    reading.algorithm()
                ),
            ));
        }
        Ok((Arc::new(reading), device.key, device.last_seq))
    }

    /// A device as committed, as ingest needs it: from memory, or read from the state (and
    /// remembered) under the store's read lock.
    async fn ingest_view(&self, id: &DeviceId) -> Result<Option<IngestView>, TxError> {
        if let Some(v) = self.devices.lock().expect("devices lock").get(id) {
            return Ok(*v);
        }
        let store = self.store.read().await;
        let reader = store.reader();
        let view = devices::load(&Overlay::new(&reader), id)
            .await?
            .as_ref()
            .map(IngestView::from);
        let mut cache = self.devices.lock().expect("devices lock");
        if cache.len() >= DEVICE_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(id.clone(), view);
        Ok(view)
    }

    /// Whether the reading pool has room now for each of these readings' devices, in order
    /// ([ReadingPool::room_for]): a reading without room is refused `pool_full` before its
    /// signature is checked.
    pub fn reading_room<'a>(&self, devices: impl IntoIterator<Item = &'a DeviceId>) -> Vec<bool> {
        self.readings
            .lock()
            .expect("readings lock")
            .room_for(devices)
    }

    /// Admits a prepared reading whose signature check gave `verified`.
    pub fn admit_reading(
        &self,
        reading: Arc<Reading>,
        key: PublicKey,
        last_seq: u64,
        verified: bool,
    ) -> Result<(), ReadingError> {
        if !verified {
            return Err(ReadingError::new(
                RejectCode::BadSignature,
                "the signature does not verify with the device's current key",
            ));
        }
        self.sigs.insert(reading.id(), key);
        let mut pool = self.readings.lock().expect("readings lock");
        let after = pool.insert(reading.clone(), last_seq).map_err(|code| {
            let detail = match code {
                RejectCode::Replay => format!(
                    "seq {} is not above the device's highest accepted or pending seq",
                    reading.seq()
                ),
                _ => return crate::readings::pool_full(),
            };
            ReadingError::new(code, detail)
        })?;
        self.metrics.readings_pool.set(pool.len() as i64);
        if pool.len() == 1 {
            // Wake the others too, so that leaders waiting on an idle network propose at once
            // (gossip brings them the reading a moment later).
            self.pacing.work_arrived(true);
        }
        drop(pool);
        self.outbox.push(reading, after);
        Ok(())
    }

    /// Finds readings waiting in this node's pool by id, for block decoding
    /// ([verity_types::block::KnownReadings]).
    pub fn known_readings(self: &Arc<Self>) -> verity_types::block::KnownReadings
    where
        E: 'static,
    {
        let chain = Arc::downgrade(self);
        Arc::new(move |id| {
            let chain = chain.upgrade()?;
            let pool = chain.readings.lock().expect("readings lock");
            pool.get(id)
        })
    }

    /// Admits readings another validator admitted and gossiped, each with the seq its device
    /// sent before it: the checks of ingest, signatures included (verified together), then
    /// the pool, where each is held until the one before it is decided
    /// ([crate::readings]). Readings that fail are dropped silently: the validator that
    /// admitted them answered their devices. Returns how many were pooled.
    pub async fn admit_gossiped(&self, batch: &[(u64, &[u8])], now_ms: u64) -> usize {
        let mut prepared = Vec::with_capacity(batch.len());
        for (after, bytes) in batch {
            match self.prepare_reading(bytes, now_ms, None).await {
                Ok((reading, key, last_seq)) => prepared.push((reading, key, last_seq, *after)),
                Err(e) => debug!(error = %e, "gossiped reading refused"),
            }
        }
        // Readings the pool has no room for are dropped before their signatures are checked.
        let room = self.reading_room(prepared.iter().map(|(r, ..)| r.device()));
        let mut room = room.into_iter();
        prepared.retain(|_| room.next().unwrap_or(false));
        let todo: Vec<(Arc<Reading>, PublicKey)> = prepared
            .iter()
            .filter(|(r, k, _, _)| !self.sigs.verified(&r.id(), k))
            .map(|(r, k, _, _)| (r.clone(), *k))
            .collect();
        self.verify_and_remember(todo).await;
        let mut pooled = 0;
        let mut pool = self.readings.lock().expect("readings lock");
        let was_empty = pool.is_empty();
        for (reading, key, last_seq, after) in prepared {
            if self.sigs.verified(&reading.id(), &key)
                && pool.insert_gossiped(reading, last_seq, after).is_ok()
            {
                pooled += 1;
            }
        }
        self.metrics.readings_pool.set(pool.len() as i64);
        drop(pool);
        self.metrics.readings_gossiped.inc_by(pooled as u64);
        if was_empty && pooled > 0 {
            self.pacing.work_arrived(false);
        }
        pooled
    }

    /// A reading waiting in the pool, or why it was dropped after ingest.
    pub fn pending_reading(&self, id: &Hash) -> Option<Result<Arc<Reading>, RejectCode>> {
        let pool = self.readings.lock().expect("readings lock");
        if let Some(r) = pool.get(id) {
            return Some(Ok(r));
        }
        pool.refusal(id).map(Err)
    }

    /// Verifies, in one batch, the signatures of `readings` not verified before, under the
    /// keys their devices have in `reader`'s state, and remembers the good ones.
    async fn preverify<R: StateReader>(&self, reader: &R, readings: &[Arc<Reading>]) {
        let overlay = Overlay::new(reader);
        let mut todo = Vec::new();
        for r in readings {
            if let Ok(Some(d)) = devices::load(&overlay, r.device()).await
                && !self.sigs.verified(&r.id(), &d.key)
            {
                todo.push((r.clone(), d.key));
            }
        }
        self.verify_and_remember(todo).await;
    }

    /// Verifies `todo` in one batch and remembers the readings that verified.
    async fn verify_and_remember(&self, todo: Vec<(Arc<Reading>, PublicKey)>) {
        if todo.is_empty() {
            return;
        }
        let verdicts = (self.verifier)(todo.clone()).await;
        for ((r, key), ok) in todo.iter().zip(verdicts) {
            if ok {
                self.sigs.insert(r.id(), *key);
            }
        }
    }

    /// The executed state to build on for `parent`: `None` for committed state, or the
    /// speculative batch of an unfinalized block. Ancestors not yet executed here are executed
    /// (strictly) first. Must be called with the store lock held. `Err(true)` means the parent
    /// chain is permanently invalid, `Err(false)` that it cannot be decided now.
    async fn parent_state(
        &self,
        store: &Store<E>,
        parent: Digested<Block>,
        mut ancestry: impl Ancestry<Block>,
    ) -> Result<Option<Arc<ExecutedBlock>>, bool> {
        let committed = store.committed();
        let tip = self.tip();
        let mut chain = vec![parent];
        loop {
            let b = chain.last().expect("non-empty");
            let h = b.inner().header.height;
            if h == committed.height {
                if b.digest() == tip.hash {
                    break;
                }
                return Err(true);
            }
            if h < committed.height {
                return Err(true);
            }
            if self
                .pending
                .lock()
                .expect("pending lock")
                .contains_key(&b.digest())
            {
                break;
            }
            match ancestry.next().await {
                Some(next) => chain.push(next),
                None => return Err(false),
            }
        }
        // chain: parent, grandparent, …, known block. Execute the unknown ones oldest first.
        let known = chain.pop().expect("non-empty");
        let mut base = self.pending_of(&known.digest());
        for b in chain.into_iter().rev() {
            match self.execute_strict(store, base.as_ref(), b.inner()).await {
                Ok(executed) => base = Some(executed),
                Err(e) => {
                    warn!(height = b.inner().header.height, error = %e, "ancestor does not execute");
                    return Err(true);
                }
            }
        }
        Ok(base)
    }

    /// Counts readings dropped from the pool after ingest and tells their devices why.
    fn announce_dropped(&self, dropped: Vec<(Arc<Reading>, RejectCode)>) {
        if dropped.is_empty() {
            return;
        }
        let mut events = Vec::with_capacity(dropped.len());
        for (r, code) in dropped {
            self.count_rejected(code);
            events.push(ReadingEvent {
                reading_id: r.id(),
                device: r.device().clone(),
                seq: r.seq(),
                outcome: Err(code),
            });
        }
        let _ = self.events.send(events.into());
    }

    /// Drops readings the ledger refused while building a block, telling their devices why.
    /// The ids of the readings in `tip` and its ancestors that are executed but not finalized.
    fn unfinalized_reading_ids(&self, tip: &Hash) -> std::collections::HashSet<Hash> {
        let mut ids = std::collections::HashSet::new();
        let mut at = *tip;
        while let Some(b) = self.pending_of(&at) {
            ids.extend(b.block.readings.iter().map(|r| r.id()));
            at = b.block.header.parent;
        }
        ids
    }

    fn drop_refused_readings(&self, refused: &[(Hash, RejectCode)]) {
        // A replay found while building may be an unfinalized ancestor's reading seen from a
        // stale pool, or a real one; the pool is pruned of real ones when blocks finalize.
        let refused: Vec<(Hash, RejectCode)> = refused
            .iter()
            .filter(|(_, c)| *c != RejectCode::Replay)
            .copied()
            .collect();
        if refused.is_empty() {
            return;
        }
        let dropped: Vec<(Arc<Reading>, RejectCode)> = {
            let mut pool = self.readings.lock().expect("readings lock");
            let out = refused
                .iter()
                .filter_map(|(id, code)| pool.refuse(id, *code).map(|r| (r, *code)))
                .collect();
            self.metrics.readings_pool.set(pool.len() as i64);
            out
        };
        self.announce_dropped(dropped);
    }

    /// After a finalized block: removes its readings from the pool, and drops pending readings
    /// that can no longer commit (their device is no longer active, or a higher seq committed).
    fn prune_reading_pool(&self, block: &Block, states: &[DeviceRecord]) {
        let mut dropped = Vec::new();
        {
            let mut pool = self.readings.lock().expect("readings lock");
            pool.finalized(block.header.height);
            pool.remove_committed(
                block
                    .readings
                    .iter()
                    .map(|r| r.id())
                    .collect::<Vec<_>>()
                    .iter(),
            );
            for d in states {
                if d.status == DeviceStatus::Active {
                    for r in pool.prune_device(&d.id, d.last_seq) {
                        dropped.push((r, RejectCode::Replay));
                    }
                } else {
                    for r in pool.drop_device(&d.id, RejectCode::DeviceNotActive) {
                        dropped.push((r, RejectCode::DeviceNotActive));
                    }
                }
            }
            self.metrics.readings_pool.set(pool.len() as i64);
        }
        self.announce_dropped(dropped);
    }

    fn pending_of(&self, digest: &Hash) -> Option<Arc<ExecutedBlock>> {
        self.pending
            .lock()
            .expect("pending lock")
            .get(digest)
            .cloned()
    }

    /// Executes `block` on `base`, checking every transaction and every root in its header;
    /// remembers the result as pending.
    async fn execute_strict(
        &self,
        store: &Store<E>,
        base: Option<&Arc<ExecutedBlock>>,
        block: &Block,
    ) -> Result<Arc<ExecutedBlock>, String> {
        if let Some(done) = self.pending_of(&block.hash()) {
            return Ok(done);
        }
        let header = &block.header;
        let reader = store.begin(base.map(|b| &b.spec));
        let env = BlockEnv {
            chain_id: self.chain_id,
            height: header.height,
            timestamp_ms: header.timestamp_ms,
        };
        self.preverify(&reader, &block.readings).await;
        self.verify_txs(&block.txs).await;
        let (writes, executed) = {
            let mut overlay = Overlay::new(&reader);
            let checks = Checks {
                txs: &self.tx_sigs,
                readings: &self.sigs,
            };
            let executed =
                execute::execute_block(&mut overlay, &env, &block.txs, &block.readings, checks)
                    .await
                    .map_err(|e| e.to_string())?;
            (overlay.into_writes(), executed)
        };
        if executed.receipts_root() != header.receipts_root {
            return Err("receipts root does not match".into());
        }
        if Block::readings_root_of(&block.readings) != header.readings_root {
            return Err("readings root does not match".into());
        }
        let spec = store
            .finish(reader, writes, header.height)
            .await
            .map_err(|e| e.to_string())?;
        if spec.root() != header.state_root {
            return Err(format!(
                "state root {} does not match the header's {}",
                spec.root(),
                header.state_root
            ));
        }
        self.metrics.height.try_set_max(header.height).ok();
        let done = Arc::new(ExecutedBlock {
            block: block.clone(),
            spec,
            receipts: executed.receipts,
            cheque_events: executed.cheque_events,
            reading_receipts: executed.reading_receipts,
        });
        self.pending
            .lock()
            .expect("pending lock")
            .insert(block.hash(), done.clone());
        Ok(done)
    }

    /// Builds a block on `parent` from the pool.
    async fn build(
        &self,
        parent: Digested<Block>,
        ancestry: impl Ancestry<Block>,
        now_ms: u64,
        proposer: [u8; 32],
    ) -> Option<Block> {
        let started = Instant::now();
        let store = self.store.read().await;
        let parent_header = parent.inner().header.clone();
        let base = match self.parent_state(&store, parent.clone(), ancestry).await {
            Ok(b) => b,
            Err(_) => {
                debug!(parent = parent_header.height, "cannot build on parent");
                return None;
            }
        };
        let height = parent_header.height + 1;
        let timestamp_ms = now_ms.max(parent_header.timestamp_ms + 1);
        let env = BlockEnv {
            chain_id: self.chain_id,
            height,
            timestamp_ms,
        };
        let candidates = self
            .pool
            .lock()
            .expect("pool lock")
            .candidates(self.limits.max_block_txs * 2);
        // Readings of unfinalized ancestors are still in the pool (they leave it when their
        // block finalizes): skip them rather than refuse them as replays.
        let in_ancestors = self.unfinalized_reading_ids(&parent.digest());
        // Bounded by count and by what the other validators pay to verify them before voting.
        let mut cost = 0;
        let reading_candidates: Vec<Arc<Reading>> = {
            let pool = self.readings.lock().expect("readings lock");
            pool.candidates(self.limits.max_block_readings + in_ancestors.len())
        }
        .into_iter()
        .filter(|r| !in_ancestors.contains(&r.id()))
        .take(self.limits.max_block_readings)
        .take_while(|r| {
            cost += verify_cost(r.algorithm());
            cost <= self.limits.max_block_verify_cost
        })
        .collect();
        let reader = store.begin(base.as_ref().map(|b| &b.spec));
        let limits = BuildLimits {
            max_txs: self.limits.max_block_txs,
            max_readings: self.limits.max_block_readings,
            max_body_bytes: self
                .limits
                .max_block_bytes
                .saturating_sub(verity_types::block::HEADER_BYTES + 16),
        };
        let (built, writes) = {
            let mut overlay = Overlay::new(&reader);
            let checks = Checks {
                txs: &AlreadyVerified,
                readings: &self.sigs,
            };
            let built = match execute::build_block(
                &mut overlay,
                &env,
                candidates,
                reading_candidates,
                limits,
                checks,
            )
            .await
            {
                Ok(r) => r,
                Err(e) => {
                    error!(error = %e, "building a block failed");
                    return None;
                }
            };
            (built, overlay.into_writes())
        };
        self.drop_refused_readings(&built.refused_readings);
        {
            let mut pool = self.pool.lock().expect("pool lock");
            for (id, e) in built.refused_txs {
                // A nonce ahead may become valid once earlier ones commit; one behind is
                // usually in an unfinalized ancestor and is pruned when that finalizes.
                if !matches!(e, TxError::BadNonce { .. }) {
                    pool.refuse(&id, e.code(), e.to_string());
                }
            }
        }
        let spec = match store.finish(reader, writes, height).await {
            Ok(s) => s,
            Err(e) => {
                error!(error = %e, "merkleizing a block failed");
                return None;
            }
        };
        let header = Header {
            parent: parent.digest(),
            height,
            timestamp_ms,
            proposer,
            txs_root: Block::txs_root_of(&built.txs),
            readings_root: Block::readings_root_of(&built.readings),
            receipts_root: built.executed.receipts_root(),
            state_root: spec.root(),
        };
        {
            let pool = self.readings.lock().expect("readings lock");
            for r in &built.readings {
                if let Some(waited) = pool.waited(&r.id()) {
                    self.metrics.pool_wait.observe(waited.as_secs_f64());
                }
            }
        }
        let block = Block::new(header, built.txs, built.readings);
        self.pending.lock().expect("pending lock").insert(
            block.hash(),
            Arc::new(ExecutedBlock {
                block: block.clone(),
                spec,
                receipts: built.executed.receipts,
                cheque_events: built.executed.cheque_events,
                reading_receipts: built.executed.reading_receipts,
            }),
        );
        self.metrics.proposed.inc();
        self.metrics.height.try_set_max(height).ok();
        self.metrics
            .build_time
            .observe(started.elapsed().as_secs_f64());
        Some(block)
    }

    /// Verifies a proposed block: structure, time, proposer, and full execution.
    async fn verify_block(
        &self,
        block: Digested<Block>,
        parent: Digested<Block>,
        ancestry: impl Ancestry<Block>,
        leader: &ed25519::PublicKey,
        now_ms: u64,
    ) -> Result<(), bool> {
        let b = block.inner();
        let p = parent.inner();
        let invalid = |why: &str| {
            warn!(height = b.header.height, reason = why, "rejecting block");
            Err(true)
        };
        if b.header.parent != parent.digest() || b.header.height != p.header.height + 1 {
            return invalid("does not extend its parent");
        }
        if b.header.timestamp_ms <= p.header.timestamp_ms {
            return invalid("timestamp not after the parent's");
        }
        if b.header.timestamp_ms > now_ms + self.limits.max_clock_skew_ms {
            // Maybe our clock is behind: undecided for now.
            return Err(false);
        }
        if b.header.proposer.as_slice() != leader.as_ref() {
            return invalid("proposer is not the round's leader");
        }
        if b.txs.len() > self.limits.max_block_txs {
            return invalid("too many transactions");
        }
        if b.readings.len() > self.limits.max_block_readings {
            return invalid("too many readings");
        }
        if commonware_codec::EncodeSize::encode_size(b) > self.limits.max_block_bytes {
            return invalid("block too large");
        }
        {
            let recent = self.recent.lock().expect("recent lock");
            if let Some((h, _)) = recent.get(&b.header.height) {
                return if *h == block.digest() {
                    Ok(())
                } else {
                    invalid("conflicts with a finalized block")
                };
            }
        }
        let started = Instant::now();
        let store = self.store.read().await;
        let base = self.parent_state(&store, parent, ancestry).await?;
        let verdict = match self.execute_strict(&store, base.as_ref(), b).await {
            Ok(_) => Ok(()),
            Err(e) => invalid(&e),
        };
        self.metrics
            .verify_time
            .observe(started.elapsed().as_secs_f64());
        verdict
    }

    /// For a clean stop: waits until the state commit of the block being applied, if any, is
    /// done, makes the state durable in full (so that the next start has nothing to replay),
    /// then keeps any further state commit from starting until the process exits (a block
    /// indexed but not committed is indexed again after the restart). Stopping aborts the
    /// node's tasks, and a block aborted halfway through its application leaves the state
    /// store closed: every later read would panic. Reads wait from then on.
    pub async fn quiesce(&self) {
        let mut store = self.store.write().await;
        let started = Instant::now();
        match store.sync().await {
            Ok(()) => info!(
                height = store.committed().height,
                ms = started.elapsed().as_millis() as u64,
                "state synced"
            ),
            Err(e) => {
                warn!(error = %e, "the state could not be synced; the next start recovers it from its log")
            }
        }
        // Never released: the process exits right after.
        std::mem::forget(store);
    }

    /// Applies a finalized block (marshal delivers them in height order, at least once).
    pub async fn finalize(&self, block: &Block, now_ms: u64) -> Result<(), FinalizeError> {
        let height = block.header.height;
        let started = Instant::now();
        // Under the read lock (proposals and verifications of the next blocks go on): execute
        // if needed, read what the index needs, index. The write lock is taken only to commit
        // the state. Only this task applies blocks, so the committed height cannot move between
        // the two; a stop in between leaves the index ahead of the state, which opening
        // truncates.
        let store = self.store.read().await;
        let committed = store.committed();
        if height <= committed.height {
            if height == committed.height && height > 0 {
                self.restore_tip(block);
            }
            return Ok(());
        }
        let fail = |reason: String| FinalizeError { height, reason };
        if height != committed.height + 1 {
            return Err(fail(format!(
                "expected height {}, got {height}",
                committed.height + 1
            )));
        }
        let executed = match self.pending_of(&block.hash()) {
            Some(e) => e,
            None => self
                .execute_strict(&store, None, block)
                .await
                .map_err(fail)?,
        };
        // The records, after this block, of every device it touched: for the index and to prune
        // the reading pool.
        let mut touched = Vec::new();
        let mut touched_cheques = Vec::new();
        {
            let reader = store.begin(Some(&executed.spec));
            let overlay = Overlay::new(&reader);
            for id in touched_devices(block) {
                if let Ok(Some(d)) = devices::load(&overlay, &id).await {
                    touched.push(d);
                }
            }
            let ids: std::collections::BTreeSet<Hash> = executed
                .cheque_events
                .iter()
                .map(|(_, e)| e.cheque)
                .collect();
            for id in ids {
                match cheques::load(&overlay, &id).await {
                    Ok(Some(c)) => touched_cheques.push(c),
                    Ok(None) => {}
                    Err(e) => return Err(fail(e.to_string())),
                }
            }
        }
        if let Some(index) = &self.index {
            let tx_ids: Vec<Hash> = block.txs.iter().map(|t| t.id()).collect();
            let readings: Vec<IndexedReading<'_>> = block
                .readings
                .iter()
                .zip(&executed.reading_receipts)
                .map(|(r, rc)| IndexedReading {
                    reading: r,
                    index: rc.index,
                    rejected: rc.rejected,
                })
                .collect();
            index
                .index_finalized(&FinalizedBlock {
                    height,
                    timestamp_ms: block.header.timestamp_ms,
                    receipts: &executed.receipts,
                    txs: &block.txs,
                    tx_ids: &tx_ids,
                    cheque_events: &executed.cheque_events,
                    cheques: &touched_cheques,
                    readings: &readings,
                    devices: &touched,
                })
                .map_err(|e| fail(e.to_string()))?;
        }
        drop(store);
        let mut store = self.store.write().await;
        store
            .apply(executed.spec.clone(), height)
            .await
            .map_err(|e| fail(e.to_string()))?;
        {
            let mut cache = self.devices.lock().expect("devices lock");
            for d in &touched {
                cache.insert(d.id.clone(), Some(IngestView::from(d)));
            }
        }
        self.pending
            .lock()
            .expect("pending lock")
            .retain(|_, e| e.block.header.height > height);
        {
            let mut recent = self.recent.lock().expect("recent lock");
            recent.insert(height, (block.hash(), store.committed().root));
            while recent.len() > RECENT_FINALIZED {
                recent.pop_first();
            }
        }
        *self.tip.lock().expect("tip lock") = Tip {
            height,
            hash: block.hash(),
            state_root: block.header.state_root,
            timestamp_ms: block.header.timestamp_ms,
        };
        {
            let mut pool = self.pool.lock().expect("pool lock");
            pool.remove_committed(block.txs.iter().map(|t| t.id()).collect::<Vec<_>>().iter());
            for tx in &block.txs {
                pool.prune_account(&tx.tx.account(), tx.tx.nonce.0 + 1);
            }
            self.metrics.pool_size.set(pool.len() as i64);
        }
        let mut accepted = 0u64;
        let mut events = Vec::with_capacity(block.readings.len());
        for (r, rc) in block.readings.iter().zip(&executed.reading_receipts) {
            match rc.rejected {
                None => accepted += 1,
                Some(code) => self.count_rejected(code),
            }
            events.push(ReadingEvent {
                reading_id: r.id(),
                device: r.device().clone(),
                seq: r.seq(),
                outcome: rc.rejected.map_or(Ok(height), Err),
            });
        }
        if !events.is_empty() {
            let _ = self.events.send(events.into());
        }
        self.metrics.readings.inc_by(accepted);
        self.prune_reading_pool(block, &touched);
        self.metrics.finalized_height.set(height as i64);
        self.metrics.blocks.inc();
        self.metrics.txs.inc_by(block.txs.len() as u64);
        let latency = now_ms.saturating_sub(block.header.timestamp_ms) as f64 / 1000.0;
        self.metrics.finality_latency.observe(latency);
        self.metrics
            .apply_time
            .observe(started.elapsed().as_secs_f64());
        if height.is_multiple_of(100) || !block.txs.is_empty() {
            info!(
                height,
                txs = block.txs.len(),
                readings = block.readings.len(),
                root = %block.header.state_root,
                "finalized"
            );
        }
        Ok(())
    }
}

/// The devices a block's transactions or readings change, sorted, without repeats.
fn touched_devices(block: &Block) -> Vec<DeviceId> {
    let mut ids: Vec<DeviceId> = block
        .txs
        .iter()
        .filter_map(|t| match &t.tx.body {
            TxBody::DeviceRegister { device, .. }
            | TxBody::DeviceSetStatus { device, .. }
            | TxBody::DeviceRotateKey { device, .. }
            | TxBody::DeviceTransfer { device, .. } => Some(device.clone()),
            _ => None,
        })
        .chain(block.readings.iter().map(|r| r.device().clone()))
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Signatures were verified at submission (or are verified by the strict path).
struct AlreadyVerified;

impl verity_ledger::SignatureCheck for AlreadyVerified {
    fn check(&self, _tx: &SignedTransaction, _chain_id: &Hash) -> bool {
        true
    }
}

/// The consensus application of a validator.
pub struct App<E: commonware_storage::Context + Spawner> {
    chain: Arc<Chain<E>>,
    me: ed25519::PublicKey,
}

impl<E: commonware_storage::Context + Spawner> Clone for App<E> {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            me: self.me.clone(),
        }
    }
}

impl<E: commonware_storage::Context + Spawner> App<E> {
    /// The application of validator `me` over `chain`.
    pub fn new(chain: Arc<Chain<E>>, me: ed25519::PublicKey) -> Self {
        Self { chain, me }
    }
}

impl<E, R> Application<R> for App<E>
where
    E: commonware_storage::Context + Spawner + Metrics,
    R: Clock + Send + 'static,
{
    type SigningScheme = Scheme;
    type Context = Context<Hash, ed25519::PublicKey>;
    type Block = Block;
    type Input = ();

    async fn propose(
        &mut self,
        (rt, _ctx): (R, Self::Context),
        mut ancestry: impl Ancestry<Block>,
        _input: (),
    ) -> Option<Digested<Block>> {
        let parent = ancestry.next().await?;
        if let Some(deadline_ms) = self.chain.idle_deadline_ms(&parent, ancestry.clone()).await {
            let mut work = std::pin::pin!(self.chain.pacing.work());
            work.as_mut().enable();
            // Looked at again after registering for arrivals, so that none is missed.
            if self.chain.pools_empty() && !self.chain.pacing.awake_at(parent.height().get() + 1) {
                self.chain.metrics.paced.inc();
                let deadline = UNIX_EPOCH + Duration::from_millis(deadline_ms);
                futures::future::select(work, std::pin::pin!(rt.sleep_until(deadline))).await;
            }
        }
        let mut proposer = [0u8; 32];
        proposer.copy_from_slice(self.me.as_ref());
        let block = self
            .chain
            .build(parent, ancestry, millis(rt.current()), proposer)
            .await?;
        let digest = block.hash();
        Some(Digested::precomputed(block, digest))
    }

    async fn verify(
        &mut self,
        (rt, ctx): (R, Self::Context),
        mut ancestry: impl Ancestry<Block>,
    ) -> bool {
        let Some(block) = ancestry.next().await else {
            return false;
        };
        let Some(parent) = ancestry.next().await else {
            return false;
        };
        loop {
            let now = millis(rt.current());
            match self
                .chain
                .verify_block(
                    block.clone(),
                    parent.clone(),
                    ancestry.clone(),
                    &ctx.leader,
                    now,
                )
                .await
            {
                Ok(()) => return true,
                Err(true) => {
                    self.chain.metrics.rejected_blocks.inc();
                    return false;
                }
                // Undecided (clock behind, or ancestry not available yet): wait and retry;
                // consensus cancels this if the round moves on.
                Err(false) => rt.sleep(Duration::from_millis(50)).await,
            }
        }
    }
}

/// Consumes finalized blocks from marshal: applies each, then acknowledges it.
pub async fn run_finalizer<E, C>(
    chain: Arc<Chain<E>>,
    clock: C,
    mut updates: futures::channel::mpsc::UnboundedReceiver<(
        Digested<Block>,
        commonware_utils::acknowledgement::Exact,
    )>,
) where
    E: commonware_storage::Context + Spawner + Metrics,
    C: Clock,
{
    use commonware_utils::Acknowledgement as _;
    while let Some((block, ack)) = updates.next().await {
        if let Err(e) = chain.finalize(block.inner(), millis(clock.current())).await {
            // Never acknowledge what we could not apply: marshal stops, and so do we.
            error!(error = %e, "halting: finalized block cannot be applied");
            return;
        }
        ack.acknowledge();
        debug!(height = block.height().get(), "acknowledged");
    }
}
