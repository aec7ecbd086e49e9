//! Wallet tiers: each limit refuses a payment with its own code and changes nothing; the daily
//! limit counts by UTC day of block time; only issuers and regulators move accounts between
//! tiers.

use crate::harness::*;

#[test]
fn payment_over_the_single_payment_limit_is_refused_and_changes_nothing() {
    let w = cast();
    let mut c = Chain::standard();
    let (single, _, _) = BASIC_CNY;

    let e = c.refuse(&w.alice, transfer(w.bob.id, &cny(), single + 1));
    assert_eq!(e.code(), "limit_single_payment");
    assert_eq!(c.balance(&w.alice.id, &cny()), 3_000);
    assert_eq!(c.balance(&w.bob.id, &cny()), 1_000);
    assert_eq!(
        c.nonce(&w.alice.id),
        0,
        "a refused transaction does not use its nonce"
    );

    // The limit itself is allowed.
    c.ok(&w.alice, transfer(w.bob.id, &cny(), single));
    assert_eq!(c.balance(&w.alice.id, &cny()), 3_000 - single);
    assert_eq!(c.balance(&w.bob.id, &cny()), 1_000 + single);
    assert_eq!(c.nonce(&w.alice.id), 1);
}

#[test]
fn daily_limit_counts_every_payment_of_the_day() {
    let w = cast();
    let mut c = Chain::standard();
    let (_, daily, _) = BASIC_CNY;

    c.ok(&w.alice, transfer(w.bob.id, &cny(), 1_000));
    c.advance(HOUR_MS);
    c.ok(&w.alice, transfer(w.carol.id, &cny(), daily - 1_000));
    c.advance(HOUR_MS);
    let e = c.refuse(&w.alice, transfer(w.dave.id, &cny(), 1));
    assert_eq!(e.code(), "limit_daily");
    assert_eq!(c.balance(&w.alice.id, &cny()), 3_000 - daily);
    assert_eq!(c.balance(&w.dave.id, &cny()), 0);
    assert_eq!(c.nonce(&w.alice.id), 2);
}

#[test]
fn daily_limit_resets_at_the_next_utc_day_of_block_time() {
    let w = cast();
    let mut c = Chain::standard();
    let (_, daily, _) = BASIC_CNY;
    let tomorrow = (c.day() + 1) * DAY_MS;

    // The last millisecond of the day.
    c.set_time(tomorrow - 1);
    c.ok(&w.alice, transfer(w.bob.id, &cny(), 1_000));
    c.ok(&w.alice, transfer(w.bob.id, &cny(), daily - 1_000));
    // More blocks at the same time do not make a new day: days are block time, not height.
    for _ in 0..3 {
        assert_eq!(
            c.refuse(&w.alice, transfer(w.bob.id, &cny(), 1)).code(),
            "limit_daily"
        );
    }

    // The first millisecond of the next day.
    c.set_time(tomorrow);
    c.ok(&w.alice, transfer(w.carol.id, &cny(), 1_000));
    assert_eq!(c.balance(&w.alice.id, &cny()), 3_000 - daily - 1_000);
    assert_eq!(c.balance(&w.carol.id, &cny()), 1_500);
}

#[test]
fn credit_over_the_balance_limit_is_refused_and_changes_nothing() {
    let w = cast();
    let mut c = Chain::standard();
    let (_, _, balance) = BASIC_CNY;
    let room = balance - 1_000;

    // Erin (verified) may pay this much; Bob (basic) may not hold it.
    let e = c.refuse(&w.erin, transfer(w.bob.id, &cny(), room + 1));
    assert_eq!(e.code(), "limit_balance");
    assert_eq!(c.balance(&w.erin.id, &cny()), 20_000);
    assert_eq!(c.balance(&w.bob.id, &cny()), 1_000);
    assert_eq!(c.nonce(&w.erin.id), 0);

    c.ok(&w.erin, transfer(w.bob.id, &cny(), room));
    assert_eq!(c.balance(&w.bob.id, &cny()), balance);
}

#[test]
fn mint_over_the_recipient_balance_limit_is_refused() {
    let w = cast();
    let mut c = Chain::standard();
    let (_, _, balance) = BASIC_CNY;
    let supply = c.asset(&cny()).supply;

    let e = c.refuse(&w.bank_a, mint(w.bob.id, &cny(), balance - 1_000 + 1));
    assert_eq!(e.code(), "limit_balance");
    assert_eq!(
        c.asset(&cny()).supply,
        supply,
        "a refused mint creates nothing"
    );

    c.ok(&w.bank_a, mint(w.bob.id, &cny(), balance - 1_000));
    assert_eq!(c.balance(&w.bob.id, &cny()), balance);
    assert_eq!(c.asset(&cny()).supply, supply + balance - 1_000);
}

#[test]
fn limits_are_counted_per_asset() {
    let w = cast();
    let mut c = Chain::standard();
    let (_, cny_daily, _) = BASIC_CNY;
    let (usd_single, usd_daily, _) = BASIC_USD;

    c.ok(&w.alice, transfer(w.bob.id, &cny(), 1_000));
    c.ok(&w.alice, transfer(w.bob.id, &cny(), cny_daily - 1_000));
    // CNY is spent for today; USD is not.
    c.ok(&w.alice, transfer(w.bob.id, &usd(), usd_single));
    let e = c.refuse(
        &w.alice,
        transfer(w.bob.id, &usd(), usd_daily - usd_single + 1),
    );
    assert_eq!(e.code(), "limit_daily");
    assert_eq!(
        c.refuse(&w.alice, transfer(w.bob.id, &cny(), 1)).code(),
        "limit_daily"
    );
    c.ok(&w.alice, transfer(w.bob.id, &usd(), usd_daily - usd_single));
}

#[test]
fn cleared_cheques_count_against_the_drawers_daily_limit() {
    let w = cast();
    let mut c = Chain::standard();
    let (_, daily, _) = BASIC_CNY;

    let cheque = c.issue(&w.alice, &w.bob, &cny(), 600);
    c.ok(&w.alice, transfer(w.carol.id, &cny(), 1_000));
    let applied = c.ok(&w.bob, present(cheque));
    assert_eq!(applied.outcome, "dishonoured:over_limit");
    assert!(applied.movements.is_empty());
    assert_eq!(c.balance(&w.alice.id, &cny()), 2_000);

    // And a cleared cheque uses up the day for transfers.
    let mut c = Chain::standard();
    let cheque = c.issue(&w.alice, &w.bob, &cny(), 1_000);
    assert_eq!(c.ok(&w.bob, present(cheque)).outcome, "ok");
    c.ok(&w.alice, transfer(w.carol.id, &cny(), daily - 1_000));
    assert_eq!(
        c.refuse(&w.alice, transfer(w.carol.id, &cny(), 1)).code(),
        "limit_daily"
    );
}

#[test]
fn issuer_or_regulator_may_move_an_account_to_another_tier() {
    let w = cast();
    let mut c = Chain::standard();

    assert_eq!(
        c.refuse(&w.alice, transfer(w.erin.id, &cny(), 2_500))
            .code(),
        "limit_single_payment"
    );
    c.ok(&w.regulator, set_tier(w.alice.id, "verified"));
    assert_eq!(c.account(&w.alice.id).tier, Some(tier("verified")));
    c.ok(&w.alice, transfer(w.erin.id, &cny(), 2_500));

    // An issuer may too, for any account (bank-b issues USD, Bob holds CNY).
    c.ok(&w.bank_b, set_tier(w.bob.id, "verified"));
    c.ok(&w.erin, transfer(w.bob.id, &cny(), 10_000));
    assert_eq!(c.balance(&w.bob.id, &cny()), 11_000);
}

#[test]
fn only_issuers_and_regulators_may_set_tiers() {
    let w = cast();
    let mut c = Chain::standard();

    for who in [&w.alice, &w.operator, &w.erin] {
        let e = c.refuse(who, set_tier(w.alice.id, "verified"));
        assert_eq!(e.code(), "unauthorized", "{} set a tier", who.name);
    }
    assert_eq!(c.account(&w.alice.id).tier, None);
}

#[test]
fn unknown_tier_is_refused() {
    let w = cast();
    let mut c = Chain::standard();

    let e = c.refuse(&w.regulator, set_tier(w.alice.id, "gold"));
    assert_eq!(e.code(), "unknown_tier");
    assert_eq!(c.account(&w.alice.id).tier, None);
}

#[test]
fn lower_tier_applies_from_the_next_payment() {
    let w = cast();
    let mut c = Chain::standard();

    c.ok(&w.regulator, set_tier(w.erin.id, "basic"));
    assert_eq!(
        c.refuse(&w.erin, transfer(w.bob.id, &cny(), 1_001)).code(),
        "limit_single_payment"
    );
    // Erin holds more than a basic wallet may: she can pay out but not be paid.
    assert_eq!(
        c.refuse(&w.bank_a, mint(w.erin.id, &cny(), 1)).code(),
        "limit_balance"
    );
    c.ok(&w.erin, transfer(w.bob.id, &cny(), 1_000));
}
