//! Property tests: for random command sequences, every read model at its checkpoint equals a
//! fresh fold of the events up to that position (also as of earlier positions, through paged
//! lists); a rebuild writes exactly what incremental application wrote; a runner stopped after
//! k batches and reopened continues to the same state, with nothing applied twice. And, over the
//! same random logs of every kind of event, a ReadAll or ReadStream page written straight from
//! the stored records is byte for byte the encoding of the message built field by field.

use std::collections::BTreeMap;

use crate::support::projections::*;
use dipledger::api::pages::{read_all_page, stream_events, ReadAll, ReadStream};
use dipledger::api::{convert, pb};
use dipledger::domain::commitment::AssessmentStage;
use dipledger::domain::commitment::{
    self, CommitmentDetails, CommitmentKind, CooperationKind, PartyScore, Specificity,
};
use dipledger::domain::common::{CommitmentId, MeetingId, OfficialId, TimeWindow, WindowKind};
use dipledger::domain::meeting::{self, Location, MeetingDetails, MeetingFormat, Participant, Speaker};
use dipledger::domain::official::{self, OfficeTerm};
use dipledger::domain::party::{self, PartyDetails, PartyKind};
use dipledger::domain::source::{self, SourceDetails};
use dipledger::domain::DomainCommand;
use dipledger::log::{Direction, EventFilter, Log, RecordedEvent};
use dipledger::projections::relations::pair_key;
use dipledger::projections::{
    AsOf, CommitmentFilter, CommitmentRow, MeetingFilter, MeetingRow, MeetingStatusView, Page, PageRequest,
    ProjectionError, ProjectionName, Projections, ReadOptions, TimelineItem,
};
use dipledger::time::Timestamp;
use proptest::prelude::*;
use uuid::Uuid;

const PARTIES: [&str; 4] = ["AAA", "BBB", "CCC", "DDD"];
const TOPICS: [&str; 4] = ["security", "trade", "migration", "energy"];
const OFFICIALS: usize = 3;
const MEETINGS: usize = 4;
const COMMITMENTS: usize = 3;

fn official(index: usize) -> OfficialId {
    OfficialId::from_uuid(Uuid::from_u128(0xA0 + index as u128))
}
fn meeting_id(index: usize) -> MeetingId {
    MeetingId::from_uuid(Uuid::from_u128(0x300 + index as u128))
}
fn commitment_id(index: usize) -> CommitmentId {
    CommitmentId::from_uuid(Uuid::from_u128(0xC00 + index as u128))
}
fn topics(mask: u8) -> Vec<String> {
    (0..TOPICS.len())
        .filter(|bit| mask & (1 << bit) != 0)
        .map(|bit| TOPICS[bit].to_owned())
        .collect()
}

#[derive(Debug, Clone)]
enum Op {
    Party(usize),
    CorrectParty(usize),
    Official(usize, usize),
    EndTenure(usize, i64),
    Held(usize, usize, usize, u8, i64),
    Schedule(usize, usize, usize, u8, i64),
    Cancel(usize),
    Postpone(usize),
    Reschedule(usize, i64),
    Statement(usize),
    CorrectMeeting(usize, u8),
    Retract(usize, u64),
    Commit(usize, usize, usize, u8, Option<i64>),
    Reaffirm(usize, i64),
    Fulfil(usize),
    Assess(usize, i8),
    RetractCommitment(usize, u64),
    CorrectCommitment(usize, u8),
}

fn op() -> impl Strategy<Value = Op> {
    let p = 0..PARTIES.len();
    prop_oneof![
        3 => p.clone().prop_map(Op::Party),
        1 => p.clone().prop_map(Op::CorrectParty),
        2 => (0..OFFICIALS, p.clone()).prop_map(|(o, p)| Op::Official(o, p)),
        1 => (0..OFFICIALS, 0..40i64).prop_map(|(o, d)| Op::EndTenure(o, d)),
        4 => (0..MEETINGS, p.clone(), p.clone(), any::<u8>(), -40..40i64).prop_map(|(m, a, b, t, d)| Op::Held(m, a, b, t, d)),
        2 => (0..MEETINGS, p.clone(), p.clone(), any::<u8>(), -40..40i64).prop_map(|(m, a, b, t, d)| Op::Schedule(m, a, b, t, d)),
        1 => (0..MEETINGS).prop_map(Op::Cancel),
        1 => (0..MEETINGS).prop_map(Op::Postpone),
        1 => (0..MEETINGS, -40..40i64).prop_map(|(m, d)| Op::Reschedule(m, d)),
        2 => (0..MEETINGS).prop_map(Op::Statement),
        2 => (0..MEETINGS, any::<u8>()).prop_map(|(m, t)| Op::CorrectMeeting(m, t)),
        1 => (0..MEETINGS, 1..6u64).prop_map(|(m, v)| Op::Retract(m, v)),
        3 => (0..COMMITMENTS, p.clone(), p.clone(), any::<u8>(), proptest::option::of(-20..40i64)).prop_map(|(c, a, b, t, d)| Op::Commit(c, a, b, t, d)),
        2 => (0..COMMITMENTS, -40..40i64).prop_map(|(c, d)| Op::Reaffirm(c, d)),
        1 => (0..COMMITMENTS).prop_map(Op::Fulfil),
        2 => (0..COMMITMENTS, -1..=1i8).prop_map(|(c, s)| Op::Assess(c, s)),
        1 => (0..COMMITMENTS, 1..6u64).prop_map(|(c, v)| Op::RetractCommitment(c, v)),
        1 => (0..COMMITMENTS, any::<u8>()).prop_map(|(c, t)| Op::CorrectCommitment(c, t)),
    ]
}

fn meeting_details(a: usize, b: usize, mask: u8) -> MeetingDetails {
    MeetingDetails {
        format: MeetingFormat::Bilateral,
        participants: vec![
            Participant {
                party: PARTIES[a].into(),
                official_id: Some(official(a % OFFICIALS)),
                role: None,
            },
            Participant {
                party: PARTIES[b].into(),
                official_id: Some(official(b % OFFICIALS)),
                role: None,
            },
        ],
        location: Some(Location {
            place: format!("City{a}"),
            country: Some(PARTIES[a].into()),
        }),
        topics: topics(mask),
        summary: None,
        negotiation: mask & 0x80 != 0,
    }
}

fn commitment_details(a: usize, b: usize, mask: u8, due: Option<i64>) -> CommitmentDetails {
    CommitmentDetails {
        kind: CommitmentKind::New,
        committing_parties: vec![PARTIES[a].into()],
        voiced_by: vec![],
        counterparties: if a == b { vec![] } else { vec![PARTIES[b].into()] },
        text: "cooperate".into(),
        verbatim: false,
        topics: topics(mask),
        specificity: if mask & 0x40 != 0 {
            Specificity::Specific
        } else {
            Specificity::Aspirational
        },
        cooperation: if mask & 0x80 != 0 {
            CooperationKind::Material
        } else {
            CooperationKind::Unspecified
        },
        due_by: due.map(day),
        made_at_meeting: None,
    }
}

/// Records the op (trying versions for corrections and retractions); false if rejected.
fn apply(log: &Log, op: &Op, at: i64) -> bool {
    let p = || cite_on(day(at), None);
    let try_versions =
        |make: &dyn Fn(u64) -> DomainCommand| (1..=12).any(|v| record(log, &make(v), "tester").is_some());
    let command = match op.clone() {
        Op::Party(i) => DomainCommand::Party(party::Command::RegisterParty {
            code: PARTIES[i].into(),
            details: PartyDetails {
                kind: PartyKind::State,
                name: format!("Party {i}"),
                iso_alpha2: None,
                iso_alpha3: None,
                wikidata_qid: None,
                cameo_code: None,
            },
            provenance: p(),
        }),
        Op::CorrectParty(i) => {
            return try_versions(&|v| {
                DomainCommand::Party(party::Command::CorrectParty {
                    code: PARTIES[i].into(),
                    corrects_version: v,
                    reason: "typo".into(),
                    details: PartyDetails {
                        kind: PartyKind::Government,
                        name: format!("Party {i} v{v}"),
                        iso_alpha2: None,
                        iso_alpha3: None,
                        wikidata_qid: None,
                        cameo_code: None,
                    },
                    provenance: p(),
                })
            })
        }
        Op::Official(o, i) => DomainCommand::Official(official::Command::RegisterOfficial {
            official_id: official(o),
            name: format!("Official {o}"),
            offices: vec![OfficeTerm {
                post: format!("Envoy {}", o % 2),
                party: PARTIES[i].into(),
                accredited_to: None,
                from: Some(day(-30)),
                to: None,
            }],
            provenance: p(),
        }),
        Op::EndTenure(o, d) => DomainCommand::Official(official::Command::EndTenure {
            official_id: official(o),
            tenure_version: 2,
            ended_at: day(d),
            reason: None,
            provenance: p(),
        }),
        Op::Held(m, a, b, t, d) => DomainCommand::Meeting(meeting::Command::RecordMeetingHeld {
            meeting_id: meeting_id(m),
            details: meeting_details(a, b, t),
            ended_at: None,
            provenance: cite_on(day(d), None),
        }),
        Op::Schedule(m, a, b, t, d) => DomainCommand::Meeting(meeting::Command::ScheduleMeeting {
            meeting_id: meeting_id(m),
            details: meeting_details(a, b, t),
            window: TimeWindow {
                start: day(d),
                end: None,
                kind: WindowKind::Span,
            },
            provenance: p(),
        }),
        Op::Postpone(m) => DomainCommand::Meeting(meeting::Command::PostponeMeeting {
            meeting_id: meeting_id(m),
            reason: None,
            provenance: p(),
        }),
        Op::Reschedule(m, d) => DomainCommand::Meeting(meeting::Command::RescheduleMeeting {
            meeting_id: meeting_id(m),
            window: TimeWindow {
                start: day(d),
                end: None,
                kind: WindowKind::Span,
            },
            reason: None,
            provenance: p(),
        }),
        Op::Cancel(m) => DomainCommand::Meeting(meeting::Command::CancelMeeting {
            meeting_id: meeting_id(m),
            cancelled_by: Vec::new(),
            reason: None,
            provenance: p(),
        }),
        Op::Statement(m) => {
            return [0, 1].iter().any(|k| {
                let party = PARTIES[*k * 2 % PARTIES.len()];
                let command = DomainCommand::Meeting(meeting::Command::RecordStatement {
                    meeting_id: meeting_id(m),
                    speaker: Speaker {
                        party: party.into(),
                        official_id: None,
                    },
                    text: "words".into(),
                    verbatim: true,
                    provenance: p(),
                });
                record(log, &command, "tester").is_some()
            }) || PARTIES.iter().any(|party| {
                let command = DomainCommand::Meeting(meeting::Command::RecordStatement {
                    meeting_id: meeting_id(m),
                    speaker: Speaker {
                        party: (*party).into(),
                        official_id: None,
                    },
                    text: "words".into(),
                    verbatim: true,
                    provenance: p(),
                });
                record(log, &command, "tester").is_some()
            })
        }
        Op::CorrectMeeting(m, t) => {
            return (0..PARTIES.len()).any(|a| {
                try_versions(&|v| {
                    DomainCommand::Meeting(meeting::Command::CorrectMeeting {
                        meeting_id: meeting_id(m),
                        corrects_version: v,
                        reason: "wrong topics".into(),
                        details: meeting_details(a, (a + 1) % PARTIES.len(), t),
                        provenance: p(),
                    })
                })
            })
        }
        Op::Retract(m, v) => DomainCommand::Meeting(meeting::Command::RetractMeetingEvent {
            meeting_id: meeting_id(m),
            retracts_version: v,
            reason: "not said".into(),
            provenance: p(),
        }),
        Op::Commit(c, a, b, t, due) => DomainCommand::Commitment(commitment::Command::RecordCommitment {
            commitment_id: commitment_id(c),
            details: commitment_details(a, b, t, due),
            provenance: p(),
        }),
        Op::Reaffirm(c, d) => {
            return PARTIES.iter().any(|party| {
                let command = DomainCommand::Commitment(commitment::Command::ReaffirmCommitment {
                    commitment_id: commitment_id(c),
                    reaffirmed_by: vec![(*party).into()],
                    voiced_by: vec![],
                    at_meeting: None,
                    text: None,
                    provenance: cite_on(day(d), None),
                });
                record(log, &command, "tester").is_some()
            })
        }
        Op::Fulfil(c) => DomainCommand::Commitment(commitment::Command::FulfilCommitment {
            commitment_id: commitment_id(c),
            summary: "done".into(),
            provenance: p(),
        }),
        Op::Assess(c, score) => {
            return PARTIES.iter().any(|party| {
                let command = DomainCommand::Commitment(commitment::Command::AssessCompliance {
                    commitment_id: commitment_id(c),
                    stage: AssessmentStage::Interim,
                    assessor: "G20RG".into(),
                    rationale: "observed".into(),
                    scores: vec![PartyScore {
                        party: (*party).into(),
                        score,
                    }],
                    provenance: p(),
                });
                record(log, &command, "tester").is_some()
            })
        }
        Op::RetractCommitment(c, v) => {
            DomainCommand::Commitment(commitment::Command::RetractCommitmentEvent {
                commitment_id: commitment_id(c),
                retracts_version: v,
                reason: "wrong".into(),
                provenance: p(),
            })
        }
        Op::CorrectCommitment(c, t) => {
            return (0..PARTIES.len()).any(|a| {
                try_versions(&|v| {
                    DomainCommand::Commitment(commitment::Command::CorrectCommitment {
                        commitment_id: commitment_id(c),
                        corrects_version: v,
                        reason: "wrong".into(),
                        details: commitment_details(a, (a + 1) % PARTIES.len(), t, Some(10)),
                        provenance: p(),
                    })
                })
            })
        }
    };
    record(log, &command, "tester").is_some()
}

fn populate(log: &Log, ops: &[Op]) {
    record(
        log,
        &DomainCommand::Source(source::Command::RegisterSource {
            source_id: source_id(),
            details: SourceDetails {
                url: Some("https://example.org/report".into()),
                publisher: None,
                title: None,
                published_at: None,
                retrieved_at: Timestamp::from_unix_micros(WEDNESDAY_MICROS),
                language: "en".into(),
            },
        }),
        "tester",
    )
    .expect("source");
    for (index, op) in ops.iter().enumerate() {
        apply(log, op, index as i64 % 7);
    }
}

/// Every page of a list, following tokens with a small page size.
fn all_pages<T>(mut page: impl FnMut(&PageRequest) -> Page<T>) -> Vec<T> {
    let mut request = PageRequest::first(2);
    let mut items = Vec::new();
    loop {
        let result = page(&request);
        let token = result.next_page_token().map(str::to_owned);
        items.extend(result.into_items());
        match token {
            Some(token) => request.token = Some(token),
            None => return items,
        }
    }
}

/// A meeting as a list gives it: its statements counted, not listed.
fn listed_meeting(row: &MeetingRow) -> MeetingRow {
    assert_eq!(row.statement_count as usize, row.statements.len());
    MeetingRow {
        statements: Vec::new(),
        ..row.clone()
    }
}

/// A commitment as a list gives it: its progress reports counted, not listed.
fn listed_commitment(row: &CommitmentRow) -> CommitmentRow {
    assert_eq!(row.progress_report_count as usize, row.progress_reports.len());
    CommitmentRow {
        progress_reports: Vec::new(),
        ..row.clone()
    }
}

/// Asserts every read model, as of `at`, equals a fresh fold of the log up to `at`.
fn assert_equals_fold(projections: &Projections, log: &Log, at: u64) {
    let fold = fold(log, at);
    let options = ReadOptions::latest().as_of(AsOf::Position(at));
    // Meetings: by id and through every list index.
    for index in 0..MEETINGS {
        let id = meeting_id(index);
        match (projections.meeting(id, &options), fold.meetings.get(&id.uuid())) {
            (Ok(answer), Some(row)) => {
                assert_eq!(answer.value(), row);
                assert_eq!(answer.based_on_position(), at);
            }
            (Err(ProjectionError::NotFound { .. }), None) => {}
            (answer, row) => panic!("meeting {index} at {at}: {answer:?} vs {row:?}"),
        }
    }
    let mut meetings: Vec<_> = fold.meetings.values().collect();
    meetings.sort_by_key(|row| (row.sort_key_for_tests(), row.meeting_id.uuid()));
    let filters = PARTIES
        .iter()
        .map(|party| MeetingFilter {
            party: Some((*party).into()),
            ..MeetingFilter::default()
        })
        .chain(TOPICS.iter().map(|topic| MeetingFilter {
            topic: Some((*topic).into()),
            ..MeetingFilter::default()
        }))
        .chain([
            MeetingFilter::default(),
            MeetingFilter {
                status: Some(MeetingStatusView::Held),
                ..MeetingFilter::default()
            },
            MeetingFilter {
                official: Some(official(1)),
                occurred_from: Some(day(0).at()),
                occurred_to: Some(day(20).at()),
                ..MeetingFilter::default()
            },
            MeetingFilter {
                place: Some("city2".into()),
                country: Some("CCC".into()),
                ..MeetingFilter::default()
            },
        ]);
    for filter in filters {
        let listed = all_pages(|page| projections.meetings(&filter, page, &options).expect("list"));
        let expected: Vec<_> = meetings
            .iter()
            .filter(|row| filter.matches(row))
            .map(|row| listed_meeting(row))
            .collect();
        assert_eq!(listed, expected, "{filter:?} at {at}");
    }
    // Commitments.
    for index in 0..COMMITMENTS {
        let id = commitment_id(index);
        match (
            projections.commitment(id, &options),
            fold.commitments.get(&id.uuid()),
        ) {
            (Ok(answer), Some(row)) => assert_eq!(answer.value(), row),
            (Err(ProjectionError::NotFound { .. }), None) => {}
            (answer, row) => panic!("commitment {index} at {at}: {answer:?} vs {row:?}"),
        }
    }
    let mut commitments: Vec<_> = fold.commitments.values().cloned().collect();
    commitments.sort_by_key(|row| (row.made_at.map(|made| made.at()), row.commitment_id.uuid()));
    for filter in PARTIES
        .iter()
        .map(|party| CommitmentFilter {
            party: Some((*party).into()),
            ..CommitmentFilter::default()
        })
        .chain([CommitmentFilter::default()])
    {
        let listed = all_pages(|page| projections.commitments(&filter, page, &options).expect("list"));
        let expected: Vec<_> = commitments
            .iter()
            .filter(|row| filter.matches(row))
            .map(listed_commitment)
            .collect();
        assert_eq!(listed, expected, "{filter:?} at {at}");
    }
    let on = day(15).at();
    let overdue = all_pages(|page| {
        projections
            .overdue_commitments(on, page, &options)
            .expect("overdue")
    });
    let mut expected: Vec<_> = commitments
        .iter()
        .filter(|row| row.overdue_on(on))
        .map(listed_commitment)
        .collect();
    expected.sort_by_key(|row| (row.details.due_by.map(|due| due.at()), row.commitment_id.uuid()));
    assert_eq!(overdue, expected, "overdue at {at}");
    let compliance = fold.compliance();
    for party in PARTIES {
        let answer = projections
            .compliance(party, &options)
            .expect("compliance")
            .into_value();
        let expected = compliance.get(party).cloned().unwrap_or_default();
        assert_eq!(
            (answer.assessed_commitments, answer.score_sum),
            (expected.assessed_commitments, expected.score_sum),
            "compliance {party} at {at}"
        );
    }
    // Relations: summary and timeline of every pair.
    let relations = fold.relations();
    for (index, a) in PARTIES.iter().enumerate() {
        for b in &PARTIES[index + 1..] {
            let pair = pair_key(a, b);
            let mut request = PageRequest::first(1);
            let first = projections
                .relation(a, b, &request, &options)
                .expect("relation")
                .into_value();
            assert_eq!(
                first.summary,
                relations.get(&pair).cloned().unwrap_or_default(),
                "{pair} at {at}"
            );
            let mut timeline = first.timeline;
            let mut token = first.next_page_token;
            while let Some(next) = token {
                request.token = Some(next);
                let page = projections
                    .relation(a, b, &request, &options)
                    .expect("relation")
                    .into_value();
                timeline.extend(page.timeline);
                token = page.next_page_token;
            }
            // Each item is its entity as a list gives it.
            for item in &timeline {
                match item {
                    TimelineItem::Meeting(row) => {
                        assert_eq!(row, &listed_meeting(&fold.meetings[&row.meeting_id.uuid()]))
                    }
                    TimelineItem::Commitment(row) => assert_eq!(
                        row,
                        &listed_commitment(&fold.commitments[&row.commitment_id.uuid()])
                    ),
                }
            }
            let mut listed: Vec<Uuid> = timeline
                .iter()
                .map(|item| match item {
                    TimelineItem::Meeting(row) => row.meeting_id.uuid(),
                    TimelineItem::Commitment(row) => row.commitment_id.uuid(),
                })
                .collect();
            listed.sort();
            let mut expected: Vec<Uuid> = fold
                .meetings
                .values()
                .filter(|row| {
                    dipledger::projections::relations::meeting_contribution(row).contains_key(&pair)
                })
                .map(|row| row.meeting_id.uuid())
                .chain(
                    fold.commitments
                        .values()
                        .filter(|row| {
                            dipledger::projections::relations::commitment_contribution(row)
                                .contains_key(&pair)
                        })
                        .map(|row| row.commitment_id.uuid()),
                )
                .collect();
            expected.sort();
            assert_eq!(listed, expected, "timeline {pair} at {at}");
        }
    }
    // Officials and contacts.
    let contacts = fold.contacts();
    for index in 0..OFFICIALS {
        let id = official(index);
        match (projections.official(id, &options), fold.officials.get(&id.uuid())) {
            (Ok(answer), Some(row)) => assert_eq!(answer.value(), row),
            (Err(ProjectionError::NotFound { .. }), None) => {}
            (answer, row) => panic!("official {index} at {at}: {answer:?} vs {row:?}"),
        }
        let met = projections
            .contacts(id, &options)
            .expect("contacts")
            .into_value()
            .met;
        assert_eq!(
            met,
            contacts.get(&id.to_string()).cloned().unwrap_or_default(),
            "contacts at {at}"
        );
    }
    for post in ["Envoy 0", "Envoy 1"] {
        let holders = all_pages(|page| {
            projections
                .post_holders(post, day(3).at(), page, &options)
                .expect("holders")
        });
        let mut listed: Vec<Uuid> = holders.iter().map(|holder| holder.official_id.uuid()).collect();
        listed.sort();
        let expected: Vec<Uuid> = fold
            .officials
            .values()
            .filter(|row| {
                row.offices
                    .iter()
                    .any(|office| office.post == post && office.held_on(day(3).at()))
            })
            .map(|row| row.official_id.uuid())
            .collect();
        assert_eq!(listed, expected, "holders of {post} at {at}");
    }
    // Parties and sources.
    let parties = all_pages(|page| projections.parties(page, &options).expect("parties"));
    let listed: BTreeMap<String, _> = parties
        .into_iter()
        .map(|row| (row.code.clone(), row.details))
        .collect();
    let expected: BTreeMap<String, _> = fold
        .parties
        .iter()
        .map(|(code, (details, _))| (code.clone(), details.clone()))
        .collect();
    assert_eq!(listed, expected, "parties at {at}");
    let sources = all_pages(|page| projections.sources(page, &options).expect("sources"));
    assert_eq!(sources.len(), fold.sources.len());
    // Histories in pages of 2, so that corrections and retractions often come after the page
    // of what they refer to.
    let streams = (0..MEETINGS)
        .map(|index| meeting_id(index).stream_id())
        .chain((0..COMMITMENTS).map(|index| commitment_id(index).stream_id()));
    for stream_id in streams {
        let expected = reference_history_marks(log, &stream_id, at);
        let history = match projections.history(&stream_id, &PageRequest::first(2), &options) {
            Err(ProjectionError::NotFound { .. }) if expected.is_empty() => continue,
            first => {
                first.expect("history");
                all_pages(|page| {
                    projections
                        .history(&stream_id, page, &options)
                        .expect("history page")
                })
            }
        };
        let marks: Vec<_> = history
            .iter()
            .map(|entry| (entry.stream_version, entry.corrected_by, entry.retracted_by))
            .collect();
        assert_eq!(marks, expected, "history marks of {stream_id} at {at}");
    }
}

/// (version, corrected by, retracted by) of every event of a stream up to `at`, from the log
/// alone: each correction or retraction marks its target, a later one replacing an earlier.
fn reference_history_marks(log: &Log, stream_id: &str, at: u64) -> Vec<(u64, Option<u64>, Option<u64>)> {
    let events = log
        .read_stream(stream_id, 1, dipledger::log::Direction::Forwards, 10_000)
        .expect("read stream");
    let mut marks: Vec<(u64, Option<u64>, Option<u64>)> = Vec::new();
    for recorded in events.iter().filter(|recorded| recorded.position() <= at) {
        let envelope = recorded.envelope();
        let version = envelope.stream_version;
        marks.push((version, None, None));
        let event = dipledger::domain::event::decode_event(
            &envelope.event_type,
            envelope.schema_version,
            &envelope.payload,
        )
        .expect("decode");
        use dipledger::domain::DomainEvent as E;
        let (corrects, retracts) = match &event {
            E::Meeting(meeting::Event::MeetingCorrected(e)) => (Some(e.corrects_version), None),
            E::Meeting(meeting::Event::MeetingEventRetracted(e)) => (None, Some(e.retracts_version)),
            E::Commitment(commitment::Event::CommitmentCorrected(e)) => (Some(e.corrects_version), None),
            E::Commitment(commitment::Event::CommitmentEventRetracted(e)) => (None, Some(e.retracts_version)),
            _ => (None, None),
        };
        if let Some(target) = corrects {
            marks[target as usize - 1].1 = Some(version);
        }
        if let Some(target) = retracts {
            marks[target as usize - 1].2 = Some(version);
        }
    }
    marks
}

trait SortKey {
    fn sort_key_for_tests(&self) -> i64;
}

impl SortKey for dipledger::projections::MeetingRow {
    fn sort_key_for_tests(&self) -> i64 {
        self.occurred_at().map_or(i64::MIN, Timestamp::unix_micros)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn read_models_equal_a_fresh_fold_and_rebuilds_equal_incremental(
        ops in proptest::collection::vec(op(), 1..40),
        batch in 1usize..9,
        as_of_fraction in 0.0f64..1.0,
    ) {
        let (_dir, log) = temp_log();
        populate(&log, &ops);
        let projections = Projections::open_paused(log.clone()).expect("open");
        // Every state packed as soon as it is folded: the packed form answers alike.
        projections.keep_hot_states(0);
        while projections.step(batch).expect("step") > 0 {
            let at = projections.checkpoint(ProjectionName::Meetings);
            assert_equals_fold(&projections, &log, at);
        }
        let head = log.head();
        for name in ProjectionName::ALL {
            prop_assert_eq!(projections.checkpoint(name), head);
        }
        prop_assert_eq!(projections.held_states().1, 0, "no state is kept decoded");
        let earlier = ((head as f64) * as_of_fraction) as u64;
        assert_equals_fold(&projections, &log, earlier);
        let incremental = projections.dump_all();
        let mut reports = Vec::new();
        for name in ProjectionName::ALL {
            let reached = projections.rebuild(name, &mut |position, head| reports.push((position, head))).expect("rebuild");
            prop_assert_eq!(reached, head);
        }
        prop_assert!(reports.iter().all(|(position, of)| position <= of));
        prop_assert_eq!(projections.dump_all(), incremental);
    }

    #[test]
    fn a_runner_stopped_after_k_batches_continues_exactly(
        ops in proptest::collection::vec(op(), 1..30),
        batch in 1usize..5,
        stop_after in 0usize..12,
    ) {
        // The log stays open (reopening a sled directory in the same process races sled's
        // background writers for the file lock); everything of the projections is dropped: the
        // runner, its state cache and its tree handles. What survives is what was committed.
        let (_dir, log) = temp_log();
        populate(&log, &ops);
        let head = log.head();
        {
            let projections = Projections::open_paused(log.clone()).expect("open");
            // Packed states are what a snapshot copies: they must snapshot exactly.
            projections.keep_hot_states(stop_after % 3);
            for _ in 0..stop_after {
                projections.step(batch).expect("step");
            }
            // Read models at different checkpoints, as a crash between their batches leaves
            // them: officials rebuilt to the head, the others stopped after k batches.
            projections.rebuild(ProjectionName::Officials, &mut |_, _| {}).expect("rebuild");
        }
        let projections = Projections::open_paused(log.clone()).expect("reopen");
        let resumed = projections.checkpoint(ProjectionName::Relations);
        prop_assert!(resumed <= head);
        assert_equals_fold(&projections, &log, resumed);
        projections.catch_up().expect("catch up");
        assert_equals_fold(&projections, &log, head);
        let continued = projections.dump_all();
        for name in ProjectionName::ALL {
            projections.rebuild(name, &mut |_, _| {}).expect("rebuild");
        }
        prop_assert_eq!(projections.dump_all(), continued);
    }
}

/// Events as their messages built field by field (each with its leaf input when asked), cut
/// where the envelopes would pass `max_bytes` (at least one kept); and the position of the first
/// one left out, if any.
fn reference_messages(
    events: impl IntoIterator<Item = RecordedEvent>,
    typed: bool,
    leaf_input: bool,
    max_bytes: usize,
) -> (Vec<pb::EventEnvelope>, Option<u64>) {
    use prost::Message as _;
    let (mut out, mut bytes) = (Vec::new(), 0);
    for event in events {
        let position = event.position();
        let input = dipledger::encoding::encode(event.envelope());
        let mut envelope = convert::envelope_into_pb(event, typed);
        if leaf_input {
            envelope.leaf_input = input;
        }
        let len = envelope.encoded_len();
        if !out.is_empty() && bytes + len > max_bytes {
            return (out, Some(position));
        }
        bytes += len;
        out.push(envelope);
    }
    (out, None)
}

/// The reference for a ReadAll page: the owned events converted to their messages (each with its
/// leaf input when asked), cut where the envelopes would pass `max_bytes`, and encoded by prost.
fn reference_page(log: &Log, request: &ReadAll) -> Vec<u8> {
    use prost::Message as _;
    let page = log
        .read_all(
            request.from_position,
            request.direction,
            request.limit,
            &request.filter,
        )
        .expect("read_all");
    let (events, left_out) =
        reference_messages(page.events, request.typed, request.leaf_input, request.max_bytes);
    let (next_position, reached_end) = match left_out {
        Some(position) => (position, false),
        None => (page.next_position, page.reached_end),
    };
    pb::ReadAllResponse {
        events,
        next_position,
        head: page.head,
        reached_end,
    }
    .encode_to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn pages_written_from_the_records_are_the_bytes_of_their_messages(
        ops in proptest::collection::vec(op(), 1..40),
        pages in proptest::collection::vec(
            (0.0f64..1.0, any::<bool>(), 1usize..50, 0usize..4, any::<bool>(), any::<bool>(), 0usize..6_000, 0u64..6),
            1..8,
        ),
    ) {
        let (_dir, log) = temp_log();
        populate(&log, &ops);
        let head = log.head();
        for (at, forwards, limit, filter, typed, leaf_input, max_bytes, ahead) in pages {
            let (direction, from_position) = if forwards {
                (Direction::Forwards, 1 + ((head as f64) * at) as u64)
            } else {
                (Direction::Backwards, ((head as f64) * at) as u64)
            };
            let filter = match filter {
                0 => EventFilter::default(),
                1 => EventFilter { event_types: vec!["MeetingHeld".into(), "StatementRecorded".into()], ..EventFilter::default() },
                2 => EventFilter { stream_prefixes: vec!["commitment-".into()], ..EventFilter::default() },
                _ => EventFilter { tags: vec![format!("party:{}", PARTIES[0])], ..EventFilter::default() },
            };
            let request = ReadAll { from_position, direction, limit, filter, typed, leaf_input, max_bytes };
            let written = read_all_page(&log, &request).expect("page");
            prop_assert_eq!(written, reference_page(&log, &request), "{:?}", request);
            // A ReadStream page of the log's longest stream, from a version inside it.
            let all = log.read_all(1, Direction::Forwards, 4_096, &EventFilter::default()).expect("read_all");
            let longest = all.events.iter().max_by_key(|event| event.envelope().stream_version).expect("events");
            let (stream_id, versions) = (&longest.envelope().stream_id, longest.envelope().stream_version);
            let from_version = 1 + ((versions - 1) as f64 * at) as u64;
            let request = ReadStream {
                stream_id,
                from_version,
                up_to_version: from_version + ahead,
                direction,
                limit,
                typed,
                leaf_input,
                max_bytes,
            };
            let (written, last) = stream_events(&log, &request).expect("stream page");
            let (expected, expected_last) = reference_stream_events(&log, &request);
            prop_assert_eq!(written, expected, "{:?}", request);
            prop_assert_eq!(last, expected_last);
        }
    }
}

/// The reference for a ReadStream page's events: owned events converted to their messages, ended
/// by the first past `up_to_version`, cut like a ReadAll page, encoded by prost (the page's other fields left at their defaults, so
/// the bytes are the events alone); and the last event's version.
fn reference_stream_events(log: &Log, request: &ReadStream<'_>) -> (Vec<u8>, Option<u64>) {
    use prost::Message as _;
    let events = log
        .read_stream(
            request.stream_id,
            request.from_version,
            request.direction,
            request.limit,
        )
        .expect("read_stream");
    let events = events
        .into_iter()
        .take_while(|event| event.envelope().stream_version <= request.up_to_version);
    let (out, _) = reference_messages(events, request.typed, request.leaf_input, request.max_bytes);
    let last = out.last().map(|envelope| envelope.stream_version);
    let page = pb::ReadStreamResponse {
        events: out,
        ..Default::default()
    };
    (page.encode_to_vec(), last)
}

#[test]
fn generated_commands_are_mostly_accepted() {
    let ops: Vec<Op> = (0..PARTIES.len())
        .map(Op::Party)
        .chain((0..OFFICIALS).map(|o| Op::Official(o, o)))
        .chain([
            Op::Held(0, 0, 1, 0b11, 1),
            Op::Schedule(1, 1, 2, 0b100, 5),
            Op::Statement(0),
            Op::CorrectMeeting(0, 0b1000),
            Op::Retract(0, 2),
            Op::Commit(0, 0, 1, 0b1, Some(3)),
            Op::Reaffirm(0, 2),
            Op::Assess(0, 1),
            Op::CorrectCommitment(0, 0b10),
            Op::CorrectParty(0),
            Op::EndTenure(0, 4),
            Op::Cancel(1),
            Op::Commit(1, 2, 3, 0, None),
            Op::Fulfil(1),
        ])
        .collect();
    let (_dir, log) = temp_log();
    populate(&log, &ops);
    let fold = fold(&log, log.head());
    assert_eq!(fold.parties.len(), 4);
    assert_eq!(fold.officials.len(), 3);
    assert_eq!(fold.meetings.len(), 2);
    assert_eq!(fold.commitments.len(), 2);
    let meeting = &fold.meetings[&meeting_id(0).uuid()];
    assert_eq!(
        meeting.stream_version, 4,
        "held, statement, correction, retraction"
    );
    assert!(meeting.statements.is_empty());
    let commitment = &fold.commitments[&commitment_id(0).uuid()];
    assert_eq!(commitment.stream_version, 4);
    let projections = Projections::open_paused(log.clone()).expect("open");
    projections.catch_up().expect("catch up");
    assert_equals_fold(&projections, &log, log.head());
    // AAA/BBB (meeting 0 and commitment 0 after their corrections), CCC/DDD (commitment 1),
    // and the pair of the cancelled meeting, which counts as cancelled.
    let relations = fold.relations();
    assert_eq!(relations.len(), 3);
    assert_eq!(
        relations
            .values()
            .map(|summary| summary.meetings_cancelled)
            .sum::<i64>(),
        1
    );
}
