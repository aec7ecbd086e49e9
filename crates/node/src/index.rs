//! Query indexes: a read model derived from finalized blocks, kept in redb (an embedded
//! database made for range scans): where each transaction was committed, each account's
//! history of movements, each reading with its outcome, each device's readings by time, the
//! latest value per sensor, the device registry's summaries and lifecycle events. It records
//! the height it reflects. Each block is written in one database transaction (one commit to
//! disk), before the ledger state commits the block, and on start
//! the transaction and history entries above the state's height are cut off, so a crash in
//! between is repaired when the block is executed again. The reading and device tables are
//! keyed by what they describe and written with the same values when a block is indexed again,
//! so they need no cutting. The entries that find readings are kept apart, in
//! [crate::index_store]: by id from data format 5, and the readings themselves, by device,
//! from format 6; from format 8 the transaction entries too. A block's entries there are
//! written in one batch, made durable before the commit of its other entries, so a stop in
//! between leaves its readings found (by id and among their device's) before its latest
//! values and device events are (and, in format 7 and before, its transactions); those
//! follow when the block is indexed again. A format 8 block's transaction entries in the
//! store are cut off like those in `index.redb`, first and durably, found from the block's
//! list in the store. What is found
//! is already final: the block is finalized, and so is each reading's verdict.
//!
//! A transaction costs three entries (data format 4): its receipt with its place in the chain,
//! under its id, and one history entry per movement (two for a transfer); each block adds one
//! entry listing its transactions, from which everything above a height is found again when it
//! must be cut off. Folders of earlier formats also hold per-transaction location and height
//! entries (`txs`, per-transaction `height_txs`, `height_history`), which are still read and cut.

use crate::index_store::{self, BlockEntries, Holds, Imported, IndexStore, TxEntries, TxKeys};
use commonware_codec::{Copying, DecodeExt as _, EncodeSize as _, Write as _};
use redb::{
    Database, ReadableTable, ReadableTableMetadata as _, TableDefinition, WriteTransaction,
};
use serde::{Deserialize, Serialize};
use std::{
    collections::{BTreeMap, btree_map::Entry},
    path::Path,
};
use verity_ledger::{
    Receipt,
    cheques::{ChequeEvent, ChequeRecord},
    devices::DeviceRecord,
};
use verity_types::{
    AccountId, DeviceId, Hash, Reading, RejectCode, SignedTransaction, TxBody,
    hash::hash_hex,
    proof::ProvenReceipt,
    reading::Record,
    receipt::{Movement, read_receipt_body, receipt_body_size, write_receipt_body},
};

/// Page cache of an index opened with [Index::open]: the default of `node.index_cache_mib`.
pub const DEFAULT_CACHE_BYTES: usize = 128 << 20;

/// Before data format 4: transaction id → (height, index in block).
const TXS: TableDefinition<&[u8], (u64, u32)> = TableDefinition::new("txs");
/// Height (8 bytes) → the ids of the block's transactions, in block order. Before data format
/// 4: height ‖ index in block (12 bytes) → that transaction's id.
const HEIGHT_TXS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("height_txs");
const HISTORY: TableDefinition<&[u8], &[u8]> = TableDefinition::new("history");
/// Before data format 4: height ‖ seq → the history key of that movement.
const HEIGHT_HISTORY: TableDefinition<&[u8], &[u8]> = TableDefinition::new("height_history");
/// Transaction id → its receipt; from data format 4 with its place in the chain ([LOCATED]).
const TX_RECEIPTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("tx_receipts");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Reading id → its entry (see [write_readings]); from data format 5 these entries are kept in
/// [IndexStore] instead, and the ones written before are still read from here.
const READINGS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("readings");
/// Device ‖ time ‖ seq → a committed reading ([StoredReading]); from data format 6 these
/// entries are kept in [IndexStore], and the ones of older folders are moved there when the
/// folder is opened ([Index::with_index_store]).
const DEVICE_READINGS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("device_readings");
const LATEST: TableDefinition<&[u8], &[u8]> = TableDefinition::new("latest");
const DEVICE_EVENTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("device_events");
const DEVICES: TableDefinition<&str, &[u8]> = TableDefinition::new("devices");
const INDEXED_HEIGHT: &str = "indexed_height";

/// A table of byte keys and values.
type Table = TableDefinition<'static, &'static [u8], &'static [u8]>;

/// Index failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// The database failed.
    #[error("index: {0}")]
    Db(String),
    /// A history cursor that this index never handed out.
    #[error("invalid cursor {0:?}: pass the next_cursor of the previous page")]
    BadCursor(String),
}

pub(crate) fn ie(e: impl std::fmt::Display) -> IndexError {
    IndexError::Db(e.to_string())
}

/// One entry of an account's history.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The account.
    pub account: AccountId,
    /// Asset code.
    pub asset: String,
    /// Signed change in minor units (decimal string, may be negative).
    pub delta: String,
    /// `in` or `out`.
    pub direction: String,
    /// The other party.
    pub counterparty: Option<AccountId>,
    /// `transfer`, `mint`, `burn` or `cheque`.
    pub kind: String,
    /// The transaction's memo.
    pub memo: String,
    /// Block height.
    pub height: u64,
    /// Block time, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// The transaction.
    pub tx_id: String,
    /// Balance after the movement, minor units.
    pub balance_after: u64,
    /// Position of the entry within its block (for cursors).
    pub seq: u32,
}

/// A page of history.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HistoryPage {
    /// Entries.
    pub entries: Vec<HistoryEntry>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

fn history_key(account: &AccountId, height: u64, seq: u32) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..20].copy_from_slice(&account.0);
    k[20..28].copy_from_slice(&height.to_be_bytes());
    k[28..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn height_key(height: u64, seq: u32) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..8].copy_from_slice(&height.to_be_bytes());
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// What a finalized block adds to the index (see [Index::index_finalized]).
pub struct FinalizedBlock<'a> {
    /// Its height.
    pub height: u64,
    /// Its time, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// The receipts of its transactions.
    pub receipts: &'a [Receipt],
    /// Its transactions.
    pub txs: &'a [SignedTransaction],
    /// The ids of its transactions, in order.
    pub tx_ids: &'a [Hash],
    /// Its cheque events, each with the index of the transaction that caused it.
    pub cheque_events: &'a [(u32, ChequeEvent)],
    /// The records, after the block, of every cheque it touched.
    pub cheques: &'a [ChequeRecord],
    /// Its readings with their outcomes.
    pub readings: &'a [IndexedReading<'a>],
    /// The records, after the block, of every device it touched.
    pub devices: &'a [DeviceRecord],
}

impl FinalizedBlock<'_> {
    /// A block at `height` that adds nothing; set the fields it does add with struct update
    /// syntax (`FinalizedBlock { receipts: &r, ..FinalizedBlock::empty(h, t) }`).
    pub fn empty(height: u64, timestamp_ms: u64) -> Self {
        Self {
            height,
            timestamp_ms,
            receipts: &[],
            txs: &[],
            tx_ids: &[],
            cheque_events: &[],
            cheques: &[],
            readings: &[],
            devices: &[],
        }
    }
}

/// The index database.
pub struct Index {
    pub(crate) db: Database,
    /// Write receipts and history compactly in the layout of data format 4, or as JSON with
    /// per-transaction entries (format 1).
    compact: bool,
    /// Where readings are kept from data format 6 (their by-id entries from format 5), and
    /// transaction receipts, history and block lists from format 8; before, in `index.redb`.
    store: Option<IndexStore>,
}

impl Index {
    /// Opens (or creates) the index at `path`, with a page cache of [DEFAULT_CACHE_BYTES].
    pub fn open(path: &Path) -> Result<Self, IndexError> {
        Self::open_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    /// Opens (or creates) the index at `path`, caching at most `cache_bytes` of its pages in
    /// memory (the operating system's page cache still holds the file).
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<Self, IndexError> {
        let db = redb::Builder::new()
            .set_cache_size(cache_bytes)
            .create(path)
            .map_err(ie)?;
        let w = db.begin_write().map_err(ie)?;
        {
            w.open_table(TXS).map_err(ie)?;
            w.open_table(HEIGHT_TXS).map_err(ie)?;
            w.open_table(HISTORY).map_err(ie)?;
            w.open_table(HEIGHT_HISTORY).map_err(ie)?;
            w.open_table(TX_RECEIPTS).map_err(ie)?;
            w.open_table(META).map_err(ie)?;
            w.open_table(READINGS).map_err(ie)?;
            w.open_table(DEVICE_READINGS).map_err(ie)?;
            w.open_table(LATEST).map_err(ie)?;
            w.open_table(DEVICE_EVENTS).map_err(ie)?;
            w.open_table(DEVICES).map_err(ie)?;
            crate::cheque_index::create_tables(&w)?;
        }
        w.commit().map_err(ie)?;
        Ok(Self {
            db,
            compact: true,
            store: None,
        })
    }

    /// Makes this index write receipts and history entries as JSON, with per-transaction
    /// location and height entries, as Verity did before data format 3, so that the folder
    /// stays readable by the Verity that wrote it ([crate::data_format]). Every layout is
    /// always read.
    pub fn writing_json_entries(mut self) -> Self {
        self.compact = false;
        self
    }

    /// Makes this index keep what `holds` names in the store opened in `dir`
    /// ([crate::index_store]): readings, as data formats 6 and 7 do, and with
    /// [Holds::ReadingsAndTransactions] transaction receipts, account histories and block
    /// lists as well, as data format 8 does. The reading by-id entries written before in
    /// `index.redb` are still read there; the other entries the store now keeps are moved
    /// into it first (by-device readings, and with [Holds::ReadingsAndTransactions] the
    /// transaction entries a format 7 folder wrote), in batches, with `progress` told how many
    /// have been copied and how many there are. A stop during the move loses nothing: the
    /// entries leave `index.redb` only once all are durable in the store, and copying them
    /// again writes the same values. Transaction entries in a layout older than data format 4
    /// (format 3 and before) cannot be moved: that is an error, and nothing leaves
    /// `index.redb`.
    pub fn with_index_store(
        mut self,
        dir: &Path,
        holds: Holds,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<Self, IndexError> {
        let store = IndexStore::open(dir, holds)?;
        let mut moved: Vec<(Table, Imported)> = vec![(DEVICE_READINGS, Imported::DeviceReadings)];
        if holds == Holds::ReadingsAndTransactions {
            moved.extend([
                (TX_RECEIPTS, Imported::TxReceipts),
                (HEIGHT_TXS, Imported::BlockTxs),
                (HISTORY, Imported::History),
            ]);
        }
        let r = self.db.begin_read().map_err(ie)?;
        let mut total = 0;
        for (table, _) in &moved {
            total += r.open_table(*table).map_err(ie)?.len().map_err(ie)?;
        }
        if holds == Holds::ReadingsAndTransactions {
            let legacy = r.open_table(TXS).map_err(ie)?.len().map_err(ie)?
                + r.open_table(HEIGHT_HISTORY)
                    .map_err(ie)?
                    .len()
                    .map_err(ie)?;
            if legacy > 0 {
                return Err(IndexError::Db(
                    "index.redb holds transaction entries written before data format 4, \
                     which the store cannot keep"
                        .into(),
                ));
            }
        }
        if total == 0 {
            self.store = Some(store);
            return Ok(self);
        }
        let mut done_before = 0;
        for (table, into) in &moved {
            let t = r.open_table(*table).map_err(ie)?;
            let into = *into;
            let entries = t.iter().map_err(ie)?.map(|item| {
                let (k, v) = item.map_err(ie)?;
                let (k, v) = (k.value().to_vec(), v.value().to_vec());
                movable(into, &k, &v)?;
                Ok((k, v))
            });
            done_before +=
                store.import(into, entries, |done| progress(done_before + done, total))?;
        }
        drop(r);
        let w = self.db.begin_write().map_err(ie)?;
        for (table, _) in &moved {
            w.delete_table(*table).map_err(ie)?;
            w.open_table(*table).map_err(ie)?;
        }
        w.commit().map_err(ie)?;
        // Give the pages the entries held back to the file system.
        self.db.compact().map_err(ie)?;
        self.store = Some(store);
        Ok(self)
    }

    /// The highest height indexed.
    pub fn indexed_height(&self) -> Result<Option<u64>, IndexError> {
        let r = self.db.begin_read().map_err(ie)?;
        let t = r.open_table(META).map_err(ie)?;
        Ok(t.get(INDEXED_HEIGHT).map_err(ie)?.map(|v| v.value()))
    }

    /// Indexes everything a finalized block adds (transactions, receipts, history, cheques,
    /// readings, devices) in one database transaction: one commit to disk per block.
    /// Idempotent.
    pub fn index_finalized(&self, b: &FinalizedBlock<'_>) -> Result<(), IndexError> {
        let w = self.db.begin_write().map_err(ie)?;
        let txs = if self.txs_apart().is_some() {
            Some(tx_entries(b.height, b.timestamp_ms, b.receipts))
        } else {
            write_block(&w, self.compact, b.height, b.timestamp_ms, b.receipts)?;
            None
        };
        w.open_table(META)
            .map_err(ie)?
            .insert(INDEXED_HEIGHT, b.height)
            .map_err(ie)?;
        crate::cheque_index::write_cheques(
            &w,
            b.height,
            b.timestamp_ms,
            b.tx_ids,
            b.cheque_events,
            b.cheques,
        )?;
        let (by_id, by_device) =
            write_readings(&w, b.height, b.timestamp_ms, b.readings, b.txs, b.devices)?;
        match &self.store {
            // Durable before the commit of the block's other entries, so every by-id pointer
            // of a committed block leads somewhere.
            Some(store) => store.write(BlockEntries {
                reading_ids: by_id,
                device_readings: by_device,
                txs,
            })?,
            None => {
                let mut ids = w.open_table(READINGS).map_err(ie)?;
                for (id, v) in by_id {
                    ids.insert(id.0.as_slice(), v.as_slice()).map_err(ie)?;
                }
                let mut devices = w.open_table(DEVICE_READINGS).map_err(ie)?;
                for (k, v) in by_device {
                    devices.insert(k.as_slice(), v.as_slice()).map_err(ie)?;
                }
            }
        }
        w.commit().map_err(ie)
    }

    /// The store, if it keeps transaction entries (data format 8).
    fn txs_apart(&self) -> Option<&IndexStore> {
        self.store.as_ref().filter(|s| s.keeps_transactions())
    }

    /// The receipt of a committed transaction: its outcome and movements of value.
    pub fn tx_receipt(&self, id: &Hash) -> Result<Option<ProvenReceipt>, IndexError> {
        if let Some(store) = self.txs_apart() {
            return store
                .tx_receipt(&id.0)?
                .map(|v| decode_receipt(&v))
                .transpose();
        }
        let r = self.db.begin_read().map_err(ie)?;
        let t = r.open_table(TX_RECEIPTS).map_err(ie)?;
        t.get(id.0.as_slice())
            .map_err(ie)?
            .map(|v| decode_receipt(v.value()))
            .transpose()
    }

    /// Removes everything indexed above `height` (repair after a crash). The store's
    /// transaction entries go first, durably: a stop before `index.redb` commits leaves its
    /// entries above `height` to be cut when this runs again.
    pub fn truncate_above(&self, height: u64) -> Result<(), IndexError> {
        if let Some(store) = self.txs_apart() {
            store.remove_tx_entries(self.tx_entries_above(store, height)?)?;
        }
        let w = self.db.begin_write().map_err(ie)?;
        {
            // Both key layouts of `height_txs` sort by height first: an 8-byte height sorts
            // before the 12-byte keys of the same height.
            let start = (height + 1).to_be_bytes();
            let mut height_txs = w.open_table(HEIGHT_TXS).map_err(ie)?;
            let mut txs = w.open_table(TXS).map_err(ie)?;
            let doomed: Vec<(Vec<u8>, Vec<u8>)> = height_txs
                .range(start.as_slice()..)
                .map_err(ie)?
                .map(|r| r.map(|(k, v)| (k.value().to_vec(), v.value().to_vec())))
                .collect::<Result<_, _>>()
                .map_err(ie)?;
            let mut tx_receipts = w.open_table(TX_RECEIPTS).map_err(ie)?;
            let mut history = w.open_table(HISTORY).map_err(ie)?;
            let corrupt = || IndexError::Db("corrupt block transactions entry".into());
            for (k, ids) in doomed {
                if let Ok(block) = <[u8; 8]>::try_from(k.as_slice()) {
                    // A block's transactions: their receipts name the accounts whose history
                    // entries the block wrote, numbered in block order.
                    let block = u64::from_be_bytes(block);
                    if ids.len() % 32 != 0 {
                        return Err(corrupt());
                    }
                    let mut seq = 0u32;
                    for id in ids.chunks_exact(32) {
                        let receipt = tx_receipts.remove(id).map_err(ie)?.ok_or_else(corrupt)?;
                        for m in decode_receipt(receipt.value())?.movements {
                            history
                                .remove(history_key(&m.account, block, seq).as_slice())
                                .map_err(ie)?;
                            seq += 1;
                        }
                    }
                } else {
                    txs.remove(ids.as_slice()).map_err(ie)?;
                    tx_receipts.remove(ids.as_slice()).map_err(ie)?;
                }
                height_txs.remove(k.as_slice()).map_err(ie)?;
            }
            let start = height_key(height + 1, 0);
            let mut height_history = w.open_table(HEIGHT_HISTORY).map_err(ie)?;
            let doomed: Vec<(Vec<u8>, Vec<u8>)> = height_history
                .range(start.as_slice()..)
                .map_err(ie)?
                .map(|r| r.map(|(k, v)| (k.value().to_vec(), v.value().to_vec())))
                .collect::<Result<_, _>>()
                .map_err(ie)?;
            for (k, hk) in doomed {
                history.remove(hk.as_slice()).map_err(ie)?;
                height_history.remove(k.as_slice()).map_err(ie)?;
            }
            let mut meta = w.open_table(META).map_err(ie)?;
            let current = meta.get(INDEXED_HEIGHT).map_err(ie)?.map(|v| v.value());
            if current.is_some_and(|c| c > height) {
                meta.insert(INDEXED_HEIGHT, height).map_err(ie)?;
            }
        }
        w.commit().map_err(ie)
    }

    /// The keys of the store's transaction entries of the blocks above `height`: each
    /// block's list, its transactions' receipts, and the history entries their movements
    /// wrote, numbered in block order.
    fn tx_entries_above(&self, store: &IndexStore, height: u64) -> Result<TxKeys, IndexError> {
        let corrupt = || IndexError::Db("corrupt block transactions entry".into());
        let mut keys = TxKeys::default();
        for item in store.blocks_from(height.saturating_add(1))? {
            let (k, ids) = item?;
            let block =
                u64::from_be_bytes(<[u8; 8]>::try_from(k.as_slice()).map_err(|_| corrupt())?);
            if ids.len() % 32 != 0 {
                return Err(corrupt());
            }
            let mut seq = 0u32;
            for id in ids.chunks_exact(32) {
                let receipt = store.tx_receipt(id)?.ok_or_else(corrupt)?;
                for m in decode_receipt(&receipt)?.movements {
                    keys.history.push(history_key(&m.account, block, seq));
                    seq += 1;
                }
                keys.receipts.push(id.to_vec());
            }
            keys.blocks.push(k);
        }
        Ok(keys)
    }

    /// Where a transaction was committed: (height, index in block).
    pub fn tx_location(&self, id: &Hash) -> Result<Option<(u64, u32)>, IndexError> {
        if let Some(store) = self.txs_apart() {
            return match store.tx_receipt(&id.0)? {
                Some(v) => receipt_location(&v),
                None => Ok(None),
            };
        }
        let r = self.db.begin_read().map_err(ie)?;
        let receipts = r.open_table(TX_RECEIPTS).map_err(ie)?;
        if let Some(v) = receipts.get(id.0.as_slice()).map_err(ie)?
            && let Some(location) = receipt_location(v.value())?
        {
            return Ok(Some(location));
        }
        // Committed before data format 4.
        let t = r.open_table(TXS).map_err(ie)?;
        Ok(t.get(id.0.as_slice()).map_err(ie)?.map(|v| v.value()))
    }

    /// A page of an account's history matching `q`, oldest first (newest first with
    /// `q.descending`). At most [MAX_HISTORY_SCAN] entries are examined per page: a page may
    /// hold fewer than `q.limit` entries and still have a `next_cursor`.
    pub fn history(
        &self,
        account: &AccountId,
        q: &HistoryQuery,
    ) -> Result<HistoryPage, IndexError> {
        let mut lo = history_key(account, q.from_height.unwrap_or(0), 0);
        let mut hi = history_key(account, q.to_height.unwrap_or(u64::MAX), u32::MAX);
        let cursor_key = match &q.cursor {
            Some(c) => {
                let (h, s) = parse_cursor(c).ok_or_else(|| IndexError::BadCursor(c.clone()))?;
                let k = history_key(account, h, s);
                if q.descending {
                    hi = hi.min(k);
                } else {
                    lo = lo.max(k);
                }
                Some(k)
            }
            None => None,
        };
        let mut entries = Vec::new();
        let mut last = None;
        let mut scanned = 0usize;
        let mut more = false;
        let r = self.db.begin_read().map_err(ie)?;
        let t = r.open_table(HISTORY).map_err(ie)?;
        if lo <= hi {
            let items: Box<dyn Iterator<Item = Result<index_store::Entry, IndexError>>> =
                match self.txs_apart() {
                    Some(store) => store.history_range(lo.to_vec()..=hi.to_vec(), q.descending)?,
                    None => {
                        let range =
                            t.range(lo.as_slice()..=hi.as_slice())
                                .map_err(ie)?
                                .map(|item| {
                                    let (k, v) = item.map_err(ie)?;
                                    Ok((k.value().to_vec(), v.value().to_vec()))
                                });
                        if q.descending {
                            Box::new(range.rev())
                        } else {
                            Box::new(range)
                        }
                    }
                };
            for item in items {
                let (k, v) = item?;
                if cursor_key.is_some_and(|c| k == c.as_slice()) {
                    continue;
                }
                if entries.len() == q.limit || scanned == MAX_HISTORY_SCAN {
                    more = true;
                    break;
                }
                scanned += 1;
                let e = decode_history(&k, &v)?;
                last = Some((e.height, e.seq));
                // Block time never decreases with height, so past the time window nothing
                // further can match.
                let past = if q.descending {
                    q.from_ms.is_some_and(|f| e.timestamp_ms < f)
                } else {
                    q.to_ms.is_some_and(|t| e.timestamp_ms > t)
                };
                if past {
                    break;
                }
                if q.matches(&e) {
                    entries.push(e);
                }
            }
        }
        let next_cursor = match (more, last) {
            (true, Some((h, s))) => Some(format!("{h}-{s}")),
            _ => None,
        };
        Ok(HistoryPage {
            entries,
            next_cursor,
        })
    }
}

/// Most history entries examined for one page of a filtered query.
pub const MAX_HISTORY_SCAN: usize = 10_000;

/// Which history entries to return.
#[derive(Clone, Debug, Default)]
pub struct HistoryQuery {
    /// Only this asset.
    pub asset: Option<String>,
    /// Only `in` or `out`.
    pub direction: Option<String>,
    /// Only movements with this other party.
    pub counterparty: Option<AccountId>,
    /// Only this kind (`transfer`, `mint`, `burn`, `cheque`).
    pub kind: Option<String>,
    /// Lowest height.
    pub from_height: Option<u64>,
    /// Highest height.
    pub to_height: Option<u64>,
    /// Earliest block time, ms.
    pub from_ms: Option<u64>,
    /// Latest block time, ms.
    pub to_ms: Option<u64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Most entries.
    pub limit: usize,
    /// Newest first.
    pub descending: bool,
}

impl HistoryQuery {
    fn matches(&self, e: &HistoryEntry) -> bool {
        self.asset.as_ref().is_none_or(|a| *a == e.asset)
            && self.direction.as_ref().is_none_or(|d| *d == e.direction)
            && self
                .counterparty
                .as_ref()
                .is_none_or(|c| Some(*c) == e.counterparty)
            && self.kind.as_ref().is_none_or(|k| *k == e.kind)
            && self.from_ms.is_none_or(|f| e.timestamp_ms >= f)
            && self.to_ms.is_none_or(|t| e.timestamp_ms <= t)
    }
}

fn parse_cursor(c: &str) -> Option<(u64, u32)> {
    let (h, s) = c.split_once('-')?;
    Some((h.parse().ok()?, s.parse().ok()?))
}

/// A reading of a finalized block with its outcome, to index.
pub struct IndexedReading<'a> {
    /// The reading.
    pub reading: &'a Reading,
    /// Its position among the block's readings.
    pub index: u32,
    /// Why the block rejected it, if it did.
    pub rejected: Option<RejectCode>,
}

impl<'a> IndexedReading<'a> {
    /// `readings` as a block's readings, in order, all accepted.
    pub fn all_accepted(readings: &'a [Reading]) -> Vec<Self> {
        readings
            .iter()
            .enumerate()
            .map(|(i, reading)| Self {
                reading,
                index: i as u32,
                rejected: None,
            })
            .collect()
    }
}

/// A reading as the index keeps it.
#[derive(Clone, Debug)]
pub struct StoredReading {
    /// Height of the block that holds it.
    pub height: u64,
    /// Position among the block's readings.
    pub index: u32,
    /// Why the block rejected it, if it did.
    pub rejected: Option<RejectCode>,
    /// The bytes as the device sent them.
    pub bytes: Vec<u8>,
}

impl StoredReading {
    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(13 + self.bytes.len());
        v.extend_from_slice(&self.height.to_be_bytes());
        v.extend_from_slice(&self.index.to_be_bytes());
        v.push(self.rejected.map_or(0, RejectCode::tag));
        v.extend_from_slice(&self.bytes);
        v
    }

    fn decode(v: &[u8]) -> Result<Self, IndexError> {
        if v.len() < 13 {
            return Err(IndexError::Db("corrupt reading entry".into()));
        }
        Ok(Self {
            height: u64::from_be_bytes(v[..8].try_into().expect("8 bytes")),
            index: u32::from_be_bytes(v[8..12].try_into().expect("4 bytes")),
            rejected: RejectCode::from_tag(v[12]),
            bytes: v[13..].to_vec(),
        })
    }
}

/// A page of a device's readings.
#[derive(Clone, Debug)]
pub struct ReadingsPage {
    /// The readings.
    pub readings: Vec<StoredReading>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

fn device_prefix(device: &DeviceId) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + device.as_str().len() + 16);
    k.push(device.as_str().len() as u8);
    k.extend_from_slice(device.as_str().as_bytes());
    k
}

fn device_reading_key(device: &DeviceId, time_ms: u64, seq: u64) -> Vec<u8> {
    let mut k = device_prefix(device);
    k.extend_from_slice(&time_ms.to_be_bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// A reading's position in time: its earliest record, in milliseconds.
fn reading_time_ms(r: &Reading) -> u64 {
    (r.min_time() * 1000.0).clamp(0.0, u64::MAX as f64) as u64
}

/// The JSON summary of a device record.
pub fn device_json(d: &DeviceRecord) -> serde_json::Value {
    serde_json::json!({
        "device_id": d.id.as_str(),
        "owner": d.owner.to_string(),
        "alg": d.key.algorithm().name(),
        "public_key": hex::encode(d.key.as_bytes()),
        "status": d.status.name(),
        "last_seq": d.last_seq,
        "registered_height": d.registered_height,
        "key_height": d.key_height,
        "meta": d.meta.entries(),
    })
}

fn device_event(tx: &SignedTransaction) -> Option<(&DeviceId, serde_json::Value)> {
    use serde_json::json;
    Some(match &tx.tx.body {
        TxBody::DeviceRegister { device, key, .. } => (
            device,
            json!({"event": "registered", "alg": key.algorithm().name(),
                   "public_key": hex::encode(key.as_bytes()), "owner": tx.tx.account().to_string()}),
        ),
        TxBody::DeviceSetStatus { device, status } => {
            (device, json!({"event": "status", "status": status.name()}))
        }
        TxBody::DeviceRotateKey { device, key } => (
            device,
            json!({"event": "key_rotated", "alg": key.algorithm().name(),
                   "public_key": hex::encode(key.as_bytes())}),
        ),
        TxBody::DeviceTransfer { device, to } => (
            device,
            json!({"event": "transferred", "to": to.to_string()}),
        ),
        _ => return None,
    })
}

impl Index {
    /// A committed or block-rejected reading.
    pub fn reading(&self, id: &Hash) -> Result<Option<StoredReading>, IndexError> {
        let r = self.db.begin_read().map_err(ie)?;
        let apart = match &self.store {
            Some(store) => store.get(id)?,
            None => None,
        };
        let v = match apart {
            Some(v) => v,
            None => {
                let by_id = r.open_table(READINGS).map_err(ie)?;
                let Some(v) = by_id.get(id.0.as_slice()).map_err(ie)? else {
                    return Ok(None);
                };
                v.value().to_vec()
            }
        };
        match v.first() {
            Some(1) => StoredReading::decode(&v[1..]).map(Some),
            Some(0) => {
                let key = &v[1..];
                let stored = match &self.store {
                    Some(store) => store.device_entry(key)?,
                    None => {
                        let t = r.open_table(DEVICE_READINGS).map_err(ie)?;
                        t.get(key).map_err(ie)?.map(|s| s.value().to_vec())
                    }
                };
                stored.map(|s| StoredReading::decode(&s)).transpose()
            }
            _ => Err(IndexError::Db("corrupt reading pointer".into())),
        }
    }

    /// A page of a device's committed readings with earliest record time in
    /// `[from_ms, to_ms]`, oldest first (or newest first with `descending`).
    pub fn device_readings(
        &self,
        device: &DeviceId,
        from_ms: u64,
        to_ms: u64,
        cursor: Option<&str>,
        limit: usize,
        descending: bool,
    ) -> Result<ReadingsPage, IndexError> {
        let mut lo = device_reading_key(device, from_ms, 0);
        let mut hi = device_reading_key(device, to_ms, u64::MAX);
        if let Some(c) = cursor {
            let (time, seq) =
                parse_cursor64(c).ok_or_else(|| IndexError::BadCursor(c.to_string()))?;
            let at = device_reading_key(device, time, seq);
            if descending {
                hi = at;
            } else {
                lo = at;
            }
        }
        let cursor_key = cursor.map(|_| if descending { hi.clone() } else { lo.clone() });
        let mut readings = Vec::new();
        let mut last_key = None;
        let mut more = false;
        let mut consume = |k: &[u8], v: &[u8]| -> Result<bool, IndexError> {
            if cursor_key.as_deref() == Some(k) {
                return Ok(true);
            }
            if readings.len() == limit {
                more = true;
                return Ok(false);
            }
            readings.push(StoredReading::decode(v)?);
            last_key = Some(k.to_vec());
            Ok(true)
        };
        // Format 1 folders keep the device entries in index.redb, later ones in the store.
        let r = self.db.begin_read().map_err(ie)?;
        let t = r.open_table(DEVICE_READINGS).map_err(ie)?;
        let entries: Box<dyn Iterator<Item = Result<index_store::Entry, IndexError>> + '_> =
            match &self.store {
                Some(store) => store.device_range(lo.clone()..=hi.clone(), descending),
                None => {
                    let range = t
                        .range(lo.as_slice()..=hi.as_slice())
                        .map_err(ie)?
                        .map(|item| {
                            let (k, v) = item.map_err(ie)?;
                            Ok((k.value().to_vec(), v.value().to_vec()))
                        });
                    if descending {
                        Box::new(range.rev())
                    } else {
                        Box::new(range)
                    }
                }
            };
        for item in entries {
            let (k, v) = item?;
            if !consume(&k, &v)? {
                break;
            }
        }
        let next_cursor = match (more, last_key) {
            (true, Some(k)) => {
                let n = k.len();
                let time = u64::from_be_bytes(k[n - 16..n - 8].try_into().expect("8 bytes"));
                let seq = u64::from_be_bytes(k[n - 8..].try_into().expect("8 bytes"));
                Some(format!("{time}-{seq}"))
            }
            _ => None,
        };
        Ok(ReadingsPage {
            readings,
            next_cursor,
        })
    }

    /// The latest committed value of each sensor name of a device.
    pub fn latest(&self, device: &DeviceId) -> Result<Vec<serde_json::Value>, IndexError> {
        self.scan_prefix(LATEST, &device_prefix(device), usize::MAX)
    }

    /// A device's lifecycle events, oldest first (at most `limit`).
    pub fn device_events(
        &self,
        device: &DeviceId,
        limit: usize,
    ) -> Result<Vec<serde_json::Value>, IndexError> {
        self.scan_prefix(DEVICE_EVENTS, &device_prefix(device), limit)
    }

    fn scan_prefix(
        &self,
        table: TableDefinition<&[u8], &[u8]>,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<serde_json::Value>, IndexError> {
        let r = self.db.begin_read().map_err(ie)?;
        let t = r.open_table(table).map_err(ie)?;
        let mut out = Vec::new();
        for item in t.range(prefix..).map_err(ie)? {
            let (k, v) = item.map_err(ie)?;
            if !k.value().starts_with(prefix) || out.len() >= limit {
                break;
            }
            out.push(serde_json::from_slice(v.value()).map_err(ie)?);
        }
        Ok(out)
    }

    /// Device summaries in id order after `after`, optionally only those of `owner` (at most
    /// `limit`).
    pub fn devices(
        &self,
        owner: Option<&AccountId>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<serde_json::Value>, IndexError> {
        let r = self.db.begin_read().map_err(ie)?;
        let t = r.open_table(DEVICES).map_err(ie)?;
        let mut out = Vec::new();
        let range = match after {
            Some(a) => t.range::<&str>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded)),
            None => t.range::<&str>(..),
        }
        .map_err(ie)?;
        let owner = owner.map(|o| o.to_string());
        for item in range {
            let (_, v) = item.map_err(ie)?;
            let j: serde_json::Value = serde_json::from_slice(v.value()).map_err(ie)?;
            if owner.as_deref().is_some_and(|o| j["owner"] != o) {
                continue;
            }
            out.push(j);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }
}

fn parse_cursor64(c: &str) -> Option<(u64, u64)> {
    let (a, b) = c.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// The first byte of a receipt or history value in the compact encoding. Folders written
/// before it hold JSON there, which always starts with `{`; both are read.
const COMPACT: u8 = 1;

/// The first byte of a receipt value that also holds where its transaction was committed
/// (data format 4).
const LOCATED: u8 = 2;

/// A receipt as [Index::tx_receipt] keeps it: `LOCATED ‖ height u64 ‖ index in block u32 ‖`
/// the receipt body the leaf hashes ([write_receipt_body]: outcome and movements,
/// docs/proofs.md). Before data format 4: `COMPACT ‖` the body, the place kept apart in `txs`.
fn encode_receipt(height: u64, index: u32, outcome: &str, movements: &[Movement]) -> Vec<u8> {
    let mut v = Vec::with_capacity(13 + receipt_body_size(outcome, movements));
    v.push(LOCATED);
    v.extend_from_slice(&height.to_be_bytes());
    v.extend_from_slice(&index.to_be_bytes());
    write_receipt_body(outcome, movements, &mut v);
    v
}

/// Where a receipt entry says its transaction was committed; `None` for entries written before
/// data format 4, which do not say.
fn receipt_location(v: &[u8]) -> Result<Option<(u64, u32)>, IndexError> {
    match v.split_first() {
        Some((&LOCATED, rest)) if rest.len() >= 12 => Ok(Some((
            u64::from_be_bytes(rest[..8].try_into().expect("8 bytes")),
            u32::from_be_bytes(rest[8..12].try_into().expect("4 bytes")),
        ))),
        Some((&LOCATED, _)) => Err(IndexError::Db("corrupt receipt entry".into())),
        _ => Ok(None),
    }
}

fn decode_receipt(v: &[u8]) -> Result<ProvenReceipt, IndexError> {
    let corrupt = || IndexError::Db("corrupt receipt entry".into());
    let body = |body: &[u8]| {
        read_receipt_body(&mut Copying(body))
            .map(|(outcome, movements)| ProvenReceipt { outcome, movements })
            .map_err(|_| corrupt())
    };
    match v.split_first() {
        Some((b'{', _)) => serde_json::from_slice(v).map_err(ie),
        Some((&LOCATED, rest)) if rest.len() >= 12 => body(&rest[12..]),
        Some((&COMPACT, rest)) => body(rest),
        _ => Err(corrupt()),
    }
}

/// A history entry as the index keeps it under its key (account ‖ height ‖ seq):
/// `COMPACT ‖ block time u64 ‖ tx id ‖ movement`.
fn encode_history(timestamp_ms: u64, tx_id: &Hash, m: &Movement) -> Vec<u8> {
    let mut v = Vec::with_capacity(1 + 8 + 32 + m.encode_size());
    v.push(COMPACT);
    v.extend_from_slice(&timestamp_ms.to_be_bytes());
    v.extend_from_slice(&tx_id.0);
    m.write(&mut v);
    v
}

fn decode_history(key: &[u8], v: &[u8]) -> Result<HistoryEntry, IndexError> {
    let corrupt = || IndexError::Db("corrupt history entry".into());
    match v.first() {
        Some(b'{') => serde_json::from_slice(v).map_err(ie),
        Some(&COMPACT) if v.len() > 41 && key.len() == 32 => {
            let height = u64::from_be_bytes(key[20..28].try_into().expect("8 bytes"));
            let seq = u32::from_be_bytes(key[28..].try_into().expect("4 bytes"));
            let timestamp_ms = u64::from_be_bytes(v[1..9].try_into().expect("8 bytes"));
            let tx_id = Hash::from(<[u8; 32]>::try_from(&v[9..41]).expect("32 bytes"));
            let m = Movement::decode(Copying(&v[41..])).map_err(|_| corrupt())?;
            Ok(history_entry(height, seq, timestamp_ms, &tx_id, &m))
        }
        _ => Err(corrupt()),
    }
}

fn history_entry(
    height: u64,
    seq: u32,
    timestamp_ms: u64,
    tx_id: &Hash,
    m: &Movement,
) -> HistoryEntry {
    HistoryEntry {
        account: m.account,
        asset: m.asset.to_string(),
        delta: m.delta.to_string(),
        direction: if m.delta < 0 { "out" } else { "in" }.to_string(),
        counterparty: m.counterparty,
        kind: m.kind.as_str().to_string(),
        memo: m.memo.clone(),
        height,
        timestamp_ms,
        tx_id: tx_id.to_string(),
        balance_after: m.balance_after,
        seq,
    }
}

/// Checks that an entry of `index.redb` is in the layout the store keeps for `into`: the
/// layout of data format 4 on for transaction entries (a located receipt, a block's list
/// under its 8-byte height, a compact history entry).
fn movable(into: Imported, key: &[u8], value: &[u8]) -> Result<(), IndexError> {
    let fits = match into {
        Imported::DeviceReadings => true,
        Imported::TxReceipts => key.len() == 32 && receipt_location(value)?.is_some(),
        Imported::BlockTxs => key.len() == 8 && value.len().is_multiple_of(32),
        Imported::History => key.len() == 32 && value.first() == Some(&COMPACT),
    };
    if fits {
        Ok(())
    } else {
        Err(IndexError::Db(format!(
            "index.redb holds a {into:?} entry in a layout the store cannot keep"
        )))
    }
}

/// The entries a finalized block's transactions add in the compact layout (data format 4
/// on): each receipt with its place under its transaction's id, the block's list of
/// transaction ids under its height, and each movement under account ‖ height ‖ seq, seq
/// counting the block's movements in order.
fn tx_entries(height: u64, timestamp_ms: u64, receipts: &[Receipt]) -> TxEntries {
    let mut ids = Vec::with_capacity(32 * receipts.len());
    let mut entries = TxEntries {
        receipts: Vec::with_capacity(receipts.len()),
        block: None,
        history: Vec::with_capacity(2 * receipts.len()),
    };
    for r in receipts {
        ids.extend_from_slice(&r.tx_id.0);
        let v = encode_receipt(height, r.index, &r.outcome, &r.movements);
        entries.receipts.push((r.tx_id, v));
    }
    if !ids.is_empty() {
        entries.block = Some((height.to_be_bytes(), ids));
    }
    let movements = receipts
        .iter()
        .flat_map(|r| r.movements.iter().map(move |m| (&r.tx_id, m)));
    for (seq, (tx_id, m)) in movements.enumerate() {
        let key = history_key(&m.account, height, seq as u32);
        entries
            .history
            .push((key, encode_history(timestamp_ms, tx_id, m)));
    }
    entries
}

/// Writes a finalized block's transactions, receipts and history into `w` (data formats 1
/// to 7).
fn write_block(
    w: &WriteTransaction,
    compact: bool,
    height: u64,
    timestamp_ms: u64,
    receipts: &[Receipt],
) -> Result<(), IndexError> {
    if !compact {
        return write_block_json(w, height, timestamp_ms, receipts);
    }
    let entries = tx_entries(height, timestamp_ms, receipts);
    let mut tx_receipts = w.open_table(TX_RECEIPTS).map_err(ie)?;
    for (id, v) in &entries.receipts {
        tx_receipts
            .insert(id.0.as_slice(), v.as_slice())
            .map_err(ie)?;
    }
    if let Some((height, ids)) = &entries.block {
        let mut height_txs = w.open_table(HEIGHT_TXS).map_err(ie)?;
        height_txs
            .insert(height.as_slice(), ids.as_slice())
            .map_err(ie)?;
    }
    let mut history = w.open_table(HISTORY).map_err(ie)?;
    for (key, value) in &entries.history {
        history
            .insert(key.as_slice(), value.as_slice())
            .map_err(ie)?;
    }
    Ok(())
}

/// [write_block] for a format 1 folder: JSON values, and per-transaction location and height
/// entries.
fn write_block_json(
    w: &WriteTransaction,
    height: u64,
    timestamp_ms: u64,
    receipts: &[Receipt],
) -> Result<(), IndexError> {
    let mut height_txs = w.open_table(HEIGHT_TXS).map_err(ie)?;
    let mut tx_receipts = w.open_table(TX_RECEIPTS).map_err(ie)?;
    let mut history = w.open_table(HISTORY).map_err(ie)?;
    let mut txs = w.open_table(TXS).map_err(ie)?;
    for r in receipts {
        txs.insert(r.tx_id.0.as_slice(), (height, r.index))
            .map_err(ie)?;
        height_txs
            .insert(height_key(height, r.index).as_slice(), r.tx_id.0.as_slice())
            .map_err(ie)?;
        let v = serde_json::to_vec(&ProvenReceipt {
            outcome: r.outcome.clone(),
            movements: r.movements.clone(),
        })
        .map_err(ie)?;
        tx_receipts
            .insert(r.tx_id.0.as_slice(), v.as_slice())
            .map_err(ie)?;
    }
    let mut height_history = w.open_table(HEIGHT_HISTORY).map_err(ie)?;
    let movements = receipts
        .iter()
        .flat_map(|r| r.movements.iter().map(move |m| (&r.tx_id, m)));
    for (seq, (tx_id, m)) in movements.enumerate() {
        let seq = seq as u32;
        let key = history_key(&m.account, height, seq);
        let value =
            serde_json::to_vec(&history_entry(height, seq, timestamp_ms, tx_id, m)).map_err(ie)?;
        history
            .insert(key.as_slice(), value.as_slice())
            .map_err(ie)?;
        height_history
            .insert(height_key(height, seq).as_slice(), key.as_slice())
            .map_err(ie)?;
    }
    Ok(())
}

/// A block's entries that find its readings: by id (for a committed reading `0` and its key
/// among the device's readings, for a rejected one `1` and the reading whole, since it is not
/// among the device's) and by device (the committed ones).
type ReadingEntries = (Vec<(Hash, Vec<u8>)>, Vec<(Vec<u8>, Vec<u8>)>);

/// Writes a finalized block's latest values and device changes into `w`, and returns the
/// entries that find its readings ([ReadingEntries]), for the caller to write where the
/// folder's format keeps them.
fn write_readings(
    w: &WriteTransaction,
    height: u64,
    timestamp_ms: u64,
    readings: &[IndexedReading<'_>],
    txs: &[SignedTransaction],
    devices: &[DeviceRecord],
) -> Result<ReadingEntries, IndexError> {
    let mut by_id = Vec::with_capacity(readings.len());
    let mut by_device = Vec::with_capacity(readings.len());
    let mut latest = w.open_table(LATEST).map_err(ie)?;
    let mut newest: BTreeMap<Vec<u8>, (&Record, &Reading)> = BTreeMap::new();
    for ir in readings {
        let r = ir.reading;
        let stored = StoredReading {
            height,
            index: ir.index,
            rejected: ir.rejected,
            bytes: r.bytes().to_vec(),
        };
        if ir.rejected.is_some() {
            // Kept whole under its id: it is not among the device's readings.
            let mut v = vec![1u8];
            v.extend_from_slice(&stored.encode());
            by_id.push((r.id(), v));
            continue;
        }
        let key = device_reading_key(r.device(), reading_time_ms(r), r.seq());
        let mut v = vec![0u8];
        v.extend_from_slice(&key);
        by_id.push((r.id(), v));
        by_device.push((key, stored.encode()));
        for rec in r.records() {
            let mut k = device_prefix(r.device());
            k.extend_from_slice(rec.name.as_bytes());
            match newest.entry(k) {
                Entry::Vacant(v) => {
                    v.insert((rec, r));
                }
                Entry::Occupied(mut o) if rec.time >= o.get().0.time => {
                    o.insert((rec, r));
                }
                Entry::Occupied(_) => {}
            }
        }
    }
    // One look-up and at most one write per device and record name, however many
    // readings of it the block holds.
    for (k, (rec, r)) in newest {
        let newer = match latest.get(k.as_slice()).map_err(ie)? {
            Some(old) => {
                let old: serde_json::Value = serde_json::from_slice(old.value()).map_err(ie)?;
                old["t"].as_f64().is_none_or(|t| rec.time >= t)
            }
            None => true,
        };
        if newer {
            let mut j = rec.to_json();
            j["reading_id"] = hash_hex(&r.id()).into();
            j["seq"] = r.seq().into();
            j["height"] = height.into();
            let v = serde_json::to_vec(&j).map_err(ie)?;
            latest.insert(k.as_slice(), v.as_slice()).map_err(ie)?;
        }
    }
    let mut events = w.open_table(DEVICE_EVENTS).map_err(ie)?;
    for (i, tx) in txs.iter().enumerate() {
        let Some((device, mut event)) = device_event(tx) else {
            continue;
        };
        event["height"] = height.into();
        event["timestamp_ms"] = timestamp_ms.into();
        event["tx_id"] = hash_hex(&tx.id()).into();
        event["by"] = tx.tx.account().to_string().into();
        let mut k = device_prefix(device);
        k.extend_from_slice(&height.to_be_bytes());
        k.extend_from_slice(&(i as u32).to_be_bytes());
        let v = serde_json::to_vec(&event).map_err(ie)?;
        events.insert(k.as_slice(), v.as_slice()).map_err(ie)?;
    }
    let mut summaries = w.open_table(DEVICES).map_err(ie)?;
    for d in devices {
        let v = serde_json::to_vec(&device_json(d)).map_err(ie)?;
        summaries.insert(d.id.as_str(), v.as_slice()).map_err(ie)?;
    }
    Ok((by_id, by_device))
}

#[cfg(test)]
mod tests {
    use super::*;
    use verity_types::receipt::MovementKind;

    fn movement(account: u8, other: u8, delta: i128, balance_after: u64) -> Movement {
        Movement {
            account: AccountId([account; 20]),
            asset: "CNY".parse().unwrap(),
            delta,
            counterparty: Some(AccountId([other; 20])),
            kind: MovementKind::Transfer,
            memo: "rent for March".into(),
            balance_after,
        }
    }

    fn receipt(tx: u8, index: u32) -> Receipt {
        Receipt {
            tx_id: Hash::from([tx; 32]),
            index,
            outcome: "ok".into(),
            movements: vec![
                movement(0xaa, 0xbb, -1250, 98_750),
                movement(0xbb, 0xaa, 1250, 1250),
            ],
        }
    }

    pub(super) fn all_history(index: &Index, account: u8) -> Vec<HistoryEntry> {
        let q = HistoryQuery {
            limit: 100,
            ..Default::default()
        };
        index
            .history(&AccountId([account; 20]), &q)
            .unwrap()
            .entries
    }

    /// Receipts and history are stored compactly; folders written before that hold JSON in
    /// the same tables, and both read back as the same entries.
    #[test]
    fn history_and_receipts_read_back_from_both_encodings() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(&dir.path().join("index.redb")).unwrap();
        // Height 6 in the current encoding.
        let new = receipt(0x06, 0);
        index
            .index_finalized(&FinalizedBlock {
                receipts: std::slice::from_ref(&new),
                ..FinalizedBlock::empty(6, 6_000)
            })
            .unwrap();
        // Height 5 as a format 1 folder (or an older Verity) writes it: JSON values.
        let old = receipt(0x05, 0);
        drop(index);
        let legacy = Index::open(&dir.path().join("index.redb"))
            .unwrap()
            .writing_json_entries();
        legacy
            .index_finalized(&FinalizedBlock {
                receipts: std::slice::from_ref(&old),
                ..FinalizedBlock::empty(5, 5_000)
            })
            .unwrap();
        let json_entry = {
            let r = legacy.db.begin_read().unwrap();
            let t = r.open_table(HISTORY).unwrap();
            let v = t
                .get(history_key(&AccountId([0xaa; 20]), 5, 0).as_slice())
                .unwrap()
                .unwrap()
                .value()
                .to_vec();
            assert_eq!(v[0], b'{');
            v
        };
        drop(legacy);
        let index = Index::open(&dir.path().join("index.redb")).unwrap();
        let old_entry = HistoryEntry {
            account: AccountId([0xaa; 20]),
            asset: "CNY".into(),
            delta: "-1250".into(),
            direction: "out".into(),
            counterparty: Some(AccountId([0xbb; 20])),
            kind: "transfer".into(),
            memo: "rent for March".into(),
            height: 5,
            timestamp_ms: 5_000,
            tx_id: old.tx_id.to_string(),
            balance_after: 98_750,
            seq: 0,
        };
        let history = all_history(&index, 0xaa);
        assert_eq!(history.len(), 2);
        assert_eq!(history[0], old_entry);
        let expected_new = HistoryEntry {
            height: 6,
            timestamp_ms: 6_000,
            tx_id: new.tx_id.to_string(),
            ..old_entry.clone()
        };
        assert_eq!(history[1], expected_new);
        let incoming = all_history(&index, 0xbb);
        assert_eq!(incoming.len(), 2);
        for e in &incoming {
            assert_eq!((e.direction.as_str(), e.delta.as_str()), ("in", "1250"));
            assert_eq!((e.seq, e.balance_after), (1, 1250));
        }
        assert_eq!(
            incoming[1],
            HistoryEntry {
                height: 6,
                timestamp_ms: 6_000,
                tx_id: new.tx_id.to_string(),
                ..incoming[0].clone()
            }
        );

        for r in [&old, &new] {
            let got = index.tx_receipt(&r.tx_id).unwrap().unwrap();
            assert_eq!(got.outcome, r.outcome);
            assert_eq!(got.movements, r.movements);
        }

        // The compact entry is well under half the JSON one.
        let compact = encode_history(6_000, &new.tx_id, &new.movements[0]);
        assert!(
            compact.len() * 2 < json_entry.len(),
            "{} vs {}",
            compact.len(),
            json_entry.len()
        );
    }

    pub(super) fn located(index: &Index, r: &Receipt) -> Option<(u64, u32, ProvenReceipt)> {
        let place = index.tx_location(&r.tx_id).unwrap();
        let receipt = index.tx_receipt(&r.tx_id).unwrap();
        assert_eq!(place.is_some(), receipt.is_some(), "{place:?} {receipt:?}");
        place.zip(receipt).map(|((h, i), r)| (h, i, r))
    }

    /// Cutting off the blocks above a height (after a crash) removes their transactions'
    /// receipts, places and history entries, in the current layout and in the per-transaction
    /// layout of folders written before data format 4, and nothing at or below the height.
    #[test]
    fn truncation_cuts_both_layouts_above_the_height_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.redb");
        // Heights 4 and 5 as a format 1 folder writes them (per-transaction entries).
        let legacy = Index::open(&path).unwrap().writing_json_entries();
        let old = [receipt(0x04, 0), receipt(0x05, 0)];
        for (h, r) in [(4, &old[0]), (5, &old[1])] {
            legacy
                .index_finalized(&FinalizedBlock {
                    receipts: std::slice::from_ref(r),
                    ..FinalizedBlock::empty(h, h * 1_000)
                })
                .unwrap();
        }
        drop(legacy);
        // Heights 6 and 7 in the current layout; 7 holds two transactions, so its second
        // transaction's movements are history entries 2 and 3 of the block.
        let index = Index::open(&path).unwrap();
        let new = [receipt(0x06, 0), receipt(0x07, 0), receipt(0x08, 1)];
        index
            .index_finalized(&FinalizedBlock {
                receipts: &new[..1],
                ..FinalizedBlock::empty(6, 6_000)
            })
            .unwrap();
        index
            .index_finalized(&FinalizedBlock {
                receipts: &new[1..],
                ..FinalizedBlock::empty(7, 7_000)
            })
            .unwrap();
        let heights = |index: &Index| -> Vec<(u64, u32)> {
            all_history(index, 0xaa)
                .iter()
                .map(|e| (e.height, e.seq))
                .collect()
        };
        assert_eq!(
            heights(&index),
            vec![(4, 0), (5, 0), (6, 0), (7, 0), (7, 2)]
        );
        for (r, h) in old.iter().zip([4, 5]).chain(new.iter().zip([6, 7, 7])) {
            let (height, i, got) = located(&index, r).expect("indexed");
            assert_eq!((height, i), (h, r.index));
            assert_eq!(got.movements, r.movements);
        }
        assert_eq!(index.indexed_height().unwrap(), Some(7));

        index.truncate_above(5).unwrap();
        assert_eq!(heights(&index), vec![(4, 0), (5, 0)]);
        assert_eq!(all_history(&index, 0xbb).len(), 2);
        for r in &new {
            assert!(located(&index, r).is_none(), "{} kept", r.tx_id);
        }
        for r in &old {
            assert!(located(&index, r).is_some(), "{} cut", r.tx_id);
        }
        assert_eq!(index.indexed_height().unwrap(), Some(5));
        // Indexing the cut blocks again (as re-execution does) restores them.
        index
            .index_finalized(&FinalizedBlock {
                receipts: &new[1..],
                ..FinalizedBlock::empty(6, 6_000)
            })
            .unwrap();
        assert_eq!(heights(&index), vec![(4, 0), (5, 0), (6, 0), (6, 2)]);
        assert_eq!(located(&index, &new[2]).map(|l| (l.0, l.1)), Some((6, 1)));

        index.truncate_above(4).unwrap();
        assert_eq!(heights(&index), vec![(4, 0)]);
        assert!(located(&index, &old[1]).is_none());
        assert!(located(&index, &new[1]).is_none());
        assert_eq!(located(&index, &old[0]).map(|l| (l.0, l.1)), Some((4, 0)));
        index.truncate_above(0).unwrap();
        assert!(all_history(&index, 0xaa).is_empty());
        assert!(all_history(&index, 0xbb).is_empty());
        assert!(located(&index, &old[0]).is_none());
    }

    /// What a format 3 folder holds (compact values, with per-transaction location and height
    /// entries beside them) reads back under blocks indexed since, and is cut off like them.
    #[test]
    fn format_3_entries_read_back_and_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(&dir.path().join("index.redb")).unwrap();
        let old = receipt(0x03, 0);
        {
            let w = index.db.begin_write().unwrap();
            {
                let mut value = vec![COMPACT];
                write_receipt_body(&old.outcome, &old.movements, &mut value);
                let id = old.tx_id.0.as_slice();
                let mut receipts = w.open_table(TX_RECEIPTS).unwrap();
                receipts.insert(id, value.as_slice()).unwrap();
                w.open_table(TXS).unwrap().insert(id, (3u64, 0u32)).unwrap();
                let mut height_txs = w.open_table(HEIGHT_TXS).unwrap();
                height_txs.insert(height_key(3, 0).as_slice(), id).unwrap();
                let mut history = w.open_table(HISTORY).unwrap();
                let mut height_history = w.open_table(HEIGHT_HISTORY).unwrap();
                for (seq, m) in old.movements.iter().enumerate() {
                    let key = history_key(&m.account, 3, seq as u32);
                    let value = encode_history(3_000, &old.tx_id, m);
                    history.insert(key.as_slice(), value.as_slice()).unwrap();
                    let at = height_key(3, seq as u32);
                    height_history
                        .insert(at.as_slice(), key.as_slice())
                        .unwrap();
                }
                let mut meta = w.open_table(META).unwrap();
                meta.insert(INDEXED_HEIGHT, 3).unwrap();
            }
            w.commit().unwrap();
        }
        let new = receipt(0x04, 0);
        index
            .index_finalized(&FinalizedBlock {
                receipts: std::slice::from_ref(&new),
                ..FinalizedBlock::empty(4, 4_000)
            })
            .unwrap();
        let (height, i, got) = located(&index, &old).expect("format 3 entry");
        assert_eq!((height, i, &got.movements), (3, 0, &old.movements));
        let heights: Vec<u64> = all_history(&index, 0xaa).iter().map(|e| e.height).collect();
        assert_eq!(heights, vec![3, 4]);

        index.truncate_above(3).unwrap();
        assert!(located(&index, &new).is_none());
        assert!(located(&index, &old).is_some());
        assert_eq!(all_history(&index, 0xbb).len(), 1);
        index.truncate_above(2).unwrap();
        assert!(located(&index, &old).is_none());
        assert!(all_history(&index, 0xaa).is_empty());
        assert!(all_history(&index, 0xbb).is_empty());
    }

    /// A damaged entry is an error, never a panic or a wrong answer.
    #[test]
    fn damaged_entries_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(&dir.path().join("index.redb")).unwrap();
        let r = receipt(0x07, 0);
        let good_receipt = encode_receipt(7, 0, &r.outcome, &r.movements);
        let good_entry = encode_history(7_000, &r.tx_id, &r.movements[0]);
        let key = history_key(&AccountId([0xaa; 20]), 7, 0);
        for cut in 0..good_receipt.len() {
            assert!(
                decode_receipt(&good_receipt[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        for cut in 0..good_entry.len() {
            assert!(
                decode_history(&key, &good_entry[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        assert_eq!(receipt_location(&good_receipt).unwrap(), Some((7, 0)));
        assert_eq!(receipt_location(&[]).unwrap(), None);
        for cut in 1..13 {
            assert!(
                receipt_location(&good_receipt[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut longer = good_receipt.clone();
        longer.push(0);
        assert!(decode_receipt(&longer).is_err());
        {
            let w = index.db.begin_write().unwrap();
            w.open_table(HISTORY)
                .unwrap()
                .insert(key.as_slice(), [9u8, 1, 2].as_slice())
                .unwrap();
            w.commit().unwrap();
        }
        let q = HistoryQuery {
            limit: 10,
            ..Default::default()
        };
        assert!(matches!(
            index.history(&AccountId([0xaa; 20]), &q),
            Err(IndexError::Db(_))
        ));
    }

    pub(super) fn signed(seq: u64) -> Reading {
        use verity_types::{
            Algorithm, SecretKey,
            reading::{
                SenmlValue,
                sign::{NewRecord, sign_reading},
            },
        };
        let key = SecretKey::generate(Algorithm::Ed25519);
        let bytes = sign_reading(
            &key,
            &"meter-1".parse().unwrap(),
            seq,
            &[NewRecord {
                name: "t".into(),
                time: 1_700_000_000.0 + seq as f64,
                unit: None,
                value: SenmlValue::Number(seq as f64),
            }],
        );
        Reading::decode(&bytes).unwrap()
    }

    /// Indexes at `height` one committed and one rejected reading.
    pub(super) fn index_two(index: &Index, height: u64, committed: &Reading, rejected: &Reading) {
        let readings = [
            IndexedReading {
                reading: committed,
                index: 0,
                rejected: None,
            },
            IndexedReading {
                reading: rejected,
                index: 1,
                rejected: Some(RejectCode::Replay),
            },
        ];
        index
            .index_finalized(&FinalizedBlock {
                readings: &readings,
                ..FinalizedBlock::empty(height, 1_700_000_000_000)
            })
            .unwrap();
    }

    pub(super) fn found(
        index: &Index,
        r: &Reading,
    ) -> Option<(u64, u32, Option<RejectCode>, Vec<u8>)> {
        index
            .reading(&r.id())
            .unwrap()
            .map(|s| (s.height, s.index, s.rejected, s.bytes))
    }

    fn with_store(index: Index, dir: &Path) -> Index {
        index
            .with_index_store(&dir.join("readings"), Holds::Readings, |_, _| {
                panic!("nothing to move")
            })
            .unwrap()
    }

    pub(super) fn redb_len(index: &Index, table: TableDefinition<&[u8], &[u8]>) -> u64 {
        let r = index.db.begin_read().unwrap();
        r.open_table(table).unwrap().len().unwrap()
    }

    fn device_page(index: &Index, r: &Reading, descending: bool) -> Vec<Vec<u8>> {
        index
            .device_readings(r.device(), 0, u64::MAX, None, 10, descending)
            .unwrap()
            .readings
            .into_iter()
            .map(|s| s.bytes)
            .collect()
    }

    #[test]
    fn readings_are_kept_in_the_store_apart_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (signed(1), signed(2));
        {
            let index = with_store(
                Index::open(&dir.path().join("index.redb")).unwrap(),
                dir.path(),
            );
            index_two(&index, 3, &a, &b);
        }
        let index = with_store(
            Index::open(&dir.path().join("index.redb")).unwrap(),
            dir.path(),
        );
        assert_eq!(found(&index, &a), Some((3, 0, None, a.bytes().to_vec())));
        assert_eq!(
            found(&index, &b),
            Some((3, 1, Some(RejectCode::Replay), b.bytes().to_vec()))
        );
        assert_eq!(found(&index, &signed(3)), None);
        // Nothing was written to the reading tables of index.redb.
        assert_eq!(redb_len(&index, READINGS), 0);
        assert_eq!(redb_len(&index, DEVICE_READINGS), 0);
        // The committed one is among its device's readings, the rejected one is not.
        assert_eq!(device_page(&index, &a, false), vec![a.bytes().to_vec()]);
    }

    #[test]
    fn an_older_folder_s_device_entries_move_to_the_store_and_nothing_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (signed(1), signed(2));
        let (c, d) = (signed(3), signed(4));
        let (e, f) = (signed(5), signed(6));
        {
            // Formats 2 to 5 kept the device entries (and before 5 the by-id ones) in index.redb.
            let old = Index::open(&dir.path().join("index.redb")).unwrap();
            index_two(&old, 3, &a, &b);
            index_two(&old, 4, &c, &d);
            assert_eq!(redb_len(&old, DEVICE_READINGS), 2);
            // Found by device in index.redb, in both orders.
            let both = vec![a.bytes().to_vec(), c.bytes().to_vec()];
            assert_eq!(device_page(&old, &a, false), both);
            assert_eq!(
                device_page(&old, &a, true),
                both.into_iter().rev().collect::<Vec<_>>()
            );
        }
        // A stop during an earlier move left some entries copied already: copying them again
        // changes nothing.
        {
            let store = IndexStore::open(&dir.path().join("readings"), Holds::Readings).unwrap();
            let key = device_reading_key(a.device(), reading_time_ms(&a), a.seq());
            let old = Index::open(&dir.path().join("index.redb")).unwrap();
            let r = old.db.begin_read().unwrap();
            let t = r.open_table(DEVICE_READINGS).unwrap();
            let stored = t.get(key.as_slice()).unwrap().unwrap().value().to_vec();
            store
                .import(
                    Imported::DeviceReadings,
                    std::iter::once(Ok((key, stored))),
                    |_| {},
                )
                .unwrap();
        }
        let mut told = Vec::new();
        let index = Index::open(&dir.path().join("index.redb"))
            .unwrap()
            .with_index_store(
                &dir.path().join("readings"),
                Holds::Readings,
                |done, total| told.push((done, total)),
            )
            .unwrap();
        assert_eq!(told.last(), Some(&(2, 2)), "progress: {told:?}");
        assert_eq!(redb_len(&index, DEVICE_READINGS), 0);
        index_two(&index, 5, &e, &f);
        for (r, height, index_in_block) in [
            (&a, 3, 0),
            (&b, 3, 1),
            (&c, 4, 0),
            (&d, 4, 1),
            (&e, 5, 0),
            (&f, 5, 1),
        ] {
            let (h, i, _, bytes) = found(&index, r).expect("found");
            assert_eq!(
                (h, i, bytes.as_slice()),
                (height, index_in_block, r.bytes())
            );
        }
        let committed: Vec<Vec<u8>> = [&a, &c, &e].iter().map(|r| r.bytes().to_vec()).collect();
        assert_eq!(device_page(&index, &a, false), committed);
        let mut newest_first = committed.clone();
        newest_first.reverse();
        assert_eq!(device_page(&index, &a, true), newest_first);
        // Paging through with the cursor finds each once.
        let first = index
            .device_readings(a.device(), 0, u64::MAX, None, 2, false)
            .unwrap();
        let rest = index
            .device_readings(
                a.device(),
                0,
                u64::MAX,
                first.next_cursor.as_deref(),
                2,
                false,
            )
            .unwrap();
        assert_eq!(first.readings.len(), 2);
        assert_eq!(rest.readings.len(), 1);
        assert_eq!(rest.readings[0].bytes, e.bytes());
        assert_eq!(rest.next_cursor, None);
        drop(index);
        // Once moved, nothing is moved again.
        let index = with_store(
            Index::open(&dir.path().join("index.redb")).unwrap(),
            dir.path(),
        );
        assert_eq!(device_page(&index, &a, false), committed);
    }

    #[test]
    fn a_block_whose_index_commit_never_happened_is_found_and_indexed_again() {
        // A stop between the store's write and the commit of the block's other entries: its
        // readings are found, its latest values are not, until the block is indexed again,
        // which writes the same entries.
        let dir = tempfile::tempdir().unwrap();
        let index = with_store(
            Index::open(&dir.path().join("index.redb")).unwrap(),
            dir.path(),
        );
        let (a, b) = (signed(1), signed(2));
        let readings = [IndexedReading {
            reading: &a,
            index: 0,
            rejected: None,
        }];
        {
            let w = index.db.begin_write().unwrap();
            let (by_id, by_device) = write_readings(&w, 5, 0, &readings, &[], &[]).unwrap();
            index
                .store
                .as_ref()
                .unwrap()
                .write(BlockEntries {
                    reading_ids: by_id,
                    device_readings: by_device,
                    txs: None,
                })
                .unwrap();
            // `w` is dropped without a commit.
        }
        assert_eq!(found(&index, &a), Some((5, 0, None, a.bytes().to_vec())));
        assert!(index.latest(a.device()).unwrap().is_empty());
        index_two(&index, 5, &a, &b);
        index_two(&index, 5, &a, &b);
        assert_eq!(found(&index, &a), Some((5, 0, None, a.bytes().to_vec())));
        assert_eq!(device_page(&index, &a, false), vec![a.bytes().to_vec()]);
        assert_eq!(index.latest(a.device()).unwrap().len(), 1);
    }

    #[test]
    fn a_damaged_by_id_entry_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let index = with_store(
            Index::open(&dir.path().join("index.redb")).unwrap(),
            dir.path(),
        );
        let a = signed(1);
        for bad in [vec![], vec![7u8, 1, 2], vec![1u8, 0, 0]] {
            index
                .store
                .as_ref()
                .unwrap()
                .write(BlockEntries {
                    reading_ids: vec![(a.id(), bad.clone())],
                    ..BlockEntries::default()
                })
                .unwrap();
            assert!(
                matches!(index.reading(&a.id()), Err(IndexError::Db(_))),
                "{bad:?}"
            );
        }
    }

    /// A data format 8 index: transaction entries in the store.
    pub(super) fn with_tx_store(dir: &Path) -> Index {
        Index::open(&dir.join("index.redb"))
            .unwrap()
            .with_index_store(
                &dir.join(index_store::DIR),
                Holds::ReadingsAndTransactions,
                |_, _| panic!("nothing to move"),
            )
            .unwrap()
    }

    /// Blocks 1 to `blocks` of transfers among `accounts` accounts, `per_block` each, at
    /// block times one second apart; the same every time it is called.
    pub(super) fn transfer_blocks(
        blocks: u64,
        per_block: u32,
        accounts: u8,
    ) -> Vec<(u64, Vec<Receipt>)> {
        let mut n = 0u32;
        (1..=blocks)
            .map(|h| {
                let receipts = (0..per_block)
                    .map(|i| {
                        n += 1;
                        let from = (n % accounts as u32) as u8 + 1;
                        let to = (n * 7 % accounts as u32) as u8 + 1;
                        let mut id = [0u8; 32];
                        id[..4].copy_from_slice(&n.to_be_bytes());
                        let mut r = receipt(0, i);
                        r.tx_id = Hash::from(id);
                        r.movements = vec![
                            movement(from, to, -(n as i128), 1_000_000 - n as u64),
                            movement(to, from, n as i128, n as u64),
                        ];
                        if n.is_multiple_of(5) {
                            r.movements[0].kind = MovementKind::Mint;
                            r.movements.truncate(1);
                        }
                        r
                    })
                    .collect();
                (h, receipts)
            })
            .collect()
    }

    pub(super) fn index_blocks(index: &Index, blocks: &[(u64, Vec<Receipt>)]) {
        for (h, receipts) in blocks {
            index
                .index_finalized(&FinalizedBlock {
                    receipts,
                    ..FinalizedBlock::empty(*h, h * 1_000)
                })
                .unwrap();
        }
    }

    /// In data format 8 a block's receipts, list and history go to the store, none to
    /// `index.redb`; they read back as the same receipts, places and history, after reopening
    /// too.
    #[test]
    fn transactions_kept_in_the_store_read_back_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let blocks = transfer_blocks(6, 9, 4);
        let reference = tempfile::tempdir().unwrap();
        let old = Index::open(&reference.path().join("index.redb")).unwrap();
        index_blocks(&old, &blocks);
        {
            let index = with_tx_store(dir.path());
            index_blocks(&index, &blocks);
            for t in [TX_RECEIPTS, HISTORY, HEIGHT_TXS] {
                assert_eq!(redb_len(&index, t), 0);
            }
            assert_eq!(index.indexed_height().unwrap(), Some(6));
        }
        let index = with_tx_store(dir.path());
        for (h, receipts) in &blocks {
            for r in receipts {
                let (height, i, got) = located(&index, r).expect("committed");
                assert_eq!((height, i), (*h, r.index));
                assert_eq!((got.outcome.as_str(), &got.movements), ("ok", &r.movements));
            }
        }
        assert_eq!(index.tx_location(&Hash::from([0xee; 32])).unwrap(), None);
        for account in 1..=4 {
            let got = all_history(&index, account);
            assert!(!got.is_empty());
            assert_eq!(got, all_history(&old, account), "account {account}");
        }
    }

    /// The same blocks in either layout give the same history pages, for every query shape a
    /// client can ask: both orders, paging by cursor, height and time windows, filters.
    #[test]
    fn history_pages_are_the_same_in_either_layout() {
        let blocks = transfer_blocks(40, 25, 6);
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let redb = Index::open(&a.path().join("index.redb")).unwrap();
        let store = with_tx_store(b.path());
        index_blocks(&redb, &blocks);
        index_blocks(&store, &blocks);
        let queries = [
            HistoryQuery::default(),
            HistoryQuery {
                descending: true,
                ..Default::default()
            },
            HistoryQuery {
                from_height: Some(7),
                to_height: Some(30),
                ..Default::default()
            },
            HistoryQuery {
                from_ms: Some(12_000),
                to_ms: Some(25_000),
                descending: true,
                ..Default::default()
            },
            HistoryQuery {
                direction: Some("out".into()),
                counterparty: Some(AccountId([3; 20])),
                ..Default::default()
            },
            HistoryQuery {
                kind: Some("mint".into()),
                descending: true,
                ..Default::default()
            },
        ];
        for account in 1..=6 {
            let account = AccountId([account; 20]);
            for q in &queries {
                // Small pages, followed to the end by their cursors.
                let mut q = HistoryQuery {
                    limit: 7,
                    ..q.clone()
                };
                let mut pages = 0;
                loop {
                    let x = redb.history(&account, &q).unwrap();
                    let y = store.history(&account, &q).unwrap();
                    assert_eq!(x.entries, y.entries, "{q:?}");
                    assert_eq!(x.next_cursor, y.next_cursor, "{q:?}");
                    pages += 1;
                    match x.next_cursor {
                        Some(c) => q.cursor = Some(c),
                        None => break,
                    }
                }
                assert!(pages > 1 || q.kind.is_some() || q.counterparty.is_some());
            }
        }
    }

    /// Cutting off the blocks above a height removes their receipts, lists and history from
    /// the store, and nothing at or below it; a block whose store entries were written but
    /// whose `index.redb` commit never happened is cut too, and indexed again as it was.
    #[test]
    fn truncation_cuts_the_store_s_transactions_above_the_height_only() {
        let dir = tempfile::tempdir().unwrap();
        let blocks = transfer_blocks(5, 4, 3);
        let index = with_tx_store(dir.path());
        index_blocks(&index, &blocks[..4]);
        // Block 5 reached the store only: a stop came before index.redb committed it.
        let (h5, r5) = &blocks[4];
        index
            .store
            .as_ref()
            .unwrap()
            .write(BlockEntries {
                txs: Some(tx_entries(*h5, h5 * 1_000, r5)),
                ..BlockEntries::default()
            })
            .unwrap();
        assert_eq!(index.indexed_height().unwrap(), Some(4));
        assert!(located(&index, &r5[0]).is_some());

        index.truncate_above(3).unwrap();
        assert_eq!(index.indexed_height().unwrap(), Some(3));
        for (h, receipts) in &blocks {
            for r in receipts {
                assert_eq!(located(&index, r).is_some(), *h <= 3, "height {h}");
            }
        }
        for account in 1..=3 {
            let history = all_history(&index, account);
            assert!(!history.is_empty());
            assert!(history.iter().all(|e| e.height <= 3), "{history:?}");
        }
        let store = index.store.as_ref().unwrap();
        assert_eq!(store.blocks_from(4).unwrap().count(), 0);
        assert_eq!(store.blocks_from(0).unwrap().count(), 3);

        // Indexed again, blocks 4 and 5 read back as a never-interrupted index has them.
        index_blocks(&index, &blocks[3..]);
        let reference = tempfile::tempdir().unwrap();
        let whole = with_tx_store(reference.path());
        index_blocks(&whole, &blocks);
        for account in 1..=3 {
            assert_eq!(all_history(&index, account), all_history(&whole, account));
        }
        for (_, receipts) in &blocks {
            for r in receipts {
                assert_eq!(located(&index, r), located(&whole, r));
            }
        }
    }
}

/// The move of a format 7 folder's transaction entries, as a node opens the folder.
#[cfg(test)]
mod format_7_to_8 {
    use super::tests::*;
    use super::*;
    use crate::data_format::{self, DataFormat};

    fn marker(data: &Path) -> String {
        std::fs::read_to_string(data.join(data_format::FILE_NAME)).unwrap()
    }

    /// A format 7 folder (transaction entries in `index.redb`, readings in `readings/`)
    /// becomes format 8: its receipts, block lists and histories move into the store, which
    /// takes the format 8 folder's name, and everything reads back as an index written in
    /// format 8 from the start has it, including what a stop during an earlier move had
    /// already copied; it is then cut and written as a format 8 index is.
    #[test]
    fn a_format_7_folder_moves_its_transactions_into_the_store_and_becomes_format_8() {
        let data = tempfile::tempdir().unwrap();
        let data = data.path();
        std::fs::write(data.join(data_format::FILE_NAME), "7\n").unwrap();
        let blocks = transfer_blocks(30, 40, 5);
        let (committed, rejected) = (signed(1), signed(2));
        {
            let index = Index::open(&data.join("index.redb"))
                .unwrap()
                .with_index_store(
                    &data.join(index_store::READINGS_DIR),
                    Holds::Readings,
                    |_, _| panic!("nothing to move"),
                )
                .unwrap();
            index_blocks(&index, &blocks);
            index_two(&index, 31, &committed, &rejected);
            assert_eq!(redb_len(&index, HISTORY), 30 * 40 * 2 - 30 * 8);
        }
        // A stop during an earlier move had copied one receipt already.
        {
            let old = Index::open(&data.join("index.redb")).unwrap();
            let r = old.db.begin_read().unwrap();
            let t = r.open_table(TX_RECEIPTS).unwrap();
            let (k, v) = t.first().unwrap().unwrap();
            let store = IndexStore::open(
                &data.join(index_store::READINGS_DIR),
                Holds::ReadingsAndTransactions,
            )
            .unwrap();
            let entry = (k.value().to_vec(), v.value().to_vec());
            store
                .import(Imported::TxReceipts, std::iter::once(Ok(entry)), |_| {})
                .unwrap();
        }
        let reference = tempfile::tempdir().unwrap();
        let whole = with_tx_store(reference.path());
        index_blocks(&whole, &blocks);

        let (index, format) = crate::runner::open_index(data, 1 << 20).unwrap();
        assert_eq!(format, DataFormat(8));
        assert_eq!(marker(data).trim(), "8");
        assert!(!data.join(index_store::READINGS_DIR).exists());
        assert!(data.join(index_store::DIR).is_dir());
        for t in [TX_RECEIPTS, HISTORY, HEIGHT_TXS, DEVICE_READINGS] {
            assert_eq!(redb_len(&index, t), 0);
        }
        let same_as_whole = |index: &Index, top: u64| {
            for (h, receipts) in &blocks {
                for r in receipts {
                    let got = located(index, r);
                    if *h <= top {
                        assert!(got.is_some(), "height {h}");
                        assert_eq!(got, located(&whole, r));
                    } else {
                        assert_eq!(got, None, "height {h}");
                    }
                }
            }
            let q = HistoryQuery {
                limit: 10_000,
                ..Default::default()
            };
            for account in 1..=5 {
                let account = AccountId([account; 20]);
                let expected: Vec<_> = whole
                    .history(&account, &q)
                    .unwrap()
                    .entries
                    .into_iter()
                    .filter(|e| e.height <= top)
                    .collect();
                assert!(expected.len() > 100);
                let got = index.history(&account, &q).unwrap();
                assert_eq!(got.entries, expected, "account {account}");
            }
        };
        same_as_whole(&index, 30);
        assert_eq!(found(&index, &committed).map(|f| f.0), Some(31));
        assert_eq!(found(&index, &rejected).map(|f| f.0), Some(31));

        index.truncate_above(20).unwrap();
        same_as_whole(&index, 20);
        drop(index);
        // Opened again, it is format 8 with nothing to move.
        let (index, format) = crate::runner::open_index(data, 1 << 20).unwrap();
        assert_eq!(format, DataFormat(8));
        same_as_whole(&index, 20);
        index_blocks(&index, &blocks[20..]);
        same_as_whole(&index, 30);
        assert_eq!(found(&index, &committed).map(|f| f.0), Some(31));
    }

    /// Transaction entries older than data format 4 cannot move: opening such an index with
    /// a store that keeps transactions is an error, and they stay where they were.
    #[test]
    fn entries_of_an_older_layout_are_not_moved() {
        let dir = tempfile::tempdir().unwrap();
        {
            let legacy = Index::open(&dir.path().join("index.redb"))
                .unwrap()
                .writing_json_entries();
            index_blocks(&legacy, &transfer_blocks(2, 3, 2));
        }
        let err = Index::open(&dir.path().join("index.redb"))
            .unwrap()
            .with_index_store(
                &dir.path().join(index_store::DIR),
                Holds::ReadingsAndTransactions,
                |_, _| {},
            )
            .err()
            .expect("refused");
        assert!(err.to_string().contains("before data format 4"), "{err}");
        let index = Index::open(&dir.path().join("index.redb")).unwrap();
        assert_eq!(redb_len(&index, HISTORY), 11);
        assert_eq!(redb_len(&index, TX_RECEIPTS), 6);
    }
}
