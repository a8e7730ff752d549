//! gRPC health (`grpc.health.v1`) per service, kept by one task of the server.
//!
//! | service | SERVING while |
//! |---|---|
//! | `""` (the server) | the server runs (NOT_SERVING from the start of a shutdown) |
//! | `dipledger.v1.EventStoreService` | the server runs (reads need only the log) |
//! | `dipledger.v1.CommandService` | the log's writer is not poisoned (a failed journal write, fdatasync, apply or checkpoint poisons it until restart) |
//! | `dipledger.v1.QueryService` | the read models have replayed the log up to its head at start, and their runner has not stopped at an error |
//! | `dipledger.v1.TokenService` | the server runs |
//! | `dipledger.v1.AuditService` | the server runs (proofs need only the log; a refusal to sign is answered per call) |
//!
//! Neither the poisoning nor the runner's progress notifies anyone, so the task looks every
//! [`HEALTH_REFRESH_INTERVAL`] (a mutex and a few atomics) and changes a status only when its
//! value changes. Shutdown turns every service NOT_SERVING (the task ends after that, so no
//! later look can turn one back).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

use crate::log::Log;
use crate::projections::{ProjectionName, Projections};

/// How often the health task looks at the writer and the read models.
pub const HEALTH_REFRESH_INTERVAL: Duration = Duration::from_millis(250);

/// The gRPC names of the services health reports on, beside the server's `""`.
pub const COMMAND_SERVICE: &str = "dipledger.v1.CommandService";
/// See [`COMMAND_SERVICE`].
pub const QUERY_SERVICE: &str = "dipledger.v1.QueryService";
/// See [`COMMAND_SERVICE`].
pub const EVENT_STORE_SERVICE: &str = "dipledger.v1.EventStoreService";
/// See [`COMMAND_SERVICE`].
pub const TOKEN_SERVICE: &str = "dipledger.v1.TokenService";
/// See [`COMMAND_SERVICE`].
pub const AUDIT_SERVICE: &str = "dipledger.v1.AuditService";

/// What the health task watches.
pub struct HealthWatch {
    reporter: HealthReporter,
    log: Log,
    projections: Arc<Projections>,
    /// The head when the server started: the read models are replaying until they reach it.
    replay_target: u64,
    replayed: bool,
    commands: Option<bool>,
    queries: Option<bool>,
}

impl HealthWatch {
    /// Sets every service's first status (before the server accepts a call) and returns the
    /// watch to [`HealthWatch::run`].
    pub async fn start(reporter: HealthReporter, log: Log, projections: Arc<Projections>) -> HealthWatch {
        for service in ["", EVENT_STORE_SERVICE, TOKEN_SERVICE, AUDIT_SERVICE] {
            reporter.set_service_status(service, ServingStatus::Serving).await;
        }
        let replay_target = log.head();
        let mut watch = HealthWatch {
            reporter,
            log,
            projections,
            replay_target,
            replayed: false,
            commands: None,
            queries: None,
        };
        watch.refresh().await;
        watch
    }

    /// Looks every [`HEALTH_REFRESH_INTERVAL`] until `stop` is set, then turns every service
    /// NOT_SERVING.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(HEALTH_REFRESH_INTERVAL) => self.refresh().await,
                _ = async { drop(stop.wait_for(|stopping| *stopping).await) } => break,
            }
        }
        for service in [
            "",
            EVENT_STORE_SERVICE,
            TOKEN_SERVICE,
            AUDIT_SERVICE,
            COMMAND_SERVICE,
            QUERY_SERVICE,
        ] {
            self.reporter
                .set_service_status(service, ServingStatus::NotServing)
                .await;
        }
    }

    /// Whether the read models are still replaying the log up to the head at start.
    pub fn replaying(&self) -> bool {
        !self.replayed
    }

    async fn refresh(&mut self) {
        if !self.replayed {
            self.replayed = ProjectionName::ALL
                .iter()
                .all(|name| self.projections.checkpoint(*name) >= self.replay_target);
            if self.replayed {
                tracing::info!(position = self.replay_target, "read models replayed the log");
            }
        }
        let commands = self.log.poisoned().is_none();
        let queries = self.replayed && self.projections.failure().is_none();
        if self.commands != Some(commands) {
            if !commands {
                tracing::error!(cause = ?self.log.poisoned(), "commands: NOT_SERVING, the log writer is poisoned");
            }
            self.set(COMMAND_SERVICE, commands).await;
            self.commands = Some(commands);
        }
        if self.queries != Some(queries) {
            if let Some(failure) = self.projections.failure() {
                tracing::error!(%failure, "queries: NOT_SERVING, the read models stopped");
            }
            self.set(QUERY_SERVICE, queries).await;
            self.queries = Some(queries);
        }
    }

    async fn set(&self, service: &str, serving: bool) {
        let status = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        self.reporter.set_service_status(service, status).await;
    }
}
