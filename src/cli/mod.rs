//! The binary's own modules: what only the command line needs (anyhow is allowed here, not in
//! the library).
//! - `benchmark`: in-process benchmarks (`bench-log`, `bench-ledger`).
//! - `client`: client verbs over gRPC (`relation`, `history`, `tail`).
//! - `record`: recording verbs, one per command (`party register`, `meeting held`, ...).
//! - `loadgen`: the gRPC load generator (`bench --target`).
//! - `demo`: `dipledger demo`.

pub mod benchmark;
pub mod client;
pub mod demo;
pub mod loadgen;
pub mod record;
