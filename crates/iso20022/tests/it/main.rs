//! Integration tests of verity-iso20022: every message is read back with an XML parser and
//! checked against the ISO 20022 message definitions, by the checker in `schema.rs` and, where
//! xmllint is installed, by the XSDs in `tests/xsd`.

mod messages;
mod schema;
mod support;
mod vectors;
mod xsd;
