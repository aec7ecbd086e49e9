//! Merkle commitments over a block's lists (transactions, readings, receipts), using
//! commonware-storage's binary Merkle tree with SHA-256.
//!
//! Leaf `i` with digest `d` hashes as `SHA-256(i as u32 big-endian ‖ d)`; an inner node as
//! `SHA-256(left ‖ right)`, the last node of an odd level paired with itself; the root is
//! `SHA-256(leaf count as u32 big-endian ‖ top node)`. Leaf preimages are 36 bytes and inner
//! preimages 64 bytes, so a leaf can never be taken for an inner node.

use crate::Hash;
use commonware_cryptography::Sha256;
use commonware_storage::bmt::{Builder, Proof};

/// The Merkle root over `leaves` (the root of the empty list is well defined too).
pub fn root(leaves: &[Hash]) -> Hash {
    tree(leaves).root()
}

fn tree(leaves: &[Hash]) -> commonware_storage::bmt::Tree<Hash> {
    let mut builder = Builder::<Sha256>::new(leaves.len());
    for leaf in leaves {
        builder.add(leaf);
    }
    builder.build()
}

/// The inclusion proof of leaf `index` (None if out of range).
pub fn prove(leaves: &[Hash], index: u32) -> Option<Proof<Hash>> {
    tree(leaves).proof(index).ok()
}

/// Checks that `leaf` is at `index` under `root`.
pub fn verify(proof: &Proof<Hash>, leaf: &Hash, index: u32, root: &Hash) -> bool {
    proof
        .verify_element_inclusion::<Sha256>(leaf, index, root)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::sha256;

    #[test]
    fn proofs_verify_and_bind_position() {
        let leaves: Vec<Hash> = (0u8..7).map(|i| sha256(&[i])).collect();
        let r = root(&leaves);
        for (i, leaf) in leaves.iter().enumerate() {
            let p = prove(&leaves, i as u32).unwrap();
            assert!(verify(&p, leaf, i as u32, &r));
            assert!(!verify(&p, leaf, (i as u32 + 1) % 7, &r));
        }
        assert_ne!(root(&leaves[..6]), r);
        assert_ne!(root(&[]), r);
    }
}
