//! The access log: an append-only, hash-chained JSON-lines file in the data directory
//! (`access.jsonl`), never the event log, so a refused request never moves the log's head and
//! strangers cannot grow the immutable log. It records token creation and revocation and every
//! refused request (refusals beyond [`MAX_REFUSALS_LOGGED_PER_SECOND`] are counted into the
//! next entry instead of written one by one, so a flood of refusals cannot flood the disk).
//! Each entry's `hash` is SHA-256 of the previous entry's hash and the entry's own fields, so
//! an auditor who holds any later hash can detect a changed or removed line.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::tokens::LOCK_WAIT;
use crate::time::Timestamp;

/// Which allowed calls the access log records besides refusals and token changes (always).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AccessLevel {
    /// Refusals and token changes only.
    #[default]
    Refusals,
    /// Also every allowed command (CommandService).
    Writes,
    /// Also every allowed call, reads included.
    All,
}

impl AccessLevel {
    /// Whether an allowed call is recorded (`command`: a CommandService call).
    pub fn records(self, command: bool) -> bool {
        match self {
            AccessLevel::Refusals => false,
            AccessLevel::Writes => command,
            AccessLevel::All => true,
        }
    }
}

impl std::str::FromStr for AccessLevel {
    type Err = String;
    fn from_str(text: &str) -> Result<AccessLevel, String> {
        match text {
            "refusals" => Ok(AccessLevel::Refusals),
            "writes" => Ok(AccessLevel::Writes),
            "all" => Ok(AccessLevel::All),
            other => Err(format!("{other:?} is not refusals, writes or all")),
        }
    }
}

/// The access log's name in the data directory.
pub const ACCESS_LOG_FILE: &str = "access.jsonl";
/// Most entries one read returns.
pub const MAX_ACCESS_READ: usize = 1_000;
/// Most refused requests written one by one per second; the rest are counted.
pub const MAX_REFUSALS_LOGGED_PER_SECOND: u32 = 100;
/// Longest `detail` kept, in characters.
pub const MAX_DETAIL_CHARS: usize = 256;
/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Bytes read back from the end of the file to find the last entry (an entry is far shorter:
/// its fields are bounded).
const TAIL_BYTES: u64 = 16 * 1024;

/// One line of the access log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEntry {
    /// 1, 2, 3, ... in the order written.
    pub seq: u64,
    /// When it was written.
    pub at: Timestamp,
    /// Who acted (a principal, `local-admin` for the CLI on the data directory, `anonymous`).
    pub principal: String,
    /// What was attempted: a gRPC path, `token.create`, `token.revoke`.
    pub action: String,
    /// `OK` or the status code of the refusal (`UNAUTHENTICATED`).
    pub outcome: String,
    /// What else is known (bounded).
    pub detail: String,
    /// The previous entry's hash ([`GENESIS`] for the first).
    pub prev: String,
    /// SHA-256 over `prev` and the fields above, hex.
    pub hash: String,
}

impl AccessEntry {
    /// The hash this entry must carry.
    pub fn expected_hash(&self) -> String {
        let mut hasher = Sha256::new();
        for part in [
            self.prev.as_str(),
            &self.seq.to_string(),
            &self.at.unix_micros().to_string(),
            &self.principal,
            &self.action,
            &self.outcome,
            &self.detail,
        ] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        hasher
            .finalize()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

/// Errors of the access log.
#[derive(Debug, thiserror::Error)]
pub enum AccessLogError {
    /// Reading or writing failed.
    #[error("access log: {0}")]
    Io(#[from] std::io::Error),
    /// A line does not parse or does not chain.
    #[error("access log line {line} is damaged: {reason}")]
    Damaged {
        /// 1-based line number.
        line: u64,
        /// Why.
        reason: String,
    },
}

/// Appends an entry under the file's lock (the server and `dipledger token` may both write).
pub fn append(
    dir: &Path,
    principal: &str,
    action: &str,
    outcome: &str,
    detail: &str,
    at: Timestamp,
) -> Result<AccessEntry, AccessLogError> {
    let _lock = Lock::acquire(dir)?;
    let path = dir.join(ACCESS_LOG_FILE);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(&path)?;
    let last = last_entry(&mut file)?;
    let mut entry = AccessEntry {
        seq: last.as_ref().map_or(1, |last| last.seq + 1),
        at,
        principal: principal.to_owned(),
        action: action.to_owned(),
        outcome: outcome.to_owned(),
        detail: crate::domain::common::cut(detail, MAX_DETAIL_CHARS).into_owned(),
        prev: last.map_or_else(|| GENESIS.to_owned(), |last| last.hash),
        hash: String::new(),
    };
    entry.hash = entry.expected_hash();
    let mut line = serde_json::to_string(&entry).expect("an entry serializes");
    line.push('\n');
    file.write_all(line.as_bytes())?;
    file.sync_data()?;
    Ok(entry)
}

/// Entries with `seq` after `after`, at most `limit` (capped at [`MAX_ACCESS_READ`]), each
/// checked against the one before it.
pub fn read(dir: &Path, after: u64, limit: usize) -> Result<Vec<AccessEntry>, AccessLogError> {
    let text = match std::fs::read_to_string(dir.join(ACCESS_LOG_FILE)) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error.into()),
    };
    let mut previous = GENESIS.to_owned();
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index as u64 + 1;
        let damaged = |reason: String| AccessLogError::Damaged { line: number, reason };
        let entry: AccessEntry = serde_json::from_str(line).map_err(|error| damaged(error.to_string()))?;
        if entry.seq != number || entry.prev != previous || entry.hash != entry.expected_hash() {
            return Err(damaged("it does not continue the chain".into()));
        }
        previous = entry.hash.clone();
        if entry.seq > after && out.len() < limit.min(MAX_ACCESS_READ) {
            out.push(entry);
        }
    }
    Ok(out)
}

/// The last entry of the file, read from its tail.
fn last_entry(file: &mut std::fs::File) -> Result<Option<AccessEntry>, AccessLogError> {
    let len = file.metadata()?.len();
    let start = len.saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = String::new();
    file.read_to_string(&mut tail)?;
    let Some(line) = tail.lines().rev().find(|line| !line.is_empty()) else {
        return Ok(None);
    };
    serde_json::from_str(line)
        .map(Some)
        .map_err(|error| AccessLogError::Damaged {
            line: 0,
            reason: format!("the last line: {error}"),
        })
}

/// The access log's lock file, held while an entry is written.
struct Lock(std::path::PathBuf);

impl Lock {
    fn acquire(dir: &Path) -> Result<Lock, AccessLogError> {
        let path = dir.join(format!("{ACCESS_LOG_FILE}.lock"));
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(_) => return Ok(Lock(path)),
                Err(error)
                    if error.kind() == std::io::ErrorKind::AlreadyExists && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(error) => return Err(error.into()),
            }
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Which refusals are written one by one: at most [`MAX_REFUSALS_LOGGED_PER_SECOND`] per
/// second; the others are counted and the count goes into the next written entry.
#[derive(Debug)]
pub struct RefusalBudget {
    state: Mutex<(Instant, u32, u64)>,
}

impl Default for RefusalBudget {
    fn default() -> Self {
        RefusalBudget {
            state: Mutex::new((Instant::now(), 0, 0)),
        }
    }
}

impl RefusalBudget {
    /// `Some(suppressed since the last written one)` when this refusal is to be written.
    pub fn admit(&self) -> Option<u64> {
        let mut state = self.state.lock().expect("refusal budget");
        if state.0.elapsed() >= Duration::from_secs(1) {
            state.0 = Instant::now();
            state.1 = 0;
        }
        if state.1 >= MAX_REFUSALS_LOGGED_PER_SECOND {
            state.2 += 1;
            return None;
        }
        state.1 += 1;
        Some(std::mem::take(&mut state.2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_chain_and_a_changed_line_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let at = Timestamp::from_unix_micros(1_764_633_600_000_000);
        let first = append(dir.path(), "local-admin", "token.create", "OK", "id 1", at).unwrap();
        let second = append(
            dir.path(),
            "anonymous",
            "/dipledger.v1.CommandService/RegisterParty",
            "UNAUTHENTICATED",
            "no bearer token",
            at,
        )
        .unwrap();
        assert_eq!((first.seq, second.seq), (1, 2));
        assert_eq!(first.prev, GENESIS);
        assert_eq!(second.prev, first.hash);
        assert_eq!(read(dir.path(), 0, 10).unwrap(), [first, second.clone()]);
        assert_eq!(read(dir.path(), 1, 10).unwrap(), [second]);
        let path = dir.path().join(ACCESS_LOG_FILE);
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("anonymous", "someone-else");
        std::fs::write(&path, text).unwrap();
        assert!(matches!(
            read(dir.path(), 0, 10),
            Err(AccessLogError::Damaged { line: 2, .. })
        ));
    }

    #[test]
    fn refusals_past_the_budget_are_counted_not_written() {
        let budget = RefusalBudget::default();
        for _ in 0..MAX_REFUSALS_LOGGED_PER_SECOND {
            assert_eq!(budget.admit(), Some(0));
        }
        assert_eq!(budget.admit(), None);
        assert_eq!(budget.admit(), None);
        budget.state.lock().unwrap().0 -= Duration::from_secs(1);
        assert_eq!(
            budget.admit(),
            Some(2),
            "the next written entry carries the count"
        );
    }
}
