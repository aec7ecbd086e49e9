//! The authenticated ledger state in commonware-storage's QMDB (`any` variant, variable-size
//! values), with speculative execution: a block that is proposed or verified but not yet final
//! is executed into a merkleized batch whose root goes into the block header; batches chain
//! onto unfinalized parents and are applied and committed (fsynced) only when their block is
//! finalized.
//!
//! Each block's commit carries metadata `height (u64 BE) ‖ genesis digest (32 bytes) ‖ genesis
//! state root (32 bytes, zero in the genesis commit itself)`, so the state records atomically
//! which height it reflects and which genesis it grew from.

use crate::{
    governance,
    state::{Overlay, StateKey, StateReader},
};
use commonware_codec::RangeCfg;
use commonware_cryptography::{Sha256, sha256::Digest};
use commonware_parallel::Sequential;
use commonware_runtime::{
    Spawner,
    buffer::paged::{CacheRef, page_size},
};
use commonware_storage::{
    journal::contiguous::variable::Config as LogConfig,
    merkle::full::Config as MerkleConfig,
    mmr,
    qmdb::{
        any::{self, unordered::variable as anyvar},
        floor::Proportional,
    },
    translator::EightCap,
};
use commonware_utils::{NZU64, NZUsize};
use std::{collections::BTreeMap, sync::Arc};
use verity_types::{Genesis, Hash};

type F = mmr::Family;
/// The state database.
pub type StateDb<E> = anyvar::Db<F, E, Digest, Vec<u8>, Sha256, EightCap, Sequential>;
type StateUpdate = anyvar::Update<Digest, Vec<u8>>;
/// A block's state changes, merkleized but not yet applied.
pub type Speculative = Arc<any::batch::MerkleizedBatch<F, Digest, StateUpdate, Sequential>>;
type Unmerkleized = any::batch::UnmerkleizedBatch<F, Sha256, StateUpdate, Sequential>;

/// Finalized blocks between two prunings of the state's operations log. The log keeps every
/// write ever made; those below its inactivity floor (overwritten since, and moved past by
/// the floor) no longer contribute to the state or its root, and pruning deletes them whole
/// sections at a time, with the Merkle nodes only they needed. Without it the log grows by
/// every device record a block updates (about 100 bytes per reading on the ingest benchmark);
/// with it, the state's files stay near a small multiple of the live state. Each pruning syncs
/// the Merkle structure, so it is not done at every block.
pub const PRUNE_INTERVAL_BLOCKS: u64 = 64;

/// Largest value stored under one state key, in bytes.
pub const MAX_STATE_VALUE_BYTES: usize = 64 * 1024;

/// Storage failures of the state database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// QMDB failed.
    #[error("state database: {0}")]
    Db(String),
    /// The stored state belongs to another genesis.
    #[error("the state on disk was created from another genesis")]
    GenesisMismatch,
    /// Commit metadata is unreadable.
    #[error("state metadata is corrupt")]
    CorruptMetadata,
}

fn db_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Db(e.to_string())
}

/// Where committed state stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Committed {
    /// Height of the last block applied.
    pub height: u64,
    /// State root after it.
    pub root: Hash,
    /// State root after the genesis state (the genesis block's state root).
    pub genesis_root: Hash,
}

/// Length of the commit metadata.
const META_LEN: usize = 8 + 32 + 32;

fn encode_meta(height: u64, genesis_digest: &Hash, genesis_root: &Hash) -> Vec<u8> {
    let mut m = Vec::with_capacity(META_LEN);
    m.extend_from_slice(&height.to_be_bytes());
    m.extend_from_slice(&genesis_digest.0);
    m.extend_from_slice(&genesis_root.0);
    m
}

fn decode_meta(m: &[u8]) -> Result<(u64, Hash, Hash), StoreError> {
    if m.len() != META_LEN {
        return Err(StoreError::CorruptMetadata);
    }
    let height = u64::from_be_bytes(m[..8].try_into().expect("8 bytes"));
    let digest = Digest(m[8..40].try_into().expect("32 bytes"));
    let root = Digest(m[40..].try_into().expect("32 bytes"));
    Ok((height, digest, root))
}

/// Codec configuration of a state operation: key, then (value length range, value).
type OpCodecConfig = ((), (RangeCfg<usize>, ()));

fn config(prefix: &str) -> any::VariableConfig<EightCap, OpCodecConfig, Sequential> {
    let page_cache = CacheRef::new(page_size(16384), NZUsize!(4096));
    any::VariableConfig {
        merkle_config: MerkleConfig {
            journal_partition: format!("{prefix}-mmr-journal"),
            metadata_partition: format!("{prefix}-mmr-metadata"),
            items_per_blob: NZU64!(1 << 16),
            write_buffer: NZUsize!(1 << 20),
            replay_buffer: NZUsize!(1 << 20),
            strategy: Sequential,
            page_cache: page_cache.clone(),
        },
        journal_config: LogConfig {
            partition: format!("{prefix}-log"),
            items_per_section: NZU64!(1 << 14),
            compression: None,
            codec_config: ((), ((0..=MAX_STATE_VALUE_BYTES).into(), ())),
            page_cache,
            write_buffer: NZUsize!(1 << 20),
            replay_buffer: NZUsize!(1 << 20),
        },
        translator: EightCap,
        init_cache: Some(NZUsize!(1 << 16)),
        init_buffer: NZUsize!(1 << 21),
        init_concurrency: (),
    }
}

/// The authenticated state and its committed position.
pub struct Store<E: commonware_storage::Context + Spawner> {
    db: Option<StateDb<E>>,
    committed: Committed,
    genesis_digest: Hash,
}

/// Reads through a batch (its ancestors' writes, then committed state).
pub struct BatchReader<'a, E: commonware_storage::Context + Spawner> {
    batch: Unmerkleized,
    db: &'a StateDb<E>,
}

impl<E: commonware_storage::Context + Spawner> StateReader for BatchReader<'_, E> {
    async fn get(&self, key: &StateKey) -> Result<Option<Vec<u8>>, String> {
        self.batch
            .get(key, self.db)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Reads committed state only.
pub struct DbReader<'a, E: commonware_storage::Context + Spawner>(&'a StateDb<E>);

impl<E: commonware_storage::Context + Spawner> StateReader for DbReader<'_, E> {
    async fn get(&self, key: &StateKey) -> Result<Option<Vec<u8>>, String> {
        self.0.get(key).await.map_err(|e| e.to_string())
    }
}

impl<E: commonware_storage::Context + Spawner> Store<E> {
    /// Opens the state under partitions named `{prefix}-…`, writing the genesis state on first
    /// use and refusing state that came from another genesis.
    pub async fn open(context: E, prefix: &str, genesis: &Genesis) -> Result<Self, StoreError> {
        let db = StateDb::init(context, config(prefix), None)
            .await
            .map_err(db_err)?;
        let meta = db.get_metadata().await.map_err(db_err)?;
        let writes = genesis_writes(genesis);
        let genesis_digest = genesis_digest_of(&writes);
        let root = db.root();
        let mut store = Self {
            committed: Committed {
                height: 0,
                root,
                genesis_root: root,
            },
            db: Some(db),
            genesis_digest,
        };
        match meta {
            Some(m) => {
                let (height, digest, genesis_root) = decode_meta(&m)?;
                if digest != genesis_digest {
                    return Err(StoreError::GenesisMismatch);
                }
                store.committed.height = height;
                if height > 0 {
                    store.committed.genesis_root = genesis_root;
                }
            }
            None => {
                let reader = store.begin(None);
                let spec = store.finish(reader, writes, 0).await?;
                store.apply(spec, 0).await?;
                store.committed.genesis_root = store.committed.root;
            }
        }
        Ok(store)
    }

    fn db(&self) -> &StateDb<E> {
        self.db.as_ref().expect("state database is open")
    }

    /// The committed position.
    pub fn committed(&self) -> Committed {
        self.committed
    }

    /// A reader over committed state.
    pub fn reader(&self) -> DbReader<'_, E> {
        DbReader(self.db())
    }

    /// Starts executing a block on `parent` (an unfinalized block's batch) or, with `None`, on
    /// committed state.
    pub fn begin(&self, parent: Option<&Speculative>) -> BatchReader<'_, E> {
        let batch = match parent {
            Some(p) => p.new_batch::<Sha256>(),
            None => self.db().new_batch(),
        };
        BatchReader {
            batch,
            db: self.db(),
        }
    }

    /// Merkleizes a block's writes into a speculative batch whose root is the state root after
    /// the block at `height`.
    pub async fn finish(
        &self,
        reader: BatchReader<'_, E>,
        writes: BTreeMap<StateKey, Option<Vec<u8>>>,
        height: u64,
    ) -> Result<Speculative, StoreError> {
        // The genesis commit cannot hold its own root; later commits carry it.
        let genesis_root = if height == 0 {
            Digest([0u8; 32])
        } else {
            self.committed.genesis_root
        };
        let mut batch = reader.batch;
        for (k, v) in writes {
            batch = batch.write(k, v);
        }
        batch
            .merkleize(
                self.db(),
                Some(encode_meta(height, &self.genesis_digest, &genesis_root)),
                &mut Proportional,
            )
            .await
            .map_err(db_err)
    }

    /// Applies a finalized block's batch and makes it durable.
    pub async fn apply(&mut self, spec: Speculative, height: u64) -> Result<(), StoreError> {
        let db = self.db.take().expect("state database is open");
        let db = db.apply_batch(spec).await.map_err(db_err)?;
        let mut db = db.commit().await.map_err(db_err)?;
        if height.is_multiple_of(PRUNE_INTERVAL_BLOCKS) {
            let floor = db.sync_boundary();
            db = db.prune(floor).await.map_err(db_err)?;
        }
        self.committed.height = height;
        self.committed.root = db.root();
        self.db = Some(db);
        Ok(())
    }

    /// The first operation the log still holds: everything before it has been pruned.
    pub fn oldest_retained(&self) -> u64 {
        *self.db().bounds().start
    }

    /// Syncs everything to disk, the Merkle structure included (a block's commit makes only
    /// the operations log durable, and opening rebuilds the rest from it): for a clean stop,
    /// so that the next open has nothing to replay. Fails if an application was cut off
    /// halfway and left the database closed.
    pub async fn sync(&mut self) -> Result<(), StoreError> {
        let db = self
            .db
            .take()
            .ok_or_else(|| db_err("closed by an application that did not finish"))?;
        let db = db.sync().await.map_err(db_err)?;
        self.db = Some(db);
        Ok(())
    }
}

struct EmptyReader;

impl StateReader for EmptyReader {
    async fn get(&self, _key: &StateKey) -> Result<Option<Vec<u8>>, String> {
        Ok(None)
    }
}

/// The state writes of the genesis document.
fn genesis_writes(genesis: &Genesis) -> BTreeMap<StateKey, Option<Vec<u8>>> {
    let mut overlay = Overlay::new(&EmptyReader);
    governance::apply_genesis(&mut overlay, genesis);
    overlay.into_writes()
}

/// A digest of the genesis writes, stored in every commit's metadata to tie the state on disk
/// to its genesis file.
fn genesis_digest_of(writes: &BTreeMap<StateKey, Option<Vec<u8>>>) -> Hash {
    let mut bytes = Vec::new();
    for (k, v) in writes {
        bytes.extend_from_slice(&k.0);
        if let Some(v) = v {
            bytes.extend_from_slice(&(v.len() as u32).to_be_bytes());
            bytes.extend_from_slice(v);
        }
    }
    verity_types::hash::sha256_parts(&[b"verity/genesis-state/v1", &bytes])
}
