//! Every conversion between proto messages and domain or log values, in one place.
//!
//! - Outbound (never fails): log envelopes to [`pb::EventEnvelope`] (with the payload decoded
//!   into the typed [`pb::Event`]), every domain event to its message, common value types.
//! - Inbound (validates): filters, directions, timestamps, ids, common value types and every
//!   command request to a [`DomainCommand`]. Malformed input is collected into
//!   [`FieldViolation`]s named by their proto field path (`details.participants[1].party`), all at
//!   once, and becomes INVALID_ARGUMENT in `status`. Domain rules are left to the domain.
//!
//! Timestamps: the domain stores whole microseconds; inbound nanos are truncated towards the
//! past, and seconds must be within the protobuf Timestamp range (years 1 to 9999).

use prost_types::Timestamp as PbTimestamp;
use uuid::Uuid;

use super::pb;
use crate::domain::commitment::{
    self, AssessmentStage, CommitmentDetails, CommitmentKind, CooperationKind, PartyScore, Specificity,
};
use crate::domain::common::{
    CommitmentId, MeetingId, OfficialId, Provenance, SourceCitation, SourceId, TimeWindow,
};
use crate::domain::meeting::{
    self, Location, MeetingDetails, MeetingFormat, Participant, ParticipantRole, Speaker,
};
use crate::domain::official::{self, OfficeTerm};
use crate::domain::party::{self, PartyDetails, PartyKind};
use crate::domain::source::{self, SourceDetails};
use crate::domain::{
    decide_command, decode_event, AggregateState, DomainCommand, DomainEvent, FieldViolation, Rejection,
};
use crate::ledger::{CommandEnvelope, CommandOutcome};
use crate::log::{Direction, EventFilter, RecordedEvent};
use crate::time::{OccurredAt, Precision, Timestamp};

/// Smallest seconds value of a protobuf Timestamp (0001-01-01T00:00:00Z).
const MIN_TIMESTAMP_SECONDS: i64 = -62_135_596_800;
/// Largest seconds value of a protobuf Timestamp (9999-12-31T23:59:59Z).
const MAX_TIMESTAMP_SECONDS: i64 = 253_402_300_799;

// ---------------------------------------------------------------------------------------------
// Outbound: log and domain values to proto messages.
// ---------------------------------------------------------------------------------------------

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
    }
}

/// A copy of `envelope` without the typed event (`omit_typed_body`): copies every other field
/// and never touches the typed body, which is the costly part of a deep clone.
pub fn envelope_without_typed(envelope: &pb::EventEnvelope) -> pb::EventEnvelope {
    // Every field is listed (no `..`), so a field added to EventEnvelope fails to compile here
    // instead of being silently dropped.
    pb::EventEnvelope {
        position: envelope.position,
        stream_id: envelope.stream_id.clone(),
        stream_version: envelope.stream_version,
        event_id: envelope.event_id.clone(),
        event_type: envelope.event_type.clone(),
        schema_version: envelope.schema_version,
        command_id: envelope.command_id.clone(),
        occurred_at: envelope.occurred_at,
        recorded_at: envelope.recorded_at,
        recorded_by: envelope.recorded_by.clone(),
        correlation_id: envelope.correlation_id.clone(),
        causation_id: envelope.causation_id.clone(),
        tags: envelope.tags.clone(),
        payload: envelope.payload.clone(),
        event: None,
        leaf_hash: envelope.leaf_hash.clone(),
        chain_hash: envelope.chain_hash.clone(),
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
    use pb::event::Event as E;
    let typed = match event {
        DomainEvent::Party(event) => match event {
            party::Event::PartyRegistered(e) => E::PartyRegistered(pb::PartyRegistered {
                code: e.code.clone(),
                details: Some(party_details_to_pb(&e.details)),
                provenance: Some(provenance_to_pb(&e.provenance)),
            }),
            party::Event::PartyCorrected(e) => E::PartyCorrected(pb::PartyCorrected {
                code: e.code.clone(),
                corrects_version: e.corrects_version,
                reason: e.reason.clone(),
                details: Some(party_details_to_pb(&e.details)),
                provenance: Some(provenance_to_pb(&e.provenance)),
            }),
        },
        DomainEvent::Source(event) => match event {
            source::Event::SourceRegistered(e) => E::SourceRegistered(pb::SourceRegistered {
                source_id: e.source_id.to_string(),
                details: Some(source_details_to_pb(&e.details)),
            }),
            source::Event::SourceCorrected(e) => E::SourceCorrected(pb::SourceCorrected {
                source_id: e.source_id.to_string(),
                corrects_version: e.corrects_version,
                reason: e.reason.clone(),
                details: Some(source_details_to_pb(&e.details)),
            }),
        },
        DomainEvent::Official(event) => match event {
            official::Event::OfficialRegistered(e) => E::OfficialRegistered(pb::OfficialRegistered {
                official_id: e.official_id.to_string(),
                name: e.name.clone(),
                provenance: Some(provenance_to_pb(&e.provenance)),
            }),
            official::Event::OfficialAppointed(e) => E::OfficialAppointed(pb::OfficialAppointed {
                official_id: e.official_id.to_string(),
                office: Some(office_to_pb(&e.office)),
                provenance: Some(provenance_to_pb(&e.provenance)),
            }),
            official::Event::TenureEnded(e) => E::TenureEnded(pb::TenureEnded {
                official_id: e.official_id.to_string(),
                tenure_version: e.tenure_version,
                ended_at: Some(occurred_at_to_pb(e.ended_at)),
                reason: e.reason.clone(),
                provenance: Some(provenance_to_pb(&e.provenance)),
            }),
            official::Event::OfficialNameCorrected(e) => {
                E::OfficialNameCorrected(pb::OfficialNameCorrected {
                    official_id: e.official_id.to_string(),
                    corrects_version: e.corrects_version,
                    reason: e.reason.clone(),
                    name: e.name.clone(),
                    provenance: Some(provenance_to_pb(&e.provenance)),
                })
            }
            official::Event::OfficialEventRetracted(e) => {
                E::OfficialEventRetracted(pb::OfficialEventRetracted {
                    official_id: e.official_id.to_string(),
                    retracts_version: e.retracts_version,
                    reason: e.reason.clone(),
                    provenance: Some(provenance_to_pb(&e.provenance)),
                })
            }
        },
        DomainEvent::Meeting(event) => match event {
            meeting::Event::MeetingProposed(e) => E::MeetingProposed(pb::MeetingProposed {
                meeting_id: e.meeting_id.to_string(),
                proposed_by: e.proposed_by.clone(),
                details: Some(meeting_details_to_pb(&e.details)),
                proposed_window: e.proposed_window.as_ref().map(window_to_pb),
                provenance: Some(provenance_to_pb(&e.provenance)),
            }),
            meeting::Event::MeetingScheduled(e) => E::MeetingScheduled(pb::MeetingScheduled {
                meeting_id: e.meeting_id.to_string(),
                details: Some(meeting_details_to_pb(&e.details)),
                window: Some(window_to_pb(&e.window)),
                provenance: Some(provenance_to_pb(&e.provenance)),
            }),
            meeting::Event::MeetingRescheduled(e) => E::MeetingRescheduled(pb::MeetingRescheduled {
                meeting_id: e.meeting_id.to_string(),
                window: Some(window_to_pb(&e.window)),
                reason: e.reason.clone(),
                provenance: Some(provenance_to_pb(&e.provenance)),
            }),
            meeting::Event::MeetingCancelled(e) => E::MeetingCancelled(pb::MeetingCancelled {
                meeting_id: e.meeting_id.to_string(),
                reason: e.reason.clone(),
                provenance: Some(provenance_to_pb(&e.provenance)),
            }),
            meeting::Event::MeetingHeld(e) => E::MeetingHeld(pb::MeetingHeld {
                meeting_id: e.meeting_id.to_string(),
                details: Some(meeting_details_to_pb(&e.details)),
                ended_at: e.ended_at.map(timestamp_to_pb),
                provenance: Some(provenance_to_pb(&e.provenance)),
            }),
            meeting::Event::StatementRecorded(e) => E::StatementRecorded(pb::StatementRecorded {
                meeting_id: e.meeting_id.to_string(),
                speaker: Some(speaker_to_pb(&e.speaker)),
                text: e.text.clone(),
                verbatim: e.verbatim,
                provenance: Some(provenance_to_pb(&e.provenance)),
            }),
            meeting::Event::MeetingCorrected(e) => E::MeetingCorrected(pb::MeetingCorrected {
                meeting_id: e.meeting_id.to_string(),
                corrects_version: e.corrects_version,
                reason: e.reason.clone(),
                details: Some(meeting_details_to_pb(&e.details)),
                provenance: Some(provenance_to_pb(&e.provenance)),
            }),
            meeting::Event::MeetingEventRetracted(e) => E::MeetingEventRetracted(pb::MeetingEventRetracted {
                meeting_id: e.meeting_id.to_string(),
                retracts_version: e.retracts_version,
                reason: e.reason.clone(),
                provenance: Some(provenance_to_pb(&e.provenance)),
            }),
        },
        DomainEvent::Commitment(event) => match event {
            commitment::Event::CommitmentRecorded(e) => E::CommitmentRecorded(pb::CommitmentRecorded {
                commitment_id: e.commitment_id.to_string(),
                details: Some(commitment_details_to_pb(&e.details)),
                provenance: Some(provenance_to_pb(&e.provenance)),
            }),
            commitment::Event::CommitmentReaffirmed(e) => E::CommitmentReaffirmed(pb::CommitmentReaffirmed {
                commitment_id: e.commitment_id.to_string(),
                reaffirmed_by: e.reaffirmed_by.clone(),
                voiced_by: ids_to_pb(&e.voiced_by),
                at_meeting: e.at_meeting.map(|id| id.to_string()),
                text: e.text.clone(),
                provenance: Some(provenance_to_pb(&e.provenance)),
            }),
            commitment::Event::CommitmentProgressReported(e) => {
                E::CommitmentProgressReported(pb::CommitmentProgressReported {
                    commitment_id: e.commitment_id.to_string(),
                    summary: e.summary.clone(),
                    provenance: Some(provenance_to_pb(&e.provenance)),
                })
            }
            commitment::Event::CommitmentFulfilled(e) => E::CommitmentFulfilled(pb::CommitmentFulfilled {
                commitment_id: e.commitment_id.to_string(),
                summary: e.summary.clone(),
                provenance: Some(provenance_to_pb(&e.provenance)),
            }),
            commitment::Event::CommitmentLapsed(e) => E::CommitmentLapsed(pb::CommitmentLapsed {
                commitment_id: e.commitment_id.to_string(),
                reason: e.reason.clone(),
                provenance: Some(provenance_to_pb(&e.provenance)),
            }),
            commitment::Event::CommitmentWithdrawn(e) => E::CommitmentWithdrawn(pb::CommitmentWithdrawn {
                commitment_id: e.commitment_id.to_string(),
                reason: e.reason.clone(),
                provenance: Some(provenance_to_pb(&e.provenance)),
            }),
            commitment::Event::CommitmentSuperseded(e) => E::CommitmentSuperseded(pb::CommitmentSuperseded {
                commitment_id: e.commitment_id.to_string(),
                superseded_by: e.superseded_by.to_string(),
                reason: e.reason.clone(),
                provenance: Some(provenance_to_pb(&e.provenance)),
            }),
            commitment::Event::ComplianceAssessed(e) => E::ComplianceAssessed(pb::ComplianceAssessed {
                commitment_id: e.commitment_id.to_string(),
                stage: assessment_stage_to_pb(e.stage) as i32,
                assessor: e.assessor.clone(),
                rationale: e.rationale.clone(),
                scores: e
                    .scores
                    .iter()
                    .map(|score| pb::PartyScore {
                        party: score.party.clone(),
                        score: i32::from(score.score),
                    })
                    .collect(),
                provenance: Some(provenance_to_pb(&e.provenance)),
            }),
            commitment::Event::CommitmentCorrected(e) => E::CommitmentCorrected(pb::CommitmentCorrected {
                commitment_id: e.commitment_id.to_string(),
                corrects_version: e.corrects_version,
                reason: e.reason.clone(),
                details: Some(commitment_details_to_pb(&e.details)),
                provenance: Some(provenance_to_pb(&e.provenance)),
            }),
            commitment::Event::CommitmentEventRetracted(e) => {
                E::CommitmentEventRetracted(pb::CommitmentEventRetracted {
                    commitment_id: e.commitment_id.to_string(),
                    retracts_version: e.retracts_version,
                    reason: e.reason.clone(),
                    provenance: Some(provenance_to_pb(&e.provenance)),
                })
            }
        },
    };
    pb::Event { event: Some(typed) }
}

/// A domain instant as a protobuf Timestamp.
pub fn timestamp_to_pb(timestamp: Timestamp) -> PbTimestamp {
    let micros = timestamp.unix_micros();
    PbTimestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1_000) as i32,
    }
}

/// A precision as its proto enum.
pub fn precision_to_pb(precision: Precision) -> pb::Precision {
    match precision {
        Precision::Year => pb::Precision::Year,
        Precision::Month => pb::Precision::Month,
        Precision::Day => pb::Precision::Day,
        Precision::Hour => pb::Precision::Hour,
        Precision::Minute => pb::Precision::Minute,
        Precision::Second => pb::Precision::Second,
        Precision::Exact => pb::Precision::Exact,
    }
}

/// Valid time as its message.
pub fn occurred_at_to_pb(occurred_at: OccurredAt) -> pb::OccurredAt {
    pb::OccurredAt {
        at: Some(timestamp_to_pb(occurred_at.at())),
        precision: precision_to_pb(occurred_at.precision()) as i32,
    }
}

fn provenance_to_pb(provenance: &Provenance) -> pb::Provenance {
    pb::Provenance {
        occurred_at: Some(occurred_at_to_pb(provenance.occurred_at)),
        sources: provenance
            .sources
            .iter()
            .map(|citation| pb::SourceCitation {
                source_id: citation.source_id.to_string(),
                quote: citation.quote.clone(),
            })
            .collect(),
    }
}

fn window_to_pb(window: &TimeWindow) -> pb::TimeWindow {
    pb::TimeWindow {
        start: Some(occurred_at_to_pb(window.start)),
        end: window.end.map(timestamp_to_pb),
    }
}

fn ids_to_pb<T: std::fmt::Display>(ids: &[T]) -> Vec<String> {
    ids.iter().map(ToString::to_string).collect()
}

fn party_details_to_pb(details: &PartyDetails) -> pb::PartyDetails {
    pb::PartyDetails {
        kind: match details.kind {
            PartyKind::State => pb::PartyKind::State,
            PartyKind::Government => pb::PartyKind::Government,
            PartyKind::InternationalOrganisation => pb::PartyKind::InternationalOrganisation,
        } as i32,
        name: details.name.clone(),
        iso_alpha2: details.iso_alpha2.clone(),
        iso_alpha3: details.iso_alpha3.clone(),
        wikidata_qid: details.wikidata_qid.clone(),
        cameo_code: details.cameo_code.clone(),
    }
}

fn source_details_to_pb(details: &SourceDetails) -> pb::SourceDetails {
    pb::SourceDetails {
        url: details.url.clone(),
        publisher: details.publisher.clone(),
        title: details.title.clone(),
        published_at: details.published_at.map(occurred_at_to_pb),
        retrieved_at: Some(timestamp_to_pb(details.retrieved_at)),
        language: details.language.clone(),
    }
}

fn office_to_pb(office: &OfficeTerm) -> pb::OfficeTerm {
    pb::OfficeTerm {
        post: office.post.clone(),
        party: office.party.clone(),
        accredited_to: office.accredited_to.clone(),
        from: office.from.map(occurred_at_to_pb),
        to: office.to.map(occurred_at_to_pb),
    }
}

fn meeting_details_to_pb(details: &MeetingDetails) -> pb::MeetingDetails {
    pb::MeetingDetails {
        format: match details.format {
            MeetingFormat::Bilateral => pb::MeetingFormat::Bilateral,
            MeetingFormat::Multilateral => pb::MeetingFormat::Multilateral,
            MeetingFormat::Phone => pb::MeetingFormat::Phone,
            MeetingFormat::Virtual => pb::MeetingFormat::Virtual,
        } as i32,
        participants: details
            .participants
            .iter()
            .map(|participant| pb::Participant {
                party: participant.party.clone(),
                official_id: participant.official_id.map(|id| id.to_string()),
                role: match participant.role {
                    None => pb::ParticipantRole::Unspecified,
                    Some(ParticipantRole::Host) => pb::ParticipantRole::Host,
                    Some(ParticipantRole::Visitor) => pb::ParticipantRole::Visitor,
                    Some(ParticipantRole::ThirdParty) => pb::ParticipantRole::ThirdParty,
                    Some(ParticipantRole::Mediator) => pb::ParticipantRole::Mediator,
                } as i32,
            })
            .collect(),
        location: details.location.as_ref().map(|location| pb::Location {
            place: location.place.clone(),
            country: location.country.clone(),
        }),
        topics: details.topics.clone(),
        summary: details.summary.clone(),
        negotiation: details.negotiation,
    }
}

fn speaker_to_pb(speaker: &Speaker) -> pb::Speaker {
    pb::Speaker {
        party: speaker.party.clone(),
        official_id: speaker.official_id.map(|id| id.to_string()),
    }
}

fn commitment_details_to_pb(details: &CommitmentDetails) -> pb::CommitmentDetails {
    pb::CommitmentDetails {
        kind: match details.kind {
            CommitmentKind::New => pb::CommitmentKind::New,
            CommitmentKind::Reaffirmation => pb::CommitmentKind::Reaffirmation,
        } as i32,
        committing_parties: details.committing_parties.clone(),
        voiced_by: ids_to_pb(&details.voiced_by),
        counterparties: details.counterparties.clone(),
        text: details.text.clone(),
        verbatim: details.verbatim,
        topics: details.topics.clone(),
        specificity: match details.specificity {
            Specificity::Aspirational => pb::Specificity::Aspirational,
            Specificity::Specific => pb::Specificity::Specific,
            Specificity::Measurable => pb::Specificity::Measurable,
        } as i32,
        cooperation: match details.cooperation {
            CooperationKind::Unspecified => pb::CooperationKind::Unspecified,
            CooperationKind::Material => pb::CooperationKind::Material,
            CooperationKind::Diplomatic => pb::CooperationKind::Diplomatic,
        } as i32,
        due_by: details.due_by.map(occurred_at_to_pb),
        made_at_meeting: details.made_at_meeting.map(|id| id.to_string()),
    }
}

fn assessment_stage_to_pb(stage: AssessmentStage) -> pb::AssessmentStage {
    match stage {
        AssessmentStage::Interim => pb::AssessmentStage::Interim,
        AssessmentStage::Final => pb::AssessmentStage::Final,
    }
}

// ---------------------------------------------------------------------------------------------
// Inbound: proto messages to domain and log values, with validation.
// ---------------------------------------------------------------------------------------------

/// Collects every malformed field of a request (by proto field path), then fails with all.
#[derive(Debug, Default)]
pub struct Violations {
    violations: Vec<FieldViolation>,
}

impl Violations {
    /// No violations yet.
    pub fn new() -> Violations {
        Violations::default()
    }

    /// Records that `field` is malformed.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.violations.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
    }

    /// `Ok(value)` if nothing was recorded, else every violation.
    pub fn finish<T>(self, value: T) -> Result<T, Vec<FieldViolation>> {
        if self.violations.is_empty() {
            Ok(value)
        } else {
            Err(self.violations)
        }
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.violations.is_empty()
    }

    /// Adds the violations of a nested conversion, prefixed by `prefix` (`commands[3].`).
    pub fn extend_prefixed(&mut self, prefix: &str, violations: Vec<FieldViolation>) {
        for violation in violations {
            self.add(format!("{prefix}{}", violation.field), violation.description);
        }
    }
}

/// A direction (UNSPECIFIED is forwards).
pub fn direction_from_pb(value: i32, field: &str, violations: &mut Violations) -> Direction {
    match pb::Direction::try_from(value) {
        Ok(pb::Direction::Unspecified | pb::Direction::Forwards) => Direction::Forwards,
        Ok(pb::Direction::Backwards) => Direction::Backwards,
        Err(_) => {
            violations.add(field, format!("unknown direction {value}"));
            Direction::Forwards
        }
    }
}

/// A filter (absent matches everything). Entries must be non-empty.
pub fn filter_from_pb(
    filter: Option<pb::EventFilter>,
    field: &str,
    violations: &mut Violations,
) -> EventFilter {
    let Some(filter) = filter else {
        return EventFilter::default();
    };
    let lists = [
        ("event_types", &filter.event_types),
        ("stream_prefixes", &filter.stream_prefixes),
        ("tags", &filter.tags),
    ];
    for (name, list) in lists {
        if list.len() > MAX_FILTER_ENTRIES {
            violations.add(
                format!("{field}.{name}"),
                format!("has {} entries, the limit is {MAX_FILTER_ENTRIES}", list.len()),
            );
        }
        for (index, entry) in list.iter().enumerate() {
            if entry.is_empty() {
                violations.add(format!("{field}.{name}[{index}]"), "must not be empty");
            }
        }
    }
    EventFilter {
        event_types: filter.event_types,
        stream_prefixes: filter.stream_prefixes,
        tags: filter.tags,
    }
}

/// Most entries in each list of an event filter.
pub const MAX_FILTER_ENTRIES: usize = 256;

/// A protobuf Timestamp as a domain instant (nanos truncated to microseconds).
pub fn timestamp_from_pb(timestamp: &PbTimestamp, field: &str, violations: &mut Violations) -> Timestamp {
    if !(0..1_000_000_000).contains(&timestamp.nanos) {
        violations.add(field, "nanos must be within 0..=999999999");
        return Timestamp::EPOCH;
    }
    if !(MIN_TIMESTAMP_SECONDS..=MAX_TIMESTAMP_SECONDS).contains(&timestamp.seconds) {
        violations.add(field, "must be within the years 1 to 9999");
        return Timestamp::EPOCH;
    }
    Timestamp::from_unix_micros(timestamp.seconds * 1_000_000 + i64::from(timestamp.nanos / 1_000))
}

/// A required timestamp.
pub fn required_timestamp(
    timestamp: Option<&PbTimestamp>,
    field: &str,
    violations: &mut Violations,
) -> Timestamp {
    match timestamp {
        Some(timestamp) => timestamp_from_pb(timestamp, field, violations),
        None => {
            violations.add(field, "is required");
            Timestamp::EPOCH
        }
    }
}

/// An optional timestamp.
pub fn optional_timestamp(
    timestamp: Option<&PbTimestamp>,
    field: &str,
    violations: &mut Violations,
) -> Option<Timestamp> {
    timestamp.map(|timestamp| timestamp_from_pb(timestamp, field, violations))
}

/// A precision (UNSPECIFIED is rejected).
pub fn precision_from_pb(value: i32, field: &str, violations: &mut Violations) -> Precision {
    match pb::Precision::try_from(value) {
        Ok(pb::Precision::Year) => Precision::Year,
        Ok(pb::Precision::Month) => Precision::Month,
        Ok(pb::Precision::Day) => Precision::Day,
        Ok(pb::Precision::Hour) => Precision::Hour,
        Ok(pb::Precision::Minute) => Precision::Minute,
        Ok(pb::Precision::Second) => Precision::Second,
        Ok(pb::Precision::Exact) => Precision::Exact,
        Ok(pb::Precision::Unspecified) => {
            violations.add(field, "is required (YEAR to EXACT)");
            Precision::Exact
        }
        Err(_) => {
            violations.add(field, format!("unknown precision {value}"));
            Precision::Exact
        }
    }
}

/// A valid time.
pub fn occurred_at_from_pb(value: &pb::OccurredAt, field: &str, violations: &mut Violations) -> OccurredAt {
    let at = required_timestamp(value.at.as_ref(), &format!("{field}.at"), violations);
    let precision = precision_from_pb(value.precision, &format!("{field}.precision"), violations);
    OccurredAt::new(at, precision)
}

/// A required valid time.
pub fn required_occurred_at(
    value: Option<&pb::OccurredAt>,
    field: &str,
    violations: &mut Violations,
) -> OccurredAt {
    match value {
        Some(value) => occurred_at_from_pb(value, field, violations),
        None => {
            violations.add(field, "is required");
            OccurredAt::new(Timestamp::EPOCH, Precision::Exact)
        }
    }
}

/// An optional valid time.
pub fn optional_occurred_at(
    value: Option<&pb::OccurredAt>,
    field: &str,
    violations: &mut Violations,
) -> Option<OccurredAt> {
    value.map(|value| occurred_at_from_pb(value, field, violations))
}

/// A required UUID in canonical text form.
pub fn uuid_from_pb(value: &str, field: &str, violations: &mut Violations) -> Uuid {
    if value.is_empty() {
        violations.add(field, "is required (a UUID)");
        return Uuid::nil();
    }
    match Uuid::try_parse(value) {
        Ok(uuid) => uuid,
        Err(_) => {
            violations.add(
                field,
                "must be a UUID such as 0190c1d2-3e4f-7a5b-8c6d-7e8f90a1b2c3",
            );
            Uuid::nil()
        }
    }
}

/// An optional UUID (absent or empty is `None`).
pub fn optional_uuid(value: Option<&str>, field: &str, violations: &mut Violations) -> Option<Uuid> {
    match value {
        None | Some("") => None,
        Some(value) => Some(uuid_from_pb(value, field, violations)),
    }
}

// ---------------------------------------------------------------------------------------------
// Inbound: command requests.
// ---------------------------------------------------------------------------------------------

/// A command request that converts to what the ledger records, with every malformed field
/// reported (by proto field path).
pub trait CommandRequest {
    /// The command envelope, sent by `recorded_by`.
    fn into_command(self, recorded_by: &str) -> Result<CommandEnvelope, Vec<FieldViolation>>;
}

/// The fields every command request carries in its `header`, validated.
struct Header {
    command_id: Uuid,
    expected_version: Option<u64>,
    correlation_id: Option<Uuid>,
    causation_id: Option<Uuid>,
}

impl Header {
    /// Reads `header` (absent reads as empty, so each missing field is named). With
    /// `provenance` the valid time and citations are read too; without, setting either is a
    /// violation (source commands take neither).
    fn read(
        header: Option<pb::CommandHeader>,
        provenance: bool,
        violations: &mut Violations,
    ) -> (Header, Option<Provenance>) {
        let header = header.unwrap_or_default();
        let read = Header {
            command_id: uuid_from_pb(&header.command_id, "header.command_id", violations),
            expected_version: header.expected_version,
            correlation_id: optional_uuid(
                header.correlation_id.as_deref(),
                "header.correlation_id",
                violations,
            ),
            causation_id: optional_uuid(header.causation_id.as_deref(), "header.causation_id", violations),
        };
        if provenance {
            let provenance = provenance_from_pb(header.occurred_at.as_ref(), &header.sources, violations);
            return (read, Some(provenance));
        }
        if header.occurred_at.is_some() {
            violations.add(
                "header.occurred_at",
                "a source command takes no valid time (its own is published_at)",
            );
        }
        if !header.sources.is_empty() {
            violations.add("header.sources", "a source command cites no sources");
        }
        (read, None)
    }

    fn envelope(self, command: DomainCommand, recorded_by: &str) -> CommandEnvelope {
        CommandEnvelope {
            command_id: self.command_id,
            expected_version: self.expected_version,
            command,
            recorded_by: recorded_by.to_owned(),
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
        }
    }
}

/// Maps a domain field path to the request's proto path: the domain nests valid time and
/// citations under `provenance`, requests carry them in the `header`.
pub fn proto_field_path(domain_field: &str) -> String {
    match domain_field.strip_prefix("provenance.") {
        Some(field) => format!("header.{field}"),
        None => domain_field.to_owned(),
    }
}

/// The entity a command is about, as the responses name it: a party code or a UUID.
pub fn entity_id(command: &DomainCommand) -> String {
    match command {
        DomainCommand::Party(command) => command.code().to_owned(),
        DomainCommand::Official(command) => command.official_id().to_string(),
        DomainCommand::Source(command) => command.source_id().to_string(),
        DomainCommand::Meeting(command) => command.meeting_id().to_string(),
        DomainCommand::Commitment(command) => command.commitment_id().to_string(),
    }
}

/// What a recorded command did, as every command response carries it.
pub fn command_result_to_pb(outcome: &CommandOutcome) -> pb::CommandResult {
    pb::CommandResult {
        stream_id: outcome.stream_id().to_owned(),
        stream_version: outcome.stream_version(),
        positions: outcome.positions().to_vec(),
        recorded_at: outcome.recorded_at().map(timestamp_to_pb),
        event_ids: ids_to_pb(outcome.event_ids()),
    }
}

/// The commands of a batch, each converted by `convert` (the command table's dispatch);
/// violations are prefixed `commands[i].`.
pub fn batch_from_pb(
    request: pb::SubmitBatchRequest,
    convert: impl Fn(pb::batch_command::Command) -> Result<CommandEnvelope, Vec<FieldViolation>>,
) -> Result<Vec<CommandEnvelope>, Vec<FieldViolation>> {
    let mut violations = Violations::new();
    if request.commands.is_empty() {
        violations.add("commands", "needs at least one command");
    }
    let mut envelopes = Vec::with_capacity(request.commands.len());
    for (index, command) in request.commands.into_iter().enumerate() {
        let Some(command) = command.command else {
            violations.add(format!("commands[{index}]"), "no command set");
            continue;
        };
        let converted = convert(command);
        match converted {
            Ok(envelope) => {
                // The domain's field checks need no state: run them now so that a malformed
                // command is reported with its index.
                let empty = AggregateState::empty_for(&envelope.command);
                if let Err(Rejection::Invalid(domain)) = decide_command(&empty, &envelope.command) {
                    for violation in domain {
                        violations.add(
                            format!("commands[{index}].{}", proto_field_path(&violation.field)),
                            violation.description,
                        );
                    }
                }
                envelopes.push(envelope);
            }
            Err(nested) => violations.extend_prefixed(&format!("commands[{index}]."), nested),
        }
    }
    violations.finish(envelopes)
}

fn provenance_from_pb(
    occurred_at: Option<&pb::OccurredAt>,
    sources: &[pb::SourceCitation],
    violations: &mut Violations,
) -> Provenance {
    Provenance {
        occurred_at: required_occurred_at(occurred_at, "header.occurred_at", violations),
        sources: sources
            .iter()
            .enumerate()
            .map(|(index, citation)| SourceCitation {
                source_id: SourceId::from_uuid(uuid_from_pb(
                    &citation.source_id,
                    &format!("header.sources[{index}].source_id"),
                    violations,
                )),
                quote: citation.quote.clone(),
            })
            .collect(),
    }
}

/// The id of an entity a command creates: the given UUID, or the command id when empty (so a
/// retry creates the same entity).
fn new_entity_uuid(value: &str, command_id: Uuid, field: &str, violations: &mut Violations) -> Uuid {
    if value.is_empty() {
        command_id
    } else {
        uuid_from_pb(value, field, violations)
    }
}

fn uuids<T>(values: &[String], field: &str, violations: &mut Violations, wrap: fn(Uuid) -> T) -> Vec<T> {
    values
        .iter()
        .enumerate()
        .map(|(index, value)| wrap(uuid_from_pb(value, &format!("{field}[{index}]"), violations)))
        .collect()
}

fn required<'a, T>(value: Option<&'a T>, field: &str, violations: &mut Violations) -> Option<&'a T> {
    if value.is_none() {
        violations.add(field, "is required");
    }
    value
}

fn party_details_from_pb(
    details: Option<&pb::PartyDetails>,
    field: &str,
    violations: &mut Violations,
) -> PartyDetails {
    let default = pb::PartyDetails::default();
    let details = required(details, field, violations).unwrap_or(&default);
    let kind = match pb::PartyKind::try_from(details.kind) {
        Ok(pb::PartyKind::State) => PartyKind::State,
        Ok(pb::PartyKind::Government) => PartyKind::Government,
        Ok(pb::PartyKind::InternationalOrganisation) => PartyKind::InternationalOrganisation,
        Ok(pb::PartyKind::Unspecified) | Err(_) => {
            violations.add(
                format!("{field}.kind"),
                "is required (STATE, GOVERNMENT or INTERNATIONAL_ORGANISATION)",
            );
            PartyKind::State
        }
    };
    PartyDetails {
        kind,
        name: details.name.clone(),
        iso_alpha2: details.iso_alpha2.clone(),
        iso_alpha3: details.iso_alpha3.clone(),
        wikidata_qid: details.wikidata_qid.clone(),
        cameo_code: details.cameo_code.clone(),
    }
}

fn source_details_from_pb(
    details: Option<&pb::SourceDetails>,
    field: &str,
    violations: &mut Violations,
) -> SourceDetails {
    let default = pb::SourceDetails::default();
    let details = required(details, field, violations).unwrap_or(&default);
    SourceDetails {
        url: details.url.clone(),
        publisher: details.publisher.clone(),
        title: details.title.clone(),
        published_at: optional_occurred_at(
            details.published_at.as_ref(),
            &format!("{field}.published_at"),
            violations,
        ),
        retrieved_at: required_timestamp(
            details.retrieved_at.as_ref(),
            &format!("{field}.retrieved_at"),
            violations,
        ),
        language: details.language.clone(),
    }
}

fn office_from_pb(office: Option<&pb::OfficeTerm>, field: &str, violations: &mut Violations) -> OfficeTerm {
    let default = pb::OfficeTerm::default();
    let office = required(office, field, violations).unwrap_or(&default);
    OfficeTerm {
        post: office.post.clone(),
        party: office.party.clone(),
        accredited_to: office.accredited_to.clone(),
        from: optional_occurred_at(office.from.as_ref(), &format!("{field}.from"), violations),
        to: optional_occurred_at(office.to.as_ref(), &format!("{field}.to"), violations),
    }
}

fn window_from_pb(window: &pb::TimeWindow, field: &str, violations: &mut Violations) -> TimeWindow {
    TimeWindow {
        start: required_occurred_at(window.start.as_ref(), &format!("{field}.start"), violations),
        end: optional_timestamp(window.end.as_ref(), &format!("{field}.end"), violations),
    }
}

fn required_window(window: Option<&pb::TimeWindow>, field: &str, violations: &mut Violations) -> TimeWindow {
    let default = pb::TimeWindow::default();
    window_from_pb(
        required(window, field, violations).unwrap_or(&default),
        field,
        violations,
    )
}

fn meeting_details_from_pb(
    details: Option<&pb::MeetingDetails>,
    field: &str,
    violations: &mut Violations,
) -> MeetingDetails {
    let default = pb::MeetingDetails::default();
    let details = required(details, field, violations).unwrap_or(&default);
    let format = match pb::MeetingFormat::try_from(details.format) {
        Ok(pb::MeetingFormat::Bilateral) => MeetingFormat::Bilateral,
        Ok(pb::MeetingFormat::Multilateral) => MeetingFormat::Multilateral,
        Ok(pb::MeetingFormat::Phone) => MeetingFormat::Phone,
        Ok(pb::MeetingFormat::Virtual) => MeetingFormat::Virtual,
        Ok(pb::MeetingFormat::Unspecified) | Err(_) => {
            violations.add(
                format!("{field}.format"),
                "is required (BILATERAL, MULTILATERAL, PHONE or VIRTUAL)",
            );
            MeetingFormat::Bilateral
        }
    };
    let participants = details
        .participants
        .iter()
        .enumerate()
        .map(|(index, participant)| {
            let path = format!("{field}.participants[{index}]");
            let role = match pb::ParticipantRole::try_from(participant.role) {
                Ok(pb::ParticipantRole::Unspecified) => None,
                Ok(pb::ParticipantRole::Host) => Some(ParticipantRole::Host),
                Ok(pb::ParticipantRole::Visitor) => Some(ParticipantRole::Visitor),
                Ok(pb::ParticipantRole::ThirdParty) => Some(ParticipantRole::ThirdParty),
                Ok(pb::ParticipantRole::Mediator) => Some(ParticipantRole::Mediator),
                Err(_) => {
                    violations.add(
                        format!("{path}.role"),
                        format!("unknown role {}", participant.role),
                    );
                    None
                }
            };
            Participant {
                party: participant.party.clone(),
                official_id: optional_uuid(
                    participant.official_id.as_deref(),
                    &format!("{path}.official_id"),
                    violations,
                )
                .map(OfficialId::from_uuid),
                role,
            }
        })
        .collect();
    MeetingDetails {
        format,
        participants,
        location: details.location.as_ref().map(|location| Location {
            place: location.place.clone(),
            country: location.country.clone(),
        }),
        topics: details.topics.clone(),
        summary: details.summary.clone(),
        negotiation: details.negotiation,
    }
}

fn speaker_from_pb(speaker: Option<&pb::Speaker>, field: &str, violations: &mut Violations) -> Speaker {
    let default = pb::Speaker::default();
    let speaker = required(speaker, field, violations).unwrap_or(&default);
    Speaker {
        party: speaker.party.clone(),
        official_id: optional_uuid(
            speaker.official_id.as_deref(),
            &format!("{field}.official_id"),
            violations,
        )
        .map(OfficialId::from_uuid),
    }
}

fn commitment_details_from_pb(
    details: Option<&pb::CommitmentDetails>,
    field: &str,
    violations: &mut Violations,
) -> CommitmentDetails {
    let default = pb::CommitmentDetails::default();
    let details = required(details, field, violations).unwrap_or(&default);
    let kind = match pb::CommitmentKind::try_from(details.kind) {
        Ok(pb::CommitmentKind::New) => CommitmentKind::New,
        Ok(pb::CommitmentKind::Reaffirmation) => CommitmentKind::Reaffirmation,
        Ok(pb::CommitmentKind::Unspecified) | Err(_) => {
            violations.add(format!("{field}.kind"), "is required (NEW or REAFFIRMATION)");
            CommitmentKind::New
        }
    };
    let specificity = match pb::Specificity::try_from(details.specificity) {
        Ok(pb::Specificity::Aspirational) => Specificity::Aspirational,
        Ok(pb::Specificity::Specific) => Specificity::Specific,
        Ok(pb::Specificity::Measurable) => Specificity::Measurable,
        Ok(pb::Specificity::Unspecified) | Err(_) => {
            violations.add(
                format!("{field}.specificity"),
                "is required (ASPIRATIONAL, SPECIFIC or MEASURABLE)",
            );
            Specificity::Aspirational
        }
    };
    let cooperation = match pb::CooperationKind::try_from(details.cooperation) {
        Ok(pb::CooperationKind::Unspecified) => CooperationKind::Unspecified,
        Ok(pb::CooperationKind::Material) => CooperationKind::Material,
        Ok(pb::CooperationKind::Diplomatic) => CooperationKind::Diplomatic,
        Err(_) => {
            violations.add(
                format!("{field}.cooperation"),
                format!("unknown cooperation kind {}", details.cooperation),
            );
            CooperationKind::Unspecified
        }
    };
    CommitmentDetails {
        kind,
        committing_parties: details.committing_parties.clone(),
        voiced_by: uuids(
            &details.voiced_by,
            &format!("{field}.voiced_by"),
            violations,
            OfficialId::from_uuid,
        ),
        counterparties: details.counterparties.clone(),
        text: details.text.clone(),
        verbatim: details.verbatim,
        topics: details.topics.clone(),
        specificity,
        cooperation,
        due_by: optional_occurred_at(details.due_by.as_ref(), &format!("{field}.due_by"), violations),
        made_at_meeting: optional_uuid(
            details.made_at_meeting.as_deref(),
            &format!("{field}.made_at_meeting"),
            violations,
        )
        .map(MeetingId::from_uuid),
    }
}

fn stage_from_pb(value: i32, field: &str, violations: &mut Violations) -> AssessmentStage {
    match pb::AssessmentStage::try_from(value) {
        Ok(pb::AssessmentStage::Interim) => AssessmentStage::Interim,
        Ok(pb::AssessmentStage::Final) => AssessmentStage::Final,
        Ok(pb::AssessmentStage::Unspecified) | Err(_) => {
            violations.add(field, "is required (INTERIM or FINAL)");
            AssessmentStage::Interim
        }
    }
}

fn scores_from_pb(scores: &[pb::PartyScore], violations: &mut Violations) -> Vec<PartyScore> {
    scores
        .iter()
        .enumerate()
        .map(|(index, score)| PartyScore {
            party: score.party.clone(),
            score: i8::try_from(score.score).unwrap_or_else(|_| {
                violations.add(format!("scores[{index}].score"), "must be -1, 0 or 1");
                0
            }),
        })
        .collect()
}

/// Implements [`CommandRequest`] for a request with provenance (valid time and citations in its
/// header). The body builds the domain command from the request (`$r`), the violations (`$v`),
/// the command id (`$id`) and the provenance (`$p`).
macro_rules! command_request {
    ($request:ty, |$r:ident, $v:ident, $id:ident, $p:ident| $build:expr) => {
        impl CommandRequest for $request {
            fn into_command(mut self, recorded_by: &str) -> Result<CommandEnvelope, Vec<FieldViolation>> {
                let mut violations = Violations::new();
                let $v = &mut violations;
                let (header, provenance) = Header::read(self.header.take(), true, $v);
                #[allow(unused_variables)]
                let $id = header.command_id;
                let $p = provenance.expect("read with provenance");
                let $r = self;
                let command: DomainCommand = $build;
                violations.finish(header.envelope(command, recorded_by))
            }
        }
    };
}

/// Implements [`CommandRequest`] for a source command (no provenance).
macro_rules! source_request {
    ($request:ty, |$r:ident, $v:ident, $id:ident| $build:expr) => {
        impl CommandRequest for $request {
            fn into_command(mut self, recorded_by: &str) -> Result<CommandEnvelope, Vec<FieldViolation>> {
                let mut violations = Violations::new();
                let $v = &mut violations;
                let (header, _) = Header::read(self.header.take(), false, $v);
                #[allow(unused_variables)]
                let $id = header.command_id;
                let $r = self;
                let command: DomainCommand = $build;
                violations.finish(header.envelope(command, recorded_by))
            }
        }
    };
}

fn official(value: &str, v: &mut Violations) -> OfficialId {
    OfficialId::from_uuid(uuid_from_pb(value, "official_id", v))
}
fn meeting_id(value: &str, v: &mut Violations) -> MeetingId {
    MeetingId::from_uuid(uuid_from_pb(value, "meeting_id", v))
}
fn commitment_id(value: &str, v: &mut Violations) -> CommitmentId {
    CommitmentId::from_uuid(uuid_from_pb(value, "commitment_id", v))
}

command_request!(pb::RegisterPartyRequest, |r, v, _id, provenance| {
    DomainCommand::Party(party::Command::RegisterParty {
        details: party_details_from_pb(r.details.as_ref(), "details", v),
        code: r.code,
        provenance,
    })
});
command_request!(pb::CorrectPartyRequest, |r, v, _id, provenance| {
    DomainCommand::Party(party::Command::CorrectParty {
        details: party_details_from_pb(r.details.as_ref(), "details", v),
        code: r.code,
        corrects_version: r.corrects_version,
        reason: r.reason,
        provenance,
    })
});
source_request!(pb::RegisterSourceRequest, |r, v, id| {
    DomainCommand::Source(source::Command::RegisterSource {
        source_id: SourceId::from_uuid(new_entity_uuid(&r.source_id, id, "source_id", v)),
        details: source_details_from_pb(r.details.as_ref(), "details", v),
    })
});
source_request!(pb::CorrectSourceRequest, |r, v, _id| {
    DomainCommand::Source(source::Command::CorrectSource {
        source_id: SourceId::from_uuid(uuid_from_pb(&r.source_id, "source_id", v)),
        corrects_version: r.corrects_version,
        details: source_details_from_pb(r.details.as_ref(), "details", v),
        reason: r.reason,
    })
});
command_request!(pb::RegisterOfficialRequest, |r, v, id, provenance| {
    DomainCommand::Official(official::Command::RegisterOfficial {
        official_id: OfficialId::from_uuid(new_entity_uuid(&r.official_id, id, "official_id", v)),
        offices: r
            .offices
            .iter()
            .enumerate()
            .map(|(index, office)| office_from_pb(Some(office), &format!("offices[{index}]"), v))
            .collect(),
        name: r.name,
        provenance,
    })
});
command_request!(pb::AppointOfficialRequest, |r, v, _id, provenance| {
    DomainCommand::Official(official::Command::AppointOfficial {
        official_id: official(&r.official_id, v),
        office: office_from_pb(r.office.as_ref(), "office", v),
        provenance,
    })
});
command_request!(pb::EndTenureRequest, |r, v, _id, provenance| {
    DomainCommand::Official(official::Command::EndTenure {
        official_id: official(&r.official_id, v),
        tenure_version: r.tenure_version,
        ended_at: required_occurred_at(r.ended_at.as_ref(), "ended_at", v),
        reason: r.reason,
        provenance,
    })
});
command_request!(pb::CorrectOfficialNameRequest, |r, v, _id, provenance| {
    DomainCommand::Official(official::Command::CorrectOfficialName {
        official_id: official(&r.official_id, v),
        corrects_version: r.corrects_version,
        reason: r.reason,
        name: r.name,
        provenance,
    })
});
command_request!(pb::RetractOfficialEventRequest, |r, v, _id, provenance| {
    DomainCommand::Official(official::Command::RetractOfficialEvent {
        official_id: official(&r.official_id, v),
        retracts_version: r.retracts_version,
        reason: r.reason,
        provenance,
    })
});
command_request!(pb::ProposeMeetingRequest, |r, v, id, provenance| {
    DomainCommand::Meeting(meeting::Command::ProposeMeeting {
        meeting_id: MeetingId::from_uuid(new_entity_uuid(&r.meeting_id, id, "meeting_id", v)),
        details: meeting_details_from_pb(r.details.as_ref(), "details", v),
        proposed_window: r
            .proposed_window
            .as_ref()
            .map(|window| window_from_pb(window, "proposed_window", v)),
        proposed_by: r.proposed_by,
        provenance,
    })
});
command_request!(pb::ScheduleMeetingRequest, |r, v, id, provenance| {
    DomainCommand::Meeting(meeting::Command::ScheduleMeeting {
        meeting_id: MeetingId::from_uuid(new_entity_uuid(&r.meeting_id, id, "meeting_id", v)),
        details: meeting_details_from_pb(r.details.as_ref(), "details", v),
        window: required_window(r.window.as_ref(), "window", v),
        provenance,
    })
});
command_request!(pb::RescheduleMeetingRequest, |r, v, _id, provenance| {
    DomainCommand::Meeting(meeting::Command::RescheduleMeeting {
        meeting_id: meeting_id(&r.meeting_id, v),
        window: required_window(r.window.as_ref(), "window", v),
        reason: r.reason,
        provenance,
    })
});
command_request!(pb::CancelMeetingRequest, |r, v, _id, provenance| {
    DomainCommand::Meeting(meeting::Command::CancelMeeting {
        meeting_id: meeting_id(&r.meeting_id, v),
        reason: r.reason,
        provenance,
    })
});
command_request!(pb::RecordMeetingHeldRequest, |r, v, id, provenance| {
    DomainCommand::Meeting(meeting::Command::RecordMeetingHeld {
        meeting_id: MeetingId::from_uuid(new_entity_uuid(&r.meeting_id, id, "meeting_id", v)),
        details: meeting_details_from_pb(r.details.as_ref(), "details", v),
        ended_at: optional_timestamp(r.ended_at.as_ref(), "ended_at", v),
        provenance,
    })
});
command_request!(pb::RecordStatementRequest, |r, v, _id, provenance| {
    DomainCommand::Meeting(meeting::Command::RecordStatement {
        meeting_id: meeting_id(&r.meeting_id, v),
        speaker: speaker_from_pb(r.speaker.as_ref(), "speaker", v),
        text: r.text,
        verbatim: r.verbatim,
        provenance,
    })
});
command_request!(pb::CorrectMeetingRequest, |r, v, _id, provenance| {
    DomainCommand::Meeting(meeting::Command::CorrectMeeting {
        meeting_id: meeting_id(&r.meeting_id, v),
        corrects_version: r.corrects_version,
        details: meeting_details_from_pb(r.details.as_ref(), "details", v),
        reason: r.reason,
        provenance,
    })
});
command_request!(pb::RetractMeetingEventRequest, |r, v, _id, provenance| {
    DomainCommand::Meeting(meeting::Command::RetractMeetingEvent {
        meeting_id: meeting_id(&r.meeting_id, v),
        retracts_version: r.retracts_version,
        reason: r.reason,
        provenance,
    })
});
command_request!(pb::RecordCommitmentRequest, |r, v, id, provenance| {
    DomainCommand::Commitment(commitment::Command::RecordCommitment {
        commitment_id: CommitmentId::from_uuid(new_entity_uuid(&r.commitment_id, id, "commitment_id", v)),
        details: commitment_details_from_pb(r.details.as_ref(), "details", v),
        provenance,
    })
});
command_request!(pb::ReaffirmCommitmentRequest, |r, v, _id, provenance| {
    DomainCommand::Commitment(commitment::Command::ReaffirmCommitment {
        commitment_id: commitment_id(&r.commitment_id, v),
        voiced_by: uuids(&r.voiced_by, "voiced_by", v, OfficialId::from_uuid),
        at_meeting: optional_uuid(r.at_meeting.as_deref(), "at_meeting", v).map(MeetingId::from_uuid),
        reaffirmed_by: r.reaffirmed_by,
        text: r.text,
        provenance,
    })
});
command_request!(pb::ReportCommitmentProgressRequest, |r, v, _id, provenance| {
    DomainCommand::Commitment(commitment::Command::ReportCommitmentProgress {
        commitment_id: commitment_id(&r.commitment_id, v),
        summary: r.summary,
        provenance,
    })
});
command_request!(pb::FulfilCommitmentRequest, |r, v, _id, provenance| {
    DomainCommand::Commitment(commitment::Command::FulfilCommitment {
        commitment_id: commitment_id(&r.commitment_id, v),
        summary: r.summary,
        provenance,
    })
});
command_request!(pb::MarkCommitmentLapsedRequest, |r, v, _id, provenance| {
    DomainCommand::Commitment(commitment::Command::MarkCommitmentLapsed {
        commitment_id: commitment_id(&r.commitment_id, v),
        reason: r.reason,
        provenance,
    })
});
command_request!(pb::WithdrawCommitmentRequest, |r, v, _id, provenance| {
    DomainCommand::Commitment(commitment::Command::WithdrawCommitment {
        commitment_id: commitment_id(&r.commitment_id, v),
        reason: r.reason,
        provenance,
    })
});
command_request!(pb::SupersedeCommitmentRequest, |r, v, _id, provenance| {
    DomainCommand::Commitment(commitment::Command::SupersedeCommitment {
        commitment_id: commitment_id(&r.commitment_id, v),
        superseded_by: CommitmentId::from_uuid(uuid_from_pb(&r.superseded_by, "superseded_by", v)),
        reason: r.reason,
        provenance,
    })
});
command_request!(pb::AssessComplianceRequest, |r, v, _id, provenance| {
    DomainCommand::Commitment(commitment::Command::AssessCompliance {
        commitment_id: commitment_id(&r.commitment_id, v),
        stage: stage_from_pb(r.stage, "stage", v),
        scores: scores_from_pb(&r.scores, v),
        assessor: r.assessor,
        rationale: r.rationale,
        provenance,
    })
});
command_request!(pb::CorrectCommitmentRequest, |r, v, _id, provenance| {
    DomainCommand::Commitment(commitment::Command::CorrectCommitment {
        commitment_id: commitment_id(&r.commitment_id, v),
        corrects_version: r.corrects_version,
        details: commitment_details_from_pb(r.details.as_ref(), "details", v),
        reason: r.reason,
        provenance,
    })
});
command_request!(pb::RetractCommitmentEventRequest, |r, v, _id, provenance| {
    DomainCommand::Commitment(commitment::Command::RetractCommitmentEvent {
        commitment_id: commitment_id(&r.commitment_id, v),
        retracts_version: r.retracts_version,
        reason: r.reason,
        provenance,
    })
});

// ---------------------------------------------------------------------------------------------
// Read models (QueryService answers).
// ---------------------------------------------------------------------------------------------

use crate::projections::{
    CommitmentRow, CommitmentStatusView, HistoryEntry, MeetingRow, MeetingStatusView, OfficialRow, PartyRow,
    PostHolder, SourceRow, TimelineItem,
};

/// A meeting status to its proto enum.
pub fn meeting_status_to_pb(status: MeetingStatusView) -> pb::MeetingStatus {
    match status {
        MeetingStatusView::Proposed => pb::MeetingStatus::Proposed,
        MeetingStatusView::Scheduled => pb::MeetingStatus::Scheduled,
        MeetingStatusView::Rescheduled => pb::MeetingStatus::Rescheduled,
        MeetingStatusView::Held => pb::MeetingStatus::Held,
        MeetingStatusView::Cancelled => pb::MeetingStatus::Cancelled,
    }
}

/// A meeting status filter from its proto enum (UNSPECIFIED: any).
pub fn meeting_status_from_pb(
    value: i32,
    field: &str,
    violations: &mut Violations,
) -> Option<MeetingStatusView> {
    match pb::MeetingStatus::try_from(value) {
        Ok(pb::MeetingStatus::Unspecified) => None,
        Ok(pb::MeetingStatus::Proposed) => Some(MeetingStatusView::Proposed),
        Ok(pb::MeetingStatus::Scheduled) => Some(MeetingStatusView::Scheduled),
        Ok(pb::MeetingStatus::Rescheduled) => Some(MeetingStatusView::Rescheduled),
        Ok(pb::MeetingStatus::Held) => Some(MeetingStatusView::Held),
        Ok(pb::MeetingStatus::Cancelled) => Some(MeetingStatusView::Cancelled),
        Err(_) => {
            violations.add(field, format!("unknown meeting status {value}"));
            None
        }
    }
}

/// A commitment status to its proto enum.
pub fn commitment_status_to_pb(status: CommitmentStatusView) -> pb::CommitmentStatus {
    match status {
        CommitmentStatusView::Made => pb::CommitmentStatus::Made,
        CommitmentStatusView::Reaffirmed => pb::CommitmentStatus::Reaffirmed,
        CommitmentStatusView::InProgress => pb::CommitmentStatus::InProgress,
        CommitmentStatusView::Fulfilled => pb::CommitmentStatus::Fulfilled,
        CommitmentStatusView::Lapsed => pb::CommitmentStatus::Lapsed,
        CommitmentStatusView::Withdrawn => pb::CommitmentStatus::Withdrawn,
        CommitmentStatusView::Superseded => pb::CommitmentStatus::Superseded,
    }
}

/// A commitment status filter from its proto enum (UNSPECIFIED: any).
pub fn commitment_status_from_pb(
    value: i32,
    field: &str,
    violations: &mut Violations,
) -> Option<CommitmentStatusView> {
    match pb::CommitmentStatus::try_from(value) {
        Ok(pb::CommitmentStatus::Unspecified) => None,
        Ok(pb::CommitmentStatus::Made) => Some(CommitmentStatusView::Made),
        Ok(pb::CommitmentStatus::Reaffirmed) => Some(CommitmentStatusView::Reaffirmed),
        Ok(pb::CommitmentStatus::InProgress) => Some(CommitmentStatusView::InProgress),
        Ok(pb::CommitmentStatus::Fulfilled) => Some(CommitmentStatusView::Fulfilled),
        Ok(pb::CommitmentStatus::Lapsed) => Some(CommitmentStatusView::Lapsed),
        Ok(pb::CommitmentStatus::Withdrawn) => Some(CommitmentStatusView::Withdrawn),
        Ok(pb::CommitmentStatus::Superseded) => Some(CommitmentStatusView::Superseded),
        Err(_) => {
            violations.add(field, format!("unknown commitment status {value}"));
            None
        }
    }
}

/// A meeting row to its view.
pub fn meeting_to_pb(row: &MeetingRow) -> pb::MeetingView {
    pb::MeetingView {
        meeting_id: row.meeting_id.to_string(),
        status: meeting_status_to_pb(row.status) as i32,
        proposed_by: row.proposed_by.clone(),
        details: Some(meeting_details_to_pb(&row.details)),
        details_version: row.details_version,
        window: row.window.as_ref().map(window_to_pb),
        held_at: row.held_at.map(occurred_at_to_pb),
        ended_at: row.ended_at.map(timestamp_to_pb),
        cancellation_reason: row.cancellation_reason.clone(),
        statements: row
            .statements
            .iter()
            .map(|statement| pb::StatementView {
                version: statement.version,
                speaker: Some(speaker_to_pb(&statement.speaker)),
                text: statement.text.clone(),
                verbatim: statement.verbatim,
                occurred_at: Some(occurred_at_to_pb(statement.occurred_at)),
            })
            .collect(),
        retracted_versions: row.retracted_versions.clone(),
        stream_version: row.stream_version,
        last_position: row.last_position,
    }
}

/// A commitment row to its view.
pub fn commitment_to_pb(row: &CommitmentRow) -> pb::CommitmentView {
    let entry = |entry: &crate::projections::commitments::EntryRow| pb::CommitmentEntryView {
        version: entry.version,
        occurred_at: Some(occurred_at_to_pb(entry.occurred_at)),
        text: entry.text.clone(),
        parties: entry.parties.clone(),
    };
    pb::CommitmentView {
        commitment_id: row.commitment_id.to_string(),
        status: commitment_status_to_pb(row.status) as i32,
        details: Some(commitment_details_to_pb(&row.details)),
        made_at: row.made_at.map(occurred_at_to_pb),
        reaffirmations: row.reaffirmations.iter().map(entry).collect(),
        progress_reports: row.progress_reports.iter().map(entry).collect(),
        closed_at: row.closed_at.map(occurred_at_to_pb),
        closing_text: row.closing_text.clone(),
        superseded_by: row.superseded_by.map(|id| id.to_string()),
        assessments: row
            .assessments
            .iter()
            .map(|assessment| pb::AssessmentView {
                version: assessment.version,
                stage: assessment_stage_to_pb(assessment.stage) as i32,
                assessor: assessment.assessor.clone(),
                rationale: assessment.rationale.clone(),
                scores: assessment
                    .scores
                    .iter()
                    .map(|score| pb::PartyScore {
                        party: score.party.clone(),
                        score: i32::from(score.score),
                    })
                    .collect(),
                occurred_at: Some(occurred_at_to_pb(assessment.occurred_at)),
            })
            .collect(),
        retracted_versions: row.retracted_versions.clone(),
        stream_version: row.stream_version,
        last_position: row.last_position,
    }
}

fn office_row_to_pb(office: &crate::projections::officials::OfficeRow) -> pb::OfficeView {
    pb::OfficeView {
        tenure_version: office.tenure_version,
        post: office.post.clone(),
        party: office.party.clone(),
        accredited_to: office.accredited_to.clone(),
        from: office.from.map(occurred_at_to_pb),
        to: office.to.map(occurred_at_to_pb),
        attested_at: Some(occurred_at_to_pb(office.attested_at)),
    }
}

/// An official row to its view.
pub fn official_to_pb(row: &OfficialRow) -> pb::OfficialView {
    pb::OfficialView {
        official_id: row.official_id.to_string(),
        name: row.name.clone(),
        offices: row.offices.iter().map(office_row_to_pb).collect(),
        retracted_versions: row.retracted_versions.clone(),
        stream_version: row.stream_version,
        last_position: row.last_position,
    }
}

/// A post holder to its view.
pub fn post_holder_to_pb(holder: &PostHolder) -> pb::PostHolderView {
    pb::PostHolderView {
        official_id: holder.official_id.to_string(),
        name: holder.name.clone(),
        office: Some(office_row_to_pb(&holder.office)),
    }
}

/// A party row to its view.
pub fn party_to_pb(row: &PartyRow) -> pb::PartyView {
    pb::PartyView {
        code: row.code.clone(),
        details: Some(party_details_to_pb(&row.details)),
        details_version: row.details_version,
        stream_version: row.stream_version,
        last_position: row.last_position,
    }
}

/// A source row to its view.
pub fn source_to_pb(row: &SourceRow) -> pb::SourceView {
    pb::SourceView {
        source_id: row.source_id.to_string(),
        details: Some(source_details_to_pb(&row.details)),
        stream_version: row.stream_version,
        last_position: row.last_position,
    }
}

/// A timeline item to its view.
pub fn timeline_item_to_pb(item: &TimelineItem) -> pb::TimelineItemView {
    pb::TimelineItemView {
        item: Some(match item {
            TimelineItem::Meeting(row) => pb::timeline_item_view::Item::Meeting(meeting_to_pb(row)),
            TimelineItem::Commitment(row) => pb::timeline_item_view::Item::Commitment(commitment_to_pb(row)),
        }),
    }
}

/// An audit-trail entry to its view.
pub fn history_entry_to_pb(entry: &HistoryEntry) -> pb::HistoryEntryView {
    pb::HistoryEntryView {
        position: entry.position,
        stream_version: entry.stream_version,
        event_id: entry.event_id.to_string(),
        event_type: entry.event_type.clone(),
        command_id: entry.command_id.to_string(),
        occurred_at: Some(occurred_at_to_pb(entry.occurred_at)),
        recorded_at: Some(timestamp_to_pb(entry.recorded_at)),
        recorded_by: entry.recorded_by.clone(),
        correlation_id: entry.correlation_id.map(|id| id.to_string()),
        causation_id: entry.causation_id.map(|id| id.to_string()),
        sources: entry
            .sources
            .iter()
            .map(|source| pb::SourceRefView {
                citation: Some(pb::SourceCitation {
                    source_id: source.citation.source_id.to_string(),
                    quote: source.citation.quote.clone(),
                }),
                url: source.url.clone(),
                title: source.title.clone(),
                publisher: source.publisher.clone(),
            })
            .collect(),
        corrects_version: entry.corrects_version,
        retracts_version: entry.retracts_version,
        corrected_by: entry.corrected_by,
        retracted_by: entry.retracted_by,
        reason: entry.reason.clone(),
        event: Some(event_to_pb(&entry.event)),
    }
}

// ---------------------------------------------------------------------------------------------
// Outbound commands: a domain command as the request a client sends (clients written in Rust,
// `dipledger demo --server`). The inverse of the inbound conversion above.
// ---------------------------------------------------------------------------------------------

/// A domain command as a `SubmitBatch` entry with `command_id`.
pub fn command_to_pb(command: &crate::domain::DomainCommand, command_id: uuid::Uuid) -> pb::BatchCommand {
    use crate::domain::{
        commitment as c, meeting as m, official as o, party as p, source as s, DomainCommand as D,
    };
    use pb::batch_command::Command as B;
    let header = |provenance: Option<&Provenance>| {
        Some(pb::CommandHeader {
            command_id: command_id.to_string(),
            occurred_at: provenance.map(|provenance| occurred_at_to_pb(provenance.occurred_at)),
            sources: provenance.map_or_else(Vec::new, |provenance| provenance_to_pb(provenance).sources),
            ..Default::default()
        })
    };
    macro_rules! request {
        ($message:ident, $provenance:expr, { $($field:ident: $value:expr),* $(,)? }) => {
            pb::$message {
                header: header(Some($provenance)),
                $($field: $value,)*
            }
        };
    }
    let command = match command {
        D::Party(p::Command::RegisterParty {
            code,
            details,
            provenance,
        }) => B::RegisterParty(
            request!(RegisterPartyRequest, provenance, { code: code.clone(), details: Some(party_details_to_pb(details)) }),
        ),
        D::Party(p::Command::CorrectParty {
            code,
            corrects_version,
            reason,
            details,
            provenance,
        }) => B::CorrectParty(
            request!(CorrectPartyRequest, provenance, { code: code.clone(), corrects_version: *corrects_version, reason: reason.clone(), details: Some(party_details_to_pb(details)) }),
        ),
        D::Source(s::Command::RegisterSource { source_id, details }) => {
            B::RegisterSource(pb::RegisterSourceRequest {
                header: header(None),
                source_id: source_id.to_string(),
                details: Some(source_details_to_pb(details)),
            })
        }
        D::Source(s::Command::CorrectSource {
            source_id,
            corrects_version,
            reason,
            details,
        }) => B::CorrectSource(pb::CorrectSourceRequest {
            header: header(None),
            source_id: source_id.to_string(),
            corrects_version: *corrects_version,
            reason: reason.clone(),
            details: Some(source_details_to_pb(details)),
        }),
        D::Official(o::Command::RegisterOfficial {
            official_id,
            name,
            offices,
            provenance,
        }) => B::RegisterOfficial(
            request!(RegisterOfficialRequest, provenance, { official_id: official_id.to_string(), name: name.clone(), offices: offices.iter().map(office_to_pb).collect() }),
        ),
        D::Official(o::Command::AppointOfficial {
            official_id,
            office,
            provenance,
        }) => B::AppointOfficial(
            request!(AppointOfficialRequest, provenance, { official_id: official_id.to_string(), office: Some(office_to_pb(office)) }),
        ),
        D::Official(o::Command::EndTenure {
            official_id,
            tenure_version,
            ended_at,
            reason,
            provenance,
        }) => B::EndTenure(
            request!(EndTenureRequest, provenance, { official_id: official_id.to_string(), tenure_version: *tenure_version, ended_at: Some(occurred_at_to_pb(*ended_at)), reason: reason.clone() }),
        ),
        D::Official(o::Command::CorrectOfficialName {
            official_id,
            corrects_version,
            reason,
            name,
            provenance,
        }) => B::CorrectOfficialName(
            request!(CorrectOfficialNameRequest, provenance, { official_id: official_id.to_string(), corrects_version: *corrects_version, reason: reason.clone(), name: name.clone() }),
        ),
        D::Official(o::Command::RetractOfficialEvent {
            official_id,
            retracts_version,
            reason,
            provenance,
        }) => B::RetractOfficialEvent(
            request!(RetractOfficialEventRequest, provenance, { official_id: official_id.to_string(), retracts_version: *retracts_version, reason: reason.clone() }),
        ),
        D::Meeting(m::Command::ProposeMeeting {
            meeting_id,
            proposed_by,
            details,
            proposed_window,
            provenance,
        }) => B::ProposeMeeting(
            request!(ProposeMeetingRequest, provenance, { meeting_id: meeting_id.to_string(), proposed_by: proposed_by.clone(), details: Some(meeting_details_to_pb(details)), proposed_window: proposed_window.as_ref().map(window_to_pb) }),
        ),
        D::Meeting(m::Command::ScheduleMeeting {
            meeting_id,
            details,
            window,
            provenance,
        }) => B::ScheduleMeeting(
            request!(ScheduleMeetingRequest, provenance, { meeting_id: meeting_id.to_string(), details: Some(meeting_details_to_pb(details)), window: Some(window_to_pb(window)) }),
        ),
        D::Meeting(m::Command::RescheduleMeeting {
            meeting_id,
            window,
            reason,
            provenance,
        }) => B::RescheduleMeeting(
            request!(RescheduleMeetingRequest, provenance, { meeting_id: meeting_id.to_string(), window: Some(window_to_pb(window)), reason: reason.clone() }),
        ),
        D::Meeting(m::Command::CancelMeeting {
            meeting_id,
            reason,
            provenance,
        }) => B::CancelMeeting(
            request!(CancelMeetingRequest, provenance, { meeting_id: meeting_id.to_string(), reason: reason.clone() }),
        ),
        D::Meeting(m::Command::RecordMeetingHeld {
            meeting_id,
            details,
            ended_at,
            provenance,
        }) => B::RecordMeetingHeld(
            request!(RecordMeetingHeldRequest, provenance, { meeting_id: meeting_id.to_string(), details: Some(meeting_details_to_pb(details)), ended_at: ended_at.map(timestamp_to_pb) }),
        ),
        D::Meeting(m::Command::RecordStatement {
            meeting_id,
            speaker,
            text,
            verbatim,
            provenance,
        }) => B::RecordStatement(
            request!(RecordStatementRequest, provenance, { meeting_id: meeting_id.to_string(), speaker: Some(speaker_to_pb(speaker)), text: text.clone(), verbatim: *verbatim }),
        ),
        D::Meeting(m::Command::CorrectMeeting {
            meeting_id,
            corrects_version,
            reason,
            details,
            provenance,
        }) => B::CorrectMeeting(
            request!(CorrectMeetingRequest, provenance, { meeting_id: meeting_id.to_string(), corrects_version: *corrects_version, reason: reason.clone(), details: Some(meeting_details_to_pb(details)) }),
        ),
        D::Meeting(m::Command::RetractMeetingEvent {
            meeting_id,
            retracts_version,
            reason,
            provenance,
        }) => B::RetractMeetingEvent(
            request!(RetractMeetingEventRequest, provenance, { meeting_id: meeting_id.to_string(), retracts_version: *retracts_version, reason: reason.clone() }),
        ),
        D::Commitment(c::Command::RecordCommitment {
            commitment_id,
            details,
            provenance,
        }) => B::RecordCommitment(
            request!(RecordCommitmentRequest, provenance, { commitment_id: commitment_id.to_string(), details: Some(commitment_details_to_pb(details)) }),
        ),
        D::Commitment(c::Command::ReaffirmCommitment {
            commitment_id,
            reaffirmed_by,
            voiced_by,
            at_meeting,
            text,
            provenance,
        }) => B::ReaffirmCommitment(
            request!(ReaffirmCommitmentRequest, provenance, { commitment_id: commitment_id.to_string(), reaffirmed_by: reaffirmed_by.clone(), voiced_by: ids_to_pb(voiced_by), at_meeting: at_meeting.map(|id| id.to_string()), text: text.clone() }),
        ),
        D::Commitment(c::Command::ReportCommitmentProgress {
            commitment_id,
            summary,
            provenance,
        }) => B::ReportCommitmentProgress(
            request!(ReportCommitmentProgressRequest, provenance, { commitment_id: commitment_id.to_string(), summary: summary.clone() }),
        ),
        D::Commitment(c::Command::FulfilCommitment {
            commitment_id,
            summary,
            provenance,
        }) => B::FulfilCommitment(
            request!(FulfilCommitmentRequest, provenance, { commitment_id: commitment_id.to_string(), summary: summary.clone() }),
        ),
        D::Commitment(c::Command::MarkCommitmentLapsed {
            commitment_id,
            reason,
            provenance,
        }) => B::MarkCommitmentLapsed(
            request!(MarkCommitmentLapsedRequest, provenance, { commitment_id: commitment_id.to_string(), reason: reason.clone() }),
        ),
        D::Commitment(c::Command::WithdrawCommitment {
            commitment_id,
            reason,
            provenance,
        }) => B::WithdrawCommitment(
            request!(WithdrawCommitmentRequest, provenance, { commitment_id: commitment_id.to_string(), reason: reason.clone() }),
        ),
        D::Commitment(c::Command::SupersedeCommitment {
            commitment_id,
            superseded_by,
            reason,
            provenance,
        }) => B::SupersedeCommitment(
            request!(SupersedeCommitmentRequest, provenance, { commitment_id: commitment_id.to_string(), superseded_by: superseded_by.to_string(), reason: reason.clone() }),
        ),
        D::Commitment(c::Command::AssessCompliance {
            commitment_id,
            stage,
            assessor,
            rationale,
            scores,
            provenance,
        }) => B::AssessCompliance(
            request!(AssessComplianceRequest, provenance, { commitment_id: commitment_id.to_string(), stage: assessment_stage_to_pb(*stage) as i32, assessor: assessor.clone(), rationale: rationale.clone(), scores: scores.iter().map(|s| pb::PartyScore { party: s.party.clone(), score: i32::from(s.score) }).collect() }),
        ),
        D::Commitment(c::Command::CorrectCommitment {
            commitment_id,
            corrects_version,
            reason,
            details,
            provenance,
        }) => B::CorrectCommitment(
            request!(CorrectCommitmentRequest, provenance, { commitment_id: commitment_id.to_string(), corrects_version: *corrects_version, reason: reason.clone(), details: Some(commitment_details_to_pb(details)) }),
        ),
        D::Commitment(c::Command::RetractCommitmentEvent {
            commitment_id,
            retracts_version,
            reason,
            provenance,
        }) => B::RetractCommitmentEvent(
            request!(RetractCommitmentEventRequest, provenance, { commitment_id: commitment_id.to_string(), retracts_version: *retracts_version, reason: reason.clone() }),
        ),
    };
    pb::BatchCommand {
        command: Some(command),
    }
}

#[cfg(test)]
mod outbound_tests {
    use super::*;

    #[test]
    fn commands_round_trip_through_their_requests() {
        let commands = crate::domain::sample::news_report_commands();
        let request = pb::SubmitBatchRequest {
            commands: commands
                .iter()
                .map(|command| command_to_pb(command, uuid::Uuid::now_v7()))
                .collect(),
        };
        let back = batch_from_pb(request, |command| {
            crate::api::commands::batch_command(command, "tester")
        })
        .expect("valid requests");
        let back: Vec<_> = back.into_iter().map(|envelope| envelope.command).collect();
        assert_eq!(back, commands);
    }
}
