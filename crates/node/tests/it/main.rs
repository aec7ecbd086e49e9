//! Integration tests of the node crate: deterministic simulations of whole networks.

mod pool;
mod sim;
