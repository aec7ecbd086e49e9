//! The cheque part of the query index: each cheque's current record and its lifecycle events,
//! and lists by drawer, holder and state. Written with the same values when a block is indexed
//! again, so it needs no cutting after a crash (see [crate::index]).

use crate::index::{Index, IndexError, ie};
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde_json::{Value, json};
use verity_ledger::cheques::{ChequeEvent, ChequeRecord};
use verity_types::{AccountId, Hash};

const CHEQUES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("cheques");
const CHEQUE_EVENTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("cheque_events");
/// Keys `role ‖ account ‖ cheque id`, role `d` (drawer) or `h` (holder).
const CHEQUE_PARTIES: TableDefinition<&[u8], ()> = TableDefinition::new("cheque_parties");
/// Keys `state len ‖ state ‖ cheque id`.
const CHEQUE_STATES: TableDefinition<&[u8], ()> = TableDefinition::new("cheque_states");

pub(crate) fn create_tables(w: &WriteTransaction) -> Result<(), IndexError> {
    w.open_table(CHEQUES).map_err(ie)?;
    w.open_table(CHEQUE_EVENTS).map_err(ie)?;
    w.open_table(CHEQUE_PARTIES).map_err(ie)?;
    w.open_table(CHEQUE_STATES).map_err(ie)?;
    Ok(())
}

/// The JSON form of a cheque record (API and CLI).
pub fn cheque_json(c: &ChequeRecord) -> Value {
    let opt = |a: &Option<AccountId>| a.map(|a| a.to_string());
    json!({
        "cheque_id": c.id.to_string(),
        "kind": if c.paper.is_some() { "paper" } else { "digital" },
        "state": c.state(),
        "drawer": c.drawer.to_string(),
        "payee": c.payee.to_string(),
        "holder": c.holder.to_string(),
        "asset": c.asset.to_string(),
        "amount": c.amount.to_string(),
        "valid_from_ms": c.valid_from_ms,
        "expires_ms": c.expires_ms,
        "memo": c.memo,
        "issued_height": c.issued_height,
        "issued_ms": c.issued_ms,
        "endorsements": c.endorsements,
        "pledgee": opt(&c.pledgee),
        "stopped": c.stopped,
        "dishonour_reason": c.dishonour.map(|d| d.code()),
        "return_reason": c.note,
        "presented_by": opt(&c.presented_by),
        "final_height": c.final_height,
        "paper": c.paper.as_ref().map(|p| json!({
            "image_sha256": p.image_sha256.to_string(),
            "number": p.number.as_str(),
            "collecting_bank": p.collecting.as_str(),
        })),
    })
}

fn party_key(role: u8, account: &str, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + 40 + 64);
    k.push(role);
    k.extend_from_slice(account.as_bytes());
    k.extend_from_slice(id.as_bytes());
    k
}

fn state_key(state: &str, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + state.len() + 64);
    k.push(state.len() as u8);
    k.extend_from_slice(state.as_bytes());
    k.extend_from_slice(id.as_bytes());
    k
}

/// Most cheques examined for one page of a filtered list: a page may hold fewer than its
/// limit and still have a `next_after`.
pub const MAX_CHEQUE_SCAN: usize = 10_000;

/// A page of cheques.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ChequePage {
    /// The cheques, by id.
    pub cheques: Vec<Value>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next_after: Option<String>,
}

/// Which cheques to list.
#[derive(Clone, Debug, Default)]
pub struct ChequeQuery {
    /// Drawn on this account.
    pub drawer: Option<AccountId>,
    /// Held by this account.
    pub holder: Option<AccountId>,
    /// In this state.
    pub state: Option<String>,
    /// Only ids after this one (the previous page's `next_after`).
    pub after: Option<String>,
    /// Most cheques.
    pub limit: usize,
}

impl Index {
    /// A cheque's lifecycle events, oldest first.
    pub fn cheque_events(&self, id: &Hash, limit: usize) -> Result<Vec<Value>, IndexError> {
        let r = self.db.begin_read().map_err(ie)?;
        let t = r.open_table(CHEQUE_EVENTS).map_err(ie)?;
        let mut out = Vec::new();
        for item in t.range(id.0.as_slice()..).map_err(ie)? {
            let (k, v) = item.map_err(ie)?;
            if !k.value().starts_with(&id.0) || out.len() >= limit {
                break;
            }
            out.push(serde_json::from_slice(v.value()).map_err(ie)?);
        }
        Ok(out)
    }

    /// Cheques matching `q`, in id order.
    pub fn cheques(&self, q: &ChequeQuery) -> Result<ChequePage, IndexError> {
        let r = self.db.begin_read().map_err(ie)?;
        let records = r.open_table(CHEQUES).map_err(ie)?;
        // Walk the most selective list: drawer, holder, state, or every cheque.
        let prefix = match (&q.drawer, &q.holder, &q.state) {
            (Some(d), _, _) => Some((CHEQUE_PARTIES, party_key(b'd', &d.to_string(), ""))),
            (None, Some(h), _) => Some((CHEQUE_PARTIES, party_key(b'h', &h.to_string(), ""))),
            (None, None, Some(s)) => Some((CHEQUE_STATES, state_key(s, ""))),
            (None, None, None) => None,
        };
        let after = q.after.clone().unwrap_or_default().to_ascii_lowercase();
        let mut last_seen: Option<String> = None;
        let mut scanned = 0usize;
        let mut out = Vec::new();
        let mut more = false;
        let mut take = |id: &str| -> Result<bool, IndexError> {
            if out.len() == q.limit || scanned == MAX_CHEQUE_SCAN {
                more = true;
                return Ok(false);
            }
            scanned += 1;
            last_seen = Some(id.to_string());
            let Some(hash) = verity_types::hash::parse_hash(id) else {
                return Ok(true);
            };
            let Some(v) = records.get(hash.0.as_slice()).map_err(ie)? else {
                return Ok(true);
            };
            let j: Value = serde_json::from_slice(v.value()).map_err(ie)?;
            let ok = q.holder.is_none_or(|h| j["holder"] == h.to_string())
                && q.state.as_ref().is_none_or(|s| j["state"] == *s);
            if ok {
                out.push(j);
            }
            Ok(true)
        };
        match prefix {
            Some((table, prefix)) => {
                let t = r.open_table(table).map_err(ie)?;
                let mut start = prefix.clone();
                start.extend_from_slice(after.as_bytes());
                for item in t.range(start.as_slice()..).map_err(ie)? {
                    let (k, _) = item.map_err(ie)?;
                    let k = k.value();
                    if !k.starts_with(&prefix) {
                        break;
                    }
                    let id = std::str::from_utf8(&k[prefix.len()..]).map_err(ie)?;
                    if id == after {
                        continue;
                    }
                    if !take(id)? {
                        break;
                    }
                }
            }
            None => {
                let start = verity_types::hash::parse_hash(&after).map(|h| h.0.to_vec());
                let range = match &start {
                    Some(s) => records.range(s.as_slice()..),
                    None => records.range::<&[u8]>(..),
                }
                .map_err(ie)?;
                for item in range {
                    let (k, _) = item.map_err(ie)?;
                    let id = hex::encode(k.value());
                    if id == after {
                        continue;
                    }
                    if !take(&id)? {
                        break;
                    }
                }
            }
        }
        Ok(ChequePage {
            cheques: out,
            next_after: if more { last_seen } else { None },
        })
    }
}

/// Writes a finalized block's cheque events and records into `w` (see [Index::index_finalized]).
pub(crate) fn write_cheques(
    w: &WriteTransaction,
    height: u64,
    timestamp_ms: u64,
    tx_ids: &[Hash],
    events: &[(u32, ChequeEvent)],
    records: &[ChequeRecord],
) -> Result<(), IndexError> {
    let mut ev_table = w.open_table(CHEQUE_EVENTS).map_err(ie)?;
    for (index, ev) in events {
        let tx_id = tx_ids.get(*index as usize).map(|h| h.to_string());
        let v = json!({
            "action": ev.action,
            "by": ev.by.to_string(),
            "to": ev.to.map(|a| a.to_string()),
            "detail": ev.detail,
            "height": height,
            "timestamp_ms": timestamp_ms,
            "tx_id": tx_id,
        });
        let mut k = ev.cheque.0.to_vec();
        k.extend_from_slice(&height.to_be_bytes());
        k.extend_from_slice(&index.to_be_bytes());
        let v = serde_json::to_vec(&v).map_err(ie)?;
        ev_table.insert(k.as_slice(), v.as_slice()).map_err(ie)?;
    }
    let mut cheques = w.open_table(CHEQUES).map_err(ie)?;
    let mut parties = w.open_table(CHEQUE_PARTIES).map_err(ie)?;
    let mut states = w.open_table(CHEQUE_STATES).map_err(ie)?;
    for c in records {
        let id = c.id.to_string();
        let old: Option<Value> = cheques
            .get(c.id.0.as_slice())
            .map_err(ie)?
            .map(|v| serde_json::from_slice(v.value()))
            .transpose()
            .map_err(ie)?;
        if let Some(old) = old {
            let holder = old["holder"].as_str().unwrap_or_default();
            let state = old["state"].as_str().unwrap_or_default();
            parties
                .remove(party_key(b'h', holder, &id).as_slice())
                .map_err(ie)?;
            states
                .remove(state_key(state, &id).as_slice())
                .map_err(ie)?;
        }
        let j = cheque_json(c);
        let v = serde_json::to_vec(&j).map_err(ie)?;
        cheques
            .insert(c.id.0.as_slice(), v.as_slice())
            .map_err(ie)?;
        parties
            .insert(party_key(b'd', &c.drawer.to_string(), &id).as_slice(), ())
            .map_err(ie)?;
        parties
            .insert(party_key(b'h', &c.holder.to_string(), &id).as_slice(), ())
            .map_err(ie)?;
        states
            .insert(state_key(c.state(), &id).as_slice(), ())
            .map_err(ie)?;
    }
    Ok(())
}
