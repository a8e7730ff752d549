//! The projection runner: reads the log from each read model's position, folds every event
//! into the state of its entity, and lets each read model apply (state before, state after) to
//! its in-memory structures.
//!
//! One engine drives every read model from one read of the log (events are read and decoded
//! once, not once per read model). Each read model still has its own position, so one can be
//! dropped and rebuilt alone while the others stay where they are; the engine reads from the
//! lowest position and skips, per read model, events it already applied. Events are applied in
//! chunks of [`APPLY_CHUNK`] under the model's write lock, so a query waits at most one chunk.
//! A large step (a rebuild, a catch-up) reads, decodes and folds its chunks on a second thread
//! while the runner applies the one before ([`PIPELINE_MIN_EVENTS`]); only the runner changes
//! the read models.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::commitments::CommitmentsModel;
use super::directory::DirectoryModel;
use super::error::{ProjectionError, ProjectionResult};
use super::index::Index;
use super::kept::{Kept, HOT_STATES};
use super::meetings::MeetingsModel;
use super::officials::OfficialsModel;
use super::relations::{relation_delta, LastContribution, RelationDelta, RelationsModel};
use super::snapshot::{SnapshotLoad, SnapshotStats, Snapshots};
use super::store::Map;
use super::store::{fold_stream, Snapshot};
use crate::domain::common::{CommitmentId, EntityId, MeetingId, OfficialId, SourceId};
use crate::domain::{decode_event, evolve_state, AggregateState, DomainEvent};
use crate::log::limits::MAX_READ_PAGE_EVENTS;
use crate::log::{Direction, Envelope, EnvelopeRef, EventFilter, Log, RecordLocation};
use std::ops::ControlFlow;

/// Events read by one runner step at most (but aside: [`ASIDE_STEP_EVENTS`]).
pub const EVENTS_PER_BATCH: usize = MAX_READ_PAGE_EVENTS;
/// The batch that asks a step for as many events as it may read.
pub const WHOLE_STEP: usize = usize::MAX;
/// Events applied under one hold of the model's write lock: bounds how long a query waits for
/// the runner.
pub const APPLY_CHUNK: usize = 256;
const _: () = assert!(APPLY_CHUNK <= EVENTS_PER_BATCH);

/// The read models, each with its own position in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProjectionName {
    /// Meetings by id and by party, official, topic, place, country, status, date.
    Meetings,
    /// Commitments by id and by party, status, topic, due date; per-party compliance.
    Commitments,
    /// Per-pair bilateral summaries and timelines.
    Relations,
    /// Officials, their offices, post holders, who met whom.
    Officials,
    /// Parties and sources.
    Directory,
}

impl ProjectionName {
    /// Every projection.
    pub const ALL: [ProjectionName; 5] = [
        ProjectionName::Meetings,
        ProjectionName::Commitments,
        ProjectionName::Relations,
        ProjectionName::Officials,
        ProjectionName::Directory,
    ];

    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            ProjectionName::Meetings => "meetings",
            ProjectionName::Commitments => "commitments",
            ProjectionName::Relations => "relations",
            ProjectionName::Officials => "officials",
            ProjectionName::Directory => "directory",
        }
    }

    /// Parses a stable name.
    pub fn parse(name: &str) -> Option<ProjectionName> {
        ProjectionName::ALL
            .into_iter()
            .find(|candidate| candidate.as_str() == name)
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// One event with the state of its entity before and after it.
pub(crate) struct Change<'a> {
    pub envelope: &'a Header,
    /// Where the event is stored in the log (for a read model that reads it back later).
    pub location: RecordLocation,
    pub before: &'a AggregateState,
    pub after: &'a AggregateState,
    /// The state after the event as the read models keep it (shared with the runner's map).
    pub kept: &'a Arc<Kept>,
    /// The event, decoded.
    pub event: &'a DomainEvent,
    /// What the change does to the relations, when the relations read model is being stepped
    /// (computed while the event was read: see [`RelationDelta`]).
    pub relations: Option<&'a RelationDelta>,
}

/// A read model: applies changes to its in-memory structures.
pub(crate) trait Projection: Send + Sync {
    /// Applies one change (an event of any entity; read models ignore the ones they do not
    /// keep).
    fn apply(&mut self, change: &Change<'_>);
    /// Everything the read model holds, as canonical (key, value) bytes in key order: equal
    /// dumps mean equal read models (tests compare a rebuild with incremental application).
    fn dump(&self) -> Vec<(Vec<u8>, Vec<u8>)>;
    /// Writes what changed since the last snapshot.
    fn save(&mut self, out: &mut Snapshot<'_>);
    /// Restores one key written by `save` (without the read model's letter).
    fn restore(&mut self, key: &[u8], value: &[u8]) -> ProjectionResult<()>;
    /// Forgets one key written by `save` and later removed (without the letter); a key it does
    /// not hold is ignored.
    fn forget(&mut self, _key: &[u8]) -> ProjectionResult<()> {
        Err(ProjectionError::DataLoss(
            "read-model snapshot: unexpected remove".into(),
        ))
    }
    /// Marks everything unsaved, so the next `save` writes all of it (a new base).
    fn unsave(&mut self);
    /// Completes a restore once every key was read.
    fn finish_restore(&mut self) -> ProjectionResult<()> {
        Ok(())
    }
    /// The entity states the read model holds, by stream (to seed the runner's state map).
    fn states(&self, _out: &mut Vec<(String, Arc<Kept>)>) {}
    /// The read model's indexes (to defer and settle their updates: see [`Model::aside`]).
    fn indexes(&mut self) -> Vec<&mut Index> {
        Vec::new()
    }
}

/// Every read model and how far each has got.
#[derive(Default)]
pub(crate) struct Model {
    pub meetings: MeetingsModel,
    pub commitments: CommitmentsModel,
    pub relations: RelationsModel,
    pub officials: OfficialsModel,
    pub directory: DirectoryModel,
    positions: [u64; 5],
}

impl Model {
    /// The last log position a read model has applied.
    pub(crate) fn position(&self, name: ProjectionName) -> u64 {
        self.positions[name.index()]
    }

    /// The lowest position of several read models.
    pub(crate) fn lowest(&self, names: &[ProjectionName]) -> u64 {
        names.iter().map(|name| self.position(*name)).min().unwrap_or(0)
    }

    pub(crate) fn set_position(&mut self, name: ProjectionName, position: u64) {
        self.positions[name.index()] = position;
    }

    pub(crate) fn part(&self, name: ProjectionName) -> &dyn Projection {
        match name {
            ProjectionName::Meetings => &self.meetings,
            ProjectionName::Commitments => &self.commitments,
            ProjectionName::Relations => &self.relations,
            ProjectionName::Officials => &self.officials,
            ProjectionName::Directory => &self.directory,
        }
    }

    pub(crate) fn part_mut(&mut self, name: ProjectionName) -> &mut dyn Projection {
        match name {
            ProjectionName::Meetings => &mut self.meetings,
            ProjectionName::Commitments => &mut self.commitments,
            ProjectionName::Relations => &mut self.relations,
            ProjectionName::Officials => &mut self.officials,
            ProjectionName::Directory => &mut self.directory,
        }
    }

    /// Every read model, in [`ProjectionName::ALL`] order.
    fn parts_mut(&mut self) -> [(ProjectionName, &mut dyn Projection); 5] {
        [
            (ProjectionName::Meetings, &mut self.meetings),
            (ProjectionName::Commitments, &mut self.commitments),
            (ProjectionName::Relations, &mut self.relations),
            (ProjectionName::Officials, &mut self.officials),
            (ProjectionName::Directory, &mut self.directory),
        ]
    }

    /// Read models no query sees until they are done (built aside): everything unsaved (their
    /// first snapshot is a base) and their index updates deferred.
    fn aside() -> Model {
        let mut model = Model::default();
        for (_, part) in model.parts_mut() {
            part.unsave();
            part.indexes().into_iter().for_each(Index::defer);
        }
        model
    }

    /// Merges every index's deferred updates (the read models can be read again), on two
    /// threads: the indexes are independent, and this runs once at the end of a build aside
    /// with nothing else to do (a sixth of a rebuild's time on one thread, docs/benchmarks.md
    /// 000x).
    fn settle_indexes(&mut self) {
        let mut indexes: Vec<&mut Index> = Vec::new();
        for (_, part) in self.parts_mut() {
            indexes.extend(part.indexes());
        }
        // The larger ones first, each to the thread with fewer updates so far.
        indexes.sort_by_key(|index| std::cmp::Reverse(index.deferred_updates()));
        let (mut mine, mut theirs): (Vec<&mut Index>, Vec<&mut Index>) = (Vec::new(), Vec::new());
        let (mut my_updates, mut their_updates) = (0, 0);
        for index in indexes {
            let updates = index.deferred_updates();
            if my_updates <= their_updates {
                my_updates += updates;
                mine.push(index);
            } else {
                their_updates += updates;
                theirs.push(index);
            }
        }
        let theirs = std::sync::Mutex::new(theirs);
        let settle = |indexes: &std::sync::Mutex<Vec<&mut Index>>| {
            let mut indexes = indexes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            indexes.drain(..).for_each(Index::settle);
        };
        std::thread::scope(|scope| {
            let other = std::thread::Builder::new()
                .name("dipledger-settle".into())
                .spawn_scoped(scope, || settle(&theirs));
            mine.into_iter().for_each(Index::settle);
            if let Ok(other) = other {
                other
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            }
        });
        // Without a second thread (it could not start), this one settles them all.
        settle(&theirs);
    }

    pub(crate) fn reset(&mut self, name: ProjectionName) {
        match name {
            ProjectionName::Meetings => self.meetings = MeetingsModel::default(),
            ProjectionName::Commitments => self.commitments = CommitmentsModel::default(),
            ProjectionName::Relations => self.relations = RelationsModel::default(),
            ProjectionName::Officials => self.officials = OfficialsModel::default(),
            ProjectionName::Directory => self.directory = DirectoryModel::default(),
        }
        self.positions[name.index()] = 0;
    }
}

/// Why the runner stopped: its message, and whether stored data failed its checks (then every
/// query answers DATA_LOSS, naming the log position when the log's own checks failed, rather than
/// UNAVAILABLE: waiting will not help).
#[derive(Debug, Clone)]
pub(crate) struct RunnerFailure {
    message: String,
    /// None: not damage. Some(None): damage without a position (a payload that does not
    /// decode). Some(Some(p)): a log record at position p failed its checks.
    damage: Option<Option<u64>>,
}

impl RunnerFailure {
    /// A failure that is not damage (UNAVAILABLE).
    pub(crate) fn stopped(message: String) -> RunnerFailure {
        RunnerFailure {
            message,
            damage: None,
        }
    }

    /// The failure `error` stopped the runner with.
    pub(crate) fn of(error: &ProjectionError) -> RunnerFailure {
        let damage = match error {
            ProjectionError::DataLoss(_) => Some(None),
            ProjectionError::Log(crate::log::LogError::DataLoss { position, .. }) => Some(Some(*position)),
            _ => None,
        };
        RunnerFailure {
            message: error.to_string(),
            damage,
        }
    }

    /// What every later query answers.
    pub(crate) fn error(&self) -> ProjectionError {
        match self.damage {
            None => ProjectionError::Stopped(self.message.clone()),
            Some(None) => ProjectionError::DataLoss(self.message.clone()),
            Some(Some(position)) => ProjectionError::Log(crate::log::LogError::DataLoss {
                position,
                reason: self.message.clone(),
            }),
        }
    }

    /// The message.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }
}

/// How far one projection has got, observable by blocking and async waiters.
pub(crate) struct Progress {
    name: ProjectionName,
    position: Mutex<u64>,
    changed: Condvar,
    watch: watch::Sender<u64>,
    failure: Arc<Mutex<Option<RunnerFailure>>>,
    /// Told when a query starts waiting for a position not reached yet, so the runner skips its
    /// coalescing pause (shared by every read model's progress).
    hurry: Arc<tokio::sync::Notify>,
}

impl Progress {
    fn new(
        name: ProjectionName,
        position: u64,
        failure: Arc<Mutex<Option<RunnerFailure>>>,
        hurry: Arc<tokio::sync::Notify>,
    ) -> Progress {
        Progress {
            name,
            position: Mutex::new(position),
            changed: Condvar::new(),
            watch: watch::channel(position).0,
            failure,
            hurry,
        }
    }

    /// What a waiting query tells the runner (see [`Progress::hurry`]'s field).
    pub(crate) fn hurry(&self) -> Arc<tokio::sync::Notify> {
        self.hurry.clone()
    }

    fn set(&self, position: u64) {
        *self.position.lock().expect("progress lock") = position;
        self.watch.send_replace(position);
        self.changed.notify_all();
    }

    pub(crate) fn notify_failure(&self) {
        let _guard = self.position.lock().expect("progress lock");
        self.changed.notify_all();
        self.watch.send_modify(|_| {});
    }

    /// The checkpoint reached.
    pub(crate) fn get(&self) -> u64 {
        *self.position.lock().expect("progress lock")
    }

    fn failure(&self) -> Option<RunnerFailure> {
        self.failure.lock().expect("failure lock").clone()
    }

    /// Blocks until the checkpoint is at least `wanted` or `deadline` passes.
    pub(crate) fn wait_blocking(&self, wanted: u64, deadline: Instant) -> ProjectionResult<u64> {
        let mut position = self.position.lock().expect("progress lock");
        loop {
            if *position >= wanted {
                return Ok(*position);
            }
            if let Some(failure) = self.failure() {
                return Err(failure.error());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(ProjectionError::Unavailable {
                    projection: self.name.as_str(),
                    wanted,
                    reached: *position,
                });
            }
            self.hurry.notify_one();
            position = self
                .changed
                .wait_timeout(position, deadline - now)
                .expect("progress lock")
                .0;
        }
    }

    /// Waits (async) until the checkpoint is at least `wanted`, for at most `timeout`.
    pub(crate) async fn wait(&self, wanted: u64, timeout: Duration) -> ProjectionResult<u64> {
        let mut receiver = self.watch.subscribe();
        let waited = tokio::time::timeout(timeout, async {
            loop {
                let reached = *receiver.borrow_and_update();
                if reached >= wanted {
                    return Ok(reached);
                }
                if let Some(failure) = self.failure() {
                    return Err(failure.error());
                }
                self.hurry.notify_one();
                if receiver.changed().await.is_err() {
                    return Err(ProjectionError::Stopped("runner closed".into()));
                }
            }
        })
        .await;
        match waited {
            Ok(result) => result,
            Err(_) => Err(ProjectionError::Unavailable {
                projection: self.name.as_str(),
                wanted,
                reached: self.get(),
            }),
        }
    }
}

/// The latest state of every entity the runner has folded, by stream. The last [`HOT_STATES`]
/// states it folded are kept decoded; an older one still current is packed (see
/// [`super::kept`]).
struct StateMap {
    states: Map<StreamKey, Arc<Kept>>,
    /// The states folded last, oldest first.
    hot: VecDeque<Arc<Kept>>,
    /// How many `hot` holds at most: [`HOT_STATES`] (tests set fewer).
    capacity: usize,
}

impl Default for StateMap {
    fn default() -> Self {
        StateMap::seeded(Vec::new(), HOT_STATES)
    }
}

impl Drop for StateMap {
    /// Packs the states it kept decoded (the read models hold them on).
    fn drop(&mut self) {
        while self.cool_oldest() {}
    }
}

/// A stream id as the state map keys it. The stream ids of meetings, commitments, officials
/// and sources are `<kind>-<uuid>`: their 16 bytes and the kind inline instead of a heap copy of
/// the 40-47-byte string in every entry (~180,000 entries at 1,000,000 events). Any other
/// stream id (a party's, one not in that exact canonical form) is kept as itself, so two
/// different stream ids never share a key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum StreamKey {
    Id(u8, uuid::Uuid),
    Other(Box<str>),
}

/// The prefixes of the stream ids that end in a UUID, by the index [`StreamKey::Id`] keeps.
const UUID_STREAM_KINDS: [&str; 4] = [
    <MeetingId as EntityId>::STREAM_PREFIX,
    <CommitmentId as EntityId>::STREAM_PREFIX,
    <OfficialId as EntityId>::STREAM_PREFIX,
    <SourceId as EntityId>::STREAM_PREFIX,
];

impl StreamKey {
    fn of(stream_id: &str) -> StreamKey {
        for (kind, prefix) in UUID_STREAM_KINDS.iter().enumerate() {
            let Some(rest) = stream_id
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_prefix('-'))
            else {
                continue;
            };
            let mut canonical = [0u8; uuid::fmt::Hyphenated::LENGTH];
            match uuid::Uuid::try_parse(rest) {
                // Only the exact lowercase hyphenated form: "MEETING-..." or braces stay apart.
                Ok(id) if id.hyphenated().encode_lower(&mut canonical) == rest => {
                    return StreamKey::Id(kind as u8, id)
                }
                _ => break,
            }
        }
        StreamKey::Other(stream_id.into())
    }
}

impl StateMap {
    /// The states before and after the event in `envelope`.
    fn advance(
        &mut self,
        log: &Log,
        envelope: &Header,
        event: &DomainEvent,
    ) -> ProjectionResult<(Arc<AggregateState>, Arc<AggregateState>, Arc<Kept>)> {
        let wanted = envelope.stream_version - 1;
        let key = StreamKey::of(&envelope.stream_id);
        let before = match self.states.get(&key) {
            Some(kept) if kept.version() == wanted => kept.state(),
            _ if wanted == 0 => Arc::new(AggregateState::empty_for_event(event)),
            _ => match fold_stream(log, &envelope.stream_id, wanted, u64::MAX)? {
                Some((state, _)) if state.version() == wanted => Arc::new(state),
                _ => {
                    return Err(ProjectionError::DataLoss(format!(
                        "stream {} ends before version {wanted}",
                        envelope.stream_id
                    )))
                }
            },
        };
        let after = Arc::new(evolve_state((*before).clone(), event));
        let kept = Kept::hot(after.clone());
        if let Some(replaced) = self.states.insert(key, kept.clone()) {
            replaced.supersede();
        }
        self.hot.push_back(kept.clone());
        while self.hot.len() > self.capacity {
            self.cool_oldest();
        }
        Ok((before, after, kept))
    }

    /// Takes the oldest state off the hot list and packs it if it is still its stream's
    /// (a later one replaced it otherwise, and it is dropped once the read models let go of it).
    /// False when the list is empty.
    fn cool_oldest(&mut self) -> bool {
        let Some(kept) = self.hot.pop_front() else {
            return false;
        };
        if !kept.superseded() {
            kept.cool();
        }
        true
    }

    /// The states seeded from a snapshot's (packed: nothing is hot after a restore).
    fn seeded(seeds: Vec<(String, Arc<Kept>)>, capacity: usize) -> StateMap {
        StateMap {
            states: seeds
                .into_iter()
                .map(|(stream_id, kept)| (StreamKey::of(&stream_id), kept))
                .collect(),
            hot: VecDeque::new(),
            capacity,
        }
    }

    /// Keeps at most `capacity` states decoded from now on (a test hook's).
    #[cfg(any(test, feature = "test-hooks"))]
    fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
        while self.hot.len() > capacity {
            self.cool_oldest();
        }
    }
}

/// Decodes the domain event of an envelope.
pub(crate) fn decode(envelope: &Envelope) -> ProjectionResult<DomainEvent> {
    decode_at(
        envelope.position,
        &envelope.event_type,
        envelope.schema_version,
        &envelope.payload,
    )
}

/// Decodes the domain event of the event at `position`.
fn decode_at(
    position: u64,
    event_type: &str,
    schema_version: u16,
    payload: &[u8],
) -> ProjectionResult<DomainEvent> {
    decode_event(event_type, schema_version, payload)
        .map_err(|error| ProjectionError::DataLoss(format!("event at position {position}: {error}")))
}

/// What the read models take from an event's envelope: the rest (the payload above all) is
/// decoded where the record is read and not copied.
pub(crate) struct Header {
    pub position: u64,
    pub stream_id: String,
    pub stream_version: u64,
}

impl Header {
    fn of(envelope: &EnvelopeRef<'_>) -> Header {
        Header {
            position: envelope.position,
            stream_id: envelope.stream_id.to_owned(),
            stream_version: envelope.stream_version,
        }
    }
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StepOutcome {
    /// Events read and applied (to at least one read model).
    pub applied: usize,
    /// Lowest position of the stepped read models afterwards, as queries see them (0 while
    /// they are built aside).
    pub position: u64,
    /// Lowest position the stepped read models reached, built aside or not (for progress).
    pub reached: u64,
    /// The log head seen.
    pub head: u64,
}

/// Below this many events behind the head a step reads and applies on one thread: starting
/// a second costs more than the overlap saves on a few chunks.
pub const PIPELINE_MIN_EVENTS: usize = 2 * APPLY_CHUNK;
/// Empty read models over a log at least this long (a start without a snapshot, `dipledger
/// rebuild`) are built aside: queries read the empty ones until the built ones replace them
/// whole, so their index updates can be merged in sorted batches instead of inserted one by one
/// (about half a second of building; below it, answers from the partly built models come sooner).
pub const ASIDE_MIN_EVENTS: u64 = 100_000;
/// Chunks read ahead of the one being applied (bounds a pipelined step's extra memory: 8
/// chunks of [`APPLY_CHUNK`] folded events, states shared). Chunks differ in cost to each
/// thread (new meetings against statements), so the reading thread may run a few ahead where
/// applying is dearer; against 2 the rebuild was within noise (docs/benchmarks.md 000x).
pub const PIPELINE_DEPTH: usize = 8;
/// Events one step of a build aside reads at most. Each step starts the
/// read-ahead thread afresh, and its first chunk and last chunks leave one of the two threads
/// idle: at [`EVENTS_PER_BATCH`] (16 chunks) that was several percent of a rebuild. No query
/// reads a model built aside, so nothing waits on its steps but a close (at most this many
/// events, ~0.25 s at 1,000,000 events).
pub const ASIDE_STEP_EVENTS: usize = 65_536;
const _: () = assert!(ASIDE_STEP_EVENTS >= EVENTS_PER_BATCH && ASIDE_STEP_EVENTS % APPLY_CHUNK == 0);
const _: () = assert!(PIPELINE_MIN_EVENTS <= EVENTS_PER_BATCH && PIPELINE_DEPTH >= 1);

/// One event read from the log: where it is stored, the event decoded, and the states of its
/// entity before and after it.
struct Folded {
    header: Header,
    location: RecordLocation,
    event: DomainEvent,
    before: Arc<AggregateState>,
    after: Arc<AggregateState>,
    kept: Arc<Kept>,
    relations: Option<RelationDelta>,
}

/// Up to [`APPLY_CHUNK`] events read from the log and folded, in log order.
type FoldedChunk = Vec<Folded>;

/// Reads a step's events a chunk at a time and folds them into the entity states.
struct ChunkReader<'a> {
    log: &'a Log,
    states: &'a mut StateMap,
    /// The next position to read.
    next: u64,
    /// Events the step may still read.
    left: usize,
    /// The log's head as of the last read.
    head: u64,
    /// Whether each event's [`RelationDelta`] is computed as it is read (the relations read
    /// model is stepped, and the applying thread is the busier one), and the last contribution
    /// computed.
    relations: Option<LastContribution>,
}

impl<'a> ChunkReader<'a> {
    /// A reader of up to `batch` events after position `lowest`, computing the relations'
    /// deltas when `relations` says so.
    fn new(
        log: &'a Log,
        states: &'a mut StateMap,
        lowest: u64,
        batch: usize,
        relations: Option<LastContribution>,
    ) -> ChunkReader<'a> {
        ChunkReader {
            log,
            states,
            next: lowest + 1,
            left: batch,
            head: lowest,
            relations,
        }
    }

    /// The next chunk, `None` once the step has read its events or reached the head.
    fn next(&mut self) -> ProjectionResult<Option<FoldedChunk>> {
        if self.left == 0 {
            return Ok(None);
        }
        let limit = self.left.min(APPLY_CHUNK);
        let mut read = Vec::with_capacity(limit);
        let mut failed = None;
        let end = self.log.scan_all(
            (self.next, Direction::Forwards),
            limit,
            &EventFilter::default(),
            &mut |view| {
                let envelope = &view.envelope;
                let Some(location) = view.location else {
                    failed = Some(ProjectionError::DataLoss(format!(
                        "event at position {}: read without its location",
                        envelope.position
                    )));
                    return ControlFlow::Break(());
                };
                let (position, schema) = (envelope.position, envelope.schema_version);
                match decode_at(position, envelope.event_type, schema, envelope.payload) {
                    Ok(event) => read.push((Header::of(envelope), event, location)),
                    Err(error) => {
                        failed = Some(error);
                        return ControlFlow::Break(());
                    }
                }
                ControlFlow::Continue(())
            },
        )?;
        if let Some(error) = failed {
            return Err(error);
        }
        self.head = end.head;
        let Some((last, _, _)) = read.last() else {
            return Ok(None);
        };
        self.next = last.position + 1;
        self.left -= read.len();
        let mut folded = Vec::with_capacity(read.len());
        for (header, event, location) in read {
            let (before, after, kept) = self.states.advance(self.log, &header, &event)?;
            let relations = self
                .relations
                .as_mut()
                .and_then(|last| relation_delta(&before, &after, last));
            folded.push(Folded {
                header,
                location,
                event,
                before,
                after,
                kept,
                relations,
            });
        }
        Ok(Some(folded))
    }
}

/// Runs `reader` on a second thread while `applier` applies what it has read, chunk by chunk
/// in order; returns the log's head as of the last read, or the reader's error after every
/// chunk it read before it was applied. Applied chunks go back to the reader's thread to be
/// dropped there (their events and states were allocated there, and the applying thread is
/// the busier one). `None` when the thread cannot be started (nothing was read: the caller
/// reads on its own thread instead).
fn read_ahead(mut reader: ChunkReader<'_>, applier: &mut Applier<'_>) -> Option<ProjectionResult<u64>> {
    std::thread::scope(|scope| {
        let (sender, receiver) = std::sync::mpsc::sync_channel(PIPELINE_DEPTH);
        let (applied_sender, applied) = std::sync::mpsc::channel::<FoldedChunk>();
        let producer = std::thread::Builder::new()
            .name("dipledger-read-ahead".into())
            .spawn_scoped(scope, move || -> ProjectionResult<u64> {
                let read = (|| -> ProjectionResult<u64> {
                    while let Some(chunk) = reader.next()? {
                        if sender.send(chunk).is_err() {
                            break;
                        }
                        applied.try_iter().for_each(drop);
                    }
                    Ok(reader.head)
                })();
                // The applier ends once `sender` is gone; the chunks it applies meanwhile come back.
                drop(sender);
                applied.into_iter().for_each(drop);
                read
            })
            .ok()?;
        // Ends when the reader is done or has failed (its sender dropped).
        for mut chunk in receiver {
            applier.apply(&mut chunk);
            // Only fails should the reader have panicked: then the chunk is dropped here.
            let _ = applied_sender.send(chunk);
        }
        drop(applied_sender);
        Some(
            producer
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
        )
    })
}

/// A read model a chunk is applied to, with its position before the chunk.
type Part<'a> = (u64, &'a mut dyn Projection);

/// Applies every event of `chunk` past a part's position to that part, in log order.
fn apply_each(chunk: &FoldedChunk, parts: &mut [Part<'_>]) {
    for folded in chunk {
        let envelope = &folded.header;
        let change = Change {
            envelope,
            location: folded.location,
            before: &folded.before,
            after: &folded.after,
            kept: &folded.kept,
            event: &folded.event,
            relations: folded.relations.as_ref(),
        };
        for (position, part) in parts.iter_mut() {
            if *position < envelope.position {
                part.apply(&change);
            }
        }
    }
}

/// Applies folded chunks to the selected read models, one hold of the model's write lock each.
struct Applier<'a> {
    model: &'a RwLock<Model>,
    progress: &'a [Arc<Progress>],
    selected: &'a [ProjectionName],
    /// Whether queries see what is applied (false for read models built aside).
    publish: bool,
    /// Whether each event's [`RelationDelta`] is computed here (the relations read model is
    /// stepped, and the reading thread is the busier one), and the last contribution computed.
    relations: Option<LastContribution>,
    /// Events applied so far.
    applied: usize,
}

impl Applier<'_> {
    fn apply(&mut self, chunk: &mut FoldedChunk) {
        let Some(last) = chunk.last().map(|folded| folded.header.position) else {
            return;
        };
        if let Some(contribution) = &mut self.relations {
            for folded in chunk.iter_mut() {
                folded.relations = relation_delta(&folded.before, &folded.after, contribution);
            }
        }
        let mut model = self.model.write().expect("model lock");
        let positions = model.positions;
        let mut parts: Vec<Part<'_>> = model
            .parts_mut()
            .into_iter()
            .filter(|(name, _)| self.selected.contains(name))
            .map(|(name, part)| (positions[name.index()], part))
            .collect();
        apply_each(chunk, &mut parts);
        drop(parts);
        for name in self.selected {
            let position = &mut model.positions[name.index()];
            *position = (*position).max(last);
        }
        let positions = model.positions;
        drop(model);
        if self.publish {
            for name in self.selected {
                self.progress[name.index()].set(positions[name.index()]);
            }
        }
        self.applied += chunk.len();
    }
}

/// Drives the read models. Owned behind a mutex by the facade; the follow thread and rebuilds
/// take turns. Queries read the model under its read lock.
pub(crate) struct Engine {
    log: Log,
    model: Arc<RwLock<Model>>,
    progress: Vec<Arc<Progress>>,
    /// States for steps of every read model.
    states: StateMap,
    /// States for the steps of one read model being rebuilt from position 1.
    rebuild_states: StateMap,
    snapshots: Snapshots,
    /// Read models being built from position 1 where no query sees them, and the events they
    /// have applied (see `step`).
    aside: Option<(RwLock<Model>, usize)>,
    /// How far the log must be ahead of empty read models for them to be built aside.
    aside_min_events: u64,
    /// Steps that read on a second thread (for tests: see `step`).
    pipelined_steps: u64,
}

impl Engine {
    /// Loads the snapshot (if any) and seeds the state map with its entity states.
    pub(crate) fn new(
        log: Log,
        failure: Arc<Mutex<Option<RunnerFailure>>>,
    ) -> ProjectionResult<(Engine, SnapshotLoad)> {
        let mut model = Model::default();
        let (snapshots, load) = Snapshots::open(&log, &mut model)?;
        let mut seeds = Vec::new();
        for name in ProjectionName::ALL {
            model.part(name).states(&mut seeds);
        }
        let states = StateMap::seeded(seeds, HOT_STATES);
        let hurry = Arc::new(tokio::sync::Notify::new());
        let progress = ProjectionName::ALL
            .iter()
            .map(|name| {
                Arc::new(Progress::new(
                    *name,
                    model.position(*name),
                    failure.clone(),
                    hurry.clone(),
                ))
            })
            .collect();
        let engine = Engine {
            log,
            model: Arc::new(RwLock::new(model)),
            progress,
            states,
            rebuild_states: StateMap::default(),
            snapshots,
            aside: None,
            aside_min_events: ASIDE_MIN_EVENTS,
            pipelined_steps: 0,
        };
        Ok((engine, load))
    }

    /// Writes a snapshot of what changed since the last one, and waits until it is written
    /// (read models being built aside are finished first: they are what there is to save).
    pub(crate) fn snapshot(&mut self) -> ProjectionResult<()> {
        self.finish_aside()?;
        self.snapshots.save(&self.model, true)
    }

    /// Read models from a log at least `events` long are built aside when all are empty (a
    /// test hook; [`ASIDE_MIN_EVENTS`] otherwise).
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn build_aside_from(&mut self, events: u64) {
        self.aside_min_events = events;
    }

    /// Starts building every read model aside when all of them are empty and the log holds at
    /// least `aside_min_events`: queries keep reading the empty ones (at position 0, or
    /// waiting for a `min_position`) until the built ones replace them whole.
    fn start_aside(&mut self) {
        if self.aside.is_some() || self.log.head() < self.aside_min_events.max(1) {
            return;
        }
        let model = self.model.read().expect("model lock");
        let empty = ProjectionName::ALL.iter().all(|name| model.position(*name) == 0);
        drop(model);
        if empty {
            self.aside = Some((RwLock::new(Model::aside()), 0));
        }
    }

    /// Puts the read models built aside in place of the ones queries read (their deferred
    /// index updates merged first), tells waiting queries, and takes the snapshot that is due.
    fn finish_aside(&mut self) -> ProjectionResult<()> {
        let Some((aside, applied)) = self.aside.take() else {
            return Ok(());
        };
        let mut built = aside.into_inner().expect("model lock");
        built.settle_indexes();
        let positions = built.positions;
        let replaced = std::mem::replace(&mut *self.model.write().expect("model lock"), built);
        drop(replaced);
        for name in ProjectionName::ALL {
            self.progress[name.index()].set(positions[name.index()]);
        }
        if self.snapshots.applied(applied) {
            self.snapshots.save(&self.model, false)?;
        }
        Ok(())
    }

    pub(crate) fn set_snapshot_interval(&mut self, interval: Duration) {
        self.snapshots.interval = interval;
    }

    /// Steps so far that read on a second thread (a test hook).
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn pipelined_steps(&self) -> u64 {
        self.pipelined_steps
    }

    /// Keeps at most `capacity` entity states decoded (a test hook).
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn keep_hot_states(&mut self, capacity: usize) {
        self.states.set_capacity(capacity);
        self.rebuild_states.set_capacity(capacity);
    }

    /// The entity states the runner holds, and how many of them are decoded (a test hook).
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn held_states(&self) -> (usize, usize) {
        let hot = self.states.states.values().filter(|kept| kept.is_hot()).count();
        (self.states.states.len(), hot)
    }

    /// The snapshot tree (a test hook).
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn snapshot_tree(&self) -> sled::Tree {
        self.snapshots.tree().clone()
    }

    /// The snapshot's chunk trees as (generation, chunk, tree), in order (a test hook).
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn snapshot_chunks(&self) -> Vec<(u64, u64, sled::Tree)> {
        self.snapshots.chunks()
    }

    #[cfg(test)]
    pub(crate) fn snapshots_db(&self) -> sled::Db {
        self.snapshots.db()
    }

    /// Test hook: later snapshots are written as format `format`.
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn write_snapshot_format(&mut self, format: u32) {
        self.snapshots.write_format(format);
    }

    #[cfg(test)]
    pub(crate) fn force_base(&mut self) {
        self.snapshots.force_base();
    }

    #[cfg(test)]
    pub(crate) fn snapshots(&self) -> &Snapshots {
        &self.snapshots
    }

    #[cfg(test)]
    pub(crate) fn set_max_appended_chunks(&mut self, chunks: u64) {
        self.snapshots.set_max_appended_chunks(chunks);
    }

    pub(crate) fn snapshot_stats(&self) -> SnapshotStats {
        self.snapshots.stats()
    }

    /// Notified each time a snapshot is finished: the runner then steps, so a snapshot that
    /// fell due meanwhile is taken.
    pub(crate) fn snapshot_finished(&self) -> Arc<tokio::sync::Notify> {
        self.snapshots.finished()
    }

    pub(crate) fn model(&self) -> Arc<RwLock<Model>> {
        self.model.clone()
    }

    pub(crate) fn progress(&self) -> Vec<Arc<Progress>> {
        self.progress.clone()
    }

    /// Reads up to `batch` events (at most [`EVENTS_PER_BATCH`], [`ASIDE_STEP_EVENTS`] while
    /// building aside) from the lowest position of the selected read models (all when `only`
    /// is `None`) and applies them, [`APPLY_CHUNK`] at a time. When the step may
    /// cover more than one chunk and at least [`PIPELINE_MIN_EVENTS`] wait, the chunks are
    /// read, decoded and folded on a second thread while this one applies the chunk before
    /// (the read models themselves are only ever changed by this thread, in log order).
    pub(crate) fn step(
        &mut self,
        only: Option<ProjectionName>,
        batch: usize,
    ) -> ProjectionResult<StepOutcome> {
        let selected: Vec<ProjectionName> = ProjectionName::ALL
            .into_iter()
            .filter(|name| only.is_none_or(|only| only == *name))
            .collect();
        if only.is_none() {
            self.start_aside();
        }
        assert!(
            only.is_none() || self.aside.is_none(),
            "a reset finishes a build aside"
        );
        let model = match &self.aside {
            Some((aside, _)) => aside,
            None => &*self.model,
        };
        let lowest = model.read().expect("model lock").lowest(&selected);
        let most = match self.aside {
            Some(_) => ASIDE_STEP_EVENTS,
            None => EVENTS_PER_BATCH,
        };
        let batch = batch.clamp(1, most);
        let pipelined =
            batch > APPLY_CHUNK && self.log.head().saturating_sub(lowest) >= PIPELINE_MIN_EVENTS as u64;
        let states = match only {
            None => &mut self.states,
            Some(_) => &mut self.rebuild_states,
        };
        // The relations' deltas are computed on the busier thread's partner: ahead of the
        // applying thread, except while building aside (its index updates are then cheap and
        // the reading thread is the busier one).
        let relations = selected.contains(&ProjectionName::Relations);
        let ahead = relations && self.aside.is_none();
        let mut applier = Applier {
            model,
            progress: &self.progress,
            selected: &selected,
            publish: self.aside.is_none(),
            relations: (relations && !ahead).then(LastContribution::default),
            applied: 0,
        };
        let read_ahead = if pipelined {
            read_ahead(
                ChunkReader::new(
                    &self.log,
                    &mut *states,
                    lowest,
                    batch,
                    ahead.then(LastContribution::default),
                ),
                &mut applier,
            )
        } else {
            None
        };
        let head = match read_ahead {
            Some(head) => {
                self.pipelined_steps += 1;
                head?
            }
            None => {
                let mut reader = ChunkReader::new(
                    &self.log,
                    states,
                    lowest,
                    batch,
                    ahead.then(LastContribution::default),
                );
                while let Some(mut chunk) = reader.next()? {
                    applier.apply(&mut chunk);
                }
                reader.head
            }
        };
        let applied = applier.applied;
        let mut reached = None;
        if let Some((aside, aside_applied)) = &mut self.aside {
            *aside_applied += applied;
            let position = aside.read().expect("model lock").lowest(&selected);
            // Done once a step read to the head it saw; until then no snapshot is due, and the
            // position said is the one queries see (0), so a caller steps on until it is done.
            if applied == 0 || position >= head {
                self.finish_aside()?;
            } else {
                reached = Some(position);
            }
        } else if self.snapshots.applied(applied) {
            // A due snapshot's records are taken here and written on the snapshot's own thread.
            self.snapshots.save(&self.model, false)?;
        }
        let position = self.model.read().expect("model lock").lowest(&selected);
        Ok(StepOutcome {
            applied,
            position,
            reached: reached.unwrap_or(position),
            head,
        })
    }

    /// Empties one read model and sets its position to 0 (the caller then steps it forward
    /// with `step(Some(name), ..)`).
    pub(crate) fn reset(&mut self, name: ProjectionName) -> ProjectionResult<()> {
        self.finish_aside()?;
        {
            let mut model = self.model.write().expect("model lock");
            model.reset(name);
            // Nothing of it is saved: the next snapshot writes all of it (no per-key tracking).
            model.part_mut(name).unsave();
        }
        self.snapshots.cleared(name);
        self.finish_rebuild();
        self.progress[name.index()].set(0);
        Ok(())
    }

    /// Empties every read model and forgets the runner's entity states, for a rebuild of all of
    /// them from position 1 in one pass over the log (built aside when the log is long).
    pub(crate) fn reset_all(&mut self) -> ProjectionResult<()> {
        for name in ProjectionName::ALL {
            self.reset(name)?;
        }
        self.states = StateMap::seeded(Vec::new(), self.states.capacity);
        Ok(())
    }

    /// Drops the states of a rebuild, before it starts and once it is done: its map duplicates
    /// every entity's key, and its hot states would stay decoded in the rebuilt read model
    /// (dropping the map packs them). The rebuilt read model keeps its own `Kept`s until each
    /// entity's next event.
    pub(crate) fn finish_rebuild(&mut self) {
        self.rebuild_states = StateMap::seeded(Vec::new(), self.states.capacity);
    }
}

#[cfg(test)]
mod tests {
    use super::StreamKey;
    use crate::domain::common::{CommitmentId, MeetingId, OfficialId, SourceId};

    #[test]
    fn stream_keys_are_compact_for_canonical_ids_and_never_shared_by_two_stream_ids() {
        let id = uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        let canonical = [
            MeetingId::from_uuid(id).stream_id(),
            CommitmentId::from_uuid(id).stream_id(),
            OfficialId::from_uuid(id).stream_id(),
            SourceId::from_uuid(id).stream_id(),
        ];
        let keys: Vec<StreamKey> = canonical.iter().map(|stream| StreamKey::of(stream)).collect();
        for (kind, key) in keys.iter().enumerate() {
            assert_eq!(*key, StreamKey::Id(kind as u8, id), "{}", canonical[kind]);
        }
        // Not the canonical form, a party's code, or no UUID: kept whole, and apart.
        let others = [
            canonical[0].to_uppercase(),
            format!("meeting-{}", id.braced()),
            format!("meeting-{}", id.simple()),
            "meeting-not-a-uuid".to_owned(),
            "party-FRA".to_owned(),
            format!("ledger-{id}"),
        ];
        for stream in &others {
            assert_eq!(StreamKey::of(stream), StreamKey::Other(stream.as_str().into()));
        }
        let mut all: Vec<StreamKey> = keys;
        all.extend(others.iter().map(|stream| StreamKey::of(stream)));
        let distinct: std::collections::HashSet<&StreamKey> = all.iter().collect();
        assert_eq!(distinct.len(), all.len(), "two stream ids share a key");
    }
}
