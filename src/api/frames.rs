//! Answers sent already encoded: [`Frame`] is the bytes of one answer message, and
//! [`EventStoreRoutes`] serves `EventStoreService.Subscribe`, `ReadAll` and `ReadStream` with
//! [`FrameCodec`], which writes frames as they are instead of encoding a prost message.
//!
//! Why: with many subscribers at the head every live event went to each of them as its own
//! deep copy of the converted envelope, encoded again per subscriber; under 100 subscribers at
//! 2,000 events/s that copy and encoding were about a fifth of the server's CPU
//! (docs/benchmarks.md). The live feed now encodes each event once (with and without its
//! typed body) and every subscriber sends the same shared bytes. A ReadAll page is written
//! straight from the stored records (`api::pages`): building a message of owned strings per
//! event, then encoding it, was over half of the server's CPU in a replay.
//!
//! The wire is unchanged: a frame's bytes are exactly what prost encodes for the message, so
//! clients generated from proto/ decode it like any other answer. Every other method of the
//! service is answered by the generated server, unchanged.

use std::convert::Infallible;
use std::marker::PhantomData;
use std::task::{Context, Poll};

use prost::bytes::{BufMut as _, Bytes};
use prost::Message as _;
use tonic::codec::{BufferSettings, Codec, EncodeBuf, Encoder};
use tonic::codegen::{http, BoxFuture, Service};
use tonic::server::{NamedService, ServerStreamingService, UnaryService};
use tonic::{Request, Response, Status};
use tonic_prost::ProstDecoder;

use super::event_store::{EventStore, FrameStream};
use super::pb;
use super::pb::event_store_service_server::EventStoreServiceServer;
use super::server::{MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES};

/// The routes served here instead of by the generated server.
pub const SUBSCRIBE_PATH: &str = "/dipledger.v1.EventStoreService/Subscribe";
/// See [`SUBSCRIBE_PATH`].
pub const READ_ALL_PATH: &str = "/dipledger.v1.EventStoreService/ReadAll";
/// See [`SUBSCRIBE_PATH`].
pub const READ_STREAM_PATH: &str = "/dipledger.v1.EventStoreService/ReadStream";

/// One encoded answer (a `SubscribeResponse` unless said otherwise), shared (cloning it copies
/// a pointer, not the bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame(Bytes);

impl Frame {
    /// Encodes `message` once.
    pub fn encode(message: pb::subscribe_response::Message) -> Frame {
        Frame::of(&pb::SubscribeResponse {
            message: Some(message),
        })
    }

    /// Encodes `response` once.
    pub fn of(response: &pb::SubscribeResponse) -> Frame {
        Frame(Bytes::from(response.encode_to_vec()))
    }

    /// Bytes already encoded as a message.
    pub fn from_encoded(bytes: Vec<u8>) -> Frame {
        Frame(Bytes::from(bytes))
    }

    /// The encoded bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// The subscription answer back (for callers of the generated trait method, and tests).
    pub fn decode(&self) -> Result<pb::SubscribeResponse, Status> {
        self.decode_as()
    }

    /// The message back, as `M`.
    pub fn decode_as<M: prost::Message + Default>(&self) -> Result<M, Status> {
        M::decode(self.bytes())
            .map_err(|error| Status::internal(format!("an encoded answer does not decode: {error}")))
    }
}

/// Decodes a request `Q` as prost does; encodes [`Frame`]s by copying their bytes.
#[derive(Debug)]
pub struct FrameCodec<Q>(PhantomData<fn() -> Q>);

impl<Q> Default for FrameCodec<Q> {
    fn default() -> Self {
        FrameCodec(PhantomData)
    }
}

/// The encoding half of [`FrameCodec`].
#[derive(Clone, Copy, Debug, Default)]
pub struct FrameEncoder;

impl Encoder for FrameEncoder {
    type Item = Frame;
    type Error = Status;

    fn encode(&mut self, frame: Frame, destination: &mut EncodeBuf<'_>) -> Result<(), Status> {
        destination.put_slice(frame.bytes());
        Ok(())
    }
}

impl<Q: prost::Message + Default + Send + 'static> Codec for FrameCodec<Q> {
    type Encode = Frame;
    type Decode = Q;
    type Encoder = FrameEncoder;
    type Decoder = ProstDecoder<Q>;

    fn encoder(&mut self) -> FrameEncoder {
        FrameEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::new(BufferSettings::default())
    }
}

/// `EventStoreService` as served: Subscribe, ReadAll and ReadStream through [`FrameCodec`],
/// everything else through the generated server.
#[derive(Clone)]
pub struct EventStoreRoutes {
    store: EventStore,
    generated: EventStoreServiceServer<EventStore>,
}

impl EventStoreRoutes {
    /// Routes for `store`, with the server's message size limits on every method.
    pub fn new(store: EventStore) -> EventStoreRoutes {
        let generated = EventStoreServiceServer::new(store.clone())
            .max_decoding_message_size(MAX_REQUEST_BYTES)
            .max_encoding_message_size(MAX_RESPONSE_BYTES);
        EventStoreRoutes { store, generated }
    }
}

impl NamedService for EventStoreRoutes {
    const NAME: &'static str = <EventStoreServiceServer<EventStore> as NamedService>::NAME;
}

impl<B> Service<http::Request<B>> for EventStoreRoutes
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _context: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let store = self.store.clone();
        match request.uri().path() {
            SUBSCRIBE_PATH => Box::pin(async move {
                let method = SubscribeMethod(store);
                Ok(grpc().server_streaming(method, request).await)
            }),
            READ_ALL_PATH => Box::pin(async move {
                let method = PageMethod(store, |store, request| {
                    Box::pin(async move { store.read_all_frame(request).await })
                });
                Ok(grpc().unary(method, request).await)
            }),
            READ_STREAM_PATH => Box::pin(async move {
                let method = PageMethod(store, |store, request| {
                    Box::pin(async move { store.read_stream_frame(request).await })
                });
                Ok(grpc().unary(method, request).await)
            }),
            _ => self.generated.call(request),
        }
    }
}

/// A method answered with frames, under the server's message size limits.
fn grpc<Q: prost::Message + Default + Send + 'static>() -> tonic::server::Grpc<FrameCodec<Q>> {
    tonic::server::Grpc::new(FrameCodec::default())
        .apply_max_message_size_config(Some(MAX_REQUEST_BYTES), Some(MAX_RESPONSE_BYTES))
}

/// A unary method answering one encoded page (ReadAll, ReadStream): the store and the method
/// of it that reads the page.
struct PageMethod<Q>(EventStore, fn(EventStore, Q) -> BoxFuture<Frame, Status>);

impl<Q: Send + 'static> UnaryService<Q> for PageMethod<Q> {
    type Response = Frame;
    type Future = BoxFuture<Response<Frame>, Status>;

    fn call(&mut self, request: Request<Q>) -> Self::Future {
        let page = (self.1)(self.0.clone(), request.into_inner());
        Box::pin(async move { page.await.map(Response::new) })
    }
}

/// Subscribe as a server-streaming method of frames.
struct SubscribeMethod(EventStore);

impl ServerStreamingService<pb::SubscribeRequest> for SubscribeMethod {
    type Response = Frame;
    type ResponseStream = FrameStream;
    type Future = BoxFuture<Response<FrameStream>, Status>;

    fn call(&mut self, request: Request<pb::SubscribeRequest>) -> Self::Future {
        let store = self.0.clone();
        Box::pin(async move { store.subscribe_frames(request.into_inner()).map(Response::new) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_the_bytes_prost_encodes_and_decodes_back() {
        let message = pb::subscribe_response::Message::CaughtUp(pb::CaughtUp { position: 42 });
        let frame = Frame::encode(message.clone());
        let expected = pb::SubscribeResponse {
            message: Some(message),
        };
        assert_eq!(frame.bytes(), expected.encode_to_vec().as_slice());
        assert_eq!(frame.decode().unwrap(), expected);
    }
}
