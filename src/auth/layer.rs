//! The one tower layer in front of every service: it finds the method's rule in the table
//! (`auth::rule_for`), authenticates the bearer token when the rule needs a role, refuses with
//! UNAUTHENTICATED or PERMISSION_DENIED before any handler runs, and hands the authenticated
//! [`Principal`] to the handler in the request's extensions (the CommandService records it as
//! `recorded_by`). It also applies the principal's limits (`auth::limits`) and, while a
//! response streams, re-checks the token every [`REVALIDATE_INTERVAL`]: a subscription whose
//! token is revoked or expires ends with UNAUTHENTICATED. In development mode (no token ever
//! created, no `--require-auth`) it lets everything through.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body::Frame;
use tonic::codegen::http;
use tonic::codegen::Service;
use tonic::Status;
use tower_layer::Layer;

use super::limits::{InFlight, Limiter, PrincipalLimits};
use super::tokens::{AuthFailure, TokenStore};
use super::{rule_for, Principal, Role, Rule};

/// How often a streaming response re-checks its token.
pub const REVALIDATE_INTERVAL: Duration = Duration::from_secs(1);

/// The layer (`Server::builder().layer(AuthLayer::new(store, limits))`).
#[derive(Debug, Clone)]
pub struct AuthLayer {
    store: Arc<TokenStore>,
    limiter: Arc<Limiter>,
}

impl AuthLayer {
    /// Authorizes against the tokens of `store`, with `limits` for every principal.
    pub fn new(store: Arc<TokenStore>, limits: PrincipalLimits) -> AuthLayer {
        AuthLayer {
            store,
            limiter: Arc::new(Limiter::new(limits)),
        }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            inner,
            store: self.store.clone(),
            limiter: self.limiter.clone(),
        }
    }
}

/// The service the layer wraps around the server's routes.
#[derive(Debug, Clone)]
pub struct Auth<S> {
    inner: S,
    store: Arc<TokenStore>,
    limiter: Arc<Limiter>,
}

type Answer<E> = Pin<Box<dyn Future<Output = Result<http::Response<tonic::body::Body>, E>> + Send>>;

impl<S, B> Service<http::Request<B>> for Auth<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Answer<S::Error>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let principal = match authorize(&self.store, &path, request.headers()) {
            Ok(principal) => principal,
            Err(status) => return Box::pin(async move { Ok(status.into_http()) }),
        };
        let Some(principal) = principal else {
            return Box::pin(self.inner.call(request));
        };
        let command = rule_for(&path) == Rule::Needs(Role::Recorder);
        let in_flight = match self.limiter.admit(&principal.name, command) {
            Ok(in_flight) => in_flight,
            Err(status) => return Box::pin(async move { Ok(status.into_http()) }),
        };
        let token = bearer(request.headers()).unwrap_or_default().to_owned();
        request.extensions_mut().insert(principal);
        let answer = self.inner.call(request);
        let store = self.store.clone();
        Box::pin(async move {
            let response = answer.await?;
            Ok(response.map(|body| {
                tonic::body::Body::new(Guarded {
                    inner: body,
                    store,
                    token,
                    tick: tokio::time::interval_at(
                        tokio::time::Instant::now() + REVALIDATE_INTERVAL,
                        REVALIDATE_INTERVAL,
                    ),
                    _in_flight: in_flight,
                    ended: false,
                })
            }))
        })
    }
}

/// A response body that holds its request's place in flight until it ends, and ends a stream
/// with UNAUTHENTICATED once its token stops authenticating.
struct Guarded {
    inner: tonic::body::Body,
    store: Arc<TokenStore>,
    token: String,
    tick: tokio::time::Interval,
    _in_flight: InFlight,
    ended: bool,
}

impl http_body::Body for Guarded {
    type Data = tonic::codegen::Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Status>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        while self.tick.poll_tick(context).is_ready() {
            if let Err(failure) = self.store.authenticate(&self.token) {
                self.ended = true;
                let mut trailers = http::HeaderMap::new();
                let status = Status::unauthenticated(failure.to_string());
                if status.add_header(&mut trailers).is_err() {
                    trailers.insert("grpc-status", http::HeaderValue::from(status.code() as i32));
                }
                return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
            }
        }
        Pin::new(&mut self.inner).poll_frame(context)
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The principal a request acts as (None: development mode or an open method), or the refusal.
pub fn authorize(
    store: &TokenStore,
    path: &str,
    headers: &http::HeaderMap,
) -> Result<Option<Principal>, Status> {
    if !store.auth_required() {
        return Ok(None);
    }
    let needed = match rule_for(path) {
        Rule::Open => return Ok(None),
        Rule::Deny => {
            return Err(Status::permission_denied(format!(
                "{path} is not in the authorization table: denied"
            )))
        }
        Rule::Needs(role) => role,
    };
    let token = bearer(headers).map_err(|failure| Status::unauthenticated(failure.to_string()))?;
    let principal = store
        .authenticate(token)
        .map_err(|failure| Status::unauthenticated(failure.to_string()))?;
    if !principal.may(needed) {
        let held: Vec<&str> = principal.roles.iter().map(|role| role.as_str()).collect();
        return Err(Status::permission_denied(format!(
            "principal {} (roles: {}) may not call {path}: it needs the {needed} role",
            principal.name,
            held.join(", ")
        )));
    }
    Ok(Some(principal))
}

/// The token of an `authorization: Bearer <token>` header.
fn bearer(headers: &http::HeaderMap) -> Result<&str, AuthFailure> {
    let value = headers
        .get(http::header::AUTHORIZATION)
        .ok_or(AuthFailure::Missing)?;
    let text = value.to_str().map_err(|_| AuthFailure::Malformed)?;
    text.strip_prefix("Bearer ")
        .map(str::trim)
        .ok_or(AuthFailure::Malformed)
}
