//! Every named limit at its edge: exactly at the maximum accepted, one past refused with an
//! error naming the limit (and, over gRPC, its status); and statuses produced by real requests:
//! a subscription during shutdown, GetEntityHistory and ReadStream over damage.

use dipledger::api::event_store::EventStore;
use dipledger::api::pb;
use dipledger::api::pb::event_store_service_server::EventStoreService;
use dipledger::api::pb::query_service_client::QueryServiceClient;
use dipledger::domain::common::{Provenance, SourceCitation};
use dipledger::domain::party::{self, PartyDetails, PartyKind};
use dipledger::domain::DomainCommand;
use dipledger::ledger::{CommandEnvelope, Ledger, LedgerError, MAX_COMMANDS_PER_BATCH};
use dipledger::log::limits::*;
use dipledger::log::{
    AppendRequest, Direction, EventDraft, EventFilter, ExpectedVersion, Log, LogConfig, LogError,
};
use dipledger::sample::{day, news_report_commands, source_id};
use tonic::Code;
use uuid::Uuid;

use crate::support::api::{append_many, Harness};
use crate::support::log::{draft, temp_log};

fn one(event: EventDraft, recorded_by: &str) -> AppendRequest {
    AppendRequest::new(
        Uuid::now_v7(),
        "s-1",
        ExpectedVersion::Any,
        recorded_by,
        vec![event],
    )
}

fn invalid_field(result: Result<impl std::fmt::Debug, LogError>) -> String {
    match result {
        Err(LogError::Invalid { field, reason }) => {
            assert!(reason.contains("over the limit of"), "{reason}");
            field
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn event_type_tag_and_principal_lengths_are_accepted_at_their_maximum_and_refused_one_past() {
    let (_dir, log) = temp_log();
    let mut at_max = draft(1, 32);
    at_max.event_type = "T".repeat(MAX_EVENT_TYPE_BYTES);
    at_max.tags = vec!["g".repeat(MAX_TAG_BYTES)];
    let written = log
        .append_blocking(one(at_max, &"p".repeat(MAX_PRINCIPAL_BYTES)))
        .expect("every length at its maximum");
    let event = log.read_event(written.last_position()).expect("read");
    assert_eq!(event.envelope().event_type.len(), MAX_EVENT_TYPE_BYTES);
    assert_eq!(event.envelope().tags[0].len(), MAX_TAG_BYTES);
    assert_eq!(event.envelope().recorded_by.len(), MAX_PRINCIPAL_BYTES);

    let head = log.head();
    let mut long_type = draft(2, 32);
    long_type.event_type = "T".repeat(MAX_EVENT_TYPE_BYTES + 1);
    assert_eq!(
        invalid_field(log.append_blocking(one(long_type, "p"))),
        "events[0].event_type"
    );
    let mut long_tag = draft(3, 32);
    long_tag.tags = vec!["ok".into(), "g".repeat(MAX_TAG_BYTES + 1)];
    assert_eq!(
        invalid_field(log.append_blocking(one(long_tag, "p"))),
        "events[0].tags[1]"
    );
    assert_eq!(
        invalid_field(log.append_blocking(one(draft(4, 32), &"p".repeat(MAX_PRINCIPAL_BYTES + 1)))),
        "recorded_by"
    );
    assert_eq!(log.head(), head, "a refused append moved the head");
}

#[test]
fn stream_id_length_and_tags_per_event_are_accepted_at_their_maximum_and_refused_one_past() {
    let (_dir, log) = temp_log();
    let stream = "s".repeat(MAX_STREAM_ID_BYTES);
    let mut tagged = draft(1, 32);
    tagged.tags = (0..MAX_TAGS_PER_EVENT).map(|i| format!("t:{i}")).collect();
    let written = log
        .append_blocking(AppendRequest::new(
            Uuid::now_v7(),
            stream.clone(),
            ExpectedVersion::Any,
            "tester",
            vec![tagged.clone()],
        ))
        .expect("a stream id and tags at their maximum");
    let event = log.read_event(written.last_position()).expect("read");
    assert_eq!(event.envelope().stream_id, stream);
    assert_eq!(event.envelope().tags.len(), MAX_TAGS_PER_EVENT);

    let head = log.head();
    let long_stream = AppendRequest::new(
        Uuid::now_v7(),
        "s".repeat(MAX_STREAM_ID_BYTES + 1),
        ExpectedVersion::Any,
        "tester",
        vec![draft(2, 32)],
    );
    assert_eq!(invalid_field(log.append_blocking(long_stream)), "stream_id");
    tagged.tags.push("t:one-past".into());
    match log.append_blocking(one(tagged, "tester")) {
        Err(LogError::TooLarge { limit, actual, .. }) => {
            assert_eq!((actual, limit), (MAX_TAGS_PER_EVENT + 1, MAX_TAGS_PER_EVENT))
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_eq!(log.head(), head, "a refused append moved the head");
}

#[test]
fn payload_bytes_per_append_and_per_transaction_are_accepted_at_the_maximum_and_refused_one_past() {
    let (_dir, log) = temp_log();
    // 64 events of 64 KiB: exactly MAX_APPEND_PAYLOAD_BYTES in one request.
    let full = MAX_APPEND_PAYLOAD_BYTES / MAX_EVENT_PAYLOAD_BYTES;
    assert_eq!(full * MAX_EVENT_PAYLOAD_BYTES, MAX_APPEND_PAYLOAD_BYTES);
    let events = |extra: usize| {
        let mut events: Vec<_> = (0..full as u64)
            .map(|i| draft(i, MAX_EVENT_PAYLOAD_BYTES))
            .collect();
        if extra > 0 {
            events.push(draft(99, extra));
        }
        events
    };
    let at_max = AppendRequest::new(Uuid::now_v7(), "s-1", ExpectedVersion::Any, "p", events(0));
    assert_eq!(
        log.append_blocking(at_max)
            .expect("at the maximum")
            .last_position(),
        full as u64
    );
    let over = AppendRequest::new(Uuid::now_v7(), "s-1", ExpectedVersion::Any, "p", events(1));
    match log.append_blocking(over) {
        Err(LogError::TooLarge { actual, limit, .. }) => {
            assert_eq!(
                (actual, limit),
                (MAX_APPEND_PAYLOAD_BYTES + 1, MAX_APPEND_PAYLOAD_BYTES)
            )
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // The same bound over a transaction of two requests of half the maximum each.
    let half = |extra: usize| {
        let mut events: Vec<_> = (0..full as u64 / 2)
            .map(|i| draft(i, MAX_EVENT_PAYLOAD_BYTES))
            .collect();
        if extra > 0 {
            events.push(draft(99, extra));
        }
        AppendRequest::new(Uuid::now_v7(), "s-2", ExpectedVersion::Any, "p", events)
    };
    log.append_transaction_blocking(vec![half(0), half(0)])
        .expect("a transaction at the maximum");
    let head = log.head();
    match log.append_transaction_blocking(vec![half(0), half(1)]) {
        Err(LogError::TooLarge { what, actual, limit }) => {
            assert_eq!(what, "payload bytes in one transaction");
            assert_eq!(
                (actual, limit),
                (MAX_APPEND_PAYLOAD_BYTES + 1, MAX_APPEND_PAYLOAD_BYTES)
            );
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_eq!(log.head(), head);
}

#[test]
fn events_per_commit_are_accepted_at_the_maximum_and_refused_one_past() {
    // Default journal segments: a frame of MAX_EVENTS_PER_COMMIT small events needs ~12 MiB.
    let dir = tempfile::tempdir().expect("temp dir");
    let log = Log::open(LogConfig::new(dir.path()).cache_capacity_bytes(32 * 1024 * 1024)).expect("open");
    let requests = |count: usize| -> Vec<AppendRequest> {
        let mut left = count;
        let mut requests = Vec::new();
        while left > 0 {
            let now = left.min(MAX_EVENTS_PER_APPEND);
            let events = (0..now as u64).map(|i| draft(i, 8)).collect();
            requests.push(AppendRequest::new(
                Uuid::now_v7(),
                "s-1",
                ExpectedVersion::Any,
                "p",
                events,
            ));
            left -= now;
        }
        requests
    };
    let results = log
        .append_transaction_blocking(requests(MAX_EVENTS_PER_COMMIT))
        .expect("a transaction of exactly MAX_EVENTS_PER_COMMIT events");
    assert_eq!(
        results.last().unwrap().last_position(),
        MAX_EVENTS_PER_COMMIT as u64
    );
    match log.append_transaction_blocking(requests(MAX_EVENTS_PER_COMMIT + 1)) {
        Err(LogError::TooLarge { what, actual, limit }) => {
            assert_eq!(what, "events in one transaction");
            assert_eq!(
                (actual, limit),
                (MAX_EVENTS_PER_COMMIT + 1, MAX_EVENTS_PER_COMMIT)
            );
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_eq!(log.head(), MAX_EVENTS_PER_COMMIT as u64);
}

#[test]
fn a_filtered_page_scans_at_most_max_scanned_per_page_records() {
    let (_dir, log) = temp_log();
    let nothing = EventFilter {
        event_types: vec!["NoSuchType".into()],
        ..Default::default()
    };
    let fill = |until: u64| {
        while log.head() < until {
            let count = (until - log.head()).min(MAX_EVENTS_PER_APPEND as u64) as usize;
            let events = (0..count as u64).map(|i| draft(i, 8)).collect();
            log.append_blocking(AppendRequest::new(
                Uuid::now_v7(),
                "s-1",
                ExpectedVersion::Any,
                "p",
                events,
            ))
            .expect("append");
        }
    };
    // Exactly MAX_SCANNED_PER_PAGE records: one page examines them all and reaches the end.
    fill(MAX_SCANNED_PER_PAGE as u64);
    let page = log
        .read_all(1, Direction::Forwards, MAX_READ_PAGE_EVENTS, &nothing)
        .expect("page");
    assert!(page.events.is_empty());
    assert!(page.reached_end);
    assert_eq!(page.next_position, MAX_SCANNED_PER_PAGE as u64 + 1);
    // One more: the page stops after MAX_SCANNED_PER_PAGE, not at the end; the next one ends.
    fill(MAX_SCANNED_PER_PAGE as u64 + 1);
    let page = log
        .read_all(1, Direction::Forwards, MAX_READ_PAGE_EVENTS, &nothing)
        .expect("page");
    assert!(page.events.is_empty());
    assert!(!page.reached_end, "a page scanned past MAX_SCANNED_PER_PAGE");
    assert_eq!(page.next_position, MAX_SCANNED_PER_PAGE as u64 + 1);
    let last = log
        .read_all(
            page.next_position,
            Direction::Forwards,
            MAX_READ_PAGE_EVENTS,
            &nothing,
        )
        .expect("page");
    assert!(last.reached_end);
    assert_eq!(last.next_position, MAX_SCANNED_PER_PAGE as u64 + 2);
}

fn register_party(code: &str) -> CommandEnvelope {
    let command = DomainCommand::Party(party::Command::RegisterParty {
        code: code.into(),
        details: PartyDetails {
            kind: PartyKind::State,
            name: format!("Party {code}"),
            iso_alpha2: None,
            iso_alpha3: None,
            wikidata_qid: None,
            cameo_code: None,
        },
        provenance: Provenance {
            occurred_at: day(0),
            sources: vec![SourceCitation {
                source_id: source_id(),
                quote: None,
            }],
        },
    });
    CommandEnvelope::new(Uuid::now_v7(), command, "limits@test")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_accepted_at_max_commands_per_batch_and_refused_one_past() {
    let (_dir, log) = temp_log();
    let ledger = Ledger::new(log.clone());
    let source = news_report_commands().into_iter().next().expect("the source");
    ledger
        .handle(CommandEnvelope::new(Uuid::now_v7(), source, "limits@test"))
        .await
        .expect("source");
    let batch = |prefix: char, count: usize| -> Vec<CommandEnvelope> {
        (0..count)
            .map(|i| register_party(&format!("{prefix}{i:04}")))
            .collect()
    };
    let outcomes = ledger
        .handle_batch(batch('A', MAX_COMMANDS_PER_BATCH))
        .await
        .expect("a batch of exactly MAX_COMMANDS_PER_BATCH commands");
    assert_eq!(outcomes.len(), MAX_COMMANDS_PER_BATCH);
    let head = log.head();
    assert_eq!(head, 1 + MAX_COMMANDS_PER_BATCH as u64);
    let refused = ledger.handle_batch(batch('B', MAX_COMMANDS_PER_BATCH + 1)).await;
    match &refused {
        Err(LedgerError::InvalidBatch { reason }) => assert_eq!(
            reason,
            &format!(
                "{} commands, over the limit of {MAX_COMMANDS_PER_BATCH}",
                MAX_COMMANDS_PER_BATCH + 1
            )
        ),
        other => panic!("expected InvalidBatch, got {other:?}"),
    }
    let status = dipledger::api::status::from_ledger_error(refused.unwrap_err());
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(log.head(), head, "a refused batch moved the head");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_asked_for_during_shutdown_is_unavailable() {
    let (_dir, log) = temp_log();
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let store = EventStore::new(log, 64, stopping);
    stop.send(true).expect("shutdown");
    let request = pb::SubscribeRequest {
        start: Some(pb::subscribe_request::Start::FromStart(pb::SubscribeFromStart {})),
        ..Default::default()
    };
    let status = match EventStoreService::subscribe(&store, tonic::Request::new(request)).await {
        Err(status) => status,
        Ok(_) => panic!("a subscription was opened during shutdown"),
    };
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(status.message(), "the server is shutting down");
}

/// Damages the CRC of the record at `position` (the last of its chunk) in the live tree.
fn damage_last_record_of_chunk(log: &Log, position: u64) {
    let (key, value) = log
        .raw_tree()
        .range(..=dipledger::log::keys::event_key(position))
        .next_back()
        .unwrap()
        .unwrap();
    let mut bytes = value.to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    log.raw_tree().insert(key, bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_stream_and_entity_history_over_a_damaged_record_are_data_loss_naming_it() {
    let harness = Harness::start().await;
    let last = append_many(&harness.log, "party-LBY", 5, "t").await;
    assert_eq!(last, 5);
    damage_last_record_of_chunk(&harness.log, 5);
    let mut store = harness.event_store().await;
    let status = store
        .read_stream(pb::ReadStreamRequest {
            stream_id: "party-LBY".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DataLoss, "{status:?}");
    assert_eq!(
        status.message(),
        "stored record at position 5 failed its integrity check"
    );
    let mut query = QueryServiceClient::new(harness.channel().await);
    let status = query
        .get_entity_history(pb::GetEntityHistoryRequest {
            stream_id: "party-LBY".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DataLoss, "{status:?}");
    assert_eq!(
        status.message(),
        "stored record at position 5 failed its integrity check"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_the_read_models_cannot_decode_is_data_loss_in_entity_history() {
    let harness = Harness::start().await;
    // Sound record bytes (the log's checks pass) around a payload no domain event decodes.
    let mut event = draft(1, 16);
    event.event_type = "PartyRegistered".into();
    event.payload = vec![0xFF; 16];
    harness
        .log
        .append(AppendRequest::new(
            Uuid::now_v7(),
            "party-BAD",
            ExpectedVersion::Any,
            "t",
            vec![event],
        ))
        .await
        .expect("append");
    let mut query = QueryServiceClient::new(harness.channel().await);
    let status = query
        .get_entity_history(pb::GetEntityHistoryRequest {
            stream_id: "party-BAD".into(),
            // A latest history reads at the directory's position: wait for it to have been
            // through the damaged event (it stops there), as a client reading its write would.
            options: Some(pb::ReadOptions {
                min_position: 1,
                as_of: None,
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DataLoss, "{status:?}");
    assert!(
        status
            .message()
            .starts_with("stored data a read model needs failed its checks: data loss: event at position 1: malformed PartyRegistered"),
        "{status:?}"
    );
    // Every query now answers DATA_LOSS (the runner stopped at the damage), never UNAVAILABLE.
    let status = query
        .list_parties(pb::ListPartiesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DataLoss, "{status:?}");
}

/// A log with the source of the news report, then `count` parties registered in reverse code
/// order (`P19999` ... `P00000` for 20,000): the last code in key order is registered first, at
/// position 2.
async fn parties_in_reverse(count: usize) -> (tempfile::TempDir, Log) {
    let (dir, log) = temp_log();
    let ledger = Ledger::new(log.clone());
    let source = news_report_commands().into_iter().next().expect("the source");
    ledger
        .handle(CommandEnvelope::new(Uuid::now_v7(), source, "limits@test"))
        .await
        .expect("source");
    let codes: Vec<String> = (0..count).rev().map(|i| format!("P{i:05}")).collect();
    for chunk in codes.chunks(MAX_COMMANDS_PER_BATCH) {
        ledger
            .handle_batch(chunk.iter().map(|code| register_party(code)).collect())
            .await
            .expect("batch");
    }
    (dir, log)
}

/// The codes of every page of parties as of position 2 (where only the first party registered,
/// the last in key order, exists), page by page.
fn pages_as_of_2(log: &Log) -> Vec<Vec<String>> {
    use dipledger::projections::{AsOf, PageRequest, Projections, ReadOptions};
    let projections = Projections::open_paused(log.clone()).expect("open");
    projections.catch_up().expect("catch up");
    let options = ReadOptions::latest().as_of(AsOf::Position(2));
    let mut pages = Vec::new();
    let mut token = None;
    loop {
        let page = projections
            .parties(&PageRequest { limit: 500, token }, &options)
            .expect("page");
        pages.push(page.items().iter().map(|row| row.code.clone()).collect());
        token = page.next_page_token().map(str::to_owned);
        if token.is_none() {
            return pages;
        }
        assert!(pages.len() < 10, "paging does not end");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_page_examines_at_most_max_scanned_per_page_index_entries() {
    use dipledger::projections::store::MAX_SCANNED_PER_PAGE as READ_MODEL_SCAN;
    // Exactly READ_MODEL_SCAN entries: the first page examines them all and finds the one
    // visible party in the last of them.
    let (_dir, log) = parties_in_reverse(READ_MODEL_SCAN).await;
    let last = format!("P{:05}", READ_MODEL_SCAN - 1);
    let pages = pages_as_of_2(&log);
    assert_eq!(pages[0], vec![last.clone()], "{:?}", &pages[..pages.len().min(3)]);
    assert!(pages[1..].iter().all(Vec::is_empty));
    // One more: the first page stops after READ_MODEL_SCAN entries, empty, with a token; the
    // next one finds it.
    let (_dir, log) = parties_in_reverse(READ_MODEL_SCAN + 1).await;
    let last = format!("P{:05}", READ_MODEL_SCAN);
    let pages = pages_as_of_2(&log);
    assert_eq!(pages.len(), 2, "{pages:?}");
    assert!(
        pages[0].is_empty(),
        "a page examined more than {READ_MODEL_SCAN} entries"
    );
    assert_eq!(pages[1], vec![last]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_lists_are_accepted_at_max_filter_entries_and_refused_one_past() {
    use dipledger::api::convert::MAX_FILTER_ENTRIES;
    let harness = Harness::start().await;
    append_many(&harness.log, "party-LBY", 3, "t").await;
    let mut store = harness.event_store().await;
    let filter = |count: usize| pb::EventFilter {
        event_types: (0..count).map(|i| format!("Type{i}")).collect(),
        stream_prefixes: (0..count).map(|i| format!("prefix-{i}")).collect(),
        tags: (0..count).map(|i| format!("tag:{i}")).collect(),
    };
    let page = store
        .read_all(pb::ReadAllRequest {
            filter: Some(filter(MAX_FILTER_ENTRIES)),
            ..Default::default()
        })
        .await
        .expect("every list at MAX_FILTER_ENTRIES")
        .into_inner();
    assert!(page.events.is_empty());
    let status = store
        .read_all(pb::ReadAllRequest {
            filter: Some(filter(MAX_FILTER_ENTRIES + 1)),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(
        crate::support::commands::fields(&status),
        vec!["filter.event_types", "filter.stream_prefixes", "filter.tags"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn party_codes_are_accepted_at_both_ends_of_their_length_and_refused_one_past() {
    use dipledger::domain::common::PARTY_CODE_LEN;
    let harness = Harness::start().await;
    let (mut client, source) = crate::support::commands::seeded(&harness).await;
    for length in [*PARTY_CODE_LEN.start(), *PARTY_CODE_LEN.end()] {
        let code = "Q".repeat(length);
        client
            .register_party(crate::support::commands::register_party(&code, source))
            .await
            .unwrap_or_else(|status| panic!("{length} characters refused: {status:?}"));
    }
    let head = harness.log.head();
    for length in [*PARTY_CODE_LEN.start() - 1, *PARTY_CODE_LEN.end() + 1] {
        let code = "R".repeat(length);
        let status = client
            .register_party(crate::support::commands::register_party(&code, source))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{length}: {status:?}");
        assert_eq!(crate::support::commands::fields(&status), vec!["code"]);
    }
    assert_eq!(harness.log.head(), head);
}
