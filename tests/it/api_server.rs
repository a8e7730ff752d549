//! The server's plumbing: gRPC health and server reflection (v1 and v1alpha) answer, so that
//! grpcurl and generic clients work; the loopback-only rule.

use crate::support::api::*;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_serving_for_the_server_and_the_event_store() {
    let harness = Harness::start().await;
    let mut health = HealthClient::new(harness.channel().await);
    for service in ["", "dipledger.v1.EventStoreService"] {
        let response = within(
            "health check",
            health.check(HealthCheckRequest {
                service: service.into(),
            }),
        )
        .await
        .unwrap()
        .into_inner();
        assert_eq!(response.status, ServingStatus::Serving as i32, "{service:?}");
    }
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
}
