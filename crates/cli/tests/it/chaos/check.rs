//! The facts a chaos run checks, through the public HTTP API only: validators agree on every
//! block and state root, every claim is still committed where it was claimed, with a proof
//! that verifies offline against the genesis, and the tracked accounts and devices hold exactly
//! what their committed items add up to.

use super::{
    Log,
    load::{Api, Claims, ReadingClaim, Source, Tracked, TxClaim, WorkerReport},
};
use crate::harness::{Net, verity, wait_for};
use serde_json::Value;
use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};
use verity_types::{
    Genesis,
    proof::{ReadingProof, TxProof},
};

/// Most entries asked for per page of a device's readings (the nodes' `api.max_page`).
const PAGE_LIMIT: usize = 1000;

/// One finalized block as a node serves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockFacts {
    pub hash: String,
    pub state_root: String,
}

/// The first answer seen for each height, which every later answer must equal: finalized
/// blocks never change, so any difference is a divergence.
#[derive(Default)]
pub struct Reference {
    blocks: BTreeMap<u64, BlockFacts>,
    /// Transaction and reading ids of each block compared in full.
    contents: BTreeMap<u64, (BTreeSet<String>, BTreeSet<String>)>,
}

impl Reference {
    /// Node `i`'s block at `h`, compared to the reference (recorded if it is the first).
    /// Panics on a difference, and if the node has finalized `h` but cannot serve the block;
    /// returns false if the node does not answer or has not finalized `h` yet.
    pub fn check(&mut self, api: &Api, net: &Net, i: usize, h: u64) -> bool {
        let b = match api.get(&format!("{}/v1/blocks/{h}", net.url(i))) {
            Some((200, b)) => b,
            Some((404, e))
                if e["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("not stored")) =>
            {
                panic!(
                    "MISSING: node{i} has finalized height {h} (it reports height {:?}) but does not serve its block: {e}",
                    height(api, net, i)
                )
            }
            _ => return false,
        };
        let facts = BlockFacts {
            hash: b["hash"].as_str().unwrap_or_default().to_string(),
            state_root: b["header"]["state_root"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        };
        assert_eq!(b["height"], h, "node{i} served another height for {h}");
        assert!(
            facts.hash.len() == 64 && facts.state_root.len() == 64,
            "node{i} block {h}: {b}"
        );
        match self.blocks.get(&h) {
            None => {
                self.blocks.insert(h, facts);
                self.contents.insert(h, ids_of(&b));
            }
            Some(reference) => assert_eq!(
                reference, &facts,
                "DIVERGENCE: node{i} at height {h} differs from the first answer"
            ),
        }
        true
    }

    /// The reference block hash at `h`.
    pub fn hash(&self, h: u64) -> Option<&str> {
        self.blocks.get(&h).map(|b| b.hash.as_str())
    }

    fn contains_tx(&self, h: u64, id: &str) -> bool {
        self.contents.get(&h).is_some_and(|(t, _)| t.contains(id))
    }

    fn contains_reading(&self, h: u64, id: &str) -> bool {
        self.contents.get(&h).is_some_and(|(_, r)| r.contains(id))
    }
}

fn ids_of(block: &Value) -> (BTreeSet<String>, BTreeSet<String>) {
    let txs = block["transactions"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let readings = block["readings"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    (txs, readings)
}

/// The height node `i` reports, if it answers.
pub fn height(api: &Api, net: &Net, i: usize) -> Option<u64> {
    api.get(&format!("{}/v1/status", net.url(i)))
        .and_then(|(s, v)| (s == 200).then(|| v["height"].as_u64()).flatten())
}

/// Waits until every node in `nodes` has reached `h`; returns how long it took.
pub fn wait_all_reach(api: &Api, net: &Net, nodes: &[usize], h: u64, limit: Duration) -> Duration {
    let started = std::time::Instant::now();
    for &i in nodes {
        let left = limit.saturating_sub(started.elapsed());
        wait_for(&format!("node{i} to reach height {h}"), left, || {
            height(api, net, i).filter(|x| *x >= h)
        });
    }
    started.elapsed()
}

/// Checks node `i`'s blocks `from..=to` against the reference; returns how many it compared.
pub fn check_blocks(
    reference: &mut Reference,
    api: &Api,
    net: &Net,
    i: usize,
    from: u64,
    to: u64,
) -> u64 {
    for h in from.max(1)..=to {
        // A node that just restarted may answer slowly, or not have reached `h` yet: retry
        // within a deadline.
        wait_for(
            &format!("node{i} to serve block {h}"),
            Duration::from_secs(30),
            || reference.check(api, net, i, h).then_some(()),
        );
    }
    to.saturating_sub(from.max(1)) + 1
}

/// Checks that node `i` still reports every claimed transaction committed at its claimed
/// height and block.
pub fn check_tx_claims<'a>(
    api: &Api,
    net: &Net,
    i: usize,
    claims: impl IntoIterator<Item = (&'a String, &'a TxClaim)>,
) -> usize {
    let mut n = 0;
    for (id, claim) in claims {
        let v = wait_for(
            &format!("node{i} to answer for tx {id}"),
            Duration::from_secs(30),
            || {
                api.get(&format!("{}/v1/txs/{id}", net.url(i)))
                    .map(|(_, v)| v)
            },
        );
        assert_eq!(
            v["status"], "committed",
            "LOST: node{i} no longer reports tx {id} committed (node{} said height {}): {v}",
            claim.node, claim.height
        );
        assert_eq!(v["height"], claim.height, "node{i}: tx {id} moved: {v}");
        assert_eq!(
            v["block_hash"], claim.block_hash,
            "node{i}: tx {id} in another block: {v}"
        );
        n += 1;
    }
    n
}

/// Checks that node `i` still reports each claimed reading committed at its claimed height,
/// one `GET /v1/readings/{id}` each.
pub fn check_reading_claims<'a>(
    api: &Api,
    net: &Net,
    i: usize,
    claims: impl IntoIterator<Item = (&'a String, &'a ReadingClaim)>,
) -> usize {
    let mut n = 0;
    for (id, claim) in claims {
        let v = wait_for(
            &format!("node{i} to answer for reading {id}"),
            Duration::from_secs(30),
            || {
                api.get(&format!("{}/v1/readings/{id}", net.url(i)))
                    .map(|(_, v)| v)
            },
        );
        assert_eq!(
            v["status"], "committed",
            "LOST: node{i} no longer reports reading {id} of {} committed (node{} said height {}): {v}",
            claim.device, claim.node, claim.height
        );
        assert_eq!(
            v["height"], claim.height,
            "node{i}: reading {id} moved: {v}"
        );
        n += 1;
    }
    n
}

/// Every committed reading node `i` lists for `device`: id → height.
fn device_readings(api: &Api, net: &Net, i: usize, device: &str) -> BTreeMap<String, u64> {
    let mut all = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!(
            "{}/v1/devices/{device}/readings?limit={PAGE_LIMIT}",
            net.url(i)
        );
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page = wait_for(
            &format!("node{i} to list readings of {device}"),
            Duration::from_secs(30),
            || api.get(&url).and_then(|(s, v)| (s == 200).then_some(v)),
        );
        for r in page["readings"].as_array().expect("readings array") {
            if r["status"] == "committed" {
                let id = r["reading_id"].as_str().expect("reading id").to_string();
                all.insert(id, r["height"].as_u64().expect("height"));
            }
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return all,
        }
    }
}

/// Numbers the final check reports.
#[derive(Debug, Default)]
pub struct FinalFacts {
    pub height: u64,
    pub blocks_compared: u64,
    pub tx_claims: usize,
    pub reading_claims: usize,
    pub sim_reading_claims: usize,
    pub tx_proofs: usize,
    pub reading_proofs: usize,
}

/// How many claims of each kind get a proof in the final check (`None`: all).
#[derive(Clone, Copy, Debug)]
pub struct ProofBudget(pub Option<usize>);

/// The facts every chaos run ends with, on every validator, all of them up and healed.
pub fn final_facts(
    log: &Log,
    net: &Net,
    reference: &mut Reference,
    claims: &Claims,
    tracked: &Tracked,
    reports: &[WorkerReport],
    proofs: ProofBudget,
) -> FinalFacts {
    let api = Api::default();
    let n = net.validators();
    let all: Vec<usize> = (0..n).collect();
    let conflicts = claims.conflicts();
    assert!(
        conflicts.is_empty(),
        "nodes disagreed about committed items: {conflicts:#?}"
    );
    for r in reports {
        assert!(
            r.refusals.is_empty(),
            "{}: valid items were refused: {:?}",
            r.name,
            r.refusals
        );
        assert!(
            r.unsettled.is_none(),
            "{}: item {:?} never committed after the faults healed",
            r.name,
            r.unsettled
        );
    }
    let txs = claims.txs();
    let readings = claims.readings();
    // 1. Every validator reaches a common tip above every claim.
    let tip = all
        .iter()
        .filter_map(|&i| height(&api, net, i))
        .max()
        .expect("a node answers");
    let top_claim = txs
        .values()
        .map(|c| c.height)
        .chain(readings.values().map(|c| c.height))
        .max()
        .unwrap_or(0);
    assert!(
        tip >= top_claim,
        "the tip {tip} is below a claim at {top_claim}"
    );
    let took = wait_all_reach(&api, net, &all, tip, Duration::from_secs(120));
    log.fact(&format!(
        "every validator reached height {tip} (waited {:.1} s)",
        took.as_secs_f64()
    ));
    // 2. Every validator serves the same block and state root at every height.
    let mut compared = 0;
    for i in 0..n {
        compared += check_blocks(reference, &api, net, i, 1, tip);
    }
    log.fact(&format!(
        "{n} validators agree on all {tip} blocks: {compared} (block hash, state root) pairs compared"
    ));
    // 3. Every claimed transaction is in its block, and every validator reports it there.
    for (id, c) in &txs {
        assert_eq!(
            reference.hash(c.height),
            Some(c.block_hash.as_str()),
            "tx {id} was claimed in block {} at {}, which is not the finalized block",
            c.block_hash,
            c.height
        );
        assert!(
            reference.contains_tx(c.height, id),
            "LOST: tx {id} is not in the finalized block at {}",
            c.height
        );
    }
    for i in 0..n {
        check_tx_claims(&api, net, i, &txs);
    }
    log.fact(&format!(
        "all {} transactions claimed committed are in their finalized blocks and committed on all {n} validators",
        txs.len()
    ));
    // 4. Every claimed reading is in its block, and every validator lists it as committed.
    let mut by_device: BTreeMap<&str, Vec<(&String, &ReadingClaim)>> = BTreeMap::new();
    for (id, c) in &readings {
        assert!(
            reference.contains_reading(c.height, id),
            "LOST: reading {id} of {} is not in the finalized block at {}",
            c.device,
            c.height
        );
        by_device
            .entry(c.device.as_str())
            .or_default()
            .push((id, c));
    }
    for i in 0..n {
        for (device, claimed) in &by_device {
            let listed = device_readings(&api, net, i, device);
            for (id, c) in claimed {
                assert_eq!(
                    listed.get(*id),
                    Some(&c.height),
                    "LOST: node{i} does not list reading {id} of {device} as committed at {} (node{} said so)",
                    c.height,
                    c.node
                );
            }
        }
    }
    let sim_claims = readings
        .values()
        .filter(|c| c.source == Source::Sim)
        .count();
    log.fact(&format!(
        "all {} readings claimed committed ({} from MQTT receipts of verity sim, {} from tracked devices) are in their blocks and listed as committed on all {n} validators",
        readings.len(),
        sim_claims,
        readings.len() - sim_claims
    ));
    // 5. Proofs, fetched round-robin from the validators, verify offline.
    let genesis: Genesis =
        serde_json::from_slice(&std::fs::read(net.path().join("genesis.json")).expect("genesis"))
            .expect("genesis parses");
    let take = |len: usize| proofs.0.unwrap_or(len).min(len);
    let tx_ids: Vec<(&String, &TxClaim)> = spread(txs.iter().collect(), take(txs.len()));
    for (k, (id, c)) in tx_ids.iter().enumerate() {
        let i = k % n;
        let proof: TxProof = fetch_proof(&api, net, i, &format!("/v1/txs/{id}/proof"));
        let ok = proof
            .verify(&genesis)
            .unwrap_or_else(|e| panic!("node{i}: the proof of tx {id} does not verify: {e}"));
        assert_eq!(ok.height, c.height, "node{i}: proof of tx {id}");
        assert_eq!(
            hex::encode(ok.block_hash.0),
            c.block_hash,
            "node{i}: proof of tx {id}"
        );
        if k == 0 {
            verify_with_cli(net, &serde_json::to_vec(&proof).expect("encodes"), "tx");
        }
    }
    let reading_ids: Vec<(&String, &ReadingClaim)> =
        spread(readings.iter().collect(), take(readings.len()));
    for (k, (id, c)) in reading_ids.iter().enumerate() {
        let i = k % n;
        let proof: ReadingProof = fetch_proof(&api, net, i, &format!("/v1/readings/{id}/proof"));
        let ok = proof
            .verify(&genesis)
            .unwrap_or_else(|e| panic!("node{i}: the proof of reading {id} does not verify: {e}"));
        assert_eq!(ok.height, c.height, "node{i}: proof of reading {id}");
        assert_eq!(
            Some(hex::encode(ok.block_hash.0).as_str()),
            reference.hash(c.height),
            "node{i}: proof of reading {id}"
        );
        if let Some(bytes) = &c.bytes {
            assert_eq!(
                proof.decoded_reading().map(|r| r.bytes().to_vec()).as_ref(),
                Some(bytes),
                "node{i}: the proof of reading {id} carries other bytes than were sent"
            );
        }
        if k == 0 {
            verify_with_cli(
                net,
                &serde_json::to_vec(&proof).expect("encodes"),
                "reading",
            );
        }
    }
    log.fact(&format!(
        "{} of {} transaction proofs and {} of {} reading proofs, fetched from all {n} validators in turn, verify offline against the genesis (one of each also with `verity verify`)",
        tx_ids.len(),
        txs.len(),
        reading_ids.len(),
        readings.len()
    ));
    // 6. The tracked accounts and devices hold exactly what their committed items add up to:
    //    nothing committed twice, nothing committed that no one was told about.
    check_tracked(log, &api, net, claims, tracked, reports);
    FinalFacts {
        height: tip,
        blocks_compared: compared,
        tx_claims: txs.len(),
        reading_claims: readings.len(),
        sim_reading_claims: sim_claims,
        tx_proofs: tx_ids.len(),
        reading_proofs: reading_ids.len(),
    }
}

/// `want` items spread evenly over `all` (all of them if `want` is as large).
fn spread<T>(all: Vec<T>, want: usize) -> Vec<T> {
    if want >= all.len() {
        return all;
    }
    let step = all.len() as f64 / want.max(1) as f64;
    let picks: BTreeSet<usize> = (0..want).map(|k| (k as f64 * step) as usize).collect();
    all.into_iter()
        .enumerate()
        .filter(|(k, _)| picks.contains(k))
        .map(|(_, t)| t)
        .collect()
}

fn fetch_proof<T: serde::de::DeserializeOwned>(api: &Api, net: &Net, i: usize, path: &str) -> T {
    let url = format!("{}{path}", net.url(i));
    let v = wait_for(
        &format!("node{i} to serve {path}"),
        Duration::from_secs(30),
        || api.get(&url),
    );
    if v.0 != 200 {
        // Say what the node serves now, to tell a lost block from a passing failure.
        let block = v.1["error"]["message"]
            .as_str()
            .and_then(|m| m.split_whitespace().nth(1))
            .and_then(|h| h.parse::<u64>().ok())
            .map(|h| api.get(&format!("{}/v1/blocks/{h}", net.url(i))));
        std::thread::sleep(Duration::from_secs(1));
        let again = api.get(&url).map(|(s, _)| s);
        panic!(
            "node{i}: {path}: {} {} (node at height {:?}; the block now: {:?}; the proof again 1 s later: {again:?})",
            v.0,
            v.1,
            height(api, net, i),
            block.flatten().map(|(s, b)| (s, b["error"].clone())),
        );
    }
    serde_json::from_value(v.1).unwrap_or_else(|e| panic!("node{i}: {path} is not a proof: {e}"))
}

/// Checks a proof with the `verity verify` command, as an outsider would.
fn verify_with_cli(net: &Net, proof: &[u8], kind: &str) {
    let path = net.path().join(format!("chaos-{kind}-proof.json"));
    std::fs::write(&path, proof).expect("proof written");
    let genesis = net.path().join("genesis.json");
    let out = verity(&[
        "verify",
        path.to_str().expect("utf-8 path"),
        "--genesis",
        genesis.to_str().expect("utf-8 path"),
    ]);
    assert!(
        out.status.success(),
        "verity verify refused a {kind} proof: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("valid:"));
}

/// The tracked senders' nonces, the sink's balance and the tracked devices' last seqs, on
/// every validator, equal what the claims add up to.
fn check_tracked(
    log: &Log,
    api: &Api,
    net: &Net,
    claims: &Claims,
    tracked: &Tracked,
    reports: &[WorkerReport],
) {
    let txs = claims.txs();
    let readings = claims.readings();
    let sent: u64 = reports.iter().map(|r| r.amount_sum).sum();
    for i in 0..net.validators() {
        let url = net.url(i);
        for (k, key) in tracked.senders.iter().enumerate() {
            let account = key.public_key().account_id();
            let (_, v) = api
                .get(&format!("{url}/v1/accounts/{account}"))
                .expect("account answers");
            let committed = reports
                .iter()
                .find(|r| r.name.starts_with(&format!("sender{k} ")))
                .expect("sender report")
                .committed;
            assert_eq!(
                v["nonce"], committed,
                "node{i}: sender{k} has another nonce than its {committed} committed transfers"
            );
        }
        let (_, v) = api
            .get(&format!("{url}/v1/accounts/{}", tracked.sink))
            .expect("account answers");
        let balance = v["balances"]
            .as_array()
            .and_then(|b| b.iter().find(|x| x["asset"] == "CNY"))
            .and_then(|b| b["amount"].as_str())
            .unwrap_or("0")
            .to_string();
        assert_eq!(
            balance,
            sent.to_string(),
            "node{i}: the sink's balance is not the sum of the committed transfers"
        );
        for (id, _) in &tracked.devices {
            let (_, v) = api
                .get(&format!("{url}/v1/devices/{id}"))
                .expect("device answers");
            let claimed = readings
                .values()
                .filter(|c| c.device == id.as_str())
                .count();
            assert_eq!(
                v["last_seq"], claimed,
                "node{i}: device {id} has another last seq than its {claimed} committed readings"
            );
        }
    }
    log.fact(&format!(
        "on every validator: {} tracked senders' nonces equal their committed transfers ({} in all), the sink holds exactly their sum ({sent} minor units), {} tracked devices' last seq equals their committed readings",
        tracked.senders.len(),
        txs.len(),
        tracked.devices.len()
    ));
}
