//! Readings over MQTT, as a third-party device sends them: to a node's embedded broker, and
//! through an external Mosquitto broker that a node subscribes to. Every acceptance rule gives
//! its receipt on the device's receipt topic; accepted readings are followed by a committed
//! receipt with the height.

use crate::harness::{Net, free_base, now_s, number_record, wait_for};
use rumqttc::{Client, Connection, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use std::{
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};
use verity_types::{
    Algorithm, SecretKey, TxBody,
    hash::sha256,
    reading::sign::{NewRecord, senml_pack, sign_payload, sign_reading},
};

fn record(time: f64) -> NewRecord {
    number_record("humidity", "%RH", time, 61.0)
}

fn signed(key: &SecretKey, device: &str, seq: u64) -> Vec<u8> {
    sign_reading(key, &device.parse().unwrap(), seq, &[record(now_s())])
}

/// A device's MQTT session: publishes readings, collects its receipts.
struct Device {
    client: Client,
    receipts: mpsc::Receiver<Value>,
}

impl Device {
    fn connect(port: u16, id: &str, receipt_topics: &[&str]) -> Self {
        let mut options = MqttOptions::new(format!("device-{id}"), "127.0.0.1", port);
        options.set_keep_alive(Duration::from_secs(30));
        options.set_max_packet_size(64 * 1024, 64 * 1024);
        let (client, connection) = Client::new(options, 100);
        let (tx, receipts) = mpsc::channel();
        let (subscribed_tx, subscribed) = mpsc::channel();
        std::thread::spawn(move || pump(connection, tx, subscribed_tx));
        for topic in receipt_topics {
            client
                .subscribe(format!("verity/v1/receipts/{topic}"), QoS::AtLeastOnce)
                .unwrap();
        }
        // Receipts go only to subscribers: wait until the broker confirmed every subscription.
        for _ in receipt_topics {
            subscribed
                .recv_timeout(Duration::from_secs(30))
                .expect("subscription confirmed");
        }
        Self { client, receipts }
    }

    fn publish(&self, device: &str, bytes: Vec<u8>) {
        self.client
            .publish(
                format!("verity/v1/readings/{device}"),
                QoS::AtLeastOnce,
                false,
                bytes,
            )
            .unwrap();
    }

    /// The next receipt for `reading` (by id), skipping others.
    fn receipt(&self, reading: &[u8], status: &str) -> Value {
        let id = hex::encode(sha256(reading).0);
        wait_for(
            &format!("{status} receipt of {id}"),
            Duration::from_secs(60),
            || {
                let r = self
                    .receipts
                    .recv_timeout(Duration::from_millis(200))
                    .ok()?;
                (r["reading_id"] == id && r["status"] == status).then_some(r)
            },
        )
    }
}

fn pump(mut connection: Connection, tx: mpsc::Sender<Value>, subscribed: mpsc::Sender<()>) {
    for event in connection.iter() {
        match event {
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if let Ok(v) = serde_json::from_slice(&p.payload)
                    && tx.send(v).is_err()
                {
                    return;
                }
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                let _ = subscribed.send(());
            }
            Ok(_) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Registers an Ed25519 device through the API and waits until it is final.
fn register(net: &Net, id: &str) -> SecretKey {
    let operator = crate::harness::load(net, "operator");
    let key = SecretKey::generate(Algorithm::Ed25519);
    let client = net.client(0);
    let tx = client
        .sign(
            &operator,
            TxBody::DeviceRegister {
                device: id.parse().unwrap(),
                key: key.public_key(),
                meta: Default::default(),
            },
            None,
        )
        .unwrap();
    client.submit(&tx).unwrap();
    client
        .wait_final(&tx.id(), Duration::from_secs(60))
        .unwrap();
    key
}

/// Sends each refusal case and checks its receipt code; then one good reading.
fn exercise(net: &Net, device: &Device, id: &str, key: &SecretKey) {
    let good = signed(key, id, 1);
    device.publish(id, good.clone());
    let accepted = device.receipt(&good, "accepted");
    assert_eq!(accepted["seq"], 1);
    let committed = device.receipt(&good, "committed");
    let height = committed["height"].as_u64().unwrap();
    assert!(height > 0);
    // Another validator has it at the same height once it has finalized that far.
    net.wait_height(2, height, Duration::from_secs(60));
    assert_eq!(
        net.client(2)
            .get(&format!("/v1/readings/{}", hex::encode(sha256(&good).0)))
            .unwrap()["height"],
        height
    );
    let other = SecretKey::generate(Algorithm::Ed25519);
    let p256 = SecretKey::generate(Algorithm::P256);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("malformed", b"\xff\x00 not cose".to_vec(), "malformed"),
        (
            "alg -35",
            crate::harness::vector("bad-alg-es384"),
            "bad_header",
        ),
        ("replay", signed(key, id, 1), "replay"),
        ("bad sig", signed(&other, id, 2), "bad_signature"),
        ("wrong alg", signed(&p256, id, 2), "wrong_algorithm"),
        (
            "undated",
            sign_payload(key, &id.parse().unwrap(), 2, senml_pack(&[record(0.0)])),
            "bad_senml",
        ),
        (
            "future",
            sign_reading(key, &id.parse().unwrap(), 2, &[record(now_s() + 3600.0)]),
            "future_timestamp",
        ),
    ];
    for (what, bytes, code) in cases {
        device.publish(id, bytes.clone());
        let r = device.receipt(&bytes, "rejected");
        assert_eq!(r["code"], code, "{what}");
    }
    // The topic must name the reading's own device.
    let bytes = signed(key, "someone-else", 2);
    device.publish(id, bytes.clone());
    assert_eq!(device.receipt(&bytes, "rejected")["code"], "bad_header");
    // A device that is not registered: its own topic, so it can hear the answer.
    let stranger = Device::connect(device_port(net), "ghost", &["ghost"]);
    let bytes = signed(&other, "ghost", 1);
    stranger.publish("ghost", bytes.clone());
    assert_eq!(
        stranger.receipt(&bytes, "rejected")["code"],
        "unknown_device"
    );
    // Nothing refused changed the device's state.
    let d = net.client(0).get(&format!("/v1/devices/{id}")).unwrap();
    assert_eq!(d["last_seq"], 1);
    // A reading made by an independent implementation (pycose) over MQTT.
    let bytes = crate::harness::python_reading(key, id, 3, "humidity", 58.5);
    device.publish(id, bytes.clone());
    device.receipt(&bytes, "committed");
    // A revoked device's readings are refused.
    let operator = crate::harness::load(net, "operator");
    let client = net.client(0);
    let tx = client
        .sign(
            &operator,
            TxBody::DeviceSetStatus {
                device: id.parse().unwrap(),
                status: verity_types::DeviceStatus::Revoked,
            },
            None,
        )
        .unwrap();
    client.submit(&tx).unwrap();
    client
        .wait_final(&tx.id(), Duration::from_secs(60))
        .unwrap();
    let bytes = signed(key, id, 4);
    device.publish(id, bytes.clone());
    assert_eq!(
        device.receipt(&bytes, "rejected")["code"],
        "device_not_active"
    );
}

fn device_port(net: &Net) -> u16 {
    net.mqtt_base
}

#[test]
fn readings_over_the_embedded_broker_get_receipts() {
    let net = Net::start(4);
    let key = register(&net, "hum-1");
    let device = Device::connect(device_port(&net), "hum-1", &["hum-1"]);
    exercise(&net, &device, "hum-1", &key);
}

/// A Mosquitto broker on a free port, stopped when dropped.
struct Mosquitto(Child, u16);

impl Mosquitto {
    fn start(dir: &std::path::Path) -> Option<Self> {
        let bin = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())?;
        let port = free_base(1);
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\nmax_inflight_messages 1000\nmax_queued_messages 100000\npersistence false\n"
            ),
        )
        .unwrap();
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        wait_for("mosquitto to listen", Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        Some(Self(child, port))
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn readings_through_an_external_mosquitto_broker_get_receipts() {
    let broker_dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(broker_dir.path())
        .expect("mosquitto is installed (scripts/test installs it with apt-get)");
    let mut net = Net::start(4);
    // Node 1 leaves its embedded broker and subscribes to Mosquitto instead.
    net.kill_node(1);
    let config = net.node_dir(1).join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let start = text.find("[mqtt]").unwrap();
    let external = format!(
        "{}[mqtt]\nmode = \"external\"\nbroker = \"127.0.0.1:{}\"\nclient_id = \"verity-node1\"\n",
        &text[..start],
        broker.1
    );
    std::fs::write(&config, external).unwrap();
    net.start_node(1);
    let h = net.height(0).unwrap();
    net.wait_height(1, h, Duration::from_secs(60));
    let key = register(&net, "hum-2");
    let device = Device::connect(broker.1, "hum-2", &["hum-2"]);
    let good = signed(&key, "hum-2", 1);
    // The node's subscription may still be on its way: publish until the broker delivers.
    let accepted = wait_for(
        "the node to answer over Mosquitto",
        Duration::from_secs(60),
        || {
            device.publish("hum-2", good.clone());
            let r = device.receipts.recv_timeout(Duration::from_secs(1)).ok()?;
            (r["status"] == "accepted" || r["code"] == "replay" || r["status"] == "committed")
                .then_some(r)
        },
    );
    assert_eq!(accepted["reading_id"], hex::encode(sha256(&good).0));
    // Unless the first answer already was the commitment, it follows.
    let committed = if accepted["status"] == "committed" {
        accepted
    } else {
        device.receipt(&good, "committed")
    };
    assert!(committed["height"].as_u64().unwrap() > 0);
    let bad = signed(&SecretKey::generate(Algorithm::Ed25519), "hum-2", 5);
    device.publish("hum-2", bad.clone());
    assert_eq!(device.receipt(&bad, "rejected")["code"], "bad_signature");
}

#[test]
fn sim_streams_readings_that_all_commit() {
    let net = Net::start(4);
    for transport in ["mqtt", "http"] {
        let out = crate::harness::verity(&[
            "sim",
            "--devices",
            "4",
            "--rate",
            "40",
            "--duration",
            "2",
            "--transport",
            transport,
            "--key",
            net.key("operator").to_str().unwrap(),
            "--mqtt",
            &format!("127.0.0.1:{}", device_port(&net)),
            "--node",
            &net.url(0),
        ]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // "summary: sent N  accepted N  committed N  rejected 0 ..."
        let summary = stdout.lines().find(|l| l.starts_with("summary:")).unwrap();
        let field = |name: &str| -> u64 {
            let after = summary.split(&format!("{name} ")).nth(1).unwrap();
            after.split_whitespace().next().unwrap().parse().unwrap()
        };
        assert!(field("sent") >= 40, "{summary}");
        assert_eq!(field("committed"), field("sent"), "{transport}: {summary}");
        assert_eq!(field("rejected"), 0, "{summary}");
        // Every device's readings are on the ledger.
        let devices = net.client(2).get("/v1/devices?limit=100").unwrap();
        assert!(devices["devices"].as_array().unwrap().len() >= 4);
    }
}

#[test]
fn a_full_pool_is_answered_on_both_transports() {
    let mut net = Net::start(4);
    let key = register(&net, "flood-1");
    // With two of four validators down nothing finalizes, so readings stay in the pool.
    net.kill_node(2);
    net.kill_node(3);
    let client = net.client(0);
    const PER_DEVICE: u64 = 1024; // [pool] max_per_device default
    for seq in 1..=PER_DEVICE {
        client
            .submit_reading(&signed(&key, "flood-1", seq))
            .unwrap();
    }
    match client.submit_reading(&signed(&key, "flood-1", PER_DEVICE + 1)) {
        Err(verity_client::ClientError::Api { status, code, .. }) => {
            assert_eq!((status, code.as_str()), (429, "pool_full"));
        }
        other => panic!("expected pool_full, got {other:?}"),
    }
    let device = Device::connect(device_port(&net), "flood-1", &["flood-1"]);
    let bytes = signed(&key, "flood-1", PER_DEVICE + 2);
    device.publish("flood-1", bytes.clone());
    assert_eq!(device.receipt(&bytes, "rejected")["code"], "pool_full");
}

#[test]
fn mqtt5_devices_get_receipts_too() {
    use std::io::BufRead as _;
    let mut net = Net::start(4);
    // Node 3 also serves MQTT 5 on a port of its own.
    let v5_port = free_base(1);
    net.kill_node(3);
    let config = net.node_dir(3).join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replacen(
        "[mqtt]\n",
        &format!("[mqtt]\nlisten_v5 = \"127.0.0.1:{v5_port}\"\n"),
        1,
    );
    std::fs::write(&config, text).unwrap();
    net.start_node(3);
    let h = net.height(0).unwrap();
    net.wait_height(3, h, Duration::from_secs(60));
    let key = register(&net, "v5-dev");
    // Node 3 knows the device once it has finalized its registration.
    let h = net.height(0).unwrap();
    net.wait_height(3, h, Duration::from_secs(60));
    // Mosquitto's own MQTT 5 clients play the device.
    let port = v5_port.to_string();
    let mut sub = KillOnDrop(
        Command::new("mosquitto_sub")
            .args(["-V", "mqttv5", "-h", "127.0.0.1", "-p", &port, "-q", "1"])
            .args(["-t", "verity/v1/receipts/v5-dev"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub is installed (scripts/test installs mosquitto-clients)"),
    );
    let (tx, rx) = mpsc::channel::<Value>();
    let stdout = sub.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Ok(v) = serde_json::from_str(&line)
                && tx.send(v).is_err()
            {
                return;
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("reading.cose");
    let bytes = signed(&key, "v5-dev", 1);
    std::fs::write(&file, &bytes).unwrap();
    let id = hex::encode(sha256(&bytes).0);
    // Publish until the subscription is in place and the first receipt comes back.
    let first = wait_for("a receipt over MQTT 5", Duration::from_secs(60), || {
        let ok = Command::new("mosquitto_pub")
            .args(["-V", "mqttv5", "-h", "127.0.0.1", "-p", &port, "-q", "1"])
            .args(["-t", "verity/v1/readings/v5-dev", "-f"])
            .arg(&file)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mosquitto_pub failed");
        rx.recv_timeout(Duration::from_secs(1)).ok()
    });
    assert_eq!(first["reading_id"], id);
    // The reading's receipts: accepted (unless published before the subscription took hold),
    // replay for the repeats, then committed.
    let committed = if first["status"] == "committed" {
        first
    } else {
        assert!(
            first["status"] == "accepted" || first["code"] == "replay",
            "{first}"
        );
        wait_for("the committed receipt", Duration::from_secs(60), || {
            let r = rx.recv_timeout(Duration::from_millis(200)).ok()?;
            (r["reading_id"] == id && r["status"] == "committed").then_some(r)
        })
    };
    assert_eq!(committed["seq"], 1);
}

/// A child process that is killed when the test ends, passing or not.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
