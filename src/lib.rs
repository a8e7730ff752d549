//! dipledger: an event-sourced, append-only ledger of diplomatic activity.
//!
//! Layers (imports point down):
//! - [`log`]: the append-only event log on sled; the only module that knows sled.
//! - [`domain`]: pure commands, events and rules; no IO.
//! - [`api`]: the gRPC API (tonic/prost); the only module that knows them.
//! - [`encoding`]: the one frozen binary encoding (bincode 2) used for stored bytes.
pub mod api;
pub mod benchmark;
pub mod domain;
pub mod encoding;
pub mod log;
