//! Given / when / then tables for every command of every aggregate: each allowed transition,
//! each rule rejection and each validation error (by field path).

use crate::support::domain::*;
use dipledger::domain::commitment::{self, AssessmentStage, PartyScore, Specificity};
use dipledger::domain::common::{
    CommitmentId, Provenance, SourceCitation, TimeWindow, WindowKind, MAX_NAME_LEN, MAX_PARTICIPANTS,
    MAX_QUOTE_LEN, MAX_SOURCES_PER_COMMAND, MAX_TEXT_LEN, MAX_TOPICS,
};
use dipledger::domain::meeting::{self, MeetingFormat, ParticipantRole, Speaker};
use dipledger::domain::official::{self, OfficeTerm};
use dipledger::domain::party;
use dipledger::domain::source::{self, SourceDetails};
use dipledger::domain::{
    decide_command, evolve_state, AggregateState, DomainCommand, DomainEvent, Rejection,
};
use dipledger::time::Timestamp;

/// The expected outcome of a command.
#[derive(Debug)]
enum Then {
    Events(&'static [&'static str]),
    Rule(&'static str),
    Invalid(&'static [&'static str]),
    NotFound,
    AlreadyExists,
}

/// Folds the events of the `given` commands (each must be accepted), then decides `when`.
fn run(given: &[DomainCommand], when: &DomainCommand) -> Result<Vec<DomainEvent>, Rejection> {
    let mut state = AggregateState::empty_for(when);
    for command in given {
        let events = decide_command(&state, command)
            .unwrap_or_else(|rejection| panic!("given {command:?} rejected: {rejection}"));
        for event in &events {
            state = evolve_state(state, event);
        }
    }
    decide_command(&state, when)
}

fn check(table: &[(&str, Vec<DomainCommand>, DomainCommand, Then)]) {
    for (name, given, when, then) in table {
        let result = run(given, when);
        let matches = match (then, &result) {
            (Then::Events(expected), Ok(events)) => {
                let types: Vec<&str> = events.iter().map(DomainEvent::event_type).collect();
                types == *expected
            }
            (Then::Rule(expected), Err(Rejection::Rule { code, .. })) => code == expected,
            (Then::Invalid(expected), Err(Rejection::Invalid(violations))) => {
                let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
                fields == *expected
            }
            (Then::NotFound, Err(Rejection::NotFound { .. })) => true,
            (Then::AlreadyExists, Err(Rejection::AlreadyExists { .. })) => true,
            _ => false,
        };
        assert!(matches, "{name}: expected {then:?}, got {result:?}");
    }
}

// ---- party ----------------------------------------------------------------------------------

fn register_party(code: &str) -> DomainCommand {
    DomainCommand::Party(party::Command::RegisterParty {
        code: code.into(),
        details: party_details("Libya"),
        provenance: provenance(),
    })
}

fn correct_party(version: u64) -> DomainCommand {
    DomainCommand::Party(party::Command::CorrectParty {
        code: "LBY".into(),
        corrects_version: version,
        reason: "wrong name".into(),
        details: party_details("State of Libya"),
        provenance: provenance(),
    })
}

#[test]
fn party_table() {
    let mut bad_details = party_details("");
    bad_details.iso_alpha2 = Some("LBY".into());
    bad_details.iso_alpha3 = Some("ly".into());
    bad_details.wikidata_qid = Some("1016".into());
    bad_details.cameo_code = Some("L".into());
    check(&[
        (
            "register",
            vec![],
            register_party("LBY"),
            Then::Events(&["PartyRegistered"]),
        ),
        (
            "register twice",
            vec![register_party("LBY")],
            register_party("LBY"),
            Then::AlreadyExists,
        ),
        (
            "bad code",
            vec![],
            register_party("lby"),
            Then::Invalid(&["code"]),
        ),
        (
            "bad details",
            vec![],
            DomainCommand::Party(party::Command::RegisterParty {
                code: "LBY".into(),
                details: bad_details,
                provenance: Provenance {
                    occurred_at: day(0),
                    sources: vec![],
                },
            }),
            Then::Invalid(&[
                "provenance.sources",
                "details.name",
                "details.iso_alpha2",
                "details.iso_alpha3",
                "details.cameo_code",
                "details.wikidata_qid",
            ]),
        ),
        (
            "correct",
            vec![register_party("LBY")],
            correct_party(1),
            Then::Events(&["PartyCorrected"]),
        ),
        (
            "correct twice in a row",
            vec![register_party("LBY"), correct_party(1)],
            correct_party(2),
            Then::Events(&["PartyCorrected"]),
        ),
        (
            "correct superseded",
            vec![register_party("LBY"), correct_party(1)],
            correct_party(1),
            Then::Rule("correction.superseded"),
        ),
        (
            "correct missing version",
            vec![register_party("LBY")],
            correct_party(5),
            Then::Rule("version.not_found"),
        ),
        ("correct unknown party", vec![], correct_party(1), Then::NotFound),
    ]);
}

// ---- source ---------------------------------------------------------------------------------

fn source_details() -> SourceDetails {
    SourceDetails {
        url: Some("https://example.org/news/1".into()),
        publisher: Some("Example News".into()),
        title: None,
        published_at: Some(day(0)),
        retrieved_at: Timestamp::from_unix_micros(WEDNESDAY_MICROS + DAY_MICROS),
        language: "en".into(),
    }
}

fn register_source(details: SourceDetails) -> DomainCommand {
    DomainCommand::Source(source::Command::RegisterSource {
        source_id: source_id(),
        details,
    })
}

fn correct_source(version: u64, reason: &str) -> DomainCommand {
    DomainCommand::Source(source::Command::CorrectSource {
        source_id: source_id(),
        corrects_version: version,
        reason: reason.into(),
        details: source_details(),
    })
}

#[test]
fn source_table() {
    let mut no_locator = source_details();
    no_locator.url = None;
    let mut bad = source_details();
    bad.url = Some("not a url".into());
    bad.language = "English".into();
    bad.published_at = Some(day(5));
    check(&[
        (
            "register",
            vec![],
            register_source(source_details()),
            Then::Events(&["SourceRegistered"]),
        ),
        (
            "register twice",
            vec![register_source(source_details())],
            register_source(source_details()),
            Then::AlreadyExists,
        ),
        (
            "url or title",
            vec![],
            register_source(no_locator),
            Then::Invalid(&["details.url"]),
        ),
        (
            "bad fields",
            vec![],
            register_source(bad),
            Then::Invalid(&["details.url", "details.published_at", "details.language"]),
        ),
        (
            "correct",
            vec![register_source(source_details())],
            correct_source(1, "typo"),
            Then::Events(&["SourceCorrected"]),
        ),
        (
            "correct without reason",
            vec![register_source(source_details())],
            correct_source(1, ""),
            Then::Invalid(&["reason"]),
        ),
        (
            "correct unknown",
            vec![],
            correct_source(1, "typo"),
            Then::NotFound,
        ),
    ]);
}

// ---- official -------------------------------------------------------------------------------

fn ambassador() -> OfficeTerm {
    OfficeTerm {
        post: "Ambassador of France to Libya".into(),
        party: "FRA".into(),
        accredited_to: Some("LBY".into()),
        from: Some(day(-100)),
        to: None,
    }
}

fn register_official(offices: Vec<OfficeTerm>) -> DomainCommand {
    DomainCommand::Official(official::Command::RegisterOfficial {
        official_id: official_b(),
        name: "Mostafa Mihraje".into(),
        offices,
        provenance: provenance(),
    })
}

fn appoint(office: OfficeTerm) -> DomainCommand {
    DomainCommand::Official(official::Command::AppointOfficial {
        official_id: official_b(),
        office,
        provenance: provenance(),
    })
}

fn end_tenure(version: u64, offset_days: i64) -> DomainCommand {
    DomainCommand::Official(official::Command::EndTenure {
        official_id: official_b(),
        tenure_version: version,
        ended_at: day(offset_days),
        reason: Some("end of mission".into()),
        provenance: provenance(),
    })
}

fn correct_name(version: u64, name: &str) -> DomainCommand {
    DomainCommand::Official(official::Command::CorrectOfficialName {
        official_id: official_b(),
        corrects_version: version,
        reason: "transliteration".into(),
        name: name.into(),
        provenance: provenance(),
    })
}

fn retract_official(version: u64) -> DomainCommand {
    DomainCommand::Official(official::Command::RetractOfficialEvent {
        official_id: official_b(),
        retracts_version: version,
        reason: "wrong person".into(),
        provenance: provenance(),
    })
}

#[test]
fn official_table() {
    let registered = || vec![register_official(vec![ambassador()])];
    let mut self_accredited = ambassador();
    self_accredited.accredited_to = Some("FRA".into());
    let mut backwards = ambassador();
    backwards.to = Some(day(-200));
    backwards.post = String::new();
    check(&[
        (
            "register with office",
            vec![],
            register_official(vec![ambassador()]),
            Then::Events(&["OfficialRegistered", "OfficialAppointed"]),
        ),
        (
            "register without office",
            vec![],
            register_official(vec![]),
            Then::Events(&["OfficialRegistered"]),
        ),
        (
            "register twice",
            registered(),
            register_official(vec![]),
            Then::AlreadyExists,
        ),
        (
            "register bad offices",
            vec![],
            register_official(vec![self_accredited, backwards]),
            Then::Invalid(&["offices[0].accredited_to", "offices[1].post", "offices[1].to"]),
        ),
        (
            "too many offices",
            vec![],
            register_official(vec![ambassador(); 9]),
            Then::Invalid(&["offices"]),
        ),
        (
            "appoint",
            registered(),
            appoint(ambassador()),
            Then::Events(&["OfficialAppointed"]),
        ),
        ("appoint unknown", vec![], appoint(ambassador()), Then::NotFound),
        (
            "end tenure",
            registered(),
            end_tenure(2, 10),
            Then::Events(&["TenureEnded"]),
        ),
        (
            "end tenure twice",
            vec![register_official(vec![ambassador()]), end_tenure(2, 10)],
            end_tenure(2, 11),
            Then::Rule("tenure.already_ended"),
        ),
        (
            "end before start",
            registered(),
            end_tenure(2, -101),
            Then::Rule("tenure.end_before_start"),
        ),
        (
            "end unknown tenure",
            registered(),
            end_tenure(1, 10),
            Then::Rule("tenure.not_found"),
        ),
        (
            "correct name",
            registered(),
            correct_name(1, "Mostafa Mihrage"),
            Then::Events(&["OfficialNameCorrected"]),
        ),
        (
            "correct appointment as name",
            registered(),
            correct_name(2, "X"),
            Then::Rule("version.not_targetable"),
        ),
        (
            "correct empty name",
            registered(),
            correct_name(1, " "),
            Then::Invalid(&["name"]),
        ),
        (
            "retract appointment",
            registered(),
            retract_official(2),
            Then::Events(&["OfficialEventRetracted"]),
        ),
        (
            "retract twice",
            vec![register_official(vec![ambassador()]), retract_official(2)],
            retract_official(2),
            Then::Rule("retraction.already_retracted"),
        ),
        (
            "retract registration",
            registered(),
            retract_official(1),
            Then::Rule("version.not_targetable"),
        ),
        (
            "end retracted tenure",
            vec![register_official(vec![ambassador()]), retract_official(2)],
            end_tenure(2, 10),
            Then::Rule("tenure.not_found"),
        ),
    ]);
}

#[test]
fn official_state_tracks_tenures_and_retractions() {
    let commands = [
        register_official(vec![ambassador()]),
        end_tenure(2, 10),
        retract_official(3),
    ];
    let mut state = AggregateState::empty_for(&commands[0]);
    let mut snapshots = Vec::new();
    for command in &commands {
        for event in decide_command(&state, command).expect("accepted") {
            state = evolve_state(state, &event);
        }
        snapshots.push(state.clone());
    }
    let AggregateState::Official(ended) = &snapshots[1] else {
        panic!()
    };
    assert!(ended.offices()[0].held_on(day(5).at()));
    assert!(!ended.offices()[0].held_on(day(10).at()));
    let AggregateState::Official(reopened) = &snapshots[2] else {
        panic!()
    };
    assert!(
        reopened.offices()[0].held_on(day(10).at()),
        "retracted end reopens the tenure"
    );
    assert_eq!(reopened.retracted_versions(), [3]);
}

// ---- meeting --------------------------------------------------------------------------------

fn window(start: i64, end: Option<i64>) -> TimeWindow {
    TimeWindow {
        start: day(start),
        end: end.map(day),
        kind: WindowKind::Span,
    }
}

fn propose() -> DomainCommand {
    DomainCommand::Meeting(meeting::Command::ProposeMeeting {
        meeting_id: meeting_id(),
        proposed_by: vec!["FRA".into()],
        details: meeting_details(),
        proposed_window: Some(window(5, None)),
        provenance: provenance(),
    })
}

fn schedule() -> DomainCommand {
    DomainCommand::Meeting(meeting::Command::ScheduleMeeting {
        meeting_id: meeting_id(),
        details: meeting_details(),
        window: window(5, Some(5)),
        provenance: provenance(),
    })
}

fn reschedule() -> DomainCommand {
    DomainCommand::Meeting(meeting::Command::RescheduleMeeting {
        meeting_id: meeting_id(),
        window: window(7, None),
        reason: None,
        provenance: provenance(),
    })
}

fn cancel() -> DomainCommand {
    DomainCommand::Meeting(meeting::Command::CancelMeeting {
        meeting_id: meeting_id(),
        cancelled_by: Vec::new(),
        reason: Some("security situation".into()),
        provenance: provenance(),
    })
}

fn postpone() -> DomainCommand {
    DomainCommand::Meeting(meeting::Command::PostponeMeeting {
        meeting_id: meeting_id(),
        reason: Some("the minister fell ill".into()),
        provenance: provenance(),
    })
}

fn cancel_by(parties: &[&str]) -> DomainCommand {
    DomainCommand::Meeting(meeting::Command::CancelMeeting {
        meeting_id: meeting_id(),
        cancelled_by: parties.iter().map(|party| (*party).to_owned()).collect(),
        reason: None,
        provenance: provenance(),
    })
}

fn propose_by(parties: &[&str]) -> DomainCommand {
    DomainCommand::Meeting(meeting::Command::ProposeMeeting {
        meeting_id: meeting_id(),
        proposed_by: parties.iter().map(|party| (*party).to_owned()).collect(),
        details: meeting_details(),
        proposed_window: None,
        provenance: provenance(),
    })
}

fn held() -> DomainCommand {
    DomainCommand::Meeting(meeting::Command::RecordMeetingHeld {
        meeting_id: meeting_id(),
        details: meeting_details(),
        ended_at: None,
        provenance: provenance_on(day(7)),
    })
}

fn held_with(details: meeting::MeetingDetails) -> DomainCommand {
    DomainCommand::Meeting(meeting::Command::RecordMeetingHeld {
        meeting_id: meeting_id(),
        details,
        ended_at: None,
        provenance: provenance(),
    })
}

fn statement(party: &str, official: Option<dipledger::domain::common::OfficialId>) -> DomainCommand {
    DomainCommand::Meeting(meeting::Command::RecordStatement {
        meeting_id: meeting_id(),
        speaker: Speaker {
            party: party.into(),
            official_id: official,
        },
        text: "We will work together.".into(),
        verbatim: true,
        provenance: provenance(),
    })
}

fn correct_meeting(version: u64) -> DomainCommand {
    let mut details = meeting_details();
    details.topics.push("migration".into());
    DomainCommand::Meeting(meeting::Command::CorrectMeeting {
        meeting_id: meeting_id(),
        corrects_version: version,
        reason: "topic omitted".into(),
        details,
        provenance: provenance(),
    })
}

fn retract_meeting(version: u64) -> DomainCommand {
    DomainCommand::Meeting(meeting::Command::RetractMeetingEvent {
        meeting_id: meeting_id(),
        retracts_version: version,
        reason: "misattributed".into(),
        provenance: provenance(),
    })
}

#[test]
fn meeting_lifecycle_table() {
    check(&[
        ("propose", vec![], propose(), Then::Events(&["MeetingProposed"])),
        ("propose twice", vec![propose()], propose(), Then::AlreadyExists),
        (
            "schedule new",
            vec![],
            schedule(),
            Then::Events(&["MeetingScheduled"]),
        ),
        (
            "schedule proposed",
            vec![propose()],
            schedule(),
            Then::Events(&["MeetingScheduled"]),
        ),
        (
            "schedule scheduled",
            vec![schedule()],
            schedule(),
            Then::Rule("meeting.not_schedulable"),
        ),
        (
            "reschedule scheduled",
            vec![schedule()],
            reschedule(),
            Then::Events(&["MeetingRescheduled"]),
        ),
        (
            "reschedule rescheduled",
            vec![schedule(), reschedule()],
            reschedule(),
            Then::Events(&["MeetingRescheduled"]),
        ),
        (
            "reschedule proposed",
            vec![propose()],
            reschedule(),
            Then::Rule("meeting.not_reschedulable"),
        ),
        ("reschedule unknown", vec![], reschedule(), Then::NotFound),
        (
            "reschedule held",
            vec![held()],
            reschedule(),
            Then::Rule("meeting.already_held"),
        ),
        (
            "reschedule postponed",
            vec![schedule(), postpone()],
            reschedule(),
            Then::Events(&["MeetingRescheduled"]),
        ),
        (
            "reschedule cancelled (it comes back)",
            vec![schedule(), cancel()],
            reschedule(),
            Then::Events(&["MeetingRescheduled"]),
        ),
        (
            "postpone scheduled",
            vec![schedule()],
            postpone(),
            Then::Events(&["MeetingPostponed"]),
        ),
        (
            "postpone proposed",
            vec![propose()],
            postpone(),
            Then::Events(&["MeetingPostponed"]),
        ),
        (
            "postpone rescheduled",
            vec![schedule(), reschedule()],
            postpone(),
            Then::Events(&["MeetingPostponed"]),
        ),
        (
            "postpone cancelled (to be rescheduled)",
            vec![schedule(), cancel()],
            postpone(),
            Then::Events(&["MeetingPostponed"]),
        ),
        (
            "postpone postponed",
            vec![schedule(), postpone()],
            postpone(),
            Then::Rule("meeting.already_postponed"),
        ),
        (
            "postpone held",
            vec![held()],
            postpone(),
            Then::Rule("meeting.already_held"),
        ),
        ("postpone unknown", vec![], postpone(), Then::NotFound),
        (
            "cancel postponed",
            vec![schedule(), postpone()],
            cancel(),
            Then::Events(&["MeetingCancelled"]),
        ),
        (
            "cancel by both parties",
            vec![schedule()],
            cancel_by(&["LBY", "FRA"]),
            Then::Events(&["MeetingCancelled"]),
        ),
        (
            "held after postponement",
            vec![schedule(), postpone()],
            held(),
            Then::Events(&["MeetingHeld"]),
        ),
        (
            "held after cancel and reschedule",
            vec![schedule(), cancel(), reschedule()],
            held(),
            Then::Events(&["MeetingHeld"]),
        ),
        (
            "joint proposal",
            vec![],
            propose_by(&["FRA", "LBY"]),
            Then::Events(&["MeetingProposed"]),
        ),
        (
            "cancel proposed",
            vec![propose()],
            cancel(),
            Then::Events(&["MeetingCancelled"]),
        ),
        (
            "cancel scheduled",
            vec![schedule()],
            cancel(),
            Then::Events(&["MeetingCancelled"]),
        ),
        (
            "cancel rescheduled",
            vec![schedule(), reschedule()],
            cancel(),
            Then::Events(&["MeetingCancelled"]),
        ),
        (
            "cancel held",
            vec![held()],
            cancel(),
            Then::Rule("meeting.already_held"),
        ),
        (
            "cancel cancelled",
            vec![propose(), cancel()],
            cancel(),
            Then::Rule("meeting.already_cancelled"),
        ),
        ("cancel unknown", vec![], cancel(), Then::NotFound),
        ("held first", vec![], held(), Then::Events(&["MeetingHeld"])),
        (
            "held after proposal",
            vec![propose()],
            held(),
            Then::Events(&["MeetingHeld"]),
        ),
        (
            "held after schedule",
            vec![schedule()],
            held(),
            Then::Events(&["MeetingHeld"]),
        ),
        (
            "held after reschedule",
            vec![schedule(), reschedule()],
            held(),
            Then::Events(&["MeetingHeld"]),
        ),
        (
            "held twice",
            vec![held()],
            held(),
            Then::Rule("meeting.already_held"),
        ),
        (
            "held after cancel",
            vec![schedule(), cancel()],
            held(),
            Then::Rule("meeting.cancelled"),
        ),
        (
            "statement",
            vec![held()],
            statement("LBY", Some(official_a())),
            Then::Events(&["StatementRecorded"]),
        ),
        (
            "statement by party",
            vec![held()],
            statement("FRA", None),
            Then::Events(&["StatementRecorded"]),
        ),
        (
            "statement before held",
            vec![schedule()],
            statement("LBY", None),
            Then::Rule("meeting.not_held"),
        ),
        (
            "statement by outsider",
            vec![held()],
            statement("EGY", None),
            Then::Rule("statement.speaker_not_participant"),
        ),
        (
            "statement by wrong official",
            vec![held()],
            statement("LBY", Some(official_b())),
            Then::Rule("statement.speaker_not_participant"),
        ),
        (
            "statement unknown meeting",
            vec![],
            statement("LBY", None),
            Then::NotFound,
        ),
        (
            "correct held",
            vec![held()],
            correct_meeting(1),
            Then::Events(&["MeetingCorrected"]),
        ),
        (
            "correct superseded",
            vec![propose(), held()],
            correct_meeting(1),
            Then::Rule("correction.superseded"),
        ),
        (
            "correct statement",
            vec![held(), statement("LBY", None)],
            correct_meeting(2),
            Then::Rule("version.not_targetable"),
        ),
        ("correct unknown", vec![], correct_meeting(1), Then::NotFound),
        (
            "retract statement",
            vec![held(), statement("LBY", None)],
            retract_meeting(2),
            Then::Events(&["MeetingEventRetracted"]),
        ),
        (
            "retract held",
            vec![held()],
            retract_meeting(1),
            Then::Rule("version.not_targetable"),
        ),
        (
            "retract twice",
            vec![held(), statement("LBY", None), retract_meeting(2)],
            retract_meeting(2),
            Then::Rule("retraction.already_retracted"),
        ),
        (
            "retract beyond stream",
            vec![held()],
            retract_meeting(9),
            Then::Rule("version.not_found"),
        ),
    ]);
}

#[test]
fn a_meeting_postponed_cancelled_and_rescheduled_shows_where_it_stands() {
    let fold = |commands: &[DomainCommand]| {
        let mut state = AggregateState::empty_for(&commands[0]);
        for command in commands {
            for event in decide_command(&state, command).expect("accepted") {
                state = evolve_state(state, &event);
            }
        }
        let AggregateState::Meeting(state) = state else {
            panic!("a meeting state expected");
        };
        state
    };
    let postponed = fold(&[schedule(), postpone()]);
    assert_eq!(postponed.status(), Some(meeting::MeetingStatus::Postponed));
    assert_eq!(postponed.postponement_reason(), Some("the minister fell ill"));
    assert_eq!(
        postponed.window(),
        Some(window(5, Some(5))),
        "the window it was postponed from"
    );
    let cancelled = fold(&[schedule(), postpone(), cancel_by(&["LBY"])]);
    assert_eq!(cancelled.status(), Some(meeting::MeetingStatus::Cancelled));
    assert_eq!(cancelled.cancelled_by(), ["LBY"]);
    assert_eq!(cancelled.postponement_reason(), None);
    let back = fold(&[schedule(), cancel_by(&["LBY"]), reschedule()]);
    assert_eq!(back.status(), Some(meeting::MeetingStatus::Rescheduled));
    assert_eq!(back.window(), Some(window(7, None)));
    assert!(back.cancelled_by().is_empty() && back.cancellation_reason().is_none());
    let joint = fold(&[propose_by(&["FRA", "LBY"])]);
    assert_eq!(joint.proposed_by(), ["FRA", "LBY"]);
}

#[test]
fn meeting_validation_table() {
    let with = |change: &dyn Fn(&mut meeting::MeetingDetails)| {
        let mut details = meeting_details();
        change(&mut details);
        held_with(details)
    };
    check(&[
        (
            "no participants",
            vec![],
            with(&|d| d.participants.clear()),
            Then::Invalid(&["details.participants"]),
        ),
        (
            "too many participants",
            vec![],
            with(&|d| {
                d.format = MeetingFormat::Multilateral;
                d.participants = (0..=MAX_PARTICIPANTS)
                    .map(|i| participant(&format!("P{i}"), None))
                    .collect();
            }),
            Then::Invalid(&["details.participants"]),
        ),
        (
            "bilateral with one party",
            vec![],
            with(&|d| d.participants[1].party = "LBY".into()),
            Then::Invalid(&["details.participants"]),
        ),
        (
            "multilateral with two parties",
            vec![],
            with(&|d| d.format = MeetingFormat::Multilateral),
            Then::Invalid(&["details.participants"]),
        ),
        (
            "phone with one party",
            vec![],
            with(&|d| {
                d.format = MeetingFormat::Phone;
                d.participants[1].party = "LBY".into();
            }),
            Then::Invalid(&["details.participants"]),
        ),
        (
            "bad party code",
            vec![],
            with(&|d| d.participants[1].party = "fr".into()),
            Then::Invalid(&["details.participants[1].party"]),
        ),
        (
            "official twice",
            vec![],
            with(&|d| d.participants[1].official_id = Some(official_a())),
            Then::Invalid(&["details.participants[1].official_id"]),
        ),
        (
            "empty place",
            vec![],
            with(&|d| {
                if let Some(location) = d.location.as_mut() {
                    location.place = String::new();
                }
            }),
            Then::Invalid(&["details.location.place"]),
        ),
        (
            "bad country",
            vec![],
            with(&|d| {
                if let Some(location) = d.location.as_mut() {
                    location.country = Some("Libya".into());
                }
            }),
            Then::Invalid(&["details.location.country"]),
        ),
        (
            "bad topic",
            vec![],
            with(&|d| d.topics.push("Regional Stability".into())),
            Then::Invalid(&["details.topics[2]"]),
        ),
        (
            "duplicate topic",
            vec![],
            with(&|d| d.topics.push("security".into())),
            Then::Invalid(&["details.topics[2]"]),
        ),
        (
            "too many topics",
            vec![],
            with(&|d| d.topics = (0..=MAX_TOPICS).map(|i| format!("t{i}")).collect()),
            Then::Invalid(&["details.topics"]),
        ),
        (
            "summary too long",
            vec![],
            with(&|d| d.summary = Some("x".repeat(MAX_TEXT_LEN + 1))),
            Then::Invalid(&["details.summary"]),
        ),
        (
            "window end before start",
            vec![],
            DomainCommand::Meeting(meeting::Command::ScheduleMeeting {
                meeting_id: meeting_id(),
                details: meeting_details(),
                window: window(5, Some(4)),
                provenance: provenance(),
            }),
            Then::Invalid(&["window.end"]),
        ),
        (
            "ended before held",
            vec![],
            DomainCommand::Meeting(meeting::Command::RecordMeetingHeld {
                meeting_id: meeting_id(),
                details: meeting_details(),
                ended_at: Some(day(-1).at()),
                provenance: provenance(),
            }),
            Then::Invalid(&["ended_at"]),
        ),
        (
            "bad proposer",
            vec![],
            DomainCommand::Meeting(meeting::Command::ProposeMeeting {
                meeting_id: meeting_id(),
                proposed_by: vec!["".into()],
                details: meeting_details(),
                proposed_window: None,
                provenance: provenance(),
            }),
            Then::Invalid(&["proposed_by[0]"]),
        ),
        (
            "no proposer",
            vec![],
            propose_by(&[]),
            Then::Invalid(&["proposed_by"]),
        ),
        (
            "proposer twice",
            vec![],
            propose_by(&["FRA", "FRA"]),
            Then::Invalid(&["proposed_by[1]"]),
        ),
        (
            "lower-case canceller",
            vec![schedule()],
            cancel_by(&["fra"]),
            Then::Invalid(&["cancelled_by[0]"]),
        ),
        (
            "within without an end",
            vec![],
            DomainCommand::Meeting(meeting::Command::ScheduleMeeting {
                meeting_id: meeting_id(),
                details: meeting_details(),
                window: TimeWindow {
                    kind: WindowKind::Within,
                    ..window(5, None)
                },
                provenance: provenance(),
            }),
            Then::Invalid(&["window.end"]),
        ),
        (
            "within two days",
            vec![],
            DomainCommand::Meeting(meeting::Command::ScheduleMeeting {
                meeting_id: meeting_id(),
                details: meeting_details(),
                window: TimeWindow {
                    kind: WindowKind::Within,
                    ..window(5, Some(6))
                },
                provenance: provenance(),
            }),
            Then::Events(&["MeetingScheduled"]),
        ),
        (
            "location in an unregistered third country",
            vec![],
            with(&|d| {
                if let Some(location) = d.location.as_mut() {
                    location.country = Some("CHE".into());
                }
            }),
            Then::Events(&["MeetingHeld"]),
        ),
        (
            "two-letter country",
            vec![],
            with(&|d| {
                if let Some(location) = d.location.as_mut() {
                    location.country = Some("LY".into());
                }
            }),
            Then::Invalid(&["details.location.country"]),
        ),
        (
            "empty statement",
            vec![held()],
            DomainCommand::Meeting(meeting::Command::RecordStatement {
                meeting_id: meeting_id(),
                speaker: Speaker {
                    party: "LBY".into(),
                    official_id: None,
                },
                text: String::new(),
                verbatim: false,
                provenance: provenance(),
            }),
            Then::Invalid(&["text"]),
        ),
        (
            "retract without reason",
            vec![held()],
            DomainCommand::Meeting(meeting::Command::RetractMeetingEvent {
                meeting_id: meeting_id(),
                retracts_version: 1,
                reason: String::new(),
                provenance: provenance(),
            }),
            Then::Invalid(&["reason"]),
        ),
    ]);
}

#[test]
fn provenance_validation_table() {
    let with = |sources: Vec<SourceCitation>| {
        DomainCommand::Meeting(meeting::Command::RecordMeetingHeld {
            meeting_id: meeting_id(),
            details: meeting_details(),
            ended_at: None,
            provenance: Provenance {
                occurred_at: day(0),
                sources,
            },
        })
    };
    let citation = |n: u128, quote: Option<String>| SourceCitation {
        source_id: dipledger::domain::common::SourceId::from_uuid(uuid(n)),
        quote,
    };
    check(&[
        (
            "no source",
            vec![],
            with(vec![]),
            Then::Invalid(&["provenance.sources"]),
        ),
        (
            "too many sources",
            vec![],
            with(
                (0..=MAX_SOURCES_PER_COMMAND as u128)
                    .map(|n| citation(n, None))
                    .collect(),
            ),
            Then::Invalid(&["provenance.sources"]),
        ),
        (
            "quote too long",
            vec![],
            with(vec![citation(1, Some("q".repeat(MAX_QUOTE_LEN + 1)))]),
            Then::Invalid(&["provenance.sources[0].quote"]),
        ),
        (
            "blank quote",
            vec![],
            with(vec![citation(1, Some(" ".into()))]),
            Then::Invalid(&["provenance.sources[0].quote"]),
        ),
        (
            "same source twice",
            vec![],
            with(vec![citation(1, None), citation(1, Some("q".into()))]),
            Then::Invalid(&["provenance.sources[1].source_id"]),
        ),
        (
            "max sources",
            vec![],
            with(
                (0..MAX_SOURCES_PER_COMMAND as u128)
                    .map(|n| citation(n, None))
                    .collect(),
            ),
            Then::Events(&["MeetingHeld"]),
        ),
    ]);
}

/// The meeting state after deciding and folding `commands` in order (each must be accepted).
fn fold_meeting(commands: &[DomainCommand]) -> meeting::State {
    let mut state = AggregateState::empty_for(&commands[0]);
    for command in commands {
        for event in decide_command(&state, command).expect("accepted") {
            state = evolve_state(state, &event);
        }
    }
    let AggregateState::Meeting(state) = state else {
        panic!("a meeting's commands fold into a meeting state")
    };
    state
}

#[test]
fn meeting_state_follows_corrections_and_retractions() {
    let state = fold_meeting(&[
        held(),
        statement("LBY", None),
        statement("FRA", None),
        retract_meeting(2),
        correct_meeting(1),
    ]);
    assert_eq!(state.version(), 5);
    // The statement at version 2 (LBY) is retracted; the one at version 3 (FRA) stays.
    assert_eq!(state.statement_versions().collect::<Vec<_>>(), [3]);
    assert_eq!(state.details_version(), 5);
    assert!(state
        .details()
        .is_some_and(|d| d.topics.contains(&"migration".to_owned())));
    assert_eq!(state.status(), Some(meeting::MeetingStatus::Held));
}

#[test]
fn a_meeting_state_names_its_statements_in_effect_by_version() {
    let state = fold_meeting(&[held(), statement("LBY", None), statement("FRA", None)]);
    assert_eq!(state.statement_versions().collect::<Vec<_>>(), [2, 3]);
    let state = fold_meeting(&[
        held(),
        statement("LBY", None),
        statement("FRA", None),
        retract_meeting(3),
    ]);
    assert_eq!(state.statement_versions().collect::<Vec<_>>(), [2]);
    assert_eq!(state.retracted_versions(), [3]);
}

// ---- commitment -----------------------------------------------------------------------------

fn c(command: commitment::Command) -> DomainCommand {
    DomainCommand::Commitment(command)
}

fn record_commitment() -> DomainCommand {
    c(commitment::Command::RecordCommitment {
        commitment_id: commitment_id(),
        details: commitment_details(),
        provenance: provenance(),
    })
}

fn record_due(due_offset: i64) -> DomainCommand {
    let mut details = commitment_details();
    details.due_by = Some(day(due_offset));
    c(commitment::Command::RecordCommitment {
        commitment_id: commitment_id(),
        details,
        provenance: provenance(),
    })
}

fn reaffirm(parties: &[&str]) -> DomainCommand {
    c(commitment::Command::ReaffirmCommitment {
        commitment_id: commitment_id(),
        reaffirmed_by: parties.iter().map(|p| (*p).to_owned()).collect(),
        voiced_by: vec![official_a()],
        at_meeting: Some(meeting_id()),
        text: None,
        provenance: provenance(),
    })
}

fn progress() -> DomainCommand {
    c(commitment::Command::ReportCommitmentProgress {
        commitment_id: commitment_id(),
        summary: "joint patrols began".into(),
        provenance: provenance(),
    })
}

fn fulfil() -> DomainCommand {
    c(commitment::Command::FulfilCommitment {
        commitment_id: commitment_id(),
        summary: "done".into(),
        provenance: provenance(),
    })
}

fn lapse_on(offset: i64) -> DomainCommand {
    c(commitment::Command::MarkCommitmentLapsed {
        commitment_id: commitment_id(),
        reason: "deadline passed".into(),
        provenance: provenance_on(day(offset)),
    })
}

fn withdraw() -> DomainCommand {
    c(commitment::Command::WithdrawCommitment {
        commitment_id: commitment_id(),
        reason: "government changed".into(),
        provenance: provenance(),
    })
}

fn supersede(by: CommitmentId) -> DomainCommand {
    c(commitment::Command::SupersedeCommitment {
        commitment_id: commitment_id(),
        superseded_by: by,
        reason: None,
        provenance: provenance(),
    })
}

fn assess(scores: &[(&str, i8)]) -> DomainCommand {
    c(commitment::Command::AssessCompliance {
        commitment_id: commitment_id(),
        stage: AssessmentStage::Interim,
        assessor: "G20 Research Group".into(),
        rationale: "partial action".into(),
        scores: scores
            .iter()
            .map(|(party, score)| PartyScore {
                party: (*party).into(),
                score: *score,
            })
            .collect(),
        provenance: provenance(),
    })
}

fn correct_commitment(version: u64) -> DomainCommand {
    let mut details = commitment_details();
    details.specificity = Specificity::Specific;
    c(commitment::Command::CorrectCommitment {
        commitment_id: commitment_id(),
        corrects_version: version,
        reason: "misread".into(),
        details,
        provenance: provenance(),
    })
}

fn retract_commitment(version: u64) -> DomainCommand {
    c(commitment::Command::RetractCommitmentEvent {
        commitment_id: commitment_id(),
        retracts_version: version,
        reason: "wrong report".into(),
        provenance: provenance(),
    })
}

#[test]
fn commitment_lifecycle_table() {
    let other = CommitmentId::from_uuid(uuid(0xC1));
    let recorded = || vec![record_commitment()];
    check(&[
        (
            "record",
            vec![],
            record_commitment(),
            Then::Events(&["CommitmentRecorded"]),
        ),
        (
            "record twice",
            recorded(),
            record_commitment(),
            Then::AlreadyExists,
        ),
        (
            "reaffirm",
            recorded(),
            reaffirm(&["LBY"]),
            Then::Events(&["CommitmentReaffirmed"]),
        ),
        (
            "reaffirm again",
            vec![record_commitment(), reaffirm(&["LBY"])],
            reaffirm(&["FRA", "LBY"]),
            Then::Events(&["CommitmentReaffirmed"]),
        ),
        (
            "reaffirm by outsider",
            recorded(),
            reaffirm(&["EGY"]),
            Then::Rule("commitment.not_committing_party"),
        ),
        ("reaffirm unknown", vec![], reaffirm(&["LBY"]), Then::NotFound),
        (
            "progress",
            recorded(),
            progress(),
            Then::Events(&["CommitmentProgressReported"]),
        ),
        (
            "progress after reaffirm",
            vec![record_commitment(), reaffirm(&["LBY"])],
            progress(),
            Then::Events(&["CommitmentProgressReported"]),
        ),
        (
            "fulfil made",
            recorded(),
            fulfil(),
            Then::Events(&["CommitmentFulfilled"]),
        ),
        (
            "fulfil in progress",
            vec![record_commitment(), progress()],
            fulfil(),
            Then::Events(&["CommitmentFulfilled"]),
        ),
        (
            "fulfil withdrawn",
            vec![record_commitment(), withdraw()],
            fulfil(),
            Then::Rule("commitment.closed"),
        ),
        (
            "fulfil fulfilled",
            vec![record_commitment(), fulfil()],
            fulfil(),
            Then::Rule("commitment.closed"),
        ),
        ("fulfil unknown", vec![], fulfil(), Then::NotFound),
        (
            "lapse without due date",
            recorded(),
            lapse_on(1),
            Then::Events(&["CommitmentLapsed"]),
        ),
        (
            "lapse after due date",
            vec![record_due(30)],
            lapse_on(30),
            Then::Events(&["CommitmentLapsed"]),
        ),
        (
            "lapse before due date",
            vec![record_due(30)],
            lapse_on(29),
            Then::Rule("commitment.not_yet_due"),
        ),
        (
            "lapse fulfilled",
            vec![record_commitment(), fulfil()],
            lapse_on(1),
            Then::Rule("commitment.closed"),
        ),
        (
            "withdraw",
            recorded(),
            withdraw(),
            Then::Events(&["CommitmentWithdrawn"]),
        ),
        (
            "withdraw lapsed",
            vec![record_commitment(), lapse_on(1)],
            withdraw(),
            Then::Rule("commitment.closed"),
        ),
        (
            "supersede",
            recorded(),
            supersede(other),
            Then::Events(&["CommitmentSuperseded"]),
        ),
        (
            "supersede by itself",
            recorded(),
            supersede(commitment_id()),
            Then::Invalid(&["superseded_by"]),
        ),
        (
            "supersede superseded",
            vec![record_commitment(), supersede(other)],
            supersede(other),
            Then::Rule("commitment.closed"),
        ),
        (
            "progress after fulfil",
            vec![record_commitment(), fulfil()],
            progress(),
            Then::Rule("commitment.closed"),
        ),
        (
            "reaffirm withdrawn",
            vec![record_commitment(), withdraw()],
            reaffirm(&["LBY"]),
            Then::Rule("commitment.closed"),
        ),
        (
            "assess",
            recorded(),
            assess(&[("LBY", 1), ("FRA", 0)]),
            Then::Events(&["ComplianceAssessed"]),
        ),
        (
            "assess closed",
            vec![record_commitment(), fulfil()],
            assess(&[("LBY", 1)]),
            Then::Events(&["ComplianceAssessed"]),
        ),
        (
            "assess outsider",
            recorded(),
            assess(&[("EGY", 1)]),
            Then::Rule("commitment.not_committing_party"),
        ),
        (
            "assess bad score",
            recorded(),
            assess(&[("LBY", 2), ("FRA", -2)]),
            Then::Invalid(&["scores[0].score", "scores[1].score"]),
        ),
        (
            "assess nobody",
            recorded(),
            assess(&[]),
            Then::Invalid(&["scores"]),
        ),
        (
            "assess party twice",
            recorded(),
            assess(&[("LBY", 1), ("LBY", 0)]),
            Then::Invalid(&["scores[1]"]),
        ),
        ("assess unknown", vec![], assess(&[("LBY", 1)]), Then::NotFound),
        (
            "correct",
            recorded(),
            correct_commitment(1),
            Then::Events(&["CommitmentCorrected"]),
        ),
        (
            "correct after close",
            vec![record_commitment(), fulfil()],
            correct_commitment(1),
            Then::Events(&["CommitmentCorrected"]),
        ),
        (
            "correct superseded correction",
            vec![record_commitment(), correct_commitment(1)],
            correct_commitment(1),
            Then::Rule("correction.superseded"),
        ),
        (
            "correct a progress report",
            vec![record_commitment(), progress()],
            correct_commitment(2),
            Then::Rule("version.not_targetable"),
        ),
        (
            "retract progress",
            vec![record_commitment(), progress()],
            retract_commitment(2),
            Then::Events(&["CommitmentEventRetracted"]),
        ),
        (
            "retract fulfilment",
            vec![record_commitment(), fulfil()],
            retract_commitment(2),
            Then::Rule("version.not_targetable"),
        ),
        (
            "retract twice",
            vec![record_commitment(), progress(), retract_commitment(2)],
            retract_commitment(2),
            Then::Rule("retraction.already_retracted"),
        ),
    ]);
}

#[test]
fn commitment_validation_table() {
    let with = |change: &dyn Fn(&mut commitment::CommitmentDetails)| {
        let mut details = commitment_details();
        change(&mut details);
        c(commitment::Command::RecordCommitment {
            commitment_id: commitment_id(),
            details,
            provenance: provenance(),
        })
    };
    check(&[
        (
            "no committing party",
            vec![],
            with(&|d| d.committing_parties.clear()),
            Then::Invalid(&["details.committing_parties"]),
        ),
        (
            "bad committing party",
            vec![],
            with(&|d| d.committing_parties[0] = "1X".into()),
            Then::Invalid(&["details.committing_parties[0]"]),
        ),
        (
            "counterparty also committing",
            vec![],
            with(&|d| d.counterparties = vec!["LBY".into()]),
            Then::Invalid(&["details.counterparties[0]"]),
        ),
        (
            "voice twice",
            vec![],
            with(&|d| d.voiced_by = vec![official_a(), official_a()]),
            Then::Invalid(&["details.voiced_by[1]"]),
        ),
        (
            "empty text",
            vec![],
            with(&|d| d.text = "  ".into()),
            Then::Invalid(&["details.text"]),
        ),
        (
            "text too long",
            vec![],
            with(&|d| d.text = "x".repeat(MAX_TEXT_LEN + 1)),
            Then::Invalid(&["details.text"]),
        ),
        (
            "text at limit",
            vec![],
            with(&|d| d.text = "x".repeat(MAX_TEXT_LEN)),
            Then::Events(&["CommitmentRecorded"]),
        ),
        (
            "bad topic",
            vec![],
            with(&|d| d.topics = vec!["".into()]),
            Then::Invalid(&["details.topics[0]"]),
        ),
        (
            "empty progress",
            vec![record_commitment()],
            c(commitment::Command::ReportCommitmentProgress {
                commitment_id: commitment_id(),
                summary: String::new(),
                provenance: provenance(),
            }),
            Then::Invalid(&["summary"]),
        ),
        (
            "long assessor",
            vec![record_commitment()],
            c(commitment::Command::AssessCompliance {
                commitment_id: commitment_id(),
                stage: AssessmentStage::Final,
                assessor: "a".repeat(MAX_NAME_LEN + 1),
                rationale: String::new(),
                scores: vec![PartyScore {
                    party: "LBY".into(),
                    score: 0,
                }],
                provenance: provenance(),
            }),
            Then::Invalid(&["assessor", "rationale"]),
        ),
    ]);
}

#[test]
fn commitment_status_is_derived_from_unretracted_entries() {
    let commands = [
        record_commitment(),
        reaffirm(&["LBY"]),
        progress(),
        retract_commitment(3),
        assess(&[("LBY", 1)]),
    ];
    let mut state = AggregateState::empty_for(&commands[0]);
    let mut statuses = Vec::new();
    for command in &commands {
        for event in decide_command(&state, command).expect("accepted") {
            state = evolve_state(state, &event);
        }
        let AggregateState::Commitment(commitment) = &state else {
            panic!()
        };
        statuses.push(commitment.status());
    }
    use commitment::CommitmentStatus::*;
    assert_eq!(
        statuses,
        [
            Some(Made),
            Some(Reaffirmed),
            Some(InProgress),
            Some(Reaffirmed),
            Some(Reaffirmed)
        ]
    );
    let AggregateState::Commitment(commitment) = state else {
        panic!()
    };
    assert_eq!(commitment.assessments().len(), 1);
    assert_eq!(commitment.retracted_versions(), [3]);
}

#[test]
fn reaffirmations_and_assessments_of_a_commitment_stop_at_their_limits() {
    use dipledger::domain::commitment::{MAX_ASSESSMENTS_PER_COMMITMENT, MAX_REAFFIRMATIONS_PER_COMMITMENT};
    let given = |command: DomainCommand, times: usize| -> Vec<DomainCommand> {
        std::iter::once(record_commitment())
            .chain(std::iter::repeat_n(command, times))
            .collect()
    };
    let reaffirmed = || reaffirm(&["LBY"]);
    let assessed = || assess(&[("LBY", 1)]);
    check(&[
        (
            "the last reaffirmation allowed",
            given(reaffirmed(), MAX_REAFFIRMATIONS_PER_COMMITMENT - 1),
            reaffirmed(),
            Then::Events(&["CommitmentReaffirmed"]),
        ),
        (
            "one reaffirmation past the limit",
            given(reaffirmed(), MAX_REAFFIRMATIONS_PER_COMMITMENT),
            reaffirmed(),
            Then::Rule("commitment.too_many_reaffirmations"),
        ),
        (
            "the last assessment allowed",
            given(assessed(), MAX_ASSESSMENTS_PER_COMMITMENT - 1),
            assessed(),
            Then::Events(&["ComplianceAssessed"]),
        ),
        (
            "one assessment past the limit",
            given(assessed(), MAX_ASSESSMENTS_PER_COMMITMENT),
            assessed(),
            Then::Rule("commitment.too_many_assessments"),
        ),
        (
            "reaffirmations do not count against assessments",
            given(reaffirmed(), MAX_REAFFIRMATIONS_PER_COMMITMENT),
            assessed(),
            Then::Events(&["ComplianceAssessed"]),
        ),
    ]);
}

#[test]
fn a_state_of_another_aggregate_is_rejected_not_panicked() {
    let state = AggregateState::empty_for(&register_party("LBY"));
    assert!(matches!(
        decide_command(&state, &held()),
        Err(Rejection::Rule {
            code: "state.mismatch",
            ..
        })
    ));
}

#[test]
fn roles_are_accepted_on_participants() {
    let mut details = meeting_details();
    details.participants[0].role = Some(ParticipantRole::Host);
    details.participants[1].role = Some(ParticipantRole::Visitor);
    assert!(run(&[], &held_with(details)).is_ok());
}

// ---- limits at the edge ---------------------------------------------------------------------

/// Every length and count limit of the domain at exactly its maximum (accepted) and one past
/// (refused, naming the field).
#[test]
fn limits_table() {
    use dipledger::domain::common::{
        OfficialId, MAX_OFFICES_PER_COMMAND, MAX_OFFICIALS_PER_LIST, MAX_PARTIES_PER_LIST, MAX_POST_LEN,
        MAX_REASON_LEN, MAX_TOPIC_LEN, MAX_URL_LEN,
    };
    use dipledger::domain::source::MAX_LANGUAGE_LEN;
    use meeting::MeetingDetails;

    // A BCP 47 tag of exactly `len` bytes (len >= 5): `en`, then subtags of up to 8 letters.
    let language = |len: usize| {
        let mut tag = String::from("en");
        while tag.len() < len {
            let room = (len - tag.len() - 1).min(8);
            tag.push('-');
            tag.push_str(&"abcdefgh"[..room]);
        }
        tag
    };
    let source_with = |change: &dyn Fn(&mut SourceDetails)| {
        let mut details = source_details();
        change(&mut details);
        register_source(details)
    };
    let url = |len: usize| {
        let prefix = "https://example.org/";
        format!("{prefix}{}", "a".repeat(len - prefix.len()))
    };
    let office_with_post = |post: String| OfficeTerm { post, ..ambassador() };
    let meeting_with = |change: &dyn Fn(&mut MeetingDetails)| {
        let mut details = meeting_details();
        change(&mut details);
        held_with(details)
    };
    let multilateral = |count: usize| {
        meeting_with(&|d| {
            d.format = MeetingFormat::Multilateral;
            d.participants = (0..count).map(|i| participant(&format!("P{i}"), None)).collect();
        })
    };
    let parties = |count: usize| (0..count).map(|i| format!("P{i}")).collect::<Vec<String>>();
    let commitment_with = |change: &dyn Fn(&mut commitment::CommitmentDetails)| {
        let mut details = commitment_details();
        change(&mut details);
        c(commitment::Command::RecordCommitment {
            commitment_id: commitment_id(),
            details,
            provenance: provenance(),
        })
    };
    let officials = |count: usize| {
        (0..count)
            .map(|i| OfficialId::from_uuid(uuid(0x1000 + i as u128)))
            .collect::<Vec<OfficialId>>()
    };
    let quoted = |len: usize| {
        let mut command = held();
        if let DomainCommand::Meeting(meeting::Command::RecordMeetingHeld { provenance, .. }) = &mut command {
            provenance.sources[0].quote = Some("q".repeat(len));
        }
        command
    };
    assert_eq!(language(MAX_LANGUAGE_LEN).len(), MAX_LANGUAGE_LEN);
    assert_eq!(language(MAX_LANGUAGE_LEN + 1).len(), MAX_LANGUAGE_LEN + 1);
    check(&[
        (
            "language at MAX_LANGUAGE_LEN",
            vec![],
            source_with(&|d| d.language = language(MAX_LANGUAGE_LEN)),
            Then::Events(&["SourceRegistered"]),
        ),
        (
            "language one past MAX_LANGUAGE_LEN",
            vec![],
            source_with(&|d| d.language = language(MAX_LANGUAGE_LEN + 1)),
            Then::Invalid(&["details.language"]),
        ),
        (
            "url at MAX_URL_LEN",
            vec![],
            source_with(&|d| d.url = Some(url(MAX_URL_LEN))),
            Then::Events(&["SourceRegistered"]),
        ),
        (
            "url one past MAX_URL_LEN",
            vec![],
            source_with(&|d| d.url = Some(url(MAX_URL_LEN + 1))),
            Then::Invalid(&["details.url"]),
        ),
        (
            "reason at MAX_REASON_LEN",
            vec![register_source(source_details())],
            correct_source(1, &"r".repeat(MAX_REASON_LEN)),
            Then::Events(&["SourceCorrected"]),
        ),
        (
            "reason one past MAX_REASON_LEN",
            vec![register_source(source_details())],
            correct_source(1, &"r".repeat(MAX_REASON_LEN + 1)),
            Then::Invalid(&["reason"]),
        ),
        (
            "post at MAX_POST_LEN",
            vec![],
            register_official(vec![office_with_post("p".repeat(MAX_POST_LEN))]),
            Then::Events(&["OfficialRegistered", "OfficialAppointed"]),
        ),
        (
            "post one past MAX_POST_LEN",
            vec![],
            register_official(vec![office_with_post("p".repeat(MAX_POST_LEN + 1))]),
            Then::Invalid(&["offices[0].post"]),
        ),
        (
            "offices one past MAX_OFFICES_PER_COMMAND",
            vec![],
            register_official(
                (0..=MAX_OFFICES_PER_COMMAND)
                    .map(|i| office_with_post(format!("Post {i}")))
                    .collect(),
            ),
            Then::Invalid(&["offices"]),
        ),
        (
            "topic at MAX_TOPIC_LEN",
            vec![],
            meeting_with(&|d| d.topics = vec!["t".repeat(MAX_TOPIC_LEN)]),
            Then::Events(&["MeetingHeld"]),
        ),
        (
            "topic one past MAX_TOPIC_LEN",
            vec![],
            meeting_with(&|d| d.topics = vec!["t".repeat(MAX_TOPIC_LEN + 1)]),
            Then::Invalid(&["details.topics[0]"]),
        ),
        (
            "topics at MAX_TOPICS",
            vec![],
            meeting_with(&|d| d.topics = (0..MAX_TOPICS).map(|i| format!("t{i}")).collect()),
            Then::Events(&["MeetingHeld"]),
        ),
        (
            "participants at MAX_PARTICIPANTS",
            vec![],
            multilateral(MAX_PARTICIPANTS),
            Then::Events(&["MeetingHeld"]),
        ),
        (
            "summary at MAX_TEXT_LEN",
            vec![],
            meeting_with(&|d| d.summary = Some("x".repeat(MAX_TEXT_LEN))),
            Then::Events(&["MeetingHeld"]),
        ),
        (
            "quote at MAX_QUOTE_LEN",
            vec![],
            quoted(MAX_QUOTE_LEN),
            Then::Events(&["MeetingHeld"]),
        ),
        (
            "quote one past MAX_QUOTE_LEN",
            vec![],
            quoted(MAX_QUOTE_LEN + 1),
            Then::Invalid(&["provenance.sources[0].quote"]),
        ),
        (
            "proposers at MAX_PARTIES_PER_LIST",
            vec![],
            propose_by(
                &parties(MAX_PARTIES_PER_LIST)
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>(),
            ),
            Then::Events(&["MeetingProposed"]),
        ),
        (
            "proposers one past MAX_PARTIES_PER_LIST",
            vec![],
            propose_by(
                &parties(MAX_PARTIES_PER_LIST + 1)
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>(),
            ),
            Then::Invalid(&["proposed_by"]),
        ),
        (
            "voices at MAX_OFFICIALS_PER_LIST",
            vec![],
            commitment_with(&|d| d.voiced_by = officials(MAX_OFFICIALS_PER_LIST)),
            Then::Events(&["CommitmentRecorded"]),
        ),
        (
            "voices one past MAX_OFFICIALS_PER_LIST",
            vec![],
            commitment_with(&|d| d.voiced_by = officials(MAX_OFFICIALS_PER_LIST + 1)),
            Then::Invalid(&["details.voiced_by"]),
        ),
        (
            "name at MAX_NAME_LEN",
            vec![],
            DomainCommand::Party(party::Command::RegisterParty {
                code: "LBY".into(),
                details: party_details(&"N".repeat(MAX_NAME_LEN)),
                provenance: provenance(),
            }),
            Then::Events(&["PartyRegistered"]),
        ),
        (
            "name one past MAX_NAME_LEN",
            vec![],
            DomainCommand::Party(party::Command::RegisterParty {
                code: "LBY".into(),
                details: party_details(&"N".repeat(MAX_NAME_LEN + 1)),
                provenance: provenance(),
            }),
            Then::Invalid(&["details.name"]),
        ),
    ]);
}
