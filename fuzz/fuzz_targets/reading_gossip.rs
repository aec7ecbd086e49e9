//! Fuzz target `reading_gossip`: reading gossip messages as peers send them.
//! The checks are in `verity_fuzz::targets::reading_gossip`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| verity_fuzz::targets::reading_gossip(data));
