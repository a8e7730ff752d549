//! The key layout of the log's one sled tree. One-byte prefixes keep the kinds apart; integers
//! are big-endian so sled's byte order is numeric order.
//!
//! | key | value |
//! |---|---|
//! | `E` + position (u64 BE) | record bytes (see `codec`) |
//! | `S` + stream_id + 0x00 + version (u64 BE) | position (u64 BE) |
//! | `H` + stream_id | current stream version (u64 BE) |
//! | `C` + command_id (16 bytes) | `CommandRecord` + CRC-32 |
//! | `Mhead` | `HeadMeta` + CRC-32 |

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::envelope::Hash;
use super::error::{LogError, LogResult};
use crate::domain::time::Timestamp;

/// Prefix of event records.
pub const EVENT_PREFIX: u8 = b'E';
/// Prefix of the stream index.
pub const STREAM_INDEX_PREFIX: u8 = b'S';
/// Prefix of stream heads.
pub const STREAM_HEAD_PREFIX: u8 = b'H';
/// Prefix of command records.
pub const COMMAND_PREFIX: u8 = b'C';
/// The head metadata key.
pub const META_HEAD_KEY: &[u8] = b"Mhead";

/// `E` + position.
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

/// `H` + stream.
pub fn stream_head_key(stream_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(stream_id.len() + 1);
    key.push(STREAM_HEAD_PREFIX);
    key.extend_from_slice(stream_id.as_bytes());
    key
}

/// `C` + command id.
pub fn command_key(command_id: Uuid) -> [u8; 17] {
    let mut key = [0u8; 17];
    key[0] = COMMAND_PREFIX;
    key[1..].copy_from_slice(command_id.as_bytes());
    key
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
