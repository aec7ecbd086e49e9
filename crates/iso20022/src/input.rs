//! Checks every value handed in and turns it into the exact text the messages carry.
//!
//! Everything from the caller is treated as untrusted: ids must have their ledger shape,
//! identifiers that do not fit an ISO 20022 type are refused (never cut, since a cut
//! identifier could name something else), and free text is made XML-safe and cut to the
//! element's limit.

use crate::{
    Cheque, ExportError, Party,
    amount::{self, is_currency_code},
    text::{free_text, xml_safe},
    time::UtcTime,
};

/// Characters of a SHA-256 id (cheque or transaction) in hex.
pub(crate) const HASH_HEX_LEN: usize = 64;
/// Characters of an account id in hex.
pub(crate) const ACCOUNT_HEX_LEN: usize = 40;
/// The longest organization id.
pub(crate) const ORG_ID_MAX_LEN: usize = 32;
/// `Max35Text`.
pub(crate) const MAX35: usize = 35;
/// `Max140Text`.
pub(crate) const MAX140: usize = 140;
/// The most characters of ledger free text (memo, reasons) carried in the ledger extension:
/// the ledger's own memo limit is 256 bytes, which is never more than 256 characters.
pub(crate) const LEDGER_TEXT_MAX: usize = 256;

/// A party, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CheckedParty {
    /// 40 lowercase hex characters.
    pub(crate) account: String,
    /// At most 140 characters, never empty.
    pub(crate) name: Option<String>,
}

impl CheckedParty {
    /// The party's `Nm`: its display name, or its account id when it has none.
    pub(crate) fn display(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.account)
    }
}

/// A cheque, checked and formatted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CheckedCheque {
    pub(crate) id: String,
    pub(crate) number: String,
    pub(crate) drawer: CheckedParty,
    pub(crate) payee: CheckedParty,
    pub(crate) drawer_agent: Option<String>,
    pub(crate) currency: String,
    /// `ActiveCurrencyAndAmount` value.
    pub(crate) amount: String,
    /// `ISODate`.
    pub(crate) issue_date: String,
    /// `ISODateTime`.
    pub(crate) valid_from: Option<String>,
    /// `ISODate` and `ISODateTime` of the expiry.
    pub(crate) expires: Option<(String, String)>,
    /// At most 140 characters, for `Max140Text`.
    pub(crate) memo: Option<String>,
    /// At most 256 characters, for the ledger extension.
    pub(crate) ledger_memo: Option<String>,
}

impl CheckedCheque {
    /// `OrgnlInstrId`: the first 35 hex characters of the cheque id, which the ledger derives
    /// from the instruction that issued the cheque.
    pub(crate) fn original_instruction_id(&self) -> &str {
        &self.id[..MAX35]
    }
}

/// How a presentment ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Paid.
    Cleared,
    /// Not paid: the ledger's reason code, and the free text of `returned:<text>`.
    Dishonoured {
        reason: &'static str,
        detail: Option<String>,
    },
}

/// The dishonour reason codes the ledger uses, besides `returned:<text>`.
const DISHONOUR_CODES: [&str; 6] = [
    "insufficient_funds",
    "stopped",
    "expired",
    "not_yet_valid",
    "frozen",
    "over_limit",
];

impl Outcome {
    pub(crate) fn parse(outcome: &str) -> Result<Self, ExportError> {
        if outcome == "cleared" {
            return Ok(Self::Cleared);
        }
        if let Some(code) = DISHONOUR_CODES.iter().find(|code| **code == outcome) {
            return Ok(Self::Dishonoured {
                reason: code,
                detail: None,
            });
        }
        if let Some(text) = outcome.strip_prefix("returned:") {
            return Ok(Self::Dishonoured {
                reason: "returned",
                detail: free_text(text, LEDGER_TEXT_MAX),
            });
        }
        Err(ExportError::bad(
            "outcome",
            format!(
                "{:?} is neither cleared nor a dishonour reason ({}, returned:<text>)",
                truncated_for_error(outcome),
                DISHONOUR_CODES.join(", ")
            ),
        ))
    }
}

/// A transaction id: 64 lowercase hex characters.
pub(crate) fn tx_id(tx_id: &str) -> Result<String, ExportError> {
    lower_hex("tx_id", tx_id, HASH_HEX_LEN)
}

/// A time as an `ISODateTime`.
pub(crate) fn date_time(field: &'static str, ms: u64) -> Result<String, ExportError> {
    Ok(UtcTime::parse(field, ms)?.iso_date_time())
}

/// The exporting organization's name or id: free text, at most 140 characters, not empty.
pub(crate) fn sender(sender: &str) -> Result<String, ExportError> {
    free_text(sender, MAX140).ok_or_else(|| ExportError::bad("sender", "is empty"))
}

/// Checks and formats a cheque.
pub(crate) fn cheque(c: &Cheque) -> Result<CheckedCheque, ExportError> {
    if !is_currency_code(&c.currency) {
        return Err(ExportError::NotIsoCurrency(
            truncated_for_error(&c.currency).to_string(),
        ));
    }
    let expires = c
        .expires_ms
        .map(|ms| UtcTime::parse("cheque.expires_ms", ms))
        .transpose()?
        .map(|t| (t.iso_date(), t.iso_date_time()));
    Ok(CheckedCheque {
        id: lower_hex("cheque.id", &c.id, HASH_HEX_LEN)?,
        number: cheque_number(&c.number)?,
        drawer: party("cheque.drawer.account", &c.drawer)?,
        payee: party("cheque.payee.account", &c.payee)?,
        drawer_agent: c.drawer_agent.as_deref().map(org_id).transpose()?,
        currency: c.currency.clone(),
        amount: amount::render(c.amount_minor, c.decimals)?,
        issue_date: UtcTime::parse("cheque.issued_ms", c.issued_ms)?.iso_date(),
        valid_from: c
            .valid_from_ms
            .map(|ms| date_time("cheque.valid_from_ms", ms))
            .transpose()?,
        expires,
        memo: free_text(&c.memo, MAX140),
        ledger_memo: free_text(&c.memo, LEDGER_TEXT_MAX),
    })
}

/// Checks a party; `field` names its account in errors.
pub(crate) fn party(field: &'static str, p: &Party) -> Result<CheckedParty, ExportError> {
    Ok(CheckedParty {
        account: lower_hex(field, &p.account, ACCOUNT_HEX_LEN)?,
        name: p.name.as_deref().and_then(|n| free_text(n, MAX140)),
    })
}

/// The cheque number is an identifier: 1 to 35 characters (`Max35Text`), no control
/// characters, never cut.
fn cheque_number(number: &str) -> Result<String, ExportError> {
    let count = number.chars().count();
    if number.trim().is_empty() || count > MAX35 {
        return Err(ExportError::bad(
            "cheque.number",
            format!("must be 1 to {MAX35} characters, is {count}"),
        ));
    }
    if number.chars().any(char::is_control) || xml_safe(number) != number {
        return Err(ExportError::bad(
            "cheque.number",
            format!("{:?} has control characters", truncated_for_error(number)),
        ));
    }
    Ok(number.to_string())
}

/// An organization id, as the ledger defines it: 1 to 32 characters `a-z0-9-`.
fn org_id(org: &str) -> Result<String, ExportError> {
    let ok = !org.is_empty()
        && org.len() <= ORG_ID_MAX_LEN
        && org
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(org.to_string())
    } else {
        Err(ExportError::bad(
            "cheque.drawer_agent",
            format!(
                "{:?} is not an organization id (1 to {ORG_ID_MAX_LEN} characters a-z, 0-9, -)",
                truncated_for_error(org)
            ),
        ))
    }
}

fn lower_hex(field: &'static str, value: &str, len: usize) -> Result<String, ExportError> {
    let ok = value.len() == len
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok {
        Ok(value.to_string())
    } else {
        Err(ExportError::bad(
            field,
            format!(
                "{:?} is not {len} lowercase hex characters",
                truncated_for_error(value)
            ),
        ))
    }
}

/// Keeps error messages short whatever the caller passed in.
fn truncated_for_error(value: &str) -> &str {
    crate::text::truncate_chars(value, 80)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes() {
        assert_eq!(Outcome::parse("cleared"), Ok(Outcome::Cleared));
        for code in DISHONOUR_CODES {
            assert_eq!(
                Outcome::parse(code),
                Ok(Outcome::Dishonoured {
                    reason: code,
                    detail: None
                })
            );
        }
        assert_eq!(
            Outcome::parse("returned: signature differs "),
            Ok(Outcome::Dishonoured {
                reason: "returned",
                detail: Some("signature differs".into())
            })
        );
        assert_eq!(
            Outcome::parse("returned:"),
            Ok(Outcome::Dishonoured {
                reason: "returned",
                detail: None
            })
        );
        for bad in ["", "Cleared", "paid", "returned", "stopped "] {
            assert!(
                matches!(
                    Outcome::parse(bad),
                    Err(ExportError::BadField {
                        field: "outcome",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn org_ids() {
        assert_eq!(org_id("bank-a").as_deref(), Ok("bank-a"));
        assert!(org_id(&"a".repeat(32)).is_ok());
        for bad in ["", "Bank-A", "bank a", "bank_a", &"a".repeat(33)] {
            assert!(org_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cheque_numbers_are_never_cut() {
        assert_eq!(cheque_number("000123").as_deref(), Ok("000123"));
        assert!(cheque_number(&"9".repeat(35)).is_ok());
        assert!(cheque_number(&"9".repeat(36)).is_err());
        assert!(cheque_number("").is_err());
        assert!(cheque_number("  ").is_err());
        assert!(cheque_number("12\n34").is_err());
        assert!(cheque_number("12\u{0}34").is_err());
    }

    #[test]
    fn hex_ids() {
        assert!(lower_hex("f", &"ab".repeat(20), 40).is_ok());
        assert!(lower_hex("f", &"AB".repeat(20), 40).is_err());
        assert!(lower_hex("f", &"ab".repeat(21), 40).is_err());
        assert!(lower_hex("f", &"xy".repeat(20), 40).is_err());
    }
}
