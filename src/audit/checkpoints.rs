//! Signed checkpoints: the server signs one when it starts and then, while the log grows, at
//! most `interval` after the first unsigned commit or as soon as `every_events` are unsigned,
//! whichever comes first. Before signing it checks, with an RFC 9162 consistency proof computed
//! from the stored tree, that the new tree extends the last signed one; if not (the stored
//! tree or records were rewritten), it signs nothing more and says why. Every checkpoint is
//! kept in the log's sled tree (key `K` + tree size), so a client can ask for the smallest one
//! covering a position.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::keys::LedgerKeys;
use super::note::{self, Checkpoint, NoteVerifier};
use crate::log::{Log, LogError};
use crate::merkle;

/// Longest time a commit waits for a checkpoint covering it, by default.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);
/// Most unsigned events before a checkpoint is signed at once, by default.
pub const DEFAULT_CHECKPOINT_EVENTS: u64 = 10_000;
/// Bounds of the interval a server accepts.
pub const MIN_CHECKPOINT_INTERVAL: Duration = Duration::from_millis(10);
/// See [`MIN_CHECKPOINT_INTERVAL`].
pub const MAX_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(3600);

/// A signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// What it says.
    pub checkpoint: Checkpoint,
    /// The signed note, as handed out.
    pub note: String,
}

/// Why a checkpoint could not be signed or found.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The log failed (damage, out of range).
    #[error(transparent)]
    Log(#[from] LogError),
    /// The stored tree does not extend the last signed checkpoint: history was rewritten.
    #[error("refusing to sign: the tree of {size} records does not extend the checkpoint of {signed} records signed before ({reason}); the data directory's records or tree were altered")]
    Inconsistent {
        /// The size of the tree now.
        size: u64,
        /// The size of the last signed checkpoint.
        signed: u64,
        /// What failed.
        reason: String,
    },
    /// A stored checkpoint cannot be read.
    #[error("stored checkpoint: {0}")]
    Note(#[from] note::NoteError),
}

/// The signing policy.
#[derive(Debug, Clone, Copy)]
pub struct CheckpointPolicy {
    /// Longest time a commit waits for a checkpoint.
    pub interval: Duration,
    /// Most unsigned events before signing at once.
    pub every_events: u64,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        CheckpointPolicy {
            interval: DEFAULT_CHECKPOINT_INTERVAL,
            every_events: DEFAULT_CHECKPOINT_EVENTS,
        }
    }
}

/// The signer and the signed checkpoints of one log. Cheap to clone.
#[derive(Clone)]
pub struct Checkpoints {
    inner: Arc<Inner>,
}

struct Inner {
    log: Log,
    keys: LedgerKeys,
    latest: watch::Sender<Option<Signed>>,
    /// Why signing stopped, once it has.
    refused: Mutex<Option<String>>,
}

impl Checkpoints {
    /// Loads the last stored checkpoint and signs one for the current head (unless that is
    /// signed already). A refusal to sign is kept (see [`Checkpoints::refused`]), not returned:
    /// the server still serves what it holds.
    pub fn open(log: Log, keys: LedgerKeys) -> Result<Checkpoints, CheckpointError> {
        let latest = match log.latest_checkpoint()? {
            Some((_, note)) => Some(Signed {
                checkpoint: Checkpoint::parse(note::note_text(&note)?)?,
                note,
            }),
            None => None,
        };
        let checkpoints = Checkpoints {
            inner: Arc::new(Inner {
                log,
                keys,
                latest: watch::channel(latest).0,
                refused: Mutex::new(None),
            }),
        };
        checkpoints.sign_head();
        Ok(checkpoints)
    }

    /// The origin line of this ledger's checkpoints.
    pub fn origin(&self) -> String {
        self.inner.keys.origin()
    }

    /// The verifier key of the current signing key.
    pub fn verifier(&self) -> NoteVerifier {
        self.inner.keys.verifier()
    }

    /// The latest signed checkpoint.
    pub fn latest(&self) -> Option<Signed> {
        self.inner.latest.borrow().clone()
    }

    /// Why the server stopped signing, if it has.
    pub fn refused(&self) -> Option<String> {
        self.inner.refused.lock().expect("refusal lock").clone()
    }

    /// The smallest stored checkpoint covering `position`, waiting up to `wait` for one to be
    /// signed. `None` when none came in time.
    pub async fn at_or_after(
        &self,
        position: u64,
        wait: Duration,
    ) -> Result<Option<Signed>, CheckpointError> {
        let mut latest = self.inner.latest.subscribe();
        let covered =
            |signed: &Option<Signed>| signed.as_ref().is_some_and(|s| s.checkpoint.size >= position);
        let arrived = tokio::time::timeout(wait, async { latest.wait_for(covered).await.is_ok() }).await;
        if arrived != Ok(true) {
            return Ok(None);
        }
        let log = self.inner.log.clone();
        let found = tokio::task::spawn_blocking(move || log.checkpoint_at_or_after(position))
            .await
            .map_err(|error| LogError::Io(std::io::Error::other(error.to_string())))??;
        match found {
            Some((_, note)) => Ok(Some(Signed {
                checkpoint: Checkpoint::parse(note::note_text(&note)?)?,
                note,
            })),
            None => Ok(None),
        }
    }

    /// Signs a checkpoint of the current head if it is not signed yet; records a refusal.
    /// Blocking (sled reads and writes).
    pub fn sign_head(&self) {
        if self.refused().is_some() {
            return;
        }
        if let Err(error) = self.try_sign(self.inner.log.head()) {
            let reason = error.to_string();
            eprintln!("dipledger: checkpoint: {reason}");
            *self.inner.refused.lock().expect("refusal lock") = Some(reason);
        }
    }

    fn try_sign(&self, size: u64) -> Result<(), CheckpointError> {
        let previous = self.latest();
        let root = self.inner.log.tree_root(size)?;
        if let Some(previous) = &previous {
            self.check_extends(previous, size, &root)?;
            if previous.checkpoint.size == size {
                return Ok(()); // Signed already.
            }
        }
        let checkpoint = Checkpoint {
            origin: self.origin(),
            size,
            root,
        };
        let note = self.sign(&checkpoint, previous.as_ref());
        self.inner.log.store_checkpoint(size, &note)?;
        self.inner.latest.send_replace(Some(Signed { checkpoint, note }));
        Ok(())
    }

    /// Signs with the current key, cosigned by the previous key when the last checkpoint was
    /// not signed by the current one (the first checkpoint after a rotation).
    fn sign(&self, checkpoint: &Checkpoint, previous: Option<&Signed>) -> String {
        let keys = &self.inner.keys;
        let mut signers = vec![&keys.signer];
        let signed_by_current =
            previous.is_none_or(|p| note::open_note(&p.note, &keys.signer.verifier()).is_ok());
        if let (false, Some(old)) = (signed_by_current, &keys.previous) {
            signers.push(old);
        }
        note::sign_note(&checkpoint.to_text(), &signers)
    }

    /// Checks that the tree of `size` records, whose root is `root`, extends `previous` (a
    /// consistency proof from the stored tree, verified against the signed root).
    fn check_extends(
        &self,
        previous: &Signed,
        size: u64,
        root: &merkle::Hash,
    ) -> Result<(), CheckpointError> {
        let signed = previous.checkpoint.size;
        let inconsistent = |reason: String| CheckpointError::Inconsistent { size, signed, reason };
        if signed > size {
            return Err(inconsistent(format!("the log holds only {size} records")));
        }
        let log = &self.inner.log;
        let proof = log.consistency_proof(signed, size)?;
        merkle::verify_consistency(signed, size, &proof, &previous.checkpoint.root, root)
            .map_err(|error| inconsistent(error.to_string()))
    }

    /// Signs as the log grows (see the module docs) until the log closes or `stop` turns true.
    pub async fn run(self, policy: CheckpointPolicy, mut stop: watch::Receiver<bool>) {
        let mut head = self.inner.log.watch_head();
        while self.refused().is_none() {
            let signed = self.latest().map_or(0, |s| s.checkpoint.size);
            tokio::select! {
                changed = head.wait_for(|h| *h > signed) => if changed.is_err() { return },
                _ = stop.wait_for(|s| *s) => return,
            }
            let deadline = tokio::time::Instant::now() + policy.interval;
            let due = signed.saturating_add(policy.every_events);
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => {}
                _ = head.wait_for(|h| *h >= due) => {}
                _ = stop.wait_for(|s| *s) => {}
            }
            let this = self.clone();
            if tokio::task::spawn_blocking(move || this.sign_head())
                .await
                .is_err()
            {
                return;
            }
        }
    }
}
