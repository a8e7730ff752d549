//! In-process benchmark of the event log (`dipledger-bench log`): durable appends with 1, 16
//! and 4 concurrent appenders and a full forwards read, on a fresh data directory. Every append
//! is acknowledged only after flush + fsync, exactly as in production.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;
use uuid::Uuid;

use dipledger::log::{
    AppendRequest, Direction, EventDraft, EventFilter, ExpectedVersion, Log, LogConfig, LogResult,
};
use dipledger::time::{OccurredAt, Precision, Timestamp};

/// Payload size used by every workload, in bytes.
pub const BENCH_PAYLOAD_BYTES: usize = 400;

/// Result of one workload.
#[derive(Debug, Clone, Serialize)]
pub struct WorkloadResult {
    /// Short name.
    pub name: String,
    /// Concurrent appenders (or readers).
    pub clients: usize,
    /// Events per append request.
    pub events_per_append: usize,
    /// Events written or read.
    pub events: u64,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Events per second.
    pub events_per_second: f64,
    /// Median append latency in microseconds (0 for reads).
    pub p50_micros: f64,
    /// 99th percentile append latency in microseconds (0 for reads).
    pub p99_micros: f64,
    /// What the writer did during the workload.
    pub writer: dipledger::log::WriterStats,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Workload results in the order run.
    pub workloads: Vec<WorkloadResult>,
    /// Events in the log at the end.
    pub log_events: u64,
    /// Peak resident set size of this process, in MiB (VmHWM).
    pub peak_rss_mib: f64,
}

fn bench_draft(seed: u64) -> EventDraft {
    EventDraft {
        event_type: "BenchEvent".into(),
        schema_version: 1,
        occurred_at: OccurredAt::new(Timestamp::from_unix_micros(seed as i64), Precision::Exact),
        tags: vec![format!("bench:{}", seed % 16)],
        payload: vec![(seed % 251) as u8; BENCH_PAYLOAD_BYTES],
    }
}

/// Runs `clients` threads, each appending `appends_per_client` requests of `events_per_append`
/// events to streams of its own.
pub fn append_workload(
    log: &Log,
    name: &str,
    clients: usize,
    appends_per_client: usize,
    events_per_append: usize,
    streams_per_client: usize,
) -> LogResult<WorkloadResult> {
    let before = log.stats();
    let started = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|client| {
            let log = log.clone();
            std::thread::spawn(move || -> LogResult<Vec<Duration>> {
                let mut latencies = Vec::with_capacity(appends_per_client);
                for i in 0..appends_per_client {
                    let stream = format!("bench-{client}-{}", i % streams_per_client.max(1));
                    let events = (0..events_per_append as u64)
                        .map(|e| bench_draft(i as u64 + e))
                        .collect();
                    let request =
                        AppendRequest::new(Uuid::now_v7(), stream, ExpectedVersion::Any, "bench", events);
                    let begun = Instant::now();
                    log.append_blocking(request)?;
                    latencies.push(begun.elapsed());
                }
                Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for handle in handles {
        latencies.extend(handle.join().expect("bench thread")?);
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let percentile = |p: f64| {
        let index = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[index].as_secs_f64() * 1e6
    };
    let events = (clients * appends_per_client * events_per_append) as u64;
    Ok(WorkloadResult {
        name: name.into(),
        clients,
        events_per_append,
        events,
        seconds,
        events_per_second: events as f64 / seconds,
        p50_micros: percentile(0.50),
        p99_micros: percentile(0.99),
        writer: stats_since(log, &before),
    })
}

/// Reads the whole log forwards page by page.
pub fn read_workload(log: &Log) -> LogResult<WorkloadResult> {
    let started = Instant::now();
    let filter = EventFilter::default();
    let mut position = 1;
    let mut events = 0u64;
    loop {
        let page = log.read_all(position, Direction::Forwards, usize::MAX, &filter)?;
        events += page.events.len() as u64;
        position = page.next_position;
        if page.reached_end {
            break;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(WorkloadResult {
        name: "read-all".into(),
        clients: 1,
        events_per_append: 0,
        events,
        seconds,
        events_per_second: events as f64 / seconds,
        p50_micros: 0.0,
        p99_micros: 0.0,
        writer: Default::default(),
    })
}

fn stats_since(log: &Log, before: &dipledger::log::WriterStats) -> dipledger::log::WriterStats {
    let now = log.stats();
    dipledger::log::WriterStats {
        commits: now.commits - before.commits,
        syncs: now.syncs - before.syncs,
        events: now.events - before.events,
        apply_micros: now.apply_micros - before.apply_micros,
        sync_micros: now.sync_micros - before.sync_micros,
        journal_bytes: now.journal_bytes - before.journal_bytes,
        checkpoints: now.checkpoints - before.checkpoints,
        checkpoint_micros: now.checkpoint_micros - before.checkpoint_micros,
        checkpoints_deferred: now.checkpoints_deferred - before.checkpoints_deferred,
        tree_nanos: now.tree_nanos - before.tree_nanos,
        led_by_appenders: now.led_by_appenders - before.led_by_appenders,
        writer_wakeups: now.writer_wakeups - before.writer_wakeups,
        sled_command_lookups: now.sled_command_lookups - before.sled_command_lookups,
    }
}

/// Peak RSS of this process in MiB, from /proc/self/status (0 where unavailable).
pub fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Runs the standard workloads on a log in `dir`, scaled so that each writes about `events`,
/// after first filling the log with `prefill` events (4 appenders x 100 events, not timed), to
/// show how append cost changes with the size of the log.
pub fn run(dir: &Path, events: u64, prefill: u64, cache_capacity_bytes: u64) -> LogResult<BenchReport> {
    let log = Log::open(LogConfig::new(dir).cache_capacity_bytes(cache_capacity_bytes))?;
    let per_appender = (prefill / 400) as usize;
    if per_appender > 0 {
        append_workload(&log, "prefill", 4, per_appender, 100, 1_000)?;
    }
    let events = events.max(1_000) as usize;
    let single = (events / 10).clamp(1_000, 20_000);
    let mut workloads = vec![
        append_workload(&log, "1 appender x 1 event", 1, single, 1, 1_000)?,
        append_workload(&log, "16 appenders x 1 event", 16, events / 16, 1, 1_000)?,
        append_workload(&log, "4 appenders x 100 events", 4, events / 400, 100, 100)?,
    ];
    workloads.push(read_workload(&log)?);
    let log_events = log.head();
    Ok(BenchReport {
        workloads,
        log_events,
        peak_rss_mib: peak_rss_mib(),
    })
}

/// A plain-text table of a report.
pub fn table(report: &BenchReport) -> String {
    let mut out = format!(
        "{:<28} {:>8} {:>10} {:>12} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}\n",
        "workload",
        "events",
        "seconds",
        "events/s",
        "p50 us",
        "p99 us",
        "ev/commit",
        "apply us",
        "sync us",
        "tree ns/ev"
    );
    for w in &report.workloads {
        out.push_str(&format!(
            "{:<28} {:>8} {:>10.3} {:>12.0} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>10.0}\n",
            w.name,
            w.events,
            w.seconds,
            w.events_per_second,
            w.p50_micros,
            w.p99_micros,
            w.writer.events as f64 / w.writer.commits.max(1) as f64,
            w.writer.apply_micros as f64 / w.writer.commits.max(1) as f64,
            w.writer.sync_micros as f64 / w.writer.syncs.max(1) as f64,
            w.writer.tree_nanos as f64 / w.writer.events.max(1) as f64,
        ));
    }
    out.push_str(&format!(
        "log events: {}, peak RSS: {:.1} MiB\n",
        report.log_events, report.peak_rss_mib
    ));
    out
}

/// Command handling in process: `clients` concurrent tasks, each recording statements at a meeting
/// of its own (decide + durable append through the ledger), after the news report set-up.
pub fn ledger_workload(
    dir: &Path,
    clients: usize,
    commands_per_client: usize,
) -> anyhow::Result<WorkloadResult> {
    use dipledger::domain::meeting::{self, Speaker};
    use dipledger::domain::DomainCommand;
    use dipledger::ledger::{CommandEnvelope, Ledger};
    use dipledger::sample;

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let log = Log::open(LogConfig::new(dir))?;
        let ledger = Ledger::new(log.clone());
        for command in sample::news_report_commands() {
            ledger
                .handle(CommandEnvelope::new(Uuid::now_v7(), command, "bench"))
                .await?;
        }
        let meetings: Vec<_> = (0..clients)
            .map(|_| dipledger::domain::common::MeetingId::from_uuid(Uuid::now_v7()))
            .collect();
        for meeting_id in &meetings {
            let held = DomainCommand::Meeting(meeting::Command::RecordMeetingHeld {
                meeting_id: *meeting_id,
                details: sample::held_details(),
                ended_at: None,
                provenance: sample::cite(sample::TEXT_TALKS),
            });
            ledger
                .handle(CommandEnvelope::new(Uuid::now_v7(), held, "bench"))
                .await?;
        }
        let before = log.stats();
        let started = Instant::now();
        let tasks: Vec<_> = meetings
            .into_iter()
            .map(|meeting_id| {
                let ledger = ledger.clone();
                tokio::spawn(async move {
                    let mut latencies = Vec::with_capacity(commands_per_client);
                    for i in 0..commands_per_client {
                        let statement = DomainCommand::Meeting(meeting::Command::RecordStatement {
                            meeting_id,
                            speaker: Speaker {
                                party: "LBY".into(),
                                official_id: Some(sample::official_a()),
                            },
                            text: format!("statement {i}"),
                            verbatim: false,
                            provenance: sample::cite(sample::TEXT_EMPHASIS),
                        });
                        let begun = Instant::now();
                        ledger
                            .handle(CommandEnvelope::new(Uuid::now_v7(), statement, "bench"))
                            .await?;
                        latencies.push(begun.elapsed());
                    }
                    anyhow::Ok(latencies)
                })
            })
            .collect();
        let mut latencies = Vec::new();
        for task in tasks {
            latencies.extend(task.await??);
        }
        let seconds = started.elapsed().as_secs_f64();
        latencies.sort_unstable();
        let percentile = |p: f64| {
            let index = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
            latencies[index].as_secs_f64() * 1e6
        };
        let commands = (clients * commands_per_client) as u64;
        Ok(WorkloadResult {
            name: format!("ledger: {clients} clients x 1 command"),
            clients,
            events_per_append: 1,
            events: commands,
            seconds,
            events_per_second: commands as f64 / seconds,
            p50_micros: percentile(0.50),
            p99_micros: percentile(0.99),
            writer: stats_since(&log, &before),
        })
    })
}
