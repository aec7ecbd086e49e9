//! Integration tests of the wire formats against the committed test vectors.

mod vectors;
