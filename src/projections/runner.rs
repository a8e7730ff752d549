//! The projection runner: reads the log from each read model's checkpoint, folds every event
//! into the state of its entity, lets each projection turn (state before, state after) into
//! row versions, and writes each projection's changes with its new checkpoint in one sled batch.
//!
//! One engine drives every projection from one read of the log (events are read and decoded
//! once, not once per read model). Each projection still has its own tree and checkpoint, so a
//! projection can be dropped and rebuilt alone while the others stay where they are; the engine
//! reads from the lowest checkpoint and skips, per projection, events it already applied.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::error::{ProjectionError, ProjectionResult};
use super::store::{read_checkpoint, LatestCache, Txn};
use crate::domain::{decode_event, evolve_state, AggregateState, DomainEvent};
use crate::log::limits::MAX_READ_PAGE_EVENTS;
use crate::log::{Direction, Envelope, EventFilter, Log};

/// Most entity states the runner keeps in memory between events. On a miss the state is
/// folded again from the entity's stream in the log; past this bound the cache is cleared.
pub const STATE_CACHE_ENTRIES: usize = 100_000;
/// Events read (and applied in one batch per projection) by one runner step.
pub const EVENTS_PER_BATCH: usize = MAX_READ_PAGE_EVENTS;

/// The read models, each in its own sled tree `proj-<name>` with its own checkpoint.
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

    /// The stable name (the tree is `proj-<name>`).
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
    pub envelope: &'a Envelope,
    pub before: &'a AggregateState,
    pub after: &'a AggregateState,
}

/// A read model: turns changes into row versions in its own tree.
pub(crate) trait Projection: Send {
    /// Queues the row versions and index entries for one change.
    fn apply(&self, change: &Change<'_>, tree: &sled::Tree, txn: &mut Txn) -> ProjectionResult<()>;
}

/// How far one projection has got, observable by blocking and async waiters.
pub(crate) struct Progress {
    name: ProjectionName,
    position: Mutex<u64>,
    changed: Condvar,
    watch: watch::Sender<u64>,
    failure: Arc<Mutex<Option<String>>>,
}

impl Progress {
    fn new(name: ProjectionName, position: u64, failure: Arc<Mutex<Option<String>>>) -> Progress {
        Progress {
            name,
            position: Mutex::new(position),
            changed: Condvar::new(),
            watch: watch::channel(position).0,
            failure,
        }
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

    fn failure(&self) -> Option<String> {
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
                return Err(ProjectionError::Stopped(failure));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(ProjectionError::Unavailable {
                    projection: self.name.as_str(),
                    wanted,
                    reached: *position,
                });
            }
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
                    return Err(ProjectionError::Stopped(failure));
                }
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

/// Entity states by stream, valid for a given stream version.
#[derive(Default)]
struct StateCache {
    states: HashMap<String, Arc<AggregateState>>,
}

impl StateCache {
    /// The states before and after the event in `envelope`.
    fn advance(
        &mut self,
        log: &Log,
        envelope: &Envelope,
        event: &DomainEvent,
    ) -> ProjectionResult<(Arc<AggregateState>, Arc<AggregateState>)> {
        let wanted = envelope.stream_version - 1;
        let before = match self.states.get(&envelope.stream_id) {
            Some(state) if state.version() == wanted => state.clone(),
            _ => Arc::new(fold_stream(log, &envelope.stream_id, wanted, event)?),
        };
        let after = Arc::new(evolve_state((*before).clone(), event));
        if self.states.len() >= STATE_CACHE_ENTRIES {
            self.states.clear();
        }
        self.states.insert(envelope.stream_id.clone(), after.clone());
        Ok((before, after))
    }
}

/// Decodes the domain event of an envelope.
pub(crate) fn decode(envelope: &Envelope) -> ProjectionResult<DomainEvent> {
    decode_event(&envelope.event_type, envelope.schema_version, &envelope.payload).map_err(|error| {
        ProjectionError::DataLoss(format!("event at position {}: {error}", envelope.position))
    })
}

/// Folds a stream's events with versions 1..=`up_to` (the entity of `like`).
fn fold_stream(
    log: &Log,
    stream_id: &str,
    up_to: u64,
    like: &DomainEvent,
) -> ProjectionResult<AggregateState> {
    let mut state = AggregateState::empty_for_event(like);
    let mut next = 1;
    while next <= up_to {
        let limit = (up_to - next + 1).min(MAX_READ_PAGE_EVENTS as u64) as usize;
        let events = log.read_stream(stream_id, next, Direction::Forwards, limit)?;
        if events.is_empty() {
            return Err(ProjectionError::DataLoss(format!(
                "stream {stream_id} ends before version {up_to}"
            )));
        }
        for recorded in &events {
            state = evolve_state(state, &decode(recorded.envelope())?);
            next = recorded.envelope().stream_version + 1;
        }
    }
    Ok(state)
}

pub(crate) struct Slot {
    pub name: ProjectionName,
    pub projection: Box<dyn Projection>,
    pub tree: sled::Tree,
    pub checkpoint: u64,
    pub progress: Arc<Progress>,
    /// Latest versions of the projection's aggregate rows, as committed.
    pub latest: LatestCache,
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StepOutcome {
    /// Events read and applied (to at least one projection).
    pub applied: usize,
    /// Lowest checkpoint of the stepped projections afterwards.
    pub position: u64,
    /// The log head seen.
    pub head: u64,
}

/// The projections and the shared state cache. Owned behind a mutex by the facade; the follow
/// thread and rebuilds take turns.
pub(crate) struct Engine {
    log: Log,
    slots: Vec<Slot>,
    cache: StateCache,
}

impl Engine {
    pub(crate) fn new(
        log: Log,
        projections: Vec<(ProjectionName, Box<dyn Projection>)>,
        failure: Arc<Mutex<Option<String>>>,
    ) -> ProjectionResult<Engine> {
        let mut slots = Vec::new();
        for (name, projection) in projections {
            let tree = log.projection_tree(name.as_str())?;
            let checkpoint = read_checkpoint(&tree)?;
            slots.push(Slot {
                name,
                projection,
                tree,
                checkpoint,
                progress: Arc::new(Progress::new(name, checkpoint, failure.clone())),
                latest: LatestCache::new(),
            });
        }
        Ok(Engine {
            log,
            slots,
            cache: StateCache::default(),
        })
    }

    pub(crate) fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// Reads up to `batch` events from the lowest checkpoint of the selected projections (all
    /// when `only` is `None`) and applies them, one sled batch per projection.
    pub(crate) fn step(
        &mut self,
        only: Option<ProjectionName>,
        batch: usize,
    ) -> ProjectionResult<StepOutcome> {
        let selected: Vec<usize> = (0..self.slots.len())
            .filter(|&index| only.is_none_or(|name| self.slots[index].name == name))
            .collect();
        let lowest = selected
            .iter()
            .map(|&index| self.slots[index].checkpoint)
            .min()
            .unwrap_or(0);
        let batch = batch.clamp(1, MAX_READ_PAGE_EVENTS);
        let page = self
            .log
            .read_all(lowest + 1, Direction::Forwards, batch, &EventFilter::default())?;
        let Some(last) = page.events.last().map(|event| event.position()) else {
            return Ok(StepOutcome {
                applied: 0,
                position: lowest,
                head: page.head,
            });
        };
        // Each transaction takes its slot's cache; it is given back only once the batch is
        // committed (or nothing was written), so a failed step leaves an empty, valid cache.
        let mut txns: Vec<Txn> = selected
            .iter()
            .map(|&index| Txn::with_cache(std::mem::take(&mut self.slots[index].latest)))
            .collect();
        for recorded in &page.events {
            let envelope = recorded.envelope();
            let event = decode(envelope)?;
            let (before, after) = self.cache.advance(&self.log, envelope, &event)?;
            let change = Change {
                envelope,
                before: &before,
                after: &after,
            };
            for (txn, &index) in txns.iter_mut().zip(&selected) {
                let slot = &self.slots[index];
                if slot.checkpoint < envelope.position {
                    slot.projection.apply(&change, &slot.tree, txn)?;
                }
            }
        }
        for (txn, &index) in txns.into_iter().zip(&selected) {
            let slot = &mut self.slots[index];
            if slot.checkpoint < last {
                slot.latest = txn.commit(&slot.tree, last)?;
                slot.checkpoint = last;
                slot.progress.set(last);
            } else {
                slot.latest = txn.into_cache();
            }
        }
        Ok(StepOutcome {
            applied: page.events.len(),
            position: selected
                .iter()
                .map(|&index| self.slots[index].checkpoint)
                .min()
                .unwrap_or(0),
            head: page.head,
        })
    }

    /// Drops a projection's tree and opens an empty one at checkpoint 0 (the caller then steps
    /// it forward with `step(Some(name), ..)`). Returns the new tree.
    pub(crate) fn reset(&mut self, name: ProjectionName) -> ProjectionResult<sled::Tree> {
        let index = self
            .slots
            .iter()
            .position(|slot| slot.name == name)
            .expect("every projection has a slot");
        self.log.drop_projection_tree(name.as_str())?;
        let tree = self.log.projection_tree(name.as_str())?;
        let slot = &mut self.slots[index];
        slot.tree = tree.clone();
        slot.checkpoint = 0;
        slot.latest.clear();
        slot.progress.set(0);
        Ok(tree)
    }
}
