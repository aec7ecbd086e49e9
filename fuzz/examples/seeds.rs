//! Writes the seed corpora of the fuzz targets, `fuzz/corpus/<target>/seed-*` (or under the
//! directory given as the only argument): the reading test vectors, and readings, signed
//! transactions of every body kind, gossip batches of transactions and of readings, blocks, genesis documents and complete,
//! valid inclusion proofs built with verity-types' public API for the fixture network
//! (`verity_fuzz::fixture`). Every seed is deterministic, and the valid ones are checked to
//! decode (or verify) before they are written, so a seed that stopped being valid fails here
//! rather than quietly weakening the fuzzing.
//!
//! Run by scripts/fuzz before fuzzing: `cargo run --release --example seeds`.

use commonware_codec::{Encode as _, Read as _};
use commonware_consensus::{
    simplex::{
        scheme::ed25519::Scheme,
        types::{Finalization, Finalize, Proposal},
    },
    types::{Epoch, Round, View},
};
use commonware_cryptography::Signer as _;
use commonware_parallel::Sequential;
use commonware_utils::{iter::NonEmpty, ordered::Set};
use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};
use verity_fuzz::fixture;
use verity_types::{
    AccountId, Algorithm, Amount, AssetCode, Block, DeviceId, DeviceMeta, DeviceStatus, Genesis,
    Hash, Header, Memo, Nonce, Reading, SignedTransaction, Transaction, TxBody,
    genesis::{GenesisAccount, GenesisTier, TierLimits},
    gossip::{decode_readings, encode_readings},
    hash::sha256,
    merkle,
    proof::{
        self, MerklePath, PROOF_VERSION, ProvenReceipt, ReadingProof, TxProof, reading_receipt_leaf,
    },
    reading::{
        SenmlValue,
        sign::{NewRecord, sign_payload, sign_reading},
    },
    receipt::{Movement, MovementKind, receipt_leaf},
    tx::{InnerBody, Members},
};

/// Seconds since the Unix epoch used as the readings' time.
const READING_TIME_S: f64 = 1_760_000_000.0;

fn main() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = std::env::args_os()
        .nth(1)
        .map_or_else(|| manifest.join("corpus"), PathBuf::from);
    let mut out = Corpus { root, written: 0 };

    let vectors = manifest.join("../tests/vectors/readings.json");
    for (name, bytes) in reading_vectors(&vectors) {
        out.write("reading", &format!("vector-{name}"), &bytes);
    }
    let readings = readings();
    for (name, bytes) in &readings {
        Reading::decode(bytes).unwrap_or_else(|e| panic!("seed reading {name}: {e}"));
        out.write("reading", name, bytes);
    }

    let txs = transactions();
    for (name, tx) in &txs {
        let bytes = tx.to_bytes();
        SignedTransaction::decode_submitted(&bytes).expect("a seed transaction decodes");
        out.write("tx", name, &bytes);
    }

    let all: Vec<SignedTransaction> = txs.iter().map(|(_, t)| t.clone()).collect();
    for (name, batch) in [("one", &all[..1]), ("all", &all[..])] {
        let bytes = verity_types::tx::encode_batch(batch);
        verity_types::tx::decode_batch(&bytes).expect("a seed batch decodes");
        out.write("tx_batch", name, &bytes);
    }
    for (name, batch) in [("empty", &all[..0]), ("one", &all[..1]), ("all", &all[..])] {
        let bytes = batch.to_vec().encode();
        Vec::<SignedTransaction>::read_cfg(&mut bytes.clone(), &fixture::gossip_cfg())
            .expect("a seed gossip batch decodes");
        out.write("gossip", name, &bytes);
    }

    let framed: Vec<(u64, &[u8])> = readings
        .iter()
        .enumerate()
        .map(|(i, (_, b))| (i as u64, b.as_slice()))
        .collect();
    for (name, batch) in [
        ("empty", &framed[..0]),
        ("one", &framed[..1]),
        ("all", &framed[..]),
    ] {
        let bytes = encode_readings(batch.iter().copied());
        decode_readings(&bytes).expect("a seed reading gossip batch decodes");
        out.write("reading_gossip", name, &bytes);
    }

    let decoded: Vec<Reading> = readings
        .iter()
        .map(|(_, b)| Reading::decode(b).expect("checked above"))
        .collect();
    for (name, block) in [
        ("genesis", Block::genesis(1, sha256(b"state"))),
        ("txs", block(7, all.clone(), Vec::new())),
        ("readings", block(8, Vec::new(), decoded.clone())),
        ("both", block(9, all[..2].to_vec(), decoded[..2].to_vec())),
    ] {
        let bytes = block.encode();
        <Block as commonware_codec::Decode>::decode_cfg(bytes.clone(), &fixture::BLOCK_LIMITS)
            .expect("a seed block decodes");
        out.write("block", name, &bytes);
    }

    for (name, genesis) in [("fixture", fixture::genesis().clone()), ("tiers", tiered())] {
        genesis.validate().expect("a seed genesis is valid");
        out.write(
            "genesis",
            &format!("{name}-canonical"),
            &genesis.to_canonical_json(),
        );
        let pretty = serde_json::to_vec_pretty(&genesis).expect("genesis serializes");
        out.write("genesis", &format!("{name}-pretty"), &pretty);
    }

    for (name, p) in reading_proofs(&decoded) {
        p.verify(fixture::genesis())
            .unwrap_or_else(|e| panic!("seed reading proof {name}: {e}"));
        let bytes = serde_json::to_vec_pretty(&p).expect("a proof serializes");
        out.write("reading_proof", name, &bytes);
    }
    for (name, p) in tx_proofs(&all) {
        p.verify(fixture::genesis())
            .unwrap_or_else(|e| panic!("seed tx proof {name}: {e}"));
        let bytes = serde_json::to_vec_pretty(&p).expect("a proof serializes");
        out.write("tx_proof", name, &bytes);
    }

    println!(
        "seeds: wrote {} files under {}",
        out.written,
        out.root.display()
    );
}

/// Where the seeds go.
struct Corpus {
    root: PathBuf,
    written: usize,
}

impl Corpus {
    fn write(&mut self, target: &str, name: &str, bytes: &[u8]) {
        let dir = self.root.join(target);
        fs::create_dir_all(&dir).expect("creating a corpus directory");
        fs::write(dir.join(format!("seed-{name}")), bytes).expect("writing a seed");
        self.written += 1;
    }
}

/// The readings of tests/vectors/readings.json (hex), by name.
fn reading_vectors(path: &Path) -> Vec<(String, Vec<u8>)> {
    let text = fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let vectors: Vec<serde_json::Value> =
        serde_json::from_slice(&text).expect("readings.json is a JSON array");
    vectors
        .iter()
        .map(|v| {
            let name = v["name"].as_str().expect("a vector has a name");
            let hex_bytes = v["reading"].as_str().expect("a vector has a reading");
            let bytes = hex::decode(hex_bytes).expect("a vector's reading is hex");
            (name.to_string(), bytes)
        })
        .collect()
}

/// Valid readings of both algorithms: every value kind, a float64 value, and a hand-built pack
/// with every base field, sum and update time.
fn readings() -> Vec<(String, Vec<u8>)> {
    let record = |name: &str, value: SenmlValue| NewRecord {
        name: name.into(),
        time: READING_TIME_S,
        unit: None,
        value,
    };
    let kinds = vec![
        NewRecord {
            unit: Some("Cel".into()),
            ..record("temp", SenmlValue::Number(21.5))
        },
        record("status", SenmlValue::String("ok".into())),
        record("door", SenmlValue::Bool(false)),
        record("blob", SenmlValue::Data(vec![1, 2, 3])),
    ];
    let wide = vec![NewRecord {
        time: READING_TIME_S + 0.25,
        ..record("energy", SenmlValue::Number(1.0e300))
    }];
    // [{bn: "urn:dev:", bt: 1700000000, bu: "W", bv: 100.0, s: 1, n: "p", v: 1.5},
    //  {n: "on", t: 10, ut: 60, vb: true}]
    let based = hex::decode(concat!(
        "82",
        "a7",
        "21",
        "6875726e3a6465763a",
        "22",
        "1a6553f100",
        "23",
        "6157",
        "24",
        "f95640",
        "05",
        "01",
        "00",
        "6170",
        "02",
        "f93e00",
        "a4",
        "00",
        "626f6e",
        "06",
        "0a",
        "07",
        "183c",
        "04",
        "f5",
    ))
    .expect("hex");
    let mut out = Vec::new();
    for alg in [Algorithm::Ed25519, Algorithm::P256] {
        let key = fixture::device_key(alg);
        let device: DeviceId = format!("fuzz-{alg}").parse().expect("a valid device id");
        out.push((
            format!("{alg}-kinds"),
            sign_reading(&key, &device, 1, &kinds),
        ));
        out.push((format!("{alg}-wide"), sign_reading(&key, &device, 2, &wide)));
        out.push((
            format!("{alg}-based"),
            sign_payload(&key, &device, (1 << 53) - 1, based.clone()),
        ));
    }
    out
}

/// One body of every kind the codec knows; fails if a kind is missing.
fn bodies() -> Vec<TxBody> {
    let account = |n: u8| AccountId([n; 20]);
    let cny: AssetCode = "CNY".parse().expect("asset code");
    let memo = |s: &str| Memo::new(s).expect("memo");
    let cheque = sha256(b"cheque");
    let device: DeviceId = "meter-1".parse().expect("device id");
    let meta = DeviceMeta::new(BTreeMap::from([
        ("model".to_string(), "TX-9".to_string()),
        ("site".to_string(), "dock 4".to_string()),
    ]))
    .expect("meta");
    let transfer = TxBody::Transfer {
        to: account(2),
        asset: cny.clone(),
        amount: Amount(1234),
        memo: memo("rent"),
    };
    let bodies = vec![
        transfer.clone(),
        TxBody::Mint {
            to: account(3),
            asset: cny.clone(),
            amount: Amount(u64::MAX),
            memo: memo(""),
        },
        TxBody::Burn {
            asset: cny.clone(),
            amount: Amount(1),
            memo: memo("burn"),
        },
        TxBody::DeviceRegister {
            device: device.clone(),
            key: fixture::device_key(Algorithm::P256).public_key(),
            meta,
        },
        TxBody::DeviceSetStatus {
            device: device.clone(),
            status: DeviceStatus::Suspended,
        },
        TxBody::DeviceRotateKey {
            device: device.clone(),
            key: fixture::device_key(Algorithm::Ed25519).public_key(),
        },
        TxBody::DeviceTransfer {
            device,
            to: account(4),
        },
        TxBody::SetTier {
            account: account(5),
            tier: "verified".parse().expect("tier id"),
        },
        TxBody::SetFrozen {
            account: account(5),
            frozen: true,
            reason: memo("court order"),
        },
        TxBody::MultisigCreate {
            members: Members(vec![account(6), account(7), account(8)]),
            threshold: 2,
        },
        TxBody::MultisigPropose {
            account: account(9),
            body: InnerBody(Box::new(transfer)),
        },
        TxBody::MultisigApprove {
            account: account(9),
            proposal: sha256(b"proposal"),
        },
        TxBody::MultisigCancel {
            account: account(9),
            proposal: sha256(b"proposal"),
        },
        TxBody::ChequeIssue {
            payee: account(10),
            asset: cny.clone(),
            amount: Amount(500),
            valid_from_ms: Some(1),
            expires_ms: None,
            memo: memo("invoice 7"),
        },
        TxBody::ChequeEndorse {
            cheque,
            to: account(11),
        },
        TxBody::ChequePresent { cheque },
        TxBody::ChequeStop {
            cheque,
            reason: memo("lost"),
        },
        TxBody::ChequeCancel { cheque },
        TxBody::ChequePledge {
            cheque,
            to: account(12),
        },
        TxBody::ChequeRelease { cheque },
        TxBody::PaperPresent {
            image_sha256: sha256(b"scan"),
            number: "000123".parse().expect("cheque number"),
            drawer: account(13),
            payee: account(14),
            asset: cny,
            amount: Amount(9999),
        },
        TxBody::PaperDecide {
            cheque,
            honour: false,
            reason: memo("insufficient funds"),
        },
    ];
    let have: BTreeSet<u8> = bodies.iter().map(TxBody::tag).collect();
    let known: BTreeSet<u8> = (0..=u8::MAX)
        .filter(|tag| {
            // A known tag fails later, for want of the body's fields; an unknown one at once.
            !matches!(
                TxBody::read_cfg(&mut bytes::Bytes::from(vec![*tag]), &()),
                Err(commonware_codec::Error::InvalidEnum(_))
            )
        })
        .collect();
    assert_eq!(
        have, known,
        "seeds need one body of every kind: add the new ones"
    );
    bodies
}

/// Every body kind, signed by an Ed25519 and by a P-256 account for the fixture chain.
fn transactions() -> Vec<(String, SignedTransaction)> {
    let mut out = Vec::new();
    for alg in [Algorithm::Ed25519, Algorithm::P256] {
        let key = fixture::account_key(alg, 1);
        for (i, body) in bodies().into_iter().enumerate() {
            let name = format!("{}-{alg}", body.kind());
            let tx = Transaction {
                signer: key.public_key(),
                nonce: Nonce(i as u64),
                body,
            };
            out.push((name, tx.sign(&key, &fixture::chain_id())));
        }
    }
    out
}

/// A header at `height` committing to `txs` and `readings` (and to the given receipts).
fn header(
    height: u64,
    txs: &[SignedTransaction],
    readings: &[std::sync::Arc<Reading>],
    receipts: &[Hash],
) -> Header {
    Header {
        parent: sha256(&height.to_be_bytes()),
        height,
        timestamp_ms: 1_760_000_000_000 + height * 1000,
        proposer: [1; 32],
        txs_root: Block::txs_root_of(txs),
        readings_root: Block::readings_root_of(readings),
        receipts_root: merkle::root(receipts),
        state_root: sha256(b"state"),
    }
}

fn block(height: u64, txs: Vec<SignedTransaction>, readings: Vec<Reading>) -> Block {
    let readings: Vec<_> = readings.into_iter().map(std::sync::Arc::new).collect();
    Block::new(header(height, &txs, &readings, &[]), txs, readings)
}

/// The child of `parent` (empty body).
fn child(parent: &Header) -> Header {
    Header {
        parent: parent.hash(),
        height: parent.height + 1,
        ..header(parent.height + 1, &[], &[], &[])
    }
}

/// A finalization certificate of `header` signed by every fixture validator, hex.
fn finalization(header: &Header) -> String {
    let keys = fixture::validator_keys();
    let set = Set::from_iter_dedup(keys.iter().map(|k| k.public_key()));
    let schemes: Vec<Scheme> = keys
        .iter()
        .map(|k| Scheme::signer(proof::NAMESPACE, set.clone(), k.clone()).expect("a validator"))
        .collect();
    let view = header.height + 1;
    let proposal = Proposal::new(
        Round::new(Epoch::zero(), View::new(view)),
        View::new(view - 1),
        header.hash(),
    );
    let votes: Vec<Finalize<Scheme, Hash>> = schemes
        .iter()
        .map(|s| Finalize::sign(s, proposal.clone()).expect("a validator signs"))
        .collect();
    let votes = NonEmpty::try_new(votes.iter()).expect("votes");
    let fin =
        Finalization::from_finalizes(&schemes[0], votes, &Sequential).expect("a quorum of votes");
    proof::encode_finalization(&fin)
}

fn hex_header(h: &Header) -> String {
    let mut buf = Vec::new();
    commonware_codec::Write::write(h, &mut buf);
    hex::encode(buf)
}

/// Valid proofs of the second of `readings`: certified directly, and through a child header.
fn reading_proofs(readings: &[Reading]) -> Vec<(&'static str, ReadingProof)> {
    use base64::Engine as _;
    let ids: Vec<Hash> = readings.iter().map(Reading::id).collect();
    let receipts: Vec<Hash> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| reading_receipt_leaf(id, i as u32, 0))
        .collect();
    let shared: Vec<_> = readings.iter().cloned().map(std::sync::Arc::new).collect();
    let first = header(5, &[], &shared, &receipts);
    let height = first.height;
    let index = 1;
    let proof = |headers: Vec<Header>| ReadingProof {
        version: PROOF_VERSION,
        kind: "reading".into(),
        chain_id: hex::encode(fixture::chain_id().0),
        reading_id: hex::encode(ids[index].0),
        reading: base64::engine::general_purpose::STANDARD.encode(readings[index].bytes()),
        height,
        readings_path: MerklePath::of(&ids, index as u32).expect("in range"),
        receipt_path: MerklePath::of(&receipts, index as u32).expect("in range"),
        headers: headers.iter().map(hex_header).collect(),
        finalization: finalization(headers.last().expect("a header")),
    };
    let second = child(&first);
    vec![
        ("direct", proof(vec![first.clone()])),
        ("chained", proof(vec![first, second])),
    ]
}

/// Valid proofs of the second of `txs` with its movements: certified directly, and through a
/// child header.
fn tx_proofs(txs: &[SignedTransaction]) -> Vec<(&'static str, TxProof)> {
    let movement = |account: u8, delta: i128, kind| Movement {
        account: AccountId([account; 20]),
        asset: "CNY".parse().expect("asset code"),
        delta,
        counterparty: Some(AccountId([account ^ 1; 20])),
        kind,
        memo: "rent".into(),
        balance_after: 1_000,
    };
    let receipt = ProvenReceipt {
        outcome: "ok".into(),
        movements: vec![
            movement(2, -1234, MovementKind::Transfer),
            movement(3, 1234, MovementKind::Transfer),
        ],
    };
    let txs = &txs[..3];
    let ids: Vec<Hash> = txs.iter().map(SignedTransaction::id).collect();
    let receipts: Vec<Hash> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| receipt_leaf(id, i as u32, &receipt.outcome, &receipt.movements))
        .collect();
    let first = header(11, txs, &[], &receipts);
    let height = first.height;
    let index = 1;
    let proof = |headers: Vec<Header>| TxProof {
        version: PROOF_VERSION,
        kind: "tx".into(),
        chain_id: hex::encode(fixture::chain_id().0),
        tx_id: hex::encode(ids[index].0),
        tx: hex::encode(txs[index].to_bytes()),
        height,
        txs_path: MerklePath::of(&ids, index as u32).expect("in range"),
        receipt: receipt.clone(),
        receipt_path: MerklePath::of(&receipts, index as u32).expect("in range"),
        headers: headers.iter().map(hex_header).collect(),
        finalization: finalization(headers.last().expect("a header")),
    };
    let second = child(&first);
    vec![
        ("direct", proof(vec![first.clone()])),
        ("chained", proof(vec![first, second])),
    ]
}

/// The fixture genesis with wallet tiers, a default tier and more accounts.
fn tiered() -> Genesis {
    let mut genesis = fixture::genesis().clone();
    let cny: AssetCode = "CNY".parse().expect("asset code");
    let limits = TierLimits {
        single_payment: Some(Amount(50_000)),
        daily: Some(Amount(100_000)),
        balance: None,
    };
    genesis.tiers = vec![
        GenesisTier {
            id: "anonymous".parse().expect("tier id"),
            name: "Anonymous".into(),
            limits: BTreeMap::from([(cny.clone(), limits)]),
        },
        GenesisTier {
            id: "verified".parse().expect("tier id"),
            name: "Verified".into(),
            limits: BTreeMap::new(),
        },
    ];
    genesis.default_tier = Some("anonymous".parse().expect("tier id"));
    genesis.accounts.push(GenesisAccount {
        account: AccountId([42; 20]),
        organization: None,
        admin: false,
        balances: BTreeMap::from([(cny, Amount(7))]),
        tier: Some("verified".parse().expect("tier id")),
    });
    genesis
}
