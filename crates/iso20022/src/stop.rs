//! camt.108.001.01 ChequeCancellationOrStopRequestV01 and camt.109.001.01
//! ChequeCancellationOrStopReportV01, for a stop-payment or a cancellation.
//!
//! On the ledger the drawer's request and its taking effect are one committed transaction, so
//! each such event yields the request (camt.108) and a report that it was accepted (camt.109).

use crate::{
    Message,
    document::{self, Batch, EventCore, Kind, message},
    input::{CheckedCheque, MAX140},
    text::truncate_chars,
    xml::XmlWriter,
};

/// `ChequePartyRole1Code` of the payer, the party that draws the cheque.
const ROLE_PAYER: &str = "PAYR";
/// `ExternalChequeCancellationReason1Code`: the customer asked to stop or cancel the cheque.
const REASON_CUSTOMER: &str = "CUST";
/// `ExternalChequeCancellationStatus1Code`: the cancellation or stop was accepted.
const STATUS_ACCEPTED: &str = "ACCR";

/// Which of the drawer's two requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Stop payment, with the drawer's reason (already XML-safe, at most 256 characters).
    Stop { reason: Option<String> },
    /// Cancel the cheque.
    Cancel,
}

impl Action {
    fn code(&self) -> &'static str {
        match self {
            Self::Stop { .. } => "stop",
            Self::Cancel => "cancel",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Self::Stop { .. } => "Stop payment",
            Self::Cancel => "Cancellation",
        }
    }
}

/// The camt.108 and the camt.109 for one stop or cancellation, in that order.
pub(crate) fn render(
    batch: &Batch<'_>,
    event: &EventCore,
    cheque: &CheckedCheque,
    action: &Action,
) -> [Message; 2] {
    let request_info = match action {
        Action::Stop {
            reason: Some(reason),
        } => format!("{}: {reason}", action.title()),
        _ => action.title().to_string(),
    };
    let report_info = format!(
        "{} committed on the ledger at height {}",
        action.title(),
        event.height
    );
    let request = message(
        Kind::StopRequest,
        batch,
        event,
        cheque,
        |w| {
            cheque_fields(w, event, cheque);
            w.node("ChqCxlOrStopRsn", |w| {
                w.leaf("Orgtr", ROLE_PAYER);
                w.node("Rsn", |w| w.leaf("Cd", REASON_CUSTOMER));
                w.leaf("AddtlInf", truncate_chars(&request_info, MAX140).trim_end());
            });
        },
        |w| ledger(w, action),
    );
    let report = message(
        Kind::StopReport,
        batch,
        event,
        cheque,
        |w| {
            cheque_fields(w, event, cheque);
            w.node("ChqCxlOrStopSts", |w| {
                w.node("Sts", |w| w.leaf("Cd", STATUS_ACCEPTED));
                w.leaf("AddtlInf", truncate_chars(&report_info, MAX140));
            });
        },
        |w| ledger(w, action),
    );
    [request, report]
}

/// The elements `Cheque15` (camt.108) and `Cheque14` (camt.109) share, in schema order, up
/// to their last element (the reason, or the status).
fn cheque_fields(w: &mut XmlWriter, event: &EventCore, cheque: &CheckedCheque) {
    w.leaf("InstrId", event.instruction_id());
    w.leaf("OrgnlInstrId", cheque.original_instruction_id());
    w.leaf("ChqNb", &cheque.number);
    w.leaf("IsseDt", &cheque.issue_date);
    w.leaf_opt("StlDt", cheque.expires.as_ref().map(|e| e.0.as_str()));
    document::amount(w, cheque);
    document::date_time(w, "FctvDt", &event.at);
    document::drawer_agent(w, cheque);
    document::party(w, "Pyee", &cheque.payee);
    document::account(w, "PyeeAcct", &cheque.payee);
}

fn ledger(w: &mut XmlWriter, action: &Action) {
    w.leaf("Action", action.code());
    if let Action::Stop { reason } = action {
        w.leaf_opt("Reason", reason.as_deref());
    }
}
