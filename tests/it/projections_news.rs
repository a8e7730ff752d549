//! The news report (`dipledger::sample`) end to end: commands in, then
//! the Libya-France relation, the meeting's history, and as-of answers around a correction.

use std::time::Duration;

use crate::support::projections::*;
use dipledger::domain::commitment::{self, CommitmentDetails, CommitmentKind, CooperationKind, Specificity};
use dipledger::domain::common::{CommitmentId, MeetingId, OfficialId};
use dipledger::domain::meeting::{self, Location, MeetingDetails, MeetingFormat, Participant, Speaker};
use dipledger::domain::official::{self, OfficeTerm};
use dipledger::domain::party::{self, PartyDetails, PartyKind};
use dipledger::domain::source::{self, SourceDetails};
use dipledger::domain::DomainCommand;
use dipledger::projections::{
    AsOf, CommitmentStatusView, MeetingFilter, MeetingStatusView, PageRequest, ProjectionName, Projections,
    ReadOptions, TimelineItem,
};
use dipledger::time::Timestamp;
use uuid::Uuid;

const TEXT_TALKS: &str = "On Wednesday, Libya’s National Security Adviser Ibrahim Bushnaf met with the French Ambassador to Libya, Mostafa Mihraje, in Benghazi to discuss strengthening ties between the two nations.";
const TEXT_REAFFIRMED: &str = "The two nations reaffirmed their commitment to work closely to combat regional instability, promote peace, and address common challenges such as terrorism, cross-border crime, and migration.";

fn bushnaf() -> OfficialId {
    OfficialId::from_uuid(Uuid::from_u128(0xA1))
}
fn mihraje() -> OfficialId {
    OfficialId::from_uuid(Uuid::from_u128(0xB1))
}
fn meeting_id() -> MeetingId {
    MeetingId::from_uuid(Uuid::from_u128(0x3E))
}
fn commitment_id() -> CommitmentId {
    CommitmentId::from_uuid(Uuid::from_u128(0xC0))
}

fn state(name: &str, alpha2: &str, alpha3: &str, qid: &str) -> PartyDetails {
    PartyDetails {
        kind: PartyKind::State,
        name: name.into(),
        iso_alpha2: Some(alpha2.into()),
        iso_alpha3: Some(alpha3.into()),
        wikidata_qid: Some(qid.into()),
        cameo_code: Some(alpha3.into()),
    }
}

fn held_details(topics: &[&str]) -> MeetingDetails {
    MeetingDetails {
        format: MeetingFormat::Bilateral,
        participants: vec![
            Participant {
                party: "LBY".into(),
                official_id: Some(bushnaf()),
                role: None,
            },
            Participant {
                party: "FRA".into(),
                official_id: Some(mihraje()),
                role: None,
            },
        ],
        location: Some(Location {
            place: "Benghazi".into(),
            country: Some("LBY".into()),
        }),
        topics: topics.iter().map(|topic| (*topic).to_owned()).collect(),
        summary: Some("Talks on strengthening Libya-France ties.".into()),
        negotiation: false,
    }
}

fn commands() -> Vec<DomainCommand> {
    let cite = |quote: &str| cite_on(day(0), Some(quote));
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
            details: state("Libya", "LY", "LBY", "Q1016"),
            provenance: cite(TEXT_TALKS),
        }),
        DomainCommand::Party(party::Command::RegisterParty {
            code: "FRA".into(),
            details: state("France", "FR", "FRA", "Q142"),
            provenance: cite(TEXT_TALKS),
        }),
        DomainCommand::Official(official::Command::RegisterOfficial {
            official_id: bushnaf(),
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
            official_id: mihraje(),
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
            details: held_details(&["security", "regional-stability"]),
            ended_at: None,
            provenance: cite(TEXT_TALKS),
        }),
        DomainCommand::Meeting(meeting::Command::RecordStatement {
            meeting_id: meeting_id(),
            speaker: Speaker {
                party: "LBY".into(),
                official_id: Some(bushnaf()),
            },
            text: "Emphasized the importance of enhanced bilateral collaboration.".into(),
            verbatim: false,
            provenance: cite("Bushnaf emphasized the importance of enhanced bilateral collaboration"),
        }),
        DomainCommand::Commitment(commitment::Command::RecordCommitment {
            commitment_id: commitment_id(),
            details: CommitmentDetails {
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
            },
            provenance: cite(TEXT_REAFFIRMED),
        }),
    ]
}

#[test]
fn news_report_end_to_end() {
    let (_dir, log) = temp_log();
    let projections = Projections::open(log.clone()).expect("open projections");
    let mut last = 0;
    for command in commands() {
        last = record(&log, &command, "analyst-amira").expect("accepted");
    }
    // Read your own write: wait for the position the last command returned.
    let options = ReadOptions::latest()
        .min_position(last)
        .wait(Duration::from_secs(10));

    let relation = projections
        .relation("LBY", "FRA", &PageRequest::first(10), &options)
        .expect("relation");
    assert!(relation.based_on_position() >= last);
    let relation = relation.into_value();
    assert_eq!(relation.pair, "FRA-LBY");
    let summary = &relation.summary;
    assert_eq!(summary.meetings, 1);
    assert_eq!(summary.meetings_held_by_month.get("2025-01"), Some(&1));
    assert_eq!(summary.commitments, 1);
    assert_eq!(summary.commitments_open, 1);
    assert_eq!(summary.commitments_fulfilled, 0);
    for topic in ["security", "terrorism", "cross-border-crime", "migration"] {
        assert_eq!(summary.topics.get(topic), Some(&1), "{topic}");
    }
    assert_eq!(summary.topics.get("regional-stability"), Some(&2));
    // CAMEO 040 both ways (2 x 1.0) + CAMEO 030 both ways (2 x 4.0).
    assert_eq!(summary.goldstein_tenths_by_month.get("2025-01"), Some(&100));
    assert_eq!(relation.timeline.len(), 2);
    // Same day: the timeline orders by valid time, then kind and id.
    let meeting = relation
        .timeline
        .iter()
        .find_map(|item| match item {
            TimelineItem::Meeting(row) => Some(row),
            TimelineItem::Commitment(_) => None,
        })
        .expect("the meeting is on the timeline");
    assert_eq!(meeting.meeting_id, meeting_id());
    assert_eq!(meeting.status, MeetingStatusView::Held);
    assert_eq!(meeting.details.location.as_ref().unwrap().place, "Benghazi");
    // A timeline's meetings count their statements; the meeting's own answer lists them.
    assert!(meeting.statements.is_empty());
    assert_eq!(meeting.statement_count, 1);
    let commitment = relation
        .timeline
        .iter()
        .find_map(|item| match item {
            TimelineItem::Commitment(row) => Some(row),
            TimelineItem::Meeting(_) => None,
        })
        .expect("the commitment is on the timeline");
    assert_eq!(commitment.details.kind, CommitmentKind::Reaffirmation);
    assert_eq!(commitment.status, CommitmentStatusView::Made);
    assert_eq!(commitment.details.made_at_meeting, Some(meeting_id()));

    // The meeting's history: who recorded what, from which source.
    let history = projections
        .history(&meeting_id().stream_id(), &PageRequest::first(10), &options)
        .expect("history")
        .into_items();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].event_type, "MeetingHeld");
    assert_eq!(history[1].event_type, "StatementRecorded");
    for entry in &history {
        assert_eq!(entry.recorded_by, "analyst-amira");
        assert_eq!(entry.sources.len(), 1);
        assert_eq!(entry.sources[0].citation.source_id, source_id());
        assert_eq!(
            entry.sources[0].url.as_deref(),
            Some("file:data/news-libya-france-benghazi.txt")
        );
    }
    assert_eq!(history[0].sources[0].citation.quote.as_deref(), Some(TEXT_TALKS));

    // Officials: who held the post on the day, and who met whom.
    let holders = projections
        .post_holders(
            "ambassador of france to libya",
            day(0).at(),
            &PageRequest::default(),
            &options,
        )
        .expect("holders")
        .into_items();
    assert_eq!(holders.len(), 1);
    assert_eq!(holders[0].name, "Mostafa Mihraje");
    let contacts = projections
        .contacts(bushnaf(), &options)
        .expect("contacts")
        .into_value();
    assert_eq!(contacts.met.get(&mihraje().to_string()), Some(&1));

    // Parties and sources.
    let parties = projections
        .parties(&PageRequest::default(), &options)
        .expect("parties");
    let codes: Vec<&str> = parties.items().iter().map(|party| party.code.as_str()).collect();
    assert_eq!(codes, ["FRA", "LBY"]);
    assert_eq!(
        projections
            .sources(&PageRequest::default(), &options)
            .expect("sources")
            .items()
            .len(),
        1
    );
    let by_place = projections
        .meetings(
            &MeetingFilter {
                place: Some("benghazi".into()),
                ..MeetingFilter::default()
            },
            &PageRequest::default(),
            &options,
        )
        .expect("by place");
    assert_eq!(by_place.items().len(), 1);
}

#[test]
fn as_of_before_and_after_a_correction() {
    let (_dir, log) = temp_log();
    let projections = Projections::open_paused(log.clone()).expect("open");
    let mut before = 0;
    for command in commands() {
        before = record(&log, &command, "analyst-amira").expect("accepted");
    }
    // The meeting was about migration too, not security: a correction of version 1.
    let corrected = record(
        &log,
        &DomainCommand::Meeting(meeting::Command::CorrectMeeting {
            meeting_id: meeting_id(),
            corrects_version: 1,
            reason: "the report mentions migration, not security".into(),
            details: held_details(&["migration", "regional-stability"]),
            provenance: cite_on(day(0), None),
        }),
        "editor-omar",
    )
    .expect("correction accepted");
    projections.catch_up().expect("catch up");
    assert_eq!(projections.checkpoint(ProjectionName::Relations), corrected);

    let at_before = ReadOptions::latest().as_of(AsOf::Position(before));
    let now = ReadOptions::latest();
    let old = projections.meeting(meeting_id(), &at_before).expect("old");
    let new = projections.meeting(meeting_id(), &now).expect("new");
    assert_eq!(old.based_on_position(), before);
    assert_eq!(new.based_on_position(), corrected);
    assert_eq!(old.value().details.topics, ["security", "regional-stability"]);
    assert_eq!(new.value().details.topics, ["migration", "regional-stability"]);
    assert_eq!(new.value().details_version, 3);
    // Everything else is unchanged by the correction.
    let mut expected = old.value().clone();
    expected.details.topics = new.value().details.topics.clone();
    expected.details_version = 3;
    expected.stream_version = 3;
    expected.last_position = corrected;
    assert_eq!(&expected, new.value());

    // Lists by topic: the meeting moves from `security` to `migration`, as of each position.
    let by_topic = |topic: &str, options: &ReadOptions| {
        let filter = MeetingFilter {
            topic: Some(topic.into()),
            ..MeetingFilter::default()
        };
        projections
            .meetings(&filter, &PageRequest::default(), options)
            .expect("list")
            .items()
            .len()
    };
    assert_eq!(by_topic("security", &at_before), 1);
    assert_eq!(by_topic("migration", &at_before), 0);
    assert_eq!(by_topic("security", &now), 0);
    assert_eq!(by_topic("migration", &now), 1);

    // The relation's topic counts differ by exactly the corrected topics.
    let relation = |options: &ReadOptions| {
        projections
            .relation("FRA", "LBY", &PageRequest::default(), options)
            .expect("relation")
            .into_value()
            .summary
    };
    let (old_summary, new_summary) = (relation(&at_before), relation(&now));
    let mut expected = old_summary.clone();
    expected.topics.remove("security");
    *expected.topics.get_mut("migration").unwrap() += 1;
    assert_eq!(new_summary, expected);

    // as_of_time maps to the highest position recorded at or before the time.
    let recorded_at = log.read_event(before).unwrap().envelope().recorded_at;
    let by_time = projections
        .meeting(
            meeting_id(),
            &ReadOptions::latest().as_of(AsOf::Time(recorded_at)),
        )
        .expect("by time");
    assert!(by_time.based_on_position() >= before);

    // History shows both, the correction pointing at what it corrects.
    let history = projections
        .history(&meeting_id().stream_id(), &PageRequest::default(), &now)
        .expect("history")
        .into_items();
    assert_eq!(history.len(), 3);
    assert_eq!(history[0].corrected_by, Some(3));
    assert_eq!(history[2].corrects_version, Some(1));
    assert_eq!(history[2].recorded_by, "editor-omar");
    let history_before = projections
        .history(&meeting_id().stream_id(), &PageRequest::default(), &at_before)
        .expect("history before")
        .into_items();
    assert_eq!(history_before.len(), 2);
    assert_eq!(history_before[0].corrected_by, None);
}
