//! Sources, both directions: their details, the RegisterSource and CorrectSource requests
//! (from a client, and as a client sends them; they carry no provenance), the source events,
//! and the source view.

use uuid::Uuid;

use super::common::{
    command_header, entity_id_from_pb, new_entity_id, occurred_at_to_pb, optional_occurred_at, required,
    required_timestamp, source_request, timestamp_to_pb, Violations,
};
use crate::api::pb;
use crate::domain::source::{self, SourceDetails};
use crate::domain::DomainCommand;
use crate::projections::SourceRow;

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

source_request!(pb::RegisterSourceRequest, |r, v, id| {
    DomainCommand::Source(source::Command::RegisterSource {
        source_id: new_entity_id(&r.source_id, id, "source_id", v),
        details: source_details_from_pb(r.details.as_ref(), "details", v),
    })
});
source_request!(pb::CorrectSourceRequest, |r, v, _id| {
    DomainCommand::Source(source::Command::CorrectSource {
        source_id: entity_id_from_pb(&r.source_id, "source_id", v),
        corrects_version: r.corrects_version,
        details: source_details_from_pb(r.details.as_ref(), "details", v),
        reason: r.reason,
    })
});

/// A source command as the request a client sends (its arm of [`command_to_pb`](super::command_to_pb)).
pub(super) fn command_to_pb(command: &source::Command, command_id: Uuid) -> pb::batch_command::Command {
    use pb::batch_command::Command as B;
    match command {
        source::Command::RegisterSource { source_id, details } => {
            B::RegisterSource(pb::RegisterSourceRequest {
                header: command_header(command_id, None),
                source_id: source_id.to_string(),
                details: Some(source_details_to_pb(details)),
            })
        }
        source::Command::CorrectSource {
            source_id,
            corrects_version,
            reason,
            details,
        } => B::CorrectSource(pb::CorrectSourceRequest {
            header: command_header(command_id, None),
            source_id: source_id.to_string(),
            corrects_version: *corrects_version,
            reason: reason.clone(),
            details: Some(source_details_to_pb(details)),
        }),
    }
}

/// A source event as its typed message (its arm of [`event_to_pb`](super::event_to_pb)).
pub(super) fn event_to_pb(event: &source::Event) -> pb::event::Event {
    use pb::event::Event as E;
    match event {
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
