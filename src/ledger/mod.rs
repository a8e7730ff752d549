//! The write path: a command becomes events in the log.
//!
//! For each command the ledger (1) checks the command's own id without any state (a malformed
//! party code is reported as the command's `code`, before any lookup), (2) answers a retried
//! `command_id` with its original result, (3) refuses a past fact's time later than the clock
//! plus the future allowance (every command records something that has happened: a meeting
//! held, a proposal made, a date announced; only windows and deadlines may lie ahead), (4)
//! checks that every entity the command names exists, (5) loads the entity's state by folding
//! its stream (through a bounded cache that is checked against the stream's current version, so
//! it is never stale), (6) asks the pure domain to decide, and (7) appends the
//! events with `Exact(version it decided on)`. A conflict with a concurrent writer is returned
//! to the client when it gave an expected version, and otherwise retried up to
//! MAX_CONFLICT_RETRIES times. A batch of commands is decided in order and committed as one
//! log transaction: all or none.
//!
//! A single command is decided on the calling task (its few sled reads are nearly always served
//! from sled's cache; the hop to the blocking pool cost more than the reads); a batch, up to
//! MAX_COMMANDS_PER_BATCH commands, is decided on tokio's blocking pool. Appends go through the
//! log's group commit.

mod error;
mod state;

use std::sync::Arc;

use sha2::{Digest, Sha256};
use uuid::Uuid;

pub use error::LedgerError;

use crate::domain::{decide_command, evolve_state, AggregateState, DomainCommand, Rejection};
use crate::log::{AppendRequest, AppendResult, EventDraft, ExpectedVersion, Hash, Log, LogError};
use crate::time::Timestamp;
use state::StateCache;

/// How often a command without an expected version is re-decided after losing a race.
pub const MAX_CONFLICT_RETRIES: usize = 5;
/// Most commands in one batch (one log transaction).
pub const MAX_COMMANDS_PER_BATCH: usize = crate::log::limits::MAX_REQUESTS_PER_TRANSACTION;
/// How far past the server's clock a command's valid time may lie by default: one day, for
/// reports written in time zones ahead of the server's.
pub const DEFAULT_FUTURE_ALLOWANCE: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);
/// The longest future allowance a server accepts (a week; beyond that the check means nothing).
pub const MAX_FUTURE_ALLOWANCE: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 60 * 60);
/// Most entity states the ledger keeps folded in memory.
pub const STATE_CACHE_ENTRIES: usize = 10_000;
/// Most stream ids the ledger remembers as existing (a stream, once written, exists forever:
/// nothing is deleted), so reference checks skip the stream index. Cleared when full.
pub const KNOWN_STREAMS_ENTRIES: usize = 100_000;
/// Commands to the same entity are serialised in process by one of this many locks (chosen by a
/// hash of the stream id), so they queue instead of racing on `Exact(version)`; conflicts then
/// only come from elsewhere (another process writing to the same data directory cannot happen
/// while sled holds its lock, so in practice only through the retry path's tests).
pub const ENTITY_LOCK_STRIPES: usize = 256;

/// A command with what the ledger needs around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandEnvelope {
    /// Idempotency key chosen by the client: a retry with the same id and command returns the
    /// original result.
    pub command_id: Uuid,
    /// The entity version the client saw; a mismatch is a conflict.
    pub expected_version: Option<u64>,
    /// The command itself.
    pub command: DomainCommand,
    /// The authenticated principal.
    pub recorded_by: String,
    /// Optional correlation id, stored on every event.
    pub correlation_id: Option<Uuid>,
    /// Optional causation id, stored on every event.
    pub causation_id: Option<Uuid>,
}

impl CommandEnvelope {
    /// A command from `recorded_by` with no expected version or correlation.
    pub fn new(command_id: Uuid, command: DomainCommand, recorded_by: impl Into<String>) -> CommandEnvelope {
        CommandEnvelope {
            command_id,
            expected_version: None,
            command,
            recorded_by: recorded_by.into(),
            correlation_id: None,
            causation_id: None,
        }
    }

    /// SHA-256 of everything the client sent: what a retry must repeat exactly.
    pub fn fingerprint(&self) -> Hash {
        let content = (
            &self.command,
            self.expected_version,
            &self.recorded_by,
            self.correlation_id,
            self.causation_id,
        );
        Sha256::digest(crate::encoding::encode(&content)).into()
    }
}

/// What a recorded command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutcome {
    stream_id: String,
    stream_version: u64,
    positions: Vec<u64>,
    event_ids: Vec<Uuid>,
    recorded_at: Option<Timestamp>,
}

impl CommandOutcome {
    fn from_append(result: &AppendResult) -> CommandOutcome {
        CommandOutcome {
            stream_id: result.stream_id().to_owned(),
            stream_version: result.last_version(),
            positions: (result.first_position()..=result.last_position()).collect(),
            event_ids: result.event_ids().to_vec(),
            recorded_at: Some(result.recorded_at()),
        }
    }

    fn unchanged(stream_id: String, stream_version: u64) -> CommandOutcome {
        CommandOutcome {
            stream_id,
            stream_version,
            positions: Vec::new(),
            event_ids: Vec::new(),
            recorded_at: None,
        }
    }

    /// The entity's stream (`meeting-<uuid>`...).
    pub fn stream_id(&self) -> &str {
        &self.stream_id
    }
    /// The entity's version after the command.
    pub fn stream_version(&self) -> u64 {
        self.stream_version
    }
    /// Log positions of the recorded events (empty when the command changed nothing).
    pub fn positions(&self) -> &[u64] {
        &self.positions
    }
    /// Ids of the recorded events.
    pub fn event_ids(&self) -> &[Uuid] {
        &self.event_ids
    }
    /// Transaction time of the commit (None when nothing was recorded).
    pub fn recorded_at(&self) -> Option<Timestamp> {
        self.recorded_at
    }
    /// The last position written, for read-your-writes (`min_position`).
    pub fn last_position(&self) -> Option<u64> {
        self.positions.last().copied()
    }
}

/// The write path. Cheap to clone.
#[derive(Clone)]
pub struct Ledger {
    inner: Arc<Inner>,
}

struct Inner {
    log: Log,
    /// How often a command without an expected version is re-decided after losing a race.
    conflict_retries: usize,
    /// Commands re-decided after losing a race, since this ledger was made.
    conflicts_retried: std::sync::atomic::AtomicU64,
    states: StateCache,
    /// Streams known to exist (see KNOWN_STREAMS_ENTRIES).
    known_streams: std::sync::Mutex<std::collections::HashSet<String>>,
    locks: Vec<tokio::sync::Mutex<()>>,
    /// How far past the clock a valid time may lie, in microseconds.
    future_allowance_micros: std::sync::atomic::AtomicI64,
    /// Test hook: run once between a command's decision and its append (see `before_next_append`).
    #[cfg(any(test, feature = "test-hooks"))]
    before_append: std::sync::Mutex<Option<BeforeAppend>>,
}

/// A test hook's work, run between a decision and its append.
#[cfg(any(test, feature = "test-hooks"))]
type BeforeAppend =
    Box<dyn FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send>;

impl Inner {
    fn stripe(stream_id: &str) -> usize {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        (BuildHasherDefault::<DefaultHasher>::default().hash_one(stream_id) % ENTITY_LOCK_STRIPES as u64)
            as usize
    }

    /// Locks the stripes of every stream in `envelopes`, in stripe order (no deadlock).
    async fn lock_entities(&self, envelopes: &[CommandEnvelope]) -> Vec<tokio::sync::MutexGuard<'_, ()>> {
        let mut stripes: Vec<usize> = envelopes
            .iter()
            .map(|e| Inner::stripe(&e.command.stream_id()))
            .collect();
        stripes.sort_unstable();
        stripes.dedup();
        let mut guards = Vec::with_capacity(stripes.len());
        for stripe in stripes {
            guards.push(self.locks[stripe].lock().await);
        }
        guards
    }
}

/// A command decided against the state it was decided on.
struct Decided {
    request: Option<AppendRequest>,
    replayed: Option<CommandOutcome>,
    stream_id: String,
    version: u64,
    event_count: usize,
}

/// The decisions of a command sequence and the entity states they lead to (the state after the
/// last command on each entity), to cache once the append succeeds.
struct Decisions {
    decided: Vec<Decided>,
    states: Vec<(String, AggregateState)>,
}

impl Ledger {
    /// A ledger writing to `log`.
    pub fn new(log: Log) -> Ledger {
        Ledger::with_conflict_retries(log, MAX_CONFLICT_RETRIES)
    }

    /// A ledger that re-decides a command without an expected version at most `retries` times
    /// after losing a race on its entity (then `Contended`). Races happen only between ledgers
    /// on one log: within one ledger, commands to an entity queue on its lock stripe.
    pub fn with_conflict_retries(log: Log, retries: usize) -> Ledger {
        let locks = (0..ENTITY_LOCK_STRIPES)
            .map(|_| tokio::sync::Mutex::new(()))
            .collect();
        Ledger {
            inner: Arc::new(Inner {
                log,
                conflict_retries: retries,
                conflicts_retried: Default::default(),
                states: StateCache::new(STATE_CACHE_ENTRIES),
                known_streams: Default::default(),
                locks,
                future_allowance_micros: std::sync::atomic::AtomicI64::new(
                    DEFAULT_FUTURE_ALLOWANCE.as_micros() as i64,
                ),
                #[cfg(any(test, feature = "test-hooks"))]
                before_append: std::sync::Mutex::new(None),
            }),
        }
    }

    /// Sets how far past the log's clock a command's valid time may lie (default
    /// [`DEFAULT_FUTURE_ALLOWANCE`], at most [`MAX_FUTURE_ALLOWANCE`]; larger is clamped).
    pub fn set_future_allowance(&self, allowance: std::time::Duration) {
        let micros = allowance.min(MAX_FUTURE_ALLOWANCE).as_micros() as i64;
        self.inner
            .future_allowance_micros
            .store(micros, std::sync::atomic::Ordering::Relaxed);
    }

    /// Refuses a command whose valid time, or any other time of a past fact it gives (the end
    /// of a held meeting or of a tenure: [`DomainCommand::past_fact_times`]), lies further ahead
    /// of the clock than the allowance. Every such field is named.
    fn check_not_in_future(&self, command: &DomainCommand) -> Result<(), LedgerError> {
        let allowance = self
            .inner
            .future_allowance_micros
            .load(std::sync::atomic::Ordering::Relaxed);
        let now = self.inner.log.now();
        let latest = Timestamp::from_unix_micros(now.unix_micros().saturating_add(allowance));
        let allowance_text = if allowance % 3_600_000_000 == 0 {
            format!("{} h", allowance / 3_600_000_000)
        } else {
            format!("{} s", allowance / 1_000_000)
        };
        let violations: Vec<crate::domain::FieldViolation> = command
            .past_fact_times()
            .into_iter()
            .filter(|(_, at)| *at > latest)
            .map(|(field, at)| crate::domain::FieldViolation {
                field: field.to_owned(),
                description: format!(
                    "{} is in the future: what is recorded has happened, so its time may be at most {allowance_text} past the server's clock ({}); a planned date belongs in a meeting's window, a commitment's due date or an office term's end",
                    at.to_rfc3339(),
                    now.to_rfc3339()
                ),
            })
            .collect();
        if violations.is_empty() {
            return Ok(());
        }
        Err(LedgerError::Rejected(Rejection::Invalid(violations)))
    }

    /// Commands re-decided after losing a race, since this ledger was made.
    pub fn conflicts_retried(&self) -> u64 {
        self.inner
            .conflicts_retried
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Test hook: the next single command this ledger decides runs `work` after its decision and
    /// before its append, once (a race made on purpose: `work` can move the entity on).
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn before_next_append<F>(&self, work: impl FnOnce() -> F + Send + 'static)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let hook: BeforeAppend = Box::new(move || Box::pin(work()));
        *self.inner.before_append.lock().expect("hook lock") = Some(hook);
    }

    /// Runs the test hook set by `before_next_append`, if any.
    async fn run_before_append(&self) {
        #[cfg(any(test, feature = "test-hooks"))]
        {
            let hook = self.inner.before_append.lock().expect("hook lock").take();
            if let Some(hook) = hook {
                hook().await;
            }
        }
    }

    /// The log written to.
    pub fn log(&self) -> &Log {
        &self.inner.log
    }

    /// Records one command.
    pub async fn handle(&self, envelope: CommandEnvelope) -> Result<CommandOutcome, LedgerError> {
        let _entity = self.inner.lock_entities(std::slice::from_ref(&envelope)).await;
        let mut attempt = 0;
        loop {
            attempt += 1;
            // Decided on this task, not the blocking pool: one command reads a handful of sled
            // keys, nearly always cached, and the hop to the pool and back cost two context
            // switches per command (7% of the server's CPU under W2, 15% of its throughput).
            let Decisions { mut decided, states } = self.decide_all(std::slice::from_ref(&envelope))?;
            let decided = decided.pop().expect("one decision");
            let expected = [(decided.version, decided.event_count)];
            let Some(request) = decided.request else {
                // Nothing to append: the state is unchanged; back into the cache.
                for (stream_id, state) in states {
                    self.inner.states.put(stream_id, state);
                }
                return Ok(decided
                    .replayed
                    .unwrap_or_else(|| CommandOutcome::unchanged(decided.stream_id, decided.version)));
            };
            self.run_before_append().await;
            match self.inner.log.append(request).await {
                Ok(result) => {
                    self.cache_if_as_decided(&expected, std::slice::from_ref(&result), states);
                    return Ok(CommandOutcome::from_append(&result));
                }
                Err(LogError::WrongExpectedVersion {
                    stream_id, current, ..
                }) => {
                    self.inner.states.forget(&stream_id);
                    if let Some(expected) = envelope.expected_version {
                        return Err(LedgerError::WrongExpectedVersion {
                            stream_id,
                            expected,
                            current,
                        });
                    }
                    if attempt > self.inner.conflict_retries {
                        return Err(LedgerError::Contended {
                            stream_id,
                            attempts: attempt,
                        });
                    }
                    self.inner
                        .conflicts_retried
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Err(LogError::CommandIdReused { command_id }) => {
                    return Err(LedgerError::CommandIdReused { command_id })
                }
                Err(other) => return Err(other.into()),
            }
        }
    }

    /// Records several commands atomically (all or none) in one log commit, deciding each
    /// against the state left by the ones before it. One outcome per command, in order.
    pub async fn handle_batch(
        &self,
        envelopes: Vec<CommandEnvelope>,
    ) -> Result<Vec<CommandOutcome>, LedgerError> {
        if envelopes.is_empty() {
            return Err(LedgerError::InvalidBatch {
                reason: "a batch needs at least one command".into(),
            });
        }
        if envelopes.len() > MAX_COMMANDS_PER_BATCH {
            return Err(LedgerError::InvalidBatch {
                reason: format!(
                    "{} commands, over the limit of {MAX_COMMANDS_PER_BATCH}",
                    envelopes.len()
                ),
            });
        }
        let mut ids = std::collections::HashSet::new();
        if let Some(repeated) = envelopes.iter().find(|envelope| !ids.insert(envelope.command_id)) {
            return Err(LedgerError::InvalidBatch {
                reason: format!("command id {} appears twice", repeated.command_id),
            });
        }
        let any_expected = envelopes
            .iter()
            .any(|envelope| envelope.expected_version.is_some());
        let mut attempt = 0;
        loop {
            attempt += 1;
            let Decisions {
                decided: mut decisions,
                states,
            } = self.decide_blocking(envelopes.clone()).await?;
            // Which decisions append (their requests move into the transaction).
            let appends: Vec<bool> = decisions.iter().map(|d| d.request.is_some()).collect();
            let requests: Vec<AppendRequest> =
                decisions.iter_mut().filter_map(|d| d.request.take()).collect();
            let results = if requests.is_empty() {
                Vec::new()
            } else {
                match self.inner.log.append_transaction(requests).await {
                    Ok(results) => results,
                    Err(LogError::WrongExpectedVersion {
                        stream_id, current, ..
                    }) => {
                        self.inner.states.forget(&stream_id);
                        if any_expected || attempt > self.inner.conflict_retries {
                            let expected = envelopes
                                .iter()
                                .find(|e| e.command.stream_id() == stream_id)
                                .and_then(|e| e.expected_version);
                            return Err(match expected {
                                Some(expected) => LedgerError::WrongExpectedVersion {
                                    stream_id,
                                    expected,
                                    current,
                                },
                                None => LedgerError::Contended {
                                    stream_id,
                                    attempts: attempt,
                                },
                            });
                        }
                        self.inner
                            .conflicts_retried
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        continue;
                    }
                    Err(LogError::CommandIdReused { command_id }) => {
                        return Err(LedgerError::CommandIdReused { command_id })
                    }
                    Err(other) => return Err(other.into()),
                }
            };
            let expected: Vec<(u64, usize)> = decisions
                .iter()
                .zip(&appends)
                .filter(|(_, appends)| **appends)
                .map(|(d, _)| (d.version, d.event_count))
                .collect();
            self.cache_if_as_decided(&expected, &results, states);
            let mut results = results.into_iter();
            let mut outcomes = Vec::with_capacity(decisions.len());
            for (decided, appends) in decisions.into_iter().zip(appends) {
                let outcome = match (appends, decided.replayed) {
                    (true, _) => {
                        CommandOutcome::from_append(&results.next().expect("one result per request"))
                    }
                    (false, Some(replayed)) => replayed,
                    (false, None) => CommandOutcome::unchanged(decided.stream_id, decided.version),
                };
                outcomes.push(outcome);
            }
            return Ok(outcomes);
        }
    }

    /// After a successful append: cache the states the commands led to, but only if the log
    /// appended exactly what was decided on those versions (a retry answered with an older
    /// command's result tells nothing about the state); otherwise forget them.
    /// `expected` holds, per appended request, the version it was decided on and its events.
    fn cache_if_as_decided(
        &self,
        expected: &[(u64, usize)],
        results: &[AppendResult],
        states: Vec<(String, AggregateState)>,
    ) {
        let as_decided = expected.len() == results.len()
            && expected.iter().zip(results).all(|((version, count), r)| {
                r.first_version() == version + 1 && r.event_ids().len() == *count
            });
        for (stream_id, state) in states {
            if as_decided {
                self.inner.states.put(stream_id, state);
            } else {
                self.inner.states.forget(&stream_id);
            }
        }
    }

    /// Decides a sequence of commands on the blocking pool (it reads sled).
    async fn decide_blocking(&self, envelopes: Vec<CommandEnvelope>) -> Result<Decisions, LedgerError> {
        let ledger = self.clone();
        tokio::task::spawn_blocking(move || ledger.decide_all(&envelopes))
            .await
            .map_err(|error| LedgerError::WorkerLost(error.to_string()))?
    }

    /// Whether a stream has a durable event: from memory once seen, else from the stream index.
    fn stream_exists(&self, stream_id: &str) -> Result<bool, LedgerError> {
        if self
            .inner
            .known_streams
            .lock()
            .expect("known streams")
            .contains(stream_id)
        {
            return Ok(true);
        }
        let exists = match self.inner.log.stream_version(stream_id) {
            Ok(version) => version > 0,
            // A name no stream can have (`party-F RA`): nothing by that name exists. The caller
            // then reports the malformed field of the command, not the log's `stream_id`.
            Err(LogError::Invalid { .. }) => false,
            Err(other) => return Err(other.into()),
        };
        if exists {
            let mut known = self.inner.known_streams.lock().expect("known streams");
            if known.len() >= KNOWN_STREAMS_ENTRIES {
                known.clear();
            }
            known.insert(stream_id.to_owned());
        }
        Ok(exists)
    }

    fn decide_all(&self, envelopes: &[CommandEnvelope]) -> Result<Decisions, LedgerError> {
        let log = &self.inner.log;
        // States touched earlier in this batch, so later commands see their effects.
        let mut local: Vec<(String, AggregateState)> = Vec::new();
        let mut decisions = Vec::with_capacity(envelopes.len());
        for envelope in envelopes {
            // The command's own id first, before any lookup (its stream id is made from it).
            if let Err(violation) = envelope.command.check_own_id() {
                return Err(malformed_own_id(&envelope.command, violation));
            }
            let fingerprint = envelope.fingerprint();
            let stream_id = envelope.command.stream_id();
            if let Some((stored, result)) = log.find_command(envelope.command_id)? {
                if stored != fingerprint {
                    return Err(LedgerError::CommandIdReused {
                        command_id: envelope.command_id,
                    });
                }
                decisions.push(Decided {
                    request: None,
                    replayed: Some(CommandOutcome::from_append(&result)),
                    stream_id,
                    version: result.last_version(),
                    event_count: 0,
                });
                continue;
            }
            self.check_not_in_future(&envelope.command)?;
            for reference in envelope.command.references() {
                let referenced = reference.stream_id();
                let exists_in_batch = local
                    .iter()
                    .any(|(id, state)| *id == referenced && state.exists());
                if !exists_in_batch && !self.stream_exists(&referenced)? {
                    return Err(missing_reference(&envelope.command, referenced));
                }
            }
            let (state, loaded) = match local.iter().position(|(id, _)| *id == stream_id) {
                Some(index) => (local.swap_remove(index).1, false),
                None => {
                    let empty = AggregateState::empty_for(&envelope.command);
                    (self.inner.states.load(log, &stream_id, empty)?, true)
                }
            };
            // A state loaded for this command was taken out of the cache: a command that ends
            // here puts it back unchanged, so the next one does not fold the stream again.
            let give_back = |state: AggregateState| {
                if loaded {
                    self.inner.states.put(stream_id.clone(), state);
                }
            };
            let version = state.version();
            if let Some(expected) = envelope.expected_version {
                if expected != version {
                    give_back(state);
                    return Err(LedgerError::WrongExpectedVersion {
                        stream_id,
                        expected,
                        current: version,
                    });
                }
            }
            let events = match decide_command(&state, &envelope.command) {
                Ok(events) => events,
                Err(rejection) => {
                    give_back(state);
                    return Err(LedgerError::Rejected(rejection));
                }
            };
            let request = (!events.is_empty()).then(|| {
                let drafts = events
                    .iter()
                    .map(|event| EventDraft {
                        event_type: event.event_type().to_owned(),
                        schema_version: event.schema_version(),
                        occurred_at: envelope.command.occurred_at(),
                        tags: event.tags(),
                        payload: event.encode_payload(),
                    })
                    .collect();
                AppendRequest::new(
                    envelope.command_id,
                    stream_id.clone(),
                    ExpectedVersion::Exact(version),
                    envelope.recorded_by.clone(),
                    drafts,
                )
                .with_correlation(envelope.correlation_id, envelope.causation_id)
                .with_fingerprint(fingerprint)
            });
            let next = events.iter().fold(state, evolve_state);
            local.push((stream_id.clone(), next));
            decisions.push(Decided {
                request,
                replayed: None,
                stream_id,
                version,
                event_count: events.len(),
            });
        }
        Ok(Decisions {
            decided: decisions,
            states: local,
        })
    }
}

/// The answer to a command whose own id is malformed: every field violation of the command
/// (a decide against the empty state, which needs no lookup), so the client learns of all its
/// mistakes at once; at least the id's own.
fn malformed_own_id(command: &DomainCommand, violation: crate::domain::FieldViolation) -> LedgerError {
    match decide_command(&AggregateState::empty_for(command), command) {
        Err(rejection @ Rejection::Invalid(_)) => LedgerError::Rejected(rejection),
        _ => LedgerError::Rejected(Rejection::Invalid(vec![violation])),
    }
}

/// The answer to a command that names a missing entity. Malformed input is reported as such
/// first: a command citing nine unregistered sources is over the citation limit, not missing a
/// source. The field checks (a decide against the empty state) run only here, on the error
/// path; a command whose references all exist has them checked once, by its own decide.
fn missing_reference(command: &DomainCommand, stream_id: String) -> LedgerError {
    match decide_command(&AggregateState::empty_for(command), command) {
        Err(rejection @ Rejection::Invalid(_)) => LedgerError::Rejected(rejection),
        _ => LedgerError::ReferenceNotFound { stream_id },
    }
}
