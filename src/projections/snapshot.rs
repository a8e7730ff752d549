//! Checkpointed snapshots of the in-memory read models, in the sled tree `snapshot` of the read
//! models' own sled database (`<data dir>/readmodels`).
//!
//! A snapshot is a stream of records (put a key, remove a key, clear a read model) in a key
//! space of the read models' own (see each read model's `save`), written as chunks of about
//! [`CHUNK_BYTES`] under a generation number, then made current by one small `meta` write: so
//! sled sees a few large values per snapshot instead of a key per row (sled inserts, not our
//! code, would dominate otherwise), and a crash between the chunks and the meta leaves the
//! previous snapshot current. Every [`SNAPSHOT_INTERVAL`] or [`SNAPSHOT_EVENTS`] applied events
//! the runner takes what changed since the last snapshot, with every read model's position, and
//! the thread `dipledger-snapshot` appends it (`snapshot_writer.rs`).
//! When the appended bytes outgrow the generation's base, a new generation is written with
//! everything (a *base*) and the old one removed, so opening reads at most about twice the
//! model's size. On open the records of the current generation are applied in order and the log
//! past the positions is replayed. Snapshots are derived data: never fsynced (a lost snapshot
//! costs a longer replay), and a snapshot that cannot be read is discarded and the read models
//! rebuilt from the log.
//!
//! Each chunk is a sled tree of its own, named `c` generation(8) chunk(8) and holding one key
//! ([`CHUNK_RECORDS_KEY`] -> records): sled rewrites a whole leaf page (up to 17 values) when
//! it consolidates or splits it, so 1 MiB chunks sharing one tree were written ~3 times over
//! and their copies were a third of a rebuild's CPU; a tree per chunk is written once. The tree
//! `snapshot` holds `V` -> format version (u32 BE) and `m` -> (generation, next chunk, base
//! bytes, bytes appended since the base, chunks of the base), u64 BE each.
//! A record: tag (0 put, 1 remove, 2 clear), the read model's letter (`M`eetings,
//! `C`ommitments, `R`elations, `O`fficials, `D`irectory), then for put and remove the key
//! (u32 BE length, bytes), then for put the value (u32 BE length, bytes). Key `P` of a read
//! model holds its position (u64 BE).

use std::sync::RwLock;
use std::time::{Duration, Instant};

use super::error::{ProjectionError, ProjectionResult};
use super::runner::{Model, ProjectionName};
use super::snapshot_writer::{Ready, Records, Writer, CLEAR, PUT, REMOVE};
use super::store::{take_bytes, take_sized, Snapshot};
use crate::log::Log;

/// Longest time between two snapshots while events are applied.
pub const SNAPSHOT_INTERVAL: Duration = Duration::from_secs(5);
/// Most events applied between two snapshots. [`SNAPSHOT_INTERVAL`] already bounds the replay
/// after a crash to about one interval of work; this bounds the changes one snapshot holds when
/// events come faster (a rebuild, a catch-up), without making a rebuild spend its time writing
/// snapshots (100,000 did: half of a rebuild's time went to snapshot writes through sled).
pub const SNAPSHOT_EVENTS: u64 = 1_000_000;
/// The snapshot format this build writes and reads; any other is discarded and rebuilt.
/// 6: a meeting's statements are no longer stored (their texts are read from the log).
/// 7: a meeting's and a commitment's rarely set fields are one optional group of their own.
/// 8: a base holds each index list a chunk per record, not an entry per record.
pub const SNAPSHOT_FORMAT: u32 = 8;
/// Size a chunk is cut at (a chunk holds whole records, so one large record makes it larger).
pub const CHUNK_BYTES: usize = 1024 * 1024;
/// Bytes appended since the base below which no new base is written, however small the base.
pub const MIN_BASE_BYTES: u64 = 16 * 1024 * 1024;
/// Chunks appended to a generation after which the next snapshot is a new base, whatever their
/// bytes. Every chunk is a sled tree, and sled rewrites its list of trees for each one it
/// creates: a snapshot of a few changes every [`SNAPSHOT_INTERVAL`] would otherwise add a tree
/// each time until the appended bytes reached a large base's (thousands of trees). At one
/// snapshot every 5 s this is a base at most every ~85 minutes.
pub const MAX_APPENDED_CHUNKS: u64 = 1_024;

/// Page cache of the read models' sled database, which holds only snapshot chunks: written once,
/// read once when the server starts, so caching them buys nothing.
pub const READ_MODEL_CACHE_CAPACITY_BYTES: u64 = 8 * 1024 * 1024;
/// The server's sled caches together (the log's and the snapshots') stay within 128 MiB.
const _: () = assert!(
    crate::log::limits::DEFAULT_CACHE_CAPACITY_BYTES + READ_MODEL_CACHE_CAPACITY_BYTES <= 128 * 1024 * 1024
);
/// sled's flush timer for the read models' database. Snapshots need no flush for correctness
/// (a lost snapshot means a longer replay from the log); the runner flushes after each snapshot
/// so sled's write buffers do not pile up, and sled's default timer (500 ms) would make its IO
/// threads compete with the journal's fdatasync for the disk twice a second.
pub const READ_MODEL_FLUSH_EVERY_MS: u64 = 5_000;
/// Subdirectory of the data directory holding the read models' sled database.
pub const READ_MODELS_DIR: &str = "readmodels";
/// Where read-model files sled cannot open are moved (replacing an earlier one) before the read
/// models are rebuilt from the log: derived data, kept only for the operator to look at.
pub const DISCARDED_READ_MODELS_DIR: &str = "readmodels.discarded";

const TREE: &str = "snapshot";
pub(super) const VERSION_KEY: &[u8] = b"V";
pub(super) const META_KEY: &[u8] = b"m";
const CHUNK_PREFIX: u8 = b'c';
/// The one key of a chunk's tree.
pub(crate) const CHUNK_RECORDS_KEY: &[u8] = b"r";
const POSITION_KEY: &[u8] = b"P";

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

pub(super) fn chunk_key(generation: u64, chunk: u64) -> [u8; 17] {
    let mut key = [0u8; 17];
    key[0] = CHUNK_PREFIX;
    key[1..9].copy_from_slice(&generation.to_be_bytes());
    key[9..].copy_from_slice(&chunk.to_be_bytes());
    key
}

/// What opening found in the snapshot.
#[derive(Debug, Clone, PartialEq)]
pub enum SnapshotLoad {
    /// No snapshot: the read models start from position 0.
    Empty,
    /// Loaded.
    Loaded {
        /// Records applied.
        records: u64,
        /// Bytes read.
        bytes: u64,
        /// Time taken, seconds.
        seconds: f64,
    },
    /// Unreadable (the reason): discarded, the read models start from position 0.
    Discarded(String),
}

/// Counters of the snapshots written since open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnapshotStats {
    /// Snapshots written (bases included).
    pub written: u64,
    /// Bases written.
    pub bases: u64,
    /// Record bytes of the last snapshot.
    pub last_bytes: u64,
    /// Record bytes of all snapshots.
    pub total_bytes: u64,
    /// Snapshots due while the disk was below the log's minimum of free space
    /// (`--min-free-disk`), and so not written (the next one is tried an interval later).
    pub deferred: u64,
    /// How long the last snapshot held the model's write lock to take its records, µs: the
    /// time every query and the runner waited for it.
    pub last_hold_micros: u64,
    /// The longest such hold since open, µs.
    pub longest_hold_micros: u64,
}

/// The current generation as the meta key records it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Meta {
    pub(super) generation: u64,
    pub(super) next_chunk: u64,
    pub(super) base_bytes: u64,
    pub(super) appended_bytes: u64,
    /// Chunks of the base (the rest of the generation's chunks were appended).
    pub(super) base_chunks: u64,
}

impl Meta {
    fn encode(&self) -> [u8; 40] {
        let mut bytes = [0u8; 40];
        for (slot, value) in bytes.chunks_exact_mut(8).zip([
            self.generation,
            self.next_chunk,
            self.base_bytes,
            self.appended_bytes,
            self.base_chunks,
        ]) {
            slot.copy_from_slice(&value.to_be_bytes());
        }
        bytes
    }

    fn decode(bytes: &[u8]) -> Option<Meta> {
        if bytes.len() != 40 {
            return None;
        }
        let field =
            |index: usize| u64::from_be_bytes(bytes[index * 8..index * 8 + 8].try_into().expect("8 bytes"));
        Some(Meta {
            generation: field(0),
            next_chunk: field(1),
            base_bytes: field(2),
            appended_bytes: field(3),
            base_chunks: field(4),
        })
    }
}

/// The snapshot tree and when to write to it. The writes themselves are on the writer thread
/// (`snapshot_writer.rs`).
pub(crate) struct Snapshots {
    /// Longest time between two snapshots ([`SNAPSHOT_INTERVAL`] unless configured).
    pub(crate) interval: Duration,
    last: Instant,
    events: u64,
    /// Read models reset since the last snapshot: a clear record goes first in the next one.
    cleared: Vec<ProjectionName>,
    /// The log's free-space rule: below its minimum a snapshot waits (like a checkpoint).
    disk: std::sync::Arc<crate::log::disk::DiskGuard>,
    /// Whether the last snapshot due was deferred (the first deferral is said on stderr).
    deferring: bool,
    /// Snapshots due while the disk was short of space (the rest of the counters are the
    /// writer's).
    deferred: u64,
    /// Set once the read models stopped tracking their changes after the snapshots broke.
    untracked: bool,
    /// The model lock's holds: the last and the longest, µs.
    last_hold_micros: u64,
    longest_hold_micros: u64,
    /// The format written: [`SNAPSHOT_FORMAT`], other only through a test hook (an earlier
    /// build's snapshot).
    format: u32,
    /// [`MAX_APPENDED_CHUNKS`] unless a test lowers it.
    max_appended_chunks: u64,
    /// Declared last: dropped after the rest, it finishes what was handed over and flushes.
    writer: Writer,
}

/// The read models' own sled database under `<data dir>/readmodels`, with a page cache of
/// [`READ_MODEL_CACHE_CAPACITY_BYTES`]. A database apart from the log's keeps snapshot writes out
/// of the log's flush + fsync. Snapshots need no fsync of their own: a lost one means a longer
/// replay from the log.
fn open_database(data_dir: &std::path::Path) -> ProjectionResult<sled::Db> {
    let path = data_dir.join(READ_MODELS_DIR);
    Ok(crate::log::open_sled(
        &path,
        READ_MODEL_CACHE_CAPACITY_BYTES,
        Some(READ_MODEL_FLUSH_EVERY_MS),
    )?)
}

/// Checks the read-model snapshots under `data_dir` without repairing anything (`dipledger
/// verify`): the same two checks [`Snapshots::open`] makes before it discards them and rebuilds
/// the read models from the log, that sled can open their files and that the current
/// generation's records load. `Err` holds the reason they are damaged. No `readmodels`
/// directory, no snapshot, or a snapshot of another format (which any start replaces, as an
/// upgrade rather than damage) are all `Ok`. Nothing is moved, cleared or created (sled itself
/// writes on open, as it does for the log).
pub fn check_snapshots(data_dir: &std::path::Path) -> Result<(), String> {
    if !data_dir.join(READ_MODELS_DIR).exists() {
        return Ok(());
    }
    let db = match open_database(data_dir) {
        Ok(db) => db,
        Err(ProjectionError::Log(crate::log::LogError::DataLoss { reason, .. })) => {
            return Err(format!("sled could not open them: {reason}"))
        }
        Err(other) => return Err(other.to_string()),
    };
    let has_tree = db
        .tree_names()
        .iter()
        .any(|name| name.as_ref() == TREE.as_bytes());
    if !has_tree {
        return Ok(());
    }
    let tree = db.open_tree(TREE).map_err(|error| error.to_string())?;
    let version = tree.get(VERSION_KEY).map_err(|error| error.to_string())?;
    if version.is_some() && version.as_deref() != Some(&SNAPSHOT_FORMAT.to_be_bytes()[..]) {
        return Ok(());
    }
    load(&db, &tree, &mut Model::default())
        .map(|_| ())
        .map_err(|error| error.to_string())
}

impl Snapshots {
    /// The snapshot tree (tests damage it; benchmarks measure it).
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn tree(&self) -> &sled::Tree {
        self.writer.tree()
    }

    /// The chunk trees, in order of (generation, chunk) (tests damage them; benchmarks measure
    /// them).
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn chunks(&self) -> Vec<(u64, u64, sled::Tree)> {
        chunk_trees(self.writer.db())
    }

    /// The read models' sled database (tests write debris into it).
    #[cfg(test)]
    pub(crate) fn db(&self) -> sled::Db {
        self.writer.db().clone()
    }

    /// Opens the snapshot tree and loads it into `model` (leaving `model` empty when there is
    /// none or it cannot be read). Drops the read-model trees of earlier versions.
    pub(crate) fn open(log: &Log, model: &mut Model) -> ProjectionResult<(Snapshots, SnapshotLoad)> {
        // Files sled itself cannot read (its checksums fail on open) hold derived data only:
        // they are moved aside to `readmodels.discarded` and the read models rebuilt from the log.
        let (db, unreadable) = match open_database(log.data_dir()) {
            Ok(db) => (db, None),
            Err(ProjectionError::Log(crate::log::LogError::DataLoss { reason, .. })) => {
                let path = log.data_dir().join(READ_MODELS_DIR);
                let aside = log.data_dir().join(DISCARDED_READ_MODELS_DIR);
                if aside.exists() {
                    std::fs::remove_dir_all(&aside).map_err(crate::log::LogError::from)?;
                }
                std::fs::rename(&path, &aside).map_err(crate::log::LogError::from)?;
                eprintln!(
                    "dipledger: warning: the read-model snapshots are damaged ({reason}); moved to {} \
                     and rebuilding the read models from the log",
                    aside.display()
                );
                (open_database(log.data_dir())?, Some(reason))
            }
            Err(other) => return Err(other),
        };
        for name in ProjectionName::ALL {
            db.drop_tree(format!("proj-{}", name.as_str()))?;
        }
        let tree = db.open_tree(TREE)?;
        let started = Instant::now();
        let loaded = match unreadable {
            Some(reason) => Err(ProjectionError::DataLoss(format!(
                "sled could not open them: {reason}"
            ))),
            None => load(&db, &tree, model),
        };
        let (meta, load) = match loaded {
            Ok(None) => (Meta::default(), SnapshotLoad::Empty),
            Ok(Some((meta, records, bytes))) => (
                meta,
                SnapshotLoad::Loaded {
                    records,
                    bytes,
                    seconds: started.elapsed().as_secs_f64(),
                },
            ),
            Err(error) => {
                *model = Model::default();
                tree.clear()?;
                drop_chunks(&db, |_| true)?;
                (Meta::default(), SnapshotLoad::Discarded(error.to_string()))
            }
        };
        // A read model with nothing applied has nothing saved: marked so, it tracks no changed
        // keys one by one (the next snapshot writes all of it), which during a rebuild was a
        // set of every index entry and entity held until the first snapshot.
        for name in ProjectionName::ALL {
            if model.position(name) == 0 {
                model.part_mut(name).unsave();
            }
        }
        // Chunks past the meta (a snapshot cut short) and of other generations are garbage.
        drop_chunks(&db, |(generation, chunk)| {
            generation != meta.generation || chunk >= meta.next_chunk
        })?;
        let writer = Writer::start(db.clone(), tree.clone(), meta)?;
        let snapshots = Snapshots {
            interval: SNAPSHOT_INTERVAL,
            last: Instant::now(),
            events: 0,
            cleared: Vec::new(),
            disk: log.disk_guard(),
            deferring: false,
            deferred: 0,
            untracked: false,
            last_hold_micros: 0,
            longest_hold_micros: 0,
            format: SNAPSHOT_FORMAT,
            max_appended_chunks: MAX_APPENDED_CHUNKS,
            writer,
        };
        Ok((snapshots, load))
    }

    /// Test hook: later snapshots are written as format `format`.
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn write_format(&mut self, format: u32) {
        self.format = format;
    }

    /// Counts applied events; true when a snapshot is due.
    pub(crate) fn applied(&mut self, events: usize) -> bool {
        self.events += events as u64;
        self.events > 0 && (self.events >= SNAPSHOT_EVENTS || self.last.elapsed() >= self.interval)
    }

    /// Notes that a read model was emptied (a clear record goes first in the next snapshot).
    pub(crate) fn cleared(&mut self, name: ProjectionName) {
        self.cleared.push(name);
    }

    pub(crate) fn stats(&self) -> SnapshotStats {
        SnapshotStats {
            deferred: self.deferred,
            last_hold_micros: self.last_hold_micros,
            longest_hold_micros: self.longest_hold_micros,
            ..self.writer.stats()
        }
    }

    /// Makes the next snapshot a base (tests).
    #[cfg(test)]
    pub(crate) fn force_base(&mut self) {
        self.writer.ready(true).expect("no failure");
        self.writer.force_base();
    }

    /// Lowers [`MAX_APPENDED_CHUNKS`] (tests).
    #[cfg(test)]
    pub(crate) fn set_max_appended_chunks(&mut self, chunks: u64) {
        self.max_appended_chunks = chunks;
    }

    /// Notified each time a snapshot is finished.
    pub(crate) fn finished(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.writer.finished()
    }

    /// The writer thread (tests hold it and make it fail).
    #[cfg(test)]
    pub(crate) fn writer(&self) -> &Writer {
        &self.writer
    }

    /// Takes what changed in `model` since the last snapshot, with every position, and hands
    /// it to the writer thread to append; a new base instead when the appended bytes outgrew
    /// the current one. The changes are taken under the model's write lock (ids, index
    /// entries, tally deltas, the entities' `Arc`s); compressing, encoding the entities and
    /// writing happen on the writer thread. With `wait`, waits for a snapshot in flight first
    /// and for this one to be written; without, returns at once when one is in flight (the
    /// snapshot stays due). Below the log's minimum of free disk space nothing is written
    /// (counted in `stats().deferred`). A failed write of an earlier snapshot is returned here.
    pub(crate) fn save(&mut self, model: &RwLock<Model>, wait: bool) -> ProjectionResult<()> {
        let meta = match self.writer.ready(wait)? {
            Ready::Idle(meta) => meta,
            Ready::Busy => return Ok(()),
            Ready::Broken => {
                // Nothing will be saved again: stop tracking changes key by key, or the change
                // sets would grow with every event until restart.
                if !self.untracked {
                    let mut model = model.write().expect("model lock");
                    for name in ProjectionName::ALL {
                        model.part_mut(name).unsave();
                    }
                    self.untracked = true;
                }
                return Ok(());
            }
        };
        // A snapshot on a full disk would fail (and leave the read models without one, or sled
        // debris); writes are refused meanwhile and the log keeps everything a replay needs, so
        // the snapshot waits for space, measured afresh each time one is due.
        if let Err(error) = self.disk.check_now() {
            if !self.deferring {
                eprintln!("dipledger: read-model snapshot deferred: {error}");
                self.deferring = true;
            }
            self.deferred += 1;
            self.last = Instant::now();
            return Ok(());
        }
        self.deferring = false;
        let (generation, first_chunk, base) = next_snapshot(&meta, self.max_appended_chunks);
        let mut records = self.writer.records(generation, first_chunk);
        {
            let mut model = model.write().expect("model lock");
            let held = Instant::now();
            if base {
                self.cleared.clear();
                for name in ProjectionName::ALL {
                    model.part_mut(name).unsave();
                }
            }
            for name in self.cleared.drain(..) {
                records.clear(letter(name));
            }
            write_changes(&mut model, &mut records);
            self.last_hold_micros = held.elapsed().as_micros() as u64;
            self.longest_hold_micros = self.longest_hold_micros.max(self.last_hold_micros);
        }
        self.writer.finish(records, base, self.format);
        self.last = Instant::now();
        self.events = 0;
        match wait {
            true => self.writer.ready(true).map(|_| ()),
            false => Ok(()),
        }
    }
}

/// Where the next snapshot goes after `meta`: (generation, first chunk, whether it is a base).
/// The first snapshot of an empty generation holds everything (the read models were opened
/// without a snapshot, so nothing of them is saved), and is a base of that generation: counted
/// as appended, the next snapshot, however small its changes, would outgrow the empty base and
/// rewrite everything, which at 1,000,000 events held the model's lock for about half a second (533 ms measured) a
/// few seconds after a rebuild. Otherwise a new generation once the appended bytes outgrow the
/// base or the appended chunks reach `max_appended_chunks`.
fn next_snapshot(meta: &Meta, max_appended_chunks: u64) -> (u64, u64, bool) {
    if meta.next_chunk == 0 {
        return (meta.generation, 0, true);
    }
    let appended_chunks = meta.next_chunk.saturating_sub(meta.base_chunks);
    match meta.appended_bytes >= meta.base_bytes.max(MIN_BASE_BYTES) || appended_chunks >= max_appended_chunks
    {
        true => (meta.generation + 1, 0, true),
        false => (meta.generation, meta.next_chunk, false),
    }
}

/// Commits `meta` (with the format) to the snapshot tree, which makes its chunks current, and
/// writes sled's buffers out: without that they pile up in memory between its timed flushes
/// (hundreds of MiB during a rebuild). Not for durability: nothing waits on it.
pub(super) fn commit_meta(tree: &sled::Tree, meta: &Meta, format: u32) -> ProjectionResult<()> {
    let mut batch = sled::Batch::default();
    batch.insert(VERSION_KEY, &format.to_be_bytes()[..]);
    batch.insert(META_KEY, &meta.encode()[..]);
    tree.apply_batch(batch)?;
    tree.flush()?;
    Ok(())
}

/// A chunk's records as stored: their length (u32 LE), then LZ4 (block format), as
/// `lz4_flex::block::compress_prepend_size` writes them. Index keys repeat their values and
/// prefixes, states their field layouts: compressed, a snapshot is about a sixth of the bytes,
/// and on this class of machine every byte written costs CPU in the kernel's page cache (a
/// third of a rebuild's samples before compression).
pub(super) fn pack(records: &[u8]) -> Vec<u8> {
    const _: () = assert!(
        CHUNK_BYTES < u32::MAX as usize / 2,
        "a chunk's length fits its u32"
    );
    lz4_flex::block::compress_prepend_size(records)
}

/// Most bytes LZ4 can expand one stored byte into (its longest match is encoded in one byte per
/// 255): a stored length beyond it is damage, refused before anything is allocated.
const LZ4_MAX_EXPANSION: usize = 255;

/// The records of a chunk stored by [`pack`]. Not `decompress_size_prepended`: it would
/// allocate whatever length damaged bytes state before finding them damaged.
fn unpack(stored: &[u8]) -> ProjectionResult<Vec<u8>> {
    let malformed = || ProjectionError::DataLoss("read-model snapshot: malformed chunk".into());
    let (length, compressed) = stored.split_first_chunk::<4>().ok_or_else(malformed)?;
    let length = u32::from_le_bytes(*length) as usize;
    if length > compressed.len().saturating_mul(LZ4_MAX_EXPANSION) {
        return Err(malformed());
    }
    let mut records = vec![0u8; length];
    match lz4_flex::block::decompress_into(compressed, &mut records) {
        Ok(written) if written == length => Ok(records),
        _ => Err(malformed()),
    }
}

/// The (generation, chunk) a tree name denotes, if it names a chunk.
fn chunk_of(name: &[u8]) -> Option<(u64, u64)> {
    if name.len() != 17 || name[0] != CHUNK_PREFIX {
        return None;
    }
    let field = |at: usize| u64::from_be_bytes(name[at..at + 8].try_into().expect("8 bytes"));
    Some((field(1), field(9)))
}

/// Drops every chunk tree whose (generation, chunk) `garbage` selects.
pub(super) fn drop_chunks(db: &sled::Db, garbage: impl Fn((u64, u64)) -> bool) -> ProjectionResult<()> {
    for name in db.tree_names() {
        if chunk_of(&name).is_some_and(&garbage) {
            db.drop_tree(name)?;
        }
    }
    Ok(())
}

/// Every chunk tree, by (generation, chunk) (tests damage them; benchmarks measure them).
#[cfg(any(test, feature = "test-hooks"))]
pub(crate) fn chunk_trees(db: &sled::Db) -> Vec<(u64, u64, sled::Tree)> {
    let mut chunks: Vec<(u64, u64, sled::Tree)> = db
        .tree_names()
        .iter()
        .filter_map(|name| {
            let (generation, chunk) = chunk_of(name)?;
            Some((generation, chunk, db.open_tree(name).ok()?))
        })
        .collect();
    chunks.sort_by_key(|(generation, chunk, _)| (*generation, *chunk));
    chunks
}

/// Every read model's unsaved changes and its position.
fn write_changes(model: &mut Model, records: &mut Records) {
    for name in ProjectionName::ALL {
        let position = model.position(name);
        let mut out = Snapshot {
            letter: letter(name),
            records,
        };
        model.part_mut(name).save(&mut out);
        out.put(POSITION_KEY, position.to_be_bytes());
    }
}

/// Applies the current generation's records to `model`. None when there is no snapshot;
/// (meta, records, bytes) otherwise.
fn load(db: &sled::Db, tree: &sled::Tree, model: &mut Model) -> ProjectionResult<Option<(Meta, u64, u64)>> {
    let Some(meta) = tree.get(META_KEY)? else {
        if tree.is_empty() || tree.get(VERSION_KEY)?.is_none() {
            return Ok(None);
        }
        return Err(ProjectionError::DataLoss(
            "read-model snapshot without its meta".into(),
        ));
    };
    let version = tree.get(VERSION_KEY)?;
    if version.as_deref() != Some(&SNAPSHOT_FORMAT.to_be_bytes()[..]) {
        return Err(ProjectionError::DataLoss(format!(
            "read-model snapshot format {version:?} is not {SNAPSHOT_FORMAT}"
        )));
    }
    let malformed = |what: &str| ProjectionError::DataLoss(format!("read-model snapshot: {what}"));
    let meta = Meta::decode(&meta).ok_or_else(|| malformed("malformed meta"))?;
    let (mut records, mut bytes) = (0u64, 0u64);
    // Read without creating: `open_tree` would make an empty tree of a missing chunk.
    let existing: std::collections::HashSet<sled::IVec> = db.tree_names().into_iter().collect();
    for chunk in 0..meta.next_chunk {
        let name = sled::IVec::from(&chunk_key(meta.generation, chunk)[..]);
        let value = match existing.contains(&name) {
            true => db.open_tree(name)?.get(CHUNK_RECORDS_KEY)?,
            false => None,
        }
        .ok_or_else(|| malformed("a chunk is missing"))?;
        let value = unpack(&value)?;
        bytes += value.len() as u64;
        records += apply_chunk(&value, model)?;
    }
    for name in ProjectionName::ALL {
        let part = model.part_mut(name);
        part.finish_restore()?;
        part.indexes()
            .into_iter()
            .for_each(super::index::Index::finish_restore);
    }
    Ok(Some((meta, records, bytes)))
}

/// Applies the records of one chunk; returns how many.
fn apply_chunk(mut chunk: &[u8], model: &mut Model) -> ProjectionResult<u64> {
    let malformed = || ProjectionError::DataLoss("read-model snapshot: malformed record".into());
    let mut count = 0;
    while !chunk.is_empty() {
        let head = take_bytes(&mut chunk, 2).ok_or_else(malformed)?;
        let name = name_of(head[1]).ok_or_else(malformed)?;
        match head[0] {
            PUT => {
                let key = take_sized(&mut chunk).ok_or_else(malformed)?;
                let value = take_sized(&mut chunk).ok_or_else(malformed)?;
                if key == POSITION_KEY {
                    let position: [u8; 8] = value.try_into().map_err(|_| malformed())?;
                    model.set_position(name, u64::from_be_bytes(position));
                } else {
                    model.part_mut(name).restore(key, value)?;
                }
            }
            REMOVE => {
                let key = take_sized(&mut chunk).ok_or_else(malformed)?;
                model.part_mut(name).forget(key)?;
            }
            CLEAR => model.reset(name),
            _ => return Err(malformed()),
        }
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::LogConfig;
    use crate::projections::Projections;

    #[test]
    fn chunks_unpack_to_their_records_and_damaged_ones_are_data_loss() {
        let records: Vec<u8> = (0..100_000u32).flat_map(|n| (n % 1000).to_be_bytes()).collect();
        let packed = pack(&records);
        assert!(packed.len() < records.len() / 2, "repeated bytes compress");
        assert_eq!(unpack(&packed).unwrap(), records);
        assert_eq!(unpack(&pack(&[])).unwrap(), Vec::<u8>::new());
        let is_data_loss = |stored: &[u8]| matches!(unpack(stored), Err(ProjectionError::DataLoss(_)));
        // A stated length LZ4 cannot reach from the stored bytes: refused before allocating.
        let mut inflated = packed.clone();
        inflated[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(is_data_loss(&inflated));
        // A length one off, a cut body, a missing length.
        let mut off = packed.clone();
        off[..4].copy_from_slice(&(records.len() as u32 - 1).to_le_bytes());
        assert!(is_data_loss(&off));
        assert!(is_data_loss(&packed[..packed.len() / 2]));
        assert!(is_data_loss(&packed[..3]));
    }

    /// A log of `events` generated events and its read models, opened paused at position 0.
    fn filled(events: u64) -> (tempfile::TempDir, Log, Projections) {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(LogConfig::new(dir.path()).journal_segments(8 * 1024 * 1024, 8)).unwrap();
        crate::testing::projections_bench::fill(&log, events, None).unwrap();
        let projections = Projections::open_paused(log.clone()).unwrap();
        (dir, log, projections)
    }

    /// A log of 3,000 generated events with every read model caught up and snapshotted.
    fn snapshotted() -> (tempfile::TempDir, Log, Projections) {
        let (dir, log, projections) = filled(3_000);
        projections.catch_up().unwrap();
        projections.snapshot().unwrap();
        (dir, log, projections)
    }

    #[test]
    fn each_chunk_is_a_tree_of_one_key_and_chunks_past_the_meta_are_dropped_on_open() {
        let (_dir, log, projections) = snapshotted();
        let chunks = projections.snapshot_chunks();
        assert!(!chunks.is_empty());
        for (index, (generation, chunk, tree)) in chunks.iter().enumerate() {
            assert_eq!(
                (*generation, *chunk),
                (0, index as u64),
                "chunks are numbered densely"
            );
            let keys: Vec<_> = tree.iter().keys().map(|key| key.unwrap().to_vec()).collect();
            assert_eq!(keys, vec![CHUNK_RECORDS_KEY.to_vec()]);
        }
        // Snapshots cut short: chunks written, their meta not (closing writes the next chunk
        // of generation 0 itself, so the debris is further on, and of another generation).
        let db = projections.shared.engine.lock().unwrap().snapshots_db();
        let debris = [chunk_key(0, chunks.len() as u64 + 5), chunk_key(7, 0)];
        for name in debris {
            db.open_tree(name)
                .unwrap()
                .insert(CHUNK_RECORDS_KEY, &b"not records"[..])
                .unwrap();
        }
        let before = projections.dump_all();
        drop((chunks, db, projections));
        let reopened = Projections::open_paused(log.clone()).unwrap();
        assert!(matches!(reopened.snapshot_load(), SnapshotLoad::Loaded { .. }));
        assert!(reopened.dump_all() == before);
        let db = reopened.shared.engine.lock().unwrap().snapshots_db();
        assert!(
            !db.tree_names()
                .iter()
                .any(|name| debris.iter().any(|cut| name.as_ref() == cut)),
            "the chunks past the meta were dropped"
        );
    }

    #[test]
    fn a_due_snapshot_is_written_on_its_own_thread_while_the_runner_goes_on() {
        let (_dir, log, projections) = filled(3_000);
        /// Releases the writer however the test ends (a failed assertion would otherwise hang
        /// in the close's wait for it instead of failing).
        struct Release<'a>(&'a Projections);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                if let Ok(engine) = self.0.shared.engine.lock() {
                    engine.snapshots().writer().hold(false);
                }
            }
        }
        let release = Release(&projections);
        {
            let mut engine = projections.shared.engine.lock().unwrap();
            engine.set_snapshot_interval(Duration::ZERO);
            engine.snapshots().writer().hold(true);
        }
        // Due after each step: the first step's records are taken and handed over; the writer
        // is held, so nothing is written, and the runner goes on regardless.
        assert_eq!(projections.step(1_000).unwrap(), 1_000);
        assert_eq!(projections.step(1_000).unwrap(), 1_000);
        for name in ProjectionName::ALL {
            assert_eq!(projections.checkpoint(name), 2_000, "{name:?}");
        }
        assert_eq!(projections.snapshot_stats().written, 0);
        assert!(
            projections.snapshot_chunks().is_empty(),
            "a chunk was written while held"
        );
        assert!(projections.snapshot_tree().get(META_KEY).unwrap().is_none());
        // Released: the one in flight is written, then the explicit one (the second step's
        // due snapshot was not started while the first was in flight).
        drop(release);
        projections.snapshot().unwrap();
        assert_eq!(projections.snapshot_stats().written, 2);
        assert_eq!(projections.step(1_000).unwrap(), 1_000);
        projections.snapshot().unwrap();
        let before = projections.dump_all();
        drop(projections);
        let reopened = Projections::open_paused(log.clone()).unwrap();
        assert!(matches!(reopened.snapshot_load(), SnapshotLoad::Loaded { .. }));
        assert_eq!(reopened.checkpoint(ProjectionName::Directory), 3_000);
        assert!(reopened.dump_all() == before, "the snapshots restore exactly");
    }

    /// A failure injected into the writer thread during a due snapshot: reported once by the
    /// next snapshot (its message containing `reported`), nothing written from then on, the
    /// read models going on, and the next open finding no snapshot and rebuilding.
    fn writer_failure_is_reported_once_and_the_next_open_rebuilds(
        inject: impl FnOnce(&super::Writer),
        reported: &str,
    ) {
        let (_dir, log, projections) = filled(2_000);
        {
            let mut engine = projections.shared.engine.lock().unwrap();
            engine.set_snapshot_interval(Duration::ZERO);
            inject(engine.snapshots().writer());
        }
        // The due snapshot fails on the writer thread, after the step returned.
        assert_eq!(projections.step(1_000).unwrap(), 1_000);
        let failure = projections.snapshot().expect_err("the failure is reported");
        assert!(failure.to_string().contains(reported), "{failure}");
        assert_eq!(projections.step(1_000).unwrap(), 1_000);
        projections
            .snapshot()
            .expect("broken snapshots are skipped, not errors");
        assert_eq!(projections.snapshot_stats().written, 0);
        assert!(projections.snapshot_tree().get(META_KEY).unwrap().is_none());
        let before = projections.dump_all();
        drop(projections);
        let reopened = Projections::open_paused(log.clone()).unwrap();
        assert_eq!(reopened.snapshot_load(), &SnapshotLoad::Empty);
        assert_eq!(
            reopened.checkpoint(ProjectionName::Meetings),
            0,
            "rebuilt from the log"
        );
        reopened.catch_up().unwrap();
        assert!(reopened.dump_all() == before);
    }

    #[test]
    fn a_failed_snapshot_write_is_reported_at_the_next_snapshot_and_the_next_open_rebuilds() {
        writer_failure_is_reported_once_and_the_next_open_rebuilds(
            |writer| writer.fail_next_write(),
            "injected snapshot write failure",
        );
    }

    #[test]
    fn a_panic_on_the_writer_thread_is_reported_instead_of_waited_for() {
        writer_failure_is_reported_once_and_the_next_open_rebuilds(
            |writer| writer.panic_next_job(),
            "panicked",
        );
    }

    #[test]
    fn a_snapshot_due_while_another_is_written_is_taken_when_it_is_done_without_a_new_event() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(LogConfig::new(dir.path()).journal_segments(8 * 1024 * 1024, 8)).unwrap();
        crate::testing::projections_bench::fill(&log, 2_000, None).unwrap();
        let gate = crate::projections::RunnerGate::default();
        let projections = Projections::open_gated(log.clone(), Duration::ZERO, gate.clone()).unwrap();
        let written = {
            let engine = projections.shared.engine.lock().unwrap();
            engine.snapshots().writer().hold(true);
            engine.snapshots().writer().written_waiter()
        };
        let reach = |position: u64| {
            for name in ProjectionName::ALL {
                let deadline = Instant::now() + Duration::from_secs(30);
                projections.shared.progress[name.index()]
                    .wait_blocking(position, deadline)
                    .unwrap();
            }
        };
        // The runner catches up (a snapshot taken, held on the writer), then one more entity's
        // events arrive (a snapshot due, not taken while the first is in flight).
        gate.open();
        reach(2_000);
        // The step that got there has taken its snapshot once the engine is free (a step holds
        // it through its snapshot): the next events are read by a step of their own, not by
        // that one's last read.
        drop(projections.shared.engine.lock().unwrap());
        crate::testing::projections_bench::fill_from(&log, 1_000_000, 20, None).unwrap();
        reach(log.head());
        assert!(!written(1, Duration::ZERO), "written while held");
        // Released, with no event after it: the first is written, then the second is taken.
        projections
            .shared
            .engine
            .lock()
            .unwrap()
            .snapshots()
            .writer()
            .hold(false);
        assert!(
            written(2, Duration::from_secs(30)),
            "the snapshot due meanwhile was not taken: {:?}",
            projections.snapshot_stats()
        );
    }

    #[test]
    fn the_first_snapshot_of_a_generation_is_its_base_and_later_ones_append_until_they_outgrow_it() {
        let mib = 1024 * 1024;
        let meta = |generation, next_chunk, base_chunks, base_bytes, appended_bytes| Meta {
            generation,
            next_chunk,
            base_bytes,
            appended_bytes,
            base_chunks,
        };
        let max = MAX_APPENDED_CHUNKS;
        // (meta before, expected (generation, first chunk, base))
        let table = [
            // Nothing written yet (opened without a snapshot): a base of this generation.
            (meta(0, 0, 0, 0, 0), (0, 0, true)),
            (meta(4, 0, 0, 0, 0), (4, 0, true)),
            // A 300 MiB base: a small change appends after it.
            (meta(0, 300, 300, 300 * mib, 0), (0, 300, false)),
            (meta(0, 310, 300, 300 * mib, 10 * mib), (0, 310, false)),
            // Appended bytes reach the base: a new generation.
            (meta(0, 600, 300, 300 * mib, 300 * mib), (1, 0, true)),
            // A small base: appends up to MIN_BASE_BYTES first.
            (meta(2, 3, 1, mib, 8 * mib), (2, 3, false)),
            (meta(2, 30, 1, mib, MIN_BASE_BYTES), (3, 0, true)),
            // Too many appended chunks, however small.
            (meta(5, 1 + max - 1, 1, 100 * mib, mib), (5, max, false)),
            (meta(5, 1 + max, 1, 100 * mib, mib), (6, 0, true)),
        ];
        for (before, expected) in table {
            assert_eq!(next_snapshot(&before, max), expected, "{before:?}");
        }
    }

    #[test]
    fn a_generation_takes_at_most_max_appended_chunks_before_a_new_base() {
        let (_dir, log, projections) = filled(2_000);
        projections
            .shared
            .engine
            .lock()
            .unwrap()
            .set_max_appended_chunks(3);
        // Twenty small snapshots, each appending one chunk: a base every three appends keeps
        // the chunk trees few, where the appended bytes alone (far below MIN_BASE_BYTES) never
        // would.
        for _ in 0..20 {
            projections.step(100).unwrap();
            projections.snapshot().unwrap();
            let chunks = projections.snapshot_chunks();
            assert!(chunks.len() <= 4, "{} chunk trees", chunks.len());
            let generation = chunks[0].0;
            assert!(chunks
                .iter()
                .all(|(chunk_generation, _, _)| *chunk_generation == generation));
        }
        let stats = projections.snapshot_stats();
        assert_eq!(stats.written, 20);
        assert!(stats.bases >= 5, "{} bases", stats.bases);
        let before = projections.dump_all();
        drop(projections);
        let reopened = Projections::open_paused(log.clone()).unwrap();
        assert!(matches!(reopened.snapshot_load(), SnapshotLoad::Loaded { .. }));
        assert!(reopened.dump_all() == before);
    }

    #[test]
    fn a_missing_chunk_discards_the_snapshot_without_creating_the_chunk() {
        let (_dir, log, projections) = snapshotted();
        let (generation, chunk, _) = projections.snapshot_chunks().pop().unwrap();
        let db = projections.shared.engine.lock().unwrap().snapshots_db();
        assert!(db.drop_tree(chunk_key(generation, chunk)).unwrap());
        drop((db, projections));
        let reopened = Projections::open_paused(log.clone()).unwrap();
        match reopened.snapshot_load() {
            SnapshotLoad::Discarded(reason) => assert!(reason.contains("a chunk is missing"), "{reason}"),
            other => panic!("expected a discarded snapshot, got {other:?}"),
        }
        assert!(
            reopened.snapshot_chunks().is_empty(),
            "the discarded chunks were dropped"
        );
    }

    #[test]
    fn a_new_base_replaces_the_old_generation_and_reopens_exactly() {
        let (_dir, log, projections) = filled(3_000);
        projections.step(1_000).unwrap();
        projections.snapshot().unwrap(); // the first: a base of generation 0
        projections.shared.engine.lock().unwrap().force_base();
        projections.step(1_000).unwrap();
        projections.snapshot().unwrap(); // a base: generation 1
        projections.step(1_000).unwrap();
        projections.snapshot().unwrap(); // appended to generation 1
        let stats = projections.snapshot_stats();
        assert_eq!((stats.written, stats.bases), (3, 2));
        let generations: std::collections::BTreeSet<u64> = projections
            .snapshot_chunks()
            .iter()
            .map(|(generation, _, _)| *generation)
            .collect();
        assert_eq!(
            generations,
            [1].into_iter().collect(),
            "the old generation is gone"
        );
        let before = projections.dump_all();
        let head = log.head();
        drop(projections);
        let reopened = Projections::open_paused(log.clone()).unwrap();
        assert!(matches!(reopened.snapshot_load(), SnapshotLoad::Loaded { .. }));
        assert_eq!(reopened.checkpoint(ProjectionName::Meetings), head);
        assert!(
            reopened.dump_all() == before,
            "base plus appended records restore exactly"
        );
        for name in ProjectionName::ALL {
            reopened.rebuild(name, &mut |_, _| {}).unwrap();
        }
        assert!(reopened.dump_all() == before, "and equal a rebuild");
    }
}
