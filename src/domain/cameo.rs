//! The one versioned table mapping domain events to the export vocabularies analysts use: CAMEO
//! event codes with their Goldstein scores, and PLOVER event types with modes. Bump
//! [`MAPPING_TABLE_VERSION`] whenever a mapping changes, so exports say which table they used.

use super::commitment::{CommitmentDetails, CooperationKind, Specificity};
use super::event::DomainEvent;
use super::meeting::{MeetingDetails, MeetingFormat, ParticipantRole};
use super::{commitment, meeting};

/// Version of the mapping table below.
pub const MAPPING_TABLE_VERSION: u16 = 1;

/// A CAMEO event code with its name and Goldstein score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CameoCode {
    /// The code, e.g. `040`.
    pub code: &'static str,
    /// The CAMEO name.
    pub name: &'static str,
    /// Goldstein conflict-cooperation score (-10 to +10).
    pub goldstein: f32,
}

/// CAMEO 030: Express intent to cooperate.
pub const EXPRESS_INTENT_TO_COOPERATE: CameoCode = CameoCode {
    code: "030",
    name: "Express intent to cooperate",
    goldstein: 4.0,
};
/// CAMEO 031: Express intent to engage in material cooperation.
pub const EXPRESS_INTENT_MATERIAL_COOPERATION: CameoCode = CameoCode {
    code: "031",
    name: "Express intent to engage in material cooperation",
    goldstein: 5.2,
};
/// CAMEO 032: Express intent to provide diplomatic cooperation.
pub const EXPRESS_INTENT_DIPLOMATIC_COOPERATION: CameoCode = CameoCode {
    code: "032",
    name: "Express intent to provide diplomatic cooperation",
    goldstein: 4.5,
};
/// CAMEO 036: Express intent to meet or negotiate.
pub const EXPRESS_INTENT_TO_MEET: CameoCode = CameoCode {
    code: "036",
    name: "Express intent to meet or negotiate",
    goldstein: 4.0,
};
/// CAMEO 040: Consult.
pub const CONSULT: CameoCode = CameoCode {
    code: "040",
    name: "Consult",
    goldstein: 1.0,
};
/// CAMEO 041: Discuss by telephone.
pub const DISCUSS_BY_TELEPHONE: CameoCode = CameoCode {
    code: "041",
    name: "Discuss by telephone",
    goldstein: 1.0,
};
/// CAMEO 042: Make a visit.
pub const MAKE_A_VISIT: CameoCode = CameoCode {
    code: "042",
    name: "Make a visit",
    goldstein: 1.9,
};
/// CAMEO 043: Host a visit.
pub const HOST_A_VISIT: CameoCode = CameoCode {
    code: "043",
    name: "Host a visit",
    goldstein: 2.8,
};
/// CAMEO 044: Meet at a "third" location.
pub const MEET_AT_THIRD_LOCATION: CameoCode = CameoCode {
    code: "044",
    name: "Meet at a third location",
    goldstein: 2.5,
};
/// CAMEO 046: Engage in negotiation.
pub const ENGAGE_IN_NEGOTIATION: CameoCode = CameoCode {
    code: "046",
    name: "Engage in negotiation",
    goldstein: 7.0,
};
/// CAMEO 057: Sign formal agreement (no domain event maps to it yet).
pub const SIGN_FORMAL_AGREEMENT: CameoCode = CameoCode {
    code: "057",
    name: "Sign formal agreement",
    goldstein: 8.0,
};

/// Every CAMEO code the table uses.
pub const CAMEO_CODES: &[CameoCode] = &[
    EXPRESS_INTENT_TO_COOPERATE,
    EXPRESS_INTENT_MATERIAL_COOPERATION,
    EXPRESS_INTENT_DIPLOMATIC_COOPERATION,
    EXPRESS_INTENT_TO_MEET,
    CONSULT,
    DISCUSS_BY_TELEPHONE,
    MAKE_A_VISIT,
    HOST_A_VISIT,
    MEET_AT_THIRD_LOCATION,
    ENGAGE_IN_NEGOTIATION,
    SIGN_FORMAL_AGREEMENT,
];

/// PLOVER event type `CONSULT`.
pub const PLOVER_CONSULT: &str = "CONSULT";
/// PLOVER event type `AGREE`.
pub const PLOVER_AGREE: &str = "AGREE";

/// One CAMEO-coded dyad: `source` does `code` towards `target` (no target: the event is
/// multilateral or the target is not a party).
#[derive(Debug, Clone, PartialEq)]
pub struct CameoCoding {
    /// The CAMEO event.
    pub code: CameoCode,
    /// Code of the acting party.
    pub source: String,
    /// Code of the party acted towards.
    pub target: Option<String>,
}

/// PLOVER coding: event type and mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PloverCoding {
    /// `CONSULT` or `AGREE`.
    pub event_type: &'static str,
    /// For CONSULT: `visit`, `third-party`, `multilateral` or `phone`; `None` when not known.
    pub mode: Option<&'static str>,
}

/// The export coding of one event.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportMapping {
    /// The table version used.
    pub table_version: u16,
    /// CAMEO dyads.
    pub cameo: Vec<CameoCoding>,
    /// PLOVER coding.
    pub plover: PloverCoding,
}

/// Maps an event to CAMEO and PLOVER; `None` for events with no export meaning (registrations,
/// schedules, corrections, retractions, ...).
///
/// | event | CAMEO | PLOVER |
/// |---|---|---|
/// | MeetingProposed | 036 proposer -> other parties | AGREE |
/// | MeetingHeld, negotiation | 046 each ordered pair | CONSULT |
/// | MeetingHeld, phone or virtual | 041 each ordered pair | CONSULT, phone |
/// | MeetingHeld, host known | 042 visitor -> host, 043 host -> visitor | CONSULT, visit |
/// | MeetingHeld, location country of no participant | 044 each ordered pair | CONSULT, third-party |
/// | MeetingHeld, otherwise | 040 each ordered pair | CONSULT (multilateral if so) |
/// | CommitmentRecorded / CommitmentReaffirmed | 030, or 031/032 when specific | AGREE |
pub fn map_event(event: &DomainEvent) -> Option<ExportMapping> {
    match event {
        DomainEvent::Meeting(meeting::Event::MeetingProposed(event)) => {
            // Each proposer -> each participant that is not itself a proposer.
            let parties = event.details.parties();
            let mut cameo = Vec::new();
            for proposer in &event.proposed_by {
                for party in parties
                    .iter()
                    .filter(|party| !event.proposed_by.iter().any(|p| p == *party))
                {
                    cameo.push(CameoCoding {
                        code: EXPRESS_INTENT_TO_MEET,
                        source: proposer.clone(),
                        target: Some((*party).to_owned()),
                    });
                }
            }
            Some(ExportMapping {
                table_version: MAPPING_TABLE_VERSION,
                cameo,
                plover: PloverCoding {
                    event_type: PLOVER_AGREE,
                    mode: None,
                },
            })
        }
        DomainEvent::Meeting(meeting::Event::MeetingHeld(event)) => Some(map_meeting_held(&event.details)),
        DomainEvent::Commitment(commitment::Event::CommitmentRecorded(event)) => {
            Some(map_commitment(&event.details.committing_parties, &event.details))
        }
        _ => None,
    }
}

/// Maps a reaffirmation, given the commitment's details in effect (the reaffirmation event does
/// not repeat them).
pub fn map_reaffirmation(
    event: &commitment::CommitmentReaffirmed,
    details: &CommitmentDetails,
) -> ExportMapping {
    map_commitment(&event.reaffirmed_by, details)
}

fn map_commitment(actors: &[String], details: &CommitmentDetails) -> ExportMapping {
    let code = match (details.specificity, details.cooperation) {
        (Specificity::Aspirational, _) | (_, CooperationKind::Unspecified) => EXPRESS_INTENT_TO_COOPERATE,
        (_, CooperationKind::Material) => EXPRESS_INTENT_MATERIAL_COOPERATION,
        (_, CooperationKind::Diplomatic) => EXPRESS_INTENT_DIPLOMATIC_COOPERATION,
    };
    let mut cameo = Vec::new();
    for actor in actors {
        // Targets: the counterparties, else the other committing parties (mutual commitment).
        let targets: Vec<&String> = if details.counterparties.is_empty() {
            actors.iter().filter(|other| *other != actor).collect()
        } else {
            details.counterparties.iter().collect()
        };
        if targets.is_empty() {
            cameo.push(CameoCoding {
                code,
                source: actor.clone(),
                target: None,
            });
        }
        for target in targets {
            cameo.push(CameoCoding {
                code,
                source: actor.clone(),
                target: Some(target.clone()),
            });
        }
    }
    ExportMapping {
        table_version: MAPPING_TABLE_VERSION,
        cameo,
        plover: PloverCoding {
            event_type: PLOVER_AGREE,
            mode: None,
        },
    }
}

fn map_meeting_held(details: &MeetingDetails) -> ExportMapping {
    let parties = details.parties();
    let parties_with_role = |role: ParticipantRole| -> Vec<&str> {
        let mut found: Vec<&str> = Vec::new();
        for participant in &details.participants {
            if participant.role == Some(role) && !found.contains(&participant.party.as_str()) {
                found.push(&participant.party);
            }
        }
        found
    };
    let hosts = parties_with_role(ParticipantRole::Host);
    let remote = matches!(details.format, MeetingFormat::Phone | MeetingFormat::Virtual);
    let multilateral = details.format == MeetingFormat::Multilateral;
    let location_country = details
        .location
        .as_ref()
        .and_then(|location| location.country.as_deref());
    let third_location = location_country.is_some_and(|country| !parties.contains(&country)) && !remote;

    let mode = if remote {
        Some("phone")
    } else if multilateral {
        Some("multilateral")
    } else if !hosts.is_empty() {
        Some("visit")
    } else if third_location {
        Some("third-party")
    } else {
        None
    };
    let plover = PloverCoding {
        event_type: PLOVER_CONSULT,
        mode,
    };
    let pairwise = |code: CameoCode| -> Vec<CameoCoding> {
        let mut codings = Vec::new();
        for source in &parties {
            for target in &parties {
                if source != target {
                    codings.push(CameoCoding {
                        code,
                        source: (*source).to_owned(),
                        target: Some((*target).to_owned()),
                    });
                }
            }
        }
        codings
    };
    let cameo = if details.negotiation {
        pairwise(ENGAGE_IN_NEGOTIATION)
    } else if remote {
        pairwise(DISCUSS_BY_TELEPHONE)
    } else if !hosts.is_empty() {
        let mut codings = Vec::new();
        for host in &hosts {
            for guest in parties.iter().filter(|party| !hosts.contains(party)) {
                codings.push(CameoCoding {
                    code: MAKE_A_VISIT,
                    source: (*guest).to_owned(),
                    target: Some((*host).to_owned()),
                });
                codings.push(CameoCoding {
                    code: HOST_A_VISIT,
                    source: (*host).to_owned(),
                    target: Some((*guest).to_owned()),
                });
            }
        }
        codings
    } else if third_location {
        pairwise(MEET_AT_THIRD_LOCATION)
    } else {
        pairwise(CONSULT)
    };
    ExportMapping {
        table_version: MAPPING_TABLE_VERSION,
        cameo,
        plover,
    }
}
