//! Meetings, both directions: their details and speakers, the meeting requests (from a client,
//! and as a client sends them), the meeting events, and the meeting view with its status.

use uuid::Uuid;

use super::common::{
    command_request, entity_id_from_pb, new_entity_id, occurred_at_to_pb, optional_entity_id,
    optional_timestamp, party_code_from_pb, party_codes_from_pb, provenance_to_pb, request_to_pb, required,
    required_window, timestamp_to_pb, window_from_pb, window_to_pb, Violations,
};
use crate::api::pb;
use crate::domain::common::MeetingId;
use crate::domain::meeting::{
    self, Location, MeetingDetails, MeetingFormat, Participant, ParticipantRole, Speaker,
};
use crate::domain::DomainCommand;
use crate::projections::{MeetingRow, MeetingStatusView, Names};

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
                role: role_to_pb(participant.role) as i32,
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
                        format!(
                            "{} is not a participant role: one of PARTICIPANT_ROLE_HOST (1), \
                             PARTICIPANT_ROLE_VISITOR (2), PARTICIPANT_ROLE_THIRD_PARTY (3) or \
                             PARTICIPANT_ROLE_MEDIATOR (4), or unset when the sources do not say",
                            participant.role
                        ),
                    );
                    None
                }
            };
            Participant {
                party: party_code_from_pb(&participant.party),
                official_id: optional_entity_id(
                    participant.official_id.as_deref(),
                    &format!("{path}.official_id"),
                    violations,
                ),
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

fn speaker_to_pb(speaker: &Speaker) -> pb::Speaker {
    pb::Speaker {
        party: speaker.party.clone(),
        official_id: speaker.official_id.map(|id| id.to_string()),
    }
}

fn speaker_from_pb(speaker: Option<&pb::Speaker>, field: &str, violations: &mut Violations) -> Speaker {
    let default = pb::Speaker::default();
    let speaker = required(speaker, field, violations).unwrap_or(&default);
    Speaker {
        party: party_code_from_pb(&speaker.party),
        official_id: optional_entity_id(
            speaker.official_id.as_deref(),
            &format!("{field}.official_id"),
            violations,
        ),
    }
}

fn meeting_id(value: &str, v: &mut Violations) -> MeetingId {
    entity_id_from_pb(value, "meeting_id", v)
}

command_request!(pb::ProposeMeetingRequest, |r, v, id, provenance| {
    DomainCommand::Meeting(meeting::Command::ProposeMeeting {
        meeting_id: new_entity_id(&r.meeting_id, id, "meeting_id", v),
        details: meeting_details_from_pb(r.details.as_ref(), "details", v),
        proposed_window: r
            .proposed_window
            .as_ref()
            .map(|window| window_from_pb(window, "proposed_window", v)),
        proposed_by: party_codes_from_pb(&r.proposed_by),
        provenance,
    })
});
command_request!(pb::ScheduleMeetingRequest, |r, v, id, provenance| {
    DomainCommand::Meeting(meeting::Command::ScheduleMeeting {
        meeting_id: new_entity_id(&r.meeting_id, id, "meeting_id", v),
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
command_request!(pb::PostponeMeetingRequest, |r, v, _id, provenance| {
    DomainCommand::Meeting(meeting::Command::PostponeMeeting {
        meeting_id: meeting_id(&r.meeting_id, v),
        reason: r.reason,
        provenance,
    })
});
command_request!(pb::CancelMeetingRequest, |r, v, _id, provenance| {
    DomainCommand::Meeting(meeting::Command::CancelMeeting {
        meeting_id: meeting_id(&r.meeting_id, v),
        cancelled_by: party_codes_from_pb(&r.cancelled_by),
        reason: r.reason,
        provenance,
    })
});
command_request!(pb::RecordMeetingHeldRequest, |r, v, id, provenance| {
    DomainCommand::Meeting(meeting::Command::RecordMeetingHeld {
        meeting_id: new_entity_id(&r.meeting_id, id, "meeting_id", v),
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

/// A meeting command as the request a client sends (its arm of [`command_to_pb`](super::command_to_pb)).
pub(super) fn command_to_pb(command: &meeting::Command, command_id: Uuid) -> pb::batch_command::Command {
    use pb::batch_command::Command as B;
    match command {
        meeting::Command::ProposeMeeting {
            meeting_id,
            proposed_by,
            details,
            proposed_window,
            provenance,
        } => B::ProposeMeeting(
            request_to_pb!(ProposeMeetingRequest, command_id, provenance, { meeting_id: meeting_id.to_string(), proposed_by: proposed_by.clone(), details: Some(meeting_details_to_pb(details)), proposed_window: proposed_window.as_ref().map(window_to_pb) }),
        ),
        meeting::Command::ScheduleMeeting {
            meeting_id,
            details,
            window,
            provenance,
        } => B::ScheduleMeeting(
            request_to_pb!(ScheduleMeetingRequest, command_id, provenance, { meeting_id: meeting_id.to_string(), details: Some(meeting_details_to_pb(details)), window: Some(window_to_pb(window)) }),
        ),
        meeting::Command::RescheduleMeeting {
            meeting_id,
            window,
            reason,
            provenance,
        } => B::RescheduleMeeting(
            request_to_pb!(RescheduleMeetingRequest, command_id, provenance, { meeting_id: meeting_id.to_string(), window: Some(window_to_pb(window)), reason: reason.clone() }),
        ),
        meeting::Command::PostponeMeeting {
            meeting_id,
            reason,
            provenance,
        } => B::PostponeMeeting(
            request_to_pb!(PostponeMeetingRequest, command_id, provenance, { meeting_id: meeting_id.to_string(), reason: reason.clone() }),
        ),
        meeting::Command::CancelMeeting {
            meeting_id,
            cancelled_by,
            reason,
            provenance,
        } => B::CancelMeeting(
            request_to_pb!(CancelMeetingRequest, command_id, provenance, { meeting_id: meeting_id.to_string(), cancelled_by: cancelled_by.clone(), reason: reason.clone() }),
        ),
        meeting::Command::RecordMeetingHeld {
            meeting_id,
            details,
            ended_at,
            provenance,
        } => B::RecordMeetingHeld(
            request_to_pb!(RecordMeetingHeldRequest, command_id, provenance, { meeting_id: meeting_id.to_string(), details: Some(meeting_details_to_pb(details)), ended_at: ended_at.map(timestamp_to_pb) }),
        ),
        meeting::Command::RecordStatement {
            meeting_id,
            speaker,
            text,
            verbatim,
            provenance,
        } => B::RecordStatement(
            request_to_pb!(RecordStatementRequest, command_id, provenance, { meeting_id: meeting_id.to_string(), speaker: Some(speaker_to_pb(speaker)), text: text.clone(), verbatim: *verbatim }),
        ),
        meeting::Command::CorrectMeeting {
            meeting_id,
            corrects_version,
            reason,
            details,
            provenance,
        } => B::CorrectMeeting(
            request_to_pb!(CorrectMeetingRequest, command_id, provenance, { meeting_id: meeting_id.to_string(), corrects_version: *corrects_version, reason: reason.clone(), details: Some(meeting_details_to_pb(details)) }),
        ),
        meeting::Command::RetractMeetingEvent {
            meeting_id,
            retracts_version,
            reason,
            provenance,
        } => B::RetractMeetingEvent(
            request_to_pb!(RetractMeetingEventRequest, command_id, provenance, { meeting_id: meeting_id.to_string(), retracts_version: *retracts_version, reason: reason.clone() }),
        ),
    }
}

/// A meeting event as its typed message (its arm of [`event_to_pb`](super::event_to_pb)).
pub(super) fn event_to_pb(event: &meeting::Event) -> pb::event::Event {
    use pb::event::Event as E;
    match event {
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
        meeting::Event::MeetingPostponed(e) => E::MeetingPostponed(pb::MeetingPostponed {
            meeting_id: e.meeting_id.to_string(),
            reason: e.reason.clone(),
            provenance: Some(provenance_to_pb(&e.provenance)),
        }),
        meeting::Event::MeetingCancelled(e) => E::MeetingCancelled(pb::MeetingCancelled {
            meeting_id: e.meeting_id.to_string(),
            cancelled_by: e.cancelled_by.clone(),
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
    }
}

/// A meeting status to its proto enum.
pub fn meeting_status_to_pb(status: MeetingStatusView) -> pb::MeetingStatus {
    match status {
        MeetingStatusView::Proposed => pb::MeetingStatus::Proposed,
        MeetingStatusView::Scheduled => pb::MeetingStatus::Scheduled,
        MeetingStatusView::Rescheduled => pb::MeetingStatus::Rescheduled,
        MeetingStatusView::Held => pb::MeetingStatus::Held,
        MeetingStatusView::Cancelled => pb::MeetingStatus::Cancelled,
        MeetingStatusView::Postponed => pb::MeetingStatus::Postponed,
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
        Ok(pb::MeetingStatus::Postponed) => Some(MeetingStatusView::Postponed),
        Err(_) => {
            violations.add(field, format!("unknown meeting status {value}"));
            None
        }
    }
}

/// A participant role to its proto enum.
fn role_to_pb(role: Option<ParticipantRole>) -> pb::ParticipantRole {
    match role {
        None => pb::ParticipantRole::Unspecified,
        Some(ParticipantRole::Host) => pb::ParticipantRole::Host,
        Some(ParticipantRole::Visitor) => pb::ParticipantRole::Visitor,
        Some(ParticipantRole::ThirdParty) => pb::ParticipantRole::ThirdParty,
        Some(ParticipantRole::Mediator) => pb::ParticipantRole::Mediator,
    }
}

/// The participants of a meeting with their names, and their officials' posts on its date.
fn participants_to_pb(row: &MeetingRow, names: &Names) -> Vec<pb::ParticipantView> {
    let on = row.occurred_at();
    row.details
        .participants
        .iter()
        .map(|participant| pb::ParticipantView {
            party: participant.party.clone(),
            party_name: names
                .party_name(&participant.party)
                .unwrap_or_default()
                .to_owned(),
            official_id: participant.official_id.map(|id| id.to_string()),
            official_name: participant
                .official_id
                .and_then(|id| names.official_name(id))
                .map(str::to_owned),
            posts: participant
                .official_id
                .map(|id| names.offices_on(id, on))
                .unwrap_or_default()
                .into_iter()
                .map(|office| office.post.clone())
                .collect(),
            role: role_to_pb(participant.role) as i32,
        })
        .collect()
}

/// A meeting row to its view, with the names `names` holds for its participants.
pub fn meeting_to_pb(row: &MeetingRow, names: &Names) -> pb::MeetingView {
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
        cancelled_by: row.cancelled_by.clone(),
        postponement_reason: row.postponement_reason.clone(),
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
        participants: participants_to_pb(row, names),
        statement_count: row.statement_count,
    }
}
