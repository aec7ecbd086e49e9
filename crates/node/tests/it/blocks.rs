//! A Byzantine proposer's blocks get no vote. Two validators run the real chain (ledger, QMDB
//! state, block execution) on commonware's deterministic runtime: the proposer builds blocks
//! through the same code an honest one uses, but with a poisoned pool or signature cache, or
//! its block is changed by hand afterwards; the other validator verifies each block through the
//! consensus application, as it would a proposal from the network, and must refuse it without
//! changing its committed state. Blocks whose timestamp is ahead of the verifier's clock are
//! left undecided until the clock catches up, never refused nor accepted early.
//!
//! Also here: the two ledger codes that no request can cause on the testnet genesis:
//! `too_many_assets` (through the node's submission path, on a genesis with 65 assets) and
//! `state_unavailable` (a storage fault, at the ledger's state interface).

use commonware_codec::{Decode as _, Encode as _};
use commonware_consensus::{
    Application as _,
    marshal::ancestry::Ancestry,
    simplex::types::Context,
    types::{Epoch, Round, View},
};
use commonware_cryptography::{Digested, Signer as _, ed25519};
use commonware_runtime::{Clock as _, Runner as _, Spawner as _, Supervisor as _, deterministic};
use futures::{Stream, future::Either};
use std::{
    collections::{BTreeMap, VecDeque},
    pin::Pin,
    sync::Arc,
    task::Poll,
    time::{Duration, UNIX_EPOCH},
};
use verity_node::{
    chain::{App, Chain, ChainLimits},
    pool::Pool,
    readings::ReadingPool,
};
use verity_types::{
    AccountId, Algorithm, Amount, AssetCode, Block, DeviceId, Genesis, Hash, Memo, Nonce, Reading,
    RejectCode, SecretKey, Signature, SignedTransaction, Transaction, TxBody,
    block::BlockLimits,
    genesis::{GenesisAccount, GenesisAsset, GenesisOrganization, GenesisValidator, Role},
    reading::{
        SenmlValue,
        sign::{NewRecord, sign_reading},
    },
};

type Ctx = deterministic::Context;

/// What the verifying validator accepts; the Byzantine proposer builds under looser limits.
const VERIFIER_LIMITS: ChainLimits = ChainLimits {
    max_block_txs: 4,
    max_block_readings: 8,
    max_block_verify_cost: 32,
    max_block_bytes: 64 * 1024,
    max_clock_skew_ms: 5_000,
    max_nonce_ahead: 64,
};
const PROPOSER_LIMITS: ChainLimits = ChainLimits {
    max_block_txs: 100,
    max_block_readings: 100,
    max_block_verify_cost: 400,
    max_block_bytes: 1 << 20,
    max_clock_skew_ms: 5_000,
    max_nonce_ahead: 64,
};

fn block_limits(l: &ChainLimits) -> BlockLimits {
    BlockLimits {
        max_txs: l.max_block_txs,
        max_readings: l.max_block_readings,
        max_bytes: l.max_block_bytes,
        known: None,
    }
}

fn account_key(seed: u8) -> SecretKey {
    SecretKey::from_bytes(Algorithm::Ed25519, &[seed; 32]).unwrap()
}

fn issuer() -> SecretKey {
    account_key(1)
}

fn operator() -> SecretKey {
    account_key(2)
}

fn device_key() -> SecretKey {
    account_key(3)
}

fn device() -> DeviceId {
    "meter-1".parse().unwrap()
}

fn cny() -> AssetCode {
    "CNY".parse().unwrap()
}

/// Two validators, a bank that issues CNY and an operator that runs devices. `extra_assets`
/// more assets, all held by `holder` (to reach the per-account asset limit).
fn genesis(validators: &[ed25519::PublicKey], extra_assets: usize, holder: AccountId) -> Genesis {
    let org = |id: &str, roles: &[Role]| GenesisOrganization {
        id: id.parse().unwrap(),
        name: id.into(),
        roles: roles.iter().copied().collect(),
    };
    let asset = |code: &str| GenesisAsset {
        code: code.parse().unwrap(),
        decimals: 2,
        issuer: "bank".parse().unwrap(),
        name: code.into(),
    };
    let extra: Vec<String> = (0..extra_assets).map(|i| format!("X{i:02}")).collect();
    let mut assets = vec![asset("CNY")];
    assets.extend(extra.iter().map(|c| asset(c)));
    let mut accounts = vec![
        GenesisAccount {
            account: issuer().public_key().account_id(),
            organization: Some("bank".parse().unwrap()),
            admin: true,
            balances: [(cny(), Amount(1_000_000))].into_iter().collect(),
            tier: None,
        },
        GenesisAccount {
            account: operator().public_key().account_id(),
            organization: Some("ops".parse().unwrap()),
            admin: true,
            balances: BTreeMap::new(),
            tier: None,
        },
    ];
    if extra_assets > 0 {
        accounts.push(GenesisAccount {
            account: holder,
            organization: None,
            admin: false,
            balances: extra
                .iter()
                .map(|c| (c.parse().unwrap(), Amount(1)))
                .collect(),
            tier: None,
        });
    }
    Genesis {
        chain_name: "blocks".into(),
        genesis_time_ms: 0,
        validators: validators
            .iter()
            .enumerate()
            .map(|(i, v)| GenesisValidator {
                name: format!("v{i}"),
                public_key: hex::encode(v.as_ref()),
                organization: "bank".parse().unwrap(),
            })
            .collect(),
        organizations: vec![
            org("bank", &[Role::Validator, Role::Issuer]),
            org("ops", &[Role::Operator]),
        ],
        assets,
        accounts,
        tiers: Vec::new(),
        default_tier: None,
    }
}

/// One validator: its chain and its consensus application.
struct Validator {
    chain: Arc<Chain<Ctx>>,
    app: App<Ctx>,
    key: ed25519::PublicKey,
}

async fn validator(
    ctx: &Ctx,
    name: &'static str,
    signer: &ed25519::PrivateKey,
    genesis: &Genesis,
    limits: ChainLimits,
) -> Validator {
    paced_validator(ctx, name, signer, genesis, limits, Duration::ZERO).await
}

/// A validator whose empty blocks are paced `idle` apart while the chain is idle.
async fn paced_validator(
    ctx: &Ctx,
    name: &'static str,
    signer: &ed25519::PrivateKey,
    genesis: &Genesis,
    limits: ChainLimits,
    idle: Duration,
) -> Validator {
    let mut chain = open_chain(ctx, name, genesis, limits, 64).await;
    chain.set_idle_block_interval(idle);
    validator_of(chain, signer)
}

/// Validator `name`'s chain, not shared yet so that a test can set it up; its reading pool
/// holds at most `per_device` readings of one device.
async fn open_chain(
    ctx: &Ctx,
    name: &'static str,
    genesis: &Genesis,
    limits: ChainLimits,
    per_device: usize,
) -> Chain<Ctx> {
    Chain::open(
        ctx.child(name),
        name,
        genesis.clone(),
        verity_node::runner::validator_keys(genesis).unwrap(),
        None,
        limits,
        (Pool::new(1_000, 64), ReadingPool::new(1_000, per_device)),
    )
    .await
    .expect("state opens")
}

/// The validator of `signer` over `chain`.
fn validator_of(chain: Chain<Ctx>, signer: &ed25519::PrivateKey) -> Validator {
    let chain = Arc::new(chain);
    Validator {
        app: App::new(chain.clone(), signer.public_key()),
        chain,
        key: signer.public_key(),
    }
}

/// A fixed chain of blocks, newest first, as consensus hands them to the application. Unlike
/// commonware's own fixed ancestry it does not insist that they link up, so that a block that
/// names the wrong parent can be offered.
#[derive(Clone)]
struct Blocks(VecDeque<Digested<Block>>);

impl Blocks {
    fn of(blocks: &[&Block]) -> Self {
        Self(
            blocks
                .iter()
                .map(|b| Digested::precomputed((*b).clone(), b.hash()))
                .collect(),
        )
    }
}

impl Stream for Blocks {
    type Item = Digested<Block>;
    fn poll_next(
        mut self: Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> Poll<Option<Self::Item>> {
        Poll::Ready(self.0.pop_front())
    }
}

impl Ancestry<Block> for Blocks {
    fn peek(&self) -> Option<&Digested<Block>> {
        self.0.front()
    }
}

fn round(
    view: u64,
    leader: &ed25519::PublicKey,
    parent: &Block,
) -> Context<Hash, ed25519::PublicKey> {
    Context {
        round: Round::new(Epoch::zero(), View::new(view)),
        leader: leader.clone(),
        parent: (View::new(view - 1), parent.hash()),
    }
}

async fn propose(rt: &Ctx, v: &mut Validator, view: u64, parent: &Block) -> Block {
    propose_on(rt, v.app.clone(), &v.key, view, &[parent]).await
}

/// The block `leader`'s application proposes on `ancestry` (the parent first).
async fn propose_on(
    rt: &Ctx,
    mut app: App<Ctx>,
    leader: &ed25519::PublicKey,
    view: u64,
    ancestry: &[&Block],
) -> Block {
    let ctx = round(view, leader, ancestry[0]);
    app.propose((rt.child("propose"), ctx), Blocks::of(ancestry), ())
        .await
        .expect("a block is built")
        .inner()
        .clone()
}

/// The verifier's vote on `block` (on top of `parent`) in a round led by `leader`.
async fn vote(
    rt: &Ctx,
    v: &mut Validator,
    view: u64,
    leader: &ed25519::PublicKey,
    block: &Block,
    parent: &Block,
) -> bool {
    let ctx = round(view, leader, parent);
    v.app
        .verify((rt.child("verify"), ctx), Blocks::of(&[block, parent]))
        .await
}

/// `block` as a validator receives it: encoded, sent, decoded under its limits.
fn over_the_wire(block: &Block, limits: &ChainLimits) -> Result<Block, commonware_codec::Error> {
    Block::decode_cfg(block.encode(), &block_limits(limits))
}

/// `block` with its header changed by `f` and its transactions and readings replaced; the
/// transactions and readings roots match the new content, so it decodes.
fn altered(
    block: &Block,
    txs: Vec<SignedTransaction>,
    readings: Vec<Arc<Reading>>,
    f: impl FnOnce(&mut verity_types::Header),
) -> Block {
    let mut header = block.header.clone();
    header.txs_root = Block::txs_root_of(&txs);
    header.readings_root = Block::readings_root_of(&readings);
    f(&mut header);
    Block::new(header, txs, readings)
}

/// The operator's registration of the device, its first transaction.
fn register_device(chain_id: &Hash) -> SignedTransaction {
    Transaction {
        signer: operator().public_key(),
        nonce: Nonce(0),
        body: TxBody::DeviceRegister {
            device: device(),
            key: device_key().public_key(),
            meta: Default::default(),
        },
    }
    .sign(&operator(), chain_id)
}

fn transfer(chain_id: &Hash, nonce: u64, to: u8, amount: u64) -> SignedTransaction {
    Transaction {
        signer: issuer().public_key(),
        nonce: Nonce(nonce),
        body: TxBody::Transfer {
            to: account_key(to).public_key().account_id(),
            asset: cny(),
            amount: Amount(amount),
            memo: Memo::default(),
        },
    }
    .sign(&issuer(), chain_id)
}

/// A reading of the registered device signed by `key`, with `records` records of `text_bytes`
/// characters each (large ones make a large block).
fn reading(key: &SecretKey, seq: u64, records: usize, text_bytes: usize) -> Reading {
    let records: Vec<NewRecord> = (0..records)
        .map(|i| NewRecord {
            name: format!("r{i}"),
            time: 1_700_000_000.0,
            unit: None,
            value: if text_bytes == 0 {
                SenmlValue::Number(seq as f64)
            } else {
                SenmlValue::String("x".repeat(text_bytes))
            },
        })
        .collect();
    Reading::decode(&sign_reading(key, &device(), seq, &records)).expect("a well-formed reading")
}

async fn committed_root(v: &Validator) -> (u64, Hash) {
    let c = v.chain.committed().await;
    (c.height, c.root)
}

fn now_ms(rt: &Ctx) -> u64 {
    rt.current().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

#[test]
fn byzantine_blocks_get_no_vote_and_change_nothing() {
    let runner = deterministic::Runner::new(
        deterministic::Config::default()
            .with_seed(5)
            .with_timeout(Some(Duration::from_secs(600))),
    );
    runner.start(|rt| async move {
        let signers = [
            ed25519::PrivateKey::from_seed(11),
            ed25519::PrivateKey::from_seed(12),
        ];
        let keys: Vec<_> = signers.iter().map(|s| s.public_key()).collect();
        let genesis = genesis(&keys, 0, AccountId([0; 20]));
        let mut byz = validator(&rt, "byz", &signers[0], &genesis, PROPOSER_LIMITS).await;
        let mut honest = validator(&rt, "honest", &signers[1], &genesis, VERIFIER_LIMITS).await;
        let chain_id = byz.chain.chain_id;
        let genesis_block = byz.chain.genesis_block.clone();

        // Height 1, honest: a device registration and a transfer. The verifier votes for it,
        // also after it went over the wire, and both finalize it.
        let register = register_device(&chain_id);
        byz.chain.submit(&register).await.unwrap();
        byz.chain
            .submit(&transfer(&chain_id, 0, 9, 100))
            .await
            .unwrap();
        let b1 = propose(&rt, &mut byz, 1, &genesis_block).await;
        assert_eq!(b1.txs.len(), 2);
        assert_eq!(over_the_wire(&b1, &VERIFIER_LIMITS).unwrap(), b1);
        assert!(vote(&rt, &mut honest, 1, &byz.key, &b1, &genesis_block).await);
        for v in [&byz, &honest] {
            v.chain.finalize(&b1, now_ms(&rt)).await.unwrap();
        }
        let settled = committed_root(&honest).await;
        assert_eq!(settled.0, 1);
        let leader = byz.key.clone();
        let mut view = 2;
        let mut next_view = || {
            view += 1;
            view
        };

        // An honest block 2 with a transfer and a reading: the positive control for the
        // changes below.
        let good_tx = transfer(&chain_id, 1, 9, 5);
        byz.chain.submit(&good_tx).await.unwrap();
        let good_reading = Arc::new(reading(&device_key(), 1, 1, 0));
        byz.chain
            .admit_reading(good_reading.clone(), device_key().public_key(), 0, true)
            .unwrap();
        let honest_b2 = propose(&rt, &mut byz, next_view(), &b1).await;
        assert_eq!((honest_b2.txs.len(), honest_b2.readings.len()), (1, 1));
        assert!(vote(&rt, &mut honest, next_view(), &leader, &honest_b2, &b1).await);
        // Take them out of the proposer's pools so that the next blocks hold only what each
        // case puts there.
        byz.chain
            .pool
            .lock()
            .unwrap()
            .refuse(&good_tx.id(), "test", String::new());
        byz.chain
            .readings
            .lock()
            .unwrap()
            .refuse(&good_reading.id(), RejectCode::Replay);

        let mut refusals: Vec<(&str, Block)> = Vec::new();

        // A transaction with a forged signature, let into the proposer's pool unchecked: the
        // proposer builds a block whose roots all match its (wrong) execution.
        let mut forged = transfer(&chain_id, 1, 8, 50_000);
        let mut sig = forged.signature.0;
        sig[5] ^= 0x40;
        forged = SignedTransaction::new(forged.tx.clone(), Signature(sig));
        byz.chain
            .pool
            .lock()
            .unwrap()
            .insert(forged.clone())
            .unwrap();
        let b = propose(&rt, &mut byz, next_view(), &b1).await;
        assert_eq!(
            b.txs,
            vec![forged.clone()],
            "the proposer took the forged transaction"
        );
        byz.chain
            .pool
            .lock()
            .unwrap()
            .refuse(&forged.id(), "test", String::new());
        refusals.push(("forged transaction signature", b));

        // A reading whose signature does not verify, recorded as verified in the proposer's
        // signature cache: its block counts the reading as accepted, which the verifier's own
        // check contradicts.
        let bad = Arc::new(reading(&account_key(77), 2, 1, 0));
        byz.chain
            .admit_reading(bad.clone(), device_key().public_key(), 0, true)
            .unwrap();
        let b = propose(&rt, &mut byz, next_view(), &b1).await;
        assert_eq!(b.readings, vec![bad.clone()]);
        byz.chain
            .readings
            .lock()
            .unwrap()
            .refuse(&bad.id(), RejectCode::BadSignature);
        refusals.push(("forged reading signature", b));

        // More transactions than the verifier's max_block_txs (4); the proposer allows 100.
        let many: Vec<SignedTransaction> = (1..=5).map(|n| transfer(&chain_id, n, 7, 1)).collect();
        for t in &many {
            byz.chain.submit(t).await.unwrap();
        }
        let b = propose(&rt, &mut byz, next_view(), &b1).await;
        assert_eq!(b.txs.len(), 5);
        assert!(
            over_the_wire(&b, &VERIFIER_LIMITS).is_err(),
            "a block over max_block_txs must not even decode"
        );
        for t in &many {
            byz.chain
                .pool
                .lock()
                .unwrap()
                .refuse(&t.id(), "test", String::new());
        }
        refusals.push(("too many transactions", b));

        // More bytes than the verifier's max_block_bytes (64 KiB): five valid 14 KiB readings.
        let big: Vec<Arc<Reading>> = (10..15)
            .map(|seq| Arc::new(reading(&device_key(), seq, 14, 1000)))
            .collect();
        for r in &big {
            assert!(r.bytes().len() > 14_000);
            byz.chain
                .admit_reading(r.clone(), device_key().public_key(), 0, true)
                .unwrap();
        }
        let b = propose(&rt, &mut byz, next_view(), &b1).await;
        assert_eq!(b.readings.len(), 5);
        assert!(b.encode().len() > VERIFIER_LIMITS.max_block_bytes);
        for r in &big {
            byz.chain
                .readings
                .lock()
                .unwrap()
                .refuse(&r.id(), RejectCode::Replay);
        }
        refusals.push(("over max_block_bytes", b));

        // Changes by hand to the honest block 2 (content roots kept consistent, so each decodes).
        let (txs, readings) = (honest_b2.txs.clone(), honest_b2.readings.clone());
        let twice_tx = vec![good_tx.clone(), good_tx.clone()];
        let twice_reading = vec![readings[0].clone(), readings[0].clone()];
        let b1_time = b1.header.timestamp_ms;
        for (what, block) in [
            (
                "wrong parent",
                altered(&honest_b2, txs.clone(), readings.clone(), |h| {
                    h.parent = Hash::from([7; 32])
                }),
            ),
            (
                "wrong height",
                altered(&honest_b2, txs.clone(), readings.clone(), |h| h.height = 3),
            ),
            (
                "wrong state root",
                altered(&honest_b2, txs.clone(), readings.clone(), |h| {
                    h.state_root = Hash::from([1; 32])
                }),
            ),
            (
                "wrong receipts root",
                altered(&honest_b2, txs.clone(), readings.clone(), |h| {
                    h.receipts_root = Hash::from([2; 32])
                }),
            ),
            (
                "timestamp not after the parent's",
                altered(&honest_b2, txs.clone(), readings.clone(), |h| {
                    h.timestamp_ms = b1_time
                }),
            ),
            (
                "proposer is not the round's leader",
                altered(&honest_b2, txs.clone(), readings.clone(), |h| {
                    h.proposer.copy_from_slice(honest.key.as_ref())
                }),
            ),
            (
                "duplicate transaction",
                altered(&honest_b2, twice_tx, readings.clone(), |_| {}),
            ),
            (
                "duplicate reading",
                altered(&honest_b2, txs.clone(), twice_reading, |_| {}),
            ),
            (
                "transaction left out",
                altered(&honest_b2, Vec::new(), readings.clone(), |_| {}),
            ),
        ] {
            assert_eq!(
                over_the_wire(&block, &PROPOSER_LIMITS).ok().as_ref(),
                Some(&block),
                "{what}: the change must survive the wire for the test to mean anything"
            );
            refusals.push((what, block));
        }

        // Each is offered on top of block 1, the parent consensus names (for "wrong parent" the
        // header disagrees with it).
        for (what, block) in &refusals {
            assert!(
                !vote(&rt, &mut honest, next_view(), &leader, block, &b1).await,
                "{what}: the verifier voted for it"
            );
            assert_eq!(
                committed_root(&honest).await,
                settled,
                "{what}: state changed"
            );
        }

        // A body swapped under a known header does not even decode: the header's roots commit to
        // the content.
        let swapped = Block::new(
            honest_b2.header.clone(),
            vec![forged.clone()],
            readings.clone(),
        );
        assert!(over_the_wire(&swapped, &PROPOSER_LIMITS).is_err());

        // A block dated ahead of the verifier's clock by more than max_clock_skew_ms (5 s) is
        // neither accepted nor refused while the clock is behind; once it catches up, the
        // (otherwise honest) block gets its vote. Its content is the honest block 2's, which
        // does not depend on the time of day.
        let ahead_ms = now_ms(&rt) + 10_000;
        let ahead = altered(&honest_b2, txs.clone(), readings.clone(), |h| {
            h.timestamp_ms = ahead_ms
        });
        let view_ahead = next_view();
        {
            let verdict = vote(&rt, &mut honest, view_ahead, &leader, &ahead, &b1);
            futures::pin_mut!(verdict);
            let early = rt.sleep(Duration::from_secs(3));
            futures::pin_mut!(early);
            let verdict = match futures::future::select(verdict, early).await {
                Either::Left((v, _)) => panic!("decided ({v}) on a block from the future"),
                Either::Right((_, pending)) => pending,
            };
            assert!(
                verdict.await,
                "the block is valid once the clock has caught up"
            );
            assert!(now_ms(&rt) + VERIFIER_LIMITS.max_clock_skew_ms >= ahead_ms);
        }

        // Nothing refused reached the verifier's state, and it still accepts and finalizes the
        // honest block 2.
        assert_eq!(committed_root(&honest).await, settled);
        assert!(vote(&rt, &mut honest, next_view(), &leader, &honest_b2, &b1).await);
        honest
            .chain
            .finalize(&honest_b2, now_ms(&rt))
            .await
            .unwrap();
        assert_eq!(
            committed_root(&honest).await,
            (2, honest_b2.header.state_root)
        );
    });
}

/// `too_many_assets`: the testnet genesis has one asset and no transaction creates assets, so
/// this genesis gives an account 64 and offers it a 65th through the node's submission path.
#[test]
fn a_65th_asset_is_refused_with_too_many_assets() {
    let runner = deterministic::Runner::new(deterministic::Config::default().with_seed(6));
    runner.start(|rt| async move {
        let signer = ed25519::PrivateKey::from_seed(21);
        let holder = account_key(40);
        let genesis = genesis(&[signer.public_key()], 64, holder.public_key().account_id());
        let v = validator(&rt, "v", &signer, &genesis, VERIFIER_LIMITS).await;
        let before = v
            .chain
            .account(&holder.public_key().account_id())
            .await
            .unwrap();
        assert_eq!(before.as_ref().map(|a| a.balances.len()), Some(64));
        let tx = Transaction {
            signer: issuer().public_key(),
            nonce: Nonce(0),
            body: TxBody::Transfer {
                to: holder.public_key().account_id(),
                asset: cny(),
                amount: Amount(1),
                memo: Memo::default(),
            },
        }
        .sign(&issuer(), &v.chain.chain_id);
        let err = v.chain.submit(&tx).await.unwrap_err();
        assert_eq!(err.code(), "too_many_assets", "{err}");
        assert_eq!(
            v.chain
                .account(&holder.public_key().account_id())
                .await
                .unwrap(),
            before
        );
        assert!(!v.chain.pending_tx(&tx.id()));
    });
}

/// A ledger state whose every read fails, as a disk that has gone bad.
struct FailingStorage;

impl verity_ledger::state::StateReader for FailingStorage {
    async fn get(&self, _key: &verity_ledger::state::StateKey) -> Result<Option<Vec<u8>>, String> {
        Err("injected read failure".into())
    }
}

/// `state_unavailable`: when the storage cannot be read, a transaction is refused with this code
/// (the API answers 500) instead of a verdict made up from missing state, and nothing is
/// written; executing a block over such storage is a storage error, not a verdict on the block.
/// (The node's QMDB serves reads from memory once opened, so the fault is injected at the
/// ledger's state interface, the one every submission and block goes through.)
#[test]
fn a_storage_fault_is_refused_with_state_unavailable() {
    use verity_ledger::{BlockError, Checks, VerifyAll, VerifyReadings, execute, state::Overlay};
    let chain_id = Hash::from([4; 32]);
    let tx = transfer(&chain_id, 0, 9, 10);
    let env = verity_ledger::BlockEnv {
        chain_id,
        height: 1,
        timestamp_ms: 1,
    };
    let storage = FailingStorage;
    let mut overlay = Overlay::new(&storage);
    let err = futures::executor::block_on(execute::apply_tx(&mut overlay, &env, &tx, &VerifyAll))
        .unwrap_err();
    assert_eq!(err.code(), "state_unavailable", "{err}");
    assert!(overlay.into_writes().is_empty(), "a refusal wrote state");
    let mut overlay = Overlay::new(&storage);
    let checks = Checks {
        txs: &VerifyAll,
        readings: &VerifyReadings,
    };
    let result = futures::executor::block_on(execute::execute_block(
        &mut overlay,
        &env,
        std::slice::from_ref(&tx),
        &[],
        checks,
    ));
    assert!(matches!(result, Err(BlockError::Storage(_))), "{result:?}");
    assert!(overlay.into_writes().is_empty());
}

/// A pending transaction whose nonce another transaction of the same account took in a
/// finalized block can never commit: the pool drops it and reports it refused with
/// `nonce_too_low`, so its submitter is told instead of waiting for a commit that cannot come
/// (a client that read the nonce from a node one block behind sends such a transaction).
#[test]
fn a_transaction_overtaken_on_its_nonce_is_reported_refused() {
    let runner = deterministic::Runner::new(deterministic::Config::default().with_seed(8));
    runner.start(|rt| async move {
        let signers = [
            ed25519::PrivateKey::from_seed(41),
            ed25519::PrivateKey::from_seed(42),
        ];
        let keys: Vec<_> = signers.iter().map(|s| s.public_key()).collect();
        let genesis = genesis(&keys, 0, AccountId([0; 20]));
        let mut a = validator(&rt, "a", &signers[0], &genesis, PROPOSER_LIMITS).await;
        let b = validator(&rt, "b", &signers[1], &genesis, PROPOSER_LIMITS).await;
        let chain_id = a.chain.chain_id;
        let first = transfer(&chain_id, 0, 9, 1);
        let rival = transfer(&chain_id, 0, 8, 1);
        a.chain.submit(&first).await.unwrap();
        b.chain.submit(&rival).await.unwrap();
        assert!(b.chain.pending_tx(&rival.id()));
        let genesis_block = a.chain.genesis_block.clone();
        let b1 = propose(&rt, &mut a, 1, &genesis_block).await;
        assert_eq!(b1.txs, vec![first]);
        b.chain.finalize(&b1, now_ms(&rt)).await.unwrap();
        assert!(!b.chain.pending_tx(&rival.id()));
        let (code, message) = b
            .chain
            .refusal(&rival.id())
            .expect("the refusal is remembered");
        assert_eq!(code, "nonce_too_low", "{message}");
    });
}

#[test]
fn an_idle_leader_paces_empty_blocks_and_proposes_at_once_when_work_arrives() {
    const IDLE: Duration = Duration::from_millis(400);
    let runner = deterministic::Runner::new(
        deterministic::Config::default()
            .with_seed(9)
            .with_timeout(Some(Duration::from_secs(600))),
    );
    runner.start(|rt| async move {
        let signers = [
            ed25519::PrivateKey::from_seed(51),
            ed25519::PrivateKey::from_seed(52),
        ];
        let keys: Vec<_> = signers.iter().map(|s| s.public_key()).collect();
        let genesis = genesis(&keys, 0, AccountId([0; 20]));
        let a = paced_validator(&rt, "a", &signers[0], &genesis, PROPOSER_LIMITS, IDLE).await;
        let chain_id = a.chain.chain_id;
        let g = a.chain.genesis_block.clone();
        let idle_ms = IDLE.as_millis() as u64;
        let mut chain: Vec<Block> = vec![g];
        // Proposes at the next height (in the view of that number) on everything so far, newest
        // first; finalizes it.
        let next = async |chain: &mut Vec<Block>| {
            let view = chain.len() as u64;
            let ancestry: Vec<&Block> = chain.iter().rev().collect();
            let b = propose_on(&rt, a.app.clone(), &a.key, view, &ancestry).await;
            a.chain.finalize(&b, now_ms(&rt)).await.unwrap();
            chain.push(b.clone());
            b
        };
        let gap = |chain: &[Block]| {
            let n = chain.len();
            chain[n - 1].header.timestamp_ms - chain[n - 2].header.timestamp_ms
        };

        // Nothing to do, and the blocks of a rotation (two validators: two blocks, the genesis
        // included) are empty: each proposal waits out the interval after its parent.
        for _ in 0..3 {
            let b = next(&mut chain).await;
            assert!(b.txs.is_empty() && b.readings.is_empty());
            assert!(gap(&chain) >= idle_ms, "paced: {} ms", gap(&chain));
        }

        // A transaction in the pool: proposed at once.
        a.chain.submit(&transfer(&chain_id, 0, 9, 1)).await.unwrap();
        let b = next(&mut chain).await;
        assert_eq!(b.txs.len(), 1);
        assert!(gap(&chain) < idle_ms, "not paced: {} ms", gap(&chain));
        // A whole rotation after a block with work is not paced, though the pools are empty:
        // another validator may hold readings for its turn.
        for _ in 0..2 {
            let _ = next(&mut chain).await;
            assert!(gap(&chain) < idle_ms, "not paced: {} ms", gap(&chain));
        }
        // Then the rotation is empty again.
        let _ = next(&mut chain).await;
        assert!(gap(&chain) >= idle_ms, "paced again: {} ms", gap(&chain));

        // Work arriving while the leader waits: it proposes then, not at the deadline.
        let waiting = {
            let (rt2, app, key) = (rt.child("leader"), a.app.clone(), a.key.clone());
            let parent: Vec<Block> = chain.iter().rev().cloned().collect();
            let v = chain.len() as u64;
            rt.child("leader").spawn(move |_| async move {
                let ancestry: Vec<&Block> = parent.iter().collect();
                propose_on(&rt2, app, &key, v, &ancestry).await
            })
        };
        rt.sleep(Duration::from_millis(100)).await;
        let arrived = now_ms(&rt);
        a.chain.submit(&transfer(&chain_id, 1, 9, 1)).await.unwrap();
        let b = waiting.await.unwrap();
        assert_eq!(b.txs.len(), 1);
        // Proposed when the transaction came, before the deadline.
        assert!(b.header.timestamp_ms >= arrived);
        a.chain.finalize(&b, now_ms(&rt)).await.unwrap();
        chain.push(b);
        assert!(gap(&chain) < idle_ms, "woken by work: {} ms", gap(&chain));
        for _ in 0..2 {
            let _ = next(&mut chain).await;
            assert!(gap(&chain) < idle_ms, "not paced: {} ms", gap(&chain));
        }
        let _ = next(&mut chain).await;
        assert!(gap(&chain) >= idle_ms, "idle again: {} ms", gap(&chain));

        // A peer's wake (it admitted a reading while idle): two rotations of heights are
        // proposed at once, though this node has nothing to do.
        a.chain.pacing.woken(a.chain.tip().height);
        for _ in 0..4 {
            let _ = next(&mut chain).await;
            assert!(gap(&chain) < idle_ms, "woken: {} ms", gap(&chain));
        }
        let _ = next(&mut chain).await;
        assert!(gap(&chain) >= idle_ms, "asleep again: {} ms", gap(&chain));

        // A reading admitted into an empty pool asks the gossip task to wake the peers; a
        // transaction does not (gossip carries it to their pools).
        use futures::FutureExt as _;
        assert!(a.chain.pacing.peers_to_wake().now_or_never().is_none());
        a.chain
            .admit_reading(
                Arc::new(reading(&device_key(), 1, 1, 0)),
                device_key().public_key(),
                0,
                true,
            )
            .unwrap();
        assert!(a.chain.pacing.peers_to_wake().now_or_never().is_some());
        assert!(!a.chain.pools_empty());
    });
}

/// A reading one validator admitted reaches another by gossip with the seq its device sent
/// before it; the other proposes it only once that one can go first, so that gossip never turns
/// an accepted reading into a replay; the block it proposes commits every reading.
#[test]
fn a_gossiped_reading_waits_for_the_one_its_device_sent_before_it() {
    let runner = deterministic::Runner::new(
        deterministic::Config::default()
            .with_seed(11)
            .with_timeout(Some(Duration::from_secs(600))),
    );
    runner.start(|rt| async move {
        let signers = [
            ed25519::PrivateKey::from_seed(61),
            ed25519::PrivateKey::from_seed(62),
        ];
        let keys: Vec<_> = signers.iter().map(|s| s.public_key()).collect();
        let genesis = genesis(&keys, 0, AccountId([0; 20]));
        let mut a = validator(&rt, "a", &signers[0], &genesis, PROPOSER_LIMITS).await;
        let mut b = validator(&rt, "b", &signers[1], &genesis, PROPOSER_LIMITS).await;
        let chain_id = a.chain.chain_id;
        let g = a.chain.genesis_block.clone();
        let register = register_device(&chain_id);
        a.chain.submit(&register).await.unwrap();
        let b1 = propose(&rt, &mut a, 1, &g).await;
        for v in [&a, &b] {
            v.chain.finalize(&b1, now_ms(&rt)).await.unwrap();
        }

        // The device sends seqs 1, 2, 3 to a, which queues each for gossip with the seq
        // before it.
        a.chain.outbox.open();
        let sent: Vec<Arc<Reading>> = (1..=3)
            .map(|seq| Arc::new(reading(&device_key(), seq, 1, 0)))
            .collect();
        for r in &sent {
            a.chain
                .admit_reading(r.clone(), device_key().public_key(), 0, true)
                .unwrap();
        }
        let queued = a.chain.outbox.take();
        let afters: Vec<(u64, u64)> = queued.iter().map(|(r, x)| (r.seq(), *x)).collect();
        assert_eq!(afters, vec![(1, 0), (2, 1), (3, 2)]);

        // Seqs 2 and 3 reach b first: b checks them (signatures included) and pools them, but
        // its block does not carry them, or seq 1 would become a replay.
        let now = 1_700_000_060_000;
        let encode = |q: &[(Arc<Reading>, u64)]| {
            verity_node::gossip::encode_readings(q.iter().map(|(r, after)| (*after, r.bytes())))
        };
        let msg = encode(&queued[1..]);
        let batch = verity_node::gossip::decode_readings(&msg).unwrap();
        assert_eq!(b.chain.admit_gossiped(&batch, now).await, 2);
        let held = propose(&rt, &mut b, 2, &b1).await;
        assert!(held.readings.is_empty(), "proposed ahead of seq 1");
        // A forged copy of seq 1 is not pooled.
        let mut forged = sent[0].bytes().to_vec();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert_eq!(b.chain.admit_gossiped(&[(0, &forged)], now).await, 0);
        assert!(propose(&rt, &mut b, 2, &b1).await.readings.is_empty());

        // Seq 1 arrives: b proposes all three in order, a votes for the block, and once it is
        // final the device's readings are committed and gone from both pools.
        let msg = encode(&queued[..1]);
        let batch = verity_node::gossip::decode_readings(&msg).unwrap();
        assert_eq!(b.chain.admit_gossiped(&batch, now).await, 1);
        let b2 = propose(&rt, &mut b, 2, &b1).await;
        let seqs: Vec<u64> = b2.readings.iter().map(|r| r.seq()).collect();
        assert_eq!(seqs, vec![1, 2, 3]);
        assert!(vote(&rt, &mut a, 2, &b.key, &b2, &b1).await);
        for v in [&a, &b] {
            v.chain.finalize(&b2, now_ms(&rt)).await.unwrap();
            assert_eq!(
                v.chain.device(&device()).await.unwrap().unwrap().last_seq,
                3
            );
            assert!(v.chain.pools_empty());
        }
        // A gossiped copy arriving late is a replay and is not pooled.
        assert_eq!(b.chain.admit_gossiped(&batch, now).await, 0);
    });
}

/// Under overload a validator's pool fills, and gossiped readings it has no room for are
/// dropped before their signatures are checked: verifying them would only take the CPU that
/// the readings with room need. A device may have two readings pending here; five arrive.
#[test]
fn gossiped_readings_without_room_in_the_pool_are_not_verified() {
    let runner = deterministic::Runner::new(
        deterministic::Config::default()
            .with_seed(12)
            .with_timeout(Some(Duration::from_secs(600))),
    );
    runner.start(|rt| async move {
        let signers = [
            ed25519::PrivateKey::from_seed(71),
            ed25519::PrivateKey::from_seed(72),
        ];
        let keys: Vec<_> = signers.iter().map(|s| s.public_key()).collect();
        let genesis = genesis(&keys, 0, AccountId([0; 20]));
        let mut a = validator(&rt, "a", &signers[0], &genesis, PROPOSER_LIMITS).await;
        let mut chain = open_chain(&rt, "b", &genesis, PROPOSER_LIMITS, 2).await;
        let checked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = checked.clone();
        let inline = verity_node::readings::inline_verifier();
        chain.set_verifier(Arc::new(move |items| {
            counter.fetch_add(items.len(), std::sync::atomic::Ordering::SeqCst);
            inline(items)
        }));
        let b = Arc::new(chain);

        let register = register_device(&a.chain.chain_id);
        a.chain.submit(&register).await.unwrap();
        let g = a.chain.genesis_block.clone();
        let b1 = propose(&rt, &mut a, 1, &g).await;
        for chain in [&a.chain, &b] {
            chain.finalize(&b1, now_ms(&rt)).await.unwrap();
        }

        let sent: Vec<Reading> = (1..=5)
            .map(|seq| reading(&device_key(), seq, 1, 0))
            .collect();
        let msg =
            verity_node::gossip::encode_readings(sent.iter().map(|r| (r.seq() - 1, r.bytes())));
        let batch = verity_node::gossip::decode_readings(&msg).unwrap();
        let now = 1_700_000_060_000;
        assert_eq!(b.admit_gossiped(&batch, now).await, 2);
        assert_eq!(checked.load(std::sync::atomic::Ordering::SeqCst), 2);
        // The two with room are the device's first two, and they verified.
        for (r, pooled) in sent.iter().zip([true, true, false, false, false]) {
            assert_eq!(
                matches!(b.pending_reading(&r.id()), Some(Ok(_))),
                pooled,
                "seq {}",
                r.seq()
            );
        }
        // Once full, nothing more of that device is verified.
        assert_eq!(b.admit_gossiped(&batch[2..], now).await, 0);
        assert_eq!(checked.load(std::sync::atomic::Ordering::SeqCst), 2);
    });
}

/// A validator verifies each transaction's signature once, in batches: the transactions of a
/// block it never saw in one batch when it votes; a gossip message's in one batch, after which
/// neither submitting them to its pool nor voting on a block that holds them verifies them
/// again. A forged signature is never remembered as verified.
#[test]
fn transactions_are_verified_once_and_in_batches() {
    let runner = deterministic::Runner::new(
        deterministic::Config::default()
            .with_seed(13)
            .with_timeout(Some(Duration::from_secs(600))),
    );
    runner.start(|rt| async move {
        let signers = [
            ed25519::PrivateKey::from_seed(81),
            ed25519::PrivateKey::from_seed(82),
        ];
        let keys: Vec<_> = signers.iter().map(|s| s.public_key()).collect();
        let genesis = genesis(&keys, 0, AccountId([0; 20]));
        let mut a = validator(&rt, "a", &signers[0], &genesis, PROPOSER_LIMITS).await;
        let mut chain = open_chain(&rt, "b", &genesis, PROPOSER_LIMITS, 64).await;
        // The sizes of the batches b verifies.
        let batches = Arc::new(std::sync::Mutex::new(Vec::<usize>::new()));
        let seen = batches.clone();
        let inline = verity_node::tx_sigs::inline_tx_verifier();
        chain.set_tx_verifier(Arc::new(move |chain_id, txs| {
            seen.lock().unwrap().push(txs.len());
            inline(chain_id, txs)
        }));
        let mut b = validator_of(chain, &signers[1]);
        let batches = move || batches.lock().unwrap().clone();
        let chain_id = a.chain.chain_id;
        let g = a.chain.genesis_block.clone();

        // Block 1 holds two transactions b never saw: one batch of two when it votes.
        a.chain.submit(&register_device(&chain_id)).await.unwrap();
        a.chain
            .submit(&transfer(&chain_id, 0, 9, 100))
            .await
            .unwrap();
        let b1 = propose(&rt, &mut a, 1, &g).await;
        assert!(vote(&rt, &mut b, 1, &a.key, &b1, &g).await);
        assert_eq!(batches(), [2]);
        for v in [&a, &b] {
            v.chain.finalize(&b1, now_ms(&rt)).await.unwrap();
        }

        // Three arrive by gossip: one batch of three, and none again after.
        let gossiped: Vec<SignedTransaction> =
            (1..=3).map(|n| transfer(&chain_id, n, 9, 1)).collect();
        b.chain.verify_txs(&gossiped).await;
        assert_eq!(batches(), [2, 3]);
        for t in &gossiped {
            b.chain.submit(t).await.unwrap();
            a.chain.submit(t).await.unwrap();
        }
        let b2 = propose(&rt, &mut a, 2, &b1).await;
        assert_eq!(b2.txs, gossiped);
        assert!(vote(&rt, &mut b, 2, &a.key, &b2, &b1).await);
        assert_eq!(batches(), [2, 3]);
        // Gossiped again once committed, they are refused without a look at the index: their
        // nonces are spent.
        b.chain.finalize(&b2, now_ms(&rt)).await.unwrap();
        for t in &gossiped {
            let err = b.chain.submit_gossiped(t).await.unwrap_err();
            assert_eq!(err.code(), "nonce_too_low");
            assert!(!b.chain.pending_tx(&t.id()));
        }
        assert_eq!(batches(), [2, 3]);

        // A forged one is checked, refused, and checked again if it comes again.
        let good = transfer(&chain_id, 4, 9, 1);
        let mut sig = good.signature.0;
        sig[0] ^= 1;
        let forged = SignedTransaction::new(good.tx.clone(), Signature(sig));
        b.chain.verify_txs(std::slice::from_ref(&forged)).await;
        assert!(!b.chain.tx_sigs.verified(&forged.id()));
        assert_eq!(
            b.chain.submit(&forged).await.unwrap_err().code(),
            "bad_signature"
        );
        b.chain.verify_txs(std::slice::from_ref(&forged)).await;
        assert_eq!(batches(), [2, 3, 1, 1]);
    });
}
