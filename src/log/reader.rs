//! Reads: single records, one stream, the whole log. Every record is checked on the way out,
//! and nothing past the durable head (the last acknowledged commit) is ever returned, even
//! though sled may already hold a commit that is still being fsynced.

use uuid::Uuid;

use std::ops::ControlFlow;

use super::codec::{decode_record, empty_chunk, framed_len, view_record, RecordLocation, RecordView};
use super::envelope::{AppendResult, Direction, EventFilter, Hash, ReadAllPage, RecordedEvent};
use super::error::{LogError, LogResult};
use super::keys::{self, CommandRecord, HeadMeta, StreamRun};
use super::limits::{MAX_READ_PAGE_EVENTS, MAX_SCANNED_PER_PAGE};

/// A chunk fetched from sled, its records found by walking their framing only as far as a read
/// needs (a read of one record near a chunk's start does not touch the rest of it: under list
/// queries that walk was a sixth of the time, docs/benchmarks.md 000o).
struct Chunk {
    first_position: u64,
    bytes: sled::IVec,
    /// (offset, length) of the records found so far, in position order.
    records: Vec<(usize, usize)>,
    /// Where the walk stopped: the offset after the last record found.
    walked: usize,
}

impl Chunk {
    fn new(first_position: u64, bytes: sled::IVec) -> LogResult<Chunk> {
        if bytes.is_empty() {
            return Err(empty_chunk(first_position));
        }
        Ok(Chunk {
            first_position,
            bytes,
            records: Vec::new(),
            walked: 0,
        })
    }

    /// Where the record at `position` is in `bytes`, if the chunk holds it.
    fn find(&mut self, position: u64) -> LogResult<Option<(usize, usize)>> {
        let Some(index) = position.checked_sub(self.first_position) else {
            return Ok(None);
        };
        while (self.records.len() as u64) <= index && self.walked < self.bytes.len() {
            let at = self.first_position + self.records.len() as u64;
            let length = framed_len(at, &self.bytes[self.walked..])?;
            self.records.push((self.walked, length));
            self.walked += length;
        }
        Ok(usize::try_from(index)
            .ok()
            .and_then(|index| self.records.get(index).copied()))
    }

    /// The position after the chunk's last record (walks the rest of it).
    fn end(&mut self) -> LogResult<u64> {
        self.find(u64::MAX)?;
        Ok(self.first_position + self.records.len() as u64)
    }

    fn slice(&self, (offset, length): (usize, usize)) -> &[u8] {
        &self.bytes[offset..offset + length]
    }

    /// The checked record at `position`, found at `found`, with its location.
    fn view(&self, position: u64, found: (usize, usize)) -> LogResult<RecordView<'_>> {
        let mut view = view_record(position, self.slice(found))?;
        view.location = Some(RecordLocation {
            chunk_start: self.first_position,
            offset: u32::try_from(found.0).expect("a chunk is far smaller than 4 GiB"),
        });
        Ok(view)
    }
}

/// Bytes a forward read takes from one sled iterator before it makes a new one. sled's cache
/// learns of page accesses in batches of 64 per shard (256 shards, below), and an iterator
/// touches each leaf once: a replay of the whole log through one iterator kept every leaf it
/// read, ~290 MB at 1,000,000 events whatever the cache's size (docs/benchmarks.md 000q). A new
/// iterator descends from the root, an access counted for the leaf it lands in, so pages read
/// and not yet counted stay below ~256 x 64 x (this + one chunk): ~380 MiB with chunks of
/// MAX_CHUNK_BYTES (only records over it, up to 80 KiB each, raise it). The descent (~1-2 µs)
/// is paid once per this many bytes.
pub(crate) const SCAN_RECOUNT_BYTES: usize = 8 * 1024;
/// sled 0.34.7's LRU: its shards, and the accesses a shard queues before it looks at them.
const SLED_LRU_SHARDS: usize = 256;
const SLED_LRU_QUEUED_ACCESSES: usize = 64;
/// The bound said above (and in docs/operations.md) holds for these constants.
const _: () = assert!(
    SLED_LRU_SHARDS * SLED_LRU_QUEUED_ACCESSES * (SCAN_RECOUNT_BYTES + super::codec::MAX_CHUNK_BYTES)
        <= 384 * 1024 * 1024
);

/// Random access to records that keeps the last chunk it fetched, so reading neighbouring
/// positions costs one sled lookup per chunk, not per record.
pub struct RecordCursor<'a> {
    tree: &'a sled::Tree,
    chunk: Option<Chunk>,
    /// The chunks after `chunk`, in key order (made by the first forward step past a chunk).
    following: Option<sled::Iter>,
    /// Bytes taken from `following` since it was made (see SCAN_RECOUNT_BYTES).
    followed_bytes: usize,
}

impl<'a> RecordCursor<'a> {
    /// A cursor over `tree`.
    pub fn new(tree: &'a sled::Tree) -> RecordCursor<'a> {
        RecordCursor {
            tree,
            chunk: None,
            following: None,
            followed_bytes: 0,
        }
    }

    /// The chunk holding `position` and where the record is in it.
    fn load(&mut self, position: u64) -> LogResult<(&Chunk, (usize, usize))> {
        let mut follows = false;
        if let Some(chunk) = self.chunk.as_mut() {
            if let Some(found) = chunk.find(position)? {
                return Ok((self.chunk.as_ref().expect("chunk kept"), found));
            }
            follows = chunk.end()? == position;
        }
        if follows {
            // Reading forwards: chunks are keyed by their first position and hold consecutive
            // positions, so the next one, if stored, is keyed by this position and is the next
            // key after the current chunk's. One forward iterator kept across chunks costs a
            // fraction of sled's reverse range scan per chunk (which was most of a replay's
            // reads; docs/benchmarks.md 000l). Any other key there is a gap: looked up below.
            // Made afresh after SCAN_RECOUNT_BYTES, so sled's cache sees the leaves read.
            if self.followed_bytes >= SCAN_RECOUNT_BYTES {
                self.following = None;
            }
            let key = keys::event_key(position);
            let following = self.following.get_or_insert_with(|| {
                self.followed_bytes = 0;
                self.tree.range(key..=keys::event_key(u64::MAX))
            });
            if let Some(entry) = following.next() {
                let (found, bytes) = entry.map_err(chunk_damage(position))?;
                self.followed_bytes += bytes.len();
                if found == key {
                    return self.keep(Chunk::new(position, bytes)?, position);
                }
            }
            self.following = None;
        }
        let (key, bytes) = self
            .tree
            .range(keys::event_key(1)..=keys::event_key(position))
            .next_back()
            .ok_or_else(|| missing_record(position))?
            .map_err(chunk_damage(position))?;
        let first = keys::position_of_event_key(&key).ok_or_else(|| missing_record(position))?;
        self.following = None;
        self.keep(Chunk::new(first, bytes)?, position)
    }

    /// Keeps `chunk` as the cursor's chunk; where the record at `position` is in it.
    fn keep(&mut self, mut chunk: Chunk, position: u64) -> LogResult<(&Chunk, (usize, usize))> {
        let found = chunk.find(position)?.ok_or_else(|| missing_record(position))?;
        Ok((self.chunk.insert(chunk), found))
    }

    /// The checked record at `position`.
    pub fn read(&mut self, position: u64) -> LogResult<RecordedEvent> {
        let (chunk, found) = self.load(position)?;
        decode_record(position, chunk.slice(found))
    }

    /// The checked record at `position`, read in place (valid until the cursor moves).
    pub fn view(&mut self, position: u64) -> LogResult<RecordView<'_>> {
        let (chunk, found) = self.load(position)?;
        chunk.view(position, found)
    }

    /// Shows `visit` the checked record at `position`, fetched at `location` (one exact sled
    /// lookup, or none when the cursor holds that chunk); by its position when the record is
    /// not there (see [`RecordLocation`]).
    pub fn visit_at<R>(
        &mut self,
        position: u64,
        location: RecordLocation,
        visit: &mut dyn FnMut(&RecordView<'_>) -> R,
    ) -> LogResult<R> {
        if let Some(found) = self.located(position, location)? {
            let chunk = self.chunk.as_ref().expect("the located chunk is kept");
            if let Ok(view) = chunk.view(position, found) {
                return Ok(visit(&view));
            }
        }
        Ok(visit(&self.view(position)?))
    }

    /// Keeps the chunk `location` names; where the record is in it, if its framing is there.
    fn located(&mut self, position: u64, location: RecordLocation) -> LogResult<Option<(usize, usize)>> {
        let held = self
            .chunk
            .as_ref()
            .is_some_and(|chunk| chunk.first_position == location.chunk_start);
        if !held {
            let key = keys::event_key(location.chunk_start);
            let Some(bytes) = self.tree.get(key).map_err(chunk_damage(position))? else {
                return Ok(None);
            };
            self.chunk = Some(Chunk::new(location.chunk_start, bytes)?);
            self.following = None;
        }
        let chunk = self.chunk.as_ref().expect("chunk just kept");
        let offset = location.offset as usize;
        Ok(chunk
            .bytes
            .get(offset..)
            .filter(|rest| !rest.is_empty())
            .and_then(|rest| framed_len(position, rest).ok())
            .map(|length| (offset, length)))
    }

    /// The stored bytes of the record at `position` (framing checked, contents not).
    pub fn raw(&mut self, position: u64) -> LogResult<Vec<u8>> {
        let (chunk, found) = self.load(position)?;
        Ok(chunk.slice(found).to_vec())
    }
}

/// The error for a position no stored chunk holds.
fn missing_record(position: u64) -> LogError {
    LogError::DataLoss {
        position,
        reason: "record is missing".into(),
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

/// The high 64 bits of the greatest command id stored (0 when none): the log's command ceiling
/// on open (`Shared::command_ceiling`).
pub(crate) fn stored_command_ceiling(tree: &sled::Tree) -> LogResult<u64> {
    let Some(last) = tree.scan_prefix([keys::COMMAND_PREFIX]).next_back() else {
        return Ok(0);
    };
    let (key, _) = last?;
    let id: [u8; 16] = key[1..].try_into().map_err(|_| LogError::DataLoss {
        position: 0,
        reason: format!("a command record's key is {} bytes, not 17", key.len()),
    })?;
    Ok(super::writer::command_ceiling_of(Uuid::from_bytes(id)))
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

/// A forward stream scan from at most this version finds its first run by skipping the runs
/// before it (at most this many, each one sled step forwards) instead of a reverse range scan.
const FORWARD_RUN_SKIP_VERSIONS: u64 = 16;

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
            // The run holding `from_version` starts at or before it. Near a stream's start (a
            // fold from version 1, an early history page) the runs before it, fewer than
            // `from_version`, are skipped forwards instead of sled's reverse scan, which copies a
            // whole leaf (docs/benchmarks.md 000o).
            let start = if from_version <= FORWARD_RUN_SKIP_VERSIONS {
                prefix.clone()
            } else {
                match tree.range(prefix.clone()..=at_version).next_back() {
                    Some(entry) => entry.map_err(index_damage(stream_id))?.0.to_vec(),
                    None => prefix.clone(),
                }
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

/// Shows `visit` the checked records at `records` (position, location), in the order given,
/// until it answers `Break`; one cursor for all, so records sharing a chunk share one lookup.
/// Every position must be at most `durable_head`.
pub fn scan_located(
    tree: &sled::Tree,
    durable_head: u64,
    records: &[(u64, RecordLocation)],
    visit: &mut dyn FnMut(&RecordView<'_>) -> ControlFlow<()>,
) -> LogResult<()> {
    let mut cursor = RecordCursor::new(tree);
    for &(position, location) in records {
        if position == 0 || position > durable_head {
            return Err(LogError::OutOfRange {
                requested: position,
                head: durable_head,
            });
        }
        if cursor.visit_at(position, location, visit)?.is_break() {
            break;
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::limits::MAX_STORED_CHUNK_BYTES;
    use crate::log::power_cut_tests::request;
    use crate::log::{Log, LogConfig};

    #[test]
    fn a_forward_read_renews_its_sled_iterator_after_scan_recount_bytes_and_reads_every_record() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(LogConfig::new(dir.path())).unwrap();
        for stream in 0..300 {
            log.append_blocking(request(Uuid::now_v7(), stream)).unwrap();
        }
        let head = log.head();
        assert_eq!(head, 300);
        let mut cursor = RecordCursor::new(&log.inner.tree);
        let mut most_followed = 0;
        for position in 1..=head {
            assert_eq!(cursor.view(position).unwrap().envelope.position, position);
            most_followed = most_followed.max(cursor.followed_bytes);
        }
        // ~100 KiB were read in up to 300 chunks: the iterator was used, and renewed each time
        // it had given SCAN_RECOUNT_BYTES (one chunk more at most before the check).
        assert!(most_followed >= SCAN_RECOUNT_BYTES, "{most_followed}");
        assert!(
            most_followed < SCAN_RECOUNT_BYTES + MAX_STORED_CHUNK_BYTES,
            "{most_followed}"
        );
    }
}
