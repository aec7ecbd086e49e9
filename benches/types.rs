//! Micro-benchmarks of the types crate's hot paths: decoding and verifying readings, SenML,
//! transaction signatures, block encoding and decoding, Merkle roots and proofs.

use commonware_codec::{Decode, Encode};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::{hint::black_box, sync::Arc};
use verity_benches::{Fixture, TIME_MS, device_id, key, reading, records};
use verity_types::{
    Algorithm, Block, Hash, Header,
    block::BlockLimits,
    hash::sha256,
    merkle,
    reading::{senml, sign::senml_pack, sign::sign_reading},
};

fn readings(c: &mut Criterion) {
    for n in [1usize, 8] {
        let bytes = sign_reading(&key(Algorithm::Ed25519, "d"), &device_id(0), 1, &records(n));
        c.bench_function(&format!("reading::decode/records={n}"), |b| {
            b.iter(|| verity_types::Reading::decode(black_box(&bytes)).unwrap())
        });
        let pack = senml_pack(&records(n));
        c.bench_function(&format!("senml::decode/records={n}"), |b| {
            b.iter(|| senml(black_box(&pack)).unwrap())
        });
    }
    for (alg, name) in [(Algorithm::Ed25519, "ed25519"), (Algorithm::P256, "p256")] {
        let k = key(alg, "d");
        let r = reading(&k, 0, 1, 1);
        let pk = k.public_key();
        c.bench_function(&format!("reading::verify/alg={name}"), |b| {
            b.iter(|| assert!(black_box(&r).verify(&pk)))
        });
    }
    // What ingest does with a batch: Ed25519 batch verification on one thread.
    let k = key(Algorithm::Ed25519, "d");
    let pk = k.public_key();
    let batch: Vec<_> = (0..256)
        .map(|s| (Arc::new(reading(&k, 0, s + 1, 1)), pk))
        .collect();
    let mut g = c.benchmark_group("readings::verify_batch");
    g.throughput(Throughput::Elements(batch.len() as u64));
    g.bench_function("alg=ed25519/n=256", |b| {
        b.iter(|| {
            let v = verity_node::readings::verify_batch(black_box(&batch));
            assert!(v.iter().all(|ok| *ok));
        })
    });
    g.finish();
    // Ed25519 batches of `n` signatures by `keys` different keys, taken in turn: what batch
    // size and how often a key repeats in a batch do to the cost of one signature. `keys=n` is a
    // batch of transfers from as many accounts, or of readings from a large fleet; 512 by 100
    // is an ingest batch (`INGEST_BATCH`) from `verity bench`'s 100 devices.
    let mut g = c.benchmark_group("keys::verify_many");
    let signers: Vec<_> = (0..512)
        .map(|i| key(Algorithm::Ed25519, &format!("k{i}")))
        .collect();
    let cases = [4usize, 16, 64, 256]
        .into_iter()
        .flat_map(|n| [(n, n), (n, 1)])
        .chain([(1, 1), (512, 512), (512, 100), (512, 1)]);
    for (n, keys) in cases {
        let items: Vec<_> = (0..n)
            .map(|i| {
                let k = &signers[i % keys];
                let msg = format!("message {i}").into_bytes();
                let sig = k.sign(&msg);
                (k.public_key(), msg, sig)
            })
            .collect();
        let label = if keys == n && n > 1 {
            "n".to_string()
        } else {
            keys.to_string()
        };
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("alg=ed25519/n={n}/keys={label}"), |b| {
            b.iter(|| {
                let checks: Vec<_> = items
                    .iter()
                    .map(|(pk, m, s)| (pk, m.as_slice(), s))
                    .collect();
                let v = verity_types::PublicKey::verify_many(black_box(&checks), true);
                assert!(v.iter().all(|ok| *ok));
            })
        });
    }
    g.finish();
}

fn transactions(c: &mut Criterion) {
    let f = Fixture::new(1, 0);
    let tx = f.transfer(0);
    c.bench_function("tx::verify/alg=ed25519", |b| {
        b.iter(|| black_box(&tx).verify_signature(&f.chain_id).unwrap())
    });
}

fn header(
    readings: &[std::sync::Arc<verity_types::Reading>],
    txs: &[verity_types::SignedTransaction],
) -> Header {
    Header {
        parent: sha256(b"parent"),
        height: 2,
        timestamp_ms: TIME_MS,
        proposer: [1; 32],
        txs_root: Block::txs_root_of(txs),
        readings_root: Block::readings_root_of(readings),
        receipts_root: sha256(b"receipts"),
        state_root: sha256(b"state"),
    }
}

fn blocks(c: &mut Criterion) {
    let limits = BlockLimits {
        max_txs: 10_000,
        max_readings: 10_000,
        max_bytes: 64 << 20,
        known: None,
    };
    let k = key(Algorithm::Ed25519, "d");
    let rs: Vec<_> = (0..1000)
        .map(|i| std::sync::Arc::new(reading(&k, i, 1, 1)))
        .collect();
    let block = Block::new(header(&rs, &[]), Vec::new(), rs);
    let bytes = block.encode();
    c.bench_function("block::encode/readings=1000", |b| {
        b.iter(|| black_box(&block).encode())
    });
    c.bench_function("block::decode/readings=1000", |b| {
        b.iter(|| Block::decode_cfg(black_box(bytes.clone()), &limits).unwrap())
    });
    // As a validator decodes a block whose readings gossip already brought to its pool.
    let pool: std::collections::HashMap<_, _> =
        block.readings.iter().map(|r| (r.id(), r.clone())).collect();
    let known = BlockLimits {
        known: Some(std::sync::Arc::new(move |id| pool.get(id).cloned())),
        ..limits.clone()
    };
    c.bench_function("block::decode/readings=1000,known=all", |b| {
        b.iter(|| Block::decode_cfg(black_box(bytes.clone()), &known).unwrap())
    });
    let f = Fixture::new(1000, 0);
    let txs: Vec<_> = (0..1000).map(|i| f.transfer(i)).collect();
    let block = Block::new(header(&[], &txs), txs, Vec::new());
    let bytes = block.encode();
    c.bench_function("block::encode/txs=1000", |b| {
        b.iter(|| black_box(&block).encode())
    });
    c.bench_function("block::decode/txs=1000", |b| {
        b.iter(|| Block::decode_cfg(black_box(bytes.clone()), &limits).unwrap())
    });
}

fn merkle_trees(c: &mut Criterion) {
    for n in [1000u32, 10_000] {
        let leaves: Vec<Hash> = (0..n).map(|i| sha256(&i.to_be_bytes())).collect();
        let root = merkle::root(&leaves);
        c.bench_function(&format!("merkle::root/leaves={n}"), |b| {
            b.iter(|| merkle::root(black_box(&leaves)))
        });
        c.bench_function(&format!("merkle::prove/leaves={n}"), |b| {
            b.iter_batched(
                || n / 3,
                |i| merkle::prove(black_box(&leaves), i).unwrap(),
                BatchSize::SmallInput,
            )
        });
        let i = n / 3;
        let proof = merkle::prove(&leaves, i).unwrap();
        c.bench_function(&format!("merkle::verify/leaves={n}"), |b| {
            b.iter(|| assert!(merkle::verify(&proof, &leaves[i as usize], i, &root)))
        });
    }
}

criterion_group!(benches, readings, transactions, blocks, merkle_trees);
criterion_main!(benches);
