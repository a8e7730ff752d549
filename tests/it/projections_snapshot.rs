//! Snapshots of the read models: what one costs per statement and progress report, what a
//! reopen restores, and what happens to a damaged one.

use crate::support::projections::*;
use dipledger::domain::commitment::{
    self, CommitmentDetails, CommitmentKind, CooperationKind, Specificity,
    MAX_PROGRESS_REPORTS_PER_COMMITMENT,
};
use dipledger::domain::common::{CommitmentId, MeetingId};
use dipledger::domain::meeting::{
    self, MeetingDetails, MeetingFormat, Participant, Speaker, MAX_STATEMENTS_PER_MEETING,
};
use dipledger::domain::party::{self, PartyDetails, PartyKind};
use dipledger::domain::source::{self, SourceDetails};
use dipledger::domain::DomainCommand;
use dipledger::log::Log;
use dipledger::projections::snapshot::SNAPSHOT_FORMAT;
use dipledger::projections::{ProjectionName, Projections, SnapshotLoad};
use dipledger::time::Timestamp;
use uuid::Uuid;

fn meeting_id() -> MeetingId {
    MeetingId::from_uuid(Uuid::from_u128(0x3E))
}

fn commitment_id() -> CommitmentId {
    CommitmentId::from_uuid(Uuid::from_u128(0xC0))
}

fn party(code: &str) -> DomainCommand {
    DomainCommand::Party(party::Command::RegisterParty {
        code: code.into(),
        details: PartyDetails {
            kind: PartyKind::State,
            name: format!("State {code}"),
            iso_alpha2: None,
            iso_alpha3: Some(code.into()),
            wikidata_qid: None,
            cameo_code: Some(code.into()),
        },
        provenance: cite_on(day(0), None),
    })
}

fn setup() -> Vec<DomainCommand> {
    vec![
        DomainCommand::Source(source::Command::RegisterSource {
            source_id: source_id(),
            details: SourceDetails {
                url: Some("https://example.org/report".into()),
                publisher: None,
                title: None,
                published_at: None,
                retrieved_at: Timestamp::from_unix_micros(WEDNESDAY_MICROS),
                language: "en".into(),
            },
        }),
        party("LBY"),
        party("FRA"),
        DomainCommand::Meeting(meeting::Command::RecordMeetingHeld {
            meeting_id: meeting_id(),
            details: MeetingDetails {
                format: MeetingFormat::Bilateral,
                participants: ["LBY", "FRA"]
                    .iter()
                    .map(|code| Participant {
                        party: (*code).into(),
                        official_id: None,
                        role: None,
                    })
                    .collect(),
                location: None,
                topics: vec!["security".into()],
                summary: None,
                negotiation: false,
            },
            ended_at: None,
            provenance: cite_on(day(0), None),
        }),
        DomainCommand::Commitment(commitment::Command::RecordCommitment {
            commitment_id: commitment_id(),
            details: CommitmentDetails {
                kind: CommitmentKind::New,
                committing_parties: vec!["LBY".into(), "FRA".into()],
                voiced_by: vec![],
                counterparties: vec![],
                text: "work closely on regional stability".into(),
                verbatim: false,
                topics: vec!["regional-stability".into()],
                specificity: Specificity::Aspirational,
                cooperation: CooperationKind::Unspecified,
                due_by: None,
                made_at_meeting: Some(meeting_id()),
            },
            provenance: cite_on(day(0), None),
        }),
    ]
}

fn statement(index: usize) -> DomainCommand {
    DomainCommand::Meeting(meeting::Command::RecordStatement {
        meeting_id: meeting_id(),
        speaker: Speaker {
            party: "LBY".into(),
            official_id: None,
        },
        text: format!("Statement number {index:04} on bilateral collaboration."),
        verbatim: false,
        provenance: cite_on(day(0), None),
    })
}

fn progress(index: usize) -> DomainCommand {
    DomainCommand::Commitment(commitment::Command::ReportCommitmentProgress {
        commitment_id: commitment_id(),
        summary: format!("Progress report number {index:04}: a joint patrol took place."),
        provenance: cite_on(day(1), None),
    })
}

/// Records `commands` one at a time; after each, catches up and snapshots. Returns the bytes
/// each snapshot wrote.
fn snapshot_bytes_per_command(log: &Log, projections: &Projections, commands: &[DomainCommand]) -> Vec<u64> {
    commands
        .iter()
        .map(|command| {
            record(log, command, "analyst").expect("accepted");
            projections.catch_up().expect("catch up");
            projections.snapshot().expect("snapshot");
            projections.snapshot_stats().last_bytes
        })
        .collect()
}

/// Largest minus smallest.
fn spread(bytes: &[u64]) -> u64 {
    bytes.iter().max().unwrap() - bytes.iter().min().unwrap()
}

#[test]
fn a_statement_or_progress_report_costs_the_same_snapshot_bytes_at_the_limit_as_the_first() {
    let (_dir, log) = temp_log();
    for command in setup() {
        record(&log, &command, "analyst").expect("accepted");
    }
    let projections = Projections::open_paused(log.clone()).expect("open");
    // Every state packed once folded: a snapshot copies the packed bytes.
    projections.keep_hot_states(0);
    projections.catch_up().expect("catch up");
    projections.snapshot().expect("snapshot");

    let statements: Vec<_> = (0..MAX_STATEMENTS_PER_MEETING).map(statement).collect();
    let bytes = snapshot_bytes_per_command(&log, &projections, &statements);
    assert!(record(&log, &statement(MAX_STATEMENTS_PER_MEETING), "analyst").is_none());
    // Constant up to a few bytes of growing varints (positions, counts); a snapshot that
    // rewrote every statement would grow by ~60 bytes per statement.
    assert!(spread(&bytes) <= 16, "statement snapshots: {bytes:?}");

    let reports: Vec<_> = (0..MAX_PROGRESS_REPORTS_PER_COMMITMENT).map(progress).collect();
    let bytes = snapshot_bytes_per_command(&log, &projections, &reports);
    assert!(
        record(&log, &progress(MAX_PROGRESS_REPORTS_PER_COMMITMENT), "analyst").is_none(),
        "the progress-report limit holds"
    );
    // The first report also moves the commitment to InProgress (index entries change).
    assert!(spread(&bytes[1..]) <= 16, "progress report snapshots: {bytes:?}");

    // What the snapshots hold is what the read models hold.
    let before: Vec<_> = ProjectionName::ALL
        .iter()
        .map(|name| projections.dump(*name))
        .collect();
    drop(projections);
    let reopened = Projections::open_paused(log.clone()).expect("reopen");
    assert!(matches!(reopened.snapshot_load(), SnapshotLoad::Loaded { .. }));
    let after: Vec<_> = ProjectionName::ALL
        .iter()
        .map(|name| reopened.dump(*name))
        .collect();
    assert!(before == after, "a reopen restores the read models exactly");
}

#[test]
fn a_reopen_restores_positions_and_replays_only_the_tail() {
    let (_dir, log) = temp_log();
    let commands = setup();
    for command in &commands[..3] {
        record(&log, command, "analyst").expect("accepted");
    }
    let snapshotted = log.head();
    {
        let projections = Projections::open_paused(log.clone()).expect("open");
        projections.catch_up().expect("catch up");
    } // closing snapshots
    for command in &commands[3..] {
        record(&log, command, "analyst").expect("accepted");
    }
    let projections = Projections::open_paused(log.clone()).expect("reopen");
    for name in ProjectionName::ALL {
        assert_eq!(projections.checkpoint(name), snapshotted, "{name:?}");
    }
    let applied = projections.step(4096).expect("step");
    assert_eq!(
        applied as u64,
        log.head() - snapshotted,
        "only the tail is replayed"
    );
    let resumed: Vec<_> = ProjectionName::ALL
        .iter()
        .map(|name| projections.dump(*name))
        .collect();
    for name in ProjectionName::ALL {
        projections.rebuild(name, &mut |_, _| {}).expect("rebuild");
    }
    let rebuilt: Vec<_> = ProjectionName::ALL
        .iter()
        .map(|name| projections.dump(*name))
        .collect();
    assert!(resumed == rebuilt);
}

#[test]
fn a_damaged_snapshot_is_discarded_and_the_read_models_rebuilt() {
    let (_dir, log) = recorded_log();
    let expected = {
        let projections = Projections::open_paused(log.clone()).expect("open");
        projections.catch_up().expect("catch up");
        projections.snapshot().expect("snapshot");
        // Cut the first chunk of records in the middle. (Closing appends a chunk of its own;
        // the damaged first one still fails the load.)
        let chunks = projections.snapshot_chunks();
        let (_, _, first) = chunks.first().expect("a chunk");
        let (key, value) = first.iter().next().expect("its records").expect("read chunk");
        let mut damaged = value.to_vec();
        damaged.truncate(damaged.len() / 2);
        first.insert(&key, damaged).expect("damage");
        projections.dump_all()
    };

    assert_discarded_and_rebuilt(&log, &expected);
}

/// A snapshot written in another format (an earlier build's) is discarded on open and the read
/// models are rebuilt from the log: how a new snapshot format reaches an existing directory.
#[test]
fn a_snapshot_of_another_format_is_discarded_and_the_read_models_rebuilt() {
    let (_dir, log) = recorded_log();
    let expected = {
        let projections = Projections::open_paused(log.clone()).expect("open");
        projections.catch_up().expect("catch up");
        projections.write_snapshots_as_format(SNAPSHOT_FORMAT - 1);
        projections.snapshot().expect("snapshot");
        let tree = projections.snapshot_tree();
        let written = tree.get(b"V").expect("read").expect("a format");
        assert_eq!(&written[..], &(SNAPSHOT_FORMAT - 1).to_be_bytes()[..]);
        projections.dump_all()
    };

    assert_discarded_and_rebuilt(&log, &expected);
}

/// Every read model's dump.
/// Reopens the read models over `log`: their snapshot is discarded, every one starts at 0, and
/// once caught up they equal `expected`.
fn assert_discarded_and_rebuilt(log: &Log, expected: &[Vec<(Vec<u8>, Vec<u8>)>]) {
    let projections = Projections::open_paused(log.clone()).expect("reopen");
    assert!(
        matches!(projections.snapshot_load(), SnapshotLoad::Discarded(_)),
        "{:?}",
        projections.snapshot_load()
    );
    for name in ProjectionName::ALL {
        assert_eq!(projections.checkpoint(name), 0);
    }
    projections.catch_up().expect("catch up");
    assert!(
        projections.dump_all() == expected,
        "rebuilt from the log after the discard"
    );
}

/// A log holding the setup, a statement and a progress report.
fn recorded_log() -> (tempfile::TempDir, Log) {
    let (dir, log) = temp_log();
    for command in setup().iter().chain(&[statement(0), progress(0)]) {
        record(&log, command, "analyst").expect("accepted");
    }
    (dir, log)
}

/// The runner keeps at most its capacity of states decoded (the ones it folded last); every
/// other state is packed, and a reopen restores every state packed. The answers are the same
/// whichever way a state is held (the property tests run with every state packed).
#[test]
fn the_runner_keeps_only_its_last_states_decoded_and_a_reopen_starts_them_all_packed() {
    let (_dir, log) = recorded_log();
    let reference = Projections::open_paused(log.clone()).expect("open");
    reference.catch_up().expect("catch up");
    let decoded: Vec<_> = ProjectionName::ALL
        .iter()
        .map(|name| reference.dump(*name))
        .collect();
    let (held, hot) = reference.held_states();
    assert_eq!(hot, held, "fewer states than HOT_STATES: all decoded");
    drop(reference);

    let projections = Projections::open_paused(log.clone()).expect("open");
    assert_eq!(projections.held_states().1, 0, "restored states start packed");
    projections.keep_hot_states(2);
    for n in 1..4 {
        record(&log, &statement(n), "analyst").expect("accepted");
        record(&log, &progress(n), "analyst").expect("accepted");
    }
    projections.catch_up().expect("catch up");
    let (held, hot) = projections.held_states();
    assert!(held > 2, "{held} states");
    assert_eq!(hot, 2, "the meeting and the commitment folded last");
    projections.keep_hot_states(0);
    assert_eq!(projections.held_states().1, 0);
    for (name, before) in ProjectionName::ALL.iter().zip(&decoded) {
        let now = projections.dump(*name);
        // The statements and reports added since change the meetings and commitments only.
        if matches!(name, ProjectionName::Directory | ProjectionName::Officials) {
            assert!(&now == before, "{name:?}");
        }
    }
}
