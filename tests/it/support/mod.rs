//! What the integration tests share. Each part serves one group of tests and not every test
//! uses all of it, hence `dead_code` is allowed here and nowhere else.
//! - [`api`]: a real server on 127.0.0.1:0 over a temporary data directory, and its clients.
//! - [`cli`]: the binary under test, run without the environment's server and token.
//! - [`commands`]: command requests and a server seeded with two parties and a source.
//! - [`domain`]: builders of domain commands and the given/when/then helpers of the deciders.
//! - [`log`]: temporary logs, drafts and requests, a deterministic random generator.
//! - [`projections`]: a log with the read models over it, and the commands the read-model tests
//!   record.
//! - [`tamper`]: a careful forger's rewrites of records, tiles and checkpoints.

#![allow(dead_code)]

pub mod api;
pub mod cli;
pub mod commands;
pub mod domain;
pub mod log;
pub mod projections;
pub mod tamper;
