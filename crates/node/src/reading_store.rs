//! Where the index keeps committed readings, from data format 6 (the by-id entries alone from
//! format 5): a log-structured merge tree (fjall) in the folder [DIR] beside `index.redb`,
//! with two keyspaces.
//!
//! - `by_id`: reading id → a pointer to the reading's `by_device` entry, or a rejected reading
//!   whole (see [crate::index]). A reading's id is a hash, so every block inserts its readings
//!   at random places in any ordered index. In redb's B-tree that rewrote one page per reading
//!   at every commit once the table outgrew a block, and the cost per reading kept rising with
//!   the chain (33 µs of CPU per reading at 1,000,000 readings, BENCHMARKS.md). A log-structured
//!   tree appends a block's entries to its journal and sorts them into files in the background,
//!   at a cost per reading that stays flat as the chain grows.
//! - `by_device` (format 6): device ‖ time ‖ seq → the reading's place in the chain and its
//!   bytes. In redb these filled B-tree pages only half (a device's readings only ever go to
//!   the end of its range, so the left half of every split leaf stays empty) and each block
//!   rewrote a page per device it touched. Here the entries are sorted into files packed full,
//!   their blocks compressed with LZ4 ([DEVICE_BLOCK_BYTES]): a device's readings repeat its
//!   id, record names and units, so they shrink to about half.
//!
//! A block's entries of both keyspaces go in one batch, made durable before the block's other
//! index entries commit; see [crate::index].

use crate::index::{IndexError, ie};
use fjall::{
    CompressionType, Database, Keyspace, KeyspaceCreateOptions, PersistMode,
    config::{BlockSizePolicy, CompressionPolicy},
};
use std::{
    ops::RangeInclusive,
    path::{Path, PathBuf},
};
use verity_types::Hash;

/// The folder, inside the data folder, that holds the store.
pub const DIR: &str = "readings";

/// The folder's name in data format 5, when it held only the by-id entries; a node renames it
/// to [DIR] when it opens the folder.
pub const FORMAT_5_DIR: &str = "reading-ids";

/// Memory for cached blocks of the store's files (its Bloom filters and index blocks are
/// kept beside it).
pub const CACHE_BYTES: u64 = 16 << 20;

/// Size of each keyspace's in-memory table that collects new entries before they are sorted
/// into a file; the journal on disk makes them durable meanwhile.
pub const MEMTABLE_BYTES: u64 = 16 << 20;

/// Largest total size of the journals of entries not yet sorted into files (the smallest the
/// store allows).
pub const JOURNAL_BYTES: u64 = 64 << 20;

/// Size of the blocks `by_device` entries are compressed in: a page of a device's readings is
/// read from one or two of them, and larger blocks find more repetition to compress.
pub const DEVICE_BLOCK_BYTES: u32 = 16 << 10;

/// Entries copied from `index.redb` per batch when a format 5 folder is opened.
const IMPORT_BATCH: usize = 10_000;

/// A key and its value, as read from the store.
pub type Entry = (Vec<u8>, Vec<u8>);

const BY_ID: &str = "by_id";
const BY_DEVICE: &str = "by_device";

/// The store's folder in `data_dir`, renamed from [FORMAT_5_DIR] if the folder was written in
/// data format 5 (a rename either happens whole or not at all).
pub fn folder(data_dir: &Path) -> std::io::Result<PathBuf> {
    let dir = data_dir.join(DIR);
    let old = data_dir.join(FORMAT_5_DIR);
    if !dir.exists() && old.exists() {
        std::fs::rename(&old, &dir)?;
        std::fs::File::open(data_dir)?.sync_all()?;
    }
    Ok(dir)
}

/// The store of committed readings: by id and by device.
pub struct ReadingStore {
    db: Database,
    ids: Keyspace,
    devices: Keyspace,
}

impl ReadingStore {
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
            .keyspace(BY_ID, || {
                KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES)
            })
            .map_err(ie)?;
        let devices = db
            .keyspace(BY_DEVICE, || {
                KeyspaceCreateOptions::default()
                    .max_memtable_size(MEMTABLE_BYTES)
                    .data_block_size_policy(BlockSizePolicy::all(DEVICE_BLOCK_BYTES))
                    .data_block_compression_policy(CompressionPolicy::all(CompressionType::Lz4))
            })
            .map_err(ie)?;
        Ok(Self { db, ids, devices })
    }

    /// Writes a block's entries in one batch and makes them durable before returning.
    pub fn write(
        &self,
        by_id: Vec<(Hash, Vec<u8>)>,
        by_device: Vec<Entry>,
    ) -> Result<(), IndexError> {
        if by_id.is_empty() && by_device.is_empty() {
            return Ok(());
        }
        let mut batch = self.db.batch();
        for (id, value) in by_id {
            batch.insert(&self.ids, id.0.to_vec(), value);
        }
        for (key, value) in by_device {
            batch.insert(&self.devices, key, value);
        }
        batch.commit().map_err(ie)?;
        self.db.persist(PersistMode::SyncData).map_err(ie)
    }

    /// Copies by-device entries written by an earlier format into the store, in batches, and
    /// makes them durable before returning; `progress` is told the running count after each
    /// batch. Entries already present are written again with the same value.
    pub fn import_device_entries(
        &self,
        entries: impl Iterator<Item = Result<Entry, IndexError>>,
        mut progress: impl FnMut(u64),
    ) -> Result<u64, IndexError> {
        let mut done = 0u64;
        let mut batch = self.db.batch();
        let mut in_batch = 0;
        for entry in entries {
            let (key, value) = entry?;
            batch.insert(&self.devices, key, value);
            in_batch += 1;
            done += 1;
            if in_batch == IMPORT_BATCH {
                batch.commit().map_err(ie)?;
                batch = self.db.batch();
                in_batch = 0;
                progress(done);
            }
        }
        batch.commit().map_err(ie)?;
        self.db.persist(PersistMode::SyncData).map_err(ie)?;
        progress(done);
        Ok(done)
    }

    /// The entry of a reading id.
    pub fn get(&self, id: &Hash) -> Result<Option<Vec<u8>>, IndexError> {
        Ok(self.ids.get(id.0).map_err(ie)?.map(|v| v.to_vec()))
    }

    /// The by-device entry under `key`.
    pub fn device_entry(&self, key: &[u8]) -> Result<Option<Vec<u8>>, IndexError> {
        Ok(self.devices.get(key).map_err(ie)?.map(|v| v.to_vec()))
    }

    /// The by-device entries with keys in `range`, in key order or (`descending`) the reverse.
    pub fn device_range(
        &self,
        range: RangeInclusive<Vec<u8>>,
        descending: bool,
    ) -> Box<dyn Iterator<Item = Result<Entry, IndexError>> + '_> {
        let iter = self.devices.range(range);
        let entry = |g: fjall::Guard| {
            g.into_inner()
                .map(|(k, v)| (k.to_vec(), v.to_vec()))
                .map_err(ie)
        };
        if descending {
            Box::new(iter.rev().map(entry))
        } else {
            Box::new(iter.map(entry))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_format_5_folder_s_store_is_renamed_once_and_kept() {
        let data = tempfile::tempdir().unwrap();
        let old = data.path().join(FORMAT_5_DIR);
        std::fs::create_dir_all(&old).unwrap();
        std::fs::write(old.join("marker"), b"kept").unwrap();
        let dir = folder(data.path()).unwrap();
        assert_eq!(dir, data.path().join(DIR));
        assert!(!old.exists());
        assert_eq!(std::fs::read(dir.join("marker")).unwrap(), b"kept");
        // Opened again, nothing moves; a new folder gets the new name and nothing else.
        assert_eq!(folder(data.path()).unwrap(), dir);
        let fresh = tempfile::tempdir().unwrap();
        assert_eq!(folder(fresh.path()).unwrap(), fresh.path().join(DIR));
        assert!(!fresh.path().join(FORMAT_5_DIR).exists());
    }
}
