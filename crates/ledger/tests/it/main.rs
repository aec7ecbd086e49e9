//! Integration tests of the ledger through its public interface: blocks of signed transactions
//! executed against state, the way a node drives it.
//!
//! `harness` holds the shared fixtures; each other module is one area of behaviour, and `props`
//! checks the ledger's invariants over random sequences of payments and cheque operations.

mod cheques;
mod freeze;
mod harness;
mod multisig;
mod paper;
mod props;
mod store;
mod tiers;
