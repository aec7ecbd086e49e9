//! Multi-signature accounts for organizations' treasuries: m of n member accounts must approve
//! before the account does anything.
//!
//! A member proposes an operation (any transaction body but another multi-signature
//! operation); the proposal counts as the proposer's approval. Other members approve it; the
//! approval that reaches the threshold executes the operation as the multi-signature account,
//! in that approval's transaction. If the operation is refused then (say, the treasury is short
//! of funds), the approval is refused too and the proposal stays pending. The proposer may
//! withdraw a pending proposal.

use crate::{
    accounts,
    error::TxError,
    state::{
        AccountRecord, MultisigPolicy, Overlay, Staged, StateReader, account_key, proposal_key,
    },
};
use bytes::BufMut;
use commonware_codec::{Buf, DecodeExt, EncodeSize, Error as CodecError, Read, ReadExt, Write};
use verity_types::{
    AccountId, Hash, TxBody,
    tx::{MAX_MULTISIG_MEMBERS, multisig_account_id},
};

/// Most proposals one multi-signature account may have pending.
pub const MAX_PENDING_PROPOSALS: u16 = 32;

/// A pending proposal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// Its id: the proposing transaction's id.
    pub id: Hash,
    /// Who proposed it.
    pub proposer: AccountId,
    /// What the account should do.
    pub body: TxBody,
    /// Members who approved, in order.
    pub approvals: Vec<AccountId>,
}

impl Write for Proposal {
    fn write(&self, buf: &mut impl BufMut) {
        self.id.write(buf);
        self.proposer.write(buf);
        let body = commonware_codec::Encode::encode(&self.body);
        buf.put_u16(body.len() as u16);
        buf.put_slice(&body);
        buf.put_u8(self.approvals.len() as u8);
        for a in &self.approvals {
            a.write(buf);
        }
    }
}
impl EncodeSize for Proposal {
    fn encode_size(&self) -> usize {
        32 + 20 + 2 + self.body.encode_size() + 1 + 20 * self.approvals.len()
    }
}
impl Read for Proposal {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let id = Hash::read(buf)?;
        let proposer = AccountId::read(buf)?;
        let len = u16::read(buf)? as usize;
        if len > verity_types::tx::MAX_TX_BYTES || buf.remaining() < len {
            return Err(CodecError::InvalidLength(len));
        }
        let body = TxBody::decode(buf.copy_to_bytes(len))?;
        let n = u8::read(buf)? as usize;
        if n > MAX_MULTISIG_MEMBERS {
            return Err(CodecError::InvalidLength(n));
        }
        let approvals = (0..n)
            .map(|_| AccountId::read(buf))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            id,
            proposer,
            body,
            approvals,
        })
    }
}

/// Creates a multi-signature account; returns its id.
pub async fn create<R: StateReader>(
    state: &Overlay<'_, R>,
    tx: &accounts::TxCtx<'_>,
    members: &[AccountId],
    threshold: u8,
    staged: &mut Staged,
) -> Result<AccountId, TxError> {
    let n = members.len();
    if !(2..=MAX_MULTISIG_MEMBERS).contains(&n) {
        return Err(TxError::InvalidMultisig(format!(
            "needs 2 to {MAX_MULTISIG_MEMBERS} members, got {n}"
        )));
    }
    let mut sorted = members.to_vec();
    sorted.sort();
    sorted.dedup();
    if sorted.len() != n {
        return Err(TxError::InvalidMultisig("a member is listed twice".into()));
    }
    if threshold == 0 || threshold as usize > n {
        return Err(TxError::InvalidMultisig(format!(
            "threshold must be 1 to {n}, got {threshold}"
        )));
    }
    let id = multisig_account_id(&tx.id);
    // Nobody holds a key for a derived id, so an existing record there can only be value sent
    // ahead of the creation (anyone may compute the id from a pending transaction): the
    // treasury takes it over rather than letting such a payment block the creation.
    let existing: AccountRecord = staged
        .get(state, &account_key(&id))
        .await?
        .unwrap_or_default();
    if existing.multisig.is_some() {
        return Err(TxError::InvalidMultisig(format!("account {id} exists")));
    }
    // A treasury created by an organization's admin acts for that organization.
    let organization = tx
        .sender_record
        .admin
        .then(|| tx.sender_record.organization.clone())
        .flatten();
    let record = AccountRecord {
        organization,
        multisig: Some(MultisigPolicy {
            members: members.to_vec(),
            threshold,
            pending: 0,
        }),
        ..existing
    };
    staged.put(account_key(&id), &record);
    Ok(id)
}

async fn policy<R: StateReader>(
    state: &Overlay<'_, R>,
    staged: &Staged,
    account: &AccountId,
    member: &AccountId,
) -> Result<(AccountRecord, MultisigPolicy), TxError> {
    let record = accounts::load_staged(state, staged, account).await?;
    let Some(policy) = record.multisig.clone() else {
        return Err(TxError::NotMultisig(*account));
    };
    if !policy.members.contains(member) {
        return Err(TxError::Unauthorized(format!(
            "{member} is not a member of {account}"
        )));
    }
    Ok((record, policy))
}

/// The result of a proposal or approval: the body to execute now as the multi-signature
/// account, if the threshold was reached.
pub struct Ready {
    /// The multi-signature account.
    pub account: AccountId,
    /// What it does.
    pub body: TxBody,
}

/// Records a proposal by `tx.sender`; returns the body to run if one approval suffices.
pub async fn propose<R: StateReader>(
    state: &Overlay<'_, R>,
    tx: &accounts::TxCtx<'_>,
    account: &AccountId,
    body: &TxBody,
    staged: &mut Staged,
) -> Result<Option<Ready>, TxError> {
    if body.is_multisig() {
        return Err(TxError::InvalidMultisig(
            "a proposal cannot carry a multi-signature operation".into(),
        ));
    }
    let (mut record, mut policy) = policy(state, staged, account, &tx.sender).await?;
    if policy.threshold == 1 {
        return Ok(Some(Ready {
            account: *account,
            body: body.clone(),
        }));
    }
    if policy.pending >= MAX_PENDING_PROPOSALS {
        return Err(TxError::TooManyProposals(MAX_PENDING_PROPOSALS));
    }
    policy.pending += 1;
    record.multisig = Some(policy);
    staged.put(account_key(account), &record);
    let proposal = Proposal {
        id: tx.id,
        proposer: tx.sender,
        body: body.clone(),
        approvals: vec![tx.sender],
    };
    staged.put(proposal_key(account, &tx.id), &proposal);
    Ok(None)
}

async fn load_proposal<R: StateReader>(
    state: &Overlay<'_, R>,
    staged: &Staged,
    account: &AccountId,
    id: &Hash,
) -> Result<Proposal, TxError> {
    staged
        .get(state, &proposal_key(account, id))
        .await?
        .ok_or_else(|| TxError::UnknownProposal(id.to_string()))
}

fn close(staged: &mut Staged, mut record: AccountRecord, account: &AccountId, id: &Hash) {
    if let Some(p) = record.multisig.as_mut() {
        p.pending = p.pending.saturating_sub(1);
    }
    staged.put(account_key(account), &record);
    staged.delete(proposal_key(account, id));
}

/// Records `tx.sender`'s approval; returns the body to run if the threshold is reached (the
/// proposal is then closed).
pub async fn approve<R: StateReader>(
    state: &Overlay<'_, R>,
    tx: &accounts::TxCtx<'_>,
    account: &AccountId,
    id: &Hash,
    staged: &mut Staged,
) -> Result<Option<Ready>, TxError> {
    let (record, policy) = policy(state, staged, account, &tx.sender).await?;
    let mut proposal = load_proposal(state, staged, account, id).await?;
    if proposal.approvals.contains(&tx.sender) {
        return Err(TxError::AlreadyApproved(tx.sender));
    }
    proposal.approvals.push(tx.sender);
    if proposal.approvals.len() >= policy.threshold as usize {
        close(staged, record, account, id);
        return Ok(Some(Ready {
            account: *account,
            body: proposal.body,
        }));
    }
    staged.put(proposal_key(account, id), &proposal);
    Ok(None)
}

/// Withdraws a pending proposal; its proposer may.
pub async fn cancel<R: StateReader>(
    state: &Overlay<'_, R>,
    tx: &accounts::TxCtx<'_>,
    account: &AccountId,
    id: &Hash,
    staged: &mut Staged,
) -> Result<(), TxError> {
    let (record, _) = policy(state, staged, account, &tx.sender).await?;
    let proposal = load_proposal(state, staged, account, id).await?;
    if proposal.proposer != tx.sender {
        return Err(TxError::Unauthorized(format!(
            "only the proposer {} may withdraw proposal {id}",
            proposal.proposer
        )));
    }
    close(staged, record, account, id);
    Ok(())
}

/// Reads a pending proposal.
pub async fn load<R: StateReader>(
    state: &Overlay<'_, R>,
    account: &AccountId,
    id: &Hash,
) -> Result<Option<Proposal>, TxError> {
    state.get(&proposal_key(account, id)).await
}
