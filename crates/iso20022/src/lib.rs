//! ISO 20022 cheque messages rendered from Verity cheque events.
//!
//! [`export`] turns cheque events committed on the ledger into the ISO 20022 cash-management
//! messages banks use for cheques. It is a pure function: no clock, no I/O; the caller passes
//! the creation time and writes the files.
//!
//! | Ledger event | Messages |
//! |---|---|
//! | [`Event::Presented`] | one **camt.107.001.01** ChequePresentmentNotificationV01 |
//! | [`Event::Stopped`] | one **camt.108.001.01** ChequeCancellationOrStopRequestV01, then one **camt.109.001.01** ChequeCancellationOrStopReportV01 |
//! | [`Event::Cancelled`] | one camt.108.001.01, then one camt.109.001.01 |
//!
//! A stop or cancellation committed on the ledger has taken effect by definition, so its
//! camt.109 always reports it accepted (`ACCR`).
//!
//! Each message is a complete UTF-8 XML document whose root is `Document` in the namespace
//! `urn:iso:std:iso:20022:tech:xsd:camt.10N.001.01`, holding one group header (`GrpHdr`), one
//! cheque (`Chq`) and one supplementary data block (`SplmtryData`) with the ledger's own record
//! of the event. Messages come back in event order, and an event's camt.108 before its
//! camt.109. If any event is refused, nothing is exported and the error says which event.
//!
//! # Elements common to all three messages
//!
//! | Element | Type | Carries |
//! |---|---|---|
//! | `GrpHdr/MsgId` | Max35Text | the first 31 hex characters of the transaction id, `-` and the message number (`…-107`, `…-108`, `…-109`), so each message of an event has its own id |
//! | `GrpHdr/CreDtTm` | ISODateTime | the export time `created_ms`, in UTC: `YYYY-MM-DDThh:mm:ss.sssZ` |
//! | `GrpHdr/NbOfChqs` | Max15NumericText | `1` |
//! | `Chq/InstrId` | Max35Text | the first 35 hex characters of the transaction id |
//! | `Chq/ChqNb` | Max35Text | the cheque number (1 to 35 characters; never cut) |
//! | `Chq/IsseDt` | ISODate | the UTC date of `issued_ms` |
//! | `Chq/StlDt` | ISODate | the *stale date*, after which the cheque is no longer valid: the UTC date of `expires_ms`, if set |
//! | `Chq/Amt` and its `Ccy` | ActiveCurrencyAndAmount | the amount as an exact decimal, with the cheque's decimals (`1250` at 2 decimals is `12.50`); the currency code |
//! | `Chq/DrwrAgt/FinInstnId/Othr` | GenericFinancialIdentification1 | `Id`: the paying bank's organization id; `SchmeNm/Prtry`: `VERITY-ORG`; absent if the cheque has no drawer agent |
//! | `Chq/Pyee/Nm` | Max140Text | the payee's display name, or its account id when it has none |
//! | `Chq/PyeeAcct/Prxy` | ProxyAccountIdentification1 | `Tp/Prtry`: `VERITY-ACCOUNT`; `Id`: the payee's account id |
//! | `SplmtryData/PlcAndNm` | Max350Text | the path of the cheque it supplements, e.g. `/Document/ChqPresntmntNtfctn/Chq` |
//! | `SplmtryData/Envlp/Ledger` | (extension) | the ledger record, below |
//!
//! # camt.107: presentment
//!
//! | Element | Carries |
//! |---|---|
//! | `Chq/ValDt/DtTm` | when the cheque cleared (the presentment time); absent when it was dishonoured |
//! | `Chq/Pyer/Nm`, `Chq/PyerAcct/Prxy` | the drawer, as for the payee |
//! | `Chq/InstrForChqAgt/InstrInf` | the memo, cut to 140 characters; absent when empty |
//! | `Ledger/Presenter` | the presenter's account id (the holder, or the pledgee) |
//! | `Ledger/Outcome` | `cleared` or `dishonoured` |
//! | `Ledger/Reason` | when dishonoured: `insufficient_funds`, `stopped`, `expired`, `not_yet_valid`, `frozen`, `over_limit` or `returned` |
//! | `Ledger/Detail` | the free text of `returned:<text>` |
//!
//! ChequePresentmentNotificationV01 has no status or reason element: it notifies a
//! presentment, not its result. The outcome therefore goes in the message's supplementary
//! data, the element ISO 20022 provides for information the structured elements cannot hold;
//! `ValDt`, present only for a cleared cheque, is the one structured trace of the outcome.
//!
//! # camt.108 (request) and camt.109 (report): stop payment and cancellation
//!
//! | Element | camt.108 | camt.109 |
//! |---|---|---|
//! | `Chq/OrgnlInstrId` | the first 35 hex characters of the cheque id | the same |
//! | `Chq/FctvDt/DtTm` | when the stop or cancellation was committed | the same |
//! | `Chq/ChqCxlOrStopRsn/Orgtr` | `PAYR`: the payer (drawer) asked | — |
//! | `Chq/ChqCxlOrStopRsn/Rsn/Cd` | `CUST`: requested by the customer | — |
//! | `Chq/ChqCxlOrStopRsn/AddtlInf` | `Stop payment: <reason>`, `Stop payment` or `Cancellation`, cut to 140 characters | — |
//! | `Chq/ChqCxlOrStopSts/Sts/Cd` | — | `ACCR`: accepted |
//! | `Chq/ChqCxlOrStopSts/AddtlInf` | — | e.g. `Stop payment committed on the ledger at height 42` |
//! | `Ledger/Action` | `stop` or `cancel` | the same |
//! | `Ledger/Reason` | the stop reason, up to 256 characters; absent when empty | the same |
//!
//! The two messages of one event share `InstrId` (the transaction) and `OrgnlInstrId` (the
//! cheque), which ties the report to its request. Their cheque blocks (`Cheque15`, `Cheque14`)
//! have no payer, so the drawer appears in the ledger record only.
//!
//! # The ledger record
//!
//! `SplmtryData/Envlp` admits any XML. Verity puts one `Ledger` element there, in the namespace
//! [`LEDGER_EXTENSION_NS`], with the full, uncut values the ISO elements can only abbreviate:
//!
//! | Element | Carries |
//! |---|---|
//! | `Sender` | the exporting organization (`sender`; GroupHeader103 has no sender element) |
//! | `TxId`, `Height`, `At` | the full transaction id, the block height, the event time |
//! | `ChequeId`, `Drawer`, `Payee` | the full cheque id and the drawer's and payee's account ids |
//! | `ValidFrom`, `Expires` | `valid_from_ms` and `expires_ms` as date-times, if set (ISO 20022 has no element for the first, and only a date for the second) |
//! | `Memo` | the memo, up to 256 characters |
//!
//! followed by the message-specific elements above.
//!
//! # Data types and limits
//!
//! * Times are UTC, converted from ms since the Unix epoch without floating point; date-times
//!   always have milliseconds and `Z`. Times after 9999-12-31T23:59:59.999Z are refused.
//! * Amounts have at most 18 digits and at most 5 decimals (`fractionDigits` 5, `totalDigits`
//!   18). With more than 5 decimals, trailing zeros are dropped down to 5; an amount that would
//!   still need rounding is refused ([`ExportError::AmountNotRepresentable`]).
//! * The currency must be three letters `A-Z` ([`ExportError::NotIsoCurrency`]). Whether the
//!   code is currently assigned by ISO 4217 is left to the receiver.
//! * Account ids are 40 and cheque and transaction ids 64 lowercase hex characters. Account ids
//!   do not fit the 35- or 34-character `Othr/Id` of parties and accounts, so they go in the
//!   account's proxy (`Prxy/Id`, up to 2048 characters) and, for a party without a display
//!   name, in its name (`Nm`, up to 140 characters), uncut.
//! * Free text (names, memo, reasons) is trimmed, cut on a character boundary to the element's
//!   limit (counted in characters, as ISO 20022 counts them), and escaped; characters XML cannot
//!   carry at all (most control characters) become U+FFFD.
//!
//! # Sources
//!
//! The element names, order, multiplicities and types follow the ISO 20022 message definitions
//! camt.107.001.01, camt.108.001.01 and camt.109.001.01 (cash management, cheque messages);
//! the test suite checks every message against them. See
//! `tests/xsd/README.md` in this crate for where they were read.

mod amount;
mod document;
mod error;
mod input;
mod model;
mod presentment;
mod stop;
mod text;
mod time;
mod xml;

pub use error::ExportError;
pub use model::{Cheque, Event, Message, Party};

use document::{Batch, EventCore};
use input::Outcome;
use stop::Action;

/// The XML namespace of the `Ledger` element Verity puts in each message's supplementary data.
pub const LEDGER_EXTENSION_NS: &str = "urn:verity:iso20022:ledger:1";

/// The messages for `events`, in order: [`Event::Presented`] gives one camt.107;
/// [`Event::Stopped`] and [`Event::Cancelled`] give one camt.108 and then one camt.109.
///
/// `sender` is the exporting organization's name or id; `created_ms` the creation time (ms
/// since the Unix epoch) written in every group header. The messages are built in memory, a
/// few kilobytes each; the caller bounds the batch.
///
/// # Errors
///
/// [`ExportError::BadField`] or [`ExportError::TimeOutOfRange`] if `sender` or `created_ms`
/// is unusable; otherwise [`ExportError::Event`] with the index of the first event refused and
/// why. Nothing is returned for any event if one is refused.
pub fn export(
    events: &[Event],
    sender: &str,
    created_ms: u64,
) -> Result<Vec<Message>, ExportError> {
    let sender = input::sender(sender)?;
    let created = input::date_time("created_ms", created_ms)?;
    let batch = Batch {
        sender: &sender,
        created: &created,
    };
    let mut messages = Vec::with_capacity(events.len() * 2);
    for (index, event) in events.iter().enumerate() {
        render_event(&batch, event, &mut messages).map_err(|error| ExportError::Event {
            index,
            error: Box::new(error),
        })?;
    }
    Ok(messages)
}

/// Checks one event and appends its messages.
fn render_event(
    batch: &Batch<'_>,
    event: &Event,
    out: &mut Vec<Message>,
) -> Result<(), ExportError> {
    match event {
        Event::Presented {
            cheque,
            presenter,
            at_ms,
            tx_id,
            height,
            outcome,
        } => {
            let core = event_core(tx_id, *height, *at_ms)?;
            let cheque = input::cheque(cheque)?;
            let presenter = input::party("presenter.account", presenter)?;
            let outcome = Outcome::parse(outcome)?;
            out.push(presentment::render(
                batch, &core, &cheque, &presenter, &outcome,
            ));
        }
        Event::Stopped {
            cheque,
            at_ms,
            tx_id,
            height,
            reason,
        } => {
            let core = event_core(tx_id, *height, *at_ms)?;
            let cheque = input::cheque(cheque)?;
            let action = Action::Stop {
                reason: text::free_text(reason, input::LEDGER_TEXT_MAX),
            };
            out.extend(stop::render(batch, &core, &cheque, &action));
        }
        Event::Cancelled {
            cheque,
            at_ms,
            tx_id,
            height,
        } => {
            let core = event_core(tx_id, *height, *at_ms)?;
            let cheque = input::cheque(cheque)?;
            out.extend(stop::render(batch, &core, &cheque, &Action::Cancel));
        }
    }
    Ok(())
}

fn event_core(tx_id: &str, height: u64, at_ms: u64) -> Result<EventCore, ExportError> {
    Ok(EventCore {
        tx_id: input::tx_id(tx_id)?,
        height,
        at: input::date_time("at_ms", at_ms)?,
    })
}
