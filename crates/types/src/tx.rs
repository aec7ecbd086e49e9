//! Transactions: what an account asks the ledger to do, signed by the account's key.
//!
//! Encoding (all integers big-endian, see docs/transactions.md):
//! `version u8 = 1 | signer PublicKey | nonce u64 | body tag u8 | body fields` followed by the
//! 64-byte signature. The signature covers `"verity/tx/v1" | chain id (32 bytes) | transaction`
//! so a transaction cannot be replayed on another network. The transaction id is the SHA-256 of
//! the whole signed encoding.

use crate::{
    AccountId, Amount, AssetCode, DeviceId, DeviceMeta, DeviceStatus, Hash, Memo, Nonce, PublicKey,
    SecretKey, Signature,
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

/// What a transaction does.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TxBody {
    /// Move `amount` of `asset` from the signer to `to`.
    Transfer {
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
    Mint {
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
    Burn {
        /// Asset burned.
        asset: AssetCode,
        /// Amount in minor units (more than zero).
        amount: Amount,
        /// Free text.
        memo: Memo,
    },
    /// Register a device owned by the signer, who must act for an operator organization.
    DeviceRegister {
        /// The new device's id (never used before).
        device: DeviceId,
        /// Its signing key; the key's algorithm is the device's algorithm.
        key: PublicKey,
        /// Operator labels.
        meta: DeviceMeta,
    },
    /// Move a device to another lifecycle status (suspend, resume, revoke, decommission).
    DeviceSetStatus {
        /// The device.
        device: DeviceId,
        /// Its new status.
        status: DeviceStatus,
    },
    /// Replace a device's key from this block on (also reactivates a revoked device).
    DeviceRotateKey {
        /// The device.
        device: DeviceId,
        /// The new key.
        key: PublicKey,
    },
    /// Hand a device to another owner, an account of an operator organization.
    DeviceTransfer {
        /// The device.
        device: DeviceId,
        /// The new owner.
        to: AccountId,
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
        }
    }
}

impl Write for TxBody {
    fn write(&self, buf: &mut impl BufMut) {
        match self {
            Self::Transfer {
                to,
                asset,
                amount,
                memo,
            } => {
                buf.put_u8(0);
                to.write(buf);
                asset.write(buf);
                amount.write(buf);
                memo.write(buf);
            }
            Self::Mint {
                to,
                asset,
                amount,
                memo,
            } => {
                buf.put_u8(1);
                to.write(buf);
                asset.write(buf);
                amount.write(buf);
                memo.write(buf);
            }
            Self::Burn {
                asset,
                amount,
                memo,
            } => {
                buf.put_u8(2);
                asset.write(buf);
                amount.write(buf);
                memo.write(buf);
            }
            Self::DeviceRegister { device, key, meta } => {
                buf.put_u8(3);
                device.write(buf);
                key.write(buf);
                meta.write(buf);
            }
            Self::DeviceSetStatus { device, status } => {
                buf.put_u8(4);
                device.write(buf);
                status.write(buf);
            }
            Self::DeviceRotateKey { device, key } => {
                buf.put_u8(5);
                device.write(buf);
                key.write(buf);
            }
            Self::DeviceTransfer { device, to } => {
                buf.put_u8(6);
                device.write(buf);
                to.write(buf);
            }
        }
    }
}

impl EncodeSize for TxBody {
    fn encode_size(&self) -> usize {
        1 + match self {
            Self::Transfer {
                to,
                asset,
                amount,
                memo,
            }
            | Self::Mint {
                to,
                asset,
                amount,
                memo,
            } => to.encode_size() + asset.encode_size() + amount.encode_size() + memo.encode_size(),
            Self::Burn {
                asset,
                amount,
                memo,
            } => asset.encode_size() + amount.encode_size() + memo.encode_size(),
            Self::DeviceRegister { device, key, meta } => {
                device.encode_size() + key.encode_size() + meta.encode_size()
            }
            Self::DeviceSetStatus { device, status } => device.encode_size() + status.encode_size(),
            Self::DeviceRotateKey { device, key } => device.encode_size() + key.encode_size(),
            Self::DeviceTransfer { device, to } => device.encode_size() + to.encode_size(),
        }
    }
}

impl Read for TxBody {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        match u8::read(buf)? {
            0 => Ok(Self::Transfer {
                to: AccountId::read(buf)?,
                asset: AssetCode::read(buf)?,
                amount: Amount::read(buf)?,
                memo: Memo::read(buf)?,
            }),
            1 => Ok(Self::Mint {
                to: AccountId::read(buf)?,
                asset: AssetCode::read(buf)?,
                amount: Amount::read(buf)?,
                memo: Memo::read(buf)?,
            }),
            2 => Ok(Self::Burn {
                asset: AssetCode::read(buf)?,
                amount: Amount::read(buf)?,
                memo: Memo::read(buf)?,
            }),
            3 => Ok(Self::DeviceRegister {
                device: DeviceId::read(buf)?,
                key: PublicKey::read(buf)?,
                meta: DeviceMeta::read(buf)?,
            }),
            4 => Ok(Self::DeviceSetStatus {
                device: DeviceId::read(buf)?,
                status: DeviceStatus::read(buf)?,
            }),
            5 => Ok(Self::DeviceRotateKey {
                device: DeviceId::read(buf)?,
                key: PublicKey::read(buf)?,
            }),
            6 => Ok(Self::DeviceTransfer {
                device: DeviceId::read(buf)?,
                to: AccountId::read(buf)?,
            }),
            t => Err(CodecError::InvalidEnum(t)),
        }
    }
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
