//! SHA-256 helpers and the 32-byte digest type used for block hashes, transaction ids and roots.

use commonware_cryptography::{Hasher, Sha256};

/// A SHA-256 digest (block hash, transaction id, Merkle root). Displays as lowercase hex.
pub type Hash = commonware_cryptography::sha256::Digest;

/// SHA-256 over the concatenation of `parts`.
pub fn sha256_parts(parts: &[&[u8]]) -> Hash {
    Sha256::hash(parts)
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> Hash {
    Sha256::hash(&[bytes])
}

/// Parses a 64-character lowercase or uppercase hex digest.
pub fn parse_hash(s: &str) -> Option<Hash> {
    let bytes = hex::decode(s).ok()?;
    let arr: [u8; 32] = bytes.try_into().ok()?;
    Some(commonware_cryptography::sha256::Digest(arr))
}

/// Lowercase hex of a digest.
pub fn hash_hex(h: &Hash) -> String {
    hex::encode(h.0)
}
