//! Read models folded from the log, with as-of queries.
//!
//! Bird's-eye view: one runner ([`runner`]) reads the log once from the lowest position,
//! folds each event into the state of its entity with the domain's `evolve` (so corrections and
//! retractions are honoured exactly as the domain defines them), and hands (state before, state
//! after) to each read model. Every read model lives in memory: the latest state of each of its
//! entities (shared with the runner, never copied), index memberships with the intervals of
//! positions during which they held, and tallies changed by deltas. A query resolves the
//! position it reads at ([`consistency`]) and answers from memory; as of an earlier position,
//! an entity changed since is folded from its stream in the log, and indexes and tallies are
//! read at that position ([`store`]).
//!
//! Files:
//! - [`runner`]: projection trait, model, engine (catch-up step, reset for rebuild), progress.
//! - [`snapshot`]: checkpointed snapshots in sled, loaded on open.
//! - [`store`]: entity states as of a position, validity intervals, tallies, page tokens, limits.
//! - [`consistency`]: `min_position`, `as_of` (position or time), wait with deadline.
//! - [`meetings`], [`commitments`], [`relations`], [`officials`], [`directory`]: read models.
//! - [`history`]: the audit trail of one entity, straight from the log.
//!
//! Invariants (tested in tests/projections_*.rs): every read model at its position, and as of
//! any earlier position, equals a fresh fold of the events up to it; a rebuild holds exactly
//! what incremental application holds (compared through [`Projections::dump`]); a reopen loads
//! the last snapshot ([`snapshot`]) and replays only the log past it.
//!
//! Longer than ~600 lines: it is the facade, one short method per question analysts ask (each
//! naming the read models it needs), plus the types of answers and pages; the work is in the
//! read-model files.
#![deny(missing_docs)]

pub mod commitments;
pub mod consistency;
pub mod directory;
pub mod error;
pub mod history;
pub mod index;
pub mod kept;
pub mod meetings;
pub mod names;
pub mod officials;
pub mod relations;
pub mod runner;
pub mod snapshot;
mod snapshot_writer;
pub mod store;

use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::watch;

pub use commitments::{CommitmentFilter, CommitmentRow, CommitmentStatusView, ComplianceRow};
pub use consistency::{AsOf, ReadOptions};
pub use directory::{PartyRow, SourceRow};
pub use error::{ProjectionError, ProjectionResult};
pub use history::{HistoryEntry, SourceRef};
pub use meetings::{MeetingFilter, MeetingRow, MeetingStatusView};
pub use names::Names;
pub use officials::{ContactsRow, OfficialRow, PostHolder};
pub use relations::{Relation, RelationSummary, TimelineItem};
pub use runner::ProjectionName;
pub use snapshot::{check_snapshots, SnapshotLoad, SnapshotStats};

use crate::domain::common::{party_stream_id, CommitmentId, MeetingId, OfficialId, SourceCitation, SourceId};
use crate::log::Log;
use crate::time::Timestamp;
use runner::{Engine, Model, Progress, WHOLE_STEP};

/// One answer and the log position it is based on.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer<T> {
    value: T,
    based_on_position: u64,
}

impl<T> Answer<T> {
    /// The value.
    pub fn value(&self) -> &T {
        &self.value
    }
    /// Takes the value.
    pub fn into_value(self) -> T {
        self.value
    }
    /// The log position the answer reflects (every event up to it, none after).
    pub fn based_on_position(&self) -> u64 {
        self.based_on_position
    }
}

/// One page of a list and the log position it is based on.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    items: Vec<T>,
    next_page_token: Option<String>,
    based_on_position: u64,
}

impl<T> Page<T> {
    /// The items.
    pub fn items(&self) -> &[T] {
        &self.items
    }
    /// Takes the items.
    pub fn into_items(self) -> Vec<T> {
        self.items
    }
    /// Token for the next page (pass it with the same filter and an `as_of` of
    /// [`Page::based_on_position`] for a stable listing); `None` on the last page.
    pub fn next_page_token(&self) -> Option<&str> {
        self.next_page_token.as_deref()
    }
    /// The log position the page reflects.
    pub fn based_on_position(&self) -> u64 {
        self.based_on_position
    }
}

/// Which page of a list: a size (0 = default, at most [`store::MAX_PAGE_SIZE`]) and the token
/// from the previous page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// Most items (0 means [`store::DEFAULT_PAGE_SIZE`]).
    pub limit: usize,
    /// Resume token from [`Page::next_page_token`].
    pub token: Option<String>,
}

impl PageRequest {
    /// A first page of `limit` items.
    pub fn first(limit: usize) -> PageRequest {
        PageRequest { limit, token: None }
    }
}

struct Shared {
    log: Log,
    engine: Mutex<Engine>,
    model: Arc<RwLock<Model>>,
    progress: Vec<Arc<Progress>>,
    failure: Arc<Mutex<Option<runner::RunnerFailure>>>,
    load: SnapshotLoad,
}

/// The read models: owns the runner and answers queries.
pub struct Projections {
    shared: Arc<Shared>,
    stop: Option<watch::Sender<bool>>,
    follower: Option<JoinHandle<()>>,
}

impl Drop for Projections {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(follower) = self.follower.take() {
            let _ = follower.join();
        }
        // A clean close snapshots what changed, so the next open replays nothing. (Nothing
        // depends on it: a lost snapshot means a longer replay from the log.)
        if let Ok(mut engine) = self.shared.engine.lock() {
            let _ = engine.snapshot();
        }
    }
}

impl Projections {
    /// Opens every read model at its checkpoint and starts the runner thread, which catches up
    /// and then follows the log's head notification.
    pub fn open(log: Log) -> ProjectionResult<Projections> {
        Projections::open_with(log, snapshot::SNAPSHOT_INTERVAL)
    }

    /// [`Projections::open`] with the longest time between two snapshots.
    pub fn open_with(log: Log, snapshot_interval: Duration) -> ProjectionResult<Projections> {
        Projections::open_following(log, snapshot_interval, Box::new(|_| true))
    }

    /// Test hook: [`Projections::open_with`] whose runner waits for `gate` to open before each
    /// step, so a test sees the read models replaying for as long as it holds the gate.
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn open_gated(
        log: Log,
        snapshot_interval: Duration,
        gate: RunnerGate,
    ) -> ProjectionResult<Projections> {
        Projections::open_following(log, snapshot_interval, Box::new(move |stop| gate.wait(stop)))
    }

    /// Opens the read models and starts the runner, which calls `before_step` before each step
    /// (false: stop).
    fn open_following(
        log: Log,
        snapshot_interval: Duration,
        before_step: BeforeStep,
    ) -> ProjectionResult<Projections> {
        let mut projections = Projections::open_paused(log)?;
        projections
            .shared
            .engine
            .lock()
            .expect("engine lock")
            .set_snapshot_interval(snapshot_interval);
        let (stop, stop_receiver) = watch::channel(false);
        let shared = projections.shared.clone();
        let follower = std::thread::Builder::new()
            .name("dipledger-projections".into())
            .spawn(move || follow(shared, stop_receiver, before_step))
            .map_err(|error| ProjectionError::Stopped(format!("cannot start runner: {error}")))?;
        projections.stop = Some(stop);
        projections.follower = Some(follower);
        Ok(projections)
    }

    /// Opens every read model without a runner thread: the caller drives it with
    /// [`Projections::step`] or [`Projections::catch_up`] (tests, benchmarks, offline rebuild).
    pub fn open_paused(log: Log) -> ProjectionResult<Projections> {
        let failure = Arc::new(Mutex::new(None));
        let (engine, load) = Engine::new(log.clone(), failure.clone())?;
        let model = engine.model();
        let progress = engine.progress();
        Ok(Projections {
            shared: Arc::new(Shared {
                log,
                engine: Mutex::new(engine),
                model,
                progress,
                failure,
                load,
            }),
            stop: None,
            follower: None,
        })
    }

    /// Test hook: later snapshots (the one a close writes included) are written as `format`, as
    /// a build with another snapshot format would write them.
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn write_snapshots_as_format(&self, format: u32) {
        self.shared
            .engine
            .lock()
            .expect("engine lock")
            .write_snapshot_format(format);
    }

    /// Test hook: the snapshot's meta tree in the read models' own sled database.
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn snapshot_tree(&self) -> sled::Tree {
        self.shared.engine.lock().expect("engine lock").snapshot_tree()
    }

    /// Test hook: the snapshot's chunk trees as (generation, chunk, tree), in that order; each
    /// holds its records under one key.
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn snapshot_chunks(&self) -> Vec<(u64, u64, sled::Tree)> {
        self.shared.engine.lock().expect("engine lock").snapshot_chunks()
    }

    /// Test hook: empty read models over a log at least `events` long are built aside
    /// (instead of from [`runner::ASIDE_MIN_EVENTS`] on).
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn build_aside_from(&self, events: u64) {
        self.shared
            .engine
            .lock()
            .expect("engine lock")
            .build_aside_from(events);
    }

    /// Test hook: the runner keeps at most `capacity` entity states decoded (instead of
    /// [`kept::HOT_STATES`]); the others are packed.
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn keep_hot_states(&self, capacity: usize) {
        self.shared
            .engine
            .lock()
            .expect("engine lock")
            .keep_hot_states(capacity);
    }

    /// Test hook: the entity states the runner holds, and how many of them are decoded.
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn held_states(&self) -> (usize, usize) {
        self.shared.engine.lock().expect("engine lock").held_states()
    }

    /// Test hook: how many steps so far read the log on a second thread while applying.
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn pipelined_steps(&self) -> u64 {
        self.shared.engine.lock().expect("engine lock").pipelined_steps()
    }

    /// Applies at most one batch of up to `batch` events to every read model that is behind.
    /// Returns the number of events read (0 when every read model is at the head).
    pub fn step(&self, batch: usize) -> ProjectionResult<usize> {
        let mut engine = self.shared.engine.lock().expect("engine lock");
        Ok(engine.step(None, batch)?.applied)
    }

    /// Applies batches until every read model has reached the head as it was when called.
    /// Returns the lowest checkpoint.
    pub fn catch_up(&self) -> ProjectionResult<u64> {
        let target = self.shared.log.head();
        loop {
            let outcome = self
                .shared
                .engine
                .lock()
                .expect("engine lock")
                .step(None, WHOLE_STEP)?;
            if outcome.applied == 0 || outcome.position >= target {
                return Ok(outcome.position);
            }
        }
    }

    /// Drops one read model and rebuilds it from position 1, calling `progress(position,
    /// head)` after every batch. Other read models keep serving; queries on this one see its
    /// checkpoint restart from 0 (a `min_position` query waits). Returns the position reached.
    pub fn rebuild(&self, name: ProjectionName, progress: &mut dyn FnMut(u64, u64)) -> ProjectionResult<u64> {
        self.refold(Some(name), progress)
    }

    /// Drops every read model and rebuilds all of them from position 1 in one pass over the
    /// log, calling `progress(position, head)` after every batch. From
    /// [`runner::ASIDE_MIN_EVENTS`] events on they are built aside: queries see the empty read
    /// models (a `min_position` query waits) until the rebuilt ones replace them whole.
    /// Returns the position reached.
    pub fn rebuild_all(&self, progress: &mut dyn FnMut(u64, u64)) -> ProjectionResult<u64> {
        self.refold(None, progress)
    }

    /// Empties `only` (every read model when `None`) and steps it from position 1 to the head.
    fn refold(
        &self,
        only: Option<ProjectionName>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> ProjectionResult<u64> {
        let mut engine = self.shared.engine.lock().expect("engine lock");
        match only {
            Some(name) => engine.reset(name)?,
            None => engine.reset_all()?,
        }
        let target = self.shared.log.head();
        progress(0, target);
        let rebuilt = loop {
            let outcome = match engine.step(only, WHOLE_STEP) {
                Ok(outcome) => outcome,
                Err(error) => break Err(error),
            };
            progress(outcome.reached, outcome.head.max(target));
            if outcome.applied == 0 || outcome.position >= target {
                break Ok(outcome.position);
            }
        };
        engine.finish_rebuild();
        rebuilt
    }

    /// The checkpoint of a read model: the last log position it has applied.
    pub fn checkpoint(&self, name: ProjectionName) -> u64 {
        self.shared.progress[name.index()].get()
    }

    /// What opening found in the snapshot.
    pub fn snapshot_load(&self) -> &SnapshotLoad {
        &self.shared.load
    }

    /// Writes a snapshot of what changed since the last one now (the runner also does, every
    /// `SNAPSHOT_INTERVAL` or `SNAPSHOT_EVENTS`, and on close).
    pub fn snapshot(&self) -> ProjectionResult<()> {
        self.shared.engine.lock().expect("engine lock").snapshot()
    }

    /// Counters of the snapshots written since open.
    pub fn snapshot_stats(&self) -> SnapshotStats {
        self.shared.engine.lock().expect("engine lock").snapshot_stats()
    }

    /// Why the runner stopped, if it did.
    pub fn failure(&self) -> Option<String> {
        self.shared
            .failure
            .lock()
            .expect("failure lock")
            .as_ref()
            .map(|failure| failure.message().to_owned())
    }

    /// Waits (async) until a read model has applied `position`, for at most `timeout`; an
    /// [`ProjectionError::Unavailable`] error otherwise. Returns the checkpoint reached.
    pub async fn wait_for(
        &self,
        name: ProjectionName,
        position: u64,
        timeout: Duration,
    ) -> ProjectionResult<u64> {
        self.shared.progress[name.index()].wait(position, timeout).await
    }

    /// Everything a read model holds, as canonical (key, value) bytes in key order (tests
    /// compare a rebuild with incremental application). Read-only introspection for tests.
    #[doc(hidden)]
    pub fn dump(&self, name: ProjectionName) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.shared.model.read().expect("model lock").part(name).dump()
    }

    /// [`Projections::dump`] of every read model, in [`ProjectionName::ALL`] order.
    #[doc(hidden)]
    pub fn dump_all(&self) -> Vec<Vec<(Vec<u8>, Vec<u8>)>> {
        ProjectionName::ALL.iter().map(|name| self.dump(*name)).collect()
    }

    /// Waits as `options` say, then runs `read` on the model under its read lock at the
    /// position the answer is based on (for latest reads, the lowest position of `names` as
    /// it is under the lock, so nothing moves while `read` runs).
    fn read<T>(
        &self,
        names: &[ProjectionName],
        options: &ReadOptions,
        read: impl FnOnce(&Model, &Log, u64) -> ProjectionResult<T>,
    ) -> ProjectionResult<(T, u64)> {
        let fixed = self.resolve(names, options)?;
        let model = self.shared.model.read().expect("model lock");
        let at = fixed.unwrap_or_else(|| model.lowest(names));
        Ok((read(&model, &self.shared.log, at)?, at))
    }

    /// Like [`Projections::read`] over `names` plus the officials and the directory, with the
    /// names of the officials and parties `refs` finds in the result, at the same position.
    fn read_named<T>(
        &self,
        names: &[ProjectionName],
        options: &ReadOptions,
        read: impl FnOnce(&Model, &Log, u64) -> ProjectionResult<T>,
        refs: impl FnOnce(&T, &mut names::Refs),
    ) -> ProjectionResult<(T, Names, u64)> {
        let mut all = names.to_vec();
        all.extend([ProjectionName::Officials, ProjectionName::Directory]);
        let ((value, names), at) = self.read(&all, options, |model, log, at| {
            let value = read(model, log, at)?;
            let mut found = names::Refs::default();
            refs(&value, &mut found);
            let names = Names::resolve(model, log, at, found)?;
            Ok((value, names))
        })?;
        Ok((value, names, at))
    }

    /// One meeting with the names and posts of its participants (on the meeting's date).
    pub fn named_meeting(
        &self,
        meeting_id: MeetingId,
        options: &ReadOptions,
    ) -> ProjectionResult<(Answer<MeetingRow>, Names)> {
        let (row, names, at) = self.read_named(
            &[ProjectionName::Meetings],
            options,
            |model, log, at| model.meetings.get(log, meeting_id, at),
            |row, refs| row.iter().for_each(|row| refs.meeting(row)),
        )?;
        Ok((found(row, || format!("meeting {meeting_id}"), at)?, names))
    }

    /// Meetings matching a filter, with the names of everyone on the page.
    pub fn named_meetings(
        &self,
        filter: &MeetingFilter,
        page: &PageRequest,
        options: &ReadOptions,
    ) -> ProjectionResult<(Page<MeetingRow>, Names)> {
        let ((items, next_page_token), names, at) = self.read_named(
            &[ProjectionName::Meetings],
            options,
            |model, log, at| {
                model
                    .meetings
                    .list(log, filter, at, page.token.as_deref(), page.limit)
            },
            |(items, _), refs| items.iter().for_each(|row| refs.meeting(row)),
        )?;
        let page = Page {
            items,
            next_page_token,
            based_on_position: at,
        };
        Ok((page, names))
    }

    /// The bilateral relation with the names of everyone at the meetings on the timeline page.
    pub fn named_relation(
        &self,
        a: &str,
        b: &str,
        page: &PageRequest,
        options: &ReadOptions,
    ) -> ProjectionResult<(Answer<Relation>, Names)> {
        check_pair(a, b)?;
        let (value, names, at) = self.read_named(
            &RELATION_MODELS,
            options,
            |model, log, at| relation_page(model, log, (a, b), at, page),
            |relation, refs| refs.timeline(&relation.timeline),
        )?;
        let answer = Answer {
            value,
            based_on_position: at,
        };
        Ok((answer, names))
    }

    /// Who an official met, with the names of the others.
    pub fn named_contacts(
        &self,
        official_id: OfficialId,
        options: &ReadOptions,
    ) -> ProjectionResult<(Answer<ContactsRow>, Names)> {
        let (value, names, at) = self.read_named(
            &[],
            options,
            |model, _, at| Ok(model.officials.contacts(official_id, at)),
            |contacts, refs| {
                contacts
                    .met
                    .keys()
                    .filter_map(|id| id.parse().ok())
                    .for_each(|uuid| refs.official(OfficialId::from_uuid(uuid)))
            },
        )?;
        let answer = Answer {
            value,
            based_on_position: at,
        };
        Ok((answer, names))
    }

    fn answer<T>(
        &self,
        name: ProjectionName,
        options: &ReadOptions,
        what: impl FnOnce() -> String,
        read: impl FnOnce(&Model, &Log, u64) -> ProjectionResult<Option<T>>,
    ) -> ProjectionResult<Answer<T>> {
        let (row, at) = self.read(&[name], options, read)?;
        found(row, what, at)
    }

    fn list<T>(
        &self,
        name: ProjectionName,
        options: &ReadOptions,
        read: impl FnOnce(&Model, &Log, u64) -> ProjectionResult<(Vec<T>, Option<String>)>,
    ) -> ProjectionResult<Page<T>> {
        let ((items, next_page_token), at) = self.read(&[name], options, read)?;
        Ok(Page {
            items,
            next_page_token,
            based_on_position: at,
        })
    }

    /// Waits as `options` say; the fixed position of an as-of read, None for a latest read.
    fn resolve(&self, names: &[ProjectionName], options: &ReadOptions) -> ProjectionResult<Option<u64>> {
        if let Some(failure) = self.shared.failure.lock().expect("failure lock").as_ref() {
            return Err(failure.error());
        }
        let progress: Vec<&Progress> = names
            .iter()
            .map(|name| self.shared.progress[name.index()].as_ref())
            .collect();
        consistency::resolve(&self.shared.log, &progress, options)
    }

    /// One meeting.
    pub fn meeting(
        &self,
        meeting_id: MeetingId,
        options: &ReadOptions,
    ) -> ProjectionResult<Answer<MeetingRow>> {
        self.answer(
            ProjectionName::Meetings,
            options,
            || format!("meeting {meeting_id}"),
            |model, log, at| model.meetings.get(log, meeting_id, at),
        )
    }

    /// Meetings matching a filter, by valid time.
    pub fn meetings(
        &self,
        filter: &MeetingFilter,
        page: &PageRequest,
        options: &ReadOptions,
    ) -> ProjectionResult<Page<MeetingRow>> {
        self.list(ProjectionName::Meetings, options, |model, log, at| {
            model
                .meetings
                .list(log, filter, at, page.token.as_deref(), page.limit)
        })
    }

    /// One commitment.
    pub fn commitment(
        &self,
        commitment_id: CommitmentId,
        options: &ReadOptions,
    ) -> ProjectionResult<Answer<CommitmentRow>> {
        self.answer(
            ProjectionName::Commitments,
            options,
            || format!("commitment {commitment_id}"),
            |model, log, at| model.commitments.get(log, commitment_id, at),
        )
    }

    /// Commitments matching a filter, by when they were made.
    pub fn commitments(
        &self,
        filter: &CommitmentFilter,
        page: &PageRequest,
        options: &ReadOptions,
    ) -> ProjectionResult<Page<CommitmentRow>> {
        self.list(ProjectionName::Commitments, options, |model, log, at| {
            model
                .commitments
                .list(log, filter, at, page.token.as_deref(), page.limit)
        })
    }

    /// Commitments open and past their due date on `on` (valid time), by due date.
    pub fn overdue_commitments(
        &self,
        on: Timestamp,
        page: &PageRequest,
        options: &ReadOptions,
    ) -> ProjectionResult<Page<CommitmentRow>> {
        self.list(ProjectionName::Commitments, options, |model, log, at| {
            model
                .commitments
                .overdue(log, on, at, page.token.as_deref(), page.limit)
        })
    }

    /// A party's compliance score over its assessed commitments.
    pub fn compliance(&self, party: &str, options: &ReadOptions) -> ProjectionResult<Answer<ComplianceRow>> {
        let (value, at) = self.read(&[ProjectionName::Commitments], options, |model, _, at| {
            Ok(model.commitments.compliance(party, at))
        })?;
        Ok(Answer {
            value,
            based_on_position: at,
        })
    }

    /// The bilateral relation between two parties: summary and one page of the timeline.
    pub fn relation(
        &self,
        a: &str,
        b: &str,
        page: &PageRequest,
        options: &ReadOptions,
    ) -> ProjectionResult<Answer<Relation>> {
        check_pair(a, b)?;
        let (value, at) = self.read(&RELATION_MODELS, options, |model, log, at| {
            relation_page(model, log, (a, b), at, page)
        })?;
        Ok(Answer {
            value,
            based_on_position: at,
        })
    }

    /// One official with the offices held over time.
    pub fn official(
        &self,
        official_id: OfficialId,
        options: &ReadOptions,
    ) -> ProjectionResult<Answer<OfficialRow>> {
        self.answer(
            ProjectionName::Officials,
            options,
            || format!("official {official_id}"),
            |model, log, at| model.officials.get(log, official_id, at),
        )
    }

    /// Officials serving or accredited to a party.
    pub fn officials_of_party(
        &self,
        party: &str,
        page: &PageRequest,
        options: &ReadOptions,
    ) -> ProjectionResult<Page<OfficialRow>> {
        self.list(ProjectionName::Officials, options, |model, log, at| {
            model
                .officials
                .by_party(log, party, at, page.token.as_deref(), page.limit)
        })
    }

    /// Who held a post (case-insensitive) on a date (valid time).
    pub fn post_holders(
        &self,
        post: &str,
        on: Timestamp,
        page: &PageRequest,
        options: &ReadOptions,
    ) -> ProjectionResult<Page<PostHolder>> {
        self.list(ProjectionName::Officials, options, |model, log, at| {
            model
                .officials
                .post_holders(log, post, on, at, page.token.as_deref(), page.limit)
        })
    }

    /// Who an official met at held meetings (other official -> meetings).
    pub fn contacts(
        &self,
        official_id: OfficialId,
        options: &ReadOptions,
    ) -> ProjectionResult<Answer<ContactsRow>> {
        let (value, at) = self.read(&[ProjectionName::Officials], options, |model, _, at| {
            Ok(model.officials.contacts(official_id, at))
        })?;
        Ok(Answer {
            value,
            based_on_position: at,
        })
    }

    /// One party.
    pub fn party(&self, code: &str, options: &ReadOptions) -> ProjectionResult<Answer<PartyRow>> {
        self.answer(
            ProjectionName::Directory,
            options,
            || format!("party {code}"),
            |model, log, at| model.directory.party(log, code, at),
        )
    }

    /// Parties by code.
    pub fn parties(&self, page: &PageRequest, options: &ReadOptions) -> ProjectionResult<Page<PartyRow>> {
        self.list(ProjectionName::Directory, options, |model, log, at| {
            model
                .directory
                .parties(log, at, page.token.as_deref(), page.limit)
        })
    }

    /// One source.
    pub fn source(&self, source_id: SourceId, options: &ReadOptions) -> ProjectionResult<Answer<SourceRow>> {
        self.answer(
            ProjectionName::Directory,
            options,
            || format!("source {source_id}"),
            |model, log, at| model.directory.source(log, source_id, at),
        )
    }

    /// Sources by id.
    pub fn sources(&self, page: &PageRequest, options: &ReadOptions) -> ProjectionResult<Page<SourceRow>> {
        self.list(ProjectionName::Directory, options, |model, log, at| {
            model
                .directory
                .sources(log, at, page.token.as_deref(), page.limit)
        })
    }

    /// The audit trail of one entity (stream id such as `meeting-<uuid>` or `party-LBY`): its
    /// events from `from_version`, at most `limit` ([`history::MAX_HISTORY_PAGE`]), with who
    /// recorded them, when, from which sources, and later corrections and retractions. The
    /// page token is the next stream version (decimal). Latest means the directory read
    /// model's position, as for every answer; sources are described, and later corrections
    /// marked, as the directory knew them at the answer's position.
    pub fn history(
        &self,
        stream_id: &str,
        page: &PageRequest,
        options: &ReadOptions,
    ) -> ProjectionResult<Page<HistoryEntry>> {
        // A bare id is resolved (a stream-head read per kind) before the model's lock is taken.
        let stream_id = &self.stream_of(stream_id)?;
        let from_version = match page.token.as_deref() {
            None => 1,
            Some(token) => token
                .parse::<u64>()
                .map_err(|_| ProjectionError::InvalidArgument {
                    field: "page_token",
                    reason: "malformed".into(),
                })?,
        };
        let limit = if page.limit == 0 {
            store::DEFAULT_PAGE_SIZE
        } else {
            page.limit
        };
        // Sources are described, and later corrections marked, from the directory read model
        // as of the position read: as of a position, wait (within the query's deadline) until
        // the directory has got there; latest, read at the directory's position, as every
        // read-model answer does (after `min_position`), rather than wait for it to reach the
        // log's head, which under a steady writer it only ever trails.
        let at = match self.resolve(&[ProjectionName::Directory], options)? {
            Some(fixed) => fixed,
            None => self.shared.progress[ProjectionName::Directory.index()].get(),
        };
        let log = &self.shared.log;
        // The model's lock is taken per distinct source described, not across the log reads, so
        // a long history does not hold the runner (and the queries queued behind it) back.
        let describe = |citation: &SourceCitation| -> ProjectionResult<SourceRef> {
            let model = self.shared.model.read().expect("model lock");
            let row = model.directory.source(log, citation.source_id, at)?;
            Ok(SourceRef {
                citation: citation.clone(),
                url: row.as_ref().and_then(|row| row.details.url.clone()),
                title: row.as_ref().and_then(|row| row.details.title.clone()),
                publisher: row.as_ref().and_then(|row| row.details.publisher.clone()),
            })
        };
        let later_references = |after_version: u64| {
            let model = self.shared.model.read().expect("model lock");
            model.directory.back_references(stream_id, after_version, at)
        };
        let (items, next) = history::history(
            &self.shared.log,
            stream_id,
            (from_version, limit),
            at,
            &describe,
            &later_references,
        )?;
        if items.is_empty() && from_version == 1 {
            // No event of this entity at or before the position read: it does not exist (yet).
            return Err(ProjectionError::NotFound {
                what: format!("entity {stream_id}"),
                position: Some(at),
            });
        }
        Ok(Page {
            items,
            next_page_token: next.map(|version| version.to_string()),
            based_on_position: at,
        })
    }

    /// The stream of an entity named by its stream id (`party-LBY`, `meeting-<uuid>`) or by its
    /// bare id (`LBY`, a UUID). A bare UUID names the one kind of entity whose stream holds
    /// events (UUIDs are unique across kinds); a bare code names a party.
    pub fn stream_of(&self, id: &str) -> ProjectionResult<String> {
        use crate::domain::common::{
            CommitmentId, EntityId, MeetingId, OfficialId, SourceId, PARTY_STREAM_PREFIX,
        };
        let prefixes = [
            PARTY_STREAM_PREFIX,
            OfficialId::STREAM_PREFIX,
            SourceId::STREAM_PREFIX,
            MeetingId::STREAM_PREFIX,
            CommitmentId::STREAM_PREFIX,
        ];
        let is_stream_id = |id: &str| {
            prefixes
                .iter()
                .any(|prefix| id.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('-')))
        };
        if is_stream_id(id) {
            return Ok(id.to_owned());
        }
        let Ok(uuid) = uuid::Uuid::parse_str(id) else {
            return Ok(party_stream_id(id));
        };
        for prefix in &prefixes[1..] {
            let stream = format!("{prefix}-{uuid}");
            if self.shared.log.stream_version(&stream)? > 0 {
                return Ok(stream);
            }
        }
        Err(ProjectionError::NotFound {
            what: format!("entity {id}"),
            position: None,
        })
    }

    /// The history of a party (shorthand for `history("party-<code>")`).
    pub fn party_history(
        &self,
        code: &str,
        page: &PageRequest,
        options: &ReadOptions,
    ) -> ProjectionResult<Page<HistoryEntry>> {
        self.history(&party_stream_id(code), page, options)
    }
}

/// The read models a relation reads.
const RELATION_MODELS: [ProjectionName; 3] = [
    ProjectionName::Relations,
    ProjectionName::Meetings,
    ProjectionName::Commitments,
];

/// A relation needs two different parties.
fn check_pair(a: &str, b: &str) -> ProjectionResult<()> {
    if a == b {
        return Err(ProjectionError::InvalidArgument {
            field: "parties",
            reason: "a relation needs two different parties".into(),
        });
    }
    Ok(())
}

/// The relation of `a` and `b` as of `at`, one page of its timeline.
fn relation_page(
    model: &Model,
    log: &Log,
    (a, b): (&str, &str),
    at: u64,
    page: &PageRequest,
) -> ProjectionResult<Relation> {
    model.relations.relation(
        &model.meetings,
        &model.commitments,
        log,
        (a, b),
        at,
        page.token.as_deref(),
        page.limit,
    )
}

fn found<T>(row: Option<T>, what: impl FnOnce() -> String, at: u64) -> ProjectionResult<Answer<T>> {
    match row {
        Some(value) => Ok(Answer {
            value,
            based_on_position: at,
        }),
        None => Err(ProjectionError::NotFound {
            what: what(),
            position: Some(at),
        }),
    }
}

/// Once caught up, the runner lets new events gather this long after the head moves before it
/// steps, so that under load one step covers many commits instead of one. A query that waits
/// for a position the read models have not reached (`min_position`, or a history at the head)
/// cuts the pause short, so it waits for one step, not for the pause.
pub const RUNNER_COALESCE: std::time::Duration = std::time::Duration::from_millis(5);
/// The runner thread's nice value: it yields the CPU to the write path and the API.
pub const RUNNER_NICE: i32 = 10;

/// The runner thread: step until caught up, then wait for the head to move (or stop), and let
/// RUNNER_COALESCE pass so the next step covers everything that arrived meanwhile.
/// What the runner asks before each step; false stops it (the test hook [`RunnerGate`]).
type BeforeStep = Box<dyn Fn(&watch::Receiver<bool>) -> bool + Send>;

/// Test hook: a gate the runner waits at before each step (see [`Projections::open_gated`]).
/// Closed when made; [`RunnerGate::open`] lets the runner go on for good.
#[cfg(any(test, feature = "test-hooks"))]
#[derive(Debug, Clone, Default)]
pub struct RunnerGate(Arc<(Mutex<bool>, std::sync::Condvar)>);

#[cfg(any(test, feature = "test-hooks"))]
impl RunnerGate {
    /// Lets the runner go on.
    pub fn open(&self) {
        *self.0 .0.lock().expect("gate lock") = true;
        self.0 .1.notify_all();
    }

    /// Waits until the gate is open (true) or `stop` is set (false).
    fn wait(&self, stop: &watch::Receiver<bool>) -> bool {
        let mut open = self.0 .0.lock().expect("gate lock");
        while !*open {
            if *stop.borrow() {
                return false;
            }
            open = self
                .0
                 .1
                .wait_timeout(open, Duration::from_millis(20))
                .expect("gate lock")
                .0;
        }
        true
    }
}

fn follow(shared: Arc<Shared>, mut stop: watch::Receiver<bool>, before_step: BeforeStep) {
    crate::priority::lower_this_thread(RUNNER_NICE);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            return fail(
                &shared,
                runner::RunnerFailure::stopped(format!("cannot start runner runtime: {error}")),
            )
        }
    };
    let mut head = shared.log.watch_head();
    let hurry = shared.progress[0].hurry();
    let snapshot_finished = shared.engine.lock().expect("engine lock").snapshot_finished();
    loop {
        if *stop.borrow() || !before_step(&stop) {
            return;
        }
        let outcome = shared.engine.lock().expect("engine lock").step(None, WHOLE_STEP);
        let position = match outcome {
            Err(error) => return fail(&shared, runner::RunnerFailure::of(&error)),
            Ok(outcome) if outcome.applied > 0 => continue,
            Ok(outcome) => outcome.position,
        };
        let closed = runtime.block_on(async {
            tokio::select! {
                changed = async {
                    let moved = head.wait_for(|head| *head > position).await.is_err();
                    // Coalesce, unless a query waits for the read models to get further.
                    tokio::select! {
                        _ = tokio::time::sleep(RUNNER_COALESCE) => {}
                        _ = hurry.notified() => {}
                    }
                    moved
                } => changed,
                // A snapshot due while the last was written is taken by a step (of no events).
                _ = snapshot_finished.notified() => false,
                _ = stop.changed() => true,
            }
        });
        if closed {
            return;
        }
    }
}

fn fail(shared: &Shared, failure: runner::RunnerFailure) {
    *shared.failure.lock().expect("failure lock") = Some(failure);
    for progress in &shared.progress {
        progress.notify_failure();
    }
}
