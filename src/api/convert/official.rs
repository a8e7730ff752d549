//! Officials, both directions: their office terms, the official requests (from a client, and
//! as a client sends them), the official events, and the official and post-holder views.

use uuid::Uuid;

use super::common::{
    command_request, entity_id_from_pb, new_entity_id, occurred_at_to_pb, optional_occurred_at,
    party_code_from_pb, provenance_to_pb, request_to_pb, required, required_occurred_at, Violations,
};
use crate::api::pb;
use crate::domain::common::OfficialId;
use crate::domain::official::{self, OfficeTerm};
use crate::domain::DomainCommand;
use crate::projections::{ContactsRow, Names, OfficialRow, PostHolder};
use crate::time::Timestamp;

fn office_to_pb(office: &OfficeTerm) -> pb::OfficeTerm {
    pb::OfficeTerm {
        post: office.post.clone(),
        party: office.party.clone(),
        accredited_to: office.accredited_to.clone(),
        from: office.from.map(occurred_at_to_pb),
        to: office.to.map(occurred_at_to_pb),
    }
}

fn office_from_pb(office: Option<&pb::OfficeTerm>, field: &str, violations: &mut Violations) -> OfficeTerm {
    let default = pb::OfficeTerm::default();
    let office = required(office, field, violations).unwrap_or(&default);
    OfficeTerm {
        post: office.post.clone(),
        party: party_code_from_pb(&office.party),
        accredited_to: office.accredited_to.as_deref().map(party_code_from_pb),
        from: optional_occurred_at(office.from.as_ref(), &format!("{field}.from"), violations),
        to: optional_occurred_at(office.to.as_ref(), &format!("{field}.to"), violations),
    }
}

fn official(value: &str, v: &mut Violations) -> OfficialId {
    entity_id_from_pb(value, "official_id", v)
}

command_request!(pb::RegisterOfficialRequest, |r, v, id, provenance| {
    DomainCommand::Official(official::Command::RegisterOfficial {
        official_id: new_entity_id(&r.official_id, id, "official_id", v),
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

/// An official command as the request a client sends (its arm of [`command_to_pb`](super::command_to_pb)).
pub(super) fn command_to_pb(command: &official::Command, command_id: Uuid) -> pb::batch_command::Command {
    use pb::batch_command::Command as B;
    match command {
        official::Command::RegisterOfficial {
            official_id,
            name,
            offices,
            provenance,
        } => B::RegisterOfficial(
            request_to_pb!(RegisterOfficialRequest, command_id, provenance, { official_id: official_id.to_string(), name: name.clone(), offices: offices.iter().map(office_to_pb).collect() }),
        ),
        official::Command::AppointOfficial {
            official_id,
            office,
            provenance,
        } => B::AppointOfficial(
            request_to_pb!(AppointOfficialRequest, command_id, provenance, { official_id: official_id.to_string(), office: Some(office_to_pb(office)) }),
        ),
        official::Command::EndTenure {
            official_id,
            tenure_version,
            ended_at,
            reason,
            provenance,
        } => B::EndTenure(
            request_to_pb!(EndTenureRequest, command_id, provenance, { official_id: official_id.to_string(), tenure_version: *tenure_version, ended_at: Some(occurred_at_to_pb(*ended_at)), reason: reason.clone() }),
        ),
        official::Command::CorrectOfficialName {
            official_id,
            corrects_version,
            reason,
            name,
            provenance,
        } => B::CorrectOfficialName(
            request_to_pb!(CorrectOfficialNameRequest, command_id, provenance, { official_id: official_id.to_string(), corrects_version: *corrects_version, reason: reason.clone(), name: name.clone() }),
        ),
        official::Command::RetractOfficialEvent {
            official_id,
            retracts_version,
            reason,
            provenance,
        } => B::RetractOfficialEvent(
            request_to_pb!(RetractOfficialEventRequest, command_id, provenance, { official_id: official_id.to_string(), retracts_version: *retracts_version, reason: reason.clone() }),
        ),
    }
}

/// An official event as its typed message (its arm of [`event_to_pb`](super::event_to_pb)).
pub(super) fn event_to_pb(event: &official::Event) -> pb::event::Event {
    use pb::event::Event as E;
    match event {
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
        official::Event::OfficialNameCorrected(e) => E::OfficialNameCorrected(pb::OfficialNameCorrected {
            official_id: e.official_id.to_string(),
            corrects_version: e.corrects_version,
            reason: e.reason.clone(),
            name: e.name.clone(),
            provenance: Some(provenance_to_pb(&e.provenance)),
        }),
        official::Event::OfficialEventRetracted(e) => E::OfficialEventRetracted(pb::OfficialEventRetracted {
            official_id: e.official_id.to_string(),
            retracts_version: e.retracts_version,
            reason: e.reason.clone(),
            provenance: Some(provenance_to_pb(&e.provenance)),
        }),
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

/// Whom an official met, with names and the posts held on `today`: most meetings first, then
/// by id.
pub fn contacts_to_pb(contacts: &ContactsRow, names: &Names, today: Timestamp) -> Vec<pb::ContactView> {
    let mut views: Vec<pb::ContactView> = contacts
        .met
        .iter()
        .map(|(id, meetings)| {
            let official = id.parse().ok().map(OfficialId::from_uuid);
            pb::ContactView {
                official_id: id.clone(),
                name: official
                    .and_then(|official| names.official_name(official))
                    .unwrap_or_default()
                    .to_owned(),
                posts: official
                    .map(|official| names.offices_on(official, Some(today)))
                    .unwrap_or_default()
                    .into_iter()
                    .map(|office| office.post.clone())
                    .collect(),
                meetings: *meetings,
            }
        })
        .collect();
    views.sort_by(|a, b| {
        b.meetings
            .cmp(&a.meetings)
            .then_with(|| a.official_id.cmp(&b.official_id))
    });
    views
}
