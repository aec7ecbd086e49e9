//! Verity's wire and ledger types: identifiers, keys and signatures, transactions, blocks,
//! the genesis document and Merkle commitments, each with a canonical binary encoding and
//! explicit size limits. This crate performs no I/O.

pub mod block;
pub mod device;
pub mod genesis;
pub mod gossip;
pub mod hash;
pub mod ids;
pub mod keys;
pub mod merkle;
pub mod proof;
pub mod reading;
pub mod receipt;
pub mod tx;

pub use block::{Block, Header};
pub use device::{DeviceId, DeviceMeta, DeviceStatus};
pub use genesis::{Genesis, Role};
pub use hash::Hash;
pub use ids::{AccountId, Amount, AssetCode, ChequeNumber, Memo, Nonce, OrgId, TierId};
pub use keys::{Algorithm, KeyFile, PublicKey, SecretKey, Signature};
pub use reading::{Reading, ReadingError, RejectCode};
pub use tx::{SignedTransaction, Transaction, TxBody};
