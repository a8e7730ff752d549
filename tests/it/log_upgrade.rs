//! Upgrade path: a data directory's history exported (JSON lines) by the release before the
//! write-ahead journal (`dipledger demo` then `dipledger export`) restores with this build into a
//! directory that then verifies with the same head chain hash, opens, and takes new appends.

use dipledger::log::backup::restore_jsonl;
use dipledger::log::{AppendRequest, EventDraft, ExpectedVersion, Log, LogConfig};

const FIXTURE: &str = include_str!("fixtures/export-before-journal.jsonl");
/// What `dipledger verify` of the release before the journal printed for that directory.
const HEAD_CHAIN_HASH: &str = "3347654558d679a703e2d7065e8b46ec94c8e644f133331eb794812a22778465";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[test]
fn an_export_of_the_release_before_the_journal_restores_with_every_hash_intact() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let restored = restore_jsonl(&mut FIXTURE.as_bytes(), &data, &mut |_| {}).expect("restore");
    assert_eq!(restored, 22);
    let log = Log::open(LogConfig::new(&data)).expect("open the restored directory");
    let report = log.verify(&mut |_, _| {}).expect("verify");
    assert_eq!(report.events, 22);
    assert_eq!(hex(&report.head_chain_hash), HEAD_CHAIN_HASH);
    let draft = EventDraft {
        event_type: "Tested".into(),
        schema_version: 1,
        occurred_at: dipledger::time::OccurredAt::new(
            dipledger::time::Timestamp::from_unix_micros(1_736_899_200_000_000),
            dipledger::time::Precision::Day,
        ),
        tags: vec![],
        payload: vec![1, 2, 3],
    };
    let request = AppendRequest::new(
        uuid::Uuid::now_v7(),
        "test-upgrade",
        ExpectedVersion::NoStream,
        "tester",
        vec![draft],
    );
    assert_eq!(log.append_blocking(request).expect("append").first_position(), 23);
    drop(log);
    let log = Log::open(LogConfig::new(&data)).expect("reopen");
    assert_eq!(log.head(), 23);
    assert_eq!(log.verify(&mut |_, _| {}).expect("verify").events, 23);
}
