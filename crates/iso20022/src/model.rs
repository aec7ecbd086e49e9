//! What the caller hands in (ledger events) and what it gets back (messages).

/// A party on the ledger: a 40-hex-character account id, with an optional display name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Party {
    /// The account id: 40 lowercase hex characters.
    pub account: String,
    /// A display name, if the exporter knows one.
    pub name: Option<String>,
}

/// What a cheque is, as the ledger records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cheque {
    /// The cheque's id on the ledger: 64 lowercase hex characters (SHA-256).
    pub id: String,
    /// The cheque number: a paper cheque's printed number, or for a digital cheque the first
    /// 16 hex characters of its id. 1 to 35 characters.
    pub number: String,
    /// Whose account the cheque is drawn on.
    pub drawer: Party,
    /// To whom it was first made payable.
    pub payee: Party,
    /// The paying bank: an organization id like `bank-a` (1 to 32 characters `a-z0-9-`).
    pub drawer_agent: Option<String>,
    /// The asset code; it must be an ISO 4217 currency code (three letters `A-Z`).
    pub currency: String,
    /// The amount in minor units.
    pub amount_minor: u64,
    /// Decimals of the minor unit, 0 to 18.
    pub decimals: u8,
    /// When it was issued: ms since the Unix epoch (block time).
    pub issued_ms: u64,
    /// Not payable before this time (ms since the Unix epoch), if set.
    pub valid_from_ms: Option<u64>,
    /// Not payable from this time (ms since the Unix epoch) on, if set.
    pub expires_ms: Option<u64>,
    /// Free text, up to 256 bytes on the ledger; cut to the message's text limits.
    pub memo: String,
}

/// A cheque event committed on the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The holder (or pledgee) presented the cheque; `outcome` is `cleared` or a dishonour
    /// reason code: `insufficient_funds`, `stopped`, `expired`, `not_yet_valid`, `frozen`,
    /// `over_limit` or `returned:<free text>`.
    Presented {
        /// The cheque.
        cheque: Cheque,
        /// Who presented it.
        presenter: Party,
        /// When (block time, ms since the Unix epoch).
        at_ms: u64,
        /// The presenting transaction's id: 64 lowercase hex characters.
        tx_id: String,
        /// The height of the block that committed it.
        height: u64,
        /// `cleared`, or why the cheque was dishonoured.
        outcome: String,
    },
    /// The drawer stopped payment, with a reason text.
    Stopped {
        /// The cheque.
        cheque: Cheque,
        /// When (block time, ms since the Unix epoch).
        at_ms: u64,
        /// The stopping transaction's id: 64 lowercase hex characters.
        tx_id: String,
        /// The height of the block that committed it.
        height: u64,
        /// Why, as the drawer wrote it (may be empty).
        reason: String,
    },
    /// The drawer cancelled the cheque.
    Cancelled {
        /// The cheque.
        cheque: Cheque,
        /// When (block time, ms since the Unix epoch).
        at_ms: u64,
        /// The cancelling transaction's id: 64 lowercase hex characters.
        tx_id: String,
        /// The height of the block that committed it.
        height: u64,
    },
}

/// One rendered ISO 20022 message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The message definition: `camt.107.001.01`, `camt.108.001.01` or `camt.109.001.01`.
    pub kind: &'static str,
    /// A file name for it, `camt.10N-<height>-<first 16 hex of the tx id>.xml`: unique per
    /// event and message kind, and safe on every file system.
    pub file_name: String,
    /// The complete XML document, with its declaration, in UTF-8.
    pub xml: String,
}
