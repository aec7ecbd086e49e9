//! The regulator's freeze: a frozen account can neither pay nor be paid by any route (transfer,
//! mint, cheque), unfreezing restores it, and only a regulator may do either.

use crate::harness::*;
use verity_ledger::cheques::Dishonour;

#[test]
fn frozen_account_cannot_pay_or_draw_cheques() {
    let w = cast();
    let mut c = Chain::standard();

    c.ok(&w.regulator, freeze(w.alice.id, "aml review"));
    assert_eq!(c.account(&w.alice.id).frozen.as_deref(), Some("aml review"));

    let e = c.refuse(&w.alice, transfer(w.bob.id, &cny(), 10));
    assert_eq!(e.code(), "sender_frozen");
    let e = c.refuse(&w.alice, cheque_issue(w.bob.id, &cny(), 10, None, None));
    assert_eq!(e.code(), "sender_frozen");
    assert_eq!(c.balance(&w.alice.id, &cny()), 3_000);
    assert_eq!(c.balance(&w.bob.id, &cny()), 1_000);
}

#[test]
fn frozen_account_cannot_be_paid_or_minted_to() {
    let w = cast();
    let mut c = Chain::standard();
    let supply = c.asset(&cny()).supply;

    c.ok(&w.regulator, freeze(w.bob.id, "sanctions"));
    let e = c.refuse(&w.alice, transfer(w.bob.id, &cny(), 10));
    assert_eq!(e.code(), "recipient_frozen");
    let e = c.refuse(&w.bank_a, mint(w.bob.id, &cny(), 10));
    assert_eq!(e.code(), "recipient_frozen");
    assert_eq!(c.balance(&w.bob.id, &cny()), 1_000);
    assert_eq!(c.asset(&cny()).supply, supply);
}

#[test]
fn frozen_issuer_cannot_burn() {
    let w = cast();
    let mut c = Chain::standard();
    let supply = c.asset(&cny()).supply;

    c.ok(&w.regulator, freeze(w.bank_a.id, "audit"));
    let e = c.refuse(&w.bank_a, burn(&cny(), 100));
    assert_eq!(e.code(), "sender_frozen");
    assert_eq!(c.asset(&cny()).supply, supply);
}

#[test]
fn cheque_of_a_frozen_drawer_is_dishonoured_frozen() {
    let w = cast();
    let mut c = Chain::standard();

    let cheque = c.issue(&w.alice, &w.bob, &cny(), 500);
    c.ok(&w.regulator, freeze(w.alice.id, "aml review"));
    let presented = c.sign(&w.bob, present(cheque));
    let executed = c.run(&[presented]);

    // A dishonour is a committed outcome, not a refusal.
    assert_eq!(executed.receipts[0].outcome, "dishonoured:frozen");
    assert_eq!(executed.movements().count(), 0);
    let record = c.cheque(&cheque);
    assert_eq!(record.state(), "dishonoured");
    assert_eq!(record.dishonour, Some(Dishonour::Frozen));
    assert_eq!(c.nonce(&w.bob.id), 1);
    assert_eq!(c.balance(&w.alice.id, &cny()), 3_000);
    assert_eq!(c.balance(&w.bob.id, &cny()), 1_000);
}

#[test]
fn cheque_presented_by_a_frozen_holder_is_dishonoured_frozen() {
    let w = cast();
    let mut c = Chain::standard();

    let cheque = c.issue(&w.alice, &w.bob, &cny(), 500);
    c.ok(&w.regulator, freeze(w.bob.id, "sanctions"));
    let applied = c.ok(&w.bob, present(cheque));
    assert_eq!(applied.outcome, "dishonoured:frozen");
    assert!(applied.movements.is_empty());
    assert_eq!(c.balance(&w.alice.id, &cny()), 3_000);
    assert_eq!(c.balance(&w.bob.id, &cny()), 1_000);
}

#[test]
fn unfreezing_restores_payments() {
    let w = cast();
    let mut c = Chain::standard();

    c.ok(&w.regulator, freeze(w.alice.id, "aml review"));
    c.ok(&w.regulator, freeze(w.bob.id, "aml review"));
    assert_eq!(
        c.refuse(&w.alice, transfer(w.bob.id, &cny(), 10)).code(),
        "sender_frozen"
    );
    c.ok(&w.regulator, unfreeze(w.alice.id));
    c.ok(&w.regulator, unfreeze(w.bob.id));
    assert_eq!(c.account(&w.alice.id).frozen, None);

    c.ok(&w.alice, transfer(w.bob.id, &cny(), 10));
    c.ok(&w.bank_a, mint(w.bob.id, &cny(), 10));
    assert_eq!(c.balance(&w.bob.id, &cny()), 1_020);
}

#[test]
fn only_a_regulator_may_freeze_or_unfreeze() {
    let w = cast();
    let mut c = Chain::standard();

    for who in [&w.bank_a, &w.operator, &w.bob, &w.alice] {
        let e = c.refuse(who, freeze(w.alice.id, "no"));
        assert_eq!(e.code(), "unauthorized", "{} froze an account", who.name);
    }
    c.ok(&w.regulator, freeze(w.alice.id, "aml review"));
    for who in [&w.bank_a, &w.alice] {
        let e = c.refuse(who, unfreeze(w.alice.id));
        assert_eq!(e.code(), "unauthorized", "{} unfroze an account", who.name);
    }
    assert!(c.account(&w.alice.id).frozen.is_some());
}

#[test]
fn freeze_refuses_no_ops_and_needs_a_reason() {
    let w = cast();
    let mut c = Chain::standard();

    assert_eq!(
        c.refuse(&w.regulator, freeze(w.alice.id, "")).code(),
        "freeze_state"
    );
    assert_eq!(
        c.refuse(&w.regulator, unfreeze(w.alice.id)).code(),
        "freeze_state"
    );
    c.ok(&w.regulator, freeze(w.alice.id, "aml review"));
    assert_eq!(
        c.refuse(&w.regulator, freeze(w.alice.id, "again")).code(),
        "freeze_state"
    );
    assert_eq!(c.account(&w.alice.id).frozen.as_deref(), Some("aml review"));
}

/// A frozen holder may not pass a cheque (a claim on someone else's money) to an accomplice
/// who would then collect it: the freeze covers endorsement and pledge.
#[test]
fn frozen_holder_cannot_endorse_or_pledge_a_cheque_away() {
    let w = cast();
    let mut c = Chain::standard();

    let cheque = c.issue(&w.alice, &w.bob, &cny(), 900);
    c.ok(&w.regulator, freeze(w.bob.id, "sanctions"));
    assert_eq!(
        c.refuse(&w.bob, pledge(cheque, w.carol.id)).code(),
        "sender_frozen"
    );
    assert_eq!(
        c.refuse(&w.bob, endorse(cheque, w.carol.id)).code(),
        "sender_frozen"
    );
}
