//! Inputs that fuzzing found to break a decoder or verifier (fuzz/regressions), each kept as a
//! test of the behaviour that is now right.

use verity_types::{
    Genesis, Header, Reading, RejectCode,
    genesis::{GenesisOrganization, GenesisValidator, Role},
    hash::sha256,
    proof::{MerklePath, ProofError, ReadingProof},
};

/// A SenML record whose `v` and `bv` are finite but sum to infinity is `bad_senml`, as any
/// non-finite number is.
#[test]
fn value_plus_base_value_overflowing_to_infinity_is_bad_senml() {
    let bytes = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fuzz/regressions/reading/senml-value-overflows-to-infinity.cbor"
    ));
    let err = Reading::decode(bytes).expect_err("an infinite value decoded");
    assert_eq!(err.code, RejectCode::BadSenml, "{err}");
}

fn genesis() -> Genesis {
    Genesis {
        chain_name: "fuzz-regression".into(),
        genesis_time_ms: 0,
        validators: vec![GenesisValidator {
            name: "v0".into(),
            public_key: "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a".into(),
            organization: "org".parse().unwrap(),
        }],
        organizations: vec![GenesisOrganization {
            id: "org".parse().unwrap(),
            name: "Org".into(),
            roles: [Role::Validator].into_iter().collect(),
        }],
        assets: vec![],
        accounts: vec![],
        tiers: vec![],
        default_tier: None,
    }
}

fn header(parent: verity_types::Hash, height: u64) -> Header {
    let zero = sha256(b"");
    Header {
        parent,
        height,
        timestamp_ms: 1,
        proposer: [0; 32],
        txs_root: zero,
        readings_root: zero,
        receipts_root: zero,
        state_root: zero,
    }
}

fn hex_header(h: &Header) -> String {
    let mut buf = Vec::new();
    commonware_codec::Write::write(h, &mut buf);
    hex::encode(buf)
}

/// A proof whose first header is at height 2^64 − 1 followed by a child is refused as a broken
/// chain instead of overflowing the height (a panic in debug builds).
#[test]
fn header_chain_at_the_last_height_is_refused_without_overflow() {
    let genesis = genesis();
    let first = header(sha256(b"parent"), u64::MAX);
    let second = header(first.hash(), 0);
    let path = MerklePath {
        index: 0,
        leaf_count: 1,
        siblings: vec![],
    };
    let proof = ReadingProof {
        version: 1,
        kind: "reading".into(),
        chain_id: genesis.chain_id().to_string(),
        reading_id: sha256(b"").to_string(),
        reading: String::new(),
        height: u64::MAX,
        readings_path: path.clone(),
        receipt_path: path,
        headers: vec![hex_header(&first), hex_header(&second)],
        finalization: String::new(),
    };
    assert_eq!(proof.verify(&genesis), Err(ProofError::Chain(0)));
}
