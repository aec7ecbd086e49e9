//! Blocks: a header that commits to everything (parent, height, time, proposer and the roots of
//! the transactions, readings, receipts and resulting ledger state), the transactions and the
//! device readings.
//!
//! A block's hash is the SHA-256 of its encoded header; decoding a block recomputes its
//! transactions and readings roots, so a body can never be swapped under a known hash, and
//! re-checks every reading's format (a block with a malformed reading is invalid).

use crate::{Hash, Reading, SignedTransaction, hash::sha256, merkle};
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, RangeCfg, Read, ReadExt, Write};
use commonware_consensus::{Heightable, types::Height};
use commonware_cryptography::Digestible;
use std::sync::Arc;

/// The only header encoding version so far.
pub const HEADER_VERSION: u8 = 1;
/// Encoded size of a header.
pub const HEADER_BYTES: usize = 1 + 32 + 8 + 8 + 32 + 4 * 32;
/// Absolute upper bound on transactions in a block (nodes configure a lower one).
pub const MAX_BLOCK_TXS: usize = 50_000;
/// Absolute upper bound on readings in a block (nodes configure a lower one).
pub const MAX_BLOCK_READINGS: usize = 200_000;

/// Readings a node already holds decoded (those in its pool), found by id. A block's reading
/// whose id (the hash of its bytes) is found there is taken from it instead of being decoded
/// again: the same bytes decode to the same reading.
pub type KnownReadings = Arc<dyn Fn(&Hash) -> Option<Arc<Reading>> + Send + Sync>;

/// What a node accepts in one block; every validator of a network must use the same limits.
#[derive(Clone)]
pub struct BlockLimits {
    /// Most transactions.
    pub max_txs: usize,
    /// Most readings.
    pub max_readings: usize,
    /// Most encoded bytes of the whole block.
    pub max_bytes: usize,
    /// Where decoding looks for readings already decoded (not a limit: blocks decode to the
    /// same with or without it).
    pub known: Option<KnownReadings>,
}

impl std::fmt::Debug for BlockLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockLimits")
            .field("max_txs", &self.max_txs)
            .field("max_readings", &self.max_readings)
            .field("max_bytes", &self.max_bytes)
            .field("known", &self.known.is_some())
            .finish()
    }
}

impl PartialEq for BlockLimits {
    fn eq(&self, other: &Self) -> bool {
        (self.max_txs, self.max_readings, self.max_bytes)
            == (other.max_txs, other.max_readings, other.max_bytes)
    }
}

impl Eq for BlockLimits {}

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

/// A block: header, transactions and readings. The hash is cached.
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    /// The header.
    pub header: Header,
    /// The transactions, in execution order (before the readings).
    pub txs: Vec<SignedTransaction>,
    /// The device readings, in execution order. Shared: the same reading is held by the pool
    /// that received it, the blocks built from it and the index being written, never copied.
    pub readings: Vec<Arc<Reading>>,
    hash: Hash,
}

impl Eq for Block {}

impl Block {
    /// Assembles a block, computing its hash. The caller sets `header.txs_root` and
    /// `header.readings_root` (see [Block::txs_root_of] and [Block::readings_root_of]).
    pub fn new(header: Header, txs: Vec<SignedTransaction>, readings: Vec<Arc<Reading>>) -> Self {
        let hash = header.hash();
        Self {
            header,
            txs,
            readings,
            hash,
        }
    }

    /// The Merkle root over reading ids.
    pub fn readings_root_of(readings: &[Arc<Reading>]) -> Hash {
        let ids: Vec<Hash> = readings.iter().map(|r| r.id()).collect();
        merkle::root(&ids)
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
            Vec::new(),
        )
    }
}

impl Write for Block {
    fn write(&self, buf: &mut impl BufMut) {
        self.header.write(buf);
        self.txs.write(buf);
        buf.put_u32(self.readings.len() as u32);
        for r in &self.readings {
            buf.put_u16(r.bytes().len() as u16);
            buf.put_slice(r.bytes());
        }
    }
}

impl EncodeSize for Block {
    fn encode_size(&self) -> usize {
        self.header.encode_size()
            + self.txs.encode_size()
            + 4
            + self
                .readings
                .iter()
                .map(|r| 2 + r.bytes().len())
                .sum::<usize>()
    }
}

impl Read for Block {
    type Cfg = BlockLimits;
    fn read_cfg(buf: &mut impl Buf, limits: &BlockLimits) -> Result<Self, CodecError> {
        let header = Header::read(buf)?;
        let range: RangeCfg<usize> = (0..=limits.max_txs.min(MAX_BLOCK_TXS)).into();
        let txs = Vec::<SignedTransaction>::read_cfg(buf, &(range, ()))?;
        if Self::txs_root_of(&txs) != header.txs_root {
            return Err(CodecError::Invalid(
                "Block",
                "transactions do not match the header",
            ));
        }
        let n = u32::read(buf)? as usize;
        if n > limits.max_readings.min(MAX_BLOCK_READINGS) {
            return Err(CodecError::InvalidLength(n));
        }
        let mut readings = Vec::with_capacity(n.min(buf.remaining() / 2));
        for _ in 0..n {
            let len = u16::read(buf)? as usize;
            if buf.remaining() < len {
                return Err(CodecError::EndOfBuffer);
            }
            // Taken from the known readings when there (found by the hash of its bytes), else
            // decoded, in place when the buffer holds the reading in one piece (it then copies
            // the bytes once, into the reading).
            let contiguous = buf.chunk().len() >= len;
            let owned;
            let bytes: &[u8] = if contiguous {
                &buf.chunk()[..len]
            } else {
                let mut v = vec![0u8; len];
                buf.copy_to_slice(&mut v);
                owned = v;
                &owned
            };
            let id = sha256(bytes);
            let found = limits.known.as_ref().and_then(|k| k(&id));
            let reading =
                match found {
                    Some(r) => r,
                    None => Arc::new(Reading::decode_hashed(bytes, id).map_err(|_| {
                        CodecError::Invalid("Block", "a reading is not well-formed")
                    })?),
                };
            if contiguous {
                buf.advance(len);
            }
            readings.push(reading);
        }
        if Self::readings_root_of(&readings) != header.readings_root {
            return Err(CodecError::Invalid(
                "Block",
                "readings do not match the header",
            ));
        }
        Ok(Self::new(header, txs, readings))
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
    fn max_encode_size(limits: &BlockLimits) -> usize {
        limits.max_bytes
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
        let limits = BlockLimits {
            max_txs: 10,
            max_readings: 10,
            max_bytes: 1 << 20,
            known: None,
        };
        let back = Block::decode_cfg(bytes.clone(), &limits).unwrap();
        assert_eq!(back, g);
        assert_eq!(back.hash(), g.header.hash());
        let mut bad = bytes.to_vec();
        bad[60] ^= 1;
        let changed = Block::decode_cfg(bad, &limits).unwrap();
        assert_ne!(changed.hash(), g.hash());
    }

    #[test]
    fn readings_found_among_the_known_ones_are_not_decoded_again_and_the_block_is_the_same() {
        use crate::{
            Algorithm, SecretKey,
            reading::{
                SenmlValue,
                sign::{NewRecord, sign_reading},
            },
        };
        use std::sync::atomic::{AtomicUsize, Ordering};
        let key = SecretKey::generate(Algorithm::Ed25519);
        let readings: Vec<Arc<Reading>> = (1..=4)
            .map(|seq| {
                let bytes = sign_reading(
                    &key,
                    &"d".parse().unwrap(),
                    seq,
                    &[NewRecord {
                        name: "t".into(),
                        time: 1.0,
                        unit: None,
                        value: SenmlValue::Number(seq as f64),
                    }],
                );
                Arc::new(Reading::decode(&bytes).unwrap())
            })
            .collect();
        let mut header = Block::genesis(1, sha256(b"state")).header;
        header.height = 1;
        header.readings_root = Block::readings_root_of(&readings);
        let block = Block::new(header, Vec::new(), readings.clone());
        let plain = BlockLimits {
            max_txs: 10,
            max_readings: 10,
            max_bytes: 1 << 20,
            known: None,
        };
        // Two of the four are known: those two are the very readings known, the others decoded.
        let asked = Arc::new(AtomicUsize::new(0));
        let pool: std::collections::HashMap<Hash, Arc<Reading>> =
            readings[..2].iter().map(|r| (r.id(), r.clone())).collect();
        let counter = asked.clone();
        let known = BlockLimits {
            known: Some(Arc::new(move |id| {
                counter.fetch_add(1, Ordering::Relaxed);
                pool.get(id).cloned()
            })),
            ..plain.clone()
        };
        let with = Block::decode_cfg(block.encode(), &known).unwrap();
        let without = Block::decode_cfg(block.encode(), &plain).unwrap();
        assert_eq!(with, block);
        assert_eq!(without, block);
        assert_eq!(asked.load(Ordering::Relaxed), 4);
        assert!(Arc::ptr_eq(&with.readings[0], &readings[0]));
        assert!(Arc::ptr_eq(&with.readings[1], &readings[1]));
        assert!(!Arc::ptr_eq(&with.readings[2], &readings[2]));
        // A changed reading is not found, and is decoded (and refused) as before.
        let mut bad = block.encode().to_vec();
        let n = bad.len();
        bad[n - 70] ^= 0xff;
        assert!(Block::decode_cfg(bad, &known).is_err());
    }
}
