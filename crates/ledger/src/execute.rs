//! Block execution: applies transactions in order to an [Overlay], all-or-nothing per
//! transaction. A validator executes a proposed block strictly (any refused transaction makes
//! the block invalid); a proposer builds a block by executing candidates and leaving out those
//! the ledger refuses.

use crate::{
    accounts::{self, TxCtx},
    cheques::{self, ChequeEvent, ChequeOutcome},
    devices,
    error::{BlockError, TxError},
    multisig,
    state::{Overlay, Staged, StateReader, account_key},
    telemetry::{self, ReadingCheck, ReadingOutcome},
};
use std::{collections::BTreeSet, sync::Arc};
use verity_types::{
    Hash, Nonce, Reading, RejectCode, SignedTransaction, TxBody, merkle,
    receipt::{Movement, OUTCOME_OK},
};

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

pub use verity_types::receipt::Receipt;

/// The outcome of a reading in a block: accepted, or rejected with a code and never applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadingReceipt {
    /// The reading.
    pub reading_id: Hash,
    /// Its position among the block's readings.
    pub index: u32,
    /// Why it was rejected, if it was.
    pub rejected: Option<RejectCode>,
}

impl ReadingReceipt {
    /// The leaf hashed into the receipts root:
    /// `SHA-256("rdrc" ‖ reading id ‖ index u32 ‖ outcome u8)`, outcome 0 for accepted.
    pub fn leaf(&self) -> Hash {
        verity_types::proof::reading_receipt_leaf(
            &self.reading_id,
            self.index,
            self.rejected.map_or(0, RejectCode::tag),
        )
    }
}

/// The leaves of a block's receipts tree: the transactions' receipts, then the readings'.
pub fn receipt_leaves(receipts: &[Receipt], readings: &[ReadingReceipt]) -> Vec<Hash> {
    receipts
        .iter()
        .map(Receipt::leaf)
        .chain(readings.iter().map(ReadingReceipt::leaf))
        .collect()
}

/// The receipts root of a block.
pub fn receipts_root(receipts: &[Receipt], readings: &[ReadingReceipt]) -> Hash {
    merkle::root(&receipt_leaves(receipts, readings))
}

/// What a transaction did.
#[derive(Debug, Default)]
pub struct Applied {
    /// `ok`, or the code of a cheque outcome that moved no value.
    pub outcome: String,
    /// Every balance it changed.
    pub movements: Vec<Movement>,
    /// The cheque lifecycle step it made, if any.
    pub cheque: Option<ChequeEvent>,
}

impl Applied {
    fn ok() -> Self {
        Self {
            outcome: OUTCOME_OK.to_string(),
            ..Self::default()
        }
    }

    fn moved(movements: Vec<Movement>) -> Self {
        Self {
            movements,
            ..Self::ok()
        }
    }

    fn cheque(c: ChequeOutcome) -> Self {
        Self {
            outcome: c.outcome,
            movements: c.movements,
            cheque: Some(c.event),
        }
    }
}

/// Runs one operation as `ctx.sender` (the signer, or a multi-signature account).
async fn dispatch<R: StateReader>(
    state: &Overlay<'_, R>,
    env: &BlockEnv,
    ctx: &TxCtx<'_>,
    body: &TxBody,
    staged: &mut Staged,
) -> Result<Applied, TxError> {
    let h = env.height;
    Ok(match body {
        TxBody::Transfer {
            to,
            asset,
            amount,
            memo,
        } => {
            Applied::moved(accounts::transfer(state, ctx, to, asset, *amount, memo, staged).await?)
        }
        TxBody::Mint {
            to,
            asset,
            amount,
            memo,
        } => Applied::moved(accounts::mint(state, ctx, to, asset, *amount, memo, staged).await?),
        TxBody::Burn {
            asset,
            amount,
            memo,
        } => Applied::moved(accounts::burn(state, ctx, asset, *amount, memo, staged).await?),
        TxBody::DeviceRegister { device, key, meta } => {
            devices::register(state, ctx, h, device, key, meta, staged).await?;
            Applied::ok()
        }
        TxBody::DeviceSetStatus { device, status } => {
            devices::set_status(state, ctx, device, *status, staged).await?;
            Applied::ok()
        }
        TxBody::DeviceRotateKey { device, key } => {
            devices::rotate_key(state, ctx, h, device, key, staged).await?;
            Applied::ok()
        }
        TxBody::DeviceTransfer { device, to } => {
            devices::transfer(state, ctx, device, to, staged).await?;
            Applied::ok()
        }
        TxBody::SetTier { account, tier } => {
            accounts::set_tier(state, ctx, account, tier, staged).await?;
            Applied::ok()
        }
        TxBody::SetFrozen {
            account,
            frozen,
            reason,
        } => {
            accounts::set_frozen(state, ctx, account, *frozen, reason, staged).await?;
            Applied::ok()
        }
        TxBody::ChequeIssue {
            payee,
            asset,
            amount,
            valid_from_ms,
            expires_ms,
            memo,
        } => Applied::cheque(
            cheques::issue(
                state,
                ctx,
                h,
                payee,
                asset,
                *amount,
                *valid_from_ms,
                *expires_ms,
                memo,
                staged,
            )
            .await?,
        ),
        TxBody::ChequeEndorse { cheque, to } => {
            Applied::cheque(cheques::endorse(state, ctx, cheque, to, staged).await?)
        }
        TxBody::ChequePresent { cheque } => {
            Applied::cheque(cheques::present(state, ctx, h, cheque, staged).await?)
        }
        TxBody::ChequeStop { cheque, reason } => {
            Applied::cheque(cheques::stop(state, ctx, cheque, reason, staged).await?)
        }
        TxBody::ChequeCancel { cheque } => {
            Applied::cheque(cheques::cancel(state, ctx, h, cheque, staged).await?)
        }
        TxBody::ChequePledge { cheque, to } => {
            Applied::cheque(cheques::pledge(state, ctx, cheque, to, staged).await?)
        }
        TxBody::ChequeRelease { cheque } => {
            Applied::cheque(cheques::release(state, ctx, cheque, staged).await?)
        }
        TxBody::PaperPresent {
            image_sha256,
            number,
            drawer,
            payee,
            asset,
            amount,
        } => Applied::cheque(
            cheques::paper_present(
                state,
                ctx,
                h,
                image_sha256,
                number,
                drawer,
                payee,
                asset,
                *amount,
                staged,
            )
            .await?,
        ),
        TxBody::PaperDecide {
            cheque,
            honour,
            reason,
        } => Applied::cheque(
            cheques::paper_decide(state, ctx, h, cheque, *honour, reason, staged).await?,
        ),
        _ => {
            return Err(TxError::InvalidMultisig(
                "a multi-signature operation cannot run inside another".into(),
            ));
        }
    })
}

/// Applies one transaction; on error nothing is written.
pub async fn apply_tx<R: StateReader>(
    state: &mut Overlay<'_, R>,
    env: &BlockEnv,
    tx: &SignedTransaction,
    sigs: &impl SignatureCheck,
) -> Result<Applied, TxError> {
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
    if record.multisig.is_some() {
        // Unreachable with honest key derivation; refused so the invariant is explicit.
        return Err(TxError::Unauthorized(
            "a multi-signature account acts only through proposals".into(),
        ));
    }
    record.nonce += 1;
    // Every read in the transaction goes through `staged`, so it sees the advanced nonce and
    // every other write made so far.
    let mut staged = Staged::default();
    staged.put(account_key(&sender), &record);
    let ctx = TxCtx {
        id: tx.id(),
        sender,
        sender_record: &record,
        time_ms: env.timestamp_ms,
    };
    let ready = match &tx.tx.body {
        TxBody::MultisigCreate { members, threshold } => {
            multisig::create(state, &ctx, &members.0, *threshold, &mut staged).await?;
            None
        }
        TxBody::MultisigPropose { account, body } => {
            multisig::propose(state, &ctx, account, &body.0, &mut staged).await?
        }
        TxBody::MultisigApprove { account, proposal } => {
            multisig::approve(state, &ctx, account, proposal, &mut staged).await?
        }
        TxBody::MultisigCancel { account, proposal } => {
            multisig::cancel(state, &ctx, account, proposal, &mut staged).await?;
            None
        }
        body => {
            let applied = dispatch(state, env, &ctx, body, &mut staged).await?;
            state.apply(staged.0);
            return Ok(applied);
        }
    };
    let applied = match ready {
        Some(ready) => {
            // The threshold is reached: the operation runs as the multi-signature account.
            let account = accounts::load_staged(state, &staged, &ready.account).await?;
            let ctx = TxCtx {
                id: tx.id(),
                sender: ready.account,
                sender_record: &account,
                time_ms: env.timestamp_ms,
            };
            dispatch(state, env, &ctx, &ready.body, &mut staged).await?
        }
        None => Applied::ok(),
    };
    state.apply(staged.0);
    Ok(applied)
}

/// The result of executing a block.
#[derive(Debug, Default)]
pub struct Executed {
    /// One receipt per transaction.
    pub receipts: Vec<Receipt>,
    /// One receipt per reading.
    pub reading_receipts: Vec<ReadingReceipt>,
    /// The cheque lifecycle steps, with the index of the transaction that made each.
    pub cheque_events: Vec<(u32, ChequeEvent)>,
}

impl Executed {
    fn record(&mut self, tx_id: Hash, index: u32, applied: Applied) {
        if let Some(ev) = applied.cheque {
            self.cheque_events.push((index, ev));
        }
        self.receipts.push(Receipt {
            tx_id,
            index,
            outcome: applied.outcome,
            movements: applied.movements,
        });
    }

    /// Every movement of value in order, with the transaction that caused it.
    pub fn movements(&self) -> impl Iterator<Item = (&Hash, &Movement)> {
        self.receipts
            .iter()
            .flat_map(|r| r.movements.iter().map(move |m| (&r.tx_id, m)))
    }

    /// The receipts root of the block.
    pub fn receipts_root(&self) -> Hash {
        receipts_root(&self.receipts, &self.reading_receipts)
    }
}

/// Signature checks for both kinds of block content.
pub struct Checks<'a, S: SignatureCheck, C: ReadingCheck> {
    /// Transaction signatures.
    pub txs: &'a S,
    /// Reading signatures.
    pub readings: &'a C,
}

/// Executes a proposed block strictly: any refused or repeated transaction, or a repeated
/// reading, makes it invalid. Readings that fail their checks are recorded as rejected.
pub async fn execute_block<R: StateReader>(
    state: &mut Overlay<'_, R>,
    env: &BlockEnv,
    txs: &[SignedTransaction],
    readings: &[Arc<Reading>],
    checks: Checks<'_, impl SignatureCheck, impl ReadingCheck>,
) -> Result<Executed, BlockError> {
    let mut out = execute_txs(state, env, txs, checks.txs).await?;
    let mut seen = BTreeSet::new();
    for (index, reading) in readings.iter().enumerate() {
        if !seen.insert(reading.id()) {
            return Err(BlockError::Duplicate(reading.id().to_string()));
        }
        let rejected = match telemetry::apply_reading(state, reading, checks.readings).await {
            Ok(()) => None,
            Err(ReadingOutcome::Rejected(code)) => Some(code),
            Err(ReadingOutcome::State(e)) => return Err(BlockError::Storage(e)),
        };
        out.reading_receipts.push(ReadingReceipt {
            reading_id: reading.id(),
            index: index as u32,
            rejected,
        });
    }
    Ok(out)
}

async fn execute_txs<R: StateReader>(
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
            Ok(applied) => out.record(tx.id(), index as u32, applied),
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

/// What a proposer puts in a block, and what it left out.
#[derive(Debug, Default)]
pub struct Built {
    /// Included transactions, in order.
    pub txs: Vec<SignedTransaction>,
    /// Included readings, in order.
    pub readings: Vec<Arc<Reading>>,
    /// Their execution.
    pub executed: Executed,
    /// Transactions left out, with the reason.
    pub refused_txs: Vec<(Hash, TxError)>,
    /// Readings left out, with the reason.
    pub refused_readings: Vec<(Hash, RejectCode)>,
}

/// How much a proposer may put in a block.
#[derive(Clone, Copy, Debug)]
pub struct BuildLimits {
    /// Most transactions.
    pub max_txs: usize,
    /// Most readings.
    pub max_readings: usize,
    /// Most bytes of transactions and readings together.
    pub max_body_bytes: usize,
}

/// Builds a block's contents from candidates in order, leaving out those refused: transactions
/// first, then readings.
pub async fn build_block<R: StateReader>(
    state: &mut Overlay<'_, R>,
    env: &BlockEnv,
    candidates: Vec<SignedTransaction>,
    reading_candidates: Vec<Arc<Reading>>,
    limits: BuildLimits,
    checks: Checks<'_, impl SignatureCheck, impl ReadingCheck>,
) -> Result<Built, BlockError> {
    use commonware_codec::EncodeSize;
    let mut out = Built::default();
    let mut seen = BTreeSet::new();
    let mut bytes = 0usize;
    for tx in candidates {
        if out.txs.len() >= limits.max_txs {
            break;
        }
        let size = tx.encode_size();
        if bytes + size > limits.max_body_bytes {
            break;
        }
        if !seen.insert(tx.id()) {
            continue;
        }
        match apply_tx(state, env, &tx, checks.txs).await {
            Ok(applied) => {
                out.executed.record(tx.id(), out.txs.len() as u32, applied);
                bytes += size;
                out.txs.push(tx);
            }
            Err(TxError::State(e)) => return Err(BlockError::Storage(e)),
            Err(e) => out.refused_txs.push((tx.id(), e)),
        }
    }
    for reading in reading_candidates {
        if out.readings.len() >= limits.max_readings {
            break;
        }
        let size = 2 + reading.bytes().len();
        if bytes + size > limits.max_body_bytes {
            break;
        }
        if !seen.insert(reading.id()) {
            continue;
        }
        match telemetry::apply_reading(state, &reading, checks.readings).await {
            Ok(()) => {
                out.executed.reading_receipts.push(ReadingReceipt {
                    reading_id: reading.id(),
                    index: out.readings.len() as u32,
                    rejected: None,
                });
                bytes += size;
                out.readings.push(reading);
            }
            Err(ReadingOutcome::Rejected(code)) => out.refused_readings.push((reading.id(), code)),
            Err(ReadingOutcome::State(e)) => return Err(BlockError::Storage(e)),
        }
    }
    Ok(out)
}
