//! EventStoreService over a real server on 127.0.0.1:0: ReadStream/ReadAll round trips with the
//! typed payload, every status code the service produces, and subscriptions (catch-up then
//! live with no gap or duplicate, resuming from a checkpoint, a stalled client, shutdown with
//! open subscriptions). Events are appended straight to the server's `Log` in this process.

use crate::support::api::*;
use dipledger::api::convert;
use dipledger::api::event_store::{EventStore, LIVE_FEED_EVENTS};
use dipledger::api::pb;
use dipledger::api::pb::event_store_service_server::EventStoreService;
use dipledger::api::pb::subscribe_response::Message;
use dipledger::api::server::ServerOptions;
use dipledger::log::{AppendRequest, ExpectedVersion, Log, LogConfig};
use tokio::sync::watch;
use tokio_stream::StreamExt;
use tonic::Code;
use tonic_types::StatusExt;
use uuid::Uuid;

fn subscribe_from_start(filter: Option<pb::EventFilter>) -> pb::SubscribeRequest {
    pb::SubscribeRequest {
        start: Some(pb::subscribe_request::Start::FromStart(pb::SubscribeFromStart {})),
        filter,
        omit_typed_body: false,
    }
}

fn tags(tags: &[&str]) -> Option<pb::EventFilter> {
    Some(pb::EventFilter {
        tags: tags.iter().map(|tag| tag.to_string()).collect(),
        ..Default::default()
    })
}

/// Appends `count` events of a type the domain does not know (`CrashTest`, the payload of a
/// PartyRegistered) to stream `other-1`, with tags `tag` instead of the party's own when given.
async fn append_unknown(log: &Log, count: usize, tag: Option<&str>) {
    let mut unknown = draft_of(&party_registered("LBY"));
    unknown.event_type = "CrashTest".into();
    if let Some(tag) = tag {
        unknown.tags = vec![tag.into()];
    }
    let request = AppendRequest::new(
        Uuid::now_v7(),
        "other-1",
        ExpectedVersion::Any,
        "bob",
        vec![unknown; count],
    );
    log.append(request).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_stream_and_read_all_return_every_envelope_field_and_the_typed_event() {
    let harness = Harness::start().await;
    let event = party_registered("LBY");
    let (command_id, correlation_id) = (Uuid::now_v7(), Uuid::now_v7());
    let appended = harness
        .log
        .append(
            AppendRequest::new(
                command_id,
                "party-LBY",
                ExpectedVersion::NoStream,
                "alice",
                vec![draft_of(&event)],
            )
            .with_correlation(Some(correlation_id), None),
        )
        .await
        .unwrap();
    // Three events the domain does not know: stored and served, without a typed event.
    append_unknown(&harness.log, 3, Some("test:other")).await;

    let mut client = harness.event_store().await;
    let response = client
        .read_stream(pb::ReadStreamRequest {
            stream_id: "party-LBY".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            response.stream_version,
            response.next_version,
            response.reached_end
        ),
        (1, 2, true)
    );
    assert_eq!(response.events.len(), 1);
    let envelope = &response.events[0];
    assert_eq!(envelope.position, 1);
    assert_eq!(envelope.stream_id, "party-LBY");
    assert_eq!(envelope.stream_version, 1);
    assert_eq!(envelope.event_id, appended.event_ids()[0].to_string());
    assert_eq!(envelope.event_type, "PartyRegistered");
    assert_eq!(envelope.schema_version, 2);
    assert_eq!(envelope.command_id, command_id.to_string());
    let occurred_at = envelope.occurred_at.as_ref().unwrap();
    assert_eq!(occurred_at.precision, pb::Precision::Day as i32);
    assert_eq!(occurred_at.at.unwrap().seconds, 1_736_899_200);
    assert_eq!(
        envelope.recorded_at,
        Some(convert::timestamp_to_pb(appended.recorded_at()))
    );
    assert_eq!(envelope.recorded_by, "alice");
    assert_eq!(envelope.correlation_id, Some(correlation_id.to_string()));
    assert_eq!(envelope.causation_id, None);
    assert_eq!(envelope.tags, event.tags());
    assert_eq!(envelope.payload, event.encode_payload());
    let stored = harness.log.read_event(1).unwrap();
    assert_eq!(envelope.leaf_hash, stored.leaf_hash().to_vec());
    assert_eq!(envelope.chain_hash, stored.chain_hash().to_vec());
    assert_eq!(envelope.event, Some(convert::event_to_pb(&event)));
    let Some(pb::event::Event::PartyRegistered(typed)) =
        envelope.event.as_ref().and_then(|e| e.event.clone())
    else {
        panic!("typed PartyRegistered expected: {:?}", envelope.event);
    };
    assert_eq!(typed.code, "LBY");
    assert_eq!(typed.details.unwrap().kind, pb::PartyKind::State as i32);
    let provenance = typed.provenance.unwrap();
    assert_eq!(provenance.sources[0].quote.as_deref(), Some("met on Wednesday"));
    // Microseconds survive the round trip.
    assert_eq!(provenance.occurred_at.unwrap().at.unwrap().nanos, 123_456_000);

    // ReadAll: everything, then each filter.
    let all = client
        .read_all(pb::ReadAllRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        all.events.iter().map(|e| e.position).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert_eq!((all.head, all.next_position, all.reached_end), (4, 5, true));
    assert_eq!(&all.events[0], envelope);
    assert!(all.events[1..]
        .iter()
        .all(|e| e.event.is_none() && e.event_type == "CrashTest"));
    for (filter, expected) in [
        (
            pb::EventFilter {
                event_types: vec!["PartyRegistered".into()],
                ..Default::default()
            },
            vec![1],
        ),
        (
            pb::EventFilter {
                stream_prefixes: vec!["other-".into()],
                ..Default::default()
            },
            vec![2, 3, 4],
        ),
        (
            pb::EventFilter {
                tags: vec!["party:LBY".into()],
                ..Default::default()
            },
            vec![1],
        ),
    ] {
        let page = client
            .read_all(pb::ReadAllRequest {
                filter: Some(filter),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            page.events.iter().map(|e| e.position).collect::<Vec<_>>(),
            expected
        );
    }
    // Backwards from the head, two at a time.
    let back = client
        .read_all(pb::ReadAllRequest {
            direction: pb::Direction::Backwards as i32,
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(back.events.iter().map(|e| e.position).collect::<Vec<_>>(), [4, 3]);
    assert_eq!((back.next_position, back.reached_end), (2, false));
    // ReadStream backwards from the end.
    let back = client
        .read_stream(pb::ReadStreamRequest {
            stream_id: "other-1".into(),
            direction: pb::Direction::Backwards as i32,
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        back.events.iter().map(|e| e.stream_version).collect::<Vec<_>>(),
        [3, 2]
    );
    assert_eq!(
        (back.stream_version, back.next_version, back.reached_end),
        (3, 1, false)
    );
}

fn violation_fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .expect("BadRequest details")
        .field_violations
        .into_iter()
        .map(|violation| violation.field)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_status_code_comes_from_the_request_that_should_produce_it() {
    let harness = Harness::start_with(ServerOptions {
        max_subscriptions: 2,
        ..ServerOptions::default()
    })
    .await;
    append_many(&harness.log, "s-1", 20, "t").await;
    let mut client = harness.event_store().await;

    // OUT_OF_RANGE: past the head (forwards head + 1 is an empty page, not an error).
    let status = client
        .read_all(pb::ReadAllRequest {
            from_position: Some(22),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    let empty = client
        .read_all(pb::ReadAllRequest {
            from_position: Some(21),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(empty.events.is_empty() && empty.reached_end);
    let status = client
        .subscribe(pb::SubscribeRequest {
            start: Some(pb::subscribe_request::Start::AfterPosition(21)),
            filter: None,
            omit_typed_body: false,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    let status = client
        .read_stream(pb::ReadStreamRequest {
            stream_id: "s-1".into(),
            from_version: Some(22),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");

    // NOT_FOUND: a stream without events.
    let status = client
        .read_stream(pb::ReadStreamRequest {
            stream_id: "meeting-nope".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    // INVALID_ARGUMENT with every field violation at once.
    let status = client
        .read_stream(pb::ReadStreamRequest {
            stream_id: String::new(),
            from_version: Some(0),
            direction: 9,
            limit: 0,
            omit_typed_body: false,
            include_leaf_input: false,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(
        violation_fields(&status),
        ["direction", "from_version", "stream_id"]
    );
    let status = client
        .read_stream(pb::ReadStreamRequest {
            stream_id: "with space".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(violation_fields(&status), ["stream_id"]);
    let status = client
        .read_all(pb::ReadAllRequest {
            filter: Some(pb::EventFilter {
                tags: vec!["ok".into(), String::new()],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(violation_fields(&status), ["filter.tags[1]"]);

    // RESOURCE_EXHAUSTED: a third concurrent subscription; room again once one closes.
    let mut first = client
        .subscribe(subscribe_from_start(None))
        .await
        .unwrap()
        .into_inner();
    let second = client
        .subscribe(subscribe_from_start(None))
        .await
        .unwrap()
        .into_inner();
    let status = client.subscribe(subscribe_from_start(None)).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(matches!(next_message(&mut first).await, Message::Event(_)));
    drop(second);
    within("a subscription slot frees up", async {
        loop {
            match client.subscribe(subscribe_from_start(None)).await {
                Ok(stream) => break stream,
                Err(status) => {
                    assert_eq!(status.code(), Code::ResourceExhausted);
                    tokio::task::yield_now().await;
                }
            }
        }
    })
    .await;

    // DATA_LOSS: a damaged record is never served.
    // (Records are packed in chunks keyed by their first position: damage the chunk holding 7.)
    let (key, value) = harness
        .log
        .raw_tree()
        .range(..=dipledger::log::keys::event_key(7))
        .next_back()
        .unwrap()
        .unwrap();
    let mut bytes = value.to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    harness.log.raw_tree().insert(key, bytes).unwrap();
    let status = client.read_all(pb::ReadAllRequest::default()).await.unwrap_err();
    assert_eq!(status.code(), Code::DataLoss, "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_catches_up_then_goes_live_without_gap_or_duplicate() {
    let harness = Harness::start().await;
    append_many(&harness.log, "bulk-1", 5_000, "t").await;
    let mut client = harness.event_store().await;
    let mut stream = client
        .subscribe(subscribe_from_start(None))
        .await
        .unwrap()
        .into_inner();
    let log = harness.log.clone();
    let appender = tokio::spawn(async move {
        for _ in 0..100 {
            append_many(&log, "bulk-2", 50, "t").await;
        }
    });
    let mut expected = 1;
    let mut caught_up = 0;
    while expected <= 10_000 || caught_up == 0 {
        match next_message(&mut stream).await {
            Message::Event(event) => {
                assert_eq!(event.position, expected, "gap or duplicate");
                assert!(event.event.is_some());
                expected += 1;
            }
            Message::CaughtUp(at) => {
                caught_up += 1;
                assert_eq!(at.position, expected - 1, "caught up where the events end");
            }
            Message::Checkpoint(checkpoint) => {
                panic!("unfiltered subscriptions need no checkpoints: {checkpoint:?}")
            }
        }
    }
    within("appender", appender).await.unwrap();
    assert_eq!(caught_up, 1);
    // Live: a new event arrives after CaughtUp, exactly once.
    append_many(&harness.log, "live", 1, "t").await;
    match next_message(&mut stream).await {
        Message::Event(event) => assert_eq!(event.position, 10_001),
        other => panic!("expected the live event: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filtered_subscription_sends_checkpoints_and_resumes_from_one() {
    let harness = Harness::start().await;
    append_many(&harness.log, "noise", 5_000, "common").await;
    append_many(&harness.log, "signal", 1, "rare").await; // 5001
    append_many(&harness.log, "noise", 3_000, "common").await; // up to 8001
    let mut client = harness.event_store().await;
    let mut stream = client
        .subscribe(subscribe_from_start(tags(&["rare"])))
        .await
        .unwrap()
        .into_inner();
    let mut checkpoints = Vec::new();
    let mut events = Vec::new();
    let mut reported = vec![0]; // every position the client heard of, in order
    loop {
        match next_message(&mut stream).await {
            Message::Event(event) => events.push(event.position),
            Message::Checkpoint(checkpoint) => checkpoints.push(checkpoint.position),
            Message::CaughtUp(at) => {
                assert_eq!(at.position, 8_001);
                reported.push(at.position);
                break;
            }
        }
        reported.push(*events.iter().chain(&checkpoints).max().unwrap());
    }
    assert_eq!(events, [5_001]);
    let before_event: Vec<_> = checkpoints.iter().filter(|&&p| p < 5_001).collect();
    assert!(
        !before_event.is_empty(),
        "checkpoints while scanning: {checkpoints:?}"
    );
    assert!(reported.windows(2).all(|w| w[0] < w[1]), "{reported:?}");
    // Never more than the checkpoint interval (plus one page) examined without a word.
    assert!(
        reported.windows(2).all(|w| w[1] - w[0] <= 2_048 + 256),
        "{reported:?}"
    );
    // Idle at the head: a checkpoint covers new non-matching events.
    append_many(&harness.log, "noise", 10, "common").await; // up to 8011
    match next_message(&mut stream).await {
        Message::Checkpoint(checkpoint) => assert_eq!(checkpoint.position, 8_011),
        other => panic!("expected a checkpoint: {other:?}"),
    }
    drop(stream);

    // Resume from the first checkpoint: the first event delivered is the rare one.
    let mut resumed = client
        .subscribe(pb::SubscribeRequest {
            start: Some(pb::subscribe_request::Start::AfterPosition(*before_event[0])),
            filter: tags(&["rare"]),
            omit_typed_body: false,
        })
        .await
        .unwrap()
        .into_inner();
    loop {
        match next_message(&mut resumed).await {
            Message::Event(event) => {
                assert_eq!(event.position, 5_001);
                break;
            }
            Message::Checkpoint(checkpoint) => assert!(checkpoint.position < 5_001),
            Message::CaughtUp(at) => panic!("caught up at {} before the event", at.position),
        }
    }
    drop(resumed);
    // Resume after the last checkpoint: only what came later.
    append_many(&harness.log, "signal", 1, "rare").await; // 8012
    let mut resumed = client
        .subscribe(pb::SubscribeRequest {
            start: Some(pb::subscribe_request::Start::AfterPosition(8_011)),
            filter: tags(&["rare"]),
            omit_typed_body: false,
        })
        .await
        .unwrap()
        .into_inner();
    match next_message(&mut resumed).await {
        Message::Event(event) => assert_eq!(event.position, 8_012),
        other => panic!("expected event 8012: {other:?}"),
    }
    match next_message(&mut resumed).await {
        Message::CaughtUp(at) => assert_eq!(at.position, 8_012),
        other => panic!("expected caught up: {other:?}"),
    }
}

/// A client that stops reading while 50,000 events are appended, then reads them all in order.
/// The server holds no queue for it: its reader blocks on a 64-message channel once HTTP/2 flow
/// control stops the transport, and resumes reading the log at its cursor when the client reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_gets_every_event_in_order_once_it_reads_again() {
    let harness = Harness::start().await;
    let mut client = harness.event_store().await;
    let mut stream = client
        .subscribe(pb::SubscribeRequest {
            start: Some(pb::subscribe_request::Start::FromEnd(pb::SubscribeFromEnd {})),
            filter: None,
            omit_typed_body: false,
        })
        .await
        .unwrap()
        .into_inner();
    match next_message(&mut stream).await {
        Message::CaughtUp(at) => assert_eq!(at.position, 0),
        other => panic!("expected caught up: {other:?}"),
    }
    // Not reading while the log grows by 50,000 events.
    let head = within("appending", append_many(&harness.log, "flood", 50_000, "t")).await;
    assert_eq!(head, 50_000);
    let mut expected = 1;
    while expected <= 50_000 {
        match next_message(&mut stream).await {
            Message::Event(event) => {
                assert_eq!(event.position, expected);
                expected += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_open_subscriptions_completes_and_ends_their_streams() {
    let Harness {
        dir: _dir,
        log,
        server,
    } = Harness::start().await;
    append_many(&log, "s", 10, "t").await;
    let channel = tonic::transport::Channel::from_shared(server.uri())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = pb::event_store_service_client::EventStoreServiceClient::new(channel);
    let mut streams = Vec::new();
    for filter in [None, tags(&["t"]), tags(&["none"])] {
        let mut stream = client
            .subscribe(subscribe_from_start(filter))
            .await
            .unwrap()
            .into_inner();
        while !matches!(next_message(&mut stream).await, Message::CaughtUp(_)) {}
        streams.push(stream);
    }
    within("graceful shutdown", server.shutdown()).await.unwrap();
    for mut stream in streams {
        // Ends with UNAVAILABLE, never cleanly; never hangs.
        match within("stream end", stream.message()).await {
            Ok(None) => panic!("a subscription cut short by a shutdown ended cleanly"),
            Ok(Some(message)) => panic!("unexpected message after shutdown: {message:?}"),
            Err(status) => {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                assert_eq!(status.message(), "the server is shutting down");
            }
        }
    }
}

/// `omit_typed_body` on ReadStream, ReadAll and Subscribe (catch-up from the log, then live from
/// the shared feed): the same envelopes as without it, except that the typed event is absent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn omit_typed_body_returns_every_raw_field_without_the_typed_event() {
    let harness = Harness::start().await;
    append_many(&harness.log, "party-LBY", 3, "party:LBY").await;
    append_unknown(&harness.log, 1, None).await;
    let mut client = harness.event_store().await;
    let without_typed = |envelopes: &[pb::EventEnvelope]| -> Vec<pb::EventEnvelope> {
        envelopes
            .iter()
            .map(|envelope| pb::EventEnvelope {
                event: None,
                ..envelope.clone()
            })
            .collect()
    };

    let read_stream = |omit_typed_body| pb::ReadStreamRequest {
        stream_id: "party-LBY".into(),
        omit_typed_body,
        ..Default::default()
    };
    let typed = client.read_stream(read_stream(false)).await.unwrap().into_inner();
    let raw = client.read_stream(read_stream(true)).await.unwrap().into_inner();
    assert_eq!(typed.events.len(), 3);
    assert!(typed.events.iter().all(|envelope| envelope.event.is_some()));
    assert_eq!(raw.events, without_typed(&typed.events));
    assert_eq!(
        (raw.stream_version, raw.next_version, raw.reached_end),
        (typed.stream_version, typed.next_version, typed.reached_end)
    );

    let typed_all = client
        .read_all(pb::ReadAllRequest::default())
        .await
        .unwrap()
        .into_inner();
    let raw_all = client
        .read_all(pb::ReadAllRequest {
            omit_typed_body: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(typed_all.events.len(), 4);
    assert_eq!(raw_all.events, without_typed(&typed_all.events));
    assert_eq!(
        (raw_all.next_position, raw_all.head, raw_all.reached_end),
        (typed_all.next_position, typed_all.head, typed_all.reached_end)
    );

    // Subscribe: the catch-up (read from the log), then a live event (from the shared feed,
    // which also serves a typed subscriber at the same time).
    let mut raw_stream = client
        .subscribe(pb::SubscribeRequest {
            omit_typed_body: true,
            ..subscribe_from_start(None)
        })
        .await
        .unwrap()
        .into_inner();
    let mut typed_stream = client
        .subscribe(subscribe_from_start(None))
        .await
        .unwrap()
        .into_inner();
    let mut received = Vec::new();
    loop {
        match next_message(&mut raw_stream).await {
            Message::Event(event) => received.push(event),
            Message::CaughtUp(at) => {
                assert_eq!(at.position, 4);
                break;
            }
            Message::Checkpoint(checkpoint) => panic!("unexpected {checkpoint:?}"),
        }
    }
    assert_eq!(received, without_typed(&typed_all.events));
    while !matches!(next_message(&mut typed_stream).await, Message::CaughtUp(_)) {}
    append_many(&harness.log, "party-LBY", 1, "party:LBY").await;
    let Message::Event(live_typed) = next_message(&mut typed_stream).await else {
        panic!("expected the live event");
    };
    let Message::Event(live_raw) = next_message(&mut raw_stream).await else {
        panic!("expected the live event");
    };
    assert_eq!(live_typed.position, 5);
    assert!(live_typed.event.is_some());
    assert_eq!(live_raw, without_typed(&[live_typed])[0]);
}

/// A store served in-process (the service's own methods, no transport), with its shutdown
/// sender and log; the directory lives as long as this.
struct DirectStore {
    _dir: tempfile::TempDir,
    log: Log,
    store: EventStore,
    _shutdown: watch::Sender<bool>,
}

impl DirectStore {
    fn open() -> DirectStore {
        let dir = tempfile::tempdir().expect("temp dir");
        let log =
            Log::open(LogConfig::new(dir.path()).cache_capacity_bytes(32 * 1024 * 1024)).expect("open log");
        let (shutdown, stop) = watch::channel(false);
        let store = EventStore::new(log.clone(), 64, stop);
        DirectStore {
            _dir: dir,
            log,
            store,
            _shutdown: shutdown,
        }
    }

    async fn subscribe(&self, filter: Option<pb::EventFilter>) -> DirectStream {
        let request = pb::SubscribeRequest {
            start: Some(pb::subscribe_request::Start::FromEnd(pb::SubscribeFromEnd {})),
            filter,
            omit_typed_body: false,
        };
        let mut stream = EventStoreService::subscribe(&self.store, tonic::Request::new(request))
            .await
            .unwrap()
            .into_inner();
        assert!(matches!(direct_next(&mut stream).await, Message::CaughtUp(_)));
        stream
    }
}

type DirectStream = <EventStore as EventStoreService>::SubscribeStream;

async fn direct_next(stream: &mut DirectStream) -> Message {
    within("next subscription message", stream.next())
        .await
        .expect("stream still open")
        .expect("no error")
        .message
        .expect("message set")
}

/// Reads events (skipping checkpoints, which must not go backwards) until `last`; returns their
/// positions.
async fn direct_events_until(stream: &mut DirectStream, last: u64) -> Vec<u64> {
    let mut positions = Vec::new();
    let mut reported = 0;
    while positions.last() != Some(&last) {
        match direct_next(stream).await {
            Message::Event(event) => {
                assert!(event.event.is_some(), "typed event expected");
                assert!(event.position > reported);
                reported = event.position;
                positions.push(event.position);
            }
            Message::Checkpoint(checkpoint) => {
                assert!(checkpoint.position >= reported);
                reported = checkpoint.position;
            }
            Message::CaughtUp(at) => panic!("CaughtUp twice: {at:?}"),
        }
    }
    positions
}

/// Eight live subscribers (two filtered) while a writer appends: each receives every matching
/// event exactly once and in order, all from the shared feed, which converted each event once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_live_subscribers_get_every_event_once_in_order_from_one_shared_conversion() {
    let direct = DirectStore::open();
    let mut readers = Vec::new();
    for index in 0..8 {
        let filter = (index >= 6).then(|| tags(&["b"])).flatten();
        let mut stream = direct.subscribe(filter.clone()).await;
        readers.push(tokio::spawn(async move {
            (filter.is_some(), direct_events_until(&mut stream, 2_000).await)
        }));
    }
    // 40 appends of 50 events, tagged a, b, a, b, ...
    for batch in 0..40 {
        let tag = if batch % 2 == 0 { "a" } else { "b" };
        append_many(&direct.log, "live", 50, tag).await;
    }
    let everything: Vec<u64> = (1..=2_000).collect();
    let only_b: Vec<u64> = everything
        .iter()
        .copied()
        .filter(|position| (position - 1) / 50 % 2 == 1)
        .collect();
    for reader in readers {
        let (filtered, positions) = within("reader", reader).await.unwrap();
        assert_eq!(&positions, if filtered { &only_b } else { &everything });
    }
    let stats = direct.store.live_feed_stats();
    assert_eq!(stats.converted, 2_000, "each event converted once: {stats:?}");
    assert_eq!(stats.taken_from_feed, 8 * 2_000, "{stats:?}");
    assert_eq!(stats.read_from_log, 0, "{stats:?}");
}

/// A subscriber that stops reading while the log grows by three rings' worth: the feed moves on
/// without it (a fast subscriber keeps receiving from the ring), and once it reads again it gets
/// every event exactly once and in order, reading the log itself for what the ring dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_lagging_beyond_the_ring_reads_the_log_and_misses_nothing() {
    let direct = DirectStore::open();
    let mut slow = direct.subscribe(None).await;
    let mut fast = direct.subscribe(None).await;
    let batches = (3 * LIVE_FEED_EVENTS as u64) / 500 + 1;
    let mut fast_positions = Vec::new();
    for _ in 0..batches {
        // In step with the fast reader, so it never falls behind the ring itself.
        let last = append_many(&direct.log, "flood", 500, "t").await;
        fast_positions.extend(direct_events_until(&mut fast, last).await);
    }
    let last = batches * 500;
    let everything: Vec<u64> = (1..=last).collect();
    assert_eq!(fast_positions, everything);
    let before = direct.store.live_feed_stats();
    assert_eq!(before.converted, last, "{before:?}");
    assert_eq!(before.read_from_log, 0, "{before:?}");
    // The slow subscriber never held the ring back; now it catches up from the log.
    assert_eq!(direct_events_until(&mut slow, last).await, everything);
    let after = direct.store.live_feed_stats();
    assert!(after.read_from_log > 0, "fell back to the log: {after:?}");
    assert_eq!(after.converted, last, "{after:?}");
    // The fast one is still live and in step.
    let next = append_many(&direct.log, "flood", 1, "t").await;
    assert_eq!(direct_events_until(&mut fast, next).await, [next]);
    assert_eq!(direct_events_until(&mut slow, next).await, [next]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_shutdown_an_open_subscription_ends_unavailable_and_a_new_one_is_refused() {
    use dipledger::api::server::ShutdownGate;
    use tonic_health::pb::health_check_response::ServingStatus;
    // The gate holds the transport open once the streams have ended, so that the new call
    // below reaches the service rather than racing with tonic's own refusal.
    let gate = ShutdownGate::default();
    let harness = Harness::start_with(ServerOptions {
        shutdown_gate: Some(gate.clone()),
        ..ServerOptions::default()
    })
    .await;
    append_many(&harness.log, "s", 10, "t").await;
    let mut open = harness
        .event_store()
        .await
        .subscribe(subscribe_from_start(None))
        .await
        .unwrap()
        .into_inner();
    while !matches!(next_message(&mut open).await, Message::CaughtUp(_)) {}
    let mut watch = crate::support::api::watch_health(&harness).await;
    let serving = within("serving", watch.message()).await.unwrap().unwrap();
    assert_eq!(serving.status, ServingStatus::Serving as i32);
    let mut late = harness.event_store().await;
    let stopped = tokio::spawn(harness.server.shutdown());
    // The server's own word that shutdown has begun.
    let next = within("not serving", watch.message()).await.unwrap().unwrap();
    assert_eq!(next.status, ServingStatus::NotServing as i32);
    // The open subscription is told, never ended cleanly.
    let status = match within("the open subscription's end", open.message()).await {
        Err(status) => status,
        Ok(None) => panic!("a subscription cut short by a shutdown ended cleanly"),
        Ok(Some(message)) => panic!("unexpected message after shutdown: {message:?}"),
    };
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(status.message(), "the server is shutting down");
    // A new subscription is refused by the service, UNAVAILABLE.
    match within(
        "a subscription asked for during shutdown",
        late.subscribe(subscribe_from_start(None)),
    )
    .await
    {
        Ok(_) => panic!("a subscription was opened during shutdown"),
        Err(status) => {
            assert_eq!(status.code(), Code::Unavailable, "{status:?}");
            assert_eq!(status.message(), "the server is shutting down");
        }
    }
    gate.open();
    drop((open, watch));
    within("shutdown", stopped).await.unwrap().unwrap();
}
