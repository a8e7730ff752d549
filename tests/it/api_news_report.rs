//! The sample news report end to end over gRPC: a subscriber starts first, the report is recorded
//! through CommandService, read back through QueryService (read your writes) and
//! EventStoreService, and every event is seen live by the subscriber, in order.

use crate::support::api::*;
use dipledger::api::pb;
use dipledger::api::pb::command_service_client::CommandServiceClient;
use dipledger::api::pb::query_service_client::QueryServiceClient;
use prost_types::Timestamp;
use uuid::Uuid;

const WEDNESDAY: i64 = 1_736_899_200; // 2025-01-15, assumed: the report says only "on Wednesday"

fn on_wednesday() -> Option<pb::OccurredAt> {
    Some(pb::OccurredAt {
        at: Some(Timestamp {
            seconds: WEDNESDAY,
            nanos: 0,
        }),
        precision: pb::Precision::Day as i32,
    })
}

fn citing(source: &str, quote: &str) -> Vec<pb::SourceCitation> {
    vec![pb::SourceCitation {
        source_id: source.into(),
        quote: Some(quote.into()),
    }]
}

fn party(code: &str, name: &str, alpha2: &str, source: &str) -> pb::RegisterPartyRequest {
    pb::RegisterPartyRequest {
        header: Some(pb::CommandHeader {
            command_id: Uuid::now_v7().to_string(),
            occurred_at: on_wednesday(),
            sources: citing(source, "Libya and France"),
            ..Default::default()
        }),
        code: code.into(),
        details: Some(pb::PartyDetails {
            kind: pb::PartyKind::State as i32,
            name: name.into(),
            iso_alpha2: Some(alpha2.into()),
            iso_alpha3: Some(code.into()),
            ..Default::default()
        }),
    }
}

fn official(
    id: &str,
    name: &str,
    post: &str,
    of: &str,
    accredited_to: Option<&str>,
    source: &str,
) -> pb::RegisterOfficialRequest {
    pb::RegisterOfficialRequest {
        header: Some(pb::CommandHeader {
            command_id: Uuid::now_v7().to_string(),
            occurred_at: on_wednesday(),
            sources: citing(source, name),
            ..Default::default()
        }),
        official_id: id.into(),
        name: name.into(),
        offices: vec![pb::OfficeTerm {
            post: post.into(),
            party: of.into(),
            accredited_to: accredited_to.map(Into::into),
            ..Default::default()
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_news_report_over_grpc_is_queryable_replayable_and_seen_live() {
    let harness = Harness::start().await;
    let mut store = harness.event_store().await;
    let mut live = store
        .subscribe(pb::SubscribeRequest {
            start: Some(pb::subscribe_request::Start::FromStart(pb::SubscribeFromStart {})),
            filter: None,
            omit_typed_body: false,
        })
        .await
        .unwrap()
        .into_inner();
    match within("caught up", next_message(&mut live)).await {
        pb::subscribe_response::Message::CaughtUp(caught_up) => assert_eq!(caught_up.position, 0),
        other => panic!("expected CaughtUp first, got {other:?}"),
    }

    let mut commands = CommandServiceClient::new(harness.channel().await);
    let source = commands
        .register_source(pb::RegisterSourceRequest {
            header: Some(pb::CommandHeader {
                command_id: Uuid::now_v7().to_string(),
                ..Default::default()
            }),
            details: Some(pb::SourceDetails {
                url: Some("file:data/news-libya-france-benghazi.txt".into()),
                retrieved_at: Some(Timestamp {
                    seconds: WEDNESDAY + 2 * 86_400,
                    nanos: 0,
                }),
                language: "en".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .source_id;
    commands
        .register_party(party("LBY", "Libya", "LY", &source))
        .await
        .unwrap();
    commands
        .register_party(party("FRA", "France", "FR", &source))
        .await
        .unwrap();
    let (bushnaf, mihraje) = (Uuid::now_v7().to_string(), Uuid::now_v7().to_string());
    commands
        .register_official(official(
            &bushnaf,
            "Ibrahim Bushnaf",
            "National Security Adviser",
            "LBY",
            None,
            &source,
        ))
        .await
        .unwrap();
    commands
        .register_official(official(
            &mihraje,
            "Mostafa Mihraje",
            "Ambassador of France to Libya",
            "FRA",
            Some("LBY"),
            &source,
        ))
        .await
        .unwrap();
    let held = commands
        .record_meeting_held(pb::RecordMeetingHeldRequest {
            header: Some(pb::CommandHeader {
                command_id: Uuid::now_v7().to_string(),
                occurred_at: on_wednesday(),
                sources: citing(
                    &source,
                    "met with the French Ambassador to Libya, Mostafa Mihraje, in Benghazi",
                ),
                ..Default::default()
            }),
            details: Some(pb::MeetingDetails {
                format: pb::MeetingFormat::Bilateral as i32,
                participants: vec![
                    pb::Participant {
                        party: "LBY".into(),
                        official_id: Some(bushnaf.clone()),
                        ..Default::default()
                    },
                    pb::Participant {
                        party: "FRA".into(),
                        official_id: Some(mihraje.clone()),
                        ..Default::default()
                    },
                ],
                location: Some(pb::Location {
                    place: "Benghazi".into(),
                    country: Some("LBY".into()),
                }),
                topics: vec!["security".into(), "regional-stability".into()],
                summary: Some("Talks on strengthening Libya-France ties.".into()),
                negotiation: false,
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    commands
        .record_statement(pb::RecordStatementRequest {
            header: Some(pb::CommandHeader {
                command_id: Uuid::now_v7().to_string(),
                occurred_at: on_wednesday(),
                sources: citing(
                    &source,
                    "Bushnaf emphasized the importance of enhanced bilateral collaboration",
                ),
                ..Default::default()
            }),
            meeting_id: held.meeting_id.clone(),
            speaker: Some(pb::Speaker {
                party: "LBY".into(),
                official_id: Some(bushnaf.clone()),
            }),
            text: "Emphasized the importance of enhanced bilateral collaboration.".into(),
            verbatim: false,
        })
        .await
        .unwrap();
    let commitment = commands
        .record_commitment(pb::RecordCommitmentRequest {
            header: Some(pb::CommandHeader {
                command_id: Uuid::now_v7().to_string(),
                occurred_at: on_wednesday(),
                sources: citing(
                    &source,
                    "The two nations reaffirmed their commitment to work closely",
                ),
                ..Default::default()
            }),
            details: Some(pb::CommitmentDetails {
                kind: pb::CommitmentKind::Reaffirmation as i32,
                committing_parties: vec!["LBY".into(), "FRA".into()],
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
                specificity: pb::Specificity::Aspirational as i32,
                made_at_meeting: Some(held.meeting_id.clone()),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let last = *commitment.result.as_ref().unwrap().positions.last().unwrap();
    assert_eq!(
        last, 10,
        "source, 2 parties, 2 officials (registered + appointed), meeting, statement, commitment"
    );

    // Seen live, in order, with no gap.
    for expected in 1..=last {
        match within("a live event", next_message(&mut live)).await {
            pb::subscribe_response::Message::Event(event) => {
                assert_eq!(event.position, expected);
                assert!(event.event.is_some(), "typed payload");
            }
            other => panic!("expected event {expected}, got {other:?}"),
        }
    }

    // Read back through the read models, reading our own writes.
    let mut queries = QueryServiceClient::new(harness.channel().await);
    let options = Some(pb::ReadOptions {
        min_position: last,
        as_of: None,
    });
    let relation = queries
        .get_bilateral_relation(pb::GetBilateralRelationRequest {
            party_a: "FRA".into(),
            party_b: "LBY".into(),
            page: None,
            options,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((relation.meetings, relation.commitments), (1, 1));
    assert!(relation.based_on_position >= last);
    let meeting = queries
        .get_meeting(pb::GetMeetingRequest {
            meeting_id: held.meeting_id.clone(),
            options,
        })
        .await
        .unwrap()
        .into_inner()
        .meeting
        .unwrap();
    assert_eq!(meeting.statements.len(), 1);
    assert_eq!(meeting.details.unwrap().location.unwrap().place, "Benghazi");

    // And replayed raw through the event store.
    let page = store
        .read_all(pb::ReadAllRequest {
            from_position: Some(1),
            direction: pb::Direction::Forwards as i32,
            limit: 100,
            filter: None,
            omit_typed_body: false,
            include_leaf_input: false,
        })
        .await
        .unwrap()
        .into_inner();
    let types: Vec<&str> = page.events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        vec![
            "SourceRegistered",
            "PartyRegistered",
            "PartyRegistered",
            "OfficialRegistered",
            "OfficialAppointed",
            "OfficialRegistered",
            "OfficialAppointed",
            "MeetingHeld",
            "StatementRecorded",
            "CommitmentRecorded"
        ]
    );
    assert!(page
        .events
        .iter()
        .all(|e| e.recorded_by == page.events[0].recorded_by && !e.recorded_by.is_empty()));
}
