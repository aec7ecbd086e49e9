//! Query index micro-benchmarks: indexing a finalized block of 1,000 readings (10 each from 100
//! devices), into a fresh index and into one that already holds 200,000 readings, with the
//! readings in their own store (data format 6: by id and by device) and all in `index.redb`
//! (format 4). The cost of the format 4 layout grows with the index; that growth is why formats
//! 5 and 6 exist.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use verity_benches::{TIME_MS, key, reading};
use verity_node::index::{FinalizedBlock, Index, IndexedReading};
use verity_types::{Algorithm, Reading, SecretKey};

const DEVICES: usize = 100;
const PER_BLOCK: usize = 1_000;
/// Blocks indexed before the grown figures are measured.
const GROWN_BLOCKS: u64 = 200;

/// The readings of block `h`: 10 from each device, their seqs following the earlier blocks'.
fn block(keys: &[SecretKey], h: u64) -> Vec<Reading> {
    let per_device = (PER_BLOCK / DEVICES) as u64;
    (0..PER_BLOCK)
        .map(|j| {
            let device = j % DEVICES;
            let seq = h * per_device + (j / DEVICES) as u64 + 1;
            reading(&keys[device], device, seq, 1)
        })
        .collect()
}

fn index_block(index: &Index, h: u64, readings: &[Reading]) {
    let indexed = IndexedReading::all_accepted(readings);
    index
        .index_finalized(&FinalizedBlock {
            readings: &indexed,
            ..FinalizedBlock::empty(h, TIME_MS + h)
        })
        .expect("the block is indexed");
}

fn index(c: &mut Criterion) {
    let keys: Vec<SecretKey> = (0..DEVICES)
        .map(|i| key(Algorithm::Ed25519, &format!("index-device-{i}")))
        .collect();
    let mut g = c.benchmark_group("index::index_block");
    g.throughput(Throughput::Elements(PER_BLOCK as u64));
    g.sample_size(10);
    for (layout, apart) in [("format6", true), ("format4", false)] {
        for grown in [0, GROWN_BLOCKS] {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let mut index = Index::open(&dir.path().join("index.redb")).expect("index opens");
            if apart {
                index = index
                    .with_reading_store(&dir.path().join("readings"), |_, _| {})
                    .expect("store opens");
            }
            for h in 1..=grown {
                index_block(&index, h, &block(&keys, h));
            }
            let mut h = grown;
            let name = format!(
                "readings={PER_BLOCK},indexed={},layout={layout}",
                grown * PER_BLOCK as u64
            );
            g.bench_function(name, |b| {
                b.iter_batched(
                    || {
                        h += 1;
                        (h, block(&keys, h))
                    },
                    |(h, readings)| index_block(&index, h, &readings),
                    BatchSize::PerIteration,
                )
            });
        }
    }
    g.finish();
}

criterion_group!(benches, index);
criterion_main!(benches);
