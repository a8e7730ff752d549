//! Who may do what, against a real server: every RPC of every dipledger service (taken from the
//! service descriptors, so a new RPC without a rule fails here) called with no token, a
//! malformed, unknown, expired or revoked token, and a token of each role, gives exactly the
//! status the one authorization table says; `recorded_by` is the authenticated principal; a
//! revoked token stops working on a running server; health stays open.

use std::time::{Duration, Instant};

use crate::support::api::*;
use dipledger::api::pb;
use dipledger::auth::tokens::{self, TOKEN_RELOAD_INTERVAL};
use dipledger::auth::{rule_for, Role, Rule};
use dipledger::log::{Clock, SystemClock};
use dipledger::time::Timestamp;
use prost::Message as _;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::Code;

/// Every method of the dipledger services: (gRPC path, server-streaming).
fn every_rpc() -> Vec<(String, bool)> {
    let set = prost_types::FileDescriptorSet::decode(pb::FILE_DESCRIPTOR_SET).expect("descriptors");
    let mut rpcs = Vec::new();
    for file in &set.file {
        for service in &file.service {
            for method in &service.method {
                rpcs.push((
                    format!("/{}.{}/{}", file.package(), service.name(), method.name()),
                    method.server_streaming(),
                ));
            }
        }
    }
    rpcs
}

/// `message` as a request carrying the bearer token `token`.
fn with_bearer<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// A RegisterSource request sent with the bearer token `token`.
fn register_source_as(token: &str) -> tonic::Request<pb::RegisterSourceRequest> {
    with_bearer(token, crate::support::commands::register_source("A report"))
}

/// The credentials a call can carry.
#[derive(Debug, Clone)]
enum Credential {
    None,
    Malformed,
    Unknown,
    Expired(String),
    Revoked(String),
    Role(Role, String),
}

/// A data directory holding one token per role (principal `<role>-principal`), one expired
/// and one revoked.
fn directory_with_tokens() -> (tempfile::TempDir, Vec<Credential>) {
    let dir = tempfile::tempdir().unwrap();
    let now = SystemClock.now();
    let past = Timestamp::from_unix_micros(now.unix_micros() - 1);
    let mut credentials = vec![Credential::None, Credential::Malformed, Credential::Unknown];
    tokens::update(dir.path(), |file| {
        for role in Role::ALL {
            let (_, secret) = file.create(&format!("{role}-principal"), &[role], None, now)?;
            credentials.push(Credential::Role(role, secret));
        }
        let (_, expired) = file.create("expired-principal", &[Role::Admin], Some(past), now)?;
        credentials.push(Credential::Expired(expired));
        let (entry, revoked) = file.create("revoked-principal", &[Role::Admin], None, now)?;
        file.revoke(&entry.id, now)?;
        credentials.push(Credential::Revoked(revoked));
        Ok(())
    })
    .unwrap();
    (dir, credentials)
}

fn with_credential(credential: &Credential) -> tonic::Request<Vec<u8>> {
    let mut request = tonic::Request::new(NOT_PROTOBUF.to_vec());
    let token = match credential {
        Credential::None => return request,
        Credential::Malformed => "Bearer not-a-token".to_owned(),
        Credential::Unknown => format!("Bearer dpl_{}", "0".repeat(64)),
        Credential::Expired(secret) | Credential::Revoked(secret) | Credential::Role(_, secret) => {
            format!("Bearer {secret}")
        }
    };
    request
        .metadata_mut()
        .insert("authorization", token.parse().unwrap());
    request
}

/// The code the table promises: refusals by the layer; an allowed call reaches its handler,
/// which refuses the bytes that are not protobuf as INVALID_ARGUMENT.
fn expected(path: &str, credential: &Credential) -> Code {
    let needed = match rule_for(path) {
        Rule::Open => return Code::InvalidArgument,
        Rule::Deny => return Code::PermissionDenied,
        Rule::Needs(role) => role,
    };
    match credential {
        Credential::Role(role, _) if role.grants(needed) => Code::InvalidArgument,
        Credential::Role(..) => Code::PermissionDenied,
        _ => Code::Unauthenticated,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_with_every_credential_gets_exactly_the_status_of_the_table() {
    let rpcs = every_rpc();
    assert!(rpcs.len() > 40, "the descriptors list every RPC: {}", rpcs.len());
    for (path, _) in &rpcs {
        assert_ne!(
            rule_for(path),
            Rule::Deny,
            "{path} has no rule in the authorization table"
        );
    }
    let (dir, credentials) = directory_with_tokens();
    let harness = Harness::start_in(dir, Default::default()).await;
    let mut grpc = tonic::client::Grpc::new(harness.channel().await);
    let head = harness.log.head();
    for (path, streaming) in &rpcs {
        for credential in &credentials {
            within("ready", grpc.ready()).await.unwrap();
            let request = with_credential(credential);
            let route = PathAndQuery::try_from(path.as_str()).unwrap();
            let status = if *streaming {
                within(path, grpc.server_streaming(request, route, RawCodec))
                    .await
                    .expect_err("refused")
            } else {
                within(path, grpc.unary(request, route, RawCodec))
                    .await
                    .expect_err("refused")
            };
            assert_eq!(
                status.code(),
                expected(path, credential),
                "{path} with {credential:?}: {status:?}"
            );
        }
    }
    assert_eq!(harness.log.head(), head, "no refused call recorded anything");
    // The refusals are in the access log, which an auditor reads (the server checks its chain).
    let auditor = credentials
        .iter()
        .find_map(|credential| match credential {
            Credential::Role(Role::Auditor, secret) => Some(secret.clone()),
            _ => None,
        })
        .unwrap();
    let request = with_bearer(
        &auditor,
        pb::ReadAccessLogRequest {
            after_seq: 0,
            limit: 1_000,
        },
    );
    let entries = harness
        .event_store()
        .await
        .read_access_log(request)
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert!(entries
        .iter()
        .any(|entry| entry.outcome == "UNAUTHENTICATED" && entry.principal == "anonymous"));
    assert!(entries
        .iter()
        .any(|entry| entry.outcome == "PERMISSION_DENIED" && entry.principal == "reader-principal"));
    for pair in entries.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash, "chained");
        assert_eq!(pair[1].seq, pair[0].seq + 1);
    }
    // Health stays open without a token.
    let mut health = tonic_health::pb::health_client::HealthClient::new(harness.channel().await);
    let serving = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "dipledger.v1.QueryService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        serving.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_are_recorded_by_the_principal_and_a_revoked_token_stops_working() {
    let dir = tempfile::tempdir().unwrap();
    let now = SystemClock.now();
    let (entry, secret) = tokens::update(dir.path(), |file| {
        file.create("embassy-tripoli", &[Role::Recorder], None, now)
    })
    .unwrap();
    let harness = Harness::start_in(dir, Default::default()).await;
    let mut client = pb::command_service_client::CommandServiceClient::new(harness.channel().await);
    let register = || register_source_as(&secret);
    let recorded = client.register_source(register()).await.unwrap().into_inner();
    let stream_id = recorded.result.unwrap().stream_id;
    let stored = harness
        .log
        .read_stream(&stream_id, 1, dipledger::log::Direction::Forwards, 1)
        .unwrap();
    assert_eq!(stored[0].envelope().recorded_by, "embassy-tripoli");

    // Revoked while the server runs: refused within the reload interval.
    tokens::update(harness.dir.path(), |file| {
        file.revoke(&entry.id, SystemClock.now())
    })
    .unwrap();
    // Each attempt is a round trip to the server, which paces the loop until the server has
    // re-read the token file; bounded by the deadline.
    let deadline = Instant::now() + TOKEN_RELOAD_INTERVAL + Duration::from_secs(5);
    loop {
        match client.register_source(register()).await {
            Err(status) if status.code() == Code::Unauthenticated => {
                assert!(status.message().contains("revoked"), "{status:?}");
                break;
            }
            other => assert!(
                Instant::now() < deadline,
                "still accepted after revocation: {other:?}"
            ),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_principal_over_its_rate_is_refused_while_another_still_records() {
    let dir = tempfile::tempdir().unwrap();
    let now = SystemClock.now();
    let (fast, other) = tokens::update(dir.path(), |file| {
        let (_, fast) = file.create("fast-desk", &[Role::Recorder], None, now)?;
        let (_, other) = file.create("other-desk", &[Role::Recorder], None, now)?;
        Ok((fast, other))
    })
    .unwrap();
    let options = dipledger::api::server::ServerOptions {
        principal_limits: dipledger::auth::limits::PrincipalLimits {
            max_in_flight: 64,
            commands_per_second: 2,
        },
        ..Default::default()
    };
    let harness = Harness::start_in(dir, options).await;
    let mut client = pb::command_service_client::CommandServiceClient::new(harness.channel().await);
    let source = register_source_as;
    // A burst of one second's worth (2), then refused with a retry hint.
    let mut refused = None;
    for _ in 0..10 {
        if let Err(status) = client.register_source(source(&fast)).await {
            refused = Some(status);
            break;
        }
    }
    let refused = refused.expect("the rate limit is reached within ten quick commands");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(refused.message().contains("fast-desk"), "{refused:?}");
    assert!(
        tonic_types::StatusExt::get_details_retry_info(&refused).is_some(),
        "a retry hint"
    );
    let head = harness.log.head();
    client
        .register_source(source(&other))
        .await
        .expect("another principal still records");
    assert_eq!(harness.log.head(), head + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_subscription_ends_unauthenticated_once_its_token_is_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let now = SystemClock.now();
    let (entry, secret) = tokens::update(dir.path(), |file| {
        file.create("watcher", &[Role::Reader], None, now)
    })
    .unwrap();
    let harness = Harness::start_in(dir, Default::default()).await;
    append_many(&harness.log, "party-LBY", 3, "party:LBY").await;
    let mut store = harness.event_store().await;
    let request = with_bearer(&secret, pb::SubscribeRequest::default());
    let mut stream = store.subscribe(request).await.unwrap().into_inner();
    next_message(&mut stream).await;
    tokens::update(harness.dir.path(), |file| {
        file.revoke(&entry.id, SystemClock.now())
    })
    .unwrap();
    // Drain what was already sent; the stream then ends with UNAUTHENTICATED.
    let status = within("the stream to end", async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the stream ended without a status"),
                Err(status) => return status,
            }
        }
    })
    .await;
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("revoked"), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_manages_tokens_over_grpc_and_the_access_log_names_the_admin() {
    let dir = tempfile::tempdir().unwrap();
    let now = SystemClock.now();
    let (_, admin) = tokens::update(dir.path(), |file| {
        file.create("ops-admin", &[Role::Admin], None, now)
    })
    .unwrap();
    let harness = Harness::start_in(dir, Default::default()).await;
    let mut service = pb::token_service_client::TokenServiceClient::new(harness.channel().await);
    let refused = service
        .create_token(with_bearer(
            &admin,
            pb::CreateTokenRequest {
                principal: "desk".into(),
                roles: vec!["recorder".into(), "root".into()],
                expires_at: None,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    let created = service
        .create_token(with_bearer(
            &admin,
            pb::CreateTokenRequest {
                principal: "desk".into(),
                roles: vec!["recorder".into()],
                expires_at: None,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let token = created.token.unwrap();
    assert_eq!(
        (token.principal.as_str(), token.roles.as_slice()),
        ("desk", &["recorder".to_owned()][..])
    );
    // The new token records (once the server has re-read the file).
    let mut commands = pb::command_service_client::CommandServiceClient::new(harness.channel().await);
    // Round trips pace the loop until the server has re-read the file; bounded by the deadline.
    let deadline = Instant::now() + TOKEN_RELOAD_INTERVAL + Duration::from_secs(5);
    while let Err(status) = commands
        .register_source(register_source_as(&created.secret))
        .await
    {
        assert!(
            Instant::now() < deadline,
            "the new token never worked: {status:?}"
        );
    }
    let listed = service
        .list_tokens(with_bearer(&admin, pb::ListTokensRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.auth_enabled);
    assert_eq!(listed.tokens.len(), 2);
    assert!(!format!("{listed:?}").contains(&created.secret), "never listed");
    let revoked = service
        .revoke_token(with_bearer(
            &admin,
            pb::RevokeTokenRequest { id: token.id.clone() },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(revoked.token.unwrap().revoked_at.is_some());
    // Every entry: the refusals of the loop above (up to 100 a second) come before the revocation.
    let written = dipledger::auth::access_log::read(
        harness.dir.path(),
        0,
        dipledger::auth::access_log::MAX_ACCESS_READ,
    )
    .unwrap();
    let by_admin: Vec<&str> = written
        .iter()
        .filter(|entry| entry.principal == "ops-admin")
        .map(|entry| entry.action.as_str())
        .collect();
    assert_eq!(by_admin, ["token.create", "token.revoke"]);
}

/// The (principal, action, outcome) of every access-log entry of `dir`.
fn access_entries(dir: &std::path::Path) -> Vec<(String, String, String)> {
    dipledger::auth::access_log::read(dir, 0, dipledger::auth::access_log::MAX_ACCESS_READ)
        .unwrap()
        .into_iter()
        .map(|entry| (entry.principal, entry.action, entry.outcome))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_log_records_allowed_writes_or_every_call_at_the_level_asked() {
    use dipledger::auth::access_log::AccessLevel;
    for level in [AccessLevel::Refusals, AccessLevel::Writes, AccessLevel::All] {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemClock.now();
        let (_, secret) = tokens::update(dir.path(), |file| {
            file.create("embassy-tripoli", &[Role::Recorder], None, now)
        })
        .unwrap();
        let options = dipledger::api::server::ServerOptions {
            access_log: level,
            ..Default::default()
        };
        let harness = Harness::start_in(dir, options).await;
        let channel = harness.channel().await;
        let mut commands = pb::command_service_client::CommandServiceClient::new(channel.clone());
        commands
            .register_source(register_source_as(&secret))
            .await
            .unwrap();
        let mut store = pb::event_store_service_client::EventStoreServiceClient::new(channel);
        store
            .read_all(with_bearer(&secret, pb::ReadAllRequest::default()))
            .await
            .unwrap();
        let entries = access_entries(harness.dir.path());
        let allowed = |path: &str| {
            entries.iter().any(|(who, action, outcome)| {
                who == "embassy-tripoli" && action == path && outcome == "ALLOWED"
            })
        };
        let command = allowed("/dipledger.v1.CommandService/RegisterSource");
        let read = allowed("/dipledger.v1.EventStoreService/ReadAll");
        assert_eq!(
            (command, read),
            match level {
                AccessLevel::Refusals => (false, false),
                AccessLevel::Writes => (true, false),
                AccessLevel::All => (true, true),
            },
            "{level:?}: {entries:?}"
        );
    }
}
