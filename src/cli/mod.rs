//! The binary's own modules: what only the command line needs (anyhow is allowed here, not in
//! the library).
//! - `benchmark`: in-process benchmarks (`bench-log`, `bench-ledger`).
//! - `loadgen`: the gRPC load generator (`bench --target`).
//! - `demo`: `dipledger demo`.

pub mod benchmark;
pub mod demo;
pub mod loadgen;
