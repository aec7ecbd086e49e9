//! Pinned outputs: the exact bytes of one message of each kind. A change here changes what
//! banks receive, so it must be deliberate. To rewrite the files after such a change, run the
//! tests with `VERITY_UPDATE_VECTORS=1` and review the diff.

use std::path::Path;

use crate::support::*;
use verity_iso20022::{Message, export};

fn check(name: &str, m: &Message) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(name);
    if std::env::var_os("VERITY_UPDATE_VECTORS").is_some() {
        std::fs::write(&path, &m.xml).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        m.xml == want,
        "{name} differs from the pinned vector.\n--- got ---\n{}\n--- want ---\n{want}",
        m.xml
    );
}

#[test]
fn presentment_cleared() {
    check(
        "camt.107-cleared.xml",
        &export_single(presented(cheque(), "cleared")),
    );
}

#[test]
fn presentment_returned() {
    let m = export_single(presented(bare_cheque(), "returned:signature differs"));
    check("camt.107-returned.xml", &m);
}

#[test]
fn stop_request_and_report() {
    let messages = export(&[stopped(cheque(), "lost in the post")], SENDER, CREATED_MS).unwrap();
    check("camt.108-stop.xml", &messages[0]);
    check("camt.109-stop.xml", &messages[1]);
}
