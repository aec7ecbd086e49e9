//! Fuzzing Verity's decoders of untrusted bytes: what each fuzz target checks on one input
//! ([targets]), the fixed network the targets check against ([fixture]), and a guard that turns
//! an oversized allocation into a crash libFuzzer reports ([alloc_guard]).
//!
//! The targets in `fuzz_targets/` are one line each, so the checks are ordinary library code:
//! the seed generator (`examples/seeds.rs`) uses the same fixture, and a reproducer can be
//! replayed by any target binary (`fuzz/target/<triple>/release/<target> <file>`).

pub mod alloc_guard;
pub mod fixture;
pub mod targets;
