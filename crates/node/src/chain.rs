//! The chain a node follows: committed ledger state, blocks executed speculatively while
//! consensus decides on them, the transaction pool, the finalized tip and the query index.
//!
//! [App] is the consensus application (it builds and verifies blocks); [Chain::finalize]
//! applies finalized blocks in height order, as marshal delivers them.

use crate::{index::Index, pool::Pool};
use commonware_consensus::{
    Application, Heightable as _,
    marshal::ancestry::Ancestry,
    simplex::{scheme::ed25519::Scheme, types::Context},
};
use commonware_cryptography::{Digested, Digestible as _, ed25519};
use commonware_runtime::{
    Clock, Metrics, Spawner,
    telemetry::metrics::{Counter, Gauge, GaugeExt as _, Histogram, MetricsExt as _},
};
use futures::StreamExt as _;
use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::{Duration, UNIX_EPOCH},
};
use tracing::{debug, error, info, warn};
use verity_ledger::{
    BlockEnv, TxError, VerifyAll,
    accounts::Movement,
    execute::{self, receipts_root},
    state::{AccountRecord, AssetRecord, Overlay, account_key, asset_key},
    store::{Committed, Speculative, Store, StoreError},
};
use verity_types::{AccountId, AssetCode, Block, Genesis, Hash, Header, SignedTransaction, merkle};

/// Finalized block hashes kept in memory (to answer late verification requests).
const RECENT_FINALIZED: usize = 4096;

/// A block executed on top of its parent but not yet finalized.
pub struct ExecutedBlock {
    /// The block.
    pub block: Block,
    /// Its state changes.
    pub spec: Speculative,
    /// The movements of value it causes.
    pub movements: Vec<Movement>,
}

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
    proposed: Counter,
    rejected_blocks: Counter,
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
    tip: Mutex<Tip>,
    recent: Mutex<BTreeMap<u64, (Hash, Hash)>>,
    /// The query index (absent in simulations).
    pub index: Option<Index>,
    /// Limits.
    pub limits: ChainLimits,
    metrics: ChainMetrics,
}

fn millis(t: std::time::SystemTime) -> u64 {
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
        pool: Pool,
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
            proposed: context.counter("blocks_proposed", "Blocks this node proposed"),
            rejected_blocks: context.counter("blocks_rejected", "Proposed blocks that got no vote"),
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
            validators,
            store: tokio::sync::RwLock::new(store),
            pending: Mutex::new(HashMap::new()),
            pool: Mutex::new(pool),
            tip: Mutex::new(tip),
            recent: Mutex::new(BTreeMap::new()),
            index,
            limits,
            metrics,
        })
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

    /// An asset as committed.
    pub async fn asset(&self, code: &AssetCode) -> Result<Option<AssetRecord>, TxError> {
        let store = self.store.read().await;
        let reader = store.reader();
        let overlay = Overlay::new(&reader);
        overlay.get(&asset_key(code)).await
    }

    /// Checks a submitted transaction against committed state and puts it in the pool.
    pub async fn submit(&self, tx: &SignedTransaction) -> Result<Submitted, SubmitError> {
        if let Some(index) = &self.index
            && let Ok(Some((height, _))) = index.tx_location(&tx.id())
        {
            return Ok(Submitted::Committed(height));
        }
        if self.pool.lock().expect("pool lock").contains(&tx.id()) {
            return Ok(Submitted::Pending);
        }
        tx.verify_signature(&self.chain_id)
            .map_err(|_| TxError::BadSignature)?;
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
        let (writes, executed) = {
            let mut overlay = Overlay::new(&reader);
            let executed = execute::execute_block(&mut overlay, &env, &block.txs, &VerifyAll)
                .await
                .map_err(|e| e.to_string())?;
            (overlay.into_writes(), executed)
        };
        if receipts_root(&executed.receipts) != header.receipts_root {
            return Err("receipts root does not match".into());
        }
        if header.readings_root != merkle::root(&[]) {
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
            movements: executed.movements,
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
        let reader = store.begin(base.as_ref().map(|b| &b.spec));
        let (included, executed, refused, writes) = {
            let mut overlay = Overlay::new(&reader);
            let (included, executed, refused) = match execute::build_block(
                &mut overlay,
                &env,
                candidates,
                self.limits.max_block_txs,
                &AlreadyVerified,
            )
            .await
            {
                Ok(r) => r,
                Err(e) => {
                    error!(error = %e, "building a block failed");
                    return None;
                }
            };
            (included, executed, refused, overlay.into_writes())
        };
        {
            let mut pool = self.pool.lock().expect("pool lock");
            for (id, e) in refused {
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
            txs_root: Block::txs_root_of(&included),
            readings_root: merkle::root(&[]),
            receipts_root: receipts_root(&executed.receipts),
            state_root: spec.root(),
        };
        let block = Block::new(header, included);
        self.pending.lock().expect("pending lock").insert(
            block.hash(),
            Arc::new(ExecutedBlock {
                block: block.clone(),
                spec,
                movements: executed.movements,
            }),
        );
        self.metrics.proposed.inc();
        self.metrics.height.try_set_max(height).ok();
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
        let store = self.store.read().await;
        let base = self.parent_state(&store, parent, ancestry).await?;
        match self.execute_strict(&store, base.as_ref(), b).await {
            Ok(_) => Ok(()),
            Err(e) => invalid(&e),
        }
    }

    /// Applies a finalized block (marshal delivers them in height order, at least once).
    pub async fn finalize(&self, block: &Block, now_ms: u64) -> Result<(), FinalizeError> {
        let height = block.header.height;
        let mut store = self.store.write().await;
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
        if let Some(index) = &self.index {
            let ids: Vec<Hash> = block.txs.iter().map(|t| t.id()).collect();
            index
                .index_block(height, block.header.timestamp_ms, &ids, &executed.movements)
                .map_err(|e| fail(e.to_string()))?;
        }
        store
            .apply(executed.spec.clone(), height)
            .await
            .map_err(|e| fail(e.to_string()))?;
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
        self.metrics.finalized_height.set(height as i64);
        self.metrics.blocks.inc();
        self.metrics.txs.inc_by(block.txs.len() as u64);
        let latency = now_ms.saturating_sub(block.header.timestamp_ms) as f64 / 1000.0;
        self.metrics.finality_latency.observe(latency);
        if height.is_multiple_of(100) || !block.txs.is_empty() {
            info!(height, txs = block.txs.len(), root = %block.header.state_root, "finalized");
        }
        Ok(())
    }
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
