//! Reading the journal back after a crash.
//!
//! Every segment with a valid header is read frame by frame from its header on; a frame counts
//! when its checksum holds and its sequence number is the next one of that segment. Reading a
//! segment stops at the first place that is not such a frame:
//! - no frame there (zeros, or the leftovers of the segment's previous life: frames with older
//!   sequence numbers) is the segment's clean end;
//! - a frame header whose frame fails its checks is a torn write when it is in the newest
//!   segment and no valid later frame follows it: it was never acknowledged (an acknowledgement
//!   waits for the fdatasync that would have completed it), so it is zeroed ("truncated");
//!   anywhere else it is damage: DATA_LOSS.
//! - in every segment, a valid frame with a later sequence number after the stopping place means
//!   a frame in between was lost: DATA_LOSS.
//!
//! Frames are then ordered by sequence number; those wholly at or below sled's head are already
//! in sled. The rest must continue sled's head without a gap (positions, sequence numbers and
//! chain hashes), or the journal has lost acknowledged commits: DATA_LOSS.

use std::collections::BTreeMap;

use super::frame::{decode_frame, Frame, NotAFrame, RequestEntry, FRAME_HEADER_BYTES, FRAME_MAGIC};
use super::store::SegmentStore;
use super::{decode_segment_header, SegmentHeader, SegmentState, WriterStart, SEGMENT_HEADER_BYTES};
use crate::log::envelope::Hash;
use crate::log::error::{LogError, LogResult};

/// A frame to replay into sled, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReplayFrame {
    pub(crate) sequence: u64,
    pub(crate) first_position: u64,
    pub(crate) previous_chain: Hash,
    pub(crate) requests: Vec<RequestEntry>,
    pub(crate) records: Vec<Vec<u8>>,
}

impl ReplayFrame {
    pub(crate) fn last_position(&self) -> u64 {
        self.first_position + self.records.len() as u64 - 1
    }
}

/// What recovery found: frames past sled's head, in order, and where the writer goes on.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub(crate) replay: Vec<ReplayFrame>,
    pub(crate) start: WriterStart,
    /// Bytes zeroed at the end of the newest segment (a torn, unacknowledged write).
    pub(crate) truncated_bytes: u64,
}

fn journal_loss(reason: String) -> LogError {
    LogError::DataLoss {
        position: 0,
        reason: format!("journal: {reason}"),
    }
}

/// How reading one segment ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stop {
    Clean,
    Torn(String),
}

struct Scanned {
    id: u64,
    first_sequence: u64,
    frames: Vec<ReplayFrame>,
    end: usize,
    /// The segment's size in bytes.
    size: usize,
    stop: Stop,
}

fn owned(frame: Frame<'_>) -> ReplayFrame {
    ReplayFrame {
        sequence: frame.sequence,
        first_position: frame.first_position,
        previous_chain: frame.previous_chain,
        requests: frame.requests,
        records: frame.records.iter().map(|record| record.to_vec()).collect(),
    }
}

fn scan_segment(id: u64, first_sequence: u64, bytes: &[u8]) -> LogResult<Scanned> {
    let mut at = SEGMENT_HEADER_BYTES;
    let mut expected = first_sequence;
    let mut frames = Vec::new();
    let stop = loop {
        if at + FRAME_HEADER_BYTES > bytes.len() {
            break Stop::Clean;
        }
        match decode_frame(&bytes[at..]) {
            Ok(frame) if frame.sequence == expected => {
                at += frame.length;
                expected += 1;
                frames.push(owned(frame));
            }
            Ok(_) | Err(NotAFrame::NoMagic) => break Stop::Clean,
            Err(NotAFrame::Damaged(reason)) => break Stop::Torn(reason),
        }
    };
    if let Some(later) = later_frame(bytes, at + 1, expected) {
        return Err(journal_loss(format!(
            "segment {id:016x}: frame {later} follows a gap at offset {at}"
        )));
    }
    Ok(Scanned {
        id,
        first_sequence,
        frames,
        end: at,
        size: bytes.len(),
        stop,
    })
}

/// The sequence number of a valid frame at or after `from` whose sequence is `at_least` or
/// more, if there is one. Runs of zero bytes (most of a segment) are skipped eight at a time.
fn later_frame(bytes: &[u8], from: usize, at_least: u64) -> Option<u64> {
    let mut at = from;
    while at + FRAME_HEADER_BYTES <= bytes.len() {
        if at % 8 == 0 && bytes[at..at + 8] == [0; 8] {
            at += 8;
            continue;
        }
        if bytes[at..at + 4] == FRAME_MAGIC {
            if let Ok(frame) = decode_frame(&bytes[at..]) {
                if frame.sequence >= at_least {
                    return Some(frame.sequence);
                }
            }
        }
        at += 1;
    }
    None
}

/// Reads every segment, zeroes a torn tail of the newest one, and returns the frames past
/// `sled_head` (whose chain hash is `sled_chain`) with the writer's starting point.
pub(crate) fn recover(store: &dyn SegmentStore, sled_head: u64, sled_chain: &Hash) -> LogResult<Recovered> {
    let mut ids = store.list()?;
    ids.sort_unstable();
    let mut scanned = Vec::new();
    let mut unused = Vec::new();
    let mut highest_sequence = 0;
    for id in ids {
        let bytes = store.read(id)?;
        match decode_segment_header(id, &bytes) {
            SegmentHeader::FirstSequence(first) => {
                let segment = scan_segment(id, first, &bytes)?;
                highest_sequence = highest_sequence
                    .max(first)
                    .max(segment.frames.last().map_or(0, |f| f.sequence));
                scanned.push(segment);
            }
            SegmentHeader::Unused => unused.push(id),
            SegmentHeader::Damaged => {
                // A header is written in one sector with its first frame: damage, unless the
                // segment holds no frame at all (then nothing in it was ever acknowledged).
                if later_frame(&bytes, SEGMENT_HEADER_BYTES, 0).is_some() {
                    return Err(journal_loss(format!("segment {id:016x}: damaged header")));
                }
                unused.push(id);
            }
        }
    }
    scanned.sort_by_key(|segment| segment.first_sequence);
    let mut truncated_bytes = 0;
    let newest = scanned.len().checked_sub(1);
    for (index, segment) in scanned.iter().enumerate() {
        if let Stop::Torn(reason) = &segment.stop {
            if Some(index) != newest {
                return Err(journal_loss(format!(
                    "segment {:016x} offset {}: {reason} (not the newest segment)",
                    segment.id, segment.end
                )));
            }
            let zeros = vec![0u8; segment.size - segment.end];
            let mut file = store.open(segment.id)?;
            file.write_at(segment.end as u64, &zeros)?;
            file.sync_data()?;
            truncated_bytes = zeros.len() as u64;
        }
    }
    let replay = frames_to_replay(&scanned, sled_head, sled_chain)?;
    let mut segments: Vec<SegmentState> = scanned
        .iter()
        .map(|segment| SegmentState {
            id: segment.id,
            last_position: segment.frames.last().map_or(0, ReplayFrame::last_position),
        })
        .collect();
    segments.extend(unused.into_iter().map(|id| SegmentState { id, last_position: 0 }));
    let active = scanned.last().map(|segment| (segment.id, segment.end as u64));
    Ok(Recovered {
        replay,
        start: WriterStart {
            segments,
            active,
            next_sequence: highest_sequence + 1,
        },
        truncated_bytes,
    })
}

/// The frames past sled's head, checked to continue it without a gap.
fn frames_to_replay(scanned: &[Scanned], sled_head: u64, sled_chain: &Hash) -> LogResult<Vec<ReplayFrame>> {
    let mut by_sequence = BTreeMap::new();
    for frame in scanned.iter().flat_map(|segment| &segment.frames) {
        if by_sequence.insert(frame.sequence, frame).is_some() {
            return Err(journal_loss(format!("sequence {} appears twice", frame.sequence)));
        }
    }
    let mut replay: Vec<ReplayFrame> = Vec::new();
    let mut previous_last = 0;
    for frame in by_sequence.into_values() {
        if frame.first_position <= previous_last {
            return Err(journal_loss(format!(
                "frame {} starts at position {}, not after {previous_last}",
                frame.sequence, frame.first_position
            )));
        }
        previous_last = frame.last_position();
        if frame.last_position() <= sled_head {
            continue;
        }
        match replay.last() {
            None if frame.first_position > sled_head + 1 => {
                return Err(journal_loss(format!(
                    "positions {}..{} are in neither sled nor the journal",
                    sled_head + 1,
                    frame.first_position
                )));
            }
            None if frame.first_position == sled_head + 1 && frame.previous_chain != *sled_chain => {
                return Err(journal_loss(format!(
                    "frame {} does not continue the chain at position {sled_head}",
                    frame.sequence
                )));
            }
            Some(before)
                if before.sequence + 1 != frame.sequence
                    || before.last_position() + 1 != frame.first_position =>
            {
                return Err(journal_loss(format!(
                    "frame {} does not follow frame {}",
                    frame.sequence, before.sequence
                )));
            }
            _ => {}
        }
        replay.push(frame.clone());
    }
    Ok(replay)
}
