//! Deterministic simulation: 4 validators running the real chain (ledger, QMDB state, block
//! execution) and the real consensus wiring on commonware's deterministic runtime and simulated
//! network, through lossy and jittery links, a partition that heals, and a validator crash with
//! restart, while a client submits transfers. Checks that no two validators finalize different
//! blocks at a height, that their state roots agree at every height, that every transfer
//! submitted is finalized after the network heals, and that a seed replays identically.
//!
//! `SIM_SEEDS=N` runs more seeds (scripts/simulate does).

use commonware_cryptography::{Signer as _, ed25519};
use commonware_p2p::simulated::{Config as NetConfig, Link, Network, Oracle};
use commonware_runtime::{
    Clock as _, Handle, Quota, Runner as _, Spawner as _, Supervisor as _, deterministic,
};
use commonware_utils::{NZU32, NZUsize, probability::Probability};
use rand_core10::Rng as _;
use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};
use verity_node::{
    chain::{Chain, ChainLimits},
    engine::{self, Channels, EngineConfig, channel},
    gossip,
    pool::Pool,
};
use verity_types::{
    AccountId, Amount, Genesis, Hash, Memo, Nonce, SecretKey, Transaction, TxBody,
    genesis::{GenesisAccount, GenesisAsset, GenesisOrganization, GenesisValidator, Role},
};

const VALIDATORS: usize = 4;
const TRANSFERS: u64 = 24;

type Ctx = deterministic::Context;
/// Per validator: (height, block hash, state root computed locally) of each finalized block.
type Logs = BTreeMap<usize, Vec<(u64, Hash, Hash)>>;
type Log = Arc<Mutex<Logs>>;

fn issuer_key() -> SecretKey {
    SecretKey::from_bytes(verity_types::Algorithm::Ed25519, &[7u8; 32]).unwrap()
}

fn genesis(validators: &[ed25519::PublicKey]) -> Genesis {
    let issuer = issuer_key().public_key().account_id();
    Genesis {
        chain_name: "sim".into(),
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
        organizations: vec![GenesisOrganization {
            id: "bank".parse().unwrap(),
            name: "Bank".into(),
            roles: [Role::Validator, Role::Issuer].into_iter().collect(),
        }],
        assets: vec![GenesisAsset {
            code: "CNY".parse().unwrap(),
            decimals: 2,
            issuer: "bank".parse().unwrap(),
            name: "yuan".into(),
        }],
        accounts: vec![GenesisAccount {
            account: issuer,
            organization: Some("bank".parse().unwrap()),
            admin: true,
            balances: [("CNY".parse().unwrap(), Amount(1_000_000))]
                .into_iter()
                .collect(),
            tier: None,
        }],
        tiers: Vec::new(),
        default_tier: None,
    }
}

/// A running validator: its chain (to read results) and its root task (to crash it).
struct Validator {
    chain: Arc<Chain<Ctx>>,
    gossip: gossip::Gossip,
    handle: Handle<()>,
}

async fn start_validator(
    context: &Ctx,
    oracle: &Oracle<ed25519::PublicKey, Ctx>,
    signer: ed25519::PrivateKey,
    index: usize,
    genesis: Genesis,
    validators: Vec<ed25519::PublicKey>,
) -> Validator {
    let me = signer.public_key();
    let control = oracle.control(me.clone());
    let quota = Quota::per_second(NZU32!(100_000));
    let mut regs = Vec::new();
    for ch in [
        channel::VOTES,
        channel::CERTIFICATES,
        channel::RESOLVER,
        channel::BROADCAST,
        channel::BACKFILL,
        channel::TXS,
    ] {
        regs.push(
            control
                .register(ch, quota)
                .await
                .expect("channel registers"),
        );
    }
    let txs = regs.pop().unwrap();
    let mut regs = regs.into_iter();
    let channels = Channels {
        votes: regs.next().unwrap(),
        certificates: regs.next().unwrap(),
        resolver: regs.next().unwrap(),
        broadcast: regs.next().unwrap(),
        backfill: regs.next().unwrap(),
    };
    let (ready_tx, ready_rx) = futures::channel::oneshot::channel();
    let manager = oracle.manager();
    let handle = context
        .child("validator")
        .with_attribute("index", index)
        .spawn(move |ctx| async move {
            let limits = ChainLimits {
                max_block_txs: 100,
                max_block_readings: 100,
                max_block_bytes: 1 << 20,
                max_clock_skew_ms: 5_000,
                max_nonce_ahead: 64,
            };
            let prefix = format!("v{index}");
            let chain = Arc::new(
                Chain::open(
                    ctx.child("chain"),
                    &prefix,
                    genesis,
                    validators,
                    None,
                    limits,
                    (
                        Pool::new(10_000, 64),
                        verity_node::readings::ReadingPool::new(10_000, 64),
                    ),
                )
                .await
                .expect("state opens"),
            );
            let (_marshal, handles) = engine::start(
                ctx.child("engine"),
                EngineConfig {
                    partition_prefix: prefix,
                    leader_timeout: Duration::from_secs(1),
                    certification_timeout: Duration::from_secs(2),
                    timeout_retry: Duration::from_secs(3),
                    block_limits: verity_types::block::BlockLimits {
                        max_txs: 100,
                        max_readings: 100,
                        max_bytes: 1 << 20,
                    },
                },
                chain.clone(),
                signer,
                channels,
                control.clone(),
                manager,
            )
            .await;
            let gossip = gossip::start(ctx.child("gossip"), chain.clone(), txs);
            let _ = ready_tx.send((chain, gossip));
            futures::future::join_all(handles).await;
        });
    let (chain, gossip) = ready_rx.await.expect("validator starts");
    Validator {
        chain,
        gossip,
        handle,
    }
}

async fn link_all(
    oracle: &Oracle<ed25519::PublicKey, Ctx>,
    keys: &[ed25519::PublicKey],
    link: &Link,
    except: &[(usize, usize)],
) {
    for (i, a) in keys.iter().enumerate() {
        for (j, b) in keys.iter().enumerate() {
            if i == j || except.contains(&(i, j)) {
                continue;
            }
            let _ = oracle.remove_link(a.clone(), b.clone()).await;
            oracle
                .add_link(a.clone(), b.clone(), link.clone())
                .await
                .expect("link");
        }
    }
}

async fn cut(
    oracle: &Oracle<ed25519::PublicKey, Ctx>,
    keys: &[ed25519::PublicKey],
    a: &[usize],
    b: &[usize],
) {
    for &i in a {
        for &j in b {
            let _ = oracle.remove_link(keys[i].clone(), keys[j].clone()).await;
            let _ = oracle.remove_link(keys[j].clone(), keys[i].clone()).await;
        }
    }
}

async fn wait_until(ctx: &Ctx, limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = ctx.current() + limit;
    while ctx.current() < deadline {
        if cond() {
            return true;
        }
        ctx.sleep(Duration::from_millis(100)).await;
    }
    cond()
}

/// Runs one seed; returns (finalized log per validator, the runtime's event digest).
fn simulate(seed: u64) -> (Logs, String) {
    let log: Log = Arc::new(Mutex::new(BTreeMap::new()));
    let out = log.clone();
    let cfg = deterministic::Config::default()
        .with_seed(seed)
        .with_timeout(Some(Duration::from_secs(900)));
    let runner = deterministic::Runner::new(cfg);
    let audit = runner.start(|context| async move {
        let signers: Vec<_> = (0..VALIDATORS as u64)
            .map(|i| ed25519::PrivateKey::from_seed(seed * 100 + i))
            .collect();
        let keys: Vec<_> = signers.iter().map(|s| s.public_key()).collect();
        let genesis = genesis(&keys);
        let (network, oracle) = Network::new_with_peers(
            context.child("network"),
            NetConfig {
                max_size: 8 * 1024 * 1024,
                max_peers_per_set: NZUsize!(VALIDATORS),
                disconnect_on_block: true,
                tracked_peer_sets: NZUsize!(3),
            },
            keys.clone(),
        )
        .await;
        network.start();
        let mut rng = context.child("faults");
        // Lossy, jittery links (up to 30% loss at the worst seed).
        let loss = (rng.next_u32() % 31) as f64 / 100.0;
        let link = Link {
            latency: Duration::from_millis(10 + (rng.next_u32() % 40) as u64),
            jitter: Duration::from_millis((rng.next_u32() % 20) as u64),
            success_rate: Probability::try_from(1.0 - loss).expect("probability"),
        };
        link_all(&oracle, &keys, &link, &[]).await;
        let mut nodes = Vec::new();
        for (i, s) in signers.iter().enumerate() {
            nodes.push(
                start_validator(
                    &context,
                    &oracle,
                    s.clone(),
                    i,
                    genesis.clone(),
                    keys.clone(),
                )
                .await,
            );
        }
        // A client submits transfers to random validators throughout.
        let issuer = issuer_key();
        let chain_id = genesis.chain_id();
        let recipients: Vec<AccountId> = (0..4u8)
            .map(|i| {
                SecretKey::from_bytes(verity_types::Algorithm::Ed25519, &[i + 20; 32])
                    .unwrap()
                    .public_key()
                    .account_id()
            })
            .collect();
        let txs: Vec<_> = (0..TRANSFERS)
            .map(|n| {
                Transaction {
                    signer: issuer.public_key(),
                    nonce: Nonce(n),
                    body: TxBody::Transfer {
                        to: recipients[(n % 4) as usize],
                        asset: "CNY".parse().unwrap(),
                        amount: Amount(1 + n),
                        memo: Memo::default(),
                    },
                }
                .sign(&issuer, &chain_id)
            })
            .collect();
        let submit = |nodes: &Vec<Validator>, i: usize, tx: &verity_types::SignedTransaction| {
            let v = &nodes[i];
            let chain = v.chain.clone();
            let gossip = v.gossip.clone();
            let tx = tx.clone();
            async move {
                if chain.submit(&tx).await.is_ok() {
                    gossip.forward(tx);
                }
            }
        };
        assert!(
            wait_until(&context, Duration::from_secs(60), || nodes
                .iter()
                .all(|n| n.chain.tip().height >= 3))
            .await,
            "seed {seed}: no progress at start"
        );
        for tx in &txs[..8] {
            let i = (rng.next_u32() as usize) % VALIDATORS;
            submit(&nodes, i, tx).await;
        }
        // Partition: two halves, no quorum on either side.
        let shuffle = (rng.next_u32() as usize) % VALIDATORS;
        let half_a = [shuffle, (shuffle + 1) % VALIDATORS];
        let half_b = [(shuffle + 2) % VALIDATORS, (shuffle + 3) % VALIDATORS];
        cut(&oracle, &keys, &half_a, &half_b).await;
        context
            .sleep(Duration::from_secs(5 + (rng.next_u32() % 10) as u64))
            .await;
        for tx in &txs[8..16] {
            submit(&nodes, half_a[0], tx).await;
        }
        // Heal.
        link_all(&oracle, &keys, &link, &[]).await;
        let h = nodes.iter().map(|n| n.chain.tip().height).max().unwrap();
        assert!(
            wait_until(&context, Duration::from_secs(120), || nodes
                .iter()
                .all(|n| n.chain.tip().height > h + 2))
            .await,
            "seed {seed}: no progress after healing"
        );
        // Crash a validator, keep going without it, restart it from its storage.
        let victim = (rng.next_u32() as usize) % VALIDATORS;
        // Its in-memory state goes with it; only its storage remains.
        let dead = nodes.remove(victim);
        dead.handle.abort();
        drop(dead);
        context.sleep(Duration::from_millis(200)).await;
        for tx in &txs[16..] {
            let i = (rng.next_u32() as usize) % nodes.len();
            submit(&nodes, i, tx).await;
        }
        let h = nodes[0].chain.tip().height;
        assert!(
            wait_until(&context, Duration::from_secs(120), || nodes
                .iter()
                .all(|n| n.chain.tip().height > h + 2))
            .await,
            "seed {seed}: 3 of 4 made no progress"
        );
        let restarted = start_validator(
            &context,
            &oracle,
            signers[victim].clone(),
            victim,
            genesis.clone(),
            keys.clone(),
        )
        .await;
        nodes.insert(victim, restarted);
        let alive = [(victim + 1) % VALIDATORS];
        // Transactions submitted to a node that then crashed are resubmitted by the client.
        for tx in &txs {
            submit(&nodes, alive[0], tx).await;
        }
        // Every transfer is final on every validator (the restarted one included).
        let issuer_id = issuer.public_key().account_id();
        let deadline = context.current() + Duration::from_secs(300);
        loop {
            let mut all = true;
            for n in &nodes {
                let nonce = n
                    .chain
                    .account(&issuer_id)
                    .await
                    .expect("state reads")
                    .unwrap_or_default()
                    .nonce;
                all &= nonce == TRANSFERS;
            }
            if all {
                break;
            }
            assert!(
                context.current() < deadline,
                "seed {seed}: transfers not final on every validator"
            );
            context.sleep(Duration::from_millis(100)).await;
        }
        let top = nodes.iter().map(|n| n.chain.tip().height).max().unwrap();
        assert!(
            wait_until(&context, Duration::from_secs(120), || nodes
                .iter()
                .all(|n| n.chain.tip().height >= top))
            .await,
            "seed {seed}: validators did not converge"
        );
        let mut log = out.lock().unwrap();
        for (i, n) in nodes.iter().enumerate() {
            log.insert(i, n.chain.finalized_log());
        }
        context.auditor().state()
    });
    let log = log.lock().unwrap().clone();
    (log, audit)
}

/// Checks the safety invariants over the validators' finalized logs.
fn check(seed: u64, logs: &Logs) {
    let mut by_height: BTreeMap<u64, Vec<(usize, Hash, Hash)>> = BTreeMap::new();
    for (v, log) in logs {
        assert!(
            !log.is_empty(),
            "seed {seed}: validator {v} finalized nothing"
        );
        for (h, block, root) in log {
            by_height.entry(*h).or_default().push((*v, *block, *root));
        }
    }
    let mut compared = 0;
    for (h, entries) in &by_height {
        let (_, block, root) = entries[0];
        for (v, b, r) in entries {
            assert_eq!(
                *b, block,
                "seed {seed}: validators finalized different blocks at height {h} (validator {v})"
            );
            assert_eq!(
                *r, root,
                "seed {seed}: state roots differ at height {h} (validator {v})"
            );
        }
        if entries.len() == logs.len() {
            compared += 1;
        }
    }
    assert!(
        compared > 0,
        "seed {seed}: no height finalized by every validator to compare"
    );
}

fn seeds() -> Vec<u64> {
    let n: u64 = std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let first: u64 = std::env::var("SIM_FIRST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    (first..first + n).collect()
}

#[test]
fn partitions_losses_and_crashes_keep_validators_in_agreement() {
    let mut failed = Vec::new();
    let seeds = seeds();
    for &seed in &seeds {
        let result = std::panic::catch_unwind(|| {
            let (logs, _) = simulate(seed);
            check(seed, &logs);
        });
        if result.is_err() {
            failed.push(seed);
        }
    }
    println!(
        "simulation: {} seeds ran, {} failed {:?}",
        seeds.len(),
        failed.len(),
        failed
    );
    assert!(failed.is_empty(), "failing seeds: {failed:?}");
}

#[test]
fn a_seed_replays_identically() {
    let (a, audit_a) = simulate(11);
    let (b, audit_b) = simulate(11);
    assert_eq!(a, b, "the same seed finalized different histories");
    assert_eq!(audit_a, audit_b, "the same seed took a different path");
}
