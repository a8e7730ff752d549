//! The key layout of the log's one sled tree. One-byte prefixes keep the kinds apart; integers
//! are big-endian so sled's byte order is numeric order.
//!
//! | key | value |
//! |---|---|
//! | `E` + first position (u64 BE) | a chunk: the records of consecutive positions, concatenated (see `codec`) |
//! | `S` + stream_id + 0x00 + first version (u64 BE) | first position (u64 BE) + count (u32 BE): one append's contiguous run |
//! | `C` + command_id (16 bytes) | `CommandRecord` + CRC-32 |
//! | `Mhead` | `HeadMeta` + CRC-32 |
//! | `T` + tile level (u8) + tile index (u64 BE) | a full Merkle tile: 256 hashes (see `tree`) |
//! | `K` + tree size (u64 BE) | a signed checkpoint of that tree (see `proofs`) |
//!
//! Why chunks and runs instead of one key per event: on the reference machine a sled insert
//! costs 10-15 µs, which would cap durable throughput near 50,000 events/s. One commit writes
//! one chunk per ~16 KiB of records and one stream-index entry per append request (or per stretch
//! of consecutive requests to one stream in a transaction), whatever
//! the number of events in it; a stream's current version is the end of its last run.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::envelope::Hash;
use super::error::{LogError, LogResult};
use crate::time::Timestamp;

/// Prefix of event records.
pub const EVENT_PREFIX: u8 = b'E';
/// Prefix of the stream index.
pub const STREAM_INDEX_PREFIX: u8 = b'S';
/// Prefix of command records.
pub const COMMAND_PREFIX: u8 = b'C';
/// The head metadata key.
pub const META_HEAD_KEY: &[u8] = b"Mhead";

/// Prefix of the Merkle tree's full tiles.
pub const TILE_PREFIX: u8 = b'T';
/// Prefix of signed checkpoints.
pub const CHECKPOINT_PREFIX: u8 = b'K';

/// `T` + level + index: the key of a full Merkle tile.
pub fn tile_key(level: u32, index: u64) -> [u8; 10] {
    let mut key = [0u8; 10];
    key[0] = TILE_PREFIX;
    key[1] = level as u8;
    key[2..].copy_from_slice(&index.to_be_bytes());
    key
}

/// `K` + tree size: the key of the signed checkpoint of the tree of `size` records.
pub fn checkpoint_key(size: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = CHECKPOINT_PREFIX;
    key[1..].copy_from_slice(&size.to_be_bytes());
    key
}

/// `E` + position: the key of the chunk whose first record is at `position`.
pub fn event_key(position: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = EVENT_PREFIX;
    key[1..].copy_from_slice(&position.to_be_bytes());
    key
}

/// Reads the position back from an event key.
pub fn position_of_event_key(key: &[u8]) -> Option<u64> {
    if key.len() != 9 || key[0] != EVENT_PREFIX {
        return None;
    }
    Some(u64::from_be_bytes(key[1..].try_into().ok()?))
}

/// `S` + stream + 0x00: the prefix of one stream's index entries.
pub fn stream_index_prefix(stream_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(stream_id.len() + 10);
    key.push(STREAM_INDEX_PREFIX);
    key.extend_from_slice(stream_id.as_bytes());
    key.push(0);
    key
}

/// `S` + stream + 0x00 + version.
pub fn stream_index_key(stream_id: &str, version: u64) -> Vec<u8> {
    let mut key = stream_index_prefix(stream_id);
    key.extend_from_slice(&version.to_be_bytes());
    key
}

/// Reads the version back from a stream index key of a stream whose prefix is `prefix_len` long.
pub fn version_of_stream_index_key(key: &[u8], prefix_len: usize) -> Option<u64> {
    Some(u64::from_be_bytes(key.get(prefix_len..)?.try_into().ok()?))
}

/// A run of one stream's events written by one append: versions `first_version..` at
/// positions `first_position..`, `count` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamRun {
    /// Version of the first event.
    pub first_version: u64,
    /// Position of the first event.
    pub first_position: u64,
    /// Number of events.
    pub count: u32,
}

impl StreamRun {
    /// The stream index value: first position + count.
    pub fn encode_value(&self) -> [u8; 12] {
        let mut value = [0u8; 12];
        value[..8].copy_from_slice(&self.first_position.to_be_bytes());
        value[8..].copy_from_slice(&self.count.to_be_bytes());
        value
    }

    /// Decodes an index entry of a stream whose key prefix is `prefix_len` bytes long.
    pub fn decode(key: &[u8], value: &[u8], prefix_len: usize) -> LogResult<StreamRun> {
        let damaged = || LogError::DataLoss {
            position: 0,
            reason: "malformed stream index entry".into(),
        };
        let first_version = version_of_stream_index_key(key, prefix_len).ok_or_else(damaged)?;
        if value.len() != 12 {
            return Err(damaged());
        }
        let first_position = u64::from_be_bytes(value[..8].try_into().expect("8 bytes"));
        let count = u32::from_be_bytes(value[8..].try_into().expect("4 bytes"));
        if count == 0 || first_version == 0 || first_position == 0 {
            return Err(damaged());
        }
        Ok(StreamRun {
            first_version,
            first_position,
            count,
        })
    }

    /// Version of the last event.
    pub fn last_version(&self) -> u64 {
        self.first_version + u64::from(self.count) - 1
    }

    /// Position of the event with `version`, if the run holds it.
    pub fn position_of(&self, version: u64) -> Option<u64> {
        (self.first_version..=self.last_version())
            .contains(&version)
            .then(|| self.first_position + (version - self.first_version))
    }
}

/// `C` + command id.
pub fn command_key(command_id: Uuid) -> [u8; 17] {
    let mut key = [0u8; 17];
    key[0] = COMMAND_PREFIX;
    key[1..].copy_from_slice(command_id.as_bytes());
    key
}

/// The two sled entries of one append request written whole: its stream run and its command
/// record. Restore and journal replay write requests through this.
pub fn request_entries(
    stream_id: &str,
    run: StreamRun,
    command_id: Uuid,
    fingerprint: Hash,
) -> [(Vec<u8>, Vec<u8>); 2] {
    let command = CommandRecord {
        first_position: run.first_position,
        count: run.count,
        fingerprint,
    };
    [
        (
            stream_index_key(stream_id, run.first_version),
            run.encode_value().to_vec(),
        ),
        (command_key(command_id).to_vec(), encode_checked(&command)),
    ]
}

/// Decodes a big-endian u64 value (positions, versions).
pub fn decode_u64(bytes: &[u8], position: u64, what: &str) -> LogResult<u64> {
    let array: [u8; 8] = bytes.try_into().map_err(|_| LogError::DataLoss {
        position,
        reason: format!("{what} value is {} bytes, not 8", bytes.len()),
    })?;
    Ok(u64::from_be_bytes(array))
}

/// What a command wrote: enough to answer a retry with the original result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRecord {
    /// Position of the command's first event.
    pub first_position: u64,
    /// Number of events (contiguous positions).
    pub count: u32,
    /// Fingerprint of the request, compared on retry.
    pub fingerprint: Hash,
}

/// The log's head, written in the same batch as the events it describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadMeta {
    /// Storage format version of the data directory.
    pub format_version: u8,
    /// Last written position (0: empty log).
    pub position: u64,
    /// Chain hash of the record at `position` (genesis when empty).
    pub chain_hash: Hash,
    /// recorded_at of the record at `position` (epoch when empty).
    pub recorded_at: Timestamp,
}

/// Encodes a small metadata value followed by its CRC-32.
pub fn encode_checked<T: Serialize>(value: &T) -> Vec<u8> {
    let mut bytes = crate::encoding::encode(value);
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_be_bytes());
    bytes
}

/// Decodes a value written by [`encode_checked`], failing with data loss if it was altered.
pub fn decode_checked<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    position: u64,
    what: &str,
) -> LogResult<T> {
    let damaged = |reason: String| LogError::DataLoss {
        position,
        reason: format!("{what}: {reason}"),
    };
    if bytes.len() < 4 {
        return Err(damaged("too short".into()));
    }
    let (value, crc) = bytes.split_at(bytes.len() - 4);
    if crc32fast::hash(value).to_be_bytes() != crc {
        return Err(damaged("checksum mismatch".into()));
    }
    crate::encoding::decode(value).map_err(|error| damaged(error.to_string()))
}

/// Builds the sled batch of one commit: the records of consecutive positions from
/// `first_position`, packed into chunks of at most `codec::MAX_CHUNK_BYTES` (a record is never
/// split; one larger than the rest of a chunk starts the next), then `entries` (stream runs,
/// command records), then the new head. Returns the batch and the position after the last record.
/// The writer and restore both write through this, so they lay records out identically.
pub fn commit_batch(
    first_position: u64,
    records: impl IntoIterator<Item = Vec<u8>>,
    entries: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    head: &HeadMeta,
) -> (sled::Batch, u64) {
    let (writes, next) = commit_writes(first_position, records, entries, head);
    (batch_of(writes), next)
}

/// The writes as one atomic sled batch.
pub fn batch_of(writes: Vec<Write>) -> sled::Batch {
    let mut batch = sled::Batch::default();
    for (key, value) in writes {
        batch.insert(key, value);
    }
    batch
}

/// One sled write: a key and its value.
pub type Write = (Vec<u8>, Vec<u8>);

/// Splits a commit's writes (in [`commit_writes`] order) into what readers need before its
/// callers are answered (records, stream runs, tiles) and what may follow the answers: the
/// command records and, last, the head metadata, which marks the commit whole in sled.
pub fn split_late_writes(writes: Vec<Write>) -> (Vec<Write>, Vec<Write>) {
    writes
        .into_iter()
        .partition(|(key, _)| key[0] != COMMAND_PREFIX && key != META_HEAD_KEY)
}

/// The writes of [`commit_batch`] in order: the chunks, the entries, the head last (a commit
/// applied as plain inserts is complete once its head is).
pub fn commit_writes(
    first_position: u64,
    records: impl IntoIterator<Item = Vec<u8>>,
    entries: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    head: &HeadMeta,
) -> (Vec<Write>, u64) {
    let mut batch = Vec::new();
    let mut chunk_start = first_position;
    // Grown as needed, not allocated at MAX_CHUNK_BYTES: a 1 MiB allocation per commit came as
    // fresh huge pages the kernel zeroed on first touch (2.6% of the server's CPU under W2).
    let mut chunk: Vec<u8> = Vec::new();
    let mut in_chunk = 0u64;
    for record in records {
        if !chunk.is_empty() && chunk.len() + record.len() > super::codec::MAX_CHUNK_BYTES {
            batch.push((event_key(chunk_start).to_vec(), std::mem::take(&mut chunk)));
            chunk_start += in_chunk;
            in_chunk = 0;
        }
        chunk.extend_from_slice(&record);
        in_chunk += 1;
    }
    if !chunk.is_empty() {
        batch.push((event_key(chunk_start).to_vec(), chunk));
        chunk_start += in_chunk;
    }
    batch.extend(entries);
    batch.push((META_HEAD_KEY.to_vec(), encode_checked(head)));
    (batch, chunk_start)
}
