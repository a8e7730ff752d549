//! Checks on open and the full offline verification.
//!
//! Every commit is one atomic sled batch that also rewrites the head metadata, so after a crash
//! the store holds exactly the commits that sled recovered, as a prefix. `check_on_open` proves
//! the head agrees with the records and re-verifies the last records in full; `verify` scans
//! everything and recomputes every hash and index.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use super::codec::{self, check_record, decode_record, FORMAT_VERSION, GENESIS_CHAIN_HASH};
use super::envelope::{Hash, RecordedEvent};
use super::error::{LogError, LogResult};
use super::keys::{self, CommandRecord, HeadMeta, StreamRun};
use super::reader::{self, RecordCursor};
use crate::time::Timestamp;

/// What a full verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records checked (equal to the head position).
    pub events: u64,
    /// Distinct streams.
    pub streams: u64,
    /// Distinct command ids.
    pub commands: u64,
    /// Chain hash at the head: commits to the whole history.
    pub head_chain_hash: Hash,
}

fn empty_head() -> HeadMeta {
    HeadMeta {
        format_version: FORMAT_VERSION,
        position: 0,
        chain_hash: GENESIS_CHAIN_HASH,
        recorded_at: Timestamp::EPOCH,
    }
}

/// Reads the head metadata, checking the format version. An empty store has the empty head.
pub fn load_head(tree: &sled::Tree) -> LogResult<HeadMeta> {
    let Some(head) = reader::head_meta(tree)? else {
        if tree.scan_prefix([keys::EVENT_PREFIX]).next().is_some() {
            return Err(LogError::DataLoss {
                position: 0,
                reason: "records exist but the head metadata is missing".into(),
            });
        }
        return Ok(empty_head());
    };
    if head.format_version != FORMAT_VERSION {
        return Err(LogError::UnsupportedFormat {
            found: head.format_version,
            supported: FORMAT_VERSION,
        });
    }
    Ok(head)
}

/// Open-time check: the head record exists and is the last, and the last `tail` records verify
/// in full (checksum, leaf and chain hashes, stream index, command records).
pub fn check_on_open(tree: &sled::Tree, head: &HeadMeta, tail: u64) -> LogResult<()> {
    let mut cursor = RecordCursor::new(tree);
    if head.position == 0 {
        if tree.scan_prefix([keys::EVENT_PREFIX]).next().is_some() {
            return Err(LogError::DataLoss {
                position: 1,
                reason: "records exist beyond an empty head".into(),
            });
        }
        return Ok(());
    }
    let head_record = cursor.read(head.position)?;
    if head_record.chain_hash() != &head.chain_hash {
        return Err(LogError::DataLoss {
            position: head.position,
            reason: "head chain hash does not match the head record".into(),
        });
    }
    if tree
        .range(keys::event_key(head.position + 1)..=keys::event_key(u64::MAX))
        .next()
        .is_some()
    {
        return Err(LogError::DataLoss {
            position: head.position + 1,
            reason: "records exist beyond the head".into(),
        });
    }
    let first = head.position.saturating_sub(tail).max(1);
    let mut previous_chain = if first == 1 {
        GENESIS_CHAIN_HASH
    } else {
        *cursor.read(first - 1)?.chain_hash()
    };
    let mut previous_recorded_at = Timestamp::EPOCH;
    for position in first..=head.position {
        let (event, chain) = check_record_fully(&mut cursor, position, &previous_chain)?;
        check_order(&event, &mut previous_recorded_at)?;
        check_indexes(tree, &event)?;
        previous_chain = chain;
    }
    Ok(())
}

/// Checks one record's bytes and hashes; returns it and its chain hash.
fn check_record_fully(
    cursor: &mut RecordCursor<'_>,
    position: u64,
    previous_chain: &Hash,
) -> LogResult<(RecordedEvent, Hash)> {
    let damaged = |reason: &str| LogError::DataLoss {
        position,
        reason: reason.into(),
    };
    let bytes = cursor.raw(position)?;
    let checked = check_record(position, &bytes)?;
    let event = decode_record(position, &bytes)?;
    if codec::leaf_hash(checked.body) != checked.leaf_hash {
        return Err(damaged("leaf hash does not match the record"));
    }
    let chain = codec::chain_hash(previous_chain, &checked.leaf_hash);
    if chain != checked.chain_hash {
        return Err(damaged("chain hash does not follow from the previous record"));
    }
    Ok((event, chain))
}

/// Adds a record's leaf to the tree rebuilt from the records and compares every tile it
/// completes with the stored one (`verify` opens the log first, and open stores every tile a
/// replay left missing, so all full tiles exist).
fn check_tiles(tree: &sled::Tree, merkle: &mut super::tree::TreeState, leaf: &Hash) -> LogResult<()> {
    let mut tiles = Vec::new();
    merkle.push(*leaf, &mut tiles);
    for (level, index, expected) in tiles {
        let stored = super::tree::read_tile(tree, level, index)?;
        let stored: Vec<u8> = stored.iter().flat_map(|hash| hash.iter().copied()).collect();
        if stored != expected {
            let first = index * crate::merkle::tile::TILE_WIDTH.pow(level + 1);
            let at = (0..expected.len() / 32)
                .find(|i| stored[i * 32..(i + 1) * 32] != expected[i * 32..(i + 1) * 32])
                .unwrap_or(0) as u64;
            return Err(LogError::DataLoss {
                position: first + at * crate::merkle::tile::TILE_WIDTH.pow(level) + 1,
                reason: format!("the stored Merkle tree (tile {level}/{index}) disagrees with the records"),
            });
        }
    }
    merkle.trim(merkle.size());
    Ok(())
}

fn check_order(event: &RecordedEvent, previous_recorded_at: &mut Timestamp) -> LogResult<()> {
    if event.envelope().recorded_at < *previous_recorded_at {
        return Err(LogError::DataLoss {
            position: event.position(),
            reason: "recorded_at decreases".into(),
        });
    }
    *previous_recorded_at = event.envelope().recorded_at;
    Ok(())
}

/// The stream index and the command record both account for the record.
fn check_indexes(tree: &sled::Tree, event: &RecordedEvent) -> LogResult<()> {
    let position = event.position();
    let envelope = event.envelope();
    let damaged = |reason: &str| LogError::DataLoss {
        position,
        reason: reason.into(),
    };
    let prefix = keys::stream_index_prefix(&envelope.stream_id);
    let (key, value) = tree
        .range(prefix.clone()..=keys::stream_index_key(&envelope.stream_id, envelope.stream_version))
        .next_back()
        .ok_or_else(|| damaged("stream index has no run for the record"))?
        .map_err(|error| {
            LogError::damage_at(error, position, || "the stream index entry of the record".into())
        })?;
    let run = StreamRun::decode(&key, &value, prefix.len())?;
    if run.position_of(envelope.stream_version) != Some(position) {
        return Err(damaged("stream index points elsewhere"));
    }
    let command_bytes = tree
        .get(keys::command_key(envelope.command_id))
        .map_err(|error| LogError::damage_at(error, position, || "the command record of the record".into()))?
        .ok_or_else(|| damaged("command record is missing"))?;
    let command: CommandRecord = keys::decode_checked(&command_bytes, position, "command record")?;
    if position < command.first_position || position >= command.first_position + u64::from(command.count) {
        return Err(damaged("command record does not cover this record"));
    }
    Ok(())
}

/// Full scan: every record, the chain, the stream index and the command records.
/// `progress(done, total)` is called every few thousand records.
pub fn verify(tree: &sled::Tree, progress: &mut dyn FnMut(u64, u64)) -> LogResult<VerifyReport> {
    let head = load_head(tree)?;
    check_on_open(tree, &head, 0)?;
    let mut cursor = RecordCursor::new(tree);
    let mut chain = GENESIS_CHAIN_HASH;
    let mut recorded_at = Timestamp::EPOCH;
    let mut versions: HashMap<String, u64> = HashMap::new();
    let mut commands: HashSet<Uuid> = HashSet::new();
    let mut merkle = super::tree::TreeState::default();
    for position in 1..=head.position {
        let (event, next_chain) = check_record_fully(&mut cursor, position, &chain)?;
        chain = next_chain;
        check_tiles(tree, &mut merkle, event.leaf_hash())?;
        check_order(&event, &mut recorded_at)?;
        check_indexes(tree, &event)?;
        let envelope = event.envelope();
        let last = versions.entry(envelope.stream_id.clone()).or_insert(0);
        if envelope.stream_version != *last + 1 {
            return Err(LogError::DataLoss {
                position,
                reason: format!("stream version {} follows {}", envelope.stream_version, last),
            });
        }
        *last = envelope.stream_version;
        commands.insert(envelope.command_id);
        if position % 4096 == 0 {
            progress(position, head.position);
        }
    }
    progress(head.position, head.position);
    if chain != head.chain_hash {
        return Err(LogError::DataLoss {
            position: head.position,
            reason: "head chain hash does not match the records".into(),
        });
    }
    // Chunks: contiguous, none past the head.
    let mut expected_chunk = 1;
    for entry in tree.scan_prefix([keys::EVENT_PREFIX]) {
        let (key, value) = entry.map_err(|error| {
            LogError::damage_at(error, expected_chunk, || {
                format!("the chunk from position {expected_chunk}")
            })
        })?;
        let first = keys::position_of_event_key(&key).ok_or_else(|| LogError::DataLoss {
            position: 0,
            reason: "malformed chunk key".into(),
        })?;
        if first != expected_chunk {
            return Err(LogError::DataLoss {
                position: expected_chunk,
                reason: "chunks are not contiguous".into(),
            });
        }
        expected_chunk += codec::split_chunk(first, &value)?.len() as u64;
    }
    if expected_chunk != head.position + 1 {
        return Err(LogError::DataLoss {
            position: head.position,
            reason: "chunks do not end at the head".into(),
        });
    }
    // Stream runs: they cover exactly the records.
    let mut covered = 0u64;
    for entry in tree.scan_prefix([keys::STREAM_INDEX_PREFIX]) {
        let (_, value) = entry?;
        if value.len() != 12 {
            return Err(LogError::DataLoss {
                position: 0,
                reason: "malformed stream index entry".into(),
            });
        }
        covered += u64::from(u32::from_be_bytes(value[8..].try_into().expect("4 bytes")));
    }
    if covered != head.position {
        return Err(LogError::DataLoss {
            position: 0,
            reason: format!("stream index covers {covered} records of {}", head.position),
        });
    }
    let stored_commands = tree.scan_prefix([keys::COMMAND_PREFIX]).count() as u64;
    if stored_commands != commands.len() as u64 {
        return Err(LogError::DataLoss {
            position: 0,
            reason: format!(
                "{stored_commands} command records for {} commands",
                commands.len()
            ),
        });
    }
    Ok(VerifyReport {
        events: head.position,
        streams: versions.len() as u64,
        commands: commands.len() as u64,
        head_chain_hash: chain,
    })
}

/// Applies one journal frame past `head` to sled (the records beyond `head`, their stream runs
/// and command records, the new head) in one batch, checking every record, the chain from the
/// frame's start, and that it continues `head`. Returns the new head.
pub(crate) fn replay_frame(
    tree: &sled::Tree,
    head: &HeadMeta,
    frame: &super::journal::recovery::ReplayFrame,
) -> LogResult<HeadMeta> {
    let mut chain = frame.previous_chain;
    let mut kept = Vec::new();
    let mut located: HashMap<u64, (String, u64)> = HashMap::new();
    let mut recorded_at = head.recorded_at;
    for (offset, record) in frame.records.iter().enumerate() {
        let position = frame.first_position + offset as u64;
        let checked = check_record(position, record)?;
        let leaf = codec::leaf_hash(checked.body);
        if leaf != checked.leaf_hash || codec::chain_hash(&chain, &leaf) != checked.chain_hash {
            return Err(LogError::DataLoss {
                position,
                reason: "journal record hashes do not match".into(),
            });
        }
        chain = checked.chain_hash;
        if position < head.position {
            continue;
        }
        if position == head.position {
            if chain != head.chain_hash {
                return Err(LogError::DataLoss {
                    position,
                    reason: "journal frame does not continue sled's chain".into(),
                });
            }
            continue;
        }
        let event = decode_record(position, record)?;
        let envelope = event.envelope();
        located.insert(position, (envelope.stream_id.clone(), envelope.stream_version));
        recorded_at = envelope.recorded_at;
        kept.push(record.clone());
    }
    if frame.first_position == head.position + 1 && frame.previous_chain != head.chain_hash {
        return Err(LogError::DataLoss {
            position: frame.first_position,
            reason: "journal frame does not continue sled's chain".into(),
        });
    }
    let mut entries = Vec::new();
    for request in frame
        .requests
        .iter()
        .filter(|request| request.first_position > head.position)
    {
        let (stream_id, first_version) =
            located
                .get(&request.first_position)
                .ok_or_else(|| LogError::DataLoss {
                    position: request.first_position,
                    reason: "journal request names a position outside its frame".into(),
                })?;
        let run = StreamRun {
            first_version: *first_version,
            first_position: request.first_position,
            count: request.count,
        };
        entries.extend(keys::request_entries(
            stream_id,
            run,
            request.command_id,
            request.fingerprint,
        ));
    }
    let new_head = HeadMeta {
        format_version: FORMAT_VERSION,
        position: frame.last_position(),
        chain_hash: chain,
        recorded_at,
    };
    let (batch, next) = keys::commit_batch(head.position + 1, kept, entries, &new_head);
    assert_eq!(next, new_head.position + 1, "replayed records are consecutive");
    tree.apply_batch(batch)?;
    Ok(new_head)
}
