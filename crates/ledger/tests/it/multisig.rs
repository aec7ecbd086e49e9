//! Multi-signature treasuries: m of n members must approve before the account acts; the
//! approval that reaches the threshold runs the operation, and if the ledger refuses it the
//! proposal stays pending.

use crate::harness::*;
use verity_ledger::multisig::MAX_PENDING_PROPOSALS;
use verity_types::{
    AccountId, Hash, SignedTransaction, TxBody,
    receipt::{Movement, MovementKind},
    tx::{TxDecodeError, multisig_account_id},
};

/// Alice creates a treasury of Alice, Bob and Carol; returns its id.
fn treasury(c: &mut Chain, threshold: u8) -> AccountId {
    let w = cast();
    let tx = c.sign(
        &w.alice,
        multisig_create(&[&w.alice, &w.bob, &w.carol], threshold),
    );
    c.try_tx(&tx).expect("treasury created");
    multisig_account_id(&tx.id())
}

/// `who` proposes that `account` do `body`; returns the proposal id.
#[track_caller]
fn proposed(c: &mut Chain, who: &Party, account: AccountId, body: TxBody) -> Hash {
    let tx = c.sign(who, propose(account, body));
    c.try_tx(&tx).expect("proposal accepted");
    tx.id()
}

#[test]
fn two_of_three_treasury_pays_on_the_second_approval() {
    let w = cast();
    let mut c = Chain::standard();
    let t = treasury(&mut c, 2);
    let policy = c.account(&t).multisig.expect("a multi-signature account");
    assert_eq!(policy.members, vec![w.alice.id, w.bob.id, w.carol.id]);
    assert_eq!(policy.threshold, 2);
    c.ok(&w.bank_a, mint(t, &cny(), 3_000));

    let p = proposed(&mut c, &w.alice, t, transfer(w.dave.id, &cny(), 800));
    assert_eq!(c.balance(&t, &cny()), 3_000, "one approval moves nothing");
    assert_eq!(c.proposal(&t, &p).unwrap().approvals, vec![w.alice.id]);
    assert_eq!(c.account(&t).multisig.unwrap().pending, 1);

    let applied = c.ok(&w.bob, approve(t, p));
    assert_eq!(
        applied.movements,
        vec![
            Movement {
                account: t,
                asset: cny(),
                delta: -800,
                counterparty: Some(w.dave.id),
                kind: MovementKind::Transfer,
                memo: "test".into(),
                balance_after: 2_200,
            },
            Movement {
                account: w.dave.id,
                asset: cny(),
                delta: 800,
                counterparty: Some(t),
                kind: MovementKind::Transfer,
                memo: "test".into(),
                balance_after: 800,
            },
        ]
    );
    assert_eq!(c.balance(&t, &cny()), 2_200);
    assert_eq!(c.balance(&w.dave.id, &cny()), 800);
    assert!(
        c.proposal(&t, &p).is_none(),
        "an executed proposal is closed"
    );
    assert_eq!(c.account(&t).multisig.unwrap().pending, 0);

    // It cannot run twice.
    assert_eq!(c.refuse(&w.carol, approve(t, p)).code(), "unknown_proposal");
    assert_eq!(c.balance(&t, &cny()), 2_200);
}

#[test]
fn non_member_cannot_propose_approve_or_withdraw() {
    let w = cast();
    let mut c = Chain::standard();
    let t = treasury(&mut c, 2);
    c.ok(&w.bank_a, mint(t, &cny(), 3_000));

    let e = c.refuse(&w.dave, propose(t, transfer(w.dave.id, &cny(), 800)));
    assert_eq!(e.code(), "unauthorized");
    let p = proposed(&mut c, &w.alice, t, transfer(w.dave.id, &cny(), 800));
    assert_eq!(c.refuse(&w.dave, approve(t, p)).code(), "unauthorized");
    assert_eq!(c.refuse(&w.dave, withdraw(t, p)).code(), "unauthorized");
    assert_eq!(c.balance(&t, &cny()), 3_000);
}

#[test]
fn member_cannot_approve_twice() {
    let w = cast();
    let mut c = Chain::standard();
    let t = treasury(&mut c, 3);
    c.ok(&w.bank_a, mint(t, &cny(), 3_000));

    let p = proposed(&mut c, &w.alice, t, transfer(w.dave.id, &cny(), 800));
    // The proposal is the proposer's approval.
    assert_eq!(c.refuse(&w.alice, approve(t, p)).code(), "already_approved");
    c.ok(&w.bob, approve(t, p));
    assert_eq!(c.refuse(&w.bob, approve(t, p)).code(), "already_approved");
    assert_eq!(c.balance(&t, &cny()), 3_000);
    assert_eq!(
        c.proposal(&t, &p).unwrap().approvals,
        vec![w.alice.id, w.bob.id]
    );
}

#[test]
fn approval_whose_execution_is_refused_keeps_the_proposal_pending() {
    let w = cast();
    let mut c = Chain::standard();
    let t = treasury(&mut c, 2);
    c.ok(&w.regulator, set_tier(t, "verified"));
    c.ok(&w.bank_a, mint(t, &cny(), 3_000));

    let p = proposed(&mut c, &w.alice, t, transfer(w.dave.id, &cny(), 4_000));
    let e = c.refuse(&w.bob, approve(t, p));
    assert_eq!(e.code(), "insufficient_funds");
    assert_eq!(c.proposal(&t, &p).unwrap().approvals, vec![w.alice.id]);
    assert_eq!(c.account(&t).multisig.unwrap().pending, 1);
    assert_eq!(c.nonce(&w.bob.id), 0);

    // Once funded, the same approval goes through.
    c.ok(&w.bank_a, mint(t, &cny(), 2_000));
    c.ok(&w.bob, approve(t, p));
    assert_eq!(c.balance(&t, &cny()), 1_000);
    assert_eq!(c.balance(&w.dave.id, &cny()), 4_000);
}

#[test]
fn treasury_payments_obey_the_treasurys_tier() {
    let w = cast();
    let mut c = Chain::standard();
    let t = treasury(&mut c, 2);
    c.ok(&w.bank_a, mint(t, &cny(), 3_000));
    let (single, _, _) = BASIC_CNY;

    let p = proposed(&mut c, &w.alice, t, transfer(w.dave.id, &cny(), single + 1));
    assert_eq!(
        c.refuse(&w.bob, approve(t, p)).code(),
        "limit_single_payment"
    );
    assert!(c.proposal(&t, &p).is_some());
}

#[test]
fn proposer_may_withdraw_a_pending_proposal() {
    let w = cast();
    let mut c = Chain::standard();
    let t = treasury(&mut c, 2);
    c.ok(&w.bank_a, mint(t, &cny(), 3_000));

    let p = proposed(&mut c, &w.alice, t, transfer(w.dave.id, &cny(), 800));
    assert_eq!(c.refuse(&w.bob, withdraw(t, p)).code(), "unauthorized");
    c.ok(&w.alice, withdraw(t, p));
    assert!(c.proposal(&t, &p).is_none());
    assert_eq!(c.account(&t).multisig.unwrap().pending, 0);
    assert_eq!(c.refuse(&w.bob, approve(t, p)).code(), "unknown_proposal");
    assert_eq!(
        c.refuse(&w.alice, withdraw(t, p)).code(),
        "unknown_proposal"
    );
    assert_eq!(c.balance(&t, &cny()), 3_000);
}

#[test]
fn members_and_threshold_are_validated() {
    let w = cast();
    let mut c = Chain::standard();
    let three = [&w.alice, &w.bob, &w.carol];

    for (members, threshold) in [
        (&three[..], 0),
        (&three[..], 4),
        (&three[..1], 1),
        (&[&w.alice, &w.bob, &w.alice][..], 2),
    ] {
        let e = c.refuse(&w.alice, multisig_create(members, threshold));
        assert_eq!(
            e.code(),
            "invalid_multisig",
            "{} of {}",
            threshold,
            members.len()
        );
    }
    let many: Vec<Party> = (0..17)
        .map(|i| Party {
            id: AccountId([i; 20]),
            ..w.alice.clone()
        })
        .collect();
    let e = c.refuse(
        &w.alice,
        multisig_create(&many.iter().collect::<Vec<_>>(), 2),
    );
    assert_eq!(e.code(), "invalid_multisig");
}

#[test]
fn threshold_one_executes_the_proposal_at_once() {
    let w = cast();
    let mut c = Chain::standard();
    let t = treasury(&mut c, 1);
    c.ok(&w.bank_a, mint(t, &cny(), 3_000));

    let tx = c.sign(&w.carol, propose(t, transfer(w.dave.id, &cny(), 800)));
    let applied = c.try_tx(&tx).unwrap();
    assert_eq!(applied.movements.len(), 2);
    assert_eq!(c.balance(&w.dave.id, &cny()), 800);
    assert!(c.proposal(&t, &tx.id()).is_none());
    assert_eq!(c.account(&t).multisig.unwrap().pending, 0);
}

#[test]
fn proposal_to_an_ordinary_account_is_refused() {
    let w = cast();
    let mut c = Chain::standard();
    let e = c.refuse(&w.alice, propose(w.bob.id, transfer(w.dave.id, &cny(), 1)));
    assert_eq!(e.code(), "not_multisig");
}

/// Every multi-signature operation, wrapped in a proposal to `t`.
fn nested(t: AccountId) -> Vec<TxBody> {
    let w = cast();
    let some = verity_types::hash::sha256(b"no such proposal");
    vec![
        multisig_create(&[&w.alice, &w.bob], 1),
        propose(t, transfer(w.dave.id, &cny(), 1)),
        approve(t, some),
        withdraw(t, some),
    ]
    .into_iter()
    .map(|inner| propose(t, inner))
    .collect()
}

#[test]
fn proposal_carrying_a_multisig_operation_does_not_decode() {
    let mut c = Chain::standard();
    let t = treasury(&mut c, 2);
    for body in nested(t) {
        let tx: SignedTransaction = c.sign(&cast().alice, body);
        match SignedTransaction::decode_submitted(&tx.to_bytes()) {
            Err(TxDecodeError::Malformed(why)) => assert!(
                why.contains("cannot carry a multi-signature operation"),
                "refused for another reason: {why}"
            ),
            other => panic!("decoded {other:?}"),
        }
    }
    // An ordinary proposal decodes to itself.
    let tx = c.sign(
        &cast().alice,
        propose(t, transfer(cast().dave.id, &cny(), 1)),
    );
    assert_eq!(SignedTransaction::decode_submitted(&tx.to_bytes()), Ok(tx));
}

#[test]
fn proposal_carrying_a_multisig_operation_is_refused_by_the_ledger() {
    let mut c = Chain::standard();
    let t = treasury(&mut c, 2);
    // Built in memory (never decoded), as a buggy or hostile proposer might hand it over.
    for body in nested(t) {
        let e = c.refuse(&cast().alice, body);
        assert_eq!(e.code(), "invalid_multisig");
    }
    // Not even with a threshold of one, where the proposal would run at once.
    let t1 = treasury(&mut c, 1);
    for body in nested(t1) {
        let e = c.refuse(&cast().alice, body);
        assert_eq!(e.code(), "invalid_multisig");
    }
}

#[test]
fn pending_proposals_are_bounded() {
    let w = cast();
    let mut c = Chain::standard();
    let t = treasury(&mut c, 2);

    let nonce = c.nonce(&w.alice.id);
    let txs: Vec<_> = (0..u64::from(MAX_PENDING_PROPOSALS))
        .map(|i| {
            c.sign_at(
                &w.alice,
                nonce + i,
                propose(t, transfer(w.dave.id, &cny(), i + 1)),
            )
        })
        .collect();
    c.run(&txs);
    assert_eq!(
        c.account(&t).multisig.unwrap().pending,
        MAX_PENDING_PROPOSALS
    );
    let e = c.refuse(&w.bob, propose(t, transfer(w.dave.id, &cny(), 1)));
    assert_eq!(e.code(), "too_many_proposals");

    // Withdrawing one makes room again.
    c.ok(&w.alice, withdraw(t, txs[0].id()));
    c.ok(&w.bob, propose(t, transfer(w.dave.id, &cny(), 1)));
}

#[test]
fn treasury_created_by_a_bank_admin_acts_for_the_bank() {
    let w = cast();
    let mut c = Chain::standard();
    let supply = c.asset(&cny()).supply;

    let tx = c.sign(&w.bank_a, multisig_create(&[&w.alice, &w.bob], 2));
    c.try_tx(&tx).unwrap();
    let bank_treasury = multisig_account_id(&tx.id());
    let p = proposed(
        &mut c,
        &w.alice,
        bank_treasury,
        mint(w.dave.id, &cny(), 700),
    );
    c.ok(&w.bob, approve(bank_treasury, p));
    assert_eq!(c.balance(&w.dave.id, &cny()), 700);
    assert_eq!(c.asset(&cny()).supply, supply + 700);

    // One created by an ordinary account cannot mint.
    let t = treasury(&mut c, 2);
    let p = proposed(&mut c, &w.alice, t, mint(w.dave.id, &cny(), 700));
    assert_eq!(c.refuse(&w.bob, approve(t, p)).code(), "unauthorized");
}
