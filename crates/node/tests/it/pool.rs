//! The transaction pool's limits and ordering.

use verity_node::pool::{Inserted, Pool, PoolError};
use verity_types::{AccountId, SignedTransaction};
use verity_types::{Algorithm, Amount, Memo, Nonce, SecretKey, Transaction, TxBody, hash::sha256};

fn tx(key: &SecretKey, nonce: u64) -> SignedTransaction {
    Transaction {
        signer: key.public_key(),
        nonce: Nonce(nonce),
        body: TxBody::Transfer {
            to: AccountId([9; 20]),
            asset: "CNY".parse().unwrap(),
            amount: Amount(1),
            memo: Memo::default(),
        },
    }
    .sign(key, &sha256(b"c"))
}

#[test]
fn limits_and_fair_order() {
    let a = SecretKey::generate(Algorithm::Ed25519);
    let b = SecretKey::generate(Algorithm::Ed25519);
    let mut pool = Pool::new(5, 3);
    for n in [2, 0, 1] {
        assert_eq!(pool.insert(tx(&a, n)), Ok(Inserted::New));
    }
    assert_eq!(pool.insert(tx(&a, 0)), Ok(Inserted::Duplicate));
    assert_eq!(pool.insert(tx(&a, 3)), Err(PoolError::AccountFull(3)));
    pool.insert(tx(&b, 0)).unwrap();
    pool.insert(tx(&b, 1)).unwrap();
    assert_eq!(pool.insert(tx(&b, 2)), Err(PoolError::Full(5)));
    let c = pool.candidates(10);
    assert_eq!(c.len(), 5);
    // Round-robin across accounts, nonce order within one.
    let a_nonces: Vec<u64> = c
        .iter()
        .filter(|t| t.tx.account() == a.public_key().account_id())
        .map(|t| t.tx.nonce.0)
        .collect();
    assert_eq!(a_nonces, vec![0, 1, 2]);
    assert_ne!(c[0].tx.account(), c[1].tx.account());
    pool.prune_account(&a.public_key().account_id(), 2);
    assert_eq!(pool.len(), 3);
    let id = tx(&b, 0).id();
    pool.refuse(&id, "insufficient_funds", "no".into());
    assert_eq!(pool.refusal(&id).unwrap().0, "insufficient_funds");
    assert!(!pool.contains(&id));
}
