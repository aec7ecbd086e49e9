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

/// A built tree, to prove many of its leaves without hashing the list again each time.
pub struct Tree {
    tree: commonware_storage::bmt::Tree<Hash>,
    leaf_count: u32,
}

impl Tree {
    /// The tree over `leaves`.
    pub fn new(leaves: &[Hash]) -> Self {
        Self {
            tree: tree(leaves),
            leaf_count: leaves.len() as u32,
        }
    }

    /// Its root (as [root] computes it).
    pub fn root(&self) -> Hash {
        self.tree.root()
    }

    /// How many leaves it has.
    pub fn leaf_count(&self) -> u32 {
        self.leaf_count
    }

    /// The inclusion proof of leaf `index` (as [prove] makes it; None if out of range).
    pub fn prove(&self, index: u32) -> Option<Proof<Hash>> {
        self.tree.proof(index).ok()
    }
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
        let built = Tree::new(&leaves);
        assert_eq!(built.root(), r);
        for i in 0..7 {
            assert_eq!(built.prove(i), prove(&leaves, i));
        }
        assert_eq!(built.prove(7), None);
        assert_ne!(root(&leaves[..6]), r);
        assert_ne!(root(&[]), r);
    }
}
