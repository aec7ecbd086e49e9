//! Fuzz target `reading_proof`: reading proofs as JSON, verified against a fixed genesis.
//! The checks are in `verity_fuzz::targets::reading_proof`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| verity_fuzz::targets::reading_proof(data));
