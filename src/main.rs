//! The `dipledger` binary: a thin command line over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use dipledger::log::{Log, LogConfig, LogError};

/// dipledger: an event-sourced, append-only ledger of diplomatic activity.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Scan a data directory offline: every record, the hash chain and the indexes.
    /// Exits 0 when intact, 2 with the first damaged position otherwise.
    #[command(after_help = "Example:\n  dipledger verify --data-dir ./data")]
    Verify {
        /// The data directory (the server must not be running on it).
        #[arg(long, env = "DIPLEDGER_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
    },
    /// Benchmark the event log in process on a fresh temporary directory (durable appends:
    /// 1, 16 and 4 appenders; full read). Prints a table, or JSON with --json.
    #[command(after_help = "Example:\n  dipledger bench-log --events 200000 --json")]
    BenchLog {
        /// About how many events each append workload writes.
        #[arg(long, default_value_t = 100_000)]
        events: u64,
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
        Command::Verify { data_dir } => {
            if !data_dir.join("db").exists() {
                anyhow::bail!("{} is not a dipledger data directory", data_dir.display());
            }
            let log = match Log::open(LogConfig::new(&data_dir).verify_on_open(0)) {
                Ok(log) => log,
                Err(error) => return Ok(report_verify_error(error)),
            };
            match log.verify(&mut |_, _| {}) {
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
        Command::BenchLog { events, cache_mib, dir, json } => {
            let temp = tempfile::tempdir().context("creating a temporary directory")?;
            let dir = dir.unwrap_or_else(|| temp.path().join("bench"));
            let report = dipledger::benchmark::run(&dir, events, cache_mib * 1024 * 1024)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", dipledger::benchmark::table(&report));
            }
            Ok(ExitCode::SUCCESS)
        }
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
