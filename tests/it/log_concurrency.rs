//! Concurrency: 16 tasks append to 100 streams while 8 tasks race `Exact(n)` on one stream.
//! Versions and positions stay dense and unique, every success is readable, and every conflict
//! reports the stream's version at the time.

use std::collections::{HashMap, HashSet};

use crate::support::log::{request, temp_log};
use dipledger::log::{Direction, EventFilter, ExpectedVersion, LogError};

const APPENDERS: usize = 16;
const APPENDS_EACH: usize = 100;
const RACERS: usize = 8;
const RACE_ATTEMPTS_EACH: usize = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appenders_and_racers_keep_positions_and_versions_dense() {
    let (_dir, log) = temp_log();
    let mut appenders = Vec::new();
    for task in 0..APPENDERS {
        let log = log.clone();
        appenders.push(tokio::spawn(async move {
            let mut results = Vec::new();
            for i in 0..APPENDS_EACH {
                let stream = format!("stream-{}", (task * APPENDS_EACH + i) % 100);
                results.push(
                    log.append(request(&stream, ExpectedVersion::Any, 1 + i % 2))
                        .await
                        .unwrap(),
                );
            }
            results
        }));
    }
    let mut racers = Vec::new();
    for _ in 0..RACERS {
        let log = log.clone();
        racers.push(tokio::spawn(async move {
            let (mut wins, mut conflicts) = (Vec::new(), 0usize);
            for _ in 0..RACE_ATTEMPTS_EACH {
                let seen = log.stream_version("contested").unwrap();
                match log
                    .append(request("contested", ExpectedVersion::Exact(seen), 1))
                    .await
                {
                    Ok(result) => {
                        assert_eq!(result.first_version(), seen + 1);
                        wins.push(result);
                    }
                    Err(LogError::WrongExpectedVersion { current, .. }) => {
                        assert!(
                            current > seen,
                            "a conflict reports the newer version ({current} > {seen})"
                        );
                        conflicts += 1;
                    }
                    Err(other) => panic!("unexpected {other}"),
                }
            }
            (wins, conflicts)
        }));
    }
    let mut all = Vec::new();
    for appender in appenders {
        all.extend(appender.await.unwrap());
    }
    let mut contested_wins = Vec::new();
    let mut conflicts = 0;
    for racer in racers {
        let (wins, lost) = racer.await.unwrap();
        contested_wins.extend(wins);
        conflicts += lost;
    }
    assert_eq!(contested_wins.len() + conflicts, RACERS * RACE_ATTEMPTS_EACH);
    // The contested stream: versions 1..=wins, each won exactly once.
    let mut won_versions: Vec<u64> = contested_wins.iter().map(|r| r.first_version()).collect();
    won_versions.sort_unstable();
    assert_eq!(
        won_versions,
        (1..=contested_wins.len() as u64).collect::<Vec<_>>()
    );
    all.extend(contested_wins);
    // Positions: dense and unique over every success.
    let mut positions: Vec<u64> = all
        .iter()
        .flat_map(|r| r.first_position()..=r.last_position())
        .collect();
    positions.sort_unstable();
    assert_eq!(positions, (1..=log.head()).collect::<Vec<_>>());
    // Every success is readable where its result says, and stream versions are dense.
    let mut by_position = HashMap::new();
    let mut next = 1;
    loop {
        let page = log
            .read_all(next, Direction::Forwards, usize::MAX, &EventFilter::default())
            .unwrap();
        for event in page.events {
            by_position.insert(event.position(), event);
        }
        next = page.next_position;
        if page.reached_end {
            break;
        }
    }
    for result in &all {
        for (offset, event_id) in result.event_ids().iter().enumerate() {
            let event = &by_position[&(result.first_position() + offset as u64)];
            assert_eq!(&event.envelope().event_id, event_id);
            assert_eq!(event.envelope().stream_id, result.stream_id());
            assert_eq!(
                event.envelope().stream_version,
                result.first_version() + offset as u64
            );
        }
    }
    let mut versions: HashMap<&str, HashSet<u64>> = HashMap::new();
    for event in by_position.values() {
        assert!(versions
            .entry(&event.envelope().stream_id)
            .or_default()
            .insert(event.envelope().stream_version));
    }
    for (stream, seen) in versions {
        let max = *seen.iter().max().unwrap();
        assert_eq!(seen.len() as u64, max, "versions of {stream} are dense");
        assert_eq!(log.stream_version(stream).unwrap(), max);
    }
    assert!(log.verify(&mut |_, _| {}).is_ok());
}

/// Appends `count` requests one after the other on this thread; returns how many times they
/// woke the writer thread.
fn append_alone(log: &dipledger::log::Log, stream: &str, count: u64) -> u64 {
    let before = log.stats().writer_wakeups;
    for _ in 0..count {
        log.append_blocking(request(stream, ExpectedVersion::Any, 1))
            .expect("a lone append is acknowledged");
    }
    log.stats().writer_wakeups - before
}

/// A lone appender stops waking the writer thread once LONE_ROUNDS_TO_LEAD rounds in a row were
/// its alone (it leads its own round, or the writer thread, if still at work, takes its op);
/// concurrent appenders meanwhile are all committed (no op is left queued without a leader,
/// whoever held the commit when it was sent); and a lone appender stops waking it again after.
#[test]
fn a_lone_appender_stops_waking_the_writer_thread_and_concurrent_appends_are_all_committed() {
    use dipledger::log::limits::LONE_ROUNDS_TO_LEAD;
    const LONE: u64 = 40;
    const THREADS: u64 = 16;
    const EACH: u64 = 200;
    let (_dir, log) = temp_log();
    // The appender may read the count of lone rounds just before the writer thread raises it
    // past the threshold (the thread answers before it counts the round): one wake-up more.
    let most = u64::from(LONE_ROUNDS_TO_LEAD) + 1;
    let wakeups = append_alone(&log, "alone", LONE);
    assert!(wakeups <= most, "{wakeups} wake-ups for {LONE} lone appends");
    assert!(wakeups >= u64::from(LONE_ROUNDS_TO_LEAD), "{wakeups} wake-ups");
    // A burst of concurrent appenders arrives while lone appenders lead, each of them trying to
    // lead whenever no round is in progress (the threshold at 0, so that leadership passes
    // between appenders and the writer thread as often as it can): every op is committed.
    log.set_lone_rounds_to_lead(0);
    let (done, finished) = std::sync::mpsc::channel();
    for thread in 0..THREADS {
        let (log, done) = (log.clone(), done.clone());
        std::thread::spawn(move || {
            let mut spin = crate::support::log::XorShift(thread + 1);
            for _ in 0..EACH {
                // Uneven gaps, so rounds are sometimes lone and sometimes shared.
                for _ in 0..spin.next_u32() % 20_000 {
                    std::hint::black_box(0u64);
                }
                log.append_blocking(request(&format!("burst-{thread}"), ExpectedVersion::Any, 1))
                    .expect("a concurrent append is acknowledged");
            }
            done.send(()).expect("the test waits");
        });
    }
    for _ in 0..THREADS {
        finished
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("every concurrent append is answered (an op left queued with no leader hangs)");
    }
    assert_eq!(log.head(), LONE + THREADS * EACH);
    log.set_lone_rounds_to_lead(LONE_ROUNDS_TO_LEAD);
    let wakeups = append_alone(&log, "alone-again", LONE);
    assert!(
        wakeups <= most,
        "{wakeups} wake-ups for {LONE} lone appends after the burst"
    );
    assert!(log.verify(&mut |_, _| {}).is_ok());
}

/// A panic while committing (a bug in the writer) poisons the log, whether the writer thread or
/// a lone appender leads the round (the first: always the writer thread; after lone rounds: the
/// appender, unless the writer thread is still at work and takes the op): the round's appender
/// gets an error instead of the panic, later appends are refused as poisoned instead of hanging,
/// and nothing of it reaches the log.
#[test]
fn a_panic_while_committing_poisons_the_log_whoever_leads_the_round() {
    use dipledger::log::limits::LONE_ROUNDS_TO_LEAD;
    use dipledger::log::FaultPoint;
    for lone_first in [0, u64::from(LONE_ROUNDS_TO_LEAD) + 2] {
        let (dir, log) = temp_log();
        append_alone(&log, "before", lone_first);
        log.inject_fault(FaultPoint::StagePanic, std::io::ErrorKind::Other);
        let failed = log.append_blocking(request("panics", ExpectedVersion::Any, 1));
        assert!(
            matches!(failed, Err(LogError::WriterPanicked)),
            "the panicked round's appender is told the writer panicked, got {failed:?}"
        );
        let refused = log.append_blocking(request("after", ExpectedVersion::Any, 1));
        assert!(
            matches!(refused, Err(LogError::WriterPanicked)),
            "a later append is refused, the writer having panicked, got {refused:?}"
        );
        assert_eq!(log.head(), lone_first);
        let log = reopen_and_check(&dir, log, lone_first, "nothing of the panicked round was written");
        assert!(log.poisoned().is_none());
        log.append_blocking(request("reopened", ExpectedVersion::Any, 1))
            .expect("the reopened log takes appends");
        assert!(log.verify(&mut |_, _| {}).is_ok());
    }
}

/// The same panic while appenders keep sending from several threads, each trying to lead: every
/// append is answered (none hangs), the successes are exactly what the log holds, and the log
/// reopens whole.
#[test]
fn a_panic_while_appenders_keep_sending_leaves_no_append_unanswered() {
    use dipledger::log::FaultPoint;
    const THREADS: usize = 8;
    const EACH: usize = 40;
    let (dir, log) = temp_log();
    log.set_lone_rounds_to_lead(0);
    log.inject_fault(FaultPoint::StagePanic, std::io::ErrorKind::Other);
    let (done, finished) = std::sync::mpsc::channel();
    for thread in 0..THREADS {
        let (log, done) = (log.clone(), done.clone());
        std::thread::spawn(move || {
            let mut succeeded = 0u64;
            for _ in 0..EACH {
                match log.append_blocking(request(&format!("t-{thread}"), ExpectedVersion::Any, 1)) {
                    Ok(_) => succeeded += 1,
                    Err(LogError::WriterPanicked) => {}
                    Err(other) => panic!("an append failed otherwise: {other:?}"),
                }
            }
            done.send(succeeded).expect("the test waits");
        });
    }
    let mut succeeded = 0;
    for _ in 0..THREADS {
        succeeded += finished
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("every append is answered after the panic");
    }
    assert!(log.poisoned().is_some_and(|cause| cause.contains("panicked")));
    assert_eq!(log.head(), succeeded);
    reopen_and_check(
        &dir,
        log,
        succeeded,
        "the log holds exactly the acknowledged appends",
    );
}

/// Closes `log`, reopens it, and checks that it holds `head` events and verifies.
fn reopen_and_check(
    dir: &tempfile::TempDir,
    log: dipledger::log::Log,
    head: u64,
    why: &str,
) -> dipledger::log::Log {
    drop(log);
    let log = crate::support::log::reopen(dir);
    assert_eq!(log.head(), head, "{why}");
    assert!(log.verify(&mut |_, _| {}).is_ok());
    log
}
