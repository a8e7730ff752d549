//! QueryService over a real server on 127.0.0.1:0: the news report (recorded in process through
//! the ledger on the server's own log) read back through the read models with read-your-writes,
//! as-of answers around a correction, the audit trail, and the status codes queries produce.

use crate::support::api::*;
use dipledger::api::pb;
use dipledger::api::pb::query_service_client::QueryServiceClient;
use dipledger::domain::meeting::{self, Location};
use dipledger::domain::DomainCommand;
use dipledger::ledger::{CommandEnvelope, Ledger};
use dipledger::sample::{self, cite, held_details, meeting_id, news_report_commands};
use tonic::transport::Channel;
use tonic::Code;
use uuid::Uuid;

async fn record(ledger: &Ledger, command: DomainCommand) -> u64 {
    let outcome = ledger
        .handle(CommandEnvelope::new(Uuid::now_v7(), command, "analyst@mfa"))
        .await
        .unwrap();
    outcome.last_position().unwrap()
}

async fn news_report(harness: &Harness) -> (QueryServiceClient<Channel>, Ledger, u64) {
    let ledger = Ledger::new(harness.log.clone());
    let mut last = 0;
    for command in news_report_commands() {
        last = record(&ledger, command).await;
    }
    (QueryServiceClient::new(harness.channel().await), ledger, last)
}

fn at_least(position: u64) -> Option<pb::ReadOptions> {
    Some(pb::ReadOptions {
        min_position: position,
        as_of: None,
    })
}

fn as_of(position: u64) -> Option<pb::ReadOptions> {
    Some(pb::ReadOptions {
        min_position: 0,
        as_of: Some(pb::read_options::AsOf::AsOfPosition(position)),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_libya_france_relation_shows_the_benghazi_meeting_and_the_commitment() {
    let harness = Harness::start().await;
    let (mut queries, _ledger, last) = news_report(&harness).await;
    let relation = within(
        "relation",
        queries.get_bilateral_relation(pb::GetBilateralRelationRequest {
            party_a: "LBY".into(),
            party_b: "FRA".into(),
            page: None,
            options: at_least(last),
        }),
    )
    .await
    .unwrap()
    .into_inner();
    assert!(relation.based_on_position >= last, "read your writes");
    assert_eq!(relation.meetings, 1);
    assert_eq!(relation.commitments, 1);
    assert_eq!(relation.commitments_open, 1);
    for topic in [
        "security",
        "regional-stability",
        "terrorism",
        "migration",
        "cross-border-crime",
    ] {
        assert!(
            relation.topics.contains_key(topic),
            "topic {topic} in {:?}",
            relation.topics
        );
    }
    let meeting = relation
        .timeline
        .iter()
        .find_map(|item| match &item.item {
            Some(pb::timeline_item_view::Item::Meeting(meeting)) => Some(meeting.clone()),
            _ => None,
        })
        .expect("the meeting is on the timeline");
    assert_eq!(meeting.meeting_id, meeting_id().to_string());
    assert_eq!(meeting.details.unwrap().location.unwrap().place, "Benghazi");
    assert_eq!(meeting.status, pb::MeetingStatus::Held as i32);
    assert!(relation
        .timeline
        .iter()
        .any(|item| matches!(item.item, Some(pb::timeline_item_view::Item::Commitment(_)))));

    let who = queries
        .list_post_holders(pb::ListPostHoldersRequest {
            post: "Ambassador of France to Libya".into(),
            on: Some(prost_types::Timestamp {
                seconds: sample::WEDNESDAY_MICROS / 1_000_000,
                nanos: 0,
            }),
            page: None,
            options: at_least(last),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        who.holders.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(),
        vec!["Mostafa Mihraje"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_meeting_history_shows_who_recorded_what_from_which_source() {
    let harness = Harness::start().await;
    let (mut queries, _ledger, last) = news_report(&harness).await;
    let history = queries
        .get_entity_history(pb::GetEntityHistoryRequest {
            stream_id: meeting_id().stream_id(),
            page: None,
            options: at_least(last),
        })
        .await
        .unwrap()
        .into_inner();
    let types: Vec<&str> = history.entries.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, vec!["MeetingHeld", "StatementRecorded"]);
    for entry in &history.entries {
        assert_eq!(entry.recorded_by, "analyst@mfa");
        assert!(entry.recorded_at.is_some());
        let source = &entry.sources[0];
        assert_eq!(
            source.citation.as_ref().unwrap().source_id,
            sample::source_id().to_string()
        );
        assert_eq!(
            source.url.as_deref(),
            Some("file:data/news-libya-france-benghazi.txt")
        );
        assert!(entry.event.is_some(), "typed event");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_of_a_position_before_a_correction_gives_the_old_answer() {
    let harness = Harness::start().await;
    let (mut queries, ledger, before) = news_report(&harness).await;
    let mut corrected = held_details();
    corrected.location = Some(Location {
        place: "Tripoli".into(),
        country: Some("LBY".into()),
    });
    let correction = DomainCommand::Meeting(meeting::Command::CorrectMeeting {
        meeting_id: meeting_id(),
        corrects_version: 1,
        reason: "the report was about Benghazi, a wire copy said Tripoli".into(),
        details: corrected,
        provenance: cite(sample::TEXT_TALKS),
    });
    let after = record(&ledger, correction).await;
    let place =
        |response: pb::GetMeetingResponse| response.meeting.unwrap().details.unwrap().location.unwrap().place;
    let now = queries
        .get_meeting(pb::GetMeetingRequest {
            meeting_id: meeting_id().to_string(),
            options: at_least(after),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(place(now), "Tripoli");
    let then = queries
        .get_meeting(pb::GetMeetingRequest {
            meeting_id: meeting_id().to_string(),
            options: as_of(before),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(then.based_on_position, before);
    assert_eq!(place(then), "Benghazi");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_fail_with_the_status_their_request_deserves() {
    let harness = Harness::start().await;
    let (mut queries, _ledger, last) = news_report(&harness).await;
    let missing = queries
        .get_meeting(pb::GetMeetingRequest {
            meeting_id: Uuid::now_v7().to_string(),
            options: at_least(last),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
    // Not found says as of when: an entity may exist later (or be applied later, during a start).
    assert!(
        missing
            .message()
            .ends_with(&format!(" not found (as of position {last})")),
        "{missing:?}"
    );
    let malformed = queries
        .get_meeting(pb::GetMeetingRequest {
            meeting_id: "not-a-uuid".into(),
            options: None,
        })
        .await
        .unwrap_err();
    assert_eq!(malformed.code(), Code::InvalidArgument, "{malformed:?}");
    let same_party = queries
        .get_bilateral_relation(pb::GetBilateralRelationRequest {
            party_a: "LBY".into(),
            party_b: "LBY".into(),
            page: None,
            options: None,
        })
        .await
        .unwrap_err();
    assert_eq!(same_party.code(), Code::InvalidArgument, "{same_party:?}");
    // A min_position past the head, which no answer gave: OUT_OF_RANGE naming it, at once (a
    // read model behind a position at or below the head is UNAVAILABLE by the deadline:
    // projections_consistency, and the status's own test).
    let mut request = tonic::Request::new(pb::GetPartyRequest {
        code: "LBY".into(),
        options: at_least(last + 1_000),
    });
    request.set_timeout(std::time::Duration::from_secs(30));
    let beyond = within("a refusal", queries.get_party(request)).await.unwrap_err();
    assert_eq!(beyond.code(), Code::OutOfRange, "{beyond:?}");
    let named = format!("min_position {} is past the head", last + 1_000);
    assert!(beyond.message().contains(&named), "{beyond:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_entity_is_named_by_its_bare_id_or_its_stream_id_and_nothing_else() {
    let harness = Harness::start().await;
    let (mut queries, _ledger, last) = news_report(&harness).await;
    let meeting = meeting_id();
    for id in [meeting.to_string(), meeting.stream_id()] {
        let answer = queries
            .get_meeting(pb::GetMeetingRequest {
                meeting_id: id.clone(),
                options: at_least(last),
            })
            .await
            .unwrap_or_else(|status| panic!("{id}: {status:?}"))
            .into_inner();
        assert_eq!(answer.meeting.unwrap().meeting_id, meeting.to_string(), "{id}");
    }
    for code in ["LBY", "party-LBY"] {
        let answer = queries
            .get_party(pb::GetPartyRequest {
                code: code.into(),
                options: at_least(last),
            })
            .await
            .unwrap_or_else(|status| panic!("{code}: {status:?}"))
            .into_inner();
        assert_eq!(answer.party.unwrap().code, "LBY", "{code}");
    }
    // History by stream id, by bare party code and by bare UUID: the same trail.
    let mut trails = Vec::new();
    for id in [
        meeting.stream_id(),
        meeting.to_string(),
        "party-LBY".into(),
        "LBY".into(),
    ] {
        let entries = queries
            .get_entity_history(pb::GetEntityHistoryRequest {
                stream_id: id.clone(),
                page: None,
                options: at_least(last),
            })
            .await
            .unwrap_or_else(|status| panic!("{id}: {status:?}"))
            .into_inner()
            .entries;
        assert!(!entries.is_empty(), "{id}");
        trails.push(entries);
    }
    assert_eq!(trails[0], trails[1], "meeting by stream id and by UUID");
    assert_eq!(trails[2], trails[3], "party by stream id and by code");
    // A UUID no entity has, and an id of the wrong kind, are refused.
    let status = queries
        .get_entity_history(pb::GetEntityHistoryRequest {
            stream_id: Uuid::now_v7().to_string(),
            page: None,
            options: at_least(last),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    // A bare UUID is looked up in the log itself, at its head: no read model's position to name.
    assert!(status.message().ends_with(" not found"), "{status:?}");
    let status = queries
        .get_meeting(pb::GetMeetingRequest {
            meeting_id: format!("commitment-{}", meeting),
            options: at_least(last),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    // A lower-case party code names no party: INVALID_ARGUMENT naming the field, not an
    // empty answer.
    let status = queries
        .get_compliance(pb::GetComplianceRequest {
            party: "lby".into(),
            options: at_least(last),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("party"), "{status:?}");
}

/// Asserts NOT_FOUND naming `code` as of `position`.
fn assert_party_not_found(status: &tonic::Status, code: &str, position: u64, query: &str) {
    use tonic_types::StatusExt;
    assert_eq!(status.code(), Code::NotFound, "{query}: {status:?}");
    assert_eq!(
        status.message(),
        format!("party {code} is not registered (as of position {position})"),
        "{query}"
    );
    let resource = status.get_details_resource_info().expect("ResourceInfo");
    assert_eq!(
        (resource.resource_type.as_str(), resource.resource_name.as_str()),
        ("party", code)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_well_formed_party_code_no_one_registered_is_not_found_in_every_query_about_a_party() {
    let harness = Harness::start().await;
    let (mut queries, _ledger, last) = news_report(&harness).await;
    // FRNC is a well-formed code (2 to 16 of A-Z, 0-9, '-'), but no such party is registered.
    let relation = |party_a: &str, party_b: &str| pb::GetBilateralRelationRequest {
        party_a: party_a.into(),
        party_b: party_b.into(),
        page: None,
        options: at_least(last),
    };
    let status = queries
        .get_bilateral_relation(relation("LBY", "FRNC"))
        .await
        .unwrap_err();
    assert_party_not_found(&status, "FRNC", last, "GetBilateralRelation(LBY, FRNC)");
    let status = queries
        .get_bilateral_relation(relation("FRNC", "LBY"))
        .await
        .unwrap_err();
    assert_party_not_found(&status, "FRNC", last, "GetBilateralRelation(FRNC, LBY)");
    let status = queries
        .get_compliance(pb::GetComplianceRequest {
            party: "party-FRNC".into(),
            options: at_least(last),
        })
        .await
        .unwrap_err();
    assert_party_not_found(&status, "FRNC", last, "GetCompliance");
    let status = queries
        .list_officials(pb::ListOfficialsRequest {
            party: "FRNC".into(),
            page: None,
            options: at_least(last),
        })
        .await
        .unwrap_err();
    assert_party_not_found(&status, "FRNC", last, "ListOfficials");
    let status = queries
        .list_meetings(pb::ListMeetingsRequest {
            party: Some("FRNC".into()),
            options: at_least(last),
            ..pb::ListMeetingsRequest::default()
        })
        .await
        .unwrap_err();
    assert_party_not_found(&status, "FRNC", last, "ListMeetings(party)");
    let status = queries
        .list_commitments(pb::ListCommitmentsRequest {
            party: Some("FRNC".into()),
            options: at_least(last),
            ..pb::ListCommitmentsRequest::default()
        })
        .await
        .unwrap_err();
    assert_party_not_found(&status, "FRNC", last, "ListCommitments(party)");

    // The registered parties answer, filters included.
    let answer = queries
        .get_bilateral_relation(relation("LBY", "FRA"))
        .await
        .expect("a relation of two registered parties")
        .into_inner();
    assert_eq!(answer.meetings, 1);
    for party in ["LBY", "FRA"] {
        let meetings = queries
            .list_meetings(pb::ListMeetingsRequest {
                party: Some(party.into()),
                options: at_least(last),
                ..pb::ListMeetingsRequest::default()
            })
            .await
            .unwrap_or_else(|status| panic!("{party}: {status:?}"))
            .into_inner()
            .meetings;
        assert_eq!(meetings.len(), 1, "{party}");
    }

    // As of a position before France was registered (position 3: source, LBY, FRA), France
    // is not found, and the answer says as of when.
    let status = queries
        .get_bilateral_relation(pb::GetBilateralRelationRequest {
            options: as_of(2),
            ..relation("LBY", "FRA")
        })
        .await
        .unwrap_err();
    assert_party_not_found(&status, "FRA", 2, "GetBilateralRelation as of 2");
    let compliance = queries
        .get_compliance(pb::GetComplianceRequest {
            party: "FRA".into(),
            options: as_of(3),
        })
        .await
        .expect("France is registered at position 3")
        .into_inner();
    assert_eq!(compliance.based_on_position, 3);

    // A malformed party filter is INVALID_ARGUMENT naming the field, before any lookup.
    let status = queries
        .list_meetings(pb::ListMeetingsRequest {
            party: Some("fra".into()),
            options: at_least(last),
            ..pb::ListMeetingsRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().starts_with("invalid request: party: "),
        "{status:?}"
    );
}

/// A list's rows count the statements and progress reports they leave out (so a page's size
/// does not grow with them: 500 of 4,000 characters each are allowed per meeting and per
/// commitment); the single answer lists them, as many as the list counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_count_statements_and_progress_reports_and_single_answers_list_them() {
    use dipledger::domain::commitment;
    let harness = Harness::start().await;
    let (mut queries, ledger, _) = news_report(&harness).await;
    let mut last = 0;
    for n in 0..3 {
        last = record(
            &ledger,
            DomainCommand::Commitment(commitment::Command::ReportCommitmentProgress {
                commitment_id: sample::commitment_id(),
                summary: format!("Progress {n}: the working group met."),
                provenance: cite("progress"),
            }),
        )
        .await;
    }
    let page = queries
        .list_meetings(pb::ListMeetingsRequest {
            party: Some("LBY".into()),
            options: at_least(last),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let listed = page
        .meetings
        .iter()
        .find(|m| m.meeting_id == meeting_id().to_string())
        .unwrap();
    assert!(listed.statements.is_empty(), "a list leaves the statements out");
    assert_eq!(listed.statement_count, 1);
    let single = queries
        .get_meeting(pb::GetMeetingRequest {
            meeting_id: meeting_id().to_string(),
            options: at_least(last),
        })
        .await
        .unwrap()
        .into_inner()
        .meeting
        .unwrap();
    assert_eq!(single.statements.len(), 1);
    assert_eq!(single.statement_count, 1);

    let page = queries
        .list_commitments(pb::ListCommitmentsRequest {
            party: Some("FRA".into()),
            options: at_least(last),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let listed = &page.commitments[0];
    assert!(
        listed.progress_reports.is_empty(),
        "a list leaves the reports out"
    );
    assert_eq!(listed.progress_report_count, 3);
    let single = queries
        .get_commitment(pb::GetCommitmentRequest {
            commitment_id: sample::commitment_id().to_string(),
            options: at_least(last),
        })
        .await
        .unwrap()
        .into_inner()
        .commitment
        .unwrap();
    assert_eq!(single.progress_reports.len(), 3);
    assert_eq!(single.progress_report_count, 3);

    let relation = queries
        .get_bilateral_relation(pb::GetBilateralRelationRequest {
            party_a: "LBY".into(),
            party_b: "FRA".into(),
            page: None,
            options: at_least(last),
        })
        .await
        .unwrap()
        .into_inner();
    for item in &relation.timeline {
        match &item.item {
            Some(pb::timeline_item_view::Item::Meeting(m)) => {
                assert!(m.statements.is_empty());
                assert_eq!(m.statement_count, 1);
            }
            Some(pb::timeline_item_view::Item::Commitment(c)) => {
                assert!(c.progress_reports.is_empty());
                assert_eq!(c.progress_report_count, 3);
            }
            None => panic!("an empty timeline item"),
        }
    }
    assert_eq!(relation.timeline.len(), 2);
}
