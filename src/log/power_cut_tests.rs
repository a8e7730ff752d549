//! Power cuts, simulated: the journal runs on a disk that keeps only what was fdatasynced, and
//! sled loses everything since its last checkpoint. Whatever was acknowledged must be found
//! after reopening. A SIGKILL cannot show this (the page cache survives it); this can, and the
//! second test proves it by removing the fdatasync and watching acknowledged commands vanish.

use std::path::Path;
use std::sync::{Arc, Mutex};

use uuid::Uuid;

use super::journal::store::sim::{Shared, SimStore};
use super::{AppendRequest, EventDraft, ExpectedVersion, Log, LogConfig};
use crate::time::{OccurredAt, Precision, Timestamp};

fn config(dir: &Path, store: Arc<SimStore>) -> LogConfig {
    let mut config = LogConfig::new(dir)
        .checkpoint_interval(std::time::Duration::from_secs(24 * 3600))
        .journal_segments(256 * 1024, 64);
    config.journal_store = Some(Arc::new(Shared(store)));
    config
}

/// One request of one event (200-byte payload) to stream `test-<stream>`; also the reader's tests'.
pub(super) fn request(command_id: Uuid, stream: usize) -> AppendRequest {
    let draft = EventDraft {
        event_type: "Tested".into(),
        schema_version: 1,
        occurred_at: OccurredAt::new(Timestamp::from_unix_micros(1_700_000_000_000_000), Precision::Day),
        tags: vec![format!("stream:{stream}")],
        payload: vec![7; 200],
    };
    AppendRequest::new(
        command_id,
        format!("test-{stream}"),
        ExpectedVersion::Any,
        "tester",
        vec![draft],
    )
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Appends from 4 threads until the simulated power cut after `cut_after` journal operations;
/// then restores sled to its state at open (nothing was checkpointed since), reopens on what the
/// disk kept, and returns the acknowledged commands that are missing.
fn acknowledged_but_lost(cut_after: i64, skip_sync: bool) -> Vec<Uuid> {
    let root = tempfile::tempdir().expect("tempdir");
    let (live, at_open) = (root.path().join("live"), root.path().join("at-open"));
    let mut sim = SimStore::new(Some(cut_after));
    Arc::get_mut(&mut sim).expect("sole owner").skip_sync = skip_sync;
    drop(Log::open(config(&live, sim.clone())).expect("create"));
    copy_dir(&live, &at_open);
    let log = Log::open(config(&live, sim.clone())).expect("open");
    let acknowledged = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let (log, acknowledged) = (&log, &acknowledged);
            scope.spawn(move || {
                for n in 0..10_000 {
                    let id = Uuid::from_u128((thread as u128) << 64 | n as u128);
                    match log.append_blocking(request(id, n % 7)) {
                        Ok(result) => acknowledged.lock().unwrap().push((id, result.first_position())),
                        Err(_) => return,
                    }
                }
            });
        }
    });
    assert!(sim.is_cut(), "the power cut happened");
    drop(log);
    std::fs::remove_dir_all(&live).expect("remove");
    copy_dir(&at_open, &live);
    let reopened = Log::open(config(&live, sim.after_power_cut())).expect("reopen after the cut");
    let acknowledged = acknowledged.into_inner().unwrap();
    let mut lost = Vec::new();
    for (id, position) in acknowledged {
        match reopened.find_command(id).expect("lookup") {
            Some((_, result)) if result.first_position() == position => {
                let event = reopened.read_event(position).expect("read");
                assert_eq!(event.envelope().command_id, id);
            }
            _ => lost.push(id),
        }
    }
    // The reopened log takes appends again, and a retried command returns its original result.
    reopened
        .append_blocking(request(Uuid::from_u128(u128::MAX), 0))
        .expect("append after reopen");
    lost
}

#[test]
fn every_acknowledged_command_survives_a_power_cut_at_any_point() {
    for cut_after in [1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144] {
        let lost = acknowledged_but_lost(cut_after, false);
        assert!(
            lost.is_empty(),
            "cut after {cut_after}: {} acknowledged commands lost",
            lost.len()
        );
    }
}

#[test]
fn without_the_fdatasync_a_power_cut_loses_acknowledged_commands() {
    let lost: usize = [21, 55, 144]
        .iter()
        .map(|cut| acknowledged_but_lost(*cut, true).len())
        .sum();
    assert!(lost > 0, "the power-cut test must notice a missing fdatasync");
}

#[test]
fn a_retry_after_a_crash_between_the_journal_sync_and_sleds_flush_gets_the_original_result() {
    let root = tempfile::tempdir().expect("tempdir");
    let (live, at_open) = (root.path().join("live"), root.path().join("at-open"));
    let sim = SimStore::new(None);
    drop(Log::open(config(&live, sim.clone())).expect("create"));
    copy_dir(&live, &at_open);
    let log = Log::open(config(&live, sim.clone())).expect("open");
    let ids: Vec<Uuid> = (1..=20).map(Uuid::from_u128).collect();
    let results: Vec<_> = ids
        .iter()
        .map(|id| log.append_blocking(request(*id, 1)).expect("append"))
        .collect();
    drop(log);
    // sled lost every commit (never checkpointed); the journal holds them all.
    std::fs::remove_dir_all(&live).expect("remove");
    copy_dir(&at_open, &live);
    let log = Log::open(config(&live, sim.after_power_cut())).expect("reopen");
    assert_eq!(log.head(), 20);
    for (id, original) in ids.iter().zip(&results) {
        let retried = log.append_blocking(request(*id, 1)).expect("retry");
        assert_eq!(&retried, original, "a retry returns the original result");
    }
    assert_eq!(log.head(), 20, "no retry appended anything");
    let different = log.append_blocking(request(ids[0], 2));
    assert!(matches!(different, Err(super::LogError::CommandIdReused { .. })));
    log.verify(&mut |_, _| {}).expect("verify");
}
