//! The single writer: group commit.
//!
//! One thread owns every append. It takes all requests queued while the previous commit was in
//! progress (bounded by MAX_EVENTS_PER_COMMIT and MAX_PAYLOAD_BYTES_PER_COMMIT), checks each
//! against the stream heads, builds one sled batch, applies it, flushes sled and fsyncs its data
//! file once, and only then answers every caller. A failed flush or fsync poisons the writer:
//! from then on every append fails with `LogError::Poisoned` until the log is reopened.

use std::collections::HashMap;
use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use super::clock::Clock;
use super::codec::encode_record;
use super::envelope::{AppendRequest, AppendResult, Envelope, Hash};
use super::error::{LogError, LogResult};
use super::keys::{self, CommandRecord, HeadMeta};
use super::limits::{MAX_EVENTS_PER_COMMIT, MAX_PAYLOAD_BYTES_PER_COMMIT, STREAM_HEAD_CACHE_ENTRIES};
use super::reader;

/// A unit of work for the writer: one or more append requests that succeed or fail together.
pub(crate) struct WriteOp {
    pub(crate) requests: Vec<AppendRequest>,
    pub(crate) reply: oneshot::Sender<LogResult<Vec<AppendResult>>>,
}

impl WriteOp {
    fn event_count(&self) -> usize {
        self.requests.iter().map(|request| request.events().len()).sum()
    }
    fn payload_bytes(&self) -> usize {
        self.requests.iter().map(AppendRequest::payload_bytes).sum()
    }
}

/// State shared between the writer thread and the `Log` handles.
#[derive(Default)]
pub(crate) struct Shared {
    /// Why the writer stopped accepting writes, once it has.
    pub(crate) poison: Mutex<Option<String>>,
    /// Test hook: make the next fsync fail as a disk would.
    pub(crate) fail_next_sync: AtomicBool,
}

impl Shared {
    pub(crate) fn poisoned(&self) -> Option<String> {
        self.poison.lock().expect("poison lock").clone()
    }
}

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

/// What the commit in progress has decided so far, on top of what is stored.
struct Staged {
    next_position: u64,
    chain_hash: Hash,
    stream_heads: HashMap<String, u64>,
    commands: HashMap<Uuid, (Hash, AppendResult)>,
    entries: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Staged {
    fn empty(head: &HeadMeta) -> Staged {
        Staged {
            next_position: head.position + 1,
            chain_hash: head.chain_hash,
            stream_heads: HashMap::new(),
            commands: HashMap::new(),
            entries: Vec::new(),
        }
    }

    fn fork(&self) -> Staged {
        Staged::empty(&HeadMeta {
            format_version: 0,
            position: self.next_position - 1,
            chain_hash: self.chain_hash,
            recorded_at: crate::domain::time::Timestamp::EPOCH,
        })
    }

    fn absorb(&mut self, op: Staged) {
        self.next_position = op.next_position;
        self.chain_hash = op.chain_hash;
        self.stream_heads.extend(op.stream_heads);
        self.commands.extend(op.commands);
        self.entries.extend(op.entries);
    }
}

impl Writer {
    pub(crate) fn run(mut self, mut queue: mpsc::Receiver<WriteOp>) {
        let mut carried: Option<WriteOp> = None;
        loop {
            let first = match carried.take() {
                Some(op) => op,
                None => match queue.blocking_recv() {
                    Some(op) => op,
                    None => return,
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
            self.commit_group(ops);
        }
    }

    fn commit_group(&mut self, ops: Vec<WriteOp>) {
        if let Some(cause) = self.shared.poisoned() {
            for op in ops {
                let _ = op.reply.send(Err(LogError::Poisoned { cause: cause.clone() }));
            }
            return;
        }
        let recorded_at = self.clock.now().max(self.head.recorded_at);
        let mut staged = Staged::empty(&self.head);
        let mut outcomes = Vec::with_capacity(ops.len());
        for op in ops {
            let mut op_stage = staged.fork();
            let outcome = self.stage(op.requests, &staged, &mut op_stage, recorded_at);
            if outcome.is_ok() {
                staged.absorb(op_stage);
            }
            outcomes.push((op.reply, outcome));
        }
        if !staged.entries.is_empty() {
            let new_head = HeadMeta {
                format_version: super::codec::FORMAT_VERSION,
                position: staged.next_position - 1,
                chain_hash: staged.chain_hash,
                recorded_at,
            };
            match self.write_durably(&mut staged, &new_head) {
                Ok(()) => {
                    self.head = new_head;
                    if self.stream_heads.len() + staged.stream_heads.len() > STREAM_HEAD_CACHE_ENTRIES {
                        self.stream_heads.clear();
                    }
                    self.stream_heads.extend(staged.stream_heads.drain());
                    self.head_sender.send_replace(new_head.position);
                }
                Err(error) => {
                    let cause = error.to_string();
                    *self.shared.poison.lock().expect("poison lock") = Some(cause.clone());
                    for (_, outcome) in outcomes.iter_mut() {
                        if outcome.is_ok() {
                            *outcome = Err(LogError::Poisoned { cause: cause.clone() });
                        }
                    }
                }
            }
        }
        for (reply, outcome) in outcomes {
            let _ = reply.send(outcome);
        }
    }

    fn write_durably(&mut self, staged: &mut Staged, new_head: &HeadMeta) -> LogResult<()> {
        let mut batch = sled::Batch::default();
        for (key, value) in staged.entries.drain(..) {
            batch.insert(key, value);
        }
        batch.insert(keys::META_HEAD_KEY, keys::encode_checked(new_head));
        self.tree.apply_batch(batch)?;
        self.db.flush()?;
        if self.shared.fail_next_sync.swap(false, Ordering::SeqCst) {
            return Err(LogError::Io(std::io::Error::other("injected fsync failure")));
        }
        self.data_file.sync_all()?;
        Ok(())
    }

    /// Decides the requests of one op against what is stored plus what this commit already
    /// staged. On error nothing of the op is kept.
    fn stage(
        &mut self,
        requests: Vec<AppendRequest>,
        group: &Staged,
        op: &mut Staged,
        recorded_at: crate::domain::time::Timestamp,
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
            let expected = request.expected();
            let drafts = request_into_events(request);
            let count = drafts.len() as u64;
            let mut event_ids = Vec::with_capacity(drafts.len());
            for (offset, draft) in drafts.into_iter().enumerate() {
                let position = op.next_position;
                let stream_version = current + 1 + offset as u64;
                let event_id = Uuid::now_v7();
                let envelope = Envelope {
                    position,
                    stream_id: stream_id.clone(),
                    stream_version,
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
                op.entries.push((keys::event_key(position).to_vec(), record));
                op.entries.push((
                    keys::stream_index_key(&stream_id, stream_version),
                    position.to_be_bytes().to_vec(),
                ));
                op.chain_hash = chain_hash;
                op.next_position += 1;
                event_ids.push(event_id);
            }
            let last_version = current + count;
            debug_assert!(expected.admits(current));
            op.entries.push((
                keys::stream_head_key(&stream_id),
                last_version.to_be_bytes().to_vec(),
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
            op.stream_heads.insert(stream_id, last_version);
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

fn request_into_events(request: AppendRequest) -> Vec<super::envelope::EventDraft> {
    request.into_events()
}
