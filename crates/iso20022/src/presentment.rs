//! camt.107.001.01 ChequePresentmentNotificationV01, for a presentment and its outcome.
//!
//! `Cheque13` has no status or reason element, so the outcome travels in the ledger
//! extension (`SplmtryData`); a cleared cheque also gets `ValDt`, the time the amount became
//! available to the payee.

use crate::{
    Message,
    document::{self, Batch, EventCore, Kind},
    input::{CheckedCheque, CheckedParty, Outcome},
};

/// The camt.107 for one presentment.
pub(crate) fn render(
    batch: &Batch<'_>,
    event: &EventCore,
    cheque: &CheckedCheque,
    presenter: &CheckedParty,
    outcome: &Outcome,
) -> Message {
    document::message(
        Kind::Presentment,
        batch,
        event,
        cheque,
        |w| {
            // Cheque13, in schema order.
            w.leaf("InstrId", event.instruction_id());
            w.leaf("ChqNb", &cheque.number);
            w.leaf("IsseDt", &cheque.issue_date);
            w.leaf_opt("StlDt", cheque.expires.as_ref().map(|e| e.0.as_str()));
            document::amount(w, cheque);
            if *outcome == Outcome::Cleared {
                document::date_time(w, "ValDt", &event.at);
            }
            document::party(w, "Pyer", &cheque.drawer);
            document::account(w, "PyerAcct", &cheque.drawer);
            document::drawer_agent(w, cheque);
            document::party(w, "Pyee", &cheque.payee);
            document::account(w, "PyeeAcct", &cheque.payee);
            if let Some(memo) = &cheque.memo {
                w.node("InstrForChqAgt", |w| w.leaf("InstrInf", memo));
            }
        },
        |w| {
            w.leaf("Presenter", &presenter.account);
            match outcome {
                Outcome::Cleared => w.leaf("Outcome", "cleared"),
                Outcome::Dishonoured { reason, detail } => {
                    w.leaf("Outcome", "dishonoured");
                    w.leaf("Reason", reason);
                    w.leaf_opt("Detail", detail.as_deref());
                }
            }
        },
    )
}
