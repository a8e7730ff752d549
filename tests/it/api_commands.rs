//! CommandService over a real server on 127.0.0.1:0 with the generated client: the sample news
//! report recorded through the API, idempotent retries, and every status code a command can
//! produce (INVALID_ARGUMENT with field violations, FAILED_PRECONDITION, NOT_FOUND,
//! ALREADY_EXISTS, ABORTED, RESOURCE_EXHAUSTED), plus atomic batches.

use crate::support::api::*;
use crate::support::commands::*;
use dipledger::api::pb;
use prost_types::Timestamp;
use tonic::Code;
use tonic_types::StatusExt;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_meeting_is_recorded_and_read_back_typed_and_a_retry_returns_the_original() {
    let harness = Harness::start().await;
    let (mut client, source) = seeded(&harness).await;
    let request = meeting_held(source, ["LBY", "FRA"]);
    let command_id = request.header.as_ref().unwrap().command_id.clone();
    let response = client
        .record_meeting_held(request.clone())
        .await
        .unwrap()
        .into_inner();
    // No meeting id given: the command id names the meeting.
    assert_eq!(response.meeting_id, command_id);
    let result = response.result.clone().unwrap();
    assert_eq!(result.stream_id, format!("meeting-{command_id}"));
    assert_eq!(result.stream_version, 1);
    assert_eq!(result.positions, [4]);
    assert_eq!(result.event_ids.len(), 1);
    assert!(result.recorded_at.is_some());
    // The same request again: the original result, nothing new recorded.
    let retry = client
        .record_meeting_held(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retry, response);
    assert_eq!(harness.log.head(), 4);
    // The same id with a different request: ALREADY_EXISTS.
    let mut different = request;
    different.details.as_mut().unwrap().topics = vec!["migration".into()];
    let status = client.record_meeting_held(different).await.unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");

    let mut store = harness.event_store().await;
    let stream = store
        .read_stream(pb::ReadStreamRequest {
            stream_id: result.stream_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let envelope = &stream.events[0];
    assert_eq!(envelope.event_id, result.event_ids[0]);
    assert_eq!(
        envelope.recorded_by,
        dipledger::api::commands::DEVELOPMENT_PRINCIPAL
    );
    assert!(envelope.tags.contains(&"party:LBY".to_string()));
    let Some(pb::event::Event::MeetingHeld(held)) = envelope.event.clone().and_then(|e| e.event) else {
        panic!("typed MeetingHeld expected");
    };
    assert_eq!(held.details.unwrap().location.unwrap().place, "Benghazi");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_command_status_code_comes_from_the_request_that_should_produce_it() {
    let harness = Harness::start().await;
    let (mut client, source) = seeded(&harness).await;

    // INVALID_ARGUMENT from the conversion: every malformed field at once, by proto path.
    let mut request = register_party("GBR", source);
    let header = request.header.as_mut().unwrap();
    header.occurred_at = None;
    header.sources[0].source_id = "not-a-uuid".into();
    request.details.as_mut().unwrap().kind = 0;
    let status = client.register_party(request).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(
        fields(&status),
        [
            "header.occurred_at",
            "header.sources[0].source_id",
            "details.kind"
        ]
    );
    // INVALID_ARGUMENT from the domain, with provenance paths mapped to the request's.
    let mut request = register_party("gbr", source);
    request.details.as_mut().unwrap().name = " ".into();
    request.header.as_mut().unwrap().sources[0].quote = Some("x".repeat(1_001));
    let status = client.register_party(request).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(
        fields(&status),
        ["code", "header.sources[0].quote", "details.name"]
    );
    // INVALID_ARGUMENT: a source command given a valid time and citations (it takes neither),
    // and a request without a header (its command id is named).
    let status = client
        .register_source(pb::RegisterSourceRequest {
            header: Some(pb::CommandHeader {
                occurred_at: day(),
                sources: cite(source),
                ..pb::CommandHeader::fresh()
            }),
            details: Some(pb::SourceDetails {
                url: Some("https://example.org/news/2".into()),
                retrieved_at: Some(Timestamp {
                    seconds: WEDNESDAY,
                    nanos: 0,
                }),
                language: "en".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(fields(&status), ["header.occurred_at", "header.sources"]);
    let mut request = register_party("GBR", source);
    request.header = None;
    let status = client.register_party(request).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(fields(&status), ["header.command_id", "header.occurred_at"]);

    // INVALID_ARGUMENT before any lookup: nine unregistered sources are over the citation
    // limit (MAX_SOURCES_PER_COMMAND), not a missing source.
    let mut request = register_party("GBR", source);
    request.header.as_mut().unwrap().sources = (0..9)
        .map(|_| pb::SourceCitation::of(Uuid::now_v7().to_string()))
        .collect();
    let status = client.register_party(request).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(fields(&status), ["header.sources"]);

    // ALREADY_EXISTS: registering a party twice.
    let status = client
        .register_party(register_party("LBY", source))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");

    // NOT_FOUND: a referenced party that does not exist; a target that does not exist.
    let status = client
        .record_meeting_held(meeting_held(source, ["LBY", "ITA"]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let status = client
        .cancel_meeting(pb::CancelMeetingRequest {
            header: Some(pb::CommandHeader {
                command_id: Uuid::now_v7().to_string(),
                occurred_at: day(),
                sources: cite(source),
                ..Default::default()
            }),
            meeting_id: Uuid::now_v7().to_string(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    // FAILED_PRECONDITION: cancelling a meeting that was held; the rule code in ErrorInfo.
    let held = client
        .record_meeting_held(meeting_held(source, ["LBY", "FRA"]))
        .await
        .unwrap()
        .into_inner();
    let cancel = pb::CancelMeetingRequest {
        header: Some(pb::CommandHeader {
            command_id: Uuid::now_v7().to_string(),
            occurred_at: day(),
            sources: cite(source),
            ..Default::default()
        }),
        meeting_id: held.meeting_id.clone(),
        ..Default::default()
    };
    let status = client.cancel_meeting(cancel).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(
        status.get_details_error_info().unwrap().reason,
        "meeting.already_held"
    );

    // ABORTED: a stale expected version, with the current version in the details.
    let statement = pb::RecordStatementRequest {
        header: Some(pb::CommandHeader {
            command_id: Uuid::now_v7().to_string(),
            expected_version: Some(7),
            occurred_at: day(),
            sources: cite(source),
            ..Default::default()
        }),
        meeting_id: held.meeting_id.clone(),
        speaker: Some(pb::Speaker {
            party: "LBY".into(),
            official_id: None,
        }),
        text: "We discussed security.".into(),
        ..Default::default()
    };
    let status = client.record_statement(statement.clone()).await.unwrap_err();
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    let info = status.get_details_error_info().unwrap();
    assert_eq!(
        info.metadata.get("current_version").map(String::as_str),
        Some("1")
    );
    let mut statement = statement;
    let header = statement.header.as_mut().unwrap();
    header.expected_version = Some(1);
    header.command_id = Uuid::now_v7().to_string();
    let recorded = client.record_statement(statement).await.unwrap().into_inner();
    assert_eq!(recorded.result.unwrap().stream_version, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_atomic_and_name_the_failing_command() {
    let harness = Harness::start().await;
    let (mut client, source) = seeded(&harness).await;
    let head = harness.log.head();
    let batch = |commands: Vec<pb::batch_command::Command>| pb::SubmitBatchRequest {
        commands: commands
            .into_iter()
            .map(|command| pb::BatchCommand {
                command: Some(command),
            })
            .collect(),
    };
    use pb::batch_command::Command as C;

    // A malformed second command: INVALID_ARGUMENT naming commands[1].
    let status = client
        .submit_batch(batch(vec![
            C::RegisterParty(register_party("GBR", source)),
            C::RegisterParty(register_party("itA", source)),
        ]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(fields(&status), ["commands[1].code"]);
    // A rule failure in the second command: nothing of the first is recorded.
    let status = client
        .submit_batch(batch(vec![
            C::RegisterParty(register_party("GBR", source)),
            C::RegisterParty(register_party("LBY", source)),
        ]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
    assert_eq!(harness.log.head(), head);
    // Both valid: both recorded, in order, in one commit.
    let results = client
        .submit_batch(batch(vec![
            C::RegisterParty(register_party("GBR", source)),
            C::RecordMeetingHeld(meeting_held(source, ["GBR", "FRA"])),
        ]))
        .await
        .unwrap()
        .into_inner()
        .results;
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].entity_id, "GBR");
    let (first, second) = (
        results[0].result.clone().unwrap(),
        results[1].result.clone().unwrap(),
    );
    assert_eq!(first.positions, [head + 1]);
    assert_eq!(second.positions, [head + 2]);
    assert_eq!(first.recorded_at, second.recorded_at);

    // RESOURCE_EXHAUSTED: a batch whose events exceed the log's 4 MiB transaction limit
    // (1000 commitments of about 5 KiB each; the request itself is under MAX_REQUEST_BYTES).
    let commitments: Vec<_> = (0..1_000)
        .map(|_| {
            C::RecordCommitment(pb::RecordCommitmentRequest {
                header: Some(pb::CommandHeader {
                    command_id: Uuid::now_v7().to_string(),
                    occurred_at: day(),
                    sources: vec![pb::SourceCitation {
                        source_id: source.to_string(),
                        quote: Some("q".repeat(1_000)),
                    }],
                    ..Default::default()
                }),
                details: Some(pb::CommitmentDetails {
                    kind: pb::CommitmentKind::New as i32,
                    committing_parties: vec!["LBY".into()],
                    counterparties: vec!["FRA".into()],
                    text: "x".repeat(4_000),
                    specificity: pb::Specificity::Aspirational as i32,
                    ..Default::default()
                }),
                ..Default::default()
            })
        })
        .collect();
    let Err(status) = within("large batch", client.submit_batch(batch(commitments))).await else {
        panic!("a batch over the transaction payload limit was accepted");
    };
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
}

/// Makes the server's `ledger` lose the race of each of its next `races` attempts at a single
/// command: between its decision and its append, `rival` (a second ledger on the same log, as
/// a second process would be) records a statement on the same meeting. Counts them in `lost`.
fn lose_races(
    ledger: dipledger::ledger::Ledger,
    rival: dipledger::ledger::Ledger,
    races: usize,
    lost: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let again = ledger.clone();
    ledger.before_next_append(move || async move {
        let race = lost.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        rival
            .handle(dipledger::ledger::CommandEnvelope::new(
                Uuid::now_v7(),
                statement(&format!("the rival's statement {race}")),
                "rival@test",
            ))
            .await
            .expect("the rival's statement is recorded");
        if race < races {
            lose_races(again, rival, races, lost);
        }
    });
}

/// A statement by Libya at the report's held meeting.
fn statement(text: &str) -> dipledger::domain::DomainCommand {
    use dipledger::domain::common::{Provenance, SourceCitation};
    use dipledger::domain::meeting::{Command, Speaker};
    dipledger::domain::DomainCommand::Meeting(Command::RecordStatement {
        meeting_id: dipledger::sample::meeting_id(),
        speaker: Speaker {
            party: "LBY".into(),
            official_id: Some(dipledger::sample::official_a()),
        },
        text: text.into(),
        verbatim: false,
        provenance: Provenance {
            occurred_at: dipledger::sample::day(0),
            sources: vec![SourceCitation {
                source_id: dipledger::sample::source_id(),
                quote: None,
            }],
        },
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_loses_every_race_is_aborted_and_records_nothing() {
    use dipledger::ledger::{Ledger, MAX_CONFLICT_RETRIES};
    let harness = Harness::start().await;
    let rival = Ledger::new(harness.log.clone());
    for command in dipledger::sample::news_report_commands() {
        rival
            .handle(dipledger::ledger::CommandEnvelope::new(
                Uuid::now_v7(),
                command,
                "rival@test",
            ))
            .await
            .expect("the report is recorded");
    }
    let pb::batch_command::Command::RecordStatement(request) =
        dipledger::api::convert::command_to_pb(&statement("the loser's statement"), Uuid::now_v7())
            .command
            .expect("a command")
    else {
        panic!("a statement converts to RecordStatement");
    };
    // The first attempt and every retry lose their race.
    let races = MAX_CONFLICT_RETRIES + 1;
    let lost = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    lose_races(harness.server.ledger().clone(), rival, races, lost.clone());
    let head = harness.log.head();
    let mut client = pb::command_service_client::CommandServiceClient::new(harness.channel().await);
    let status = within("the contended command", client.record_statement(request))
        .await
        .expect_err("every race was lost");
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    let stream_id = dipledger::sample::meeting_id().stream_id();
    assert_eq!(
        status.message(),
        format!("{stream_id} kept changing under concurrent writers ({races} attempts); retry")
    );
    assert_eq!(lost.load(std::sync::atomic::Ordering::SeqCst), races);
    assert_eq!(
        harness.server.ledger().conflicts_retried(),
        MAX_CONFLICT_RETRIES as u64
    );
    // Only the rival's statements were recorded: the aborted command wrote nothing.
    assert_eq!(harness.log.head(), head + races as u64);
}
