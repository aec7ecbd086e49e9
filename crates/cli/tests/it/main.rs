//! End-to-end tests: real `verity` processes on 127.0.0.1, driven only through the CLI and the
//! HTTP API, as a user would.

mod badinput;
mod bench;
mod chaos;
mod devices;
mod harness;
mod money;
mod mqtt;
mod network;
mod refusals;
