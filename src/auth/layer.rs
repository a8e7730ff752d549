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

use super::access_log::{self, AccessLevel, RefusalBudget};
use super::limits::{InFlight, Limiter, PrincipalLimits};
use super::tokens::{AuthFailure, TokenStore};
use super::{rule_for, Principal, Role, Rule};

/// How often a streaming response re-checks its token.
pub const REVALIDATE_INTERVAL: Duration = Duration::from_secs(1);

/// Where a layer outside this one (the request log) learns who called: put it in the
/// request's extensions before this layer runs; the principal's name is set once it is known
/// (authenticated, or refused with a known name). Nothing is set in development mode.
#[derive(Debug, Clone, Default)]
pub struct CallerSlot(pub Arc<std::sync::OnceLock<String>>);

/// The layer (`Server::builder().layer(AuthLayer::new(store, limits))`).
#[derive(Debug, Clone)]
pub struct AuthLayer {
    store: Arc<TokenStore>,
    limiter: Arc<Limiter>,
    refusals: Arc<RefusalBudget>,
    access: AccessLevel,
}

impl AuthLayer {
    /// Authorizes against the tokens of `store`, with `limits` for every principal.
    pub fn new(store: Arc<TokenStore>, limits: PrincipalLimits) -> AuthLayer {
        AuthLayer {
            store,
            limiter: Arc::new(Limiter::new(limits)),
            refusals: Arc::default(),
            access: AccessLevel::default(),
        }
    }

    /// Also records the allowed calls `access` names in the access log.
    pub fn with_access_level(mut self, access: AccessLevel) -> AuthLayer {
        self.access = access;
        self
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            inner,
            store: self.store.clone(),
            limiter: self.limiter.clone(),
            refusals: self.refusals.clone(),
            access: self.access,
        }
    }
}

/// The service the layer wraps around the server's routes.
#[derive(Debug, Clone)]
pub struct Auth<S> {
    inner: S,
    store: Arc<TokenStore>,
    limiter: Arc<Limiter>,
    refusals: Arc<RefusalBudget>,
    access: AccessLevel,
}

type Answer<E> = Pin<Box<dyn Future<Output = Result<http::Response<tonic::body::Body>, E>> + Send>>;

impl<S, B> Service<http::Request<B>> for Auth<S>
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
        let path = request.uri().path().to_owned();
        let slot = request.extensions().get::<CallerSlot>().cloned();
        // The certificate is read only for a call that needs a principal and sends no token.
        let certified = || client_certificate_name(&request);
        let principal = match authorize(&self.store, &path, request.headers(), certified) {
            Ok(principal) => principal,
            Err((who, status)) => {
                if let (Some(slot), Some(who)) = (&slot, &who) {
                    let _ = slot.0.set(who.clone());
                }
                return self.refuse(who, path, status);
            }
        };
        let Some(principal) = principal else {
            return Box::pin(self.inner.call(request));
        };
        if let Some(slot) = &slot {
            let _ = slot.0.set(principal.name.clone());
        }
        let command = rule_for(&path) == Rule::Needs(Role::Recorder);
        let in_flight = match self.limiter.admit(&principal.name, command) {
            Ok(in_flight) => in_flight,
            Err(status) => return self.refuse(Some(principal.name), path, status),
        };
        let credential = match bearer(request.headers()) {
            Ok(token) => Credential::Token(token.to_owned()),
            Err(_) => Credential::Certificate(principal.name.clone()),
        };
        let allowed = self
            .access
            .records(command)
            .then(|| (self.store.dir().to_owned(), principal.name.clone(), path));
        request.extensions_mut().insert(principal);
        let answer = self.inner.call(request);
        let store = self.store.clone();
        Box::pin(async move {
            if let Some((dir, principal, path)) = allowed {
                record_allowed(dir, principal, path).await;
            }
            let response = answer.await?;
            Ok(response.map(|body| {
                tonic::body::Body::new(Guarded {
                    inner: body,
                    store,
                    credential,
                    tick: None,
                    _in_flight: in_flight,
                    ended: false,
                })
            }))
        })
    }
}

/// Writes an allowed call to the access log (`--access-log writes|all`), before it runs.
async fn record_allowed(dir: std::path::PathBuf, principal: String, path: String) {
    let now = crate::log::Clock::now(&crate::log::SystemClock);
    let written =
        tokio::task::spawn_blocking(move || access_log::append(&dir, &principal, &path, "ALLOWED", "", now))
            .await;
    if !matches!(written, Ok(Ok(_))) {
        eprintln!("dipledger: an allowed call could not be written to the access log: {written:?}");
    }
}

impl<S> Auth<S> {
    /// Answers `status`, after writing the refusal to the access log (within the budget; a
    /// refusal the log cannot take is still answered, and the failure said on stderr).
    fn refuse<E: Send + 'static>(&self, who: Option<String>, path: String, status: Status) -> Answer<E> {
        let logged = self.refusals.admit();
        let dir = self.store.dir().to_owned();
        Box::pin(async move {
            if let Some(suppressed) = logged {
                let mut detail = status.message().to_owned();
                if suppressed > 0 {
                    detail = format!("{detail} (and {suppressed} more refusals not written one by one)");
                }
                let outcome = crate::api::status::code_name(status.code()).to_owned();
                let principal = who.unwrap_or_else(|| "anonymous".into());
                let now = crate::log::Clock::now(&crate::log::SystemClock);
                let written = tokio::task::spawn_blocking(move || {
                    access_log::append(&dir, &principal, &path, &outcome, &detail, now)
                })
                .await;
                if !matches!(written, Ok(Ok(_))) {
                    eprintln!(
                        "dipledger: a refused request could not be written to the access log: {written:?}"
                    );
                }
            }
            Ok(status.into_http())
        })
    }
}

/// A response body that holds its request's place in flight until it ends, and ends a stream
/// with UNAUTHENTICATED once its token stops authenticating. The re-check timer starts only
/// when the body first has to wait (a stream): a unary answer, ready at once, costs no timer.
struct Guarded {
    inner: tonic::body::Body,
    store: Arc<TokenStore>,
    credential: Credential,
    tick: Option<tokio::time::Interval>,
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
        let this = &mut *self;
        if let Some(tick) = this.tick.as_mut() {
            while tick.poll_tick(context).is_ready() {
                if let Err(failure) = this.credential.check(&this.store) {
                    this.ended = true;
                    return Poll::Ready(Some(Ok(Frame::trailers(unauthenticated_trailers(failure)))));
                }
            }
        }
        let frame = Pin::new(&mut this.inner).poll_frame(context);
        if frame.is_pending() && this.tick.is_none() {
            let start = tokio::time::Instant::now() + REVALIDATE_INTERVAL;
            let mut tick = tokio::time::interval_at(start, REVALIDATE_INTERVAL);
            // Registers the timer's waker, so an idle stream is woken to re-check.
            let _ = tick.poll_tick(context);
            this.tick = Some(tick);
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The principal a request acts as (None: development mode or an open method), or the refusal
/// with the principal's name when it is known.
pub fn authorize(
    store: &TokenStore,
    path: &str,
    headers: &http::HeaderMap,
    certified: impl FnOnce() -> Option<String>,
) -> Result<Option<Principal>, (Option<String>, Status)> {
    if !store.auth_required() {
        return Ok(None);
    }
    let needed = match rule_for(path) {
        Rule::Open => return Ok(None),
        Rule::Deny => {
            let status =
                Status::permission_denied(format!("{path} is not in the authorization table: denied"));
            return Err((None, status));
        }
        Rule::Needs(role) => role,
    };
    let unauthenticated = |failure: AuthFailure| (None, Status::unauthenticated(failure.to_string()));
    // A bearer token when one is sent; else a verified client certificate's CN.
    let principal = match bearer(headers) {
        Err(AuthFailure::Missing) => match certified() {
            Some(name) => store.authenticate_name(&name),
            None => Err(AuthFailure::Missing),
        },
        token => token.and_then(|token| store.authenticate(token)),
    }
    .map_err(unauthenticated)?;
    if !principal.may(needed) {
        let held: Vec<&str> = principal.roles.iter().map(|role| role.as_str()).collect();
        let status = Status::permission_denied(format!(
            "principal {} (roles: {}) may not call {path}: it needs the {needed} role",
            principal.name,
            held.join(", ")
        ));
        return Err((Some(principal.name), status));
    }
    Ok(Some(principal))
}

/// The trailers that end a stream whose token stopped working.
fn unauthenticated_trailers(failure: AuthFailure) -> http::HeaderMap {
    let mut trailers = http::HeaderMap::new();
    let status = Status::unauthenticated(failure.to_string());
    if status.add_header(&mut trailers).is_err() {
        trailers.insert("grpc-status", http::HeaderValue::from(status.code() as i32));
    }
    trailers
}

/// What authenticated a request, re-checked while its response streams.
enum Credential {
    /// A bearer token.
    Token(String),
    /// A verified client certificate naming this principal.
    Certificate(String),
}

impl Credential {
    fn check(&self, store: &TokenStore) -> Result<Principal, AuthFailure> {
        match self {
            Credential::Token(token) => store.authenticate(token),
            Credential::Certificate(name) => store.authenticate_name(name),
        }
    }
}

/// The subject CN of the client certificate the TLS handshake verified against `--client-ca`,
/// if there is one (tonic puts the peer's chain in the request's extensions).
fn client_certificate_name<B>(request: &http::Request<B>) -> Option<String> {
    use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
    use x509_cert::der::asn1::{PrintableStringRef, Utf8StringRef};
    use x509_cert::der::{oid::ObjectIdentifier, Decode};
    const COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
    let chain = request
        .extensions()
        .get::<TlsConnectInfo<TcpConnectInfo>>()?
        .peer_certs()?;
    let certificate = x509_cert::Certificate::from_der(chain.first()?.as_ref()).ok()?;
    let subject = &certificate.tbs_certificate.subject;
    let common_name = subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|attribute| attribute.oid == COMMON_NAME)?;
    let value = &common_name.value;
    value
        .decode_as::<Utf8StringRef<'_>>()
        .map(|text| text.as_str().to_owned())
        .or_else(|_| {
            value
                .decode_as::<PrintableStringRef<'_>>()
                .map(|text| text.as_str().to_owned())
        })
        .ok()
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
