//! Starts and stops real validator processes, waits on conditions with deadlines.

use serde_json::Value;
use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};
use verity_client::Client;
use verity_types::{AccountId, Amount, KeyFile, Memo, SecretKey, TxBody};

/// The key in `name`.key of a testnet folder.
pub fn load(net: &Net, name: &str) -> SecretKey {
    let text = std::fs::read(net.key(name)).unwrap();
    serde_json::from_slice::<KeyFile>(&text)
        .unwrap()
        .to_key()
        .unwrap()
}

/// A CNY transfer of `amount` minor units to `to`.
pub fn transfer(to: AccountId, amount: u64) -> TxBody {
    TxBody::Transfer {
        to,
        asset: "CNY".parse().unwrap(),
        amount: Amount(amount),
        memo: Memo::default(),
    }
}

/// The `verity` binary under test.
pub fn verity_bin() -> &'static str {
    env!("CARGO_BIN_EXE_verity")
}

/// Runs `verity` with `args` to completion.
pub fn verity(args: &[&str]) -> Output {
    Command::new(verity_bin())
        .args(args)
        .output()
        .expect("verity runs")
}

/// The kernel's range of ephemeral (automatically assigned source) ports.
fn ephemeral_ports() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| {
            let mut it = t.split_whitespace().map(|x| x.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999))
}

/// Finds `3n` consecutive free ports on 127.0.0.1 (three ranges: p2p, API and MQTT), below the
/// kernel's ephemeral range: a port from that range can be taken as the source port of any
/// outgoing connection while a killed node is down, and the node could not listen on it again.
pub fn free_base(n: u16) -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let (ephemeral_lo, _) = ephemeral_ports();
    let lo = 10_000u16;
    let hi = ephemeral_lo.max(lo + 1000) - 3 * n;
    let span = hi - lo;
    let seed = (std::process::id() as u16).wrapping_mul(7919);
    loop {
        let step = NEXT.fetch_add(3 * n + 7, Ordering::Relaxed);
        let base = lo + seed.wrapping_add(step) % span;
        let ok = (0..3 * n).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok());
        if ok {
            return base;
        }
    }
}

/// Polls `f` until it returns `Some`, or panics with `what` after `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A local network of validator processes in a temporary folder.
pub struct Net {
    pub dir: tempfile::TempDir,
    pub api_base: u16,
    pub mqtt_base: u16,
    nodes: Vec<Option<Child>>,
}

impl Net {
    /// Writes an `n`-validator testnet and starts every node.
    pub fn start(n: usize) -> Self {
        let mut net = Self::init(n);
        net.start_all();
        net
    }

    /// Writes an `n`-validator testnet without starting any node, so that a test can change
    /// the nodes' config files first; [Net::start_all] then starts them.
    pub fn init(n: usize) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = free_base(n as u16);
        let p2p = base.to_string();
        let api = (base + n as u16).to_string();
        let mqtt = (base + 2 * n as u16).to_string();
        let out = verity(&[
            "testnet",
            "init",
            "--validators",
            &n.to_string(),
            "--dir",
            dir.path().to_str().unwrap(),
            "--p2p-port",
            &p2p,
            "--api-port",
            &api,
            "--mqtt-port",
            &mqtt,
        ]);
        assert!(
            out.status.success(),
            "testnet init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self {
            dir,
            api_base: base + n as u16,
            mqtt_base: base + 2 * n as u16,
            nodes: (0..n).map(|_| None).collect(),
        }
    }

    /// Starts every node that is not running and waits until each has finalized height 1.
    pub fn start_all(&mut self) {
        for i in 0..self.nodes.len() {
            if self.nodes[i].is_none() {
                self.start_node(i);
            }
        }
        for i in 0..self.nodes.len() {
            self.wait_height(i, 1, Duration::from_secs(60));
        }
    }

    /// How many validators the network has.
    pub fn validators(&self) -> usize {
        self.nodes.len()
    }

    /// The process id of node `i`, if it runs (it may be stopped with SIGSTOP).
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].as_ref().map(Child::id)
    }

    /// The address of node `i`'s embedded MQTT broker.
    pub fn mqtt_addr(&self, i: usize) -> std::net::SocketAddr {
        ([127, 0, 0, 1], self.mqtt_base + i as u16).into()
    }

    /// Stops node `i` with SIGTERM and waits until it exits; returns its exit status, or
    /// `None` if it did not exit within `limit` (it is then killed with SIGKILL).
    pub fn terminate_node(
        &mut self,
        i: usize,
        limit: Duration,
    ) -> Option<std::process::ExitStatus> {
        let mut child = self.nodes[i].take().expect("node is running");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().expect("waits") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn key(&self, name: &str) -> PathBuf {
        self.path().join(format!("{name}.key"))
    }

    pub fn url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.api_base + i as u16)
    }

    pub fn client(&self, i: usize) -> Client {
        Client::new(&self.url(i))
    }

    pub fn node_dir(&self, i: usize) -> PathBuf {
        self.path().join(format!("node{i}"))
    }

    /// Starts node `i` (again), appending to its log.
    pub fn start_node(&mut self, i: usize) {
        assert!(self.nodes[i].is_none(), "node{i} is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.node_dir(i).join("node.log"))
            .expect("log opens");
        let child = Command::new(verity_bin())
            .args(["node", "run", "--config"])
            .arg(self.node_dir(i).join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("node starts");
        self.nodes[i] = Some(child);
    }

    /// Kills node `i` with SIGKILL.
    pub fn kill_node(&mut self, i: usize) {
        let mut child = self.nodes[i].take().expect("node is running");
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
    }

    /// The status of node `i`, if it answers.
    pub fn status(&self, i: usize) -> Option<Value> {
        self.client(i).status().ok()
    }

    pub fn height(&self, i: usize) -> Option<u64> {
        self.status(i).and_then(|s| s["height"].as_u64())
    }

    pub fn wait_height(&self, i: usize, h: u64, limit: Duration) {
        wait_for(&format!("node{i} to reach height {h}"), limit, || {
            self.height(i).filter(|x| *x >= h)
        });
    }

    /// The state root in the header of block `h` on node `i`.
    pub fn state_root_at(&self, i: usize, h: u64) -> Option<String> {
        let b = self.client(i).get(&format!("/v1/blocks/{h}")).ok()?;
        b["header"]["state_root"].as_str().map(str::to_string)
    }

    pub fn block_hash_at(&self, i: usize, h: u64) -> Option<String> {
        let b = self.client(i).get(&format!("/v1/blocks/{h}")).ok()?;
        b["hash"].as_str().map(str::to_string)
    }

    /// Asserts that all running nodes hold the same blocks and state roots up to a common height.
    pub fn assert_agree(&self, running: &[usize]) -> u64 {
        let common = running
            .iter()
            .map(|&i| self.height(i).expect("node answers"))
            .min()
            .unwrap();
        for h in [1, common / 2, common] {
            let roots: Vec<_> = running.iter().map(|&i| self.state_root_at(i, h)).collect();
            let hashes: Vec<_> = running.iter().map(|&i| self.block_hash_at(i, h)).collect();
            assert!(
                roots.iter().all(|r| r.is_some() && *r == roots[0]),
                "state roots differ at {h}: {roots:?}"
            );
            assert!(
                hashes.iter().all(|r| r.is_some() && *r == hashes[0]),
                "blocks differ at {h}: {hashes:?}"
            );
        }
        common
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for child in self.nodes.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Keep the node logs of a failed test (the temp folder is deleted).
        if std::thread::panicking() {
            let keep = Path::new(env!("CARGO_TARGET_TMPDIR"))
                .join("e2e-logs")
                .join(self.path().file_name().unwrap_or_default());
            let _ = std::fs::create_dir_all(&keep);
            for i in 0..self.nodes.len() {
                let _ = std::fs::copy(
                    self.node_dir(i).join("node.log"),
                    keep.join(format!("node{i}.log")),
                );
            }
            eprintln!("node logs kept in {}", keep.display());
        }
    }
}

/// A reading made by the independent Python implementation (pycose and cbor2, tests/python):
/// `value` of sensor `name` now, signed with `key` as reading `seq` of `device`.
pub fn python_reading(key: &SecretKey, device: &str, seq: u64, name: &str, value: f64) -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = std::env::var_os("VERITY_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/py-venv/bin/python"));
    assert!(
        python.exists(),
        "{} is missing: run ./scripts/test, which installs pycose and cbor2 into target/py-venv",
        python.display()
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let out = Command::new(python)
        .arg(root.join("tests/python/verity_cose.py"))
        .args([
            "make",
            key.algorithm().name(),
            &hex::encode(key.to_bytes()),
            device,
            &seq.to_string(),
            &now.to_string(),
            name,
            &value.to_string(),
        ])
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    hex::decode(String::from_utf8(out.stdout).unwrap().trim()).unwrap()
}

/// The bytes of test vector `name` in tests/vectors/readings.json.
pub fn vector(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/readings.json");
    let all: Vec<Value> = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let v = all
        .iter()
        .find(|v| v["name"] == name)
        .expect("vector exists");
    hex::decode(v["reading"].as_str().unwrap()).unwrap()
}

/// Now, in whole seconds since the Unix epoch.
pub fn now_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        .floor()
}

/// A numeric SenML record.
pub fn number_record(
    name: &str,
    unit: &str,
    time: f64,
    value: f64,
) -> verity_types::reading::sign::NewRecord {
    verity_types::reading::sign::NewRecord {
        name: name.into(),
        time,
        unit: Some(unit.into()),
        value: verity_types::reading::SenmlValue::Number(value),
    }
}
