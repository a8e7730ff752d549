//! The public contract of stored events: type strings and schema versions, payload round trips,
//! upcasting of an old version, decode errors, and the size bound (64 KiB) at every maximum.

use crate::support::domain::*;
use dipledger::domain::commitment::{self, AssessmentStage, PartyScore};
use dipledger::domain::common::*;
use dipledger::domain::event::event_types;
use dipledger::domain::meeting::{self, Location, MeetingFormat, Participant, ParticipantRole};
use dipledger::domain::official::{self, OfficeTerm};
use dipledger::domain::party::legacy::{PartyDetailsV1, PartyRegisteredV1};
use dipledger::domain::party::{self, PartyKind};
use dipledger::domain::source::{self, SourceDetails, MAX_LANGUAGE_LEN};
use dipledger::domain::{
    decide_command, decode_event, evolve_state, AggregateState, DecodeEventError, DomainCommand, DomainEvent,
};
use dipledger::time::Timestamp;

const MAX_EVENT_BYTES: usize = 64 * 1024;

#[test]
fn event_types_and_versions_are_pinned() {
    let expected = [
        ("PartyRegistered", 2),
        ("PartyCorrected", 1),
        ("OfficialRegistered", 1),
        ("OfficialAppointed", 1),
        ("TenureEnded", 1),
        ("OfficialNameCorrected", 1),
        ("OfficialEventRetracted", 1),
        ("SourceRegistered", 1),
        ("SourceCorrected", 1),
        ("MeetingProposed", 2),
        ("MeetingScheduled", 2),
        ("MeetingRescheduled", 2),
        ("MeetingCancelled", 2),
        ("MeetingHeld", 1),
        ("StatementRecorded", 1),
        ("MeetingCorrected", 1),
        ("MeetingEventRetracted", 1),
        ("MeetingPostponed", 1),
        ("CommitmentRecorded", 1),
        ("CommitmentReaffirmed", 1),
        ("CommitmentProgressReported", 1),
        ("CommitmentFulfilled", 1),
        ("CommitmentLapsed", 1),
        ("CommitmentWithdrawn", 1),
        ("CommitmentSuperseded", 1),
        ("ComplianceAssessed", 1),
        ("CommitmentCorrected", 1),
        ("CommitmentEventRetracted", 1),
    ];
    assert_eq!(event_types(), expected);
}

fn v1_registration() -> PartyRegisteredV1 {
    PartyRegisteredV1 {
        code: "LBY".into(),
        details: PartyDetailsV1 {
            kind: PartyKind::State,
            name: "Libya".into(),
            iso_alpha2: Some("LY".into()),
            iso_alpha3: Some("LBY".into()),
            wikidata_qid: Some("Q1016".into()),
        },
        provenance: provenance(),
    }
}

#[test]
fn party_registered_v1_is_upcast_to_v2() {
    let stored = dipledger::encoding::encode(&v1_registration());
    let event = decode_event("PartyRegistered", 1, &stored).expect("v1 upcasts");
    let DomainEvent::Party(party::Event::PartyRegistered(registered)) = &event else {
        panic!("PartyRegistered expected, got {event:?}");
    };
    assert_eq!(registered.details.name, "Libya");
    assert_eq!(registered.details.wikidata_qid.as_deref(), Some("Q1016"));
    assert_eq!(registered.details.cameo_code, None, "never guessed");
    assert_eq!(event.schema_version(), 2);
    // The upcast event folds like a current one.
    let state = evolve_state(AggregateState::empty_for_event(&event), &event);
    assert!(state.exists());
    // Read as the current version, the old bytes do not decode: the upcast is needed.
    assert!(decode_event("PartyRegistered", 2, &stored).is_err());
}

#[test]
fn meeting_events_v1_are_upcast_to_v2() {
    use dipledger::domain::meeting::legacy::*;
    use dipledger::time::Precision;
    let v1_window = TimeWindowV1 {
        start: day(5),
        end: Some(day(6).at()),
    };
    let window = TimeWindow {
        start: day(5),
        end: Some(dipledger::time::OccurredAt::new(day(6).at(), Precision::Exact)),
        kind: WindowKind::Span,
    };
    let decode = |event_type: &str, bytes: Vec<u8>| {
        let event = decode_event(event_type, 1, &bytes).expect("v1 upcasts");
        assert_eq!(event.schema_version(), 2, "{event_type}");
        assert!(
            decode_event(event_type, 2, &bytes).is_err(),
            "{event_type} v1 bytes are not v2"
        );
        match event {
            DomainEvent::Meeting(event) => event,
            other => panic!("a meeting event expected, got {other:?}"),
        }
    };
    let proposed = decode(
        "MeetingProposed",
        dipledger::encoding::encode(&MeetingProposedV1 {
            meeting_id: meeting_id(),
            proposed_by: "FRA".into(),
            details: meeting_details(),
            proposed_window: Some(v1_window),
            provenance: provenance(),
        }),
    );
    let meeting::Event::MeetingProposed(proposed) = proposed else {
        panic!("MeetingProposed expected");
    };
    assert_eq!(proposed.proposed_by, ["FRA"]);
    assert_eq!(proposed.proposed_window, Some(window));
    let scheduled = decode(
        "MeetingScheduled",
        dipledger::encoding::encode(&MeetingScheduledV1 {
            meeting_id: meeting_id(),
            details: meeting_details(),
            window: v1_window,
            provenance: provenance(),
        }),
    );
    assert!(matches!(scheduled, meeting::Event::MeetingScheduled(ref e) if e.window == window));
    let rescheduled = decode(
        "MeetingRescheduled",
        dipledger::encoding::encode(&MeetingRescheduledV1 {
            meeting_id: meeting_id(),
            window: v1_window,
            reason: Some("moved".into()),
            provenance: provenance(),
        }),
    );
    assert!(matches!(rescheduled, meeting::Event::MeetingRescheduled(ref e) if e.window == window));
    let cancelled = decode(
        "MeetingCancelled",
        dipledger::encoding::encode(&MeetingCancelledV1 {
            meeting_id: meeting_id(),
            reason: Some("security".into()),
            provenance: provenance(),
        }),
    );
    let meeting::Event::MeetingCancelled(cancelled) = cancelled else {
        panic!("MeetingCancelled expected");
    };
    assert!(cancelled.cancelled_by.is_empty(), "never guessed");
    assert_eq!(cancelled.reason.as_deref(), Some("security"));
}

#[test]
fn decode_errors_are_distinct() {
    assert!(matches!(
        decode_event("MeetingExploded", 1, &[]),
        Err(DecodeEventError::UnknownEventType(_))
    ));
    assert!(matches!(
        decode_event("MeetingHeld", 7, &[]),
        Err(DecodeEventError::UnknownSchemaVersion {
            schema_version: 7,
            ..
        })
    ));
    assert!(matches!(
        decode_event("MeetingHeld", 1, &[0xff, 0xff]),
        Err(DecodeEventError::Malformed { .. })
    ));
    assert!(matches!(
        decode_event("PartyRegistered", 1, &[1]),
        Err(DecodeEventError::Malformed { .. })
    ));
}

fn text(len: usize) -> String {
    "x".repeat(len)
}

fn max_provenance() -> Provenance {
    Provenance {
        occurred_at: day(0),
        sources: (0..MAX_SOURCES_PER_COMMAND as u128)
            .map(|n| SourceCitation {
                source_id: SourceId::from_uuid(uuid(u128::MAX - n)),
                quote: Some(text(MAX_QUOTE_LEN)),
            })
            .collect(),
    }
}

fn max_code(n: usize) -> String {
    // 12-character distinct party codes: "P" + 11 digits.
    format!("P{n:011}")
}

fn max_topics() -> Vec<String> {
    (0..MAX_TOPICS)
        .map(|n| format!("{:x<width$}", format!("t{n}-"), width = MAX_TOPIC_LEN).replace("-x", "-y"))
        .collect()
}

fn max_meeting_details() -> meeting::MeetingDetails {
    meeting::MeetingDetails {
        format: MeetingFormat::Multilateral,
        participants: (0..MAX_PARTICIPANTS)
            .map(|n| Participant {
                party: max_code(n),
                official_id: Some(OfficialId::from_uuid(uuid(u128::MAX - n as u128))),
                role: Some(ParticipantRole::Mediator),
            })
            .collect(),
        location: Some(Location {
            place: text(MAX_NAME_LEN),
            country: Some("ZZZ".into()),
        }),
        topics: max_topics(),
        summary: Some(text(MAX_TEXT_LEN)),
        negotiation: true,
    }
}

fn max_commitment_details() -> commitment::CommitmentDetails {
    commitment::CommitmentDetails {
        kind: commitment::CommitmentKind::New,
        committing_parties: (0..MAX_PARTIES_PER_LIST).map(max_code).collect(),
        voiced_by: (0..MAX_OFFICIALS_PER_LIST)
            .map(|n| OfficialId::from_uuid(uuid(n as u128 + 1)))
            .collect(),
        counterparties: (100..100 + MAX_PARTIES_PER_LIST).map(max_code).collect(),
        text: text(MAX_TEXT_LEN),
        verbatim: true,
        topics: max_topics(),
        specificity: commitment::Specificity::Measurable,
        cooperation: commitment::CooperationKind::Material,
        due_by: Some(day(365)),
        made_at_meeting: Some(meeting_id()),
    }
}

fn max_office() -> OfficeTerm {
    OfficeTerm {
        post: text(MAX_POST_LEN),
        party: max_code(1),
        accredited_to: Some(max_code(2)),
        from: Some(day(-10)),
        to: Some(day(10)),
    }
}

/// Commands at every maximum, each with the commands needed before it.
fn maximal_commands() -> Vec<(Vec<DomainCommand>, DomainCommand)> {
    let meeting_held = DomainCommand::Meeting(meeting::Command::RecordMeetingHeld {
        meeting_id: meeting_id(),
        details: max_meeting_details(),
        ended_at: Some(day(1).at()),
        provenance: max_provenance(),
    });
    let commitment_recorded = DomainCommand::Commitment(commitment::Command::RecordCommitment {
        commitment_id: commitment_id(),
        details: max_commitment_details(),
        provenance: max_provenance(),
    });
    let official_registered = DomainCommand::Official(official::Command::RegisterOfficial {
        official_id: official_a(),
        name: text(MAX_NAME_LEN),
        offices: vec![max_office(); MAX_OFFICES_PER_COMMAND],
        provenance: max_provenance(),
    });
    let party_details = party::PartyDetails {
        kind: PartyKind::InternationalOrganisation,
        name: text(MAX_NAME_LEN),
        iso_alpha2: Some("XX".into()),
        iso_alpha3: Some("XXX".into()),
        wikidata_qid: Some("Q999999999999".into()),
        cameo_code: Some("X".repeat(15)),
    };
    vec![
        (
            vec![],
            DomainCommand::Party(party::Command::RegisterParty {
                code: max_code(0),
                details: party_details.clone(),
                provenance: max_provenance(),
            }),
        ),
        (
            vec![DomainCommand::Party(party::Command::RegisterParty {
                code: max_code(0),
                details: party_details.clone(),
                provenance: max_provenance(),
            })],
            DomainCommand::Party(party::Command::CorrectParty {
                code: max_code(0),
                corrects_version: 1,
                reason: text(MAX_REASON_LEN),
                details: party_details,
                provenance: max_provenance(),
            }),
        ),
        (
            vec![],
            DomainCommand::Source(source::Command::RegisterSource {
                source_id: source_id(),
                details: SourceDetails {
                    url: Some(format!("https:{}", text(MAX_URL_LEN - 6))),
                    publisher: Some(text(MAX_NAME_LEN)),
                    title: Some(text(MAX_TITLE_LEN)),
                    published_at: Some(day(0)),
                    retrieved_at: Timestamp::from_unix_micros(i64::MAX),
                    language: format!("en{}-abcde", "-abcdefgh".repeat(3)),
                },
            }),
        ),
        (vec![], official_registered.clone()),
        (vec![], meeting_held.clone()),
        (
            vec![],
            DomainCommand::Meeting(meeting::Command::ProposeMeeting {
                meeting_id: meeting_id(),
                proposed_by: (0..MAX_PARTIES_PER_LIST).map(max_code).collect(),
                details: max_meeting_details(),
                proposed_window: Some(TimeWindow {
                    start: day(1),
                    end: Some(day(2)),
                    kind: WindowKind::Within,
                }),
                provenance: max_provenance(),
            }),
        ),
        (
            vec![meeting_held.clone()],
            DomainCommand::Meeting(meeting::Command::RecordStatement {
                meeting_id: meeting_id(),
                speaker: meeting::Speaker {
                    party: max_code(0),
                    official_id: Some(OfficialId::from_uuid(uuid(u128::MAX))),
                },
                text: text(MAX_TEXT_LEN),
                verbatim: true,
                provenance: max_provenance(),
            }),
        ),
        (
            vec![meeting_held],
            DomainCommand::Meeting(meeting::Command::CorrectMeeting {
                meeting_id: meeting_id(),
                corrects_version: 1,
                reason: text(MAX_REASON_LEN),
                details: max_meeting_details(),
                provenance: max_provenance(),
            }),
        ),
        (vec![], commitment_recorded.clone()),
        (
            vec![commitment_recorded.clone()],
            DomainCommand::Commitment(commitment::Command::ReaffirmCommitment {
                commitment_id: commitment_id(),
                reaffirmed_by: (0..MAX_PARTIES_PER_LIST).map(max_code).collect(),
                voiced_by: (0..MAX_OFFICIALS_PER_LIST)
                    .map(|n| OfficialId::from_uuid(uuid(n as u128 + 1)))
                    .collect(),
                at_meeting: Some(meeting_id()),
                text: Some(text(MAX_TEXT_LEN)),
                provenance: max_provenance(),
            }),
        ),
        (
            vec![commitment_recorded.clone()],
            DomainCommand::Commitment(commitment::Command::AssessCompliance {
                commitment_id: commitment_id(),
                stage: AssessmentStage::Final,
                assessor: text(MAX_NAME_LEN),
                rationale: text(MAX_TEXT_LEN),
                scores: (0..MAX_PARTIES_PER_LIST)
                    .map(|n| PartyScore {
                        party: max_code(n),
                        score: -1,
                    })
                    .collect(),
                provenance: max_provenance(),
            }),
        ),
        (
            vec![commitment_recorded],
            DomainCommand::Commitment(commitment::Command::CorrectCommitment {
                commitment_id: commitment_id(),
                corrects_version: 1,
                reason: text(MAX_REASON_LEN),
                details: max_commitment_details(),
                provenance: max_provenance(),
            }),
        ),
    ]
}

#[test]
fn commands_at_every_maximum_are_accepted_and_encode_under_64_kib() {
    assert_eq!(
        format!("en{}-abcde", "-abcdefgh".repeat(3)).len(),
        MAX_LANGUAGE_LEN
    );
    let mut largest = 0;
    for (given, when) in maximal_commands() {
        let mut state = AggregateState::empty_for(&when);
        for command in &given {
            for event in decide_command(&state, command).expect("given accepted") {
                state = evolve_state(state, &event);
            }
        }
        let events = decide_command(&state, &when)
            .unwrap_or_else(|rejection| panic!("{when:?} rejected: {rejection}"));
        for event in events {
            let payload = event.encode_payload();
            largest = largest.max(payload.len());
            assert!(
                payload.len() < MAX_EVENT_BYTES / 2,
                "{} is {} bytes",
                event.event_type(),
                payload.len()
            );
            let tags_len: usize = event.tags().iter().map(String::len).sum();
            assert!(tags_len < MAX_EVENT_BYTES / 4, "{} tags", event.event_type());
            let decoded =
                decode_event(event.event_type(), event.schema_version(), &payload).expect("round trip");
            assert_eq!(decoded, event);
        }
    }
    assert!(largest > 10_000, "the maxima were exercised ({largest} bytes)");
}

/// (CAMEO code, source party, target party).
type Dyad = (&'static str, String, Option<String>);

fn held_event(change: impl Fn(&mut meeting::MeetingDetails)) -> DomainEvent {
    let mut details = meeting_details();
    change(&mut details);
    DomainEvent::Meeting(meeting::Event::MeetingHeld(meeting::MeetingHeld {
        meeting_id: meeting_id(),
        details,
        ended_at: None,
        provenance: provenance(),
    }))
}

fn coded(event: &DomainEvent) -> (Vec<Dyad>, Option<&'static str>) {
    let mapping = dipledger::domain::cameo::map_event(event).expect("maps");
    assert_eq!(
        mapping.table_version,
        dipledger::domain::cameo::MAPPING_TABLE_VERSION
    );
    let dyads = mapping
        .cameo
        .iter()
        .map(|coding| (coding.code.code, coding.source.clone(), coding.target.clone()))
        .collect();
    (dyads, mapping.plover.mode)
}

fn dyad(code: &'static str, source: &str, target: &str) -> Dyad {
    (code, source.into(), Some(target.into()))
}

#[test]
fn cameo_and_plover_mapping_table() {
    // Host known: the visit pair.
    let visit = held_event(|details| {
        details.participants[0].role = Some(ParticipantRole::Host);
        details.participants[1].role = Some(ParticipantRole::Visitor);
    });
    assert_eq!(
        coded(&visit),
        (
            vec![dyad("042", "FRA", "LBY"), dyad("043", "LBY", "FRA")],
            Some("visit")
        )
    );
    // Third location.
    let third = held_event(|details| {
        if let Some(location) = details.location.as_mut() {
            location.country = Some("ITA".into());
        }
    });
    assert_eq!(
        coded(&third),
        (
            vec![dyad("044", "LBY", "FRA"), dyad("044", "FRA", "LBY")],
            Some("third-party")
        )
    );
    // Phone.
    let phone = held_event(|details| details.format = MeetingFormat::Phone);
    assert_eq!(
        coded(&phone),
        (
            vec![dyad("041", "LBY", "FRA"), dyad("041", "FRA", "LBY")],
            Some("phone")
        )
    );
    // Negotiation.
    let negotiation = held_event(|details| details.negotiation = true);
    assert_eq!(coded(&negotiation).0[0].0, "046");
    // Multilateral consult.
    let multilateral = held_event(|details| {
        details.format = MeetingFormat::Multilateral;
        details.participants.push(Participant {
            party: "EGY".into(),
            official_id: None,
            role: None,
        });
    });
    let (dyads, mode) = coded(&multilateral);
    assert_eq!((dyads.len(), dyads[0].0, mode), (6, "040", Some("multilateral")));
    // Proposal: 036, AGREE.
    let proposed = DomainEvent::Meeting(meeting::Event::MeetingProposed(meeting::MeetingProposed {
        meeting_id: meeting_id(),
        proposed_by: vec!["FRA".into()],
        details: meeting_details(),
        proposed_window: None,
        provenance: provenance(),
    }));
    let mapping = dipledger::domain::cameo::map_event(&proposed).expect("maps");
    assert_eq!(mapping.plover.event_type, "AGREE");
    assert_eq!(coded(&proposed).0, vec![dyad("036", "FRA", "LBY")]);
    // Specific commitments: 031 material, 032 diplomatic; aspirational stays 030.
    for (specificity, cooperation, code) in [
        (
            commitment::Specificity::Specific,
            commitment::CooperationKind::Material,
            "031",
        ),
        (
            commitment::Specificity::Measurable,
            commitment::CooperationKind::Diplomatic,
            "032",
        ),
        (
            commitment::Specificity::Aspirational,
            commitment::CooperationKind::Material,
            "030",
        ),
        (
            commitment::Specificity::Specific,
            commitment::CooperationKind::Unspecified,
            "030",
        ),
    ] {
        let mut details = commitment_details();
        details.specificity = specificity;
        details.cooperation = cooperation;
        let event = DomainEvent::Commitment(commitment::Event::CommitmentRecorded(
            commitment::CommitmentRecorded {
                commitment_id: commitment_id(),
                details,
                provenance: provenance(),
            },
        ));
        assert_eq!(coded(&event).0[0].0, code, "{specificity:?} {cooperation:?}");
    }
    // Goldstein scores of the table.
    let scores: Vec<(&str, f32)> = dipledger::domain::cameo::CAMEO_CODES
        .iter()
        .map(|code| (code.code, code.goldstein))
        .collect();
    assert_eq!(
        scores,
        [
            ("030", 4.0),
            ("031", 5.2),
            ("032", 4.5),
            ("036", 4.0),
            ("040", 1.0),
            ("041", 1.0),
            ("042", 1.9),
            ("043", 2.8),
            ("044", 2.5),
            ("046", 7.0),
            ("057", 8.0),
        ]
    );
}

#[test]
fn cameo_coding_of_every_meeting_kind_and_where_kinds_overlap() {
    let multilateral_with = |details: &mut meeting::MeetingDetails, role: Option<ParticipantRole>| {
        details.format = MeetingFormat::Multilateral;
        details.participants.push(Participant {
            party: "EGY".into(),
            official_id: None,
            role,
        });
    };
    // Virtual codes like a phone call.
    let video = held_event(|details| details.format = MeetingFormat::Virtual);
    assert_eq!(
        coded(&video),
        (
            vec![dyad("041", "LBY", "FRA"), dyad("041", "FRA", "LBY")],
            Some("phone")
        )
    );
    // Negotiation wins over a phone call, and over a visit.
    let negotiated_call = held_event(|details| {
        details.format = MeetingFormat::Phone;
        details.negotiation = true;
    });
    assert_eq!(coded(&negotiated_call).0[0].0, "046");
    let negotiated_visit = held_event(|details| {
        details.negotiation = true;
        details.participants[0].role = Some(ParticipantRole::Host);
    });
    assert!(coded(&negotiated_visit).0.iter().all(|dyad| dyad.0 == "046"));
    // A call with a "host" is still a call.
    let hosted_call = held_event(|details| {
        details.format = MeetingFormat::Phone;
        details.participants[0].role = Some(ParticipantRole::Host);
    });
    assert_eq!(coded(&hosted_call).0[0].0, "041");
    // A host known wins over a third location: the host received the visitor there.
    let hosted_abroad = held_event(|details| {
        details.participants[0].role = Some(ParticipantRole::Host);
        if let Some(location) = details.location.as_mut() {
            location.country = Some("CHE".into());
        }
    });
    assert_eq!(
        coded(&hosted_abroad).0,
        vec![dyad("042", "FRA", "LBY"), dyad("043", "LBY", "FRA")]
    );
    // A third location that is no registered party (a place, not a party) still codes 044.
    let geneva = held_event(|details| {
        if let Some(location) = details.location.as_mut() {
            location.country = Some("CHE".into());
        }
    });
    assert_eq!(coded(&geneva).0[0].0, "044");
    // No location: consult.
    let nowhere = held_event(|details| details.location = None);
    assert_eq!(
        coded(&nowhere),
        (vec![dyad("040", "LBY", "FRA"), dyad("040", "FRA", "LBY")], None)
    );
    // Several hosts: each guest visits each host, each host hosts each guest.
    let co_hosted = held_event(|details| {
        multilateral_with(details, Some(ParticipantRole::Host));
        details.participants[0].role = Some(ParticipantRole::Host);
    });
    assert_eq!(
        coded(&co_hosted),
        (
            vec![
                dyad("042", "FRA", "LBY"),
                dyad("043", "LBY", "FRA"),
                dyad("042", "FRA", "EGY"),
                dyad("043", "EGY", "FRA"),
            ],
            Some("multilateral")
        )
    );
    // A joint proposal: each proposer -> each participant that is not a proposer.
    let joint = DomainEvent::Meeting(meeting::Event::MeetingProposed(meeting::MeetingProposed {
        meeting_id: meeting_id(),
        proposed_by: vec!["FRA".into(), "EGY".into()],
        details: {
            let mut details = meeting_details();
            multilateral_with(&mut details, None);
            details
        },
        proposed_window: None,
        provenance: provenance(),
    }));
    assert_eq!(
        coded(&joint).0,
        vec![dyad("036", "FRA", "LBY"), dyad("036", "EGY", "LBY")]
    );
    // Reaffirmations code with the details in effect (the event does not repeat them): each
    // reaffirming party -> each counterparty, or, without counterparties, -> each other
    // reaffirming party; the code follows the specificity and cooperation like a new commitment.
    let reaffirmed = |by: &[&str], change: &dyn Fn(&mut commitment::CommitmentDetails)| {
        let mut details = commitment_details();
        change(&mut details);
        let event = commitment::CommitmentReaffirmed {
            commitment_id: commitment_id(),
            reaffirmed_by: by.iter().map(|party| party.to_string()).collect(),
            voiced_by: Vec::new(),
            at_meeting: None,
            text: None,
            provenance: provenance(),
        };
        let mapping = dipledger::domain::cameo::map_reaffirmation(&event, &details);
        assert_eq!(
            mapping.table_version,
            dipledger::domain::cameo::MAPPING_TABLE_VERSION
        );
        assert_eq!((mapping.plover.event_type, mapping.plover.mode), ("AGREE", None));
        mapping
            .cameo
            .iter()
            .map(|coding| (coding.code.code, coding.source.clone(), coding.target.clone()))
            .collect::<Vec<Dyad>>()
    };
    assert_eq!(
        reaffirmed(&["LBY", "FRA"], &|_| {}),
        vec![dyad("030", "LBY", "FRA"), dyad("030", "FRA", "LBY")],
        "a mutual commitment reaffirmed by both"
    );
    assert_eq!(
        reaffirmed(&["LBY"], &|details| {
            details.committing_parties = vec!["LBY".into()];
            details.counterparties = vec!["FRA".into(), "EGY".into()];
            details.specificity = commitment::Specificity::Specific;
            details.cooperation = commitment::CooperationKind::Material;
        }),
        vec![dyad("031", "LBY", "FRA"), dyad("031", "LBY", "EGY")],
        "to each counterparty, material: 031"
    );
    assert_eq!(
        reaffirmed(&["FRA"], &|details| {
            details.counterparties = vec!["EGY".into()];
            details.specificity = commitment::Specificity::Measurable;
            details.cooperation = commitment::CooperationKind::Diplomatic;
        }),
        vec![dyad("032", "FRA", "EGY")],
        "diplomatic: 032; only the reaffirming party is a source"
    );
    assert_eq!(
        reaffirmed(&["LBY"], &|_| {}),
        vec![("030", "LBY".to_owned(), None)],
        "one party alone, no counterparty: no target"
    );
    // Scheduled, rescheduled, postponed and cancelled meetings have no code in either scheme.
    let not_coded = [
        meeting::Event::MeetingScheduled(meeting::MeetingScheduled {
            meeting_id: meeting_id(),
            details: meeting_details(),
            window: TimeWindow {
                start: day(1),
                end: None,
                kind: WindowKind::Span,
            },
            provenance: provenance(),
        }),
        meeting::Event::MeetingRescheduled(meeting::MeetingRescheduled {
            meeting_id: meeting_id(),
            window: TimeWindow {
                start: day(8),
                end: Some(day(9)),
                kind: WindowKind::Within,
            },
            reason: Some("the minister fell ill".into()),
            provenance: provenance(),
        }),
        meeting::Event::MeetingPostponed(meeting::MeetingPostponed {
            meeting_id: meeting_id(),
            reason: None,
            provenance: provenance(),
        }),
        meeting::Event::MeetingCancelled(meeting::MeetingCancelled {
            meeting_id: meeting_id(),
            cancelled_by: vec!["LBY".into()],
            reason: None,
            provenance: provenance(),
        }),
    ];
    for event in not_coded {
        assert!(
            dipledger::domain::cameo::map_event(&DomainEvent::Meeting(event.clone())).is_none(),
            "{event:?} has no code"
        );
    }
}
