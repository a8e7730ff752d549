//! The append-only event log, stored in sled. It knows nothing of diplomacy: it stores envelopes
//! with opaque payload bytes, assigns positions, stream versions, event ids and transaction
//! time, and proves what it stores with checksums and a hash chain.
//!
//! Files:
//! - `limits`: every bound, as named constants.
//! - `envelope`: the values crossing the boundary (requests, results, envelopes, filters).
//! - `codec`: record bytes, checksums, leaf and chain hashes.
//! - `journal`: the write-ahead journal that makes an acknowledgement durable (frames, segment
//!   files, recovery).
//! - `keys`: the key layout of the sled tree.
//! - `writer`: the single group-commit writer thread.
//! - `reader`: checked reads of records, streams and the whole log.
//! - `recovery`: checks on open and full verification.
//! - `clock`: the injectable source of `recorded_at`.
//!
//! Invariants (tested in tests/it/log_*.rs): positions are dense from 1 and a position always
//! returns the same bytes; an append is acknowledged only once its journal frame is fdatasynced; after a crash
//! the log is a prefix of what was attempted containing everything acknowledged; stream
//! versions are dense; a command id is recorded once; `recorded_at` never decreases; readers
//! never see a commit before it is durable.

pub mod backup;
pub mod clock;
pub mod codec;
pub mod disk;
pub mod envelope;
pub mod error;
pub(crate) mod journal;
pub mod keys;
pub mod limits;
#[cfg(test)]
mod power_cut_tests;
mod proofs;
mod reader;
pub mod recovery;
pub mod tree;
mod writer;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

pub use clock::{Clock, SystemClock};
pub use codec::{RecordLocation, RecordView};
pub use envelope::{
    AppendRequest, AppendResult, Direction, Envelope, EnvelopeRef, EventDraft, EventFilter, ExpectedVersion,
    Hash, ReadAllPage, RecordedEvent,
};
pub use error::{LogError, LogResult};
pub use proofs::Leaf;
pub use reader::ScanEnd;
pub use recovery::VerifyReport;

use limits::*;
use writer::{Committer, Pipeline, Shared, WriteOp, Writer};

/// Test hook: a step of the write path that [`Log::inject_fault`] makes fail once.
#[cfg(any(test, feature = "test-hooks"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPoint {
    /// The journal frame's write (`SegmentFile::write_at`).
    JournalWrite,
    /// The journal frame's fdatasync (`SegmentFile::sync_data`).
    JournalSync,
    /// Applying the commit's writes to sled, before the first.
    SledApply,
    /// Applying a small commit's writes to sled (plain inserts), after half of them: a crash in
    /// the middle of the apply leaves sled holding part of a journaled commit.
    SledApplyHalfway,
    /// Writing a commit's command records and head metadata to sled, after its callers were
    /// answered.
    SledCommandRecords,
    /// The checkpointer's sled flush and fsync.
    Checkpoint,
    /// Staging a group: panics instead of failing (a bug in the writer), to show that a panic
    /// poisons the log instead of unwinding into the appender that led the round.
    StagePanic,
}

/// Test hook: the fault injected for the next time a step runs.
#[cfg(any(test, feature = "test-hooks"))]
#[derive(Default)]
pub(crate) struct FaultSlot(std::sync::Mutex<Option<(FaultPoint, std::io::ErrorKind)>>);

#[cfg(any(test, feature = "test-hooks"))]
impl FaultSlot {
    /// Fails (once) if a fault is armed for `point`.
    pub(crate) fn fail(&self, point: FaultPoint) -> std::io::Result<()> {
        let mut slot = self.0.lock().expect("fault slot lock");
        match *slot {
            Some((armed, kind)) if armed == point => {
                *slot = None;
                Err(std::io::Error::new(kind, format!("injected {kind} at {point:?}")))
            }
            _ => Ok(()),
        }
    }
}

/// Counters of the writer since the log was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct WriterStats {
    /// sled batches applied (one per group commit).
    pub commits: u64,
    /// Journal write + fdatasync rounds (one frame may hold several commits).
    pub syncs: u64,
    /// Events written.
    pub events: u64,
    /// Time spent applying batches, in microseconds.
    pub apply_micros: u64,
    /// Time spent writing and fdatasyncing journal frames, in microseconds.
    pub sync_micros: u64,
    /// Journal bytes written (frames and segment headers excluded).
    pub journal_bytes: u64,
    /// Checkpoints (sled flushes) done.
    pub checkpoints: u64,
    /// Time spent in checkpoints, in microseconds.
    pub checkpoint_micros: u64,
    /// Checkpointer rounds that found less than the minimum of free disk space and waited.
    pub checkpoints_deferred: u64,
    /// Time spent growing the Merkle tree (hashing the new leaves into tiles), in nanoseconds.
    pub tree_nanos: u64,
    /// Group commits led by an appender on its own thread (a lone client's), not by the writer
    /// thread.
    pub led_by_appenders: u64,
    /// Times an appender woke the writer thread to lead (a lone appender does not).
    pub writer_wakeups: u64,
    /// Command-id lookups (the ledger's and the writer's) that memory could not answer and
    /// asked sled: a retry of an older command, or an id below the recent ids' floor.
    pub sled_command_lookups: u64,
}

/// What opening the log found in the journal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RecoveryReport {
    /// Journal frames past sled's last checkpoint, replayed into sled.
    pub replayed_frames: u64,
    /// Events in those frames (the head moved by this much).
    pub replayed_events: u64,
    /// Bytes of a torn, never acknowledged write zeroed at the end of the newest segment.
    pub truncated_bytes: u64,
}

/// How to open a log.
#[derive(Clone)]
pub struct LogConfig {
    path: PathBuf,
    cache_capacity_bytes: u64,
    clock: Arc<dyn Clock>,
    verify_on_open: u64,
    journal_segment_bytes: u64,
    journal_max_segments: usize,
    checkpoint_interval: std::time::Duration,
    min_free_disk: u64,
    free_space_probe: disk::FreeSpaceProbe,
    /// Tests put the journal on a simulated disk.
    #[cfg(test)]
    journal_store: Option<Arc<dyn journal::store::SegmentStore>>,
}

impl LogConfig {
    /// A log in directory `path` with the defaults: a 120 MiB page cache, the system clock, and
    /// the last DEFAULT_VERIFY_ON_OPEN records verified on open.
    pub fn new(path: impl AsRef<Path>) -> LogConfig {
        LogConfig {
            path: path.as_ref().to_path_buf(),
            cache_capacity_bytes: DEFAULT_CACHE_CAPACITY_BYTES,
            clock: Arc::new(SystemClock),
            verify_on_open: DEFAULT_VERIFY_ON_OPEN,
            journal_segment_bytes: DEFAULT_JOURNAL_SEGMENT_BYTES,
            journal_max_segments: DEFAULT_JOURNAL_MAX_SEGMENTS,
            checkpoint_interval: CHECKPOINT_INTERVAL,
            min_free_disk: DEFAULT_MIN_FREE_DISK_BYTES,
            free_space_probe: Arc::new(disk::free_bytes),
            #[cfg(test)]
            journal_store: None,
        }
    }
    /// Sets how often the checkpointer flushes sled while there is something to flush (it also
    /// runs once CHECKPOINT_JOURNAL_BYTES were journaled since it last ran).
    pub fn checkpoint_interval(mut self, interval: std::time::Duration) -> Self {
        self.checkpoint_interval = interval;
        self
    }
    /// Sets the size of each journal segment file (MIN_JOURNAL_SEGMENT_BYTES or more; a frame,
    /// and so one transaction, must fit in a segment) and how many may exist before the writer
    /// checkpoints inline to reuse one. Segments are created pre-zeroed when first needed.
    pub fn journal_segments(mut self, segment_bytes: u64, max_segments: usize) -> Self {
        self.journal_segment_bytes = segment_bytes.max(MIN_JOURNAL_SEGMENT_BYTES);
        self.journal_max_segments = max_segments.max(2);
        self
    }
    /// Sets the least free disk space (bytes, under the data directory) the log needs to open,
    /// to accept a write and to checkpoint (default DEFAULT_MIN_FREE_DISK_BYTES). Below it
    /// opening and writes fail with `LogError::DiskFull`, checkpoints wait; reads go on.
    pub fn min_free_disk(mut self, bytes: u64) -> Self {
        self.min_free_disk = bytes;
        self
    }
    /// Test hook: measures free space with `probe` instead of `statvfs`.
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn free_space_probe(mut self, probe: disk::FreeSpaceProbe) -> Self {
        self.free_space_probe = probe;
        self
    }
    /// Sets sled's page-cache size in bytes, held within MIN_CACHE_CAPACITY_BYTES and
    /// MAX_CACHE_CAPACITY_BYTES.
    pub fn cache_capacity_bytes(mut self, bytes: u64) -> Self {
        self.cache_capacity_bytes = bytes.clamp(MIN_CACHE_CAPACITY_BYTES, MAX_CACHE_CAPACITY_BYTES);
        self
    }
    /// Sets the clock that stamps `recorded_at`.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
    /// Sets how many records at the head are verified in full on open.
    pub fn verify_on_open(mut self, records: u64) -> Self {
        self.verify_on_open = records;
        self
    }
    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Hands the calling thread's deferred sled garbage to crossbeam's global queue and frees what
/// no reader can still see. Call it after a burst of sled work on a thread that may then wait.
///
/// Why: sled frees replaced page versions, pages evicted from its cache and its sealed 8 MiB IO
/// buffers through crossbeam epochs, and a thread's deferred frees wait in a thread-local bag
/// of 64 until that thread defers 64 more. A thread that then sits idle (the checkpointer
/// between flushes, a blocking-pool thread after a read, the writer between commits) held
/// them all: with a 128 MiB cache the log's sled held ~960 MB at 1,000,000 events, ~250 MB of
/// it IO buffers each pinned by one stale reference (docs/benchmarks.md).
pub(crate) fn release_sled_garbage() {
    crossbeam_epoch::pin().flush();
}

/// Opens sled, waiting up to OPEN_LOCK_WAIT for its file lock when it is held: a handle of this
/// process that was just dropped may still be finishing background IO. Another process holding
/// the directory (a running server) still fails, after the wait.
/// `flush_every_ms`: sled's own flush timer (None: only explicit flushes).
pub(crate) fn open_sled(
    path: &Path,
    cache_capacity_bytes: u64,
    flush_every_ms: Option<u64>,
) -> LogResult<sled::Db> {
    disk::remove_snapshot_debris(path)?;
    let started = std::time::Instant::now();
    loop {
        let opened = sled::Config::new()
            .path(path)
            .cache_capacity(cache_capacity_bytes)
            .segment_size(SLED_SEGMENT_SIZE_BYTES)
            .mode(sled::Mode::HighThroughput)
            .flush_every_ms(flush_every_ms)
            .open();
        match opened {
            Err(sled::Error::Io(error))
                if error.to_string().contains("could not acquire lock")
                    && started.elapsed() < OPEN_LOCK_WAIT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(error @ sled::Error::Corruption { .. }) => {
                return Err(LogError::DataLoss {
                    position: 0,
                    reason: format!(
                        "sled cannot open its files in {}: {error} (a non-empty unfinished snapshot \
                         `snap.*.generating` or a damaged file there; restore from an export)",
                        path.display()
                    ),
                })
            }
            other => return Ok(other?),
        }
    }
}

/// A handle to an open log. Cheap to clone; the log closes when the last handle is dropped
/// (the writer finishes every queued append first).
#[derive(Clone)]
pub struct Log {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    tree: sled::Tree,
    queue: Option<mpsc::Sender<WriteOp>>,
    /// Group commit: an appender leads a round when none is in progress, else the writer thread.
    pipeline: Arc<Pipeline>,
    head: watch::Receiver<u64>,
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
    db: sled::Db,
    /// The largest journal frame; a transaction must fit in one.
    max_frame_bytes: usize,
    recovery_report: RecoveryReport,
    /// Stamps `recorded_at`; read by [`Log::now`].
    clock: Arc<dyn Clock>,
    /// Refuses writes while the disk is (nearly) full.
    disk: Arc<disk::DiskGuard>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.queue.take();
        self.pipeline.close();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
        // Let sled finish its in-flight IO now, so its file lock is released when the last
        // handle goes rather than whenever a background write completes.
        let _ = self.db.flush();
    }
}

impl Log {
    /// The data directory the log lives in.
    pub fn data_dir(&self) -> &Path {
        &self.inner.path
    }

    /// The free-space rule of this log (the read models' snapshots, in the same data
    /// directory, wait on it as the checkpointer does).
    pub(crate) fn disk_guard(&self) -> Arc<disk::DiskGuard> {
        self.inner.disk.clone()
    }

    /// The time now, by the clock that stamps `recorded_at` (the ledger checks valid times
    /// against it).
    pub fn now(&self) -> crate::time::Timestamp {
        self.inner.clock.now()
    }

    /// Opens (or creates) the log in `config.path()`: replays the journal past sled's head,
    /// checks the head and the last records, and starts the writer.
    pub fn open(config: LogConfig) -> LogResult<Log> {
        std::fs::create_dir_all(&config.path)?;
        // sled writes on open (even to verify or export): refuse a directory on a full disk
        // before it can leave debris.
        let disk = Arc::new(disk::DiskGuard::new(
            config.path.clone(),
            config.min_free_disk,
            config.free_space_probe.clone(),
        ));
        disk.check_now()?;
        // The checkpointer owns flushing: sled's own timer would take sled's lock every 500 ms.
        let db = open_sled(&config.path, config.cache_capacity_bytes, None)?;
        // sled may just have created its files: make their directory entries durable.
        File::open(&config.path)?.sync_all()?;
        let tree = db.open_tree("log")?;
        let mut head = recovery::load_head(&tree)?;
        let store = Log::journal_store(&config)?;
        #[cfg(any(test, feature = "test-hooks"))]
        let faults = Arc::new(FaultSlot::default());
        #[cfg(any(test, feature = "test-hooks"))]
        let store = Log::wrapped_store(store, &faults);
        let recovered = journal::recovery::recover(store.as_ref(), head.position, &head.chain_hash)?;
        let sled_head = head.position;
        if !recovered.replay.is_empty() {
            for frame in &recovered.replay {
                head = recovery::replay_frame(&tree, &head, frame)?;
            }
            // Everything the journal held is now in sled; make it durable before serving.
            db.flush()?;
        }
        recovery::check_on_open(&tree, &head, config.verify_on_open)?;
        let merkle = Log::load_tree(&tree, head.position)?;
        let recovery_report = RecoveryReport {
            replayed_frames: recovered.replay.len() as u64,
            replayed_events: head.position - sled_head,
            truncated_bytes: recovered.truncated_bytes,
        };
        let sizes = journal::JournalSizes {
            segment_bytes: config.journal_segment_bytes,
            max_segments: config.journal_max_segments,
        };
        let journal = journal::JournalWriter::new(store, recovered.start, sizes)?;
        let (head_sender, head_receiver) = watch::channel(head.position);
        let shared = Arc::new(Shared {
            #[cfg(any(test, feature = "test-hooks"))]
            faults,
            tree: std::sync::Mutex::new(merkle),
            ..Shared::default()
        });
        shared.visible.store(head.position, Ordering::SeqCst);
        shared.applied.store(head.position, Ordering::SeqCst);
        shared.know_commands_up_to(reader::stored_command_ceiling(&tree)?);
        shared.checkpointed.store(head.position, Ordering::SeqCst);
        let (queue, receiver) = mpsc::channel(WRITE_QUEUE_CAPACITY);
        let data_file = File::options()
            .read(true)
            .write(true)
            .open(config.path.join("db"))?;
        if !recovered.replay.is_empty() {
            data_file.sync_all()?;
        }
        let writer = Writer {
            sled: Arc::new(writer::SledFiles {
                db: db.clone(),
                data_file,
            }),
            tree: tree.clone(),
            sizes,
            checkpoint_interval: config.checkpoint_interval,
            clock: config.clock.clone(),
            head,
            head_sender,
            shared: shared.clone(),
            disk: disk.clone(),
        };
        let (pipeline, kicks) = Pipeline::new(Committer::start(writer, receiver, journal));
        let led_by_thread = pipeline.clone();
        let writer = std::thread::Builder::new()
            .name("dipledger-log-writer".into())
            .spawn(move || led_by_thread.run(kicks))?;
        Ok(Log {
            inner: Arc::new(Inner {
                path: config.path.clone(),
                tree,
                queue: Some(queue),
                pipeline,
                head: head_receiver,
                shared,
                writer: Some(writer),
                db,
                max_frame_bytes: sizes.max_frame_bytes(),
                recovery_report,
                clock: config.clock.clone(),
                disk,
            }),
        })
    }

    /// The Merkle tree of the first `head` records: stored tiles, and the tiles missing after a
    /// journal replay or a restore rebuilt from the records' leaf hashes and stored.
    fn load_tree(tree: &sled::Tree, head: u64) -> LogResult<self::tree::TreeState> {
        let mut cursor = reader::RecordCursor::new(tree);
        let (state, missing) =
            self::tree::load(tree, head, |position| Ok(*cursor.read(position)?.leaf_hash()))?;
        if !missing.is_empty() {
            self::tree::store_tiles(tree, missing)?;
        }
        Ok(state)
    }

    fn journal_store(config: &LogConfig) -> LogResult<Arc<dyn journal::store::SegmentStore>> {
        #[cfg(test)]
        if let Some(store) = &config.journal_store {
            return Ok(store.clone());
        }
        Ok(Arc::new(journal::store::FsStore::open(
            config.path.join(JOURNAL_DIR),
        )?))
    }

    /// The journal's store, behind the fault-injection wrapper where the test hooks exist.
    #[cfg(any(test, feature = "test-hooks"))]
    fn wrapped_store(
        store: Arc<dyn journal::store::SegmentStore>,
        faults: &Arc<FaultSlot>,
    ) -> Arc<dyn journal::store::SegmentStore> {
        Arc::new(journal::store::faulty::FaultyStore {
            inner: store,
            faults: faults.clone(),
        })
    }

    /// Appends one request; resolves once it is durable (or fails).
    pub async fn append(&self, request: AppendRequest) -> LogResult<AppendResult> {
        let mut results = self.append_transaction(vec![request]).await?;
        Ok(results.pop().expect("one result per request"))
    }

    /// Appends several requests atomically (all or none) in one commit; one result each.
    pub async fn append_transaction(&self, requests: Vec<AppendRequest>) -> LogResult<Vec<AppendResult>> {
        let (op, answer) = self.prepare(requests)?;
        self.queue()?.send(op).await.map_err(|_| LogError::Closed)?;
        self.inner.pipeline.sent();
        answer.await.map_err(|_| LogError::Closed)?
    }

    /// [`Log::append`] for threads outside an async runtime.
    pub fn append_blocking(&self, request: AppendRequest) -> LogResult<AppendResult> {
        let mut results = self.append_transaction_blocking(vec![request])?;
        Ok(results.pop().expect("one result per request"))
    }

    /// [`Log::append_transaction`] for threads outside an async runtime.
    pub fn append_transaction_blocking(&self, requests: Vec<AppendRequest>) -> LogResult<Vec<AppendResult>> {
        let (op, answer) = self.prepare(requests)?;
        self.queue()?.blocking_send(op).map_err(|_| LogError::Closed)?;
        self.inner.pipeline.sent();
        answer.blocking_recv().map_err(|_| LogError::Closed)?
    }

    fn queue(&self) -> LogResult<&mpsc::Sender<WriteOp>> {
        self.inner.queue.as_ref().ok_or(LogError::Closed)
    }

    fn prepare(
        &self,
        requests: Vec<AppendRequest>,
    ) -> LogResult<(WriteOp, oneshot::Receiver<LogResult<Vec<AppendResult>>>)> {
        if let Some(refusal) = self.inner.shared.refusal() {
            return Err(refusal);
        }
        self.inner.disk.check()?;
        if requests.is_empty() {
            return Err(LogError::Invalid {
                field: "requests".into(),
                reason: "a transaction needs at least one request".into(),
            });
        }
        if requests.len() > MAX_REQUESTS_PER_TRANSACTION {
            return Err(LogError::TooLarge {
                what: "requests in one transaction",
                actual: requests.len(),
                limit: MAX_REQUESTS_PER_TRANSACTION,
            });
        }
        let mut events = 0;
        let mut bytes = 0;
        for request in &requests {
            request.validate()?;
            events += request.events().len();
            bytes += request.payload_bytes();
        }
        if events > MAX_EVENTS_PER_COMMIT {
            return Err(LogError::TooLarge {
                what: "events in one transaction",
                actual: events,
                limit: MAX_EVENTS_PER_COMMIT,
            });
        }
        if bytes > MAX_APPEND_PAYLOAD_BYTES {
            return Err(LogError::TooLarge {
                what: "payload bytes in one transaction",
                actual: bytes,
                limit: MAX_APPEND_PAYLOAD_BYTES,
            });
        }
        let frame_bytes: usize = requests.iter().map(AppendRequest::frame_bytes_bound).sum();
        let frame_limit = self.inner.max_frame_bytes - journal::FRAME_HEADER_BYTES;
        if frame_bytes > frame_limit {
            return Err(LogError::TooLarge {
                what: "journal frame bytes of one transaction",
                actual: frame_bytes,
                limit: frame_limit,
            });
        }
        let (reply, answer) = oneshot::channel();
        let reply = writer::Reply::new(reply);
        Ok((WriteOp { requests, reply }, answer))
    }

    /// The durable head: the last acknowledged position (0 for an empty log). Set before the
    /// commit's callers are answered, so a caller reads its own write; [`Log::watch_head`]
    /// follows just after the answers.
    pub fn head(&self) -> u64 {
        self.inner.shared.visible.load(Ordering::SeqCst)
    }

    /// A receiver that changes whenever the durable head moves. Subscribers and projections wait
    /// on it when caught up (never on sled's watchers, which block writers when they lag). It
    /// moves just after the commit's callers are answered, so it may lag [`Log::head`] briefly;
    /// wait on it for "past my position", and read the head itself from `head`.
    pub fn watch_head(&self) -> watch::Receiver<u64> {
        self.inner.head.clone()
    }

    /// The record at `position` (1..=head).
    pub fn read_event(&self, position: u64) -> LogResult<RecordedEvent> {
        let head = self.head();
        if position == 0 || position > head {
            return Err(LogError::OutOfRange {
                requested: position,
                head,
            });
        }
        reader::read_event(&self.inner.tree, position)
    }

    /// Up to `limit` events of a stream from `from_version` (inclusive) in `direction`.
    /// Backwards from `u64::MAX` starts at the stream's last event.
    pub fn read_stream(
        &self,
        stream_id: &str,
        from_version: u64,
        direction: Direction,
        limit: usize,
    ) -> LogResult<Vec<RecordedEvent>> {
        let mut events = Vec::new();
        self.scan_stream(stream_id, (from_version, direction), limit, &mut |view| {
            events.push(view.to_recorded());
            std::ops::ControlFlow::Continue(())
        })?;
        Ok(events)
    }

    /// The same events as [`Log::read_stream`], each shown to `visit` read in place (no copy of
    /// its texts or payload); `Break` leaves that event out and ends the page. Returns how many
    /// were taken.
    pub fn scan_stream(
        &self,
        stream_id: &str,
        (from_version, direction): (u64, Direction),
        limit: usize,
        visit: &mut dyn FnMut(&RecordView<'_>) -> std::ops::ControlFlow<()>,
    ) -> LogResult<usize> {
        envelope::validate_stream_id(stream_id)?;
        let taken = reader::scan_stream(
            &self.inner.tree,
            self.head(),
            stream_id,
            (from_version, direction),
            limit,
            visit,
        );
        release_sled_garbage();
        taken
    }

    /// One page of the whole log from `from_position` in `direction`, filtered.
    pub fn read_all(
        &self,
        from_position: u64,
        direction: Direction,
        limit: usize,
        filter: &EventFilter,
    ) -> LogResult<ReadAllPage> {
        let page = reader::read_all(
            &self.inner.tree,
            self.head(),
            from_position,
            direction,
            limit,
            filter,
        );
        release_sled_garbage();
        page
    }

    /// One page of the whole log, each matching event shown to `visit` read in place (no copy of
    /// its texts or payload); see [`reader::scan_all`] for how the page ends.
    pub fn scan_all(
        &self,
        (from_position, direction): (u64, Direction),
        limit: usize,
        filter: &EventFilter,
        visit: &mut dyn FnMut(&RecordView<'_>) -> std::ops::ControlFlow<()>,
    ) -> LogResult<ScanEnd> {
        let end = reader::scan_all(
            &self.inner.tree,
            self.head(),
            (from_position, direction),
            limit,
            filter,
            visit,
        );
        release_sled_garbage();
        end
    }

    /// The records at `records` (position and where a reader saw it stored), each shown to
    /// `visit` read in place, in the order given, until `visit` answers `Break`.
    pub fn scan_located(
        &self,
        records: &[(u64, RecordLocation)],
        visit: &mut dyn FnMut(&RecordView<'_>) -> std::ops::ControlFlow<()>,
    ) -> LogResult<()> {
        let scanned = reader::scan_located(&self.inner.tree, self.head(), records, visit);
        release_sled_garbage();
        scanned
    }

    /// The version of `stream_id` as last applied to sled, when the log remembers it (a stream
    /// the writer wrote or looked up since open, unless the bounded memory was cleared since):
    /// every event of the stream up to it is applied, none after it. `None` says nothing; ask
    /// `stream_version`.
    pub fn applied_stream_version(&self, stream_id: &str) -> Option<u64> {
        self.inner
            .shared
            .stream_versions
            .lock()
            .expect("stream versions")
            .get(stream_id)
            .copied()
    }

    /// The current (durable) version of a stream; 0 when it has no events. Reads only the
    /// stream index (no record), so it is cheap enough for the ledger's reference checks.
    pub fn stream_version(&self, stream_id: &str) -> LogResult<u64> {
        envelope::validate_stream_id(stream_id)?;
        let head = self.head();
        let prefix = keys::stream_index_prefix(stream_id);
        for entry in self.inner.tree.scan_prefix(&prefix).rev() {
            let (key, value) = entry?;
            let run = keys::StreamRun::decode(&key, &value, prefix.len())?;
            if run.first_position <= head {
                // Runs are written whole in one commit, so a run is durable entirely or not at all.
                return Ok(run.last_version());
            }
        }
        Ok(0)
    }

    /// The durable outcome of a command id: the fingerprint of the request that used it and
    /// the original result. The ledger asks this before deciding, so that a retry is answered
    /// with the original result even after the entity has moved on.
    pub fn find_command(&self, command_id: Uuid) -> LogResult<Option<(Hash, AppendResult)>> {
        // Answered commits may not have their command records in sled yet: memory first.
        match self.inner.shared.command_in_memory(command_id) {
            writer::InMemory::New => return Ok(None),
            writer::InMemory::Answered(found) => return Ok(Some(found)),
            writer::InMemory::AskSled => {}
        }
        let head = self.head();
        match reader::stored_command(&self.inner.tree, command_id)? {
            Some((fingerprint, result)) if result.last_position() <= head => Ok(Some((fingerprint, result))),
            _ => Ok(None),
        }
    }

    /// The highest position whose `recorded_at` is at or before `time` (0 if none): how an
    /// `as_of_time` query becomes an `as_of_position`. A binary search over positions, since
    /// `recorded_at` never decreases along positions: O(log n) record reads.
    pub fn position_at_time(&self, time: crate::time::Timestamp) -> LogResult<u64> {
        let (mut low, mut high) = (0u64, self.head()); // invariant: answer in [low, high]
        let mut cursor = reader::RecordCursor::new(&self.inner.tree);
        while low < high {
            let middle = low + (high - low).div_ceil(2);
            if cursor.read(middle)?.envelope().recorded_at <= time {
                low = middle;
            } else {
                high = middle - 1;
            }
        }
        Ok(low)
    }

    /// Scans the whole log: every record, the chain, the indexes. For `dipledger verify`.
    pub fn verify(&self, progress: &mut dyn FnMut(u64, u64)) -> LogResult<VerifyReport> {
        self.inner.shared.wait_whole();
        recovery::verify(&self.inner.tree, progress)
    }

    /// Restore writes command records around the writer: from then on every command lookup
    /// asks sled.
    pub(crate) fn forget_command_ceiling(&self) {
        self.inner.shared.know_commands_up_to(u64::MAX);
    }

    /// Flushes sled and fsyncs its data file (restore writes around the writer, then calls this).
    pub(crate) fn sync_for_restore(&self) -> LogResult<()> {
        self.inner.db.flush()?;
        File::open(self.inner.path.join("db"))?.sync_all()?;
        Ok(())
    }

    /// What the writer has done since open.
    pub fn stats(&self) -> WriterStats {
        let stats = &self.inner.shared.stats;
        WriterStats {
            commits: stats.commits.load(Ordering::Relaxed),
            syncs: stats.syncs.load(Ordering::Relaxed),
            events: stats.events.load(Ordering::Relaxed),
            apply_micros: stats.apply_micros.load(Ordering::Relaxed),
            sync_micros: stats.sync_micros.load(Ordering::Relaxed),
            journal_bytes: stats.journal_bytes.load(Ordering::Relaxed),
            checkpoints: stats.checkpoints.load(Ordering::Relaxed),
            checkpoint_micros: stats.checkpoint_micros.load(Ordering::Relaxed),
            checkpoints_deferred: stats.checkpoints_deferred.load(Ordering::Relaxed),
            tree_nanos: stats.tree_nanos.load(Ordering::Relaxed),
            led_by_appenders: stats.led_by_appenders.load(Ordering::Relaxed),
            writer_wakeups: stats.writer_wakeups.load(Ordering::Relaxed),
            sled_command_lookups: stats.sled_command_lookups.load(Ordering::Relaxed),
        }
    }

    /// What opening found in the journal.
    pub fn recovery_report(&self) -> RecoveryReport {
        self.inner.recovery_report
    }

    /// Why the writer is poisoned, if it is.
    pub fn poisoned(&self) -> Option<String> {
        self.inner.shared.poisoned()
    }

    /// Test hook: the next commit's fsync fails as a failing disk would, poisoning the writer.
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn inject_sync_failure(&self) {
        self.inner.shared.fail_next_sync.store(true, Ordering::SeqCst);
    }

    /// Test hook: the next time `point` runs it fails with an IO error of `kind` (ENOSPC is
    /// `ErrorKind::StorageFull`, EIO `ErrorKind::Other`), once; the writer reacts as to a real
    /// failure of that step.
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn inject_fault(&self, point: FaultPoint, kind: std::io::ErrorKind) {
        *self.inner.shared.faults.0.lock().expect("fault slot lock") = Some((point, kind));
    }

    /// Test hook: how many lone rounds in a row let an appender commit on its own thread
    /// (`LONE_ROUNDS_TO_LEAD` by default; 0: whenever no round is in progress).
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn set_lone_rounds_to_lead(&self, rounds: u32) {
        self.inner.pipeline.set_lone_rounds_to_lead(rounds);
    }

    /// Test hook: direct access to the sled tree, to damage records in corruption tests.
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn raw_tree(&self) -> &sled::Tree {
        self.inner.shared.wait_whole();
        self.tree()
    }

    /// The sled tree of the log, for the log's own modules (backup).
    pub(crate) fn tree(&self) -> &sled::Tree {
        &self.inner.tree
    }
}

#[cfg(test)]
mod release_tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Arc};
    use std::time::{Duration, Instant};

    /// Pins and flushes on this thread (each time trying to advance the epoch and collect) until
    /// `freed` is set, at most `attempts` times or for `limit`; whether it was.
    fn collect_until(freed: &AtomicBool, attempts: usize, limit: Duration) -> bool {
        let started = Instant::now();
        for _ in 0..attempts {
            if freed.load(Ordering::SeqCst) || started.elapsed() > limit {
                break;
            }
            crossbeam_epoch::pin().flush();
        }
        freed.load(Ordering::SeqCst)
    }

    #[test]
    fn an_idle_thread_frees_its_deferred_garbage_only_once_it_released_it() {
        let freed = Arc::new(AtomicBool::new(false));
        let (release, released) = (mpsc::channel::<()>(), mpsc::channel::<()>());
        let (go_release, wait_release) = release;
        let (say_released, wait_released) = released;
        let (deferred, wait_deferred) = mpsc::channel::<()>();
        let idle = {
            let freed = freed.clone();
            std::thread::spawn(move || {
                // What sled does when it replaces a page or seals an IO buffer.
                let guard = crossbeam_epoch::pin();
                guard.defer(move || freed.store(true, Ordering::SeqCst));
                drop(guard);
                deferred.send(()).unwrap();
                wait_release.recv().unwrap();
                super::release_sled_garbage();
                say_released.send(()).unwrap();
                // Idle from here on, but alive: its thread-local bag is not flushed on exit.
                let _ = wait_release.recv();
            })
        };
        wait_deferred.recv().unwrap();
        assert!(
            !collect_until(&freed, 10_000, Duration::from_secs(10)),
            "a deferred free in an idle thread's local bag was run by another thread"
        );
        go_release.send(()).unwrap();
        wait_released.recv().unwrap();
        assert!(
            collect_until(&freed, usize::MAX, Duration::from_secs(10)),
            "released garbage was not freed"
        );
        drop(go_release);
        idle.join().unwrap();
    }
}

#[cfg(test)]
mod config_tests {
    use super::*;

    #[test]
    fn the_page_cache_is_held_within_its_bounds() {
        let cache = |bytes| {
            LogConfig::new("unused")
                .cache_capacity_bytes(bytes)
                .cache_capacity_bytes
        };
        assert_eq!(cache(0), MIN_CACHE_CAPACITY_BYTES);
        assert_eq!(cache(MIN_CACHE_CAPACITY_BYTES - 1), MIN_CACHE_CAPACITY_BYTES);
        assert_eq!(cache(DEFAULT_CACHE_CAPACITY_BYTES), DEFAULT_CACHE_CAPACITY_BYTES);
        assert_eq!(cache(u64::MAX), MAX_CACHE_CAPACITY_BYTES);
        assert_eq!(
            LogConfig::new("unused").cache_capacity_bytes,
            DEFAULT_CACHE_CAPACITY_BYTES
        );
    }
}
