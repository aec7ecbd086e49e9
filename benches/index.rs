//! Query index micro-benchmarks: indexing a finalized block of 1,000 readings (10 each from 100
//! devices), into a fresh index and into one that already holds 200,000 readings, with the
//! readings in their own store (data format 6: by id and by device) and all in `index.redb`
//! (format 4). The cost of the format 4 layout grows with the index; that growth is why formats
//! 5 and 6 exist. And indexing a finalized block of 1,000 transfers among 200 accounts, fresh
//! and after 200,000 transfers, with the transaction entries in the store (format 8) and in
//! `index.redb` (format 7).

use criterion::{
    BatchSize, BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main,
    measurement::WallTime,
};
use verity_benches::{TIME_MS, key, reading};
use verity_node::{
    index::{FinalizedBlock, Index, IndexedReading},
    index_store::Holds,
};
use verity_types::{
    AccountId, Algorithm, Hash, Reading, SecretKey,
    receipt::{Movement, MovementKind, Receipt},
};

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

/// Indexes blocks 1 to `grown` of what `make` gives, then measures indexing each next one,
/// as `{what}=1000,indexed={…},layout={layout}`.
fn measure_growing<T>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    (what, layout, grown): (&str, &str, u64),
    make: impl Fn(u64) -> T,
    mut put: impl FnMut(u64, &T),
) {
    for h in 1..=grown {
        put(h, &make(h));
    }
    let mut h = grown;
    let name = format!(
        "{what}={PER_BLOCK},indexed={},layout={layout}",
        grown * PER_BLOCK as u64
    );
    g.bench_function(name, |b| {
        b.iter_batched(
            || {
                h += 1;
                (h, make(h))
            },
            |(h, x)| put(h, &x),
            BatchSize::PerIteration,
        )
    });
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
                    .with_index_store(&dir.path().join("readings"), Holds::Readings, |_, _| {})
                    .expect("store opens");
            }
            measure_growing(
                &mut g,
                ("readings", layout, grown),
                |h| block(&keys, h),
                |h, readings| index_block(&index, h, readings),
            );
        }
    }
    g.finish();
}

/// Accounts the transfers of [transfers] move money among.
const ACCOUNTS: u64 = 200;

/// The receipts of block `h` of 1,000 transfers, each from one account to another.
fn transfers(h: u64) -> Vec<Receipt> {
    let account = |n: u64| {
        let mut a = [0u8; 20];
        a[..8].copy_from_slice(&(n % ACCOUNTS).to_be_bytes());
        AccountId(a)
    };
    let movement = |from: u64, to: u64, delta: i128| Movement {
        account: account(from),
        asset: "EUR".parse().expect("an asset code"),
        delta,
        counterparty: Some(account(to)),
        kind: MovementKind::Transfer,
        memo: String::new(),
        balance_after: 1_000_000,
    };
    (0..PER_BLOCK as u64)
        .map(|i| {
            let n = h * PER_BLOCK as u64 + i;
            let from = n.wrapping_mul(2_654_435_761) % ACCOUNTS;
            let to = (from + 1 + n % (ACCOUNTS - 1)) % ACCOUNTS;
            Receipt {
                tx_id: tx_id(n),
                index: i as u32,
                outcome: "ok".into(),
                movements: vec![movement(from, to, -125), movement(to, from, 125)],
            }
        })
        .collect()
}

/// A transaction id spread like a hash's, from a counter (splitmix64 of each quarter).
fn tx_id(n: u64) -> Hash {
    let mut id = [0u8; 32];
    for (i, chunk) in id.chunks_exact_mut(8).enumerate() {
        let mut z = n
            .wrapping_mul(4)
            .wrapping_add(i as u64)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_be_bytes());
    }
    Hash::from(id)
}

fn index_transfers(c: &mut Criterion) {
    let mut g = c.benchmark_group("index::index_block");
    g.throughput(Throughput::Elements(PER_BLOCK as u64));
    g.sample_size(10);
    for (layout, apart) in [("format8", true), ("format7", false)] {
        for grown in [0, GROWN_BLOCKS] {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let holds = if apart {
                Holds::ReadingsAndTransactions
            } else {
                Holds::Readings
            };
            let index = Index::open(&dir.path().join("index.redb"))
                .expect("index opens")
                .with_index_store(&dir.path().join("store"), holds, |_, _| {})
                .expect("store opens");
            measure_growing(
                &mut g,
                ("transfers", layout, grown),
                transfers,
                |h, receipts| {
                    index
                        .index_finalized(&FinalizedBlock {
                            receipts,
                            ..FinalizedBlock::empty(h, TIME_MS + h)
                        })
                        .expect("the block is indexed")
                },
            );
        }
    }
    g.finish();
}

criterion_group!(benches, index, index_transfers);
criterion_main!(benches);
