//! Helpers for the projection tests: a minimal ledger stand-in that decides commands on folded
//! state and appends the events, and a reference fold of the log up to a position.

use std::collections::{BTreeMap, HashMap};

use dipledger::domain::common::{Provenance, SourceCitation, SourceId};
use dipledger::domain::meeting;
use dipledger::domain::{
    decide_command, decode_event, evolve_state, AggregateState, DomainCommand, DomainEvent,
};
use dipledger::log::{AppendRequest, Direction, EventDraft, EventFilter, ExpectedVersion, Log, LogConfig};
use dipledger::projections::commitments::ComplianceRow;
use dipledger::projections::meetings::StatementRow;
use dipledger::projections::officials::meeting_contacts;
use dipledger::projections::relations::{commitment_contribution, meeting_contribution, RelationSummary};
use dipledger::projections::{CommitmentRow, MeetingRow, OfficialRow};
use dipledger::time::{OccurredAt, Precision, Timestamp};
use uuid::Uuid;

/// Journal segments of 8 MiB instead of 32: these tests open hundreds of logs, and a
/// segment is created zeroed and read whole on every open. Still large enough for a transaction
/// at MAX_APPEND_PAYLOAD_BYTES.
pub const TEST_SEGMENT_BYTES: u64 = 8 * 1024 * 1024;

/// 2025-01-15T00:00:00Z.
pub const WEDNESDAY_MICROS: i64 = 1_736_899_200_000_000;
pub const DAY_MICROS: i64 = 86_400_000_000;

pub fn day(offset: i64) -> OccurredAt {
    OccurredAt::new(
        Timestamp::from_unix_micros(WEDNESDAY_MICROS + offset * DAY_MICROS),
        Precision::Day,
    )
}

pub fn source_id() -> SourceId {
    SourceId::from_uuid(Uuid::from_u128(0x50))
}

pub fn cite_on(occurred_at: OccurredAt, quote: Option<&str>) -> Provenance {
    Provenance {
        occurred_at,
        sources: vec![SourceCitation {
            source_id: source_id(),
            quote: quote.map(str::to_owned),
        }],
    }
}

pub fn temp_log() -> (tempfile::TempDir, Log) {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = open_log(&dir);
    (dir, log)
}

pub fn open_log(dir: &tempfile::TempDir) -> Log {
    Log::open(
        LogConfig::new(dir.path())
            .cache_capacity_bytes(16 * 1024 * 1024)
            .journal_segments(TEST_SEGMENT_BYTES, 8),
    )
    .expect("open log")
}

/// Decides `command` against the state folded from the log and appends the events, as the
/// ledger would. Returns the last position, or None when the domain rejects the command or a
/// referenced entity does not exist.
pub fn record(log: &Log, command: &DomainCommand, recorded_by: &str) -> Option<u64> {
    for reference in command.references() {
        if log.stream_version(&reference.stream_id()).expect("version") == 0 {
            return None;
        }
    }
    let stream = command.stream_id();
    let events = log
        .read_stream(&stream, 1, Direction::Forwards, 4096)
        .expect("read stream");
    let version = events.len() as u64;
    let state = events
        .iter()
        .fold(AggregateState::empty_for(command), |state, recorded| {
            let envelope = recorded.envelope();
            let event = decode_event(&envelope.event_type, envelope.schema_version, &envelope.payload)
                .expect("decode");
            evolve_state(state, &event)
        });
    let events = decide_command(&state, command).ok()?;
    let drafts = events
        .iter()
        .map(|event| EventDraft {
            event_type: event.event_type().into(),
            schema_version: event.schema_version(),
            occurred_at: command.occurred_at(),
            tags: event.tags(),
            payload: event.encode_payload(),
        })
        .collect();
    let request = AppendRequest::new(
        Uuid::now_v7(),
        stream,
        ExpectedVersion::Exact(version),
        recorded_by,
        drafts,
    );
    Some(log.append_blocking(request).expect("append").last_position())
}

/// The state of every entity folded from the log up to `at`, with the position of its last
/// event.
#[derive(Default)]
pub struct Fold {
    pub meetings: BTreeMap<Uuid, MeetingRow>,
    pub commitments: BTreeMap<Uuid, CommitmentRow>,
    pub officials: BTreeMap<Uuid, OfficialRow>,
    pub parties: BTreeMap<String, (dipledger::domain::party::PartyDetails, u64)>,
    pub sources: BTreeMap<Uuid, dipledger::domain::source::SourceDetails>,
}

pub fn fold(log: &Log, at: u64) -> Fold {
    let mut states: HashMap<String, (AggregateState, u64)> = HashMap::new();
    // Each meeting's statements in effect, kept here from the events themselves (independently
    // of the read model, which reads them back from the log by the versions its state names).
    let mut statements: HashMap<String, BTreeMap<u64, StatementRow>> = HashMap::new();
    let mut next = 1;
    while next <= at {
        let page = log
            .read_all(next, Direction::Forwards, 4096, &EventFilter::default())
            .expect("read all");
        if page.events.is_empty() {
            break;
        }
        for recorded in page.events {
            let envelope = recorded.envelope();
            if envelope.position > at {
                break;
            }
            next = envelope.position + 1;
            let event: DomainEvent =
                decode_event(&envelope.event_type, envelope.schema_version, &envelope.payload)
                    .expect("decode");
            match &event {
                DomainEvent::Meeting(meeting::Event::StatementRecorded(recorded)) => {
                    let row = StatementRow {
                        version: envelope.stream_version,
                        speaker: recorded.speaker.clone(),
                        text: recorded.text.clone(),
                        verbatim: recorded.verbatim,
                        occurred_at: recorded.provenance.occurred_at,
                    };
                    statements
                        .entry(envelope.stream_id.clone())
                        .or_default()
                        .insert(envelope.stream_version, row);
                }
                DomainEvent::Meeting(meeting::Event::MeetingEventRetracted(retracted)) => {
                    if let Some(rows) = statements.get_mut(&envelope.stream_id) {
                        rows.remove(&retracted.retracts_version);
                    }
                }
                _ => {}
            }
            let entry = states
                .remove(&envelope.stream_id)
                .unwrap_or((AggregateState::empty_for_event(&event), 0));
            states.insert(
                envelope.stream_id.clone(),
                (evolve_state(entry.0, &event), envelope.position),
            );
        }
    }
    let mut fold = Fold::default();
    for (stream_id, (state, position)) in states {
        match state {
            AggregateState::Meeting(state) => {
                let in_effect: Vec<StatementRow> = statements
                    .remove(&stream_id)
                    .map(|rows| rows.into_values().collect())
                    .unwrap_or_default();
                let named: Vec<u64> = in_effect.iter().map(|row| row.version).collect();
                assert_eq!(
                    state.statement_versions().collect::<Vec<_>>(),
                    named,
                    "{stream_id}: the state names the statements in effect"
                );
                let row = MeetingRow::from_state(&state, position, in_effect).expect("meeting");
                fold.meetings.insert(row.meeting_id.uuid(), row);
            }
            AggregateState::Commitment(state) => {
                let row = CommitmentRow::from_state(&state, position).expect("commitment");
                fold.commitments.insert(row.commitment_id.uuid(), row);
            }
            AggregateState::Official(state) => {
                let row = OfficialRow::from_state(&state, position).expect("official");
                fold.officials.insert(row.official_id.uuid(), row);
            }
            AggregateState::Party(state) => {
                fold.parties.insert(
                    state.code().expect("code").to_owned(),
                    (state.details().expect("details").clone(), position),
                );
            }
            AggregateState::Source(state) => {
                fold.sources.insert(
                    state.source_id().expect("id").uuid(),
                    state.details().expect("details").clone(),
                );
            }
        }
    }
    fold
}

impl Fold {
    /// Relation summaries of every pair.
    pub fn relations(&self) -> BTreeMap<String, RelationSummary> {
        let mut summaries: BTreeMap<String, RelationSummary> = BTreeMap::new();
        let contributions = self
            .meetings
            .values()
            .map(meeting_contribution)
            .chain(self.commitments.values().map(commitment_contribution));
        for contribution in contributions {
            for (pair, part) in contribution {
                let summary = summaries.entry(pair).or_default();
                summary.meetings += part.meetings;
                summary.meetings_planned += part.meetings_planned;
                summary.meetings_held += part.meetings_held;
                summary.meetings_postponed += part.meetings_postponed;
                summary.meetings_cancelled += part.meetings_cancelled;
                summary.commitments += part.commitments;
                summary.commitments_open += part.commitments_open;
                summary.commitments_fulfilled += part.commitments_fulfilled;
                summary.commitments_closed_otherwise += part.commitments_closed_otherwise;
                for (key, value) in part.meetings_held_by_month {
                    *summary.meetings_held_by_month.entry(key).or_default() += value;
                }
                for (key, value) in part.topics {
                    *summary.topics.entry(key).or_default() += value;
                }
                for (key, value) in part.goldstein_tenths_by_month {
                    *summary.goldstein_tenths_by_month.entry(key).or_default() += value;
                }
            }
        }
        for summary in summaries.values_mut() {
            summary.goldstein_tenths_by_month.retain(|_, value| *value != 0);
        }
        summaries
    }

    /// Compliance of every assessed party.
    pub fn compliance(&self) -> BTreeMap<String, ComplianceRow> {
        let mut rows: BTreeMap<String, ComplianceRow> = BTreeMap::new();
        for commitment in self.commitments.values() {
            for (party, score) in commitment.latest_scores() {
                let row = rows.entry(party.clone()).or_insert_with(|| ComplianceRow {
                    party,
                    ..ComplianceRow::default()
                });
                row.assessed_commitments += 1;
                row.score_sum += i64::from(score);
            }
        }
        rows
    }

    /// Who met whom: official -> other -> held meetings.
    pub fn contacts(&self) -> BTreeMap<String, BTreeMap<String, i64>> {
        let mut contacts: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
        for meeting in self.meetings.values() {
            for (official, others) in meeting_contacts(meeting) {
                let row = contacts.entry(official.to_string()).or_default();
                for (other, count) in others {
                    *row.entry(other).or_default() += count;
                }
            }
        }
        contacts
    }
}
