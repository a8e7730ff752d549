//! Every conversion between proto messages and domain or log values.
//!
//! - Outbound (never fails): log envelopes to [`pb::EventEnvelope`] (with the payload decoded
//!   into the typed [`pb::Event`]), every domain event to its message, common value types,
//!   read-model rows to their views, and a domain command to the request a client sends.
//! - Inbound (validates): filters, directions, timestamps, ids, common value types and every
//!   command request to a [`DomainCommand`]. Malformed input is collected into
//!   [`FieldViolation`]s named by their proto field path (`details.participants[1].party`), all at
//!   once, and becomes INVALID_ARGUMENT in `status`. Domain rules are left to the domain.
//!
//! Timestamps: the domain stores whole microseconds; inbound nanos are truncated towards the
//! past, and seconds must be within the protobuf Timestamp range (years 1 to 9999).
//!
//! Files, by aggregate; each holds both directions of its own messages, so that a message's
//! encoding sits next to its parsing:
//! - `common`: what every aggregate shares: [`Violations`], timestamps, precision and valid
//!   time, provenance, time windows, UUIDs and id lists; the log's directions and filters; and
//!   commands as a whole: the request header, [`CommandRequest`] with the
//!   `command_request!`/`source_request!` macros that implement it, field paths, entity ids,
//!   command results, and batches ([`batch_from_pb`] in; [`command_to_pb`] out, which
//!   dispatches to each aggregate).
//! - `party`, `source`, `official`, `meeting`, `commitment`: one aggregate each: its details and
//!   value messages (`*_to_pb` beside `*_from_pb`), its requests (the macro invocations that
//!   read them, and its part of [`command_to_pb`]), its part of [`event_to_pb`], and its
//!   read-model views and status enums. The views stay with their aggregate rather than in
//!   `views`: they are built from the aggregate's details messages, which so stay private to
//!   its file.
//! - `events`: log envelopes ([`envelope_into_pb`], with or without the typed event, and
//!   [`encode_envelope`], its bytes written straight from a stored record) and
//!   [`event_to_pb`], which dispatches to each aggregate.
//! - `views`: the QueryService answers that are no single aggregate's: timeline items (a meeting
//!   or a commitment) and audit-trail entries (any stream's event, with its cited sources).
//!
//! Every public item is re-exported here, so callers name it `convert::uuid_from_pb` whichever
//! file holds it.
//!
//! [`pb::EventEnvelope`]: crate::api::pb::EventEnvelope
//! [`pb::Event`]: crate::api::pb::Event
//! [`DomainCommand`]: crate::domain::DomainCommand
//! [`FieldViolation`]: crate::domain::FieldViolation

mod commitment;
mod common;
mod events;
mod meeting;
mod official;
mod party;
mod source;
mod views;

pub use commitment::{commitment_status_from_pb, commitment_status_to_pb, commitment_to_pb};
pub use common::{
    batch_from_pb, command_result_to_pb, command_to_pb, direction_from_pb, entity_id, entity_id_from_pb,
    filter_from_pb, occurred_at_from_pb, occurred_at_to_pb, optional_entity_id, optional_occurred_at,
    optional_timestamp, optional_uuid, party_code_from_pb, precision_from_pb, precision_to_pb,
    proto_field_path, required_occurred_at, required_timestamp, timestamp_from_pb, timestamp_to_pb,
    uuid_from_pb, CommandRequest, Violations, MAX_FILTER_ENTRIES,
};
pub use events::{encode_envelope, envelope_into_pb, envelope_to_pb, event_to_pb};
pub use meeting::{meeting_status_from_pb, meeting_status_to_pb, meeting_to_pb};
pub use official::{contacts_to_pb, official_to_pb, post_holder_to_pb};
pub use party::party_to_pb;
pub use source::source_to_pb;
pub use views::{history_entry_to_pb, timeline_item_to_pb};
