//! The gRPC server: services, gRPC health (`grpc.health.v1`), server reflection (v1 and
//! v1alpha), explicit message size limits, and graceful shutdown.
//!
//! Requests tonic itself cannot decode (over [`MAX_REQUEST_BYTES`], or not protobuf) are answered
//! RESOURCE_EXHAUSTED and INVALID_ARGUMENT by one layer over every service
//! (`api::decode_errors`), like the server's own size and input errors.
//!
//! Entry points:
//! - [`serve`]: opens the log in a data directory, binds, serves until `shutdown` resolves
//!   (what `dipledger serve` runs).
//! - [`serve_with_listener`]: serves an already open [`Log`] on a bound listener.
//! - [`RunningServer::start`]: starts a server in the background (bind `127.0.0.1:0` and read
//!   [`RunningServer::local_addr`]), for tests and embedding.
//!
//! Shutdown: when the shutdown future resolves, health turns NOT_SERVING, every subscription
//! and export ends its stream with UNAVAILABLE (a new one is refused with it while they end),
//! then tonic stops accepting requests and waits for in-flight ones (commits included) to
//! finish; connections still open after [`SHUTDOWN_GRACE`] (a client that stopped
//! reading) are dropped. The log closes when its last handle is dropped, after the writer has
//! finished every queued append.
//!
//! Security: every service sits behind `auth::layer::AuthLayer` (bearer tokens once the data
//! directory has one; development mode otherwise, announced loudly at startup). TLS (rustls
//! through tonic) with optional client certificates comes from [`TlsOptions`]. A non-loopback
//! address is served only with TLS and authentication both on, or with `insecure` said
//! explicitly ([`check_listen`]).

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;

use super::audit::Audit;
use super::commands::Commands;
use super::decode_errors::DecodeErrorsLayer;
use super::event_store::{EventStore, MAX_SUBSCRIPTIONS};
use super::frames::EventStoreRoutes;
use super::health::HealthWatch;
use super::metrics::{serve_metrics, ServerMetrics, Sources};
use super::monitor::Monitor;
use super::observe::ObserveLayer;
use super::pb;
use super::pb::audit_service_server::AuditServiceServer;
use super::pb::command_service_server::CommandServiceServer;
use super::pb::query_service_server::QueryServiceServer;
use super::pb::token_service_server::TokenServiceServer;
use super::query::Query;
use super::tokens::Tokens;
use crate::audit::{Checkpoints, LedgerKeys};
use crate::auth::layer::AuthLayer;
use crate::auth::tokens::TokenStore;
use crate::ledger::Ledger;
use crate::log::{Log, LogConfig};
use crate::projections::Projections;

/// Default listen address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "./data";
/// Largest request message the server decodes (a batch of commands at the log's 4 MiB payload
/// limit, with headroom for the proto encoding).
pub const MAX_REQUEST_BYTES: usize = 8 * 1024 * 1024;
/// Largest response message the server encodes (ReadAll/ReadStream pages stop adding events at
/// `event_store::MAX_PAGE_BYTES`, below this).
pub const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;
const _: () = assert!(
    crate::projections::store::MAX_PAGE_BYTES + crate::encoding::MAX_STATE_BYTES <= MAX_RESPONSE_BYTES,
    "a list page ends past MAX_PAGE_BYTES by at most one row, which is no larger than its state"
);
/// How long shutdown waits for open requests and streams before dropping connections.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A non-loopback address without TLS and authentication (and without `insecure`).
    #[error(
        "refusing to listen on {0}: a non-loopback address needs TLS (--tls-cert and --tls-key) and authentication (a token in the data directory, or --require-auth), or --insecure to serve it without them"
    )]
    NotLoopback(SocketAddr),
    /// The TLS material is not usable.
    #[error("TLS: {0}")]
    Tls(String),
    /// The log could not be opened.
    #[error("opening the log in {dir}: {source}")]
    OpenLog {
        /// The data directory.
        dir: PathBuf,
        /// Why.
        source: crate::log::LogError,
    },
    /// The read models could not be opened.
    #[error("opening the read models: {0}")]
    OpenReadModels(#[from] crate::projections::ProjectionError),
    /// Binding the address failed.
    #[error("listening on {address}: {source}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The reflection service could not be built from the descriptors.
    #[error("building the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The ledger's identity or signing key could not be read or made.
    #[error("the signing key: {0}")]
    Keys(#[from] crate::audit::keys::KeyError),
    /// The stored checkpoints could not be read.
    #[error("checkpoints: {0}")]
    Checkpoints(#[from] crate::audit::checkpoints::CheckpointError),
    /// The token file could not be read.
    #[error("reading the tokens: {0}")]
    Tokens(#[from] crate::auth::tokens::TokenFileError),
    /// The gRPC transport failed.
    #[error("serving gRPC: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// A task of the server panicked or was cancelled.
    #[error("server task: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// Another I/O error.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Tunables of a server over an open log.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Most concurrent subscriptions (RESOURCE_EXHAUSTED beyond).
    pub max_subscriptions: usize,
    /// Longest time between two snapshots of the read models.
    pub snapshot_interval: std::time::Duration,
    /// How far past the server's clock a command's valid time may lie.
    pub future_allowance: std::time::Duration,
    /// Ask every caller for a token even while the data directory has none yet.
    pub require_auth: bool,
    /// Serve TLS instead of plain text.
    pub tls: Option<TlsOptions>,
    /// Requests in flight and commands per second of each authenticated principal.
    pub principal_limits: crate::auth::limits::PrincipalLimits,
    /// Which allowed calls the access log records besides refusals and token changes.
    pub access_log: crate::auth::access_log::AccessLevel,
    /// The checkpoint signing key (PKCS#8 PEM) instead of the data directory's own.
    pub signing_key: Option<PathBuf>,
    /// When checkpoints are signed.
    pub checkpoint_policy: crate::audit::CheckpointPolicy,
    /// Test hook: the read models' runner waits at this gate before each step (a test sees
    /// them replaying for as long as it holds it).
    #[cfg(any(test, feature = "test-hooks"))]
    pub read_model_gate: Option<crate::projections::RunnerGate>,
    /// Test hook: shutdown waits at this gate once every subscription and export has ended,
    /// before tonic stops accepting calls (a test makes calls during shutdown while it holds
    /// it; the transport's own refusal would race with them otherwise).
    #[cfg(any(test, feature = "test-hooks"))]
    pub shutdown_gate: Option<ShutdownGate>,
    /// Serve Prometheus metrics (`GET /metrics`) on this address (off when None).
    pub metrics_listen: Option<SocketAddr>,
}

/// Test hook: a gate a shutdown waits at before tonic stops accepting calls
/// ([`ServerOptions::shutdown_gate`]). Closed when made; [`ShutdownGate::open`] lets every
/// shutdown through for good.
#[cfg(any(test, feature = "test-hooks"))]
#[derive(Debug, Clone)]
pub struct ShutdownGate(Arc<watch::Sender<bool>>);

#[cfg(any(test, feature = "test-hooks"))]
impl Default for ShutdownGate {
    fn default() -> Self {
        ShutdownGate(Arc::new(watch::channel(false).0))
    }
}

#[cfg(any(test, feature = "test-hooks"))]
impl ShutdownGate {
    /// Lets shutdown go on.
    pub fn open(&self) {
        self.0.send_replace(true);
    }

    async fn passed(&self) {
        let _ = self.0.subscribe().wait_for(|open| *open).await;
    }
}

/// TLS for the server: its certificate chain and key (PEM), and optionally the CA that client
/// certificates must chain to.
#[derive(Clone)]
pub struct TlsOptions {
    /// The server's certificate chain, PEM.
    pub cert_pem: Vec<u8>,
    /// The server's private key, PEM.
    pub key_pem: Vec<u8>,
    /// The CA client certificates are verified against, PEM.
    pub client_ca_pem: Option<Vec<u8>>,
    /// Refuse clients without a certificate from `client_ca_pem`.
    pub require_client_cert: bool,
    /// The certificate and key files to re-read on SIGHUP (`dipledger serve` sets them).
    pub reload_from: Option<(PathBuf, PathBuf)>,
}

impl std::fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOptions")
            .field("cert_pem_bytes", &self.cert_pem.len())
            .field("key_pem", &"(hidden)")
            .field("client_ca", &self.client_ca_pem.is_some())
            .field("require_client_cert", &self.require_client_cert)
            .finish()
    }
}

impl TlsOptions {
    /// The server's TLS acceptor for these certificates.
    fn acceptor(&self) -> Result<super::tls::Acceptor, ServerError> {
        super::tls::Acceptor::new(
            &self.cert_pem,
            &self.key_pem,
            self.client_ca_pem.as_deref(),
            self.require_client_cert,
        )
        .map_err(ServerError::Tls)
    }
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_subscriptions: MAX_SUBSCRIPTIONS,
            snapshot_interval: crate::projections::snapshot::SNAPSHOT_INTERVAL,
            future_allowance: crate::ledger::DEFAULT_FUTURE_ALLOWANCE,
            require_auth: false,
            tls: None,
            principal_limits: Default::default(),
            access_log: Default::default(),
            signing_key: None,
            checkpoint_policy: Default::default(),
            #[cfg(any(test, feature = "test-hooks"))]
            read_model_gate: None,
            #[cfg(any(test, feature = "test-hooks"))]
            shutdown_gate: None,
            metrics_listen: None,
        }
    }
}

/// What `dipledger serve` needs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on: loopback, or any with TLS and authentication (see [`check_listen`]).
    pub listen: SocketAddr,
    /// The data directory of the log.
    pub data_dir: PathBuf,
    /// Least free disk space under the data directory to open and to accept writes (see
    /// `LogConfig::min_free_disk`).
    pub min_free_disk: u64,
    /// sled's page-cache size for the log (see `LogConfig::cache_capacity_bytes`).
    pub log_cache_bytes: u64,
    /// Server tunables.
    pub options: ServerOptions,
    /// How often the log's checkpointer flushes sled (see `LogConfig::checkpoint_interval`).
    pub checkpoint_interval: std::time::Duration,
    /// Serve a non-loopback address without TLS or authentication (said explicitly, warned).
    pub insecure: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: DEFAULT_LISTEN.parse().expect("valid default address"),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            min_free_disk: crate::log::limits::DEFAULT_MIN_FREE_DISK_BYTES,
            log_cache_bytes: crate::log::limits::DEFAULT_CACHE_CAPACITY_BYTES,
            options: ServerOptions::default(),
            checkpoint_interval: crate::log::limits::CHECKPOINT_INTERVAL,
            insecure: false,
        }
    }
}

/// Checks that `listen` is a loopback address: without TLS tokens would cross the network in
/// clear text, so nothing else is safe.
pub fn check_loopback(listen: SocketAddr) -> Result<(), ServerError> {
    if !listen.ip().is_loopback() {
        return Err(ServerError::NotLoopback(listen));
    }
    Ok(())
}

/// Checks that the server may listen on `listen`: loopback always; any other address only with
/// TLS and authentication both on (tokens would otherwise cross the network in clear text, or
/// anyone could write), unless `insecure` is said explicitly.
pub fn check_listen(listen: SocketAddr, tls: bool, auth: bool, insecure: bool) -> Result<(), ServerError> {
    if (tls && auth) || insecure {
        return Ok(());
    }
    check_loopback(listen)
}

/// Opens the log in `config.data_dir`, listens on `config.listen` and serves until `shutdown`
/// resolves, then shuts down gracefully.
pub async fn serve(
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    // A data directory this start creates is removed again if the start fails: a mistyped flag
    // must leave nothing behind.
    let created = !config.data_dir.exists();
    let (log, listener, metrics_listener) = match start(&config).await {
        Ok(started) => started,
        Err(error) => {
            if created {
                let _ = std::fs::remove_dir_all(&config.data_dir);
            }
            return Err(error);
        }
    };
    let recovered = log.recovery_report();
    eprintln!(
        "dipledger: data directory {}, head position {} ({} events replayed from {} journal frames{})",
        std::fs::canonicalize(&config.data_dir)
            .unwrap_or_else(|_| config.data_dir.clone())
            .display(),
        log.head(),
        recovered.replayed_events,
        recovered.replayed_frames,
        match recovered.truncated_bytes {
            0 => String::new(),
            bytes => format!(", a torn unacknowledged write of up to {bytes} bytes cut off"),
        }
    );
    let result = serve_bound(
        log.clone(),
        Ledger::new(log),
        listener,
        metrics_listener,
        config.options,
        shutdown,
    )
    .await;
    eprintln!("dipledger: stopped");
    result
}

/// What `serve` does before serving: the listening rules, the log opened, the addresses bound.
/// On an error the log is closed again.
async fn start(config: &ServerConfig) -> Result<(Log, TcpListener, Option<TcpListener>), ServerError> {
    let data_dir = config.data_dir.clone();
    let auth = TokenStore::open(&data_dir, config.options.require_auth)?.auth_required();
    check_listen(config.listen, config.options.tls.is_some(), auth, config.insecure)?;
    if config.insecure && !config.listen.ip().is_loopback() && !(auth && config.options.tls.is_some()) {
        eprintln!(
            "dipledger: WARNING: --insecure: serving {} without {}",
            config.listen,
            if auth { "TLS" } else { "TLS or authentication" }
        );
    }
    let log_config = LogConfig::new(&data_dir)
        .checkpoint_interval(config.checkpoint_interval)
        .min_free_disk(config.min_free_disk)
        .cache_capacity_bytes(config.log_cache_bytes);
    let log = tokio::task::spawn_blocking(move || Log::open(log_config))
        .await?
        .map_err(|source| ServerError::OpenLog {
            dir: data_dir.clone(),
            source,
        })?;
    let bound = async {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| ServerError::Listen {
                address: config.listen,
                source,
            })?;
        Ok((listener, bind_metrics(config.options.metrics_listen).await?))
    };
    match bound.await {
        Ok((listener, metrics_listener)) => Ok((log, listener, metrics_listener)),
        Err(error) => {
            // Closed off the async threads (the writer finishes and its threads end).
            tokio::task::spawn_blocking(move || drop(log)).await?;
            Err(error)
        }
    }
}

/// A listen address as the flags take it: `IP:PORT`, or `HOST:PORT` with the host name resolved
/// (`localhost:50051` is `127.0.0.1:50051`; an IPv4 address is taken first when a name has
/// both). The loopback rule ([`check_listen`]) applies to the address it resolves to.
pub fn resolve_listen(text: &str) -> Result<SocketAddr, String> {
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Ok(address);
    }
    use std::net::ToSocketAddrs;
    let addresses: Vec<SocketAddr> = text
        .to_socket_addrs()
        .map_err(|error| {
            format!("{text:?} is not an address such as 127.0.0.1:50051 or localhost:50051 ({error})")
        })?
        .collect();
    addresses
        .iter()
        .find(|address| address.is_ipv4())
        .or(addresses.first())
        .copied()
        .ok_or_else(|| format!("{text:?} resolves to no address"))
}

/// Serves `log` on `listener` until `shutdown` resolves, then shuts down gracefully (see the
/// module docs). Does not check that the listener is on loopback. Binds
/// `options.metrics_listen` when given.
pub async fn serve_with_listener(
    log: Log,
    listener: TcpListener,
    options: ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let metrics_listener = bind_metrics(options.metrics_listen).await?;
    serve_bound(
        log.clone(),
        Ledger::new(log),
        listener,
        metrics_listener,
        options,
        shutdown,
    )
    .await
}

/// Binds the metrics address, when one is given.
async fn bind_metrics(address: Option<SocketAddr>) -> Result<Option<TcpListener>, ServerError> {
    let Some(address) = address else {
        return Ok(None);
    };
    let listener = TcpListener::bind(address)
        .await
        .map_err(|source| ServerError::Listen { address, source })?;
    Ok(Some(listener))
}

/// [`serve_with_listener`] with the metrics listener already bound.
async fn serve_bound(
    log: Log,
    ledger: Ledger,
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    options: ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let log_dir = log.data_dir().to_owned();
    let shown_dir = std::fs::canonicalize(&log_dir).unwrap_or_else(|_| log_dir.clone());
    let address = listener.local_addr()?;
    let tokens = Arc::new(TokenStore::open(&log_dir, options.require_auth)?);
    if tokens.auth_required() {
        eprintln!(
            "dipledger: listening on {address} (loopback only); authentication on: every call but health needs a bearer token ({})",
            shown_dir.join(crate::auth::tokens::TOKENS_FILE).display()
        );
    } else {
        eprintln!("dipledger: ================================================================");
        eprintln!("dipledger: DEVELOPMENT MODE: NO AUTHENTICATION, NO TLS.");
        eprintln!("dipledger: listening on {address} (loopback only); anyone on this machine can");
        eprintln!("dipledger: read and write the ledger (`dipledger token create` turns");
        eprintln!("dipledger: authentication on for this data directory, for good).");
        eprintln!("dipledger: ================================================================");
    }
    let (stop_sender, stop) = watch::channel(false);
    let (health, health_service) = tonic_health::server::health_reporter();
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let projections = open_read_models(&log, &options).await?;
    match projections.snapshot_load() {
        crate::projections::SnapshotLoad::Empty => {
            eprintln!("dipledger: read models: no snapshot, building from the log")
        }
        crate::projections::SnapshotLoad::Loaded { records, bytes, seconds } => eprintln!(
            "dipledger: read models: snapshot loaded ({records} records, {bytes} bytes, {seconds:.2} s), replaying the log from {}",
            crate::projections::ProjectionName::ALL
                .iter()
                .map(|name| projections.checkpoint(*name))
                .min()
                .unwrap_or(0)
        ),
        crate::projections::SnapshotLoad::Discarded(reason) => {
            eprintln!("dipledger: read models: snapshot discarded ({reason}), rebuilding from the log")
        }
    }
    let projections = Arc::new(projections);
    let checkpoints = open_checkpoints(&log, options.signing_key.clone()).await?;
    tokio::spawn(checkpoints.clone().run(options.checkpoint_policy, stop.clone()));
    let audit = AuditServiceServer::new(Audit::new(log.clone(), checkpoints))
        .max_decoding_message_size(MAX_REQUEST_BYTES)
        .max_encoding_message_size(MAX_RESPONSE_BYTES);
    let queries = QueryServiceServer::new(Query::new(projections.clone()))
        .max_decoding_message_size(MAX_REQUEST_BYTES)
        .max_encoding_message_size(MAX_RESPONSE_BYTES);
    ledger.set_future_allowance(options.future_allowance);
    let commands = CommandServiceServer::new(Commands::new(ledger))
        .max_decoding_message_size(MAX_REQUEST_BYTES)
        .max_encoding_message_size(MAX_RESPONSE_BYTES);
    let event_store_service = EventStore::new(log.clone(), options.max_subscriptions, stop.clone());
    let streams = event_store_service.clone();
    #[cfg(any(test, feature = "test-hooks"))]
    let shutdown_gate = options.shutdown_gate.clone();
    let metrics = match metrics_listener {
        Some(metrics_listener) => Some(start_metrics(
            metrics_listener,
            &log,
            &projections,
            &event_store_service,
            &stop,
        )?),
        None => None,
    };
    let event_store = EventStoreRoutes::new(event_store_service);

    let health = HealthWatch::start(health, log.clone(), projections.clone()).await;
    let health = tokio::spawn(health.run(stop.clone()));
    tokio::spawn(Monitor::new(log.clone(), projections.clone()).run(stop.clone()));
    let signal = async move {
        shutdown.await;
        eprintln!("dipledger: shutting down: finishing in-flight requests, closing subscriptions");
        let _ = stop_sender.send(true);
        // Every service NOT_SERVING before tonic stops accepting calls.
        let _ = health.await;
        // Every open subscription and export ends with UNAVAILABLE before tonic stops
        // accepting calls (bounded by SHUTDOWN_GRACE below): meanwhile a new call is answered
        // by its service, UNAVAILABLE for a new stream, rather than refused by the transport
        // (which clients report as a connection error, or as INTERNAL for HTTP/2's GOAWAY).
        streams.streams_ended().await;
        #[cfg(any(test, feature = "test-hooks"))]
        if let Some(gate) = shutdown_gate {
            gate.passed().await;
        }
    };
    let acceptor = options.tls.as_ref().map(TlsOptions::acceptor).transpose()?;
    if let (Some(acceptor), Some(Some(files))) =
        (&acceptor, options.tls.as_ref().map(|t| t.reload_from.clone()))
    {
        tokio::spawn(reload_on_sighup(acceptor.clone(), files, stop.clone()));
    }
    let token_service = TokenServiceServer::new(Tokens::new(tokens.clone()))
        .max_decoding_message_size(MAX_REQUEST_BYTES)
        .max_encoding_message_size(MAX_RESPONSE_BYTES);
    let router = Server::builder()
        .layer(ObserveLayer::new(metrics))
        .layer(DecodeErrorsLayer::new(MAX_REQUEST_BYTES))
        .layer(AuthLayer::new(tokens, options.principal_limits).with_access_level(options.access_log))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(commands)
        .add_service(queries)
        .add_service(event_store)
        .add_service(token_service)
        .add_service(audit);
    let server: std::pin::Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>> =
        match acceptor {
            None => {
                Box::pin(router.serve_with_incoming_shutdown(
                    TcpIncoming::from(listener).with_nodelay(Some(true)),
                    signal,
                ))
            }
            Some(acceptor) => {
                Box::pin(router.serve_with_incoming_shutdown(acceptor.incoming(listener), signal))
            }
        };
    let mut grace = stop.clone();
    let grace_expired = async move {
        let _ = grace.wait_for(|stopping| *stopping).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        result = server => result?,
        _ = grace_expired => {
            eprintln!("dipledger: connections still open after {SHUTDOWN_GRACE:?}; dropping them");
        }
    }
    // Stop the read-model runner (it finishes its batch) off the async threads.
    tokio::task::spawn_blocking(move || drop(projections)).await?;
    Ok(())
}

/// Re-reads the certificate and key files on every SIGHUP until the server stops; a pair
/// that does not load is refused (and said) and the current one stays.
async fn reload_on_sighup(
    acceptor: super::tls::Acceptor,
    files: (PathBuf, PathBuf),
    mut stop: watch::Receiver<bool>,
) {
    let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        eprintln!("dipledger: warning: cannot listen for SIGHUP; certificates reload only on restart");
        return;
    };
    loop {
        tokio::select! {
            _ = hangups.recv() => {}
            _ = stop.wait_for(|stopping| *stopping) => return,
        }
        let (cert, key) = (&files.0, &files.1);
        let loaded = std::fs::read(cert)
            .and_then(|cert_pem| Ok((cert_pem, std::fs::read(key)?)))
            .map_err(|error| error.to_string())
            .and_then(|(cert_pem, key_pem)| acceptor.reload(&cert_pem, &key_pem));
        match loaded {
            Ok(()) => eprintln!(
                "dipledger: SIGHUP: TLS certificate reloaded from {}",
                cert.display()
            ),
            Err(error) => {
                eprintln!("dipledger: SIGHUP: TLS certificate NOT reloaded (the old one stays): {error}")
            }
        }
    }
}

/// The ledger's keys and its checkpoint signer (which signs the head now), off the async threads.
async fn open_checkpoints(log: &Log, signing_key: Option<PathBuf>) -> Result<Checkpoints, ServerError> {
    let log = log.clone();
    let checkpoints = tokio::task::spawn_blocking(move || {
        let keys = LedgerKeys::open(log.data_dir(), signing_key.as_deref())?;
        Checkpoints::open(log, keys).map_err(ServerError::from)
    })
    .await??;
    eprintln!(
        "dipledger: checkpoints signed as {} (verifier key {})",
        checkpoints.origin(),
        checkpoints.verifier().to_vkey()
    );
    if let Some(reason) = checkpoints.refused() {
        eprintln!("dipledger: WARNING: no new checkpoints will be signed: {reason}");
    }
    Ok(checkpoints)
}

/// Starts the metrics endpoint on `listener` (until `stop`), over the server's sources.
fn start_metrics(
    listener: TcpListener,
    log: &Log,
    projections: &Arc<Projections>,
    event_store: &EventStore,
    stop: &watch::Receiver<bool>,
) -> Result<Arc<ServerMetrics>, ServerError> {
    let metrics = Arc::new(ServerMetrics::new());
    let (subscriptions, exports) = (event_store.clone(), event_store.clone());
    metrics.set_sources(Sources {
        log: log.clone(),
        projections: projections.clone(),
        subscriptions: Box::new(move || subscriptions.open_subscriptions()),
        exports: Box::new(move || exports.running_exports()),
    });
    eprintln!("dipledger: metrics on http://{}/metrics", listener.local_addr()?);
    tokio::spawn(serve_metrics(listener, metrics.clone(), stop.clone()));
    Ok(metrics)
}

/// Opens the read models and starts their runner (held at the test hook's gate when given).
async fn open_read_models(log: &Log, options: &ServerOptions) -> Result<Projections, ServerError> {
    let log = log.clone();
    let interval = options.snapshot_interval;
    #[cfg(any(test, feature = "test-hooks"))]
    if let Some(gate) = options.read_model_gate.clone() {
        return Ok(tokio::task::spawn_blocking(move || Projections::open_gated(log, interval, gate)).await??);
    }
    Ok(tokio::task::spawn_blocking(move || Projections::open_with(log, interval)).await??)
}

/// A server running in the background (for tests and embedding).
pub struct RunningServer {
    address: SocketAddr,
    metrics_address: Option<SocketAddr>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServerError>>,
    /// The ledger the CommandService writes through (a test hook).
    #[cfg(any(test, feature = "test-hooks"))]
    ledger: Ledger,
}

impl RunningServer {
    /// Binds `listen` (use `127.0.0.1:0` for any free port) and serves `log` in a background
    /// task of the current runtime.
    pub async fn start(
        log: Log,
        listen: SocketAddr,
        options: ServerOptions,
    ) -> Result<RunningServer, ServerError> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| ServerError::Listen {
                address: listen,
                source,
            })?;
        let address = listener.local_addr()?;
        let metrics_listener = bind_metrics(options.metrics_listen).await?;
        let metrics_address = metrics_listener
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()?;
        let (shutdown, shutdown_signal) = oneshot::channel::<()>();
        let ledger = Ledger::new(log.clone());
        #[cfg(any(test, feature = "test-hooks"))]
        let hooked = ledger.clone();
        let task = tokio::spawn(serve_bound(
            log,
            ledger,
            listener,
            metrics_listener,
            options,
            async move {
                let _ = shutdown_signal.await;
            },
        ));
        Ok(RunningServer {
            address,
            metrics_address,
            shutdown: Some(shutdown),
            task,
            #[cfg(any(test, feature = "test-hooks"))]
            ledger: hooked,
        })
    }

    /// Test hook: the server's own ledger (to make it lose races on purpose with
    /// `Ledger::before_next_append`).
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// The address of the metrics endpoint, when `ServerOptions::metrics_listen` was given.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_address
    }

    /// The URI clients connect to, e.g. `http://127.0.0.1:50051`.
    pub fn uri(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Shuts the server down gracefully and waits until it has stopped.
    pub async fn shutdown(mut self) -> Result<(), ServerError> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        (&mut self.task).await?
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}
