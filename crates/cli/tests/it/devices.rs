//! Devices and readings end to end on a 4-validator network: registration and lifecycle
//! through the CLI, signed readings over HTTP, every ingest refusal with no state change,
//! committed readings read back from another node, and an offline proof that fails when
//! tampered with.

use crate::harness::{Net, now_s, number_record, verity};
use std::time::Duration;
use verity_client::{Client, ClientError};
use verity_types::{
    Algorithm, KeyFile, SecretKey,
    hash::sha256,
    reading::sign::{NewRecord, senml_pack, sign_payload, sign_reading},
};

fn temp(time: f64, v: f64) -> NewRecord {
    number_record("temperature", "Cel", time, v)
}

fn signed(key: &SecretKey, device: &str, seq: u64, v: f64) -> Vec<u8> {
    sign_reading(key, &device.parse().unwrap(), seq, &[temp(now_s(), v)])
}

/// Runs the CLI against node `i`; returns stdout, panicking with stderr on failure.
fn cli(net: &Net, i: usize, args: &[&str]) -> String {
    let url = net.url(i);
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--node", &url]);
    let out = verity(&all);
    assert!(
        out.status.success(),
        "verity {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn refused(client: &Client, bytes: &[u8]) -> (u16, String) {
    match client.submit_reading(bytes) {
        Err(ClientError::Api { status, code, .. }) => (status, code),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn last_seq(client: &Client, device: &str) -> u64 {
    client.get(&format!("/v1/devices/{device}")).unwrap()["last_seq"]
        .as_u64()
        .unwrap()
}

#[test]
fn devices_register_send_readings_and_prove_them() {
    let net = Net::start(4);
    let dir = net.path();
    let op = net.key("operator");
    let op = op.to_str().unwrap();
    let dev_key = dir.join("cold-1.key");
    let out = cli(
        &net,
        0,
        &[
            "device",
            "register",
            "--key",
            op,
            "--id",
            "cold-1",
            "--generate",
            "ed25519",
            "--out",
            dev_key.to_str().unwrap(),
            "--meta",
            "site=dock-4",
        ],
    );
    assert_eq!(out, "cold-1");
    let key: SecretKey = serde_json::from_slice::<KeyFile>(&std::fs::read(&dev_key).unwrap())
        .unwrap()
        .to_key()
        .unwrap();
    // A P-256 device registered by its public key.
    let p256 = SecretKey::generate(Algorithm::P256);
    let pk_hex = hex::encode(p256.public_key().as_bytes());
    let out = cli(
        &net,
        1,
        &[
            "device", "register", "--key", op, "--id", "meter-7", "--alg", "p256", "--pubkey",
            &pk_hex,
        ],
    );
    assert_eq!(out, "meter-7");
    // Only the owner or an admin of its organization may change a device.
    let issuer = net.key("issuer");
    let out = verity(&[
        "device",
        "suspend",
        "cold-1",
        "--key",
        issuer.to_str().unwrap(),
        "--node",
        &net.url(0),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unauthorized"));

    // A reading sent with the CLI is committed, and readable from another node.
    let id = cli(
        &net,
        2,
        &[
            "device",
            "send",
            "cold-1",
            "--device-key",
            dev_key.to_str().unwrap(),
            "--seq",
            "1",
            "--value",
            "4.5",
            "--unit",
            "Cel",
        ],
    );
    let c3 = net.client(3);
    let r = c3
        .wait_reading(
            &verity_types::hash::parse_hash(&id).unwrap(),
            Duration::from_secs(60),
        )
        .unwrap();
    assert_eq!(r["device_id"], "cold-1");
    assert_eq!(r["seq"], 1);
    assert_eq!(r["records"][0]["n"], "temperature");
    assert_eq!(r["records"][0]["v"], 4.5);
    assert_eq!(r["records"][0]["u"], "Cel");
    // Readings made by an independent implementation (pycose) are accepted, both algorithms.
    let c0 = net.client(0);
    for (key, device, seq) in [(&key, "cold-1", 2), (&p256, "meter-7", 5)] {
        let bytes = crate::harness::python_reading(key, device, seq, "temperature", 3.25);
        c0.submit_reading(&bytes).unwrap();
        let r = c0
            .wait_reading(&sha256(&bytes), Duration::from_secs(60))
            .unwrap();
        assert_eq!(r["records"][0]["v"], 3.25);
    }
    // A P-256 reading over HTTP.
    let bytes = signed(&p256, "meter-7", 10, 230.5);
    let answer = c0.submit_reading(&bytes).unwrap();
    assert_eq!(answer["status"], "accepted");
    assert_eq!(answer["reading_id"], hex::encode(sha256(&bytes).0));
    c0.wait_reading(&sha256(&bytes), Duration::from_secs(60))
        .unwrap();

    // Every ingest refusal: a clear code, and nothing changes.
    let before = last_seq(&c0, "cold-1");
    let other = SecretKey::generate(Algorithm::Ed25519);
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("garbage", b"not cbor".to_vec(), 400, "malformed"),
        (
            "alg -35",
            crate::harness::vector("bad-alg-es384"),
            400,
            "bad_header",
        ),
        ("replay", signed(&key, "cold-1", 2, 9.0), 409, "replay"),
        (
            "unknown",
            signed(&key, "nobody", 5, 1.0),
            422,
            "unknown_device",
        ),
        (
            "wrong alg",
            signed(&p256, "cold-1", 5, 1.0),
            422,
            "wrong_algorithm",
        ),
        (
            "bad sig",
            signed(&other, "cold-1", 5, 1.0),
            422,
            "bad_signature",
        ),
        (
            "undated",
            sign_payload(
                &key,
                &"cold-1".parse().unwrap(),
                5,
                senml_pack(&[temp(0.0, 1.0)]),
            ),
            400,
            "bad_senml",
        ),
        (
            "future",
            sign_reading(
                &key,
                &"cold-1".parse().unwrap(),
                5,
                &[temp(now_s() + 3600.0, 1.0)],
            ),
            422,
            "future_timestamp",
        ),
    ];
    for (what, bytes, status, code) in &cases {
        assert_eq!(refused(&c0, bytes), (*status, code.to_string()), "{what}");
    }
    let http = reqwest::blocking::Client::new();
    let resp = http
        .post(format!("{}/v1/readings", net.url(0)))
        .header("content-type", "application/json")
        .body(signed(&key, "cold-1", 5, 1.0))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 415);
    assert_eq!(last_seq(&c0, "cold-1"), before);
    // Refusals are counted by code.
    let metrics = http
        .get(format!("{}/metrics", net.url(0)))
        .send()
        .unwrap()
        .text()
        .unwrap();
    for (_, _, _, code) in &cases {
        let counted = metrics.lines().any(|l| {
            l.contains("readings_rejected")
                && l.contains(&format!("code=\"{code}\""))
                && !l.ends_with(" 0")
        });
        assert!(counted, "no count of {code} in /metrics");
    }
    // The stages of a reading's way are timed: node0 proposed the reading it took, and
    // verified and applied the others' blocks.
    for stage in [
        "chain_reading_pool_wait_seconds",
        "chain_block_build_seconds",
        "chain_block_verify_seconds",
        "chain_block_apply_seconds",
    ] {
        let count = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{stage}_count ")))
            .and_then(|n| n.trim().parse::<u64>().ok());
        assert!(
            count.is_some_and(|n| n > 0),
            "{stage} counted nothing: {count:?}"
        );
    }
    // The network idled between the steps above: leaders held back empty blocks, and a
    // reading admitted while idle woke the other validators and was gossiped to them.
    let counter = |i: usize, name: &str| -> u64 {
        let text = http
            .get(format!("{}/metrics", net.url(i)))
            .send()
            .unwrap()
            .text()
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    };
    let paced: u64 = (0..4).map(|i| counter(i, "chain_blocks_paced_total")).sum();
    let wakes: u64 = (0..4).map(|i| counter(i, "chain_pacing_wakes_total")).sum();
    assert!(paced > 0, "no proposal was paced");
    assert!(wakes > 0, "no validator was woken");
    // Readings reached the pools of validators other than the one a device sent them to.
    let gossiped: u64 = (0..4)
        .map(|i| counter(i, "chain_readings_gossiped_total"))
        .sum();
    assert!(gossiped > 0, "no reading was gossiped");

    // Proof: fetched online, verified offline, and broken by any change.
    let proof = dir.join("p.json");
    let genesis = dir.join("genesis.json");
    cli(
        &net,
        1,
        &["proof", "reading", &id, "--out", proof.to_str().unwrap()],
    );
    let out = verity(&[
        "verify",
        proof.to_str().unwrap(),
        "--genesis",
        genesis.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("valid"));
    let original: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&proof).unwrap()).unwrap();
    // Change one character at the front of each field (always significant, in hex and base64).
    for field in ["reading", "finalization", "reading_id"] {
        let mut bad = original.clone();
        let s = bad[field].as_str().unwrap().to_string();
        let flipped = if s.starts_with('0') { "1" } else { "0" };
        bad[field] = format!("{flipped}{}", &s[1..]).into();
        let tampered = dir.join(format!("bad-{field}.json"));
        std::fs::write(&tampered, serde_json::to_vec(&bad).unwrap()).unwrap();
        let out = verity(&[
            "verify",
            tampered.to_str().unwrap(),
            "--genesis",
            genesis.to_str().unwrap(),
        ]);
        assert!(!out.status.success(), "tampered {field} verified");
        assert!(String::from_utf8_lossy(&out.stderr).contains("does not verify"));
    }
    let mut bad = original.clone();
    let h = bad["headers"][0].as_str().unwrap().to_string();
    bad["headers"][0] = format!(
        "{}{}",
        &h[..h.len() - 1],
        if h.ends_with('0') { "1" } else { "0" }
    )
    .into();
    std::fs::write(
        dir.join("bad-header.json"),
        serde_json::to_vec(&bad).unwrap(),
    )
    .unwrap();
    let out = verity(&[
        "verify",
        dir.join("bad-header.json").to_str().unwrap(),
        "--genesis",
        genesis.to_str().unwrap(),
    ]);
    assert!(!out.status.success());

    // Lifecycle: a revoked device's readings are refused; a new key makes it active again and
    // the old key no longer works.
    cli(&net, 0, &["device", "revoke", "cold-1", "--key", op]);
    assert_eq!(
        refused(&c0, &signed(&key, "cold-1", 6, 1.0)),
        (422, "device_not_active".to_string())
    );
    let new_key = dir.join("cold-1-new.key");
    cli(
        &net,
        0,
        &[
            "device",
            "rotate-key",
            "cold-1",
            "--key",
            op,
            "--generate",
            "p256",
            "--out",
            new_key.to_str().unwrap(),
        ],
    );
    assert_eq!(
        refused(&c0, &signed(&key, "cold-1", 7, 1.0)).1,
        "wrong_algorithm"
    );
    let id2 = cli(
        &net,
        0,
        &[
            "device",
            "send",
            "cold-1",
            "--device-key",
            new_key.to_str().unwrap(),
            "--seq",
            "8",
            "--value",
            "5.5",
        ],
    );
    assert_eq!(id2.len(), 64);
    // The other validators have finalized at least as far before we read from them.
    let h = net.height(0).unwrap();
    for i in 1..4 {
        net.wait_height(i, h, Duration::from_secs(60));
    }
    let history = net.client(2).get("/v1/devices/cold-1/history").unwrap();
    let events: Vec<&str> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["registered", "status", "key_rotated"]);
    assert!(history["history"][0]["height"].as_u64().unwrap() > 0);
    let device = net.client(2).get("/v1/devices/cold-1").unwrap();
    assert_eq!(device["status"], "active");
    assert_eq!(device["alg"], "p256");
    assert_eq!(device["last_seq"], 8);

    // Read back: pages of committed readings and the latest value per sensor.
    let page = net
        .client(3)
        .get("/v1/devices/cold-1/readings?limit=1")
        .unwrap();
    assert_eq!(page["readings"].as_array().unwrap().len(), 1);
    let cursor = page["next_cursor"].as_str().unwrap();
    let page2 = net
        .client(3)
        .get(&format!(
            "/v1/devices/cold-1/readings?limit=5&cursor={cursor}"
        ))
        .unwrap();
    assert!(page2["next_cursor"].is_null());
    let mut seqs: Vec<u64> = page["readings"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page2["readings"].as_array().unwrap())
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    seqs.sort();
    assert_eq!(seqs, [1, 2, 8]);
    let latest = net.client(1).get("/v1/devices/cold-1/latest").unwrap();
    assert_eq!(latest["latest"][0]["v"], 5.5);
    assert_eq!(latest["latest"][0]["seq"], 8);
}
