//! Truncated paper cheques: a collecting bank presents the scanned cheque, the paying bank (the
//! issuer of its asset) honours or returns it, and the same paper is never presented twice.

use crate::harness::*;
use verity_ledger::cheques::{ChequeStatus, Dishonour};
use verity_types::receipt::{Movement, MovementKind};

const NUMBER: &str = "100234";

/// Bank B collects, for Bob, paper cheque [NUMBER] of 600 CNY drawn on Alice (paid by Bank A).
fn presented(c: &mut Chain) -> verity_types::Hash {
    let w = cast();
    let applied = c.ok(
        &w.bank_b,
        paper_present(NUMBER, w.alice.id, w.bob.id, &cny(), 600),
    );
    assert_eq!(applied.outcome, "ok");
    assert!(
        applied.movements.is_empty(),
        "presenting paper moves nothing"
    );
    paper_id(&w.alice.id, NUMBER)
}

#[test]
fn paper_cheque_honoured_by_the_paying_bank_clears() {
    let w = cast();
    let mut c = Chain::standard();
    let id = presented(&mut c);
    let record = c.cheque(&id);
    assert_eq!(record.state(), "presented");
    assert_eq!(record.presented_by, Some(w.bank_b.id));
    assert_eq!(record.paper.as_ref().unwrap().collecting, org("bank-b"));

    let applied = c.ok(&w.bank_a, paper_decide(id, true, ""));
    assert_eq!(applied.outcome, "ok");
    assert_eq!(
        applied.movements,
        vec![
            Movement {
                account: w.alice.id,
                asset: cny(),
                delta: -600,
                counterparty: Some(w.bob.id),
                kind: MovementKind::Cheque,
                memo: format!("paper cheque {NUMBER}"),
                balance_after: 2_400,
            },
            Movement {
                account: w.bob.id,
                asset: cny(),
                delta: 600,
                counterparty: Some(w.alice.id),
                kind: MovementKind::Cheque,
                memo: format!("paper cheque {NUMBER}"),
                balance_after: 1_600,
            },
        ]
    );
    assert_eq!(c.cheque(&id).status, ChequeStatus::Cleared);
    // Decided once.
    for honour in [true, false] {
        let e = c.refuse(&w.bank_a, paper_decide(id, honour, "again"));
        assert_eq!(e.code(), "cheque_state");
    }
    assert_eq!(c.balance(&w.bob.id, &cny()), 1_600);
}

#[test]
fn returned_paper_cheque_is_dishonoured_with_its_reason() {
    let w = cast();
    let mut c = Chain::standard();
    let id = presented(&mut c);

    assert_eq!(
        c.refuse(&w.bank_a, paper_decide(id, false, "")).code(),
        "cheque_state",
        "a return needs a reason"
    );
    let applied = c.ok(&w.bank_a, paper_decide(id, false, "signature differs"));
    assert_eq!(applied.outcome, "dishonoured:returned");
    assert!(applied.movements.is_empty());
    let record = c.cheque(&id);
    assert_eq!(record.dishonour, Some(Dishonour::Returned));
    assert_eq!(record.note.as_deref(), Some("signature differs"));
    assert_eq!(c.balance(&w.alice.id, &cny()), 3_000);
    assert_eq!(c.balance(&w.bob.id, &cny()), 1_000);
}

#[test]
fn paper_cheque_is_presented_only_once_whoever_presents_it() {
    let w = cast();
    let mut c = Chain::standard();
    presented(&mut c);

    // Another bank, another image, another amount, another payee: the same paper.
    let again = paper_present(NUMBER, w.alice.id, w.carol.id, &cny(), 60);
    assert_eq!(
        c.refuse(&w.bank_a, again.clone()).code(),
        "duplicate_presentment"
    );
    assert_eq!(
        c.refuse(&w.bank_b, again.clone()).code(),
        "duplicate_presentment"
    );
    let id = paper_id(&w.alice.id, NUMBER);
    c.ok(&w.bank_a, paper_decide(id, false, "stale"));
    assert_eq!(c.refuse(&w.bank_b, again).code(), "duplicate_presentment");

    // Another number, or the same number on another drawer, is another cheque.
    c.ok(
        &w.bank_b,
        paper_present("100235", w.alice.id, w.bob.id, &cny(), 600),
    );
    c.ok(
        &w.bank_b,
        paper_present(NUMBER, w.carol.id, w.bob.id, &cny(), 100),
    );
}

#[test]
fn same_paper_twice_in_one_block_is_refused() {
    let w = cast();
    let mut c = Chain::standard();
    let body = paper_present(NUMBER, w.alice.id, w.bob.id, &cny(), 600);
    let txs = vec![c.sign(&w.bank_b, body.clone()), c.sign(&w.bank_a, body)];
    let built = c.build(txs);
    assert_eq!(built.txs.len(), 1);
    assert_eq!(built.refused_txs[0].1.code(), "duplicate_presentment");
}

#[test]
fn only_the_paying_bank_may_honour_or_return() {
    let w = cast();
    let mut c = Chain::standard();
    let id = presented(&mut c);

    // Bank B is a bank (it issues USD) and collected this cheque, but CNY is Bank A's.
    for who in [&w.bank_b, &w.regulator, &w.alice, &w.bob] {
        for honour in [true, false] {
            let e = c.refuse(who, paper_decide(id, honour, "no funds"));
            assert_eq!(e.code(), "unauthorized", "{} decided", who.name);
        }
    }
    assert_eq!(c.cheque(&id).state(), "presented");
}

#[test]
fn only_a_bank_may_present_paper() {
    let w = cast();
    let mut c = Chain::standard();
    for who in [&w.alice, &w.bob, &w.regulator, &w.operator] {
        let e = c.refuse(
            who,
            paper_present(NUMBER, w.alice.id, w.bob.id, &cny(), 600),
        );
        assert_eq!(e.code(), "unauthorized", "{} presented paper", who.name);
    }
}

#[test]
fn honoured_paper_cheque_follows_the_payment_rules() {
    let w = cast();
    let mut c = Chain::standard();
    let (single, _, _) = BASIC_CNY;

    // Carol holds 500 CNY; Alice may pay at most `single` at once; Dave is frozen.
    c.ok(&w.regulator, freeze(w.dave.id, "sanctions"));
    let cases = [
        (
            "1",
            w.carol.id,
            w.bob.id,
            800,
            "dishonoured:insufficient_funds",
        ),
        (
            "2",
            w.alice.id,
            w.bob.id,
            single + 1,
            "dishonoured:over_limit",
        ),
        ("3", w.alice.id, w.dave.id, 100, "dishonoured:frozen"),
    ];
    for (number, drawer, payee, amount, outcome) in cases {
        c.ok(
            &w.bank_b,
            paper_present(number, drawer, payee, &cny(), amount),
        );
        let applied = c.ok(&w.bank_a, paper_decide(paper_id(&drawer, number), true, ""));
        assert_eq!(applied.outcome, outcome, "cheque {number}");
        assert!(applied.movements.is_empty());
    }
    assert_eq!(c.balance(&w.alice.id, &cny()), 3_000);
    assert_eq!(c.balance(&w.carol.id, &cny()), 500);
}

#[test]
fn paper_and_digital_cheques_do_not_mix() {
    let w = cast();
    let mut c = Chain::standard();
    let paper = presented(&mut c);
    let digital = c.issue(&w.alice, &w.bob, &cny(), 100);

    assert_eq!(c.refuse(&w.bob, present(paper)).code(), "cheque_state");
    assert_eq!(
        c.refuse(&w.bank_a, paper_decide(digital, true, "")).code(),
        "cheque_state"
    );
}
