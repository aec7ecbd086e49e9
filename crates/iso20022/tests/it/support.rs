//! Fixtures: a cheque and its events, and helpers to read the rendered XML.

use roxmltree::{Document, Node};
use verity_iso20022::{Cheque, Event, Message, Party, export};

/// The exporting organization.
pub const SENDER: &str = "Bank A";
/// 2024-02-29T12:00:00.250Z.
pub const CREATED_MS: u64 = 1_709_208_000_250;
/// 2024-02-01T09:30:00.000Z.
pub const ISSUED_MS: u64 = 1_706_779_800_000;
/// 2024-02-29T10:15:30.123Z.
pub const AT_MS: u64 = 1_709_201_730_123;
/// 2024-05-01T00:00:00.000Z.
pub const EXPIRES_MS: u64 = 1_714_521_600_000;

pub const TX_ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
pub const CHEQUE_ID: &str = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
pub const DRAWER: &str = "d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1";
pub const PAYEE: &str = "e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2";
pub const PRESENTER: &str = "a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3";
pub const HEIGHT: u64 = 4242;

pub const NS_107: &str = "urn:iso:std:iso:20022:tech:xsd:camt.107.001.01";
pub const NS_108: &str = "urn:iso:std:iso:20022:tech:xsd:camt.108.001.01";
pub const NS_109: &str = "urn:iso:std:iso:20022:tech:xsd:camt.109.001.01";

/// A digital cheque with every optional field set.
pub fn cheque() -> Cheque {
    Cheque {
        id: CHEQUE_ID.into(),
        number: CHEQUE_ID[..16].into(),
        drawer: Party {
            account: DRAWER.into(),
            name: Some("Acme Widgets Ltd".into()),
        },
        payee: Party {
            account: PAYEE.into(),
            name: Some("Jane Payee".into()),
        },
        drawer_agent: Some("bank-a".into()),
        currency: "USD".into(),
        amount_minor: 1_234_567,
        decimals: 2,
        issued_ms: ISSUED_MS,
        valid_from_ms: Some(ISSUED_MS + 86_400_000),
        expires_ms: Some(EXPIRES_MS),
        memo: "Invoice 2024-117".into(),
    }
}

/// A cheque with no optional field set and parties without names.
pub fn bare_cheque() -> Cheque {
    Cheque {
        drawer: Party {
            account: DRAWER.into(),
            name: None,
        },
        payee: Party {
            account: PAYEE.into(),
            name: None,
        },
        drawer_agent: None,
        valid_from_ms: None,
        expires_ms: None,
        memo: String::new(),
        ..cheque()
    }
}

pub fn presented(cheque: Cheque, outcome: &str) -> Event {
    Event::Presented {
        cheque,
        presenter: Party {
            account: PRESENTER.into(),
            name: None,
        },
        at_ms: AT_MS,
        tx_id: TX_ID.into(),
        height: HEIGHT,
        outcome: outcome.into(),
    }
}

pub fn stopped(cheque: Cheque, reason: &str) -> Event {
    Event::Stopped {
        cheque,
        at_ms: AT_MS,
        tx_id: TX_ID.into(),
        height: HEIGHT,
        reason: reason.into(),
    }
}

pub fn cancelled(cheque: Cheque) -> Event {
    Event::Cancelled {
        cheque,
        at_ms: AT_MS,
        tx_id: TX_ID.into(),
        height: HEIGHT,
    }
}

/// One event of every kind and outcome, with full and bare cheques.
pub fn every_kind_of_event() -> Vec<Event> {
    let mut events = Vec::new();
    for c in [cheque(), bare_cheque()] {
        for outcome in [
            "cleared",
            "insufficient_funds",
            "stopped",
            "expired",
            "not_yet_valid",
            "frozen",
            "over_limit",
            "returned:signature does not match",
            "returned:",
        ] {
            events.push(presented(c.clone(), outcome));
        }
        events.push(stopped(c.clone(), "lost in the post"));
        events.push(stopped(c.clone(), ""));
        events.push(cancelled(c));
    }
    events
}

/// The messages of one event.
pub fn export_one(event: Event) -> Vec<Message> {
    export(&[event], SENDER, CREATED_MS).expect("export")
}

/// The only message of one event (a presentment).
pub fn export_single(event: Event) -> Message {
    let mut messages = export_one(event);
    assert_eq!(messages.len(), 1);
    messages.remove(0)
}

pub fn parse(xml: &str) -> Document<'_> {
    Document::parse(xml).unwrap_or_else(|e| panic!("not well-formed XML: {e}\n{xml}"))
}

/// The element reached from `node` by following child element names, if any.
pub fn find<'a, 'i>(node: Node<'a, 'i>, path: &[&str]) -> Option<Node<'a, 'i>> {
    let mut node = node;
    for name in path {
        node = node
            .children()
            .find(|c| c.is_element() && c.tag_name().name() == *name)?;
    }
    Some(node)
}

/// The text of the element at `path` under the document element (`Document`).
pub fn text(doc: &Document<'_>, path: &[&str]) -> Option<String> {
    find(doc.root_element(), path).map(|n| n.text().unwrap_or_default().to_string())
}

/// The names of the child elements of the element at `path`, in document order.
pub fn child_names(doc: &Document<'_>, path: &[&str]) -> Vec<String> {
    find(doc.root_element(), path)
        .unwrap_or_else(|| panic!("no element at {path:?}"))
        .children()
        .filter(|c| c.is_element())
        .map(|c| c.tag_name().name().to_string())
        .collect()
}
