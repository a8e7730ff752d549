//! Record bytes: how one envelope is laid out, hashed and checked. Records of consecutive
//! positions are stored concatenated in chunks (see `keys`); each record keeps its own checks.
//!
//! ```text
//! offset      size  field
//! 0           1     format version (FORMAT_VERSION)
//! 1           4     body length L, u32 big-endian
//! 5           L     body: bincode (frozen config) of the Envelope — the canonical bytes
//! 5+L         32    leaf hash  = SHA-256(0x00 ‖ body)
//! 37+L        32    chain hash = SHA-256(previous chain hash ‖ leaf hash); previous of position 1 is 32 zero bytes
//! 69+L        4     CRC-32 (IEEE) of bytes [0, 69+L), big-endian
//! ```
//! Every record is checked before it is written and after it is read; a record that fails is
//! never returned (a data-loss error names its position).

use sha2::{Digest, Sha256};

use super::envelope::{Envelope, EnvelopeRef, Hash, RecordedEvent};
use super::error::{LogError, LogResult};
use super::limits::MAX_RECORD_BYTES;

/// The record format this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// Chain hash before the first record.
pub const GENESIS_CHAIN_HASH: Hash = [0u8; 32];

const HEADER_BYTES: usize = 5;
const TRAILER_BYTES: usize = 32 + 32 + 4;

/// RFC 9162 leaf hash of canonical envelope bytes: the leaf of the log's Merkle tree.
pub use crate::merkle::leaf_hash;

/// The running chain: each record's chain hash commits to all records before it.
pub fn chain_hash(previous: &Hash, leaf: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(leaf);
    hasher.finalize().into()
}

/// Encodes an envelope as record bytes chained to `previous_chain`. Returns the bytes and the
/// new chain hash. Fails (without writing anything) if the record would exceed MAX_RECORD_BYTES.
pub fn encode_record(envelope: &Envelope, previous_chain: &Hash) -> LogResult<(Vec<u8>, Hash)> {
    let mut record = Vec::with_capacity(HEADER_BYTES + 128 + envelope.payload.len() + TRAILER_BYTES);
    record.push(FORMAT_VERSION);
    record.extend_from_slice(&[0; 4]);
    crate::encoding::encode_into(envelope, &mut record);
    let body_len = record.len() - HEADER_BYTES;
    if record.len() + TRAILER_BYTES > MAX_RECORD_BYTES {
        return Err(LogError::TooLarge {
            what: "record bytes",
            actual: record.len() + TRAILER_BYTES,
            limit: MAX_RECORD_BYTES,
        });
    }
    record[1..5].copy_from_slice(&(body_len as u32).to_be_bytes());
    let leaf = leaf_hash(&record[HEADER_BYTES..]);
    let chain = chain_hash(previous_chain, &leaf);
    record.extend_from_slice(&leaf);
    record.extend_from_slice(&chain);
    let crc = crc32fast::hash(&record);
    record.extend_from_slice(&crc.to_be_bytes());
    Ok((record, chain))
}

/// The leaf hash stored in a record the writer just built (bytes `[len - 68, len - 36)`).
pub(crate) fn stored_leaf_hash(record: &[u8]) -> Hash {
    let at = record.len() - TRAILER_BYTES;
    record[at..at + 32].try_into().expect("32 bytes")
}

/// The parts of a record whose framing and checksum are intact.
pub struct CheckedRecord<'a> {
    /// The canonical envelope bytes.
    pub body: &'a [u8],
    /// Stored leaf hash.
    pub leaf_hash: Hash,
    /// Stored chain hash.
    pub chain_hash: Hash,
}

/// Checks framing and checksum of the record stored at `position`.
pub fn check_record(position: u64, bytes: &[u8]) -> LogResult<CheckedRecord<'_>> {
    let damaged = |reason: String| LogError::DataLoss { position, reason };
    if bytes.len() < HEADER_BYTES + TRAILER_BYTES || bytes.len() > MAX_RECORD_BYTES {
        return Err(damaged(format!(
            "record is {} bytes, outside the valid range",
            bytes.len()
        )));
    }
    if bytes[0] != FORMAT_VERSION {
        return Err(damaged(format!("unknown record format version {}", bytes[0])));
    }
    let body_len = u32::from_be_bytes(bytes[1..5].try_into().expect("4 bytes")) as usize;
    if HEADER_BYTES + body_len + TRAILER_BYTES != bytes.len() {
        return Err(damaged(format!(
            "body length {body_len} does not match record size {}",
            bytes.len()
        )));
    }
    let crc_at = bytes.len() - 4;
    let stored_crc = u32::from_be_bytes(bytes[crc_at..].try_into().expect("4 bytes"));
    if crc32fast::hash(&bytes[..crc_at]) != stored_crc {
        return Err(damaged("checksum mismatch".to_owned()));
    }
    let body_end = HEADER_BYTES + body_len;
    Ok(CheckedRecord {
        body: &bytes[HEADER_BYTES..body_end],
        leaf_hash: bytes[body_end..body_end + 32].try_into().expect("32 bytes"),
        chain_hash: bytes[body_end + 32..body_end + 64].try_into().expect("32 bytes"),
    })
}

/// The writer's packing size: records are packed into one sled value until the next would pass
/// this; a record that does not fit starts the next chunk, alone if it is larger (so a chunk is
/// at most `limits::MAX_STORED_CHUNK_BYTES`). Internal: not a limit on any input.
///
/// Small because of sled's cache: its LRU has 256 shards of a 256th of the capacity each, and a
/// shard always keeps the page it last touched, whatever its size. A leaf holds up to 17 values,
/// so with 96 KiB chunks a leaf of the log was ~1.5 MiB and the cache held 256 x 1.5 MiB =
/// 384 MB whatever its capacity; with 16 KiB, a leaf is ~272 KiB, below a shard's share of the
/// default 120 MiB (docs/benchmarks.md 000j). Smaller still would cost large commits more sled
/// inserts (one per chunk).
pub const MAX_CHUNK_BYTES: usize = 16 * 1024;

/// Splits a chunk into its records' bytes, checking only the framing (lengths). The chunk's
/// first record is at `first_position`; each record is checked when decoded.
pub fn split_chunk(first_position: u64, chunk: &[u8]) -> LogResult<Vec<&[u8]>> {
    let mut records = Vec::with_capacity(chunk.len() / 512 + 1);
    let mut offset = 0;
    while offset < chunk.len() {
        let position = first_position + records.len() as u64;
        let record_len = framed_len(position, &chunk[offset..])?;
        records.push(&chunk[offset..offset + record_len]);
        offset += record_len;
    }
    if records.is_empty() {
        return Err(empty_chunk(first_position));
    }
    Ok(records)
}

/// The length of the record at `position` that `rest` (the rest of a chunk, not empty) starts
/// with, from its framing alone.
pub fn framed_len(position: u64, rest: &[u8]) -> LogResult<usize> {
    if rest.len() < HEADER_BYTES + TRAILER_BYTES {
        return Err(LogError::DataLoss {
            position,
            reason: "chunk ends inside a record".into(),
        });
    }
    let body_len = u32::from_be_bytes(rest[1..5].try_into().expect("4 bytes")) as usize;
    let record_len = HEADER_BYTES + body_len + TRAILER_BYTES;
    if record_len > rest.len() || record_len > MAX_RECORD_BYTES {
        return Err(LogError::DataLoss {
            position,
            reason: format!("record length {record_len} is impossible here"),
        });
    }
    Ok(record_len)
}

/// The error for a stored chunk with no record in it.
pub fn empty_chunk(first_position: u64) -> LogError {
    LogError::DataLoss {
        position: first_position,
        reason: "empty chunk".into(),
    }
}

/// A checked record read in place: its envelope borrows from the record's bytes.
#[derive(Debug, Clone)]
pub struct RecordView<'a> {
    /// The envelope, decoded without copying its texts or payload.
    pub envelope: EnvelopeRef<'a>,
    /// The canonical envelope bytes (the leaf input).
    pub body: &'a [u8],
    /// Stored leaf hash.
    pub leaf_hash: Hash,
    /// Stored chain hash.
    pub chain_hash: Hash,
    /// Where the record is stored, when it was read from the log (not from loose bytes).
    pub location: Option<RecordLocation>,
}

/// Where a record is stored: the first position of the sled chunk that holds it, and its byte
/// offset in that chunk. Chunks are written once and never rewritten, so a reader that kept
/// this can fetch the record with one exact sled lookup (no reverse scan for its chunk, no walk
/// through the chunk); it is a hint, checked on use (a record that is not there is looked up
/// by its position instead: a log replayed from its journal after a crash may chunk
/// differently).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordLocation {
    /// Key (first position) of the chunk.
    pub chunk_start: u64,
    /// Byte offset of the record in the chunk.
    pub offset: u32,
}

impl RecordView<'_> {
    /// The owned event.
    pub fn to_recorded(&self) -> RecordedEvent {
        RecordedEvent::new(self.envelope.to_owned(), self.leaf_hash, self.chain_hash)
    }
}

/// Checks the record stored at `position` and decodes its envelope in place; the envelope must
/// claim that position. The same checks as [`decode_record`].
pub fn view_record(position: u64, bytes: &[u8]) -> LogResult<RecordView<'_>> {
    let checked = check_record(position, bytes)?;
    let envelope: EnvelopeRef<'_> =
        crate::encoding::decode_borrowed(checked.body).map_err(|error| LogError::DataLoss {
            position,
            reason: format!("envelope does not decode: {error}"),
        })?;
    if envelope.position != position {
        return Err(LogError::DataLoss {
            position,
            reason: format!("record claims position {}", envelope.position),
        });
    }
    Ok(RecordView {
        envelope,
        body: checked.body,
        leaf_hash: checked.leaf_hash,
        chain_hash: checked.chain_hash,
        location: None,
    })
}

/// Checks and decodes the record stored at `position`; its envelope must claim that position.
pub fn decode_record(position: u64, bytes: &[u8]) -> LogResult<RecordedEvent> {
    view_record(position, bytes).map(|view| view.to_recorded())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{OccurredAt, Precision, Timestamp};
    use uuid::Uuid;

    fn envelope() -> Envelope {
        Envelope {
            position: 7,
            stream_id: "meeting-1".into(),
            stream_version: 2,
            event_id: Uuid::from_u128(1),
            event_type: "MeetingHeld".into(),
            schema_version: 1,
            command_id: Uuid::from_u128(2),
            occurred_at: OccurredAt::new(Timestamp::from_unix_micros(5), Precision::Day),
            recorded_at: Timestamp::from_unix_micros(9),
            recorded_by: "alice".into(),
            correlation_id: None,
            causation_id: Some(Uuid::from_u128(3)),
            tags: vec!["party:LBY".into()],
            payload: vec![1, 2, 3],
        }
    }

    #[test]
    fn record_round_trips_and_chains() {
        let (bytes, chain) = encode_record(&envelope(), &GENESIS_CHAIN_HASH).unwrap();
        let event = decode_record(7, &bytes).unwrap();
        assert_eq!(event.envelope(), &envelope());
        assert_eq!(event.chain_hash(), &chain);
        let checked = check_record(7, &bytes).unwrap();
        assert_eq!(event.leaf_hash(), &leaf_hash(checked.body));
        assert_eq!(chain, chain_hash(&GENESIS_CHAIN_HASH, event.leaf_hash()));
    }

    #[test]
    fn a_record_read_in_place_has_every_field_of_the_owned_envelope() {
        let mut variants = vec![envelope()];
        let mut other = envelope();
        other.correlation_id = Some(Uuid::from_u128(9));
        other.causation_id = None;
        other.tags = vec![];
        other.payload = vec![];
        other.recorded_by = String::new();
        variants.push(other);
        let mut many = envelope();
        many.tags = vec!["a".into(), String::new(), "topic:security".into()];
        many.payload = vec![0xff; 3000];
        many.stream_id = "commitment-é".into();
        variants.push(many);
        for envelope in variants {
            let (bytes, chain) = encode_record(&envelope, &GENESIS_CHAIN_HASH).unwrap();
            let view = view_record(7, &bytes).unwrap();
            assert_eq!(view.envelope.to_owned(), envelope);
            assert_eq!(view.chain_hash, chain);
            assert_eq!(view.body, check_record(7, &bytes).unwrap().body);
            assert_eq!(view.leaf_hash, leaf_hash(view.body));
        }
    }

    #[test]
    fn every_single_byte_flip_is_detected() {
        let (bytes, _) = encode_record(&envelope(), &GENESIS_CHAIN_HASH).unwrap();
        for index in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[index] ^= 0x40;
            match decode_record(7, &damaged) {
                Err(LogError::DataLoss { position: 7, .. }) => {}
                other => panic!("flip at {index} not detected: {other:?}"),
            }
        }
    }

    #[test]
    fn record_at_the_wrong_position_is_data_loss() {
        let (bytes, _) = encode_record(&envelope(), &GENESIS_CHAIN_HASH).unwrap();
        assert!(matches!(
            decode_record(8, &bytes),
            Err(LogError::DataLoss { position: 8, .. })
        ));
    }
}
