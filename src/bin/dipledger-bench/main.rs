//! `dipledger-bench`: benchmarks, the gRPC load generator and the crash-test child. Not the
//! product: built only with the `test-hooks` feature
//! (`cargo build --release --features test-hooks --bin dipledger-bench`).
//!
//! - `log`: the event log in process (durable appends by 1, 16 and 4 appenders; a full read).
//! - `ledger`: command handling in process (decide + durable append through the ledger).
//! - `projections`: the read models (rebuild, memory, snapshot, reopen, queries).
//! - `workloads`: W1-W6 against a running server over gRPC.
//! - `append-loop` (hidden): appends until killed, for the SIGKILL crash test.

mod audit;
mod log;
mod workloads;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use dipledger::log::{Log, LogConfig};

/// The same allocator as the product binary, so the figures are the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// dipledger-bench: benchmarks and test tools for dipledger (not the product).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Benchmark the event log in process on a fresh temporary directory (durable appends:
    /// 1, 16 and 4 appenders; full read). Prints a table, or JSON with --json.
    #[command(after_help = "Example:\n  dipledger-bench log --events 200000 --json")]
    Log {
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
    #[command(after_help = "Example:\n  dipledger-bench ledger --clients 16 --commands 2000")]
    Ledger {
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
    /// log, then time queries, including bilateral relations on a pair with many meetings.
    #[command(
        after_help = "Example:\n  dipledger-bench projections --events 200000 --relation-meetings 10000"
    )]
    Projections {
        /// Events in the generated log that is rebuilt.
        #[arg(long, default_value_t = 200_000)]
        events: u64,
        /// Held meetings between the queried pair.
        #[arg(long, default_value_t = 10_000)]
        relation_meetings: u64,
        /// Queries timed.
        #[arg(long, default_value_t = 2_000)]
        queries: usize,
    },
    /// Verifiable history at scale: fill a log, time inclusion and consistency proofs over
    /// gRPC at random positions, export it and time the offline verify-export.
    Audit {
        /// Events in the log.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Proofs of each kind timed.
        #[arg(long, default_value_t = 2_000)]
        queries: usize,
    },
    /// Drive a running server over gRPC with workloads W1-W6 (bounded in count and time) and
    /// print a table, or JSON with --json. Writes parties B0000.. to the target's ledger.
    #[command(
        after_help = "Example:\n  dipledger serve --data-dir /tmp/bench-data &\n  dipledger-bench workloads --target http://127.0.0.1:50051 --server-pid $!"
    )]
    Workloads(workloads::LoadConfig),
    /// Crash-test child (hidden): appends forever from several threads, printing `try` before
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
    let result = match Cli::parse().command {
        Command::Log {
            events,
            prefill,
            cache_mib,
            dir,
            json,
        } => bench_log(events, prefill, cache_mib, dir, json),
        Command::Ledger {
            clients,
            commands,
            json,
        } => bench_ledger(clients, commands, json),
        Command::Projections {
            events,
            relation_meetings,
            queries,
        } => bench_projections(events, relation_meetings, queries),
        Command::Workloads(config) => bench_workloads(&config),
        Command::Audit { events, queries } => bench_audit(events, queries),
        Command::AppendLoop { data_dir, threads } => append_loop(data_dir, threads),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints `report` as pretty JSON or as the table `table` makes of it.
fn print_report<R: serde::Serialize>(report: &R, json: bool, table: fn(&R) -> String) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{}", table(report));
    }
    Ok(())
}

/// `log`: the event log's append and read workloads on a fresh directory.
fn bench_log(
    events: u64,
    prefill: u64,
    cache_mib: u64,
    dir: Option<PathBuf>,
    json: bool,
) -> anyhow::Result<()> {
    let temp = tempfile::tempdir().context("creating a temporary directory")?;
    let dir = dir.unwrap_or_else(|| temp.path().join("bench"));
    let report = log::run(&dir, events, prefill, cache_mib * 1024 * 1024)?;
    print_report(&report, json, log::table)
}

/// `ledger`: concurrent clients deciding and appending through the ledger in process.
fn bench_ledger(clients: usize, commands: usize, json: bool) -> anyhow::Result<()> {
    let temp = tempfile::tempdir().context("creating a temporary directory")?;
    let result = log::ledger_workload(temp.path(), clients, commands)?;
    let report = log::BenchReport {
        log_events: result.events,
        workloads: vec![result],
        peak_rss_mib: log::peak_rss_mib(),
    };
    print_report(&report, json, log::table)
}

/// `projections`: the read models over a generated log.
fn bench_projections(events: u64, relation_meetings: u64, queries: usize) -> anyhow::Result<()> {
    use dipledger::testing::projections_bench::{run, BenchConfig};
    let temp = tempfile::tempdir().context("creating a temporary directory")?;
    let config = BenchConfig {
        events,
        relation_meetings,
        queries,
    };
    let report = run(temp.path(), &config, &mut |line| eprintln!("{line}"))?;
    println!("{report:#?}");
    Ok(())
}

/// `audit`: proofs over gRPC and verify-export at scale.
fn bench_audit(events: u64, queries: usize) -> anyhow::Result<()> {
    let temp = tempfile::tempdir().context("creating a temporary directory")?;
    let runtime = tokio::runtime::Runtime::new()?;
    let report = runtime.block_on(audit::run(temp.path(), events, queries))?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// `workloads`: W1-W6 against a running server.
fn bench_workloads(config: &workloads::LoadConfig) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let report = runtime.block_on(workloads::run(config))?;
    print_report(&report, config.json, workloads::table)
}

/// `append-loop`: appends until killed. Lines: `try <command_id>` then
/// `ack <command_id> <first_position> <count> <first_event_id>`.
fn append_loop(data_dir: PathBuf, threads: usize) -> anyhow::Result<()> {
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
    Ok(())
}
