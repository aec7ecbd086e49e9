//! `verity up`: a local network of validators as child processes, with their data under one
//! folder; Ctrl-C stops them cleanly and running it again resumes the same chain.

use anyhow::{Context as _, bail};
use std::{
    path::Path,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

fn terminate(child: &Child) {
    // SIGTERM lets the node stop cleanly (Child::kill would send SIGKILL).
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
}

/// Runs the network in `dir` (created with `validators` validators if new) until interrupted.
pub fn run(dir: &Path, validators: usize, ports: &crate::testnet::Ports) -> anyhow::Result<()> {
    if !dir.join("genesis.json").exists() {
        crate::testnet::init(dir, validators, ports)?;
        println!(
            "created a {validators}-validator network in {}",
            dir.display()
        );
    } else {
        println!("resuming the network in {}", dir.display());
    }
    let exe = std::env::current_exe().context("cannot find the verity executable")?;
    let mut nodes = Vec::new();
    for i in 0.. {
        let node_dir = dir.join(format!("node{i}"));
        let config = node_dir.join("config.toml");
        if !config.exists() {
            break;
        }
        let cfg = verity_node::config::NodeConfig::load(&config)?;
        let log = std::fs::File::create(node_dir.join("node.log"))?;
        let child = Command::new(&exe)
            .args(["node", "run", "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start node{i}"))?;
        let mqtt = cfg
            .mqtt
            .as_ref()
            .and_then(|m| m.listen)
            .map_or(String::new(), |a| format!("  MQTT {a}"));
        println!(
            "node{i}: API http://{}{mqtt}  (log {})",
            cfg.api.listen,
            node_dir.join("node.log").display()
        );
        nodes.push((i, child));
    }
    if nodes.is_empty() {
        bail!("no node configs in {}", dir.display());
    }
    println!(
        "keys: {0}/issuer.key {0}/operator.key {0}/regulator.key",
        dir.display()
    );
    println!("press Ctrl-C to stop");
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .context("cannot install the Ctrl-C handler")?;
    while !stop.load(Ordering::SeqCst) {
        for (i, child) in nodes.iter_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                bail!("node{i} exited ({status}); see its node.log");
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("stopping");
    for (_, child) in &nodes {
        terminate(child);
    }
    for (i, mut child) in nodes {
        let status = child.wait()?;
        println!("node{i} stopped ({status})");
    }
    Ok(())
}
