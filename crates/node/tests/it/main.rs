//! Integration tests of the node crate: deterministic simulations of whole networks.

mod blocks;
mod pool;
mod sim;
