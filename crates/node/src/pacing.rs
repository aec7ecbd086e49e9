//! Pacing of empty blocks while the network is idle.
//!
//! Consensus moves to the next view as soon as a block is finalized, so an idle network would
//! otherwise finalize empty blocks as fast as its validators can vote (about 46 a second for
//! 4 validators on one 2-core machine, 1.3 cores and 24 GB of disk a day). A leader whose pools
//! are empty, when the last blocks of a whole rotation (as many blocks as there are validators)
//! were empty too, waits until its parent's time plus `consensus.idle_block_interval_ms` before
//! it proposes, or until work arrives, whichever is first:
//!
//! - a transaction or a reading reaches every validator's pool through gossip, so whoever
//!   leads wakes;
//! - the validator that admits a reading into its empty pool also asks its peers to wake (an
//!   empty batch on the transaction gossip channel, which goes out without waiting for a
//!   batch of readings to gather). A woken validator proposes without waiting for the next two
//!   rotations of heights.
//!
//! Idleness is judged from the chain's blocks and the pools, not from clocks, and the wait is
//! shorter than half the leader timeout, so a paced view never times out.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};
use tokio::sync::Notify;

/// Heights, counted in rotations of the validators, during which a validator woken by a peer
/// proposes without waiting.
pub const WAKE_ROTATIONS: u64 = 2;

/// The pacing state of one validator.
pub struct Pacing {
    interval: Duration,
    validators: u64,
    /// Wakes a leader waiting to propose an empty block.
    work: Notify,
    /// Asks the gossip task to wake the other validators.
    wake_peers: Notify,
    /// Proposals at heights up to this one do not wait (a peer said work arrived).
    awake_until: AtomicU64,
}

impl Pacing {
    /// Pacing with `interval` (zero: never wait) among `validators` validators.
    pub fn new(interval: Duration, validators: usize) -> Self {
        Self {
            interval,
            validators: validators.max(1) as u64,
            work: Notify::new(),
            wake_peers: Notify::new(),
            awake_until: AtomicU64::new(0),
        }
    }

    /// The interval between empty blocks while idle (zero: not paced).
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// How many blocks make a rotation of the leaders.
    pub fn rotation(&self) -> u64 {
        self.validators
    }

    /// Whether a proposal at `height` must not wait because a peer woke this validator.
    pub fn awake_at(&self, height: u64) -> bool {
        height <= self.awake_until.load(Ordering::Relaxed)
    }

    /// Work arrived in an empty pool: a waiting leader proposes now. A reading
    /// (`wake_peers`) also wakes the other validators, whose pools do not hold it.
    pub fn work_arrived(&self, wake_peers: bool) {
        self.work.notify_waiters();
        if wake_peers && !self.interval.is_zero() {
            self.wake_peers.notify_one();
        }
    }

    /// A peer said work arrived while this validator's finalized height was `height`.
    pub fn woken(&self, height: u64) {
        let until = height + WAKE_ROTATIONS * self.validators;
        self.awake_until.fetch_max(until, Ordering::Relaxed);
        self.work.notify_waiters();
    }

    /// Resolves when work arrives (register it before the last look at the pools, so that an
    /// arrival in between is not missed: see [tokio::sync::Notified::enable]).
    pub fn work(&self) -> tokio::sync::futures::Notified<'_> {
        self.work.notified()
    }

    /// Resolves when the other validators should be woken.
    pub fn peers_to_wake(&self) -> tokio::sync::futures::Notified<'_> {
        self.wake_peers.notified()
    }
}
