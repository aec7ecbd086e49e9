//! The index's log-structured store: a log-structured merge tree (fjall) beside `index.redb`
//! for the entries that every block adds at random places in any ordered index, or at the
//! ends of many ranges at once. In redb's B-tree each such entry rewrote a page at every
//! commit once its table outgrew a block, at a cost per entry that rose with the chain (33 µs
//! of CPU per reading at 1,000,000 readings, BENCHMARKS.md). A log-structured tree appends a
//! block's entries to its journal and sorts them into files in the background, at a cost per
//! entry that stays flat as the chain grows. Its keyspaces:
//!
//! - `by_id` (from data format 5): reading id → a pointer to the reading's `by_device` entry,
//!   or a rejected reading whole (see [crate::index]). A reading's id is a hash.
//! - `by_device` (format 6): device ‖ time ‖ seq → the reading's place in the chain and its
//!   bytes. In redb these filled B-tree pages only half (a device's readings only ever go to
//!   the end of its range, so the left half of every split leaf stays empty) and each block
//!   rewrote a page per device it touched. Here the entries are sorted into files packed full,
//!   their blocks compressed with LZ4 ([DEVICE_BLOCK_BYTES]): a device's readings repeat its
//!   id, record names and units, so they shrink to about half.
//! - `tx_receipts` (format 8): transaction id → its receipt and place in the chain. A
//!   transaction's id is a hash.
//! - `history` (format 8): account ‖ height ‖ seq → one movement of the account's history. A
//!   block of transfers adds to the end of the ranges of every account it touches.
//! - `block_txs` (format 8): height → the ids of the block's transactions, from which
//!   everything a block added is found again when it must be cut off.
//!
//! The folder is [DIR] from format 8, [READINGS_DIR] in formats 6 and 7 (which keep only the
//! readings here) and [FORMAT_5_DIR] in format 5. A block's entries of all keyspaces go in one
//! batch, made durable before the block's other index entries commit; see [crate::index].

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

/// The folder, inside the data folder, that holds the store from data format 8.
pub const DIR: &str = "index.lsm";

/// The store's folder in data formats 6 and 7, which keep only readings in it.
pub const READINGS_DIR: &str = "readings";

/// The folder's name in data format 5, when it held only the by-id entries; a node renames it
/// to [READINGS_DIR] when it opens the folder (which becomes format 6).
pub const FORMAT_5_DIR: &str = "reading-ids";

/// Memory for cached blocks of the store's files (its Bloom filters and index blocks are
/// kept beside it), shared by its keyspaces.
pub const CACHE_BYTES: u64 = 16 << 20;

/// Largest size of each keyspace's in-memory table that collects new entries before they are sorted
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
const TX_RECEIPTS: &str = "tx_receipts";
const HISTORY: &str = "history";
const BLOCK_TXS: &str = "block_txs";

/// What a data folder's store keeps apart from `index.redb`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holds {
    /// Readings by id and by device (data formats 6 and 7; by id alone in format 5).
    Readings,
    /// Readings, and transaction receipts, account histories and each block's list of
    /// transactions (data format 8).
    ReadingsAndTransactions,
}

/// The store's folder in `data_dir` for a folder whose store keeps `holds`. A store of an
/// earlier format is renamed (a rename either happens whole or not at all): a format 5
/// folder's to [READINGS_DIR], a format 7 folder's to [DIR] once it has become format 8.
pub fn folder(data_dir: &Path, holds: Holds) -> std::io::Result<PathBuf> {
    let (dir, old) = match holds {
        Holds::Readings => (data_dir.join(READINGS_DIR), data_dir.join(FORMAT_5_DIR)),
        Holds::ReadingsAndTransactions => (data_dir.join(DIR), data_dir.join(READINGS_DIR)),
    };
    if !dir.exists() && old.exists() {
        std::fs::rename(&old, &dir)?;
        std::fs::File::open(data_dir)?.sync_all()?;
    }
    Ok(dir)
}

/// A block's entries for the store, written in one batch by [IndexStore::write].
#[derive(Default)]
pub struct BlockEntries {
    /// Reading id → entry.
    pub reading_ids: Vec<(Hash, Vec<u8>)>,
    /// Device ‖ time ‖ seq → a committed reading.
    pub device_readings: Vec<Entry>,
    /// The block's transaction entries, for a store that keeps them.
    pub txs: Option<TxEntries>,
}

/// The entries a block's transactions add to the index, in any layout that keeps them
/// compactly (data format 3 on): see [crate::index].
#[derive(Default)]
pub struct TxEntries {
    /// Transaction id → its receipt with its place in the chain.
    pub receipts: Vec<(Hash, Vec<u8>)>,
    /// Height → the ids of the block's transactions; absent for a block without any.
    pub block: Option<([u8; 8], Vec<u8>)>,
    /// Account ‖ height ‖ seq → a movement.
    pub history: Vec<([u8; 32], Vec<u8>)>,
}

/// The keys of transaction entries to remove ([IndexStore::remove_tx_entries]).
#[derive(Default)]
pub struct TxKeys {
    /// Transaction ids.
    pub receipts: Vec<Vec<u8>>,
    /// Heights (8 bytes, big-endian).
    pub blocks: Vec<Vec<u8>>,
    /// History keys.
    pub history: Vec<[u8; 32]>,
}

/// The keyspaces [IndexStore::import] copies entries of `index.redb` into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Imported {
    /// Readings by device (into a format 6 store).
    DeviceReadings,
    /// Transaction receipts (into a format 8 store).
    TxReceipts,
    /// Blocks' lists of transactions (format 8).
    BlockTxs,
    /// Account histories (format 8).
    History,
}

struct TxKeyspaces {
    receipts: Keyspace,
    history: Keyspace,
    blocks: Keyspace,
}

/// The store of committed readings, and in data format 8 of transaction entries.
pub struct IndexStore {
    db: Database,
    ids: Keyspace,
    devices: Keyspace,
    txs: Option<TxKeyspaces>,
}

impl IndexStore {
    /// Opens (or creates) the store in `dir` with the keyspaces of what it `holds`, recovering
    /// entries from its journal.
    pub fn open(dir: &Path, holds: Holds) -> Result<Self, IndexError> {
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
        let txs = match holds {
            Holds::Readings => None,
            Holds::ReadingsAndTransactions => {
                let plain = || KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES);
                Some(TxKeyspaces {
                    receipts: db.keyspace(TX_RECEIPTS, plain).map_err(ie)?,
                    history: db.keyspace(HISTORY, plain).map_err(ie)?,
                    blocks: db.keyspace(BLOCK_TXS, plain).map_err(ie)?,
                })
            }
        };
        Ok(Self {
            db,
            ids,
            devices,
            txs,
        })
    }

    /// Whether the store keeps transaction entries (data format 8).
    pub fn keeps_transactions(&self) -> bool {
        self.txs.is_some()
    }

    fn tx_keyspaces(&self) -> Result<&TxKeyspaces, IndexError> {
        self.txs
            .as_ref()
            .ok_or_else(|| IndexError::Db("this store does not keep transactions".into()))
    }

    /// Writes a block's entries in one batch and makes them durable before returning.
    pub fn write(&self, entries: BlockEntries) -> Result<(), IndexError> {
        let BlockEntries {
            reading_ids,
            device_readings,
            txs,
        } = entries;
        let txs = txs.filter(|t| t.block.is_some() || !t.receipts.is_empty());
        if reading_ids.is_empty() && device_readings.is_empty() && txs.is_none() {
            return Ok(());
        }
        let mut batch = self.db.batch();
        for (id, value) in reading_ids {
            batch.insert(&self.ids, id.0.to_vec(), value);
        }
        for (key, value) in device_readings {
            batch.insert(&self.devices, key, value);
        }
        if let Some(t) = txs {
            let ks = self.tx_keyspaces()?;
            for (id, value) in t.receipts {
                batch.insert(&ks.receipts, id.0.to_vec(), value);
            }
            if let Some((height, ids)) = t.block {
                batch.insert(&ks.blocks, height.to_vec(), ids);
            }
            for (key, value) in t.history {
                batch.insert(&ks.history, key.to_vec(), value);
            }
        }
        batch.commit().map_err(ie)?;
        self.db.persist(PersistMode::SyncData).map_err(ie)
    }

    /// Removes transaction entries in one batch and makes that durable before returning.
    pub fn remove_tx_entries(&self, keys: TxKeys) -> Result<(), IndexError> {
        let ks = self.tx_keyspaces()?;
        if keys.receipts.is_empty() && keys.blocks.is_empty() && keys.history.is_empty() {
            return Ok(());
        }
        let mut batch = self.db.batch();
        for id in keys.receipts {
            batch.remove(&ks.receipts, id);
        }
        for height in keys.blocks {
            batch.remove(&ks.blocks, height);
        }
        for key in keys.history {
            batch.remove(&ks.history, key.to_vec());
        }
        batch.commit().map_err(ie)?;
        self.db.persist(PersistMode::SyncData).map_err(ie)
    }

    /// The receipt entry of a transaction id.
    pub fn tx_receipt(&self, id: &[u8]) -> Result<Option<Vec<u8>>, IndexError> {
        let ks = self.tx_keyspaces()?;
        Ok(ks.receipts.get(id).map_err(ie)?.map(|v| v.to_vec()))
    }

    /// The transaction lists of the blocks from `height` on, lowest first.
    pub fn blocks_from(
        &self,
        height: u64,
    ) -> Result<impl Iterator<Item = Result<Entry, IndexError>> + '_, IndexError> {
        let ks = self.tx_keyspaces()?;
        Ok(ks
            .blocks
            .range(height.to_be_bytes().to_vec()..)
            .map(owned_entry))
    }

    /// The history entries with keys in `range`, in key order or (`descending`) the reverse.
    pub fn history_range(
        &self,
        range: RangeInclusive<Vec<u8>>,
        descending: bool,
    ) -> Result<Box<dyn Iterator<Item = Result<Entry, IndexError>> + '_>, IndexError> {
        let iter = self.tx_keyspaces()?.history.range(range);
        Ok(if descending {
            Box::new(iter.rev().map(owned_entry))
        } else {
            Box::new(iter.map(owned_entry))
        })
    }

    /// Copies entries written by an earlier format into the keyspace `into`, in batches, and
    /// makes them durable before returning; `progress` is told the running count after each
    /// batch. Entries already present are written again with the same value.
    pub fn import(
        &self,
        into: Imported,
        entries: impl Iterator<Item = Result<Entry, IndexError>>,
        mut progress: impl FnMut(u64),
    ) -> Result<u64, IndexError> {
        let keyspace = match into {
            Imported::DeviceReadings => &self.devices,
            Imported::TxReceipts => &self.tx_keyspaces()?.receipts,
            Imported::BlockTxs => &self.tx_keyspaces()?.blocks,
            Imported::History => &self.tx_keyspaces()?.history,
        };
        let mut done = 0u64;
        let mut batch = self.db.batch();
        let mut in_batch = 0;
        for entry in entries {
            let (key, value) = entry?;
            batch.insert(keyspace, key, value);
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
        if descending {
            Box::new(iter.rev().map(owned_entry))
        } else {
            Box::new(iter.map(owned_entry))
        }
    }
}

fn owned_entry(g: fjall::Guard) -> Result<Entry, IndexError> {
    g.into_inner()
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .map_err(ie)
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
        let dir = folder(data.path(), Holds::Readings).unwrap();
        assert_eq!(dir, data.path().join(READINGS_DIR));
        assert!(!old.exists());
        assert_eq!(std::fs::read(dir.join("marker")).unwrap(), b"kept");
        // Opened again, nothing moves; a new folder gets the new name and nothing else.
        assert_eq!(folder(data.path(), Holds::Readings).unwrap(), dir);
        let fresh = tempfile::tempdir().unwrap();
        assert_eq!(
            folder(fresh.path(), Holds::Readings).unwrap(),
            fresh.path().join(READINGS_DIR)
        );
        assert!(!fresh.path().join(FORMAT_5_DIR).exists());
        // A store that keeps transactions too has a folder of its own name, to which the
        // readings' folder is renamed once.
        assert_eq!(
            folder(data.path(), Holds::ReadingsAndTransactions).unwrap(),
            data.path().join(DIR)
        );
        assert!(!dir.exists());
        assert_eq!(
            std::fs::read(data.path().join(DIR).join("marker")).unwrap(),
            b"kept"
        );
        assert_eq!(
            folder(data.path(), Holds::ReadingsAndTransactions).unwrap(),
            data.path().join(DIR)
        );
        assert_eq!(
            folder(fresh.path(), Holds::ReadingsAndTransactions).unwrap(),
            fresh.path().join(DIR)
        );
    }

    #[test]
    fn a_store_of_readings_alone_refuses_transaction_entries_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = IndexStore::open(dir.path(), Holds::Readings).unwrap();
        assert!(!store.keeps_transactions());
        let entries = BlockEntries {
            reading_ids: vec![(Hash::from([1; 32]), vec![1, 2, 3])],
            txs: Some(TxEntries {
                receipts: vec![(Hash::from([2; 32]), vec![4])],
                ..TxEntries::default()
            }),
            ..BlockEntries::default()
        };
        assert!(store.write(entries).is_err());
        assert_eq!(store.get(&Hash::from([1; 32])).unwrap(), None);
        assert!(store.tx_receipt(&[2; 32]).is_err());
    }
}
