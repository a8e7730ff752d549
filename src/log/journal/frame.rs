//! Journal frame bytes: one frame per write + fdatasync, holding the records of one or more
//! group commits exactly as the log encodes them, and each append request's command id and
//! fingerprint, so that replaying a frame rebuilds everything the commit wrote to sled.
//!
//! ```text
//! offset  size  field (integers little-endian)
//! 0       4     magic "DLJF"
//! 4       4     frame length F in bytes, this header included
//! 8       4     CRC-32C of bytes [12, F)
//! 12      4     frame format version (FRAME_VERSION)
//! 16      8     sequence number (consecutive over the journal's life, from 1)
//! 24      8     first position
//! 32      4     record count R
//! 36      4     request count Q
//! 40      32    chain hash before the first record
//! 72      60*Q  requests: command id (16), fingerprint (32), first position (8), event count (4)
//! ...           R records: length (4) + the record bytes (see `log::codec`)
//! ```

use uuid::Uuid;

use crate::log::envelope::Hash;

/// First bytes of every frame.
pub(crate) const FRAME_MAGIC: [u8; 4] = *b"DLJF";
/// The frame layout this build writes and reads.
pub(crate) const FRAME_VERSION: u32 = 1;
/// Bytes before the request entries.
pub(crate) const FRAME_HEADER_BYTES: usize = 72;
/// Bytes of one request entry.
pub(crate) const REQUEST_ENTRY_BYTES: usize = 60;

/// One append request of a commit: what its command record in sled holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestEntry {
    pub(crate) command_id: Uuid,
    pub(crate) fingerprint: Hash,
    pub(crate) first_position: u64,
    pub(crate) count: u32,
}

/// What one group commit contributes to a frame, built by the writer.
#[derive(Debug, Default)]
pub(crate) struct FramePart {
    pub(crate) first_position: u64,
    pub(crate) previous_chain: Hash,
    pub(crate) requests: Vec<RequestEntry>,
    pub(crate) record_count: u32,
    /// Records, each prefixed with its length (u32 LE).
    pub(crate) records: Vec<u8>,
}

impl FramePart {
    pub(crate) fn new(first_position: u64, previous_chain: Hash) -> FramePart {
        FramePart {
            first_position,
            previous_chain,
            ..FramePart::default()
        }
    }

    pub(crate) fn push_record(&mut self, record: &[u8]) {
        self.records
            .extend_from_slice(&(record.len() as u32).to_le_bytes());
        self.records.extend_from_slice(record);
        self.record_count += 1;
    }

    /// The last position this part holds.
    pub(crate) fn last_position(&self) -> u64 {
        self.first_position + u64::from(self.record_count) - 1
    }

    /// Bytes this part adds to a frame.
    pub(crate) fn encoded_bytes(&self) -> usize {
        self.requests.len() * REQUEST_ENTRY_BYTES + self.records.len()
    }
}

/// Encodes consecutive parts (each starting where the one before ended) as one frame.
pub(crate) fn encode_frame(sequence: u64, parts: &[FramePart]) -> Vec<u8> {
    let first = parts.first().expect("a frame has at least one part");
    let length = FRAME_HEADER_BYTES + parts.iter().map(FramePart::encoded_bytes).sum::<usize>();
    let records: u32 = parts.iter().map(|part| part.record_count).sum();
    let requests: usize = parts.iter().map(|part| part.requests.len()).sum();
    let mut frame = Vec::with_capacity(length);
    frame.extend_from_slice(&FRAME_MAGIC);
    frame.extend_from_slice(&(length as u32).to_le_bytes());
    frame.extend_from_slice(&[0; 4]); // CRC, below
    frame.extend_from_slice(&FRAME_VERSION.to_le_bytes());
    frame.extend_from_slice(&sequence.to_le_bytes());
    frame.extend_from_slice(&first.first_position.to_le_bytes());
    frame.extend_from_slice(&records.to_le_bytes());
    frame.extend_from_slice(&(requests as u32).to_le_bytes());
    frame.extend_from_slice(&first.previous_chain);
    for request in parts.iter().flat_map(|part| &part.requests) {
        frame.extend_from_slice(request.command_id.as_bytes());
        frame.extend_from_slice(&request.fingerprint);
        frame.extend_from_slice(&request.first_position.to_le_bytes());
        frame.extend_from_slice(&request.count.to_le_bytes());
    }
    let mut next = first.first_position;
    for part in parts {
        assert_eq!(part.first_position, next, "frame parts must be consecutive");
        next = part.last_position() + 1;
        frame.extend_from_slice(&part.records);
    }
    assert_eq!(frame.len(), length);
    let crc = crc32c::crc32c(&frame[12..]);
    frame[8..12].copy_from_slice(&crc.to_le_bytes());
    frame
}

/// A frame read back from a segment; its records borrow the segment's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame<'a> {
    pub(crate) length: usize,
    pub(crate) sequence: u64,
    pub(crate) first_position: u64,
    pub(crate) previous_chain: Hash,
    pub(crate) requests: Vec<RequestEntry>,
    pub(crate) records: Vec<&'a [u8]>,
}

#[cfg(test)]
impl Frame<'_> {
    /// The last position the frame holds.
    pub(crate) fn last_position(&self) -> u64 {
        self.first_position + self.records.len() as u64 - 1
    }
}

/// Why bytes are not a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NotAFrame {
    /// No frame starts here (no magic): zeros, or bytes of something else.
    NoMagic,
    /// A frame starts here but is torn or damaged.
    Damaged(String),
}

fn le_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn le_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// Reads the frame at the start of `bytes`, checking length, CRC and structure.
pub(crate) fn decode_frame(bytes: &[u8]) -> Result<Frame<'_>, NotAFrame> {
    if bytes.len() < FRAME_HEADER_BYTES || bytes[..4] != FRAME_MAGIC {
        return Err(NotAFrame::NoMagic);
    }
    let damaged = |reason: &str| Err(NotAFrame::Damaged(reason.to_owned()));
    let length = le_u32(bytes, 4) as usize;
    if length < FRAME_HEADER_BYTES || length > bytes.len() {
        return damaged("frame length runs past the segment");
    }
    let frame = &bytes[..length];
    if crc32c::crc32c(&frame[12..]) != le_u32(frame, 8) {
        return damaged("frame checksum mismatch");
    }
    if le_u32(frame, 12) != FRAME_VERSION {
        return damaged("unknown frame version");
    }
    let record_count = le_u32(frame, 32) as usize;
    let request_count = le_u32(frame, 36) as usize;
    let mut at = FRAME_HEADER_BYTES;
    if record_count == 0 || request_count > (length - at) / REQUEST_ENTRY_BYTES {
        return damaged("frame counts do not fit its length");
    }
    let mut requests = Vec::with_capacity(request_count);
    for _ in 0..request_count {
        requests.push(RequestEntry {
            command_id: Uuid::from_slice(&frame[at..at + 16]).expect("16 bytes"),
            fingerprint: frame[at + 16..at + 48].try_into().expect("32 bytes"),
            first_position: le_u64(frame, at + 48),
            count: le_u32(frame, at + 56),
        });
        at += REQUEST_ENTRY_BYTES;
    }
    let mut records = Vec::with_capacity(record_count);
    for _ in 0..record_count {
        if at + 4 > length {
            return damaged("record runs past the frame");
        }
        let size = le_u32(frame, at) as usize;
        if at + 4 + size > length {
            return damaged("record runs past the frame");
        }
        records.push(&frame[at + 4..at + 4 + size]);
        at += 4 + size;
    }
    if at != length {
        return damaged("bytes left over after the records");
    }
    Ok(Frame {
        length,
        sequence: le_u64(frame, 16),
        first_position: le_u64(frame, 24),
        previous_chain: frame[40..72].try_into().expect("32 bytes"),
        requests,
        records,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(first_position: u64, records: &[&[u8]]) -> FramePart {
        let mut part = FramePart::new(first_position, [7; 32]);
        for record in records {
            part.push_record(record);
        }
        part.requests.push(RequestEntry {
            command_id: Uuid::from_u128(first_position as u128),
            fingerprint: [first_position as u8; 32],
            first_position,
            count: records.len() as u32,
        });
        part
    }

    #[test]
    fn a_frame_of_two_parts_decodes_to_what_was_encoded() {
        let parts = [part(5, &[b"abc", b"de"]), part(7, &[b"fghij"])];
        let bytes = encode_frame(42, &parts);
        let frame = decode_frame(&bytes).expect("valid frame");
        assert_eq!(frame.length, bytes.len());
        assert_eq!(frame.sequence, 42);
        assert_eq!(frame.first_position, 5);
        assert_eq!(frame.last_position(), 7);
        assert_eq!(frame.previous_chain, [7; 32]);
        assert_eq!(frame.records, vec![&b"abc"[..], b"de", b"fghij"]);
        assert_eq!(frame.requests.len(), 2);
        assert_eq!(frame.requests[1].first_position, 7);
    }

    #[test]
    fn every_single_bit_flip_and_every_truncation_is_refused() {
        let bytes = encode_frame(1, &[part(1, &[b"record one", b"record two"])]);
        for at in 0..bytes.len() {
            for bit in 0..8 {
                let mut damaged = bytes.clone();
                damaged[at] ^= 1 << bit;
                assert!(decode_frame(&damaged).is_err(), "flip at {at} bit {bit} accepted");
            }
            assert!(decode_frame(&bytes[..at]).is_err(), "truncation at {at} accepted");
        }
    }

    #[test]
    fn zeros_are_no_frame() {
        assert_eq!(decode_frame(&[0; 200]), Err(NotAFrame::NoMagic));
    }

    // Fuzz targets on stable Rust (proptest): arbitrary bytes, and arbitrary bytes behind a
    // right magic, length, version and CRC-32C (so the structure parsing itself sees them),
    // never panic the decoder; what it accepts lies inside the bytes it was given.
    // `PROPTEST_CASES=N` runs N cases (docs/operations.md, "Fuzzing").

    /// Cases per target: `PROPTEST_CASES`, else a few seconds' worth in `cargo test`.
    fn cases() -> u32 {
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|cases| cases.parse().ok())
            .unwrap_or(10_000)
    }

    /// An accepted frame accounts for exactly its length, inside the bytes.
    fn check_accepted(bytes: &[u8]) -> Result<(), proptest::test_runner::TestCaseError> {
        use proptest::prelude::*;
        if let Ok(frame) = decode_frame(bytes) {
            prop_assert!(frame.length <= bytes.len());
            let records: usize = frame.records.iter().map(|record| 4 + record.len()).sum();
            prop_assert_eq!(
                FRAME_HEADER_BYTES + frame.requests.len() * REQUEST_ENTRY_BYTES + records,
                frame.length
            );
            prop_assert!(!frame.records.is_empty());
        }
        Ok(())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: cases(),
            ..proptest::prelude::ProptestConfig::default()
        })]

        #[test]
        fn the_frame_decoder_refuses_arbitrary_bytes_cleanly(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1024),
        ) {
            check_accepted(&bytes)?;
        }

        #[test]
        fn the_frame_decoder_parses_arbitrary_checksummed_frames_cleanly(
            mut bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), FRAME_HEADER_BYTES..1024),
            record_count in 0u32..12,
            request_count in 0u32..6,
            trailing in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
        ) {
            let length = bytes.len() as u32;
            bytes[..4].copy_from_slice(&FRAME_MAGIC);
            bytes[4..8].copy_from_slice(&length.to_le_bytes());
            bytes[12..16].copy_from_slice(&FRAME_VERSION.to_le_bytes());
            bytes[32..36].copy_from_slice(&record_count.to_le_bytes());
            bytes[36..40].copy_from_slice(&request_count.to_le_bytes());
            let crc = crc32c::crc32c(&bytes[12..]);
            bytes[8..12].copy_from_slice(&crc.to_le_bytes());
            // What follows a frame in a segment: zeros, the next frame, or leftovers.
            bytes.extend_from_slice(&trailing);
            check_accepted(&bytes)?;
        }
    }
}
