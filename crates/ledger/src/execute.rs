//! Block execution: applies transactions in order to an [Overlay], all-or-nothing per
//! transaction. A validator executes a proposed block strictly (any refused transaction makes
//! the block invalid); a proposer builds a block by executing candidates and leaving out those
//! the ledger refuses.

use crate::{
    accounts::{self, Movement, TxCtx},
    error::{BlockError, TxError},
    state::{Overlay, Staged, StateReader, account_key},
};
use std::collections::BTreeSet;
use verity_types::{Hash, Nonce, SignedTransaction, TxBody, hash::sha256, merkle};

/// What a block executes against, besides state.
#[derive(Clone, Copy, Debug)]
pub struct BlockEnv {
    /// The network's chain id (genesis hash); transaction signatures cover it.
    pub chain_id: Hash,
    /// Height of the block.
    pub height: u64,
    /// Block time (milliseconds since the Unix epoch).
    pub timestamp_ms: u64,
}

/// Decides whether a transaction's signature is valid; lets a node reuse verification it did
/// at submission. Must agree with [SignedTransaction::verify_signature].
pub trait SignatureCheck: Sync {
    /// True if the signature verifies for `chain_id`.
    fn check(&self, tx: &SignedTransaction, chain_id: &Hash) -> bool;
}

/// Verifies every signature.
pub struct VerifyAll;

impl SignatureCheck for VerifyAll {
    fn check(&self, tx: &SignedTransaction, chain_id: &Hash) -> bool {
        tx.verify_signature(chain_id).is_ok()
    }
}

/// The outcome of a transaction in a block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The transaction.
    pub tx_id: Hash,
    /// Its position in the block.
    pub index: u32,
}

impl Receipt {
    /// The leaf hashed into the receipts root.
    pub fn leaf(&self) -> Hash {
        let mut bytes = Vec::with_capacity(40);
        bytes.extend_from_slice(b"rcpt");
        bytes.extend_from_slice(&self.tx_id.0);
        bytes.extend_from_slice(&self.index.to_be_bytes());
        sha256(&bytes)
    }
}

/// The receipts root of a block.
pub fn receipts_root(receipts: &[Receipt]) -> Hash {
    let leaves: Vec<Hash> = receipts.iter().map(Receipt::leaf).collect();
    merkle::root(&leaves)
}

/// Applies one transaction; on error nothing is written.
pub async fn apply_tx<R: StateReader>(
    state: &mut Overlay<'_, R>,
    env: &BlockEnv,
    tx: &SignedTransaction,
    sigs: &impl SignatureCheck,
) -> Result<Vec<Movement>, TxError> {
    if !sigs.check(tx, &env.chain_id) {
        return Err(TxError::BadSignature);
    }
    let sender = tx.tx.account();
    let mut record = accounts::load(state, &sender).await?;
    if record.nonce != tx.tx.nonce.0 {
        return Err(TxError::BadNonce {
            expected: Nonce(record.nonce),
            got: tx.tx.nonce,
        });
    }
    record.nonce += 1;
    let mut staged = Staged::default();
    let ctx = TxCtx {
        id: tx.id(),
        sender,
        sender_record: &mut record,
    };
    let movements = match &tx.tx.body {
        TxBody::Transfer {
            to,
            asset,
            amount,
            memo,
        } => accounts::transfer(state, ctx, to, asset, *amount, memo, &mut staged).await?,
        TxBody::Mint {
            to,
            asset,
            amount,
            memo,
        } => accounts::mint(state, ctx, to, asset, *amount, memo, &mut staged).await?,
        TxBody::Burn {
            asset,
            amount,
            memo,
        } => accounts::burn(state, ctx, asset, *amount, memo, &mut staged).await?,
        _ => return Err(TxError::Unauthorized("unsupported transaction".into())),
    };
    // The sender's record goes last so that it wins over any staged copy of the same account.
    staged.put(account_key(&sender), &record);
    state.apply(staged.0);
    Ok(movements)
}

/// The result of executing a block's transactions.
#[derive(Debug, Default)]
pub struct Executed {
    /// One receipt per transaction.
    pub receipts: Vec<Receipt>,
    /// Every movement of value, in order.
    pub movements: Vec<Movement>,
}

/// Executes a proposed block strictly: any refused or repeated transaction makes it invalid.
pub async fn execute_block<R: StateReader>(
    state: &mut Overlay<'_, R>,
    env: &BlockEnv,
    txs: &[SignedTransaction],
    sigs: &impl SignatureCheck,
) -> Result<Executed, BlockError> {
    let mut seen = BTreeSet::new();
    let mut out = Executed::default();
    for (index, tx) in txs.iter().enumerate() {
        if !seen.insert(tx.id()) {
            return Err(BlockError::Duplicate(tx.id().to_string()));
        }
        match apply_tx(state, env, tx, sigs).await {
            Ok(m) => {
                out.movements.extend(m);
                out.receipts.push(Receipt {
                    tx_id: tx.id(),
                    index: index as u32,
                });
            }
            Err(TxError::State(e)) => return Err(BlockError::Storage(e)),
            Err(error) => {
                return Err(BlockError::Tx {
                    index,
                    id: tx.id().to_string(),
                    error,
                });
            }
        }
    }
    Ok(out)
}

/// Builds a block's contents from candidates in order, leaving out those refused. Returns the
/// included transactions, their execution, and the refused ones with the reason.
pub async fn build_block<R: StateReader>(
    state: &mut Overlay<'_, R>,
    env: &BlockEnv,
    candidates: Vec<SignedTransaction>,
    max_txs: usize,
    sigs: &impl SignatureCheck,
) -> Result<(Vec<SignedTransaction>, Executed, Vec<(Hash, TxError)>), BlockError> {
    let mut included = Vec::new();
    let mut refused = Vec::new();
    let mut out = Executed::default();
    let mut seen = BTreeSet::new();
    for tx in candidates {
        if included.len() >= max_txs {
            break;
        }
        if !seen.insert(tx.id()) {
            continue;
        }
        match apply_tx(state, env, &tx, sigs).await {
            Ok(m) => {
                out.movements.extend(m);
                out.receipts.push(Receipt {
                    tx_id: tx.id(),
                    index: included.len() as u32,
                });
                included.push(tx);
            }
            Err(TxError::State(e)) => return Err(BlockError::Storage(e)),
            Err(e) => refused.push((tx.id(), e)),
        }
    }
    Ok((included, out, refused))
}
