//! Steps that read the log on a second thread while the runner applies (the runner's
//! pipeline): they answer byte for byte like steps of one chunk on one thread, and a failure
//! in what the second thread reads stops the runner after every chunk before it.

use crate::support::projections::*;
use dipledger::log::{AppendRequest, EventDraft, ExpectedVersion};
use dipledger::projections::runner::APPLY_CHUNK;
use dipledger::projections::{ProjectionError, ProjectionName, Projections};
use dipledger::testing::projections_bench::fill;
use dipledger::time::{OccurredAt, Precision, Timestamp};
use uuid::Uuid;

/// Generated events: meetings with statements, commitments with progress reports,
/// corrections and retractions (the benchmark's shapes), over many chunks.
const EVENTS: u64 = 3_000;

#[test]
fn a_pipelined_rebuild_equals_steps_of_one_chunk() {
    let (_dir, log) = temp_log();
    fill(&log, EVENTS, None).expect("fill");
    let projections = Projections::open_paused(log.clone()).expect("open");
    // A step of one chunk never starts a second thread.
    while projections.step(APPLY_CHUNK).expect("step") > 0 {}
    assert_eq!(projections.pipelined_steps(), 0);
    let one_thread = projections.dump_all();
    for name in ProjectionName::ALL {
        let reached = projections.rebuild(name, &mut |_, _| {}).expect("rebuild");
        assert_eq!(reached, log.head());
    }
    assert!(
        projections.pipelined_steps() >= ProjectionName::ALL.len() as u64,
        "every rebuild read on a second thread"
    );
    assert_eq!(projections.dump_all(), one_thread);
}

#[test]
fn a_pipelined_step_applies_every_chunk_before_an_undecodable_event_and_stops_there() {
    let (_dir, log) = temp_log();
    fill(&log, EVENTS, None).expect("fill");
    // Sound record bytes (the log's checks pass) around a payload no domain event decodes.
    let bad = EventDraft {
        event_type: "PartyRegistered".into(),
        schema_version: 1,
        occurred_at: OccurredAt::new(Timestamp::from_unix_micros(1_736_899_200_000_000), Precision::Day),
        tags: Vec::new(),
        payload: vec![0xFF; 16],
    };
    let position = log
        .append_blocking(AppendRequest::new(
            Uuid::now_v7(),
            "party-BAD",
            ExpectedVersion::Any,
            "t",
            vec![bad],
        ))
        .expect("append")
        .last_position();
    assert_eq!(position, EVENTS + 1);
    let projections = Projections::open_paused(log.clone()).expect("open");
    match projections.catch_up() {
        Err(ProjectionError::DataLoss(reason)) => {
            assert!(
                reason.contains(&format!("event at position {position}")),
                "{reason}"
            );
        }
        other => panic!("expected data loss, got {other:?}"),
    }
    assert!(projections.pipelined_steps() > 0);
    // Chunks are read from the lowest position: the one holding the bad event is not applied,
    // every one before it is.
    let before_its_chunk = (position - 1) / APPLY_CHUNK as u64 * APPLY_CHUNK as u64;
    for name in ProjectionName::ALL {
        assert_eq!(projections.checkpoint(name), before_its_chunk, "{name:?}");
    }
}
