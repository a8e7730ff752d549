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
