//! The `dipledger` binary: a thin command line over the library.

use std::net::SocketAddr;
mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use dipledger::log::{Log, LogConfig, LogError};

/// The binary's allocator. glibc's malloc spent a third of a read-model rebuild in `_int_malloc`
/// and `malloc_consolidate` and left a fragmented heap behind (docs/benchmarks.md); mimalloc
/// keeps per-thread free lists. The library sets no allocator: embedders choose their own.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// dipledger: an event-sourced, append-only ledger of diplomatic activity.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the gRPC API (commands, event store, health, reflection) on a loopback address.
    /// Development mode: no authentication, no TLS. Stops gracefully on SIGINT or SIGTERM.
    #[command(after_help = "Example:\n  dipledger serve --listen 127.0.0.1:50051 --data-dir ./data")]
    Serve {
        /// Address to listen on (loopback only).
        #[arg(long, env = "DIPLEDGER_LISTEN", default_value = dipledger::api::server::DEFAULT_LISTEN)]
        listen: SocketAddr,
        /// The data directory (created if missing).
        #[arg(long, env = "DIPLEDGER_DATA_DIR", default_value = dipledger::api::server::DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// Most concurrent subscriptions.
        #[arg(long, default_value_t = dipledger::api::event_store::MAX_SUBSCRIPTIONS)]
        max_subscriptions: usize,
        /// How often, in milliseconds, sled is flushed (checkpointed) while there are new
        /// commits; it is also flushed after every 16 MiB of journal. Shorter: less journal to
        /// replay after a crash and less dirty state in memory; longer: fewer stalls.
        #[arg(long, default_value_t = dipledger::log::limits::CHECKPOINT_INTERVAL.as_millis() as u64)]
        checkpoint_interval_ms: u64,
        /// Milliseconds between two snapshots of the read models while events arrive (they
        /// are also snapshotted every 100,000 events and on shutdown). Shorter: less log to
        /// replay at the next start; longer: less writing.
        #[arg(long, default_value_t = dipledger::projections::snapshot::SNAPSHOT_INTERVAL.as_millis() as u64)]
        snapshot_interval_ms: u64,
    },
    /// Scan a data directory offline: every record, the hash chain and the indexes.
    /// Exits 0 when intact, 2 with the first damaged position otherwise.
    #[command(after_help = "Example:\n  dipledger verify --data-dir ./data")]
    Verify {
        /// The data directory (the server must not be running on it).
        #[arg(long, env = "DIPLEDGER_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
    },
    /// Record party commands: register, correct.
    #[command(subcommand)]
    Party(cli::record::PartyVerb),
    /// Record source commands: register, correct.
    #[command(subcommand)]
    Source(cli::record::SourceVerb),
    /// Record official commands: register, appoint, end-tenure, correct-name, retract.
    #[command(subcommand)]
    Official(cli::record::OfficialVerb),
    /// Record meeting commands: propose, schedule, reschedule, cancel, held, statement, correct, retract.
    #[command(subcommand)]
    Meeting(cli::record::MeetingVerb),
    /// Record commitment commands: record, reaffirm, progress, fulfil, lapse, withdraw, supersede, assess, correct, retract.
    #[command(subcommand)]
    Commitment(cli::record::CommitmentVerb),
    /// Retract one event of an official, meeting or commitment (history keeps both). To correct
    /// values instead, use the entity's own verb (`meeting correct`, ...): it needs its details.
    #[command(
        after_help = "Example:\n  dipledger retract meeting-<uuid> --version 2 --reason \"the statement was misattributed\" --occurred-at 2025-01-20 --source <id>"
    )]
    Retract {
        /// The entity's stream id, e.g. meeting-<uuid>.
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
        after_help = "Examples:\n  dipledger relation LBY FRA\n  dipledger relation LBY FRA --as-of 42 --json\n  dipledger relation LBY FRA --as-of 2025-02-01T00:00:00Z"
    )]
    Relation {
        /// One party code.
        party_a: String,
        /// The other party code.
        party_b: String,
        #[command(flatten)]
        read: cli::client::ReadArgs,
        /// Also draw the relation as an SVG timeline into this file (Goldstein sum by month,
        /// meetings and commitments by state).
        #[arg(long)]
        svg: Option<PathBuf>,
    },
    /// The audit trail of an entity: every event with who recorded it, when, and from which sources.
    #[command(
        after_help = "Examples:\n  dipledger history party-LBY\n  dipledger history meeting-<uuid> --as-of 10 --json"
    )]
    History {
        /// The entity's stream id, e.g. `party-LBY` or `meeting-<uuid>`.
        stream_id: String,
        #[command(flatten)]
        read: cli::client::ReadArgs,
    },
    /// Print events as they are committed (history first with --from start); reconnects and
    /// resumes after a dropped connection without skipping or repeating.
    #[command(
        after_help = "Examples:\n  dipledger tail\n  dipledger tail --from start --type MeetingHeld --json\n  dipledger tail --from 1200 --tag party:LBY"
    )]
    Tail {
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
        #[arg(long, env = "DIPLEDGER_SERVER", default_value = "http://127.0.0.1:50051")]
        server: String,
    },
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
    /// `restore`). Offline: the server must not be running on the directory.
    #[command(
        after_help = "Examples:\n  dipledger export --data-dir ./data --out backup.jsonl\n  dipledger export --data-dir ./data --format cameo-tsv --out events.tsv"
    )]
    Export {
        /// The data directory.
        #[arg(long, env = "DIPLEDGER_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
        /// Output file; `-` for standard output.
        #[arg(long, default_value = "-")]
        out: PathBuf,
        /// `jsonl`: the lossless envelope export `restore` reads; `cameo-tsv`: CAMEO/GDELT-style
        /// rows (columns in docs/operations.md); `plover`: PLOVER-style JSON lines.
        #[arg(long, default_value = "jsonl", value_parser = ["jsonl", "cameo-tsv", "plover"])]
        format: String,
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
    /// Benchmark the event log in process on a fresh temporary directory (durable appends:
    /// 1, 16 and 4 appenders; full read). Prints a table, or JSON with --json.
    #[command(after_help = "Example:\n  dipledger bench-log --events 200000 --json")]
    BenchLog {
        /// About how many events each append workload writes.
        #[arg(long, default_value_t = 100_000)]
        events: u64,
        /// Events written before the measured workloads (not timed), to measure a large log.
        #[arg(long, default_value_t = 0)]
        prefill: u64,
        /// sled page-cache size in MiB.
        #[arg(long, default_value_t = 256)]
        cache_mib: u64,
        /// Where to create the benchmark's data directory (a fresh temporary one by default).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Benchmark command handling in process (decide + durable append through the ledger):
    /// concurrent clients recording statements at meetings of their own.
    #[command(after_help = "Example:\n  dipledger bench-ledger --clients 16 --commands 2000")]
    BenchLedger {
        /// Concurrent clients (each on its own entity).
        #[arg(long, default_value_t = 16)]
        clients: usize,
        /// Commands per client.
        #[arg(long, default_value_t = 1_000)]
        commands: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Benchmark the read models: rebuild every projection from position 1 over a generated
    /// log, then time bilateral-relation queries on a pair with many meetings.
    #[command(
        after_help = "Example:\n  dipledger bench-projections --events 200000 --relation-meetings 10000"
    )]
    BenchProjections {
        /// Events in the generated log that is rebuilt.
        #[arg(long, default_value_t = 200_000)]
        events: u64,
        /// Held meetings between the queried pair.
        #[arg(long, default_value_t = 10_000)]
        relation_meetings: u64,
        /// Relation queries timed.
        #[arg(long, default_value_t = 2_000)]
        queries: usize,
    },
    /// Drive a running server over gRPC with workloads W1-W6 (bounded in count and time) and
    /// print a table, or JSON with --json. Writes parties B0000.. to the target's ledger.
    #[command(
        after_help = "Example:\n  dipledger serve --data-dir /tmp/bench-data &\n  dipledger bench --target http://127.0.0.1:50051 --server-pid $!"
    )]
    Bench {
        /// The server to drive.
        #[arg(long, env = "DIPLEDGER_SERVER", default_value = "http://127.0.0.1:50051")]
        target: String,
        /// W1 requests.
        #[arg(long, default_value_t = 2_000)]
        w1: usize,
        /// W2 requests.
        #[arg(long, default_value_t = 20_000)]
        w2: usize,
        /// W3 batches of 100.
        #[arg(long, default_value_t = 400)]
        w3: usize,
        /// W5 events (appended at 2,000/s).
        #[arg(long, default_value_t = 4_000)]
        w5: usize,
        /// W6 successful commands.
        #[arg(long, default_value_t = 1_000)]
        w6: usize,
        /// Idle subscribers held open during the run.
        #[arg(long, default_value_t = 0)]
        subscribers: usize,
        /// Live subscribers, each on its own connection, reading every event from the head on
        /// during the whole run (checked to receive everything).
        #[arg(long, default_value_t = 0)]
        live_subscribers: usize,
        /// The server's pid, to report its peak RSS.
        #[arg(long)]
        server_pid: Option<u32>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Crash-test helper (hidden): appends forever from several threads, printing `try` before
    /// and `ack` after each durable append, until killed.
    #[command(hide = true)]
    AppendLoop {
        /// The data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// Appending threads.
        #[arg(long, default_value_t = 4)]
        threads: usize,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve {
            listen,
            data_dir,
            max_subscriptions,
            checkpoint_interval_ms,
            snapshot_interval_ms,
        } => {
            let config = dipledger::api::server::ServerConfig {
                listen,
                data_dir,
                options: dipledger::api::server::ServerOptions {
                    max_subscriptions,
                    snapshot_interval: std::time::Duration::from_millis(snapshot_interval_ms),
                },
                checkpoint_interval: std::time::Duration::from_millis(checkpoint_interval_ms),
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(dipledger::api::server::serve(config, shutdown_signal()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify { data_dir } => {
            if !data_dir.join("db").exists() {
                anyhow::bail!("{} is not a dipledger data directory", data_dir.display());
            }
            let log = match Log::open(LogConfig::new(&data_dir).verify_on_open(0)) {
                Ok(log) => log,
                Err(error) => return Ok(report_verify_error(error)),
            };
            let bar = progress_bar("verifying");
            let verified = log.verify(&mut |done, total| {
                bar.set_length(total);
                bar.set_position(done);
            });
            bar.finish_and_clear();
            match verified {
                Ok(report) => {
                    println!(
                        "ok: {} events, {} streams, {} commands, head chain hash {}",
                        report.events,
                        report.streams,
                        report.commands,
                        hex(&report.head_chain_hash)
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(error) => Ok(report_verify_error(error)),
            }
        }
        Command::AppendLoop { data_dir, threads } => append_loop(data_dir, threads),
        Command::Bench {
            target,
            w1,
            w2,
            w3,
            w5,
            w6,
            subscribers,
            live_subscribers,
            server_pid,
            json,
        } => {
            let config = cli::loadgen::LoadConfig {
                target,
                w1_requests: w1,
                w2_requests: w2,
                w3_batches: w3,
                w5_events: w5,
                w6_successes: w6,
                idle_subscribers: subscribers,
                live_subscribers,
                server_pid,
            };
            let runtime = tokio::runtime::Runtime::new()?;
            let report = runtime.block_on(cli::loadgen::run(&config))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", cli::loadgen::table(&report));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::BenchProjections {
            events,
            relation_meetings,
            queries,
        } => {
            let temp = tempfile::tempdir().context("creating a temporary directory")?;
            let config = dipledger::projections::bench::BenchConfig {
                events,
                relation_meetings,
                queries,
            };
            let report =
                dipledger::projections::bench::run(temp.path(), &config, &mut |line| eprintln!("{line}"))?;
            println!("{report:#?}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Rebuild { data_dir, only } => rebuild(&data_dir, only.as_deref()),
        Command::Party(verb) => record(cli::record::party(verb)),
        Command::Retract {
            stream_id,
            version,
            reason,
            common,
        } => record(cli::record::retract(&stream_id, version, reason, common)),
        Command::Source(verb) => record(cli::record::source(verb)),
        Command::Official(verb) => record(cli::record::official(verb)),
        Command::Meeting(verb) => record(cli::record::meeting(verb)),
        Command::Commitment(verb) => record(cli::record::commitment(verb)),
        Command::Relation {
            party_a,
            party_b,
            read,
            svg,
        } => {
            let runtime = tokio::runtime::Runtime::new()?;
            let as_of = read.as_of.as_deref();
            if let Some(path) = svg {
                let drawn = cli::client::relation_svg(&read.server, &party_a, &party_b, as_of, &path);
                eprint!("{}", runtime.block_on(drawn)?);
            }
            let relation = cli::client::relation(&read.server, &party_a, &party_b, as_of, read.json);
            print!("{}", runtime.block_on(relation)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::History { stream_id, read } => {
            let runtime = tokio::runtime::Runtime::new()?;
            let history = cli::client::history(&read.server, &stream_id, read.as_of.as_deref(), read.json);
            print!("{}", runtime.block_on(history)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Tail {
            from,
            event_types,
            tags,
            json,
            limit,
            server,
        } => {
            let from = match from.as_str() {
                "start" => cli::client::TailFrom::Start,
                "end" => cli::client::TailFrom::End,
                position => cli::client::TailFrom::After(
                    position
                        .parse()
                        .with_context(|| format!("--from {position:?} is not start, end or a position"))?,
                ),
            };
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(cli::client::tail(
                &server,
                from,
                event_types,
                tags,
                json,
                limit,
                &mut |line| println!("{line}"),
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { server } => {
            let runtime = tokio::runtime::Runtime::new()?;
            print!("{}", runtime.block_on(cli::demo::run(server))?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Export {
            data_dir,
            out,
            format,
        } => {
            if !data_dir.join("db").exists() {
                anyhow::bail!("{} is not a dipledger data directory", data_dir.display());
            }
            let log = Log::open(LogConfig::new(&data_dir))
                .context("opening the data directory (is the server running?)")?;
            let mut writer: Box<dyn std::io::Write> = if out.as_os_str() == "-" {
                Box::new(std::io::BufWriter::new(std::io::stdout().lock()))
            } else {
                Box::new(std::io::BufWriter::new(
                    std::fs::File::create(&out).with_context(|| format!("creating {}", out.display()))?,
                ))
            };
            let lines = match format.as_str() {
                "cameo-tsv" => dipledger::analyst::export(
                    &log,
                    dipledger::analyst::AnalystFormat::CameoTsv,
                    &mut writer,
                )?,
                "plover" => dipledger::analyst::export(
                    &log,
                    dipledger::analyst::AnalystFormat::PloverJsonl,
                    &mut writer,
                )?,
                _ => dipledger::log::backup::export_jsonl(&log, &mut writer, &mut |_, _| {})?,
            };
            eprintln!(
                "exported {lines} {}",
                if format == "jsonl" { "events" } else { "coded rows" }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Restore { data_dir, from } => {
            let mut reader: Box<dyn std::io::BufRead> = if from.as_os_str() == "-" {
                Box::new(std::io::BufReader::new(std::io::stdin().lock()))
            } else {
                Box::new(std::io::BufReader::new(
                    std::fs::File::open(&from).with_context(|| format!("opening {}", from.display()))?,
                ))
            };
            match dipledger::log::backup::restore_jsonl(&mut reader, &data_dir, &mut |_| {}) {
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
        Command::BenchLedger {
            clients,
            commands,
            json,
        } => {
            let temp = tempfile::tempdir().context("creating a temporary directory")?;
            let result = cli::benchmark::ledger_workload(temp.path(), clients, commands)?;
            let report = cli::benchmark::BenchReport {
                log_events: result.events,
                workloads: vec![result],
                peak_rss_mib: cli::benchmark::peak_rss_mib(),
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", cli::benchmark::table(&report));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::BenchLog {
            events,
            prefill,
            cache_mib,
            dir,
            json,
        } => {
            let temp = tempfile::tempdir().context("creating a temporary directory")?;
            let dir = dir.unwrap_or_else(|| temp.path().join("bench"));
            let report = cli::benchmark::run(&dir, events, prefill, cache_mib * 1024 * 1024)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", cli::benchmark::table(&report));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A progress bar on a terminal (hidden in scripts, when stderr is not a terminal).
fn progress_bar(what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg:<24} [{bar:40}] {pos}/{len} ({eta})")
            .expect("valid progress template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

/// Runs a recording verb and prints what it recorded.
fn record(verb: impl std::future::Future<Output = anyhow::Result<String>>) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new()?;
    print!("{}", runtime.block_on(verb)?);
    Ok(ExitCode::SUCCESS)
}

/// Rebuilds read models offline, with progress on a terminal.
fn rebuild(data_dir: &std::path::Path, only: Option<&str>) -> anyhow::Result<ExitCode> {
    use dipledger::projections::{ProjectionName, Projections};
    if !data_dir.join("db").exists() {
        anyhow::bail!("{} is not a dipledger data directory", data_dir.display());
    }
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
    let log =
        Log::open(LogConfig::new(data_dir)).context("opening the data directory (is the server running?)")?;
    let projections = Projections::open_paused(log)?;
    for name in names {
        let bar = progress_bar(&format!("rebuilding {}", name.as_str()));
        let position = projections.rebuild(name, &mut |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })?;
        bar.finish_and_clear();
        println!("rebuilt {} to position {position}", name.as_str());
    }
    Ok(ExitCode::SUCCESS)
}

/// Appends until killed; see `Command::AppendLoop`. Lines: `try <command_id>` then
/// `ack <command_id> <first_position> <count> <first_event_id>`.
fn append_loop(data_dir: PathBuf, threads: usize) -> anyhow::Result<ExitCode> {
    use dipledger::log::{AppendRequest, EventDraft, ExpectedVersion};
    use dipledger::time::{OccurredAt, Precision, Timestamp};
    use std::io::Write;
    let log = Log::open(LogConfig::new(&data_dir))?;
    let stdout = std::sync::Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let workers: Vec<_> = (0..threads)
        .map(|thread| {
            let (log, stdout) = (log.clone(), stdout.clone());
            std::thread::spawn(move || -> anyhow::Result<()> {
                for i in 0u64.. {
                    let count = 1 + (i % 3) as usize;
                    let events = (0..count)
                        .map(|e| EventDraft {
                            event_type: "CrashTest".into(),
                            schema_version: 1,
                            occurred_at: OccurredAt::new(
                                Timestamp::from_unix_micros(i as i64),
                                Precision::Exact,
                            ),
                            tags: vec![format!("thread:{thread}")],
                            payload: vec![e as u8; 64 + (i as usize * 37) % 700],
                        })
                        .collect();
                    let command_id = uuid::Uuid::now_v7();
                    let stream = format!("crash-{}", (i + thread as u64) % 10);
                    let request =
                        AppendRequest::new(command_id, stream, ExpectedVersion::Any, "crash", events);
                    writeln!(stdout.lock().expect("stdout"), "try {command_id}")?;
                    let result = log.append_blocking(request)?;
                    let mut out = stdout.lock().expect("stdout");
                    writeln!(
                        out,
                        "ack {command_id} {} {} {}",
                        result.first_position(),
                        result.event_ids().len(),
                        result.event_ids()[0]
                    )?;
                    out.flush()?;
                }
                Ok(())
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("append thread")?;
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
