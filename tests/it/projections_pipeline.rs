//! Steps that read the log on a second thread while the runner applies (the runner's
//! pipeline): they answer byte for byte like steps of one chunk on one thread, and a failure
//! in what the second thread reads stops the runner after every chunk before it.

use crate::support::projections::*;
use dipledger::log::{AppendRequest, EventDraft, ExpectedVersion};
use dipledger::projections::runner::{APPLY_CHUNK, ASIDE_STEP_EVENTS, EVENTS_PER_BATCH, WHOLE_STEP};
use dipledger::projections::{ProjectionError, ProjectionName, Projections};
use dipledger::testing::projections_bench::{fill, fill_from};
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
fn read_models_built_aside_stay_unseen_until_done_and_equal_ones_rebuilt_in_place() {
    let (_dir, log) = temp_log();
    fill(&log, EVENTS, None).expect("fill");
    let projections = Projections::open_paused(log.clone()).expect("open");
    let empty = projections.dump_all();
    projections.build_aside_from(1);
    let mut steps = 0;
    while projections.step(APPLY_CHUNK).expect("step") > 0 {
        steps += 1;
        let done = projections.checkpoint(ProjectionName::Meetings) > 0;
        for name in ProjectionName::ALL {
            let expected = if done { log.head() } else { 0 };
            assert_eq!(
                projections.checkpoint(name),
                expected,
                "{name:?} after step {steps}"
            );
        }
        if !done {
            assert!(
                projections.dump_all() == empty,
                "queries read the empty read models"
            );
        }
    }
    assert!(
        steps as u64 >= EVENTS / APPLY_CHUNK as u64,
        "built over many steps"
    );
    for name in ProjectionName::ALL {
        assert_eq!(projections.checkpoint(name), log.head(), "{name:?}");
    }
    let aside = projections.dump_all();
    assert!(aside != empty);
    // Rebuilt one by one in place (never aside: the others are not empty), they are the same.
    for name in ProjectionName::ALL {
        projections.rebuild(name, &mut |_, _| {}).expect("rebuild");
    }
    assert!(projections.dump_all() == aside, "built aside = rebuilt in place");
    // All of them rebuilt in one pass (one batch here): aside again, since the reset empties
    // them all; queries see the empty read models until it is done.
    let mut seen = Vec::new();
    let reached = projections
        .rebuild_all(&mut |position, head| {
            seen.push((position, head, projections.checkpoint(ProjectionName::Directory)));
        })
        .expect("rebuild all");
    assert_eq!(reached, log.head());
    let head = log.head();
    assert_eq!(seen.first(), Some(&(0, head, 0)), "{seen:?}");
    assert_eq!(seen.last(), Some(&(head, head, head)), "{seen:?}");
    assert!(seen.windows(2).all(|pair| pair[0].0 <= pair[1].0), "{seen:?}");
    let (_, before_the_end) = seen.split_last().expect("progress");
    assert!(
        before_the_end.iter().all(|(_, _, checkpoint)| *checkpoint == 0),
        "{seen:?}"
    );
    assert!(
        projections.dump_all() == aside,
        "rebuilt in one pass = built aside"
    );
    // What was built aside is what the snapshot saves: reopened, the read models are the same.
    projections.snapshot().expect("snapshot");
    drop(projections);
    let reopened = Projections::open_paused(log.clone()).expect("reopen");
    assert_eq!(reopened.checkpoint(ProjectionName::Relations), log.head());
    assert!(reopened.dump_all() == aside, "restored from the snapshot");
}

#[test]
fn a_step_reads_at_most_its_limit_in_place_and_a_larger_one_aside() {
    let (_dir, log) = temp_log();
    let events = ASIDE_STEP_EVENTS as u64 + 10;
    fill(&log, events, None).expect("fill");
    let projections = Projections::open_paused(log.clone()).expect("open");
    projections.build_aside_from(1);
    assert_eq!(projections.step(WHOLE_STEP).expect("step"), ASIDE_STEP_EVENTS);
    assert_eq!(projections.checkpoint(ProjectionName::Meetings), 0, "still aside");
    assert_eq!(projections.step(WHOLE_STEP).expect("step"), 10);
    assert_eq!(projections.checkpoint(ProjectionName::Meetings), events);
    // In place (nothing is empty now), a step reads at most EVENTS_PER_BATCH.
    fill_from(&log, 1_000_000, EVENTS_PER_BATCH as u64 + 10, None).expect("fill more");
    assert_eq!(projections.step(WHOLE_STEP).expect("step"), EVENTS_PER_BATCH);
    assert_eq!(projections.step(WHOLE_STEP).expect("step"), 10);
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
