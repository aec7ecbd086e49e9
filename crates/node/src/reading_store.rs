//! Where each reading is found by its id, from data format 5: a log-structured merge tree
//! (fjall) in the folder [DIR] beside `index.redb`.
//!
//! A reading's id is a hash, so every block inserts its readings at random places in any
//! ordered index. In redb's B-tree that rewrote one page per reading at every commit once the
//! table outgrew a block, and the cost per reading kept rising with the chain (33 µs of CPU per
//! reading at 1,000,000 readings, BENCHMARKS.md). A log-structured tree appends a block's
//! entries to its journal and sorts them into files in the background, at a cost per reading
//! that stays flat as the chain grows.
//!
//! The entries are the same as the by-id entries of `index.redb` before format 5 (a pointer
//! to the device entry of a committed reading, or a rejected reading whole), written for a block
//! and made durable before the block's other index entries commit; see [crate::index].

use crate::index::{IndexError, ie};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use std::path::Path;
use verity_types::Hash;

/// The folder, inside the data folder, that holds the store.
pub const DIR: &str = "reading-ids";

/// Memory for cached blocks of the store's files (its Bloom filters and index blocks are
/// kept beside it).
pub const CACHE_BYTES: u64 = 16 << 20;

/// Size of the in-memory table that collects new entries before they are sorted into a file;
/// their journal on disk makes them durable meanwhile.
pub const MEMTABLE_BYTES: u64 = 16 << 20;

/// Largest total size of the journals of entries not yet sorted into files (the smallest the
/// store allows).
pub const JOURNAL_BYTES: u64 = 64 << 20;

const KEYSPACE: &str = "by_id";

/// The by-id store of readings.
pub struct ReadingIds {
    db: Database,
    ids: Keyspace,
}

impl ReadingIds {
    /// Opens (or creates) the store in `dir`, recovering entries from its journal.
    pub fn open(dir: &Path) -> Result<Self, IndexError> {
        let db = Database::builder(dir)
            .cache_size(CACHE_BYTES)
            .max_journaling_size(JOURNAL_BYTES)
            // Sorting and merging files in one background thread: the node has other work.
            .worker_threads(1)
            .manual_journal_persist(true)
            .open()
            .map_err(ie)?;
        let ids = db
            .keyspace(KEYSPACE, || {
                KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES)
            })
            .map_err(ie)?;
        Ok(Self { db, ids })
    }

    /// Writes a block's entries in one batch and makes them durable before returning.
    pub fn write(&self, entries: Vec<(Hash, Vec<u8>)>) -> Result<(), IndexError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut batch = self.db.batch();
        for (id, value) in entries {
            batch.insert(&self.ids, id.0.to_vec(), value);
        }
        batch.commit().map_err(ie)?;
        self.db.persist(PersistMode::SyncData).map_err(ie)
    }

    /// The entry of a reading id.
    pub fn get(&self, id: &Hash) -> Result<Option<Vec<u8>>, IndexError> {
        Ok(self.ids.get(id.0).map_err(ie)?.map(|v| v.to_vec()))
    }
}
