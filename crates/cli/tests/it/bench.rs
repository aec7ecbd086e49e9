//! `verity bench --quick` runs end to end and writes a complete report. It proves the
//! benchmark works; it asserts no speed (speed targets belong to the benchmark itself).

use crate::harness::verity;

#[test]
fn quick_bench_writes_a_complete_report() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let out = verity(&["bench", "--quick", "--json", json.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert!(report["machine"]["cores"].as_u64().unwrap() >= 1);
    assert_eq!(report["parameters"]["validators"], 1);
    let figures = report["figures"].as_object().unwrap();
    for name in [
        "ingest.mqtt.ed25519.readings_per_s",
        "ingest.http.ed25519.readings_per_s",
        "ingest.mqtt.p256.readings_per_s",
        "ingest.http.p256.readings_per_s",
        "latency.mqtt.ed25519.at_50pct.p50",
        "latency.mqtt.ed25519.at_90pct.p99",
        "transfers.finalized_per_s",
        "proofs.generated_per_s",
        "proofs.verified_per_s",
        "queries.history.page_p99",
        "queries.device_readings.page_p99",
        "storage.bytes_per_reading",
        "storage.bytes_per_transfer",
        "memory.peak_rss.node0",
    ] {
        let median = figures
            .get(name)
            .unwrap_or_else(|| panic!("figure {name} missing from {figures:?}"))["median"]
            .as_f64();
        assert!(
            median.is_some_and(|m| m > 0.0),
            "figure {name} has no positive median: {:?}",
            figures[name]
        );
    }
    // Offered below what even a debug build commits, nothing should be refused: a refusal
    // here is a bug (as replays of readings in unfinalized blocks once were).
    for name in [
        "ingest.mqtt.ed25519.refused",
        "ingest.http.ed25519.refused",
        "ingest.mqtt.p256.refused",
        "ingest.http.p256.refused",
    ] {
        assert_eq!(figures[name]["max"], 0.0, "{name}: {:?}", figures[name]);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("ingest.mqtt.ed25519.readings_per_s"),
        "{stdout}"
    );
}
