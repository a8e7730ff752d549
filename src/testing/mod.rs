//! What tests and benchmarks share, compiled only for tests and with the `test-hooks` feature
//! (never in a release build of the product):
//! - [`projections_bench`]: a generated log of meetings and commitments, and the read-model
//!   benchmark over it (`dipledger-bench projections`).

pub mod projections_bench;
