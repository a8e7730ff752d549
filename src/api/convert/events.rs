//! The log's records as messages: event envelopes (every log field, the payload, and the
//! payload decoded into its typed event) and [`event_to_pb`], which hands each domain event to
//! its aggregate's file. [`encode_envelope`] writes the same message's bytes straight from a
//! record read in place, for reads that send events on without looking at them.

use uuid::Uuid;

use super::common::{occurred_at_to_pb, timestamp_to_pb};
use super::{commitment, meeting, official, party, source};
use crate::api::pb;
use crate::api::wire::{put_field, put_text, put_uint};
use crate::domain::{decode_event, DomainEvent};
use crate::log::{RecordView, RecordedEvent};

/// A stored event as an [`pb::EventEnvelope`]: every log field, the payload bytes, and the
/// payload decoded into the typed event (absent when this build does not know the type).
pub fn envelope_to_pb(event: &RecordedEvent) -> pb::EventEnvelope {
    envelope_into_pb(event.clone(), true)
}

/// Like [`envelope_to_pb`] but consumes the record, moving its strings, tags and payload into
/// the message instead of copying them. With `typed` false the payload is not decoded and
/// `event` is absent (the `omit_typed_body` request flag); every other field is the same.
pub fn envelope_into_pb(event: RecordedEvent, typed: bool) -> pb::EventEnvelope {
    let leaf_hash = event.leaf_hash().to_vec();
    let chain_hash = event.chain_hash().to_vec();
    let envelope = event.into_envelope();
    let typed = if typed {
        decode_event(&envelope.event_type, envelope.schema_version, &envelope.payload)
            .ok()
            .map(|event| event_to_pb(&event))
    } else {
        None
    };
    pb::EventEnvelope {
        position: envelope.position,
        stream_id: envelope.stream_id,
        stream_version: envelope.stream_version,
        event_id: uuid_to_pb(envelope.event_id),
        event_type: envelope.event_type,
        schema_version: u32::from(envelope.schema_version),
        command_id: uuid_to_pb(envelope.command_id),
        occurred_at: Some(occurred_at_to_pb(envelope.occurred_at)),
        recorded_at: Some(timestamp_to_pb(envelope.recorded_at)),
        recorded_by: envelope.recorded_by,
        correlation_id: envelope.correlation_id.map(uuid_to_pb),
        causation_id: envelope.causation_id.map(uuid_to_pb),
        tags: envelope.tags,
        payload: envelope.payload,
        event: typed,
        leaf_hash,
        chain_hash,
        leaf_input: Vec::new(),
    }
}

/// Appends the protobuf encoding of `record`'s [`pb::EventEnvelope`] to `out`: byte for byte
/// what prost writes for [`envelope_into_pb`] of the same event (with `leaf_input` set to the
/// record's canonical bytes when asked), without building the message: texts, payload and
/// hashes go from the stored record to the wire in one copy. Fields in tag order, defaults left
/// out, as prost does.
pub fn encode_envelope(record: &RecordView<'_>, typed: bool, leaf_input: bool, out: &mut Vec<u8>) {
    use prost::encoding::message;
    let envelope = &record.envelope;
    put_uint(1, envelope.position, out);
    put_text(2, envelope.stream_id.as_bytes(), out);
    put_uint(3, envelope.stream_version, out);
    put_uuid(4, envelope.event_id, out);
    put_text(5, envelope.event_type.as_bytes(), out);
    put_uint(6, u64::from(envelope.schema_version), out);
    put_uuid(7, envelope.command_id, out);
    message::encode(8, &occurred_at_to_pb(envelope.occurred_at), out);
    message::encode(9, &timestamp_to_pb(envelope.recorded_at), out);
    put_text(10, envelope.recorded_by.as_bytes(), out);
    if let Some(id) = envelope.correlation_id {
        put_uuid(11, id, out);
    }
    if let Some(id) = envelope.causation_id {
        put_uuid(12, id, out);
    }
    for tag in &envelope.tags {
        put_field(13, tag.as_bytes(), out);
    }
    put_text(14, envelope.payload, out);
    if typed {
        let decoded = decode_event(envelope.event_type, envelope.schema_version, envelope.payload);
        if let Ok(event) = decoded {
            message::encode(15, &event_to_pb(&event), out);
        }
    }
    put_text(16, &record.leaf_hash, out);
    put_text(17, &record.chain_hash, out);
    if leaf_input {
        put_text(18, record.body, out);
    }
}

fn put_uuid(tag: u32, id: Uuid, out: &mut Vec<u8>) {
    put_field(
        tag,
        id.hyphenated()
            .encode_lower(&mut Uuid::encode_buffer())
            .as_bytes(),
        out,
    );
}

/// A UUID in its hyphenated lower-case text form, written straight into the string (no
/// formatter machinery).
fn uuid_to_pb(id: Uuid) -> String {
    id.hyphenated()
        .encode_lower(&mut Uuid::encode_buffer())
        .to_owned()
}

/// A domain event as its typed message.
pub fn event_to_pb(event: &DomainEvent) -> pb::Event {
    let typed = match event {
        DomainEvent::Party(event) => party::event_to_pb(event),
        DomainEvent::Source(event) => source::event_to_pb(event),
        DomainEvent::Official(event) => official::event_to_pb(event),
        DomainEvent::Meeting(event) => meeting::event_to_pb(event),
        DomainEvent::Commitment(event) => commitment::event_to_pb(event),
    };
    pb::Event { event: Some(typed) }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;
    use uuid::Uuid;

    use super::*;
    use crate::log::codec::{encode_record, view_record, GENESIS_CHAIN_HASH};
    use crate::log::Envelope;
    use crate::time::{OccurredAt, Precision, Timestamp};

    /// What the generated random logs never hold: empty texts and tags, both optional ids, an
    /// event type this build does not know, an empty payload, times before 1970.
    fn unusual_envelopes() -> Vec<Envelope> {
        let plain = Envelope {
            position: 3,
            stream_id: "party-LBY".into(),
            stream_version: 1,
            event_id: Uuid::from_u128(1),
            event_type: "NoSuchEvent".into(),
            schema_version: 0,
            command_id: Uuid::from_u128(2),
            occurred_at: OccurredAt::new(Timestamp::from_unix_micros(-5), Precision::Exact),
            recorded_at: Timestamp::from_unix_micros(0),
            recorded_by: String::new(),
            correlation_id: Some(Uuid::from_u128(3)),
            causation_id: Some(Uuid::from_u128(4)),
            tags: vec![String::new(), "party:LBY".into()],
            payload: Vec::new(),
        };
        let mut payload = plain.clone();
        payload.event_type = "PartyRegistered".into();
        payload.schema_version = 1;
        payload.payload = vec![0xff; 40];
        payload.correlation_id = None;
        payload.tags = Vec::new();
        vec![plain, payload]
    }

    #[test]
    fn an_envelope_written_from_its_record_is_the_bytes_of_its_message() {
        for envelope in unusual_envelopes() {
            let (bytes, _) = encode_record(&envelope, &GENESIS_CHAIN_HASH).unwrap();
            let view = view_record(3, &bytes).unwrap();
            for (typed, leaf_input) in [(false, false), (true, false), (true, true)] {
                let mut expected = envelope_into_pb(view.to_recorded(), typed);
                if leaf_input {
                    expected.leaf_input = view.body.to_vec();
                }
                let mut written = Vec::new();
                encode_envelope(&view, typed, leaf_input, &mut written);
                assert_eq!(written, expected.encode_to_vec(), "{envelope:?} typed {typed}");
            }
        }
    }
}
