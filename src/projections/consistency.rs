//! Consistency and time for queries: `min_position` (read your writes, bounded wait),
//! `as_of` (position or transaction time), and the position an answer is based on.

use std::time::{Duration, Instant};

use super::error::{ProjectionError, ProjectionResult};
use super::runner::Progress;
use crate::log::Log;
use crate::time::Timestamp;

/// How long a query waits for its read model by default.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5);
/// Longest wait a query may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// Which state of the ledger a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AsOf {
    /// What the read model says now (at its checkpoint).
    #[default]
    Latest,
    /// What the ledger said after position P (P included).
    Position(u64),
    /// What the ledger said at transaction time T: the highest position recorded at or
    /// before T.
    Time(Timestamp),
}

/// Consistency options of one query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    min_position: u64,
    as_of: AsOf,
    wait: Duration,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            min_position: 0,
            as_of: AsOf::Latest,
            wait: DEFAULT_WAIT,
        }
    }
}

impl ReadOptions {
    /// Latest, no minimum position, the default wait.
    pub fn latest() -> ReadOptions {
        ReadOptions::default()
    }
    /// Waits until the read model has applied `position` (e.g. the position a command
    /// returned) before answering.
    pub fn min_position(mut self, position: u64) -> Self {
        self.min_position = position;
        self
    }
    /// Reads as of a position or a time.
    pub fn as_of(mut self, as_of: AsOf) -> Self {
        self.as_of = as_of;
        self
    }
    /// How long to wait for the read model (the request deadline).
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }
    /// The minimum position.
    pub fn get_min_position(&self) -> u64 {
        self.min_position
    }
    /// The as-of choice.
    pub fn get_as_of(&self) -> AsOf {
        self.as_of
    }
    /// The wait.
    pub fn get_wait(&self) -> Duration {
        self.wait
    }
}

/// Resolves the position a query reads at: waits (up to the options' wait) until every read
/// model in `progress` has reached both `min_position` and the as-of position, then returns
/// the as-of position, or for `Latest` the lowest checkpoint of those read models.
pub(crate) fn resolve(
    log: &Log,
    progress: &[&Progress],
    options: &ReadOptions,
) -> ProjectionResult<Option<u64>> {
    if options.wait > MAX_WAIT {
        return Err(ProjectionError::InvalidArgument {
            field: "wait",
            reason: format!("{:?} is over the limit of {MAX_WAIT:?}", options.wait),
        });
    }
    // Every acknowledged position is at or below the head before its answer is sent, so a
    // position past it is none a client was given: refused at once, not waited for.
    let head = log.head();
    let past_head = |field, requested| ProjectionError::OutOfRange {
        field,
        requested,
        head,
    };
    if options.min_position > head {
        return Err(past_head("min_position", options.min_position));
    }
    let fixed = match options.as_of {
        AsOf::Latest => None,
        AsOf::Position(position) => {
            if position > head {
                return Err(past_head("as_of_position", position));
            }
            Some(position)
        }
        AsOf::Time(time) => Some(log.position_at_time(time)?),
    };
    let wanted = options.min_position.max(fixed.unwrap_or(0));
    let deadline = Instant::now() + options.wait;
    let mut lowest = u64::MAX;
    for progress in progress {
        lowest = lowest.min(progress.wait_blocking(wanted, deadline)?);
    }
    Ok(fixed)
}
