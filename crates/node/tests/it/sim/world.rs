//! The simulated network: honest validators running the real node (chain, ledger, QMDB state,
//! query index, consensus wiring, gossip) and one Byzantine validator (a commonware simplex
//! mock) on the deterministic runtime and its simulated p2p network; and the driver that plays
//! a [Plan]'s faults on them while the clients work.

use super::{
    client::{Cast, Client, DRAWER_BALANCE, PAYER_BALANCE},
    plan::{Byzantine, FaultKind, Plan, Restart, Split, StorageFaults},
};
use commonware_consensus::{
    simplex::{
        elector::RoundRobin,
        mocks::{conflicter, equivocator, nuller, relay::Relay},
        scheme::ed25519::Scheme,
    },
    types::{Epoch, Height},
};
use commonware_cryptography::{Sha256, Signer as _, ed25519};
use commonware_p2p::simulated::{Config as NetConfig, Link, Network, Oracle};
use commonware_runtime::{
    Clock as _, Handle, Quota, Spawner as _, Supervisor as _,
    deterministic::{self, FaultConfig, WriteConfig},
};
use commonware_utils::{NZU32, NZUsize, ordered::Set, probability::Probability};
use std::{
    collections::{BTreeMap, BTreeSet},
    num::NonZeroUsize,
    path::Path,
    sync::{Arc, Mutex, Weak},
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use verity_node::{
    chain::{Chain, ChainLimits},
    engine::{self, Channels, EngineConfig, MarshalMailbox, NAMESPACE, channel},
    gossip,
    index::Index,
    index_store::Holds,
    pool::Pool,
    readings::ReadingPool,
};
use verity_types::{
    Amount, Genesis, Hash,
    genesis::{GenesisAccount, GenesisAsset, GenesisOrganization, GenesisValidator, Role},
};

/// The runtime context.
pub type Ctx = deterministic::Context;
type Net = Oracle<ed25519::PublicKey, Ctx>;
/// Per validator, per incarnation (each start from storage): the height, block hash and state
/// root (as the validator computed it) of every finalized block it applied.
pub type Logs = BTreeMap<usize, Vec<Vec<(u64, Hash, Hash)>>>;

/// What one runtime hands to the next across a restart of the whole network.
#[derive(Default)]
pub struct Carry {
    /// Finalized logs of every incarnation so far.
    pub logs: Logs,
    /// Honest validators started again from their storage after a crash or a stop.
    pub restarts: u64,
    /// Honest validators that stopped because their storage failed.
    pub storage_stops: u64,
    /// The runtime's digest of the run when a clean stop of the whole network began.
    pub audit_at_stop: Option<String>,
}

/// The simulated clock starts at 2026-01-01T00:00:00Z, the genesis time.
pub const START_S: u64 = 1_767_225_600;
/// How often the clients work.
const TICK_MS: u64 = 250;
/// How long a validator stopped by a storage fault stays down after the window.
const RESTART_AFTER_STORAGE_MS: u64 = 1_000;
/// Messages a link loses at most once the network has healed, in percent. A healed network
/// still loses some: every vote counts when all honest validators are needed for a quorum, and
/// the simulated transport, unlike TCP, never sends a lost message again.
const HEALED_LOSS_PCT: u64 = 5;
/// Longest wait for a crashed validator's tasks to release its storage before a restart.
const RELEASE_LIMIT_MS: u64 = 10_000;

/// When the simulated clock starts.
pub fn start_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(START_S)
}

/// A running honest validator.
pub struct Node {
    /// Its chain (state, pools, index).
    pub chain: Arc<Chain<Ctx>>,
    /// Its transaction gossip.
    pub gossip: gossip::Gossip,
    /// Its marshal (finalized blocks and certificates on its disk).
    pub marshal: MarshalMailbox,
    handle: Handle<()>,
    stopped: Arc<Mutex<Option<String>>>,
}

impl Node {
    /// Why the validator stopped by itself, if it did.
    fn stopped(&self) -> Option<String> {
        self.stopped.lock().unwrap().clone()
    }
}

/// The genesis of the simulated network: the validators, a bank issuing CNY, an operator
/// organization, and the funded accounts of the workload.
pub fn genesis(validators: &[ed25519::PublicKey], cast: &Cast) -> Genesis {
    let funded = |account, amount| GenesisAccount {
        account,
        organization: None,
        admin: false,
        balances: [("CNY".parse().unwrap(), Amount(amount))]
            .into_iter()
            .collect(),
        tier: None,
    };
    let mut accounts = vec![
        GenesisAccount {
            account: cast.issuer.id,
            organization: Some("bank".parse().unwrap()),
            admin: true,
            balances: BTreeMap::new(),
            tier: None,
        },
        GenesisAccount {
            account: cast.operator.id,
            organization: Some("ops".parse().unwrap()),
            admin: true,
            balances: BTreeMap::new(),
            tier: None,
        },
    ];
    accounts.extend(cast.payers.iter().map(|p| funded(p.id, PAYER_BALANCE)));
    accounts.extend(cast.cheques.iter().map(|c| funded(c[0].id, DRAWER_BALANCE)));
    Genesis {
        chain_name: "sim".into(),
        genesis_time_ms: START_S * 1000,
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
            GenesisOrganization {
                id: "bank".parse().unwrap(),
                name: "Bank".into(),
                roles: [Role::Validator, Role::Issuer].into_iter().collect(),
            },
            GenesisOrganization {
                id: "ops".parse().unwrap(),
                name: "Operator".into(),
                roles: [Role::Operator].into_iter().collect(),
            },
        ],
        assets: vec![GenesisAsset {
            code: "CNY".parse().unwrap(),
            decimals: 2,
            issuer: "bank".parse().unwrap(),
            name: "yuan".into(),
        }],
        accounts,
        tiers: Vec::new(),
        default_tier: None,
    }
}

/// The validators' consensus keys, the workload's accounts and devices, and the genesis of
/// `plan`'s network.
pub fn identities(plan: &Plan) -> (Vec<ed25519::PrivateKey>, Cast, Genesis) {
    let signers: Vec<_> = (0..plan.validators as u64)
        .map(|i| ed25519::PrivateKey::from_seed(plan.seed.wrapping_mul(100).wrapping_add(i)))
        .collect();
    let keys: Vec<_> = signers.iter().map(|s| s.public_key()).collect();
    let cast = Cast::new(plan);
    let genesis = genesis(&keys, &cast);
    (signers, cast, genesis)
}

/// The links of `plan`'s network, losing `loss_pct` of messages.
fn link(plan: &Plan, loss_pct: u64) -> Link {
    Link {
        latency: Duration::from_millis(plan.latency_ms),
        jitter: Duration::from_millis(plan.jitter_ms),
        success_rate: Probability::new(100 - loss_pct, 100).expect("a percentage"),
    }
}

fn per_mille(x: u64) -> Probability {
    Probability::new(x, 1000).expect("at most 1000 per mille")
}

/// The storage model outside fault windows: no errors; with a power loss ahead, unsynced
/// writes are tracked so that the crash keeps part of them.
pub fn baseline_faults(plan: &Plan) -> FaultConfig {
    match plan.restart {
        Some(Restart::PowerLoss {
            mode,
            retention_pct,
        }) => FaultConfig::default().write(WriteConfig {
            failure_rate: per_mille(0),
            retention_rate: Probability::new(retention_pct, 100).expect("a percentage"),
            mode,
        }),
        _ => FaultConfig::default(),
    }
}

fn with_faults(plan: &Plan, f: StorageFaults) -> FaultConfig {
    let mut c = baseline_faults(plan);
    c.read_rate = Some(per_mille(f.read_pm));
    c.sync_rate = Some(per_mille(f.sync_pm));
    c.write_rate = Some(WriteConfig {
        failure_rate: per_mille(f.write_pm),
        retention_rate: per_mille(0),
        mode: deterministic::PartialWriteMode::Prefix,
    });
    c
}

/// The network of one runtime (a power loss or clean restart starts a second one on the same
/// storage).
pub struct World<'p> {
    /// The plan being played.
    pub plan: &'p Plan,
    /// The workload's accounts and devices.
    pub cast: Cast,
    /// The runtime.
    pub context: Ctx,
    oracle: Net,
    signers: Vec<ed25519::PrivateKey>,
    keys: Vec<ed25519::PublicKey>,
    /// The genesis.
    pub genesis: Genesis,
    index_dir: &'p Path,
    link: Link,
    links: BTreeSet<(usize, usize)>,
    nodes: Vec<Option<Node>>,
    released: Vec<Option<Weak<Chain<Ctx>>>>,
    down_until: BTreeMap<usize, u64>,
    storage_until: Option<u64>,
    /// Honest validators whose current incarnation ran while storage was failing. Such a
    /// validator may stop because of it long after the window: a failed sync is noticed only
    /// when its result is awaited, which may be at the next write to the same journal.
    exposed: BTreeSet<usize>,
    /// Logs and counts so far.
    pub carry: Carry,
    verbose: bool,
    last_trace_ms: u64,
    _byzantine: Handle<()>,
}

impl<'p> World<'p> {
    /// Starts the network: every honest validator from its storage (empty at first), and the
    /// Byzantine one.
    pub async fn boot(context: Ctx, plan: &'p Plan, index_dir: &'p Path, carry: Carry) -> Self {
        let n = plan.validators;
        let (signers, cast, genesis) = identities(plan);
        let keys: Vec<_> = signers.iter().map(|s| s.public_key()).collect();
        let (network, oracle) = Network::new_with_peers(
            context.child("network"),
            NetConfig {
                max_size: 8 * 1024 * 1024,
                max_peers_per_set: NonZeroUsize::new(n).expect("validators"),
                disconnect_on_block: true,
                tracked_peer_sets: NZUsize!(3),
            },
            keys.clone(),
        )
        .await;
        network.start();
        let link = link(plan, plan.loss_pct);
        let byzantine = start_byzantine(
            &context,
            &oracle,
            signers[plan.byzantine].clone(),
            &keys,
            plan.byzantine_kind,
        )
        .await;
        let mut world = Self {
            plan,
            cast,
            context,
            oracle,
            signers,
            keys,
            genesis,
            index_dir,
            link,
            links: BTreeSet::new(),
            nodes: (0..n).map(|_| None).collect(),
            released: (0..n).map(|_| None).collect(),
            down_until: BTreeMap::new(),
            storage_until: None,
            exposed: BTreeSet::new(),
            carry,
            verbose: std::env::var_os("SIM_VERBOSE").is_some(),
            last_trace_ms: 0,
            _byzantine: byzantine,
        };
        world.set_topology(None).await;
        for v in plan.honest() {
            world.start(v).await;
        }
        world
    }

    /// With `SIM_VERBOSE` set, prints what happens at simulated time.
    fn trace(&self, what: impl FnOnce() -> String) {
        if self.verbose {
            println!(
                "seed {} at {:>6} ms: {}",
                self.plan.seed,
                self.now_ms(),
                what()
            );
        }
    }

    /// Traces the validators' tips about once a second.
    fn trace_tips(&mut self) {
        if self.verbose && self.now_ms() >= self.last_trace_ms + 1_000 {
            self.last_trace_ms = self.now_ms();
            self.trace(|| {
                format!(
                    "tips {:?}, run digest {}",
                    self.tips(),
                    self.context.auditor().state()
                )
            });
        }
    }

    /// Milliseconds since the start of the run (across restarts of the runtime).
    pub fn now_ms(&self) -> u64 {
        self.clock_ms() - START_S * 1000
    }

    /// The simulated clock, milliseconds since the Unix epoch.
    pub fn clock_ms(&self) -> u64 {
        self.context
            .current()
            .duration_since(UNIX_EPOCH)
            .expect("after the epoch")
            .as_millis() as u64
    }

    /// The honest validators that are running.
    pub fn live(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|v| {
                self.nodes[*v]
                    .as_ref()
                    .is_some_and(|n| n.stopped().is_none())
            })
            .collect()
    }

    /// A running validator.
    pub fn node(&self, v: usize) -> &Node {
        self.nodes[v].as_ref().expect("a running validator")
    }

    /// The finalized tip height of every running honest validator.
    pub fn tips(&self) -> Vec<(usize, u64)> {
        self.live()
            .into_iter()
            .map(|v| (v, self.node(v).chain.tip().height))
            .collect()
    }

    /// The links of the network: every pair, or those `split` leaves.
    async fn set_topology(&mut self, split: Option<&Split>) {
        let n = self.plan.validators;
        let desired: BTreeSet<(usize, usize)> = (0..n)
            .flat_map(|a| (0..n).map(move |b| (a, b)))
            .filter(|(a, b)| a != b && split.is_none_or(|s| s.connects(*a, *b)))
            .collect();
        for &(a, b) in self.links.difference(&desired) {
            let _ = self
                .oracle
                .remove_link(self.keys[a].clone(), self.keys[b].clone())
                .await;
        }
        for &(a, b) in desired.difference(&self.links) {
            self.oracle
                .add_link(
                    self.keys[a].clone(),
                    self.keys[b].clone(),
                    self.link.clone(),
                )
                .await
                .expect("link");
        }
        self.links = desired;
    }

    fn set_storage(&self, faults: Option<StorageFaults>) {
        let cfg = match faults {
            Some(f) => with_faults(self.plan, f),
            None => baseline_faults(self.plan),
        };
        *self.context.storage_fault_config().write() = cfg;
    }

    /// Starts honest validator `v` from its storage, once its previous incarnation (if any) has
    /// released it.
    async fn start(&mut self, v: usize) {
        self.exposed.remove(&v);
        if let Some(old) = self.released[v].take() {
            let deadline = self.now_ms() + RELEASE_LIMIT_MS;
            while old.strong_count() > 0 {
                assert!(
                    self.now_ms() < deadline,
                    "seed {}: the crashed v{v} still holds its chain after {RELEASE_LIMIT_MS} ms",
                    self.plan.seed
                );
                self.context.sleep(Duration::from_millis(10)).await;
            }
        }
        let node = start_validator(
            &self.context,
            &self.oracle,
            self.signers[v].clone(),
            v,
            self.genesis.clone(),
            self.keys.clone(),
            &self.index_dir.join(format!("v{v}.redb")),
        )
        .await
        .unwrap_or_else(|e| {
            panic!(
                "seed {}: v{v} cannot start from its storage: {e}",
                self.plan.seed
            )
        });
        self.nodes[v] = Some(node);
        self.carry.logs.entry(v).or_default().push(Vec::new());
    }

    /// Records what `v`'s current incarnation finalized.
    fn snapshot_log(&mut self, v: usize) {
        if let Some(node) = &self.nodes[v] {
            let log = node.chain.finalized_log();
            *self
                .carry
                .logs
                .entry(v)
                .or_default()
                .last_mut()
                .expect("an incarnation") = log;
        }
    }

    /// Kills `v` at once: its tasks end wherever they are, and whatever it had not synced to
    /// storage is lost (an unclean shutdown).
    fn crash(&mut self, v: usize) {
        self.snapshot_log(v);
        let node = self.nodes[v].take().expect("a running validator");
        node.handle.abort();
        self.released[v] = Some(Arc::downgrade(&node.chain));
    }

    /// Takes down every validator that stopped by itself: expected during a storage fault window
    /// and, later, of an incarnation that ran during one (it is restarted after the window); a
    /// failure otherwise.
    fn reap_stops(&mut self) {
        let now = self.now_ms();
        for v in 0..self.nodes.len() {
            let Some(reason) = self.nodes[v].as_ref().and_then(|n| n.stopped()) else {
                continue;
            };
            let expected = self.storage_until.is_some() || self.exposed.contains(&v);
            assert!(
                expected,
                "seed {}: v{v} stopped by itself at {now} ms, without having run during a storage \
                 fault: {reason}",
                self.plan.seed
            );
            self.trace(|| format!("v{v} stopped: {reason}"));
            self.carry.storage_stops += 1;
            self.crash(v);
            let after = self.storage_until.unwrap_or(now).max(now) + RESTART_AFTER_STORAGE_MS;
            self.down_until.insert(v, after);
        }
    }

    /// Restarts the validators whose time down is over (never while storage is failing).
    async fn restart_due(&mut self) {
        if self.storage_until.is_some() {
            return;
        }
        let now = self.now_ms();
        let due: Vec<usize> = self
            .down_until
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(v, _)| *v)
            .collect();
        for v in due {
            self.trace(|| format!("restart v{v}"));
            self.down_until.remove(&v);
            self.start(v).await;
            self.carry.restarts += 1;
        }
    }

    /// Plays the plan's faults while the clients work, until the end of the fault phase.
    pub async fn fault_phase(&mut self, client: &mut Client) {
        let mut faults = self.plan.faults.iter().peekable();
        let mut partition_until = None;
        let mut next_tick = 0;
        loop {
            let now = self.now_ms();
            if now >= self.plan.fault_ms {
                break;
            }
            while let Some(f) = faults.next_if(|f| f.at_ms <= now) {
                match &f.kind {
                    FaultKind::Partition { split, ms } => {
                        self.trace(|| format!("partition {split:?} for {ms} ms"));
                        self.set_topology(Some(split)).await;
                        partition_until = Some(now + ms);
                    }
                    FaultKind::Crash { victim, down_ms } => {
                        if self.nodes[*victim].is_some() {
                            self.trace(|| format!("crash v{victim} for {down_ms} ms"));
                            self.crash(*victim);
                            self.down_until.insert(*victim, now + down_ms);
                        }
                    }
                    FaultKind::Storage { faults, ms } => {
                        self.trace(|| format!("storage faults {faults:?} for {ms} ms"));
                        self.set_storage(Some(*faults));
                        self.storage_until = Some(now + ms);
                        self.exposed
                            .extend((0..self.nodes.len()).filter(|v| self.nodes[*v].is_some()));
                    }
                }
            }
            if partition_until.is_some_and(|t| t <= now) {
                self.trace(|| "partition healed".into());
                self.set_topology(None).await;
                partition_until = None;
            }
            if self.storage_until.is_some_and(|t| t <= now) {
                self.trace(|| "storage works again".into());
                self.set_storage(None);
                self.storage_until = None;
            }
            self.reap_stops();
            self.restart_due().await;
            self.trace_tips();
            if now >= next_tick {
                client.tick(self).await;
                next_tick = self.now_ms() + TICK_MS;
            }
            let next = [
                faults.peek().map(|f| f.at_ms),
                partition_until,
                self.storage_until,
                self.down_until.values().min().copied(),
                Some(next_tick),
                Some(self.plan.fault_ms),
            ]
            .into_iter()
            .flatten()
            .min()
            .expect("the end of the phase");
            let now = self.now_ms();
            self.context
                .sleep(Duration::from_millis(
                    next.saturating_sub(now).clamp(1, TICK_MS),
                ))
                .await;
        }
    }

    /// Ends the runtime's life at the end of the fault phase: with the stop signal first for a
    /// clean restart, at once for a power loss. Returns what the next runtime needs.
    pub async fn shut_down(mut self, restart: Restart) -> Carry {
        if restart == Restart::Clean {
            self.carry.audit_at_stop = Some(self.context.auditor().state());
            // The simulated network keeps its links in a hash map: dropped by the stop, they
            // would close in an order that differs between processes, and the tasks they wake
            // would run in that order. Cutting them first, in a fixed order, keeps a clean stop
            // replayable.
            for (a, b) in std::mem::take(&mut self.links) {
                let _ = self
                    .oracle
                    .remove_link(self.keys[a].clone(), self.keys[b].clone())
                    .await;
            }
            // Validators end by themselves on the stop signal; that is no failure here.
            let _ = self
                .context
                .child("shutdown")
                .stop(0, Some(Duration::from_secs(10)))
                .await;
        }
        for v in 0..self.nodes.len() {
            self.snapshot_log(v);
        }
        self.carry
    }

    /// Runs the clients (and watches for validators that stop) until `done` holds or `limit_ms`
    /// passes; returns whether `done` held.
    pub async fn drive(
        &mut self,
        client: &mut Client,
        limit_ms: u64,
        done: impl Fn(&Self, &Client) -> bool,
    ) -> bool {
        let deadline = self.now_ms() + limit_ms;
        loop {
            self.reap_stops();
            self.restart_due().await;
            self.trace_tips();
            if done(self, client) {
                return true;
            }
            if self.now_ms() >= deadline {
                return false;
            }
            client.tick(self).await;
            self.context.sleep(Duration::from_millis(TICK_MS)).await;
        }
    }

    /// Heals everything: full links (losing at most [HEALED_LOSS_PCT] of messages), working
    /// storage, every honest validator running.
    pub async fn heal(&mut self) {
        self.trace(|| "heal".into());
        self.set_storage(None);
        self.storage_until = None;
        self.link = link(self.plan, self.plan.loss_pct.min(HEALED_LOSS_PCT));
        for (a, b) in std::mem::take(&mut self.links) {
            let _ = self
                .oracle
                .remove_link(self.keys[a].clone(), self.keys[b].clone())
                .await;
        }
        self.set_topology(None).await;
        self.down_until.clear();
        for v in self.plan.honest() {
            if self.nodes[v].is_none() {
                self.start(v).await;
                self.carry.restarts += 1;
            }
        }
    }

    /// Records the logs of the running validators (before the final checks).
    pub fn snapshot_logs(&mut self) {
        for v in 0..self.nodes.len() {
            self.snapshot_log(v);
        }
    }

    /// Pairs (blocker, blocked) of validators that blocked one another on the network.
    pub async fn blocked(&self) -> Vec<(usize, usize)> {
        let at = |k: &ed25519::PublicKey| self.keys.iter().position(|x| x == k).expect("a key");
        self.oracle
            .blocked()
            .await
            .expect("network runs")
            .iter()
            .map(|(a, b)| (at(a), at(b)))
            .collect()
    }
}

/// Starts the Byzantine validator: the chosen simplex mock on the consensus channels, with its
/// own key among the validators.
async fn start_byzantine(
    context: &Ctx,
    oracle: &Net,
    signer: ed25519::PrivateKey,
    keys: &[ed25519::PublicKey],
    kind: Byzantine,
) -> Handle<()> {
    let control = oracle.control(signer.public_key());
    let quota = Quota::per_second(NZU32!(100_000));
    let votes = control
        .register(channel::VOTES, quota)
        .await
        .expect("channel registers");
    let certificates = control
        .register(channel::CERTIFICATES, quota)
        .await
        .expect("channel registers");
    let participants = Set::from_iter_dedup(keys.iter().cloned());
    let scheme = Scheme::signer(NAMESPACE, participants, signer).expect("a validator");
    let context = context.child("byzantine");
    match kind {
        Byzantine::Conflicter => {
            let mock: conflicter::Conflicter<_, _, Sha256> =
                conflicter::Conflicter::new(context, conflicter::Config { scheme });
            mock.start(votes)
        }
        Byzantine::Nuller => {
            let mock: nuller::Nuller<_, _, Sha256> =
                nuller::Nuller::new(context, nuller::Config { scheme });
            mock.start(votes)
        }
        Byzantine::Equivocator => {
            let mock = equivocator::Equivocator::new(
                context,
                equivocator::Config::<_, _, Sha256> {
                    scheme,
                    elector: RoundRobin::<Sha256>::default(),
                    epoch: Epoch::zero(),
                    // Nobody listens: honest validators only accept blocks they can fetch
                    // through marshal, so the two proposals are never available to them.
                    relay: Arc::new(Relay::new()),
                },
            );
            mock.start(votes, certificates)
        }
    }
}

/// Starts an honest validator: the node's chain on the runtime's storage with its index in
/// `index_path`, consensus, and gossip, on the simulated network. The validator stops as a
/// whole (recording why) as soon as any of its actors ends.
async fn start_validator(
    context: &Ctx,
    oracle: &Net,
    signer: ed25519::PrivateKey,
    v: usize,
    genesis: Genesis,
    validators: Vec<ed25519::PublicKey>,
    index_path: &Path,
) -> Result<Node, String> {
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
        channel::READINGS,
    ] {
        regs.push(
            control
                .register(ch, quota)
                .await
                .expect("channel registers"),
        );
    }
    let readings = regs.pop().unwrap();
    let txs = regs.pop().unwrap();
    let mut regs = regs.into_iter();
    let channels = Channels {
        votes: regs.next().unwrap(),
        certificates: regs.next().unwrap(),
        resolver: regs.next().unwrap(),
        broadcast: regs.next().unwrap(),
        backfill: regs.next().unwrap(),
    };
    // As a data format 8 node keeps it: readings and transaction entries in a store of their
    // own.
    let index = Index::open(index_path)
        .and_then(|i| {
            i.with_index_store(
                &index_path.with_extension("lsm"),
                Holds::ReadingsAndTransactions,
                |_, _| {},
            )
        })
        .map_err(|e| e.to_string())?;
    let (ready_tx, ready_rx) = futures::channel::oneshot::channel();
    let manager = oracle.manager();
    let stopped = Arc::new(Mutex::new(None));
    let stop = stopped.clone();
    let handle =
        context
            .child("validator")
            .with_attribute("index", v)
            .spawn(move |ctx| async move {
                let limits = ChainLimits {
                    max_block_txs: 100,
                    max_block_readings: 100,
                    max_block_verify_cost: 400,
                    max_block_bytes: 1 << 20,
                    max_clock_skew_ms: 5_000,
                    max_nonce_ahead: 64,
                };
                let prefix = format!("v{v}");
                let chain = match Chain::open(
                    ctx.child("chain"),
                    &prefix,
                    genesis,
                    validators,
                    Some(index),
                    limits,
                    (Pool::new(10_000, 64), ReadingPool::new(10_000, 64)),
                )
                .await
                {
                    Ok(mut c) => {
                        // As a node's default configuration paces empty blocks.
                        c.set_idle_block_interval(Duration::from_millis(
                            verity_node::config::default_idle_block_interval_ms(),
                        ));
                        Arc::new(c)
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let (marshal, handles) = engine::start(
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
                            known: None,
                        },
                        block_compression: Some(verity_node::data_format::BLOCK_COMPRESSION_LEVEL),
                        marshal_views_per_section: verity_node::data_format::DataFormat(
                            verity_node::data_format::CURRENT,
                        )
                        .marshal_views_per_section(),
                    },
                    chain.clone(),
                    signer,
                    channels,
                    control.clone(),
                    manager,
                )
                .await;
                // As the node's runner does: the tip's block comes from marshal's archive.
                let committed = chain.committed().await.height;
                if committed > 0
                    && let Some(b) = marshal.get_block(Height::new(committed)).await
                {
                    chain.restore_tip(b.inner());
                }
                let gossip = gossip::start(ctx.child("gossip"), chain.clone(), txs, readings);
                let _ = ready_tx.send(Ok((chain, gossip, marshal)));
                let (result, actor, _) =
                    futures::future::select_all(handles.into_iter().map(Box::pin)).await;
                // Returning ends every task of this validator.
                *stop.lock().unwrap() = Some(format!("actor {actor} ended with {result:?}"));
            });
    let (chain, gossip, marshal) = ready_rx
        .await
        .map_err(|_| "the validator task ended while starting".to_string())??;
    Ok(Node {
        chain,
        gossip,
        marshal,
        handle,
        stopped,
    })
}
