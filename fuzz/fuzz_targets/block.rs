//! Fuzz target `block`: blocks as peers send them, `Block::decode_cfg` with modest limits.
//! The checks are in `verity_fuzz::targets::block`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| verity_fuzz::targets::block(data));
