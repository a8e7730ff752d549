//! Reads: single records, one stream, the whole log. Every record is checked on the way out,
//! and nothing past the durable head (the last acknowledged commit) is ever returned, even
//! though sled may already hold a commit that is still being fsynced.

use super::codec::decode_record;
use super::envelope::{AppendResult, Direction, EventFilter, Hash, ReadAllPage, RecordedEvent};
use super::error::{LogError, LogResult};
use super::keys::{self, CommandRecord, HeadMeta};
use super::limits::{MAX_READ_PAGE_EVENTS, MAX_SCANNED_PER_PAGE};
use uuid::Uuid;

/// The record at `position`, checked. Missing is data loss: callers only ask for positions at
/// or below the head, and positions are dense.
pub fn read_event(tree: &sled::Tree, position: u64) -> LogResult<RecordedEvent> {
    match tree.get(keys::event_key(position))? {
        Some(bytes) => decode_record(position, &bytes),
        None => Err(LogError::DataLoss {
            position,
            reason: "record is missing".into(),
        }),
    }
}

/// The head metadata, or None for a log that was never written.
pub fn head_meta(tree: &sled::Tree) -> LogResult<Option<HeadMeta>> {
    match tree.get(keys::META_HEAD_KEY)? {
        Some(bytes) => Ok(Some(keys::decode_checked(&bytes, 0, "head metadata")?)),
        None => Ok(None),
    }
}

/// The current version of a stream as stored (0 when it has no events).
pub fn stored_stream_version(tree: &sled::Tree, stream_id: &str) -> LogResult<u64> {
    match tree.get(keys::stream_head_key(stream_id))? {
        Some(bytes) => keys::decode_u64(&bytes, 0, "stream head"),
        None => Ok(0),
    }
}

/// The stored outcome of a command: its fingerprint and original result.
pub fn stored_command(tree: &sled::Tree, command_id: Uuid) -> LogResult<Option<(Hash, AppendResult)>> {
    let Some(bytes) = tree.get(keys::command_key(command_id))? else {
        return Ok(None);
    };
    let record: CommandRecord = keys::decode_checked(&bytes, 0, "command record")?;
    let first = read_event(tree, record.first_position)?;
    let mut event_ids = Vec::with_capacity(record.count as usize);
    event_ids.push(first.envelope().event_id);
    for offset in 1..u64::from(record.count) {
        event_ids.push(
            read_event(tree, record.first_position + offset)?
                .envelope()
                .event_id,
        );
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

/// Up to `limit` (capped at MAX_READ_PAGE_EVENTS) events of one stream starting at version
/// `from_version` (inclusive), in `direction`. Backwards from `u64::MAX` starts at the end.
pub fn read_stream(
    tree: &sled::Tree,
    durable_head: u64,
    stream_id: &str,
    from_version: u64,
    direction: Direction,
    limit: usize,
) -> LogResult<Vec<RecordedEvent>> {
    let limit = limit.min(MAX_READ_PAGE_EVENTS);
    let mut events = Vec::new();
    if limit == 0 {
        return Ok(events);
    }
    let prefix = keys::stream_index_prefix(stream_id);
    let start = keys::stream_index_key(stream_id, from_version);
    let entries: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> = match direction {
        Direction::Forwards => {
            let mut end = prefix;
            *end.last_mut().expect("prefix ends with 0x00") = 1;
            Box::new(tree.range(start..end))
        }
        Direction::Backwards => {
            let mut end = start;
            end.push(0); // makes the bound include `from_version`
            Box::new(tree.range(prefix..end).rev())
        }
    };
    for entry in entries {
        let (_, value) = entry?;
        let position = keys::decode_u64(&value, 0, "stream index")?;
        if position > durable_head {
            // Written by a commit that is not yet acknowledged: forwards, nothing after it is
            // durable either; backwards, older versions still are.
            match direction {
                Direction::Forwards => break,
                Direction::Backwards => continue,
            }
        }
        events.push(read_event(tree, position)?);
        if events.len() >= limit {
            break;
        }
    }
    Ok(events)
}

/// One page of the whole log from `from_position` (inclusive) in `direction`, filtered.
/// Forwards, `from_position` may be `durable_head + 1` (an empty, caught-up page); anything
/// beyond is out of range. Backwards, `from_position` must be at most the head; 0 reads nothing.
pub fn read_all(
    tree: &sled::Tree,
    durable_head: u64,
    from_position: u64,
    direction: Direction,
    limit: usize,
    filter: &EventFilter,
) -> LogResult<ReadAllPage> {
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
    let from_position = from_position.max(u64::from(direction == Direction::Forwards));
    let mut events = Vec::new();
    let mut scanned = 0usize;
    let mut next_position = from_position;
    let mut take = |entry: sled::Result<(sled::IVec, sled::IVec)>, next: &mut u64| -> LogResult<bool> {
        let (key, value) = entry?;
        let position = keys::position_of_event_key(&key).ok_or_else(|| LogError::DataLoss {
            position: 0,
            reason: "malformed event key".into(),
        })?;
        if position != *next {
            return Err(LogError::DataLoss {
                position: *next,
                reason: "record is missing".into(),
            });
        }
        let event = decode_record(position, &value)?;
        if filter.matches(event.envelope()) {
            events.push(event);
        }
        scanned += 1;
        Ok(events.len() < limit && scanned < MAX_SCANNED_PER_PAGE)
    };
    let reached_end = match direction {
        Direction::Forwards => {
            let range = keys::event_key(from_position)..=keys::event_key(durable_head.max(from_position));
            if from_position <= durable_head {
                for entry in tree.range(range) {
                    let go_on = take(entry, &mut next_position)?;
                    next_position += 1;
                    if !go_on {
                        break;
                    }
                }
            }
            next_position > durable_head
        }
        Direction::Backwards => {
            if from_position >= 1 {
                for entry in tree
                    .range(keys::event_key(1)..=keys::event_key(from_position))
                    .rev()
                {
                    let go_on = take(entry, &mut next_position)?;
                    next_position -= 1;
                    if !go_on {
                        break;
                    }
                }
            }
            next_position == 0
        }
    };
    Ok(ReadAllPage {
        events,
        next_position,
        head: durable_head,
        reached_end,
    })
}
