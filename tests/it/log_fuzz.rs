//! Fuzz targets on stable Rust (proptest): arbitrary and damaged bytes into the decoders that
//! read what the disk or a file hands back — the log record decoder (`log::codec`) and the
//! JSON-lines export reader of `restore` (`log::backup`); the journal frame decoder, which is
//! crate-private, has its own in `src/log/journal/frame.rs`. Each must answer with a clean
//! error (or a value), never panic.
//!
//! `cargo test` runs a few seconds of each; `PROPTEST_CASES=N` runs N cases of every target
//! (docs/operations.md, "Fuzzing", says how many make ten minutes).

use crate::support::log::{request, temp_log};
use dipledger::log::backup::{export_jsonl, restore_jsonl, RestoreError};
use dipledger::log::codec::{decode_record, split_chunk, FORMAT_VERSION};
use dipledger::log::{ExpectedVersion, LogError};
use proptest::prelude::*;

/// Cases per target: `PROPTEST_CASES`, else `default` (a few seconds in `cargo test`).
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default)
}

/// A record whose framing and CRC-32 are right around an arbitrary body and hashes, so the
/// envelope decoder itself (bincode, frozen configuration) sees arbitrary bytes.
fn framed_record(body: &[u8], hashes: &[u8; 64]) -> Vec<u8> {
    let mut record = vec![FORMAT_VERSION];
    record.extend_from_slice(&(body.len() as u32).to_be_bytes());
    record.extend_from_slice(body);
    record.extend_from_slice(hashes);
    let crc = crc32fast::hash(&record);
    record.extend_from_slice(&crc.to_be_bytes());
    record
}

/// A real record (the envelope of a logged event), to damage.
fn real_record() -> Vec<u8> {
    let (_dir, log) = temp_log();
    log.append_blocking(request("party-LBY", ExpectedVersion::Any, 1))
        .unwrap();
    let event = log.read_event(1).unwrap();
    dipledger::log::codec::encode_record(event.envelope(), &dipledger::log::codec::GENESIS_CHAIN_HASH)
        .unwrap()
        .0
}

/// A decode either fails with DATA_LOSS at the position asked for, or returns that position.
fn check_decoded(position: u64, bytes: &[u8]) -> Result<(), TestCaseError> {
    match decode_record(position, bytes) {
        Ok(event) => prop_assert_eq!(event.position(), position),
        Err(LogError::DataLoss { position: at, .. }) => prop_assert_eq!(at, position),
        Err(other) => prop_assert!(false, "not a clean data-loss error: {other:?}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(10_000), ..ProptestConfig::default() })]

    #[test]
    fn the_record_decoder_refuses_arbitrary_bytes_cleanly(
        position in 1u64..u64::MAX,
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        check_decoded(position, &bytes)?;
        // The same bytes as a chunk of records: split or refused, never a panic, and every
        // record it splits off lies inside the chunk.
        if let Ok(records) = split_chunk(position, &bytes) {
            prop_assert_eq!(records.iter().map(|record| record.len()).sum::<usize>(), bytes.len());
        }
    }

    #[test]
    fn the_envelope_decoder_refuses_arbitrary_bodies_cleanly(
        position in 1u64..1_000,
        body in proptest::collection::vec(any::<u8>(), 0..512),
        hashes in proptest::array::uniform32(any::<u8>()).prop_flat_map(|first| {
            proptest::array::uniform32(any::<u8>()).prop_map(move |second| {
                let mut both = [0u8; 64];
                both[..32].copy_from_slice(&first);
                both[32..].copy_from_slice(&second);
                both
            })
        }),
    ) {
        check_decoded(position, &framed_record(&body, &hashes))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(10_000), ..ProptestConfig::default() })]

    #[test]
    fn a_damaged_record_is_refused_cleanly(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        thread_local!(static RECORD: Vec<u8> = real_record());
        let mut bytes = RECORD.with(Clone::clone);
        for (at, mask) in flips {
            let at = at.index(bytes.len());
            bytes[at] ^= mask;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        // Damage is never served: a changed byte breaks the CRC (or the framing). Flips that
        // cancel out leave the record as it was.
        if RECORD.with(|record| *record == bytes) {
            prop_assert!(decode_record(1, &bytes).is_ok());
        } else {
            let refused = matches!(decode_record(1, &bytes), Err(LogError::DataLoss { position: 1, .. }));
            prop_assert!(refused, "a damaged record was not refused with DATA_LOSS at its position");
        }
    }
}

/// The export of a small log: three events of two streams.
fn real_export() -> String {
    let (_dir, log) = temp_log();
    for stream in ["party-LBY", "party-FRA", "party-LBY"] {
        log.append_blocking(request(stream, ExpectedVersion::Any, 1))
            .unwrap();
    }
    let mut out = Vec::new();
    export_jsonl(&log, &mut out, &mut |_, _| {}).unwrap();
    String::from_utf8(out).unwrap()
}

/// Restores `input` into a fresh directory: the events restored, or a clean error.
fn restored(input: &[u8]) -> Result<u64, RestoreError> {
    let target = tempfile::tempdir().unwrap();
    restore_jsonl(&mut &input[..], &target.path().join("restored"), &mut |_| {})
}

/// A restore refusal is a bad line (numbered from 1) or an I/O error reading the input (bytes
/// that are not UTF-8); never a panic, never anything else.
fn check_refusal(result: Result<u64, RestoreError>, lines: usize) -> Result<(), TestCaseError> {
    match result {
        Ok(_) => {}
        Err(RestoreError::BadLine { line, .. }) => prop_assert!((1..=lines as u64 + 1).contains(&line)),
        Err(RestoreError::Log(LogError::Io(error))) => {
            prop_assert_eq!(error.kind(), std::io::ErrorKind::InvalidData)
        }
        Err(other) => prop_assert!(false, "not a clean refusal: {other:?}"),
    }
    Ok(())
}

proptest! {
    // Every case opens a log to restore into: far slower per case than the decoders above.
    #![proptest_config(ProptestConfig { cases: cases(48), ..ProptestConfig::default() })]

    #[test]
    fn the_export_reader_refuses_arbitrary_lines_cleanly(
        lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 1..4),
    ) {
        let input: Vec<u8> = lines.iter().flat_map(|line| line.iter().copied().chain([b'\n'])).collect();
        let result = restored(&input);
        prop_assert!(result.is_err(), "random lines are no export");
        check_refusal(result, lines.len())?;
    }

    #[test]
    fn the_export_reader_refuses_a_damaged_export_cleanly(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        swap in proptest::option::of((any::<prop::sample::Index>(), any::<prop::sample::Index>())),
    ) {
        thread_local!(static EXPORT: String = real_export());
        let mut bytes = EXPORT.with(|export| export.clone().into_bytes());
        for (at, value) in flips {
            let at = at.index(bytes.len());
            bytes[at] = value;
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let mut lines: Vec<&str> = text.lines().collect();
        if let Some((a, b)) = swap {
            let (a, b) = (a.index(lines.len()), b.index(lines.len()));
            lines.swap(a, b);
        }
        let input = lines.iter().map(|line| format!("{line}\n")).collect::<String>();
        let result = restored(input.as_bytes());
        if input == EXPORT.with(Clone::clone) {
            prop_assert_eq!(result.ok(), Some(3), "an undamaged export restores");
        } else {
            check_refusal(result, lines.len())?;
        }
    }
}
