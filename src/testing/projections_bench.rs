//! Benchmarks of the read models, run as `dipledger-bench projections`:
//! - rebuild: every read model built from position 1 over a generated log of `events` events
//!   (meetings held with 0-11 statements, a third of them corrected; commitments recorded,
//!   reaffirmed, with 0-3 progress reports, assessed; among 20 parties), reported as events per
//!   second for all read models together (snapshots every `SNAPSHOT_EVENTS` included), then each
//!   read model alone (CPU microseconds per event, the log read, decode and fold included), the
//!   resident memory the read models added, the snapshot's size and the time to reopen from it;
//! - queries on that log: a meeting as of a position before its last event, and a page of 100
//!   meetings of one party, `queries` times each;
//! - long streams: [`LONG_MEETINGS`] meetings at the statement limit, built, µs per event;
//! - relation query latency: one pair with `relation_meetings` held meetings, the relation
//!   (summary plus a first timeline page of [`RELATION_PAGE`] items) queried `queries` times.

use std::path::Path;
use std::time::Instant;

use uuid::Uuid;

use crate::domain::commitment::{
    self, AssessmentStage, CommitmentDetails, CommitmentKind, CooperationKind, PartyScore, Specificity,
};
use crate::domain::common::{CommitmentId, MeetingId, OfficialId, Provenance, SourceCitation, SourceId};
use crate::domain::meeting::{
    self, Location, MeetingDetails, MeetingFormat, Participant, Speaker, MAX_STATEMENTS_PER_MEETING,
};
use crate::domain::DomainEvent;
use crate::log::{AppendRequest, EventDraft, ExpectedVersion, Log, LogConfig};
use crate::projections::error::ProjectionResult;
use crate::projections::{PageRequest, ProjectionName, Projections, ReadOptions};
use crate::time::{OccurredAt, Precision, Timestamp};

/// Timeline items per relation query in the latency benchmark.
pub const RELATION_PAGE: usize = 100;
const PARTIES: usize = 20;
/// First entity number of the pair's meetings added for the queries under a writer, and of the
/// writer's entities (far above the rebuilt log's, so all are new streams).
const PAIR_ENTITIES_FROM: u64 = 1 << 32;
const WRITER_ENTITIES_FROM: u64 = 1 << 33;
/// Events of the stream whose whole history is timed under a writer.
pub const HISTORY_STREAM_EVENTS: usize = 1_000;
/// Rate of the writer the queries are timed under.
pub const WRITER_COMMANDS_PER_SECOND: f64 = 2_000.0;
/// Meetings at the statement limit in the long-stream benchmark.
pub const LONG_MEETINGS: u64 = 100;
const REQUESTS_PER_TRANSACTION: usize = 1_000;

/// What to measure.
#[derive(Debug, Clone, Copy)]
pub struct BenchConfig {
    /// Events in the rebuild benchmark's log.
    pub events: u64,
    /// Held meetings between the queried pair.
    pub relation_meetings: u64,
    /// Relation queries timed.
    pub queries: usize,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            events: 1_000_000,
            relation_meetings: 10_000,
            queries: 2_000,
        }
    }
}

/// The measurements.
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// Events rebuilt.
    pub events: u64,
    /// Seconds to write the generated log (not part of the projection figure).
    pub append_seconds: f64,
    /// Seconds to build every read model from position 1.
    pub rebuild_seconds: f64,
    /// `events / rebuild_seconds`.
    pub events_per_second: f64,
    /// CPU time of the whole process (every thread, user and system) during the rebuild, µs per
    /// event: steadier than the wall time on a shared machine, and what the rebuild takes from a
    /// server's write path. The snapshot thread's work after the rebuild returns (the end of its
    /// base snapshot) is not in it.
    pub rebuild_cpu_micros_per_event: f64,
    /// Each read model rebuilt alone: (name, wall microseconds per event, CPU microseconds per
    /// event of the whole process: the log read, decode and fold included).
    pub micros_per_event: Vec<(&'static str, f64, f64)>,
    /// Resident memory the read models added (after the rebuild minus before), MiB.
    pub read_model_mib: f64,
    /// Snapshot bytes written by the rebuild (all snapshots), and the seconds to reopen from
    /// the last one (load, no replay).
    pub snapshot_bytes: u64,
    /// Seconds to reopen the read models from their snapshot.
    pub reopen_seconds: f64,
    /// A meeting as of a position before its last event: p50, p99, max (µs).
    pub as_of_micros: (u64, u64, u64),
    /// A page of 100 meetings of one party: p50, p99, max (µs).
    pub list_micros: (u64, u64, u64),
    /// Meetings between the queried pair.
    pub relation_meetings: u64,
    /// Relation query latency percentiles, microseconds: p50, p99, max.
    pub query_micros: (u64, u64, u64),
    /// Every read model built over [`LONG_MEETINGS`] meetings at the statement limit,
    /// microseconds per event: the cost of long streams (each event folds into a copy of a
    /// state that holds every earlier statement).
    pub long_meeting_micros: f64,
    /// Queries on the rebuilt log (plus the pair's meetings and a long stream) while a writer
    /// appends.
    pub under_writer: UnderWriter,
}

fn provenance(day: i64) -> Provenance {
    Provenance {
        occurred_at: OccurredAt::new(
            Timestamp::from_unix_micros(1_577_836_800_000_000 + day * 86_400_000_000),
            Precision::Day,
        ),
        sources: vec![SourceCitation {
            source_id: SourceId::from_uuid(Uuid::from_u128(1)),
            quote: None,
        }],
    }
}

fn code(index: usize) -> String {
    format!("P{index:02}")
}

fn details(a: usize, b: usize, n: u64) -> MeetingDetails {
    MeetingDetails {
        format: MeetingFormat::Bilateral,
        participants: vec![
            Participant {
                party: code(a),
                official_id: Some(OfficialId::from_uuid(Uuid::from_u128(0x1000 + a as u128))),
                role: None,
            },
            Participant {
                party: code(b),
                official_id: Some(OfficialId::from_uuid(Uuid::from_u128(0x1000 + b as u128))),
                role: None,
            },
        ],
        location: Some(Location {
            place: format!("City {}", n % 50),
            country: Some(code(a)),
        }),
        topics: vec![
            "security".into(),
            ["trade", "energy", "migration"][(n % 3) as usize].into(),
        ],
        summary: None,
        negotiation: false,
    }
}

/// The events of generated entity `n` (3 events) with its stream.
fn entity(n: u64, pair: Option<(usize, usize)>) -> (String, Vec<DomainEvent>) {
    let (a, b) = pair.unwrap_or((
        (n % PARTIES as u64) as usize,
        ((n * 7 + 3) % PARTIES as u64) as usize,
    ));
    let b = if a == b { (b + 1) % PARTIES } else { b };
    let day = (n % 2_000) as i64;
    if pair.is_some() || n % 2 == 0 {
        let meeting_id = MeetingId::from_uuid(Uuid::from_u128(0x10_0000_0000 + u128::from(n)));
        let mut events = vec![DomainEvent::Meeting(meeting::Event::MeetingHeld(
            meeting::MeetingHeld {
                meeting_id,
                details: details(a, b, n),
                ended_at: None,
                provenance: provenance(day),
            },
        ))];
        let statements = if pair.is_none() { n % 12 } else { 0 };
        for index in 0..statements {
            events.push(DomainEvent::Meeting(meeting::Event::StatementRecorded(
                meeting::StatementRecorded {
                    meeting_id,
                    speaker: Speaker {
                        party: code(if index % 2 == 0 { a } else { b }),
                        official_id: None,
                    },
                    text: format!(
                        "Statement {index}: we discussed cooperation on security, trade and the \
                         situation in the region, and agreed to meet again."
                    ),
                    verbatim: false,
                    provenance: provenance(day),
                },
            )));
        }
        if pair.is_none() && n % 3 == 0 {
            events.push(DomainEvent::Meeting(meeting::Event::MeetingCorrected(
                meeting::MeetingCorrected {
                    meeting_id,
                    corrects_version: 1,
                    reason: "topics".into(),
                    details: details(a, b, n + 1),
                    provenance: provenance(day),
                },
            )));
        }
        return (meeting_id.stream_id(), events);
    }
    let commitment_id = CommitmentId::from_uuid(Uuid::from_u128(0x20_0000_0000 + u128::from(n)));
    let events = vec![
        DomainEvent::Commitment(commitment::Event::CommitmentRecorded(
            commitment::CommitmentRecorded {
                commitment_id,
                details: CommitmentDetails {
                    kind: CommitmentKind::New,
                    committing_parties: vec![code(a), code(b)],
                    voiced_by: vec![],
                    counterparties: vec![],
                    text: "cooperate on security".into(),
                    verbatim: false,
                    topics: vec!["security".into()],
                    specificity: Specificity::Specific,
                    cooperation: CooperationKind::Diplomatic,
                    due_by: Some(provenance(day + 365).occurred_at),
                    made_at_meeting: None,
                },
                provenance: provenance(day),
            },
        )),
        DomainEvent::Commitment(commitment::Event::CommitmentReaffirmed(
            commitment::CommitmentReaffirmed {
                commitment_id,
                reaffirmed_by: vec![code(a)],
                voiced_by: vec![],
                at_meeting: None,
                text: None,
                provenance: provenance(day + 30),
            },
        )),
    ];
    let mut events = events;
    for index in 0..(n % 4) {
        events.push(DomainEvent::Commitment(
            commitment::Event::CommitmentProgressReported(commitment::CommitmentProgressReported {
                commitment_id,
                summary: format!("Progress {index}: a joint working group met and reported."),
                provenance: provenance(day + 40),
            }),
        ));
    }
    events.push(DomainEvent::Commitment(commitment::Event::ComplianceAssessed(
        commitment::ComplianceAssessed {
            commitment_id,
            stage: AssessmentStage::Interim,
            assessor: "bench".into(),
            rationale: "generated".into(),
            scores: vec![PartyScore {
                party: code(a),
                score: (n % 3) as i8 - 1,
            }],
            provenance: provenance(day + 60),
        },
    )));
    (commitment_id.stream_id(), events)
}

/// A few generated streams: meetings with and without statements and corrections, and
/// commitments with progress reports.
#[cfg(test)]
pub(crate) fn sample_streams() -> Vec<(String, Vec<DomainEvent>)> {
    [0, 3, 6, 7, 11].into_iter().map(|n| entity(n, None)).collect()
}

/// The events of a meeting held between P00 and P01 with `statements` statements.
fn long_meeting(n: u64, statements: usize) -> (String, Vec<DomainEvent>) {
    let meeting_id = MeetingId::from_uuid(Uuid::from_u128(0x30_0000_0000 + u128::from(n)));
    let mut events = vec![DomainEvent::Meeting(meeting::Event::MeetingHeld(
        meeting::MeetingHeld {
            meeting_id,
            details: details(0, 1, n),
            ended_at: None,
            provenance: provenance(0),
        },
    ))];
    for index in 0..statements {
        events.push(DomainEvent::Meeting(meeting::Event::StatementRecorded(
            meeting::StatementRecorded {
                meeting_id,
                speaker: Speaker {
                    party: code(index % 2),
                    official_id: None,
                },
                text: format!("Statement {index}: a paragraph of what was said at the meeting, as reported."),
                verbatim: false,
                provenance: provenance(0),
            },
        )));
    }
    (meeting_id.stream_id(), events)
}

/// The 1,000-event stream of the history benchmark: a meeting held, with 500 statements and
/// then 499 corrections.
fn history_stream() -> (String, Vec<DomainEvent>) {
    let (stream, mut events) = long_meeting(u64::from(u32::MAX), MAX_STATEMENTS_PER_MEETING);
    let DomainEvent::Meeting(meeting::Event::MeetingHeld(held)) = &events[0] else {
        unreachable!("a long meeting starts held")
    };
    let meeting_id = held.meeting_id;
    while events.len() < HISTORY_STREAM_EVENTS {
        events.push(DomainEvent::Meeting(meeting::Event::MeetingCorrected(
            meeting::MeetingCorrected {
                meeting_id,
                corrects_version: 1,
                reason: "place".into(),
                details: details(0, 1, events.len() as u64),
                provenance: provenance(0),
            },
        )));
    }
    (stream, events)
}

/// Appends `meetings` meetings of `statements` statements each, one transaction per meeting.
fn fill_long_meetings(log: &Log, meetings: u64, statements: usize) -> ProjectionResult<()> {
    for n in 0..meetings {
        let (stream, events) = long_meeting(n, statements);
        append_entity(log, stream, &events)?;
    }
    Ok(())
}

/// Appends one new entity's events in one request (no command is decided: tests use it to
/// build entities at their limits quickly).
pub fn append_entity(log: &Log, stream: String, events: &[DomainEvent]) -> ProjectionResult<()> {
    log.append_transaction_blocking(vec![new_stream_request(stream, events)])?;
    Ok(())
}

/// The request that starts `stream` with `events`.
fn new_stream_request(stream: String, events: &[DomainEvent]) -> AppendRequest {
    let drafts = events
        .iter()
        .map(|event| EventDraft {
            event_type: event.event_type().into(),
            schema_version: event.schema_version(),
            occurred_at: provenance(0).occurred_at,
            tags: event.tags(),
            payload: event.encode_payload(),
        })
        .collect();
    AppendRequest::new(Uuid::now_v7(), stream, ExpectedVersion::NoStream, "bench", drafts)
}

/// Queries timed while a writer thread appends one-event commands at [`WRITER_COMMANDS_PER_SECOND`]
/// and the runner follows the log (as in a server).
#[derive(Debug, Clone)]
pub struct UnderWriter {
    /// Commands the writer appended per second while the queries ran.
    pub writer_commands_per_second: f64,
    /// The relation of the pair with [`BenchConfig::relation_meetings`] more meetings (summary and
    /// a first timeline page): p50, p99, max (µs).
    pub relation_micros: Percentiles,
    /// A page of 100 meetings of one party.
    pub list_micros: Percentiles,
    /// A meeting as of just before its last event.
    pub as_of_micros: Percentiles,
    /// The whole history of a [`HISTORY_STREAM_EVENTS`]-event stream (pages of 500).
    pub history_micros: Percentiles,
    /// Read-model snapshots written while the relation and history queries ran.
    pub snapshots_during_relation_and_history: u64,
    /// The longest of them held the model's write lock this long (µs).
    pub longest_snapshot_hold_micros: u64,
}

/// Adds the pair's meetings and the long history stream to `log`, then times the queries of
/// [`UnderWriter`] with a following runner and a writer at [`WRITER_COMMANDS_PER_SECOND`].
fn time_under_writer(log: &Log, config: &BenchConfig) -> ProjectionResult<UnderWriter> {
    fill_from(log, PAIR_ENTITIES_FROM, config.relation_meetings, Some((0, 1)))?;
    let (history_stream, events) = history_stream();
    append_entity(log, history_stream.clone(), &events)?;
    let projections = Projections::open_with(log.clone(), crate::projections::snapshot::SNAPSHOT_INTERVAL)?;
    projections.catch_up()?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (log, stop) = (log.clone(), stop.clone());
        std::thread::spawn(move || -> ProjectionResult<f64> {
            let started = Instant::now();
            let mut written = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let due =
                    started + std::time::Duration::from_secs_f64(written as f64 / WRITER_COMMANDS_PER_SECOND);
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
                let (stream, events) = entity(WRITER_ENTITIES_FROM + written, None);
                append_entity(&log, stream, &events[..1])?;
                written += 1;
            }
            Ok(written as f64 / started.elapsed().as_secs_f64())
        })
    };
    let timed = time_queries_with_writer(log, &projections, &history_stream, config.queries);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let writer_commands_per_second = writer.join().expect("the writer thread does not panic")?;
    let timed = timed?;
    Ok(UnderWriter {
        writer_commands_per_second,
        relation_micros: timed.relation,
        list_micros: timed.list,
        as_of_micros: timed.as_of,
        history_micros: timed.history,
        snapshots_during_relation_and_history: timed.snapshots.0,
        longest_snapshot_hold_micros: timed.snapshots.1,
    })
}

/// What [`time_queries_with_writer`] measured.
struct Timed {
    relation: Percentiles,
    list: Percentiles,
    as_of: Percentiles,
    history: Percentiles,
    /// Snapshots written during the relation and history queries, and the longest time one held
    /// the model's lock (µs).
    snapshots: (u64, u64),
}

/// The four query kinds of [`UnderWriter`], `queries` times each, interleaved.
fn time_queries_with_writer(
    log: &Log,
    projections: &Projections,
    history_stream: &str,
    queries: usize,
) -> ProjectionResult<Timed> {
    let (mut relation, mut history) = (Vec::new(), Vec::new());
    let options = ReadOptions::latest();
    let mut snapshots = projections.snapshot_stats();
    let (mut taken, mut longest_hold) = (0, 0);
    for _ in 0..queries.max(1) {
        let stats = projections.snapshot_stats();
        if stats.written != snapshots.written {
            taken += stats.written - snapshots.written;
            longest_hold = longest_hold.max(stats.last_hold_micros);
            snapshots = stats;
        }
        let started = Instant::now();
        projections.relation("P00", "P01", &PageRequest::first(RELATION_PAGE), &options)?;
        relation.push(started.elapsed().as_micros() as u64);
        let started = Instant::now();
        let mut page = PageRequest::first(crate::projections::history::MAX_HISTORY_PAGE);
        let mut entries = 0;
        loop {
            let answer = projections.history(history_stream, &page, &options)?;
            entries += answer.items().len();
            match answer.next_page_token() {
                Some(token) => {
                    page = PageRequest {
                        limit: crate::projections::history::MAX_HISTORY_PAGE,
                        token: Some(token.to_owned()),
                    }
                }
                None => break,
            }
        }
        history.push(started.elapsed().as_micros() as u64);
        debug_assert_eq!(entries, HISTORY_STREAM_EVENTS);
    }
    let stats = projections.snapshot_stats();
    if stats.written != snapshots.written {
        taken += stats.written - snapshots.written;
        longest_hold = longest_hold.max(stats.last_hold_micros);
    }
    let (as_of, list) = time_queries(log, projections, queries)?;
    Ok(Timed {
        relation: percentiles(relation),
        list,
        as_of,
        history: percentiles(history),
        snapshots: (taken, longest_hold),
    })
}

/// Appends generated entities until `events` events are written.
pub fn fill(log: &Log, events: u64, pair: Option<(usize, usize)>) -> ProjectionResult<()> {
    fill_from(log, 0, events, pair)
}

/// [`fill`] with entity numbers from `first` (so a second fill of one log makes new entities).
pub fn fill_from(log: &Log, first: u64, events: u64, pair: Option<(usize, usize)>) -> ProjectionResult<()> {
    let mut written = 0;
    let mut n = first;
    while written < events {
        let mut requests = Vec::with_capacity(REQUESTS_PER_TRANSACTION);
        while requests.len() < REQUESTS_PER_TRANSACTION && written < events {
            let (stream, mut domain_events) = entity(n, pair);
            n += 1;
            domain_events.truncate((events - written) as usize);
            written += domain_events.len() as u64;
            requests.push(new_stream_request(stream, &domain_events));
        }
        log.append_transaction_blocking(requests)?;
    }
    Ok(())
}

/// Runs both benchmarks in fresh logs under `dir`, reporting steps through `say`.
pub fn run(dir: &Path, config: &BenchConfig, say: &mut dyn FnMut(&str)) -> ProjectionResult<BenchReport> {
    let open = |name: &str| Log::open(LogConfig::new(dir.join(name)));
    let log = open("rebuild")?;
    say(&format!("appending {} events", config.events));
    let started = Instant::now();
    fill(&log, config.events, None)?;
    let append_seconds = started.elapsed().as_secs_f64();
    say(&format!(
        "appended in {append_seconds:.1} s; building every read model from position 1"
    ));
    let resident_before = resident_mib();
    let projections = Projections::open_paused(log.clone())?;
    let (started, cpu_before) = (Instant::now(), process_cpu_seconds());
    projections.catch_up()?;
    let rebuild_seconds = started.elapsed().as_secs_f64();
    let events_per_second = config.events as f64 / rebuild_seconds;
    let rebuild_cpu_micros_per_event = (process_cpu_seconds() - cpu_before) * 1e6 / config.events as f64;
    let read_model_mib = resident_mib() - resident_before;
    say(&format!(
        "rebuilt in {rebuild_seconds:.2} s: {events_per_second:.0} events/s; resident memory +{read_model_mib:.0} MiB"
    ));
    say(&format!(
        "the rebuild's CPU (all threads): {rebuild_cpu_micros_per_event:.2} µs per event"
    ));
    say(&format!(
        "the longest snapshot taken during the rebuild held the model's lock {} µs",
        projections.snapshot_stats().longest_hold_micros
    ));
    let mut micros_per_event = Vec::new();
    for name in ProjectionName::ALL {
        let (started, cpu_before) = (Instant::now(), process_cpu_seconds());
        projections.rebuild(name, &mut |_, _| {})?;
        let micros = started.elapsed().as_secs_f64() * 1e6 / config.events as f64;
        let cpu_micros = (process_cpu_seconds() - cpu_before) * 1e6 / config.events as f64;
        say(&format!(
            "{} alone: {micros:.2} µs per event, CPU {cpu_micros:.2} µs per event",
            name.as_str()
        ));
        micros_per_event.push((name.as_str(), micros, cpu_micros));
    }
    let (as_of_micros, list_micros) = time_queries(&log, &projections, config.queries)?;
    say(&format!(
        "meeting as of an earlier position: p50 {} µs, p99 {} µs; 100 meetings of a party: p50 {} µs, p99 {} µs",
        as_of_micros.0, as_of_micros.1, list_micros.0, list_micros.1
    ));
    let (snapshot_bytes, snapshot_generations) = snapshot_size(&projections)?;
    drop(projections);
    say(&format!(
        "adding {} meetings between P00 and P01 and a {HISTORY_STREAM_EVENTS}-event stream; queries under a writer at {WRITER_COMMANDS_PER_SECOND} commands/s",
        config.relation_meetings
    ));
    let under_writer = time_under_writer(&log, config)?;
    say(&format!("under the writer: {under_writer:?}"));
    let started = Instant::now();
    let reopened = Projections::open_paused(log.clone())?;
    let reopen_seconds = started.elapsed().as_secs_f64();
    say(&format!(
        "snapshot {:.0} MiB in {snapshot_generations} generation(s); reopened in {reopen_seconds:.2} s ({:?})",
        snapshot_bytes as f64 / 1048576.0,
        reopened.snapshot_load()
    ));
    drop(reopened);
    drop(log);

    let log = open("long")?;
    fill_long_meetings(&log, LONG_MEETINGS, MAX_STATEMENTS_PER_MEETING)?;
    let projections = Projections::open_paused(log.clone())?;
    let started = Instant::now();
    projections.catch_up()?;
    let long_events = LONG_MEETINGS * (MAX_STATEMENTS_PER_MEETING as u64 + 1);
    let long_meeting_micros = started.elapsed().as_secs_f64() * 1e6 / long_events as f64;
    say(&format!(
        "{LONG_MEETINGS} meetings of {MAX_STATEMENTS_PER_MEETING} statements: {long_meeting_micros:.2} µs per event"
    ));
    drop(projections);
    drop(log);

    let log = open("relation")?;
    say(&format!(
        "appending {} meetings between P00 and P01",
        config.relation_meetings
    ));
    fill(&log, config.relation_meetings, Some((0, 1)))?;
    let projections = Projections::open_paused(log.clone())?;
    projections.catch_up()?;
    let options = ReadOptions::latest();
    let page = PageRequest::first(RELATION_PAGE);
    let mut latencies = Vec::with_capacity(config.queries);
    for _ in 0..config.queries.max(1) {
        let started = Instant::now();
        let relation = projections.relation("P00", "P01", &page, &options)?;
        latencies.push(started.elapsed().as_micros() as u64);
        debug_assert_eq!(relation.value().summary.meetings as u64, config.relation_meetings);
    }
    let query_micros = percentiles(latencies);
    say(&format!(
        "relation with {} meetings: p50 {} µs, p99 {} µs, max {} µs",
        config.relation_meetings, query_micros.0, query_micros.1, query_micros.2
    ));
    Ok(BenchReport {
        events: config.events,
        append_seconds,
        rebuild_seconds,
        events_per_second,
        rebuild_cpu_micros_per_event,
        micros_per_event,
        read_model_mib,
        snapshot_bytes,
        reopen_seconds,
        as_of_micros,
        list_micros,
        relation_meetings: config.relation_meetings,
        query_micros,
        long_meeting_micros,
        under_writer,
    })
}

/// p50, p99 and max, microseconds.
type Percentiles = (u64, u64, u64);

/// p50, p99 and max of latencies in microseconds.
fn percentiles(mut latencies: Vec<u64>) -> Percentiles {
    latencies.sort_unstable();
    let percentile = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    (
        percentile(0.50),
        percentile(0.99),
        *latencies.last().unwrap_or(&0),
    )
}

/// User and system CPU time of this process so far, seconds (0 where `/proc` is missing).
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name (in parentheses, which may hold spaces): utime and
    // stime are the 14th and 15th fields of the line, in clock ticks (100 per second on Linux).
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: f64 = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|field| field.parse::<f64>().ok())
        .sum();
    ticks / CLOCK_TICKS_PER_SECOND
}

/// Linux's `USER_HZ`, the unit of `/proc/<pid>/stat`'s CPU times.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// Resident memory of this process, MiB (Linux; 0 elsewhere).
fn resident_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|pages| pages.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / 1048576.0
}

/// Key and value bytes of the snapshot tree.
/// Key and value bytes of the snapshot tree and of every chunk tree, and the generations the
/// chunk trees belong to (an earlier generation's chunks stay until the snapshot thread drops
/// them after a new base: more than one means the size counts some of them).
fn snapshot_size(projections: &Projections) -> ProjectionResult<(u64, usize)> {
    let chunks = projections.snapshot_chunks();
    let mut generations: Vec<u64> = chunks.iter().map(|(generation, _, _)| *generation).collect();
    generations.dedup();
    let trees = chunks.into_iter().map(|(_, _, tree)| tree);
    let mut bytes = 0;
    for tree in trees.chain([projections.snapshot_tree()]) {
        for entry in tree.iter() {
            let (key, value) = entry?;
            bytes += (key.len() + value.len()) as u64;
        }
    }
    Ok((bytes, generations.len()))
}

/// Times a meeting as of a position before its last event, and a page of 100 meetings of one
/// party, `queries` times each.
fn time_queries(
    log: &Log,
    projections: &Projections,
    queries: usize,
) -> ProjectionResult<(Percentiles, Percentiles)> {
    let mut as_of = Vec::with_capacity(queries);
    let mut list = Vec::with_capacity(queries);
    let head = log.head();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    for query in 0..queries.max(1) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // Even entity numbers are meetings; their first event is well before the head.
        let n = (rng % (head / 16).max(1)) * 2;
        let meeting_id = MeetingId::from_uuid(Uuid::from_u128(0x10_0000_0000 + u128::from(n)));
        // As of just before its last event: the meeting is folded from its stream.
        let latest = projections.meeting(meeting_id, &ReadOptions::latest())?;
        let before_last = latest.value().last_position - 1;
        let options = ReadOptions::latest().as_of(crate::projections::AsOf::Position(before_last));
        let started = Instant::now();
        let answer = projections.meeting(meeting_id, &options);
        as_of.push(started.elapsed().as_micros() as u64);
        debug_assert!(answer.is_ok_and(|row| row.value().last_position <= before_last));
        let filter = crate::projections::MeetingFilter {
            party: Some(code(query % PARTIES)),
            ..crate::projections::MeetingFilter::default()
        };
        let started = Instant::now();
        let page = projections.meetings(&filter, &PageRequest::first(100), &ReadOptions::latest())?;
        list.push(started.elapsed().as_micros() as u64);
        debug_assert_eq!(page.items().len(), 100);
    }
    Ok((percentiles(as_of), percentiles(list)))
}
