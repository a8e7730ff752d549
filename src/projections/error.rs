//! What can go wrong when reading or maintaining a read model.

use crate::log::LogError;

/// An error from the projections layer. The API maps each variant to one gRPC status.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The entity does not exist (at the position asked for). Maps to NOT_FOUND.
    #[error("{}", not_found(what, *position))]
    NotFound {
        /// What was looked up, e.g. `meeting <uuid>`.
        what: String,
        /// The position the read models answered at (None: looked up in the log at its head).
        position: Option<u64>,
    },
    /// The read model has not reached the position asked for before the deadline. Maps to
    /// UNAVAILABLE.
    #[error("read model {projection} has reached position {reached}, not {wanted}, by the deadline")]
    Unavailable {
        /// The projection waited on.
        projection: &'static str,
        /// The position the query needs.
        wanted: u64,
        /// The position the read model had reached.
        reached: u64,
    },
    /// A query argument is malformed or over a limit. Maps to INVALID_ARGUMENT.
    #[error("invalid argument {field}: {reason}")]
    InvalidArgument {
        /// The argument.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The position asked for is past the head of the log. Maps to OUT_OF_RANGE.
    #[error("{field} {requested} is past the head of the log ({head})")]
    OutOfRange {
        /// The request's field that named it (`as_of_position`, `min_position`).
        field: &'static str,
        /// The position asked for.
        requested: u64,
        /// The head.
        head: u64,
    },
    /// Reading the log failed.
    #[error("log: {0}")]
    Log(#[from] LogError),
    /// sled failed.
    #[error("storage: {0}")]
    Storage(#[from] sled::Error),
    /// Stored bytes (a read-model row or a log payload) do not decode. Maps to DATA_LOSS.
    #[error("data loss: {0}")]
    DataLoss(String),
    /// The runner stopped after an error; queries on its read models fail until reopened.
    #[error("projection runner stopped: {0}")]
    Stopped(String),
}

/// Shorthand for results of the projections layer.
pub type ProjectionResult<T> = Result<T, ProjectionError>;

/// The message of a NOT_FOUND: what, and as of which position when a read model answered (so
/// "not found" during a start's rebuild, or as of an early position, says when it held).
pub fn not_found(what: &str, position: Option<u64>) -> String {
    match position {
        Some(position) => format!("{what} not found (as of position {position})"),
        None => format!("{what} not found"),
    }
}
