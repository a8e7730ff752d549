//! Protobuf fields written by hand, exactly as prost writes them (proto3: a scalar or string
//! at its default is left out), for answers encoded straight from stored bytes (`api::pages`,
//! `convert::encode_envelope`).

use prost::encoding::{encode_key, encode_varint, WireType};

/// A varint field, left out when 0.
pub fn put_uint(tag: u32, value: u64, out: &mut Vec<u8>) {
    if value != 0 {
        encode_key(tag, WireType::Varint, out);
        encode_varint(value, out);
    }
}

/// A bool field, left out when false.
pub fn put_bool(tag: u32, value: bool, out: &mut Vec<u8>) {
    put_uint(tag, u64::from(value), out);
}

/// A string or bytes field, left out when empty.
pub fn put_text(tag: u32, bytes: &[u8], out: &mut Vec<u8>) {
    if !bytes.is_empty() {
        put_field(tag, bytes, out);
    }
}

/// A length-delimited field written even when empty: a repeated element, a present optional, an
/// embedded message.
pub fn put_field(tag: u32, bytes: &[u8], out: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    #[test]
    fn fields_are_written_as_prost_writes_them() {
        for (position, head, reached_end) in [(0, 0, false), (1, 300, true), (u64::MAX, 2, false)] {
            let expected = crate::api::pb::ReadAllResponse {
                events: Vec::new(),
                next_position: position,
                head,
                reached_end,
            }
            .encode_to_vec();
            let mut out = Vec::new();
            put_uint(2, position, &mut out);
            put_uint(3, head, &mut out);
            put_bool(4, reached_end, &mut out);
            assert_eq!(out, expected);
        }
        let expected = crate::api::pb::CaughtUp { position: 0 }.encode_to_vec();
        assert!(expected.is_empty());
        let mut out = Vec::new();
        put_text(1, b"", &mut out);
        assert!(out.is_empty());
        put_field(1, b"", &mut out);
        assert_eq!(out, [0x0a, 0]);
    }
}
