//! Invalid transactions are refused at submission with a typed code and change nothing;
//! resubmitting a transaction is idempotent.

use crate::harness::{Net, load, transfer, verity, wait_for};
use serde_json::Value;
use std::time::Duration;
use verity_client::{Client, ClientError};
use verity_types::{Amount, Memo, SecretKey, Signature, SignedTransaction, TxBody};

fn refused_code(client: &Client, tx: &SignedTransaction) -> String {
    match client.submit(tx) {
        Err(ClientError::Api { code, .. }) => code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn post_raw(net: &Net, body: Vec<u8>) -> (u16, Value) {
    let resp = reqwest::blocking::Client::new()
        .post(format!("{}/v1/txs", net.url(0)))
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .unwrap();
    (resp.status().as_u16(), resp.json().unwrap())
}

#[test]
fn invalid_transactions_are_refused_and_change_nothing() {
    let net = Net::start(4);
    let client = net.client(0);
    let issuer = load(&net, "issuer");
    let operator = load(&net, "operator");
    let bob = SecretKey::generate(verity_types::Algorithm::Ed25519)
        .public_key()
        .account_id();
    let before = client.account(&issuer.public_key().account_id()).unwrap();

    // Bad signature.
    let good = client.sign(&issuer, transfer(bob, 100), None).unwrap();
    let mut sig = good.signature.0;
    sig[0] ^= 1;
    let forged = SignedTransaction::new(good.tx.clone(), Signature(sig));
    assert_eq!(refused_code(&client, &forged), "bad_signature");

    // Wrong nonces.
    let ahead = client
        .sign(&issuer, transfer(bob, 100), Some(10_000))
        .unwrap();
    assert_eq!(refused_code(&client, &ahead), "nonce_too_high");

    // Overdraft, unknown asset, unauthorized mint, zero amount, self transfer.
    let overdraft = client.sign(&issuer, transfer(bob, u64::MAX), None).unwrap();
    assert_eq!(refused_code(&client, &overdraft), "insufficient_funds");
    let unknown = TxBody::Transfer {
        to: bob,
        asset: "USD".parse().unwrap(),
        amount: Amount(1),
        memo: Memo::default(),
    };
    assert_eq!(
        refused_code(&client, &client.sign(&issuer, unknown, None).unwrap()),
        "unknown_asset"
    );
    let mint = TxBody::Mint {
        to: bob,
        asset: "CNY".parse().unwrap(),
        amount: Amount(1),
        memo: Memo::default(),
    };
    assert_eq!(
        refused_code(&client, &client.sign(&operator, mint, None).unwrap()),
        "unauthorized"
    );
    assert_eq!(
        refused_code(
            &client,
            &client.sign(&issuer, transfer(bob, 0), None).unwrap()
        ),
        "invalid_amount"
    );
    let me = issuer.public_key().account_id();
    assert_eq!(
        refused_code(
            &client,
            &client.sign(&issuer, transfer(me, 1), None).unwrap()
        ),
        "self_transfer"
    );

    // Malformed and oversized bodies.
    let (status, body) = post_raw(&net, vec![0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("malformed"))
    );
    let (status, body) = post_raw(&net, vec![1u8; 5000]);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("tx_too_large"))
    );
    let (status, body) = post_raw(&net, vec![1u8; 100_000]);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("tx_too_large"))
    );

    // Nothing changed.
    let after = client.account(&me).unwrap();
    assert_eq!(before["balances"], after["balances"]);
    assert_eq!(before["nonce"], after["nonce"]);
    let bob_account = client.account(&bob).unwrap();
    assert_eq!(bob_account["balances"], serde_json::json!([]));

    // Resubmission is idempotent: same id, applied once.
    let first = client.submit(&good).unwrap();
    let again = client.submit(&good).unwrap();
    assert_eq!(first["id"], again["id"]);
    let done = client
        .wait_final(&good.id(), Duration::from_secs(60))
        .unwrap();
    let height = done["height"].as_u64().unwrap();
    let third = client.submit(&good).unwrap();
    assert_eq!(third["status"], "committed");
    assert_eq!(third["height"].as_u64(), Some(height));
    // Every validator reports it committed at the same height.
    for i in 0..4 {
        let v = wait_for(
            "the transfer on every node",
            Duration::from_secs(30),
            || {
                net.client(i)
                    .get(&format!("/v1/txs/{}", hex::encode(good.id().0)))
                    .ok()
                    .filter(|v| v["status"] == "committed")
            },
        );
        assert_eq!(v["height"].as_u64(), Some(height));
    }
    let bob_account = client.account(&bob).unwrap();
    assert_eq!(bob_account["balances"][0]["amount"], "100");
    let nonce_low = client.sign(&issuer, transfer(bob, 1), Some(0)).unwrap();
    assert_eq!(refused_code(&client, &nonce_low), "nonce_too_low");

    // The CLI reports a refusal with its code on stderr and a non-zero exit.
    let out = verity(&[
        "transfer",
        "--node",
        &net.url(1),
        "--key",
        net.key("regulator").to_str().unwrap(),
        "--to",
        &bob.to_string(),
        "--asset",
        "CNY",
        "--amount",
        "1.00",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("insufficient_funds"));
    // And exits 0 once a transfer is final, printing the height.
    let out = verity(&[
        "transfer",
        "--node",
        &net.url(2),
        "--key",
        net.key("issuer").to_str().unwrap(),
        "--to",
        &bob.to_string(),
        "--asset",
        "CNY",
        "--amount",
        "12.34",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("at height"));
    wait_for(
        "node3 to show bob's 13.34 CNY",
        Duration::from_secs(30),
        || {
            let v = net.client(3).account(&bob).ok()?;
            (v["balances"][0]["amount"] == "1334").then_some(())
        },
    );
}
