//! The outermost layer of the server: one log line per request (`tracing`, target
//! `dipledger::request`, level DEBUG; WARN for INTERNAL and DATA_LOSS) with the method, the
//! principal, the gRPC status and the latency, and the request metrics when a metrics endpoint
//! is on (`api::metrics`).
//!
//! The status of a gRPC answer is in its headers (an error answered at once) or in the trailers
//! at the end of its body (everything else), so the line is written when the body ends (or is
//! dropped: a client that went away is `CANCELLED`). The latency is from the request to that
//! end: for a stream (Subscribe, Export) how long it ran. The principal comes from the
//! authorization layer through a [`CallerSlot`] (absent in development mode and for health).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http_body::Frame;
use tonic::codegen::http;
use tonic::codegen::Service;
use tower_layer::Layer;

use super::metrics::ServerMetrics;
use crate::auth::layer::CallerSlot;

/// The layer (`Server::builder().layer(ObserveLayer::new(metrics))`, first so it is outermost).
#[derive(Debug, Clone, Default)]
pub struct ObserveLayer {
    metrics: Option<Arc<ServerMetrics>>,
}

impl ObserveLayer {
    /// Logs every request, and counts it in `metrics` when given.
    pub fn new(metrics: Option<Arc<ServerMetrics>>) -> ObserveLayer {
        ObserveLayer { metrics }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The service the layer wraps around the server.
#[derive(Debug, Clone)]
pub struct Observe<S> {
    inner: S,
    metrics: Option<Arc<ServerMetrics>>,
}

type Answer<E> = Pin<Box<dyn Future<Output = Result<http::Response<tonic::body::Body>, E>> + Send>>;

impl<S, B> Service<http::Request<B>> for Observe<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Answer<S::Error>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let slot = CallerSlot::default();
        request.extensions_mut().insert(slot.clone());
        let mut call = Call {
            method: method_label(request.uri().path()),
            caller: slot,
            started: Instant::now(),
            status: None,
            metrics: self.metrics.clone(),
        };
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await?;
            call.status = grpc_status(response.headers());
            Ok(response.map(|body| tonic::body::Body::new(Observed { inner: body, call })))
        })
    }
}

/// Methods outside the API (health, reflection) that the server answers.
const OTHER_METHODS: [&str; 4] = [
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/// The label a request's path is logged and counted under: the path of a method the server
/// has (from the API's descriptors, read once), or `unknown`. A client choosing the path must not
/// choose how many metric series the server keeps.
fn method_label(path: &str) -> &'static str {
    static KNOWN: std::sync::OnceLock<std::collections::HashSet<&'static str>> = std::sync::OnceLock::new();
    let known = KNOWN.get_or_init(|| {
        use prost::Message;
        let set = prost_types::FileDescriptorSet::decode(super::pb::FILE_DESCRIPTOR_SET)
            .expect("the API's own descriptors decode");
        let mut known: std::collections::HashSet<&'static str> = OTHER_METHODS.into_iter().collect();
        for file in &set.file {
            for service in &file.service {
                for method in &service.method {
                    let path = format!("/{}.{}/{}", file.package(), service.name(), method.name());
                    known.insert(Box::leak(path.into_boxed_str()));
                }
            }
        }
        known
    });
    known.get(path).copied().unwrap_or("unknown")
}

/// One request being answered; written to the log (and counted) when dropped.
struct Call {
    method: &'static str,
    caller: CallerSlot,
    started: Instant,
    /// The gRPC status code, once seen (headers or trailers).
    status: Option<i32>,
    metrics: Option<Arc<ServerMetrics>>,
}

impl Drop for Call {
    fn drop(&mut self) {
        let code = tonic::Code::from_i32(self.status.unwrap_or(tonic::Code::Cancelled as i32));
        let status = super::status::code_name(code);
        let latency = self.started.elapsed();
        let principal = self.caller.0.get().map(String::as_str).unwrap_or("-");
        let latency_ms = latency.as_secs_f64() * 1e3;
        if matches!(
            code,
            tonic::Code::Internal | tonic::Code::DataLoss | tonic::Code::Unknown
        ) {
            tracing::warn!(target: "dipledger::request", method = %self.method, principal, status, latency_ms, "request failed");
        } else {
            tracing::debug!(target: "dipledger::request", method = %self.method, principal, status, latency_ms, "request");
        }
        if let Some(metrics) = &self.metrics {
            metrics.request_finished(self.method, status, latency);
        }
    }
}

/// The `grpc-status` of a header map, if it has one.
fn grpc_status(headers: &http::HeaderMap) -> Option<i32> {
    headers.get("grpc-status")?.to_str().ok()?.parse().ok()
}

/// A response body that notes the status in its trailers and ends its [`Call`] with itself.
struct Observed {
    inner: tonic::body::Body,
    call: Call,
}

impl http_body::Body for Observed {
    type Data = tonic::codegen::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, tonic::Status>>> {
        let this = &mut *self;
        let frame = Pin::new(&mut this.inner).poll_frame(context);
        if let Poll::Ready(Some(Ok(frame))) = &frame {
            if let Some(status) = frame.trailers_ref().and_then(grpc_status) {
                this.call.status = Some(status);
            }
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::method_label;

    #[test]
    fn a_method_is_labelled_by_its_path_and_any_other_path_as_unknown() {
        for path in [
            "/dipledger.v1.CommandService/RegisterParty",
            "/dipledger.v1.AuditService/GetCheckpoint",
            "/grpc.health.v1.Health/Check",
        ] {
            assert_eq!(method_label(path), path);
        }
        for path in ["/dipledger.v1.QueryService/NoSuchMethod", "/x/y", "", "/"] {
            assert_eq!(method_label(path), "unknown");
        }
    }
}
