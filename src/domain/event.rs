//! The top level the ledger uses: one command type, one event type and one state type over all
//! aggregates, with stream ids, references to other entities, event type strings, schema
//! versions, tags, payload encoding and decoding (with upcasting of old schema versions).

use serde::{Deserialize, Serialize};

use super::common::{party_stream_id, CommitmentId, MeetingId, OfficialId, SourceId};
use super::error::Rejection;
use super::{commitment, meeting, official, party, source};
use crate::encoding::DecodeError;
use crate::time::OccurredAt;

/// A command for any aggregate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DomainCommand {
    /// A party command.
    Party(party::Command),
    /// An official command.
    Official(official::Command),
    /// A source command.
    Source(source::Command),
    /// A meeting command.
    Meeting(meeting::Command),
    /// A commitment command.
    Commitment(commitment::Command),
}

/// Another entity a command names, which must exist before the command is accepted (the ledger
/// checks; the domain only lists them).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntityRef {
    /// A party, by code.
    Party(String),
    /// An official.
    Official(OfficialId),
    /// A source.
    Source(SourceId),
    /// A meeting.
    Meeting(MeetingId),
    /// A commitment.
    Commitment(CommitmentId),
}

impl EntityRef {
    /// The stream of the referenced entity (`party-LBY`, `source-<uuid>`, ...).
    pub fn stream_id(&self) -> String {
        match self {
            EntityRef::Party(code) => party_stream_id(code),
            EntityRef::Official(id) => id.stream_id(),
            EntityRef::Source(id) => id.stream_id(),
            EntityRef::Meeting(id) => id.stream_id(),
            EntityRef::Commitment(id) => id.stream_id(),
        }
    }
}

impl DomainCommand {
    /// The stream the command appends to (`party-LBY`, `meeting-<uuid>`, ...).
    pub fn stream_id(&self) -> String {
        match self {
            DomainCommand::Party(command) => party_stream_id(command.code()),
            DomainCommand::Official(command) => command.official_id().stream_id(),
            DomainCommand::Source(command) => command.source_id().stream_id(),
            DomainCommand::Meeting(command) => command.meeting_id().stream_id(),
            DomainCommand::Commitment(command) => command.commitment_id().stream_id(),
        }
    }

    /// Valid time of the command (for the envelope): the provenance's `occurred_at`; for a
    /// source, its publication (or retrieval) time.
    pub fn occurred_at(&self) -> OccurredAt {
        match self {
            DomainCommand::Party(command) => command.provenance().occurred_at,
            DomainCommand::Official(command) => command.provenance().occurred_at,
            DomainCommand::Source(command) => command.details().occurred_at(),
            DomainCommand::Meeting(command) => command.provenance().occurred_at,
            DomainCommand::Commitment(command) => command.provenance().occurred_at,
        }
    }

    /// The command's own field that [`DomainCommand::occurred_at`] comes from, as a domain
    /// field path (`provenance.occurred_at`; a source's publication or retrieval time).
    pub fn occurred_at_field(&self) -> &'static str {
        match self {
            DomainCommand::Source(command) if command.details().published_at.is_some() => {
                "details.published_at"
            }
            DomainCommand::Source(_) => "details.retrieved_at",
            _ => "provenance.occurred_at",
        }
    }

    /// Every time the command gives for something that has already happened, with its own
    /// field (domain path): the valid time ([`DomainCommand::occurred_at`]), and the end of a
    /// held meeting (`ended_at`) or of a tenure (`ended_at`). None of them may lie ahead of the
    /// server's clock beyond its allowance. Windows, due dates and an office term's planned end
    /// (`to`) are plans and are not listed.
    pub fn past_fact_times(&self) -> Vec<(&'static str, crate::time::Timestamp)> {
        let mut times = vec![(self.occurred_at_field(), self.occurred_at().at())];
        match self {
            DomainCommand::Meeting(meeting::Command::RecordMeetingHeld {
                ended_at: Some(ended_at),
                ..
            }) => times.push(("ended_at", *ended_at)),
            DomainCommand::Official(official::Command::EndTenure { ended_at, .. }) => {
                times.push(("ended_at", ended_at.at()))
            }
            _ => {}
        }
        times
    }

    /// Checks the command's own id without any state: a party command's code must be a
    /// well-formed party code (the other aggregates are named by UUIDs, always well formed).
    /// The ledger runs this before any lookup, so a malformed code (`F RA`, `fra`, empty) is
    /// reported as the command's `code`, never as a stream id the request does not have.
    pub fn check_own_id(&self) -> Result<(), super::error::FieldViolation> {
        match self {
            DomainCommand::Party(command) => {
                super::common::check_party_code(command.code()).map_err(|description| {
                    super::error::FieldViolation {
                        field: "code".to_owned(),
                        description,
                    }
                })
            }
            _ => Ok(()),
        }
    }

    /// Every other entity the command names that must exist: cited sources, parties,
    /// officials, meetings, commitments. Deduplicated, in order of first mention; never the
    /// command's own stream (a party whose code is its own stream is not listed).
    pub fn references(&self) -> Vec<EntityRef> {
        let mut references = Vec::new();
        let provenance = match self {
            DomainCommand::Party(command) => Some(command.provenance()),
            DomainCommand::Official(command) => Some(command.provenance()),
            DomainCommand::Source(_) => None,
            DomainCommand::Meeting(command) => Some(command.provenance()),
            DomainCommand::Commitment(command) => Some(command.provenance()),
        };
        for citation in provenance.map(|p| p.sources.as_slice()).unwrap_or_default() {
            references.push(EntityRef::Source(citation.source_id));
        }
        let (parties, officials, meetings, commitments) = match self {
            DomainCommand::Party(_) | DomainCommand::Source(_) => {
                (Vec::new(), Vec::new(), Vec::new(), Vec::new())
            }
            DomainCommand::Official(command) => (command.party_codes(), Vec::new(), Vec::new(), Vec::new()),
            DomainCommand::Meeting(command) => (
                command.party_codes(),
                command.official_ids(),
                Vec::new(),
                Vec::new(),
            ),
            DomainCommand::Commitment(command) => (
                command.party_codes(),
                command.official_ids(),
                command.meeting_ids(),
                command.other_commitment_ids(),
            ),
        };
        references.extend(parties.into_iter().map(|code| EntityRef::Party(code.to_owned())));
        references.extend(officials.into_iter().map(EntityRef::Official));
        references.extend(meetings.into_iter().map(EntityRef::Meeting));
        references.extend(commitments.into_iter().map(EntityRef::Commitment));
        let own_stream = self.stream_id();
        let mut unique: Vec<EntityRef> = Vec::with_capacity(references.len());
        for reference in references {
            if !unique.contains(&reference) && reference.stream_id() != own_stream {
                unique.push(reference);
            }
        }
        unique
    }
}

/// An event of any aggregate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DomainEvent {
    /// A party event.
    Party(party::Event),
    /// An official event.
    Official(official::Event),
    /// A source event.
    Source(source::Event),
    /// A meeting event.
    Meeting(meeting::Event),
    /// A commitment event.
    Commitment(commitment::Event),
}

impl DomainEvent {
    /// The sources the event cites (source events cite none: they are the sources).
    pub fn citations(&self) -> &[crate::domain::common::SourceCitation] {
        match self {
            DomainEvent::Party(event) => &event.provenance().sources,
            DomainEvent::Official(event) => &event.provenance().sources,
            DomainEvent::Source(_) => &[],
            DomainEvent::Meeting(event) => &event.provenance().sources,
            DomainEvent::Commitment(event) => &event.provenance().sources,
        }
    }

    /// The stable event type string (`PartyRegistered`, `MeetingHeld`, ...).
    pub fn event_type(&self) -> &'static str {
        match self {
            DomainEvent::Party(event) => event.event_type(),
            DomainEvent::Official(event) => event.event_type(),
            DomainEvent::Source(event) => event.event_type(),
            DomainEvent::Meeting(event) => event.event_type(),
            DomainEvent::Commitment(event) => event.event_type(),
        }
    }

    /// The current schema version of the event's type (what [`DomainEvent::encode_payload`]
    /// writes).
    pub fn schema_version(&self) -> u16 {
        match self {
            DomainEvent::Party(event) => event.schema_version(),
            DomainEvent::Official(event) => event.schema_version(),
            DomainEvent::Source(event) => event.schema_version(),
            DomainEvent::Meeting(event) => event.schema_version(),
            DomainEvent::Commitment(event) => event.schema_version(),
        }
    }

    /// Tags the log filters on (`party:LBY`, `official:<uuid>`, `topic:security`,
    /// `meeting:<uuid>`, `source:<uuid>`, ...). The first tag names the event's own entity.
    pub fn tags(&self) -> Vec<String> {
        match self {
            DomainEvent::Party(event) => event.tags(),
            DomainEvent::Official(event) => event.tags(),
            DomainEvent::Source(event) => event.tags(),
            DomainEvent::Meeting(event) => event.tags(),
            DomainEvent::Commitment(event) => event.tags(),
        }
    }

    /// The payload (the event type's struct, current schema version) in the frozen encoding.
    pub fn encode_payload(&self) -> Vec<u8> {
        match self {
            DomainEvent::Party(event) => event.encode_payload(),
            DomainEvent::Official(event) => event.encode_payload(),
            DomainEvent::Source(event) => event.encode_payload(),
            DomainEvent::Meeting(event) => event.encode_payload(),
            DomainEvent::Commitment(event) => event.encode_payload(),
        }
    }
}

/// Every event type with its current schema version (the public contract), in a fixed order:
/// [`EventTypes`] stores indexes into it. Built once; every decode looks its type up here.
pub fn event_types() -> &'static [(&'static str, u16)] {
    static TYPES: std::sync::LazyLock<Vec<(&'static str, u16)>> = std::sync::LazyLock::new(|| {
        let types = [
            party::Event::TYPES,
            official::Event::TYPES,
            source::Event::TYPES,
            meeting::Event::TYPES,
            commitment::Event::TYPES,
        ]
        .concat();
        assert!(
            types.len() <= usize::from(u8::MAX) + 1,
            "event type codes fit a byte"
        );
        types
    });
    &TYPES
}

/// Why stored bytes could not be turned into a [`DomainEvent`].
#[derive(Debug, thiserror::Error)]
pub enum DecodeEventError {
    /// No such event type.
    #[error("unknown event type {0:?}")]
    UnknownEventType(String),
    /// The event type exists but not with this schema version.
    #[error("event type {event_type} has no schema version {schema_version}")]
    UnknownSchemaVersion {
        /// The event type.
        event_type: String,
        /// The unknown version.
        schema_version: u16,
    },
    /// The payload does not decode as that version of that type.
    #[error("malformed {event_type} v{schema_version} payload: {source}")]
    Malformed {
        /// The event type.
        event_type: String,
        /// The schema version.
        schema_version: u16,
        /// The decoding error.
        source: DecodeError,
    },
}

/// Decodes a stored payload, upcasting old schema versions to the current one.
///
/// Upcasts: `PartyRegistered` v1 (no `cameo_code`) -> v2 (`cameo_code: None`);
/// `MeetingProposed` v1 (one proposer) -> v2 (a list of one); `MeetingProposed`,
/// `MeetingScheduled` and `MeetingRescheduled` v1 windows (a bare end instant) -> v2 (the end
/// exact, the window a span); `MeetingCancelled` v1 -> v2 (`cancelled_by` empty).
pub fn decode_event(
    event_type: &str,
    schema_version: u16,
    payload: &[u8],
) -> Result<DomainEvent, DecodeEventError> {
    let malformed = |source: DecodeError| DecodeEventError::Malformed {
        event_type: event_type.to_owned(),
        schema_version,
        source,
    };
    let Some(current_version) = event_types()
        .iter()
        .find(|(name, _)| *name == event_type)
        .map(|(_, version)| *version)
    else {
        return Err(DecodeEventError::UnknownEventType(event_type.to_owned()));
    };
    if schema_version != current_version {
        return upcast(event_type, schema_version, payload).map_err(|error| match error {
            UpcastError::NoPath => DecodeEventError::UnknownSchemaVersion {
                event_type: event_type.to_owned(),
                schema_version,
            },
            UpcastError::Decode(source) => malformed(source),
        });
    }
    let decoded = party::Event::decode_current(event_type, payload)
        .map(|result| result.map(DomainEvent::Party))
        .or_else(|| {
            official::Event::decode_current(event_type, payload)
                .map(|result| result.map(DomainEvent::Official))
        })
        .or_else(|| {
            source::Event::decode_current(event_type, payload).map(|result| result.map(DomainEvent::Source))
        })
        .or_else(|| {
            meeting::Event::decode_current(event_type, payload).map(|result| result.map(DomainEvent::Meeting))
        })
        .or_else(|| {
            commitment::Event::decode_current(event_type, payload)
                .map(|result| result.map(DomainEvent::Commitment))
        });
    match decoded {
        Some(result) => result.map_err(malformed),
        None => Err(DecodeEventError::UnknownEventType(event_type.to_owned())),
    }
}

enum UpcastError {
    NoPath,
    Decode(DecodeError),
}

fn decode_old<T: serde::de::DeserializeOwned>(payload: &[u8]) -> Result<T, UpcastError> {
    crate::encoding::decode(payload).map_err(UpcastError::Decode)
}

/// The upcasting chain: each arm decodes one old version and converts it to the current one.
fn upcast(event_type: &str, schema_version: u16, payload: &[u8]) -> Result<DomainEvent, UpcastError> {
    match (event_type, schema_version) {
        ("PartyRegistered", 1) => {
            let old: party::legacy::PartyRegisteredV1 =
                crate::encoding::decode(payload).map_err(UpcastError::Decode)?;
            Ok(DomainEvent::Party(party::Event::PartyRegistered(old.upcast())))
        }
        ("MeetingProposed", 1) => {
            let old: meeting::legacy::MeetingProposedV1 = decode_old(payload)?;
            Ok(DomainEvent::Meeting(meeting::Event::MeetingProposed(
                old.upcast(),
            )))
        }
        ("MeetingScheduled", 1) => {
            let old: meeting::legacy::MeetingScheduledV1 = decode_old(payload)?;
            Ok(DomainEvent::Meeting(meeting::Event::MeetingScheduled(
                old.upcast(),
            )))
        }
        ("MeetingRescheduled", 1) => {
            let old: meeting::legacy::MeetingRescheduledV1 = decode_old(payload)?;
            Ok(DomainEvent::Meeting(meeting::Event::MeetingRescheduled(
                old.upcast(),
            )))
        }
        ("MeetingCancelled", 1) => {
            let old: meeting::legacy::MeetingCancelledV1 = decode_old(payload)?;
            Ok(DomainEvent::Meeting(meeting::Event::MeetingCancelled(
                old.upcast(),
            )))
        }
        _ => Err(UpcastError::NoPath),
    }
}

/// The type of every event a state has folded, in stream order (version v is entry v - 1): one
/// byte per event, an index into [`event_types`]. Corrections and retractions check
/// their target's type here. It was a `Vec<&'static str>`: 16 bytes per event, and after a
/// state's clone and one more event its capacity doubled, ~75 MB at 1,000,000 events.
///
/// Serialized as runs of (event type, count), so a meeting with hundreds of statements takes a
/// few runs; names are mapped back to the known event types (an unknown name is an error).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventTypes(Vec<u8>);

/// The index of an event type in [`event_types`].
fn event_type_code(name: &str) -> Option<u8> {
    event_types()
        .iter()
        .position(|(known, _)| *known == name)
        .map(|index| index as u8)
}

/// The event type of an index into [`event_types`].
fn event_type_name(code: u8) -> &'static str {
    event_types()[usize::from(code)].0
}

impl EventTypes {
    /// Appends the type of the next event.
    pub(crate) fn push(&mut self, name: &'static str) {
        crate::domain::common::push_exact(
            &mut self.0,
            event_type_code(name).expect("an event type of this crate"),
        );
    }

    /// Events folded.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no event was folded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The type of the event at `index` (version `index + 1`).
    pub fn get(&self, index: usize) -> Option<&'static str> {
        self.0.get(index).map(|code| event_type_name(*code))
    }

    /// The types in stream order.
    pub fn iter(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.iter().map(|code| event_type_name(*code))
    }
}

impl Serialize for EventTypes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut runs: Vec<(&str, u64)> = Vec::new();
        for name in self.iter() {
            match runs.last_mut() {
                Some((last, count)) if *last == name => *count += 1,
                _ => runs.push((name, 1)),
            }
        }
        runs.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for EventTypes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        /// Most events one serialized state may claim to have folded. Internal: no request
        /// reaches it (a stream holds far fewer events); it bounds decoding a damaged snapshot.
        const MAX_EVENTS: u64 = 1 << 32;
        let runs: Vec<(String, u64)> = Vec::deserialize(deserializer)?;
        let total: u64 = runs.iter().map(|(_, count)| *count).sum();
        if total > MAX_EVENTS {
            return Err(D::Error::custom(format!(
                "{total} events folded is over {MAX_EVENTS}"
            )));
        }
        let mut codes = Vec::with_capacity(total as usize);
        for (name, count) in runs {
            let Some(code) = event_type_code(&name) else {
                return Err(D::Error::custom(format!("unknown event type {name:?}")));
            };
            codes.extend(std::iter::repeat_n(code, count as usize));
        }
        Ok(EventTypes(codes))
    }
}

/// The state of any aggregate, so the ledger can fold a stream generically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AggregateState {
    /// A party's state.
    Party(party::State),
    /// An official's state.
    Official(official::State),
    /// A source's state.
    Source(source::State),
    /// A meeting's state.
    Meeting(meeting::State),
    /// A commitment's state.
    Commitment(commitment::State),
}

/// The runner and the read models keep one `Arc<AggregateState>` per entity (~180,000 of them
/// at 1,000,000 events), each as large as the largest variant: a meeting's state, since a
/// party's and a source's details are boxed and a meeting's and a commitment's rarely set
/// fields are a boxed group. 176 bytes plus the `Arc`'s 16 fill one 192-byte allocation (at
/// 264 bytes they took a 320-byte one): a field added to a state must keep within it.
#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<AggregateState>() <= 176);

impl AggregateState {
    /// The empty state of the aggregate a command targets (fold the stream's events into it).
    pub fn empty_for(command: &DomainCommand) -> AggregateState {
        match command {
            DomainCommand::Party(_) => AggregateState::Party(party::State::default()),
            DomainCommand::Official(_) => AggregateState::Official(official::State::default()),
            DomainCommand::Source(_) => AggregateState::Source(source::State::default()),
            DomainCommand::Meeting(_) => AggregateState::Meeting(meeting::State::default()),
            DomainCommand::Commitment(_) => AggregateState::Commitment(commitment::State::default()),
        }
    }

    /// The empty state of the aggregate an event belongs to.
    pub fn empty_for_event(event: &DomainEvent) -> AggregateState {
        match event {
            DomainEvent::Party(_) => AggregateState::Party(party::State::default()),
            DomainEvent::Official(_) => AggregateState::Official(official::State::default()),
            DomainEvent::Source(_) => AggregateState::Source(source::State::default()),
            DomainEvent::Meeting(_) => AggregateState::Meeting(meeting::State::default()),
            DomainEvent::Commitment(_) => AggregateState::Commitment(commitment::State::default()),
        }
    }

    /// Number of events folded (the stream version).
    pub fn version(&self) -> u64 {
        match self {
            AggregateState::Party(state) => state.version(),
            AggregateState::Official(state) => state.version(),
            AggregateState::Source(state) => state.version(),
            AggregateState::Meeting(state) => state.version(),
            AggregateState::Commitment(state) => state.version(),
        }
    }

    /// Whether the entity exists (has been created).
    pub fn exists(&self) -> bool {
        match self {
            AggregateState::Party(state) => state.exists(),
            AggregateState::Official(state) => state.exists(),
            AggregateState::Source(state) => state.exists(),
            AggregateState::Meeting(state) => state.exists(),
            AggregateState::Commitment(state) => state.exists(),
        }
    }
}

/// Decides a command against the state of its aggregate. A state of the wrong aggregate is a
/// caller bug and is reported as a rule rejection (`state.mismatch`), never a panic.
pub fn decide_command(
    state: &AggregateState,
    command: &DomainCommand,
) -> Result<Vec<DomainEvent>, Rejection> {
    match (state, command) {
        (AggregateState::Party(state), DomainCommand::Party(command)) => {
            Ok(wrap(party::decide(state, command)?, DomainEvent::Party))
        }
        (AggregateState::Official(state), DomainCommand::Official(command)) => {
            Ok(wrap(official::decide(state, command)?, DomainEvent::Official))
        }
        (AggregateState::Source(state), DomainCommand::Source(command)) => {
            Ok(wrap(source::decide(state, command)?, DomainEvent::Source))
        }
        (AggregateState::Meeting(state), DomainCommand::Meeting(command)) => {
            Ok(wrap(meeting::decide(state, command)?, DomainEvent::Meeting))
        }
        (AggregateState::Commitment(state), DomainCommand::Commitment(command)) => {
            Ok(wrap(commitment::decide(state, command)?, DomainEvent::Commitment))
        }
        _ => Err(Rejection::rule(
            "state.mismatch",
            "the state belongs to another aggregate than the command",
        )),
    }
}

fn wrap<E>(events: Vec<E>, into: fn(E) -> DomainEvent) -> Vec<DomainEvent> {
    events.into_iter().map(into).collect()
}

/// Folds an event into the state of its aggregate. An event of another aggregate leaves the
/// state unchanged (the ledger never folds foreign events into a stream).
pub fn evolve_state(state: AggregateState, event: &DomainEvent) -> AggregateState {
    match (state, event) {
        (AggregateState::Party(state), DomainEvent::Party(event)) => {
            AggregateState::Party(party::evolve(state, event))
        }
        (AggregateState::Official(state), DomainEvent::Official(event)) => {
            AggregateState::Official(official::evolve(state, event))
        }
        (AggregateState::Source(state), DomainEvent::Source(event)) => {
            AggregateState::Source(source::evolve(state, event))
        }
        (AggregateState::Meeting(state), DomainEvent::Meeting(event)) => {
            AggregateState::Meeting(meeting::evolve(state, event))
        }
        (AggregateState::Commitment(state), DomainEvent::Commitment(event)) => {
            AggregateState::Commitment(commitment::evolve(state, event))
        }
        (state, _) => state,
    }
}

#[cfg(test)]
mod event_types_tests {
    use super::EventTypes;

    #[test]
    fn event_types_are_one_byte_each_and_serialize_as_runs_of_names() {
        let mut types = EventTypes::default();
        for name in [
            "MeetingHeld",
            "StatementRecorded",
            "StatementRecorded",
            "MeetingCorrected",
        ] {
            types.push(name);
        }
        assert_eq!(types.len(), 4);
        assert_eq!(types.get(1), Some("StatementRecorded"));
        assert_eq!(types.get(4), None);
        assert_eq!(
            types.iter().collect::<Vec<_>>(),
            [
                "MeetingHeld",
                "StatementRecorded",
                "StatementRecorded",
                "MeetingCorrected"
            ]
        );
        // The bytes snapshots hold: the same runs of (name, count) as before the byte codes.
        let runs: Vec<(&str, u64)> = vec![
            ("MeetingHeld", 1),
            ("StatementRecorded", 2),
            ("MeetingCorrected", 1),
        ];
        let bytes = crate::encoding::encode(&types);
        assert_eq!(bytes, crate::encoding::encode(&runs));
        let back: EventTypes = crate::encoding::decode(&bytes).unwrap();
        assert_eq!(back, types);
        let unknown = crate::encoding::encode(&vec![("NoSuchEvent", 1u64)]);
        assert!(crate::encoding::decode::<EventTypes>(&unknown).is_err());
    }
}
