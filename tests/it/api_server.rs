//! The server's plumbing: gRPC health and server reflection (v1 and v1alpha) answer, so that
//! grpcurl and generic clients work; the loopback-only rule.

use crate::support::api::*;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// Every service health reports on.
const SERVICES: [&str; 6] = [
    "",
    "dipledger.v1.EventStoreService",
    "dipledger.v1.CommandService",
    "dipledger.v1.QueryService",
    "dipledger.v1.TokenService",
    "dipledger.v1.AuditService",
];

/// The status health gives `service`.
async fn health_of(harness: &Harness, service: &str) -> ServingStatus {
    let mut health = HealthClient::new(harness.channel().await);
    let response = within(
        "health check",
        health.check(HealthCheckRequest {
            service: service.into(),
        }),
    )
    .await
    .unwrap_or_else(|status| panic!("health of {service:?}: {status:?}"))
    .into_inner();
    ServingStatus::try_from(response.status).expect("a known status")
}

/// Asks health about `service` until it answers `wanted`, each round trip pacing the next,
/// for at most [`TIMEOUT`].
async fn health_becomes(harness: &Harness, service: &str, wanted: ServingStatus) {
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let status = health_of(harness, service).await;
        if status == wanted {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{service}: still {status:?} after {TIMEOUT:?}, not {wanted:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_serving_for_the_server_and_every_service() {
    let harness = Harness::start().await;
    for service in SERVICES {
        assert_eq!(
            health_of(&harness, service).await,
            ServingStatus::Serving,
            "{service:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_are_not_serving_once_the_log_writer_is_poisoned() {
    let harness = Harness::start().await;
    // The server is up (its first answer comes after health's first look).
    assert_eq!(health_of(&harness, "").await, ServingStatus::Serving);
    append_many(&harness.log, "party-LBY", 3, "t").await;
    // EIO on the next fdatasync (test hook): the writer is poisoned until a restart.
    harness.log.inject_sync_failure();
    let event = party_registered("LBY");
    let request = dipledger::log::AppendRequest::new(
        uuid::Uuid::now_v7(),
        "party-LBY",
        dipledger::log::ExpectedVersion::Any,
        "tester",
        vec![draft_of(&event)],
    );
    harness
        .log
        .append(request)
        .await
        .expect_err("the fdatasync fails");
    assert!(harness.log.poisoned().is_some());
    health_becomes(&harness, "dipledger.v1.CommandService", ServingStatus::NotServing).await;
    // Reads and queries go on, and say so.
    for service in ["", "dipledger.v1.EventStoreService", "dipledger.v1.QueryService"] {
        assert_eq!(
            health_of(&harness, service).await,
            ServingStatus::Serving,
            "{service:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_are_not_serving_while_the_read_models_replay_the_log() {
    use dipledger::api::server::ServerOptions;
    use dipledger::log::{Log, LogConfig};
    use dipledger::projections::RunnerGate;

    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(LogConfig::new(dir.path())).expect("open log");
        append_many(&log, "party-LBY", 5, "t").await;
    }
    // The runner waits at the gate: the read models stay at position 0 of 5.
    let gate = RunnerGate::default();
    let options = ServerOptions {
        read_model_gate: Some(gate.clone()),
        ..ServerOptions::default()
    };
    let harness = Harness::start_in(dir, options).await;
    assert_eq!(
        health_of(&harness, "dipledger.v1.QueryService").await,
        ServingStatus::NotServing
    );
    for service in [
        "",
        "dipledger.v1.EventStoreService",
        "dipledger.v1.CommandService",
    ] {
        assert_eq!(
            health_of(&harness, service).await,
            ServingStatus::Serving,
            "{service:?}"
        );
    }
    gate.open();
    health_becomes(&harness, "dipledger.v1.QueryService", ServingStatus::Serving).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_is_not_serving_once_shutdown_starts() {
    let harness = Harness::start().await;
    let mut health = HealthClient::new(harness.channel().await);
    let mut watch = within(
        "health watch",
        health.watch(HealthCheckRequest {
            service: "dipledger.v1.CommandService".into(),
        }),
    )
    .await
    .unwrap()
    .into_inner();
    let first = within("first status", watch.message()).await.unwrap().unwrap();
    assert_eq!(first.status, ServingStatus::Serving as i32);
    let stopped = tokio::spawn(harness.server.shutdown());
    let next = within("status at shutdown", watch.message())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.status, ServingStatus::NotServing as i32);
    drop(watch);
    within("shutdown", stopped).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_v1_lists_the_services_and_serves_their_descriptors() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    let harness = Harness::start().await;
    let mut client = ServerReflectionClient::new(harness.channel().await);
    let requests = vec![
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        },
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "dipledger.v1.EventStoreService".into(),
            )),
        },
    ];
    let mut responses = within(
        "reflection",
        client.server_reflection_info(tokio_stream::iter(requests)),
    )
    .await
    .unwrap()
    .into_inner();
    let first = within("list", responses.message()).await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = first.message_response else {
        panic!("expected a service list: {first:?}");
    };
    let names: Vec<_> = list.service.iter().map(|service| service.name.as_str()).collect();
    for expected in [
        "dipledger.v1.EventStoreService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(names.contains(&expected), "{expected} missing from {names:?}");
    }
    let second = within("file", responses.message()).await.unwrap().unwrap();
    let Some(MessageResponse::FileDescriptorResponse(files)) = second.message_response else {
        panic!("expected descriptors: {second:?}");
    };
    assert!(!files.file_descriptor_proto.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_v1alpha_lists_the_services() {
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;

    let harness = Harness::start().await;
    let mut client = ServerReflectionClient::new(harness.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = within(
        "reflection",
        client.server_reflection_info(tokio_stream::iter(vec![request])),
    )
    .await
    .unwrap()
    .into_inner();
    let first = within("list", responses.message()).await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = first.message_response else {
        panic!("expected a service list: {first:?}");
    };
    assert!(list
        .service
        .iter()
        .any(|service| service.name == "dipledger.v1.EventStoreService"));
}

#[test]
fn only_loopback_addresses_are_served() {
    use dipledger::api::server::check_loopback;
    assert!(check_loopback("127.0.0.1:50051".parse().unwrap()).is_ok());
    assert!(check_loopback("[::1]:50051".parse().unwrap()).is_ok());
    assert!(check_loopback("0.0.0.0:50051".parse().unwrap()).is_err());
    // Any other address needs TLS and authentication both, or insecure said explicitly.
    use dipledger::api::server::check_listen;
    let anywhere = "0.0.0.0:50051".parse().unwrap();
    assert!(check_listen(anywhere, true, true, false).is_ok());
    assert!(
        check_listen(anywhere, true, false, false).is_err(),
        "TLS without tokens"
    );
    assert!(
        check_listen(anywhere, false, true, false).is_err(),
        "tokens in clear text"
    );
    assert!(check_listen(anywhere, false, false, true).is_ok(), "--insecure");
    assert!(check_listen("127.0.0.1:50051".parse().unwrap(), false, false, false).is_ok());
    // Host names are resolved; localhost is loopback.
    use dipledger::api::server::resolve_listen;
    let localhost = resolve_listen("localhost:50051").unwrap();
    assert!(
        localhost.ip().is_loopback() && localhost.port() == 50051,
        "{localhost}"
    );
    assert_eq!(resolve_listen("[::1]:7").unwrap(), "[::1]:7".parse().unwrap());
    let refused = resolve_listen("nonsense").unwrap_err();
    assert!(
        refused.starts_with("\"nonsense\" is not an address such as 127.0.0.1:50051"),
        "{refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_that_are_not_protobuf_are_invalid_argument() {
    use tonic::codegen::http::uri::PathAndQuery;
    use tonic::Code;

    let harness = Harness::start().await;
    let mut grpc = tonic::client::Grpc::new(harness.channel().await);
    // A unary RPC.
    within("ready", grpc.ready()).await.unwrap();
    let status = within(
        "ReadStream with garbage",
        grpc.unary(
            tonic::Request::new(NOT_PROTOBUF.to_vec()),
            PathAndQuery::from_static("/dipledger.v1.EventStoreService/ReadStream"),
            RawCodec,
        ),
    )
    .await
    .expect_err("garbage is refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status
            .message()
            .starts_with("malformed request: not a protobuf message"),
        "{status:?}"
    );
    // A command.
    within("ready", grpc.ready()).await.unwrap();
    let status = within(
        "RegisterParty with garbage",
        grpc.unary(
            tonic::Request::new(NOT_PROTOBUF.to_vec()),
            PathAndQuery::from_static("/dipledger.v1.CommandService/RegisterParty"),
            RawCodec,
        ),
    )
    .await
    .expect_err("garbage is refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    // A server-streaming RPC.
    within("ready", grpc.ready()).await.unwrap();
    let status = within(
        "Subscribe with garbage",
        grpc.server_streaming(
            tonic::Request::new(NOT_PROTOBUF.to_vec()),
            PathAndQuery::from_static("/dipledger.v1.EventStoreService/Subscribe"),
            RawCodec,
        ),
    )
    .await
    .expect_err("garbage is refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
}

/// A ReadAll request of exactly `bytes` encoded bytes (one long tag in its filter).
fn read_all_of_size(bytes: usize) -> dipledger::api::pb::ReadAllRequest {
    use dipledger::api::pb;
    use prost::Message as _;

    let mut tag_len = bytes - 16;
    loop {
        let request = pb::ReadAllRequest {
            filter: Some(pb::EventFilter {
                tags: vec!["t".repeat(tag_len)],
                ..pb::EventFilter::default()
            }),
            ..pb::ReadAllRequest::default()
        };
        match request.encoded_len() {
            len if len == bytes => return request,
            len if len < bytes => tag_len += bytes - len,
            len => tag_len -= len - bytes,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_the_size_limit_is_resource_exhausted() {
    use dipledger::api::server::MAX_REQUEST_BYTES;
    use tonic::Code;
    use tonic_types::StatusExt;

    let harness = Harness::start().await;
    let mut client = harness.event_store().await;
    // At exactly the limit: decoded and answered (an empty log, nothing matches).
    let page = within(
        "ReadAll at the limit",
        client.read_all(read_all_of_size(MAX_REQUEST_BYTES)),
    )
    .await
    .expect("a request of exactly MAX_REQUEST_BYTES is served")
    .into_inner();
    assert!(page.events.is_empty());
    // One byte over: refused before any handler runs, with the size limit's own code.
    let status = within(
        "ReadAll one byte over",
        client.read_all(read_all_of_size(MAX_REQUEST_BYTES + 1)),
    )
    .await
    .expect_err("a request over MAX_REQUEST_BYTES is refused");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(
        status.message(),
        format!(
            "the request message is {} bytes, over the limit of {MAX_REQUEST_BYTES} bytes",
            MAX_REQUEST_BYTES + 1
        )
    );
    let info = status.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "TOO_LARGE");
    assert_eq!(info.metadata["limit"], MAX_REQUEST_BYTES.to_string());
}

/// A writer of log lines into a shared buffer, for a test's own tracing subscriber.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_read_model_is_warned_about_once_and_its_catching_up_said() {
    use dipledger::api::monitor::{Monitor, LAGGING_READ_MODEL_EVENTS};
    use dipledger::log::{Log, LogConfig};
    use dipledger::projections::Projections;

    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(LogConfig::new(dir.path())).unwrap();
    // A runner driven by the test: the read models stay where it leaves them.
    let projections = std::sync::Arc::new(Projections::open_paused(log.clone()).unwrap());
    let mut monitor = Monitor::new(log.clone(), projections.clone());
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let dispatch = tracing::Dispatch::new(subscriber);
    let look = |monitor: &mut Monitor| tracing::dispatcher::with_default(&dispatch, || monitor.look());
    look(&mut monitor); // replayed: nothing to replay
    append_many(&log, "party-LBY", LAGGING_READ_MODEL_EVENTS as usize + 1, "t").await;
    look(&mut monitor);
    look(&mut monitor);
    let text = captured.text();
    assert_eq!(
        text.matches("read model lagging").count(),
        5,
        "one per read model, once: {text}"
    );
    assert!(text.contains(" WARN "), "{text}");
    assert!(
        text.contains(&format!("lag={}", LAGGING_READ_MODEL_EVENTS + 1)),
        "{text}"
    );
    projections.catch_up().unwrap();
    look(&mut monitor);
    assert_eq!(
        captured.text().matches("read model caught up").count(),
        5,
        "{}",
        captured.text()
    );
}
