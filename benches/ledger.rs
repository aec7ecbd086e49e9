//! Micro-benchmarks of the ledger: applying one transaction, executing a block of transfers
//! and a block of readings, on an in-memory committed state (storage is measured end to end by
//! `verity bench`).

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use futures::executor::block_on;
use verity_benches::{Fixture, Verified, reading};
use verity_ledger::{
    Checks, VerifyAll,
    execute::{apply_tx, execute_block},
    state::Overlay,
};

fn apply(c: &mut Criterion) {
    let f = Fixture::new(1, 0);
    let env = f.env();
    let tx = f.transfer(0);
    c.bench_function("ledger::apply/kind=transfer", |b| {
        b.iter(|| {
            let mut overlay = Overlay::new(&f.state);
            block_on(apply_tx(&mut overlay, &env, &tx, &VerifyAll)).unwrap();
            overlay.into_writes()
        })
    });
}

fn blocks(c: &mut Criterion) {
    let n = 1000;
    let f = Fixture::new(n, n);
    let env = f.env();
    let txs: Vec<_> = (0..n).map(|i| f.transfer(i)).collect();
    let readings: Vec<_> = (0..n)
        .map(|i| std::sync::Arc::new(reading(&f.devices[i], i, 1, 1)))
        .collect();
    let mut g = c.benchmark_group("ledger::execute_block");
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(20);
    // Transaction signatures are verified at submission and remembered; blocks of a node
    // skip them the same way, so both figures leave verification out.
    g.bench_function(format!("txs={n}"), |b| {
        b.iter_batched(
            || Overlay::new(&f.state),
            |mut overlay| {
                let checks = Checks {
                    txs: &Trusted,
                    readings: &Verified,
                };
                let out = block_on(execute_block(&mut overlay, &env, &txs, &[], checks)).unwrap();
                assert_eq!(out.receipts.len(), n);
                overlay.into_writes()
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function(format!("readings={n}"), |b| {
        b.iter_batched(
            || Overlay::new(&f.state),
            |mut overlay| {
                let checks = Checks {
                    txs: &Trusted,
                    readings: &Verified,
                };
                let out =
                    block_on(execute_block(&mut overlay, &env, &[], &readings, checks)).unwrap();
                assert!(out.reading_receipts.iter().all(|r| r.rejected.is_none()));
                overlay.into_writes()
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// Trusts transaction signatures, as a node does for those it verified at submission.
struct Trusted;

impl verity_ledger::SignatureCheck for Trusted {
    fn check(&self, _: &verity_types::SignedTransaction, _: &verity_types::Hash) -> bool {
        true
    }
}

criterion_group!(benches, apply, blocks);
criterion_main!(benches);
