//! The bounds of what a client can make the server answer and accept, over a real server on
//! 127.0.0.1:0: error answers stay small whatever the request held (values echoed cut,
//! field violations counted past a maximum), and page sizes are refused one past their maximum,
//! named by the request's own field.

use crate::support::api::*;
use dipledger::api::pb;
use dipledger::api::pb::query_service_client::QueryServiceClient;
use dipledger::api::status::{MAX_ECHOED_CHARS, MAX_FIELD_VIOLATIONS, MAX_STATUS_BYTES};
use tonic::Code;
use tonic_types::StatusExt;

/// A value of one megabyte.
fn one_megabyte() -> String {
    "s".repeat(1024 * 1024)
}

/// How an answer repeats the one-megabyte value: its first characters, quoted, and its length.
fn echoed_megabyte() -> String {
    format!("\"{}\"… (1048576 bytes)", "s".repeat(MAX_ECHOED_CHARS))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_megabyte_value_is_echoed_cut_and_the_answer_arrives() {
    let harness = Harness::start().await;
    // A party code is repeated in the answer: cut to its first characters and its length.
    let mut queries = QueryServiceClient::new(harness.channel().await);
    let status = within(
        "GetCompliance of a 1 MB party code",
        queries.get_compliance(pb::GetComplianceRequest {
            party: one_megabyte(),
            options: None,
        }),
    )
    .await
    .expect_err("not a party code");
    assert_eq!(status.code(), Code::InvalidArgument, "{:?}", status.code());
    let listed = status
        .get_details_bad_request()
        .expect("BadRequest")
        .field_violations;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].field, "party");
    assert!(
        listed[0]
            .description
            .starts_with(&format!("{} is 1048576 characters", echoed_megabyte())),
        "{}",
        listed[0].description
    );
    assert!(
        status.message().contains(&echoed_megabyte()),
        "{}",
        status.message()
    );
    assert!(status.message().len() + status.details().len() <= MAX_STATUS_BYTES);

    // A stream id is refused by the log's own limit, without repeating it.
    let mut client = harness.event_store().await;
    let status = within(
        "ReadStream of a 1 MB stream id",
        client.read_stream(pb::ReadStreamRequest {
            stream_id: one_megabyte(),
            ..pb::ReadStreamRequest::default()
        }),
    )
    .await
    .expect_err("over the stream id limit");
    assert_eq!(status.code(), Code::InvalidArgument, "{:?}", status.code());
    assert_eq!(
        status.message(),
        "invalid request: stream_id: 1048576 bytes, over the limit of 128"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_invalid_filter_entries_are_counted_not_listed() {
    let harness = Harness::start().await;
    let mut client = harness.event_store().await;
    let entries = 100_000;
    let filter = pb::EventFilter {
        tags: vec![String::new(); entries],
        ..pb::EventFilter::default()
    };
    // One violation for the list's length, one per empty entry.
    let violations = entries + 1;
    let expect_counted = |status: tonic::Status| {
        assert_eq!(status.code(), Code::InvalidArgument, "{:?}", status.code());
        assert!(status.message().len() + status.details().len() <= MAX_STATUS_BYTES);
        assert_eq!(
            status.message(),
            format!(
                "invalid request: filter.tags: has {entries} entries, the limit is 256; \
                 filter.tags[0]: must not be empty; filter.tags[1]: must not be empty (and {} more)",
                violations - 3
            )
        );
        let listed = status
            .get_details_bad_request()
            .expect("BadRequest")
            .field_violations;
        assert_eq!(
            listed.len(),
            MAX_FIELD_VIOLATIONS + 1,
            "the first ones, then the count"
        );
        assert_eq!(listed[1].field, "filter.tags[0]");
        assert_eq!(listed[1].description, "must not be empty");
        assert_eq!(listed[MAX_FIELD_VIOLATIONS].field, "");
        assert_eq!(
            listed[MAX_FIELD_VIOLATIONS].description,
            format!("and {} more", violations - MAX_FIELD_VIOLATIONS)
        );
    };
    let status = within(
        "ReadAll with 100,000 empty tags",
        client.read_all(pb::ReadAllRequest {
            filter: Some(filter.clone()),
            ..pb::ReadAllRequest::default()
        }),
    )
    .await
    .expect_err("refused");
    expect_counted(status);
    let status = within(
        "Subscribe with 100,000 empty tags",
        client.subscribe(pb::SubscribeRequest {
            filter: Some(filter),
            ..pb::SubscribeRequest::default()
        }),
    )
    .await
    .expect_err("refused");
    expect_counted(status);
}

/// The one field violation of an INVALID_ARGUMENT answer.
fn only_violation(status: &tonic::Status) -> (String, String) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let listed = status
        .get_details_bad_request()
        .expect("BadRequest")
        .field_violations;
    assert_eq!(listed.len(), 1, "{listed:?}");
    (listed[0].field.clone(), listed[0].description.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_pages_are_served_at_the_maximum_and_refused_one_past_it() {
    use dipledger::log::limits::MAX_READ_PAGE_EVENTS;

    let harness = Harness::start().await;
    append_many(&harness.log, "party-LBY", MAX_READ_PAGE_EVENTS + 1, "t").await;
    let mut client = harness.event_store().await;
    let max = MAX_READ_PAGE_EVENTS as u32;

    let page = within(
        "ReadAll at the maximum",
        client.read_all(pb::ReadAllRequest {
            limit: max,
            omit_typed_body: true,
            ..pb::ReadAllRequest::default()
        }),
    )
    .await
    .expect("served")
    .into_inner();
    assert_eq!(page.events.len(), MAX_READ_PAGE_EVENTS);
    let status = within(
        "ReadAll one past the maximum",
        client.read_all(pb::ReadAllRequest {
            limit: max + 1,
            ..pb::ReadAllRequest::default()
        }),
    )
    .await
    .expect_err("refused, not capped");
    assert_eq!(
        only_violation(&status),
        (
            "limit".to_owned(),
            format!("{} is over the limit of {max}", max + 1)
        )
    );

    let page = within(
        "ReadStream at the maximum",
        client.read_stream(pb::ReadStreamRequest {
            stream_id: "party-LBY".into(),
            limit: max,
            omit_typed_body: true,
            ..pb::ReadStreamRequest::default()
        }),
    )
    .await
    .expect("served")
    .into_inner();
    assert_eq!(page.events.len(), MAX_READ_PAGE_EVENTS);
    let status = within(
        "ReadStream one past the maximum",
        client.read_stream(pb::ReadStreamRequest {
            stream_id: "party-LBY".into(),
            limit: max + 1,
            ..pb::ReadStreamRequest::default()
        }),
    )
    .await
    .expect_err("refused, not capped");
    assert_eq!(
        only_violation(&status),
        (
            "limit".to_owned(),
            format!("{} is over the limit of {max}", max + 1)
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_pages_are_served_at_the_maximum_and_refused_one_past_it() {
    use dipledger::projections::history::MAX_HISTORY_PAGE;
    use dipledger::projections::store::MAX_PAGE_SIZE;

    let harness = Harness::start().await;
    let last = append_many(&harness.log, "party-LBY", MAX_PAGE_SIZE + 1, "t").await;
    let mut queries = QueryServiceClient::new(harness.channel().await);
    let page = |size: usize| {
        Some(pb::PageRequest {
            page_size: size as u32,
            page_token: String::new(),
        })
    };
    let options = Some(pb::ReadOptions {
        min_position: last,
        as_of: None,
    });

    let parties = within(
        "ListParties at the maximum",
        queries.list_parties(pb::ListPartiesRequest {
            page: page(MAX_PAGE_SIZE),
            options,
        }),
    )
    .await
    .expect("served")
    .into_inner();
    assert_eq!(parties.parties.len(), 1, "one party, registered again and again");
    let status = within(
        "ListParties one past the maximum",
        queries.list_parties(pb::ListPartiesRequest {
            page: page(MAX_PAGE_SIZE + 1),
            options,
        }),
    )
    .await
    .expect_err("refused");
    assert_eq!(
        only_violation(&status),
        (
            "page.page_size".to_owned(),
            format!("{} is over the limit of {MAX_PAGE_SIZE}", MAX_PAGE_SIZE + 1)
        )
    );

    let history = within(
        "GetEntityHistory at the maximum",
        queries.get_entity_history(pb::GetEntityHistoryRequest {
            stream_id: "party-LBY".into(),
            page: page(MAX_HISTORY_PAGE),
            options,
        }),
    )
    .await
    .expect("served")
    .into_inner();
    assert_eq!(history.entries.len(), MAX_HISTORY_PAGE);
    let status = within(
        "GetEntityHistory one past the maximum",
        queries.get_entity_history(pb::GetEntityHistoryRequest {
            stream_id: "party-LBY".into(),
            page: page(MAX_HISTORY_PAGE + 1),
            options,
        }),
    )
    .await
    .expect_err("refused");
    assert_eq!(
        only_violation(&status),
        (
            "page.page_size".to_owned(),
            format!("{} is over the limit of {MAX_HISTORY_PAGE}", MAX_HISTORY_PAGE + 1)
        )
    );
}
