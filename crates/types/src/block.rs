//! Blocks: a header that commits to everything (parent, height, time, proposer and the roots of
//! the transactions, readings, receipts and resulting ledger state) and the transactions.
//!
//! A block's hash is the SHA-256 of its encoded header; decoding a block recomputes its
//! transactions root, so a body can never be swapped under a known hash.

use crate::{Hash, SignedTransaction, hash::sha256, merkle};
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, RangeCfg, Read, ReadExt, Write};
use commonware_consensus::{Heightable, types::Height};
use commonware_cryptography::Digestible;

/// The only header encoding version so far.
pub const HEADER_VERSION: u8 = 1;
/// Encoded size of a header.
pub const HEADER_BYTES: usize = 1 + 32 + 8 + 8 + 32 + 4 * 32;
/// Absolute upper bound on transactions in a block (nodes configure a lower one).
pub const MAX_BLOCK_TXS: usize = 50_000;

/// A block header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Hash of the parent block (all zero for genesis).
    pub parent: Hash,
    /// Height; genesis is 0.
    pub height: u64,
    /// Proposer's clock in milliseconds since the Unix epoch; strictly greater than the parent's.
    pub timestamp_ms: u64,
    /// Consensus public key of the proposer (all zero for genesis).
    pub proposer: [u8; 32],
    /// Merkle root over the transaction ids.
    pub txs_root: Hash,
    /// Merkle root over the reading ids.
    pub readings_root: Hash,
    /// Merkle root over the receipt hashes.
    pub receipts_root: Hash,
    /// Root of the authenticated ledger state after executing this block.
    pub state_root: Hash,
}

impl Header {
    /// The block hash.
    pub fn hash(&self) -> Hash {
        let mut buf = Vec::with_capacity(HEADER_BYTES);
        self.write(&mut buf);
        sha256(&buf)
    }
}

impl Write for Header {
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_u8(HEADER_VERSION);
        self.parent.write(buf);
        buf.put_u64(self.height);
        buf.put_u64(self.timestamp_ms);
        buf.put_slice(&self.proposer);
        self.txs_root.write(buf);
        self.readings_root.write(buf);
        self.receipts_root.write(buf);
        self.state_root.write(buf);
    }
}

impl EncodeSize for Header {
    fn encode_size(&self) -> usize {
        HEADER_BYTES
    }
}

impl Read for Header {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        if u8::read(buf)? != HEADER_VERSION {
            return Err(CodecError::Invalid("Header", "unknown version"));
        }
        let parent = Hash::read(buf)?;
        let height = u64::read(buf)?;
        let timestamp_ms = u64::read(buf)?;
        let proposer = <[u8; 32]>::read(buf)?;
        Ok(Self {
            parent,
            height,
            timestamp_ms,
            proposer,
            txs_root: Hash::read(buf)?,
            readings_root: Hash::read(buf)?,
            receipts_root: Hash::read(buf)?,
            state_root: Hash::read(buf)?,
        })
    }
}

/// A block: header and transactions. Cheap to clone (the hash is cached).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// The header.
    pub header: Header,
    /// The transactions, in execution order.
    pub txs: Vec<SignedTransaction>,
    hash: Hash,
}

impl Block {
    /// Assembles a block, computing its hash. The caller sets `header.txs_root` (see
    /// [Block::txs_root_of]).
    pub fn new(header: Header, txs: Vec<SignedTransaction>) -> Self {
        let hash = header.hash();
        Self { header, txs, hash }
    }

    /// The block hash (hash of the header).
    pub fn hash(&self) -> Hash {
        self.hash
    }

    /// The Merkle root over transaction ids.
    pub fn txs_root_of(txs: &[SignedTransaction]) -> Hash {
        let ids: Vec<Hash> = txs.iter().map(|t| t.id()).collect();
        merkle::root(&ids)
    }

    /// The genesis block of a chain whose initial state has `state_root`.
    pub fn genesis(genesis_time_ms: u64, state_root: Hash) -> Self {
        let empty = merkle::root(&[]);
        Self::new(
            Header {
                parent: commonware_cryptography::sha256::Digest([0u8; 32]),
                height: 0,
                timestamp_ms: genesis_time_ms,
                proposer: [0u8; 32],
                txs_root: empty,
                readings_root: empty,
                receipts_root: empty,
                state_root,
            },
            Vec::new(),
        )
    }
}

impl Write for Block {
    fn write(&self, buf: &mut impl BufMut) {
        self.header.write(buf);
        self.txs.write(buf);
    }
}

impl EncodeSize for Block {
    fn encode_size(&self) -> usize {
        self.header.encode_size() + self.txs.encode_size()
    }
}

impl Read for Block {
    /// The most transactions a block may hold.
    type Cfg = usize;
    fn read_cfg(buf: &mut impl Buf, max_txs: &usize) -> Result<Self, CodecError> {
        let header = Header::read(buf)?;
        let range: RangeCfg<usize> = (0..=(*max_txs).min(MAX_BLOCK_TXS)).into();
        let txs = Vec::<SignedTransaction>::read_cfg(buf, &(range, ()))?;
        if Self::txs_root_of(&txs) != header.txs_root {
            return Err(CodecError::Invalid(
                "Block",
                "transactions do not match the header",
            ));
        }
        Ok(Self::new(header, txs))
    }
}

impl Digestible for Block {
    type Digest = Hash;
    fn digest(&self) -> Hash {
        self.hash
    }
}

impl Heightable for Block {
    fn height(&self) -> Height {
        Height::new(self.header.height)
    }
}

impl commonware_consensus::Block for Block {
    fn parent(&self) -> Hash {
        self.header.parent
    }
}

impl commonware_consensus::BoundedBlock for Block {
    fn max_encode_size(max_txs: &usize) -> usize {
        HEADER_BYTES + 5 + (*max_txs).min(MAX_BLOCK_TXS) * crate::tx::MAX_TX_BYTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::{Decode, Encode};

    #[test]
    fn genesis_roundtrip_and_tamper() {
        let g = Block::genesis(1, sha256(b"state"));
        let bytes = g.encode();
        let back = Block::decode_cfg(bytes.clone(), &10).unwrap();
        assert_eq!(back, g);
        assert_eq!(back.hash(), g.header.hash());
        let mut bad = bytes.to_vec();
        bad[60] ^= 1;
        let changed = Block::decode_cfg(bad, &10).unwrap();
        assert_ne!(changed.hash(), g.hash());
    }
}
