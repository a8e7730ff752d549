//! The log's records as messages: event envelopes (every log field, the payload, and the
//! payload decoded into its typed event) and [`event_to_pb`], which hands each domain event to
//! its aggregate's file.

use uuid::Uuid;

use super::common::{occurred_at_to_pb, timestamp_to_pb};
use super::{commitment, meeting, official, party, source};
use crate::api::pb;
use crate::domain::{decode_event, DomainEvent};
use crate::log::RecordedEvent;

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
