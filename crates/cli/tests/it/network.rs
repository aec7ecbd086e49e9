//! Liveness and recovery of a real 4-validator network: crash and restart, a validator that
//! starts from an empty disk, many transfers while a validator is killed, P-256 readings
//! offered above capacity, `verity up` resuming its chain, and a clean stop that leaves
//! nothing to recover.

use crate::harness::{Net, load, transfer, verity_bin, wait_for};
use std::{
    process::{Command, Stdio},
    time::Duration,
};
use verity_client::Client;
use verity_types::{AccountId, Algorithm, SecretKey, SignedTransaction};

/// Submits, retrying on another node when one does not answer.
fn submit_anywhere(net: &Net, nodes: &[usize], tx: &SignedTransaction) {
    for &i in nodes.iter().cycle().take(nodes.len() * 20) {
        if net.client(i).submit(tx).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no node accepted {}", tx.id());
}

/// The account of a key of `alg` made up here, which nobody else pays.
fn new_account(alg: Algorithm) -> AccountId {
    SecretKey::generate(alg).public_key().account_id()
}

/// Transfers `amount` from `from` to `to` with nonce `n` through `client` and waits until it
/// is final.
fn pay_and_wait(client: &Client, from: &SecretKey, to: AccountId, amount: u64, n: u64) {
    let tx = client.sign(from, transfer(to, amount), Some(n)).unwrap();
    client.submit(&tx).unwrap();
    client
        .wait_final(&tx.id(), Duration::from_secs(60))
        .unwrap();
}

#[test]
fn killed_validator_recovers_and_network_keeps_finalizing() {
    let mut net = Net::start(4);
    let issuer = load(&net, "issuer");
    let bob = new_account(Algorithm::P256);
    net.kill_node(3);
    // Three of four keep finalizing, including transfers.
    let client = net.client(0);
    for n in 0..3u64 {
        pay_and_wait(&client, &issuer, bob, 10, n);
    }
    let h = net.height(0).unwrap();
    net.wait_height(1, h, Duration::from_secs(30));
    // The killed validator recovers from its disk and catches up.
    net.start_node(3);
    net.wait_height(3, h + 1, Duration::from_secs(120));
    let common = net.assert_agree(&[0, 1, 2, 3]);
    assert!(common > h);
    let v = net.client(3).account(&bob).unwrap();
    assert_eq!(v["balances"][0]["amount"], "30");
}

/// Stops validator `node`, replaces its data folder with an empty one whose `format` file
/// holds `format`, starts it again and waits until it has caught up with node0 and agrees with
/// every validator; returns its data folder and the height it caught up to.
fn resync_on_empty_disk(net: &mut Net, node: usize, format: &str) -> (std::path::PathBuf, u64) {
    net.kill_node(node);
    let data = net.node_dir(node).join("data");
    std::fs::remove_dir_all(&data).unwrap();
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("format"), format).unwrap();
    let h = net.height(0).unwrap();
    net.start_node(node);
    net.wait_height(node, h, Duration::from_secs(180));
    net.assert_agree(&[0, 1, 2, 3]);
    (data, h)
}

#[test]
fn validator_with_empty_disk_syncs_the_whole_chain() {
    let mut net = Net::start(4);
    let issuer = load(&net, "issuer");
    let bob = new_account(Algorithm::Ed25519);
    let client = net.client(1);
    let tx = client.sign(&issuer, transfer(bob, 77), None).unwrap();
    client.submit(&tx).unwrap();
    client
        .wait_final(&tx.id(), Duration::from_secs(60))
        .unwrap();
    // The new disk uses the first data format (blocks stored uncompressed), as a folder
    // written before the format file existed would, while the others use the current one.
    let (data, h) = resync_on_empty_disk(&mut net, 2, "1\n");
    // After a restart it still reads the blocks it stored in its format.
    net.kill_node(2);
    net.start_node(2);
    net.wait_height(2, h + 1, Duration::from_secs(120));
    net.assert_agree(&[0, 1, 2, 3]);
    assert_eq!(std::fs::read_to_string(data.join("format")).unwrap(), "1\n");
    let current = std::fs::read_to_string(net.node_dir(0).join("data/format")).unwrap();
    assert_eq!(
        current.trim(),
        verity_node::data_format::CURRENT.to_string()
    );
    // A format 7 disk becomes format 8 when its node starts (its index's transaction entries
    // move into the store, which takes the format 8 folder's name), and answers as the others.
    let (data7, _) = resync_on_empty_disk(&mut net, 3, "7\n");
    assert_eq!(
        std::fs::read_to_string(data7.join("format"))
            .unwrap()
            .trim(),
        "8"
    );
    assert!(!data7.join("readings").exists());
    assert!(data7.join("index.lsm").is_dir());
    for node in [2, 3, 0] {
        let v = net.client(node).account(&bob).unwrap();
        assert_eq!(v["balances"][0]["amount"], "77", "node {node}");
        let found = net
            .client(node)
            .get(&format!("/v1/txs/{}", hex::encode(tx.id().0)))
            .unwrap();
        assert_eq!(found["status"], "committed", "node {node}");
        let history = net
            .client(node)
            .get(&format!("/v1/accounts/{bob}/history"))
            .unwrap();
        let entries = history["entries"].as_array().expect("history entries");
        assert_eq!(entries.len(), 1, "node {node}: {history}");
        assert_eq!(entries[0]["delta"], "77", "node {node}");
    }
}

#[test]
fn thousand_transfers_survive_a_killed_validator_slow() {
    const ACCOUNTS: usize = 10;
    const PER_ACCOUNT: u64 = 100;
    let mut net = Net::start(4);
    let issuer = load(&net, "issuer");
    let client = net.client(0);
    // Fund ten senders.
    let senders: Vec<SecretKey> = (0..ACCOUNTS)
        .map(|_| SecretKey::generate(Algorithm::Ed25519))
        .collect();
    let mut funding = Vec::new();
    for (n, s) in senders.iter().enumerate() {
        let tx = client
            .sign(
                &issuer,
                transfer(s.public_key().account_id(), 1_000_000),
                Some(n as u64),
            )
            .unwrap();
        client.submit(&tx).unwrap();
        funding.push(tx);
    }
    for tx in &funding {
        client
            .wait_final(&tx.id(), Duration::from_secs(60))
            .unwrap();
    }
    let sink = new_account(Algorithm::Ed25519);
    let chain_id = client.chain_id().unwrap();
    let mut all = Vec::new();
    for round in 0..PER_ACCOUNT {
        if round == PER_ACCOUNT / 3 {
            net.kill_node(1);
        }
        if round == 2 * PER_ACCOUNT / 3 {
            net.start_node(1);
        }
        for s in &senders {
            let tx = verity_types::Transaction {
                signer: s.public_key(),
                nonce: verity_types::Nonce(round),
                body: transfer(sink, 1 + round),
            }
            .sign(s, &chain_id);
            let nodes: &[usize] = if (PER_ACCOUNT / 3..2 * PER_ACCOUNT / 3).contains(&round) {
                &[0, 2, 3]
            } else {
                &[0, 1, 2, 3]
            };
            submit_anywhere(&net, nodes, &tx);
            all.push(tx);
        }
    }
    assert_eq!(all.len(), ACCOUNTS * PER_ACCOUNT as usize);
    // Like any client, resubmit what a killed validator lost from its pool, until all is final.
    let mut waiting: Vec<&SignedTransaction> = all.iter().collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while !waiting.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} transfers never became final",
            waiting.len()
        );
        waiting.retain(|tx| {
            let v = client.get(&format!("/v1/txs/{}", hex::encode(tx.id().0)));
            !matches!(v, Ok(v) if v["status"] == "committed")
        });
        for tx in &waiting {
            let _ = client.submit(tx);
        }
        if !waiting.is_empty() {
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    let h = net.height(0).unwrap();
    for i in 0..4 {
        net.wait_height(i, h, Duration::from_secs(120));
    }
    // Every transfer reported final is on every validator.
    for i in 0..4 {
        let c = net.client(i);
        for tx in &all {
            let v = c
                .get(&format!("/v1/txs/{}", hex::encode(tx.id().0)))
                .unwrap();
            assert_eq!(v["status"], "committed", "node{i} lacks {}", tx.id());
        }
    }
    net.assert_agree(&[0, 1, 2, 3]);
    let expected: u64 = ACCOUNTS as u64 * (1..=PER_ACCOUNT).sum::<u64>();
    for i in 0..4 {
        let v = net.client(i).account(&sink).unwrap();
        assert_eq!(v["balances"][0]["amount"], expected.to_string());
    }
}

/// A counter of `name` in a node's /metrics.
fn metric(net: &Net, i: usize, name: &str) -> Option<u64> {
    let text = reqwest::blocking::get(format!("{}/metrics", net.url(i)))
        .ok()?
        .text()
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// The number after `label` in a `verity sim` summary line.
fn summary_count(out: &str, label: &str) -> u64 {
    let line = out
        .lines()
        .find(|l| l.starts_with("summary:"))
        .unwrap_or_else(|| panic!("no summary in:\n{out}"));
    let mut words = line.split_whitespace();
    words
        .find(|w| *w == label)
        .and_then(|_| words.next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {label} count in {line}"))
}

/// Readings reach a single validator (the devices' broker), so only it proposes them, and every
/// other validator verifies them first when its block arrives. A block as large as the count
/// limit allows takes P-256 verifiers longer than the certification timeout: its leader's
/// views were nullified, one after another, and its readings never committed. Blocks are now
/// bounded by what their signatures cost to verify.
#[test]
fn p256_readings_offered_above_capacity_keep_committing() {
    let net = Net::start(4);
    let out = Command::new(verity_bin())
        .args([
            "sim",
            "--alg",
            "p256",
            "--presign",
            "--devices",
            "50",
            "--rate",
            "12500",
            "--duration",
            "3",
            "--key",
            net.key("operator").to_str().unwrap(),
            "--mqtt",
            &net.mqtt_addr(0).to_string(),
            "--node",
            &net.url(0),
        ])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("{out}");
    let accepted = summary_count(&out, "accepted");
    assert!(
        accepted >= 15_000,
        "the devices did not offer several blocks' worth: {out}"
    );
    assert_eq!(summary_count(&out, "rejected"), 0, "{out}");
    // Every accepted reading commits, on a validator that never saw them before their blocks.
    wait_for(
        "every accepted P-256 reading to commit",
        Duration::from_secs(240),
        || metric(&net, 1, "chain_readings_committed_total").filter(|n| *n >= accepted),
    );
    net.assert_agree(&[0, 1, 2, 3]);
}

#[test]
fn up_runs_a_network_and_resumes_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("verity-data");
    let base = crate::harness::free_base(10);
    let run = || {
        Command::new(verity_bin())
            .args([
                "up",
                "--dir",
                data.to_str().unwrap(),
                "--p2p-port",
                &base.to_string(),
                "--api-port",
                &(base + 10).to_string(),
                "--mqtt-port",
                &(base + 20).to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let client = Client::new(&format!("http://127.0.0.1:{}", base + 10));
    let height = || client.status().ok().and_then(|s| s["height"].as_u64());
    let mut up = run();
    let first = wait_for(
        "the local network to finalize",
        Duration::from_secs(60),
        || height().filter(|h| *h >= 3),
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(up.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = up.wait().unwrap();
    assert!(status.success(), "verity up exited with {status}");
    assert!(client.status().is_err(), "nodes stopped with verity up");
    assert!(data.join("genesis.json").exists());
    let mut up = run();
    let resumed = wait_for("the network to resume", Duration::from_secs(60), || {
        height()
    });
    assert!(resumed >= first, "resumed at {resumed}, below {first}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(up.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    assert!(up.wait().unwrap().success());
}

/// A validator stopped with SIGTERM makes its state durable in full before it exits, so that
/// it starts again without rebuilding anything from the state's log, at the same state.
#[test]
fn cleanly_stopped_validator_starts_without_recovering_its_state() {
    let mut net = Net::start(1);
    let issuer = load(&net, "issuer");
    let bob = new_account(Algorithm::Ed25519);
    let client = net.client(0);
    for n in 0..3u64 {
        pay_and_wait(&client, &issuer, bob, 5, n);
    }
    let h = net.height(0).unwrap();
    let root = net.state_root_at(0, h).unwrap();
    let status = net
        .terminate_node(0, Duration::from_secs(30))
        .expect("the node stops within 30 s of SIGTERM");
    assert!(status.success(), "exit status {status}");
    let log_path = net.node_dir(0).join("node.log");
    let before = std::fs::read_to_string(&log_path).unwrap();
    assert!(before.contains("state synced"), "{before}");

    net.start_node(0);
    net.wait_height(0, h, Duration::from_secs(60));
    let after = wait_for("the restarted node's log", Duration::from_secs(30), || {
        let log = std::fs::read_to_string(&log_path).ok()?;
        let new = log.get(before.len()..)?.to_string();
        new.contains("node running").then_some(new)
    });
    assert!(
        !after.contains("Merkle structure lags behind journal"),
        "the state was rebuilt from its log: {after}"
    );
    assert_eq!(net.state_root_at(0, h).unwrap(), root);
    let v = net.client(0).account(&bob).unwrap();
    assert_eq!(v["balances"][0]["amount"], "15");
}

/// A validator whose p2p port is taken stops at start with an error naming the address,
/// rather than panicking inside the p2p listener.
#[test]
fn a_taken_p2p_port_stops_the_node_with_a_clear_error() {
    let net = Net::init(1);
    let config = net.node_dir(0).join("config.toml");
    let parsed: toml::Value = toml::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    let listen: std::net::SocketAddr = parsed["p2p"]["listen"].as_str().unwrap().parse().unwrap();
    let _taken = std::net::TcpListener::bind(listen).expect("the p2p port is free to take");
    let out = crate::harness::verity(&["node", "run", "--config", config.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen for p2p on {listen}")),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
