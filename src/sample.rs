//! The sample news report as domain commands: a January 2025 report of a meeting in Benghazi
//! between Libya's and France's officials (the Libyan side and the French Ambassador to Libya),
//! with their statements. Built into the library so tests, benchmarks and `dipledger demo` need
//! no file. It lives beside the domain, not in it: it is data, not rules, and `dipledger demo`
//! (a product verb) records it, so it cannot be test-only.
//!
//! The report gives no calendar date ("On Wednesday"), no URL, publisher or title. The commands
//! use an assumed Wednesday (2025-01-15) with day precision and identify the document by its
//! file path; roles (host/visitor) are not stated, so none are recorded. Ids are fixed so the
//! scenario is reproducible.

use uuid::Uuid;

use crate::domain::commitment::{self, CommitmentDetails, CommitmentKind, CooperationKind, Specificity};
use crate::domain::common::{CommitmentId, MeetingId, OfficialId, Provenance, SourceCitation, SourceId};
use crate::domain::meeting::{self, Location, MeetingDetails, MeetingFormat, Participant, Speaker};
use crate::domain::official::{self, OfficeTerm};
use crate::domain::party::{self, PartyDetails, PartyKind};
use crate::domain::source::{self, SourceDetails};
use crate::domain::DomainCommand;
use crate::time::{OccurredAt, Precision, Timestamp};

/// 2025-01-15T00:00:00Z, a Wednesday (assumed: the report gives only the weekday).
pub const WEDNESDAY_MICROS: i64 = 1_736_899_200_000_000;
/// One day in microseconds.
pub const DAY_MICROS: i64 = 86_400_000_000;

/// The assumed Wednesday plus `offset_days`, at day precision.
pub fn day(offset_days: i64) -> OccurredAt {
    OccurredAt::new(
        Timestamp::from_unix_micros(WEDNESDAY_MICROS + offset_days * DAY_MICROS),
        Precision::Day,
    )
}

/// The report's source id.
pub fn source_id() -> SourceId {
    SourceId::from_uuid(Uuid::from_u128(0x50))
}
/// Ibrahim Bushnaf.
pub fn official_a() -> OfficialId {
    OfficialId::from_uuid(Uuid::from_u128(0xA1))
}
/// Mostafa Mihraje.
pub fn official_b() -> OfficialId {
    OfficialId::from_uuid(Uuid::from_u128(0xB1))
}
/// The Benghazi meeting.
pub fn meeting_id() -> MeetingId {
    MeetingId::from_uuid(Uuid::from_u128(0x3E))
}
/// The reaffirmed commitment.
pub fn commitment_id() -> CommitmentId {
    CommitmentId::from_uuid(Uuid::from_u128(0xC0))
}

fn participant(party: &str, official: Option<OfficialId>) -> Participant {
    Participant {
        party: party.into(),
        official_id: official,
        role: None,
    }
}

/// Quoted from the report: the meeting.
pub const TEXT_TALKS: &str = "On Wednesday, Libya’s National Security Adviser Ibrahim Bushnaf met with the French Ambassador to Libya, Mostafa Mihraje, in Benghazi to discuss strengthening ties between the two nations.";
/// Quoted from the report: Bushnaf's emphasis.
pub const TEXT_EMPHASIS: &str = "Bushnaf emphasized the importance of enhanced bilateral collaboration to address shared concerns and achieve mutual goals.";
/// Quoted from the report: the reaffirmation.
pub const TEXT_REAFFIRMED: &str = "The two nations reaffirmed their commitment to work closely to combat regional instability, promote peace, and address common challenges such as terrorism, cross-border crime, and migration.";

/// Provenance citing the report with `quote`, on the assumed Wednesday.
pub fn cite(quote: &str) -> Provenance {
    Provenance {
        occurred_at: day(0),
        sources: vec![SourceCitation {
            source_id: source_id(),
            quote: Some(quote.into()),
        }],
    }
}

/// The report as commands, in an order the ledger accepts (sources and parties first).
pub fn news_report_commands() -> Vec<DomainCommand> {
    let libya = PartyDetails {
        kind: PartyKind::State,
        name: "Libya".into(),
        iso_alpha2: Some("LY".into()),
        iso_alpha3: Some("LBY".into()),
        wikidata_qid: Some("Q1016".into()),
        cameo_code: Some("LBY".into()),
    };
    let france = PartyDetails {
        kind: PartyKind::State,
        name: "France".into(),
        iso_alpha2: Some("FR".into()),
        iso_alpha3: Some("FRA".into()),
        wikidata_qid: Some("Q142".into()),
        cameo_code: Some("FRA".into()),
    };
    vec![
        DomainCommand::Source(source::Command::RegisterSource {
            source_id: source_id(),
            details: SourceDetails {
                url: Some("file:data/news-libya-france-benghazi.txt".into()),
                publisher: None,
                title: None,
                published_at: None,
                retrieved_at: Timestamp::from_unix_micros(WEDNESDAY_MICROS + 2 * DAY_MICROS),
                language: "en".into(),
            },
        }),
        DomainCommand::Party(party::Command::RegisterParty {
            code: "LBY".into(),
            details: libya,
            provenance: cite(TEXT_TALKS),
        }),
        DomainCommand::Party(party::Command::RegisterParty {
            code: "FRA".into(),
            details: france,
            provenance: cite(TEXT_TALKS),
        }),
        DomainCommand::Official(official::Command::RegisterOfficial {
            official_id: official_a(),
            name: "Ibrahim Bushnaf".into(),
            offices: vec![OfficeTerm {
                post: "National Security Adviser".into(),
                party: "LBY".into(),
                accredited_to: None,
                from: None,
                to: None,
            }],
            provenance: cite(TEXT_TALKS),
        }),
        DomainCommand::Official(official::Command::RegisterOfficial {
            official_id: official_b(),
            name: "Mostafa Mihraje".into(),
            offices: vec![OfficeTerm {
                post: "Ambassador of France to Libya".into(),
                party: "FRA".into(),
                accredited_to: Some("LBY".into()),
                from: None,
                to: None,
            }],
            provenance: cite(TEXT_TALKS),
        }),
        DomainCommand::Meeting(meeting::Command::RecordMeetingHeld {
            meeting_id: meeting_id(),
            details: held_details(),
            ended_at: None,
            provenance: cite(TEXT_TALKS),
        }),
        DomainCommand::Meeting(meeting::Command::RecordStatement {
            meeting_id: meeting_id(),
            speaker: Speaker {
                party: "LBY".into(),
                official_id: Some(official_a()),
            },
            text: "Emphasized the importance of enhanced bilateral collaboration to address shared concerns and achieve mutual goals.".into(),
            verbatim: false,
            provenance: cite(TEXT_EMPHASIS),
        }),
        DomainCommand::Commitment(commitment::Command::RecordCommitment {
            commitment_id: commitment_id(),
            details: reaffirmed_details(),
            provenance: cite(TEXT_REAFFIRMED),
        }),
    ]
}

/// The Benghazi meeting as recorded.
pub fn held_details() -> MeetingDetails {
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
        summary: Some(
            "Talks on strengthening Libya-France ties, focused on deepening cooperation in \
             security and regional stability; highlighted the need for increased dialogue and \
             coordination on regional security and political issues."
                .into(),
        ),
        negotiation: false,
    }
}

/// The reaffirmed commitment as recorded.
pub fn reaffirmed_details() -> CommitmentDetails {
    CommitmentDetails {
        kind: CommitmentKind::Reaffirmation,
        committing_parties: vec!["LBY".into(), "FRA".into()],
        voiced_by: vec![],
        counterparties: vec![],
        text: "work closely to combat regional instability, promote peace, and address common \
               challenges such as terrorism, cross-border crime, and migration"
            .into(),
        verbatim: true,
        topics: vec![
            "terrorism".into(),
            "cross-border-crime".into(),
            "migration".into(),
            "regional-stability".into(),
        ],
        specificity: Specificity::Aspirational,
        cooperation: CooperationKind::Unspecified,
        due_by: None,
        made_at_meeting: Some(meeting_id()),
    }
}
