//! The reading test vectors in `tests/vectors/readings.json`: valid and invalid readings of
//! both algorithms with the device key, the reading id and the expected outcome of the
//! state-free checks plus the signature. `VERITY_WRITE_VECTORS=1` regenerates the file (a
//! deliberate, reviewed change); otherwise the test checks our decoder against it. The same
//! file is checked by an independent implementation (tests/python, pycose and cbor2).

use ciborium::Value;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use verity_types::{
    Algorithm, DeviceId, Reading, SecretKey,
    hash::sha256,
    reading::{
        SEQ_LABEL, SenmlValue,
        sign::{NewRecord, senml_pack, sign_payload, sign_reading},
    },
};

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Vector {
    name: String,
    alg: String,
    device_id: String,
    /// The device's public key as registered (hex).
    public_key: String,
    /// The reading bytes (hex).
    reading: String,
    /// SHA-256 of the bytes (hex).
    reading_id: String,
    /// `accepted`, or the error code of the first failing check.
    expected: String,
    /// Why the vector exists.
    note: String,
}

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/readings.json")
}

fn key(alg: Algorithm) -> SecretKey {
    // Fixed keys so that the vectors are reproducible (both signature schemes are deterministic).
    let seed = match alg {
        Algorithm::Ed25519 => [0x11u8; 32],
        Algorithm::P256 => [0x22u8; 32],
    };
    SecretKey::from_bytes(alg, &seed).unwrap()
}

const T: f64 = 1_764_000_000.0;

fn rec(name: &str, value: SenmlValue) -> NewRecord {
    NewRecord {
        name: name.into(),
        time: T,
        unit: None,
        value,
    }
}

fn cbor(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).unwrap();
    out
}

/// A COSE_Sign1 with a hand-made protected header, properly signed.
fn with_header(key: &SecretKey, header: Vec<(i64, Value)>, payload: Vec<u8>) -> Vec<u8> {
    let protected = cbor(&Value::Map(
        header
            .into_iter()
            .map(|(k, v)| (Value::Integer(k.into()), v))
            .collect(),
    ));
    let tbs = cbor(&Value::Array(vec![
        Value::Text("Signature1".into()),
        Value::Bytes(protected.clone()),
        Value::Bytes(vec![]),
        Value::Bytes(payload.clone()),
    ]));
    let sig = key.sign(&tbs).0.to_vec();
    cbor(&Value::Tag(
        18,
        Box::new(Value::Array(vec![
            Value::Bytes(protected),
            Value::Map(vec![]),
            Value::Bytes(payload),
            Value::Bytes(sig),
        ])),
    ))
}

fn generate() -> Vec<Vector> {
    let mut out = Vec::new();
    let mut push =
        |name: &str, alg: Algorithm, device: &str, bytes: Vec<u8>, expected: &str, note: &str| {
            out.push(Vector {
                name: name.into(),
                alg: alg.name().into(),
                device_id: device.into(),
                public_key: hex::encode(key(alg).public_key().as_bytes()),
                reading_id: hex::encode(sha256(&bytes).0),
                reading: hex::encode(&bytes),
                expected: expected.into(),
                note: note.into(),
            })
        };
    for alg in [Algorithm::Ed25519, Algorithm::P256] {
        let k = key(alg);
        let a = alg.name();
        let dev: DeviceId = format!("vec-{a}").parse().unwrap();
        let d = dev.as_str();
        push(
            &format!("{a}-temperature"),
            alg,
            d,
            sign_reading(&k, &dev, 1, &[rec("temperature", SenmlValue::Number(21.5))]),
            "accepted",
            "one numeric record",
        );
        let mut multi = vec![
            rec("power", SenmlValue::Number(1250.0)),
            rec("status", SenmlValue::String("ok".into())),
            rec("door", SenmlValue::Bool(false)),
            rec("blob", SenmlValue::Data(vec![1, 2, 3])),
        ];
        multi[0].unit = Some("W".into());
        push(
            &format!("{a}-all-value-kinds"),
            alg,
            d,
            sign_reading(&k, &dev, 2, &multi),
            "accepted",
            "v, vs, vb and vd records",
        );
        let other = SecretKey::from_bytes(alg, &[0x33u8; 32]).unwrap();
        push(
            &format!("{a}-wrong-key"),
            alg,
            d,
            sign_reading(&other, &dev, 3, &[rec("t", SenmlValue::Number(1.0))]),
            "bad_signature",
            "signed by another key",
        );
        let mut bytes = sign_reading(&k, &dev, 4, &[rec("t", SenmlValue::Number(1.0))]);
        let n = bytes.len();
        bytes[n - 1] ^= 1;
        push(
            &format!("{a}-flipped-signature-bit"),
            alg,
            d,
            bytes,
            "bad_signature",
            "last signature bit flipped",
        );
    }
    let k = key(Algorithm::Ed25519);
    let dev: DeviceId = "vec-ed25519".parse().unwrap();
    let good_payload = senml_pack(&[rec("t", SenmlValue::Number(1.0))]);
    let hdr = |alg: i64, ct: Value, seq: i64| {
        vec![
            (1, Value::Integer(alg.into())),
            (3, ct),
            (4, Value::Bytes(b"vec-ed25519".to_vec())),
            (SEQ_LABEL, Value::Integer(seq.into())),
        ]
    };
    push(
        "ed25519-hand-built-header",
        Algorithm::Ed25519,
        "vec-ed25519",
        with_header(
            &k,
            hdr(-8, Value::Integer(112.into()), 5),
            good_payload.clone(),
        ),
        "accepted",
        "header built without coset",
    );
    push(
        "bad-alg-es384",
        Algorithm::Ed25519,
        "vec-ed25519",
        with_header(
            &k,
            hdr(-35, Value::Integer(112.into()), 5),
            good_payload.clone(),
        ),
        "bad_header",
        "alg -35 is not allowed",
    );
    push(
        "bad-content-type-text",
        Algorithm::Ed25519,
        "vec-ed25519",
        with_header(
            &k,
            hdr(-8, Value::Text("application/senml+cbor".into()), 5),
            good_payload.clone(),
        ),
        "bad_header",
        "content type must be the integer 112",
    );
    push(
        "bad-seq-zero",
        Algorithm::Ed25519,
        "vec-ed25519",
        with_header(
            &k,
            hdr(-8, Value::Integer(112.into()), 0),
            good_payload.clone(),
        ),
        "bad_header",
        "seq must be at least 1",
    );
    let mut missing = hdr(-8, Value::Integer(112.into()), 5);
    missing.pop();
    push(
        "bad-no-seq",
        Algorithm::Ed25519,
        "vec-ed25519",
        with_header(&k, missing, good_payload.clone()),
        "bad_header",
        "seq label missing",
    );
    let undated = NewRecord {
        time: 0.0,
        ..rec("t", SenmlValue::Number(1.0))
    };
    push(
        "bad-senml-undated",
        Algorithm::Ed25519,
        "vec-ed25519",
        sign_payload(&k, &dev, 6, senml_pack(&[undated])),
        "bad_senml",
        "a record without a time",
    );
    push(
        "bad-senml-empty-pack",
        Algorithm::Ed25519,
        "vec-ed25519",
        sign_payload(&k, &dev, 7, cbor(&Value::Array(vec![]))),
        "bad_senml",
        "a pack with no records",
    );
    let two_values = cbor(&Value::Array(vec![Value::Map(vec![
        (Value::Integer(0.into()), Value::Text("t".into())),
        (Value::Integer(6.into()), Value::Integer((T as i64).into())),
        (Value::Integer(2.into()), Value::Integer(1.into())),
        (Value::Integer(4.into()), Value::Bool(true)),
    ])]));
    push(
        "bad-senml-two-values",
        Algorithm::Ed25519,
        "vec-ed25519",
        sign_payload(&k, &dev, 8, two_values),
        "bad_senml",
        "a record with both v and vb",
    );
    push(
        "malformed-not-cbor",
        Algorithm::Ed25519,
        "vec-ed25519",
        b"hello".to_vec(),
        "malformed",
        "not CBOR",
    );
    let good = sign_reading(&k, &dev, 9, &[rec("t", SenmlValue::Number(1.0))]);
    push(
        "malformed-untagged",
        Algorithm::Ed25519,
        "vec-ed25519",
        good[1..].to_vec(),
        "malformed",
        "COSE_Sign1 without tag 18",
    );
    let mut trailing = good.clone();
    trailing.push(0);
    push(
        "malformed-trailing-byte",
        Algorithm::Ed25519,
        "vec-ed25519",
        trailing,
        "malformed",
        "a byte after the message",
    );
    let mut indefinite = good.clone();
    indefinite[1] = 0x9f;
    indefinite.push(0xff);
    push(
        "malformed-indefinite-array",
        Algorithm::Ed25519,
        "vec-ed25519",
        indefinite,
        "malformed",
        "indefinite-length outer array",
    );
    out
}

/// Our verdict: decoding, then the signature under the vector's key.
fn verdict(v: &Vector) -> String {
    let bytes = hex::decode(&v.reading).unwrap();
    match Reading::decode(&bytes) {
        Err(e) => e.code.code().to_string(),
        Ok(r) => {
            let alg: Algorithm = v.alg.parse().unwrap();
            let key = verity_types::PublicKey::from_hex(alg, &v.public_key).unwrap();
            if r.device().as_str() != v.device_id {
                "bad_header".into()
            } else if r.verify(&key) {
                "accepted".into()
            } else {
                "bad_signature".into()
            }
        }
    }
}

#[test]
fn reading_vectors_hold() {
    if std::env::var_os("VERITY_WRITE_VECTORS").is_some() {
        let text = serde_json::to_string_pretty(&generate()).unwrap();
        std::fs::write(path(), text + "\n").unwrap();
    }
    let vectors: Vec<Vector> =
        serde_json::from_slice(&std::fs::read(path()).expect("tests/vectors/readings.json"))
            .unwrap();
    assert!(vectors.len() >= 20);
    for alg in ["ed25519", "p256"] {
        assert!(
            vectors
                .iter()
                .any(|v| v.alg == alg && v.expected == "accepted")
        );
        assert!(
            vectors
                .iter()
                .any(|v| v.alg == alg && v.expected != "accepted")
        );
    }
    for v in &vectors {
        let bytes = hex::decode(&v.reading).unwrap();
        assert_eq!(hex::encode(sha256(&bytes).0), v.reading_id, "{}", v.name);
        assert_eq!(verdict(v), v.expected, "{}", v.name);
    }
}

/// The Python interpreter with pycose and cbor2 (`./scripts/test` sets it up).
pub fn python() -> PathBuf {
    match std::env::var_os("VERITY_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/py-venv/bin/python"),
    }
}

#[test]
fn an_independent_implementation_agrees_with_the_vectors() {
    let py = python();
    assert!(
        py.exists(),
        "{} is missing: run ./scripts/test, which installs pycose and cbor2 into target/py-venv",
        py.display()
    );
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/verity_cose.py");
    let out = std::process::Command::new(py)
        .arg(script)
        .arg("check")
        .arg(path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" 0 failed"), "{stdout}");
}
