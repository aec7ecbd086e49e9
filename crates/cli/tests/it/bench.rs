//! `verity bench --quick` and `verity bench --soak` run end to end and write complete reports.
//! They prove the benchmark works; they assert no speed (speed targets belong to the benchmark
//! itself).

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
    assert_eq!(report["parameters"]["devices"], 20);
    let figures = report["figures"].as_object().unwrap();
    for name in [
        "ingest.mqtt.ed25519.readings_per_s",
        "ingest.http.ed25519.readings_per_s",
        "ingest.mqtt.p256.readings_per_s",
        "ingest.http.p256.readings_per_s",
        "latency.mqtt.ed25519.at_50pct.p50",
        "latency.mqtt.ed25519.at_90pct.p99",
        "transfers.finalized_per_s",
        "transfers.batched.finalized_per_s",
        "proofs.generated_per_s",
        "proofs.verified_per_s",
        "queries.history.page_p99",
        "queries.device_readings.page_p99",
        "storage.bytes_per_reading",
        "storage.bytes_per_transfer",
        "memory.peak_rss.node0",
    ] {
        assert_positive_median(figures, name);
    }
    // Offered below what even a debug build commits, nothing should be refused: a refusal
    // here is a bug (as replays of readings in unfinalized blocks once were).
    for name in [
        "ingest.mqtt.ed25519.refused",
        "ingest.http.ed25519.refused",
        "ingest.mqtt.p256.refused",
        "ingest.http.p256.refused",
        "transfers.batched.refused",
    ] {
        assert_eq!(figures[name]["max"], 0.0, "{name}: {:?}", figures[name]);
    }
    // Every reading sent was committed or refused by the time the network went quiet, counted
    // by the validators themselves: none lost between a device and the ledger.
    for name in [
        "ingest.mqtt.ed25519.unaccounted",
        "ingest.http.ed25519.unaccounted",
        "ingest.mqtt.p256.unaccounted",
        "ingest.http.p256.unaccounted",
    ] {
        assert_eq!(figures[name]["min"], 0.0, "{name}: {:?}", figures[name]);
        assert_eq!(figures[name]["max"], 0.0, "{name}: {:?}", figures[name]);
    }
    for name in [
        "ingest.mqtt.ed25519.overwritten",
        "ingest.mqtt.p256.overwritten",
    ] {
        assert_eq!(figures[name]["max"], 0.0, "{name}: {:?}", figures[name]);
    }
    // The machine's share each side took, and what a reading and a transfer cost the validators.
    for name in [
        "cpu.ingest.mqtt.ed25519.validators",
        "cpu.ingest.mqtt.ed25519.load_generator",
        "cpu.ingest.mqtt.ed25519.validators_us_per_reading",
        "cpu.transfers.validators_us_per_tx",
        "cpu.transfers.batched.validators_us_per_tx",
    ] {
        assert_positive_median(figures, name);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("ingest.mqtt.ed25519.readings_per_s"),
        "{stdout}"
    );
}

#[test]
fn a_short_soak_follows_every_validators_memory() {
    let out = verity(&["bench", "--soak", "0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--soak must be more than 0"), "{err}");
    for devices in ["0", "10001"] {
        let out = verity(&["bench", "--quick", "--devices", devices]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--devices must be 1..=10000"), "{err}");
    }

    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("soak.json");
    let out = verity(&[
        "bench",
        "--quick",
        "--soak",
        "0.3",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "soak failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["parameters"]["soak_minutes"], 0.3);
    let figures = report["figures"].as_object().unwrap();
    for name in [
        "soak.readings_per_s",
        "soak.peak_rss.node0",
        "soak.final_rss.node0",
    ] {
        assert_positive_median(figures, name);
    }
    assert!(figures["soak.rss_trend.node0"]["median"].is_f64());
    // Samples every 5 s over 18 s: the memory of the one validator, rising committed counts.
    let samples = report["samples"].as_array().unwrap();
    assert!(samples.len() >= 3, "{samples:?}");
    assert!(
        samples
            .iter()
            .all(|s| s["resident_mib"][0].as_f64().unwrap() > 0.0)
    );
    let committed: Vec<f64> = samples
        .iter()
        .map(|s| s["committed"].as_f64().unwrap())
        .collect();
    assert!(committed.windows(2).all(|w| w[0] <= w[1]), "{committed:?}");
    assert!(committed.last().unwrap() > &0.0, "{committed:?}");
}

/// Asserts that the report's figure `name` exists and has a positive median.
fn assert_positive_median(figures: &serde_json::Map<String, serde_json::Value>, name: &str) {
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
