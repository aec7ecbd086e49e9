//! Fuzz target `reading`: device readings (COSE_Sign1 over SenML), `Reading::decode`.
//! The checks are in `verity_fuzz::targets::reading`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| verity_fuzz::targets::reading(data));
