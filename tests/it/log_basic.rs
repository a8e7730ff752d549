//! The log's behaviour, one rule per test: expected versions, idempotency, limits, reads,
//! transactions, clock, poisoning, head notification, reopen, corruption.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use crate::support::log::{draft, reopen, request, temp_log};
use dipledger::log::limits::*;
use dipledger::log::{
    AppendRequest, Clock, Direction, EventFilter, ExpectedVersion, Log, LogConfig, LogError,
};
use dipledger::time::Timestamp;
use uuid::Uuid;

fn reopen_with(dir: &std::path::Path, segment_bytes: u64, segments: usize) -> Log {
    Log::open(
        LogConfig::new(dir)
            .cache_capacity_bytes(dipledger::log::limits::MIN_CACHE_CAPACITY_BYTES)
            .journal_segments(segment_bytes, segments),
    )
    .unwrap()
}

#[test]
fn appends_get_dense_positions_and_versions() {
    let (_dir, log) = temp_log();
    let first = log
        .append_blocking(request("meeting-a", ExpectedVersion::NoStream, 3))
        .unwrap();
    let second = log
        .append_blocking(request("meeting-b", ExpectedVersion::Any, 2))
        .unwrap();
    let third = log
        .append_blocking(request("meeting-a", ExpectedVersion::Exact(3), 1))
        .unwrap();
    assert_eq!((first.first_position(), first.last_position()), (1, 3));
    assert_eq!((first.first_version(), first.last_version()), (1, 3));
    assert_eq!((second.first_position(), second.first_version()), (4, 1));
    assert_eq!((third.first_position(), third.first_version()), (6, 4));
    assert_eq!(log.head(), 6);
    let stream = log.read_stream("meeting-a", 1, Direction::Forwards, 100).unwrap();
    let positions: Vec<u64> = stream.iter().map(|e| e.position()).collect();
    assert_eq!(positions, vec![1, 2, 3, 6]);
    let versions: Vec<u64> = stream.iter().map(|e| e.envelope().stream_version).collect();
    assert_eq!(versions, vec![1, 2, 3, 4]);
    assert_eq!(log.stream_version("meeting-a").unwrap(), 4);
    assert_eq!(log.stream_version("meeting-none").unwrap(), 0);
}

#[test]
fn expected_version_rules_and_conflicts_report_the_current_version() {
    let (_dir, log) = temp_log();
    let conflict = |result: Result<_, LogError>| match result {
        Err(LogError::WrongExpectedVersion { current, .. }) => current,
        other => panic!("expected a version conflict, got {other:?}"),
    };
    assert_eq!(
        conflict(log.append_blocking(request("s-1", ExpectedVersion::StreamExists, 1))),
        0
    );
    assert_eq!(
        conflict(log.append_blocking(request("s-1", ExpectedVersion::Exact(1), 1))),
        0
    );
    log.append_blocking(request("s-1", ExpectedVersion::Exact(0), 2))
        .unwrap();
    assert_eq!(
        conflict(log.append_blocking(request("s-1", ExpectedVersion::NoStream, 1))),
        2
    );
    assert_eq!(
        conflict(log.append_blocking(request("s-1", ExpectedVersion::Exact(1), 1))),
        2
    );
    log.append_blocking(request("s-1", ExpectedVersion::StreamExists, 1))
        .unwrap();
    log.append_blocking(request("s-1", ExpectedVersion::Any, 1))
        .unwrap();
    assert_eq!(log.stream_version("s-1").unwrap(), 4);
    assert_eq!(log.head(), 4, "conflicts wrote nothing");
}

#[test]
fn a_retried_command_returns_the_original_result_and_appends_nothing() {
    let (dir, log) = temp_log();
    let original_request = request("commitment-x", ExpectedVersion::NoStream, 2);
    let original = log.append_blocking(original_request.clone()).unwrap();
    log.append_blocking(request("commitment-x", ExpectedVersion::Any, 1))
        .unwrap();
    // The same request again, even though NoStream would now fail: the original result.
    let retry = log.append_blocking(original_request.clone()).unwrap();
    assert_eq!(retry, original);
    assert_eq!(log.head(), 3);
    // Forever, also after reopening.
    drop(log);
    let log = reopen(&dir);
    assert_eq!(log.append_blocking(original_request.clone()).unwrap(), original);
    assert_eq!(
        log.find_command(original_request.command_id())
            .unwrap()
            .unwrap()
            .1,
        original
    );
    assert_eq!(log.head(), 3);
}

#[test]
fn retries_are_found_whatever_order_the_command_ids_come_in() {
    // The log skips sled for an id above every id it holds (a new UUIDv7): ids chosen by
    // clients in any order must still be found, before and after a reopen.
    let (dir, log) = temp_log();
    let with_id = |id: u128| {
        let events = vec![draft(id as u64 % 1_000, 32)];
        AppendRequest::new(Uuid::from_u128(id), "s", ExpectedVersion::Any, "tester", events)
    };
    let highest = with_id(u128::MAX - 7);
    let lowest = with_id(1);
    let newer_request = request("s", ExpectedVersion::Any, 1);
    let first = log.append_blocking(highest.clone()).unwrap();
    let newer = log.append_blocking(newer_request.clone()).unwrap();
    let second = log.append_blocking(lowest.clone()).unwrap();
    let check = |log: &Log| {
        assert_eq!(log.append_blocking(highest.clone()).unwrap(), first);
        assert_eq!(log.append_blocking(lowest.clone()).unwrap(), second);
        assert_eq!(log.append_blocking(newer_request.clone()).unwrap(), newer);
        assert_eq!(log.head(), 3, "no retry appended anything");
    };
    check(&log);
    drop(log);
    check(&reopen(&dir));
}

#[test]
fn ids_made_before_the_newest_are_known_new_from_memory_until_they_fall_below_the_recent_floor() {
    // Concurrent clients' UUIDv7s reach the writer out of the order they were made: an id below
    // the command ceiling but above the floor of the recent ids, and not among them, is new
    // without asking sled. Once RECENT_COMMAND_IDS later ids were staged, older ones are
    // looked up in sled again, and retries are still found.
    let (_dir, log) = temp_log();
    let never_sent = Uuid::now_v7();
    let (earlier, later) = (Uuid::now_v7(), Uuid::now_v7());
    assert!(never_sent < earlier && earlier < later);
    let with_id = |id: Uuid| AppendRequest::new(id, "s", ExpectedVersion::Any, "tester", vec![draft(1, 32)]);
    let later_result = log.append_blocking(with_id(later)).unwrap();
    let asked = log.stats().sled_command_lookups;
    let earlier_request = with_id(earlier);
    let earlier_result = log.append_blocking(earlier_request.clone()).unwrap();
    assert_eq!(
        earlier_result.first_position(),
        2,
        "the earlier id is a new command"
    );
    assert_eq!(
        log.stats().sled_command_lookups,
        asked,
        "and sled was not asked about it"
    );
    assert_eq!(
        log.append_blocking(earlier_request.clone()).unwrap(),
        earlier_result
    );
    // Push both out of the recent ids.
    let batches = RECENT_COMMAND_IDS / MAX_REQUESTS_PER_TRANSACTION + 1;
    for _ in 0..batches {
        let requests = (0..MAX_REQUESTS_PER_TRANSACTION)
            .map(|_| request("filler", ExpectedVersion::Any, 1))
            .collect();
        log.append_transaction_blocking(requests).unwrap();
    }
    let asked = log.stats().sled_command_lookups;
    assert_eq!(log.append_blocking(earlier_request).unwrap(), earlier_result);
    assert_eq!(log.append_blocking(with_id(later)).unwrap(), later_result);
    let head = log.head();
    let fresh = log.append_blocking(with_id(never_sent)).unwrap();
    assert_eq!(
        fresh.first_position(),
        head + 1,
        "an old id never sent is still new"
    );
    assert!(
        log.stats().sled_command_lookups >= asked + 3,
        "ids below the recent floor are looked up in sled"
    );
}

#[test]
fn a_command_id_reused_for_a_different_request_is_rejected() {
    let (_dir, log) = temp_log();
    let original = request("s", ExpectedVersion::Any, 1);
    log.append_blocking(original.clone()).unwrap();
    let different = AppendRequest::new(
        original.command_id(),
        "s",
        ExpectedVersion::Any,
        "tester",
        vec![draft(99, 8)],
    );
    match log.append_blocking(different) {
        Err(LogError::CommandIdReused { command_id }) => assert_eq!(command_id, original.command_id()),
        other => panic!("expected CommandIdReused, got {other:?}"),
    }
    assert_eq!(log.head(), 1);
}

#[test]
fn duplicate_command_ids_within_one_commit_are_recorded_once() {
    let (_dir, log) = temp_log();
    let same = request("s", ExpectedVersion::Any, 1);
    let results = log
        .append_transaction_blocking(vec![same.clone(), same.clone()])
        .unwrap();
    assert_eq!(results[0], results[1]);
    assert_eq!(log.head(), 1);
}

#[test]
fn payload_limit_is_exact_and_over_it_is_an_error_not_a_truncation() {
    let (_dir, log) = temp_log();
    let at_limit = AppendRequest::new(
        Uuid::now_v7(),
        "s",
        ExpectedVersion::Any,
        "t",
        vec![draft(1, MAX_EVENT_PAYLOAD_BYTES)],
    );
    let stored = log.append_blocking(at_limit).unwrap();
    let event = log.read_event(stored.first_position()).unwrap();
    assert_eq!(event.envelope().payload.len(), MAX_EVENT_PAYLOAD_BYTES);
    let over = AppendRequest::new(
        Uuid::now_v7(),
        "s",
        ExpectedVersion::Any,
        "t",
        vec![draft(1, MAX_EVENT_PAYLOAD_BYTES + 1)],
    );
    assert!(matches!(
        log.append_blocking(over),
        Err(LogError::TooLarge {
            limit: MAX_EVENT_PAYLOAD_BYTES,
            ..
        })
    ));
    assert_eq!(log.head(), 1);
}

#[test]
fn request_shape_limits_are_enforced() {
    let (_dir, log) = temp_log();
    let too_many = request("s", ExpectedVersion::Any, MAX_EVENTS_PER_APPEND + 1);
    assert!(matches!(
        log.append_blocking(too_many),
        Err(LogError::TooLarge {
            limit: MAX_EVENTS_PER_APPEND,
            ..
        })
    ));
    let empty = AppendRequest::new(Uuid::now_v7(), "s", ExpectedVersion::Any, "t", vec![]);
    assert!(matches!(
        log.append_blocking(empty),
        Err(LogError::Invalid { .. })
    ));
    for bad_stream in ["", "has space", "nul\0byte", &"x".repeat(MAX_STREAM_ID_BYTES + 1)] {
        let bad = request(bad_stream, ExpectedVersion::Any, 1);
        assert!(
            matches!(log.append_blocking(bad), Err(LogError::Invalid { .. })),
            "{bad_stream:?}"
        );
    }
    let mut tagged = draft(1, 1);
    tagged.tags = (0..=MAX_TAGS_PER_EVENT).map(|i| format!("t:{i}")).collect();
    let too_many_tags = AppendRequest::new(Uuid::now_v7(), "s", ExpectedVersion::Any, "t", vec![tagged]);
    assert!(matches!(
        log.append_blocking(too_many_tags),
        Err(LogError::TooLarge {
            limit: MAX_TAGS_PER_EVENT,
            ..
        })
    ));
    let mut bad_type = draft(1, 1);
    bad_type.event_type = "Has Space".into();
    let bad_type = AppendRequest::new(Uuid::now_v7(), "s", ExpectedVersion::Any, "t", vec![bad_type]);
    assert!(matches!(
        log.append_blocking(bad_type),
        Err(LogError::Invalid { .. })
    ));
    let requests: Vec<_> = (0..=MAX_REQUESTS_PER_TRANSACTION)
        .map(|_| request("s", ExpectedVersion::Any, 1))
        .collect();
    assert!(matches!(
        log.append_transaction_blocking(requests),
        Err(LogError::TooLarge {
            limit: MAX_REQUESTS_PER_TRANSACTION,
            ..
        })
    ));
    assert_eq!(log.head(), 0);
}

#[test]
fn a_transaction_is_all_or_nothing() {
    let (_dir, log) = temp_log();
    log.append_blocking(request("b", ExpectedVersion::Any, 1))
        .unwrap();
    let failing = vec![
        request("a", ExpectedVersion::NoStream, 2),
        request("b", ExpectedVersion::NoStream, 1), // conflicts: b exists
    ];
    assert!(matches!(
        log.append_transaction_blocking(failing),
        Err(LogError::WrongExpectedVersion { .. })
    ));
    assert_eq!(log.head(), 1);
    assert_eq!(log.stream_version("a").unwrap(), 0);
    let ok = log
        .append_transaction_blocking(vec![
            request("a", ExpectedVersion::NoStream, 2),
            request("b", ExpectedVersion::Exact(1), 1),
        ])
        .unwrap();
    assert_eq!(ok[0].first_position(), 2);
    assert_eq!(ok[1].first_position(), 4);
    assert_eq!(log.head(), 4);
    assert!(log.verify(&mut |_, _| {}).is_ok());
}

#[test]
fn reads_page_in_both_directions_with_filters() {
    let (_dir, log) = temp_log();
    for i in 0..10u64 {
        let stream = if i % 2 == 0 { "meeting-1" } else { "commitment-1" };
        let events = vec![draft(i, 16)];
        log.append_blocking(AppendRequest::new(
            Uuid::now_v7(),
            stream,
            ExpectedVersion::Any,
            "t",
            events,
        ))
        .unwrap();
    }
    let all = EventFilter::default();
    let page = log.read_all(1, Direction::Forwards, 4, &all).unwrap();
    assert_eq!(
        page.events.iter().map(|e| e.position()).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert_eq!((page.next_position, page.reached_end), (5, false));
    let rest = log
        .read_all(page.next_position, Direction::Forwards, 100, &all)
        .unwrap();
    assert_eq!(rest.events.len(), 6);
    assert!(rest.reached_end);
    assert_eq!(rest.next_position, 11);
    let caught_up = log.read_all(11, Direction::Forwards, 100, &all).unwrap();
    assert!(caught_up.events.is_empty() && caught_up.reached_end);
    let backwards = log.read_all(10, Direction::Backwards, 3, &all).unwrap();
    assert_eq!(
        backwards.events.iter().map(|e| e.position()).collect::<Vec<_>>(),
        vec![10, 9, 8]
    );
    assert_eq!(backwards.next_position, 7);
    let to_start = log.read_all(2, Direction::Backwards, 100, &all).unwrap();
    assert_eq!(to_start.events.len(), 2);
    assert!(to_start.reached_end);

    let meetings = EventFilter {
        stream_prefixes: vec!["meeting-".into()],
        ..Default::default()
    };
    let page = log.read_all(1, Direction::Forwards, 100, &meetings).unwrap();
    assert_eq!(
        page.events.iter().map(|e| e.position()).collect::<Vec<_>>(),
        vec![1, 3, 5, 7, 9]
    );
    let by_type = EventFilter {
        event_types: vec!["CommitmentRecorded".into()],
        ..Default::default()
    };
    assert_eq!(
        log.read_all(1, Direction::Forwards, 100, &by_type)
            .unwrap()
            .events
            .len(),
        5
    );
    let by_tag = EventFilter {
        tags: vec!["party:P0".into()],
        ..Default::default()
    };
    let tagged = log.read_all(1, Direction::Forwards, 100, &by_tag).unwrap();
    assert!(tagged
        .events
        .iter()
        .all(|e| e.envelope().tags.contains(&"party:P0".to_string())));
    assert_eq!(tagged.events.len(), 4); // seeds 0, 3, 6, 9

    let stream_back = log
        .read_stream("meeting-1", u64::MAX, Direction::Backwards, 2)
        .unwrap();
    assert_eq!(
        stream_back
            .iter()
            .map(|e| e.envelope().stream_version)
            .collect::<Vec<_>>(),
        vec![5, 4]
    );
    let stream_mid = log.read_stream("meeting-1", 2, Direction::Forwards, 2).unwrap();
    assert_eq!(
        stream_mid
            .iter()
            .map(|e| e.envelope().stream_version)
            .collect::<Vec<_>>(),
        vec![2, 3]
    );
    let from_three_back = log.read_stream("meeting-1", 3, Direction::Backwards, 10).unwrap();
    assert_eq!(
        from_three_back
            .iter()
            .map(|e| e.envelope().stream_version)
            .collect::<Vec<_>>(),
        vec![3, 2, 1]
    );
}

#[test]
fn reading_past_the_head_is_out_of_range() {
    let (_dir, log) = temp_log();
    log.append_blocking(request("s", ExpectedVersion::Any, 2))
        .unwrap();
    let all = EventFilter::default();
    assert!(matches!(
        log.read_all(4, Direction::Forwards, 1, &all),
        Err(LogError::OutOfRange {
            requested: 4,
            head: 2
        })
    ));
    assert!(matches!(
        log.read_all(3, Direction::Backwards, 1, &all),
        Err(LogError::OutOfRange { .. })
    ));
    assert!(matches!(log.read_event(3), Err(LogError::OutOfRange { .. })));
    assert!(matches!(log.read_event(0), Err(LogError::OutOfRange { .. })));
}

#[test]
fn pages_are_bounded() {
    let (_dir, log) = temp_log();
    log.append_blocking(request("s", ExpectedVersion::Any, MAX_EVENTS_PER_APPEND))
        .unwrap();
    log.append_blocking(request("s", ExpectedVersion::Any, MAX_EVENTS_PER_APPEND))
        .unwrap();
    log.append_blocking(request("s", ExpectedVersion::Any, MAX_EVENTS_PER_APPEND))
        .unwrap();
    log.append_blocking(request("s", ExpectedVersion::Any, MAX_EVENTS_PER_APPEND))
        .unwrap();
    log.append_blocking(request("s", ExpectedVersion::Any, MAX_EVENTS_PER_APPEND))
        .unwrap();
    let page = log
        .read_all(1, Direction::Forwards, usize::MAX, &EventFilter::default())
        .unwrap();
    assert_eq!(page.events.len(), MAX_READ_PAGE_EVENTS);
    let stream = log.read_stream("s", 1, Direction::Forwards, usize::MAX).unwrap();
    assert_eq!(stream.len(), MAX_READ_PAGE_EVENTS);
}

struct SteppingClock(AtomicI64);

impl Clock for SteppingClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_micros(self.0.load(Ordering::SeqCst))
    }
}

#[test]
fn recorded_at_never_decreases_when_the_clock_jumps_backwards() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(SteppingClock(AtomicI64::new(1_000_000)));
    let log = Log::open(LogConfig::new(dir.path()).clock(clock.clone())).unwrap();
    let a = log
        .append_blocking(request("s", ExpectedVersion::Any, 1))
        .unwrap();
    clock.0.store(5, Ordering::SeqCst); // jumps back ~1 s
    let b = log
        .append_blocking(request("s", ExpectedVersion::Any, 1))
        .unwrap();
    clock.0.store(2_000_000, Ordering::SeqCst);
    let c = log
        .append_blocking(request("s", ExpectedVersion::Any, 1))
        .unwrap();
    assert_eq!(a.recorded_at(), Timestamp::from_unix_micros(1_000_000));
    assert_eq!(b.recorded_at(), a.recorded_at());
    assert_eq!(c.recorded_at(), Timestamp::from_unix_micros(2_000_000));
    drop(log);
    // Also across a restart whose clock is behind.
    clock.0.store(7, Ordering::SeqCst);
    let log = Log::open(LogConfig::new(dir.path()).clock(clock)).unwrap();
    let d = log
        .append_blocking(request("s", ExpectedVersion::Any, 1))
        .unwrap();
    assert_eq!(d.recorded_at(), c.recorded_at());
    assert!(log.verify(&mut |_, _| {}).is_ok());
}

#[test]
fn a_failed_sync_poisons_the_writer_and_nothing_is_acknowledged() {
    let (dir, log) = temp_log();
    log.append_blocking(request("s", ExpectedVersion::Any, 1))
        .unwrap();
    log.inject_sync_failure();
    assert!(matches!(
        log.append_blocking(request("s", ExpectedVersion::Any, 1)),
        Err(LogError::Poisoned { .. })
    ));
    assert_eq!(log.head(), 1, "the failed commit is not visible");
    assert!(matches!(
        log.append_blocking(request("t", ExpectedVersion::Any, 1)),
        Err(LogError::Poisoned { .. })
    ));
    assert!(log.poisoned().is_some());
    drop(log);
    let log = reopen(&dir);
    assert!(log.poisoned().is_none());
    log.append_blocking(request("s", ExpectedVersion::Any, 1))
        .unwrap();
    assert!(log.verify(&mut |_, _| {}).is_ok());
}

#[test]
fn large_commits_from_many_appenders_fit_a_two_segment_journal() {
    // Commits of ~140 KiB against 256 KiB segments, two of them: each frame needs the segment
    // before it checkpointed, which holds only if each frame's commit is applied before the next
    // frame is written. A pipelined writer that wrote all the frames handed to its sync thread
    // before applying any found no segment it could reuse and stopped (this test failed in one
    // run of three against it).
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(
        LogConfig::new(dir.path())
            .cache_capacity_bytes(dipledger::log::limits::MIN_CACHE_CAPACITY_BYTES)
            .journal_segments(MIN_JOURNAL_SEGMENT_BYTES, 2),
    )
    .unwrap();
    const APPENDERS: u64 = 16;
    const COMMITS: u64 = 12;
    let threads: Vec<_> = (0..APPENDERS)
        .map(|appender| {
            let log = log.clone();
            std::thread::spawn(move || {
                for commit in 0..COMMITS {
                    let events = (0..3)
                        .map(|i| crate::support::log::draft(commit * 3 + i, 45 * 1024))
                        .collect();
                    let request = AppendRequest::new(
                        Uuid::now_v7(),
                        format!("large-{appender}"),
                        ExpectedVersion::Any,
                        "tester",
                        events,
                    );
                    log.append_blocking(request)
                        .expect("every large commit is acknowledged");
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("appender thread");
    }
    assert_eq!(log.head(), APPENDERS * COMMITS * 3);
    assert!(log.poisoned().is_none());
    drop(log);
    let log = reopen_with(dir.path(), MIN_JOURNAL_SEGMENT_BYTES, 2);
    assert_eq!(log.head(), APPENDERS * COMMITS * 3);
    assert!(log.verify(&mut |_, _| {}).is_ok());
}

#[test]
fn the_applied_stream_version_is_remembered_for_streams_written_since_open_and_never_ahead() {
    let (dir, log) = temp_log();
    assert_eq!(log.applied_stream_version("s"), None);
    log.append_blocking(request("s", ExpectedVersion::Any, 2))
        .unwrap();
    assert_eq!(log.applied_stream_version("s"), Some(2));
    log.append_blocking(request("s", ExpectedVersion::Exact(2), 3))
        .unwrap();
    assert_eq!(log.applied_stream_version("s"), Some(5));
    assert_eq!(
        log.applied_stream_version("s"),
        Some(log.stream_version("s").unwrap())
    );
    log.inject_sync_failure();
    assert!(log
        .append_blocking(request("s", ExpectedVersion::Exact(5), 1))
        .is_err());
    assert_eq!(
        log.applied_stream_version("s"),
        Some(5),
        "a commit that failed its sync never counts"
    );
    drop(log);
    let log = reopen(&dir);
    assert_eq!(
        log.applied_stream_version("s"),
        None,
        "not remembered across a reopen: ask the index"
    );
    assert!(log.stream_version("s").unwrap() >= 5);
}

#[test]
fn a_commit_cut_short_in_sled_is_invisible_and_replayed_whole_from_the_journal() {
    use dipledger::log::FaultPoint;
    let (dir, log) = temp_log();
    log.append_blocking(request("s", ExpectedVersion::Any, 2))
        .unwrap();
    let cut = request("s", ExpectedVersion::Exact(2), 3);
    log.inject_fault(FaultPoint::SledApplyHalfway, std::io::ErrorKind::Other);
    assert!(matches!(
        log.append_blocking(cut.clone()),
        Err(LogError::Poisoned { .. })
    ));
    assert_eq!(log.head(), 2, "half a commit in sled is not visible");
    assert_eq!(
        log.read_stream("s", 1, Direction::Forwards, 100).unwrap().len(),
        2
    );
    drop(log);
    // The journal holds the whole commit (sled is written only after its fdatasync), so the
    // reopen replays it over the half that sled kept.
    let log = reopen(&dir);
    assert_eq!(log.head(), 5);
    assert_eq!(log.stream_version("s").unwrap(), 5);
    let versions: Vec<u64> = log
        .read_stream("s", 1, Direction::Forwards, 100)
        .unwrap()
        .iter()
        .map(|event| event.envelope().stream_version)
        .collect();
    assert_eq!(versions, vec![1, 2, 3, 4, 5]);
    let retried = log.append_blocking(cut).unwrap();
    assert_eq!(
        (retried.first_position(), retried.last_position()),
        (3, 5),
        "the command id was replayed too"
    );
    assert_eq!(log.head(), 5, "the retry wrote nothing");
    let next = log
        .append_blocking(request("s", ExpectedVersion::Exact(5), 1))
        .unwrap();
    assert_eq!(next.first_position(), 6);
    assert!(log.verify(&mut |_, _| {}).is_ok());
}

#[test]
fn a_commit_answered_before_its_command_records_reach_sled_keeps_its_command_id() {
    use dipledger::log::FaultPoint;
    let (dir, log) = temp_log();
    log.append_blocking(request("s", ExpectedVersion::Any, 2))
        .unwrap();
    // The first commit's own second step must be done before the fault is armed (verify waits
    // for it), or the fault would hit that one.
    assert!(log.verify(&mut |_, _| {}).is_ok());
    let answered = request("s", ExpectedVersion::Exact(2), 3);
    let command_key = dipledger::log::keys::command_key(answered.command_id());
    // The command records and the head metadata are written after the callers are answered:
    // the caller has its success although that write fails.
    log.inject_fault(FaultPoint::SledCommandRecords, std::io::ErrorKind::Other);
    let result = log.append_blocking(answered.clone()).unwrap();
    assert_eq!((result.first_position(), result.last_position()), (3, 5));
    assert_eq!(log.head(), 5, "an answered commit is visible");
    assert_eq!(
        log.read_stream("s", 1, Direction::Forwards, 100).unwrap().len(),
        5
    );
    assert!(
        log.raw_tree().get(command_key).unwrap().is_none(),
        "the fault hit: the command record is not in sled"
    );
    assert!(
        matches!(
            log.append_blocking(request("t", ExpectedVersion::Any, 1)),
            Err(LogError::Poisoned { .. })
        ),
        "the failed write poisons the writer"
    );
    let (fingerprint, found) = log
        .find_command(answered.command_id())
        .unwrap()
        .expect("the answered command is found before the reopen");
    assert_eq!(fingerprint, answered.fingerprint());
    assert_eq!(found.first_position(), 3);
    drop(log);
    // The journal holds the commit; the reopen writes its command records.
    let log = reopen(&dir);
    assert_eq!(log.head(), 5);
    assert!(log.raw_tree().get(command_key).unwrap().is_some());
    let retried = log.append_blocking(answered).unwrap();
    assert_eq!(
        (retried.first_position(), retried.last_position()),
        (3, 5),
        "the retry is answered with the original result"
    );
    assert_eq!(log.head(), 5, "the retry wrote nothing");
    assert!(log.verify(&mut |_, _| {}).is_ok());
}

#[tokio::test]
async fn the_head_notification_moves_with_each_commit() {
    let (_dir, log) = temp_log();
    let mut head = log.watch_head();
    assert_eq!(*head.borrow_and_update(), 0);
    let writer = log.clone();
    let task = tokio::spawn(async move { writer.append(request("s", ExpectedVersion::Any, 3)).await });
    head.changed().await.unwrap();
    assert_eq!(*head.borrow_and_update(), 3);
    assert_eq!(task.await.unwrap().unwrap().last_position(), 3);
}

#[test]
fn everything_survives_reopen_and_verify_reports_the_chain() {
    let (dir, log) = temp_log();
    for i in 0..50 {
        log.append_blocking(request(&format!("s-{}", i % 7), ExpectedVersion::Any, 3))
            .unwrap();
    }
    let before = log
        .read_all(1, Direction::Forwards, 1000, &EventFilter::default())
        .unwrap();
    let report = log.verify(&mut |_, _| {}).unwrap();
    assert_eq!((report.events, report.streams, report.commands), (150, 7, 50));
    assert_eq!(
        &report.head_chain_hash,
        before.events.last().unwrap().chain_hash()
    );
    drop(log);
    let log = reopen(&dir);
    let after = log
        .read_all(1, Direction::Forwards, 1000, &EventFilter::default())
        .unwrap();
    assert_eq!(before, after);
    assert_eq!(log.verify(&mut |_, _| {}).unwrap(), report);
}

#[test]
fn a_flipped_byte_in_a_record_is_reported_as_data_loss_and_never_returned() {
    let (dir, log) = temp_log();
    for _ in 0..20 {
        log.append_blocking(request("s", ExpectedVersion::Any, 1))
            .unwrap();
    }
    let key = dipledger::log::keys::event_key(7);
    let mut bytes = log.raw_tree().get(key).unwrap().unwrap().to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    log.raw_tree().insert(key, bytes).unwrap();
    assert!(matches!(
        log.read_event(7),
        Err(LogError::DataLoss { position: 7, .. })
    ));
    assert!(matches!(
        log.read_all(1, Direction::Forwards, 100, &EventFilter::default()),
        Err(LogError::DataLoss { position: 7, .. })
    ));
    assert!(matches!(
        log.read_stream("s", 1, Direction::Forwards, 100),
        Err(LogError::DataLoss { position: 7, .. })
    ));
    assert!(matches!(
        log.verify(&mut |_, _| {}),
        Err(LogError::DataLoss { position: 7, .. })
    ));
    let page = log
        .read_all(8, Direction::Forwards, 100, &EventFilter::default())
        .unwrap();
    assert_eq!(page.events.len(), 13, "records after the damaged one still read");
    log.raw_tree().flush().unwrap();
    drop(log);
    // Open verifies the last records: damage inside that window refuses to open.
    let err = Log::open(LogConfig::new(dir.path()))
        .err()
        .expect("open must fail");
    assert!(matches!(err, LogError::DataLoss { position: 7, .. }), "{err:?}");
}

#[test]
fn a_missing_chunk_met_while_reading_forwards_is_data_loss_at_its_first_position() {
    // One commit per event: one chunk each, so a forward read steps from chunk to chunk.
    let (_dir, log) = temp_log();
    for _ in 0..20 {
        log.append_blocking(request("s", ExpectedVersion::Any, 1))
            .unwrap();
    }
    let all = || log.read_all(1, Direction::Forwards, 100, &EventFilter::default());
    assert_eq!(all().unwrap().events.len(), 20);
    log.raw_tree()
        .remove(dipledger::log::keys::event_key(9))
        .unwrap()
        .expect("position 9 starts a chunk");
    assert!(matches!(all(), Err(LogError::DataLoss { position: 9, .. })));
    assert!(matches!(
        log.read_stream("s", 1, Direction::Forwards, 100),
        Err(LogError::DataLoss { position: 9, .. })
    ));
    let before = log
        .read_all(1, Direction::Forwards, 8, &EventFilter::default())
        .unwrap();
    assert_eq!(before.events.len(), 8, "records before the gap still read");
    let after = log
        .read_all(10, Direction::Forwards, 100, &EventFilter::default())
        .unwrap();
    let positions: Vec<u64> = after.events.iter().map(|event| event.position()).collect();
    assert_eq!(
        positions,
        (10..=20).collect::<Vec<_>>(),
        "records after the gap still read"
    );
}

#[test]
fn maximum_size_events_never_go_to_unsynced_blob_files() {
    let (dir, log) = temp_log();
    for _ in 0..4 {
        let events = (0..40).map(|i| draft(i, MAX_EVENT_PAYLOAD_BYTES)).collect();
        log.append_blocking(AppendRequest::new(
            Uuid::now_v7(),
            "big",
            ExpectedVersion::Any,
            "t",
            events,
        ))
        .unwrap();
    }
    let blobs = dir.path().join("blobs");
    let blob_files = std::fs::read_dir(&blobs)
        .map(|entries| entries.count())
        .unwrap_or(0);
    assert_eq!(blob_files, 0, "sled wrote blob files");
    assert_eq!(log.verify(&mut |_, _| {}).unwrap().events, 160);
}

#[test]
fn position_at_time_finds_the_last_position_recorded_by_then() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(SteppingClock(AtomicI64::new(100)));
    let log = Log::open(LogConfig::new(dir.path()).clock(clock.clone())).unwrap();
    for time in [100, 100, 200, 300, 300, 300, 400] {
        clock.0.store(time, Ordering::SeqCst);
        log.append_blocking(request("s", ExpectedVersion::Any, 1))
            .unwrap();
    }
    let at = |micros| log.position_at_time(Timestamp::from_unix_micros(micros)).unwrap();
    assert_eq!(at(99), 0);
    assert_eq!(at(100), 2);
    assert_eq!(at(250), 3);
    assert_eq!(at(300), 6);
    assert_eq!(at(10_000), 7);
}

#[test]
fn a_transaction_of_consecutive_requests_to_one_stream_writes_one_stream_run() {
    let (_dir, log) = temp_log();
    let requests = (0..5)
        .map(|_| request("meeting-run", ExpectedVersion::Any, 2))
        .collect();
    let results = log.append_transaction_blocking(requests).unwrap();
    assert_eq!(results.len(), 5, "one result per request");
    assert_eq!(results[4].first_version(), 9);
    let prefix = dipledger::log::keys::stream_index_prefix("meeting-run");
    assert_eq!(
        log.raw_tree().scan_prefix(&prefix).count(),
        1,
        "one sled key for the whole batch"
    );
    let events = log
        .read_stream("meeting-run", 1, Direction::Forwards, usize::MAX)
        .unwrap();
    let versions: Vec<u64> = events
        .iter()
        .map(|event| event.envelope().stream_version)
        .collect();
    assert_eq!(versions, (1..=10).collect::<Vec<u64>>());
    // Another stream in between starts a new run.
    let mixed = vec![
        request("meeting-run", ExpectedVersion::Any, 1),
        request("meeting-other", ExpectedVersion::Any, 1),
        request("meeting-run", ExpectedVersion::Any, 1),
    ];
    log.append_transaction_blocking(mixed).unwrap();
    assert_eq!(log.raw_tree().scan_prefix(&prefix).count(), 3);
    assert_eq!(log.stream_version("meeting-run").unwrap(), 12);
    log.verify(&mut |_, _| {}).unwrap();
}

#[test]
fn a_transaction_larger_than_a_journal_frame_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let segment = MIN_JOURNAL_SEGMENT_BYTES; // frames hold at most a segment less its header
    let log = Log::open(LogConfig::new(dir.path()).journal_segments(segment, 4)).unwrap();
    let events = |count: usize| (0..count as u64).map(|seed| draft(seed, 60 * 1024)).collect();
    let fits = AppendRequest::new(Uuid::now_v7(), "big-1", ExpectedVersion::Any, "tester", events(3));
    assert!(fits.frame_bytes_bound() < segment as usize);
    log.append_blocking(fits).unwrap();
    let over = AppendRequest::new(Uuid::now_v7(), "big-1", ExpectedVersion::Any, "tester", events(5));
    assert!(over.frame_bytes_bound() > segment as usize);
    match log.append_blocking(over) {
        Err(LogError::TooLarge { what, actual, limit }) => {
            assert_eq!(what, "journal frame bytes of one transaction");
            assert!(actual > limit);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_eq!(log.head(), 3, "nothing of the refused transaction was written");
}

#[test]
fn a_record_is_read_at_its_location_and_by_its_position_when_the_location_is_wrong() {
    let (_dir, log) = temp_log();
    for stream in ["meeting-a", "meeting-b", "meeting-c"] {
        log.append_blocking(request(stream, ExpectedVersion::NoStream, 4))
            .unwrap();
    }
    let mut located = Vec::new();
    log.scan_all(
        (1, Direction::Forwards),
        100,
        &EventFilter::default(),
        &mut |view| {
            let location = view.location.expect("a record read from the log has a location");
            located.push((view.envelope.position, location, view.envelope.event_id));
            std::ops::ControlFlow::Continue(())
        },
    )
    .unwrap();
    assert_eq!(located.len(), 12);
    let read = |records: &[(u64, dipledger::log::RecordLocation)]| {
        let mut seen = Vec::new();
        log.scan_located(records, &mut |view| {
            seen.push((view.envelope.position, view.envelope.event_id));
            std::ops::ControlFlow::Continue(())
        })
        .map(|()| seen)
    };
    let expected: Vec<(u64, Uuid)> = located.iter().map(|(p, _, id)| (*p, *id)).collect();
    let exact: Vec<_> = located.iter().map(|(p, l, _)| (*p, *l)).collect();
    assert_eq!(read(&exact).unwrap(), expected);
    // Each kind of wrong location: another record's offset in the right chunk, an offset past
    // the chunk, a chunk that does not exist, another chunk. The record comes by its position.
    let (first_chunk, second_offset) = (located[0].1.chunk_start, located[1].1.offset);
    let wrong = [
        |l: dipledger::log::RecordLocation, o: u32, _: u64| dipledger::log::RecordLocation {
            offset: l.offset ^ o,
            ..l
        },
        |l: dipledger::log::RecordLocation, _: u32, _: u64| dipledger::log::RecordLocation {
            offset: 1 << 30,
            ..l
        },
        |_: dipledger::log::RecordLocation, _: u32, _: u64| dipledger::log::RecordLocation {
            chunk_start: 1 << 40,
            offset: 0,
        },
        |_: dipledger::log::RecordLocation, o: u32, c: u64| dipledger::log::RecordLocation {
            chunk_start: c,
            offset: o,
        },
    ];
    for (kind, wrong) in wrong.iter().enumerate() {
        let records: Vec<_> = located
            .iter()
            .map(|(p, l, _)| (*p, wrong(*l, second_offset.max(1), first_chunk)))
            .collect();
        assert_eq!(read(&records).unwrap(), expected, "wrong location of kind {kind}");
    }
    // A position past the head is out of range, whatever the location.
    let past = [(13, located[0].1)];
    assert!(matches!(
        read(&past),
        Err(LogError::OutOfRange {
            requested: 13,
            head: 12
        })
    ));
}
