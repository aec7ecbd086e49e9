//! What the rendered messages say, read back through an XML parser.

use crate::{schema, support::*};
use verity_iso20022::{Event, ExportError, LEDGER_EXTENSION_NS, Message, Party, export};

fn kind_number(m: &Message) -> &str {
    &m.kind[5..8]
}

/// The text of `name` in the ledger extension.
fn ledger(doc: &roxmltree::Document<'_>, name: &str) -> Option<String> {
    let envelope = doc
        .descendants()
        .find(|n| n.has_tag_name("Envlp"))
        .expect("an envelope");
    let record = envelope
        .children()
        .find(|n| n.is_element())
        .expect("a record");
    assert_eq!(record.tag_name().namespace(), Some(LEDGER_EXTENSION_NS));
    assert_eq!(record.tag_name().name(), "Ledger");
    record
        .children()
        .find(|n| n.is_element() && n.tag_name().name() == name)
        .map(|n| n.text().unwrap_or_default().to_string())
}

#[test]
fn every_message_conforms_to_its_definition() {
    let messages = export(&every_kind_of_event(), SENDER, CREATED_MS).unwrap();
    assert_eq!(messages.len(), 2 * (9 + 2 * 2 + 2));
    for m in &messages {
        let doc = parse(&m.xml);
        let errors = schema::violations(doc.root_element(), kind_number(m));
        assert!(
            errors.is_empty(),
            "{}:\n{}\n{}",
            m.file_name,
            errors.join("\n"),
            m.xml
        );
    }
}

#[test]
fn the_checker_catches_what_the_definition_forbids() {
    let m = export_single(presented(cheque(), "cleared"));
    let check = |xml: String| {
        let doc = parse(&xml);
        schema::violations(doc.root_element(), "107")
    };
    assert!(check(m.xml.clone()).is_empty());
    // Out of order: the amount before the issue date.
    let amount_line = m.xml.lines().find(|l| l.contains("<Amt ")).unwrap();
    let swapped = m
        .xml
        .replace(&format!("{amount_line}\n"), "")
        .replace("      <IsseDt>", &format!("{amount_line}\n      <IsseDt>"));
    assert!(!check(swapped).is_empty());
    // Missing mandatory element.
    assert!(
        !check(
            m.xml
                .replace("<ChqNb>", "<Xx>")
                .replace("</ChqNb>", "</Xx>")
        )
        .is_empty()
    );
    // Too long for Max35Text.
    let long = "9".repeat(36);
    assert!(!check(m.xml.replace(&CHEQUE_ID[..16], &long)).is_empty());
    // Not an ISODate.
    assert!(!check(m.xml.replace("2024-02-01", "2024-02-30")).is_empty());
    // Bad currency code and too many decimals.
    assert!(!check(m.xml.replace("Ccy=\"USD\"", "Ccy=\"usd\"")).is_empty());
    assert!(!check(m.xml.replace(">12345.67<", ">12345.678901<")).is_empty());
    // Wrong namespace.
    assert!(!check(m.xml.replace(NS_107, NS_108)).is_empty());
}

#[test]
fn each_event_gives_its_messages_in_order() {
    let events = vec![
        presented(cheque(), "cleared"),
        stopped(cheque(), "lost"),
        cancelled(cheque()),
    ];
    let kinds: Vec<&str> = export(&events, SENDER, CREATED_MS)
        .unwrap()
        .iter()
        .map(|m| m.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "camt.107.001.01",
            "camt.108.001.01",
            "camt.109.001.01",
            "camt.108.001.01",
            "camt.109.001.01"
        ]
    );
    assert_eq!(export(&[], SENDER, CREATED_MS).unwrap(), vec![]);
}

#[test]
fn documents_have_a_declaration_the_namespace_and_the_root() {
    let events = [presented(cheque(), "cleared"), cancelled(cheque())];
    let messages = export(&events, SENDER, CREATED_MS).unwrap();
    let expected = [
        (NS_107, "ChqPresntmntNtfctn"),
        (NS_108, "ChqCxlOrStopReq"),
        (NS_109, "ChqCxlOrStopRpt"),
    ];
    for (m, (ns, root)) in messages.iter().zip(expected) {
        assert!(
            m.xml
                .starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
        );
        let doc = parse(&m.xml);
        let document = doc.root_element();
        assert_eq!(document.tag_name().name(), "Document");
        assert_eq!(document.tag_name().namespace(), Some(ns));
        assert_eq!(child_names(&doc, &[]), [root], "Document holds the message");
        assert_eq!(child_names(&doc, &[root]), ["GrpHdr", "Chq", "SplmtryData"]);
    }
}

#[test]
fn group_header() {
    let messages = export_one(stopped(cheque(), "lost"));
    let mut ids = Vec::new();
    for m in &messages {
        let doc = parse(&m.xml);
        let root = doc.root_element().first_element_child().unwrap();
        let root = root.tag_name().name();
        let msg_id = text(&doc, &[root, "GrpHdr", "MsgId"]).unwrap();
        assert_eq!(msg_id.len(), 35);
        assert_eq!(msg_id, format!("{}-{}", &TX_ID[..31], kind_number(m)));
        ids.push(msg_id);
        assert_eq!(
            text(&doc, &[root, "GrpHdr", "CreDtTm"]).as_deref(),
            Some("2024-02-29T12:00:00.250Z")
        );
        assert_eq!(
            text(&doc, &[root, "GrpHdr", "NbOfChqs"]).as_deref(),
            Some("1")
        );
    }
    assert_ne!(
        ids[0], ids[1],
        "the request and the report have their own ids"
    );
}

#[test]
fn presentment_cheque_block_in_schema_order() {
    let m = export_single(presented(cheque(), "cleared"));
    let doc = parse(&m.xml);
    let chq = ["ChqPresntmntNtfctn", "Chq"];
    assert_eq!(
        child_names(&doc, &chq),
        [
            "InstrId",
            "ChqNb",
            "IsseDt",
            "StlDt",
            "Amt",
            "ValDt",
            "Pyer",
            "PyerAcct",
            "DrwrAgt",
            "Pyee",
            "PyeeAcct",
            "InstrForChqAgt"
        ]
    );
    let at = |path: &[&str]| text(&doc, &[&chq[..], path].concat()).unwrap();
    assert_eq!(at(&["InstrId"]), TX_ID[..35]);
    assert_eq!(at(&["ChqNb"]), CHEQUE_ID[..16]);
    assert_eq!(at(&["IsseDt"]), "2024-02-01");
    assert_eq!(at(&["StlDt"]), "2024-05-01");
    assert_eq!(at(&["Amt"]), "12345.67");
    assert_eq!(at(&["ValDt", "DtTm"]), "2024-02-29T10:15:30.123Z");
    assert_eq!(at(&["Pyer", "Nm"]), "Acme Widgets Ltd");
    assert_eq!(at(&["PyerAcct", "Prxy", "Tp", "Prtry"]), "VERITY-ACCOUNT");
    assert_eq!(at(&["PyerAcct", "Prxy", "Id"]), DRAWER);
    assert_eq!(at(&["DrwrAgt", "FinInstnId", "Othr", "Id"]), "bank-a");
    assert_eq!(
        at(&["DrwrAgt", "FinInstnId", "Othr", "SchmeNm", "Prtry"]),
        "VERITY-ORG"
    );
    assert_eq!(at(&["Pyee", "Nm"]), "Jane Payee");
    assert_eq!(at(&["PyeeAcct", "Prxy", "Id"]), PAYEE);
    assert_eq!(at(&["InstrForChqAgt", "InstrInf"]), "Invoice 2024-117");
    let amt = find(doc.root_element(), &[&chq[..], &["Amt"]].concat()).unwrap();
    assert_eq!(amt.attribute("Ccy"), Some("USD"));

    assert_eq!(
        text(&doc, &["ChqPresntmntNtfctn", "SplmtryData", "PlcAndNm"]).as_deref(),
        Some("/Document/ChqPresntmntNtfctn/Chq")
    );
    assert_eq!(ledger(&doc, "Sender").as_deref(), Some(SENDER));
    assert_eq!(ledger(&doc, "TxId").as_deref(), Some(TX_ID));
    assert_eq!(ledger(&doc, "Height").as_deref(), Some("4242"));
    assert_eq!(
        ledger(&doc, "At").as_deref(),
        Some("2024-02-29T10:15:30.123Z")
    );
    assert_eq!(ledger(&doc, "ChequeId").as_deref(), Some(CHEQUE_ID));
    assert_eq!(ledger(&doc, "Drawer").as_deref(), Some(DRAWER));
    assert_eq!(ledger(&doc, "Payee").as_deref(), Some(PAYEE));
    assert_eq!(ledger(&doc, "Presenter").as_deref(), Some(PRESENTER));
    assert_eq!(
        ledger(&doc, "ValidFrom").as_deref(),
        Some("2024-02-02T09:30:00.000Z")
    );
    assert_eq!(
        ledger(&doc, "Expires").as_deref(),
        Some("2024-05-01T00:00:00.000Z")
    );
    assert_eq!(ledger(&doc, "Memo").as_deref(), Some("Invoice 2024-117"));
    assert_eq!(ledger(&doc, "Outcome").as_deref(), Some("cleared"));
    assert_eq!(ledger(&doc, "Reason"), None);
}

#[test]
fn a_bare_cheque_leaves_out_what_it_does_not_have() {
    let m = export_single(presented(bare_cheque(), "cleared"));
    let doc = parse(&m.xml);
    let chq = ["ChqPresntmntNtfctn", "Chq"];
    assert_eq!(
        child_names(&doc, &chq),
        [
            "InstrId", "ChqNb", "IsseDt", "Amt", "ValDt", "Pyer", "PyerAcct", "Pyee", "PyeeAcct"
        ]
    );
    // Without a display name, a party is named by its account id, uncut.
    assert_eq!(
        text(&doc, &["ChqPresntmntNtfctn", "Chq", "Pyer", "Nm"]).as_deref(),
        Some(DRAWER)
    );
    assert_eq!(
        text(&doc, &["ChqPresntmntNtfctn", "Chq", "Pyee", "Nm"]).as_deref(),
        Some(PAYEE)
    );
    for absent in ["ValidFrom", "Expires", "Memo"] {
        assert_eq!(ledger(&doc, absent), None, "{absent}");
    }
}

#[test]
fn dishonour_goes_in_the_ledger_record_and_there_is_no_value_date() {
    for reason in [
        "insufficient_funds",
        "stopped",
        "expired",
        "not_yet_valid",
        "frozen",
        "over_limit",
    ] {
        let m = export_single(presented(cheque(), reason));
        let doc = parse(&m.xml);
        assert_eq!(
            find(doc.root_element(), &["ChqPresntmntNtfctn", "Chq", "ValDt"]),
            None
        );
        assert_eq!(ledger(&doc, "Outcome").as_deref(), Some("dishonoured"));
        assert_eq!(ledger(&doc, "Reason").as_deref(), Some(reason));
        assert_eq!(ledger(&doc, "Detail"), None);
    }
    let m = export_single(presented(
        cheque(),
        "returned:signature <does not> match & more",
    ));
    let doc = parse(&m.xml);
    assert_eq!(ledger(&doc, "Reason").as_deref(), Some("returned"));
    assert_eq!(
        ledger(&doc, "Detail").as_deref(),
        Some("signature <does not> match & more")
    );
}

#[test]
fn stop_request_and_report() {
    let messages = export_one(stopped(cheque(), "  lost in the post  "));
    let [request, report] = &messages[..] else {
        panic!("two messages")
    };
    assert_eq!(request.kind, "camt.108.001.01");
    assert_eq!(report.kind, "camt.109.001.01");

    let doc = parse(&request.xml);
    let chq = ["ChqCxlOrStopReq", "Chq"];
    assert_eq!(
        child_names(&doc, &chq),
        [
            "InstrId",
            "OrgnlInstrId",
            "ChqNb",
            "IsseDt",
            "StlDt",
            "Amt",
            "FctvDt",
            "DrwrAgt",
            "Pyee",
            "PyeeAcct",
            "ChqCxlOrStopRsn"
        ]
    );
    let at = |doc: &roxmltree::Document<'_>, root: &str, path: &[&str]| {
        text(doc, &[&[root, "Chq"][..], path].concat()).unwrap()
    };
    let r = "ChqCxlOrStopReq";
    assert_eq!(at(&doc, r, &["InstrId"]), TX_ID[..35]);
    assert_eq!(at(&doc, r, &["OrgnlInstrId"]), CHEQUE_ID[..35]);
    assert_eq!(at(&doc, r, &["FctvDt", "DtTm"]), "2024-02-29T10:15:30.123Z");
    assert_eq!(at(&doc, r, &["ChqCxlOrStopRsn", "Orgtr"]), "PAYR");
    assert_eq!(at(&doc, r, &["ChqCxlOrStopRsn", "Rsn", "Cd"]), "CUST");
    assert_eq!(
        at(&doc, r, &["ChqCxlOrStopRsn", "AddtlInf"]),
        "Stop payment: lost in the post"
    );
    assert_eq!(ledger(&doc, "Action").as_deref(), Some("stop"));
    assert_eq!(ledger(&doc, "Reason").as_deref(), Some("lost in the post"));
    assert_eq!(ledger(&doc, "Drawer").as_deref(), Some(DRAWER));

    let doc = parse(&report.xml);
    let r = "ChqCxlOrStopRpt";
    assert_eq!(
        child_names(&doc, &[r, "Chq"]).last().map(String::as_str),
        Some("ChqCxlOrStopSts")
    );
    assert_eq!(
        at(&doc, r, &["InstrId"]),
        TX_ID[..35],
        "ties the report to the request"
    );
    assert_eq!(at(&doc, r, &["OrgnlInstrId"]), CHEQUE_ID[..35]);
    assert_eq!(at(&doc, r, &["ChqCxlOrStopSts", "Sts", "Cd"]), "ACCR");
    assert_eq!(
        at(&doc, r, &["ChqCxlOrStopSts", "AddtlInf"]),
        "Stop payment committed on the ledger at height 4242"
    );
    assert_eq!(ledger(&doc, "Action").as_deref(), Some("stop"));
}

#[test]
fn stop_without_reason_and_cancellation() {
    let messages = export_one(stopped(cheque(), "   "));
    let doc = parse(&messages[0].xml);
    assert_eq!(
        text(
            &doc,
            &["ChqCxlOrStopReq", "Chq", "ChqCxlOrStopRsn", "AddtlInf"]
        )
        .as_deref(),
        Some("Stop payment")
    );
    assert_eq!(ledger(&doc, "Reason"), None);

    let messages = export_one(cancelled(cheque()));
    let doc = parse(&messages[0].xml);
    assert_eq!(
        text(
            &doc,
            &["ChqCxlOrStopReq", "Chq", "ChqCxlOrStopRsn", "AddtlInf"]
        )
        .as_deref(),
        Some("Cancellation")
    );
    assert_eq!(ledger(&doc, "Action").as_deref(), Some("cancel"));
    let doc = parse(&messages[1].xml);
    assert_eq!(
        text(
            &doc,
            &["ChqCxlOrStopRpt", "Chq", "ChqCxlOrStopSts", "AddtlInf"]
        )
        .as_deref(),
        Some("Cancellation committed on the ledger at height 4242")
    );
}

#[test]
fn text_is_escaped_and_survives_a_round_trip() {
    let tricky = r#"Tom & Jerry <"quoted"> 'single' — Zürich 東京 🦀"#;
    let mut c = cheque();
    c.memo = tricky.into();
    c.payee.name = Some(tricky.into());
    let mut events = vec![presented(c.clone(), &format!("returned:{tricky}"))];
    events.push(stopped(c, tricky));
    for m in export(&events, tricky, CREATED_MS).unwrap() {
        // No markup character appears raw outside markup: every one is an entity.
        assert!(
            m.xml
                .contains("Tom &amp; Jerry &lt;&quot;quoted&quot;&gt; &apos;single&apos;")
        );
        assert!(!m.xml.contains("Tom & Jerry"));
        let doc = parse(&m.xml);
        let root = doc
            .root_element()
            .first_element_child()
            .unwrap()
            .tag_name()
            .name()
            .to_string();
        assert_eq!(
            text(&doc, &[&root, "Chq", "Pyee", "Nm"]).as_deref(),
            Some(tricky)
        );
        assert_eq!(ledger(&doc, "Sender").as_deref(), Some(tricky));
        assert_eq!(ledger(&doc, "Memo").as_deref(), Some(tricky));
        if m.kind == "camt.107.001.01" {
            assert_eq!(
                text(&doc, &[&root, "Chq", "InstrForChqAgt", "InstrInf"]).as_deref(),
                Some(tricky)
            );
            assert_eq!(ledger(&doc, "Detail").as_deref(), Some(tricky));
        } else {
            assert_eq!(ledger(&doc, "Reason").as_deref(), Some(tricky));
        }
        assert!(schema::violations(doc.root_element(), kind_number(&m)).is_empty());
    }
}

#[test]
fn carriage_returns_and_control_characters() {
    let mut c = cheque();
    c.memo = "line one\r\nline two\u{0}\u{7}end".into();
    let m = export_single(presented(c, "cleared"));
    let doc = parse(&m.xml);
    assert_eq!(
        text(
            &doc,
            &["ChqPresntmntNtfctn", "Chq", "InstrForChqAgt", "InstrInf"]
        )
        .as_deref(),
        Some("line one\r\nline two\u{FFFD}\u{FFFD}end")
    );
}

#[test]
fn long_text_is_cut_on_character_boundaries() {
    let mut c = cheque();
    // 300 characters of two, three and four bytes each.
    c.memo = "é東🦀".repeat(100);
    c.payee.name = Some("ß".repeat(200));
    let reason = "€".repeat(300);
    let events = [presented(c.clone(), "cleared"), stopped(c.clone(), &reason)];
    let messages = export(&events, &"S".repeat(500), CREATED_MS).unwrap();

    let doc = parse(&messages[0].xml);
    let memo = text(
        &doc,
        &["ChqPresntmntNtfctn", "Chq", "InstrForChqAgt", "InstrInf"],
    )
    .unwrap();
    assert_eq!(memo.chars().count(), 140);
    assert!(c.memo.starts_with(&memo));
    let full = ledger(&doc, "Memo").unwrap();
    assert_eq!(full.chars().count(), 256);
    assert!(c.memo.starts_with(&full));
    assert_eq!(
        text(&doc, &["ChqPresntmntNtfctn", "Chq", "Pyee", "Nm"]).unwrap(),
        "ß".repeat(140)
    );
    assert_eq!(ledger(&doc, "Sender").unwrap(), "S".repeat(140));

    let doc = parse(&messages[1].xml);
    let info = text(
        &doc,
        &["ChqCxlOrStopReq", "Chq", "ChqCxlOrStopRsn", "AddtlInf"],
    )
    .unwrap();
    assert_eq!(info.chars().count(), 140);
    assert_eq!(info, format!("Stop payment: {}", "€".repeat(140 - 14)));
    assert_eq!(ledger(&doc, "Reason").unwrap(), "€".repeat(256));
    for m in &messages {
        let doc = parse(&m.xml);
        assert!(schema::violations(doc.root_element(), kind_number(m)).is_empty());
    }
}

#[test]
fn amounts_are_exact_decimals_with_the_currency() {
    let cases: [(u64, u8, &str, &str); 7] = [
        (1_234_567, 2, "CNY", "12345.67"),
        (5, 2, "EUR", "0.05"),
        (1000, 0, "JPY", "1000"),
        (1, 3, "BHD", "0.001"),
        (150_000_000, 8, "XAU", "1.50000"),
        (999_999_999_999_999_999, 2, "USD", "9999999999999999.99"),
        (9_007_199_254_740_993, 2, "USD", "90071992547409.93"),
    ];
    for (amount_minor, decimals, currency, want) in cases {
        let mut c = cheque();
        c.amount_minor = amount_minor;
        c.decimals = decimals;
        c.currency = currency.into();
        for m in export_one(cancelled(c)) {
            let doc = parse(&m.xml);
            let root = doc
                .root_element()
                .first_element_child()
                .unwrap()
                .tag_name()
                .name()
                .to_string();
            let amt = find(doc.root_element(), &[&root, "Chq", "Amt"]).unwrap();
            assert_eq!(amt.text(), Some(want));
            assert_eq!(amt.attribute("Ccy"), Some(currency));
            schema::check_amount(want).unwrap();
        }
    }
}

#[test]
fn amounts_that_need_rounding_or_too_many_digits_are_refused() {
    for (amount_minor, decimals) in [(123_456_789, 8), (u64::MAX, 0), (1, 18)] {
        let mut c = cheque();
        c.amount_minor = amount_minor;
        c.decimals = decimals;
        let err = export(&[presented(c, "cleared")], SENDER, CREATED_MS).unwrap_err();
        let ExportError::Event { index: 0, error } = err else {
            panic!("{err:?}")
        };
        assert!(
            matches!(*error, ExportError::AmountNotRepresentable { amount_minor: a, decimals: d, .. } if a == amount_minor && d == decimals),
            "{error:?}"
        );
    }
}

#[test]
fn currencies_must_be_iso_4217_codes() {
    for bad in ["usd", "US", "USDT", "PTS1", "", "€"] {
        let mut c = cheque();
        c.currency = bad.into();
        let events = [presented(cheque(), "cleared"), cancelled(c)];
        assert_eq!(
            export(&events, SENDER, CREATED_MS),
            Err(ExportError::Event {
                index: 1,
                error: Box::new(ExportError::NotIsoCurrency(bad.into()))
            })
        );
    }
}

#[test]
fn bad_fields_are_refused_with_the_event_and_field() {
    let bad_field = |event: Event| match export(&[event], SENDER, CREATED_MS) {
        Err(ExportError::Event { index: 0, error }) => match *error {
            ExportError::BadField { field, .. } => field,
            ExportError::TimeOutOfRange { field, .. } => field,
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    let with = |f: fn(&mut verity_iso20022::Cheque)| {
        let mut c = cheque();
        f(&mut c);
        cancelled(c)
    };
    assert_eq!(bad_field(with(|c| c.id = "ABC".into())), "cheque.id");
    assert_eq!(
        bad_field(with(|c| c.id = CHEQUE_ID.to_uppercase())),
        "cheque.id"
    );
    assert_eq!(
        bad_field(with(|c| c.number = String::new())),
        "cheque.number"
    );
    assert_eq!(
        bad_field(with(|c| c.number = "1".repeat(36))),
        "cheque.number"
    );
    assert_eq!(
        bad_field(with(|c| c.drawer.account = "d1".into())),
        "cheque.drawer.account"
    );
    assert_eq!(
        bad_field(with(|c| c.payee.account = format!("{PAYEE}00"))),
        "cheque.payee.account"
    );
    assert_eq!(
        bad_field(with(|c| c.drawer_agent = Some("Bank A".into()))),
        "cheque.drawer_agent"
    );
    assert_eq!(bad_field(with(|c| c.decimals = 19)), "cheque.decimals");
    assert_eq!(
        bad_field(with(|c| c.issued_ms = u64::MAX)),
        "cheque.issued_ms"
    );
    assert_eq!(
        bad_field(with(|c| c.expires_ms = Some(u64::MAX))),
        "cheque.expires_ms"
    );
    assert_eq!(
        bad_field(with(|c| c.valid_from_ms = Some(u64::MAX))),
        "cheque.valid_from_ms"
    );

    let mut e = presented(cheque(), "paid");
    assert_eq!(bad_field(e.clone()), "outcome");
    if let Event::Presented {
        presenter, outcome, ..
    } = &mut e
    {
        *outcome = "cleared".into();
        *presenter = Party {
            account: "not hex".into(),
            name: None,
        };
    }
    assert_eq!(bad_field(e), "presenter.account");
    let mut e = stopped(cheque(), "x");
    if let Event::Stopped { tx_id, .. } = &mut e {
        *tx_id = TX_ID[..63].into();
    }
    assert_eq!(bad_field(e), "tx_id");
    let mut e = stopped(cheque(), "x");
    if let Event::Stopped { at_ms, .. } = &mut e {
        *at_ms = 253_402_300_800_000;
    }
    assert_eq!(bad_field(e), "at_ms");
}

#[test]
fn batch_wide_inputs_are_checked_first() {
    let events = [presented(cheque(), "cleared")];
    assert!(matches!(
        export(&events, "  ", CREATED_MS),
        Err(ExportError::BadField {
            field: "sender",
            ..
        })
    ));
    assert_eq!(
        export(&events, SENDER, u64::MAX),
        Err(ExportError::TimeOutOfRange {
            field: "created_ms",
            ms: u64::MAX
        })
    );
    // The last instant a four-digit year can write still works.
    let m = export(&events, SENDER, 253_402_300_799_999).unwrap();
    let doc = parse(&m[0].xml);
    assert_eq!(
        text(&doc, &["ChqPresntmntNtfctn", "GrpHdr", "CreDtTm"]).as_deref(),
        Some("9999-12-31T23:59:59.999Z")
    );
}

#[test]
fn errors_read_well() {
    let mut c = cheque();
    c.currency = "PTS1".into();
    let err = export(
        &[presented(cheque(), "cleared"), cancelled(c)],
        SENDER,
        CREATED_MS,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "event 1: asset \"PTS1\" is not an ISO 4217 currency code (three letters A-Z)"
    );
    let mut c = cheque();
    c.amount_minor = 1;
    c.decimals = 9;
    let err = export(&[cancelled(c)], SENDER, CREATED_MS).unwrap_err();
    assert_eq!(
        err.to_string(),
        "event 0: amount 1 in units of 10^-9 cannot be written as an ISO 20022 amount: more \
         than 5 digits after the decimal point"
    );
}

#[test]
fn times_are_utc_iso_8601() {
    for (ms, date, date_time) in [
        (0, "1970-01-01", "1970-01-01T00:00:00.000Z"),
        (951_868_799_999, "2000-02-29", "2000-02-29T23:59:59.999Z"),
        (4_107_542_400_000, "2100-03-01", "2100-03-01T00:00:00.000Z"),
    ] {
        let mut c = bare_cheque();
        c.issued_ms = ms;
        c.expires_ms = Some(ms);
        let mut e = stopped(c, "");
        if let Event::Stopped { at_ms, .. } = &mut e {
            *at_ms = ms;
        }
        let messages = export(&[e], SENDER, ms).unwrap();
        let doc = parse(&messages[0].xml);
        let r = "ChqCxlOrStopReq";
        assert_eq!(
            text(&doc, &[r, "GrpHdr", "CreDtTm"]).as_deref(),
            Some(date_time)
        );
        assert_eq!(text(&doc, &[r, "Chq", "IsseDt"]).as_deref(), Some(date));
        assert_eq!(text(&doc, &[r, "Chq", "StlDt"]).as_deref(), Some(date));
        assert_eq!(
            text(&doc, &[r, "Chq", "FctvDt", "DtTm"]).as_deref(),
            Some(date_time)
        );
        assert_eq!(ledger(&doc, "Expires").as_deref(), Some(date_time));
    }
}

#[test]
fn file_names_are_unique_and_safe() {
    let mut events = every_kind_of_event();
    for (i, e) in events.iter_mut().enumerate() {
        let (Event::Presented { tx_id, height, .. }
        | Event::Stopped { tx_id, height, .. }
        | Event::Cancelled { tx_id, height, .. }) = e;
        *tx_id = format!("{i:016x}{}", &TX_ID[16..]);
        *height = i as u64;
    }
    let messages = export(&events, SENDER, CREATED_MS).unwrap();
    let mut names: Vec<&str> = messages.iter().map(|m| m.file_name.as_str()).collect();
    for name in &names {
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'),
            "{name}"
        );
        assert!(name.len() < 64);
    }
    assert_eq!(messages[0].file_name, "camt.107-0-0000000000000000.xml");
    let total = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), total, "every file name is distinct");

    let stop = export_one(stopped(cheque(), ""));
    assert_eq!(stop[0].file_name, "camt.108-4242-0123456789abcdef.xml");
    assert_eq!(stop[1].file_name, "camt.109-4242-0123456789abcdef.xml");
}

#[test]
fn output_is_deterministic() {
    let events = every_kind_of_event();
    assert_eq!(
        export(&events, SENDER, CREATED_MS).unwrap(),
        export(&events, SENDER, CREATED_MS).unwrap()
    );
}
