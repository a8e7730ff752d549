//! Fixtures shared by the domain integration tests.

use dipledger::domain::commitment::{CommitmentDetails, CommitmentKind, CooperationKind, Specificity};
use dipledger::domain::common::{CommitmentId, MeetingId, OfficialId, Provenance, SourceCitation, SourceId};
use dipledger::domain::meeting::{Location, MeetingDetails, MeetingFormat, Participant};
use dipledger::domain::party::{PartyDetails, PartyKind};
use dipledger::domain::Rejection;
use dipledger::time::{OccurredAt, Precision, Timestamp};
use uuid::Uuid;

/// 2025-01-15T00:00:00Z, a Wednesday (an assumed date: the report gives only the weekday).
pub const WEDNESDAY_MICROS: i64 = 1_736_899_200_000_000;
pub const DAY_MICROS: i64 = 86_400_000_000;

pub fn day(offset_days: i64) -> OccurredAt {
    OccurredAt::new(
        Timestamp::from_unix_micros(WEDNESDAY_MICROS + offset_days * DAY_MICROS),
        Precision::Day,
    )
}

pub fn uuid(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

pub fn source_id() -> SourceId {
    SourceId::from_uuid(uuid(0x50))
}
pub fn official_a() -> OfficialId {
    OfficialId::from_uuid(uuid(0xA1))
}
pub fn official_b() -> OfficialId {
    OfficialId::from_uuid(uuid(0xB1))
}
pub fn meeting_id() -> MeetingId {
    MeetingId::from_uuid(uuid(0x3E))
}
pub fn commitment_id() -> CommitmentId {
    CommitmentId::from_uuid(uuid(0xC0))
}

pub fn provenance_on(occurred_at: OccurredAt) -> Provenance {
    Provenance {
        occurred_at,
        sources: vec![SourceCitation {
            source_id: source_id(),
            quote: None,
        }],
    }
}

pub fn provenance() -> Provenance {
    provenance_on(day(0))
}

pub fn party_details(name: &str) -> PartyDetails {
    PartyDetails {
        kind: PartyKind::State,
        name: name.into(),
        iso_alpha2: None,
        iso_alpha3: None,
        wikidata_qid: None,
        cameo_code: None,
    }
}

pub fn participant(party: &str, official: Option<OfficialId>) -> Participant {
    Participant {
        party: party.into(),
        official_id: official,
        role: None,
    }
}

pub fn meeting_details() -> MeetingDetails {
    MeetingDetails {
        format: MeetingFormat::Bilateral,
        participants: vec![
            participant("LBY", Some(official_a())),
            participant("FRA", Some(official_b())),
        ],
        location: Some(Location {
            place: "Benghazi".into(),
            country: Some("LBY".into()),
        }),
        topics: vec!["security".into(), "regional-stability".into()],
        summary: None,
        negotiation: false,
    }
}

pub fn commitment_details() -> CommitmentDetails {
    CommitmentDetails {
        kind: CommitmentKind::New,
        committing_parties: vec!["LBY".into(), "FRA".into()],
        voiced_by: vec![],
        counterparties: vec![],
        text: "work closely together".into(),
        verbatim: true,
        topics: vec!["security".into()],
        specificity: Specificity::Aspirational,
        cooperation: CooperationKind::Unspecified,
        due_by: None,
        made_at_meeting: None,
    }
}

/// The fields named by a validation rejection (panics with the rejection otherwise).
pub fn invalid_fields(result: Result<impl std::fmt::Debug, Rejection>) -> Vec<String> {
    match result {
        Err(Rejection::Invalid(violations)) => {
            violations.into_iter().map(|violation| violation.field).collect()
        }
        other => panic!("expected a validation rejection, got {other:?}"),
    }
}

/// The code of a rule rejection (panics otherwise).
pub fn rule_code(result: Result<impl std::fmt::Debug, Rejection>) -> &'static str {
    match result {
        Err(Rejection::Rule { code, .. }) => code,
        other => panic!("expected a rule rejection, got {other:?}"),
    }
}
