//! A task of the server that looks at the log's writer and the read models every
//! [`MONITOR_INTERVAL`] and says in the log (`tracing`, target `dipledger::monitor`) what an
//! operator should know:
//!
//! - WARN `slow fsync` when the journal's write + fdatasync took more than [`SLOW_FSYNC`] on
//!   average over the interval (the writer counts time and rounds; a single slow round inside
//!   a busy second shows in the mean, not alone);
//! - WARN `read model lagging` when a read model is more than [`LAGGING_READ_MODEL_EVENTS`]
//!   behind the head (once it has replayed the log after the start), and INFO when it has caught
//!   up again; one line per change, not one per look.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::log::{Log, WriterStats};
use crate::projections::{ProjectionName, Projections};

/// How often the monitor looks.
pub const MONITOR_INTERVAL: Duration = Duration::from_secs(1);
/// A mean journal write + fdatasync above this over an interval is warned about.
pub const SLOW_FSYNC: Duration = Duration::from_millis(100);
/// A read model further behind the head than this many events is warned about.
pub const LAGGING_READ_MODEL_EVENTS: u64 = 10_000;

/// The monitor's state between two looks.
pub struct Monitor {
    log: Log,
    projections: Arc<Projections>,
    last: WriterStats,
    /// The head at start: lag is not warned about before every read model has reached it.
    replay_target: u64,
    replayed: bool,
    lagging: Vec<bool>,
}

impl Monitor {
    /// A monitor of `log` and `projections`, from their state now.
    pub fn new(log: Log, projections: Arc<Projections>) -> Monitor {
        Monitor {
            last: log.stats(),
            replay_target: log.head(),
            replayed: false,
            lagging: vec![false; ProjectionName::ALL.len()],
            log,
            projections,
        }
    }

    /// Looks every [`MONITOR_INTERVAL`] until `stop` is set.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(MONITOR_INTERVAL) => self.look(),
                _ = async { drop(stop.wait_for(|stopping| *stopping).await) } => return,
            }
        }
    }

    /// One look: fsync time over the interval, then each read model's lag.
    pub fn look(&mut self) {
        let stats = self.log.stats();
        let syncs = stats.syncs.saturating_sub(self.last.syncs);
        let micros = stats.sync_micros.saturating_sub(self.last.sync_micros);
        self.last = stats;
        if let Some(mean) = micros.checked_div(syncs).map(Duration::from_micros) {
            if mean > SLOW_FSYNC {
                tracing::warn!(
                    target: "dipledger::monitor",
                    mean_ms = mean.as_secs_f64() * 1e3,
                    fsyncs = syncs,
                    threshold_ms = SLOW_FSYNC.as_millis() as u64,
                    "slow fsync: the journal's write and fdatasync took {mean:?} on average; check the disk"
                );
            }
        }
        self.look_at_read_models();
    }

    fn look_at_read_models(&mut self) {
        let head = self.log.head();
        let checkpoints: Vec<u64> = ProjectionName::ALL
            .iter()
            .map(|name| self.projections.checkpoint(*name))
            .collect();
        if !self.replayed {
            self.replayed = checkpoints
                .iter()
                .all(|checkpoint| *checkpoint >= self.replay_target);
            return;
        }
        for (index, name) in ProjectionName::ALL.iter().enumerate() {
            let lag = head.saturating_sub(checkpoints[index]);
            let lagging = lag > LAGGING_READ_MODEL_EVENTS;
            if lagging && !self.lagging[index] {
                tracing::warn!(
                    target: "dipledger::monitor",
                    read_model = name.as_str(),
                    lag,
                    head,
                    "read model lagging: {lag} events behind the head"
                );
            } else if !lagging && self.lagging[index] {
                tracing::info!(target: "dipledger::monitor", read_model = name.as_str(), lag, "read model caught up");
            }
            self.lagging[index] = lagging;
        }
    }
}
