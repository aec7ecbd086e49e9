//! Integration tests of the wire formats against the committed test vectors.

mod fuzz_regressions;
mod vectors;
