//! Fuzz target `tx_batch`: batches of transactions as clients submit them, `decode_batch`.
//! The checks are in `verity_fuzz::targets::tx_batch`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| verity_fuzz::targets::tx_batch(data));
