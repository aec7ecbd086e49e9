//! The parts every message shares: the `Document` envelope, the group header, amounts,
//! parties, accounts, the drawer agent and the ledger extension in the supplementary data.

use crate::{
    LEDGER_EXTENSION_NS, Message,
    input::{CheckedCheque, CheckedParty},
    xml::XmlWriter,
};

/// `SchemeName/Proprietary` of a Verity organization id used as a financial institution
/// identification (`FinInstnId/Othr`).
pub(crate) const ORG_SCHEME: &str = "VERITY-ORG";
/// `Proxy/Type/Proprietary` of a Verity account id used as an account proxy (`*Acct/Prxy`).
pub(crate) const ACCOUNT_PROXY_TYPE: &str = "VERITY-ACCOUNT";
/// Characters of the transaction id's hex that go into identifications: `InstrId` carries this
/// many, `MsgId` four fewer followed by `-` and the message number.
const ID_PREFIX_LEN: usize = 35;
/// Characters of the transaction id's hex in a file name.
const FILE_NAME_TX_LEN: usize = 16;

/// The three message definitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// camt.107.001.01 ChequePresentmentNotificationV01.
    Presentment,
    /// camt.108.001.01 ChequeCancellationOrStopRequestV01.
    StopRequest,
    /// camt.109.001.01 ChequeCancellationOrStopReportV01.
    StopReport,
}

impl Kind {
    /// The message definition identifier.
    pub(crate) fn definition(self) -> &'static str {
        match self {
            Self::Presentment => "camt.107.001.01",
            Self::StopRequest => "camt.108.001.01",
            Self::StopReport => "camt.109.001.01",
        }
    }

    fn number(self) -> &'static str {
        match self {
            Self::Presentment => "107",
            Self::StopRequest => "108",
            Self::StopReport => "109",
        }
    }

    fn namespace(self) -> &'static str {
        match self {
            Self::Presentment => "urn:iso:std:iso:20022:tech:xsd:camt.107.001.01",
            Self::StopRequest => "urn:iso:std:iso:20022:tech:xsd:camt.108.001.01",
            Self::StopReport => "urn:iso:std:iso:20022:tech:xsd:camt.109.001.01",
        }
    }

    fn root(self) -> &'static str {
        match self {
            Self::Presentment => "ChqPresntmntNtfctn",
            Self::StopRequest => "ChqCxlOrStopReq",
            Self::StopReport => "ChqCxlOrStopRpt",
        }
    }

    fn cheque_path(self) -> &'static str {
        match self {
            Self::Presentment => "/Document/ChqPresntmntNtfctn/Chq",
            Self::StopRequest => "/Document/ChqCxlOrStopReq/Chq",
            Self::StopReport => "/Document/ChqCxlOrStopRpt/Chq",
        }
    }
}

/// The checked fields every event has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EventCore {
    /// 64 lowercase hex characters.
    pub(crate) tx_id: String,
    pub(crate) height: u64,
    /// `ISODateTime` of the event.
    pub(crate) at: String,
}

impl EventCore {
    /// `InstrId`: the first 35 hex characters of the transaction id.
    pub(crate) fn instruction_id(&self) -> &str {
        &self.tx_id[..ID_PREFIX_LEN]
    }
}

/// The batch-wide values: who exports, and when.
pub(crate) struct Batch<'a> {
    /// Free text, at most 140 characters.
    pub(crate) sender: &'a str,
    /// `ISODateTime` of the export.
    pub(crate) created: &'a str,
}

/// Writes one message: `Document` in the kind's namespace, the group header, the one `Chq`
/// written by `cheque`, and the ledger extension, whose kind-specific elements `ledger` adds.
pub(crate) fn message(
    kind: Kind,
    batch: &Batch<'_>,
    event: &EventCore,
    cheque: &CheckedCheque,
    body: impl FnOnce(&mut XmlWriter),
    ledger: impl FnOnce(&mut XmlWriter),
) -> Message {
    let mut w = XmlWriter::new();
    w.node_with("Document", &[("xmlns", kind.namespace())], |w| {
        w.node(kind.root(), |w| {
            w.node("GrpHdr", |w| {
                w.leaf("MsgId", &message_id(kind, event));
                w.leaf("CreDtTm", batch.created);
                w.leaf("NbOfChqs", "1");
            });
            w.node("Chq", body);
            w.node("SplmtryData", |w| {
                w.leaf("PlcAndNm", kind.cheque_path());
                w.node("Envlp", |w| {
                    w.node_with("Ledger", &[("xmlns", LEDGER_EXTENSION_NS)], |w| {
                        w.leaf("Sender", batch.sender);
                        w.leaf("TxId", &event.tx_id);
                        w.leaf("Height", &event.height.to_string());
                        w.leaf("At", &event.at);
                        w.leaf("ChequeId", &cheque.id);
                        w.leaf("Drawer", &cheque.drawer.account);
                        w.leaf("Payee", &cheque.payee.account);
                        w.leaf_opt("ValidFrom", cheque.valid_from.as_deref());
                        w.leaf_opt("Expires", cheque.expires.as_ref().map(|e| e.1.as_str()));
                        w.leaf_opt("Memo", cheque.ledger_memo.as_deref());
                        ledger(w);
                    });
                });
            });
        });
    });
    Message {
        kind: kind.definition(),
        file_name: format!(
            "camt.{}-{}-{}.xml",
            kind.number(),
            event.height,
            &event.tx_id[..FILE_NAME_TX_LEN]
        ),
        xml: w.finish(),
    }
}

/// `MsgId`: 31 hex characters of the transaction id, `-` and the message number (35
/// characters), so that the camt.108 and camt.109 of one event differ.
fn message_id(kind: Kind, event: &EventCore) -> String {
    format!("{}-{}", &event.tx_id[..ID_PREFIX_LEN - 4], kind.number())
}

/// `Amt` with its `Ccy` attribute.
pub(crate) fn amount(w: &mut XmlWriter, cheque: &CheckedCheque) {
    w.leaf_with("Amt", &[("Ccy", &cheque.currency)], &cheque.amount);
}

/// A `DateAndDateTime2Choice` holding a date and time.
pub(crate) fn date_time(w: &mut XmlWriter, name: &'static str, iso_date_time: &str) {
    w.node(name, |w| w.leaf("DtTm", iso_date_time));
}

/// A `PartyIdentification135` with the party's name (its account id when it has none).
pub(crate) fn party(w: &mut XmlWriter, name: &'static str, party: &CheckedParty) {
    w.node(name, |w| w.leaf("Nm", party.display()));
}

/// A `CashAccount40` holding the party's ledger account as a proxy.
pub(crate) fn account(w: &mut XmlWriter, name: &'static str, party: &CheckedParty) {
    w.node(name, |w| {
        w.node("Prxy", |w| {
            w.node("Tp", |w| w.leaf("Prtry", ACCOUNT_PROXY_TYPE));
            w.leaf("Id", &party.account);
        });
    });
}

/// `DrwrAgt`, a `BranchAndFinancialInstitutionIdentification6`, if the paying bank is known.
pub(crate) fn drawer_agent(w: &mut XmlWriter, cheque: &CheckedCheque) {
    if let Some(org) = &cheque.drawer_agent {
        w.node("DrwrAgt", |w| {
            w.node("FinInstnId", |w| {
                w.node("Othr", |w| {
                    w.leaf("Id", org);
                    w.node("SchmeNm", |w| w.leaf("Prtry", ORG_SCHEME));
                });
            });
        });
    }
}
