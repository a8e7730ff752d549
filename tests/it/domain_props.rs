//! Property: for any sequence of commands (accepted or not), the state built while deciding
//! equals the state obtained by folding the accepted events from scratch, and equals folding the
//! events after a round trip through their stored encoding. Also: `decide` never panics.

use std::collections::BTreeMap;

use crate::support::domain::*;
use dipledger::domain::commitment::{self, AssessmentStage, PartyScore};
use dipledger::domain::common::{CommitmentId, Provenance, SourceCitation, TimeWindow, WindowKind};
use dipledger::domain::meeting::{self, MeetingFormat, Speaker};
use dipledger::domain::official::{self, OfficeTerm};
use dipledger::domain::party;
use dipledger::domain::{
    decide_command, decode_event, evolve_state, AggregateState, DomainCommand, DomainEvent,
};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just("reported text".to_owned()),
        1 => Just(String::new()),
        1 => "[a-zA-Z \u{7}]{0,12}",
    ]
}

fn party_code() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just("LBY".to_owned()),
        4 => Just("FRA".to_owned()),
        1 => Just("EGY".to_owned()),
        1 => Just("bad".to_owned()),
    ]
}

fn provenance_strategy() -> impl Strategy<Value = Provenance> {
    (-5i64..40, 0usize..3).prop_map(|(offset, sources)| Provenance {
        occurred_at: day(offset),
        sources: (0..sources)
            .map(|n| SourceCitation {
                source_id: dipledger::domain::common::SourceId::from_uuid(uuid(n as u128 + 1)),
                quote: None,
            })
            .collect(),
    })
}

fn details_strategy() -> impl Strategy<Value = meeting::MeetingDetails> {
    (party_code(), any::<bool>(), prop::bool::weighted(0.2)).prop_map(
        |(second_party, phone, with_bad_topic)| {
            let mut details = meeting_details();
            details.participants[1].party = second_party;
            if phone {
                details.format = MeetingFormat::Phone;
            }
            if with_bad_topic {
                details.topics.push("Bad Topic".into());
            }
            details
        },
    )
}

fn meeting_command() -> impl Strategy<Value = DomainCommand> {
    let id = meeting_id();
    let command = prop_oneof![
        (party_code(), details_strategy(), provenance_strategy()).prop_map(
            move |(proposed_by, details, provenance)| meeting::Command::ProposeMeeting {
                meeting_id: id,
                proposed_by: vec![proposed_by],
                details,
                proposed_window: None,
                provenance,
            }
        ),
        (details_strategy(), -3i64..3, provenance_strategy()).prop_map(
            move |(details, length, provenance)| meeting::Command::ScheduleMeeting {
                meeting_id: id,
                details,
                window: TimeWindow {
                    start: day(10),
                    end: Some(day(10 + length)),
                    kind: WindowKind::Span,
                },
                provenance,
            }
        ),
        provenance_strategy().prop_map(move |provenance| meeting::Command::RescheduleMeeting {
            meeting_id: id,
            window: TimeWindow {
                start: day(12),
                end: None,
                kind: WindowKind::Span,
            },
            reason: None,
            provenance,
        }),
        (proptest::option::of(text()), provenance_strategy()).prop_map(move |(reason, provenance)| {
            meeting::Command::CancelMeeting {
                meeting_id: id,
                cancelled_by: Vec::new(),
                reason,
                provenance,
            }
        }),
        (details_strategy(), provenance_strategy()).prop_map(move |(details, provenance)| {
            meeting::Command::RecordMeetingHeld {
                meeting_id: id,
                details,
                ended_at: None,
                provenance,
            }
        }),
        (party_code(), any::<bool>(), text(), provenance_strategy()).prop_map(
            move |(party, named, text, provenance)| meeting::Command::RecordStatement {
                meeting_id: id,
                speaker: Speaker {
                    party,
                    official_id: named.then(official_a),
                },
                text,
                verbatim: false,
                provenance,
            }
        ),
        (0u64..8, text(), details_strategy(), provenance_strategy()).prop_map(
            move |(corrects_version, reason, details, provenance)| {
                meeting::Command::CorrectMeeting {
                    meeting_id: id,
                    corrects_version,
                    reason,
                    details,
                    provenance,
                }
            }
        ),
        (0u64..8, text(), provenance_strategy()).prop_map(move |(retracts_version, reason, provenance)| {
            meeting::Command::RetractMeetingEvent {
                meeting_id: id,
                retracts_version,
                reason,
                provenance,
            }
        }),
    ];
    command.prop_map(DomainCommand::Meeting)
}

fn commitment_command() -> impl Strategy<Value = DomainCommand> {
    let id = commitment_id();
    let other = CommitmentId::from_uuid(uuid(0xC1));
    let command = prop_oneof![
        (provenance_strategy(), proptest::option::of(0i64..30)).prop_map(move |(provenance, due)| {
            let mut details = commitment_details();
            details.due_by = due.map(day);
            commitment::Command::RecordCommitment {
                commitment_id: id,
                details,
                provenance,
            }
        }),
        (prop::collection::vec(party_code(), 0..3), provenance_strategy()).prop_map(
            move |(reaffirmed_by, provenance)| {
                commitment::Command::ReaffirmCommitment {
                    commitment_id: id,
                    reaffirmed_by,
                    voiced_by: vec![],
                    at_meeting: None,
                    text: None,
                    provenance,
                }
            }
        ),
        (text(), provenance_strategy()).prop_map(move |(summary, provenance)| {
            commitment::Command::ReportCommitmentProgress {
                commitment_id: id,
                summary,
                provenance,
            }
        }),
        (text(), provenance_strategy()).prop_map(move |(summary, provenance)| {
            commitment::Command::FulfilCommitment {
                commitment_id: id,
                summary,
                provenance,
            }
        }),
        (text(), provenance_strategy()).prop_map(move |(reason, provenance)| {
            commitment::Command::MarkCommitmentLapsed {
                commitment_id: id,
                reason,
                provenance,
            }
        }),
        (text(), provenance_strategy()).prop_map(move |(reason, provenance)| {
            commitment::Command::WithdrawCommitment {
                commitment_id: id,
                reason,
                provenance,
            }
        }),
        (any::<bool>(), provenance_strategy()).prop_map(move |(to_self, provenance)| {
            commitment::Command::SupersedeCommitment {
                commitment_id: id,
                superseded_by: if to_self { id } else { other },
                reason: None,
                provenance,
            }
        }),
        (party_code(), -2i8..3, provenance_strategy()).prop_map(move |(party, score, provenance)| {
            commitment::Command::AssessCompliance {
                commitment_id: id,
                stage: AssessmentStage::Interim,
                assessor: "assessor".into(),
                rationale: "rationale".into(),
                scores: vec![PartyScore { party, score }],
                provenance,
            }
        }),
        (0u64..8, text(), provenance_strategy()).prop_map(move |(corrects_version, reason, provenance)| {
            commitment::Command::CorrectCommitment {
                commitment_id: id,
                corrects_version,
                reason,
                details: commitment_details(),
                provenance,
            }
        }),
        (0u64..8, text(), provenance_strategy()).prop_map(move |(retracts_version, reason, provenance)| {
            commitment::Command::RetractCommitmentEvent {
                commitment_id: id,
                retracts_version,
                reason,
                provenance,
            }
        }),
    ];
    command.prop_map(DomainCommand::Commitment)
}

fn official_command() -> impl Strategy<Value = DomainCommand> {
    let id = official_b();
    let office = || {
        (party_code(), proptest::option::of(party_code())).prop_map(|(party, to)| OfficeTerm {
            post: "Ambassador".into(),
            party,
            accredited_to: to,
            from: Some(day(0)),
            to: None,
        })
    };
    let command = prop_oneof![
        (
            text(),
            prop::collection::vec(office(), 0..3),
            provenance_strategy()
        )
            .prop_map(move |(name, offices, provenance)| {
                official::Command::RegisterOfficial {
                    official_id: id,
                    name,
                    offices,
                    provenance,
                }
            }),
        (office(), provenance_strategy()).prop_map(move |(office, provenance)| {
            official::Command::AppointOfficial {
                official_id: id,
                office,
                provenance,
            }
        }),
        (0u64..8, -3i64..20, provenance_strategy()).prop_map(move |(tenure_version, ended, provenance)| {
            official::Command::EndTenure {
                official_id: id,
                tenure_version,
                ended_at: day(ended),
                reason: None,
                provenance,
            }
        }),
        (0u64..8, text(), provenance_strategy()).prop_map(move |(corrects_version, name, provenance)| {
            official::Command::CorrectOfficialName {
                official_id: id,
                corrects_version,
                reason: "typo".into(),
                name,
                provenance,
            }
        }),
        (0u64..8, provenance_strategy()).prop_map(move |(retracts_version, provenance)| {
            official::Command::RetractOfficialEvent {
                official_id: id,
                retracts_version,
                reason: "wrong".into(),
                provenance,
            }
        }),
    ];
    command.prop_map(DomainCommand::Official)
}

fn party_command() -> impl Strategy<Value = DomainCommand> {
    prop_oneof![
        (text(), provenance_strategy()).prop_map(|(name, provenance)| {
            party::Command::RegisterParty {
                code: "LBY".into(),
                details: party_details(&name),
                provenance,
            }
        }),
        (0u64..4, text(), provenance_strategy()).prop_map(|(corrects_version, reason, provenance)| {
            party::Command::CorrectParty {
                code: "LBY".into(),
                corrects_version,
                reason,
                details: party_details("Libya"),
                provenance,
            }
        }),
    ]
    .prop_map(DomainCommand::Party)
}

fn any_command() -> impl Strategy<Value = DomainCommand> {
    prop_oneof![
        4 => meeting_command(),
        4 => commitment_command(),
        2 => official_command(),
        1 => party_command(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn replaying_accepted_events_rebuilds_the_decided_state(
        commands in prop::collection::vec(any_command(), 0..40)
    ) {
        let mut live: BTreeMap<String, AggregateState> = BTreeMap::new();
        let mut log: Vec<(String, DomainEvent)> = Vec::new();
        for command in &commands {
            let stream = command.stream_id();
            let state = live
                .remove(&stream)
                .unwrap_or_else(|| AggregateState::empty_for(command));
            let state = match decide_command(&state, command) {
                Ok(events) => {
                    prop_assert!(!events.is_empty());
                    let mut state = state;
                    for event in events {
                        state = evolve_state(state, &event);
                        log.push((stream.clone(), event));
                    }
                    state
                }
                Err(rejection) => {
                    // A rejection never changes anything and always explains itself.
                    prop_assert!(!rejection.to_string().is_empty());
                    state
                }
            };
            live.insert(stream, state);
        }
        for (stream, state) in &live {
            let events: Vec<&DomainEvent> = log
                .iter()
                .filter(|(other, _)| other == stream)
                .map(|(_, event)| event)
                .collect();
            let Some(first) = events.first() else {
                prop_assert_eq!(state.version(), 0);
                continue;
            };
            let replayed = events.iter().fold(
                AggregateState::empty_for_event(first),
                |state, event| evolve_state(state, event),
            );
            prop_assert_eq!(&replayed, state);
            let decoded = events.iter().fold(
                AggregateState::empty_for_event(first),
                |state, event| {
                    let stored = event.encode_payload();
                    let decoded = decode_event(event.event_type(), event.schema_version(), &stored)
                        .expect("stored events decode");
                    evolve_state(state, &decoded)
                },
            );
            prop_assert_eq!(&decoded, state);
            prop_assert_eq!(state.version(), events.len() as u64);
        }
    }
}
