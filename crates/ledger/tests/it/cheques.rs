//! Digital cheques through their whole lifecycle: issue, endorse, pledge and release, stop,
//! cancel, and presentment that either clears (value from drawer to presenter) or dishonours
//! with a reason; a wrong party is refused at every step, and no cheque clears twice.

use crate::harness::*;
use verity_ledger::{
    BlockError,
    cheques::{ChequeStatus, Dishonour},
};
use verity_types::receipt::{Movement, MovementKind};

#[test]
fn cheque_endorsed_twice_clears_from_drawer_to_last_holder() {
    let w = cast();
    let mut c = Chain::standard();

    let cheque = c.issue(&w.alice, &w.bob, &cny(), 700);
    let record = c.cheque(&cheque);
    assert_eq!(record.state(), "issued");
    assert_eq!((record.drawer, record.holder), (w.alice.id, w.bob.id));
    c.ok(&w.bob, endorse(cheque, w.carol.id));
    assert_eq!(c.cheque(&cheque).state(), "endorsed");
    c.ok(&w.carol, endorse(cheque, w.dave.id));

    let presented = c.sign(&w.dave, present(cheque));
    let executed = c.run(&[presented]);
    assert_eq!(executed.receipts[0].outcome, "ok");
    let movements: Vec<&Movement> = executed.movements().map(|(_, m)| m).collect();
    assert_eq!(
        movements,
        vec![
            &Movement {
                account: w.alice.id,
                asset: cny(),
                delta: -700,
                counterparty: Some(w.dave.id),
                kind: MovementKind::Cheque,
                memo: "invoice 7".into(),
                balance_after: 2_300,
            },
            &Movement {
                account: w.dave.id,
                asset: cny(),
                delta: 700,
                counterparty: Some(w.alice.id),
                kind: MovementKind::Cheque,
                memo: "invoice 7".into(),
                balance_after: 700,
            },
        ]
    );
    let (_, event) = &executed.cheque_events[0];
    assert_eq!(
        (event.action, event.detail.as_str()),
        ("present", "cleared")
    );

    let record = c.cheque(&cheque);
    assert_eq!(record.state(), "cleared");
    assert_eq!(record.endorsements, 2);
    assert_eq!(record.presented_by, Some(w.dave.id));
    assert_eq!(record.final_height, Some(c.height));
    // The endorsers are never paid: the value goes from the drawer to the last holder.
    assert_eq!(c.balance(&w.bob.id, &cny()), 1_000);
    assert_eq!(c.balance(&w.carol.id, &cny()), 500);
}

#[test]
fn dishonour_for_insufficient_funds_is_committed_and_final() {
    let w = cast();
    let mut c = Chain::standard();

    // Carol holds 500 and draws 800.
    let cheque = c.issue(&w.carol, &w.bob, &cny(), 800);
    let executed = c.run(&[c.sign(&w.bob, present(cheque))]);
    assert_eq!(
        executed.receipts[0].outcome,
        "dishonoured:insufficient_funds"
    );
    assert_eq!(executed.movements().count(), 0);
    assert_eq!(c.nonce(&w.bob.id), 1, "the presentment is committed");
    let record = c.cheque(&cheque);
    assert_eq!(record.status, ChequeStatus::Dishonoured);
    assert_eq!(record.dishonour, Some(Dishonour::InsufficientFunds));

    // Final: funding the drawer afterwards does not revive it.
    c.ok(&w.erin, transfer(w.carol.id, &cny(), 1_000));
    assert_eq!(c.refuse(&w.bob, present(cheque)).code(), "cheque_state");
    assert_eq!(c.balance(&w.carol.id, &cny()), 1_500);
    assert_eq!(c.balance(&w.bob.id, &cny()), 1_000);
}

#[test]
fn stopped_cheque_is_dishonoured_stopped() {
    let w = cast();
    let mut c = Chain::standard();

    let cheque = c.issue(&w.alice, &w.bob, &cny(), 500);
    c.ok(&w.alice, stop(cheque, "lost in the mail"));
    let record = c.cheque(&cheque);
    assert_eq!(record.state(), "stopped");
    assert_eq!(record.stopped.as_deref(), Some("lost in the mail"));
    assert_eq!(
        c.refuse(&w.alice, stop(cheque, "again")).code(),
        "cheque_state"
    );
    assert_eq!(
        c.refuse(&w.bob, endorse(cheque, w.carol.id)).code(),
        "cheque_state"
    );
    assert_eq!(
        c.refuse(&w.bob, pledge(cheque, w.erin.id)).code(),
        "cheque_state"
    );

    let applied = c.ok(&w.bob, present(cheque));
    assert_eq!(applied.outcome, "dishonoured:stopped");
    assert!(applied.movements.is_empty());
    assert_eq!(c.cheque(&cheque).dishonour, Some(Dishonour::Stopped));
    assert_eq!(c.balance(&w.alice.id, &cny()), 3_000);
}

#[test]
fn cheque_presented_at_its_expiry_is_dishonoured_expired() {
    let w = cast();
    let mut c = Chain::standard();
    let expires = c.time_ms + HOUR_MS;

    let late = c.issue_dated(&w.alice, &w.bob, &cny(), 500, None, Some(expires));
    let in_time = c.issue_dated(&w.alice, &w.carol, &cny(), 300, None, Some(expires));
    c.set_time(expires - 1);
    assert_eq!(c.ok(&w.carol, present(in_time)).outcome, "ok");
    c.set_time(expires);
    let applied = c.ok(&w.bob, present(late));
    assert_eq!(applied.outcome, "dishonoured:expired");
    assert_eq!(c.cheque(&late).dishonour, Some(Dishonour::Expired));
    assert_eq!(c.balance(&w.alice.id, &cny()), 2_700);
    assert_eq!(c.balance(&w.bob.id, &cny()), 1_000);
}

#[test]
fn cheque_presented_before_it_is_valid_is_dishonoured_not_yet_valid() {
    let w = cast();
    let mut c = Chain::standard();
    let from = c.time_ms + HOUR_MS;

    let early = c.issue_dated(&w.alice, &w.bob, &cny(), 500, Some(from), None);
    let on_time = c.issue_dated(&w.alice, &w.carol, &cny(), 300, Some(from), None);
    c.set_time(from - 1);
    let applied = c.ok(&w.bob, present(early));
    assert_eq!(applied.outcome, "dishonoured:not_yet_valid");
    assert_eq!(c.cheque(&early).dishonour, Some(Dishonour::NotYetValid));
    c.set_time(from);
    assert_eq!(c.ok(&w.carol, present(on_time)).outcome, "ok");
    assert_eq!(c.balance(&w.alice.id, &cny()), 2_700);
}

#[test]
fn cheque_over_the_drawers_limit_is_dishonoured_over_limit() {
    let w = cast();
    let mut c = Chain::standard();
    let (single, _, _) = BASIC_CNY;

    // Issuing does not check limits (nothing moves yet); paying does.
    let cheque = c.issue(&w.alice, &w.bob, &cny(), single + 1);
    let applied = c.ok(&w.bob, present(cheque));
    assert_eq!(applied.outcome, "dishonoured:over_limit");
    assert_eq!(c.cheque(&cheque).dishonour, Some(Dishonour::OverLimit));
    assert_eq!(c.balance(&w.alice.id, &cny()), 3_000);
}

#[test]
fn cheque_over_the_presenters_balance_limit_is_dishonoured_over_limit() {
    let w = cast();
    let mut c = Chain::standard();
    let (_, _, balance) = BASIC_CNY;

    let cheque = c.issue(&w.erin, &w.bob, &cny(), balance - 1_000 + 1);
    let applied = c.ok(&w.bob, present(cheque));
    assert_eq!(applied.outcome, "dishonoured:over_limit");
    assert_eq!(c.balance(&w.erin.id, &cny()), 20_000);
    assert_eq!(c.balance(&w.bob.id, &cny()), 1_000);
}

#[test]
fn drawer_may_cancel_a_cheque_its_payee_still_holds() {
    let w = cast();
    let mut c = Chain::standard();

    let cheque = c.issue(&w.alice, &w.bob, &cny(), 500);
    assert_eq!(c.refuse(&w.bob, cancel(cheque)).code(), "unauthorized");
    c.ok(&w.alice, cancel(cheque));
    let record = c.cheque(&cheque);
    assert_eq!(record.state(), "cancelled");
    assert!(record.is_final());
    assert_eq!(c.refuse(&w.bob, present(cheque)).code(), "cheque_state");
    assert_eq!(c.refuse(&w.alice, cancel(cheque)).code(), "cheque_state");
    assert_eq!(c.balance(&w.bob.id, &cny()), 1_000);
}

#[test]
fn endorsed_or_pledged_cheque_cannot_be_cancelled() {
    let w = cast();
    let mut c = Chain::standard();

    let endorsed = c.issue(&w.alice, &w.bob, &cny(), 500);
    c.ok(&w.bob, endorse(endorsed, w.carol.id));
    assert_eq!(c.refuse(&w.alice, cancel(endorsed)).code(), "cheque_state");
    // Back with the first payee, it has still been endorsed.
    c.ok(&w.carol, endorse(endorsed, w.bob.id));
    assert_eq!(c.refuse(&w.alice, cancel(endorsed)).code(), "cheque_state");

    let pledged = c.issue(&w.alice, &w.bob, &cny(), 500);
    c.ok(&w.bob, pledge(pledged, w.erin.id));
    assert_eq!(c.refuse(&w.alice, cancel(pledged)).code(), "cheque_state");
    c.ok(&w.erin, release(pledged));
    c.ok(&w.alice, cancel(pledged));
}

#[test]
fn pledged_cheque_is_presented_by_the_pledgee_who_gets_the_value() {
    let w = cast();
    let mut c = Chain::standard();

    let cheque = c.issue(&w.alice, &w.bob, &cny(), 600);
    c.ok(&w.bob, pledge(cheque, w.erin.id));
    assert_eq!(c.cheque(&cheque).state(), "pledged");
    assert_eq!(c.refuse(&w.bob, present(cheque)).code(), "unauthorized");
    assert_eq!(
        c.refuse(&w.bob, endorse(cheque, w.carol.id)).code(),
        "cheque_state"
    );
    assert_eq!(
        c.refuse(&w.bob, pledge(cheque, w.carol.id)).code(),
        "cheque_state"
    );

    let applied = c.ok(&w.erin, present(cheque));
    assert_eq!(applied.outcome, "ok");
    assert_eq!(applied.movements[0].counterparty, Some(w.erin.id));
    assert_eq!(c.balance(&w.erin.id, &cny()), 20_600);
    assert_eq!(c.balance(&w.alice.id, &cny()), 2_400);
    assert_eq!(c.balance(&w.bob.id, &cny()), 1_000);
}

#[test]
fn released_cheque_is_back_with_its_holder() {
    let w = cast();
    let mut c = Chain::standard();

    let cheque = c.issue(&w.alice, &w.bob, &cny(), 600);
    assert_eq!(c.refuse(&w.erin, release(cheque)).code(), "cheque_state");
    c.ok(&w.bob, pledge(cheque, w.erin.id));
    for who in [&w.bob, &w.carol, &w.alice] {
        assert_eq!(c.refuse(who, release(cheque)).code(), "unauthorized");
    }
    c.ok(&w.erin, release(cheque));
    assert_eq!(c.cheque(&cheque).state(), "issued");
    assert_eq!(c.refuse(&w.erin, present(cheque)).code(), "unauthorized");
    c.ok(&w.bob, present(cheque));
    assert_eq!(c.balance(&w.bob.id, &cny()), 1_600);
    assert_eq!(c.balance(&w.erin.id, &cny()), 20_000);
}

#[test]
fn every_step_by_a_wrong_party_is_refused_unauthorized() {
    let w = cast();
    let mut c = Chain::standard();
    let cheque = c.issue(&w.alice, &w.bob, &cny(), 600);
    let unauthorized = |c: &mut Chain, who: &Party, body, what: &str| {
        let e = c.refuse(who, body);
        assert_eq!(e.code(), "unauthorized", "{what} by {}", who.name);
    };

    // Held by its payee Bob.
    for who in [&w.alice, &w.carol] {
        unauthorized(&mut c, who, endorse(cheque, w.dave.id), "endorse");
        unauthorized(&mut c, who, pledge(cheque, w.dave.id), "pledge");
        unauthorized(&mut c, who, present(cheque), "present");
    }
    for who in [&w.bob, &w.carol] {
        unauthorized(&mut c, who, stop(cheque, "mine"), "stop");
        unauthorized(&mut c, who, cancel(cheque), "cancel");
    }

    // Endorsed to Carol: Bob has no say any more.
    c.ok(&w.bob, endorse(cheque, w.carol.id));
    unauthorized(&mut c, &w.bob, endorse(cheque, w.dave.id), "endorse");
    unauthorized(&mut c, &w.bob, pledge(cheque, w.dave.id), "pledge");
    unauthorized(&mut c, &w.bob, present(cheque), "present");

    // Pledged by Carol to Erin: only Erin releases or presents.
    c.ok(&w.carol, pledge(cheque, w.erin.id));
    for who in [&w.carol, &w.bob, &w.alice] {
        unauthorized(&mut c, who, release(cheque), "release");
        unauthorized(&mut c, who, present(cheque), "present");
    }
    unauthorized(&mut c, &w.erin, stop(cheque, "mine"), "stop");

    assert_eq!(c.cheque(&cheque).state(), "pledged");
    assert_eq!(c.balance(&w.alice.id, &cny()), 3_000);
}

#[test]
fn endorsement_to_its_holder_or_drawer_is_refused() {
    let w = cast();
    let mut c = Chain::standard();
    let cheque = c.issue(&w.alice, &w.bob, &cny(), 600);

    assert_eq!(
        c.refuse(&w.bob, endorse(cheque, w.bob.id)).code(),
        "cheque_state"
    );
    assert_eq!(
        c.refuse(&w.bob, endorse(cheque, w.alice.id)).code(),
        "cheque_state"
    );
}

#[test]
fn cleared_cheque_cannot_be_presented_or_changed_again() {
    let w = cast();
    let mut c = Chain::standard();
    let cheque = c.issue(&w.alice, &w.bob, &cny(), 600);
    c.ok(&w.bob, present(cheque));

    assert_eq!(c.refuse(&w.bob, present(cheque)).code(), "cheque_state");
    assert_eq!(
        c.refuse(&w.bob, endorse(cheque, w.carol.id)).code(),
        "cheque_state"
    );
    assert_eq!(
        c.refuse(&w.bob, pledge(cheque, w.carol.id)).code(),
        "cheque_state"
    );
    assert_eq!(
        c.refuse(&w.alice, stop(cheque, "late")).code(),
        "cheque_state"
    );
    assert_eq!(c.refuse(&w.alice, cancel(cheque)).code(), "cheque_state");
    assert_eq!(c.balance(&w.alice.id, &cny()), 2_400);
    assert_eq!(c.balance(&w.bob.id, &cny()), 1_600);
}

#[test]
fn cheque_presented_twice_in_one_block_clears_once() {
    let w = cast();
    let mut c = Chain::standard();
    let cheque = c.issue(&w.alice, &w.bob, &cny(), 600);
    let nonce = c.nonce(&w.bob.id);
    let twice = vec![
        c.sign_at(&w.bob, nonce, present(cheque)),
        c.sign_at(&w.bob, nonce + 1, present(cheque)),
    ];

    // A validator refuses the block outright...
    match c.try_run(&twice) {
        Err(BlockError::Tx {
            index: 1, error, ..
        }) => assert_eq!(error.code(), "cheque_state"),
        other => panic!("expected the second presentment refused, got {other:?}"),
    }
    assert_eq!(c.balance(&w.bob.id, &cny()), 1_000);

    // ...and a proposer leaves the second presentment out.
    let built = c.build(twice);
    assert_eq!(built.txs.len(), 1);
    assert_eq!(built.refused_txs.len(), 1);
    assert_eq!(built.refused_txs[0].1.code(), "cheque_state");
    assert_eq!(c.balance(&w.alice.id, &cny()), 2_400);
    assert_eq!(c.balance(&w.bob.id, &cny()), 1_600);
}

#[test]
fn cheque_issue_is_validated() {
    let w = cast();
    let mut c = Chain::standard();
    let now = c.time_ms;

    let cases = [
        (
            cheque_issue(w.bob.id, &cny(), 0, None, None),
            "invalid_amount",
        ),
        (
            cheque_issue(w.alice.id, &cny(), 10, None, None),
            "self_transfer",
        ),
        (
            cheque_issue(w.bob.id, &"EUR".parse().unwrap(), 10, None, None),
            "unknown_asset",
        ),
        (
            cheque_issue(
                w.bob.id,
                &cny(),
                10,
                Some(now + HOUR_MS),
                Some(now + HOUR_MS),
            ),
            "cheque_dates",
        ),
        (
            cheque_issue(w.bob.id, &cny(), 10, None, Some(now)),
            "cheque_dates",
        ),
    ];
    for (body, code) in cases {
        assert_eq!(c.refuse(&w.alice, body).code(), code);
    }
}

#[test]
fn unknown_cheque_is_refused() {
    let w = cast();
    let mut c = Chain::standard();
    let nothing = verity_types::hash::sha256(b"no such cheque");
    assert_eq!(c.refuse(&w.bob, present(nothing)).code(), "unknown_cheque");
    assert_eq!(
        c.refuse(&w.bob, endorse(nothing, w.carol.id)).code(),
        "unknown_cheque"
    );
}

/// A pledge to the drawer is refused as an endorsement to it is: the drawer, as pledgee, would
/// present its own cheque and "pay" itself.
#[test]
fn cheque_cannot_be_pledged_to_its_drawer() {
    let w = cast();
    let mut c = Chain::standard();
    let cheque = c.issue(&w.alice, &w.bob, &cny(), 600);
    assert_eq!(
        c.refuse(&w.bob, pledge(cheque, w.alice.id)).code(),
        "cheque_state"
    );
}
