//! Why the ledger refuses a transaction, with the stable error codes the API and CLI show.

use verity_types::{AccountId, Amount, AssetCode, DeviceId, DeviceStatus, Nonce, TierId};

/// A transaction the ledger refuses. Refusal changes nothing.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TxError {
    /// The signature does not verify for this network.
    #[error("signature does not verify")]
    BadSignature,
    /// The nonce is not the account's next one.
    #[error("nonce {} is not the account's next nonce {}", got.0, expected.0)]
    BadNonce {
        /// The account's current nonce.
        expected: Nonce,
        /// The transaction's nonce.
        got: Nonce,
    },
    /// The account's balance is too low.
    #[error("insufficient funds: balance {} of {asset} (minor units), needs {}", balance.0, needed.0)]
    InsufficientFunds {
        /// Asset.
        asset: AssetCode,
        /// Current balance.
        balance: Amount,
        /// Amount needed.
        needed: Amount,
    },
    /// The asset does not exist.
    #[error("unknown asset {0}")]
    UnknownAsset(AssetCode),
    /// The signer may not do this.
    #[error("not authorized: {0}")]
    Unauthorized(String),
    /// Zero amount or similar.
    #[error("invalid amount: {0}")]
    InvalidAmount(&'static str),
    /// A balance or supply would overflow 64 bits.
    #[error("amount overflows")]
    Overflow,
    /// Sending to oneself.
    #[error("cannot transfer to the sending account {0}")]
    SelfTransfer(AccountId),
    /// The account holds too many different assets.
    #[error("account holds the maximum of {0} assets")]
    TooManyAssets(usize),
    /// No device has this id.
    #[error("unknown device {0}")]
    UnknownDevice(DeviceId),
    /// A device with this id exists or existed.
    #[error("device id {0} is already taken (ids are never reused)")]
    DeviceExists(DeviceId),
    /// The device's lifecycle does not allow this change.
    #[error("device {device} cannot go from {from} to {to}")]
    InvalidTransition {
        /// The device.
        device: DeviceId,
        /// Its status.
        from: DeviceStatus,
        /// The status asked for.
        to: DeviceStatus,
    },
    /// The paying account is frozen.
    #[error("account {account} is frozen by the regulator ({reason}) and cannot pay")]
    SenderFrozen {
        /// The account.
        account: AccountId,
        /// The regulator's reason.
        reason: String,
    },
    /// The receiving account is frozen.
    #[error("account {account} is frozen by the regulator ({reason}) and cannot be paid")]
    RecipientFrozen {
        /// The account.
        account: AccountId,
        /// The regulator's reason.
        reason: String,
    },
    /// The payment is over the payer's tier limit for a single payment.
    #[error("payment of {} {asset} is over the single-payment limit {} of tier {tier}", amount.0, limit.0)]
    LimitSinglePayment {
        /// The payer's tier.
        tier: TierId,
        /// Asset.
        asset: AssetCode,
        /// The limit.
        limit: Amount,
        /// The payment.
        amount: Amount,
    },
    /// The payment would take the payer over its tier's daily limit.
    #[error("payment of {} {asset} would take today's payments from {} over the daily limit {} of tier {tier}", amount.0, spent.0, limit.0)]
    LimitDaily {
        /// The payer's tier.
        tier: TierId,
        /// Asset.
        asset: AssetCode,
        /// The limit.
        limit: Amount,
        /// Paid so far today.
        spent: Amount,
        /// The payment.
        amount: Amount,
    },
    /// The payment would take the recipient over its tier's balance limit.
    #[error("account {account} would hold {} {asset}, over the balance limit {} of tier {tier}", balance.0, limit.0)]
    LimitBalance {
        /// The recipient.
        account: AccountId,
        /// Its tier.
        tier: TierId,
        /// Asset.
        asset: AssetCode,
        /// The limit.
        limit: Amount,
        /// The balance it would have.
        balance: Amount,
    },
    /// No tier has this id.
    #[error("unknown tier {0}")]
    UnknownTier(TierId),
    /// The account is not frozen (unfreeze) or already frozen (freeze).
    #[error("{0}")]
    FreezeState(String),
    /// No cheque has this id.
    #[error("unknown cheque {0}")]
    UnknownCheque(String),
    /// The cheque's state does not allow this.
    #[error("cheque {cheque} is {state}: {reason}")]
    ChequeState {
        /// The cheque.
        cheque: String,
        /// Its state.
        state: &'static str,
        /// What it does not allow.
        reason: String,
    },
    /// A cheque's dates are inconsistent.
    #[error("invalid cheque dates: {0}")]
    ChequeDates(&'static str),
    /// The paper cheque was presented before.
    #[error("paper cheque {number} drawn on {drawer} was already presented (cheque {cheque})")]
    DuplicatePresentment {
        /// Its drawer.
        drawer: AccountId,
        /// Its number.
        number: String,
        /// The cheque id of the first presentment.
        cheque: String,
    },
    /// The account is not a multi-signature account.
    #[error("account {0} is not a multi-signature account")]
    NotMultisig(AccountId),
    /// Members or threshold are not acceptable.
    #[error("invalid multi-signature policy: {0}")]
    InvalidMultisig(String),
    /// No pending proposal has this id.
    #[error("no pending proposal {0}")]
    UnknownProposal(String),
    /// The member already approved this proposal.
    #[error("{0} already approved this proposal")]
    AlreadyApproved(AccountId),
    /// The account has the maximum of pending proposals.
    #[error("the account has the maximum of {0} pending proposals")]
    TooManyProposals(u16),
    /// State could not be read (storage failure; not the transaction's fault).
    #[error("state unavailable: {0}")]
    State(String),
}

/// Every transaction error code, for documentation and tests.
pub const TX_ERROR_CODES: &[&str] = &[
    "bad_signature",
    "nonce_too_low",
    "nonce_too_high",
    "insufficient_funds",
    "unknown_asset",
    "unauthorized",
    "invalid_amount",
    "overflow",
    "self_transfer",
    "too_many_assets",
    "unknown_device",
    "device_exists",
    "invalid_transition",
    "sender_frozen",
    "recipient_frozen",
    "limit_single_payment",
    "limit_daily",
    "limit_balance",
    "unknown_tier",
    "freeze_state",
    "unknown_cheque",
    "cheque_state",
    "cheque_dates",
    "duplicate_presentment",
    "not_multisig",
    "invalid_multisig",
    "unknown_proposal",
    "already_approved",
    "too_many_proposals",
    "state_unavailable",
];

impl TxError {
    /// The stable error code (API `error.code`, CLI stderr).
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadSignature => "bad_signature",
            Self::BadNonce { expected, got } if got < expected => "nonce_too_low",
            Self::BadNonce { .. } => "nonce_too_high",
            Self::InsufficientFunds { .. } => "insufficient_funds",
            Self::UnknownAsset(_) => "unknown_asset",
            Self::Unauthorized(_) => "unauthorized",
            Self::InvalidAmount(_) => "invalid_amount",
            Self::Overflow => "overflow",
            Self::SelfTransfer(_) => "self_transfer",
            Self::TooManyAssets(_) => "too_many_assets",
            Self::UnknownDevice(_) => "unknown_device",
            Self::DeviceExists(_) => "device_exists",
            Self::InvalidTransition { .. } => "invalid_transition",
            Self::SenderFrozen { .. } => "sender_frozen",
            Self::RecipientFrozen { .. } => "recipient_frozen",
            Self::LimitSinglePayment { .. } => "limit_single_payment",
            Self::LimitDaily { .. } => "limit_daily",
            Self::LimitBalance { .. } => "limit_balance",
            Self::UnknownTier(_) => "unknown_tier",
            Self::FreezeState(_) => "freeze_state",
            Self::UnknownCheque(_) => "unknown_cheque",
            Self::ChequeState { .. } => "cheque_state",
            Self::ChequeDates(_) => "cheque_dates",
            Self::DuplicatePresentment { .. } => "duplicate_presentment",
            Self::NotMultisig(_) => "not_multisig",
            Self::InvalidMultisig(_) => "invalid_multisig",
            Self::UnknownProposal(_) => "unknown_proposal",
            Self::AlreadyApproved(_) => "already_approved",
            Self::TooManyProposals(_) => "too_many_proposals",
            Self::State(_) => "state_unavailable",
        }
    }
}

/// Why a proposed block is invalid (it gets no vote) or could not be executed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlockError {
    /// A transaction in the block is refused.
    #[error("transaction {index} ({id}) refused: {error}")]
    Tx {
        /// Position in the block.
        index: usize,
        /// Its id.
        id: String,
        /// Why.
        error: TxError,
    },
    /// A transaction appears twice.
    #[error("transaction {0} appears twice")]
    Duplicate(String),
    /// The header does not match the executed result.
    #[error("header mismatch: {0}")]
    Header(String),
    /// Storage failed.
    #[error("storage: {0}")]
    Storage(String),
}
