//! One tower layer over the whole server that maps tonic's own request-decoding errors to the
//! codes the rest of the API uses (`status::from_codec_error`):
//!
//! - a request message over `server::MAX_REQUEST_BYTES`: tonic's codec answers OUT_OF_RANGE
//!   before any handler runs; the client gets RESOURCE_EXHAUSTED (`TOO_LARGE`), like every
//!   other size limit of the server;
//! - bytes that are not a protobuf message of the request's type: tonic answers INTERNAL; the
//!   client gets INVALID_ARGUMENT.
//!
//! Every RPC of the dipledger services decodes its one request message before it answers, so
//! such an error is always a trailers-only answer: `grpc-status` is in the response headers,
//! where this layer rewrites it. Every other answer passes through untouched.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::codegen::http::{self, HeaderMap};
use tonic::codegen::Service;
use tonic::{Code, Status};
use tower_layer::Layer;

use super::status;

const GRPC_STATUS: &str = "grpc-status";
const GRPC_MESSAGE: &str = "grpc-message";
const GRPC_STATUS_DETAILS: &str = "grpc-status-details-bin";

/// The layer (`Server::builder().layer(DecodeErrorsLayer::new(limit))`).
#[derive(Debug, Clone, Copy)]
pub struct DecodeErrorsLayer {
    limit: usize,
}

impl DecodeErrorsLayer {
    /// Maps decoding errors of a server whose services decode at most `limit` bytes per
    /// request message.
    pub fn new(limit: usize) -> DecodeErrorsLayer {
        DecodeErrorsLayer { limit }
    }
}

impl<S> Layer<S> for DecodeErrorsLayer {
    type Service = DecodeErrors<S>;

    fn layer(&self, inner: S) -> DecodeErrors<S> {
        DecodeErrors {
            inner,
            limit: self.limit,
        }
    }
}

/// The service the layer wraps around the server's routes.
#[derive(Debug, Clone)]
pub struct DecodeErrors<S> {
    inner: S,
    limit: usize,
}

impl<S, Request, Body> Service<Request> for DecodeErrors<S>
where
    S: Service<Request, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let answer = self.inner.call(request);
        let limit = self.limit;
        Box::pin(async move {
            let mut response = answer.await?;
            remap(response.headers_mut(), limit);
            Ok(response)
        })
    }
}

/// Rewrites a trailers-only answer carrying one of tonic's decoding errors.
fn remap(headers: &mut HeaderMap, limit: usize) {
    let Some(code) = headers.get(GRPC_STATUS) else {
        return;
    };
    if !matches!(
        Code::from_bytes(code.as_bytes()),
        Code::OutOfRange | Code::Internal
    ) {
        return;
    }
    let Some(mapped) =
        Status::from_header_map(headers).and_then(|found| status::from_codec_error(&found, limit))
    else {
        return;
    };
    headers.remove(GRPC_STATUS);
    headers.remove(GRPC_MESSAGE);
    headers.remove(GRPC_STATUS_DETAILS);
    if mapped.add_header(headers).is_err() {
        // Our own messages are always valid header values; keep an answer either way.
        headers.insert(GRPC_STATUS, http::HeaderValue::from(mapped.code() as i32));
    }
}
