//! The one frozen binary encoding used for everything dipledger stores: bincode 2 with a fixed
//! configuration. Changing [`CONFIG`] changes the bytes on disk (and every hash over them), so it
//! is part of the storage format and must never change within a format version.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Largest value the decoder will accept, so a corrupt length prefix cannot make it allocate
/// without bound. Generously above every record limit in the crate. Internal: no request
/// reaches it (every encoded value is far smaller); it bounds decoding damaged bytes.
pub const MAX_DECODED_BYTES: usize = 4 * 1024 * 1024;

/// The frozen configuration: little-endian, variable-length integers, bounded allocation.
pub const CONFIG: bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<MAX_DECODED_BYTES>,
> = bincode::config::standard().with_limit::<MAX_DECODED_BYTES>();

/// Why bytes could not be turned back into a value.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// bincode refused the bytes.
    #[error("malformed encoding: {0}")]
    Malformed(String),
    /// The value decoded but bytes were left over: the input is not exactly one value.
    #[error("{trailing} trailing bytes after the encoded value")]
    TrailingBytes { trailing: usize },
}

/// Encodes a value with the frozen configuration.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Encoding into a Vec only fails if a Serialize impl reports an error or the value exceeds
    // MAX_DECODED_BYTES; every stored type is a plain struct whose size is checked by its
    // callers against far smaller limits.
    bincode::serde::encode_to_vec(value, CONFIG).expect("plain serde value encodes")
}

/// Appends the encoding of a value to `out` (avoids an allocation on hot paths).
pub fn encode_into<T: Serialize>(value: &T, out: &mut Vec<u8>) {
    let mut writer = VecWriter(out);
    bincode::serde::encode_into_writer(value, &mut writer, CONFIG).expect("plain serde value encodes");
}

struct VecWriter<'a>(&'a mut Vec<u8>);

impl bincode::enc::write::Writer for VecWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

/// Decodes exactly one value from `bytes`; leftover bytes are an error.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    whole(bincode::serde::decode_from_slice(bytes, CONFIG), bytes.len())
}

/// Largest entity state the read models decode (a snapshot's, or one packed in memory): a
/// commitment at every per-entity limit (500 reaffirmations and 500 assessments of 4,000-byte
/// texts, 32 parties each) encodes in ~4.4 MB, over [`MAX_DECODED_BYTES`]; tested with
/// margin in `projections::kept`. The bytes are the same: a limit only bounds decoding.
pub const MAX_STATE_BYTES: usize = 16 * 1024 * 1024;

const STATE_CONFIG: bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<MAX_STATE_BYTES>,
> = bincode::config::standard().with_limit::<MAX_STATE_BYTES>();

/// Decodes exactly one entity state (see [`MAX_STATE_BYTES`]); leftover bytes are an error.
pub fn decode_state<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    whole(
        bincode::serde::decode_from_slice(bytes, STATE_CONFIG),
        bytes.len(),
    )
}

/// Decodes exactly one value from `bytes`, borrowing its strings and byte strings from them
/// (no allocation for them); leftover bytes are an error.
pub fn decode_borrowed<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, DecodeError> {
    whole(
        bincode::serde::borrow_decode_from_slice(bytes, CONFIG),
        bytes.len(),
    )
}

/// A value decoded from `len` bytes, if it took all of them.
fn whole<T>(decoded: Result<(T, usize), bincode::error::DecodeError>, len: usize) -> Result<T, DecodeError> {
    let (value, read) = decoded.map_err(|error| DecodeError::Malformed(error.to_string()))?;
    if read != len {
        return Err(DecodeError::TrailingBytes { trailing: len - read });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_frozen_bytes() {
        let value = (1u64, String::from("LBY"), -2i64);
        let bytes = encode(&value);
        // Frozen: varint 1, length 3 + "LBY", zigzag(-2) = 3.
        assert_eq!(bytes, vec![1, 3, b'L', b'B', b'Y', 3]);
        let back: (u64, String, i64) = decode(&bytes).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut bytes = encode(&7u32);
        bytes.push(0);
        assert!(matches!(
            decode::<u32>(&bytes),
            Err(DecodeError::TrailingBytes { trailing: 1 })
        ));
    }
}
