//! A Verity validator node.

pub mod chain;
pub mod config;
pub mod index;
pub mod pool;
pub mod engine;
pub mod gossip;
pub mod api;
pub mod runner;
