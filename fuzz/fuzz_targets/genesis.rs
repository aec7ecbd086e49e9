//! Fuzz target `genesis`: genesis documents as a node reads them, `Genesis::from_json`.
//! The checks are in `verity_fuzz::targets::genesis`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| verity_fuzz::targets::genesis(data));
