//! Export as JSON lines and restore into an empty directory: byte for byte, every hash checked,
//! the first bad line named.

use crate::support::log::{request, temp_log};
use dipledger::log::backup::{export_jsonl, restore_jsonl, RestoreError};
use dipledger::log::{Direction, EventFilter, ExpectedVersion, Log, LogConfig};

fn exported(log: &Log) -> Vec<u8> {
    let mut out = Vec::new();
    export_jsonl(log, &mut out, &mut |_, _| {}).unwrap();
    out
}

#[test]
fn export_then_restore_gives_an_identical_log() {
    let (_dir, log) = temp_log();
    let mut requests = Vec::new();
    for i in 0..300 {
        let request = request(&format!("stream-{}", i % 13), ExpectedVersion::Any, 1 + i % 4);
        log.append_blocking(request.clone()).unwrap();
        requests.push(request);
    }
    let export = exported(&log);
    assert_eq!(export.iter().filter(|b| **b == b'\n').count() as u64, log.head());
    let target = tempfile::tempdir().unwrap();
    let restored_dir = target.path().join("restored");
    let restored = restore_jsonl(&mut export.as_slice(), &restored_dir, &mut |_| {}).unwrap();
    assert_eq!(restored, log.head());
    let copy = Log::open(LogConfig::new(&restored_dir)).unwrap();
    let all = |log: &Log| {
        log.read_all(1, Direction::Forwards, usize::MAX, &EventFilter::default())
            .unwrap()
            .events
    };
    assert_eq!(all(&copy), all(&log), "same envelopes, leaf and chain hashes");
    assert_eq!(
        copy.verify(&mut |_, _| {}).unwrap(),
        log.verify(&mut |_, _| {}).unwrap()
    );
    // Idempotency survives: a retried command returns its original result and appends nothing.
    let head = copy.head();
    let original = log.find_command(requests[17].command_id()).unwrap().unwrap().1;
    assert_eq!(copy.append_blocking(requests[17].clone()).unwrap(), original);
    assert_eq!(copy.head(), head);
    assert_eq!(exported(&copy), export, "exporting the copy gives the same bytes");
}

#[test]
fn restore_stops_at_the_first_bad_line_and_names_it() {
    let (_dir, log) = temp_log();
    for _ in 0..5 {
        log.append_blocking(request("s", ExpectedVersion::Any, 1))
            .unwrap();
    }
    let export = String::from_utf8(exported(&log)).unwrap();
    let mut lines: Vec<String> = export.lines().map(str::to_owned).collect();
    // Tamper with the payload of line 3 (the last byte of its leaf input): its leaf hash no
    // longer matches.
    let input_at = lines[2].find("\"leaf_input_hex\":\"").unwrap() + 18;
    let payload_at = input_at + lines[2][input_at..].find('"').unwrap() - 1;
    let flipped = if &lines[2][payload_at..payload_at + 1] == "0" {
        "1"
    } else {
        "0"
    };
    lines[2].replace_range(payload_at..payload_at + 1, flipped);
    let tampered = lines.join("\n") + "\n";
    let target = tempfile::tempdir().unwrap();
    match restore_jsonl(&mut tampered.as_bytes(), &target.path().join("x"), &mut |_| {}) {
        Err(RestoreError::BadLine { line: 3, reason }) => assert!(reason.contains("leaf hash"), "{reason}"),
        other => panic!("expected line 3 to be refused, got {other:?}"),
    }
    // A dropped line breaks the dense positions.
    let mut gap = export.lines().map(str::to_owned).collect::<Vec<_>>();
    gap.remove(1);
    let gap = gap.join("\n") + "\n";
    match restore_jsonl(&mut gap.as_bytes(), &target.path().join("y"), &mut |_| {}) {
        Err(RestoreError::BadLine { line: 2, .. }) => {}
        other => panic!("expected line 2 to be refused, got {other:?}"),
    }
}

#[test]
fn restore_refuses_a_non_empty_directory() {
    let (dir, log) = temp_log();
    log.append_blocking(request("s", ExpectedVersion::Any, 1))
        .unwrap();
    let export = exported(&log);
    drop(log);
    assert!(matches!(
        restore_jsonl(&mut export.as_slice(), dir.path(), &mut |_| {}),
        Err(RestoreError::NotEmpty(_))
    ));
}

#[test]
fn an_export_line_is_restored_at_max_export_line_bytes_and_refused_one_past() {
    use dipledger::log::backup::MAX_EXPORT_LINE_BYTES;
    let (_dir, log) = temp_log();
    log.append_blocking(request("stream-1", ExpectedVersion::Any, 1))
        .unwrap();
    let export = String::from_utf8(exported(&log)).unwrap();
    // The line padded with spaces before its newline (JSON allows them) to `len` bytes.
    let padded = |len: usize| {
        let line = export.trim_end();
        format!("{line}{}\n", " ".repeat(len - line.len() - 1))
    };
    let target = tempfile::tempdir().unwrap();
    let at_max = padded(MAX_EXPORT_LINE_BYTES);
    assert_eq!(at_max.len(), MAX_EXPORT_LINE_BYTES);
    let restored = restore_jsonl(&mut at_max.as_bytes(), &target.path().join("at-max"), &mut |_| {});
    assert_eq!(restored.unwrap(), 1);
    let one_past = padded(MAX_EXPORT_LINE_BYTES + 1);
    match restore_jsonl(
        &mut one_past.as_bytes(),
        &target.path().join("one-past"),
        &mut |_| {},
    ) {
        Err(RestoreError::BadLine { line, reason }) => {
            assert_eq!(
                (line, reason),
                (1, format!("line is over {MAX_EXPORT_LINE_BYTES} bytes"))
            )
        }
        other => panic!("expected a refused line, got {other:?}"),
    }
}
