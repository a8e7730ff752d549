//! Checkpointed snapshots of the in-memory read models, in the sled tree `snapshot` of the read
//! models' own sled database (`<data dir>/readmodels`).
//!
//! Every so often ([`SNAPSHOT_INTERVAL`] or [`SNAPSHOT_EVENTS`] applied) the runner writes what
//! changed since the last snapshot (entity states, statements and progress reports one per key,
//! index entries, tally deltas) together with each read model's position in **one**
//! `apply_batch`, so any snapshot sled recovers is consistent. On open the snapshot is loaded and
//! the log's tail past it is replayed. Snapshots are derived data: they are never fsynced (a crash
//! loses at most the snapshots sled had not written, and the tail is replayed from the log), and
//! a snapshot that cannot be read is discarded and the read models rebuilt from the log.
//!
//! Keys: `V` -> format version (u32 BE); then per read model a letter (`M`eetings,
//! `C`ommitments, `R`elations, `O`fficials, `D`irectory) followed by `P` -> its position (u64 BE),
//! or by the read model's own keys (see each read model's `save`).

use std::time::{Duration, Instant};

use super::error::{ProjectionError, ProjectionResult};
use super::runner::{Model, ProjectionName};
use super::store::Snapshot;
use crate::log::Log;

/// Longest time between two snapshots while events are applied.
pub const SNAPSHOT_INTERVAL: Duration = Duration::from_secs(5);
/// Most events applied between two snapshots (bounds a snapshot's batch and the replay after a
/// crash).
pub const SNAPSHOT_EVENTS: u64 = 100_000;
/// The snapshot format this build writes and reads; any other is discarded and rebuilt.
pub const SNAPSHOT_FORMAT: u32 = 1;

const TREE: &str = "snapshot";
const VERSION_KEY: &[u8] = b"V";
const POSITION_KEY: u8 = b'P';

/// The letter that starts every snapshot key of a read model.
fn letter(name: ProjectionName) -> u8 {
    match name {
        ProjectionName::Meetings => b'M',
        ProjectionName::Commitments => b'C',
        ProjectionName::Relations => b'R',
        ProjectionName::Officials => b'O',
        ProjectionName::Directory => b'D',
    }
}

fn name_of(letter_byte: u8) -> Option<ProjectionName> {
    ProjectionName::ALL
        .into_iter()
        .find(|name| letter(*name) == letter_byte)
}

/// What opening the snapshot found.
#[derive(Debug, Clone, PartialEq)]
pub enum SnapshotLoad {
    /// No snapshot: the read models start from position 0.
    Empty,
    /// Loaded: keys read, bytes read, seconds taken.
    Loaded {
        /// Keys read.
        keys: u64,
        /// Key and value bytes read.
        bytes: u64,
        /// Time taken.
        seconds: f64,
    },
    /// Unreadable (the reason): discarded, the read models start from position 0.
    Discarded(String),
}

/// Counters of the snapshots written since open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnapshotStats {
    /// Snapshots written.
    pub written: u64,
    /// Key and value bytes put by the last snapshot.
    pub last_bytes: u64,
    /// Key and value bytes put by all snapshots.
    pub total_bytes: u64,
}

/// The snapshot tree and when to write to it.
pub(crate) struct Snapshots {
    tree: sled::Tree,
    /// Longest time between two snapshots ([`SNAPSHOT_INTERVAL`] unless configured).
    pub(crate) interval: Duration,
    last: Instant,
    events: u64,
    /// Read models reset since the last snapshot: their keys are removed before it is written.
    cleared: Vec<ProjectionName>,
    /// Set when a snapshot could not be written: none is written any more (the one on disk no
    /// longer says what the read models hold, so it was invalidated).
    broken: bool,
    stats: SnapshotStats,
}

impl Snapshots {
    /// Opens the snapshot tree and loads it into `model` (leaving `model` empty when there is
    /// none or it cannot be read). Drops the read-model trees of earlier versions.
    pub(crate) fn open(log: &Log, model: &mut Model) -> ProjectionResult<(Snapshots, SnapshotLoad)> {
        for name in ProjectionName::ALL {
            log.drop_projection_tree(name.as_str())?;
        }
        let tree = log.projection_tree(TREE)?;
        let started = Instant::now();
        let load = match load(&tree, model) {
            Ok(None) => SnapshotLoad::Empty,
            Ok(Some((keys, bytes))) => SnapshotLoad::Loaded {
                keys,
                bytes,
                seconds: started.elapsed().as_secs_f64(),
            },
            Err(error) => {
                *model = Model::default();
                tree.clear()?;
                SnapshotLoad::Discarded(error.to_string())
            }
        };
        let snapshots = Snapshots {
            tree,
            interval: SNAPSHOT_INTERVAL,
            last: Instant::now(),
            events: 0,
            cleared: Vec::new(),
            broken: false,
            stats: SnapshotStats::default(),
        };
        Ok((snapshots, load))
    }

    /// Counts applied events; true when a snapshot is due.
    pub(crate) fn applied(&mut self, events: usize) -> bool {
        self.events += events as u64;
        self.events > 0 && (self.events >= SNAPSHOT_EVENTS || self.last.elapsed() >= self.interval)
    }

    /// Notes that a read model was emptied (its keys go with the next snapshot).
    pub(crate) fn cleared(&mut self, name: ProjectionName) {
        self.cleared.push(name);
    }

    pub(crate) fn stats(&self) -> SnapshotStats {
        self.stats
    }

    /// Writes what changed in `model` since the last snapshot, with every position, in one
    /// batch. Takes the changes under the caller's lock on `model`.
    pub(crate) fn save(&mut self, model: &mut Model) -> ProjectionResult<()> {
        if self.broken {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for name in self.cleared.drain(..) {
            for key in self.tree.scan_prefix([letter(name)]).keys() {
                batch.remove(key?);
            }
        }
        let mut bytes = 0;
        for name in ProjectionName::ALL {
            let mut out = Snapshot {
                letter: letter(name),
                batch: &mut batch,
                bytes: 0,
            };
            model.part_mut(name).save(&mut out);
            out.put(vec![POSITION_KEY], model.position(name).to_be_bytes().to_vec());
            bytes += out.bytes;
        }
        batch.insert(VERSION_KEY, &SNAPSHOT_FORMAT.to_be_bytes()[..]);
        if let Err(error) = self.tree.apply_batch(batch) {
            // The changes taken from the model are not on disk: invalidate the snapshot so the
            // next open rebuilds instead of loading one that misses them.
            self.broken = true;
            let _ = self.tree.remove(VERSION_KEY);
            return Err(error.into());
        }
        self.last = Instant::now();
        self.events = 0;
        self.stats.written += 1;
        self.stats.last_bytes = bytes;
        self.stats.total_bytes += bytes;
        Ok(())
    }
}

/// Loads every key into `model`. None when there is no snapshot; (keys, bytes) otherwise.
fn load(tree: &sled::Tree, model: &mut Model) -> ProjectionResult<Option<(u64, u64)>> {
    let Some(version) = tree.get(VERSION_KEY)? else {
        if tree.is_empty() {
            return Ok(None);
        }
        return Err(ProjectionError::DataLoss(
            "read-model snapshot without a format version".into(),
        ));
    };
    if version.as_ref() != SNAPSHOT_FORMAT.to_be_bytes() {
        return Err(ProjectionError::DataLoss(format!(
            "read-model snapshot format {version:?} is not {SNAPSHOT_FORMAT}"
        )));
    }
    let (mut keys, mut bytes) = (0u64, 0u64);
    for entry in tree.iter() {
        let (key, value) = entry?;
        keys += 1;
        bytes += (key.len() + value.len()) as u64;
        if key.as_ref() == VERSION_KEY {
            continue;
        }
        let malformed = || ProjectionError::DataLoss("read-model snapshot: unknown key".into());
        let (first, rest) = key.split_first().ok_or_else(malformed)?;
        let name = name_of(*first).ok_or_else(malformed)?;
        if rest == [POSITION_KEY] {
            let position: [u8; 8] = value.as_ref().try_into().map_err(|_| malformed())?;
            model.set_position(name, u64::from_be_bytes(position));
        } else {
            model.part_mut(name).restore(rest, &value)?;
        }
    }
    for name in ProjectionName::ALL {
        model.part_mut(name).finish_restore()?;
    }
    Ok(Some((keys, bytes)))
}
