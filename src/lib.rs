//! dipledger: an event-sourced, append-only ledger of diplomatic activity.
//!
//! Layers (imports point down):
//! - [`api`]: the gRPC API (tonic/prost) and server; the only module that knows them.
//! - [`auth`]: principals, roles, bearer tokens and the authorization layer the server puts in
//!   front of every service.
//! - [`ledger`]: the write path: command -> decide -> durable append.
//! - [`projections`]: read models folded from the log, with as-of queries.
//! - [`log`]: the append-only event log on sled. It stores opaque payloads and knows no
//!   diplomacy: it imports nothing from [`domain`].
//! - [`domain`]: pure commands, events and rules; no IO.
//! - [`time`]: instants and their precision; [`encoding`]: the one frozen binary encoding
//!   (bincode 2) used for stored bytes. Both sit below every other module.
//!
//! Over those layers: [`analyst`] (CAMEO/PLOVER exports). The binary (`src/main.rs` and
//! `src/cli/`: benchmarks, the load generator, the demo) is a thin CLI over this library.
pub mod analyst;
pub mod api;
pub mod audit;
pub mod auth;
pub mod domain;
pub mod encoding;
pub mod ledger;
pub mod log;
pub mod merkle;
mod priority;
pub mod projections;
pub mod sample;
#[cfg(any(test, feature = "test-hooks"))]
pub mod testing;
pub mod time;
