//! The single writer: group commit by one leader at a time (a lone appender on its own thread,
//! else the writer thread), command records on a second thread, checkpoints on a third.
//!
//! One *leader* at a time owns every append (the [`Pipeline`]'s `leading` flag over the
//! [`Committer`]). It takes all requests queued while the previous commit was in progress (bounded by
//! MAX_EVENTS_PER_COMMIT and by the journal frame size), checks each against the stream heads
//! and command ids (its own group first, then its cache, then the command ceiling, the answered
//! commits and sled), encodes and chains the records, packs them into chunks, and builds the
//! group's journal frame part and its sled writes. It then writes the frame with one `write` and
//! one `fdatasync`, and only then applies the records, stream runs and tiles to sled (in memory:
//! sled is not flushed here), moves the durable head and answers the callers; then it hands the
//! commit's command records and head metadata (which no reader needs; a retry's lookup finds the
//! answered commits' ids in memory meanwhile) to the *late writer* thread.
//!
//! Who leads: an appender sends its op to the queue; if the last LONE_ROUNDS_TO_LEAD rounds each
//! committed a single op with nothing sent before its answer (one client at a time), and no
//! round is in progress, the appender leads the round itself, on its own thread (a tokio worker
//! for the server), so a lone client's command wakes no other thread; otherwise it wakes the
//! *writer* thread, which leads until the queue is empty. A leader that lets go looks at the
//! count of queued ops and wakes the writer thread for what was sent meanwhile, so no op waits
//! without a leader (a sender counts its op before it tries to lead; the count and the flag are
//! SeqCst, so a sender that finds the flag set has its op counted when the leader looks). A
//! round never runs on a current-thread tokio runtime, whose one thread runs every task.
//! Concurrent clients are thus grouped by the writer thread exactly as before, and never block
//! a tokio worker for a fdatasync (docs/benchmarks.md, section 000y: leading on a worker
//! whenever the writer was idle cost W2 ~15%). Staging the next group while the previous one
//! syncs, on a second thread, measured slower on this two-core machine (the hand-over's
//! wake-ups cost more than the overlap saved: section 000i); the late writer's hand-over is off
//! the answers' path. A panic in a round poisons the log (caught, so it does not unwind into
//! the appender that led it).
//!
//! Sled is written only after the journal holds the commit, so everything sled holds past its
//! last flush is also in the journal, and recovery's replay from sled's head rewrites the same
//! keys. That is what lets a small commit go to sled as plain inserts, in key order with the head
//! last, instead of an atomic batch: sled 0.34 makes every batch seal and write its IO buffer
//! twice (`pin_log`: a `pwrite` and a waited `sync_file_range` each, on its IO threads, all woken
//! per write), which doubled the device work of every acknowledged command. Recovery relies on
//! sled recovering a prefix of its operations: a commit cut short has no head yet, and the
//! journal replays it whole.
//!
//! The *checkpointer* thread flushes sled every CHECKPOINT_INTERVAL (or sooner once
//! CHECKPOINT_JOURNAL_BYTES were journaled) and records the position sled now holds durably, so
//! that journal segments below it can be reused. A failed write or fdatasync poisons the writer:
//! every commit not yet answered fails, and so does every later append, until the log is reopened.
//!
//! Readers never look past the durable head, so a commit that sled holds only in part is
//! invisible to them.
//!
//! Longer than ~600 lines: staging, journaling, applying and checkpointing are one protocol;
//! split, the ordering rules between them would no longer be visible in one place.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use super::clock::Clock;
use super::codec::encode_record;
use super::envelope::{AppendRequest, AppendResult, Envelope, Hash};
use super::error::{LogError, LogResult};
use super::journal::{FramePart, JournalSizes, JournalWriter, RequestEntry};
use super::keys::{self, CommandRecord, HeadMeta, StreamRun};
use super::limits::{
    CHECKPOINT_JOURNAL_BYTES, LATE_COMMITS_QUEUED, LATE_WRITER_NICE, LONE_ROUNDS_TO_LEAD,
    MAX_EVENTS_PER_COMMIT, RECENT_COMMAND_IDS, STREAM_HEAD_CACHE_ENTRIES,
};
use super::reader;
use crate::time::Timestamp;

/// Why the log refuses writes after a round panicked, in words.
const PANICKED: &str = "the log writer panicked (a bug: see the server log)";

/// Where an op's outcome goes. Dropped unanswered while a round panics (its op unwound with
/// the round), it answers `WriterPanicked` rather than leave the caller with `Closed`, which
/// says the log is shutting down.
pub(crate) struct Reply(Option<oneshot::Sender<LogResult<Vec<AppendResult>>>>);

impl Reply {
    pub(crate) fn new(sender: oneshot::Sender<LogResult<Vec<AppendResult>>>) -> Reply {
        Reply(Some(sender))
    }

    fn send(mut self, outcome: LogResult<Vec<AppendResult>>) {
        if let Some(sender) = self.0.take() {
            let _ = sender.send(outcome);
        }
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if let (Some(sender), true) = (self.0.take(), std::thread::panicking()) {
            let _ = sender.send(Err(LogError::WriterPanicked));
        }
    }
}

/// A unit of work for the writer: one or more append requests that succeed or fail together.
pub(crate) struct WriteOp {
    pub(crate) requests: Vec<AppendRequest>,
    pub(crate) reply: Reply,
}

impl WriteOp {
    fn event_count(&self) -> usize {
        self.requests.iter().map(|request| request.events().len()).sum()
    }
    fn frame_bytes_bound(&self) -> usize {
        self.requests.iter().map(AppendRequest::frame_bytes_bound).sum()
    }
}

/// State shared between the writer threads and the `Log` handles.
#[derive(Default)]
pub(crate) struct Shared {
    /// Why the writer stopped accepting writes, once it has.
    pub(crate) poison: Mutex<Option<Stop>>,
    /// Test hook: make the next fsync fail as a disk would.
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fail_next_sync: std::sync::atomic::AtomicBool,
    /// Test hook: the fault injected at a step of the write path (`Log::inject_fault`).
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) faults: Arc<super::FaultSlot>,
    /// Counters for operators and benchmarks.
    pub(crate) stats: WriterStats,
    /// The durable head readers see: the last position whose records and stream runs are in
    /// sled. A commit's records are applied only after its journal frame's fdatasync, and its
    /// callers answered after that.
    pub(crate) visible: AtomicU64,
    /// The last position applied to sled whole, command records and head metadata included
    /// (at most LATE_COMMITS_QUEUED + 2 commits behind `visible`: those queued, the one being
    /// written, the one being handed over; written by the late writer):
    /// what a checkpoint may declare durable.
    pub(crate) applied: AtomicU64,
    /// The command records of the commits answered but not yet written to sled (between
    /// `applied` and `visible`), one map per commit in commit order, so a retry of one finds
    /// them meanwhile ([`Shared::command_in_memory`]). A commit's map moves in whole and the
    /// late writer pops it once written: no per-command work on the writer thread.
    pub(crate) answered_commands: Mutex<std::collections::VecDeque<AnsweredCommit>>,
    /// At least the high 64 bits of every command id the log holds or the writer has staged
    /// (u64::MAX when unknown): an id above it is not there, so looking up a new command (a
    /// UUIDv7, above every earlier one but for clocks and races) skips sled. Set on open,
    /// raised by the writer before it stages an id.
    pub(crate) command_ceiling: AtomicU64,
    /// The ids staged most recently, with the floor above which they are all the log holds.
    pub(crate) recent_commands: Mutex<RecentCommands>,
    /// Callers of [`Shared::wait_whole`] waiting for `applied` to reach `visible`.
    pub(crate) whole_waiters: Mutex<usize>,
    pub(crate) whole: std::sync::Condvar,
    /// The last position sled holds durably (its last flush, or what was recovered on open).
    pub(crate) checkpointed: AtomicU64,
    /// The Merkle tree as far as applied (tiles completed go into each commit's batch).
    pub(crate) tree: Mutex<super::tree::TreeState>,
    /// The current version of streams the writer has written or looked up since open, as
    /// applied to sled (at most STREAM_HEAD_CACHE_ENTRIES, cleared when full; updated after each
    /// apply, so never ahead of sled): the writer decides expected versions with it, and the
    /// ledger sees that a cached state is current without reading sled.
    pub(crate) stream_versions: Mutex<HashMap<String, u64>>,
}

/// An answered commit's command records by id, with its head (to check the late writer pops
/// the commit it wrote).
pub(crate) struct AnsweredCommit {
    head: u64,
    commands: HashMap<Uuid, (Hash, AppendResult)>,
}

/// The ids of the commands staged most recently (at most RECENT_COMMAND_IDS), with a floor:
/// every id the log holds (or the writer has staged) whose ceiling value is above `floor` is
/// among them. So an id between the floor and the command ceiling that is not here is new,
/// without asking sled: concurrent clients' commands are staged in another order than their
/// UUIDv7s were made, and each id below the ceiling was a sled lookup that missed (under W3
/// ~5% of the server's samples, docs/benchmarks.md, section 000y). An id leaves the set only
/// after RECENT_COMMAND_IDS later ones were staged, long after its commit was answered (its
/// record is then in the answered commits or in sled), and the floor rises past it.
pub(crate) struct RecentCommands {
    floor: u64,
    ids: std::collections::HashSet<Uuid>,
    order: std::collections::VecDeque<Uuid>,
}

impl Default for RecentCommands {
    /// Knows nothing: the floor at the top, so every lookup asks further.
    fn default() -> RecentCommands {
        RecentCommands::above(u64::MAX)
    }
}

impl RecentCommands {
    /// No id the log holds has a ceiling value above `floor` (the command ceiling on open).
    fn above(floor: u64) -> RecentCommands {
        RecentCommands {
            floor,
            ids: std::collections::HashSet::new(),
            order: std::collections::VecDeque::new(),
        }
    }

    /// Remembers a staged id; the oldest beyond RECENT_COMMAND_IDS leave and raise the floor.
    fn remember(&mut self, command_id: Uuid) {
        if self.ids.insert(command_id) {
            self.order.push_back(command_id);
        }
        while self.order.len() > RECENT_COMMAND_IDS {
            let oldest = self.order.pop_front().expect("more ids than the limit");
            self.ids.remove(&oldest);
            self.floor = self.floor.max(command_ceiling_of(oldest));
        }
    }

    /// Whether the log surely does not hold `command_id`.
    fn surely_new(&self, command_id: Uuid) -> bool {
        command_ceiling_of(command_id) > self.floor && !self.ids.contains(&command_id)
    }
}

/// What memory alone knows of a command id.
pub(crate) enum InMemory {
    /// Above the command ceiling: not in the log.
    New,
    /// Answered, its command record not yet in sled.
    Answered((Hash, AppendResult)),
    /// Ask sled.
    AskSled,
}

/// What the command ceiling compares: the high 64 bits of the id, in the order of its sled key.
pub(crate) fn command_ceiling_of(command_id: Uuid) -> u64 {
    (command_id.as_u128() >> 64) as u64
}

/// Adds stream versions to the bounded map (cleared when they would not fit).
fn remember_versions(versions: &mut HashMap<String, u64>, new: impl IntoIterator<Item = (String, u64)>) {
    for (stream_id, version) in new {
        if versions.len() >= STREAM_HEAD_CACHE_ENTRIES && !versions.contains_key(&stream_id) {
            versions.clear();
        }
        versions.insert(stream_id, version);
    }
}

/// Counters of the writer's work since open.
#[derive(Default)]
pub(crate) struct WriterStats {
    pub(crate) commits: std::sync::atomic::AtomicU64,
    pub(crate) syncs: std::sync::atomic::AtomicU64,
    pub(crate) events: std::sync::atomic::AtomicU64,
    pub(crate) sync_micros: std::sync::atomic::AtomicU64,
    pub(crate) apply_micros: std::sync::atomic::AtomicU64,
    pub(crate) journal_bytes: std::sync::atomic::AtomicU64,
    pub(crate) checkpoints: std::sync::atomic::AtomicU64,
    pub(crate) checkpoint_micros: std::sync::atomic::AtomicU64,
    pub(crate) checkpoints_deferred: std::sync::atomic::AtomicU64,
    pub(crate) tree_nanos: std::sync::atomic::AtomicU64,
    pub(crate) led_by_appenders: std::sync::atomic::AtomicU64,
    pub(crate) writer_wakeups: std::sync::atomic::AtomicU64,
    pub(crate) sled_command_lookups: std::sync::atomic::AtomicU64,
}

impl Shared {
    /// Waits until every answered commit is whole in sled (command records and head metadata
    /// written), or the writer is poisoned: for what reads sled's own head (`verify`, tests
    /// looking at the raw tree), and for the journal before a checkpoint that must free a
    /// segment. At most LATE_COMMITS_QUEUED + 2 commits' late writes away.
    pub(crate) fn wait_whole(&self) {
        let mut waiters = self.whole_waiters.lock().expect("whole waiters");
        *waiters += 1;
        while self.applied.load(Ordering::SeqCst) < self.visible.load(Ordering::SeqCst)
            && self.poisoned().is_none()
        {
            waiters = self.whole.wait(waiters).expect("whole waiters");
        }
        *waiters -= 1;
    }

    /// Wakes [`Shared::wait_whole`]'s callers, if any (no system call otherwise).
    fn wake_whole(&self) {
        if *self.whole_waiters.lock().expect("whole waiters") > 0 {
            self.whole.notify_all();
        }
    }

    /// What memory knows of command ids, from now on: none above `ceiling` (on open: the
    /// greatest stored; u64::MAX: unknown, every lookup asks sled), and no recent ones yet.
    pub(crate) fn know_commands_up_to(&self, ceiling: u64) {
        *self.recent_commands.lock().expect("recent commands") = RecentCommands::above(ceiling);
        self.command_ceiling.store(ceiling, Ordering::SeqCst);
    }

    /// Records an id the writer is staging, before it can be found anywhere.
    fn staging_command(&self, command_id: Uuid) {
        self.recent_commands
            .lock()
            .expect("recent commands")
            .remember(command_id);
        self.command_ceiling
            .fetch_max(command_ceiling_of(command_id), Ordering::SeqCst);
    }

    /// The command ceiling, then the answered commits not yet in sled: the lookup of a command
    /// id before sled, for the ledger ([`Log::find_command`]) and the writer alike. The ceiling
    /// is raised before an id is staged and the late writer pops a commit only after its
    /// records are in sled, so whatever is not found here is in sled if anywhere.
    pub(crate) fn command_in_memory(&self, command_id: Uuid) -> InMemory {
        if command_ceiling_of(command_id) > self.command_ceiling.load(Ordering::SeqCst) {
            return InMemory::New;
        }
        if self
            .recent_commands
            .lock()
            .expect("recent commands")
            .surely_new(command_id)
        {
            return InMemory::New;
        }
        let answered = self.answered_commands.lock().expect("answered commands");
        match answered
            .iter()
            .find_map(|commit| commit.commands.get(&command_id))
        {
            Some(found) => InMemory::Answered(found.clone()),
            None => {
                self.stats.sled_command_lookups.fetch_add(1, Ordering::Relaxed);
                InMemory::AskSled
            }
        }
    }

    /// Why the writer stopped, in words (for health, metrics and the log's own errors).
    pub(crate) fn poisoned(&self) -> Option<String> {
        match &*self.poison.lock().expect("poison lock") {
            Some(Stop::Failed(cause)) => Some(cause.clone()),
            Some(Stop::Panicked) => Some(PANICKED.to_owned()),
            None => None,
        }
    }

    /// What an append is refused with once the writer stopped: `Poisoned` after a failed write
    /// (UNAVAILABLE), `WriterPanicked` after a bug (INTERNAL).
    pub(crate) fn refusal(&self) -> Option<LogError> {
        match &*self.poison.lock().expect("poison lock") {
            Some(Stop::Failed(cause)) => Some(LogError::Poisoned { cause: cause.clone() }),
            Some(Stop::Panicked) => Some(LogError::WriterPanicked),
            None => None,
        }
    }

    /// Stops the writer after a failed write (the first cause stays).
    pub(crate) fn poison(&self, cause: &str) {
        self.stop(Stop::Failed(cause.to_owned()));
    }

    fn stop(&self, stop: Stop) {
        self.poison.lock().expect("poison lock").get_or_insert(stop);
    }
}

/// Why the writer stopped taking writes.
pub(crate) enum Stop {
    /// A write, fdatasync, apply or checkpoint failed.
    Failed(String),
    /// A round panicked: a bug.
    Panicked,
}

/// A commit with at most this many sled writes is applied as plain inserts; a larger one as one
/// batch (a batch's two IO-buffer writes cost less than per-key inserts past about this size:
/// `dipledger-bench log`, docs/benchmarks.md).
pub(crate) const MAX_INSERTS_UNBATCHED: usize = 32;

pub(crate) struct Writer {
    pub(crate) sled: Arc<SledFiles>,
    pub(crate) tree: sled::Tree,
    pub(crate) sizes: JournalSizes,
    pub(crate) checkpoint_interval: std::time::Duration,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) head: HeadMeta,
    pub(crate) head_sender: watch::Sender<u64>,
    pub(crate) shared: Arc<Shared>,
    /// Checkpoints wait while the disk is (nearly) full.
    pub(crate) disk: Arc<super::disk::DiskGuard>,
}

/// A commit staged by the writer: its journal frame part and its sled writes (none when every op
/// of the group was refused), and the answers to send once it is journaled and applied.
struct StagedCommit {
    part: Option<FramePart>,
    writes: Vec<keys::Write>,
    /// The log's head once this commit is applied.
    head: u64,
    /// The streams the commit wrote, with their versions after it.
    stream_heads: Vec<(String, u64)>,
    /// The commands the commit records, by id.
    commands: HashMap<Uuid, (Hash, AppendResult)>,
    outcomes: Vec<(Reply, LogResult<Vec<AppendResult>>)>,
}

/// What one op (or the whole group) has decided, on top of what is applied.
struct Staged {
    next_position: u64,
    chain_hash: Hash,
    stream_heads: HashMap<String, u64>,
    commands: HashMap<Uuid, (Hash, AppendResult)>,
    /// One entry per request written, for the journal.
    requests: Vec<RequestEntry>,
    /// Encoded records in position order, starting at the group's first position.
    records: Vec<Vec<u8>>,
    /// Stream index and command entries.
    entries: Vec<keys::Write>,
    /// The last stream run this op wrote: its stream, its index in `entries`, the run. A next
    /// request of the op continuing it (same stream, next position and version) extends it
    /// instead of adding a sled key: a batch of commands to one entity is one run.
    last_run: Option<(String, usize, StreamRun)>,
}

impl Staged {
    fn starting_at(next_position: u64, chain_hash: Hash) -> Staged {
        Staged {
            next_position,
            chain_hash,
            stream_heads: HashMap::new(),
            commands: HashMap::new(),
            requests: Vec::new(),
            last_run: None,
            records: Vec::new(),
            entries: Vec::new(),
        }
    }

    fn absorb(&mut self, op: Staged) {
        self.next_position = op.next_position;
        self.chain_hash = op.chain_hash;
        self.stream_heads.extend(op.stream_heads);
        self.commands.extend(op.commands);
        self.requests.extend(op.requests);
        self.records.extend(op.records);
        self.entries.extend(op.entries);
    }
}

/// The commit machinery: the writer's staging state, the syncer, the queue's receiving end and
/// the late writer and checkpointer threads. Whoever holds it (the [`Pipeline`]'s `leading`
/// flag) leads: takes the queued ops as one group and commits them.
pub(crate) struct Committer {
    writer: Writer,
    syncer: Syncer,
    queue: mpsc::Receiver<WriteOp>,
    /// An op taken from the queue that did not fit the last group: the first of the next.
    carried: Option<WriteOp>,
    /// Ops taken from the queue since the pipeline last counted them.
    received: usize,
    /// Whether the last round was a lone appender's (see `round`).
    lone: bool,
    late_writer: std::thread::JoinHandle<()>,
    checkpointer: std::thread::JoinHandle<()>,
}

impl Committer {
    /// The committer over `queue`, with its late writer and checkpointer threads started.
    pub(crate) fn start(writer: Writer, queue: mpsc::Receiver<WriteOp>, journal: JournalWriter) -> Committer {
        let (wake_checkpointer, wakes) = std_mpsc::sync_channel::<()>(1);
        let checkpointer = Checkpointer {
            sled: writer.sled.clone(),
            shared: writer.shared.clone(),
            interval: writer.checkpoint_interval,
            disk: writer.disk.clone(),
        };
        let checkpointer = std::thread::Builder::new()
            .name("dipledger-log-checkpoint".into())
            .spawn(move || checkpointer.run(wakes))
            .expect("spawn the log checkpoint thread");
        let (late_commits, late_queue) = std_mpsc::sync_channel::<LateCommit>(LATE_COMMITS_QUEUED);
        let late_writer = LateWriter {
            tree: writer.tree.clone(),
            shared: writer.shared.clone(),
            failed: false,
        };
        let late_writer = std::thread::Builder::new()
            .name("dipledger-log-late".into())
            .spawn(move || late_writer.run(late_queue))
            .expect("spawn the log's late writer thread");
        let syncer = Syncer {
            late_commits,
            sled: writer.sled.clone(),
            tree: writer.tree.clone(),
            journal,
            sizes: writer.sizes,
            head_sender: writer.head_sender.clone(),
            shared: writer.shared.clone(),
            wake_checkpointer,
            journaled_since_wake: 0,
        };
        Committer {
            writer,
            syncer,
            queue,
            carried: None,
            received: 0,
            lone: false,
            late_writer,
            checkpointer,
        }
    }

    /// Takes the ops queued now (at most MAX_EVENTS_PER_COMMIT events and one journal frame's
    /// bytes; the op that does not fit is carried to the next round) and commits them as one
    /// group: staged, journaled with one fdatasync, applied, answered. False when there was
    /// nothing to commit. Counts the ops it takes from the queue in `received`, and sets `lone`:
    /// whether the group was one op and no other was sent before its answer (`queued` counts
    /// the ops sent and not yet uncounted, this round's included).
    fn round(&mut self, queued: &std::sync::atomic::AtomicI64) -> bool {
        let frame_limit = self.writer.sizes.max_frame_bytes() - super::journal::FRAME_HEADER_BYTES;
        let first = match self.carried.take() {
            Some(op) => op,
            None => match self.queue.try_recv() {
                Ok(op) => {
                    self.received += 1;
                    op
                }
                Err(_) => return false,
            },
        };
        let mut events = first.event_count();
        let mut bytes = first.frame_bytes_bound();
        let mut ops = vec![first];
        while let Ok(op) = self.queue.try_recv() {
            self.received += 1;
            if events + op.event_count() > MAX_EVENTS_PER_COMMIT
                || bytes + op.frame_bytes_bound() > frame_limit
            {
                self.carried = Some(op);
                break;
            }
            events += op.event_count();
            bytes += op.frame_bytes_bound();
            ops.push(op);
        }
        let one_op = ops.len() == 1;
        let commit = self.writer.stage_group(ops);
        let mut lone = false;
        let (carried, received) = (&self.carried, self.received as i64);
        self.syncer.process(commit, || {
            lone = one_op && carried.is_none() && queued.load(Ordering::SeqCst) <= received;
        });
        self.lone = lone;
        true
    }

    /// Ends the late writer (once it has written every answered commit) and the checkpointer,
    /// before the log's last flush.
    fn finish(self) {
        let Committer {
            syncer,
            late_writer,
            checkpointer,
            ..
        } = self;
        // Dropping the syncer disconnects the late writer's queue and the checkpointer's wake
        // channel, which ends both threads.
        drop(syncer);
        let _ = late_writer.join();
        let _ = checkpointer.join();
    }
}

/// Group commit by one leader at a time. An appending caller sends its op to the queue and, when
/// it is alone (the last LONE_ROUNDS_TO_LEAD rounds were one op each) and no commit is in
/// progress, commits the queued ops itself, on its own thread: a lone client's append wakes no
/// other thread (under W1 the two hand-overs to a writer thread and back were most of the time
/// above the RPC and the fdatasync). Otherwise it wakes the writer thread, or, finding a commit
/// in progress, waits for its answer; a leader, once done, hands what queued meanwhile to the
/// writer thread, which leads until the queue is empty. So at most one round runs on a
/// caller's thread, and concurrent appends are committed by the writer thread as before.
pub(crate) struct Pipeline {
    /// Set by the one leader: taken with a swap and released with a store, both SeqCst, as
    /// senders count their ops in `queued`: a sender that finds it set has its op counted
    /// before the leader, once it lets go, looks at `queued`.
    leading: AtomicBool,
    /// The commit machinery, locked only by the holder of `leading` (never contended); None
    /// once the log has closed.
    committer: Mutex<Option<Committer>>,
    /// Ops sent to the queue and not yet taken by a round. A sender counts its op just after
    /// sending it, so this may dip below zero for a moment; positive means someone must lead.
    queued: std::sync::atomic::AtomicI64,
    /// Rounds in a row that committed one op and found nothing queued after it: an appender
    /// leads only after `lone_rounds_to_lead` of them, so concurrent appenders keep being
    /// grouped by the writer thread and never block a caller's thread for a fdatasync.
    lone_rounds: std::sync::atomic::AtomicU32,
    /// LONE_ROUNDS_TO_LEAD (a test hook changes it).
    lone_rounds_to_lead: std::sync::atomic::AtomicU32,
    /// Wakes the writer thread to lead (a full channel means it is already woken).
    kick: std_mpsc::SyncSender<()>,
    /// Set when the last handle closes: the writer thread commits what is queued and ends.
    closing: AtomicBool,
    shared: Arc<Shared>,
}

/// Releases `Pipeline::leading` when dropped, also if the work under it panics.
struct Leading<'a>(&'a AtomicBool);

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl Pipeline {
    /// The pipeline and the receiving end of its writer thread's wake-ups.
    pub(crate) fn new(committer: Committer) -> (Arc<Pipeline>, std_mpsc::Receiver<()>) {
        let (kick, kicks) = std_mpsc::sync_channel(1);
        let shared = committer.writer.shared.clone();
        let pipeline = Pipeline {
            leading: AtomicBool::new(false),
            committer: Mutex::new(Some(committer)),
            queued: std::sync::atomic::AtomicI64::new(0),
            lone_rounds: std::sync::atomic::AtomicU32::new(0),
            lone_rounds_to_lead: std::sync::atomic::AtomicU32::new(LONE_ROUNDS_TO_LEAD),
            kick,
            closing: AtomicBool::new(false),
            shared,
        };
        (Arc::new(pipeline), kicks)
    }

    /// Called by an appender right after it sent its op. A lone appender (the last
    /// LONE_ROUNDS_TO_LEAD rounds each committed one op and found nothing queued after it) leads
    /// a round itself when none is in progress, blocking this thread for the round's fdatasync;
    /// otherwise the writer thread is woken to lead. Never on a current-thread tokio runtime,
    /// whose every task the round would stall. Returns without waiting when a round is in
    /// progress: its leader looks at the queue after it lets go.
    pub(crate) fn sent(&self) {
        self.queued.fetch_add(1, Ordering::SeqCst);
        let lone =
            self.lone_rounds.load(Ordering::Relaxed) >= self.lone_rounds_to_lead.load(Ordering::Relaxed);
        if !lone || !may_block_this_thread() {
            self.wake_writer_thread();
            return;
        }
        let left = self.lead(|committer| {
            if self.guarded_round(committer) {
                self.shared.stats.led_by_appenders.fetch_add(1, Ordering::Relaxed);
            }
        });
        match left {
            None => {}
            Some(true) => {
                self.lone_rounds.store(0, Ordering::Relaxed);
                self.wake_writer_thread();
            }
            Some(false) => super::release_sled_garbage(),
        }
    }

    fn wake_writer_thread(&self) {
        self.shared.stats.writer_wakeups.fetch_add(1, Ordering::Relaxed);
        let _ = self.kick.try_send(());
    }

    /// Runs `work` on the committer unless another leader is at work (None: that one looks at
    /// the queue after it lets go). Then lets go and returns whether ops are left to lead.
    fn lead(&self, work: impl FnOnce(&mut Committer)) -> Option<bool> {
        if self.leading.swap(true, Ordering::SeqCst) {
            return None;
        }
        let leading = Leading(&self.leading);
        let carried = {
            let mut committer = self.committer.lock().unwrap_or_else(|poisoned| {
                // Only a panic outside a round's guard could do this: refuse from here on.
                self.shared.stop(Stop::Panicked);
                poisoned.into_inner()
            });
            match committer.as_mut() {
                Some(committer) => {
                    work(committer);
                    committer.carried.is_some()
                }
                None => false,
            }
        };
        drop(leading);
        Some(carried || self.queued.load(Ordering::SeqCst) > 0)
    }

    /// One round, its ops then uncounted; a panic poisons the log instead of unwinding into the
    /// caller (the panicked round's callers are told so as their replies drop, and later rounds
    /// refuse every op). False when there was nothing to commit.
    fn guarded_round(&self, committer: &mut Committer) -> bool {
        let round = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| committer.round(&self.queued)));
        let worked = round.unwrap_or_else(|_| {
            self.shared.stop(Stop::Panicked);
            committer.lone = false;
            true
        });
        let received = std::mem::take(&mut committer.received);
        self.queued.fetch_sub(received as i64, Ordering::SeqCst);
        if worked {
            let rounds = self.lone_rounds.load(Ordering::Relaxed);
            let rounds = if committer.lone {
                rounds.saturating_add(1)
            } else {
                0
            };
            self.lone_rounds.store(rounds, Ordering::Relaxed);
        }
        worked
    }

    /// The writer thread's work: whenever woken, lead until nothing is queued; once the log
    /// closes, commit what is left and end the late writer and checkpointer.
    pub(crate) fn run(&self, kicks: std_mpsc::Receiver<()>) {
        while kicks.recv().is_ok() {
            let closing = self.closing.load(Ordering::SeqCst);
            self.lead_until_idle();
            if closing {
                break;
            }
        }
        let committer = self
            .committer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(committer) = committer {
            committer.finish();
        }
    }

    /// Leads rounds until the queue is empty and nothing is carried, and again for what was
    /// sent while it led; returns at once while an appender leads (which looks at the queue
    /// after it lets go, and wakes this thread for what is left).
    fn lead_until_idle(&self) {
        loop {
            match self.lead(|committer| while self.guarded_round(committer) {}) {
                None => return,
                Some(false) => {
                    super::release_sled_garbage();
                    return;
                }
                Some(true) => {}
            }
        }
    }

    /// Tells the writer thread the last handle closed: it commits what is queued and ends.
    pub(crate) fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        // A blocking send: the writer thread always comes back for it (or has ended).
        let _ = self.kick.send(());
    }

    /// Test hook: how many lone rounds in a row let an appender lead (0: always).
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn set_lone_rounds_to_lead(&self, rounds: u32) {
        self.lone_rounds_to_lead.store(rounds, Ordering::Relaxed);
    }
}

/// Whether a round may block this thread: not on a current-thread tokio runtime (its one
/// thread runs every task); on a multi-thread runtime's worker or a plain thread it may.
fn may_block_this_thread() -> bool {
    tokio::runtime::Handle::try_current().map_or(true, |runtime| {
        runtime.runtime_flavor() != tokio::runtime::RuntimeFlavor::CurrentThread
    })
}

impl Writer {
    /// Stages one group: its frame part and sled writes, for the syncer. Rejected ops are
    /// answered along with the commit (after its sync), so answers keep the order of the queue.
    fn stage_group(&mut self, ops: Vec<WriteOp>) -> StagedCommit {
        let refused = |outcomes, head| StagedCommit {
            part: None,
            writes: Vec::new(),
            head,
            stream_heads: Vec::new(),
            commands: HashMap::new(),
            outcomes,
        };
        if self.shared.poisoned().is_some() {
            let outcomes = ops
                .into_iter()
                .map(|op| (op.reply, Err(self.shared.refusal().expect("stopped"))))
                .collect();
            return refused(outcomes, self.head.position);
        }
        #[cfg(any(test, feature = "test-hooks"))]
        if self.shared.faults.fail(super::FaultPoint::StagePanic).is_err() {
            panic!("injected panic while staging a group");
        }
        let recorded_at = self.clock.now().max(self.head.recorded_at);
        let mut group = Staged::starting_at(self.head.position + 1, self.head.chain_hash);
        let mut outcomes = Vec::with_capacity(ops.len());
        for op in ops {
            let mut staged_op = Staged::starting_at(group.next_position, group.chain_hash);
            let outcome = self.stage(op.requests, &group, &mut staged_op, recorded_at);
            if outcome.is_ok() {
                group.absorb(staged_op);
            }
            outcomes.push((op.reply, outcome));
        }
        if group.records.is_empty() {
            return refused(outcomes, self.head.position);
        }
        let mut part = FramePart::new(self.head.position + 1, self.head.chain_hash);
        for record in &group.records {
            part.push_record(record);
        }
        part.requests = std::mem::take(&mut group.requests);
        let new_head = HeadMeta {
            format_version: super::codec::FORMAT_VERSION,
            position: group.next_position - 1,
            chain_hash: group.chain_hash,
            recorded_at,
        };
        let writes = self.writes(&mut group, &new_head);
        self.head = new_head;
        let stream_heads = group.stream_heads.into_iter().collect();
        StagedCommit {
            part: Some(part),
            writes,
            head: self.head.position,
            stream_heads,
            commands: group.commands,
            outcomes,
        }
    }

    /// The group's sled writes: its records packed into chunks, its index entries and Merkle
    /// tiles, the new head last.
    fn writes(&mut self, group: &mut Staged, new_head: &HeadMeta) -> Vec<keys::Write> {
        let tiles = self.grow_tree(&group.records);
        group.entries.extend(super::tree::tile_entries(tiles));
        let (writes, next_position) = keys::commit_writes(
            self.head.position + 1,
            group.records.drain(..),
            group.entries.drain(..),
            new_head,
        );
        debug_assert_eq!(next_position, new_head.position + 1);
        writes
    }

    /// Adds the group's leaves to the Merkle tree; returns the full tiles they complete (about
    /// one hash per leaf).
    fn grow_tree(&self, records: &[Vec<u8>]) -> Vec<super::tree::NewTile> {
        let started = Instant::now();
        let mut tiles = Vec::new();
        let mut tree = self.shared.tree.lock().expect("tree lock");
        for record in records {
            tree.push(super::codec::stored_leaf_hash(record), &mut tiles);
        }
        debug_assert_eq!(tree.size(), self.head.position + records.len() as u64);
        self.shared
            .stats
            .tree_nanos
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        tiles
    }

    /// Decides the requests of one op against what is applied plus what this group already
    /// staged. On error nothing of the op is kept.
    fn stage(
        &mut self,
        requests: Vec<AppendRequest>,
        group: &Staged,
        op: &mut Staged,
        recorded_at: Timestamp,
    ) -> LogResult<Vec<AppendResult>> {
        let mut results = Vec::with_capacity(requests.len());
        for request in requests {
            let fingerprint = request.fingerprint();
            let command_id = request.command_id();
            if let Some((stored, result)) = self.find_command(command_id, group, op)? {
                if stored != fingerprint {
                    return Err(LogError::CommandIdReused { command_id });
                }
                results.push(result);
                continue;
            }
            let current = self.stream_version(request.stream_id(), group, op)?;
            if !request.expected().admits(current) {
                return Err(LogError::WrongExpectedVersion {
                    stream_id: request.stream_id().to_owned(),
                    expected: request.expected(),
                    current,
                });
            }
            let first_position = op.next_position;
            let stream_id = request.stream_id().to_owned();
            let recorded_by = request.recorded_by().to_owned();
            let (correlation_id, causation_id) = (request.correlation_id(), request.causation_id());
            let drafts = request.into_events();
            let count = drafts.len() as u64;
            let mut event_ids = Vec::with_capacity(drafts.len());
            for (offset, draft) in drafts.into_iter().enumerate() {
                let event_id = Uuid::now_v7();
                let envelope = Envelope {
                    position: op.next_position,
                    stream_id: stream_id.clone(),
                    stream_version: current + 1 + offset as u64,
                    event_id,
                    event_type: draft.event_type,
                    schema_version: draft.schema_version,
                    command_id,
                    occurred_at: draft.occurred_at,
                    recorded_at,
                    recorded_by: recorded_by.clone(),
                    correlation_id,
                    causation_id,
                    tags: draft.tags,
                    payload: draft.payload,
                };
                let (record, chain_hash) = encode_record(&envelope, &op.chain_hash)?;
                op.records.push(record);
                op.chain_hash = chain_hash;
                op.next_position += 1;
                event_ids.push(event_id);
            }
            match &mut op.last_run {
                Some((stream, index, run))
                    if *stream == stream_id
                        && run.first_position + u64::from(run.count) == first_position
                        && run.last_version() + 1 == current + 1 =>
                {
                    run.count += count as u32;
                    op.entries[*index].1 = run.encode_value().to_vec();
                }
                _ => {
                    let run = StreamRun {
                        first_version: current + 1,
                        first_position,
                        count: count as u32,
                    };
                    op.entries.push((
                        keys::stream_index_key(&stream_id, current + 1),
                        run.encode_value().to_vec(),
                    ));
                    op.last_run = Some((stream_id.clone(), op.entries.len() - 1, run));
                }
            }
            // Before the id can be found anywhere: lookups trust the recent ids and the ceiling.
            self.shared.staging_command(command_id);
            let command_record = CommandRecord {
                first_position,
                count: count as u32,
                fingerprint,
            };
            op.entries.push((
                keys::command_key(command_id).to_vec(),
                keys::encode_checked(&command_record),
            ));
            let result = AppendResult::new(
                stream_id.clone(),
                first_position,
                current + 1,
                event_ids,
                recorded_at,
            );
            op.stream_heads.insert(stream_id, current + count);
            op.commands.insert(command_id, (fingerprint, result.clone()));
            op.requests.push(RequestEntry {
                command_id,
                fingerprint,
                first_position,
                count: count as u32,
            });
            results.push(result);
        }
        Ok(results)
    }

    fn find_command(
        &self,
        command_id: Uuid,
        group: &Staged,
        op: &Staged,
    ) -> LogResult<Option<(Hash, AppendResult)>> {
        if let Some(found) = op
            .commands
            .get(&command_id)
            .or_else(|| group.commands.get(&command_id))
        {
            return Ok(Some(found.clone()));
        }
        match self.shared.command_in_memory(command_id) {
            InMemory::New => Ok(None),
            InMemory::Answered(found) => Ok(Some(found)),
            InMemory::AskSled => reader::stored_command(&self.tree, command_id),
        }
    }

    fn stream_version(&mut self, stream_id: &str, group: &Staged, op: &Staged) -> LogResult<u64> {
        if let Some(version) = op
            .stream_heads
            .get(stream_id)
            .or_else(|| group.stream_heads.get(stream_id))
        {
            return Ok(*version);
        }
        let remembered = self
            .shared
            .stream_versions
            .lock()
            .expect("stream versions")
            .get(stream_id)
            .copied();
        if let Some(version) = remembered {
            return Ok(version);
        }
        // Not remembered: every earlier group is applied, so sled holds its current version.
        let version = reader::stored_stream_version(&self.tree, stream_id)?;
        remember_versions(
            &mut self.shared.stream_versions.lock().expect("stream versions"),
            [(stream_id.to_owned(), version)],
        );
        Ok(version)
    }
}

/// The writer's second half: makes a staged commit durable in the journal, applies it to sled
/// and answers its callers.
struct Syncer {
    /// Answered commits' command records and head metadata, for the late writer.
    late_commits: std_mpsc::SyncSender<LateCommit>,
    sled: Arc<SledFiles>,
    tree: sled::Tree,
    journal: JournalWriter,
    sizes: JournalSizes,
    head_sender: watch::Sender<u64>,
    shared: Arc<Shared>,
    wake_checkpointer: std_mpsc::SyncSender<()>,
    journaled_since_wake: u64,
}

impl Syncer {
    /// Journals the commit's frame part (one write, one fdatasync), applies its records and
    /// stream runs to sled, answers its callers, and only then hands its command records and
    /// head metadata (half of a commit's sled keys, which no reader needs) to the late writer,
    /// off the callers' wait and off this thread; once poisoned, answers them with the poison.
    /// `before_answers` runs once the commit is applied, just before its callers are answered.
    fn process(&mut self, mut commit: StagedCommit, before_answers: impl FnOnce()) {
        // This commit's own fate: refused if the writer was poisoned before its write, failed if
        // its write, fdatasync or apply fails. A poison that arrives once it is applied (a
        // failed checkpoint, on its own thread) refuses later commits, not this durable one.
        let mut failure = self.shared.poisoned();
        if let (Some(part), None) = (commit.part.take(), &failure) {
            if let Err(error) = self.write(&[part]) {
                failure = Some(self.fail(&error));
            }
        }
        let (visible, late) = keys::split_late_writes(commit.writes);
        if failure.is_none() {
            if let Err(error) = self.apply_visible(visible, commit.head, commit.stream_heads) {
                failure = Some(self.fail(&error));
            }
        }
        let answered = failure.is_none() && !late.is_empty();
        if answered {
            // Findable from here until the late writer has put them in sled.
            self.shared
                .answered_commands
                .lock()
                .expect("answered commands")
                .push_back(AnsweredCommit {
                    head: commit.head,
                    commands: commit.commands,
                });
        }
        before_answers();
        self.answer(commit.outcomes, failure);
        self.publish_head();
        if answered {
            let late = LateCommit {
                writes: late,
                head: commit.head,
            };
            // Waits while LATE_COMMITS_QUEUED commits are queued (back-pressure). The late
            // writer only stops at shutdown, after this thread.
            self.late_commits
                .send(late)
                .expect("the late writer outlives the syncer");
        }
    }

    /// Poisons the writer with `error`; returns the cause it now reports.
    fn fail(&self, error: &LogError) -> String {
        self.shared.poison(&error.to_string());
        self.shared.poisoned().unwrap_or_else(|| error.to_string())
    }

    /// Applies one journaled commit's records, stream runs and tiles to sled, then moves the
    /// head readers see to it.
    fn apply_visible(
        &self,
        writes: Vec<keys::Write>,
        head: u64,
        stream_heads: Vec<(String, u64)>,
    ) -> LogResult<()> {
        if writes.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        #[cfg(any(test, feature = "test-hooks"))]
        self.shared.faults.fail(super::FaultPoint::SledApply)?;
        #[cfg(any(test, feature = "test-hooks"))]
        let halfway = self.shared.faults.fail(super::FaultPoint::SledApplyHalfway).err();
        #[cfg(not(any(test, feature = "test-hooks")))]
        let halfway = None;
        self.insert_all(writes, halfway)?;
        self.shared.tree.lock().expect("tree lock").trim(head);
        remember_versions(
            &mut self.shared.stream_versions.lock().expect("stream versions"),
            stream_heads,
        );
        self.shared
            .stats
            .apply_micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        self.shared.visible.store(head, Ordering::SeqCst);
        Ok(())
    }

    /// Writes `writes` in order: as plain inserts when few (failing with `halfway` after half of
    /// them, a test hook), else as one batch. Neither needs to be atomic: the journal holds the
    /// commit, and a commit sled holds without its head is replayed whole on open.
    fn insert_all(&self, writes: Vec<keys::Write>, halfway: Option<std::io::Error>) -> LogResult<()> {
        if writes.len() > MAX_INSERTS_UNBATCHED {
            self.tree.apply_batch(keys::batch_of(writes))?;
            return Ok(());
        }
        let stop_at = writes.len() / 2;
        let mut halfway = halfway;
        for (index, (key, value)) in writes.into_iter().enumerate() {
            if index == stop_at {
                if let Some(error) = halfway.take() {
                    return Err(error.into());
                }
            }
            self.tree.insert(key, value)?;
        }
        Ok(())
    }

    /// Tells the head's watchers (read-model runner, live feed) that it moved. After the
    /// callers are answered: waking a watcher is a system call that would otherwise delay every
    /// answer, and nothing a caller does next waits for it (reads take the head from `visible`,
    /// set before the answers).
    fn publish_head(&self) {
        let head = self.shared.visible.load(Ordering::SeqCst);
        self.head_sender.send_if_modified(|current| {
            let moved = *current < head;
            *current = (*current).max(head);
            moved
        });
    }

    /// Answers one commit's callers: with `failure` (the poison that refused or failed it) instead of success when it has one.
    fn answer(&self, outcomes: Vec<(Reply, LogResult<Vec<AppendResult>>)>, failure: Option<String>) {
        for (reply, outcome) in outcomes {
            let outcome = match (&failure, outcome) {
                (Some(cause), Ok(_)) => Err(LogError::Poisoned { cause: cause.clone() }),
                (_, outcome) => outcome,
            };
            reply.send(outcome);
        }
    }

    /// Writes the parts as few frames as the frame limit allows (one, unless several large
    /// commits queued up), each with one write and one fdatasync.
    fn write(&mut self, parts: &[FramePart]) -> LogResult<()> {
        let started = Instant::now();
        #[cfg(any(test, feature = "test-hooks"))]
        if self.shared.fail_next_sync.swap(false, Ordering::SeqCst) {
            return Err(LogError::Io(std::io::Error::other("injected fsync failure")));
        }
        let limit = self.sizes.max_frame_bytes() - super::journal::FRAME_HEADER_BYTES;
        let mut from = 0;
        while from < parts.len() {
            let mut to = from + 1;
            let mut bytes = parts[from].encoded_bytes();
            while to < parts.len() && bytes + parts[to].encoded_bytes() <= limit {
                bytes += parts[to].encoded_bytes();
                to += 1;
            }
            let (sled, shared) = (&self.sled, &self.shared);
            let checkpointed = shared.checkpointed.load(Ordering::SeqCst);
            let written = self.journal.write(&parts[from..to], checkpointed, &mut || {
                // The segment to free holds answered commits whose command records the
                // late writer may still be writing: a checkpoint declares only what it
                // wrote durable, so wait for it first (rare: the journal is full).
                shared.wait_whole();
                checkpoint(sled, shared)
            })?;
            self.shared
                .stats
                .journal_bytes
                .fetch_add(written as u64, Ordering::Relaxed);
            self.journaled_since_wake += written as u64;
            from = to;
        }
        if self.journaled_since_wake >= CHECKPOINT_JOURNAL_BYTES {
            self.journaled_since_wake = 0;
            let _ = self.wake_checkpointer.try_send(());
        }
        let stats = &self.shared.stats;
        stats
            .sync_micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        stats.syncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// An answered commit's writes that no reader needs: its command records and, last, its head
/// metadata.
struct LateCommit {
    writes: Vec<keys::Write>,
    head: u64,
}

/// Writes answered commits' command records and head metadata to sled, in commit order, on a
/// thread of its own: the writer stages, journals and applies the next commit meanwhile (under
/// W3 these writes were ~27% of the writer thread's time). Until a commit's records are in
/// sled its command ids are found in `Shared::answered_commands`; only then does `applied`
/// (what a checkpoint may declare durable) move to it.
struct LateWriter {
    tree: sled::Tree,
    shared: Arc<Shared>,
    /// Set by a failed write: nothing later is written, so `applied` never passes a commit
    /// whose command records are missing (the reopen's journal replay writes them all).
    failed: bool,
}

impl LateWriter {
    /// Writes every commit queued, in order, until the syncer drops the queue.
    fn run(mut self, commits: std_mpsc::Receiver<LateCommit>) {
        crate::priority::lower_this_thread(LATE_WRITER_NICE);
        loop {
            let commit = match commits.try_recv() {
                Ok(commit) => commit,
                Err(std_mpsc::TryRecvError::Empty) => {
                    // About to wait: free what the inserts so far replaced.
                    super::release_sled_garbage();
                    match commits.recv() {
                        Ok(commit) => commit,
                        Err(_) => return,
                    }
                }
                Err(std_mpsc::TryRecvError::Disconnected) => return,
            };
            self.write(commit);
            self.shared.wake_whole();
        }
    }

    /// Writes one commit's late writes as plain inserts (a batch would take sled's exclusive
    /// lock, stalling the writer's own inserts and every reader), then forgets its command ids
    /// and moves `applied` to it. On failure poisons the writer and keeps the ids findable.
    fn write(&mut self, commit: LateCommit) {
        if self.failed {
            return;
        }
        let started = Instant::now();
        if let Err(error) = self.insert_each(commit.writes) {
            self.failed = true;
            // The callers have their answers and the journal holds the commit, which the
            // reopen's replay writes whole. Until then its command ids stay findable; later
            // commits are refused.
            self.shared.poison(&error.to_string());
            return;
        }
        let written = self
            .shared
            .answered_commands
            .lock()
            .expect("answered commands")
            .pop_front();
        assert_eq!(
            written.map(|answered| answered.head),
            Some(commit.head),
            "the late writer forgets the commit it wrote"
        );
        let stats = &self.shared.stats;
        stats
            .apply_micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        stats.commits.fetch_add(1, Ordering::Relaxed);
        let before = self.shared.applied.swap(commit.head, Ordering::SeqCst);
        stats.events.fetch_add(commit.head - before, Ordering::Relaxed);
    }

    fn insert_each(&self, writes: Vec<keys::Write>) -> LogResult<()> {
        #[cfg(any(test, feature = "test-hooks"))]
        self.shared.faults.fail(super::FaultPoint::SledCommandRecords)?;
        for (key, value) in writes {
            self.tree.insert(key, value)?;
        }
        Ok(())
    }
}

/// What a checkpoint makes durable: sled, and its data file.
pub(crate) struct SledFiles {
    pub(crate) db: sled::Db,
    /// `<data dir>/db`: sled's `flush` ends in `sync_file_range`, which flushes neither the disk's
    /// cache nor the file's metadata, so the checkpoint also fsyncs it.
    pub(crate) data_file: std::fs::File,
}

/// Flushes sled and fsyncs its data file (making durable every batch applied before the call)
/// and records the position sled now holds durably. Returns that position.
fn checkpoint(sled: &SledFiles, shared: &Shared) -> std::io::Result<u64> {
    let started = Instant::now();
    let applied = shared.applied.load(Ordering::SeqCst);
    #[cfg(any(test, feature = "test-hooks"))]
    shared.faults.fail(super::FaultPoint::Checkpoint)?;
    sled.db.flush().map_err(std::io::Error::other)?;
    sled.data_file.sync_all()?;
    shared.checkpointed.fetch_max(applied, Ordering::SeqCst);
    let stats = &shared.stats;
    stats.checkpoints.fetch_add(1, Ordering::Relaxed);
    stats
        .checkpoint_micros
        .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    Ok(applied)
}

/// Flushes sled off the acknowledgement path, every CHECKPOINT_INTERVAL or when woken.
struct Checkpointer {
    sled: Arc<SledFiles>,
    shared: Arc<Shared>,
    interval: std::time::Duration,
    disk: Arc<super::disk::DiskGuard>,
}

impl Checkpointer {
    fn run(self, wakes: std_mpsc::Receiver<()>) {
        let mut deferred = false;
        loop {
            match wakes.recv_timeout(self.interval) {
                Ok(()) | Err(std_mpsc::RecvTimeoutError::Timeout) => {}
                Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
            }
            if self.shared.poisoned().is_some() {
                continue;
            }
            // A flush on a full disk would fail and poison the writer (and may leave sled
            // debris); writes are refused meanwhile, and the journal keeps what is not
            // checkpointed, so the checkpoint waits for space instead. Measured every round,
            // which also keeps the writers' cached reading fresh while the log is idle.
            if let Err(error) = self.disk.check_now() {
                if !deferred {
                    eprintln!("dipledger: checkpoint deferred: {error}");
                    deferred = true;
                }
                self.shared
                    .stats
                    .checkpoints_deferred
                    .fetch_add(1, Ordering::Relaxed);
                continue;
            }
            deferred = false;
            let applied = self.shared.applied.load(Ordering::SeqCst);
            if applied <= self.shared.checkpointed.load(Ordering::SeqCst) {
                continue;
            }
            if let Err(error) = checkpoint(&self.sled, &self.shared) {
                self.shared
                    .poison(&format!("checkpoint (sled flush) failed: {error}"));
            }
            // The flush sealed IO buffers; this thread now waits a whole interval.
            super::release_sled_garbage();
        }
    }
}
