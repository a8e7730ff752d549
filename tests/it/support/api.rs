//! Helpers shared by the API integration tests: a real server on 127.0.0.1:0 over a log in a
//! temporary directory, the generated clients, and events appended straight to the log.

use std::future::Future;
use std::time::Duration;

use dipledger::api::pb;
use dipledger::api::pb::event_store_service_client::EventStoreServiceClient;
use dipledger::api::server::{RunningServer, ServerOptions};
use dipledger::domain::common::{Provenance, SourceCitation, SourceId};
use dipledger::domain::party::{PartyDetails, PartyKind, PartyRegistered};
use dipledger::domain::{party, DomainEvent};
use dipledger::log::{AppendRequest, EventDraft, ExpectedVersion, Log, LogConfig};
use dipledger::time::{OccurredAt, Precision, Timestamp};
use tonic::transport::Channel;
use uuid::Uuid;

/// The bound on every wait in these tests.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// A running server over a fresh log; the directory lives as long as this.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub log: Log,
    pub server: RunningServer,
}

impl Harness {
    /// Starts a server with default options.
    pub async fn start() -> Harness {
        Harness::start_with(ServerOptions::default()).await
    }

    /// Starts a server with `options`.
    pub async fn start_with(options: ServerOptions) -> Harness {
        Harness::start_in(tempfile::tempdir().expect("temp dir"), options).await
    }

    /// Starts a server with `options` on `dir`, which may already hold files (a token file).
    pub async fn start_in(dir: tempfile::TempDir, options: ServerOptions) -> Harness {
        let log =
            Log::open(LogConfig::new(dir.path()).cache_capacity_bytes(32 * 1024 * 1024)).expect("open log");
        let server = RunningServer::start(log.clone(), "127.0.0.1:0".parse().unwrap(), options)
            .await
            .expect("start server");
        Harness { dir, log, server }
    }

    /// A connected channel.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.server.uri())
            .unwrap()
            .connect_timeout(TIMEOUT)
            .connect()
            .await
            .expect("connect")
    }

    /// An EventStoreService client.
    pub async fn event_store(&self) -> EventStoreServiceClient<Channel> {
        EventStoreServiceClient::new(self.channel().await).max_decoding_message_size(64 * 1024 * 1024)
    }
}

/// Fails the test if `future` takes longer than [`TIMEOUT`].
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(TIMEOUT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// Watches the server's overall health (service ""), within [`TIMEOUT`].
pub async fn watch_health(harness: &Harness) -> tonic::Streaming<tonic_health::pb::HealthCheckResponse> {
    let mut health = tonic_health::pb::health_client::HealthClient::new(harness.channel().await);
    within(
        "health watch",
        health.watch(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        }),
    )
    .await
    .unwrap()
    .into_inner()
}

/// A PartyRegistered domain event for `code`.
pub fn party_registered(code: &str) -> DomainEvent {
    DomainEvent::Party(party::Event::PartyRegistered(PartyRegistered {
        code: code.to_owned(),
        details: PartyDetails {
            kind: PartyKind::State,
            name: format!("Party {code}"),
            iso_alpha2: None,
            iso_alpha3: Some("LBY".into()),
            wikidata_qid: Some("Q1016".into()),
            cameo_code: None,
        },
        provenance: Provenance {
            occurred_at: OccurredAt::new(
                Timestamp::from_unix_micros(1_736_899_200_123_456),
                Precision::Exact,
            ),
            sources: vec![SourceCitation {
                source_id: SourceId::from_uuid(Uuid::from_u128(0x50)),
                quote: Some("met on Wednesday".into()),
            }],
        },
    }))
}

/// The draft the ledger would write for a domain event.
pub fn draft_of(event: &DomainEvent) -> EventDraft {
    EventDraft {
        event_type: event.event_type().to_owned(),
        schema_version: event.schema_version(),
        occurred_at: OccurredAt::new(Timestamp::from_unix_micros(1_736_899_200_000_000), Precision::Day),
        tags: event.tags(),
        payload: event.encode_payload(),
    }
}

/// Appends `count` PartyRegistered events to stream `stream` in appends of up to 1000 events,
/// tagged `tag`. Returns the last position.
pub async fn append_many(log: &Log, stream: &str, count: usize, tag: &str) -> u64 {
    let event = party_registered("LBY");
    let mut draft = draft_of(&event);
    draft.tags = vec![tag.to_owned()];
    let mut remaining = count;
    let mut last = log.head();
    while remaining > 0 {
        let n = remaining.min(1_000);
        let request = AppendRequest::new(
            Uuid::now_v7(),
            stream,
            ExpectedVersion::Any,
            "tester",
            vec![draft.clone(); n],
        );
        last = log.append(request).await.expect("append").last_position();
        remaining -= n;
    }
    last
}

/// Reads the next subscription message, failing after [`TIMEOUT`].
pub async fn next_message(
    stream: &mut tonic::Streaming<pb::SubscribeResponse>,
) -> pb::subscribe_response::Message {
    within("next subscription message", stream.message())
        .await
        .expect("subscription message")
        .expect("stream still open")
        .message
        .expect("message set")
}

/// A codec that sends and receives raw bytes: what a broken or hostile client puts on the wire.
#[derive(Clone, Copy, Default)]
pub struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), tonic::Status> {
        use prost::bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        use prost::bytes::Buf;
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

/// Bytes that are not a protobuf message: a key of field 1 with wire type 7, which does not exist.
pub const NOT_PROTOBUF: &[u8] = &[0x0f, 0x01, 0x02];
