//! Offline inclusion proofs of readings (PROTOCOL.md §5) and of transactions with what they
//! did (format in docs/proofs.md).
//!
//! A proof carries the reading bytes, the header of the block that holds it, the Merkle path
//! from the reading id to the header's readings root, the path from the reading's receipt
//! (which says it was accepted) to the receipts root, and a finalization certificate: more than
//! two thirds of the genesis validators' signatures over a header at the same or a later
//! height. When the certificate is for a later header, the proof also carries the headers in
//! between, each naming the previous one's hash as its parent. [ReadingProof::verify] checks all
//! of it against the genesis alone.

use crate::{
    Genesis, Hash, Header, Reading, SignedTransaction,
    hash::{parse_hash, sha256},
    merkle,
    receipt::{MAX_OUTCOME_LEN, Movement, receipt_leaf},
};
use base64::Engine as _;
use commonware_codec::{DecodeExt as _, Encode as _};
use commonware_consensus::{
    simplex::{scheme::ed25519::Scheme, types::Finalization},
    types::Epoch,
};
use commonware_cryptography::{certificate::Verifier as _, ed25519};
use commonware_parallel::Sequential;
use commonware_utils::ordered::Set;
use serde::{Deserialize, Serialize};

/// Domain separator of all consensus signatures of Verity networks.
pub const NAMESPACE: &[u8] = b"verity-v1";
/// The proof format version.
pub const PROOF_VERSION: u32 = 1;
/// Most headers a proof may chain from the reading's block to the certified one.
pub const MAX_PROOF_HEADERS: usize = 1024;

/// A Merkle path: the tree's leaf count and the sibling hashes, lowest level first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerklePath {
    /// Position of the leaf.
    pub index: u32,
    /// Leaves in the tree.
    pub leaf_count: u32,
    /// Sibling hashes, lowercase hex.
    pub siblings: Vec<String>,
}

impl MerklePath {
    /// The path of leaf `index` among `leaves`.
    pub fn of(leaves: &[Hash], index: u32) -> Option<Self> {
        Self::in_tree(&merkle::Tree::new(leaves), index)
    }

    /// The path of leaf `index` in a built tree.
    pub fn in_tree(tree: &merkle::Tree, index: u32) -> Option<Self> {
        let p = tree.prove(index)?;
        Some(Self {
            index,
            leaf_count: p.leaf_count,
            siblings: p.siblings.iter().map(|s| hex::encode(s.0)).collect(),
        })
    }

    fn verify(&self, leaf: &Hash, root: &Hash) -> Result<(), ProofError> {
        let siblings = self
            .siblings
            .iter()
            .map(|s| parse_hash(s).ok_or(ProofError::Format("sibling is not a 32-byte hex hash")))
            .collect::<Result<Vec<_>, _>>()?;
        let proof = commonware_storage::bmt::Proof {
            leaf_count: self.leaf_count,
            siblings,
        };
        if merkle::verify(&proof, leaf, self.index, root) {
            Ok(())
        } else {
            Err(ProofError::Merkle)
        }
    }
}

/// An inclusion proof of a reading (the JSON document `verity proof reading` writes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadingProof {
    /// Format version ([PROOF_VERSION]).
    pub version: u32,
    /// Always `"reading"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The chain id (genesis hash), lowercase hex.
    pub chain_id: String,
    /// The reading id, lowercase hex (SHA-256 of the reading bytes).
    pub reading_id: String,
    /// The reading as the device sent it, standard base64.
    pub reading: String,
    /// Height of the block that holds the reading.
    pub height: u64,
    /// Path from the reading id to the header's readings root.
    pub readings_path: MerklePath,
    /// Path from the reading's receipt to the header's receipts root.
    pub receipt_path: MerklePath,
    /// Encoded headers, lowercase hex: the reading's block first, then each child up to the
    /// certified one.
    pub headers: Vec<String>,
    /// The finalization certificate of the last header, encoded, lowercase hex.
    pub finalization: String,
}

/// What a valid proof establishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The reading id.
    pub reading_id: Hash,
    /// Height of the block that committed it.
    pub height: u64,
    /// Its block's hash.
    pub block_hash: Hash,
    /// Height of the header the certificate signs.
    pub certified_height: u64,
    /// How many validators signed.
    pub signers: usize,
}

/// Why a proof does not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProofError {
    /// A field is malformed.
    #[error("malformed proof: {0}")]
    Format(&'static str),
    /// The proof is for another network.
    #[error("the proof is for chain {proof}, the genesis is chain {genesis}")]
    WrongChain {
        /// Chain id in the proof.
        proof: String,
        /// Chain id of the genesis.
        genesis: String,
    },
    /// The reading bytes do not hash to the reading id.
    #[error("the reading bytes do not hash to the reading id")]
    ReadingId,
    /// The transaction bytes do not hash to the transaction id.
    #[error("the transaction bytes do not hash to the transaction id")]
    TxId,
    /// A Merkle path does not lead to its root.
    #[error("a Merkle path does not lead to the header's root")]
    Merkle,
    /// The headers do not form a chain.
    #[error("header {0} does not name the previous header as its parent")]
    Chain(u64),
    /// The certificate is not for the last header, or its signatures are not a quorum.
    #[error("finalization certificate invalid: {0}")]
    Certificate(&'static str),
}

/// The leaf of a reading's receipt in the receipts tree:
/// `SHA-256("rdrc" ‖ reading id ‖ index u32 big-endian ‖ outcome u8)`, where the outcome is 0
/// for accepted, else the rejection code's tag.
pub fn reading_receipt_leaf(reading_id: &Hash, index: u32, outcome: u8) -> Hash {
    let mut bytes = Vec::with_capacity(41);
    bytes.extend_from_slice(b"rdrc");
    bytes.extend_from_slice(&reading_id.0);
    bytes.extend_from_slice(&index.to_be_bytes());
    bytes.push(outcome);
    sha256(&bytes)
}

/// The validators' consensus keys named in `genesis`.
pub fn validator_keys(genesis: &Genesis) -> Result<Vec<ed25519::PublicKey>, String> {
    genesis
        .validators
        .iter()
        .map(|v| {
            let bytes = hex::decode(&v.public_key).map_err(|e| e.to_string())?;
            ed25519::PublicKey::decode(bytes::Bytes::from(bytes)).map_err(|e| e.to_string())
        })
        .collect()
}

/// Verifies a finalization certificate of `header` against the validator set.
pub fn verify_finalization(
    validators: &[ed25519::PublicKey],
    header: &Header,
    encoded: &[u8],
) -> Result<usize, ProofError> {
    let set = Set::from_iter_dedup(validators.iter().cloned());
    let verifier = Scheme::verifier(NAMESPACE, set);
    let fin = <Finalization<Scheme, Hash> as commonware_codec::Decode>::decode_cfg(
        bytes::Bytes::copy_from_slice(encoded),
        &verifier.certificate_codec_config(),
    )
    .map_err(|_| ProofError::Certificate("does not decode"))?;
    if fin.round().epoch() != Epoch::zero() {
        return Err(ProofError::Certificate("wrong epoch"));
    }
    if fin.proposal.payload != header.hash() {
        return Err(ProofError::Certificate("it signs another block"));
    }
    if !fin.verify(&mut rand10::rng(), &verifier, &Sequential) {
        return Err(ProofError::Certificate("signatures are not a valid quorum"));
    }
    Ok(fin.certificate.signers.count())
}

/// Encodes a finalization certificate for a proof.
pub fn encode_finalization(fin: &Finalization<Scheme, Hash>) -> String {
    hex::encode(fin.encode())
}

fn check_envelope(
    genesis: &Genesis,
    version: u32,
    kind: &str,
    expected_kind: &str,
    chain_id: &str,
) -> Result<(), ProofError> {
    if version != PROOF_VERSION || kind != expected_kind {
        return Err(ProofError::Format("unknown version or type"));
    }
    let genesis_id = genesis.chain_id();
    if parse_hash(chain_id) != Some(genesis_id) {
        return Err(ProofError::WrongChain {
            proof: chain_id.to_string(),
            genesis: hex::encode(genesis_id.0),
        });
    }
    Ok(())
}

/// Headers from a block to a certified one, checked: each names the previous as parent, and a
/// quorum of the genesis validators signed the last.
struct CertifiedChain {
    headers: Vec<Header>,
    signers: usize,
}

impl CertifiedChain {
    fn check(
        genesis: &Genesis,
        height: u64,
        headers: &[String],
        finalization: &str,
    ) -> Result<Self, ProofError> {
        if headers.is_empty() || headers.len() > MAX_PROOF_HEADERS {
            return Err(ProofError::Format("wrong number of headers"));
        }
        let headers = headers
            .iter()
            .map(|h| {
                let b = hex::decode(h).map_err(|_| ProofError::Format("header is not hex"))?;
                Header::decode(bytes::Bytes::from(b)).map_err(|_| ProofError::Format("bad header"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if headers[0].height != height {
            return Err(ProofError::Format("height does not match the first header"));
        }
        for pair in headers.windows(2) {
            if pair[1].parent != pair[0].hash()
                || pair[0].height.checked_add(1) != Some(pair[1].height)
            {
                return Err(ProofError::Chain(pair[1].height));
            }
        }
        let last = headers.last().expect("non-empty");
        let validators = validator_keys(genesis)
            .map_err(|_| ProofError::Format("genesis validator key invalid"))?;
        let encoded =
            hex::decode(finalization).map_err(|_| ProofError::Format("finalization is not hex"))?;
        let signers = verify_finalization(&validators, last, &encoded)?;
        Ok(Self { headers, signers })
    }
}

/// The receipt of a transaction as a proof carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvenReceipt {
    /// `ok`, or the code of a cheque outcome that moved no value (e.g. `dishonoured:expired`).
    pub outcome: String,
    /// Every balance the transaction changed.
    pub movements: Vec<Movement>,
}

/// An inclusion proof of a transaction and what it did (the JSON document `verity proof tx`
/// writes): the signed transaction, the path from its id to the header's transactions root,
/// its receipt (outcome and movements of value) and the path from the receipt's leaf to the
/// receipts root, then the same header chain and certificate as a [ReadingProof].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxProof {
    /// Format version ([PROOF_VERSION]).
    pub version: u32,
    /// Always `"tx"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The chain id (genesis hash), lowercase hex.
    pub chain_id: String,
    /// The transaction id, lowercase hex (SHA-256 of the signed transaction).
    pub tx_id: String,
    /// The signed transaction, lowercase hex.
    pub tx: String,
    /// Height of the block that holds it.
    pub height: u64,
    /// Path from the transaction id to the header's transactions root.
    pub txs_path: MerklePath,
    /// What the transaction did.
    pub receipt: ProvenReceipt,
    /// Path from the receipt's leaf to the header's receipts root.
    pub receipt_path: MerklePath,
    /// Encoded headers, lowercase hex, the transaction's block first.
    pub headers: Vec<String>,
    /// The finalization certificate of the last header, lowercase hex.
    pub finalization: String,
}

/// What a valid transaction proof establishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedTx {
    /// The transaction.
    pub tx: SignedTransaction,
    /// Height of the block that committed it.
    pub height: u64,
    /// Its block's hash and time.
    pub block_hash: Hash,
    /// Block time, ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// What it did.
    pub receipt: ProvenReceipt,
    /// Height of the header the certificate signs.
    pub certified_height: u64,
    /// How many validators signed.
    pub signers: usize,
}

impl TxProof {
    /// Checks the proof offline against `genesis`.
    pub fn verify(&self, genesis: &Genesis) -> Result<VerifiedTx, ProofError> {
        check_envelope(genesis, self.version, &self.kind, "tx", &self.chain_id)?;
        let bytes = hex::decode(&self.tx).map_err(|_| ProofError::Format("tx is not hex"))?;
        let tx = SignedTransaction::decode_submitted(&bytes)
            .map_err(|_| ProofError::Format("tx does not decode"))?;
        if parse_hash(&self.tx_id) != Some(tx.id()) {
            return Err(ProofError::TxId);
        }
        if tx.verify_signature(&genesis.chain_id()).is_err() {
            return Err(ProofError::Format(
                "the transaction's signature does not verify",
            ));
        }
        if self.receipt.outcome.len() > MAX_OUTCOME_LEN {
            return Err(ProofError::Format("outcome too long"));
        }
        let chain = CertifiedChain::check(genesis, self.height, &self.headers, &self.finalization)?;
        let first = &chain.headers[0];
        self.txs_path.verify(&tx.id(), &first.txs_root)?;
        if self.receipt_path.index != self.txs_path.index {
            return Err(ProofError::Format(
                "receipt and transaction positions differ",
            ));
        }
        let leaf = receipt_leaf(
            &tx.id(),
            self.txs_path.index,
            &self.receipt.outcome,
            &self.receipt.movements,
        );
        self.receipt_path.verify(&leaf, &first.receipts_root)?;
        let last = chain.headers.last().expect("non-empty");
        Ok(VerifiedTx {
            height: first.height,
            block_hash: first.hash(),
            timestamp_ms: first.timestamp_ms,
            certified_height: last.height,
            signers: chain.signers,
            receipt: self.receipt.clone(),
            tx,
        })
    }
}

impl ReadingProof {
    /// Checks the proof offline against `genesis`.
    pub fn verify(&self, genesis: &Genesis) -> Result<Verified, ProofError> {
        check_envelope(genesis, self.version, &self.kind, "reading", &self.chain_id)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&self.reading)
            .map_err(|_| ProofError::Format("reading is not base64"))?;
        let reading_id = sha256(&bytes);
        if parse_hash(&self.reading_id) != Some(reading_id) {
            return Err(ProofError::ReadingId);
        }
        let chain = CertifiedChain::check(genesis, self.height, &self.headers, &self.finalization)?;
        let first = &chain.headers[0];
        self.readings_path
            .verify(&reading_id, &first.readings_root)?;
        let leaf = reading_receipt_leaf(&reading_id, self.readings_path.index, 0);
        self.receipt_path.verify(&leaf, &first.receipts_root)?;
        let (signers, last) = (chain.signers, chain.headers.last().expect("non-empty"));
        Ok(Verified {
            reading_id,
            height: first.height,
            block_hash: first.hash(),
            certified_height: last.height,
            signers,
        })
    }

    /// The reading the proof is about (decoded).
    pub fn decoded_reading(&self) -> Option<Reading> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&self.reading)
            .ok()?;
        Reading::decode(&bytes).ok()
    }
}
