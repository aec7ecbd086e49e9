//! Why an export fails.

/// Why [`export`](crate::export) refused its input.
///
/// Every variant names the offending value, so the message alone tells the user what to fix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExportError {
    /// The cheque's asset code is not shaped like an ISO 4217 currency code (three letters
    /// `A-Z`), which every ISO 20022 amount carries in its `Ccy` attribute.
    #[error("asset {0:?} is not an ISO 4217 currency code (three letters A-Z)")]
    NotIsoCurrency(String),
    /// A field does not have the form the messages need.
    #[error("{field}: {reason}")]
    BadField {
        /// Where the value came from, e.g. `cheque.id` or `sender`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The amount cannot be written as an ISO 20022 amount, which has at most 18 digits, at
    /// most 5 of them after the decimal point.
    #[error(
        "amount {amount_minor} in units of 10^-{decimals} cannot be written as an ISO 20022 \
         amount: {reason}"
    )]
    AmountNotRepresentable {
        /// The amount in minor units.
        amount_minor: u64,
        /// Decimals of the minor unit.
        decimals: u8,
        /// Which limit it breaks.
        reason: &'static str,
    },
    /// A time is later than the last instant a four-digit year can write,
    /// 9999-12-31T23:59:59.999Z.
    #[error("{field}: {ms} ms since the Unix epoch is after 9999-12-31T23:59:59.999Z")]
    TimeOutOfRange {
        /// Where the value came from, e.g. `at_ms`.
        field: &'static str,
        /// The value.
        ms: u64,
    },
    /// One event of the batch was refused; nothing was exported.
    #[error("event {index}: {error}")]
    Event {
        /// Its position in the slice given to [`export`](crate::export).
        index: usize,
        /// Why.
        error: Box<ExportError>,
    },
}

impl ExportError {
    /// A [`ExportError::BadField`].
    pub(crate) fn bad(field: &'static str, reason: impl Into<String>) -> Self {
        Self::BadField {
            field,
            reason: reason.into(),
        }
    }
}
