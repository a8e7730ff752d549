//! Why a command was not recorded, as an enum of causes.

use uuid::Uuid;

use crate::domain::Rejection;
use crate::log::LogError;

/// An error from handling a command.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The domain refused the command: malformed fields, or a rule of the entity's state.
    #[error("rejected: {0}")]
    Rejected(Rejection),
    /// An entity the command names does not exist.
    #[error("{stream_id} does not exist")]
    ReferenceNotFound {
        /// The missing entity's stream.
        stream_id: String,
    },
    /// The entity is not at the version the client expected.
    #[error("{stream_id} is at version {current}, not {expected}")]
    WrongExpectedVersion {
        /// The entity's stream.
        stream_id: String,
        /// What the client expected.
        expected: u64,
        /// The current version.
        current: u64,
    },
    /// Other writers kept changing the entity; the command was retried and gave up.
    #[error("{stream_id} kept changing; gave up after {attempts} attempts")]
    Contended {
        /// The entity's stream.
        stream_id: String,
        /// Attempts made (MAX_CONFLICT_RETRIES + 1).
        attempts: usize,
    },
    /// The command id was already used by a different command.
    #[error("command id {command_id} was already used by a different command")]
    CommandIdReused {
        /// The reused id.
        command_id: Uuid,
    },
    /// The batch itself is malformed (empty, too large, a command id twice).
    #[error("invalid batch: {reason}")]
    InvalidBatch {
        /// What is wrong.
        reason: String,
    },
    /// The log failed (storage, integrity, limits, poisoned writer).
    #[error(transparent)]
    Log(#[from] LogError),
    /// A stored event of the entity does not decode: the history is unreadable.
    #[error("event at position {position} does not decode: {reason}")]
    Undecodable {
        /// Where.
        position: u64,
        /// Why.
        reason: String,
    },
    /// The blocking worker that loads state was lost (runtime shutting down).
    #[error("the ledger worker stopped: {0}")]
    WorkerLost(String),
}
