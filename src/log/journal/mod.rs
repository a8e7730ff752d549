//! The write-ahead journal that makes an acknowledgement durable.
//!
//! sled holds the events and serves every read, but its `flush` is two device barriers and holds
//! sled's process-wide lock, so it is kept off the acknowledgement path. Instead each group of
//! commits is written as one frame to a preallocated, pre-zeroed segment file and made durable
//! with one `fdatasync` (the file's size and extents never change, so the barrier carries no
//! metadata). The checkpointer flushes sled every so often; a segment whose frames are all at
//! or below the position sled holds durably is recycled. On open, recovery replays every frame
//! past sled's head. See docs/storage.md for the bytes and docs/ARCHITECTURE.md for the rules.
//!
//! Files: `frame` (frame bytes), `store` (segment files behind a small trait), `recovery`
//! (scanning segments after a crash), this file (segment header and the writer).

mod frame;
pub(crate) mod recovery;
pub(crate) mod store;
#[cfg(test)]
mod tests;

use std::io;
use std::sync::Arc;

pub(crate) use frame::{FramePart, RequestEntry, FRAME_HEADER_BYTES, REQUEST_ENTRY_BYTES};
use store::{SegmentFile, SegmentStore};

/// First bytes of every segment.
pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"DLJSEG01";
/// Bytes of the segment header; the first frame follows it.
pub(crate) const SEGMENT_HEADER_BYTES: usize = 32;

/// The segment header: magic (8), sequence number of the segment's first frame (u64 LE), segment
/// id (u64 LE), 4 zero bytes, CRC-32C of the 28 bytes before it (u32 LE). Written together with
/// the segment's first frame, in the same write and fdatasync.
pub(crate) fn encode_segment_header(id: u64, first_sequence: u64) -> [u8; SEGMENT_HEADER_BYTES] {
    let mut header = [0u8; SEGMENT_HEADER_BYTES];
    header[..8].copy_from_slice(&SEGMENT_MAGIC);
    header[8..16].copy_from_slice(&first_sequence.to_le_bytes());
    header[16..24].copy_from_slice(&id.to_le_bytes());
    let crc = crc32c::crc32c(&header[..28]);
    header[28..].copy_from_slice(&crc.to_le_bytes());
    header
}

/// What a segment's first bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SegmentHeader {
    /// Never written (all zero): a free segment.
    Unused,
    /// A valid header: the segment's first frame has this sequence number.
    FirstSequence(u64),
    /// Neither: damaged.
    Damaged,
}

pub(crate) fn decode_segment_header(id: u64, bytes: &[u8]) -> SegmentHeader {
    let Some(header) = bytes.get(..SEGMENT_HEADER_BYTES) else {
        return SegmentHeader::Damaged;
    };
    if header.iter().all(|byte| *byte == 0) {
        return SegmentHeader::Unused;
    }
    let crc = u32::from_le_bytes(header[28..].try_into().expect("4 bytes"));
    let stored_id = u64::from_le_bytes(header[16..24].try_into().expect("8 bytes"));
    if header[..8] != SEGMENT_MAGIC || crc32c::crc32c(&header[..28]) != crc || stored_id != id {
        return SegmentHeader::Damaged;
    }
    SegmentHeader::FirstSequence(u64::from_le_bytes(header[8..16].try_into().expect("8 bytes")))
}

/// A segment as the writer tracks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentState {
    pub(crate) id: u64,
    /// The last position of any frame in it (0: none); free once sled holds it durably.
    pub(crate) last_position: u64,
}

/// Where the writer starts after recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WriterStart {
    pub(crate) segments: Vec<SegmentState>,
    /// The segment to go on writing in and the offset after its last frame.
    pub(crate) active: Option<(u64, u64)>,
    pub(crate) next_sequence: u64,
}

/// Sizes of the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JournalSizes {
    pub(crate) segment_bytes: u64,
    pub(crate) max_segments: usize,
}

impl JournalSizes {
    /// The largest frame a segment of this size holds.
    pub(crate) fn max_frame_bytes(&self) -> usize {
        (self.segment_bytes as usize - SEGMENT_HEADER_BYTES).min(crate::log::limits::MAX_FRAME_BYTES)
    }
}

/// Appends frames; owned by the log's sync thread.
pub(crate) struct JournalWriter {
    store: Arc<dyn SegmentStore>,
    sizes: JournalSizes,
    segments: Vec<SegmentState>,
    /// Index into `segments`, the open file, and the offset of the next frame.
    active: Option<(usize, Box<dyn SegmentFile>, u64)>,
    next_sequence: u64,
}

impl JournalWriter {
    pub(crate) fn new(
        store: Arc<dyn SegmentStore>,
        start: WriterStart,
        sizes: JournalSizes,
    ) -> io::Result<JournalWriter> {
        let active = match start.active {
            Some((id, offset)) => {
                let index = start
                    .segments
                    .iter()
                    .position(|segment| segment.id == id)
                    .expect("the active segment is listed");
                Some((index, store.open(id)?, offset))
            }
            None => None,
        };
        let mut writer = JournalWriter {
            store,
            sizes,
            segments: start.segments,
            active,
            next_sequence: start.next_sequence,
        };
        if writer.segments.is_empty() {
            // Create the first segment now, so the first commit does not pay for it.
            writer.create_segment()?;
        }
        Ok(writer)
    }

    /// Writes `parts` (consecutive group commits) as one frame and makes it durable with one
    /// fdatasync. `checkpointed` is the position sled holds durably; `checkpoint` flushes sled
    /// and returns the new such position (called only when every segment is in use and no more
    /// may be created). Returns the frame's size in bytes.
    pub(crate) fn write(
        &mut self,
        parts: &[FramePart],
        checkpointed: u64,
        checkpoint: &mut dyn FnMut() -> io::Result<u64>,
    ) -> io::Result<usize> {
        let frame = frame::encode_frame(self.next_sequence, parts);
        assert!(
            frame.len() <= self.sizes.max_frame_bytes(),
            "frame over the limit"
        );
        let last_position = parts.last().expect("at least one part").last_position();
        let fits = matches!(&self.active, Some((_, _, offset)) if offset + frame.len() as u64 <= self.sizes.segment_bytes);
        if fits {
            let (index, file, offset) = self.active.as_mut().expect("active segment");
            file.write_at(*offset, &frame)?;
            file.sync_data()?;
            *offset += frame.len() as u64;
            self.segments[*index].last_position = last_position;
        } else {
            let index = self.free_segment(checkpointed, checkpoint)?;
            let id = self.segments[index].id;
            let mut file = self.store.open(id)?;
            let mut bytes = Vec::with_capacity(SEGMENT_HEADER_BYTES + frame.len());
            bytes.extend_from_slice(&encode_segment_header(id, self.next_sequence));
            bytes.extend_from_slice(&frame);
            file.write_at(0, &bytes)?;
            file.sync_data()?;
            self.segments[index].last_position = last_position;
            self.active = Some((index, file, bytes.len() as u64));
        }
        self.next_sequence += 1;
        Ok(frame.len())
    }

    /// A segment other than the active one whose frames sled holds durably: an existing one,
    /// else a new one while fewer than `max_segments` exist, else one freed by a checkpoint.
    fn free_segment(
        &mut self,
        checkpointed: u64,
        checkpoint: &mut dyn FnMut() -> io::Result<u64>,
    ) -> io::Result<usize> {
        let active = self.active.as_ref().map(|(index, _, _)| *index);
        let find = |segments: &[SegmentState], durable: u64| {
            segments
                .iter()
                .enumerate()
                .position(|(index, segment)| Some(index) != active && segment.last_position <= durable)
        };
        if let Some(index) = find(&self.segments, checkpointed) {
            return Ok(index);
        }
        if self.segments.len() < self.sizes.max_segments {
            return self.create_segment();
        }
        let durable = checkpoint()?;
        // A checkpoint frees every segment but the active one, unless sled's durable position
        // lags what was journaled (a writer poisoned meanwhile): an error, not a panic.
        find(&self.segments, durable).ok_or_else(|| {
            io::Error::other(format!(
                "no journal segment is free: sled is durable only to {durable}"
            ))
        })
    }

    fn create_segment(&mut self) -> io::Result<usize> {
        let id = self
            .segments
            .iter()
            .map(|segment| segment.id + 1)
            .max()
            .unwrap_or(1);
        self.store.create(id, self.sizes.segment_bytes)?;
        self.segments.push(SegmentState { id, last_position: 0 });
        Ok(self.segments.len() - 1)
    }

    /// How many segment files exist.
    #[cfg(test)]
    pub(crate) fn segment_count(&self) -> usize {
        self.segments.len()
    }
}
