//! The binary's own modules: what only the command line needs (anyhow is allowed here, not in
//! the library).
//! - `read`: the reading verbs over gRPC (`relation`, `history`, `tail`, `show`, `list`).
//! - `record`: recording verbs, one per command (`party register`, `meeting held`, ...).
//! - `audit`: `dipledger audit ...`: verifier key, proofs, offline verification, witness.
//! - `demo`: `dipledger demo`.
//! - `export`: `dipledger export`, offline or from a server (`--server`).
//! - `progress`: the progress bars of the long offline verbs.
//! - `token`: `dipledger token create|list|revoke` on a data directory's token file.

pub mod audit;
pub mod demo;
pub mod export;
pub mod progress;
pub mod read;
pub mod record;
pub mod token;

use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// The bearer token every client verb sends (`--token` or `DIPLEDGER_TOKEN`), set once by
/// `main` before any verb runs.
static TOKEN: OnceLock<Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>> = OnceLock::new();

/// Sets the token client verbs send; a token that is not valid header text is refused here.
pub fn set_token(token: Option<&str>) -> anyhow::Result<()> {
    let value = token
        .map(|token| format!("Bearer {}", token.trim()).parse())
        .transpose()
        .map_err(|_| {
            anyhow::anyhow!(
                "--token (or DIPLEDGER_TOKEN) is not a token: it has characters a header cannot carry"
            )
        })?;
    let _ = TOKEN.set(value);
    Ok(())
}

/// The log position read verbs wait for the read models to have applied (`--min-position`), set
/// once by `main`; 0 waits for nothing.
static MIN_POSITION: OnceLock<u64> = OnceLock::new();

/// Sets the position read verbs wait for (read your own write: the position a recording verb
/// printed).
pub fn set_min_position(position: Option<u64>) {
    let _ = MIN_POSITION.set(position.unwrap_or(0));
}

/// The position read verbs wait for (0: none).
pub(crate) fn min_position() -> u64 {
    MIN_POSITION.get().copied().unwrap_or(0)
}

/// The CA an https:// server's certificate must chain to (`--ca-cert`), set once by `main`.
static CA_CERT: OnceLock<Option<Vec<u8>>> = OnceLock::new();

/// Reads the CA certificate client verbs trust for https:// servers.
pub fn set_ca_cert(path: Option<&std::path::Path>) -> anyhow::Result<()> {
    let pem = path
        .map(|path| {
            std::fs::read(path).with_context(|| format!("--ca-cert {}: cannot read it", path.display()))
        })
        .transpose()?;
    let _ = CA_CERT.set(pem);
    Ok(())
}

/// Adds `authorization: Bearer <token>` to every call when a token was given.
#[derive(Debug, Clone, Copy)]
pub struct BearerToken;

impl tonic::service::Interceptor for BearerToken {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(Some(value)) = TOKEN.get() {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// What client verbs talk through: a channel that sends the token.
pub type Connection = InterceptedService<Channel, BearerToken>;

/// The server every client verb talks to unless `--server` (or `DIPLEDGER_SERVER`) says otherwise.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:50051";

/// How long a client verb waits for the server to accept its connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection to `server` (a URI such as `http://127.0.0.1:50051`). When nothing listens
/// there, the error says so, with the address, and how to start a server.
pub async fn connect(server: &str) -> anyhow::Result<Connection> {
    let mut endpoint = Channel::from_shared(server.to_owned())
        .with_context(|| format!("--server must be a URI such as {DEFAULT_SERVER}"))?
        .connect_timeout(CONNECT_TIMEOUT);
    if server.starts_with("https://") {
        let Some(Some(ca)) = CA_CERT.get() else {
            anyhow::bail!("--server {server} is https: give the CA its certificate chains to with --ca-cert FILE (or DIPLEDGER_CA_CERT)");
        };
        let tls = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(ca));
        endpoint = endpoint
            .tls_config(tls)
            .with_context(|| format!("TLS for {server}"))?;
    }
    let connected = endpoint.connect().await;
    let channel = connected.map_err(|error| {
        let mut causes = std::iter::successors(Some(&error as &(dyn std::error::Error + 'static)), |cause| {
            cause.source()
        });
        let refused = causes.any(|cause| {
            cause
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
        });
        if refused {
            anyhow::anyhow!(
                "no dipledger server at {server} (connection refused): start one with `dipledger serve`, \
                 or give the address of a running one with --server (or DIPLEDGER_SERVER)"
            )
        } else {
            anyhow::Error::new(error).context(format!("connecting to {server}"))
        }
    })?;
    Ok(InterceptedService::new(channel, BearerToken))
}

/// A server's refusal as the CLI prints it: the code and the message, and for a malformed
/// request every field violation the server listed (one per line; past the server's cap, its
/// `and N more`).
pub fn describe(status: tonic::Status) -> anyhow::Error {
    use tonic_types::StatusExt;
    let violations = status
        .get_details_bad_request()
        .map(|bad_request| bad_request.field_violations)
        .unwrap_or_default();
    let code = dipledger::api::status::code_name(status.code());
    if status.code() != tonic::Code::InvalidArgument || violations.len() < 2 {
        return anyhow::anyhow!("{code}: {}", status.message());
    }
    let mut text = format!("{code}: invalid request:");
    for violation in violations {
        if violation.field.is_empty() {
            text.push_str(&format!("\n  {}", violation.description));
        } else {
            text.push_str(&format!("\n  {}: {}", violation.field, violation.description));
        }
    }
    anyhow::anyhow!(text)
}

/// An error and its causes on one line, each cause once: several layers print their source in
/// their own message too, which `{:#}` would repeat (`tcp connect error: tcp connect error`).
pub fn render(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_described_with_the_grpc_spelling_of_its_code() {
        let described = describe(tonic::Status::not_found("party FRNC is not registered"));
        assert_eq!(described.to_string(), "NOT_FOUND: party FRNC is not registered");
        let described = describe(tonic::Status::invalid_argument("invalid request: code: bad"));
        assert_eq!(
            described.to_string(),
            "INVALID_ARGUMENT: invalid request: code: bad"
        );
        assert_eq!(
            dipledger::api::status::code_name(tonic::Code::ResourceExhausted),
            "RESOURCE_EXHAUSTED"
        );
        assert_eq!(
            dipledger::api::status::code_name(tonic::Code::FailedPrecondition),
            "FAILED_PRECONDITION"
        );
    }

    #[test]
    fn render_names_each_cause_once() {
        let error = anyhow::anyhow!("tcp connect error").context("tcp connect error");
        assert_eq!(render(&error), "tcp connect error");
        let error = anyhow::anyhow!("connection refused").context("connecting to http://127.0.0.1:1");
        assert_eq!(
            render(&error),
            "connecting to http://127.0.0.1:1: connection refused"
        );
    }
}
