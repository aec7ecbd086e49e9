//! The transaction pool: signed transactions waiting for a block, bounded in total and per
//! account, handed to the proposer per account in nonce order and round-robin across accounts
//! so that one busy account cannot starve the others. Transactions the ledger refused while
//! building a block are remembered for a while with their reason, so their submitters learn why.

use crate::recent::Recent;
use std::collections::{BTreeMap, HashMap};
use verity_types::{AccountId, Hash, SignedTransaction};

/// How many refused transactions the pool remembers, at most; each is kept for at least half
/// as many newer refusals ([Recent]).
pub const REFUSED_MEMORY: usize = 100_000;

/// Why the pool did not take a transaction.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolError {
    /// The pool holds its maximum.
    #[error("transaction pool is full ({0} transactions)")]
    Full(usize),
    /// The account holds its maximum of pending transactions.
    #[error("account has {0} pending transactions, the limit")]
    AccountFull(usize),
    /// Another transaction with the same nonce is pending.
    #[error("another transaction with nonce {0} is pending for this account")]
    NonceTaken(u64),
}

impl PoolError {
    /// The API error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Full(_) => "pool_full",
            Self::AccountFull(_) => "account_pool_full",
            Self::NonceTaken(_) => "nonce_taken",
        }
    }
}

/// Outcome of offering a transaction.
#[derive(Debug, PartialEq, Eq)]
pub enum Inserted {
    /// Newly pending.
    New,
    /// Already pending (resubmission).
    Duplicate,
}

/// The pool.
pub struct Pool {
    max_txs: usize,
    max_per_account: usize,
    by_id: HashMap<Hash, SignedTransaction>,
    by_account: BTreeMap<AccountId, BTreeMap<u64, Hash>>,
    refused: Recent<Hash, (String, String)>,
}

impl Pool {
    /// An empty pool with the given limits.
    pub fn new(max_txs: usize, max_per_account: usize) -> Self {
        Self {
            max_txs,
            max_per_account,
            by_id: HashMap::new(),
            by_account: BTreeMap::new(),
            refused: Recent::new(REFUSED_MEMORY),
        }
    }

    /// Number of pending transactions.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Whether `id` is pending.
    pub fn contains(&self, id: &Hash) -> bool {
        self.by_id.contains_key(id)
    }

    /// The refusal of `id` while building a block: (code, message).
    pub fn refusal(&self, id: &Hash) -> Option<&(String, String)> {
        self.refused.get(id)
    }

    /// Offers a transaction that passed the submission checks.
    pub fn insert(&mut self, tx: SignedTransaction) -> Result<Inserted, PoolError> {
        let id = tx.id();
        if self.by_id.contains_key(&id) {
            return Ok(Inserted::Duplicate);
        }
        if self.by_id.len() >= self.max_txs {
            return Err(PoolError::Full(self.max_txs));
        }
        let account = tx.tx.account();
        let nonce = tx.tx.nonce.0;
        let entries = self.by_account.entry(account).or_default();
        if entries.contains_key(&nonce) {
            return Err(PoolError::NonceTaken(nonce));
        }
        if entries.len() >= self.max_per_account {
            return Err(PoolError::AccountFull(self.max_per_account));
        }
        entries.insert(nonce, id);
        self.refused.remove(&id);
        self.by_id.insert(id, tx);
        Ok(Inserted::New)
    }

    /// Up to `max` candidates: each account's transactions in nonce order, accounts taken
    /// round-robin.
    pub fn candidates(&self, max: usize) -> Vec<SignedTransaction> {
        let mut queues: Vec<_> = self
            .by_account
            .values()
            .map(|m| m.values().peekable())
            .collect();
        let mut out = Vec::with_capacity(max.min(self.by_id.len()));
        while out.len() < max {
            let mut progressed = false;
            for q in queues.iter_mut() {
                if out.len() >= max {
                    break;
                }
                if let Some(id) = q.next() {
                    out.push(self.by_id[id].clone());
                    progressed = true;
                }
            }
            if !progressed {
                break;
            }
        }
        out
    }

    /// Removes transactions that were committed.
    pub fn remove_committed<'a>(&mut self, ids: impl IntoIterator<Item = &'a Hash>) {
        for id in ids {
            self.remove(id);
        }
    }

    /// Removes a transaction the ledger refused, remembering why.
    pub fn refuse(&mut self, id: &Hash, code: &str, message: String) {
        if self.remove(id).is_none() {
            return;
        }
        self.refused.insert(*id, (code.to_string(), message));
    }

    /// Drops every pending transaction of `account` with a nonce below `next_nonce`: other
    /// transactions took those nonces, so they can never commit. They are remembered as refused
    /// with `nonce_too_low`, so that their submitters learn it rather than wait in vain.
    pub fn prune_account(&mut self, account: &AccountId, next_nonce: u64) {
        let stale: Vec<(u64, Hash)> = match self.by_account.get(account) {
            Some(m) => m.range(..next_nonce).map(|(n, id)| (*n, *id)).collect(),
            None => return,
        };
        for (nonce, id) in stale {
            let e = verity_ledger::TxError::BadNonce {
                expected: verity_types::Nonce(next_nonce),
                got: verity_types::Nonce(nonce),
            };
            self.refuse(&id, e.code(), e.to_string());
        }
    }

    fn remove(&mut self, id: &Hash) -> Option<SignedTransaction> {
        let tx = self.by_id.remove(id)?;
        let account = tx.tx.account();
        if let Some(m) = self.by_account.get_mut(&account) {
            m.remove(&tx.tx.nonce.0);
            if m.is_empty() {
                self.by_account.remove(&account);
            }
        }
        Some(tx)
    }
}
