//! A Verity validator node.

pub mod api;
pub mod api_money;
pub mod chain;
pub mod cheque_index;
pub mod config;
pub mod data_format;
pub mod engine;
pub mod gossip;
pub mod index;
pub mod index_store;
pub mod ingest;
pub mod mqtt;
pub mod pacing;
pub mod pool;
pub mod readings;
pub mod recent;
pub mod runner;
pub mod tx_sigs;
