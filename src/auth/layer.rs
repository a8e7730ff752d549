//! The one tower layer in front of every service: it finds the method's rule in the table
//! (`auth::rule_for`), authenticates the bearer token when the rule needs a role, refuses with
//! UNAUTHENTICATED or PERMISSION_DENIED before any handler runs, and hands the authenticated
//! [`Principal`] to the handler in the request's extensions (the CommandService records it as
//! `recorded_by`). In development mode (no token ever created, no `--require-auth`) it lets
//! everything through.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::codegen::http;
use tonic::codegen::Service;
use tonic::Status;
use tower_layer::Layer;

use super::tokens::{AuthFailure, TokenStore};
use super::{rule_for, Principal, Rule};

/// The layer (`Server::builder().layer(AuthLayer::new(store))`).
#[derive(Debug, Clone)]
pub struct AuthLayer {
    store: Arc<TokenStore>,
}

impl AuthLayer {
    /// Authorizes against the tokens of `store`.
    pub fn new(store: Arc<TokenStore>) -> AuthLayer {
        AuthLayer { store }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            inner,
            store: self.store.clone(),
        }
    }
}

/// The service the layer wraps around the server's routes.
#[derive(Debug, Clone)]
pub struct Auth<S> {
    inner: S,
    store: Arc<TokenStore>,
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
        match authorize(&self.store, request.uri().path(), request.headers()) {
            Ok(principal) => {
                if let Some(principal) = principal {
                    request.extensions_mut().insert(principal);
                }
                Box::pin(self.inner.call(request))
            }
            Err(status) => Box::pin(async move { Ok(status.into_http()) }),
        }
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
