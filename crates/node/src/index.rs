//! Query indexes: a read model derived from finalized blocks, kept in redb (an embedded
//! database made for range scans): where each transaction was committed, and each account's
//! history of movements. It records the height it reflects. It is written before the ledger
//! state commits a block, and on start anything above the state's height is cut off, so a crash
//! in between is repaired when the block is executed again.

use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::path::Path;
use verity_ledger::accounts::Movement;
use verity_types::{AccountId, Hash};

const TXS: TableDefinition<&[u8], (u64, u32)> = TableDefinition::new("txs");
const HEIGHT_TXS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("height_txs");
const HISTORY: TableDefinition<&[u8], &[u8]> = TableDefinition::new("history");
const HEIGHT_HISTORY: TableDefinition<&[u8], &[u8]> = TableDefinition::new("height_history");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const INDEXED_HEIGHT: &str = "indexed_height";

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

fn ie(e: impl std::fmt::Display) -> IndexError {
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
    /// `transfer`, `mint` or `burn`.
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

/// The index database.
pub struct Index {
    db: Database,
}

impl Index {
    /// Opens (or creates) the index at `path`.
    pub fn open(path: &Path) -> Result<Self, IndexError> {
        let db = Database::create(path).map_err(ie)?;
        let w = db.begin_write().map_err(ie)?;
        {
            w.open_table(TXS).map_err(ie)?;
            w.open_table(HEIGHT_TXS).map_err(ie)?;
            w.open_table(HISTORY).map_err(ie)?;
            w.open_table(HEIGHT_HISTORY).map_err(ie)?;
            w.open_table(META).map_err(ie)?;
        }
        w.commit().map_err(ie)?;
        Ok(Self { db })
    }

    /// The highest height indexed.
    pub fn indexed_height(&self) -> Result<Option<u64>, IndexError> {
        let r = self.db.begin_read().map_err(ie)?;
        let t = r.open_table(META).map_err(ie)?;
        Ok(t.get(INDEXED_HEIGHT).map_err(ie)?.map(|v| v.value()))
    }

    /// Indexes a finalized block (idempotent).
    pub fn index_block(
        &self,
        height: u64,
        timestamp_ms: u64,
        tx_ids: &[Hash],
        movements: &[Movement],
    ) -> Result<(), IndexError> {
        let w = self.db.begin_write().map_err(ie)?;
        {
            let mut txs = w.open_table(TXS).map_err(ie)?;
            let mut height_txs = w.open_table(HEIGHT_TXS).map_err(ie)?;
            for (i, id) in tx_ids.iter().enumerate() {
                txs.insert(id.0.as_slice(), (height, i as u32))
                    .map_err(ie)?;
                height_txs
                    .insert(height_key(height, i as u32).as_slice(), id.0.as_slice())
                    .map_err(ie)?;
            }
            let mut history = w.open_table(HISTORY).map_err(ie)?;
            let mut height_history = w.open_table(HEIGHT_HISTORY).map_err(ie)?;
            for (seq, m) in movements.iter().enumerate() {
                let seq = seq as u32;
                let entry = HistoryEntry {
                    account: m.account,
                    asset: m.asset.to_string(),
                    delta: m.delta.to_string(),
                    direction: if m.delta < 0 { "out" } else { "in" }.to_string(),
                    counterparty: m.counterparty,
                    kind: m.kind.to_string(),
                    memo: m.memo.clone(),
                    height,
                    timestamp_ms,
                    tx_id: m.tx_id.to_string(),
                    balance_after: m.balance_after,
                    seq,
                };
                let key = history_key(&m.account, height, seq);
                let value = serde_json::to_vec(&entry).map_err(ie)?;
                history
                    .insert(key.as_slice(), value.as_slice())
                    .map_err(ie)?;
                height_history
                    .insert(height_key(height, seq).as_slice(), key.as_slice())
                    .map_err(ie)?;
            }
            let mut meta = w.open_table(META).map_err(ie)?;
            meta.insert(INDEXED_HEIGHT, height).map_err(ie)?;
        }
        w.commit().map_err(ie)
    }

    /// Removes everything indexed above `height` (repair after a crash).
    pub fn truncate_above(&self, height: u64) -> Result<(), IndexError> {
        let w = self.db.begin_write().map_err(ie)?;
        {
            let start = height_key(height + 1, 0);
            let mut height_txs = w.open_table(HEIGHT_TXS).map_err(ie)?;
            let mut txs = w.open_table(TXS).map_err(ie)?;
            let doomed: Vec<(Vec<u8>, Vec<u8>)> = height_txs
                .range(start.as_slice()..)
                .map_err(ie)?
                .map(|r| r.map(|(k, v)| (k.value().to_vec(), v.value().to_vec())))
                .collect::<Result<_, _>>()
                .map_err(ie)?;
            for (k, id) in doomed {
                txs.remove(id.as_slice()).map_err(ie)?;
                height_txs.remove(k.as_slice()).map_err(ie)?;
            }
            let mut height_history = w.open_table(HEIGHT_HISTORY).map_err(ie)?;
            let mut history = w.open_table(HISTORY).map_err(ie)?;
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

    /// Where a transaction was committed: (height, index in block).
    pub fn tx_location(&self, id: &Hash) -> Result<Option<(u64, u32)>, IndexError> {
        let r = self.db.begin_read().map_err(ie)?;
        let t = r.open_table(TXS).map_err(ie)?;
        Ok(t.get(id.0.as_slice()).map_err(ie)?.map(|v| v.value()))
    }

    /// A page of an account's history, oldest first (or newest first with `descending`).
    /// `cursor` is the `next_cursor` of the previous page.
    pub fn history(
        &self,
        account: &AccountId,
        cursor: Option<&str>,
        limit: usize,
        descending: bool,
    ) -> Result<HistoryPage, IndexError> {
        let r = self.db.begin_read().map_err(ie)?;
        let t = r.open_table(HISTORY).map_err(ie)?;
        let lo = history_key(account, 0, 0);
        let hi = history_key(account, u64::MAX, u32::MAX);
        let cursor_key = match cursor {
            Some(c) => {
                let (h, s) = parse_cursor(c).ok_or_else(|| IndexError::BadCursor(c.to_string()))?;
                Some(history_key(account, h, s))
            }
            None => None,
        };
        let mut entries = Vec::new();
        let mut next_cursor = None;
        let mut push = |v: &[u8]| -> Result<bool, IndexError> {
            if entries.len() == limit {
                return Ok(false);
            }
            let e: HistoryEntry = serde_json::from_slice(v).map_err(ie)?;
            entries.push(e);
            Ok(true)
        };
        let mut more = false;
        if descending {
            let upper = cursor_key.unwrap_or(hi);
            let range = if cursor_key.is_some() {
                t.range(lo.as_slice()..upper.as_slice())
            } else {
                t.range(lo.as_slice()..=upper.as_slice())
            }
            .map_err(ie)?;
            for item in range.rev() {
                let (_, v) = item.map_err(ie)?;
                if !push(v.value())? {
                    more = true;
                    break;
                }
            }
        } else {
            let range = match cursor_key {
                Some(c) => t.range(c.as_slice()..=hi.as_slice()),
                None => t.range(lo.as_slice()..=hi.as_slice()),
            }
            .map_err(ie)?;
            for item in range {
                let (k, v) = item.map_err(ie)?;
                if cursor_key.is_some_and(|c| k.value() == c.as_slice()) {
                    continue;
                }
                if !push(v.value())? {
                    more = true;
                    break;
                }
            }
        }
        if more && let Some(last) = entries.last() {
            next_cursor = Some(format!("{}-{}", last.height, last.seq));
        }
        Ok(HistoryPage {
            entries,
            next_cursor,
        })
    }
}

fn parse_cursor(c: &str) -> Option<(u64, u32)> {
    let (h, s) = c.split_once('-')?;
    Some((h.parse().ok()?, s.parse().ok()?))
}
