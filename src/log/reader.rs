//! Reads: single records, one stream, the whole log. Every record is checked on the way out,
//! and nothing past the durable head (the last acknowledged commit) is ever returned, even
//! though sled may already hold a commit that is still being fsynced.

use uuid::Uuid;

use std::ops::ControlFlow;

use super::codec::{decode_record, split_chunk, view_record, RecordView};
use super::envelope::{AppendResult, Direction, EventFilter, Hash, ReadAllPage, RecordedEvent};
use super::error::{LogError, LogResult};
use super::keys::{self, CommandRecord, HeadMeta, StreamRun};
use super::limits::{MAX_READ_PAGE_EVENTS, MAX_SCANNED_PER_PAGE};

/// A chunk fetched from sled, split into its records.
struct Chunk {
    first_position: u64,
    bytes: sled::IVec,
    /// (offset, length) of each record in `bytes`.
    records: Vec<(usize, usize)>,
}

impl Chunk {
    fn parse(first_position: u64, bytes: sled::IVec) -> LogResult<Chunk> {
        let base = bytes.as_ptr() as usize;
        let records = split_chunk(first_position, &bytes)?
            .into_iter()
            .map(|record| (record.as_ptr() as usize - base, record.len()))
            .collect();
        Ok(Chunk {
            first_position,
            bytes,
            records,
        })
    }

    fn end(&self) -> u64 {
        self.first_position + self.records.len() as u64
    }

    fn holds(&self, position: u64) -> bool {
        (self.first_position..self.end()).contains(&position)
    }

    fn record(&self, position: u64) -> LogResult<RecordedEvent> {
        let (offset, length) = self.records[(position - self.first_position) as usize];
        decode_record(position, &self.bytes[offset..offset + length])
    }

    fn view(&self, position: u64) -> LogResult<RecordView<'_>> {
        view_record(position, self.raw(position))
    }

    /// The raw bytes of the record at `position`.
    fn raw(&self, position: u64) -> &[u8] {
        let (offset, length) = self.records[(position - self.first_position) as usize];
        &self.bytes[offset..offset + length]
    }
}

/// Random access to records that keeps the last chunk it fetched, so reading neighbouring
/// positions costs one sled lookup per chunk, not per record.
pub struct RecordCursor<'a> {
    tree: &'a sled::Tree,
    chunk: Option<Chunk>,
    /// The chunks after `chunk`, in key order (made by the first forward step past a chunk).
    following: Option<sled::Iter>,
}

impl<'a> RecordCursor<'a> {
    /// A cursor over `tree`.
    pub fn new(tree: &'a sled::Tree) -> RecordCursor<'a> {
        RecordCursor {
            tree,
            chunk: None,
            following: None,
        }
    }

    fn load(&mut self, position: u64) -> LogResult<&Chunk> {
        let cached = self.chunk.as_ref().is_some_and(|chunk| chunk.holds(position));
        let follows = self.chunk.as_ref().is_some_and(|chunk| chunk.end() == position);
        if follows {
            // Reading forwards: chunks are keyed by their first position and hold consecutive
            // positions, so the next one, if stored, is keyed by this position and is the next
            // key after the current chunk's. One forward iterator kept across chunks costs a
            // fraction of sled's reverse range scan per chunk (which was most of a replay's
            // reads; docs/benchmarks.md 000l). Any other key there is a gap: looked up below.
            let key = keys::event_key(position);
            let following = self
                .following
                .get_or_insert_with(|| self.tree.range(key..=keys::event_key(u64::MAX)));
            if let Some(entry) = following.next() {
                let (found, bytes) = entry.map_err(chunk_damage(position))?;
                if found == key {
                    self.chunk = Some(Chunk::parse(position, bytes)?);
                    return Ok(self.chunk.as_ref().expect("chunk just loaded"));
                }
            }
            self.following = None;
        }
        if !cached {
            let missing = || LogError::DataLoss {
                position,
                reason: "record is missing".into(),
            };
            let (key, bytes) = self
                .tree
                .range(keys::event_key(1)..=keys::event_key(position))
                .next_back()
                .ok_or_else(missing)?
                .map_err(chunk_damage(position))?;
            let first = keys::position_of_event_key(&key).ok_or_else(missing)?;
            let chunk = Chunk::parse(first, bytes)?;
            if !chunk.holds(position) {
                return Err(missing());
            }
            self.chunk = Some(chunk);
            self.following = None;
        }
        Ok(self.chunk.as_ref().expect("chunk just loaded"))
    }

    /// The checked record at `position`.
    pub fn read(&mut self, position: u64) -> LogResult<RecordedEvent> {
        self.load(position)?.record(position)
    }

    /// The checked record at `position`, read in place (valid until the cursor moves).
    pub fn view(&mut self, position: u64) -> LogResult<RecordView<'_>> {
        self.load(position)?.view(position)
    }

    /// The stored bytes of the record at `position` (framing checked, contents not).
    pub fn raw(&mut self, position: u64) -> LogResult<Vec<u8>> {
        Ok(self.load(position)?.raw(position).to_vec())
    }
}

/// A sled error reading the chunk that holds `position`.
fn chunk_damage(position: u64) -> impl Fn(sled::Error) -> LogError {
    move |error| {
        LogError::damage_at(error, position, || {
            format!("the chunk holding position {position}")
        })
    }
}

/// The record at `position`, checked.
pub fn read_event(tree: &sled::Tree, position: u64) -> LogResult<RecordedEvent> {
    RecordCursor::new(tree).read(position)
}

/// The head metadata, or None for a log that was never written.
pub fn head_meta(tree: &sled::Tree) -> LogResult<Option<HeadMeta>> {
    match tree.get(keys::META_HEAD_KEY)? {
        Some(bytes) => Ok(Some(keys::decode_checked(&bytes, 0, "head metadata")?)),
        None => Ok(None),
    }
}

/// sled's corruption met while reading the stream index of `stream_id`: `DataLoss` naming the
/// key range (position 0: no record is known yet).
fn index_damage(stream_id: &str) -> impl Fn(sled::Error) -> LogError + '_ {
    move |error| LogError::damage_at(error, 0, || format!("the stream index of {stream_id}"))
}

/// The last run of a stream as stored, if it has any.
pub fn last_stream_run(tree: &sled::Tree, stream_id: &str) -> LogResult<Option<StreamRun>> {
    let prefix = keys::stream_index_prefix(stream_id);
    match tree.scan_prefix(&prefix).next_back() {
        Some(entry) => {
            let (key, value) = entry.map_err(index_damage(stream_id))?;
            Ok(Some(StreamRun::decode(&key, &value, prefix.len())?))
        }
        None => Ok(None),
    }
}

/// The current version of a stream as stored (0 when it has no events).
pub fn stored_stream_version(tree: &sled::Tree, stream_id: &str) -> LogResult<u64> {
    Ok(last_stream_run(tree, stream_id)?.map_or(0, |run| run.last_version()))
}

/// The stored outcome of a command: its fingerprint and original result.
pub fn stored_command(tree: &sled::Tree, command_id: Uuid) -> LogResult<Option<(Hash, AppendResult)>> {
    let Some(bytes) = tree.get(keys::command_key(command_id))? else {
        return Ok(None);
    };
    let record: CommandRecord = keys::decode_checked(&bytes, 0, "command record")?;
    let mut cursor = RecordCursor::new(tree);
    let first = cursor.read(record.first_position)?;
    let mut event_ids = Vec::with_capacity(record.count as usize);
    event_ids.push(first.envelope().event_id);
    for offset in 1..u64::from(record.count) {
        event_ids.push(cursor.read(record.first_position + offset)?.envelope().event_id);
    }
    let envelope = first.envelope();
    let result = AppendResult::new(
        envelope.stream_id.clone(),
        record.first_position,
        envelope.stream_version,
        event_ids,
        envelope.recorded_at,
    );
    Ok(Some((record.fingerprint, result)))
}

/// Shows `visit` the checked records of one stream from version `from_version` (inclusive) in
/// `direction`, each read in place, until `limit` (capped at MAX_READ_PAGE_EVENTS) were taken
/// or `visit` answers `Break` (that event left out). Backwards from `u64::MAX` starts at the
/// end. Returns how many were taken.
pub fn scan_stream(
    tree: &sled::Tree,
    durable_head: u64,
    stream_id: &str,
    (from_version, direction): (u64, Direction),
    limit: usize,
    visit: &mut dyn FnMut(&RecordView<'_>) -> ControlFlow<()>,
) -> LogResult<usize> {
    let limit = limit.min(MAX_READ_PAGE_EVENTS);
    let mut taken = 0;
    if limit == 0 {
        return Ok(taken);
    }
    let prefix = keys::stream_index_prefix(stream_id);
    let at_version = keys::stream_index_key(stream_id, from_version);
    let mut end = prefix.clone();
    *end.last_mut().expect("prefix ends with 0x00") = 1;
    let mut cursor = RecordCursor::new(tree);
    // Shows one record; true when the page is complete.
    let mut take = |cursor: &mut RecordCursor<'_>, position: u64| -> LogResult<bool> {
        if visit(&cursor.view(position)?).is_break() {
            return Ok(true);
        }
        taken += 1;
        Ok(taken >= limit)
    };
    match direction {
        Direction::Forwards => {
            // The run holding `from_version` starts at or before it.
            let start = match tree.range(prefix.clone()..=at_version).next_back() {
                Some(entry) => entry.map_err(index_damage(stream_id))?.0.to_vec(),
                None => prefix.clone(),
            };
            'runs: for entry in tree.range(start..end) {
                let (key, value) = entry.map_err(index_damage(stream_id))?;
                let run = StreamRun::decode(&key, &value, prefix.len())?;
                for version in run.first_version.max(from_version)..=run.last_version() {
                    let position = run.position_of(version).expect("version inside run");
                    if position > durable_head {
                        break 'runs; // not acknowledged yet; nothing later is either
                    }
                    if take(&mut cursor, position)? {
                        break 'runs;
                    }
                }
            }
        }
        Direction::Backwards => {
            let mut upper = at_version;
            upper.push(0); // include a run starting exactly at `from_version`
            'back: for entry in tree.range(prefix.clone()..upper).rev() {
                let (key, value) = entry.map_err(index_damage(stream_id))?;
                let run = StreamRun::decode(&key, &value, prefix.len())?;
                for version in (run.first_version..=run.last_version().min(from_version)).rev() {
                    let position = run.position_of(version).expect("version inside run");
                    if position > durable_head {
                        continue; // not acknowledged yet; older versions are
                    }
                    if take(&mut cursor, position)? {
                        break 'back;
                    }
                }
            }
        }
    }
    Ok(taken)
}

/// Where a scan of the whole log ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanEnd {
    /// The next position to examine.
    pub next_position: u64,
    /// The durable head the scan was bounded by.
    pub head: u64,
    /// True when the scan reached the end in its direction.
    pub reached_end: bool,
}

/// One page of the whole log from `from_position` (inclusive) in `direction`: every checked
/// record that passes `filter` is shown to `visit`, read in place, until `limit` were taken (capped
/// at MAX_READ_PAGE_EVENTS), MAX_SCANNED_PER_PAGE were examined, or `visit` answers `Break`,
/// which leaves that event out and ends the page at it. Forwards, `from_position` may be
/// `durable_head + 1` (an empty, caught-up page); anything beyond is out of range. Backwards,
/// `from_position` must be at most the head; 0 reads nothing.
pub fn scan_all(
    tree: &sled::Tree,
    durable_head: u64,
    (from_position, direction): (u64, Direction),
    limit: usize,
    filter: &EventFilter,
    visit: &mut dyn FnMut(&RecordView<'_>) -> ControlFlow<()>,
) -> LogResult<ScanEnd> {
    let limit = limit.clamp(1, MAX_READ_PAGE_EVENTS);
    let beyond = match direction {
        Direction::Forwards => from_position > durable_head.saturating_add(1),
        Direction::Backwards => from_position > durable_head,
    };
    if beyond {
        return Err(LogError::OutOfRange {
            requested: from_position,
            head: durable_head,
        });
    }
    let (mut taken, mut scanned) = (0usize, 0usize);
    let mut cursor = RecordCursor::new(tree);
    let mut position = match direction {
        Direction::Forwards => from_position.max(1),
        Direction::Backwards => from_position,
    };
    let in_range = |position: u64| match direction {
        Direction::Forwards => position <= durable_head,
        Direction::Backwards => position >= 1,
    };
    while in_range(position) && taken < limit && scanned < MAX_SCANNED_PER_PAGE {
        let view = cursor.view(position)?;
        if filter.matches_ref(&view.envelope) {
            if visit(&view).is_break() {
                break;
            }
            taken += 1;
        }
        scanned += 1;
        position = match direction {
            Direction::Forwards => position + 1,
            Direction::Backwards => position - 1,
        };
    }
    Ok(ScanEnd {
        next_position: position,
        head: durable_head,
        reached_end: !in_range(position),
    })
}

/// One page of the whole log, as owned events ([`scan_all`] taking every event it is shown).
pub fn read_all(
    tree: &sled::Tree,
    durable_head: u64,
    from_position: u64,
    direction: Direction,
    limit: usize,
    filter: &EventFilter,
) -> LogResult<ReadAllPage> {
    let mut events = Vec::new();
    let end = scan_all(
        tree,
        durable_head,
        (from_position, direction),
        limit,
        filter,
        &mut |view| {
            events.push(view.to_recorded());
            ControlFlow::Continue(())
        },
    )?;
    Ok(ReadAllPage {
        events,
        next_position: end.next_position,
        head: end.head,
        reached_end: end.reached_end,
    })
}
