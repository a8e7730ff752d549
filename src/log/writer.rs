//! The single writer: group commit, pipelined over two threads.
//!
//! The *stager* thread owns every append. It takes all requests queued while earlier commits
//! were in progress (bounded by MAX_EVENTS_PER_COMMIT and MAX_PAYLOAD_BYTES_PER_COMMIT), checks
//! each against the stream heads and command ids, encodes and chains the records, packs them into
//! chunks, and applies one atomic sled batch. It then hands the commit to the *syncer* thread
//! and goes on staging the next group while the syncer flushes sled and fsyncs its data file.
//! Only after that sync does the syncer move the durable head and answer the callers of every
//! commit the sync covered. A failed flush or fsync poisons the writer: every commit not yet
//! answered fails, and so does every later append, until the log is reopened.
//!
//! Readers never look past the durable head, so a commit that sled holds but that is not yet
//! fsynced is invisible to them.

use std::collections::HashMap;
use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};

use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use super::clock::Clock;
use super::codec::encode_record;
use super::envelope::{AppendRequest, AppendResult, Envelope, Hash};
use super::error::{LogError, LogResult};
use super::keys::{self, CommandRecord, HeadMeta, StreamRun};
use super::limits::{MAX_EVENTS_PER_COMMIT, MAX_PAYLOAD_BYTES_PER_COMMIT, STREAM_HEAD_CACHE_ENTRIES};
use super::reader;
use crate::domain::time::Timestamp;

type Reply = oneshot::Sender<LogResult<Vec<AppendResult>>>;

/// A unit of work for the writer: one or more append requests that succeed or fail together.
pub(crate) struct WriteOp {
    pub(crate) requests: Vec<AppendRequest>,
    pub(crate) reply: Reply,
}

impl WriteOp {
    fn event_count(&self) -> usize {
        self.requests.iter().map(|request| request.events().len()).sum()
    }
    fn payload_bytes(&self) -> usize {
        self.requests.iter().map(AppendRequest::payload_bytes).sum()
    }
}

/// State shared between the writer threads and the `Log` handles.
#[derive(Default)]
pub(crate) struct Shared {
    /// Why the writer stopped accepting writes, once it has.
    pub(crate) poison: Mutex<Option<String>>,
    /// Test hook: make the next fsync fail as a disk would.
    pub(crate) fail_next_sync: AtomicBool,
    /// Counters for operators and benchmarks.
    pub(crate) stats: WriterStats,
}

/// Counters of the writer's work since open.
#[derive(Default)]
pub(crate) struct WriterStats {
    pub(crate) commits: std::sync::atomic::AtomicU64,
    pub(crate) syncs: std::sync::atomic::AtomicU64,
    pub(crate) events: std::sync::atomic::AtomicU64,
    pub(crate) sync_micros: std::sync::atomic::AtomicU64,
    pub(crate) apply_micros: std::sync::atomic::AtomicU64,
}

impl Shared {
    pub(crate) fn poisoned(&self) -> Option<String> {
        self.poison.lock().expect("poison lock").clone()
    }
    fn poison(&self, cause: &str) {
        self.poison
            .lock()
            .expect("poison lock")
            .get_or_insert_with(|| cause.to_owned());
    }
}

/// How many applied-but-unsynced commits may wait for the syncer.
const SYNC_QUEUE_DEPTH: usize = 2;

pub(crate) struct Writer {
    pub(crate) db: sled::Db,
    pub(crate) tree: sled::Tree,
    pub(crate) data_file: File,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) head: HeadMeta,
    pub(crate) head_sender: watch::Sender<u64>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) stream_heads: HashMap<String, u64>,
}

/// A commit applied to sled, waiting for its sync.
struct AppliedCommit {
    head: u64,
    outcomes: Vec<(Reply, LogResult<Vec<AppendResult>>)>,
}

/// What one op (or the whole group) has decided, on top of what is applied.
struct Staged {
    next_position: u64,
    chain_hash: Hash,
    stream_heads: HashMap<String, u64>,
    commands: HashMap<Uuid, (Hash, AppendResult)>,
    /// Encoded records in position order, starting at the group's first position.
    records: Vec<Vec<u8>>,
    /// Stream index and command entries.
    entries: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Staged {
    fn starting_at(next_position: u64, chain_hash: Hash) -> Staged {
        Staged {
            next_position,
            chain_hash,
            stream_heads: HashMap::new(),
            commands: HashMap::new(),
            records: Vec::new(),
            entries: Vec::new(),
        }
    }

    fn absorb(&mut self, op: Staged) {
        self.next_position = op.next_position;
        self.chain_hash = op.chain_hash;
        self.stream_heads.extend(op.stream_heads);
        self.commands.extend(op.commands);
        self.records.extend(op.records);
        self.entries.extend(op.entries);
    }
}

impl Writer {
    /// Runs the stager on this thread and the syncer on a thread of its own, until the queue
    /// closes; then finishes every queued and applied commit.
    pub(crate) fn run(mut self, mut queue: mpsc::Receiver<WriteOp>) {
        let (to_syncer, applied) = std_mpsc::sync_channel::<AppliedCommit>(SYNC_QUEUE_DEPTH);
        let syncer = Syncer {
            db: self.db.clone(),
            data_file: self.data_file.try_clone().expect("clone data file handle"),
            head_sender: self.head_sender.clone(),
            shared: self.shared.clone(),
        };
        let syncer = std::thread::Builder::new()
            .name("dipledger-log-sync".into())
            .spawn(move || syncer.run(applied))
            .expect("spawn the log sync thread");
        let mut carried: Option<WriteOp> = None;
        loop {
            let first = match carried.take() {
                Some(op) => op,
                None => match queue.blocking_recv() {
                    Some(op) => op,
                    None => break,
                },
            };
            let mut events = first.event_count();
            let mut bytes = first.payload_bytes();
            let mut ops = vec![first];
            while let Ok(op) = queue.try_recv() {
                if events + op.event_count() > MAX_EVENTS_PER_COMMIT
                    || bytes + op.payload_bytes() > MAX_PAYLOAD_BYTES_PER_COMMIT
                {
                    carried = Some(op);
                    break;
                }
                events += op.event_count();
                bytes += op.payload_bytes();
                ops.push(op);
            }
            let commit = self.apply_group(ops);
            if to_syncer.send(commit).is_err() {
                break;
            }
        }
        drop(to_syncer);
        let _ = syncer.join();
    }

    /// Stages and applies one group. Rejected ops are answered along with the commit (after
    /// its sync), so answers keep the order of the queue.
    fn apply_group(&mut self, ops: Vec<WriteOp>) -> AppliedCommit {
        if let Some(cause) = self.shared.poisoned() {
            let outcomes = ops
                .into_iter()
                .map(|op| (op.reply, Err(LogError::Poisoned { cause: cause.clone() })))
                .collect();
            return AppliedCommit {
                head: self.head.position,
                outcomes,
            };
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
            return AppliedCommit {
                head: self.head.position,
                outcomes,
            };
        }
        let new_head = HeadMeta {
            format_version: super::codec::FORMAT_VERSION,
            position: group.next_position - 1,
            chain_hash: group.chain_hash,
            recorded_at,
        };
        match self.apply(&mut group, &new_head) {
            Ok(()) => {
                self.head = new_head;
                if self.stream_heads.len() + group.stream_heads.len() > STREAM_HEAD_CACHE_ENTRIES {
                    self.stream_heads.clear();
                }
                self.stream_heads.extend(group.stream_heads.drain());
            }
            Err(error) => {
                let cause = error.to_string();
                self.shared.poison(&cause);
                for (_, outcome) in outcomes.iter_mut() {
                    if outcome.is_ok() {
                        *outcome = Err(LogError::Poisoned { cause: cause.clone() });
                    }
                }
            }
        }
        AppliedCommit {
            head: self.head.position,
            outcomes,
        }
    }

    /// Packs the group's records into chunks and applies everything in one atomic batch.
    fn apply(&mut self, group: &mut Staged, new_head: &HeadMeta) -> LogResult<()> {
        let (batch, next_position) = keys::commit_batch(
            self.head.position + 1,
            group.records.drain(..),
            group.entries.drain(..),
            new_head,
        );
        debug_assert_eq!(next_position, new_head.position + 1);
        let started = std::time::Instant::now();
        self.tree.apply_batch(batch)?;
        let stats = &self.shared.stats;
        stats
            .apply_micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        stats.commits.fetch_add(1, Ordering::Relaxed);
        stats
            .events
            .fetch_add(new_head.position - self.head.position, Ordering::Relaxed);
        Ok(())
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
            let run = StreamRun {
                first_version: current + 1,
                first_position,
                count: count as u32,
            };
            op.entries.push((
                keys::stream_index_key(&stream_id, current + 1),
                run.encode_value().to_vec(),
            ));
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
        reader::stored_command(&self.tree, command_id)
    }

    fn stream_version(&mut self, stream_id: &str, group: &Staged, op: &Staged) -> LogResult<u64> {
        if let Some(version) = op
            .stream_heads
            .get(stream_id)
            .or_else(|| group.stream_heads.get(stream_id))
        {
            return Ok(*version);
        }
        if let Some(version) = self.stream_heads.get(stream_id) {
            return Ok(*version);
        }
        let version = reader::stored_stream_version(&self.tree, stream_id)?;
        if self.stream_heads.len() >= STREAM_HEAD_CACHE_ENTRIES {
            self.stream_heads.clear();
        }
        self.stream_heads.insert(stream_id.to_owned(), version);
        Ok(version)
    }
}

/// Makes applied commits durable and answers their callers.
struct Syncer {
    db: sled::Db,
    data_file: File,
    head_sender: watch::Sender<u64>,
    shared: Arc<Shared>,
}

impl Syncer {
    fn run(self, applied: std_mpsc::Receiver<AppliedCommit>) {
        while let Ok(first) = applied.recv() {
            // Every commit applied so far is covered by one flush + fsync.
            let mut commits = vec![first];
            commits.extend(applied.try_iter());
            let head = commits.last().expect("at least one commit").head;
            let durable = match self.shared.poisoned() {
                Some(cause) => Err(LogError::Poisoned { cause }),
                None if *self.head_sender.borrow() == head => Ok(()), // only rejections
                None => self.sync(),
            };
            match durable {
                Ok(()) => {
                    self.head_sender.send_if_modified(|current| {
                        let moved = *current != head;
                        *current = head;
                        moved
                    });
                }
                Err(error) => self.shared.poison(&error.to_string()),
            }
            let poisoned = self.shared.poisoned();
            for commit in commits {
                for (reply, outcome) in commit.outcomes {
                    let outcome = match (&poisoned, outcome) {
                        (Some(cause), Ok(_)) => Err(LogError::Poisoned { cause: cause.clone() }),
                        (_, outcome) => outcome,
                    };
                    let _ = reply.send(outcome);
                }
            }
        }
    }

    fn sync(&self) -> LogResult<()> {
        let started = std::time::Instant::now();
        self.db.flush()?;
        if self.shared.fail_next_sync.swap(false, Ordering::SeqCst) {
            return Err(LogError::Io(std::io::Error::other("injected fsync failure")));
        }
        self.data_file.sync_all()?;
        let stats = &self.shared.stats;
        stats
            .sync_micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        stats.syncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
