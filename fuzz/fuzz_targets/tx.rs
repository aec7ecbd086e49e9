//! Fuzz target `tx`: signed transactions as clients submit them, `decode_submitted`.
//! The checks are in `verity_fuzz::targets::tx`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| verity_fuzz::targets::tx(data));
