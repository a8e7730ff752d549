//! What real reports say, recorded over the API, and what cannot be true, refused: postponed
//! and cancelled meetings that come back, joint proposals, a place in an unregistered country,
//! windows with a precision at both ends, normalised coarse times, valid times in the future,
//! malformed party codes; relations that count every state under one pair name.

use crate::support::api::*;
use crate::support::commands::*;
use dipledger::api::pb;
use dipledger::api::pb::command_service_client::CommandServiceClient;
use dipledger::api::pb::query_service_client::QueryServiceClient;
use dipledger::api::server::ServerOptions;
use prost_types::Timestamp;
use tonic::transport::Channel;
use tonic::Code;
use uuid::Uuid;

const DAY_SECONDS: i64 = 86_400;

fn header(source: Uuid, occurred_at: Option<pb::OccurredAt>) -> Option<pb::CommandHeader> {
    Some(pb::CommandHeader {
        command_id: Uuid::now_v7().to_string(),
        occurred_at,
        sources: cite(source),
        ..Default::default()
    })
}

fn at(seconds: i64, precision: pb::Precision) -> pb::OccurredAt {
    pb::OccurredAt {
        at: Some(Timestamp { seconds, nanos: 0 }),
        precision: precision as i32,
    }
}

fn details(country: &str) -> pb::MeetingDetails {
    meeting_held(Uuid::nil(), ["LBY", "FRA"])
        .details
        .map_or_else(Default::default, |mut details| {
            details.location = Some(pb::Location {
                place: "Geneva".into(),
                country: Some(country.into()),
            });
            details
        })
}

/// Schedules a meeting "from 24 to 27 February" (day precision at both ends); returns its id.
async fn schedule(client: &mut CommandServiceClient<Channel>, source: Uuid) -> String {
    client
        .schedule_meeting(pb::ScheduleMeetingRequest {
            header: header(source, day()),
            details: Some(details("LBY")),
            window: Some(pb::TimeWindow {
                start: Some(at(WEDNESDAY + 40 * DAY_SECONDS, pb::Precision::Day)),
                end: Some(at(WEDNESDAY + 43 * DAY_SECONDS, pb::Precision::Day)),
                kind: pb::WindowKind::Span as i32,
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .meeting_id
}

async fn meeting(harness: &Harness, meeting_id: &str) -> pb::MeetingView {
    let mut query = QueryServiceClient::new(harness.channel().await);
    query
        .get_meeting(pb::GetMeetingRequest {
            meeting_id: meeting_id.into(),
            options: Some(pb::ReadOptions {
                min_position: harness.log.head(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .meeting
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_meeting_postponed_cancelled_and_rescheduled_is_told_whole_and_counted_in_its_relation() {
    let harness = Harness::start().await;
    let (mut client, source) = seeded(&harness).await;
    let postponed = schedule(&mut client, source).await;
    let view = meeting(&harness, &postponed).await;
    let window = view.window.unwrap();
    assert_eq!(
        window.end.unwrap().precision,
        pb::Precision::Day as i32,
        "the end keeps its precision"
    );
    client
        .postpone_meeting(pb::PostponeMeetingRequest {
            header: header(source, day()),
            meeting_id: postponed.clone(),
            reason: Some("the minister fell ill".into()),
        })
        .await
        .unwrap();
    let view = meeting(&harness, &postponed).await;
    assert_eq!(view.status, pb::MeetingStatus::Postponed as i32);
    assert_eq!(view.postponement_reason.as_deref(), Some("the minister fell ill"));

    // Cancelled by France, then "to be rescheduled": it comes back with a new date.
    let cancelled = schedule(&mut client, source).await;
    client
        .cancel_meeting(pb::CancelMeetingRequest {
            header: header(source, day()),
            meeting_id: cancelled.clone(),
            reason: Some("security situation".into()),
            cancelled_by: vec!["party-FRA".into()],
        })
        .await
        .unwrap();
    let view = meeting(&harness, &cancelled).await;
    assert_eq!(view.status, pb::MeetingStatus::Cancelled as i32);
    assert_eq!(
        view.cancelled_by,
        ["FRA"],
        "the stream-id form is read as the code"
    );
    let back = schedule(&mut client, source).await;
    client
        .cancel_meeting(pb::CancelMeetingRequest {
            header: header(source, day()),
            meeting_id: back.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    client
        .reschedule_meeting(pb::RescheduleMeetingRequest {
            header: header(source, day()),
            meeting_id: back.clone(),
            window: Some(pb::TimeWindow {
                start: Some(at(WEDNESDAY + 50 * DAY_SECONDS, pb::Precision::Day)),
                end: Some(at(WEDNESDAY + 51 * DAY_SECONDS, pb::Precision::Day)),
                kind: pb::WindowKind::Within as i32,
            }),
            reason: None,
        })
        .await
        .unwrap();
    let view = meeting(&harness, &back).await;
    assert_eq!(view.status, pb::MeetingStatus::Rescheduled as i32);
    assert_eq!(view.window.unwrap().kind, pb::WindowKind::Within as i32);
    assert!(view.cancelled_by.is_empty() && view.cancellation_reason.is_none());
    client
        .record_meeting_held(meeting_held(source, ["LBY", "FRA"]))
        .await
        .unwrap();

    let mut query = QueryServiceClient::new(harness.channel().await);
    let relation = query
        .get_bilateral_relation(pb::GetBilateralRelationRequest {
            party_a: "LBY".into(),
            party_b: "FRA".into(),
            options: Some(pb::ReadOptions {
                min_position: harness.log.head(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(relation.pair, "FRA-LBY");
    assert_eq!(
        (
            relation.meetings,
            relation.meetings_planned,
            relation.meetings_held,
            relation.meetings_postponed,
            relation.meetings_cancelled
        ),
        (4, 1, 1, 1, 1)
    );
    let states: Vec<i32> = relation
        .timeline
        .iter()
        .filter_map(|item| match &item.item {
            Some(pb::timeline_item_view::Item::Meeting(meeting)) => Some(meeting.status),
            _ => None,
        })
        .collect();
    assert_eq!(
        states.len(),
        4,
        "postponed and cancelled meetings are on the timeline"
    );
    assert!(states.contains(&(pb::MeetingStatus::Postponed as i32)));
    assert!(states.contains(&(pb::MeetingStatus::Cancelled as i32)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joint_proposals_third_countries_and_coarse_times_are_recorded_as_reported() {
    let harness = Harness::start().await;
    let (mut client, source) = seeded(&harness).await;
    // Proposed jointly, to meet in Switzerland, which is no registered party.
    let proposed = client
        .propose_meeting(pb::ProposeMeetingRequest {
            header: header(source, day()),
            proposed_by: vec!["FRA".into(), "LBY".into()],
            details: Some(details("CHE")),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .meeting_id;
    let view = meeting(&harness, &proposed).await;
    assert_eq!(view.proposed_by, ["FRA", "LBY"]);
    assert_eq!(
        view.details.unwrap().location.unwrap().country.as_deref(),
        Some("CHE")
    );
    // "In March 2025", given as the 17th with month precision: stored as 1 March.
    let mid_march = 1_742_169_600; // 2025-03-17T00:00:00Z
    let held = client
        .record_meeting_held(pb::RecordMeetingHeldRequest {
            header: header(source, Some(at(mid_march + 3_600, pb::Precision::Month))),
            details: Some(details("LBY")),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .meeting_id;
    let held_at = meeting(&harness, &held).await.held_at.unwrap();
    assert_eq!(held_at.at.unwrap().seconds, 1_740_787_200, "2025-03-01T00:00:00Z");
    assert_eq!(held_at.precision, pb::Precision::Month as i32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_cannot_be_true_is_refused_naming_the_field_and_nothing_is_appended() {
    let harness = Harness::start().await;
    let (mut client, source) = seeded(&harness).await;
    let head = harness.log.head();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;

    // Held two days from now: a past fact dated in the future.
    let future = pb::RecordMeetingHeldRequest {
        header: header(source, Some(at(now + 2 * DAY_SECONDS, pb::Precision::Day))),
        details: Some(details("LBY")),
        ..Default::default()
    };
    let status = client.record_meeting_held(future).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(fields(&status), ["header.occurred_at"]);
    assert!(status.message().contains("in the future"), "{status:?}");
    // Within the allowance (time zones ahead of the server's): accepted.
    let tomorrow_morning = pb::RecordMeetingHeldRequest {
        header: header(source, Some(at(now + 3_600, pb::Precision::Second))),
        details: Some(details("LBY")),
        ..Default::default()
    };
    client.record_meeting_held(tomorrow_morning).await.unwrap();
    let head = head + 1;
    assert_eq!(harness.log.head(), head);
    // A meeting scheduled for next month, announced today: the window may lie ahead.
    let mut scheduled = pb::ScheduleMeetingRequest {
        header: header(source, day()),
        details: Some(details("LBY")),
        window: Some(pb::TimeWindow {
            start: Some(at(now + 30 * DAY_SECONDS, pb::Precision::Day)),
            ..Default::default()
        }),
        ..Default::default()
    };
    client.schedule_meeting(scheduled.clone()).await.unwrap();
    let head = head + 1;

    // Malformed party codes: INVALID_ARGUMENT about the field, before any reference lookup.
    let mut lower = details("LBY");
    lower.participants[1].party = "fra".into();
    let status = client
        .record_meeting_held(pb::RecordMeetingHeldRequest {
            header: header(source, day()),
            details: Some(lower),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(fields(&status), ["details.participants[1].party"]);
    assert!(
        status.message().contains("\"fra\""),
        "names the value: {status:?}"
    );
    let status = client
        .cancel_meeting(pb::CancelMeetingRequest {
            header: header(source, day()),
            meeting_id: Uuid::now_v7().to_string(),
            cancelled_by: vec!["F RA".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(fields(&status), ["cancelled_by[0]"]);
    // A location that is no ISO 3166-1 alpha-3 code.
    let status = client
        .record_meeting_held(pb::RecordMeetingHeldRequest {
            header: header(source, day()),
            details: Some(details("Switzerland")),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&status), ["details.location.country"]);
    // A window that happens "somewhere within" without an end, and one ending before it starts.
    scheduled.header = header(source, day());
    scheduled.window.as_mut().unwrap().kind = pb::WindowKind::Within as i32;
    let status = client.schedule_meeting(scheduled.clone()).await.unwrap_err();
    assert_eq!(fields(&status), ["window.end"]);
    scheduled.header = header(source, day());
    scheduled.window.as_mut().unwrap().end = Some(at(now, pb::Precision::Day));
    let status = client.schedule_meeting(scheduled).await.unwrap_err();
    assert_eq!(fields(&status), ["window.end"]);
    // A proposal needs a proposer.
    let status = client
        .propose_meeting(pb::ProposeMeetingRequest {
            header: header(source, day()),
            details: Some(details("LBY")),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&status), ["proposed_by"]);
    assert_eq!(harness.log.head(), head, "no refusal moved the head");
}

/// Registers an official holding `post` for `party` from 2024-06-01; returns the id.
async fn official(
    client: &mut CommandServiceClient<Channel>,
    source: Uuid,
    name: &str,
    post: &str,
    party: &str,
) -> String {
    client
        .register_official(pb::RegisterOfficialRequest {
            header: header(source, day()),
            name: name.into(),
            offices: vec![pb::OfficeTerm {
                post: post.into(),
                party: party.into(),
                from: Some(at(1_717_200_000, pb::Precision::Day)),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .official_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meetings_timelines_and_contacts_carry_names_and_the_posts_held_on_the_day() {
    let harness = Harness::start().await;
    let (mut client, source) = seeded(&harness).await;
    let bushnaf = official(
        &mut client,
        source,
        "Ibrahim Bushnaf",
        "National Security Adviser",
        "LBY",
    )
    .await;
    let mihraje = official(
        &mut client,
        source,
        "Mostafa Mihraje",
        "Ambassador of France to Libya",
        "FRA",
    )
    .await;
    let mut held = meeting_held(source, ["LBY", "FRA"]);
    let details = held.details.as_mut().unwrap();
    details.participants[0].official_id = Some(bushnaf.clone());
    details.participants[1].official_id = Some(mihraje.clone());
    let meeting_id = client
        .record_meeting_held(held)
        .await
        .unwrap()
        .into_inner()
        .meeting_id;

    let view = meeting(&harness, &meeting_id).await;
    let named: Vec<(String, String, Option<String>, Vec<String>)> = view
        .participants
        .iter()
        .map(|p| {
            (
                p.party.clone(),
                p.party_name.clone(),
                p.official_name.clone(),
                p.posts.clone(),
            )
        })
        .collect();
    assert_eq!(
        named,
        [
            (
                "LBY".into(),
                "Party LBY".into(),
                Some("Ibrahim Bushnaf".into()),
                vec!["National Security Adviser".into()]
            ),
            (
                "FRA".into(),
                "Party FRA".into(),
                Some("Mostafa Mihraje".into()),
                vec!["Ambassador of France to Libya".into()]
            ),
        ]
    );

    let mut query = QueryServiceClient::new(harness.channel().await);
    let relation = query
        .get_bilateral_relation(pb::GetBilateralRelationRequest {
            party_a: "FRA".into(),
            party_b: "LBY".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let Some(pb::timeline_item_view::Item::Meeting(on_timeline)) = &relation.timeline[0].item else {
        panic!("a meeting on the timeline: {relation:?}");
    };
    assert_eq!(
        on_timeline.participants, view.participants,
        "the timeline names them too"
    );

    let contacts = query
        .get_contacts(pb::GetContactsRequest {
            official_id: bushnaf,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        contacts.contacts,
        [pb::ContactView {
            official_id: mihraje,
            name: "Mostafa Mihraje".into(),
            posts: vec!["Ambassador of France to Libya".into()],
            meetings: 1,
        }]
    );
}

/// The CorrectParty request a client sends to correct `code`'s name (version 1 is its
/// registration).
fn correct_party(code: &str, source: Uuid) -> pb::CorrectPartyRequest {
    let registration = register_party(code, source);
    pb::CorrectPartyRequest {
        header: registration.header,
        code: code.into(),
        corrects_version: 1,
        reason: "the name was misspelt".into(),
        details: registration.details,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_party_commands_own_malformed_code_is_refused_as_its_code_before_any_lookup() {
    let harness = Harness::start().await;
    let (mut client, source) = seeded(&harness).await;
    let head = harness.log.head();
    // `party-F RA` is the stream-id form of `F RA`: the code named is the bare one.
    for (code, named) in [
        ("F RA", "\"F RA\""),
        ("fra", "\"fra\""),
        ("", "\"\""),
        ("party-F RA", "\"F RA\""),
    ] {
        let status = client
            .register_party(register_party(code, source))
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "RegisterParty {code:?}: {status:?}"
        );
        assert_eq!(fields(&status), ["code"], "RegisterParty {code:?}: {status:?}");
        assert!(
            status
                .message()
                .starts_with(&format!("invalid request: code: {named} ")),
            "names the value: {status:?}"
        );
        assert!(!status.message().contains("stream_id"), "{status:?}");
        let status = client
            .correct_party(correct_party(code, source))
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "CorrectParty {code:?}: {status:?}"
        );
        assert_eq!(fields(&status), ["code"], "CorrectParty {code:?}: {status:?}");
    }
    // Before any lookup, and with every other malformed field: a source that does not exist is
    // not looked up, a blank name is listed with the code.
    let mut request = register_party("F RA", Uuid::now_v7());
    request.details.as_mut().unwrap().name = String::new();
    let status = client.register_party(request).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(fields(&status), ["code", "details.name"]);
    assert_eq!(harness.log.head(), head, "no refusal moved the head");
}

/// Seconds since the Unix epoch, now.
fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Records a new commitment of LBY made on that Wednesday; returns its id.
async fn commitment(client: &mut CommandServiceClient<Channel>, source: Uuid) -> String {
    client
        .record_commitment(pb::RecordCommitmentRequest {
            header: header(source, day()),
            details: Some(pb::CommitmentDetails {
                kind: pb::CommitmentKind::New as i32,
                committing_parties: vec!["LBY".into()],
                counterparties: vec!["FRA".into()],
                text: "to reopen the consulate in Benghazi".into(),
                specificity: pb::Specificity::Aspirational as i32,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .commitment_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_facts_dated_in_the_future_are_refused_on_their_own_field() {
    let harness = Harness::start().await;
    let (mut client, source) = seeded(&harness).await;
    let held = client
        .record_meeting_held(meeting_held(source, ["LBY", "FRA"]))
        .await
        .unwrap()
        .into_inner()
        .meeting_id;
    let scheduled = schedule(&mut client, source).await;
    let commitment = commitment(&mut client, source).await;
    let envoy = official(&mut client, source, "Mostafa Mihraje", "Ambassador", "FRA").await;
    let head = harness.log.head();
    let in_two_days = now_seconds() + 2 * DAY_SECONDS;
    let future = || header(source, Some(at(in_two_days, pb::Precision::Day)));
    let expect_refused = |what: &str, status: tonic::Status, field: &str| {
        assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
        assert_eq!(fields(&status), [field], "{what}: {status:?}");
        assert!(
            status.message().contains("is in the future"),
            "{what}: {status:?}"
        );
        assert!(
            status.message().contains("24 h"),
            "names the allowance: {status:?}"
        );
    };

    let statement = client
        .record_statement(pb::RecordStatementRequest {
            header: future(),
            meeting_id: held.clone(),
            speaker: Some(pb::Speaker {
                party: "LBY".into(),
                official_id: None,
            }),
            text: "We welcome the visit.".into(),
            verbatim: true,
        })
        .await
        .unwrap_err();
    expect_refused("a statement", statement, "header.occurred_at");
    let cancellation = client
        .cancel_meeting(pb::CancelMeetingRequest {
            header: future(),
            meeting_id: scheduled.clone(),
            reason: Some("security situation".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    expect_refused("a cancellation", cancellation, "header.occurred_at");
    let fulfilment = client
        .fulfil_commitment(pb::FulfilCommitmentRequest {
            header: future(),
            commitment_id: commitment.clone(),
            summary: "the consulate reopened".into(),
        })
        .await
        .unwrap_err();
    expect_refused("a fulfilment", fulfilment, "header.occurred_at");
    // The end of a held meeting and of a tenure are past facts too, on their own fields.
    let mut ended_later = meeting_held(source, ["LBY", "FRA"]);
    ended_later.ended_at = Some(Timestamp {
        seconds: in_two_days,
        nanos: 0,
    });
    let status = client.record_meeting_held(ended_later).await.unwrap_err();
    expect_refused("a meeting's end", status, "ended_at");
    let status = client
        .end_tenure(pb::EndTenureRequest {
            header: header(source, day()),
            official_id: envoy.clone(),
            tenure_version: 1,
            ended_at: Some(at(in_two_days, pb::Precision::Day)),
            reason: Some("end of mission".into()),
        })
        .await
        .unwrap_err();
    expect_refused("a tenure's end", status, "ended_at");
    assert_eq!(harness.log.head(), head, "no refusal moved the head");

    // The same facts dated today are recorded.
    client
        .cancel_meeting(pb::CancelMeetingRequest {
            header: header(source, Some(at(now_seconds(), pb::Precision::Second))),
            meeting_id: scheduled,
            ..Default::default()
        })
        .await
        .unwrap();
    client
        .fulfil_commitment(pb::FulfilCommitmentRequest {
            header: header(source, Some(at(now_seconds(), pb::Precision::Second))),
            commitment_id: commitment,
            summary: "the consulate reopened".into(),
        })
        .await
        .unwrap();
    assert_eq!(harness.log.head(), head + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_future_allowance_setting_moves_the_boundary() {
    let two_hours = Harness::start_with(ServerOptions {
        future_allowance: std::time::Duration::from_secs(2 * 3_600),
        ..ServerOptions::default()
    })
    .await;
    let default = Harness::start().await;
    let (mut strict, strict_source) = seeded(&two_hours).await;
    let (mut lenient, lenient_source) = seeded(&default).await;
    let held_at = |source: Uuid, seconds: i64| pb::RecordMeetingHeldRequest {
        header: header(source, Some(at(seconds, pb::Precision::Second))),
        details: Some(details("LBY")),
        ..Default::default()
    };
    // Three hours ahead: past a two-hour allowance, within the default day.
    let in_three_hours = now_seconds() + 3 * 3_600;
    let head = two_hours.log.head();
    let status = strict
        .record_meeting_held(held_at(strict_source, in_three_hours))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(fields(&status), ["header.occurred_at"]);
    assert!(status.message().contains("at most 2 h past"), "{status:?}");
    assert_eq!(two_hours.log.head(), head, "nothing appended");
    lenient
        .record_meeting_held(held_at(lenient_source, in_three_hours))
        .await
        .expect("within the default allowance");
    // One hour ahead: within both.
    strict
        .record_meeting_held(held_at(strict_source, now_seconds() + 3_600))
        .await
        .expect("within two hours");
    assert_eq!(two_hours.log.head(), head + 1);
}
