//! Parties, both directions: their details, the RegisterParty and CorrectParty requests (from
//! a client, and as a client sends them), the party events, and the party view.

use uuid::Uuid;

use super::common::{
    command_request, party_code_from_pb, provenance_to_pb, request_to_pb, required, Violations,
};
use crate::api::pb;
use crate::domain::party::{self, PartyDetails, PartyKind};
use crate::domain::DomainCommand;
use crate::projections::PartyRow;

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

command_request!(pb::RegisterPartyRequest, |r, v, _id, provenance| {
    DomainCommand::Party(party::Command::RegisterParty {
        details: party_details_from_pb(r.details.as_ref(), "details", v),
        code: party_code_from_pb(&r.code),
        provenance,
    })
});
command_request!(pb::CorrectPartyRequest, |r, v, _id, provenance| {
    DomainCommand::Party(party::Command::CorrectParty {
        details: party_details_from_pb(r.details.as_ref(), "details", v),
        code: party_code_from_pb(&r.code),
        corrects_version: r.corrects_version,
        reason: r.reason,
        provenance,
    })
});

/// A party command as the request a client sends (its arm of [`command_to_pb`](super::command_to_pb)).
pub(super) fn command_to_pb(command: &party::Command, command_id: Uuid) -> pb::batch_command::Command {
    use pb::batch_command::Command as B;
    match command {
        party::Command::RegisterParty {
            code,
            details,
            provenance,
        } => B::RegisterParty(
            request_to_pb!(RegisterPartyRequest, command_id, provenance, { code: code.clone(), details: Some(party_details_to_pb(details)) }),
        ),
        party::Command::CorrectParty {
            code,
            corrects_version,
            reason,
            details,
            provenance,
        } => B::CorrectParty(
            request_to_pb!(CorrectPartyRequest, command_id, provenance, { code: code.clone(), corrects_version: *corrects_version, reason: reason.clone(), details: Some(party_details_to_pb(details)) }),
        ),
    }
}

/// A party event as its typed message (its arm of [`event_to_pb`](super::event_to_pb)).
pub(super) fn event_to_pb(event: &party::Event) -> pb::event::Event {
    use pb::event::Event as E;
    match event {
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
