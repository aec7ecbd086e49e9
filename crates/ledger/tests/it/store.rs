//! The state store on the deterministic runtime's storage: what a node keeps on disk across
//! blocks and restarts.

use crate::harness::GenesisBuilder;
use commonware_runtime::{Runner as _, Supervisor as _, deterministic};
use std::collections::BTreeMap;
use verity_ledger::{
    state::{StateKey, StateReader as _},
    store::{PRUNE_INTERVAL_BLOCKS, Store},
};
use verity_types::hash::sha256_parts;

const KEYS: u64 = 200;

fn key(i: u64) -> StateKey {
    sha256_parts(&[b"store-test", &i.to_be_bytes()])
}

fn value(height: u64, i: u64) -> Vec<u8> {
    format!("key {i} at height {height}").into_bytes()
}

#[test]
fn the_state_log_is_pruned_as_blocks_overwrite_it_and_the_state_survives_a_restart() {
    let genesis = GenesisBuilder::standard().build();
    deterministic::Runner::default().start(|context| async move {
        let mut store = Store::open(context.child("first"), "state", &genesis)
            .await
            .unwrap();
        // Every block overwrites the same keys: all but the last write of each is dead weight.
        let blocks = 4 * PRUNE_INTERVAL_BLOCKS;
        for height in 1..=blocks {
            let writes: BTreeMap<StateKey, Option<Vec<u8>>> = (0..KEYS)
                .map(|i| (key(i), Some(value(height, i))))
                .collect();
            let reader = store.begin(None);
            let spec = store.finish(reader, writes, height).await.unwrap();
            store.apply(spec, height).await.unwrap();
        }
        // Far more operations were written than the log still holds.
        assert!(
            store.oldest_retained() >= KEYS * PRUNE_INTERVAL_BLOCKS,
            "the log still starts at operation {}",
            store.oldest_retained()
        );
        let committed = store.committed();
        assert_eq!(committed.height, blocks);
        for i in 0..KEYS {
            assert_eq!(
                store.reader().get(&key(i)).await.unwrap(),
                Some(value(blocks, i))
            );
        }
        store.sync().await.unwrap();
        drop(store);

        // Reopened on the pruned log: the same height, root and values.
        let store = Store::open(context.child("reopened"), "state", &genesis)
            .await
            .unwrap();
        assert_eq!(store.committed(), committed);
        for i in 0..KEYS {
            assert_eq!(
                store.reader().get(&key(i)).await.unwrap(),
                Some(value(blocks, i))
            );
        }
    });
}
