//! The invariants, checked once the network has healed and converged, on every honest
//! validator through the same lookups the API answers from (marshal's finalized blocks, the
//! query index, committed state):
//!
//! - no two finalized blocks at one height: every validator holds one block at each height up
//!   to its tip, the same block as every other validator, each the child of the one below;
//! - identical state roots: the root every validator computed after each block it applied, in
//!   every incarnation, equals the block's header (and so every other validator's);
//! - whatever a validator once reported final is present after recovery: at the same height and
//!   position on every validator, in that block, with the receipt outcome the client expected;
//! - the ledger agrees with the clients' model: nonces, balances, cheque states, device seqs;
//! - honest validators never blocked one another on the network.

use super::{
    client::{Client, Final},
    world::{Logs, World},
};
use commonware_consensus::types::Height;
use std::collections::BTreeMap;
use verity_ledger::{cheques::ChequeRecord, state::cheque_key};
use verity_types::{Block, Hash};

/// What a run produced, compared between two runs of one seed.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The finalized logs of every incarnation of every honest validator.
    pub logs: Logs,
    /// Every report of finality the clients received.
    pub finals: BTreeMap<Hash, Final>,
    /// The lowest finalized tip at the end.
    pub height: u64,
    /// Restarts of honest validators from their storage.
    pub restarts: u64,
    /// Honest validators stopped by failing storage.
    pub storage_stops: u64,
    /// Readings overtaken by a later reading of their device.
    pub superseded: usize,
    /// The runtime's digest of everything that happened (tasks polled, messages, storage).
    pub audit: String,
    /// That digest when a clean stop of the whole network began, if one did.
    pub audit_at_stop: Option<String>,
}

/// Checks every invariant; panics with the seed and the first violation.
pub async fn verify(world: &mut World<'_>, client: &Client) -> Outcome {
    let seed = world.plan.seed;
    world.snapshot_logs();
    let honest: Vec<usize> = world.plan.honest().collect();
    assert_eq!(
        world.live(),
        honest,
        "seed {seed}: not every honest validator is running at the end"
    );

    // One chain of finalized blocks, the same on every validator.
    let mut canonical: BTreeMap<u64, Block> = BTreeMap::new();
    for &v in &honest {
        let node = world.node(v);
        let tip = node.chain.tip().height;
        for h in 1..=tip {
            let block = node
                .marshal
                .get_block(Height::new(h))
                .await
                .unwrap_or_else(|| {
                    panic!("seed {seed}: v{v} has no finalized block at height {h} (tip {tip})")
                })
                .inner()
                .clone();
            assert_eq!(block.header.height, h, "seed {seed}: v{v} block at {h}");
            match canonical.get(&h) {
                Some(b) => assert_eq!(
                    b.hash(),
                    block.hash(),
                    "seed {seed}: two finalized blocks at height {h} (v{v} differs)"
                ),
                None => {
                    canonical.insert(h, block);
                }
            }
        }
    }
    for (h, b) in &canonical {
        if let Some(parent) = canonical.get(&(h - 1)) {
            assert_eq!(
                b.header.parent,
                parent.hash(),
                "seed {seed}: the block at {h} does not extend the one below"
            );
        }
    }

    // Every validator, in every incarnation, computed the header's state root.
    for (v, incarnations) in &world.carry.logs {
        for (i, log) in incarnations.iter().enumerate() {
            for (h, hash, root) in log {
                if *h == 0 {
                    continue;
                }
                let b = canonical.get(h).unwrap_or_else(|| {
                    panic!("seed {seed}: v{v} (incarnation {i}) finalized height {h}, now unknown")
                });
                assert_eq!(
                    *hash,
                    b.hash(),
                    "seed {seed}: v{v} (incarnation {i}) finalized another block at height {h}"
                );
                assert_eq!(
                    *root, b.header.state_root,
                    "seed {seed}: v{v} (incarnation {i}) computed another state root at height {h}"
                );
            }
        }
    }

    // Everything reported final is there, everywhere, as reported.
    for &v in &honest {
        let node = world.node(v);
        let index = node.chain.index.as_ref().expect("an index");
        for t in &client.txs {
            let id = t.tx.id();
            let f = t
                .fin
                .as_ref()
                .unwrap_or_else(|| panic!("seed {seed}: {} never final", t.label));
            assert_eq!(
                index.tx_location(&id).expect("index reads"),
                Some((f.height, f.index)),
                "seed {seed}: v{v} does not have {} where v{} reported it",
                t.label,
                f.by
            );
            let block = &canonical[&f.height];
            assert_eq!(
                block.txs.get(f.index as usize).map(|x| x.id()),
                Some(id),
                "seed {seed}: {} is not in its block",
                t.label
            );
            let receipt = index
                .tx_receipt(&id)
                .expect("index reads")
                .unwrap_or_else(|| panic!("seed {seed}: v{v} has no receipt for {}", t.label));
            assert_eq!(
                receipt.outcome, t.outcome,
                "seed {seed}: v{v}: outcome of {}",
                t.label
            );
        }
        for r in &client.readings {
            let Some(f) = &r.fin else {
                assert!(r.superseded, "seed {seed}: {} never final", r.label);
                continue;
            };
            let stored = index
                .reading(&r.id)
                .expect("index reads")
                .unwrap_or_else(|| {
                    panic!(
                        "seed {seed}: v{v} does not have {} that v{} reported final",
                        r.label, f.by
                    )
                });
            assert_eq!(
                (stored.height, stored.index, stored.rejected, &stored.bytes),
                (f.height, f.index, f.rejected, &r.bytes),
                "seed {seed}: v{v} has {} elsewhere than v{} reported",
                r.label,
                f.by
            );
            let block = &canonical[&f.height];
            assert_eq!(
                block.readings.get(f.index as usize).map(|x| x.id()),
                Some(r.id),
                "seed {seed}: {} is not in its block",
                r.label
            );
        }
    }

    // The ledger agrees with the clients' model on every validator.
    let cny = "CNY".parse().expect("asset code");
    for &v in &honest {
        let chain = &world.node(v).chain;
        for (account, nonce) in &client.nonces {
            let record = chain
                .account(account)
                .await
                .expect("state reads")
                .unwrap_or_default();
            assert_eq!(
                record.nonce, *nonce,
                "seed {seed}: v{v}: nonce of {account}"
            );
        }
        for (account, balance) in &client.balances {
            let record = chain
                .account(account)
                .await
                .expect("state reads")
                .unwrap_or_default();
            assert_eq!(
                record.balances.get(&cny).copied().unwrap_or(0),
                *balance,
                "seed {seed}: v{v}: balance of {account}"
            );
        }
        for (id, state) in &client.cheques {
            let record: ChequeRecord = chain
                .record(&cheque_key(id))
                .await
                .expect("state reads")
                .unwrap_or_else(|| panic!("seed {seed}: v{v} has no cheque {id}"));
            assert_eq!(record.state(), *state, "seed {seed}: v{v}: cheque {id}");
        }
        for (d, (device, _)) in world.cast.devices.iter().enumerate() {
            let expected = client
                .readings
                .iter()
                .filter(|r| r.device == d)
                .filter(|r| r.fin.as_ref().is_some_and(|f| f.rejected.is_none()))
                .map(|r| r.seq)
                .max()
                .unwrap_or(0);
            let record = chain
                .device(device)
                .await
                .expect("state reads")
                .unwrap_or_else(|| panic!("seed {seed}: v{v} has no device {device}"));
            assert_eq!(
                record.last_seq, expected,
                "seed {seed}: v{v}: last seq of {device}"
            );
        }
    }

    let blocked: Vec<(usize, usize)> = world
        .blocked()
        .await
        .into_iter()
        .filter(|(a, b)| *a != world.plan.byzantine && *b != world.plan.byzantine)
        .collect();
    assert!(
        blocked.is_empty(),
        "seed {seed}: honest validators blocked one another: {blocked:?}"
    );

    let finals = client.finals();
    assert!(
        !finals.is_empty() && !canonical.is_empty(),
        "seed {seed}: nothing was finalized"
    );
    Outcome {
        logs: world.carry.logs.clone(),
        finals,
        height: world.tips().iter().map(|(_, h)| *h).min().unwrap_or(0),
        restarts: world.carry.restarts,
        storage_stops: world.carry.storage_stops,
        superseded: client.readings.iter().filter(|r| r.superseded).count(),
        audit: world.context.auditor().state(),
        audit_at_stop: world.carry.audit_at_stop.clone(),
    }
}
