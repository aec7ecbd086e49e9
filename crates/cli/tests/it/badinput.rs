//! The bad-input catalogue, end to end on real `verity` processes: every ledger error code and
//! every reading error code through the HTTP API, malformed and oversized request bodies,
//! clients that trickle their requests, hostile MQTT clients and a flooding device, and peers
//! that are not validators knocking on the p2p port. Each case asserts a typed refusal and that
//! nothing the public API shows has changed; the codes seen are collected and checked against
//! the full lists, so a new code without a case fails here.
//!
//! Invalid blocks from a Byzantine proposer, and the two ledger codes no request can cause on
//! the testnet genesis, are in crates/node/tests/it/blocks.rs.

use crate::harness::{Net, load, now_s, number_record, vector, wait_for};
use serde_json::{Value, json};
use std::{
    collections::BTreeSet,
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    sync::mpsc,
    time::{Duration, Instant},
};
use verity_client::{Client, ClientError};
use verity_types::{
    AccountId, Algorithm, Amount, AssetCode, ChequeNumber, DeviceId, DeviceStatus, Hash, Memo,
    RejectCode, SecretKey, Signature, SignedTransaction, TxBody,
    hash::sha256,
    reading::sign::{senml_pack, sign_payload, sign_reading},
    tx::{InnerBody, Members, cheque_id, multisig_account_id},
};

/// Ledger codes that no request can cause on the testnet genesis, and where each is shown.
const LEDGER_CODES_ELSEWHERE: &[(&str, &str)] = &[
    (
        "too_many_assets",
        "crates/node/tests/it/blocks.rs: a_65th_asset_is_refused_with_too_many_assets (the testnet has one asset)",
    ),
    (
        "state_unavailable",
        "crates/node/tests/it/blocks.rs: a_storage_fault_is_refused_with_state_unavailable (a storage fault)",
    ),
];

/// Reading codes shown by another test of this file.
const READING_CODES_ELSEWHERE: &[(&str, &str)] = &[(
    "pool_full",
    "badinput.rs: hostile_clients_are_cut_off_and_others_are_served (a flooding device)",
)];

fn cny() -> AssetCode {
    "CNY".parse().unwrap()
}

fn memo(s: &str) -> Memo {
    Memo::new(s).unwrap()
}

fn pay(to: AccountId, amount: u64) -> TxBody {
    TxBody::Transfer {
        to,
        asset: cny(),
        amount: Amount(amount),
        memo: Memo::default(),
    }
}

fn id_of(key: &SecretKey) -> AccountId {
    key.public_key().account_id()
}

fn hex_id(h: &Hash) -> String {
    hex::encode(h.0)
}

/// What a refusal must leave untouched: the JSON of each path (the tip `height` some of them
/// carry aside), or the error code it answers.
fn snapshot(client: &Client, paths: &[String]) -> Vec<(String, Value)> {
    paths
        .iter()
        .map(|p| {
            let v = match client.get(p) {
                Ok(mut v) => {
                    if let Value::Object(m) = &mut v {
                        m.remove("height");
                    }
                    v
                }
                Err(e) => json!({"error": e.code()}),
            };
            (p.clone(), v)
        })
        .collect()
}

/// The HTTP status and error code of a refused submission.
fn refusal(client: &Client, tx: &SignedTransaction) -> (u16, String) {
    match client.submit(tx) {
        Err(ClientError::Api { status, code, .. }) => (status, code),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Whether node `i` has never heard of transaction `id`.
fn unknown_tx(net: &Net, i: usize, id: &Hash) -> bool {
    matches!(
        net.client(i).get(&format!("/v1/txs/{}", hex_id(id))),
        Err(ClientError::Api { status: 404, .. })
    )
}

/// A batch submission's body around `txs` (raw bytes, well-formed or not): each behind its
/// length, 4 bytes big-endian.
fn batch_of(txs: &[&[u8]]) -> Vec<u8> {
    txs.iter()
        .flat_map(|t| {
            (t.len() as u32)
                .to_be_bytes()
                .into_iter()
                .chain(t.iter().copied())
        })
        .collect()
}

/// Submits `txs` to node 0 and waits until every one is final.
fn commit_all(client: &Client, txs: &[SignedTransaction]) {
    for t in txs {
        client
            .submit(t)
            .unwrap_or_else(|e| panic!("{}: {e}", t.tx.body.kind()));
    }
    for t in txs {
        client
            .wait_final(&t.id(), Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{}: {e}", t.tx.body.kind()));
    }
}

fn signed_reading(key: &SecretKey, device: &str, seq: u64, time: f64) -> Vec<u8> {
    sign_reading(
        key,
        &device.parse().unwrap(),
        seq,
        &[number_record("temperature", "Cel", time, 4.5)],
    )
}

/// A raw HTTP/1.1 exchange: sends `request` and reads until the server closes; returns the
/// status and the JSON body.
fn raw_http(addr: SocketAddr, request: &[u8]) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    parse_response(&out).unwrap_or_else(|| {
        panic!(
            "no HTTP response to {:?}: {:?}",
            String::from_utf8_lossy(&request[..request.len().min(60)]),
            String::from_utf8_lossy(&out)
        )
    })
}

/// Status and JSON body of a complete `Content-Length` response in `bytes`.
fn parse_response(bytes: &[u8]) -> Option<(u16, Value)> {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    if body.len() < length {
        return None;
    }
    Some((status, serde_json::from_str(&body[..length]).ok()?))
}

fn api_addr(net: &Net, i: usize) -> SocketAddr {
    ([127, 0, 0, 1], net.api_base + i as u16).into()
}

/// Every ledger code and every reading code, each from a request a client can send, refused
/// with its code and changing nothing; then malformed and oversized request bodies.
#[test]
fn every_refusal_code_over_the_api_changes_nothing() {
    let net = Net::start(4);
    let c = net.client(0);
    let chain_id = c.chain_id().unwrap();
    let issuer = load(&net, "issuer");
    let operator = load(&net, "operator");
    let regulator = load(&net, "regulator");
    let [a, b, frozen, poor] = std::array::from_fn(|_| SecretKey::generate(Algorithm::Ed25519));
    let tx = |key: &SecretKey, nonce: u64, body: TxBody| {
        verity_types::Transaction {
            signer: key.public_key(),
            nonce: verity_types::Nonce(nonce),
            body,
        }
        .sign(key, &chain_id)
    };
    let nonce = |key: &SecretKey| c.account(&id_of(key)).unwrap()["nonce"].as_u64().unwrap();

    // Setup, first round: wallets funded, a cheque, a paper cheque, two devices, two treasuries
    // of `a` and `b` (threshold 2).
    let (i0, o0) = (nonce(&issuer), nonce(&operator));
    let dev_keys = [
        SecretKey::generate(Algorithm::Ed25519),
        SecretKey::generate(Algorithm::Ed25519),
    ];
    let issue = tx(
        &issuer,
        i0 + 3,
        TxBody::ChequeIssue {
            payee: id_of(&a),
            asset: cny(),
            amount: Amount(100),
            valid_from_ms: None,
            expires_ms: None,
            memo: memo("deposit"),
        },
    );
    let cheque = cheque_id(&issue.id());
    let paper = TxBody::PaperPresent {
        image_sha256: sha256(b"scan of cheque 000777"),
        number: "000777".parse::<ChequeNumber>().unwrap(),
        drawer: id_of(&a),
        payee: id_of(&b),
        asset: cny(),
        amount: Amount(100),
    };
    let treasury = |nonce: u64, members: [&SecretKey; 2]| {
        tx(
            &operator,
            nonce,
            TxBody::MultisigCreate {
                members: Members(members.iter().map(|k| id_of(k)).collect()),
                threshold: 2,
            },
        )
    };
    let (t1, t2) = (treasury(o0 + 2, [&a, &b]), treasury(o0 + 3, [&b, &a]));
    let (m1, m2) = (multisig_account_id(&t1.id()), multisig_account_id(&t2.id()));
    let register = |nonce: u64, device: &str, key: &SecretKey| {
        tx(
            &operator,
            nonce,
            TxBody::DeviceRegister {
                device: device.parse().unwrap(),
                key: key.public_key(),
                meta: Default::default(),
            },
        )
    };
    commit_all(
        &c,
        &[
            tx(&issuer, i0, pay(id_of(&a), 400_000)),
            tx(&issuer, i0 + 1, pay(id_of(&b), 100)),
            tx(&issuer, i0 + 2, pay(id_of(&frozen), 100)),
            issue,
            tx(&issuer, i0 + 4, paper.clone()),
            register(o0, "bad-1", &dev_keys[0]),
            register(o0 + 1, "bad-2", &dev_keys[1]),
            t1,
            t2,
        ],
    );
    // Second round: `frozen` is frozen; `a` pays 3,500.00 today (anonymous tier: at most
    // 2,000.00 per payment and 5,000.00 a day), cashes the cheque and proposes from its
    // treasury; `b` fills the other treasury with its maximum of 32 proposals; device `bad-2` is
    // suspended; device `bad-1` has reading seq 1 committed.
    let proposal = tx(
        &a,
        3,
        TxBody::MultisigPropose {
            account: m1,
            body: InnerBody(Box::new(pay(id_of(&b), 1))),
        },
    );
    let mut round2 = vec![
        tx(
            &regulator,
            nonce(&regulator),
            TxBody::SetFrozen {
                account: id_of(&frozen),
                frozen: true,
                reason: memo("court order 7"),
            },
        ),
        tx(&a, 0, pay(id_of(&b), 175_000)),
        tx(&a, 1, pay(id_of(&b), 175_000)),
        tx(&a, 2, TxBody::ChequePresent { cheque }),
        proposal.clone(),
        tx(
            &operator,
            o0 + 4,
            TxBody::DeviceSetStatus {
                device: "bad-2".parse().unwrap(),
                status: DeviceStatus::Suspended,
            },
        ),
    ];
    round2.extend((0..32).map(|n| {
        tx(
            &b,
            n,
            TxBody::MultisigPropose {
                account: m2,
                body: InnerBody(Box::new(pay(id_of(&a), 1 + n))),
            },
        )
    }));
    // Submitted as one batch: each is answered as submitting it alone would be.
    let answers = c.submit_batch(&round2).unwrap();
    for (t, a) in round2.iter().zip(&answers) {
        assert_eq!(a["id"].as_str(), Some(hex_id(&t.id()).as_str()), "{a}");
        assert_eq!(a["status"], "pending", "{}: {a}", t.tx.body.kind());
    }
    commit_all(&c, &round2);
    let first = signed_reading(&dev_keys[0], "bad-1", 1, now_s());
    c.submit_reading(&first).unwrap();
    c.wait_reading(&sha256(&first), Duration::from_secs(60))
        .unwrap();

    // Every ledger code, from a transaction a client can sign. Each is answered at submission
    // (a dry run against committed state) and must leave everything below as it was.
    let watched: Vec<String> = [&issuer, &operator, &regulator, &a, &b, &frozen, &poor]
        .iter()
        .map(|k| id_of(k))
        .chain([m1, m2])
        .map(|id| format!("/v1/accounts/{id}"))
        .chain([
            "/v1/assets/CNY".to_string(),
            "/v1/devices/bad-1".into(),
            "/v1/devices/bad-2".into(),
            "/v1/devices/ghost-9".into(),
            format!("/v1/cheques/{}", hex_id(&cheque)),
            format!(
                "/v1/cheques/{}",
                hex_id(&verity_types::tx::paper_cheque_id(
                    &id_of(&a),
                    &"000777".parse().unwrap()
                ))
            ),
            format!("/v1/accounts/{m1}/proposals/{}", hex_id(&proposal.id())),
        ])
        .collect();
    let settled = snapshot(&c, &watched);
    let sign = |key: &SecretKey, body: TxBody| c.sign(key, body, None).unwrap();
    let at = |key: &SecretKey, n: u64, body: TxBody| c.sign(key, body, Some(n)).unwrap();
    let forged = {
        let t = sign(&issuer, pay(id_of(&b), 1));
        let mut sig = t.signature.0;
        sig[0] ^= 1;
        SignedTransaction::new(t.tx.clone(), Signature(sig))
    };
    let i_next = nonce(&issuer);
    let propose_to = |account: AccountId| TxBody::MultisigPropose {
        account,
        body: InnerBody(Box::new(pay(id_of(&a), 99))),
    };
    let cases: Vec<(&str, &str, SignedTransaction)> = vec![
        ("forged signature", "bad_signature", forged),
        (
            "nonce reused",
            "nonce_too_low",
            at(&issuer, 0, pay(id_of(&b), 1)),
        ),
        (
            "nonce beyond the pool window",
            "nonce_too_high",
            at(&issuer, i_next + 10_000, pay(id_of(&b), 1)),
        ),
        (
            "unfunded account pays",
            "insufficient_funds",
            sign(&poor, pay(id_of(&b), 1)),
        ),
        (
            "unknown asset",
            "unknown_asset",
            sign(
                &issuer,
                TxBody::Transfer {
                    to: id_of(&b),
                    asset: "USD".parse().unwrap(),
                    amount: Amount(1),
                    memo: Memo::default(),
                },
            ),
        ),
        (
            "mint by an operator",
            "unauthorized",
            sign(
                &operator,
                TxBody::Mint {
                    to: id_of(&operator),
                    asset: cny(),
                    amount: Amount(1),
                    memo: Memo::default(),
                },
            ),
        ),
        (
            "zero amount",
            "invalid_amount",
            sign(&issuer, pay(id_of(&b), 0)),
        ),
        (
            "supply past 2^64",
            "overflow",
            sign(
                &issuer,
                TxBody::Mint {
                    to: id_of(&issuer),
                    asset: cny(),
                    amount: Amount(u64::MAX),
                    memo: Memo::default(),
                },
            ),
        ),
        (
            "pay oneself",
            "self_transfer",
            sign(&issuer, pay(id_of(&issuer), 1)),
        ),
        (
            "status of an unregistered device",
            "unknown_device",
            sign(
                &operator,
                TxBody::DeviceSetStatus {
                    device: "ghost-9".parse().unwrap(),
                    status: DeviceStatus::Suspended,
                },
            ),
        ),
        (
            "device id taken",
            "device_exists",
            sign(
                &operator,
                TxBody::DeviceRegister {
                    device: "bad-1".parse().unwrap(),
                    key: SecretKey::generate(Algorithm::Ed25519).public_key(),
                    meta: Default::default(),
                },
            ),
        ),
        (
            "active to active",
            "invalid_transition",
            sign(
                &operator,
                TxBody::DeviceSetStatus {
                    device: "bad-1".parse().unwrap(),
                    status: DeviceStatus::Active,
                },
            ),
        ),
        (
            "frozen account pays",
            "sender_frozen",
            sign(&frozen, pay(id_of(&b), 1)),
        ),
        (
            "pay a frozen account",
            "recipient_frozen",
            sign(&issuer, pay(id_of(&frozen), 1)),
        ),
        (
            "2,000.01 from an anonymous wallet",
            "limit_single_payment",
            sign(&a, pay(id_of(&b), 200_001)),
        ),
        (
            "5,500.00 in a day from an anonymous wallet",
            "limit_daily",
            sign(&a, pay(id_of(&b), 200_000)),
        ),
        (
            "10,000.01 into an anonymous wallet",
            "limit_balance",
            sign(&issuer, pay(id_of(&poor), 1_000_001)),
        ),
        (
            "unknown tier",
            "unknown_tier",
            sign(
                &regulator,
                TxBody::SetTier {
                    account: id_of(&a),
                    tier: "platinum".parse().unwrap(),
                },
            ),
        ),
        (
            "unfreeze an account that is not frozen",
            "freeze_state",
            sign(
                &regulator,
                TxBody::SetFrozen {
                    account: id_of(&a),
                    frozen: false,
                    reason: Memo::default(),
                },
            ),
        ),
        (
            "present an unknown cheque",
            "unknown_cheque",
            sign(
                &a,
                TxBody::ChequePresent {
                    cheque: sha256(b"no such cheque"),
                },
            ),
        ),
        (
            "present a cleared cheque",
            "cheque_state",
            sign(&a, TxBody::ChequePresent { cheque }),
        ),
        (
            "cheque expiring before it is valid",
            "cheque_dates",
            sign(
                &issuer,
                TxBody::ChequeIssue {
                    payee: id_of(&b),
                    asset: cny(),
                    amount: Amount(1),
                    valid_from_ms: Some(4_000_000_000_000),
                    expires_ms: Some(3_000_000_000_000),
                    memo: Memo::default(),
                },
            ),
        ),
        (
            "paper cheque presented twice",
            "duplicate_presentment",
            sign(&issuer, paper),
        ),
        (
            "propose from a plain account",
            "not_multisig",
            sign(&a, propose_to(id_of(&b))),
        ),
        (
            "treasury of one member",
            "invalid_multisig",
            sign(
                &operator,
                TxBody::MultisigCreate {
                    members: Members(vec![id_of(&a)]),
                    threshold: 1,
                },
            ),
        ),
        (
            "approve an unknown proposal",
            "unknown_proposal",
            sign(
                &b,
                TxBody::MultisigApprove {
                    account: m1,
                    proposal: sha256(b"no such proposal"),
                },
            ),
        ),
        (
            "approve one's own proposal again",
            "already_approved",
            sign(
                &a,
                TxBody::MultisigApprove {
                    account: m1,
                    proposal: proposal.id(),
                },
            ),
        ),
        (
            "33rd pending proposal",
            "too_many_proposals",
            sign(&b, propose_to(m2)),
        ),
    ];
    let mut seen = BTreeSet::new();
    for (what, code, t) in &cases {
        let before = snapshot(&c, &watched);
        let (status, got) = refusal(&c, t);
        assert_eq!(got, *code, "{what}");
        assert_eq!(status, 422, "{what}");
        assert_eq!(snapshot(&c, &watched), before, "{what} changed state");
        assert!(unknown_tx(&net, 0, &t.id()), "{what} is known to the node");
        seen.insert(got);
    }
    // The same transactions in one batch, with one already committed last: each gets the
    // answer it got alone, and the batch changes nothing either.
    let before = snapshot(&c, &watched);
    let mut batch: Vec<SignedTransaction> = cases.iter().map(|(_, _, t)| t.clone()).collect();
    batch.push(round2[1].clone());
    let answers = c.submit_batch(&batch).unwrap();
    for ((what, code, t), a) in cases.iter().zip(&answers) {
        assert_eq!(a["id"].as_str(), Some(hex_id(&t.id()).as_str()), "{what}");
        assert_eq!(
            (a["status"].as_str(), a["code"].as_str()),
            (Some("refused"), Some(*code)),
            "{what} in a batch: {a}"
        );
        assert!(
            !a["message"].as_str().unwrap_or("").is_empty(),
            "{what}: {a}"
        );
        assert!(unknown_tx(&net, 0, &t.id()), "{what} in a batch is known");
    }
    let committed = &answers[cases.len()];
    assert_eq!(committed["status"], "committed", "{committed}");
    assert!(
        committed["height"].as_u64().is_some_and(|h| h > 0),
        "{committed}"
    );
    assert_eq!(snapshot(&c, &watched), before, "the batch changed state");

    let elsewhere: BTreeSet<&str> = LEDGER_CODES_ELSEWHERE.iter().map(|(c, _)| *c).collect();
    let all: BTreeSet<&str> = verity_ledger::error::TX_ERROR_CODES
        .iter()
        .copied()
        .collect();
    let covered: BTreeSet<&str> = seen.iter().map(String::as_str).chain(elsewhere).collect();
    assert_eq!(covered, all, "every ledger code has a case");

    // Every reading code over HTTP.
    let device_paths: Vec<String> = ["bad-1", "bad-2"]
        .iter()
        .flat_map(|d| {
            [
                format!("/v1/devices/{d}"),
                format!("/v1/devices/{d}/readings"),
            ]
        })
        .collect();
    let p256 = SecretKey::generate(Algorithm::P256);
    let stranger = SecretKey::generate(Algorithm::Ed25519);
    let bad1: DeviceId = "bad-1".parse().unwrap();
    let reading_cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("not CBOR", b"\xff\xfe not cbor".to_vec(), 400, "malformed"),
        ("alg ES384", vector("bad-alg-es384"), 400, "bad_header"),
        (
            "unregistered device",
            signed_reading(&stranger, "nobody-9", 1, now_s()),
            422,
            "unknown_device",
        ),
        (
            "suspended device",
            signed_reading(&dev_keys[1], "bad-2", 1, now_s()),
            422,
            "device_not_active",
        ),
        (
            "P-256 reading of an Ed25519 device",
            signed_reading(&p256, "bad-1", 2, now_s()),
            422,
            "wrong_algorithm",
        ),
        (
            "signed by another key",
            signed_reading(&stranger, "bad-1", 2, now_s()),
            422,
            "bad_signature",
        ),
        (
            "seq already committed",
            // Another value than the committed reading of seq 1, so other bytes.
            sign_reading(
                &dev_keys[0],
                &bad1,
                1,
                &[number_record("temperature", "Cel", now_s(), -9.75)],
            ),
            409,
            "replay",
        ),
        (
            "undated record",
            sign_payload(
                &dev_keys[0],
                &bad1,
                2,
                senml_pack(&[number_record("t", "Cel", 0.0, 1.0)]),
            ),
            400,
            "bad_senml",
        ),
        (
            "an hour ahead",
            signed_reading(&dev_keys[0], "bad-1", 2, now_s() + 3600.0),
            422,
            "future_timestamp",
        ),
    ];
    let mut seen = BTreeSet::new();
    for (what, bytes, status, code) in &reading_cases {
        let before = snapshot(&c, &device_paths);
        match c.submit_reading(bytes) {
            Err(ClientError::Api {
                status: s, code: k, ..
            }) => {
                assert_eq!((s, k.as_str()), (*status, *code), "{what}");
                seen.insert(k);
            }
            other => panic!("{what}: expected a refusal, got {other:?}"),
        }
        assert_eq!(snapshot(&c, &device_paths), before, "{what} changed state");
        let id = hex_id(&sha256(bytes));
        let known = c.get(&format!("/v1/readings/{id}"));
        assert!(
            matches!(known, Err(ClientError::Api { status: 404, .. })),
            "{what}: {known:?}"
        );
    }
    let covered: BTreeSet<&str> = seen
        .iter()
        .map(String::as_str)
        .chain(READING_CODES_ELSEWHERE.iter().map(|(c, _)| *c))
        .collect();
    let all: BTreeSet<&str> = RejectCode::ALL.iter().map(|c| c.code()).collect();
    assert_eq!(covered, all, "every reading code has a case");

    // Malformed and oversized bodies, wrong content types, wrong methods and paths.
    let http = reqwest::blocking::Client::new();
    let url = net.url(1);
    let valid_tx = c.sign(&issuer, pay(id_of(&b), 1), None).unwrap().to_bytes();
    let valid_reading = signed_reading(&dev_keys[0], "bad-1", 3, now_s());
    let json_tx =
        serde_json::to_vec(&json!({"to": id_of(&b).to_string(), "asset": "CNY", "amount": "1"}))
            .unwrap();
    type Case<'a> = (
        &'a str,
        reqwest::Method,
        &'a str,
        Option<&'a str>,
        Vec<u8>,
        u16,
        &'a str,
    );
    let post = reqwest::Method::POST;
    let get = reqwest::Method::GET;
    let cose = Some("application/cose");
    let octets = Some("application/octet-stream");
    let body_cases: Vec<Case> = vec![
        (
            "empty transaction",
            post.clone(),
            "/v1/txs",
            octets,
            Vec::new(),
            400,
            "malformed",
        ),
        (
            "truncated transaction",
            post.clone(),
            "/v1/txs",
            octets,
            valid_tx[..valid_tx.len() - 1].to_vec(),
            400,
            "malformed",
        ),
        (
            "transaction with a trailing byte",
            post.clone(),
            "/v1/txs",
            octets,
            [valid_tx.as_slice(), &[0]].concat(),
            400,
            "malformed",
        ),
        (
            "JSON where a transaction's bytes are expected",
            post.clone(),
            "/v1/txs",
            Some("application/json"),
            json_tx.clone(),
            400,
            "malformed",
        ),
        (
            "a reading sent as a transaction",
            post.clone(),
            "/v1/txs",
            octets,
            valid_reading.clone(),
            400,
            "malformed",
        ),
        (
            "transaction of 4097 bytes",
            post.clone(),
            "/v1/txs",
            octets,
            vec![0; 4097],
            413,
            "tx_too_large",
        ),
        (
            "body over max_body_bytes",
            post.clone(),
            "/v1/txs",
            octets,
            vec![0; 64 * 1024 + 1],
            413,
            "tx_too_large",
        ),
        (
            "empty batch",
            post.clone(),
            "/v1/txs/batch",
            octets,
            Vec::new(),
            400,
            "malformed",
        ),
        (
            "batch whose second transaction is cut short",
            post.clone(),
            "/v1/txs/batch",
            octets,
            {
                let mut b = batch_of(&[&valid_tx, &valid_tx]);
                b.pop();
                b
            },
            400,
            "malformed",
        ),
        (
            "batch ending in half a length prefix",
            post.clone(),
            "/v1/txs/batch",
            octets,
            [batch_of(&[&valid_tx]).as_slice(), &[0, 0]].concat(),
            400,
            "malformed",
        ),
        (
            "batch whose prefix understates its transaction",
            post.clone(),
            "/v1/txs/batch",
            octets,
            {
                let mut b = batch_of(&[&valid_tx]);
                b[3] -= 1;
                b
            },
            400,
            "malformed",
        ),
        (
            "batch with a transaction of 4097 bytes",
            post.clone(),
            "/v1/txs/batch",
            octets,
            batch_of(&[&valid_tx, &vec![0; 4097]]),
            413,
            "tx_too_large",
        ),
        (
            "batch of 257 transactions",
            post.clone(),
            "/v1/txs/batch",
            octets,
            batch_of(&vec![
                valid_tx.as_slice();
                verity_types::tx::MAX_BATCH_TXS + 1
            ]),
            413,
            "batch_too_large",
        ),
        (
            "batch body over max_body_bytes",
            post.clone(),
            "/v1/txs/batch",
            octets,
            vec![0; 64 * 1024 + 1],
            413,
            "batch_too_large",
        ),
        (
            "GET on the batch route",
            get.clone(),
            "/v1/txs/batch",
            None,
            Vec::new(),
            405,
            "method_not_allowed",
        ),
        (
            "reading without a content type",
            post.clone(),
            "/v1/readings",
            None,
            valid_reading.clone(),
            415,
            "unsupported_media_type",
        ),
        (
            "reading as JSON",
            post.clone(),
            "/v1/readings",
            Some("application/json"),
            json_tx.clone(),
            415,
            "unsupported_media_type",
        ),
        (
            "reading as application/cbor",
            post.clone(),
            "/v1/readings",
            Some("application/cbor"),
            valid_reading.clone(),
            415,
            "unsupported_media_type",
        ),
        (
            "JSON labelled application/cose",
            post.clone(),
            "/v1/readings",
            cose,
            json_tx.clone(),
            400,
            "malformed",
        ),
        (
            "truncated CBOR",
            post.clone(),
            "/v1/readings",
            cose,
            valid_reading[..valid_reading.len() - 7].to_vec(),
            400,
            "malformed",
        ),
        (
            "untagged COSE_Sign1",
            post.clone(),
            "/v1/readings",
            cose,
            vector("malformed-untagged"),
            400,
            "malformed",
        ),
        (
            "indefinite-length array",
            post.clone(),
            "/v1/readings",
            cose,
            vector("malformed-indefinite-array"),
            400,
            "malformed",
        ),
        (
            "reading with a trailing byte",
            post.clone(),
            "/v1/readings",
            cose,
            [valid_reading.as_slice(), &[0]].concat(),
            400,
            "malformed",
        ),
        (
            "reading over 16 KiB",
            post.clone(),
            "/v1/readings",
            cose,
            {
                // A CBOR byte string of 17,000 bytes: well-formed CBOR, too large a reading.
                let mut v = vec![0x59, 0x42, 0x68];
                v.resize(3 + 17_000, 7);
                v
            },
            400,
            "malformed",
        ),
        (
            "reading body over max_body_bytes",
            post.clone(),
            "/v1/readings",
            cose,
            vec![0xd2; 64 * 1024 + 1],
            413,
            "malformed",
        ),
        (
            "GET on a POST route",
            get.clone(),
            "/v1/txs",
            None,
            Vec::new(),
            405,
            "method_not_allowed",
        ),
        (
            "DELETE a reading",
            reqwest::Method::DELETE,
            "/v1/readings",
            None,
            Vec::new(),
            405,
            "method_not_allowed",
        ),
        (
            "unknown route",
            get.clone(),
            "/v1/nothing",
            None,
            Vec::new(),
            404,
            "not_found",
        ),
        (
            "reading id not hex",
            get.clone(),
            "/v1/readings/zz",
            None,
            Vec::new(),
            400,
            "bad_request",
        ),
        (
            "negative height",
            get.clone(),
            "/v1/blocks/-1",
            None,
            Vec::new(),
            400,
            "bad_request",
        ),
        (
            "account id not hex",
            get.clone(),
            "/v1/accounts/xyz",
            None,
            Vec::new(),
            400,
            "bad_request",
        ),
        (
            "device id with a space",
            get.clone(),
            "/v1/devices/bad%20id",
            None,
            Vec::new(),
            400,
            "bad_request",
        ),
        (
            "page of 0",
            get.clone(),
            "/v1/devices?limit=0",
            None,
            Vec::new(),
            400,
            "bad_request",
        ),
        (
            "page over max_page",
            get.clone(),
            "/v1/devices?limit=1000000",
            None,
            Vec::new(),
            400,
            "bad_request",
        ),
        (
            "limit not a number",
            get.clone(),
            "/v1/devices?limit=abc",
            None,
            Vec::new(),
            400,
            "bad_request",
        ),
    ];
    let watched_all: Vec<String> = watched.iter().chain(&device_paths).cloned().collect();
    let before = snapshot(&net.client(1), &watched_all);
    for (what, method, path, content_type, body, status, code) in body_cases {
        let mut req = http.request(method, format!("{url}{path}")).body(body);
        if let Some(t) = content_type {
            req = req.header("content-type", t);
        }
        let resp = req.send().unwrap();
        let got = resp.status().as_u16();
        if got == 413 {
            // The unread rest of the body makes the connection unusable: the node says so.
            assert_eq!(
                resp.headers().get("connection").map(|v| v.as_bytes()),
                Some(&b"close"[..]),
                "{what}: a 413 that keeps the connection open"
            );
        }
        let v: Value = resp
            .json()
            .unwrap_or_else(|e| panic!("{what}: not JSON: {e}"));
        assert_eq!(
            (got, v["error"]["code"].as_str()),
            (status, Some(code)),
            "{what}: {v}"
        );
        assert!(
            !v["error"]["message"].as_str().unwrap_or("").is_empty(),
            "{what}: no message"
        );
    }
    // Bodies that lie about their length, or stream past the limit without one.
    let (status, v) = raw_http(
        api_addr(&net, 1),
        b"POST /v1/txs HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 100000000\r\n\r\n",
    );
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (413, Some("tx_too_large"))
    );
    let mut chunked =
        b"POST /v1/readings HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/cose\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..70 {
        chunked.extend_from_slice(b"400\r\n");
        chunked.extend_from_slice(&[0xd2; 0x400]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let (status, v) = raw_http(api_addr(&net, 1), &chunked);
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (413, Some("malformed"))
    );
    // A batch streamed past the limit without a length, its frames well formed.
    let mut chunked =
        b"POST /v1/txs/batch HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let frames = batch_of(&vec![valid_tx.as_slice(); 200]);
    for _ in 0..3 {
        chunked.extend_from_slice(format!("{:x}\r\n", frames.len()).as_bytes());
        chunked.extend_from_slice(&frames);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let (status, v) = raw_http(api_addr(&net, 1), &chunked);
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (413, Some("batch_too_large"))
    );
    assert_eq!(snapshot(&net.client(1), &watched_all), before);
    // The valid transaction that led most refused batches was not pooled from any of them.
    assert!(
        unknown_tx(&net, 1, &sha256(&valid_tx)),
        "a refused batch pooled its first transaction"
    );

    // Later blocks did not bring any of it back: the watched state is as it was after the
    // setup, and no node knows any refused transaction.
    let h = net.height(0).unwrap();
    for i in 0..4 {
        net.wait_height(i, h + 2, Duration::from_secs(60));
    }
    assert_eq!(snapshot(&c, &watched), settled);
    for (what, _, t) in &cases {
        for i in 0..4 {
            assert!(unknown_tx(&net, i, &t.id()), "node{i} knows {what}");
        }
    }
    net.assert_agree(&[0, 1, 2, 3]);
}

// ---------------------------------------------------------------------------------------------
// Hostile clients: slow HTTP clients, MQTT garbage and topic abuse, a flooding device, peers
// that are not validators.

/// An MQTT 3.1.1 client written from the packet layouts, so that it can also send what a
/// well-behaved library would refuse to.
struct Mqtt {
    stream: TcpStream,
    events: mpsc::Receiver<MqttEvent>,
}

#[derive(Debug)]
enum MqttEvent {
    ConnAck(u8),
    SubAck,
    Publish(String, Vec<u8>),
    Closed,
}

fn mqtt_length(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let mut byte = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if n == 0 {
            return out;
        }
    }
}

fn mqtt_string(s: &[u8]) -> Vec<u8> {
    [&(s.len() as u16).to_be_bytes()[..], s].concat()
}

fn mqtt_packet(first: u8, body: &[u8]) -> Vec<u8> {
    [&[first][..], &mqtt_length(body.len()), body].concat()
}

fn read_mqtt_packet(s: &mut TcpStream) -> std::io::Result<(u8, Vec<u8>)> {
    let mut first = [0u8; 1];
    s.read_exact(&mut first)?;
    let (mut len, mut shift) = (0usize, 0);
    loop {
        let mut b = [0u8; 1];
        s.read_exact(&mut b)?;
        len |= ((b[0] & 0x7f) as usize) << shift;
        shift += 7;
        if b[0] & 0x80 == 0 {
            break;
        }
    }
    let mut body = vec![0; len];
    s.read_exact(&mut body)?;
    Ok((first[0], body))
}

impl Mqtt {
    fn connect(addr: SocketAddr, client_id: &str) -> Self {
        let stream = TcpStream::connect(addr).unwrap();
        let mut reader = stream.try_clone().unwrap();
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            loop {
                let event = match read_mqtt_packet(&mut reader) {
                    Ok((first, body)) => match first >> 4 {
                        2 => MqttEvent::ConnAck(body.get(1).copied().unwrap_or(255)),
                        9 => MqttEvent::SubAck,
                        3 => {
                            let n = u16::from_be_bytes([body[0], body[1]]) as usize;
                            let topic = String::from_utf8_lossy(&body[2..2 + n]).to_string();
                            let skip = if (first >> 1) & 3 > 0 { 2 } else { 0 };
                            MqttEvent::Publish(topic, body[2 + n + skip..].to_vec())
                        }
                        _ => continue,
                    },
                    Err(_) => {
                        let _ = tx.send(MqttEvent::Closed);
                        return;
                    }
                };
                if tx.send(event).is_err() {
                    return;
                }
            }
        });
        let mut body = mqtt_string(b"MQTT");
        // Level 4 (3.1.1), clean session, keep-alive 120 s, then the client id.
        body.extend_from_slice(&[4, 0x02, 0, 120]);
        body.extend(mqtt_string(client_id.as_bytes()));
        let mut me = Self { stream, events };
        me.send(&mqtt_packet(0x10, &body)).unwrap();
        match me.next(Duration::from_secs(30)) {
            Some(MqttEvent::ConnAck(0)) => me,
            other => panic!("CONNECT of {client_id}: {other:?}"),
        }
    }

    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    fn next(&self, limit: Duration) -> Option<MqttEvent> {
        self.events.recv_timeout(limit).ok()
    }

    fn subscribe(&mut self, filter: &str) {
        let body = [&[0, 1][..], &mqtt_string(filter.as_bytes()), &[0]].concat();
        self.send(&mqtt_packet(0x82, &body)).unwrap();
        wait_for("SUBACK", Duration::from_secs(30), || {
            matches!(
                self.next(Duration::from_millis(200)),
                Some(MqttEvent::SubAck)
            )
            .then_some(())
        });
    }

    /// Publishes at QoS 0; an error means the broker already closed the connection.
    fn publish(&mut self, topic: &str, payload: &[u8]) -> std::io::Result<()> {
        let body = [&mqtt_string(topic.as_bytes())[..], payload].concat();
        self.send(&mqtt_packet(0x30, &body))
    }

    /// Receipts (JSON) that arrive within `limit`, until `stop` says enough.
    fn receipts_until(&self, limit: Duration, mut stop: impl FnMut(&Value) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + limit;
        let mut out = Vec::new();
        while Instant::now() < deadline {
            if let Some(MqttEvent::Publish(topic, payload)) = self.next(Duration::from_millis(100))
            {
                assert!(topic.starts_with("verity/v1/receipts/"), "{topic}");
                let v: Value = serde_json::from_slice(&payload).expect("receipts are JSON");
                let done = stop(&v);
                out.push(v);
                if done {
                    return out;
                }
            }
        }
        panic!("no expected receipt within {limit:?}; got {out:?}");
    }

    /// The `status` receipt of `reading`, skipping others.
    fn receipt(&self, reading: &[u8], status: &str) -> Value {
        let id = hex_id(&sha256(reading));
        self.receipts_until(Duration::from_secs(60), |r| {
            r["reading_id"] == id && r["status"] == status
        })
        .pop()
        .unwrap()
    }

    /// Whether the broker closes the connection within `limit`.
    fn closed_within(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(MqttEvent::Closed) = self.next(Duration::from_millis(100)) {
                return true;
            }
        }
        false
    }
}

/// What became of a connection that misbehaved: when it opened, when the server closed it (if
/// it did within the limit), and what the server sent.
struct Cut {
    opened: Instant,
    closed: Option<Instant>,
    answer: Vec<u8>,
}

impl Cut {
    /// How long the server kept the connection.
    fn after(&self) -> Option<Duration> {
        self.closed.map(|c| c - self.opened)
    }
}

/// Connects to `addr`, says so on `ready`, sends `bytes`, then, with `trickle`, one byte of it
/// every 100 ms, until the server closes the connection or `limit` passes.
fn cut_off(
    addr: SocketAddr,
    bytes: &[u8],
    trickle: Option<&[u8]>,
    limit: Duration,
    ready: Option<mpsc::Sender<()>>,
) -> Cut {
    let mut s = TcpStream::connect(addr).unwrap();
    let opened = Instant::now();
    s.write_all(bytes).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    if let Some(ready) = ready {
        ready.send(()).unwrap();
    }
    let mut cut = Cut {
        opened,
        closed: None,
        answer: Vec::new(),
    };
    let mut next = 0;
    while opened.elapsed() < limit {
        let mut buf = [0u8; 4096];
        match s.read(&mut buf) {
            Ok(0) => {
                cut.closed = Some(Instant::now());
                return cut;
            }
            Ok(n) => cut.answer.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => {
                cut.closed = Some(Instant::now());
                return cut;
            }
        }
        if let Some(t) = trickle
            && next < t.len()
        {
            // The server may already have closed its side; the read above notices.
            let _ = s.write_all(&t[next..next + 1]);
            next += 1;
        }
    }
    cut
}

/// Runs `f` on a thread of its own.
fn spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> std::thread::JoinHandle<T> {
    std::thread::spawn(f)
}

/// A p2p handshake (commonware's authenticated stream, as validators dial each other) with
/// `me`'s key to the validator `peer` at `addr`. `Ok` once the validator accepted it.
fn p2p_handshake(
    addr: SocketAddr,
    me: commonware_cryptography::ed25519::PrivateKey,
    peer: commonware_cryptography::ed25519::PublicKey,
) -> Result<(), String> {
    use commonware_cryptography::ChaCha20Poly1305;
    use commonware_runtime::{Clock as _, Network as _, Runner as _, Supervisor as _, tokio as cw};
    use commonware_stream::{
        Upgrader as _,
        cups::{self, Cups},
        sake::{self, Sake},
    };
    let dir = tempfile::tempdir().unwrap();
    let runner = cw::Runner::new(cw::Config::new().with_storage_directory(dir.path()));
    runner.start(|ctx| async move {
        let (sink, stream) = ctx.dial(addr).await.map_err(|e| e.to_string())?;
        let upgrader = Cups::<_, ChaCha20Poly1305>::new(
            Sake {
                signer: me,
                synchrony_bound: Duration::from_secs(5),
                max_handshake_age: Duration::from_secs(10),
                version: sake::Version::V1,
            },
            cups::Version::V1,
        );
        // The namespace a node's p2p uses: its own (`verity-v1_p2p`) and the stream suffix.
        let namespace = [verity_types::proof::NAMESPACE, b"_p2p", b"_STREAM"].concat();
        let dial = upgrader.dial(ctx.child("dial"), &namespace, 1 << 20, peer, stream, sink);
        let deadline = ctx.sleep(Duration::from_secs(15));
        within(dial, deadline).await
    })
}

/// The outcome of `dial`, or an error if `deadline` comes first.
async fn within<T, E: std::fmt::Display>(
    dial: impl std::future::Future<Output = Result<T, E>>,
    deadline: impl std::future::Future<Output = ()>,
) -> Result<(), String> {
    tokio::select! {
        r = dial => r.map(|_| ()).map_err(|e| e.to_string()),
        _ = deadline => Err("no answer within 15 s".into()),
    }
}

/// A fresh consensus key that no genesis names.
fn stranger_key(dir: &std::path::Path) -> commonware_cryptography::ed25519::PrivateKey {
    let seed = ed25519_zebra::SigningKey::new(rand_core::OsRng);
    let path = dir.join("stranger.key");
    std::fs::write(&path, hex::encode(seed.to_bytes())).unwrap();
    verity_node::runner::read_validator_key(&path).unwrap()
}

fn status_ok(net: &Net, i: usize) -> Duration {
    let start = Instant::now();
    let resp = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
        .get(format!("{}/v1/status", net.url(i)))
        .send()
        .expect("another client is served");
    assert_eq!(resp.status().as_u16(), 200);
    start.elapsed()
}

/// Clients that misbehave at every layer are cut off by named limits, and well-behaved ones are
/// served meanwhile: peers with unknown keys or garbage on the p2p port, HTTP clients that
/// trickle headers or bodies, MQTT garbage, oversized packets and topic abuse, and a device
/// flooding the broker.
#[test]
fn hostile_clients_are_cut_off_and_others_are_served() {
    let mut net = Net::init(4);
    // Short HTTP timeouts and a small per-device pool, so that the limits show in seconds.
    for i in 0..4 {
        let path = net.node_dir(i).join("config.toml");
        let mut text = std::fs::read_to_string(&path).unwrap();
        for (default, short) in [
            ("header_timeout_ms = 10000\n", "header_timeout_ms = 1000\n"),
            (
                "request_timeout_ms = 30000\n",
                "request_timeout_ms = 2000\n",
            ),
            ("max_per_device = 1024\n", "max_per_device = 4\n"),
        ] {
            assert!(text.contains(default), "{default} not in {text}");
            text = text.replace(default, short);
        }
        std::fs::write(&path, text).unwrap();
    }
    // Node 3 stays down for now: the p2p checks below speak with its key.
    for i in 0..3 {
        net.start_node(i);
    }
    for i in 0..3 {
        net.wait_height(i, 1, Duration::from_secs(60));
    }

    // P2P: only genesis validators complete the handshake.
    let p2p = |i: usize| -> SocketAddr { ([127, 0, 0, 1], net.api_base - 4 + i as u16).into() };
    let genesis =
        verity_types::Genesis::from_json(&std::fs::read(net.path().join("genesis.json")).unwrap())
            .unwrap();
    let validators = verity_node::runner::validator_keys(&genesis).unwrap();
    let node0 = p2p(0);
    let silent_peer = spawn(move || cut_off(node0, b"", None, Duration::from_secs(30), None));
    let garbage = cut_off(node0, &[0x5a; 4096], None, Duration::from_secs(15), None);
    assert!(garbage.closed.is_some(), "p2p garbage was not cut off");
    let dir = tempfile::tempdir().unwrap();
    let refused = p2p_handshake(node0, stranger_key(dir.path()), validators[0].clone());
    assert!(
        refused.is_err(),
        "a key outside the genesis completed the handshake"
    );
    // The same handshake with a validator's key (node 3's, which is down) succeeds: the refusal
    // above is about the key, not about how this test speaks the protocol.
    let node3_key =
        verity_node::runner::read_validator_key(&net.node_dir(3).join("validator.key")).unwrap();
    p2p_handshake(node0, node3_key, validators[0].clone())
        .expect("a genesis validator completes the handshake");
    let h = net.height(0).unwrap();
    for i in 0..3 {
        net.wait_height(i, h + 3, Duration::from_secs(60));
    }
    let silent = silent_peer.join().unwrap().after();
    let silent = silent.expect("a silent p2p client was not cut off");
    assert!(
        (Duration::from_secs(4)..Duration::from_secs(15)).contains(&silent),
        "the p2p handshake timeout (5 s) took {silent:?}"
    );
    net.start_node(3);
    net.wait_height(3, net.height(0).unwrap(), Duration::from_secs(60));

    // HTTP: a client that trickles its headers, one that trickles its body and one that says
    // nothing are each cut off by their timeout while other clients are served.
    let api1 = api_addr(&net, 1);
    let (ready, connected) = mpsc::channel();
    let slow_headers = spawn({
        let ready = ready.clone();
        move || {
            let trickle = b"X-A: 1\r\nX-B: 2\r\nX-C: 3\r\nX-D: 4\r\n".repeat(5);
            cut_off(
                api1,
                b"GET /v1/status HTTP/1.1\r\nHost: x\r\n",
                Some(&trickle),
                Duration::from_secs(15),
                Some(ready),
            )
        }
    });
    let slow_body = spawn({
        let ready = ready.clone();
        move || {
            cut_off(
                api1,
                b"POST /v1/txs HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n",
                Some(&[7u8; 1000]),
                Duration::from_secs(15),
                Some(ready),
            )
        }
    });
    let silent_http = spawn(move || cut_off(api1, b"", None, Duration::from_secs(15), Some(ready)));
    for _ in 0..3 {
        connected
            .recv_timeout(Duration::from_secs(10))
            .expect("the slow clients connect");
    }
    let asked = Instant::now();
    assert!(status_ok(&net, 1) < Duration::from_secs(1));
    let served = Instant::now();
    let [headers, body, silent] = [slow_headers, slow_body, silent_http].map(|h| h.join().unwrap());
    for (what, cut, timeout_ms) in [
        ("trickled headers", &headers, 1000),
        ("a silent client", &silent, 1000),
        ("a trickled body", &body, 2000),
    ] {
        let closed = cut.closed.unwrap_or_else(|| panic!("{what}: not cut off"));
        assert!(
            cut.opened <= asked && served <= closed,
            "{what}: another client was not served while it was connected"
        );
        let after = cut.after().unwrap();
        let limit = Duration::from_millis(timeout_ms);
        assert!(
            after >= limit.mul_f64(0.9) && after < limit + Duration::from_secs(5),
            "{what}: cut off after {after:?}, the timeout is {limit:?}"
        );
    }
    // Hyper closes a connection whose headers are late without an answer; a late body gets
    // the API's typed answer.
    assert!(headers.answer.is_empty() && silent.answer.is_empty());
    let (status, v) = parse_response(&body.answer).expect("an answer to the trickled body");
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (408, Some("request_timeout"))
    );

    // MQTT: devices for the checks below.
    let c = net.client(0);
    let operator = load(&net, "operator");
    let n = c.account(&id_of(&operator)).unwrap()["nonce"]
        .as_u64()
        .unwrap();
    let names = ["calm-1", "topic-1", "flood-1"];
    let keys: Vec<SecretKey> = names
        .iter()
        .map(|_| SecretKey::generate(Algorithm::Ed25519))
        .collect();
    let regs: Vec<SignedTransaction> = names
        .iter()
        .zip(&keys)
        .enumerate()
        .map(|(k, (name, key))| {
            c.sign(
                &operator,
                TxBody::DeviceRegister {
                    device: name.parse().unwrap(),
                    key: key.public_key(),
                    meta: Default::default(),
                },
                Some(n + k as u64),
            )
            .unwrap()
        })
        .collect();
    commit_all(&c, &regs);
    net.wait_height(1, net.height(0).unwrap(), Duration::from_secs(60));
    let (calm, topic, flood) = (&keys[0], &keys[1], &keys[2]);
    let broker: SocketAddr = ([127, 0, 0, 1], net.mqtt_base + 1).into();
    let device = |name: &str| net.client(1).get(&format!("/v1/devices/{name}")).unwrap();

    // A connection that never sends CONNECT is closed after CONNECT_TIMEOUT_MS (10 s).
    let silent_mqtt = spawn(move || cut_off(broker, b"", None, Duration::from_secs(40), None));
    // Garbage, and packets that announce more than the broker takes, are cut off.
    let garbage: Vec<_> = [
        (
            "HTTP to the MQTT port",
            [
                &b"GET / HTTP/1.1\r\nHost: x\r\n"[..],
                &[b'a'; 200],
                b"\r\n\r\n",
            ]
            .concat(),
        ),
        ("CONNECT of 256 MiB", vec![0x10, 0xff, 0xff, 0xff, 0x7f]),
        (
            "length of five bytes",
            vec![0x10, 0xff, 0xff, 0xff, 0xff, 0x01],
        ),
        ("reserved packet type", vec![0x00, 0x00]),
    ]
    .into_iter()
    .map(|(what, bytes)| {
        let cut = spawn(move || cut_off(broker, &bytes, None, Duration::from_secs(20), None));
        (what, cut)
    })
    .collect();
    for (what, cut) in garbage {
        let after = cut.join().unwrap().after();
        assert!(after.is_some(), "{what}: the broker kept the connection");
    }

    let mut calm_session = Mqtt::connect(broker, "calm-1");
    calm_session.subscribe("verity/v1/receipts/calm-1");
    let calm_first = signed_reading(calm, "calm-1", 1, now_s());
    calm_session
        .publish("verity/v1/readings/calm-1", &calm_first)
        .unwrap();
    calm_session.receipt(&calm_first, "accepted");
    let mut watcher = Mqtt::connect(broker, "topic-1-watcher");
    watcher.subscribe("verity/v1/receipts/topic-1");

    // Topic abuse from one client: a reading over 16 KiB but within the packet limit, another
    // device's reading on this device's topic (both answered on the topic's receipts), and
    // topics that name no device: empty, wildcards, one level too deep, `$`-prefixed (no
    // receipt, nothing ingested). The connection stays usable: the last reading it sends, on
    // the right topic, is accepted after all of them were handled in order.
    let mut abuser = Mqtt::connect(broker, "abuser");
    let over_16k = {
        let mut v = vec![0x59, 0x42, 0x04]; // a CBOR byte string of 16,900 bytes
        v.resize(3 + 16_900, 1);
        v
    };
    let foreign = signed_reading(calm, "calm-1", 2, now_s());
    abuser
        .publish("verity/v1/readings/topic-1", &over_16k)
        .unwrap();
    abuser
        .publish("verity/v1/readings/topic-1", &foreign)
        .unwrap();
    let ignored: Vec<(&str, Vec<u8>)> = [
        "verity/v1/readings/",
        "verity/v1/readings/+",
        "verity/v1/readings/#",
        "verity/v1/readings/topic-1/extra",
        "$SYS/verity/v1/readings/topic-1",
    ]
    .iter()
    .enumerate()
    .map(|(k, t)| (*t, signed_reading(topic, "topic-1", 50 + k as u64, now_s())))
    .collect();
    for (t, bytes) in &ignored {
        abuser.publish(t, bytes).unwrap();
    }
    let marker = signed_reading(topic, "topic-1", 1, now_s());
    abuser
        .publish("verity/v1/readings/topic-1", &marker)
        .unwrap();
    let seen = watcher.receipts_until(Duration::from_secs(60), |r| {
        r["reading_id"] == hex_id(&sha256(&marker)) && r["status"] == "accepted"
    });
    let code_of = |bytes: &[u8]| {
        seen.iter()
            .find(|r| r["reading_id"] == hex_id(&sha256(bytes)))
            .map(|r| r["code"].clone())
    };
    assert_eq!(code_of(&over_16k), Some(json!("malformed")));
    assert_eq!(code_of(&foreign), Some(json!("bad_header")));
    for (t, bytes) in &ignored {
        assert_eq!(code_of(bytes), None, "{t}: answered");
        let known = net
            .client(1)
            .get(&format!("/v1/readings/{}", hex_id(&sha256(bytes))));
        assert!(
            matches!(known, Err(ClientError::Api { status: 404, .. })),
            "{t}: {known:?}"
        );
    }
    // A packet over the limit (17,408 bytes) costs the client its connection.
    let mut big = Mqtt::connect(broker, "big");
    let _ = big.publish("verity/v1/readings/topic-1", &[0xd2; 20_000]);
    assert!(
        big.closed_within(Duration::from_secs(10)),
        "oversized packet: not disconnected"
    );
    // The device whose topic was abused has exactly its own reading; the one whose reading was
    // replayed on a foreign topic has not moved; it still gets through.
    wait_for(
        "topic-1's reading to commit",
        Duration::from_secs(60),
        || (device("topic-1")["last_seq"] == 1).then_some(()),
    );
    assert_eq!(device("calm-1")["last_seq"], 1);
    calm_session
        .publish("verity/v1/readings/calm-1", &foreign)
        .unwrap();
    calm_session.receipt(&foreign, "committed");

    // A device floods the broker: its readings beyond `pool.max_per_device` (4 here) pending
    // are refused with `pool_full`, and another device gets through meanwhile.
    let mut flood_session = Mqtt::connect(broker, "flood-1");
    flood_session.subscribe("verity/v1/receipts/flood-1");
    let burst: Vec<Vec<u8>> = (1..=300)
        .map(|seq| signed_reading(flood, "flood-1", seq, now_s()))
        .collect();
    for bytes in &burst {
        flood_session
            .publish("verity/v1/readings/flood-1", bytes)
            .unwrap();
    }
    let calm_during = signed_reading(calm, "calm-1", 3, now_s());
    calm_session
        .publish("verity/v1/readings/calm-1", &calm_during)
        .unwrap();
    calm_session.receipt(&calm_during, "committed");
    // The first answer to each reading of the burst, until the last one's arrives (or none
    // comes for 5 s: receipts are QoS 0 and the broker may drop some under a flood).
    let mut first_answer = std::collections::BTreeMap::new();
    let last = hex_id(&sha256(burst.last().unwrap()));
    loop {
        match flood_session.next(Duration::from_secs(5)) {
            Some(MqttEvent::Publish(_, payload)) => {
                let r: Value = serde_json::from_slice(&payload).unwrap();
                if r["status"] == "committed" {
                    continue;
                }
                let id = r["reading_id"].as_str().unwrap().to_string();
                let done = id == last;
                first_answer.entry(id).or_insert(r);
                if done {
                    break;
                }
            }
            Some(_) => {}
            None => break,
        }
    }
    let full: Vec<&String> = first_answer
        .iter()
        .filter(|(_, r)| r["code"] == "pool_full")
        .map(|(id, _)| id)
        .collect();
    assert!(!full.is_empty(), "no pool_full in {first_answer:?}");
    // The first readings of the burst got in. Their `accepted` receipts may be among those
    // the broker drops when 300 answers come at once (a device's receipt topic keeps about 200,
    // `RECEIPT_LOG_SEGMENT_BYTES`), so the chain is asked instead.
    wait_for(
        "the burst's first reading to commit",
        Duration::from_secs(60),
        || (device("flood-1")["last_seq"].as_u64() >= Some(1)).then_some(()),
    );
    for id in full.iter().take(20) {
        let known = net.client(1).get(&format!("/v1/readings/{id}"));
        assert!(
            matches!(known, Err(ClientError::Api { status: 404, .. })),
            "{known:?}"
        );
    }

    let silent = silent_mqtt.join().unwrap().after();
    let silent = silent.expect("a silent MQTT client was not cut off");
    assert!(
        (Duration::from_secs(9)..Duration::from_secs(30)).contains(&silent),
        "CONNECT_TIMEOUT_MS (10 s) took {silent:?}"
    );
    let h = net.height(0).unwrap();
    for i in 0..4 {
        net.wait_height(i, h + 1, Duration::from_secs(60));
    }
    net.assert_agree(&[0, 1, 2, 3]);
}
