//! What each fuzz target does with one input: call the decoder a node runs on untrusted bytes,
//! exactly as the node calls it, and when it succeeds assert what must then hold. A panic, an
//! abort, a hang or an allocation over the guard's limit is a finding; an `Err` is the decoder
//! doing its job.
//!
//! | target | untrusted bytes from | decoder |
//! | --- | --- | --- |
//! | [reading] | devices (HTTP `POST /v1/readings`, MQTT), blocks | `Reading::decode` |
//! | [tx] | clients (HTTP `POST /v1/txs`), proofs | `SignedTransaction::decode_submitted` |
//! | [tx_batch] | clients (HTTP `POST /v1/txs/batch`) | `tx::decode_batch` |
//! | [block] | peers (broadcast, marshal backfill) | `Block::decode_cfg` with `BlockLimits` |
//! | [gossip] | peers (transaction gossip channel) | `Vec<SignedTransaction>::read_cfg` |
//! | [reading_gossip] | peers (reading gossip channel) | `gossip::decode_readings` |
//! | [genesis] | the genesis file a node reads | `Genesis::from_json` |
//! | [reading_proof] | anyone (`verity verify`) | JSON, then `ReadingProof::verify` |
//! | [tx_proof] | anyone (`verity verify`) | JSON, then `TxProof::verify` |

use crate::fixture;
use commonware_codec::{Decode as _, Encode as _, Read as _};
use verity_types::{
    Block, Genesis, Reading, SignedTransaction,
    block::MAX_BLOCK_READINGS,
    device::SEQ_LIMIT,
    gossip::{GOSSIP_BATCH_READINGS, decode_readings, encode_readings},
    hash::{parse_hash, sha256},
    proof::{self, ReadingProof, TxProof},
    reading::{MAX_READING_BYTES, MAX_RECORDS, SenmlValue},
    tx::{MAX_BATCH_TXS, MAX_TX_BYTES, decode_batch, encode_batch},
};

/// A reading as a device sends it. If it decodes: it keeps the bytes as sent, its id is their
/// SHA-256, its fields are within the protocol's limits (PROTOCOL.md §2), and everything the
/// node does next with a decoded reading (records as JSON, signature check) does not panic.
pub fn reading(data: &[u8]) {
    let Ok(reading) = Reading::decode(data) else {
        return;
    };
    assert_eq!(reading.bytes(), data, "a reading keeps the bytes as sent");
    assert_eq!(
        reading.id(),
        sha256(data),
        "the reading id is SHA-256 of the bytes"
    );
    assert!(data.len() <= MAX_READING_BYTES);
    assert!(
        (1..SEQ_LIMIT).contains(&reading.seq()),
        "seq within 1..2^53"
    );
    let records = reading.records();
    assert!(
        (1..=MAX_RECORDS).contains(&records.len()),
        "1 to 256 records"
    );
    for record in records {
        assert!(
            record.time.is_finite() && record.time > 0.0,
            "every record has a positive finite time: {record:?}"
        );
        if let SenmlValue::Number(x) = record.value {
            // reading.rs: "non-finite numbers are `bad_senml`"; the API would show null.
            assert!(x.is_finite(), "a resolved value is finite: {record:?}");
        }
        let _ = record.to_json();
    }
    assert!(reading.min_time() <= reading.max_time());
    let _ = reading.verify(&fixture::device_public_key(reading.algorithm()));
}

/// A signed transaction as a client submits it. If it decodes: the encoding is canonical (it
/// re-encodes to the input), the id is SHA-256 of it, and checking its signature does not panic.
pub fn tx(data: &[u8]) {
    let Ok(tx) = SignedTransaction::decode_submitted(data) else {
        return;
    };
    assert!(data.len() <= MAX_TX_BYTES);
    assert_eq!(
        tx.to_bytes(),
        data,
        "a decoded transaction re-encodes to its input"
    );
    assert_eq!(
        tx.id(),
        sha256(data),
        "the transaction id is SHA-256 of the input"
    );
    let _ = tx.verify_signature(&fixture::chain_id());
    let _ = (tx.tx.body.kind(), tx.tx.body.is_multisig(), tx.tx.account());
}

/// A batch of transactions as a client submits it. If it decodes: it holds 1 to
/// [MAX_BATCH_TXS] transactions, each as [tx] would take it alone, and their framing
/// re-encodes to the input.
pub fn tx_batch(data: &[u8]) {
    let Ok(txs) = decode_batch(data) else {
        return;
    };
    assert!((1..=MAX_BATCH_TXS).contains(&txs.len()));
    assert_eq!(
        encode_batch(&txs),
        data,
        "a decoded batch re-encodes to its input"
    );
    for t in &txs {
        tx(&t.to_bytes());
    }
}

/// A block as a peer sends it, decoded with [fixture::BLOCK_LIMITS]. If it decodes: it
/// re-encodes to the input, stays within the limits, and its header commits to its body.
pub fn block(data: &[u8]) {
    let limits = fixture::BLOCK_LIMITS;
    let Ok(block) = Block::decode_cfg(bytes::Bytes::copy_from_slice(data), &limits) else {
        return;
    };
    assert_eq!(
        block.encode().as_ref(),
        data,
        "a decoded block re-encodes to its input"
    );
    assert!(block.txs.len() <= limits.max_txs);
    assert!(block.readings.len() <= limits.max_readings.min(MAX_BLOCK_READINGS));
    assert_eq!(block.hash(), block.header.hash());
    assert_eq!(Block::txs_root_of(&block.txs), block.header.txs_root);
    assert_eq!(
        Block::readings_root_of(&block.readings),
        block.header.readings_root
    );
}

/// A transaction gossip message as a peer sends it, decoded the way the node's gossip receiver
/// does (`read_cfg` on a `Bytes` copy, trailing bytes ignored). If it decodes: at most
/// [fixture::GOSSIP_BATCH_TXS] transactions, which re-encode to the bytes consumed, each with
/// the id of its own encoding.
pub fn gossip(data: &[u8]) {
    let mut buf = bytes::Bytes::copy_from_slice(data);
    let Ok(txs) = Vec::<SignedTransaction>::read_cfg(&mut buf, &fixture::gossip_cfg()) else {
        return;
    };
    let consumed = data.len() - buf.len();
    assert!(txs.len() <= fixture::GOSSIP_BATCH_TXS);
    assert_eq!(
        txs.encode().as_ref(),
        &data[..consumed],
        "a decoded batch re-encodes to the bytes it was read from"
    );
    for tx in &txs {
        assert_eq!(tx.id(), sha256(&tx.to_bytes()));
    }
}

/// A reading gossip message as a peer sends it, decoded the way the node's gossip receiver does
/// (each reading's bytes are then checked as a submitted reading's, which [reading] covers). If
/// it decodes: at most [GOSSIP_BATCH_READINGS] readings of at most [MAX_READING_BYTES] each,
/// which encode back to exactly the message.
pub fn reading_gossip(data: &[u8]) {
    let Some(batch) = decode_readings(data) else {
        return;
    };
    assert!(batch.len() <= GOSSIP_BATCH_READINGS);
    assert!(batch.iter().all(|(_, r)| r.len() <= MAX_READING_BYTES));
    assert_eq!(
        encode_readings(batch.iter().copied()),
        data,
        "a decoded batch encodes back to the message, with nothing after it"
    );
}

/// A genesis document as a node reads it from disk. If it parses and validates: its canonical
/// JSON (what the chain id hashes) parses and validates to the same genesis.
pub fn genesis(data: &[u8]) {
    let Ok(genesis) = Genesis::from_json(data) else {
        return;
    };
    let canonical = genesis.to_canonical_json();
    let again = Genesis::from_json(&canonical).expect("the canonical form of a valid genesis");
    assert_eq!(again, genesis, "the canonical JSON round-trips");
    assert_eq!(again.chain_id(), genesis.chain_id());
    genesis
        .validator_keys()
        .expect("validation checked the keys");
    let _ = proof::validator_keys(&genesis);
}

/// A reading proof as anyone may hand to `verity verify`, checked against the fixture genesis.
/// If it verifies: the reading id is SHA-256 of the reading, a quorum signed, and the certified
/// header is the reading's block or a descendant.
pub fn reading_proof(data: &[u8]) {
    let Ok(p) = serde_json::from_slice::<ReadingProof>(data) else {
        return;
    };
    let _ = p.decoded_reading();
    let Ok(v) = p.verify(fixture::genesis()) else {
        return;
    };
    assert_eq!(parse_hash(&p.reading_id), Some(v.reading_id));
    assert!(
        3 * v.signers > 2 * fixture::VALIDATORS as usize,
        "a quorum signed"
    );
    assert!(v.certified_height >= v.height);
    assert_eq!(v.height, p.height);
}

/// A transaction proof as anyone may hand to `verity verify`, checked against the fixture
/// genesis. If it verifies: the proven transaction is the one in the proof, a quorum signed,
/// and the certified header is the transaction's block or a descendant.
pub fn tx_proof(data: &[u8]) {
    let Ok(p) = serde_json::from_slice::<TxProof>(data) else {
        return;
    };
    let Ok(v) = p.verify(fixture::genesis()) else {
        return;
    };
    assert_eq!(parse_hash(&p.tx_id), Some(v.tx.id()));
    assert_eq!(hex::decode(&p.tx).ok(), Some(v.tx.to_bytes()));
    assert!(
        3 * v.signers > 2 * fixture::VALIDATORS as usize,
        "a quorum signed"
    );
    assert!(v.certified_height >= v.height);
    assert_eq!(v.height, p.height);
}
