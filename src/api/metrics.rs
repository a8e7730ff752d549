//! The Prometheus endpoint (`serve --metrics-listen ADDR`, off by default): `GET /metrics` on
//! its own address answers the server's metrics in the OpenMetrics text format
//! (prometheus-client, one registry per server). Every metric is listed, with its type and a
//! sample query, in docs/operations.md; a test scrapes the endpoint and compares its names and
//! types with that table.
//!
//! Request metrics are counted by the request layer (`api::observe`) as answers end. The rest
//! is read when a scrape comes (`ServerMetrics::refresh`): the log's head and writer counters,
//! each read model's position and lag, open subscriptions and exports, the bytes of the journal
//! and of sled's two databases on disk, and the process's resident memory. The writer keeps
//! sums and counts, not each commit's figures, so commit group size and fsync latency are
//! exported as counter pairs (events and commits; seconds and fsyncs) whose rates divide into a
//! mean, as a histogram's `_sum` and `_count` would.
//!
//! The HTTP side is a small HTTP/1.1 responder over tokio (one request per connection, the
//! request head at most [`MAX_SCRAPE_REQUEST_BYTES`], read within [`SCRAPE_READ_TIMEOUT`]):
//! nothing but `GET /metrics` is served.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::log::{Log, WriterStats};
use crate::projections::{ProjectionName, Projections};

/// Longest request head a scrape may send.
pub const MAX_SCRAPE_REQUEST_BYTES: usize = 8 * 1024;
/// How long a scrape has to send its request head.
pub const SCRAPE_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Scrapes answered at once; a connection beyond is closed at once (a scraper polls every few
/// seconds, so more means something else is connecting).
pub const MAX_SCRAPE_CONNECTIONS: usize = 16;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    method: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReadModelLabels {
    read_model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DatabaseLabels {
    database: String,
}

type Seconds = Counter<f64, AtomicU64>;

/// Where the figures read at scrape time come from.
pub struct Sources {
    /// The log.
    pub log: Log,
    /// The read models.
    pub projections: Arc<Projections>,
    /// Open subscriptions now.
    pub subscriptions: Box<dyn Fn() -> usize + Send + Sync>,
    /// Running exports now.
    pub exports: Box<dyn Fn() -> usize + Send + Sync>,
}

/// One server's metrics.
pub struct ServerMetrics {
    registry: Registry,
    requests: Family<RpcLabels, Counter>,
    latency: Family<MethodLabels, Histogram, fn() -> Histogram>,
    head: Gauge,
    commits: Counter,
    led_by_appenders: Counter,
    events: Counter,
    fsyncs: Counter,
    fsync_seconds: Seconds,
    checkpoints: Counter,
    checkpoint_seconds: Seconds,
    journal_written: Counter,
    read_model_position: Family<ReadModelLabels, Gauge>,
    read_model_lag: Family<ReadModelLabels, Gauge>,
    subscriptions: Gauge,
    exports: Gauge,
    journal_bytes: Gauge,
    sled_bytes: Family<DatabaseLabels, Gauge>,
    resident: Gauge,
    /// The writer's counters at the last scrape (they are added to the counters as deltas, so
    /// the counters count from the log's open, like the writer's).
    last: Mutex<WriterStats>,
    sources: Mutex<Option<Sources>>,
}

impl std::fmt::Debug for ServerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerMetrics").finish_non_exhaustive()
    }
}

fn latency_histogram() -> Histogram {
    // 0.25 ms .. ~8 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

impl Default for ServerMetrics {
    fn default() -> Self {
        ServerMetrics::new()
    }
}

impl ServerMetrics {
    /// Every metric registered, at zero.
    pub fn new() -> ServerMetrics {
        let mut metrics = ServerMetrics {
            registry: Registry::default(),
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            head: Gauge::default(),
            commits: Counter::default(),
            led_by_appenders: Counter::default(),
            events: Counter::default(),
            fsyncs: Counter::default(),
            fsync_seconds: Seconds::default(),
            checkpoints: Counter::default(),
            checkpoint_seconds: Seconds::default(),
            journal_written: Counter::default(),
            read_model_position: Family::default(),
            read_model_lag: Family::default(),
            subscriptions: Gauge::default(),
            exports: Gauge::default(),
            journal_bytes: Gauge::default(),
            sled_bytes: Family::default(),
            resident: Gauge::default(),
            last: Mutex::new(WriterStats::default()),
            sources: Mutex::new(None),
        };
        metrics.register();
        metrics
    }

    fn register(&mut self) {
        let r = &mut self.registry;
        r.register(
            "dipledger_rpc_requests",
            "gRPC requests answered, by method and status",
            self.requests.clone(),
        );
        r.register(
            "dipledger_rpc_latency_seconds",
            "Time from request to the end of the answer (a stream: how long it ran), by method",
            self.latency.clone(),
        );
        r.register(
            "dipledger_log_head_position",
            "The durable head of the log",
            self.head.clone(),
        );
        r.register(
            "dipledger_log_commits",
            "Group commits applied (sled batches)",
            self.commits.clone(),
        );
        r.register(
            "dipledger_log_commits_led_by_appenders",
            "Group commits a lone appender committed on its own thread (not the writer thread)",
            self.led_by_appenders.clone(),
        );
        r.register("dipledger_log_events", "Events committed", self.events.clone());
        r.register(
            "dipledger_journal_fsyncs",
            "Journal write + fdatasync rounds",
            self.fsyncs.clone(),
        );
        r.register(
            "dipledger_journal_fsync_seconds",
            "Time spent writing and fdatasyncing journal frames",
            self.fsync_seconds.clone(),
        );
        r.register(
            "dipledger_checkpoints",
            "Checkpoints (sled flush + fsync)",
            self.checkpoints.clone(),
        );
        r.register(
            "dipledger_checkpoint_seconds",
            "Time spent in checkpoints",
            self.checkpoint_seconds.clone(),
        );
        r.register(
            "dipledger_journal_written_bytes",
            "Journal bytes written",
            self.journal_written.clone(),
        );
        r.register(
            "dipledger_read_model_position",
            "The last log position a read model has applied",
            self.read_model_position.clone(),
        );
        r.register(
            "dipledger_read_model_lag_events",
            "How many events a read model is behind the head",
            self.read_model_lag.clone(),
        );
        r.register(
            "dipledger_subscriptions_open",
            "Subscriptions open now",
            self.subscriptions.clone(),
        );
        r.register(
            "dipledger_exports_running",
            "Exports running now",
            self.exports.clone(),
        );
        r.register(
            "dipledger_journal_bytes",
            "Bytes of the journal's segment files on disk",
            self.journal_bytes.clone(),
        );
        r.register(
            "dipledger_sled_bytes",
            "Bytes of a sled database's files on disk",
            self.sled_bytes.clone(),
        );
        r.register(
            "process_resident_memory_bytes",
            "Resident memory of the server process",
            self.resident.clone(),
        );
    }

    /// Gives the sources read at scrape time.
    pub fn set_sources(&self, sources: Sources) {
        *self.sources.lock().expect("metrics lock") = Some(sources);
    }

    /// A request has been answered (the request layer calls this once per request).
    pub fn request_finished(&self, method: &str, status: &str, latency: Duration) {
        self.requests
            .get_or_create(&RpcLabels {
                method: method.to_owned(),
                status: status.to_owned(),
            })
            .inc();
        self.latency
            .get_or_create(&MethodLabels {
                method: method.to_owned(),
            })
            .observe(latency.as_secs_f64());
    }

    /// Reads the figures of the sources now.
    pub fn refresh(&self) {
        let sources = self.sources.lock().expect("metrics lock");
        let Some(sources) = sources.as_ref() else {
            return;
        };
        let head = sources.log.head();
        self.head.set(head as i64);
        self.add_writer_stats(sources.log.stats());
        for name in ProjectionName::ALL {
            let position = sources.projections.checkpoint(name);
            let labels = ReadModelLabels {
                read_model: name.as_str().to_owned(),
            };
            self.read_model_position
                .get_or_create(&labels)
                .set(position as i64);
            self.read_model_lag
                .get_or_create(&labels)
                .set(head.saturating_sub(position) as i64);
        }
        self.subscriptions.set((sources.subscriptions)() as i64);
        self.exports.set((sources.exports)() as i64);
        self.disk_usage(sources.log.data_dir());
        self.resident.set(resident_bytes() as i64);
    }

    fn add_writer_stats(&self, now: WriterStats) {
        let mut last = self.last.lock().expect("metrics lock");
        let delta = |now: u64, then: u64| now.saturating_sub(then);
        self.commits.inc_by(delta(now.commits, last.commits));
        self.led_by_appenders
            .inc_by(delta(now.led_by_appenders, last.led_by_appenders));
        self.events.inc_by(delta(now.events, last.events));
        self.fsyncs.inc_by(delta(now.syncs, last.syncs));
        self.fsync_seconds
            .inc_by(delta(now.sync_micros, last.sync_micros) as f64 / 1e6);
        self.checkpoints.inc_by(delta(now.checkpoints, last.checkpoints));
        self.checkpoint_seconds
            .inc_by(delta(now.checkpoint_micros, last.checkpoint_micros) as f64 / 1e6);
        self.journal_written
            .inc_by(delta(now.journal_bytes, last.journal_bytes));
        *last = now;
    }

    fn disk_usage(&self, data_dir: &Path) {
        let journal = directory_bytes(&data_dir.join("journal"));
        let readmodels = directory_bytes(&data_dir.join("readmodels"));
        // The log's sled database is the rest of the directory (its `db`, `conf`, snapshots and
        // blobs), less the token file and the access log, which are small.
        let everything = directory_bytes(data_dir);
        self.journal_bytes.set(journal as i64);
        let set = |database: &str, bytes: u64| {
            self.sled_bytes
                .get_or_create(&DatabaseLabels {
                    database: database.to_owned(),
                })
                .set(bytes as i64)
        };
        set("log", everything.saturating_sub(journal + readmodels));
        set("readmodels", readmodels);
    }

    /// The metrics in the OpenMetrics text format, read now.
    pub fn encode(&self) -> String {
        self.refresh();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("writing to a String");
        text
    }
}

/// The bytes of the files under `dir` (0 when it is absent).
fn directory_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut pending: Vec<PathBuf> = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.metadata() {
                Ok(metadata) if metadata.is_dir() => pending.push(entry.path()),
                Ok(metadata) => total += metadata.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// The resident memory of this process (Linux: `/proc/self/statm`; 0 elsewhere).
fn resident_bytes() -> u64 {
    let Ok(statm) = std::fs::read_to_string("/proc/self/statm") else {
        return 0;
    };
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|pages| pages.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * page_size.max(0) as u64
}

/// Serves `GET /metrics` on `listener` until `stop` is set.
pub async fn serve_metrics(
    listener: TcpListener,
    metrics: Arc<ServerMetrics>,
    mut stop: watch::Receiver<bool>,
) {
    let places = Arc::new(tokio::sync::Semaphore::new(MAX_SCRAPE_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = async { drop(stop.wait_for(|stopping| *stopping).await) } => return,
        };
        match accepted {
            Ok((stream, _)) => {
                // Over the limit the stream is dropped here, which closes it.
                if let Ok(place) = places.clone().try_acquire_owned() {
                    let metrics = metrics.clone();
                    tokio::spawn(async move {
                        answer(stream, metrics).await;
                        drop(place);
                    });
                }
            }
            Err(error) => {
                tracing::warn!(target: "dipledger::metrics", %error, "accepting a scrape");
                // A persistent error (too many open files) must not spin the loop.
                tokio::time::sleep(super::tls::ACCEPT_ERROR_BACKOFF).await;
            }
        }
    }
}

/// Answers one HTTP request on `stream`.
async fn answer(mut stream: TcpStream, metrics: Arc<ServerMetrics>) {
    let head = match tokio::time::timeout(SCRAPE_READ_TIMEOUT, read_head(&mut stream)).await {
        Ok(Some(head)) => head,
        _ => return,
    };
    let request_line = head.lines().next().unwrap_or_default();
    let (status, content_type, body) = match request_line.split_whitespace().take(2).collect::<Vec<_>>()[..] {
        ["GET", "/metrics"] => (
            "200 OK",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            tokio::task::spawn_blocking(move || metrics.encode())
                .await
                .unwrap_or_default(),
        ),
        _ => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "only GET /metrics is served\n".to_owned(),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The request head (up to the blank line), or None when it is too long or the peer left.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        let n = stream.read(&mut buffer).await.ok()?;
        if n == 0 || head.len() + n > MAX_SCRAPE_REQUEST_BYTES {
            return None;
        }
        head.extend_from_slice(&buffer[..n]);
    }
    String::from_utf8(head).ok()
}
