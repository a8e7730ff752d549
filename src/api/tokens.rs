//! `TokenService`: token management over gRPC for the admin role, the same operations as
//! `dipledger token` on the server's data directory (`auth::tokens`), each written to the
//! access log under the calling principal.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::convert;
use super::pb;
use super::pb::token_service_server::TokenService;
use super::status;
use crate::auth::tokens::{self, TokenEntry, TokenFileError, TokenStore};
use crate::auth::{access_log, Principal, Role};
use crate::log::{Clock, SystemClock};

/// The TokenService implementation.
#[derive(Debug, Clone)]
pub struct Tokens {
    store: Arc<TokenStore>,
}

impl Tokens {
    /// Manages the tokens of `store`'s data directory.
    pub fn new(store: Arc<TokenStore>) -> Tokens {
        Tokens { store }
    }

    /// Runs `change` on the token file off the async threads, then writes `action` to the
    /// access log as `who`.
    async fn update<T: Send + 'static>(
        &self,
        who: String,
        action: &'static str,
        change: impl FnOnce(&mut tokens::TokenFile) -> Result<(TokenEntry, T), TokenFileError> + Send + 'static,
    ) -> Result<(TokenEntry, T), Status> {
        let dir = self.store.dir().to_owned();
        tokio::task::spawn_blocking(move || {
            let (entry, value) = tokens::update(&dir, change).map_err(refused)?;
            let detail = format!("token {} of {}", entry.id, entry.principal);
            let now = SystemClock.now();
            access_log::append(&dir, &who, action, "OK", &detail, now)
                .map_err(|error| status::internal("writing the access log", error))?;
            Ok((entry, value))
        })
        .await
        .map_err(status::from_join_error)?
    }
}

/// Who calls (the principal the authorization layer authenticated; `dev-unauthenticated` in
/// development mode).
fn caller<T>(request: &Request<T>) -> String {
    request
        .extensions()
        .get::<Principal>()
        .map_or(super::commands::DEVELOPMENT_PRINCIPAL, |principal| {
            principal.name.as_str()
        })
        .to_owned()
}

fn refused(error: TokenFileError) -> Status {
    match error {
        TokenFileError::Refused(reason) => Status::invalid_argument(reason),
        other => status::internal("the token file", other),
    }
}

fn view(entry: &TokenEntry) -> pb::TokenView {
    pb::TokenView {
        id: entry.id.clone(),
        principal: entry.principal.clone(),
        roles: entry.roles.iter().map(|role| role.as_str().to_owned()).collect(),
        created_at: Some(convert::timestamp_to_pb(entry.created_at)),
        expires_at: entry.expires_at.map(convert::timestamp_to_pb),
        revoked_at: entry.revoked_at.map(convert::timestamp_to_pb),
    }
}

#[tonic::async_trait]
impl TokenService for Tokens {
    async fn create_token(
        &self,
        request: Request<pb::CreateTokenRequest>,
    ) -> Result<Response<pb::CreateTokenResponse>, Status> {
        let who = caller(&request);
        let request = request.into_inner();
        let mut violations = convert::Violations::new();
        let roles: Vec<Role> = request
            .roles
            .iter()
            .enumerate()
            .filter_map(|(index, name)| {
                let role = Role::parse(name);
                if role.is_none() {
                    violations.add(
                        format!("roles[{index}]"),
                        format!(
                            "{} is not one of reader, recorder, auditor, admin",
                            crate::domain::common::quoted(name)
                        ),
                    );
                }
                role
            })
            .collect();
        let now = SystemClock.now();
        let expires_at = request
            .expires_at
            .as_ref()
            .map(|at| convert::timestamp_from_pb(at, "expires_at", &mut violations));
        if expires_at.is_some_and(|at| at <= now) {
            violations.add("expires_at", "is not in the future");
        }
        violations
            .finish(())
            .map_err(|violations| status::invalid_argument(&violations))?;
        let principal = request.principal;
        let (entry, secret) = self
            .update(who, "token.create", move |file| {
                file.create(&principal, &roles, expires_at, now)
            })
            .await?;
        Ok(Response::new(pb::CreateTokenResponse {
            token: Some(view(&entry)),
            secret,
        }))
    }

    async fn list_tokens(
        &self,
        _request: Request<pb::ListTokensRequest>,
    ) -> Result<Response<pb::ListTokensResponse>, Status> {
        let dir = self.store.dir().to_owned();
        let file = tokio::task::spawn_blocking(move || tokens::TokenFile::load(&dir))
            .await
            .map_err(status::from_join_error)?
            .map_err(refused)?;
        Ok(Response::new(pb::ListTokensResponse {
            tokens: file.tokens.iter().map(view).collect(),
            auth_enabled: file.auth_enabled,
        }))
    }

    async fn revoke_token(
        &self,
        request: Request<pb::RevokeTokenRequest>,
    ) -> Result<Response<pb::RevokeTokenResponse>, Status> {
        let who = caller(&request);
        let id = request.into_inner().id;
        let now = SystemClock.now();
        let (entry, ()) = self
            .update(who, "token.revoke", move |file| {
                file.revoke(&id, now).map(|entry| (entry, ()))
            })
            .await?;
        Ok(Response::new(pb::RevokeTokenResponse {
            token: Some(view(&entry)),
        }))
    }
}
