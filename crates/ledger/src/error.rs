//! Why the ledger refuses a transaction, with the stable error codes the API and CLI show.

use verity_types::{AccountId, Amount, AssetCode, DeviceId, DeviceStatus, Nonce};

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
    /// State could not be read (storage failure; not the transaction's fault).
    #[error("state unavailable: {0}")]
    State(String),
}

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
