//! The `dipledger` binary: a thin command line over the library.

use std::net::SocketAddr;
mod cli;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use dipledger::log::{Log, LogConfig, LogError};

/// The binary's allocator. glibc's malloc spent a third of a read-model rebuild in `_int_malloc`
/// and `malloc_consolidate` and left a fragmented heap behind (docs/benchmarks.md); mimalloc
/// keeps per-thread free lists. Built without transparent huge pages (Cargo.toml says why). The
/// library sets no allocator: embedders choose their own.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// dipledger: an event-sourced, append-only ledger of diplomatic activity.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// The bearer token client verbs send, for a server with authentication on (see
    /// `dipledger token create`).
    #[arg(long, global = true, env = "DIPLEDGER_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The CA (PEM) that an https:// server's certificate must chain to.
    #[arg(long, global = true, env = "DIPLEDGER_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// Read verbs answer only once the read models have applied this log position (the server
    /// waits up to 5 s, then answers UNAVAILABLE; past the log's head, OUT_OF_RANGE at once):
    /// pass the position a recording verb printed to read your own write.
    #[arg(long, global = true)]
    min_position: Option<u64>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the gRPC API (commands, queries, event store, audit, tokens, health, reflection).
    /// Bearer tokens are required once the data directory has one (`dipledger token create`);
    /// beyond loopback only with TLS (--tls-cert, --tls-key; reloaded on SIGHUP) and tokens.
    /// Stops gracefully on SIGINT or SIGTERM.
    #[command(after_help = "Example:\n  dipledger serve --listen 127.0.0.1:50051 --data-dir ./data")]
    Serve(ServeArgs),
    /// Scan a data directory offline: every record, the hash chain and the indexes.
    /// Exits 0 when intact, 2 with the first damaged position otherwise.
    #[command(after_help = "Example:\n  dipledger verify --data-dir ./data")]
    Verify {
        /// The data directory (the server must not be running on it).
        #[arg(long, env = "DIPLEDGER_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
    },
    /// Manage the bearer tokens of a data directory: create, list, revoke. Creating the first
    /// token turns authentication on for the directory, for good.
    #[command(subcommand)]
    Token(cli::token::TokenVerb),
    /// Verifiable history: the verifier key, signed checkpoints, inclusion and consistency
    /// proofs, offline verification of proofs and exports, and the witness (`watch`).
    #[command(subcommand)]
    Audit(cli::audit::AuditVerb),
    /// Parties: show, list; record: register, correct.
    #[command(subcommand)]
    Party(cli::record::PartyVerb),
    /// Sources: show, list; record: register, correct.
    #[command(subcommand)]
    Source(cli::record::SourceVerb),
    /// Officials: show, list, contacts; record: register, appoint, end-tenure, correct-name, retract.
    #[command(subcommand)]
    Official(cli::record::OfficialVerb),
    /// Record meeting commands: propose, schedule, reschedule, cancel, held, statement, correct, retract.
    #[command(subcommand)]
    Meeting(cli::record::MeetingVerb),
    /// Commitments: show, list, overdue, compliance; record: record, reaffirm, progress, fulfil, lapse, withdraw, supersede, assess, correct, retract.
    #[command(subcommand)]
    Commitment(cli::record::CommitmentVerb),
    /// Retract one event of an official, meeting or commitment (history keeps both). To correct
    /// values instead, use the entity's own verb (`meeting correct`, ...): it needs its details.
    #[command(
        after_help = "Example:\n  dipledger retract meeting-<uuid> --version 2 --reason \"the statement was misattributed\" --occurred-at 2025-01-20 --source <id>"
    )]
    Retract {
        /// The entity: its stream id (meeting-<uuid>) or its bare UUID.
        stream_id: String,
        /// The stream version of the event to retract (see `dipledger history`).
        #[arg(long)]
        version: u64,
        /// Why.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        common: cli::record::Common,
    },
    /// The bilateral relation of two parties: counts, topics, Goldstein by month, timeline.
    #[command(
        after_help = "Examples:\n  dipledger relation LBY FRA\n  dipledger relation LBY FRA --as-of 4 --json     # as the ledger said once it had recorded position 4\n  dipledger relation LBY FRA --as-of 2026-12-01T12:00:00Z   # as it said at that recording time\n\n--as-of is transaction time (when the ledger recorded), not when things happened."
    )]
    Relation {
        /// One party code.
        party_a: String,
        /// The other party code.
        party_b: String,
        #[command(flatten)]
        read: cli::read::ReadArgs,
        /// Also draw the relation as an SVG chart into this file: meetings by state, commitments
        /// from made to due with their fulfilment or lapse, the monthly Goldstein mean, a legend,
        /// and a footer with the position and the number of sources (docs/operations.md).
        #[arg(long)]
        svg: Option<PathBuf>,
    },
    /// A read model as CSV for pandas and spreadsheets: meetings, commitments or parties, as
    /// the read models hold them (corrections and retractions applied); columns and dtypes in
    /// docs/operations.md.
    #[command(
        after_help = "Examples:\n  dipledger csv meetings --out meetings.csv\n  dipledger csv commitments --from 2025-01-01 --to 2025-12-31 --out commitments.csv"
    )]
    Csv {
        /// Which read model.
        #[arg(value_enum)]
        table: cli::read::csv::CsvTable,
        /// Only rows from this date (ISO 8601; meetings: held or planned; commitments: made).
        #[arg(long)]
        from: Option<String>,
        /// Only rows up to this date.
        #[arg(long)]
        to: Option<String>,
        /// Output file; `-` for standard output.
        #[arg(long, default_value = "-")]
        out: PathBuf,
        /// The server.
        #[arg(long, env = "DIPLEDGER_SERVER", default_value = cli::DEFAULT_SERVER)]
        server: String,
    },
    /// The audit trail of an entity: every event with who recorded it, when, and from which sources.
    #[command(
        after_help = "Examples:\n  dipledger history party-LBY\n  dipledger history meeting-<uuid> --as-of 10 --json"
    )]
    History {
        /// The entity: its stream id (`party-LBY`, `meeting-<uuid>`) or its bare id (`LBY`, the UUID).
        stream_id: String,
        #[command(flatten)]
        read: cli::read::ReadArgs,
    },
    /// Print events as they are committed (history first with --from start); reconnects and
    /// resumes after a dropped connection without skipping or repeating.
    #[command(
        after_help = "Examples:\n  dipledger tail\n  dipledger tail --from start --type MeetingHeld --json\n  dipledger tail --from 1200 --tag party:LBY"
    )]
    Tail(TailArgs),
    /// Start an embedded server on a temporary directory, record the Libya-France news report and
    /// a few illustrative scenarios, and print the relation and the meeting's audit trail.
    #[command(after_help = "Examples:\n  dipledger demo\n  dipledger demo --server http://127.0.0.1:50051")]
    Demo {
        /// Record into this running server instead of an embedded one (running the demo again
        /// against it records nothing twice).
        #[arg(long, env = "DIPLEDGER_SERVER")]
        server: Option<String>,
    },
    /// Drop the read models and rebuild them from position 1 (offline: the server must not be
    /// running on the directory). Shows progress on a terminal, stays quiet otherwise.
    #[command(
        after_help = "Example:\n  dipledger rebuild --data-dir ./data\n  dipledger rebuild --data-dir ./data --only relations"
    )]
    Rebuild {
        /// The data directory.
        #[arg(long, env = "DIPLEDGER_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
        /// Rebuild only this read model (meetings, commitments, relations, officials, directory).
        #[arg(long)]
        only: Option<String>,
    },
    /// Write the whole log as JSON lines (one envelope per line, lossless, re-importable with
    /// `restore`), or coded rows. Offline on a data directory (the server must not be running
    /// on it), or from a running server with --server (the same bytes; auditor role).
    #[command(
        after_help = "Examples:\n  dipledger export --data-dir ./data --out backup.jsonl\n  dipledger export --server http://127.0.0.1:50051 --out backup.jsonl   # while it runs\n  dipledger export --data-dir ./data --format cameo-tsv --out events.tsv"
    )]
    Export {
        /// The data directory (offline).
        #[arg(long, env = "DIPLEDGER_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
        /// Export from this running server instead of a data directory.
        #[arg(long)]
        server: Option<String>,
        /// Output file; `-` for standard output.
        #[arg(long, default_value = "-")]
        out: PathBuf,
        /// `jsonl`: the lossless envelope export `restore` reads; `cameo-tsv`: CAMEO/GDELT-style
        /// rows (columns in docs/operations.md); `plover`: PLOVER-style JSON lines.
        #[arg(long, default_value = "jsonl", value_parser = ["jsonl", "cameo-tsv", "plover"])]
        format: String,
        #[command(flatten)]
        selection: cli::export::SelectionArgs,
    },
    /// Load a JSON-lines export into an empty data directory, byte for byte (same positions,
    /// event ids, recorded_at and hashes), checking every hash; stops at the first bad line.
    #[command(after_help = "Example:\n  dipledger restore --data-dir ./restored --from backup.jsonl")]
    Restore {
        /// The empty (or absent) data directory to create.
        #[arg(long)]
        data_dir: PathBuf,
        /// The export file; `-` for standard input.
        #[arg(long, default_value = "-")]
        from: PathBuf,
    },
}

/// `serve`'s flags.
#[derive(Args)]
struct ServeArgs {
    /// Address to listen on: IP:PORT or HOST:PORT (`localhost:50051` resolves to loopback);
    /// loopback only unless TLS and authentication are on.
    #[arg(long, env = "DIPLEDGER_LISTEN", default_value = dipledger::api::server::DEFAULT_LISTEN,
          value_parser = dipledger::api::server::resolve_listen)]
    listen: SocketAddr,
    /// The data directory (created if missing).
    #[arg(long, env = "DIPLEDGER_DATA_DIR", default_value = dipledger::api::server::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Least free disk space under the data directory (bytes, or with K, M, G: powers of
    /// 1,024). Below it writes are refused (RESOURCE_EXHAUSTED) until space returns; reads,
    /// subscriptions and health go on.
    #[arg(long, default_value = "256MiB", value_parser = dipledger::log::disk::parse_size)]
    min_free_disk: u64,
    /// sled's page cache for the log (bytes, or with K, M, G), between 8 MiB and 16 GiB. sled
    /// counts a page by its size on disk; a page of small keys takes more in memory, so the
    /// process holds more than this (docs/operations.md, "Memory").
    #[arg(long, default_value_t = dipledger::log::limits::DEFAULT_CACHE_CAPACITY_BYTES, value_parser = parse_log_cache)]
    log_cache: u64,
    /// Most concurrent subscriptions.
    #[arg(long, default_value_t = dipledger::api::event_store::MAX_SUBSCRIPTIONS)]
    max_subscriptions: usize,
    /// How often, in milliseconds, sled is flushed (checkpointed) while there are new
    /// commits; it is also flushed after every 16 MiB of journal. Shorter: less journal to
    /// replay after a crash and less dirty state in memory; longer: fewer stalls.
    #[arg(long, default_value_t = dipledger::log::limits::CHECKPOINT_INTERVAL.as_millis() as u64)]
    checkpoint_interval_ms: u64,
    /// Milliseconds between two snapshots of the read models while events arrive (they are
    /// also snapshotted every 1,000,000 events and on shutdown). Shorter: less log to replay at
    /// the next start; longer: less writing.
    #[arg(long, default_value_t = dipledger::projections::snapshot::SNAPSHOT_INTERVAL.as_millis() as u64)]
    snapshot_interval_ms: u64,
    /// How many hours past the server's clock a command's valid time (`occurred_at`) may lie,
    /// for reports dated in time zones ahead of the server's (at most 168). Planned dates
    /// (windows, deadlines) are not limited.
    #[arg(long, default_value_t = dipledger::ledger::DEFAULT_FUTURE_ALLOWANCE.as_secs() / 3600,
          value_parser = clap::value_parser!(u64).range(0..=dipledger::ledger::MAX_FUTURE_ALLOWANCE.as_secs() / 3600))]
    future_allowance_hours: u64,
    /// Ask every caller for a bearer token even while the data directory has none (it is on
    /// anyway once a token has been created there).
    #[arg(long)]
    require_auth: bool,
    /// Serve TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Verify client certificates against this CA (PEM); with TLS only.
    #[arg(long, requires = "tls_cert")]
    client_ca: Option<PathBuf>,
    /// Refuse clients without a certificate from --client-ca.
    #[arg(long, requires = "client_ca")]
    require_client_cert: bool,
    /// Serve a non-loopback --listen address without TLS or authentication (not for production).
    #[arg(long)]
    insecure: bool,
    /// Serve Prometheus metrics (`GET /metrics`) on this address, e.g. 127.0.0.1:9464 (off by
    /// default; the metrics are listed in docs/operations.md).
    #[arg(long, env = "DIPLEDGER_METRICS_LISTEN", value_parser = dipledger::api::server::resolve_listen)]
    metrics_listen: Option<SocketAddr>,
    /// The server's log lines on standard error: `text` (timestamp, level, target, message and
    /// fields) or `json` (one object per line, for log shippers). Which lines: `RUST_LOG`
    /// (default `info`; `RUST_LOG=dipledger::request=debug` adds one line per request).
    #[arg(long, env = "DIPLEDGER_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// Most requests one principal may have in flight (subscriptions included).
    #[arg(long, default_value_t = dipledger::auth::limits::DEFAULT_MAX_IN_FLIGHT as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    max_in_flight_per_principal: u64,
    /// Commands per second one principal may send (bursts up to one second's worth).
    #[arg(long, default_value_t = dipledger::auth::limits::DEFAULT_COMMANDS_PER_SECOND,
          value_parser = clap::value_parser!(u32).range(1..))]
    commands_per_second_per_principal: u32,
    /// Which allowed calls the access log (`access.jsonl`) records besides refusals and token
    /// changes: `refusals` (none), `writes` (every command), `all` (every call; one fdatasync
    /// per call).
    #[arg(long, default_value = "refusals", value_parser = clap::value_parser!(dipledger::auth::access_log::AccessLevel))]
    access_log: dipledger::auth::access_log::AccessLevel,
    /// Sign checkpoints with this Ed25519 key (PKCS#8 PEM) instead of the data directory's own
    /// (`<data dir>/audit/signing-key.pem`, made on first start).
    #[arg(long)]
    signing_key: Option<PathBuf>,
    /// Longest time, in milliseconds, between a commit and a signed checkpoint covering it.
    #[arg(long, default_value_t = dipledger::audit::checkpoints::DEFAULT_CHECKPOINT_INTERVAL.as_millis() as u64,
          value_parser = clap::value_parser!(u64).range(
              dipledger::audit::checkpoints::MIN_CHECKPOINT_INTERVAL.as_millis() as u64
              ..=dipledger::audit::checkpoints::MAX_CHECKPOINT_INTERVAL.as_millis() as u64))]
    sign_interval_ms: u64,
    /// Sign a checkpoint at once when this many events are unsigned.
    #[arg(long, default_value_t = dipledger::audit::checkpoints::DEFAULT_CHECKPOINT_EVENTS,
          value_parser = clap::value_parser!(u64).range(1..))]
    sign_every_events: u64,
    /// Benchmark hook, in builds with the `test-hooks` feature only: hold the read-model runner
    /// before its first step, so the write path runs without it (the A/B of runner on and off in
    /// docs/benchmarks.md). Queries wait for positions the read models never reach.
    #[cfg(feature = "test-hooks")]
    #[arg(long, hide = true)]
    hold_read_models: bool,
}

/// `tail`'s flags.
#[derive(Args)]
struct TailArgs {
    /// `end` (only new events), `start`, or a position to resume after.
    #[arg(long, default_value = "end")]
    from: String,
    /// Only these event types (repeatable).
    #[arg(long = "type")]
    event_types: Vec<String>,
    /// Only events with one of these tags (repeatable).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
    /// Stop after this many events.
    #[arg(long)]
    limit: Option<u64>,
    /// The server.
    #[arg(long, env = "DIPLEDGER_SERVER", default_value = cli::DEFAULT_SERVER)]
    server: String,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", cli::render(&error));
            ExitCode::FAILURE
        }
    }
}

/// A data directory a running server holds (sled's file lock) explained: which directory and
/// what to do. Any other error is returned as it is.
fn held_by_a_server(error: anyhow::Error, data_dir: &Path, verb: &str) -> anyhow::Error {
    let locked = error
        .chain()
        .any(|cause| cause.downcast_ref::<LogError>().is_some_and(LogError::is_locked));
    if !locked {
        return error;
    }
    let dir = data_dir.display();
    if verb == "serve" {
        anyhow::anyhow!(
            "a dipledger server is already running on {dir} (its data directory is locked); \
             stop it first, or serve another --data-dir"
        )
    } else if verb == "export" {
        anyhow::anyhow!(
            "a dipledger server is running on {dir} (its data directory is locked); \
             `dipledger export` needs the directory to itself: stop the server first, \
             or export from the running server with --server URL"
        )
    } else {
        anyhow::anyhow!(
            "a dipledger server is running on {dir} (its data directory is locked); \
             `dipledger {verb}` needs the directory to itself: stop the server first"
        )
    }
}

/// The dispatcher: one function per mode, every async one on the same runtime.
fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let print = |text: String| {
        print!("{text}");
        ExitCode::SUCCESS
    };
    cli::set_token(cli.token.as_deref())?;
    cli::set_ca_cert(cli.ca_cert.as_deref())?;
    cli::set_min_position(cli.min_position);
    Ok(match cli.command {
        Command::Serve(args) => serve(&runtime, args)?,
        Command::Token(verb) => print(cli::token::token(verb)?),
        Command::Audit(verb) => runtime.block_on(cli::audit::run(verb))?,
        Command::Verify { data_dir } => verify(&data_dir)?,
        Command::Export {
            data_dir,
            server,
            out,
            format,
            selection,
        } => export(&runtime, &data_dir, server.as_deref(), &out, &format, &selection)?,
        Command::Restore { data_dir, from } => restore(&data_dir, &from)?,
        Command::Rebuild { data_dir, only } => rebuild(&data_dir, only.as_deref())?,
        Command::Party(verb) => print(runtime.block_on(cli::record::party(verb))?),
        Command::Source(verb) => print(runtime.block_on(cli::record::source(verb))?),
        Command::Official(verb) => print(runtime.block_on(cli::record::official(verb))?),
        Command::Meeting(verb) => print(runtime.block_on(cli::record::meeting(verb))?),
        Command::Commitment(verb) => print(runtime.block_on(cli::record::commitment(verb))?),
        Command::Retract {
            stream_id,
            version,
            reason,
            common,
        } => print(runtime.block_on(cli::record::retract(&stream_id, version, reason, common))?),
        Command::Relation {
            party_a,
            party_b,
            read,
            svg,
        } => print(runtime.block_on(relation(&party_a, &party_b, &read, svg.as_deref()))?),
        Command::History { stream_id, read } => {
            let as_of = read.as_of.as_deref();
            print(runtime.block_on(cli::read::history(&read.server, &stream_id, as_of, read.json))?)
        }
        Command::Tail(args) => runtime.block_on(tail(args))?,
        Command::Csv {
            table,
            from,
            to,
            out,
            server,
        } => {
            let mut writer = cli::export::output(&out)?;
            let rows = runtime.block_on(cli::read::csv::csv(
                &server,
                table,
                from.as_deref(),
                to.as_deref(),
                &mut writer,
            ))?;
            eprintln!("wrote {rows} {}", if rows == 1 { "row" } else { "rows" });
            ExitCode::SUCCESS
        }
        Command::Demo { server } => print(runtime.block_on(cli::demo::run(server))?),
    })
}

/// The TLS material `serve`'s flags name, read from disk; each error names its flag.
fn tls_options(args: &ServeArgs) -> anyhow::Result<Option<dipledger::api::server::TlsOptions>> {
    let read = |path: &Path, flag: &str| {
        std::fs::read(path).with_context(|| format!("--{flag} {}: cannot read it", path.display()))
    };
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        return Ok(None);
    };
    Ok(Some(dipledger::api::server::TlsOptions {
        cert_pem: read(cert, "tls-cert")?,
        key_pem: read(key, "tls-key")?,
        client_ca_pem: args
            .client_ca
            .as_deref()
            .map(|ca| read(ca, "client-ca"))
            .transpose()?,
        require_client_cert: args.require_client_cert,
        reload_from: Some((cert.clone(), key.clone())),
    }))
}

/// `--log-cache`: a size within the log cache's bounds.
fn parse_log_cache(text: &str) -> Result<u64, String> {
    use dipledger::log::limits::{MAX_CACHE_CAPACITY_BYTES, MIN_CACHE_CAPACITY_BYTES};
    let bytes = dipledger::log::disk::parse_size(text)?;
    if !(MIN_CACHE_CAPACITY_BYTES..=MAX_CACHE_CAPACITY_BYTES).contains(&bytes) {
        return Err(format!(
            "{bytes} bytes is outside {} MiB to {} GiB",
            MIN_CACHE_CAPACITY_BYTES >> 20,
            MAX_CACHE_CAPACITY_BYTES >> 30
        ));
    }
    Ok(bytes)
}

/// `serve`: the gRPC server on a data directory until SIGINT or SIGTERM.
fn serve(runtime: &tokio::runtime::Runtime, args: ServeArgs) -> anyhow::Result<ExitCode> {
    init_logging(&args.log_format)?;
    let tls = tls_options(&args)?;
    let config = dipledger::api::server::ServerConfig {
        listen: args.listen,
        data_dir: args.data_dir,
        min_free_disk: args.min_free_disk,
        log_cache_bytes: args.log_cache,
        options: dipledger::api::server::ServerOptions {
            max_subscriptions: args.max_subscriptions,
            snapshot_interval: std::time::Duration::from_millis(args.snapshot_interval_ms),
            future_allowance: std::time::Duration::from_secs(args.future_allowance_hours * 3600),
            require_auth: args.require_auth,
            tls,
            principal_limits: dipledger::auth::limits::PrincipalLimits {
                max_in_flight: args.max_in_flight_per_principal as usize,
                commands_per_second: args.commands_per_second_per_principal,
            },
            access_log: args.access_log,
            signing_key: args.signing_key,
            checkpoint_policy: dipledger::audit::CheckpointPolicy {
                interval: std::time::Duration::from_millis(args.sign_interval_ms),
                every_events: args.sign_every_events,
            },
            metrics_listen: args.metrics_listen,
            ..Default::default()
        },
        insecure: args.insecure,
        checkpoint_interval: std::time::Duration::from_millis(args.checkpoint_interval_ms),
    };
    #[cfg(feature = "test-hooks")]
    let config = {
        let mut config = config;
        if args.hold_read_models {
            config.options.read_model_gate = Some(dipledger::projections::RunnerGate::default());
        }
        config
    };
    let data_dir = config.data_dir.clone();
    runtime
        .block_on(dipledger::api::server::serve(config, shutdown_signal()))
        .map_err(|error| held_by_a_server(error.into(), &data_dir, "serve"))?;
    Ok(ExitCode::SUCCESS)
}

/// The server's log lines (`tracing`) on standard error, filtered by `RUST_LOG` (default
/// `info`), as text or JSON lines.
fn init_logging(format: &str) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) => EnvFilter::try_new(&directives)
            .with_context(|| format!("RUST_LOG={directives:?} is not a log filter"))?,
        Err(_) => EnvFilter::new("info"),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = if format == "json" {
        builder.json().try_init()
    } else {
        builder.with_ansi(false).try_init()
    };
    installed.map_err(|error| anyhow::anyhow!("starting the log: {error}"))
}

/// The log of an existing data directory (refused if `data_dir` is not one), opened with
/// `config` applied to its settings.
/// `verb` names the command in the message when a running server holds the directory.
fn open_existing(
    data_dir: &Path,
    verb: &str,
    config: impl FnOnce(LogConfig) -> LogConfig,
) -> anyhow::Result<Log> {
    if !data_dir.join("db").exists() {
        anyhow::bail!("{} is not a dipledger data directory", data_dir.display());
    }
    Log::open(config(LogConfig::new(data_dir))).map_err(|error| match error.is_locked() {
        true => held_by_a_server(error.into(), data_dir, verb),
        false => anyhow::Error::new(error).context(format!("opening {}", data_dir.display())),
    })
}

/// `verify`: every record, the hash chain and the indexes, then the read-model snapshots,
/// offline (nothing repaired). Exit 0 intact, 2 damaged (the first bad position, or the damaged
/// read model and what to run).
fn verify(data_dir: &Path) -> anyhow::Result<ExitCode> {
    let log = match open_existing(data_dir, "verify", |config| config.verify_on_open(0)) {
        Ok(log) => log,
        Err(error) => match error.downcast::<LogError>() {
            Ok(error) => return Ok(report_verify_error(error)),
            Err(error) => return Err(error),
        },
    };
    let bar = cli::progress::Progress::new("verifying");
    let verified = log.verify(&mut |done, total| bar.update(done, total));
    bar.finish();
    let report = match verified {
        Ok(report) => report,
        Err(error) => return Ok(report_verify_error(error)),
    };
    drop(log);
    // The read models are derived data: damage there loses nothing, but the operator is told
    // (serve would discard and rebuild them at start; `rebuild` does it offline now).
    if let Err(reason) = dipledger::projections::check_snapshots(data_dir) {
        println!(
            "damaged: read model snapshot in {}: {reason}; run dipledger rebuild",
            data_dir
                .join(dipledger::projections::snapshot::READ_MODELS_DIR)
                .display()
        );
        return Ok(ExitCode::from(2));
    }
    println!(
        "ok: {} events, {} streams, {} commands, head chain hash {}",
        report.events,
        report.streams,
        report.commands,
        hex(&report.head_chain_hash)
    );
    Ok(ExitCode::SUCCESS)
}

/// `export`: lossless JSON lines, or coded CAMEO/PLOVER rows, offline or from a server.
fn export(
    runtime: &tokio::runtime::Runtime,
    data_dir: &Path,
    server: Option<&str>,
    out: &Path,
    format: &str,
    selection: &cli::export::SelectionArgs,
) -> anyhow::Result<ExitCode> {
    let format = dipledger::analyst::ExportFormat::parse(format).expect("clap checked the format");
    if let Some(server) = server {
        let mut writer = cli::export::output(out)?;
        let bytes = runtime.block_on(cli::export::online(server, format, selection, &mut writer))?;
        eprintln!("exported {bytes} bytes from {server}");
        return Ok(ExitCode::SUCCESS);
    }
    let log = open_existing(data_dir, "export", |config| config)?;
    let mut writer = cli::export::output(out)?;
    let lines = cli::export::offline(&log, format, selection, &mut writer)?;
    eprintln!("exported {lines} {}", format.unit());
    Ok(ExitCode::SUCCESS)
}

/// `restore`: an export into an empty data directory, byte for byte. Exit 2 at a bad line.
fn restore(data_dir: &Path, from: &Path) -> anyhow::Result<ExitCode> {
    let (input, size): (Box<dyn std::io::Read>, u64) = if from.as_os_str() == "-" {
        (Box::new(std::io::stdin().lock()), 0)
    } else {
        let file = std::fs::File::open(from).with_context(|| format!("opening {}", from.display()))?;
        let size = file.metadata().map(|metadata| metadata.len()).unwrap_or(0);
        (Box::new(file), size)
    };
    let read = std::rc::Rc::new(std::cell::Cell::new(0u64));
    let mut reader = std::io::BufReader::new(cli::progress::Counted::new(input, read.clone()));
    let bar = cli::progress::Progress::bytes("restoring");
    let restored =
        dipledger::log::backup::restore_jsonl(&mut reader, data_dir, &mut |_| bar.update(read.get(), size));
    bar.finish();
    match restored {
        Ok(events) => {
            eprintln!("restored {events} events into {}", data_dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("error: {error}");
            Ok(ExitCode::from(2))
        }
    }
}

/// `relation`: the bilateral relation, optionally also drawn as an SVG timeline.
async fn relation(
    party_a: &str,
    party_b: &str,
    read: &cli::read::ReadArgs,
    svg: Option<&Path>,
) -> anyhow::Result<String> {
    let as_of = read.as_of.as_deref();
    if let Some(path) = svg {
        eprint!(
            "{}",
            cli::read::relation_svg(&read.server, party_a, party_b, as_of, path).await?
        );
    }
    cli::read::relation(&read.server, party_a, party_b, as_of, read.json).await
}

/// `tail`: events as they are committed, printed one per line.
async fn tail(args: TailArgs) -> anyhow::Result<ExitCode> {
    let from = match args.from.as_str() {
        "start" => cli::read::TailFrom::Start,
        "end" => cli::read::TailFrom::End,
        position => cli::read::TailFrom::After(
            position
                .parse()
                .with_context(|| format!("--from {position:?} is not start, end or a position"))?,
        ),
    };
    let TailArgs {
        event_types,
        tags,
        json,
        limit,
        server,
        ..
    } = args;
    cli::read::tail(&server, from, event_types, tags, json, limit, &mut |line| {
        println!("{line}")
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// `rebuild`: read models dropped and rebuilt from position 1, offline, with progress.
fn rebuild(data_dir: &Path, only: Option<&str>) -> anyhow::Result<ExitCode> {
    use dipledger::projections::{ProjectionName, Projections};
    let names: Vec<ProjectionName> = match only {
        None => ProjectionName::ALL.to_vec(),
        Some(name) => match ProjectionName::ALL
            .iter()
            .find(|candidate| candidate.as_str() == name)
        {
            Some(found) => vec![*found],
            None => anyhow::bail!(
                "unknown read model {name:?} (meetings, commitments, relations, officials, directory)"
            ),
        },
    };
    let log = open_existing(data_dir, "rebuild", |config| config)?;
    let projections = Projections::open_paused(log)?;
    if only.is_none() {
        // Every read model in one pass over the log.
        let bar = cli::progress::Progress::new("rebuilding every read model");
        let position = projections.rebuild_all(&mut |done, total| bar.update(done, total))?;
        bar.finish();
        for name in names {
            println!("rebuilt {} to position {position}", name.as_str());
        }
        return Ok(ExitCode::SUCCESS);
    }
    for name in names {
        let bar = cli::progress::Progress::new(&format!("rebuilding {}", name.as_str()));
        let position = projections.rebuild(name, &mut |done, total| bar.update(done, total))?;
        bar.finish();
        println!("rebuilt {} to position {position}", name.as_str());
    }
    Ok(ExitCode::SUCCESS)
}

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            eprintln!("dipledger: cannot listen for SIGINT: {error}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                eprintln!("dipledger: cannot listen for SIGTERM: {error}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => eprintln!("dipledger: SIGINT received"),
        _ = terminate => eprintln!("dipledger: SIGTERM received"),
    }
}

fn report_verify_error(error: LogError) -> ExitCode {
    match error {
        LogError::DataLoss { position, reason } => {
            println!("damaged: position {position}: {reason}");
            ExitCode::from(2)
        }
        other => {
            eprintln!("error: {other}");
            ExitCode::FAILURE
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
