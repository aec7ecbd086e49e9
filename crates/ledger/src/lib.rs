//! Verity's deterministic state machine.
//!
//! Everything that decides ledger state lives here and is a pure function of the state and the
//! block: no clock, no randomness, no I/O besides reading state through [state::StateReader].
//! [store] keeps the authenticated state in commonware-storage's QMDB, including speculative
//! (not yet finalized) blocks.

pub mod accounts;
pub mod cheques;
pub mod devices;
pub mod error;
pub mod execute;
pub mod governance;
pub mod multisig;
pub mod state;
pub mod store;
pub mod telemetry;

pub use error::{BlockError, TxError};
pub use execute::{
    BlockEnv, BuildLimits, Built, Checks, Executed, ReadingReceipt, Receipt, SignatureCheck,
    VerifyAll,
};
pub use telemetry::{ReadingCheck, VerifyReadings};
