//! What can go wrong in the log, as an enum of causes.

use uuid::Uuid;

use super::envelope::ExpectedVersion;

/// An error from the event log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The request breaks a rule or limit (a named constant in `log::limits`).
    #[error("invalid append: {field}: {reason}")]
    Invalid {
        /// Which part of the request, e.g. `events[3].payload`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The request is over a size limit.
    #[error("{what} is {actual}, over the limit of {limit}")]
    TooLarge {
        /// What was measured.
        what: &'static str,
        /// Its size.
        actual: usize,
        /// The limit (a constant in `log::limits`).
        limit: usize,
    },
    /// The stream is not at the version the caller expected.
    #[error("stream {stream_id}: expected {expected:?}, current version is {current}")]
    WrongExpectedVersion {
        /// The stream.
        stream_id: String,
        /// What the caller expected.
        expected: ExpectedVersion,
        /// The stream's current version (0: the stream has no events).
        current: u64,
    },
    /// The command id was already used by a different request.
    #[error("command {command_id} was already recorded with a different request")]
    CommandIdReused {
        /// The reused id.
        command_id: Uuid,
    },
    /// A position beyond the head was asked for.
    #[error("position {requested} is past the head of the log ({head})")]
    OutOfRange {
        /// The position asked for.
        requested: u64,
        /// The current head.
        head: u64,
    },
    /// A stored record failed its integrity check; it is never returned.
    #[error("data loss at position {position}: {reason}")]
    DataLoss {
        /// Where (0 when the damage is in metadata, not a record).
        position: u64,
        /// What check failed.
        reason: String,
    },
    /// The data directory was written by an unknown format version.
    #[error("unsupported storage format version {found} (this build reads {supported})")]
    UnsupportedFormat {
        /// What the directory says.
        found: u8,
        /// What this build reads.
        supported: u8,
    },
    /// A flush or sync failed earlier; the log accepts no more writes until reopened.
    #[error("the log writer is poisoned after a failed write to disk: {cause}")]
    Poisoned {
        /// The original failure.
        cause: String,
    },
    /// Less than the configured minimum of disk space is free under the data directory: writes
    /// are refused until space returns (reads go on).
    #[error("disk full: {free} bytes free under {}, below the minimum of {minimum}", dir.display())]
    DiskFull {
        /// Bytes free when last measured.
        free: u64,
        /// The data directory.
        dir: std::path::PathBuf,
        /// The minimum (`LogConfig::min_free_disk`).
        minimum: u64,
    },
    /// A round of the writer panicked (a bug, its message in the server log); the log accepts
    /// no more writes until reopened.
    #[error("the log writer panicked (a bug: see the server log)")]
    WriterPanicked,
    /// The log is shutting down.
    #[error("the log is closed")]
    Closed,
    /// sled reported an error (other than damage, which is `DataLoss`; see the `From` impl).
    #[error("storage error: {0}")]
    Storage(sled::Error),
    /// A file operation failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// sled's own checksums failing (`sled::Error::Corruption`) is damage like our own: `DataLoss`.
/// Where the position being read is known, the reader names it instead (`LogError::damage_at`);
/// here it is 0 (metadata, or a place sled does not tell).
impl From<sled::Error> for LogError {
    fn from(error: sled::Error) -> LogError {
        match error {
            sled::Error::Corruption { .. } => LogError::DataLoss {
                position: 0,
                reason: format!("sled's files are damaged: {error}"),
            },
            other => LogError::Storage(other),
        }
    }
}

impl LogError {
    /// `error` met while reading `what` (a position, or the key range being read): sled's
    /// corruption becomes `DataLoss` naming it; anything else is unchanged.
    pub(crate) fn damage_at(error: sled::Error, position: u64, what: impl FnOnce() -> String) -> LogError {
        match error {
            sled::Error::Corruption { .. } => LogError::DataLoss {
                position,
                reason: format!("{}: sled's checksum failed: {error}", what()),
            },
            other => LogError::Storage(other),
        }
    }

    /// Whether the data directory is held by another process (a running server): sled could
    /// not take its file lock, even after `limits::OPEN_LOCK_WAIT`.
    pub fn is_locked(&self) -> bool {
        matches!(self, LogError::Storage(sled::Error::Io(error))
            if error.kind() == std::io::ErrorKind::WouldBlock
                || error.to_string().contains("could not acquire lock"))
    }
}

/// Shorthand for results of log operations.
pub type LogResult<T> = Result<T, LogError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleds_corruption_is_data_loss_naming_what_was_read_and_other_errors_stay_storage() {
        let corruption = || sled::Error::Corruption { at: None, bt: () };
        match LogError::damage_at(corruption(), 42, || "the chunk holding position 42".into()) {
            LogError::DataLoss { position, reason } => {
                assert_eq!(position, 42);
                assert!(
                    reason.starts_with(
                        "the chunk holding position 42: sled's checksum failed: Read corrupted data"
                    ),
                    "{reason}"
                );
            }
            other => panic!("expected DataLoss, got {other}"),
        }
        assert!(matches!(
            LogError::from(corruption()),
            LogError::DataLoss { position: 0, .. }
        ));
        let unsupported = || sled::Error::Unsupported("x".into());
        assert!(matches!(
            LogError::damage_at(unsupported(), 7, || "x".into()),
            LogError::Storage(sled::Error::Unsupported(_))
        ));
        assert!(matches!(
            LogError::from(unsupported()),
            LogError::Storage(sled::Error::Unsupported(_))
        ));
    }
}
