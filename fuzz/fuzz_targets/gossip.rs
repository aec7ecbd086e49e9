//! Fuzz target `gossip`: transaction gossip messages as peers send them.
//! The checks are in `verity_fuzz::targets::gossip`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| verity_fuzz::targets::gossip(data));
