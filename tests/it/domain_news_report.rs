//! The sample news report (`dipledger::sample`) recorded as commands: the
//! events produced, the final states, the tags and the CAMEO/PLOVER coding.
//!
//! The report gives no calendar date ("On Wednesday"), no URL, publisher or title. The test uses
//! an assumed Wednesday (2025-01-15) with day precision and identifies the document by its file
//! path; roles (host/visitor) are not stated, so none are recorded, and the meeting maps to
//! CAMEO 040 Consult.

use crate::support::domain::*;
use dipledger::domain::cameo::{map_event, CONSULT, EXPRESS_INTENT_TO_COOPERATE, PLOVER_AGREE};
use dipledger::domain::commitment::CommitmentStatus;
use dipledger::domain::meeting::{self, MeetingStatus};
use dipledger::domain::official;
use dipledger::domain::{decide_command, decode_event, evolve_state, AggregateState, DomainEvent, EntityRef};
use dipledger::time::{OccurredAt, Precision};

use dipledger::sample::{held_details, news_report_commands as commands, reaffirmed_details};

/// Runs each command against the state of its stream, like the ledger would, checking that
/// every referenced entity was created earlier. Returns (stream, event) in order.
fn record() -> Vec<(String, DomainEvent)> {
    let mut log: Vec<(String, DomainEvent)> = Vec::new();
    for command in commands() {
        let stream = command.stream_id();
        for reference in command.references() {
            let exists = log.iter().any(|(other, _)| *other == reference.stream_id());
            assert!(exists, "{stream} references missing {reference:?}");
        }
        let state = log
            .iter()
            .filter(|(other, _)| *other == stream)
            .fold(AggregateState::empty_for(&command), |state, (_, event)| {
                evolve_state(state, event)
            });
        let events = decide_command(&state, &command).expect("accepted");
        log.extend(events.into_iter().map(|event| (stream.clone(), event)));
    }
    log
}

fn fold(log: &[(String, DomainEvent)], stream: &str) -> AggregateState {
    let mut events = log.iter().filter(|(other, _)| other == stream);
    let (_, first) = events.next().expect("stream has events");
    events.fold(
        evolve_state(AggregateState::empty_for_event(first), first),
        |state, (_, event)| evolve_state(state, event),
    )
}

#[test]
fn the_report_produces_the_expected_events() {
    let log = record();
    let types: Vec<(&str, &str)> = log
        .iter()
        .map(|(stream, event)| (stream.split('-').next().unwrap_or(""), event.event_type()))
        .collect();
    assert_eq!(
        types,
        [
            ("source", "SourceRegistered"),
            ("party", "PartyRegistered"),
            ("party", "PartyRegistered"),
            ("official", "OfficialRegistered"),
            ("official", "OfficialAppointed"),
            ("official", "OfficialRegistered"),
            ("official", "OfficialAppointed"),
            ("meeting", "MeetingHeld"),
            ("meeting", "StatementRecorded"),
            ("commitment", "CommitmentRecorded"),
        ]
    );
    // Every payload round-trips through the stored form.
    for (_, event) in &log {
        let decoded = decode_event(
            event.event_type(),
            event.schema_version(),
            &event.encode_payload(),
        )
        .expect("decodes");
        assert_eq!(&decoded, event);
    }
}

#[test]
fn the_report_references_and_tags() {
    let commands = commands();
    assert_eq!(
        commands[4].references(),
        [
            EntityRef::Source(source_id()),
            EntityRef::Party("FRA".into()),
            EntityRef::Party("LBY".into()),
        ]
    );
    assert_eq!(
        commands[7].references(),
        [
            EntityRef::Source(source_id()),
            EntityRef::Party("LBY".into()),
            EntityRef::Party("FRA".into()),
            EntityRef::Meeting(meeting_id()),
        ]
    );
    let log = record();
    let held = &log[7].1;
    assert_eq!(
        held.tags(),
        [
            meeting_id().tag(),
            "party:LBY".into(),
            "party:FRA".into(),
            "country:LBY".into(),
            official_a().tag(),
            official_b().tag(),
            "topic:security".into(),
            "topic:regional-stability".into(),
            source_id().tag(),
        ]
    );
    let commitment_tags = log[9].1.tags();
    for expected in [
        "topic:terrorism",
        "topic:cross-border-crime",
        "topic:migration",
        "topic:regional-stability",
        "party:LBY",
        "party:FRA",
    ] {
        assert!(commitment_tags.contains(&expected.to_owned()), "{expected}");
    }
    assert!(commitment_tags.contains(&meeting_id().tag()));
}

#[test]
fn the_report_builds_the_expected_state() {
    let log = record();
    let AggregateState::Meeting(meeting) = fold(&log, &meeting_id().stream_id()) else {
        panic!("meeting state expected");
    };
    assert_eq!(meeting.status(), Some(MeetingStatus::Held));
    assert_eq!(
        meeting.held_at(),
        Some(OccurredAt::new(day(0).at(), Precision::Day))
    );
    assert_eq!(meeting.details(), Some(&held_details()));
    // The state names its statement in effect; the text stays in the event.
    assert_eq!(meeting.statement_versions().collect::<Vec<_>>(), [2]);
    let statements: Vec<&meeting::StatementRecorded> = log
        .iter()
        .filter_map(|(stream, event)| match event {
            DomainEvent::Meeting(meeting::Event::StatementRecorded(statement))
                if *stream == meeting_id().stream_id() =>
            {
                Some(statement)
            }
            _ => None,
        })
        .collect();
    assert_eq!(statements.len(), 1);
    assert_eq!(statements[0].speaker.official_id, Some(official_a()));
    assert!(!statements[0].verbatim);
    assert_eq!(meeting.version(), 2);

    let AggregateState::Commitment(commitment) = fold(&log, &commitment_id().stream_id()) else {
        panic!("commitment state expected");
    };
    assert_eq!(commitment.status(), Some(CommitmentStatus::Made));
    assert_eq!(commitment.details(), Some(&reaffirmed_details()));
    assert_eq!(commitment.details().and_then(|details| details.due_by), None);

    // "Who was France's ambassador to Libya on that Wednesday?"
    let ambassador = fold(&log, &official_b().stream_id());
    let bushnaf = fold(&log, &official_a().stream_id());
    let (AggregateState::Official(ambassador), AggregateState::Official(bushnaf)) = (ambassador, bushnaf)
    else {
        panic!("official states expected");
    };
    let holders: Vec<&str> = official::holders_on([&ambassador, &bushnaf], "FRA", Some("LBY"), day(0).at())
        .map(|(official, _)| official.name())
        .collect();
    assert_eq!(holders, ["Mostafa Mihraje"]);
    // Nothing is known before the report: the start of his tenure is not given.
    assert_eq!(
        official::holders_on([&ambassador], "FRA", Some("LBY"), day(-1).at()).count(),
        0
    );
    assert_eq!(bushnaf.offices()[0].post(), "National Security Adviser");

    let AggregateState::Party(libya) = fold(&log, "party-LBY") else {
        panic!("party state expected");
    };
    assert_eq!(
        libya.details().map(|details| details.name.as_str()),
        Some("Libya")
    );
}

#[test]
fn the_report_maps_to_cameo_and_plover() {
    let log = record();
    let held = map_event(&log[7].1).expect("meeting held maps");
    assert_eq!(held.plover.event_type, "CONSULT");
    assert_eq!(held.plover.mode, None, "no host stated: plain consult");
    let dyads: Vec<(&str, &str, Option<&str>)> = held
        .cameo
        .iter()
        .map(|coding| (coding.code.code, coding.source.as_str(), coding.target.as_deref()))
        .collect();
    assert_eq!(dyads, [("040", "LBY", Some("FRA")), ("040", "FRA", Some("LBY"))]);
    assert_eq!(held.cameo[0].code, CONSULT);

    let commitment = map_event(&log[9].1).expect("commitment maps");
    assert_eq!(commitment.plover.event_type, PLOVER_AGREE);
    assert!(commitment
        .cameo
        .iter()
        .all(|coding| coding.code == EXPRESS_INTENT_TO_COOPERATE));
    assert_eq!(commitment.cameo.len(), 2);

    assert!(map_event(&log[0].1).is_none(), "registrations do not map");
}
