//! Helpers shared by the log's integration tests.

use dipledger::log::{AppendRequest, EventDraft, ExpectedVersion, Log, LogConfig};
use dipledger::time::{OccurredAt, Precision, Timestamp};
use uuid::Uuid;

/// Journal segments of 8 MiB instead of 32: these tests open hundreds of logs, and a
/// segment is created zeroed and read whole on every open. Still large enough for a transaction
/// at MAX_APPEND_PAYLOAD_BYTES.
pub const TEST_SEGMENT_BYTES: u64 = 8 * 1024 * 1024;

/// An event draft with a payload of `payload_len` bytes derived from `seed`.
pub fn draft(seed: u64, payload_len: usize) -> EventDraft {
    EventDraft {
        event_type: if seed % 2 == 0 {
            "MeetingHeld".into()
        } else {
            "CommitmentRecorded".into()
        },
        schema_version: 1,
        occurred_at: OccurredAt::new(Timestamp::from_unix_micros(seed as i64 * 1_000), Precision::Day),
        tags: vec![format!("party:P{}", seed % 3)],
        payload: (0..payload_len).map(|i| (seed as usize + i) as u8).collect(),
    }
}

/// A request appending `count` small events to `stream`.
pub fn request(stream: &str, expected: ExpectedVersion, count: usize) -> AppendRequest {
    let events = (0..count as u64).map(|i| draft(i, 32)).collect();
    AppendRequest::new(Uuid::now_v7(), stream, expected, "tester", events)
}

/// Opens a log in a fresh temporary directory (kept alive by the returned guard).
pub fn temp_log() -> (tempfile::TempDir, Log) {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = Log::open(
        LogConfig::new(dir.path())
            .cache_capacity_bytes(16 * 1024 * 1024)
            .journal_segments(TEST_SEGMENT_BYTES, 8),
    )
    .expect("open log");
    (dir, log)
}

/// Reopens the log in `dir` (the previous handle must be dropped first).
pub fn reopen(dir: &tempfile::TempDir) -> Log {
    Log::open(
        LogConfig::new(dir.path())
            .cache_capacity_bytes(16 * 1024 * 1024)
            .journal_segments(TEST_SEGMENT_BYTES, 8),
    )
    .expect("reopen log")
}

/// xorshift64*: a fixed-seed generator, so a failing run can be reproduced.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next_u32(&mut self) -> u32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32
    }
}
