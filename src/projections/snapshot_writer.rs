//! The snapshot's IO on a thread of its own (`dipledger-snapshot`).
//!
//! The runner takes a snapshot's records from the read models under the model's write lock
//! (that part must see one consistent model) and hands each filled chunk to this thread, which
//! compresses and writes it; the entity states, immutable `Arc`s, are encoded here too, then
//! the meta is committed and sled flushed. So the runner goes back to applying events as soon
//! as the records are taken, instead of waiting for the compression, sled's inserts and the
//! flush (and a query waiting for the read models to reach a position with it). A base, larger
//! than the queue, still makes the runner wait under the lock while the thread catches up
//! (docs/ARCHITECTURE.md).
//!
//! At most one snapshot is in flight: a snapshot due while the last one is still being written
//! waits for a later step (the records it would take keep accumulating as unsaved changes), and
//! an explicit snapshot waits for the thread to be idle first. The thread writes in the order it
//! is given: a snapshot's chunks, then its meta, so a crash at any point leaves the previous
//! meta current (see `snapshot.rs`). A write that fails breaks the snapshots for good (the
//! meta is removed, so the next open rebuilds); the runner learns it at its next snapshot.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use super::error::{ProjectionError, ProjectionResult};
use super::snapshot::{
    chunk_key, commit_meta, drop_chunks, pack, Meta, SnapshotStats, CHUNK_BYTES, CHUNK_RECORDS_KEY,
};
use super::store::Current;
use crate::domain::common::PARTY_CODE_LEN;

/// Chunks a snapshot may have queued for the writer thread before the runner waits for it
/// (each up to [`CHUNK_BYTES`] of records, uncompressed): bounds the memory a large snapshot
/// (a base: hundreds of MiB of records at 1,000,000 events) holds in flight.
pub const WRITER_QUEUE_CHUNKS: usize = 8;
const _: () = assert!(WRITER_QUEUE_CHUNKS >= 1 && WRITER_QUEUE_CHUNKS * CHUNK_BYTES <= 64 * 1024 * 1024);

/// Entity records a snapshot defers to the writer thread (48 bytes each: 3 MiB); past it, the
/// runner encodes them as it takes them, under the model's lock (nearly all states are packed
/// then: a copy of their bytes). A commitment's progress reports are always deferred (reading
/// them decodes the state; one record per commitment).
pub const MAX_DEFERRED_ENTITIES: usize = 65_536;
/// Deferred records per block of the list that holds them (48 bytes each: 192 KiB).
pub const DEFERRED_BLOCK: usize = 4_096;
const _: () = assert!(DEFERRED_BLOCK >= 1 && DEFERRED_BLOCK <= MAX_DEFERRED_ENTITIES);

/// One unit of work for the writer thread.
enum Job {
    /// A chunk of records to compress and write under `key`.
    Chunk { key: [u8; 17], records: Vec<u8> },
    /// The end of a snapshot: encode the deferred entities, write the last chunks, commit.
    Finish(Box<Finish>),
}

/// The end of a snapshot as the runner hands it over (the meta it follows is the writer's
/// current one: only one snapshot is in flight).
struct Finish {
    records: Records,
    /// A new base (the old generation is dropped once the new meta is committed).
    base: bool,
    /// The format written.
    format: u32,
}

/// Where a [`Records`]' filled chunks go.
enum Out {
    /// To the writer thread (on the runner, under the model's lock).
    Queue(SyncSender<Job>),
    /// Written now (on the writer thread); the first error stops the writes.
    Write {
        db: sled::Db,
        error: Option<sled::Error>,
    },
    /// Kept in memory (tests read the records back).
    #[cfg(test)]
    Collect(Vec<Vec<u8>>),
}

/// The records of one snapshot, cut into chunks as they fill.
pub(crate) struct Records {
    out: Out,
    generation: u64,
    next_chunk: u64,
    buffer: Vec<u8>,
    /// Record bytes (before compression).
    bytes: u64,
    /// Records to encode on the writer thread, at most [`MAX_DEFERRED_ENTITIES`] entities'
    /// (a base has one per entity: ~525,000, 25 MB, at the benchmark's 1,000,000 events,
    /// which were all held until the writer thread had encoded them; docs/benchmarks.md 000w),
    /// in blocks of [`DEFERRED_BLOCK`]: the list grows a block at a time, without copying what
    /// it holds or keeping more than a block unused (a doubling vector did both: 12.6 MB for the
    /// progress reports' records alone, 000x).
    deferred: Vec<Vec<Deferred>>,
    /// Entity records in `deferred`.
    deferred_entities: usize,
}

/// A record encoded on the writer thread, from states that are immutable `Arc`s (so what is
/// encoded is what was current when the snapshot was taken). Each holds its read model's letter.
pub(crate) enum Deferred {
    /// An entity's value under a key.
    Entity {
        letter: u8,
        key: EntityKey,
        current: Current,
    },
    /// A commitment's progress reports after version `saved`, and the removes of the ones at or
    /// before it retracted since.
    Reports {
        letter: u8,
        uuid: uuid::Uuid,
        state: std::sync::Arc<super::kept::Kept>,
        saved: u64,
    },
}

/// The most bytes of an entity's snapshot key: a letter and a UUID, or a letter and a party
/// code.
pub(crate) const ENTITY_KEY_BYTES: usize = 17;
// A letter, then a UUID (16 bytes) or a party code.
const _: () = assert!(16 < ENTITY_KEY_BYTES && *PARTY_CODE_LEN.end() < ENTITY_KEY_BYTES);
const _: () = assert!(
    std::mem::size_of::<Deferred>() <= 48,
    "a deferred record is held per entity while a base snapshot is written"
);

/// An entity's snapshot key, inline (a deferred record per entity would otherwise hold a heap
/// copy of its key).
#[derive(Clone, Copy)]
pub(crate) struct EntityKey {
    bytes: [u8; ENTITY_KEY_BYTES],
    len: u8,
}

impl EntityKey {
    /// The key `kind` + `id`.
    pub(crate) fn new(kind: u8, id: &[u8]) -> EntityKey {
        assert!(
            id.len() < ENTITY_KEY_BYTES,
            "an entity's id is a UUID or a party code"
        );
        let mut bytes = [0u8; ENTITY_KEY_BYTES];
        bytes[0] = kind;
        bytes[1..=id.len()].copy_from_slice(id);
        EntityKey {
            bytes,
            len: id.len() as u8 + 1,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

pub(super) const PUT: u8 = 0;
pub(super) const REMOVE: u8 = 1;
pub(super) const CLEAR: u8 = 2;

impl Records {
    fn new(out: Out, generation: u64, next_chunk: u64) -> Records {
        Records {
            out,
            generation,
            next_chunk,
            buffer: Vec::with_capacity(CHUNK_BYTES + 4096),
            bytes: 0,
            deferred: Vec::new(),
            deferred_entities: 0,
        }
    }

    /// Adds a record to encode later, on the writer thread; an entity's once
    /// [`MAX_DEFERRED_ENTITIES`] are deferred is encoded now instead (a copy of its packed
    /// bytes, unless among the few states kept decoded).
    pub(crate) fn defer(&mut self, record: Deferred) {
        if let Deferred::Entity { .. } = record {
            if self.deferred_entities == MAX_DEFERRED_ENTITIES {
                return self.encode(record);
            }
            self.deferred_entities += 1;
        }
        super::store::push_blocked(&mut self.deferred, record, DEFERRED_BLOCK);
    }

    /// Puts the records of `record`.
    fn encode(&mut self, record: Deferred) {
        match record {
            Deferred::Entity { letter, key, current } => self.put_with(letter, key.as_bytes(), |out| {
                current
                    .state
                    .write_snapshot_value(current.first_position, current.last_position, out)
            }),
            Deferred::Reports {
                letter,
                uuid,
                state,
                saved,
            } => {
                let mut out = super::store::Snapshot {
                    letter,
                    records: self,
                };
                super::commitments::report_records(&uuid, &state.state(), saved, &mut out);
            }
        }
    }

    /// A record without a value: a remove (of `key`) or a clear (no key).
    fn record(&mut self, tag: u8, letter: u8, key: &[u8]) {
        assert!(tag != PUT, "a put has a value");
        self.buffer.push(tag);
        self.buffer.push(letter);
        if tag != CLEAR {
            self.buffer.extend_from_slice(&(key.len() as u32).to_be_bytes());
            self.buffer.extend_from_slice(key);
        }
        if self.buffer.len() >= CHUNK_BYTES {
            self.flush();
        }
    }

    pub(crate) fn put(&mut self, letter: u8, key: &[u8], value: &[u8]) {
        self.put_with(letter, key, |out| out.extend_from_slice(value));
    }

    /// Puts `key` -> the bytes `value` appends, written in place (no copy of the value made
    /// first).
    fn put_with(&mut self, letter: u8, key: &[u8], value: impl FnOnce(&mut Vec<u8>)) {
        self.buffer.push(PUT);
        self.buffer.push(letter);
        self.buffer.extend_from_slice(&(key.len() as u32).to_be_bytes());
        self.buffer.extend_from_slice(key);
        let length_at = self.buffer.len();
        self.buffer.extend_from_slice(&[0; 4]);
        value(&mut self.buffer);
        let length = u32::try_from(self.buffer.len() - length_at - 4).expect("a record is far below 4 GiB");
        self.buffer[length_at..length_at + 4].copy_from_slice(&length.to_be_bytes());
        if self.buffer.len() >= CHUNK_BYTES {
            self.flush();
        }
    }

    pub(crate) fn remove(&mut self, letter: u8, key: &[u8]) {
        self.record(REMOVE, letter, key);
    }

    pub(super) fn clear(&mut self, letter: u8) {
        self.record(CLEAR, letter, &[]);
    }

    /// Hands the filled buffer on as the next chunk.
    fn flush(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let key = chunk_key(self.generation, self.next_chunk);
        self.bytes += self.buffer.len() as u64;
        self.next_chunk += 1;
        match &mut self.out {
            Out::Queue(jobs) => {
                let records = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK_BYTES + 4096));
                // A writer gone (when the snapshots close, or after a panic) loses a snapshot:
                // the `Finish` that follows is refused the same way and reported.
                let _ = jobs.send(Job::Chunk { key, records });
            }
            Out::Write { db, error } => {
                if error.is_none() {
                    *error = write_chunk(db, key, &self.buffer).err();
                }
                self.buffer.clear();
            }
            #[cfg(test)]
            Out::Collect(chunks) => chunks.push(std::mem::take(&mut self.buffer)),
        }
    }

    /// Records kept in memory (a test reads them back with [`Records::puts`]).
    #[cfg(test)]
    pub(crate) fn collecting() -> Records {
        Records::new(Out::Collect(Vec::new()), 0, 0)
    }

    /// The (key, value) of every put, in order (of records made by [`Records::collecting`]).
    #[cfg(test)]
    pub(crate) fn puts(mut self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.flush();
        let Out::Collect(chunks) = &self.out else {
            panic!("records kept in memory")
        };
        let mut puts = Vec::new();
        for chunk in chunks {
            let mut rest = &chunk[..];
            use super::store::{take_bytes, take_sized};
            while let Some(head) = take_bytes(&mut rest, 2) {
                assert_eq!(head[0], PUT, "only puts");
                let key = take_sized(&mut rest).expect("a key");
                let value = take_sized(&mut rest).expect("a value");
                puts.push((key.to_vec(), value.to_vec()));
            }
        }
        puts
    }

    /// On the writer thread: encodes the deferred entities and writes the last chunk; the next
    /// chunk number and the record bytes.
    fn finish(mut self, db: &sled::Db) -> ProjectionResult<(u64, u64)> {
        self.out = Out::Write {
            db: db.clone(),
            error: None,
        };
        for record in std::mem::take(&mut self.deferred).into_iter().flatten() {
            self.encode(record);
        }
        self.flush();
        match self.out {
            Out::Write {
                error: Some(error), ..
            } => Err(error.into()),
            _ => Ok((self.next_chunk, self.bytes)),
        }
    }
}

/// Compresses and writes one chunk as a tree of its own.
fn write_chunk(db: &sled::Db, key: [u8; 17], records: &[u8]) -> sled::Result<()> {
    db.open_tree(key)?.insert(CHUNK_RECORDS_KEY, pack(records))?;
    Ok(())
}

/// What the runner and the writer thread share.
struct Shared {
    state: Mutex<State>,
    /// Signalled when a snapshot is finished.
    idle: Condvar,
    /// Notified when a snapshot is finished, for the runner: a snapshot that fell due while
    /// this one was in flight is taken then, not at the next event (a quiet server has none).
    finished: Arc<tokio::sync::Notify>,
    /// Test hook: while true the thread waits before each job.
    #[cfg(test)]
    held: Mutex<bool>,
    #[cfg(test)]
    released: Condvar,
    /// Test hook: the next chunk written, or the snapshot's finish, fails.
    #[cfg(test)]
    fail_next: std::sync::atomic::AtomicBool,
    /// Test hook: the thread panics at its next job.
    #[cfg(test)]
    panic_next: std::sync::atomic::AtomicBool,
}

/// The committed side of the snapshots, as the writer thread leaves it.
#[derive(Default)]
struct State {
    /// A snapshot was handed over and is not finished yet.
    in_flight: bool,
    /// The meta last committed.
    meta: Meta,
    stats: SnapshotStats,
    /// Why the last snapshot failed, until the runner is told.
    failure: Option<ProjectionError>,
    /// A snapshot failed: none is written any more, and the meta was removed.
    broken: bool,
}

/// The writer thread and its queue.
pub(crate) struct Writer {
    /// The read models' own sled database (`<data dir>/readmodels`) and its snapshot tree,
    /// kept open with the thread.
    db: sled::Db,
    #[cfg(any(test, feature = "test-hooks"))]
    tree: sled::Tree,
    jobs: Option<SyncSender<Job>>,
    thread: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
}

/// The committed meta when the writer is idle and the snapshots are not broken.
pub(crate) enum Ready {
    Idle(Meta),
    /// A snapshot is still being written (only when not waiting).
    Busy,
    Broken,
}

impl Writer {
    /// Starts the thread over `db` and `tree` (the snapshot tree), with the meta `meta` current.
    pub(crate) fn start(db: sled::Db, tree: sled::Tree, meta: Meta) -> ProjectionResult<Writer> {
        let (jobs, queue) = sync_channel(WRITER_QUEUE_CHUNKS);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                meta,
                ..State::default()
            }),
            idle: Condvar::new(),
            finished: Arc::new(tokio::sync::Notify::new()),
            #[cfg(test)]
            held: Mutex::new(false),
            #[cfg(test)]
            released: Condvar::new(),
            #[cfg(test)]
            fail_next: std::sync::atomic::AtomicBool::new(false),
            #[cfg(test)]
            panic_next: std::sync::atomic::AtomicBool::new(false),
        });
        let thread = {
            let (db, shared) = (db.clone(), shared.clone());
            #[cfg(any(test, feature = "test-hooks"))]
            let tree = tree.clone();
            std::thread::Builder::new()
                .name("dipledger-snapshot".into())
                .spawn(move || run(&db, &tree, &shared, queue))
                .map_err(crate::log::LogError::from)?
        };
        Ok(Writer {
            db,
            #[cfg(any(test, feature = "test-hooks"))]
            tree,
            jobs: Some(jobs),
            thread: Some(thread),
            shared,
        })
    }

    /// The shared state (a writer that panicked holding it left it consistent: see
    /// [`Unwinding`]).
    fn state(&self) -> MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether a snapshot may start now; with `wait`, after the one in flight is finished.
    /// A failure not yet reported is returned (once).
    pub(crate) fn ready(&self, wait: bool) -> ProjectionResult<Ready> {
        let mut state = self.state();
        while wait && state.in_flight {
            state = self
                .shared
                .idle
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        if let Some(failure) = state.failure.take() {
            return Err(failure);
        }
        Ok(match (state.broken, state.in_flight) {
            (true, _) => Ready::Broken,
            (false, false) => Ready::Idle(state.meta),
            (false, true) => Ready::Busy,
        })
    }

    /// Records for a snapshot of `generation` whose first chunk is `next_chunk`.
    pub(crate) fn records(&self, generation: u64, next_chunk: u64) -> Records {
        let jobs = self
            .jobs
            .clone()
            .expect("the writer runs while the snapshots are open");
        Records::new(Out::Queue(jobs), generation, next_chunk)
    }

    /// Hands the end of a snapshot over (its chunks already are).
    pub(crate) fn finish(&self, mut records: Records, base: bool, format: u32) {
        // Held until the writer thread gets to them: not the room left in the last block.
        if let Some(block) = records.deferred.last_mut() {
            block.shrink_to_fit();
        }
        self.state().in_flight = true;
        let finish = Box::new(Finish {
            records,
            base,
            format,
        });
        let sent = self.jobs.as_ref().map(|jobs| jobs.send(Job::Finish(finish)));
        if !matches!(sent, Some(Ok(()))) {
            let mut state = self.state();
            state.in_flight = false;
            state.broken = true;
            state.failure = Some(ProjectionError::Stopped("the snapshot writer stopped".into()));
        }
    }

    pub(crate) fn stats(&self) -> SnapshotStats {
        self.state().stats
    }

    /// Notified each time a snapshot is finished (see `Shared::finished`).
    pub(crate) fn finished(&self) -> Arc<tokio::sync::Notify> {
        self.shared.finished.clone()
    }

    /// Waits up to `timeout` until `count` snapshots are written; whether they were (tests:
    /// without the engine's lock, which the runner needs to take them).
    #[cfg(test)]
    pub(crate) fn written_waiter(&self) -> impl Fn(u64, std::time::Duration) -> bool {
        let shared = self.shared.clone();
        move |count, timeout| {
            let state = shared.state.lock().unwrap();
            let (state, _) = shared
                .idle
                .wait_timeout_while(state, timeout, |state| state.stats.written < count)
                .unwrap();
            state.stats.written >= count
        }
    }

    /// The database (tests and benchmarks look into it).
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn db(&self) -> &sled::Db {
        &self.db
    }

    /// The snapshot tree (tests damage it; benchmarks measure it).
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn tree(&self) -> &sled::Tree {
        &self.tree
    }

    /// Makes the next snapshot a base (tests).
    #[cfg(test)]
    pub(crate) fn force_base(&self) {
        self.state().meta.appended_bytes = u64::MAX;
    }

    /// Holds the thread before its next job until released (tests).
    #[cfg(test)]
    pub(crate) fn hold(&self, held: bool) {
        *self.shared.held.lock().unwrap() = held;
        self.shared.released.notify_all();
    }

    /// Makes the next chunk write fail (tests).
    #[cfg(test)]
    pub(crate) fn fail_next_write(&self) {
        self.shared
            .fail_next
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Makes the thread panic at its next job (tests).
    #[cfg(test)]
    pub(crate) fn panic_next_job(&self) {
        self.shared
            .panic_next
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Writer {
    /// Finishes what was handed over, then lets sled finish its in-flight IO, so the database's
    /// file lock is released when the read models close.
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = self.db.flush();
    }
}

/// Marks the snapshots broken after `failure`: the model no longer knows which of its changes
/// are on disk, so no snapshot is written any more, and the meta and format are removed, so the
/// next open finds no snapshot and rebuilds (the meta first: a crash between the two leaves a
/// format without a meta, which the open discards).
fn break_snapshots(tree: &sled::Tree, state: &mut State, failure: ProjectionError) {
    let _ = tree.remove(super::snapshot::META_KEY);
    let _ = tree.remove(super::snapshot::VERSION_KEY);
    state.broken = true;
    state.failure = Some(failure);
}

/// Set while the writer thread runs: if it unwinds (a panic in sled or an encoding), the
/// snapshots are broken and whoever waits for it is woken and told, instead of waiting forever.
struct Unwinding<'a> {
    tree: &'a sled::Tree,
    shared: &'a Shared,
}

impl Drop for Unwinding<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let mut state = match self.shared.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        let failure = ProjectionError::Stopped("the snapshot writer panicked".into());
        break_snapshots(self.tree, &mut state, failure);
        state.in_flight = false;
        self.shared.idle.notify_all();
    }
}

/// The thread's loop: jobs in order until the queue closes.
fn run(db: &sled::Db, tree: &sled::Tree, shared: &Shared, queue: Receiver<Job>) {
    let _unwinding = Unwinding { tree, shared };
    // Derived data, like the runner's work: it yields the CPU to the write path and the API.
    crate::priority::lower_this_thread(super::RUNNER_NICE);
    // The first failed chunk write of the snapshot in progress.
    let mut error: Option<sled::Error> = None;
    for job in queue {
        #[cfg(test)]
        {
            let mut held = shared.held.lock().unwrap();
            while *held {
                held = shared.released.wait(held).unwrap();
            }
            drop(held);
            if shared.panic_next.swap(false, std::sync::atomic::Ordering::SeqCst) {
                panic!("injected snapshot writer panic");
            }
        }
        match job {
            Job::Chunk { key, records } => {
                if error.is_none() {
                    error = injected_failure(shared).or_else(|| write_chunk(db, key, &records).err());
                }
            }
            Job::Finish(finish) => {
                let previous = shared.state.lock().expect("snapshot writer state").meta;
                let result = match error.take().or_else(|| injected_failure(shared)) {
                    Some(error) => Err(error.into()),
                    None => complete(db, tree, *finish, previous),
                };
                let mut state = shared.state.lock().expect("snapshot writer state");
                match result {
                    Ok((meta, bytes, base)) => {
                        state.meta = meta;
                        state.stats.written += 1;
                        state.stats.bases += u64::from(base);
                        state.stats.last_bytes = bytes;
                        state.stats.total_bytes += bytes;
                    }
                    Err(failure) => break_snapshots(tree, &mut state, failure),
                }
                state.in_flight = false;
                shared.idle.notify_all();
                drop(state);
                shared.finished.notify_one();
                // This thread's deferred frees of sled's pages would wait for 64 more.
                crate::log::release_sled_garbage();
            }
        }
    }
}

#[cfg(test)]
fn injected_failure(shared: &Shared) -> Option<sled::Error> {
    shared
        .fail_next
        .swap(false, std::sync::atomic::Ordering::SeqCst)
        .then(|| sled::Error::Unsupported("injected snapshot write failure".into()))
}

#[cfg(not(test))]
fn injected_failure(_shared: &Shared) -> Option<sled::Error> {
    None
}

/// Writes a snapshot's last chunks and commits its meta after `previous`; (meta, record
/// bytes, base).
fn complete(
    db: &sled::Db,
    tree: &sled::Tree,
    finish: Finish,
    previous: Meta,
) -> ProjectionResult<(Meta, u64, bool)> {
    let Finish {
        records,
        base,
        format,
    } = finish;
    let generation = records.generation;
    let (next_chunk, bytes) = records.finish(db)?;
    let meta = match base {
        true => Meta {
            generation,
            next_chunk,
            base_bytes: bytes,
            appended_bytes: 0,
            base_chunks: next_chunk,
        },
        false => Meta {
            next_chunk,
            appended_bytes: previous.appended_bytes.saturating_add(bytes),
            ..previous
        },
    };
    commit_meta(tree, &meta, format)?;
    if base && generation != previous.generation {
        drop_chunks(db, |(chunk_generation, _)| {
            chunk_generation == previous.generation
        })?;
    }
    Ok((meta, bytes, base))
}

#[cfg(test)]
mod tests {
    use super::{Deferred, EntityKey, Records, DEFERRED_BLOCK, MAX_DEFERRED_ENTITIES};
    use crate::projections::kept::Kept;
    use crate::projections::store::Current;

    #[test]
    fn entities_past_the_deferral_limit_are_encoded_at_once_and_every_one_is_put() {
        let (_, events) = crate::testing::projections_bench::sample_streams()
            .into_iter()
            .next()
            .expect("a sample stream");
        let mut state = crate::domain::AggregateState::empty_for_event(&events[0]);
        for event in &events {
            state = crate::domain::evolve_state(state, event);
        }
        let kept = Kept::cold(&state);
        let mut records = Records::collecting();
        let total = MAX_DEFERRED_ENTITIES + 10;
        for n in 0..total {
            records.defer(Deferred::Entity {
                letter: b'M',
                key: EntityKey::new(b'E', &(n as u128).to_be_bytes()),
                current: Current {
                    state: kept.clone(),
                    first_position: 1,
                    last_position: 2,
                },
            });
        }
        let deferred: usize = records.deferred.iter().map(Vec::len).sum();
        assert_eq!(deferred, MAX_DEFERRED_ENTITIES, "the rest encoded at once");
        assert!(
            records
                .deferred
                .iter()
                .all(|block| block.capacity() == DEFERRED_BLOCK),
            "held in whole blocks"
        );
        for record in std::mem::take(&mut records.deferred).into_iter().flatten() {
            records.encode(record);
        }
        let puts = records.puts();
        assert_eq!(puts.len(), total);
        let keys: std::collections::BTreeSet<&Vec<u8>> = puts.iter().map(|(key, _)| key).collect();
        assert_eq!(keys.len(), total, "every entity once");
        let value = kept.snapshot_value(1, 2);
        assert!(puts.iter().all(|(_, put)| *put == value));
    }

    #[test]
    fn entity_keys_hold_a_letter_and_a_uuid_or_the_longest_party_code_inline() {
        let uuid = uuid::Uuid::now_v7();
        let key = EntityKey::new(b'E', uuid.as_bytes());
        assert_eq!(key.as_bytes(), [&b"E"[..], uuid.as_bytes()].concat());
        let code = "A".repeat(*crate::domain::common::PARTY_CODE_LEN.end());
        let key = EntityKey::new(b'p', code.as_bytes());
        assert_eq!(key.as_bytes(), [&b"p"[..], code.as_bytes()].concat());
        assert_eq!(EntityKey::new(b'p', b"FR").as_bytes(), b"pFR");
    }
}
