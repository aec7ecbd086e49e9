//! Validation of the rendered messages with `xmllint --schema` against the XSDs in
//! `tests/xsd` (see the README there for their origin).
//!
//! xmllint comes from Debian's `libxml2-utils`, which `scripts/test` installs. Where it is
//! missing these tests pass with a notice (the checks in `schema.rs` cover the same definitions
//! without it), unless `VERITY_REQUIRE_XMLLINT=1`, as `scripts/test` sets, makes it a failure.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use crate::support::*;
use verity_iso20022::{Message, export};

fn xmllint_available() -> bool {
    let found = Command::new("xmllint").arg("--version").output().is_ok();
    if !found && std::env::var("VERITY_REQUIRE_XMLLINT").is_ok_and(|v| v == "1") {
        panic!("xmllint not found (Debian package libxml2-utils) and VERITY_REQUIRE_XMLLINT=1");
    }
    if !found {
        eprintln!(
            "NOTICE: xmllint not found (Debian package libxml2-utils); XSD validation skipped"
        );
    }
    found
}

fn schema_for(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/xsd")
        .join(format!("{kind}.xsd"))
}

/// Runs xmllint on `xml` (given on its standard input) against the schema of `kind`; `Err`
/// holds its report.
fn validate(kind: &str, xml: &str) -> Result<(), String> {
    let mut child = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(schema_for(kind))
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run xmllint");
    child
        .stdin
        .take()
        .expect("xmllint's stdin")
        .write_all(xml.as_bytes())
        .expect("write to xmllint");
    let out = child.wait_with_output().expect("wait for xmllint");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn assert_valid(m: &Message) {
    if let Err(report) = validate(m.kind, &m.xml) {
        panic!("{} does not validate:\n{report}\n{}", m.file_name, m.xml);
    }
}

#[test]
fn every_message_validates_against_its_xsd() {
    if !xmllint_available() {
        return;
    }
    let mut events = every_kind_of_event();
    let mut tricky = cheque();
    tricky.memo = "<&>\"' é東🦀\r\n\u{0}".repeat(30);
    tricky.payee.name = Some("ß & <co>".repeat(40));
    tricky.decimals = 8;
    tricky.amount_minor = 123_450_000;
    events.push(presented(tricky.clone(), "returned:<&>\"'"));
    events.push(stopped(tricky, &"€<".repeat(200)));
    let messages = export(&events, "Bank <A> & \"B\"", CREATED_MS).unwrap();
    for m in &messages {
        assert_valid(m);
    }
}

/// The schemas do reject what the definitions forbid, so the test above can fail.
#[test]
fn the_xsds_reject_broken_messages() {
    if !xmllint_available() {
        return;
    }
    let m = export_single(presented(cheque(), "cleared"));
    assert_valid(&m);
    let broken = [
        // Pyee is mandatory in Cheque13.
        m.xml.replace("<Pyee>", "<Xx>").replace("</Pyee>", "</Xx>"),
        // Out of order.
        m.xml
            .replace("<ChqNb>", "<Tmp>")
            .replace("</ChqNb>", "</Tmp>"),
        // Max35Text.
        m.xml.replace(&CHEQUE_ID[..16], &"9".repeat(36)),
        // ActiveCurrencyCode and fractionDigits.
        m.xml.replace("Ccy=\"USD\"", "Ccy=\"usd\""),
        m.xml.replace(">12345.67<", ">12345.678901<"),
        // ISODate.
        m.xml.replace("2024-02-01", "2024-02-30"),
    ];
    for xml in broken {
        assert!(validate(m.kind, &xml).is_err(), "accepted:\n{xml}");
    }
    let stop = export_one(stopped(cheque(), "x"));
    assert_valid(&stop[0]);
    assert_valid(&stop[1]);
    // ExternalChequeCancellationReason1Code has at most 4 characters.
    assert!(validate(stop[0].kind, &stop[0].xml.replace(">CUST<", ">CUSTOMER<")).is_err());
    // The report's status is mandatory.
    let without_status = stop[1]
        .xml
        .lines()
        .filter(|l| {
            !l.contains("ChqCxlOrStopSts")
                && !l.contains("<Sts>")
                && !l.contains("</Sts>")
                && !l.contains(">ACCR<")
                && !l.contains("committed on the ledger")
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(validate(stop[1].kind, &without_status).is_err());
}
