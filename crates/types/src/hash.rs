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

/// Lowercase hex of a digest (written into a buffer: receipts and the reading index do this
/// for every reading, and `hex::encode` builds its string a character at a time).
pub fn hash_hex(h: &Hash) -> String {
    let mut out = [0u8; 64];
    hex::encode_to_slice(h.0, &mut out).expect("32 bytes are 64 hex digits");
    String::from_utf8(out.to_vec()).expect("hex digits are ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_in_hex_is_64_lowercase_digits_that_parse_back() {
        for h in [sha256(b""), sha256(b"reading"), Hash::from([0xab; 32])] {
            let s = hash_hex(&h);
            assert_eq!(s.len(), 64);
            assert_eq!(s, hex::encode(h.0));
            assert!(!s.contains(|c: char| c.is_ascii_uppercase()));
            assert_eq!(parse_hash(&s), Some(h));
        }
    }
}
