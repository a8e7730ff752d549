//! The Prometheus endpoint: scraped over HTTP and parsed; every metric has the name and type
//! docs/operations.md gives it (and the table lists nothing the server lacks); the figures
//! follow what the server did (requests by method and status, head, read-model positions, open
//! subscriptions, bytes on disk, RSS); anything but `GET /metrics` is 404.

use std::collections::BTreeMap;

use crate::support::api::*;
use dipledger::api::pb;
use dipledger::api::server::ServerOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.1 request to `address`; the status line and the body.
async fn http_get(address: std::net::SocketAddr, path: &str) -> (String, String) {
    let mut stream = within("connect", tokio::net::TcpStream::connect(address))
        .await
        .unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    within("response", stream.read_to_string(&mut response))
        .await
        .unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

/// A parsed scrape: families by name with their type, and samples by name{labels}.
struct Scrape {
    types: BTreeMap<String, String>,
    samples: BTreeMap<String, f64>,
}

fn parse(text: &str) -> Scrape {
    let mut scrape = Scrape {
        types: BTreeMap::new(),
        samples: BTreeMap::new(),
    };
    assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name type");
            scrape.types.insert(name.to_owned(), kind.to_owned());
        } else if !line.starts_with('#') {
            let (series, value) = line.rsplit_once(' ').expect("a sample: series value");
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("a number: {line}"));
            scrape.samples.insert(series.to_owned(), value);
        }
    }
    scrape
}

/// The metrics table of docs/operations.md: (name as scraped, type).
fn documented() -> Vec<(String, String)> {
    let operations = include_str!("../../docs/operations.md");
    let table = operations
        .split("| metric | type | labels | what |")
        .nth(1)
        .expect("the metrics table");
    table
        .lines()
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            (cells[1].trim_matches('`').to_owned(), cells[2].to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_endpoint_serves_every_documented_metric_with_its_type() {
    let harness = Harness::start_with(ServerOptions {
        metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..ServerOptions::default()
    })
    .await;
    let address = harness.server.metrics_addr().expect("metrics on");
    append_many(&harness.log, "party-LBY", 7, "t").await;
    // Two reads, one refused, and a subscription left open.
    let mut store = harness.event_store().await;
    store.read_all(pb::ReadAllRequest::default()).await.unwrap();
    store.read_all(pb::ReadAllRequest::default()).await.unwrap();
    let refused = store
        .read_stream(pb::ReadStreamRequest {
            stream_id: "party-NONE".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::NotFound);
    let mut subscription = store
        .subscribe(pb::SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner();
    // The subscription caught up and stays open.
    loop {
        if let pb::subscribe_response::Message::CaughtUp(_) = next_message(&mut subscription).await {
            break;
        }
    }

    let (status, body) = http_get(address, "/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let scrape = parse(&body);
    // Names and types as documented, and nothing undocumented.
    let mut expected = BTreeMap::new();
    for (name, kind) in documented() {
        let family = match kind.as_str() {
            "counter" => name
                .strip_suffix("_total")
                .expect("a counter ends in _total")
                .to_owned(),
            _ => name.clone(),
        };
        expected.insert(family, kind);
    }
    assert_eq!(scrape.types, expected);

    let sample = |series: &str| {
        *scrape
            .samples
            .get(series)
            .unwrap_or_else(|| panic!("{series} missing from {:#?}", scrape.samples.keys()))
    };
    let read_all = "/dipledger.v1.EventStoreService/ReadAll";
    assert_eq!(
        sample(&format!(
            "dipledger_rpc_requests_total{{method=\"{read_all}\",status=\"OK\"}}"
        )),
        2.0
    );
    assert_eq!(
        sample("dipledger_rpc_requests_total{method=\"/dipledger.v1.EventStoreService/ReadStream\",status=\"NOT_FOUND\"}"),
        1.0
    );
    assert_eq!(
        sample(&format!(
            "dipledger_rpc_latency_seconds_count{{method=\"{read_all}\"}}"
        )),
        2.0
    );
    assert_eq!(
        sample(&format!(
            "dipledger_rpc_latency_seconds_bucket{{le=\"+Inf\",method=\"{read_all}\"}}"
        )),
        2.0
    );
    assert_eq!(sample("dipledger_log_head_position"), 7.0);
    assert_eq!(sample("dipledger_log_events_total"), 7.0);
    assert!(sample("dipledger_journal_fsyncs_total") >= 1.0);
    assert_eq!(sample("dipledger_subscriptions_open"), 1.0);
    assert_eq!(sample("dipledger_exports_running"), 0.0);
    assert!(sample("dipledger_journal_bytes") > 0.0);
    assert!(sample("dipledger_sled_bytes{database=\"log\"}") > 0.0);
    assert!(sample("process_resident_memory_bytes") > 1e6);
    for name in ["meetings", "commitments", "relations", "officials", "directory"] {
        let position = sample(&format!("dipledger_read_model_position{{read_model=\"{name}\"}}"));
        let lag = sample(&format!(
            "dipledger_read_model_lag_events{{read_model=\"{name}\"}}"
        ));
        assert_eq!(position + lag, 7.0, "{name}");
    }

    let (status, _) = http_get(address, "/other").await;
    assert_eq!(status, "HTTP/1.1 404 Not Found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_metrics_endpoint_unless_asked_for() {
    let harness = Harness::start().await;
    assert_eq!(harness.server.metrics_addr(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_beyond_the_limit_are_closed_unanswered_and_made_up_methods_are_one_series() {
    use dipledger::api::metrics::MAX_SCRAPE_CONNECTIONS;
    let harness = Harness::start_with(ServerOptions {
        metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..ServerOptions::default()
    })
    .await;
    let address = harness.server.metrics_addr().expect("metrics on");
    // Connections that send nothing hold every place (for SCRAPE_READ_TIMEOUT).
    let mut idle = Vec::new();
    for _ in 0..MAX_SCRAPE_CONNECTIONS {
        idle.push(
            within("connect", tokio::net::TcpStream::connect(address))
                .await
                .unwrap(),
        );
    }
    // One more: a whole request, closed without an answer.
    let mut over = within("connect", tokio::net::TcpStream::connect(address))
        .await
        .unwrap();
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    let _ = over.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = within("closed", over.read_to_end(&mut answer)).await;
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    drop(idle);

    // Two made-up methods of a real service are counted under one label, `unknown`.
    let channel = harness.channel().await;
    for method in ["NoSuchMethod", "NorThis"] {
        let mut client = tonic::client::Grpc::new(channel.clone());
        client.ready().await.unwrap();
        let path = format!("/dipledger.v1.QueryService/{method}").parse().unwrap();
        let refused = client
            .unary::<pb::GetPartyRequest, pb::GetPartyResponse, _>(
                tonic::Request::new(pb::GetPartyRequest::default()),
                path,
                tonic_prost::ProstCodec::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unimplemented, "{refused:?}");
    }
    let deadline = std::time::Instant::now() + TIMEOUT;
    let scrape = loop {
        let (status, body) = http_get(address, "/metrics").await;
        assert_eq!(status, "HTTP/1.1 200 OK");
        let scrape = parse(&body);
        let unknown = "dipledger_rpc_requests_total{method=\"unknown\",status=\"UNIMPLEMENTED\"}";
        if scrape.samples.get(unknown) == Some(&2.0) || std::time::Instant::now() > deadline {
            break scrape;
        }
    };
    let unknown = "dipledger_rpc_requests_total{method=\"unknown\",status=\"UNIMPLEMENTED\"}";
    assert_eq!(scrape.samples.get(unknown), Some(&2.0), "{:?}", scrape.samples);
    assert!(!scrape
        .samples
        .keys()
        .any(|key| key.contains("NoSuchMethod") || key.contains("NorThis")));
}
