//! Transactions: what an account asks the ledger to do, signed by the account's key.
//!
//! Encoding (all integers big-endian, see docs/transactions.md):
//! `version u8 = 1 | signer PublicKey | nonce u64 | body tag u8 | body fields` followed by the
//! 64-byte signature. The signature covers `"verity/tx/v1" | chain id (32 bytes) | transaction`
//! so a transaction cannot be replayed on another network. The transaction id is the SHA-256 of
//! the whole signed encoding.

use crate::{
    AccountId, Amount, AssetCode, ChequeNumber, DeviceId, DeviceMeta, DeviceStatus, Hash, Memo,
    Nonce, PublicKey, SecretKey, Signature, TierId,
    hash::{sha256, sha256_parts},
    keys::KeyError,
};
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{Encode, EncodeSize, Error as CodecError, Read, ReadExt, Write};

/// The only transaction encoding version so far.
pub const TX_VERSION: u8 = 1;
/// Largest encoded signed transaction accepted, in bytes.
pub const MAX_TX_BYTES: usize = 4096;
/// Domain separator of transaction signatures.
const TX_SIGNING_DOMAIN: &[u8] = b"verity/tx/v1";

/// Most members of a multi-signature account.
pub const MAX_MULTISIG_MEMBERS: usize = 16;

/// Declares [TxBody] with its wire tags and derives its encoding from one table, so that the
/// enum, its encoder, its size and its decoder cannot disagree.
macro_rules! tx_bodies {
    ($( $(#[$doc:meta])* $tag:literal => $name:ident { $( $(#[$fdoc:meta])* $field:ident : $ty:ty ),* $(,)? } ),* $(,)?) => {
        /// What a transaction does.
        #[derive(Clone, Debug, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum TxBody {
            $( $(#[$doc])* $name { $( $(#[$fdoc])* $field: $ty ),* } ),*
        }

        impl TxBody {
            /// The wire tag of the body's kind.
            pub fn tag(&self) -> u8 {
                match self { $( Self::$name { .. } => $tag ),* }
            }
        }

        impl Write for TxBody {
            fn write(&self, buf: &mut impl BufMut) {
                match self {
                    $( Self::$name { $( $field ),* } => {
                        buf.put_u8($tag);
                        $( $field.write(buf); )*
                    } )*
                }
            }
        }

        impl EncodeSize for TxBody {
            fn encode_size(&self) -> usize {
                1 + match self {
                    $( Self::$name { $( $field ),* } => 0 $( + $field.encode_size() )* ),*
                }
            }
        }

        impl Read for TxBody {
            type Cfg = ();
            fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
                match u8::read(buf)? {
                    $( $tag => Ok(Self::$name { $( $field: <$ty>::read(buf)? ),* }), )*
                    t => Err(CodecError::InvalidEnum(t)),
                }
            }
        }
    };
}

tx_bodies! {
    /// Move `amount` of `asset` from the signer to `to`.
    0 => Transfer {
        /// Recipient.
        to: AccountId,
        /// Asset moved.
        asset: AssetCode,
        /// Amount in minor units (more than zero).
        amount: Amount,
        /// Free text shown in both histories.
        memo: Memo,
    },
    /// Create `amount` of `asset` in `to`; only an account of the asset's issuer may.
    1 => Mint {
        /// Recipient of the new units.
        to: AccountId,
        /// Asset minted.
        asset: AssetCode,
        /// Amount in minor units (more than zero).
        amount: Amount,
        /// Free text.
        memo: Memo,
    },
    /// Destroy `amount` of `asset` held by the signer; only an account of the issuer may.
    2 => Burn {
        /// Asset burned.
        asset: AssetCode,
        /// Amount in minor units (more than zero).
        amount: Amount,
        /// Free text.
        memo: Memo,
    },
    /// Register a device owned by the signer, who must act for an operator organization.
    3 => DeviceRegister {
        /// The new device's id (never used before).
        device: DeviceId,
        /// Its signing key; the key's algorithm is the device's algorithm.
        key: PublicKey,
        /// Operator labels.
        meta: DeviceMeta,
    },
    /// Move a device to another lifecycle status (suspend, resume, revoke, decommission).
    4 => DeviceSetStatus {
        /// The device.
        device: DeviceId,
        /// Its new status.
        status: DeviceStatus,
    },
    /// Replace a device's key from this block on (also reactivates a revoked device).
    5 => DeviceRotateKey {
        /// The device.
        device: DeviceId,
        /// The new key.
        key: PublicKey,
    },
    /// Hand a device to another owner, an account of an operator organization.
    6 => DeviceTransfer {
        /// The device.
        device: DeviceId,
        /// The new owner.
        to: AccountId,
    },
    /// Put an account in a wallet tier; an account of an issuer or regulator organization may.
    7 => SetTier {
        /// The account.
        account: AccountId,
        /// Its new tier (defined at genesis).
        tier: TierId,
    },
    /// Freeze or unfreeze an account; an account of a regulator organization may.
    8 => SetFrozen {
        /// The account.
        account: AccountId,
        /// Frozen (true) or not.
        frozen: bool,
        /// Why, shown to the account's counterparties and in its record.
        reason: Memo,
    },
    /// Create an m-of-n multi-signature account whose members are accounts. Its id is derived
    /// from the creating transaction ([multisig_account_id]).
    9 => MultisigCreate {
        /// The member accounts (2 to [MAX_MULTISIG_MEMBERS], no repeats).
        members: Members,
        /// Approvals needed (1 to the number of members).
        threshold: u8,
    },
    /// Propose that a multi-signature account do `body`; counts as the proposer's approval.
    10 => MultisigPropose {
        /// The multi-signature account.
        account: AccountId,
        /// What it should do (not another multi-signature operation).
        body: InnerBody,
    },
    /// Approve a pending proposal; the approval that reaches the threshold executes it.
    11 => MultisigApprove {
        /// The multi-signature account.
        account: AccountId,
        /// The proposal (the id of the proposing transaction).
        proposal: Hash,
    },
    /// Withdraw a pending proposal; its proposer may.
    12 => MultisigCancel {
        /// The multi-signature account.
        account: AccountId,
        /// The proposal.
        proposal: Hash,
    },
    /// Draw a digital cheque on the signer's account, payable to `payee`. Its id is derived from
    /// the issuing transaction ([cheque_id]).
    13 => ChequeIssue {
        /// The first holder.
        payee: AccountId,
        /// Asset.
        asset: AssetCode,
        /// Amount in minor units (more than zero).
        amount: Amount,
        /// Not payable before this block time (ms), if set.
        valid_from_ms: Option<u64>,
        /// Not payable from this block time (ms) on, if set.
        expires_ms: Option<u64>,
        /// Free text.
        memo: Memo,
    },
    /// Endorse a cheque over to another holder; its holder may.
    14 => ChequeEndorse {
        /// The cheque.
        cheque: Hash,
        /// The new holder.
        to: AccountId,
    },
    /// Present a cheque for payment; its holder may (its pledgee, while pledged). Clears or
    /// dishonours it.
    15 => ChequePresent {
        /// The cheque.
        cheque: Hash,
    },
    /// Stop payment of a cheque not yet presented; its drawer may.
    16 => ChequeStop {
        /// The cheque.
        cheque: Hash,
        /// Why.
        reason: Memo,
    },
    /// Cancel a cheque still held by its first payee; its drawer may.
    17 => ChequeCancel {
        /// The cheque.
        cheque: Hash,
    },
    /// Pledge a cheque to a lender as collateral; its holder may.
    18 => ChequePledge {
        /// The cheque.
        cheque: Hash,
        /// The lender.
        to: AccountId,
    },
    /// Release a pledge; the pledgee may.
    19 => ChequeRelease {
        /// The cheque.
        cheque: Hash,
    },
    /// A collecting bank presents a truncated paper cheque for its customer, identified by the
    /// SHA-256 of its scanned image; an account of an issuer organization (a bank) may. Its id
    /// is [paper_cheque_id] of the drawer and number.
    20 => PaperPresent {
        /// SHA-256 of the scanned image.
        image_sha256: Hash,
        /// The number printed on the cheque.
        number: ChequeNumber,
        /// The account it is drawn on.
        drawer: AccountId,
        /// The customer to credit.
        payee: AccountId,
        /// Asset.
        asset: AssetCode,
        /// Amount in minor units.
        amount: Amount,
    },
    /// The paying bank (the issuer of the cheque's asset) honours a presented paper cheque,
    /// which then clears as a digital one does, or returns it with a reason.
    21 => PaperDecide {
        /// The paper cheque.
        cheque: Hash,
        /// Honour (true) or return (false).
        honour: bool,
        /// Why it is returned (free text; empty when honoured).
        reason: Memo,
    },
}

impl TxBody {
    /// A short name of the kind of transaction, as the API shows it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Transfer { .. } => "transfer",
            Self::Mint { .. } => "mint",
            Self::Burn { .. } => "burn",
            Self::DeviceRegister { .. } => "device_register",
            Self::DeviceSetStatus { .. } => "device_set_status",
            Self::DeviceRotateKey { .. } => "device_rotate_key",
            Self::DeviceTransfer { .. } => "device_transfer",
            Self::SetTier { .. } => "set_tier",
            Self::SetFrozen { .. } => "set_frozen",
            Self::MultisigCreate { .. } => "multisig_create",
            Self::MultisigPropose { .. } => "multisig_propose",
            Self::MultisigApprove { .. } => "multisig_approve",
            Self::MultisigCancel { .. } => "multisig_cancel",
            Self::ChequeIssue { .. } => "cheque_issue",
            Self::ChequeEndorse { .. } => "cheque_endorse",
            Self::ChequePresent { .. } => "cheque_present",
            Self::ChequeStop { .. } => "cheque_stop",
            Self::ChequeCancel { .. } => "cheque_cancel",
            Self::ChequePledge { .. } => "cheque_pledge",
            Self::ChequeRelease { .. } => "cheque_release",
            Self::PaperPresent { .. } => "paper_present",
            Self::PaperDecide { .. } => "paper_decide",
        }
    }

    /// Whether this is one of the multi-signature operations (which a proposal may not carry).
    pub fn is_multisig(&self) -> bool {
        matches!(
            self,
            Self::MultisigCreate { .. }
                | Self::MultisigPropose { .. }
                | Self::MultisigApprove { .. }
                | Self::MultisigCancel { .. }
        )
    }
}

/// The member accounts of a multi-signature account, at most [MAX_MULTISIG_MEMBERS].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Members(pub Vec<AccountId>);

impl Write for Members {
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_u8(self.0.len() as u8);
        for m in &self.0 {
            m.write(buf);
        }
    }
}
impl EncodeSize for Members {
    fn encode_size(&self) -> usize {
        1 + self.0.len() * crate::ids::ACCOUNT_ID_LEN
    }
}
impl Read for Members {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let n = u8::read(buf)? as usize;
        if n > MAX_MULTISIG_MEMBERS {
            return Err(CodecError::InvalidLength(n));
        }
        (0..n)
            .map(|_| AccountId::read(buf))
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

/// The body a multi-signature proposal carries: any body but another multi-signature
/// operation, so nesting is refused before it is decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InnerBody(pub Box<TxBody>);

impl Write for InnerBody {
    fn write(&self, buf: &mut impl BufMut) {
        self.0.write(buf);
    }
}
impl EncodeSize for InnerBody {
    fn encode_size(&self) -> usize {
        self.0.encode_size()
    }
}
impl Read for InnerBody {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        if buf.remaining() > 0 && (9..=12).contains(&buf.chunk()[0]) {
            return Err(CodecError::Invalid(
                "InnerBody",
                "a proposal cannot carry a multi-signature operation",
            ));
        }
        Ok(Self(Box::new(TxBody::read(buf)?)))
    }
}

/// The id of the multi-signature account created by transaction `tx_id`.
pub fn multisig_account_id(tx_id: &Hash) -> AccountId {
    let digest = sha256_parts(&[b"verity/multisig/v1", &tx_id.0]);
    let mut id = [0u8; crate::ids::ACCOUNT_ID_LEN];
    id.copy_from_slice(&digest[..crate::ids::ACCOUNT_ID_LEN]);
    AccountId(id)
}

/// The id of the digital cheque issued by transaction `tx_id`.
pub fn cheque_id(tx_id: &Hash) -> Hash {
    sha256_parts(&[b"verity/cheque/v1", &tx_id.0])
}

/// The id of the paper cheque number `number` drawn on `drawer`: the same paper cheque always
/// has the same id, whoever presents it, which is how a second presentment is caught.
pub fn paper_cheque_id(drawer: &AccountId, number: &ChequeNumber) -> Hash {
    sha256_parts(&[
        b"verity/paper-cheque/v1",
        &drawer.0,
        number.as_str().as_bytes(),
    ])
}

/// An unsigned transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    /// The key of the account that pays and signs.
    pub signer: PublicKey,
    /// Must equal the account's current nonce.
    pub nonce: Nonce,
    /// What to do.
    pub body: TxBody,
}

impl Transaction {
    /// The account the transaction acts for.
    pub fn account(&self) -> AccountId {
        self.signer.account_id()
    }

    /// The bytes the signature covers on the network with `chain_id`.
    pub fn signing_message(&self, chain_id: &Hash) -> Vec<u8> {
        let mut msg = Vec::with_capacity(TX_SIGNING_DOMAIN.len() + 32 + self.encode_size());
        msg.extend_from_slice(TX_SIGNING_DOMAIN);
        msg.extend_from_slice(&chain_id.0);
        self.write(&mut msg);
        msg
    }

    /// Signs the transaction for the network with `chain_id`.
    pub fn sign(self, key: &SecretKey, chain_id: &Hash) -> SignedTransaction {
        let signature = key.sign(&self.signing_message(chain_id));
        SignedTransaction::new(self, signature)
    }
}

impl Write for Transaction {
    fn write(&self, buf: &mut impl BufMut) {
        buf.put_u8(TX_VERSION);
        self.signer.write(buf);
        self.nonce.write(buf);
        self.body.write(buf);
    }
}

impl EncodeSize for Transaction {
    fn encode_size(&self) -> usize {
        1 + self.signer.encode_size() + self.nonce.encode_size() + self.body.encode_size()
    }
}

impl Read for Transaction {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let version = u8::read(buf)?;
        if version != TX_VERSION {
            return Err(CodecError::Invalid("Transaction", "unknown version"));
        }
        Ok(Self {
            signer: PublicKey::read(buf)?,
            nonce: Nonce::read(buf)?,
            body: TxBody::read(buf)?,
        })
    }
}

/// A transaction with its signature; its id is computed once, on construction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedTransaction {
    /// The transaction.
    pub tx: Transaction,
    /// The signer's signature over [Transaction::signing_message].
    pub signature: Signature,
    id: Hash,
}

impl SignedTransaction {
    /// Pairs a transaction with its signature (not verified here).
    pub fn new(tx: Transaction, signature: Signature) -> Self {
        let mut bytes = Vec::with_capacity(tx.encode_size() + 64);
        tx.write(&mut bytes);
        signature.write(&mut bytes);
        let id = sha256(&bytes);
        Self { tx, signature, id }
    }

    /// The transaction id: SHA-256 of the signed encoding.
    pub fn id(&self) -> Hash {
        self.id
    }

    /// Checks the signature for the network with `chain_id` (P-256 must be low-S).
    pub fn verify_signature(&self, chain_id: &Hash) -> Result<(), KeyError> {
        self.tx
            .signer
            .verify(&self.tx.signing_message(chain_id), &self.signature, true)
    }

    /// Decodes a signed transaction submitted by a client, refusing anything over
    /// [MAX_TX_BYTES] or with trailing bytes.
    pub fn decode_submitted(bytes: &[u8]) -> Result<Self, TxDecodeError> {
        if bytes.len() > MAX_TX_BYTES {
            return Err(TxDecodeError::TooLarge(bytes.len()));
        }
        use commonware_codec::DecodeExt;
        Self::decode(bytes::Bytes::copy_from_slice(bytes))
            .map_err(|e| TxDecodeError::Malformed(e.to_string()))
    }

    /// The canonical bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode().to_vec()
    }
}

/// Why submitted transaction bytes were refused before any check against state.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TxDecodeError {
    /// Over [MAX_TX_BYTES].
    #[error("transaction is {0} bytes, the limit is {MAX_TX_BYTES}")]
    TooLarge(usize),
    /// Not a canonical encoding.
    #[error("malformed transaction: {0}")]
    Malformed(String),
}

/// Transactions one batch submission (`POST /v1/txs/batch`) may carry, at most.
pub const MAX_BATCH_TXS: usize = 256;

/// The body of a batch submission: each signed transaction preceded by its length in bytes, a
/// 4-byte big-endian unsigned integer. Decoded by [decode_batch].
pub fn encode_batch(txs: &[SignedTransaction]) -> Vec<u8> {
    let mut out = Vec::with_capacity(txs.iter().map(|t| 4 + t.encode_size()).sum());
    for tx in txs {
        out.extend_from_slice(&(tx.encode_size() as u32).to_be_bytes());
        tx.write(&mut out);
    }
    out
}

/// Splits a batch submission ([encode_batch]) into its transactions, each decoded as
/// [SignedTransaction::decode_submitted] decodes one. All or nothing: any fault refuses the
/// whole batch.
pub fn decode_batch(mut body: &[u8]) -> Result<Vec<SignedTransaction>, BatchDecodeError> {
    if body.is_empty() {
        return Err(BatchDecodeError::Empty);
    }
    let mut txs = Vec::new();
    while !body.is_empty() {
        let index = txs.len();
        if index == MAX_BATCH_TXS {
            return Err(BatchDecodeError::TooMany);
        }
        let Some((len, rest)) = body.split_first_chunk::<4>() else {
            return Err(BatchDecodeError::Truncated {
                index,
                needed: 4,
                left: body.len(),
            });
        };
        let len = u32::from_be_bytes(*len) as usize;
        if len > MAX_TX_BYTES {
            return Err(BatchDecodeError::Tx {
                index,
                error: TxDecodeError::TooLarge(len),
            });
        }
        if rest.len() < len {
            return Err(BatchDecodeError::Truncated {
                index,
                needed: len,
                left: rest.len(),
            });
        }
        let (tx, rest) = rest.split_at(len);
        txs.push(
            SignedTransaction::decode_submitted(tx)
                .map_err(|error| BatchDecodeError::Tx { index, error })?,
        );
        body = rest;
    }
    Ok(txs)
}

/// Why a batch submission was refused as a whole, before any check against state.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BatchDecodeError {
    /// No transaction at all.
    #[error("the batch holds no transaction")]
    Empty,
    /// More than [MAX_BATCH_TXS] transactions.
    #[error("the batch holds more than {MAX_BATCH_TXS} transactions")]
    TooMany,
    /// A length prefix, or the transaction it announces, runs past the end of the body.
    #[error("transaction {index}: needs {needed} more bytes, the body has {left} left")]
    Truncated {
        /// The transaction's position in the batch, from 0.
        index: usize,
        /// Bytes the length prefix (4) or, after it, the transaction needs.
        needed: usize,
        /// Bytes the body has left.
        left: usize,
    },
    /// A transaction that does not decode on its own.
    #[error("transaction {index}: {error}")]
    Tx {
        /// The transaction's position in the batch, from 0.
        index: usize,
        /// What is wrong with it.
        error: TxDecodeError,
    },
}

impl Write for SignedTransaction {
    fn write(&self, buf: &mut impl BufMut) {
        self.tx.write(buf);
        self.signature.write(buf);
    }
}

impl EncodeSize for SignedTransaction {
    fn encode_size(&self) -> usize {
        self.tx.encode_size() + 64
    }
}

impl Read for SignedTransaction {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let tx = Transaction::read(buf)?;
        let signature = Signature::read(buf)?;
        Ok(Self::new(tx, signature))
    }
}

/// Helper for domain-separated ids of other objects.
pub fn domain_hash(domain: &[u8], bytes: &[u8]) -> Hash {
    sha256_parts(&[domain, bytes])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Algorithm;
    use commonware_codec::DecodeExt;

    fn sample(alg: Algorithm) -> (SecretKey, SignedTransaction) {
        let key = SecretKey::generate(alg);
        let tx = Transaction {
            signer: key.public_key(),
            nonce: Nonce(3),
            body: TxBody::Transfer {
                to: AccountId([1; 20]),
                asset: "CNY".parse().unwrap(),
                amount: Amount(1234),
                memo: Memo::new("rent").unwrap(),
            },
        };
        let signed = tx.sign(&key, &sha256(b"chain"));
        (key, signed)
    }

    #[test]
    fn roundtrip_and_verify() {
        for alg in [Algorithm::Ed25519, Algorithm::P256] {
            let (_, signed) = sample(alg);
            let bytes = signed.to_bytes();
            let back = SignedTransaction::decode_submitted(&bytes).unwrap();
            assert_eq!(back, signed);
            assert_eq!(back.id(), sha256(&bytes));
            assert!(back.verify_signature(&sha256(b"chain")).is_ok());
            assert!(back.verify_signature(&sha256(b"other chain")).is_err());
        }
    }

    #[test]
    fn malformed_and_oversized_refused() {
        let (_, signed) = sample(Algorithm::Ed25519);
        let mut bytes = signed.to_bytes();
        bytes.push(0);
        assert!(matches!(
            SignedTransaction::decode_submitted(&bytes),
            Err(TxDecodeError::Malformed(_))
        ));
        let bytes = signed.to_bytes();
        assert!(SignedTransaction::decode_submitted(&bytes[..bytes.len() - 1]).is_err());
        assert!(matches!(
            SignedTransaction::decode_submitted(&vec![0u8; MAX_TX_BYTES + 1]),
            Err(TxDecodeError::TooLarge(_))
        ));
        assert!(SignedTransaction::decode(vec![9u8]).is_err());
    }

    /// A batch body gives back its transactions in order; each way a body can be wrong is
    /// refused whole, naming the transaction at fault.
    #[test]
    fn batches_split_into_their_transactions_or_are_refused_whole() {
        let txs: Vec<SignedTransaction> = [Algorithm::Ed25519, Algorithm::P256, Algorithm::Ed25519]
            .into_iter()
            .map(|alg| sample(alg).1)
            .collect();
        let body = encode_batch(&txs);
        assert_eq!(
            body.len(),
            txs.iter().map(|t| 4 + t.to_bytes().len()).sum::<usize>()
        );
        assert_eq!(decode_batch(&body).unwrap(), txs);
        assert_eq!(decode_batch(&[]), Err(BatchDecodeError::Empty));
        // A prefix cut short, then a transaction cut short.
        let cut = body.len() - txs[2].to_bytes().len() - 2;
        assert_eq!(
            decode_batch(&body[..cut]),
            Err(BatchDecodeError::Truncated {
                index: 2,
                needed: 4,
                left: 2
            })
        );
        let n = txs[2].to_bytes().len();
        assert_eq!(
            decode_batch(&body[..body.len() - 1]),
            Err(BatchDecodeError::Truncated {
                index: 2,
                needed: n,
                left: n - 1
            })
        );
        // A prefix announcing fewer bytes than the transaction has: it does not decode alone.
        let mut short = body.clone();
        let first = txs[0].to_bytes().len() as u32;
        short[..4].copy_from_slice(&(first - 1).to_be_bytes());
        assert!(matches!(
            decode_batch(&short),
            Err(BatchDecodeError::Tx {
                index: 0,
                error: TxDecodeError::Malformed(_)
            })
        ));
        // A transaction over the limit is refused by its prefix alone.
        let mut big = encode_batch(&txs[..1]);
        big.extend_from_slice(&(MAX_TX_BYTES as u32 + 1).to_be_bytes());
        assert_eq!(
            decode_batch(&big),
            Err(BatchDecodeError::Tx {
                index: 1,
                error: TxDecodeError::TooLarge(MAX_TX_BYTES + 1)
            })
        );
        // The most a batch may hold, and one more.
        let full: Vec<SignedTransaction> = vec![txs[0].clone(); MAX_BATCH_TXS];
        assert_eq!(
            decode_batch(&encode_batch(&full)).unwrap().len(),
            MAX_BATCH_TXS
        );
        let over: Vec<SignedTransaction> = vec![txs[0].clone(); MAX_BATCH_TXS + 1];
        assert_eq!(
            decode_batch(&encode_batch(&over)),
            Err(BatchDecodeError::TooMany)
        );
    }

    #[test]
    fn tampering_breaks_signature() {
        let (_, signed) = sample(Algorithm::P256);
        let mut bytes = signed.to_bytes();
        let n = bytes.len();
        bytes[n - 70] ^= 1; // inside the body
        if let Ok(t) = SignedTransaction::decode_submitted(&bytes) {
            assert!(t.verify_signature(&sha256(b"chain")).is_err());
        }
    }
}
