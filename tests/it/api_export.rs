//! EventStoreService.Export against a real server: the online export equals the offline one
//! byte for byte in every format (and for a range and a filter), `restore` takes it, bad
//! requests name their field, at most MAX_EXPORTS run at once, and a shutdown ends an export
//! with UNAVAILABLE rather than a clean end.

use std::time::Instant;

use crate::support::api::*;
use dipledger::analyst::{self, ExportFormat};
use dipledger::api::export::MAX_EXPORTS;
use dipledger::api::pb;
use dipledger::ledger::{CommandEnvelope, Ledger};
use dipledger::log::backup::{export_jsonl, restore_jsonl, ExportSelection};
use dipledger::log::{EventFilter, Log, LogConfig};
use tonic::Code;
use uuid::Uuid;

/// The sample news report recorded through the ledger of `log`.
async fn record_news_report(log: &Log) {
    let ledger = Ledger::new(log.clone());
    for command in dipledger::sample::news_report_commands() {
        ledger
            .handle(CommandEnvelope::new(Uuid::now_v7(), command, "export-test"))
            .await
            .expect("recorded");
    }
}

/// What the offline export writes for `format` and `selection` over `log`.
fn offline(log: &Log, format: ExportFormat, selection: &ExportSelection) -> Vec<u8> {
    let mut out = Vec::new();
    analyst::write_export(log, format, selection, &mut out, &mut |_, _| {}).expect("offline export");
    out
}

fn request(format: pb::ExportFormat) -> pb::ExportRequest {
    pb::ExportRequest {
        format: format as i32,
        ..Default::default()
    }
}

/// Every chunk of an export concatenated, or the status it ended with.
async fn online(harness: &Harness, request: pb::ExportRequest) -> Result<Vec<u8>, tonic::Status> {
    let mut store = harness.event_store().await;
    let mut chunks = within("export", store.export(request)).await?.into_inner();
    let mut bytes = Vec::new();
    while let Some(chunk) = within("export chunk", chunks.message()).await? {
        assert!(chunk.data.len() <= dipledger::api::export::EXPORT_CHUNK_BYTES);
        bytes.extend_from_slice(&chunk.data);
    }
    Ok(bytes)
}

const FORMATS: [(pb::ExportFormat, ExportFormat); 3] = [
    (pb::ExportFormat::Jsonl, ExportFormat::Jsonl),
    (
        pb::ExportFormat::CameoTsv,
        ExportFormat::Coded(analyst::AnalystFormat::CameoTsv),
    ),
    (
        pb::ExportFormat::Plover,
        ExportFormat::Coded(analyst::AnalystFormat::PloverJsonl),
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_online_export_equals_the_offline_one_byte_for_byte() {
    let harness = Harness::start().await;
    record_news_report(&harness.log).await;
    let everything = ExportSelection::everything(&harness.log);
    for (wire, format) in FORMATS {
        let exported = online(&harness, request(wire)).await.expect("online export");
        let expected = offline(&harness.log, format, &everything);
        assert!(!expected.is_empty(), "{format:?}");
        assert_eq!(exported, expected, "{format:?}");
    }
    // A range and a filter: the offline selection's bytes too.
    let selection = ExportSelection {
        from: 3,
        to: 9,
        filter: EventFilter {
            tags: vec!["party:LBY".into()],
            ..EventFilter::default()
        },
    };
    for (wire, format) in FORMATS {
        let exported = online(
            &harness,
            pb::ExportRequest {
                format: wire as i32,
                from_position: Some(3),
                to_position: Some(9),
                filter: Some(pb::EventFilter {
                    tags: vec!["party:LBY".into()],
                    ..Default::default()
                }),
            },
        )
        .await
        .expect("online export of a range");
        assert_eq!(exported, offline(&harness.log, format, &selection), "{format:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_takes_the_online_export_and_gives_back_the_same_log() {
    let harness = Harness::start().await;
    record_news_report(&harness.log).await;
    let exported = online(&harness, request(pb::ExportFormat::Jsonl))
        .await
        .expect("online export");
    let restored_dir = tempfile::tempdir().unwrap();
    let target = restored_dir.path().join("restored");
    let events = restore_jsonl(&mut exported.as_slice(), &target, &mut |_| {}).expect("restore");
    assert_eq!(events, harness.log.head());
    let restored = Log::open(LogConfig::new(&target)).unwrap();
    let mut again = Vec::new();
    export_jsonl(&restored, &mut again, &mut |_, _| {}).unwrap();
    assert_eq!(again, exported, "the restored log exports the same bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_export_request_names_its_field() {
    let harness = Harness::start().await;
    record_news_report(&harness.log).await;
    let head = harness.log.head();
    let cases = [
        (pb::ExportRequest::default(), Code::InvalidArgument, "format"),
        (
            pb::ExportRequest {
                from_position: Some(0),
                ..request(pb::ExportFormat::Jsonl)
            },
            Code::InvalidArgument,
            "from_position",
        ),
        (
            pb::ExportRequest {
                from_position: Some(5),
                to_position: Some(4),
                ..request(pb::ExportFormat::Jsonl)
            },
            Code::InvalidArgument,
            "from_position",
        ),
        (
            pb::ExportRequest {
                filter: Some(pb::EventFilter {
                    tags: vec![String::new()],
                    ..Default::default()
                }),
                ..request(pb::ExportFormat::Jsonl)
            },
            Code::InvalidArgument,
            "filter.tags[0]",
        ),
    ];
    for (request, code, field) in cases {
        let status = online(&harness, request).await.expect_err("refused");
        assert_eq!(status.code(), code, "{status:?}");
        assert_eq!(crate::support::commands::fields(&status), vec![field.to_owned()]);
    }
    let past = online(
        &harness,
        pb::ExportRequest {
            to_position: Some(head + 1),
            ..request(pb::ExportFormat::Jsonl)
        },
    )
    .await
    .expect_err("past the head");
    assert_eq!(past.code(), Code::OutOfRange, "{past:?}");
    assert!(past.message().contains(&(head + 1).to_string()), "{past:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_max_exports_run_at_once() {
    let harness = Harness::start().await;
    // Large enough that an export nobody reads cannot finish into the buffers.
    append_many(&harness.log, "party-LBY", 20_000, "t").await;
    // Each export on its own connection: exports nobody reads fill their connection's HTTP/2
    // window, which would hold back the first chunk of any other export sharing it.
    let mut running = Vec::new();
    for _ in 0..MAX_EXPORTS {
        let mut store = harness.event_store().await;
        let mut chunks = within("export", store.export(request(pb::ExportFormat::Jsonl)))
            .await
            .expect("an export within the limit")
            .into_inner();
        within("first chunk", chunks.message()).await.unwrap().unwrap();
        running.push(chunks);
    }
    let mut store = harness.event_store().await;
    let refused = within("one more", store.export(request(pb::ExportFormat::Jsonl)))
        .await
        .expect_err("over the limit");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert_eq!(
        refused.message(),
        format!("too many exports running (the limit is {MAX_EXPORTS}); retry later")
    );
    // A client that goes away frees its place: a new export starts once the server noticed.
    running.pop();
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match within("export", store.export(request(pb::ExportFormat::Jsonl))).await {
            Ok(_) => break,
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                assert!(Instant::now() < deadline, "no place freed within {TIMEOUT:?}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_ends_an_export_with_unavailable_not_a_clean_end() {
    let harness = Harness::start().await;
    append_many(&harness.log, "party-LBY", 20_000, "t").await;
    let mut store = harness.event_store().await;
    let mut chunks = within("export", store.export(request(pb::ExportFormat::Jsonl)))
        .await
        .unwrap()
        .into_inner();
    within("first chunk", chunks.message()).await.unwrap().unwrap();
    let mut watch = crate::support::api::watch_health(&harness).await;
    within("serving", watch.message()).await.unwrap().unwrap();
    let stopped = tokio::spawn(harness.server.shutdown());
    // Shutdown has started (while the export, unread, cannot have finished).
    let next = within("not serving", watch.message()).await.unwrap().unwrap();
    assert_eq!(
        next.status,
        tonic_health::pb::health_check_response::ServingStatus::NotServing as i32
    );
    let status = loop {
        match within("export chunk", chunks.message()).await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("an export cut short by a shutdown ended cleanly"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(status.message(), "the server is shutting down");
    drop((chunks, watch));
    within("shutdown", stopped).await.unwrap().unwrap();
}
