//! Property tests: random sequences of transfers, mints, burns, tier changes, freezes, digital
//! and paper cheque operations and treasury proposals among a handful of accounts and two
//! assets, in blocks whose time moves across UTC days. The wallets are funded close to the
//! limits of tiers that bite, and about a quarter of the operations that need a right are made
//! by a party that may not have it.
//!
//! Each block is built the way a proposer builds one (transaction by transaction, leaving out
//! refused ones) and then executed strictly by a "validator" from the same parent state, which
//! must accept it and reach the same writes and receipts. After every transaction and block the
//! ledger's invariants are checked against an independent model:
//! - per asset, the sum of all balances equals genesis supply + minted − burned, and equals the
//!   asset record's supply;
//! - every account's history replays: each movement's `balance_after` is the running sum of its
//!   movements from the genesis balance, never negative, and ends at the committed balance;
//! - no cheque clears twice, and a cheque is cleared in state exactly when one clearing was seen;
//! - no payment is over the payer's single-payment limit, no payer pays more than its daily limit
//!   within one UTC day, no credit takes an account over its balance limit, and no frozen
//!   account pays or is paid;
//! - a treasury proposal runs at most once, and the pending count is the open proposals;
//! - a refused transaction changes nothing (not even its signer's nonce).
//!
//! `PROPTEST_CASES` and `PROPTEST_RNG_SEED` override the defaults below.

use crate::harness::*;
use futures::executor::block_on;
use proptest::{
    option,
    prelude::*,
    test_runner::{Config, RngSeed, TestCaseError, TestRunner, contextualize_config},
};
use std::{
    cell::RefCell,
    collections::{BTreeMap, BTreeSet},
};
use verity_ledger::{
    TxError, VerifyAll, accounts,
    cheques::{self, ChequeStatus},
    execute::{Applied, BlockEnv, apply_tx, execute_block},
    state::{Overlay, TierRecord},
};
use verity_types::{
    AccountId, AssetCode, Genesis, Hash, SignedTransaction, TxBody, receipt::MovementKind,
    tx::multisig_account_id,
};

/// Cases run by default: enough to reach every outcome, small enough for a debug build.
const CASES: u32 = 256;
/// The default seed, so that a run is reproducible and the coverage check below is stable.
const SEED: u64 = 0x7e51_7e51;
/// Most operations in one case.
const MAX_OPS: usize = 120;
/// Paper cheque numbers drawn from, per drawer: few, so that the same paper comes back.
const PAPER_NUMBERS: u8 = 4;

/// The accounts that sign: the two banks first, then the users; the treasury's members are
/// Alice, Bob and Carol (2, 3 and 4).
fn parties() -> [&'static Party; 7] {
    let w = cast();
    [
        &w.bank_a, &w.bank_b, &w.alice, &w.bob, &w.carol, &w.dave, &w.erin,
    ]
}

/// Number of accounts that can be paid: the parties and the treasury.
const TARGETS: usize = 8;

fn assets() -> [AssetCode; 2] {
    [cny(), usd()]
}

/// The issuer (paying bank) of `assets()[i]`; the other bank collects its paper cheques.
fn issuer(asset: usize) -> &'static Party {
    parties()[asset]
}

const TIERS: [&str; 3] = ["basic", "verified", "institution"];

/// Who signs an operation that needs a right.
#[derive(Clone, Debug)]
enum Who {
    /// The party entitled to (holder, pledgee, drawer, issuer, collecting bank).
    Rightful,
    /// `parties()[i]`, entitled or not.
    Other(usize),
}

#[derive(Clone, Debug)]
enum ChequeOp {
    Endorse(usize),
    Present,
    Stop,
    Cancel,
    Pledge(usize),
    Release,
}

#[derive(Clone, Debug)]
enum Op {
    Transfer {
        from: usize,
        /// Offset of the recipient from the payer among the targets (0: itself).
        to: usize,
        asset: usize,
        amount: u64,
    },
    Mint {
        by: Who,
        to: usize,
        asset: usize,
        amount: u64,
    },
    Burn {
        by: Who,
        asset: usize,
        amount: u64,
    },
    Issue {
        drawer: usize,
        /// Offset of the payee from the drawer among the parties (0: itself).
        payee: usize,
        asset: usize,
        amount: u64,
        /// Offset from block time, ms.
        valid_from: Option<i64>,
        /// Offset from block time, ms.
        expires: Option<u64>,
    },
    Cheque {
        /// Index into the digital cheques issued so far, from the newest (modulo their number).
        cheque: usize,
        by: Who,
        op: ChequeOp,
    },
    PaperPresent {
        by: Who,
        number: u8,
        drawer: usize,
        payee: usize,
        asset: usize,
        amount: u64,
    },
    PaperDecide {
        /// Index into the paper cheques presented so far, from the newest.
        cheque: usize,
        by: Who,
        honour: bool,
    },
    /// A member (or not) proposes that the treasury pay.
    Propose {
        by: usize,
        to: usize,
        asset: usize,
        amount: u64,
    },
    Approve {
        /// Index into the proposals made so far, from the newest.
        proposal: usize,
        by: usize,
    },
    Withdraw {
        proposal: usize,
        by: usize,
    },
    SetTier {
        account: usize,
        tier: usize,
    },
    ToggleFreeze {
        account: usize,
    },
    /// Ends the block; the next one is this much later.
    NextBlock {
        advance_ms: u64,
    },
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![3 => Just(Who::Rightful), 1 => party().prop_map(Who::Other)]
}

/// Mostly within the basic tier's limits, sometimes exactly at or just over one of them,
/// sometimes over them, now and then far over.
fn amount() -> impl Strategy<Value = u64> {
    let edges = [BASIC_CNY, BASIC_USD]
        .into_iter()
        .flat_map(|(single, daily, balance)| [single, daily, balance])
        .flat_map(|limit| [limit, limit + 1])
        .collect::<Vec<_>>();
    prop_oneof![
        6 => 1..=700u64,
        2 => proptest::sample::select(edges),
        3 => 700..=2_500u64,
        1 => 2_500..=30_000u64,
    ]
}

fn party() -> std::ops::Range<usize> {
    0..7
}

/// A treasury member mostly, anyone now and then.
fn member() -> impl Strategy<Value = usize> {
    prop_oneof![4 => 2..5usize, 1 => party()]
}

/// An offset from one account to another: seldom 0 (the same account, which the ledger
/// refuses to pay).
fn offset(n: usize) -> impl Strategy<Value = usize> {
    prop_oneof![1 => Just(0), 12 => 1..n]
}

/// Mostly one of the last few, which are more likely to be still open.
fn recent() -> impl Strategy<Value = usize> {
    prop_oneof![3 => 0..3usize, 1 => 0..64usize]
}

fn asset() -> std::ops::Range<usize> {
    0..2
}

fn cheque_op() -> impl Strategy<Value = ChequeOp> {
    prop_oneof![
        5 => party().prop_map(ChequeOp::Endorse),
        8 => Just(ChequeOp::Present),
        2 => Just(ChequeOp::Stop),
        2 => Just(ChequeOp::Cancel),
        3 => party().prop_map(ChequeOp::Pledge),
        3 => Just(ChequeOp::Release),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let hour = HOUR_MS as i64;
    prop_oneof![
        25 => (party(), offset(TARGETS), asset(), amount())
            .prop_map(|(from, to, asset, amount)| Op::Transfer { from, to, asset, amount }),
        6 => (who(), 0..TARGETS, asset(), amount())
            .prop_map(|(by, to, asset, amount)| Op::Mint { by, to, asset, amount }),
        3 => (who(), asset(), amount()).prop_map(|(by, asset, amount)| Op::Burn { by, asset, amount }),
        12 => (
            party(),
            offset(7),
            asset(),
            amount(),
            option::weighted(0.25, -2 * hour..6 * hour),
            option::weighted(0.3, 1..12 * HOUR_MS),
        )
            .prop_map(|(drawer, payee, asset, amount, valid_from, expires)| Op::Issue {
                drawer,
                payee,
                asset,
                amount,
                valid_from,
                expires,
            }),
        22 => (recent(), who(), cheque_op())
            .prop_map(|(cheque, by, op)| Op::Cheque { cheque, by, op }),
        4 => (who(), 0..PAPER_NUMBERS, party(), offset(7), asset(), amount()).prop_map(
            |(by, number, drawer, payee, asset, amount)| Op::PaperPresent {
                by,
                number,
                drawer,
                payee,
                asset,
                amount,
            }
        ),
        4 => (recent(), who(), prop::bool::weighted(0.75))
            .prop_map(|(cheque, by, honour)| Op::PaperDecide { cheque, by, honour }),
        4 => (member(), 0..TARGETS, asset(), amount())
            .prop_map(|(by, to, asset, amount)| Op::Propose { by, to, asset, amount }),
        5 => (recent(), member()).prop_map(|(proposal, by)| Op::Approve { proposal, by }),
        1 => (recent(), member()).prop_map(|(proposal, by)| Op::Withdraw { proposal, by }),
        2 => (2..7usize, prop_oneof![2 => Just(0), 1 => 0..TIERS.len()])
            .prop_map(|(account, tier)| Op::SetTier { account, tier }),
        1 => party().prop_map(|account| Op::ToggleFreeze { account }),
        8 => prop_oneof![
            1 => Just(0),
            6 => 1..=2 * HOUR_MS,
            2 => 2 * HOUR_MS..=30 * HOUR_MS,
        ]
        .prop_map(|advance_ms| Op::NextBlock { advance_ms }),
    ]
}

/// How often each outcome and refusal code was seen, over all cases.
type Seen = BTreeMap<String, usize>;

fn newest<T: Copy>(items: &[T], back: usize) -> Option<T> {
    (!items.is_empty()).then(|| items[items.len() - 1 - back % items.len()])
}

/// What the ledger should have done, kept independently of its state.
struct Model {
    treasury: AccountId,
    known: BTreeSet<AccountId>,
    genesis_supply: BTreeMap<AssetCode, u128>,
    minted: BTreeMap<AssetCode, u128>,
    burned: BTreeMap<AssetCode, u128>,
    /// Each account's balance replayed from its genesis balance through its movements.
    replayed: BTreeMap<(AccountId, AssetCode), i128>,
    /// Paid by account, asset and UTC day.
    spent: BTreeMap<(AccountId, AssetCode, u64), u64>,
    cheques: Vec<Hash>,
    papers: Vec<Hash>,
    cleared: BTreeSet<Hash>,
    proposals: Vec<Hash>,
    open: BTreeSet<Hash>,
    closed: BTreeSet<Hash>,
}

impl Model {
    fn new(genesis: &Genesis, treasury: AccountId) -> Self {
        let mut known: BTreeSet<AccountId> = parties().iter().map(|p| p.id).collect();
        known.insert(cast().regulator.id);
        known.insert(treasury);
        let mut genesis_supply = BTreeMap::new();
        let mut replayed = BTreeMap::new();
        for acct in &genesis.accounts {
            for (code, amount) in &acct.balances {
                *genesis_supply.entry(code.clone()).or_default() += u128::from(amount.0);
                replayed.insert((acct.account, code.clone()), i128::from(amount.0));
            }
        }
        Self {
            treasury,
            known,
            genesis_supply,
            minted: BTreeMap::new(),
            burned: BTreeMap::new(),
            replayed,
            spent: BTreeMap::new(),
            cheques: Vec::new(),
            papers: Vec::new(),
            cleared: BTreeSet::new(),
            proposals: Vec::new(),
            open: BTreeSet::new(),
            closed: BTreeSet::new(),
        }
    }

    /// `i`th account that can be paid: a party, or the treasury.
    fn target(&self, i: usize) -> AccountId {
        parties().get(i).map_or(self.treasury, |p| p.id)
    }

    /// The signer and body of `op` against the block's state so far; none if there is nothing
    /// to act on yet.
    fn body(
        &self,
        op: &Op,
        state: &Overlay<'_, MapReader>,
        env: &BlockEnv,
    ) -> Option<(&'static Party, TxBody)> {
        let p = parties();
        let a = assets();
        let pick = |by: &Who, rightful: &'static Party| match by {
            Who::Rightful => rightful,
            Who::Other(i) => p[*i],
        };
        let party_of = |id: AccountId| *p.iter().find(|q| q.id == id).unwrap();
        let asset_index = |code: &AssetCode| a.iter().position(|c| c == code).unwrap();
        Some(match op {
            Op::Transfer {
                from,
                to,
                asset,
                amount,
            } => (
                p[*from],
                transfer(self.target((from + to) % TARGETS), &a[*asset], *amount),
            ),
            Op::Mint {
                by,
                to,
                asset,
                amount,
            } => (
                pick(by, issuer(*asset)),
                mint(self.target(*to), &a[*asset], *amount),
            ),
            Op::Burn { by, asset, amount } => (pick(by, issuer(*asset)), burn(&a[*asset], *amount)),
            Op::Issue {
                drawer,
                payee,
                asset,
                amount,
                valid_from,
                expires,
            } => {
                let now = env.timestamp_ms;
                let body = cheque_issue(
                    p[(drawer + payee) % p.len()].id,
                    &a[*asset],
                    *amount,
                    valid_from.map(|o| now.saturating_add_signed(o)),
                    expires.map(|o| now + o),
                );
                (p[*drawer], body)
            }
            Op::Cheque { cheque, by, op } => {
                let id = newest(&self.cheques, *cheque)?;
                let c = block_on(cheques::load(state, &id)).unwrap().unwrap();
                let drawer = party_of(c.drawer);
                let presenter = party_of(c.pledgee.unwrap_or(c.holder));
                let holder = party_of(c.holder);
                match op {
                    ChequeOp::Endorse(to) => (pick(by, holder), endorse(id, p[*to].id)),
                    ChequeOp::Present => (pick(by, presenter), present(id)),
                    ChequeOp::Stop => (pick(by, drawer), stop(id, "proptest")),
                    ChequeOp::Cancel => (pick(by, drawer), cancel(id)),
                    ChequeOp::Pledge(to) => (pick(by, holder), pledge(id, p[*to].id)),
                    ChequeOp::Release => (pick(by, presenter), release(id)),
                }
            }
            Op::PaperPresent {
                by,
                number,
                drawer,
                payee,
                asset,
                amount,
            } => (
                pick(by, issuer(1 - asset)),
                paper_present(
                    &format!("P-{number}"),
                    p[*drawer].id,
                    p[(drawer + payee) % p.len()].id,
                    &a[*asset],
                    *amount,
                ),
            ),
            Op::PaperDecide { cheque, by, honour } => {
                let id = newest(&self.papers, *cheque)?;
                let c = block_on(cheques::load(state, &id)).unwrap().unwrap();
                let paying = issuer(asset_index(&c.asset));
                (pick(by, paying), paper_decide(id, *honour, "proptest"))
            }
            Op::Propose {
                by,
                to,
                asset,
                amount,
            } => (
                p[*by],
                propose(
                    self.treasury,
                    transfer(self.target(*to), &a[*asset], *amount),
                ),
            ),
            Op::Approve { proposal, by } => (
                p[*by],
                approve(self.treasury, newest(&self.proposals, *proposal)?),
            ),
            Op::Withdraw { proposal, by } => (
                p[*by],
                withdraw(self.treasury, newest(&self.proposals, *proposal)?),
            ),
            Op::SetTier { account, tier } => {
                (&cast().regulator, set_tier(p[*account].id, TIERS[*tier]))
            }
            Op::ToggleFreeze { account } => {
                let id = p[*account].id;
                let frozen = block_on(accounts::load(state, &id)).unwrap().frozen;
                let body = match frozen {
                    Some(_) => unfreeze(id),
                    None => freeze(id, "proptest"),
                };
                (&cast().regulator, body)
            }
            Op::NextBlock { .. } => return None,
        })
    }

    /// Checks what one accepted transaction did, with the state it left.
    fn check_applied(
        &mut self,
        state: &Overlay<'_, MapReader>,
        tx: &SignedTransaction,
        applied: &Applied,
        day: u64,
    ) -> Result<(), TestCaseError> {
        let mut cheque_debits = 0;
        for m in &applied.movements {
            prop_assert!(
                self.known.contains(&m.account),
                "movement of an unknown account {}",
                m.account
            );
            let running = self
                .replayed
                .entry((m.account, m.asset.clone()))
                .or_default();
            *running += m.delta;
            prop_assert!(*running >= 0, "{} went below zero", m.account);
            prop_assert_eq!(
                i128::from(m.balance_after),
                *running,
                "balance_after of {} does not replay",
                m.account
            );

            let record = block_on(accounts::load(state, &m.account)).unwrap();
            let tier: Option<TierRecord> = block_on(accounts::tier_of(state, &record)).unwrap();
            let limits = tier
                .and_then(|t| t.limits.get(&m.asset).copied())
                .unwrap_or_default();
            let amount = m.delta.unsigned_abs() as u64;
            match m.kind {
                MovementKind::Mint => {
                    prop_assert!(m.delta > 0);
                    *self.minted.entry(m.asset.clone()).or_default() += u128::from(amount);
                }
                MovementKind::Burn => {
                    prop_assert!(m.delta < 0);
                    *self.burned.entry(m.asset.clone()).or_default() += u128::from(amount);
                }
                MovementKind::Transfer | MovementKind::Cheque if m.delta < 0 => {
                    prop_assert!(record.frozen.is_none(), "frozen {} paid", m.account);
                    if let Some(limit) = limits.single_payment {
                        prop_assert!(amount <= limit.0, "{} paid {amount} at once", m.account);
                    }
                    let spent = self
                        .spent
                        .entry((m.account, m.asset.clone(), day))
                        .or_default();
                    *spent += amount;
                    if let Some(limit) = limits.daily {
                        prop_assert!(*spent <= limit.0, "{} paid {spent} in a day", m.account);
                    }
                    if m.kind == MovementKind::Cheque {
                        cheque_debits += 1;
                    }
                }
                _ => {}
            }
            if m.delta > 0 {
                prop_assert!(record.frozen.is_none(), "frozen {} was paid", m.account);
                if let Some(limit) = limits.balance {
                    prop_assert!(
                        m.balance_after <= limit.0,
                        "{} holds {} over its limit",
                        m.account,
                        m.balance_after
                    );
                }
            }
        }

        let mut cleared = false;
        if let Some(ev) = &applied.cheque {
            match ev.action {
                "issue" => self.cheques.push(ev.cheque),
                "paper_present" => self.papers.push(ev.cheque),
                _ => {}
            }
            if let Some(reason) = applied.outcome.strip_prefix("dishonoured:") {
                prop_assert!(
                    cheques::DISHONOUR_CODES.contains(&reason),
                    "unknown dishonour {}",
                    reason
                );
                prop_assert!(ev.detail.starts_with(&applied.outcome));
                prop_assert!(applied.movements.is_empty());
            }
            cleared = ev.detail == "cleared";
        }
        if cleared {
            let id = applied.cheque.as_ref().unwrap().cheque;
            prop_assert!(self.cleared.insert(id), "cheque {} cleared twice", id);
            prop_assert_eq!(applied.outcome.as_str(), "ok");
            prop_assert_eq!(cheque_debits, 1, "one clearing, one payment");
        } else {
            prop_assert_eq!(cheque_debits, 0, "cheque money moved without a clearing");
            prop_assert!(
                applied.outcome == "ok" || applied.outcome.starts_with("dishonoured:"),
                "outcome {}",
                applied.outcome
            );
        }

        match &tx.tx.body {
            TxBody::MultisigPropose { .. } => {
                prop_assert!(applied.movements.is_empty(), "one approval of two paid");
                self.proposals.push(tx.id());
                self.open.insert(tx.id());
            }
            TxBody::MultisigApprove { proposal, .. } => {
                // Two of three: the first approval after the proposer's executes it.
                prop_assert!(self.open.remove(proposal), "approved a closed proposal");
                prop_assert!(
                    self.closed.insert(*proposal),
                    "proposal {} ran twice",
                    proposal
                );
                prop_assert_eq!(applied.movements.len(), 2, "the approved payment");
                prop_assert_eq!(applied.movements[0].account, self.treasury);
            }
            TxBody::MultisigCancel { proposal, .. } => {
                prop_assert!(self.open.remove(proposal), "withdrew a closed proposal");
                self.closed.insert(*proposal);
            }
            _ => {}
        }
        Ok(())
    }

    /// Checks the committed state against the model.
    fn check_state(&self, chain: &Chain) -> Result<(), TestCaseError> {
        for code in assets() {
            let mut sum = 0u128;
            for id in &self.known {
                let balance = chain.balance(id, &code);
                let replayed = self
                    .replayed
                    .get(&(*id, code.clone()))
                    .copied()
                    .unwrap_or(0);
                prop_assert_eq!(
                    i128::from(balance),
                    replayed,
                    "{}'s {} history does not replay to its balance",
                    id,
                    code
                );
                sum += u128::from(balance);
            }
            let get = |m: &BTreeMap<AssetCode, u128>| m.get(&code).copied().unwrap_or(0);
            let expected = get(&self.genesis_supply) + get(&self.minted) - get(&self.burned);
            prop_assert_eq!(
                sum,
                expected,
                "{} balances against genesis + minted - burned",
                code
            );
            prop_assert_eq!(
                sum,
                u128::from(chain.asset(&code).supply),
                "{} balances against the recorded supply",
                code
            );
        }
        for id in self.cheques.iter().chain(&self.papers) {
            let cleared = chain.cheque(id).status == ChequeStatus::Cleared;
            prop_assert_eq!(cleared, self.cleared.contains(id), "cheque {}", id);
        }
        let policy = chain.account(&self.treasury).multisig.unwrap();
        prop_assert_eq!(usize::from(policy.pending), self.open.len());
        for id in &self.proposals {
            let pending = chain.proposal(&self.treasury, id).is_some();
            prop_assert_eq!(pending, self.open.contains(id), "proposal {}", id);
        }
        Ok(())
    }
}

/// Builds one block from `ops` as a proposer, has a validator re-execute it, checks and commits.
fn run_block(
    chain: &mut Chain,
    model: &mut Model,
    ops: &[&Op],
    seen: &mut Seen,
) -> Result<(), TestCaseError> {
    let env = chain.env();
    let day = env.timestamp_ms / DAY_MS;
    let mut overlay = Overlay::new(&chain.state);
    let mut included = Vec::new();
    let mut applied_all = Vec::new();
    for op in ops {
        let Some((signer, body)) = model.body(op, &overlay, &env) else {
            continue;
        };
        let kind = body.kind();
        let nonce = block_on(accounts::load(&overlay, &signer.id))
            .unwrap()
            .nonce;
        let tx = chain.sign_at(signer, nonce, body);
        match block_on(apply_tx(&mut overlay, &env, &tx, &VerifyAll)) {
            Ok(applied) => {
                model.check_applied(&overlay, &tx, &applied, day)?;
                *seen
                    .entry(format!("{kind}:{}", applied.outcome))
                    .or_default() += 1;
                included.push(tx);
                applied_all.push(applied);
            }
            Err(e) => {
                prop_assert!(!matches!(e, TxError::State(_)), "storage failure: {}", e);
                let after = block_on(accounts::load(&overlay, &signer.id))
                    .unwrap()
                    .nonce;
                prop_assert_eq!(after, nonce, "a refused {} used its nonce", kind);
                *seen.entry(format!("refused:{}", e.code())).or_default() += 1;
            }
        }
    }
    let writes = overlay.into_writes();

    let mut replay = Overlay::new(&chain.state);
    let executed = block_on(execute_block(&mut replay, &env, &included, &[], checks()))
        .map_err(|e| TestCaseError::fail(format!("validator refused the built block: {e}")))?;
    prop_assert!(
        replay.into_writes() == writes,
        "validator reached other state than the proposer (a refused transaction left writes?)"
    );
    prop_assert_eq!(executed.receipts.len(), applied_all.len());
    for (receipt, applied) in executed.receipts.iter().zip(&applied_all) {
        prop_assert_eq!(&receipt.outcome, &applied.outcome);
        prop_assert_eq!(&receipt.movements, &applied.movements);
    }
    chain.commit(writes);
    model.check_state(chain)
}

/// The standard genesis with the users funded close to their basic limits, so that limits
/// rather than empty wallets stop most payments.
fn genesis() -> Genesis {
    let w = cast();
    let (_, _, cny_max) = BASIC_CNY;
    let (_, _, usd_max) = BASIC_USD;
    [&w.alice, &w.bob, &w.carol, &w.dave]
        .into_iter()
        .fold(GenesisBuilder::standard(), |g, who| {
            g.balance(who, &cny(), cny_max - 1_000)
                .balance(who, &usd(), usd_max - 500)
        })
        .build()
}

fn run_case(genesis: &Genesis, ops: &[Op], seen: &mut Seen) -> Result<(), TestCaseError> {
    let w = cast();
    let mut chain = Chain::new(genesis);
    let create = chain.sign(&w.alice, multisig_create(&[&w.alice, &w.bob, &w.carol], 2));
    chain.run(std::slice::from_ref(&create));
    let mut model = Model::new(genesis, multisig_account_id(&create.id()));
    model.check_state(&chain)?;

    let mut block = Vec::new();
    for op in ops {
        if let Op::NextBlock { advance_ms } = op {
            run_block(&mut chain, &mut model, &block, seen)?;
            block.clear();
            chain.advance(*advance_ms);
        } else {
            block.push(op);
        }
    }
    run_block(&mut chain, &mut model, &block, seen)
}

#[test]
fn random_payments_cheques_and_proposals_keep_the_ledger_invariants() {
    let config = contextualize_config(Config {
        cases: CASES,
        rng_seed: RngSeed::Fixed(SEED),
        failure_persistence: None,
        ..Config::default()
    });
    let genesis = genesis();
    let seen = RefCell::new(Seen::new());
    let mut runner = TestRunner::new(config);
    let result = runner.run(&proptest::collection::vec(op(), 1..MAX_OPS), |ops| {
        run_case(&genesis, &ops, &mut seen.borrow_mut())
    });
    if let Err(e) = result {
        panic!("{e}");
    }

    // The run must have reached what the invariants are about, or it proved little.
    let seen = seen.into_inner();
    eprintln!("outcomes and refusals seen: {seen:#?}");
    let expected = [
        "transfer:ok",
        "mint:ok",
        "burn:ok",
        "cheque_present:ok",
        "cheque_present:dishonoured:insufficient_funds",
        "cheque_present:dishonoured:stopped",
        "cheque_present:dishonoured:over_limit",
        "cheque_present:dishonoured:expired",
        "cheque_present:dishonoured:not_yet_valid",
        "cheque_present:dishonoured:frozen",
        "cheque_endorse:ok",
        "cheque_pledge:ok",
        "cheque_release:ok",
        "cheque_cancel:ok",
        "paper_present:ok",
        "paper_decide:ok",
        "paper_decide:dishonoured:returned",
        "multisig_propose:ok",
        "multisig_approve:ok",
        "multisig_cancel:ok",
        "refused:limit_single_payment",
        "refused:limit_daily",
        "refused:limit_balance",
        "refused:insufficient_funds",
        "refused:sender_frozen",
        "refused:recipient_frozen",
        "refused:unauthorized",
        "refused:cheque_state",
        "refused:duplicate_presentment",
        "refused:already_approved",
    ];
    let missing: Vec<_> = expected
        .iter()
        .filter(|k| !seen.contains_key(**k))
        .collect();
    assert!(missing.is_empty(), "never reached: {missing:?}");
}
