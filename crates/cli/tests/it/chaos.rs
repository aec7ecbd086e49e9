//! Process-level chaos and crash consistency: real `verity` validators under load from
//! `verity sim` and tracked clients, while a seeded schedule SIGKILLs, SIGSTOPs and restarts
//! validators and partitions them through fault-injecting TCP proxies; afterwards every fact
//! is checked through the public HTTP API only (see docs/chaos.md).
//!
//! Both tests are parametrized by environment variables, so that `scripts/chaos` runs the same
//! code much longer than CI does:
//!
//! | variable | meaning | CI default |
//! | --- | --- | --- |
//! | `CHAOS_SEED` | seed of the fault schedule (decimal or `0x` hex) | from the clock, printed |
//! | `CHAOS_ROUNDS` | faults of the chaos test | 5 (one of each kind) |
//! | `CHAOS_KILLS` | SIGKILLs of the crash test | 3 |
//! | `CHAOS_RATE` | readings per second offered by all `verity sim` processes | 150 |
//! | `CHAOS_PROOFS` | claims of each kind whose proof is fetched and verified, or `all` | 100 |
//!
//! The seed decides every fault, victim and duration, so a run's faults replay exactly; the
//! load and the moments at which the processes see the faults depend on timing.

mod check;
mod load;
mod proxy;

use crate::harness::Net;
use check::{ProofBudget, Reference};
use load::{Api, Claims, LoadShape, Nodes, Observer, Sim, Tracked, Workload};
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use proxy::Links;
use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

/// Validators of a chaos network.
const VALIDATORS: usize = 4;
/// How long the network may take to finalize again once a fault is healed.
const RECOVERY_LIMIT: Duration = Duration::from_secs(120);
/// Blocks the network must finalize after a fault heals before it counts as recovered.
const RECOVERY_BLOCKS: u64 = 2;
/// How long a restarted validator may take to answer its API again.
const RESTART_LIMIT: Duration = Duration::from_secs(60);
/// Heights that have not changed for this long after a cut count as settled.
const SETTLE: Duration = Duration::from_millis(1500);

/// Older heights at which a restarted validator's blocks are compared, per kill.
const BLOCK_SAMPLE: u64 = 20;
/// Older claims of each kind re-checked on a restarted validator, per kill.
const CLAIM_SAMPLE: usize = 50;

/// Up to `want` items of `all`, picked at random (with repeats).
fn sample<T: Copy>(rng: &mut Rng, all: &[T], want: usize) -> Vec<T> {
    if all.is_empty() {
        return Vec::new();
    }
    (0..want)
        .map(|_| all[rng.below(all.len() as u64) as usize])
        .collect()
}

/// A seeded pseudo-random generator (SplitMix64): the same seed, the same choices.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A duration uniform in `lo_ms..=hi_ms` milliseconds.
    pub fn millis(&mut self, lo_ms: u64, hi_ms: u64) -> Duration {
        Duration::from_millis(lo_ms + self.below(hi_ms - lo_ms + 1))
    }

    /// A random permutation of `0..n`.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut v: Vec<usize> = (0..n).collect();
        for k in (1..n).rev() {
            v.swap(k, self.below(k as u64 + 1) as usize);
        }
        v
    }
}

/// The run's printed log: faults injected and facts checked, with the time since the start.
pub struct Log {
    started: Instant,
    faults: AtomicU64,
    facts: AtomicU64,
}

impl Log {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            faults: AtomicU64::new(0),
            facts: AtomicU64::new(0),
        }
    }

    fn line(&self, tag: &str, text: &str) {
        println!(
            "[{:7.1}s] {tag:<5} {text}",
            self.started.elapsed().as_secs_f64()
        );
    }

    pub fn fault(&self, text: &str) {
        self.faults.fetch_add(1, Ordering::Relaxed);
        self.line("FAULT", text);
    }

    pub fn fact(&self, text: &str) {
        self.facts.fetch_add(1, Ordering::Relaxed);
        self.line("FACT", text);
    }

    pub fn note(&self, text: &str) {
        self.line("", text);
    }

    fn summary(&self, name: &str) {
        self.line(
            "DONE",
            &format!(
                "{name}: {} faults injected, {} facts checked, {:.1} s",
                self.faults.load(Ordering::Relaxed),
                self.facts.load(Ordering::Relaxed),
                self.started.elapsed().as_secs_f64()
            ),
        );
    }
}

/// A run's parameters, from the environment.
struct Params {
    seed: u64,
    rounds: usize,
    kills: usize,
    rate: f64,
    proofs: ProofBudget,
}

impl Params {
    fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let number = |name: &str, default: usize| {
            var(name).map_or(default, |v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("{name}={v} is not a number"))
            })
        };
        let seed = match var("CHAOS_SEED") {
            Some(v) => match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => v.parse(),
            }
            .unwrap_or_else(|_| panic!("CHAOS_SEED={v} is not a number")),
            None => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock after 1970")
                .as_nanos() as u64,
        };
        let proofs = match var("CHAOS_PROOFS").as_deref() {
            Some("all") => ProofBudget(None),
            _ => ProofBudget(Some(number("CHAOS_PROOFS", 100))),
        };
        Self {
            seed,
            rounds: number("CHAOS_ROUNDS", 5),
            kills: number("CHAOS_KILLS", 3),
            rate: var("CHAOS_RATE").map_or(150.0, |v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("CHAOS_RATE={v} is not a number"))
            }),
            proofs,
        }
    }
}

/// Rewrites every node's config so that it reaches each other validator through a proxy of
/// `links`, started here towards the validators' real p2p addresses.
fn route_through_proxies(net: &Net) -> Links {
    let n = net.validators();
    let path = |i: usize| net.node_dir(i).join("config.toml");
    let mut configs: Vec<toml::Value> = (0..n)
        .map(|i| {
            let text = std::fs::read_to_string(path(i)).expect("config");
            toml::from_str(&text).expect("config parses")
        })
        .collect();
    let listens: Vec<SocketAddr> = configs
        .iter()
        .map(|c| {
            c["p2p"]["listen"]
                .as_str()
                .and_then(|a| a.parse().ok())
                .expect("p2p.listen")
        })
        .collect();
    let links = Links::start(&listens);
    for (i, config) in configs.iter_mut().enumerate() {
        let peers = config["p2p"]["peers"].as_array_mut().expect("p2p.peers");
        let mut routed = 0;
        for peer in peers {
            let address: SocketAddr = peer["address"]
                .as_str()
                .and_then(|a| a.parse().ok())
                .expect("peer address");
            let j = listens
                .iter()
                .position(|l| *l == address)
                .expect("peer is a validator");
            if j != i {
                peer["address"] = toml::Value::String(links.addr(i, j).to_string());
                routed += 1;
            }
        }
        assert_eq!(routed, n - 1, "node{i} names every other validator");
        std::fs::write(path(i), toml::to_string(config).expect("config encodes")).expect("write");
    }
    links
}

/// Sends `signal` to node `i`'s process.
fn signal(net: &Net, i: usize, signal: Signal) {
    let pid = net.pid(i).expect("node runs");
    kill(Pid::from_raw(pid as i32), signal).unwrap_or_else(|e| panic!("{signal} node{i}: {e}"));
}

/// Waits until node `i`'s API answers; returns the height it reports and how long it took.
fn wait_answers(api: &Api, net: &Net, i: usize) -> (u64, Duration) {
    let started = Instant::now();
    let h = crate::harness::wait_for(&format!("node{i} to answer its API"), RESTART_LIMIT, || {
        check::height(api, net, i)
    });
    (h, started.elapsed())
}

/// The highest height any of `nodes` reports.
fn max_height(api: &Api, net: &Net, nodes: &[usize]) -> u64 {
    nodes
        .iter()
        .filter_map(|&i| check::height(api, net, i))
        .max()
        .unwrap_or(0)
}

/// A network under load: validators behind proxies, sims on every broker, tracked clients.
struct Run {
    log: Arc<Log>,
    net: Net,
    links: Links,
    nodes: Arc<Nodes>,
    claims: Arc<Claims>,
    tracked: Tracked,
    workload: Option<Workload>,
    observers: Vec<Observer>,
    sims: Vec<Sim>,
    api: Api,
    reference: Reference,
}

impl Run {
    fn start(name: &str, params: &Params, shape: LoadShape) -> Self {
        let log = Arc::new(Log::new());
        log.note(&format!(
            "{name}: seed {} (replay the faults: CHAOS_SEED={} scripts/chaos ...), {VALIDATORS} validators, {:.0} readings/s from verity sim",
            params.seed, params.seed, shape.sim_rate
        ));
        let mut net = Net::init(VALIDATORS);
        let links = route_through_proxies(&net);
        net.start_all();
        log.note(&format!(
            "network up in {}: validator-to-validator traffic goes through {} proxies",
            net.path().display(),
            VALIDATORS * (VALIDATORS - 1)
        ));
        let tracked = Tracked::set_up(&net, &shape);
        let claims = Arc::new(Claims::default());
        let observers: Vec<Observer> = (0..VALIDATORS)
            .map(|i| Observer::start(net.mqtt_addr(i), i, claims.clone()))
            .collect();
        let sims = (0..VALIDATORS)
            .map(|i| {
                let log_path = net.node_dir(i).join("sim.log");
                Sim::start(
                    &net,
                    i,
                    shape.sim_devices,
                    shape.sim_rate / VALIDATORS as f64,
                    &log_path,
                )
            })
            .collect();
        let nodes = Nodes::new(&net);
        let workload = Workload::start(&tracked, nodes.clone(), claims.clone(), params.seed);
        log.note(&format!(
            "load: verity sim with {} devices on each validator's broker, {} tracked senders, {} tracked HTTP devices",
            shape.sim_devices, shape.senders, shape.devices
        ));
        Self {
            log,
            net,
            links,
            nodes,
            claims,
            tracked,
            workload: Some(workload),
            observers,
            sims,
            api: Api::default(),
            reference: Reference::default(),
        }
    }

    fn all(&self) -> Vec<usize> {
        (0..self.net.validators()).collect()
    }

    fn others(&self, node: usize) -> Vec<usize> {
        self.all().into_iter().filter(|&i| i != node).collect()
    }

    /// Waits until `nodes` finalize `blocks` beyond the highest height any of them reports now.
    fn wait_progress(&self, nodes: &[usize], blocks: u64, what: &str) -> (u64, Duration) {
        let target = max_height(&self.api, &self.net, nodes) + blocks;
        let took = check::wait_all_reach(&self.api, &self.net, nodes, target, RECOVERY_LIMIT);
        self.log.fact(&format!(
            "{what}: validators {nodes:?} all reached height {target} in {:.1} s",
            took.as_secs_f64()
        ));
        (target, took)
    }

    /// The heights `nodes` report now.
    fn heights(&self, nodes: &[usize]) -> Vec<Option<u64>> {
        nodes
            .iter()
            .map(|&i| check::height(&self.api, &self.net, i))
            .collect()
    }

    /// The heights of `nodes` once they have not changed for [SETTLE]: after a cut, what was
    /// already certified may still be executed; anything after that would be finalized
    /// without a quorum. Fails if they keep changing for [RECOVERY_LIMIT].
    fn settled_heights(&self, nodes: &[usize]) -> Vec<Option<u64>> {
        let deadline = Instant::now() + RECOVERY_LIMIT;
        let mut last = self.heights(nodes);
        let mut since = Instant::now();
        loop {
            std::thread::sleep(Duration::from_millis(250));
            let now = self.heights(nodes);
            if now != last {
                (last, since) = (now, Instant::now());
            } else if since.elapsed() >= SETTLE {
                return last;
            }
            assert!(
                Instant::now() < deadline,
                "validators {nodes:?} kept finalizing without a quorum: {last:?}"
            );
        }
    }

    /// Restarts killed node `i` and waits until it answers.
    fn restart(&mut self, i: usize) -> u64 {
        self.net.start_node(i);
        let (h, took) = wait_answers(&self.api, &self.net, i);
        self.nodes.set_up(i, true);
        self.log.fact(&format!(
            "node{i} restarted and answers in {:.1} s, at height {h} from its disk",
            took.as_secs_f64()
        ));
        h
    }

    /// Stops the load, lets the tracked clients settle, checks every final fact.
    fn finish(mut self, name: &str, proofs: ProofBudget) {
        let reports = self.workload.take().expect("load runs").stop();
        for r in &reports {
            self.log.note(&format!(
                "{}: {} committed, {} resubmissions",
                r.name, r.committed, r.resubmissions
            ));
        }
        for (i, mut sim) in std::mem::take(&mut self.sims).into_iter().enumerate() {
            let running = sim.running();
            let line = sim.stop();
            self.log.note(&format!(
                "verity sim on node{i} ({}): {line}",
                if running {
                    "ran to the end"
                } else {
                    "had exited"
                }
            ));
        }
        for (i, o) in self.observers.iter().enumerate() {
            o.stop();
            self.log.note(&format!(
                "node{i}'s broker: {} committed receipts observed",
                o.seen.load(Ordering::Relaxed)
            ));
        }
        let (forwarded, refused) = self.links.counts();
        self.log.note(&format!(
            "proxies: {forwarded} validator connections forwarded, {refused} refused while cut"
        ));
        let facts = check::final_facts(
            &self.log,
            &self.net,
            &mut self.reference,
            &self.claims,
            &self.tracked,
            &reports,
            proofs,
        );
        assert!(
            facts.tx_claims > 0 && facts.reading_claims > facts.sim_reading_claims,
            "the tracked clients got nothing committed: {facts:?}"
        );
        assert!(
            facts.sim_reading_claims > 0,
            "no committed receipt of verity sim was observed: {facts:?}"
        );
        self.log.note(&format!(
            "checked at height {}: {} blocks compared, {} tx and {} reading claims ({} from verity sim), {} tx and {} reading proofs",
            facts.height,
            facts.blocks_compared,
            facts.tx_claims,
            facts.reading_claims,
            facts.sim_reading_claims,
            facts.tx_proofs,
            facts.reading_proofs
        ));
        self.log.summary(name);
    }
}

/// The kinds of fault of the chaos test.
#[derive(Clone, Debug)]
enum Fault {
    /// SIGKILL, stay down, start again from the same disk.
    Kill { node: usize, down: Duration },
    /// SIGSTOP, then SIGCONT.
    Pause { node: usize, held: Duration },
    /// SIGTERM (a clean stop), then start again at once.
    Restart { node: usize },
    /// Cut every link of one validator.
    Isolate { node: usize, held: Duration },
    /// Split the validators into two sides, neither with a quorum.
    Halves {
        a: Vec<usize>,
        b: Vec<usize>,
        held: Duration,
    },
}

/// The seeded schedule: each fault after a pause of load without faults. Every five rounds
/// hold each kind once, in a seeded order; the schedule of N rounds is the first N of any
/// longer one with the same seed.
fn schedule(rng: &mut Rng, rounds: usize, n: usize) -> Vec<(Duration, Fault)> {
    let mut kinds = Vec::new();
    (0..rounds)
        .map(|_| {
            if kinds.is_empty() {
                kinds = rng.permutation(5);
            }
            let kind = kinds.pop().expect("refilled");
            let gap = rng.millis(500, 3000);
            let node = rng.below(n as u64) as usize;
            let fault = match kind {
                0 => Fault::Kill {
                    node,
                    down: rng.millis(500, 5000),
                },
                1 => Fault::Pause {
                    node,
                    held: rng.millis(1000, 6000),
                },
                2 => Fault::Restart { node },
                3 => Fault::Isolate {
                    node,
                    held: rng.millis(2000, 6000),
                },
                _ => {
                    let order = rng.permutation(n);
                    let (a, b) = order.split_at(n / 2);
                    Fault::Halves {
                        a: a.to_vec(),
                        b: b.to_vec(),
                        held: rng.millis(3000, 6000),
                    }
                }
            };
            (gap, fault)
        })
        .collect()
}

/// Random SIGKILLs, SIGSTOP/SIGCONT, clean restarts and partitions under load; then every
/// claimed transaction and reading is still committed with a valid proof on every validator,
/// and the validators agree on every block and state root.
#[test]
fn chaos_faults_lose_nothing_and_validators_agree() {
    let params = Params::from_env();
    let mut rng = Rng::new(params.seed);
    let steps = schedule(&mut rng, params.rounds, VALIDATORS);
    let shape = LoadShape {
        senders: 2,
        devices: 2,
        sim_devices: 4,
        sim_rate: params.rate,
    };
    let mut run = Run::start("chaos", &params, shape);
    run.log.note(&format!("schedule of seed {}:", params.seed));
    for (k, (gap, fault)) in steps.iter().enumerate() {
        run.log.note(&format!(
            "  {k}: after {:.1} s, {fault:?}",
            gap.as_secs_f64()
        ));
    }
    for (k, (gap, fault)) in steps.into_iter().enumerate() {
        std::thread::sleep(gap);
        let (txs, readings) = run.claims.counts();
        run.log.note(&format!(
            "round {k}: {txs} transactions and {readings} readings claimed committed so far"
        ));
        inject(&mut run, fault);
        run.wait_progress(
            &run.all(),
            RECOVERY_BLOCKS,
            "healed, the network finalizes again",
        );
    }
    run.finish("chaos", params.proofs);
}

/// Injects one fault, holds it, heals it, checking what must hold meanwhile.
fn inject(run: &mut Run, fault: Fault) {
    match fault {
        Fault::Kill { node, down } => {
            run.nodes.set_up(node, false);
            run.net.kill_node(node);
            run.log.fault(&format!(
                "SIGKILL node{node}, down for at least {:.1} s",
                down.as_secs_f64()
            ));
            let started = Instant::now();
            run.wait_progress(&run.others(node), 1, &format!("with node{node} killed"));
            std::thread::sleep(down.saturating_sub(started.elapsed()));
            run.restart(node);
        }
        Fault::Pause { node, held } => {
            run.nodes.set_up(node, false);
            signal(&run.net, node, Signal::SIGSTOP);
            run.log.fault(&format!(
                "SIGSTOP node{node} for at least {:.1} s",
                held.as_secs_f64()
            ));
            let started = Instant::now();
            run.wait_progress(&run.others(node), 1, &format!("with node{node} stopped"));
            std::thread::sleep(held.saturating_sub(started.elapsed()));
            signal(&run.net, node, Signal::SIGCONT);
            run.log.fault(&format!("SIGCONT node{node}"));
            let (h, took) = wait_answers(&run.api, &run.net, node);
            run.nodes.set_up(node, true);
            run.log.fact(&format!(
                "node{node} answers again {:.1} s after SIGCONT, at height {h}",
                took.as_secs_f64()
            ));
        }
        Fault::Restart { node } => {
            run.nodes.set_up(node, false);
            run.log
                .fault(&format!("SIGTERM node{node}, then start it again"));
            let started = Instant::now();
            let status = run.net.terminate_node(node, Duration::from_secs(30));
            assert!(
                status.is_some_and(|s| s.success()),
                "node{node} did not exit cleanly within 30 s of SIGTERM: {status:?} (see its node.log)"
            );
            run.log.fact(&format!(
                "node{node} exited cleanly (status 0) {:.1} s after SIGTERM",
                started.elapsed().as_secs_f64()
            ));
            run.restart(node);
        }
        Fault::Isolate { node, held } => {
            let others = run.others(node);
            run.links.partition(&[node], &others);
            run.log.fault(&format!(
                "partition: node{node} cut from {others:?} for at least {:.1} s",
                held.as_secs_f64()
            ));
            let started = Instant::now();
            let alone = run.settled_heights(&[node]);
            run.wait_progress(&others, 1, &format!("with node{node} isolated, the rest"));
            std::thread::sleep(held.saturating_sub(started.elapsed()));
            let after = run.heights(&[node]);
            assert_eq!(
                alone, after,
                "isolated node{node} finalized blocks on its own (height {alone:?} to {after:?})"
            );
            run.log.fact(&format!(
                "isolated node{node} finalized nothing alone (stayed at height {after:?})"
            ));
            run.links.heal_all();
            run.log.fault("partition healed");
        }
        Fault::Halves { a, b, held } => {
            run.links.partition(&a, &b);
            run.log.fault(&format!(
                "partition: {a:?} | {b:?}, no side has a quorum, for {:.1} s",
                held.as_secs_f64()
            ));
            let started = Instant::now();
            let all = run.all();
            let before = run.settled_heights(&all);
            std::thread::sleep(held.saturating_sub(started.elapsed()));
            let after = run.heights(&all);
            assert_eq!(
                before, after,
                "a side without a quorum finalized blocks during the partition"
            );
            run.log.fact(&format!(
                "neither side finalized anything while split (heights {after:?})"
            ));
            run.links.heal_all();
            run.log.fault("partition healed");
        }
    }
}

/// SIGKILLs of random validators at random moments under load; after each restart the
/// validator catches up, serves the same blocks and state roots as the others, and still
/// reports everything claimed committed. Ends with the chaos test's final facts.
#[test]
fn chaos_crash_kills_lose_nothing_and_restarts_catch_up() {
    let params = Params::from_env();
    // The kills come from the seed alone; the samples of what to re-check from another stream.
    let mut rng = Rng::new(params.seed ^ 0xc4a5_11ed);
    let mut picks = Rng::new(params.seed ^ 0x05a3_b1e5);
    let kills: Vec<(Duration, usize, Duration)> = (0..params.kills)
        .map(|_| {
            // A random moment under load, a random victim, a random time down.
            let gap = rng.millis(200, 2500);
            (
                gap,
                rng.below(VALIDATORS as u64) as usize,
                rng.millis(0, 1500),
            )
        })
        .collect();
    let shape = LoadShape {
        senders: 2,
        devices: 2,
        sim_devices: 4,
        sim_rate: params.rate * 1.5,
    };
    let mut run = Run::start("crash", &params, shape);
    run.log.note(&format!(
        "kills of seed {} (after, victim, down): {:?}",
        params.seed,
        kills
            .iter()
            .map(|(g, v, d)| format!("{:.1}s node{v} {:.1}s", g.as_secs_f64(), d.as_secs_f64()))
            .collect::<Vec<_>>()
    ));
    let mut checked_claims = 0usize;
    for (k, (gap, victim, down)) in kills.into_iter().enumerate() {
        std::thread::sleep(gap);
        let before = check::height(&run.api, &run.net, victim);
        run.nodes.set_up(victim, false);
        run.net.kill_node(victim);
        let (txs, readings) = run.claims.counts();
        run.log.fault(&format!(
            "kill {}/{}: SIGKILL node{victim} at height {before:?} ({txs} txs, {readings} readings claimed so far), down {:.1} s",
            k + 1,
            params.kills,
            down.as_secs_f64()
        ));
        std::thread::sleep(down);
        let recovered = run.restart(victim);
        let target = max_height(&run.api, &run.net, &run.others(victim));
        let took = check::wait_all_reach(&run.api, &run.net, &[victim], target, RECOVERY_LIMIT);
        run.log.fact(&format!(
            "node{victim} caught up from {recovered} to {target} in {:.1} s",
            took.as_secs_f64()
        ));
        // Consistent: the blocks around the crash and a sample of older ones equal the others'.
        let from = before
            .unwrap_or(recovered)
            .min(recovered)
            .saturating_sub(20);
        let mut compared = 0;
        for &i in &run.others(victim) {
            compared +=
                check::check_blocks(&mut run.reference, &run.api, &run.net, i, from, target);
        }
        compared +=
            check::check_blocks(&mut run.reference, &run.api, &run.net, victim, from, target);
        for _ in 0..BLOCK_SAMPLE.min(from) {
            let h = 1 + picks.below(from);
            compared += check::check_blocks(&mut run.reference, &run.api, &run.net, victim, h, h);
        }
        // Nothing committed lost: every claim from the window around the crash, and samples
        // of older ones, are still committed on the victim. (The final facts check them all.)
        let txs = run.claims.txs();
        let readings = run.claims.readings();
        let window = |h: u64| (from..=target).contains(&h);
        let tx_window = txs.iter().filter(|(_, c)| window(c.height));
        let tx_older: Vec<_> = txs.iter().filter(|(_, c)| c.height < from).collect();
        let r_window = readings.iter().filter(|(_, c)| window(c.height));
        let r_older: Vec<_> = readings.iter().filter(|(_, c)| c.height < from).collect();
        let n_tx = check::check_tx_claims(&run.api, &run.net, victim, tx_window)
            + check::check_tx_claims(
                &run.api,
                &run.net,
                victim,
                sample(&mut picks, &tx_older, CLAIM_SAMPLE),
            );
        let n_r = check::check_reading_claims(&run.api, &run.net, victim, r_window)
            + check::check_reading_claims(
                &run.api,
                &run.net,
                victim,
                sample(&mut picks, &r_older, CLAIM_SAMPLE),
            );
        checked_claims += n_tx + n_r;
        run.log.fact(&format!(
            "node{victim} consistent after restart: every validator's (block hash, state root) from height {from} to {target} and node{victim}'s at {} older heights equal the first answers ({compared} compared); {n_tx} claimed txs and {n_r} claimed readings (all from those heights, {CLAIM_SAMPLE} older ones of each kind) still committed on node{victim}",
            BLOCK_SAMPLE.min(from)
        ));
    }
    run.log.note(&format!(
        "{} kills, {checked_claims} claims re-checked on restarted validators",
        params.kills
    ));
    run.wait_progress(
        &run.all(),
        RECOVERY_BLOCKS,
        "after the last kill, the network finalizes",
    );
    run.finish("crash", params.proofs);
}
