//! What one seed does: the network (size, links, which validator is Byzantine and how), the
//! faults of the fault phase on a timeline, an optional restart of the whole network, and the
//! clients' workload. A plan is a pure function of the seed, so a failing seed is described by
//! printing its plan and replayed by running the seed again.

use commonware_runtime::deterministic::PartialWriteMode;
use commonware_utils::TestRng;
use rand_core10::Rng as _;
use std::fmt;

/// Fewest and most validators a seed runs.
pub const VALIDATORS_MIN: usize = 4;
/// Most validators a seed runs.
pub const VALIDATORS_MAX: usize = 7;
/// Worst message loss of a link, in percent.
pub const LOSS_PCT_MAX: u64 = 30;

/// How the Byzantine validator misbehaves (commonware's simplex mocks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Byzantine {
    /// Answers every notarize and finalize vote with one for a random digest and one for the
    /// proposal it saw: conflicting votes in the same view.
    Conflicter,
    /// When it leads, proposes two different blocks and sends each to a different part of the
    /// network: an equivocating leader.
    Equivocator,
    /// Votes both to nullify a view and to finalize its proposal.
    Nuller,
}

/// Which links a partition cuts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Split {
    /// Two halves (the first side as listed); nothing crosses between them.
    Halves(Vec<usize>),
    /// One validator cut off from all others.
    Isolate(usize),
    /// Each validator only reaches its two neighbours in this order (a ring).
    Ring(Vec<usize>),
}

impl Split {
    /// Whether validators `a` and `b` can talk during the partition.
    pub fn connects(&self, a: usize, b: usize) -> bool {
        match self {
            Self::Halves(side) => side.contains(&a) == side.contains(&b),
            Self::Isolate(v) => a != *v && b != *v,
            Self::Ring(order) => {
                let n = order.len();
                let pa = order.iter().position(|x| *x == a).expect("in the ring");
                let pb = order.iter().position(|x| *x == b).expect("in the ring");
                (pa + 1) % n == pb || (pb + 1) % n == pa
            }
        }
    }
}

/// Injected storage errors, per mille of operations, while a storage fault window lasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StorageFaults {
    /// Reads that fail.
    pub read_pm: u64,
    /// Writes that fail (keeping no byte of the failed write).
    pub write_pm: u64,
    /// Syncs that fail.
    pub sync_pm: u64,
}

/// A fault of the fault phase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Cut links for a while, then restore them.
    Partition {
        /// Which links.
        split: Split,
        /// For how long.
        ms: u64,
    },
    /// Kill an honest validator (an unclean shutdown: what it had not synced is lost) and start
    /// it again from its storage later.
    Crash {
        /// Which validator.
        victim: usize,
        /// How long it stays down.
        down_ms: u64,
    },
    /// Make storage operations fail for a while. A validator whose storage fails stops (the
    /// storage layer treats a failed read or sync as fatal); it is started again after the
    /// window.
    Storage {
        /// The error rates.
        faults: StorageFaults,
        /// For how long.
        ms: u64,
    },
}

/// A fault and when it starts, in milliseconds since the start of the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// Start.
    pub at_ms: u64,
    /// What.
    pub kind: FaultKind,
}

/// A restart of the whole network at the end of the fault phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restart {
    /// Every process stops at once (power loss): writes not yet synced are kept only in part,
    /// as a disk may keep them, chosen by the runtime's storage model.
    PowerLoss {
        /// How the kept bytes of an unsynced write are arranged.
        mode: PartialWriteMode,
        /// Share of the bytes of unsynced writes that survive, in percent.
        retention_pct: u64,
    },
    /// The runtime's stop signal (what SIGTERM does to a node), then every process ends.
    Clean,
}

/// The kinds of cheque lifecycle a client drives, each step after the previous one is final.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChequeScript {
    /// Issue, endorse to a third party, who presents it: cleared.
    Endorsed,
    /// Issue, the drawer stops payment, the payee presents: dishonoured (stopped).
    Stopped,
    /// Issue, pledge to a lender, the lender releases, the payee presents: cleared.
    Pledged,
    /// Issue, then the drawer cancels: cancelled.
    Cancelled,
}

/// What the clients submit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    /// Accounts sending transfers.
    pub payers: usize,
    /// Transfers each payer sends.
    pub transfers: usize,
    /// Mints by the issuer.
    pub mints: usize,
    /// Cheques, each with its own accounts.
    pub cheques: Vec<ChequeScript>,
    /// Devices registered by the operator.
    pub devices: usize,
    /// Readings each device sends.
    pub readings: usize,
}

impl Workload {
    /// Transactions in the workload.
    pub fn txs(&self) -> usize {
        let cheque_steps: usize = self
            .cheques
            .iter()
            .map(|c| match c {
                ChequeScript::Endorsed | ChequeScript::Stopped => 3,
                ChequeScript::Pledged => 4,
                ChequeScript::Cancelled => 2,
            })
            .sum();
        self.payers * self.transfers + self.mints + cheque_steps + self.devices
    }
}

/// Everything a seed does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The seed (also the runtime's seed).
    pub seed: u64,
    /// Validators, the Byzantine one included.
    pub validators: usize,
    /// The Byzantine validator.
    pub byzantine: usize,
    /// How it misbehaves.
    pub byzantine_kind: Byzantine,
    /// Mean link latency.
    pub latency_ms: u64,
    /// Standard deviation of the latency.
    pub jitter_ms: u64,
    /// Messages lost on every link, in percent.
    pub loss_pct: u64,
    /// Length of the fault phase.
    pub fault_ms: u64,
    /// The faults, by start time.
    pub faults: Vec<Fault>,
    /// A restart of the whole network after the fault phase.
    pub restart: Option<Restart>,
    /// The clients' work.
    pub workload: Workload,
}

fn below(rng: &mut TestRng, n: u64) -> u64 {
    rng.next_u64() % n
}

fn between(rng: &mut TestRng, lo: u64, hi: u64) -> u64 {
    lo + below(rng, hi - lo + 1)
}

fn shuffled(rng: &mut TestRng, n: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = below(rng, i as u64 + 1) as usize;
        v.swap(i, j);
    }
    v
}

impl Plan {
    /// The plan of `seed`.
    pub fn generate(seed: u64) -> Self {
        let mut rng = TestRng::new(seed);
        let validators = between(&mut rng, VALIDATORS_MIN as u64, VALIDATORS_MAX as u64) as usize;
        let byzantine = below(&mut rng, validators as u64) as usize;
        let byzantine_kind = match below(&mut rng, 3) {
            0 => Byzantine::Conflicter,
            1 => Byzantine::Equivocator,
            _ => Byzantine::Nuller,
        };
        let latency_ms = between(&mut rng, 5, 80);
        let jitter_ms = below(&mut rng, latency_ms / 2 + 1);
        let loss_pct = below(&mut rng, LOSS_PCT_MAX + 1);
        let fault_ms = between(&mut rng, 15_000, 30_000);
        let honest: Vec<usize> = (0..validators).filter(|v| *v != byzantine).collect();

        let mut faults = Vec::new();
        // Partitions, one after another.
        let mut t = between(&mut rng, 1_000, 4_000);
        for _ in 0..between(&mut rng, 1, 3) {
            let ms = between(&mut rng, 2_000, 7_000);
            if t + ms + 1_000 > fault_ms {
                break;
            }
            let split = match below(&mut rng, 3) {
                0 => {
                    let order = shuffled(&mut rng, validators);
                    Split::Halves(order[..validators / 2].to_vec())
                }
                1 => Split::Isolate(below(&mut rng, validators as u64) as usize),
                _ => Split::Ring(shuffled(&mut rng, validators)),
            };
            faults.push(Fault {
                at_ms: t,
                kind: FaultKind::Partition { split, ms },
            });
            t += ms + between(&mut rng, 1_000, 5_000);
        }
        // Crashes of honest validators at random moments.
        for _ in 0..between(&mut rng, 1, 3) {
            let victim = honest[below(&mut rng, honest.len() as u64) as usize];
            faults.push(Fault {
                at_ms: between(&mut rng, 500, fault_ms - 2_000),
                kind: FaultKind::Crash {
                    victim,
                    down_ms: between(&mut rng, 300, 6_000),
                },
            });
        }
        // Sometimes a window of failing storage.
        if below(&mut rng, 2) == 0 {
            let faults_pm = StorageFaults {
                read_pm: below(&mut rng, 21),
                write_pm: below(&mut rng, 21),
                sync_pm: between(&mut rng, 5, 40),
            };
            faults.push(Fault {
                at_ms: between(&mut rng, 1_000, fault_ms - 4_000),
                kind: FaultKind::Storage {
                    faults: faults_pm,
                    ms: between(&mut rng, 500, 2_500),
                },
            });
        }
        faults.sort_by_key(|f| f.at_ms);
        let restart = match below(&mut rng, 10) {
            0..=2 => Some(Restart::PowerLoss {
                mode: if below(&mut rng, 2) == 0 {
                    PartialWriteMode::Prefix
                } else {
                    PartialWriteMode::Subset
                },
                retention_pct: below(&mut rng, 101),
            }),
            3 => Some(Restart::Clean),
            _ => None,
        };
        let cheques = (0..between(&mut rng, 2, 4))
            .map(|_| match below(&mut rng, 4) {
                0 => ChequeScript::Endorsed,
                1 => ChequeScript::Stopped,
                2 => ChequeScript::Pledged,
                _ => ChequeScript::Cancelled,
            })
            .collect();
        let workload = Workload {
            payers: between(&mut rng, 2, 3) as usize,
            transfers: between(&mut rng, 4, 10) as usize,
            mints: between(&mut rng, 1, 3) as usize,
            cheques,
            devices: between(&mut rng, 1, 3) as usize,
            readings: between(&mut rng, 3, 8) as usize,
        };
        Self {
            seed,
            validators,
            byzantine,
            byzantine_kind,
            latency_ms,
            jitter_ms,
            loss_pct,
            fault_ms,
            faults,
            restart,
            workload,
        }
    }

    /// The honest validators.
    pub fn honest(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.validators).filter(|v| *v != self.byzantine)
    }
}

impl Plan {
    /// One line: the network and the kinds of faults.
    pub fn summary(&self) -> String {
        let mut kinds: Vec<&str> = self
            .faults
            .iter()
            .map(|f| match &f.kind {
                FaultKind::Partition {
                    split: Split::Halves(_),
                    ..
                } => "halves",
                FaultKind::Partition {
                    split: Split::Isolate(_),
                    ..
                } => "isolate",
                FaultKind::Partition {
                    split: Split::Ring(_),
                    ..
                } => "ring",
                FaultKind::Crash { .. } => "crash",
                FaultKind::Storage { .. } => "storage",
            })
            .collect();
        kinds.sort();
        kinds.dedup();
        if let Some(r) = self.restart {
            kinds.push(match r {
                Restart::PowerLoss { .. } => "power-loss",
                Restart::Clean => "clean-restart",
            });
        }
        format!(
            "n={} {:?} loss={}% {}",
            self.validators,
            self.byzantine_kind,
            self.loss_pct,
            kinds.join(",")
        )
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seed {}: {} validators, v{} Byzantine ({:?}); links {} ms ± {} ms, {} % loss",
            self.seed,
            self.validators,
            self.byzantine,
            self.byzantine_kind,
            self.latency_ms,
            self.jitter_ms,
            self.loss_pct
        )?;
        writeln!(f, "  fault phase {} ms:", self.fault_ms)?;
        for fault in &self.faults {
            writeln!(f, "    at {:>6} ms: {:?}", fault.at_ms, fault.kind)?;
        }
        writeln!(f, "  then: {:?}", self.restart)?;
        write!(f, "  workload: {:?}", self.workload)
    }
}
