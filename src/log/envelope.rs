//! The values that cross the log's boundary: what a caller asks to append, what it gets back,
//! and the envelope of every stored event.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::error::{LogError, LogResult};
use super::limits::*;
use crate::time::{OccurredAt, Timestamp};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// What the caller believes about a stream's version before appending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// Append whatever the version is.
    Any,
    /// The stream must have no events.
    NoStream,
    /// The stream must have at least one event.
    StreamExists,
    /// The stream's last event must have exactly this version (0 means no events).
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether a stream whose current version is `current` (0 = empty) satisfies this.
    pub fn admits(self, current: u64) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => current == 0,
            ExpectedVersion::StreamExists => current > 0,
            ExpectedVersion::Exact(version) => current == version,
        }
    }
}

/// One event as the caller hands it to the log. The log adds position, stream version,
/// event id, recorded_at and hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventDraft {
    /// Stable event type name, e.g. `MeetingHeld`.
    pub event_type: String,
    /// Schema version of this event type's payload.
    pub schema_version: u16,
    /// Valid time: when it happened in the world.
    pub occurred_at: OccurredAt,
    /// Filterable labels such as `party:LBY`.
    pub tags: Vec<String>,
    /// The encoded domain event; opaque to the log.
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

/// A request to append events to one stream, atomically, as the effect of one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendRequest {
    command_id: Uuid,
    stream_id: String,
    expected: ExpectedVersion,
    recorded_by: String,
    correlation_id: Option<Uuid>,
    causation_id: Option<Uuid>,
    events: Vec<EventDraft>,
    fingerprint: Option<Hash>,
}

impl AppendRequest {
    /// A request with no correlation or causation ids, fingerprinted by its own content.
    pub fn new(
        command_id: Uuid,
        stream_id: impl Into<String>,
        expected: ExpectedVersion,
        recorded_by: impl Into<String>,
        events: Vec<EventDraft>,
    ) -> AppendRequest {
        AppendRequest {
            command_id,
            stream_id: stream_id.into(),
            expected,
            recorded_by: recorded_by.into(),
            correlation_id: None,
            causation_id: None,
            events,
            fingerprint: None,
        }
    }

    /// Sets the correlation and causation ids stored on every event.
    pub fn with_correlation(mut self, correlation_id: Option<Uuid>, causation_id: Option<Uuid>) -> Self {
        self.correlation_id = correlation_id;
        self.causation_id = causation_id;
        self
    }

    /// Replaces the request fingerprint (by default a hash of this request's content). The
    /// ledger passes a hash of the client's command, so that a retry is recognised even when the
    /// entity's state has moved on and the command would now decide differently.
    pub fn with_fingerprint(mut self, fingerprint: Hash) -> Self {
        self.fingerprint = Some(fingerprint);
        self
    }

    /// The idempotency key.
    pub fn command_id(&self) -> Uuid {
        self.command_id
    }
    /// The stream appended to.
    pub fn stream_id(&self) -> &str {
        &self.stream_id
    }
    /// The version condition.
    pub fn expected(&self) -> ExpectedVersion {
        self.expected
    }
    /// The principal that sent the command.
    pub fn recorded_by(&self) -> &str {
        &self.recorded_by
    }
    /// Optional correlation id.
    pub fn correlation_id(&self) -> Option<Uuid> {
        self.correlation_id
    }
    /// Optional causation id.
    pub fn causation_id(&self) -> Option<Uuid> {
        self.causation_id
    }
    /// The events to append.
    pub fn events(&self) -> &[EventDraft] {
        &self.events
    }

    /// The fingerprint compared when a command id is seen again: the one given, or SHA-256 of
    /// the request's content.
    pub fn fingerprint(&self) -> Hash {
        if let Some(fingerprint) = self.fingerprint {
            return fingerprint;
        }
        let content = (
            &self.stream_id,
            self.expected,
            &self.recorded_by,
            self.correlation_id,
            self.causation_id,
            &self.events,
        );
        Sha256::digest(crate::encoding::encode(&content)).into()
    }

    /// An upper bound of the bytes this request adds to a journal frame: its records (payload,
    /// texts, tags, plus ENVELOPE_OVERHEAD_BOUND_BYTES of fixed fields, hashes and framing each)
    /// and its request entry. The writer groups commits by this bound, so a frame never exceeds
    /// MAX_FRAME_BYTES.
    pub fn frame_bytes_bound(&self) -> usize {
        let per_request = self.stream_id.len() + self.recorded_by.len() + ENVELOPE_OVERHEAD_BOUND_BYTES;
        let events: usize = self
            .events
            .iter()
            .map(|event| {
                let tags: usize = event.tags.iter().map(|tag| tag.len() + 10).sum();
                event.payload.len() + event.event_type.len() + tags + per_request
            })
            .sum();
        events + super::journal::REQUEST_ENTRY_BYTES
    }

    /// Total payload bytes.
    pub fn payload_bytes(&self) -> usize {
        self.events.iter().map(|event| event.payload.len()).sum()
    }

    /// Checks every limit and format rule. Called before the request is queued.
    pub fn validate(&self) -> LogResult<()> {
        validate_stream_id(&self.stream_id)?;
        if self.events.is_empty() {
            return Err(invalid("events", "an append needs at least one event"));
        }
        if self.events.len() > MAX_EVENTS_PER_APPEND {
            return Err(LogError::TooLarge {
                what: "events in one append",
                actual: self.events.len(),
                limit: MAX_EVENTS_PER_APPEND,
            });
        }
        check_text("recorded_by", &self.recorded_by, MAX_PRINCIPAL_BYTES)?;
        if self.recorded_by.is_empty() {
            return Err(invalid("recorded_by", "must name a principal"));
        }
        let payload_bytes = self.payload_bytes();
        if payload_bytes > MAX_APPEND_PAYLOAD_BYTES {
            return Err(LogError::TooLarge {
                what: "payload bytes in one append",
                actual: payload_bytes,
                limit: MAX_APPEND_PAYLOAD_BYTES,
            });
        }
        for (index, event) in self.events.iter().enumerate() {
            validate_draft(index, event)?;
        }
        Ok(())
    }
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> LogError {
    LogError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

fn check_text(field: &str, text: &str, limit: usize) -> LogResult<()> {
    if text.len() > limit {
        return Err(invalid(
            field,
            format!("{} bytes, over the limit of {limit}", text.len()),
        ));
    }
    Ok(())
}

/// Stream ids are 1..=MAX_STREAM_ID_BYTES printable ASCII characters without spaces (so 0x00,
/// the index key separator, cannot occur).
pub fn validate_stream_id(stream_id: &str) -> LogResult<()> {
    if stream_id.is_empty() {
        return Err(invalid("stream_id", "must not be empty"));
    }
    check_text("stream_id", stream_id, MAX_STREAM_ID_BYTES)?;
    if !stream_id.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Err(invalid(
            "stream_id",
            "only printable ASCII without spaces is allowed",
        ));
    }
    Ok(())
}

fn validate_draft(index: usize, event: &EventDraft) -> LogResult<()> {
    let field = |name: &str| format!("events[{index}].{name}");
    if event.event_type.is_empty()
        || !event
            .event_type
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
    {
        return Err(invalid(
            field("event_type"),
            "must be non-empty ASCII letters, digits, '_' or '.'",
        ));
    }
    check_text(&field("event_type"), &event.event_type, MAX_EVENT_TYPE_BYTES)?;
    if event.payload.len() > MAX_EVENT_PAYLOAD_BYTES {
        return Err(LogError::TooLarge {
            what: "event payload bytes",
            actual: event.payload.len(),
            limit: MAX_EVENT_PAYLOAD_BYTES,
        });
    }
    if event.tags.len() > MAX_TAGS_PER_EVENT {
        return Err(LogError::TooLarge {
            what: "tags on one event",
            actual: event.tags.len(),
            limit: MAX_TAGS_PER_EVENT,
        });
    }
    for (tag_index, tag) in event.tags.iter().enumerate() {
        let name = field(&format!("tags[{tag_index}]"));
        if tag.is_empty() {
            return Err(invalid(name, "must not be empty"));
        }
        check_text(&name, tag, MAX_TAG_BYTES)?;
    }
    Ok(())
}

/// What an append did: where its events went. Returned again, unchanged, for a retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendResult {
    stream_id: String,
    first_position: u64,
    first_version: u64,
    event_ids: Vec<Uuid>,
    recorded_at: Timestamp,
}

impl AppendResult {
    pub(crate) fn new(
        stream_id: String,
        first_position: u64,
        first_version: u64,
        event_ids: Vec<Uuid>,
        recorded_at: Timestamp,
    ) -> AppendResult {
        debug_assert!(!event_ids.is_empty());
        AppendResult {
            stream_id,
            first_position,
            first_version,
            event_ids,
            recorded_at,
        }
    }
    /// The stream appended to.
    pub fn stream_id(&self) -> &str {
        &self.stream_id
    }
    /// Global position of the first event.
    pub fn first_position(&self) -> u64 {
        self.first_position
    }
    /// Global position of the last event (positions of one append are contiguous).
    pub fn last_position(&self) -> u64 {
        self.first_position + self.event_ids.len() as u64 - 1
    }
    /// Stream version of the first event.
    pub fn first_version(&self) -> u64 {
        self.first_version
    }
    /// Stream version after the append.
    pub fn last_version(&self) -> u64 {
        self.first_version + self.event_ids.len() as u64 - 1
    }
    /// Ids of the appended events, in order.
    pub fn event_ids(&self) -> &[Uuid] {
        &self.event_ids
    }
    /// Transaction time of the commit.
    pub fn recorded_at(&self) -> Timestamp {
        self.recorded_at
    }
}

/// The stored envelope of one event: every field of the log's envelope (docs/storage.md) except
/// the hashes, which are computed over its encoding. Its bincode encoding is the record's canonical bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Global position, dense from 1.
    pub position: u64,
    /// The stream (entity) the event belongs to.
    pub stream_id: String,
    /// Version within the stream, dense from 1.
    pub stream_version: u64,
    /// UUID v7 assigned at append.
    pub event_id: Uuid,
    /// Stable event type name.
    pub event_type: String,
    /// Schema version of the payload.
    pub schema_version: u16,
    /// The command that produced the event (idempotency key).
    pub command_id: Uuid,
    /// Valid time, with precision.
    pub occurred_at: OccurredAt,
    /// Transaction time: server clock at commit, non-decreasing along positions.
    pub recorded_at: Timestamp,
    /// The principal that sent the command.
    pub recorded_by: String,
    /// Optional correlation id.
    pub correlation_id: Option<Uuid>,
    /// Optional causation id.
    pub causation_id: Option<Uuid>,
    /// Filterable labels.
    pub tags: Vec<String>,
    /// The encoded domain event.
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

/// A stored envelope read in place: the same fields as [`Envelope`] in the same encoding, with
/// its texts and payload borrowed from the record's bytes instead of copied (reads that only
/// pass the event on, such as a replay, allocate nothing per text).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct EnvelopeRef<'a> {
    /// Global position, dense from 1.
    pub position: u64,
    /// The stream (entity) the event belongs to.
    pub stream_id: &'a str,
    /// Version within the stream, dense from 1.
    pub stream_version: u64,
    /// UUID v7 assigned at append.
    pub event_id: Uuid,
    /// Stable event type name.
    pub event_type: &'a str,
    /// Schema version of the payload.
    pub schema_version: u16,
    /// The command that produced the event (idempotency key).
    pub command_id: Uuid,
    /// Valid time, with precision.
    pub occurred_at: OccurredAt,
    /// Transaction time.
    pub recorded_at: Timestamp,
    /// The principal that sent the command.
    pub recorded_by: &'a str,
    /// Optional correlation id.
    pub correlation_id: Option<Uuid>,
    /// Optional causation id.
    pub causation_id: Option<Uuid>,
    /// Filterable labels.
    #[serde(borrow)]
    pub tags: Vec<&'a str>,
    /// The encoded domain event.
    pub payload: &'a [u8],
}

impl EnvelopeRef<'_> {
    /// The owned envelope.
    pub fn to_owned(&self) -> Envelope {
        Envelope {
            position: self.position,
            stream_id: self.stream_id.to_owned(),
            stream_version: self.stream_version,
            event_id: self.event_id,
            event_type: self.event_type.to_owned(),
            schema_version: self.schema_version,
            command_id: self.command_id,
            occurred_at: self.occurred_at,
            recorded_at: self.recorded_at,
            recorded_by: self.recorded_by.to_owned(),
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            tags: self.tags.iter().map(|tag| (*tag).to_owned()).collect(),
            payload: self.payload.to_vec(),
        }
    }
}

/// An event read back from the log: its envelope and the hashes stored with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    envelope: Envelope,
    leaf_hash: Hash,
    chain_hash: Hash,
}

impl RecordedEvent {
    pub(crate) fn new(envelope: Envelope, leaf_hash: Hash, chain_hash: Hash) -> RecordedEvent {
        RecordedEvent {
            envelope,
            leaf_hash,
            chain_hash,
        }
    }
    /// The envelope.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }
    /// Takes the envelope.
    pub fn into_envelope(self) -> Envelope {
        self.envelope
    }
    /// SHA-256(0x00 ‖ canonical envelope bytes): the RFC 9162 leaf hash.
    pub fn leaf_hash(&self) -> &Hash {
        &self.leaf_hash
    }
    /// SHA-256(previous chain hash ‖ leaf hash): commits to every event up to this one.
    pub fn chain_hash(&self) -> &Hash {
        &self.chain_hash
    }
    /// Shorthand for the envelope's position.
    pub fn position(&self) -> u64 {
        self.envelope.position
    }
}

/// Which way a read goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Increasing positions or versions.
    Forwards,
    /// Decreasing positions or versions.
    Backwards,
}

/// Which events a ReadAll returns. Empty lists match everything; within a list any entry
/// matches (OR); across lists all must match (AND).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Event type names to include.
    pub event_types: Vec<String>,
    /// Stream id prefixes to include, e.g. `meeting-`.
    pub stream_prefixes: Vec<String>,
    /// Tags of which the event must carry at least one.
    pub tags: Vec<String>,
}

impl EventFilter {
    /// Whether the filter lets everything through.
    pub fn is_empty(&self) -> bool {
        self.event_types.is_empty() && self.stream_prefixes.is_empty() && self.tags.is_empty()
    }

    /// Whether an envelope passes.
    pub fn matches(&self, envelope: &Envelope) -> bool {
        self.admits(&envelope.event_type, &envelope.stream_id, &envelope.tags)
    }

    /// Whether an envelope read in place passes (the same rule as [`EventFilter::matches`]).
    pub fn matches_ref(&self, envelope: &EnvelopeRef<'_>) -> bool {
        self.admits(envelope.event_type, envelope.stream_id, &envelope.tags)
    }

    fn admits(&self, event_type: &str, stream_id: &str, tags: &[impl AsRef<str>]) -> bool {
        (self.event_types.is_empty() || self.event_types.iter().any(|t| t == event_type))
            && (self.stream_prefixes.is_empty()
                || self
                    .stream_prefixes
                    .iter()
                    .any(|p| stream_id.starts_with(p.as_str())))
            && (self.tags.is_empty() || tags.iter().any(|tag| self.tags.iter().any(|t| t == tag.as_ref())))
    }
}

/// One page of a ReadAll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadAllPage {
    /// Matching events, in the direction read.
    pub events: Vec<RecordedEvent>,
    /// Where to continue: the next position to examine (forwards: one past the last examined;
    /// backwards: one before it, 0 when the start was reached).
    pub next_position: u64,
    /// The head of the log when the page was read.
    pub head: u64,
    /// True when the scan reached the end in its direction (head forwards, position 1 backwards).
    pub reached_end: bool,
}

impl AppendRequest {
    /// Takes the events out (the writer moves them into envelopes).
    pub(crate) fn into_events(self) -> Vec<EventDraft> {
        self.events
    }
}
