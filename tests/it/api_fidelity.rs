//! What real reports say, recorded over the API, and what cannot be true, refused: postponed
//! and cancelled meetings that come back, joint proposals, a place in an unregistered country,
//! windows with a precision at both ends, normalised coarse times, valid times in the future,
//! malformed party codes; relations that count every state under one pair name.

use crate::support::api::*;
use crate::support::commands::*;
use dipledger::api::pb;
use dipledger::api::pb::command_service_client::CommandServiceClient;
use dipledger::api::pb::query_service_client::QueryServiceClient;
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
