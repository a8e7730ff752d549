//! The binary's own modules: what only the command line needs (anyhow is allowed here, not in
//! the library).
//! - `read`: the reading verbs over gRPC (`relation`, `history`, `tail`, `show`, `list`).
//! - `record`: recording verbs, one per command (`party register`, `meeting held`, ...).
//! - `demo`: `dipledger demo`.

pub mod demo;
pub mod read;
pub mod record;

use std::time::Duration;

use anyhow::Context;
use tonic::transport::Channel;

/// The server every client verb talks to unless `--server` (or `DIPLEDGER_SERVER`) says otherwise.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:50051";

/// How long a client verb waits for the server to accept its connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection to `server` (a URI such as `http://127.0.0.1:50051`).
pub async fn connect(server: &str) -> anyhow::Result<Channel> {
    Channel::from_shared(server.to_owned())
        .with_context(|| format!("--server must be a URI such as {DEFAULT_SERVER}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .connect()
        .await
        .with_context(|| format!("connecting to {server}"))
}
