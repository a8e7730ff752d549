//! dipledger: an event-sourced, append-only ledger of diplomatic activity.
//!
//! Layers (imports point down):
//! - [`api`]: the gRPC API (tonic/prost) and server; the only module that knows them.
//! - [`ledger`]: the write path: command -> decide -> durable append.
//! - [`projections`]: read models folded from the log, with as-of queries.
//! - [`log`]: the append-only event log on sled (read models keep their own sled trees).
//! - [`domain`]: pure commands, events and rules; no IO.
//! - [`encoding`]: the one frozen binary encoding (bincode 2) used for stored bytes.
//!
//! Tools over those layers: [`analyst`] (CAMEO/PLOVER exports), [`demo`] (`dipledger demo`),
//! [`benchmark`] (in-process
//! benchmarks), [`loadgen`] (the gRPC load generator). The binary (`src/main.rs`) is a thin CLI.
pub mod analyst;
pub mod api;
pub mod benchmark;
pub mod demo;
pub mod domain;
pub mod encoding;
pub mod ledger;
pub mod loadgen;
pub mod log;
pub mod projections;
