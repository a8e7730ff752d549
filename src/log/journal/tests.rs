//! The journal's crash matrix, on the simulated disk: torn frames at every byte, zeroed tails,
//! damage in the newest and in older segments, a journal ahead of sled, sled ahead of a
//! recycled journal.

use std::sync::Arc;

use super::frame::{encode_frame, FramePart, RequestEntry};
use super::recovery::{recover, Recovered};
use super::store::sim::{Shared, SimStore};
use super::store::SegmentStore;
use super::{JournalSizes, JournalWriter, WriterStart, SEGMENT_HEADER_BYTES};
use crate::log::error::LogError;

const SIZES: JournalSizes = JournalSizes {
    segment_bytes: 4096,
    max_segments: 3,
};

fn part(first_position: u64, records: usize) -> FramePart {
    let mut part = FramePart::new(first_position, [first_position as u8; 32]);
    for offset in 0..records {
        part.push_record(format!("record at {}", first_position + offset as u64).as_bytes());
    }
    part.requests.push(RequestEntry {
        command_id: uuid::Uuid::from_u128(u128::from(first_position)),
        fingerprint: [1; 32],
        first_position,
        count: records as u32,
    });
    part
}

fn empty_start() -> WriterStart {
    WriterStart {
        segments: Vec::new(),
        active: None,
        next_sequence: 1,
    }
}

/// Writes `frames` frames of 3 records each (positions 1, 4, 7, ...), never checkpointing, and
/// returns the store.
fn journal_with(frames: u64) -> Arc<SimStore> {
    let sim = SimStore::new(None);
    let store: Arc<dyn SegmentStore> = Arc::new(Shared(sim.clone()));
    let mut writer = JournalWriter::new(store, empty_start(), SIZES).expect("writer");
    for frame in 0..frames {
        let mut no_checkpoint = || -> std::io::Result<u64> { panic!("no checkpoint expected") };
        writer
            .write(&[part(1 + frame * 3, 3)], 0, &mut no_checkpoint)
            .expect("write");
    }
    sim
}

fn recover_from(sim: &Arc<SimStore>, sled_head: u64) -> Result<Recovered, LogError> {
    let chain = [(sled_head + 1) as u8; 32]; // part(p) chains from [p as u8; 32]
    recover(&Shared(sim.clone()), sled_head, &chain)
}

fn positions(recovered: &Recovered) -> Vec<(u64, u64)> {
    recovered
        .replay
        .iter()
        .map(|frame| (frame.first_position, frame.last_position()))
        .collect()
}

fn frame_len() -> usize {
    encode_frame(1, &[part(1, 3)]).len()
}

#[test]
fn a_journal_ahead_of_sled_replays_every_frame_past_sleds_head() {
    let sim = journal_with(4);
    let recovered = recover_from(&sim, 0).expect("recovers");
    assert_eq!(positions(&recovered), vec![(1, 3), (4, 6), (7, 9), (10, 12)]);
    let recovered = recover_from(&sim, 6).expect("recovers");
    assert_eq!(positions(&recovered), vec![(7, 9), (10, 12)]);
    assert_eq!(recovered.start.next_sequence, 5);
    assert_eq!(recovered.truncated_bytes, 0);
}

#[test]
fn sled_ahead_of_the_journal_replays_nothing() {
    let sim = journal_with(2);
    let recovered = recover_from(&sim, 100).expect("recovers");
    assert!(recovered.replay.is_empty());
}

#[test]
fn a_gap_between_sled_and_the_journal_is_data_loss() {
    let sim = journal_with(3);
    // Frames start at 1, 4, 7; sled at 0 but the first frame is gone: damage its magic.
    let store = Shared(sim.clone());
    let id = store.list().unwrap()[0];
    sim.damage(id, SEGMENT_HEADER_BYTES, b"XXXX");
    let error = recover_from(&sim, 0).expect_err("a gap");
    assert!(matches!(error, LogError::DataLoss { .. }), "{error}");
}

#[test]
fn a_frame_torn_at_every_byte_offset_is_cut_off_and_everything_before_it_replays() {
    let length = frame_len();
    for torn_at in 0..length {
        for garbage in [0u8, 0xA5] {
            let sim = journal_with(3);
            let id = Shared(sim.clone()).list().unwrap()[0];
            let last_frame = SEGMENT_HEADER_BYTES + 2 * length;
            let tail = vec![garbage; length - torn_at];
            sim.damage(id, last_frame + torn_at, &tail);
            let recovered =
                recover_from(&sim, 0).unwrap_or_else(|error| panic!("torn at {torn_at}: {error}"));
            assert_eq!(positions(&recovered), vec![(1, 3), (4, 6)], "torn at {torn_at}");
            assert_eq!(recovered.start.active, Some((id, last_frame as u64)));
            // Recovery repaired the tail: a second recovery finds the same, with nothing to cut.
            let again = recover_from(&sim, 0).expect("recovers again");
            assert_eq!(positions(&again), vec![(1, 3), (4, 6)]);
            assert_eq!(again.truncated_bytes, 0, "torn at {torn_at}");
        }
    }
}

#[test]
fn a_zeroed_tail_ends_the_journal() {
    let sim = journal_with(3);
    let id = Shared(sim.clone()).list().unwrap()[0];
    let length = frame_len();
    sim.damage(id, SEGMENT_HEADER_BYTES + length, &vec![0; 2 * length]);
    let recovered = recover_from(&sim, 0).expect("recovers");
    assert_eq!(positions(&recovered), vec![(1, 3)]);
}

#[test]
fn a_bad_checksum_in_the_middle_of_the_newest_segment_is_data_loss() {
    let sim = journal_with(3);
    let id = Shared(sim.clone()).list().unwrap()[0];
    let length = frame_len();
    // Flip a byte inside the second of three frames: the third, valid, follows the damage.
    sim.damage(id, SEGMENT_HEADER_BYTES + length + 80, b"\xff");
    let error = recover_from(&sim, 0).expect_err("damage followed by a valid frame");
    assert!(matches!(error, LogError::DataLoss { .. }), "{error}");
}

#[test]
fn a_bad_checksum_in_an_older_segment_is_data_loss() {
    let per_segment = (SIZES.segment_bytes as usize - SEGMENT_HEADER_BYTES) / frame_len();
    let sim = journal_with(per_segment as u64 + 2);
    let ids = Shared(sim.clone()).list().unwrap();
    assert_eq!(ids.len(), 2, "the frames spill into a second segment");
    // The last frame of the first (older) segment.
    sim.damage(
        ids[0],
        SEGMENT_HEADER_BYTES + (per_segment - 1) * frame_len() + 80,
        b"\xff",
    );
    let error = recover_from(&sim, 0).expect_err("damage in an older segment");
    assert!(matches!(error, LogError::DataLoss { .. }), "{error}");
}

#[test]
fn segments_below_the_checkpoint_are_reused_and_old_frames_in_them_are_ignored() {
    let sim = SimStore::new(None);
    let store: Arc<dyn SegmentStore> = Arc::new(Shared(sim.clone()));
    let mut writer = JournalWriter::new(store.clone(), empty_start(), SIZES).expect("writer");
    let mut checkpoints = 0;
    let mut position = 1;
    // Enough frames to fill every segment several times; sled is "checkpointed" when asked.
    for _ in 0..200 {
        let durable = position - 1;
        let mut checkpoint = || -> std::io::Result<u64> {
            checkpoints += 1;
            Ok(durable)
        };
        writer
            .write(&[part(position, 3)], 0, &mut checkpoint)
            .expect("write");
        position += 3;
    }
    assert_eq!(writer.segment_count(), SIZES.max_segments);
    assert!(
        checkpoints > 0,
        "the writer asked for checkpoints to reuse segments"
    );
    // sled holds everything up to the last frame: nothing to replay, and the writer resumes
    // after the last frame, with the next sequence number.
    let recovered = recover_from(&sim, position - 4).expect("recovers");
    assert_eq!(positions(&recovered), vec![(position - 3, position - 1)]);
    assert_eq!(recovered.start.next_sequence, 201);
}

#[test]
fn a_segment_created_but_never_written_is_free() {
    let sim = SimStore::new(None);
    let store: Arc<dyn SegmentStore> = Arc::new(Shared(sim.clone()));
    let writer = JournalWriter::new(store, empty_start(), SIZES).expect("writer");
    assert_eq!(writer.segment_count(), 1);
    let recovered = recover_from(&sim, 0).expect("recovers");
    assert!(recovered.replay.is_empty());
    assert_eq!(recovered.start.active, None);
    assert_eq!(recovered.start.segments.len(), 1);
}
