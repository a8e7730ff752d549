//! Checks on open and the full offline verification.
//!
//! Every commit is one atomic sled batch that also rewrites the head metadata, so after a crash
//! the store holds exactly the commits that sled recovered, as a prefix. `check_on_open` proves
//! the head agrees with the records and re-verifies the last records in full; `verify` scans
//! everything and recomputes every hash and index.

use std::collections::HashMap;

use super::codec::{self, check_record, decode_record, FORMAT_VERSION, GENESIS_CHAIN_HASH};
use super::envelope::Hash;
use super::error::{LogError, LogResult};
use super::keys::{self, CommandRecord, HeadMeta};
use super::reader;
use crate::domain::time::Timestamp;

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

/// Open-time check: the head record exists, nothing lies beyond it, and the last `tail` records
/// verify in full (checksum, leaf and chain hashes, stream index and stream heads, command records).
pub fn check_on_open(tree: &sled::Tree, head: &HeadMeta, tail: u64) -> LogResult<()> {
    if let Some(last) = tree.scan_prefix([keys::EVENT_PREFIX]).keys().next_back() {
        let last = keys::position_of_event_key(&last?).unwrap_or(0);
        if last != head.position {
            return Err(LogError::DataLoss {
                position: last.max(head.position),
                reason: format!("last record is at {last} but the head says {}", head.position),
            });
        }
    } else if head.position != 0 {
        return Err(LogError::DataLoss {
            position: head.position,
            reason: "head record is missing".into(),
        });
    }
    if head.position == 0 {
        return Ok(());
    }
    let first = head.position.saturating_sub(tail).max(1);
    let mut previous_chain = if first == 1 {
        GENESIS_CHAIN_HASH
    } else {
        *reader::read_event(tree, first - 1)?.chain_hash()
    };
    let mut previous_recorded_at = Timestamp::EPOCH;
    for position in first..=head.position {
        previous_chain = check_one(tree, position, &previous_chain, &mut previous_recorded_at, None)?;
    }
    if previous_chain != head.chain_hash {
        return Err(LogError::DataLoss {
            position: head.position,
            reason: "head chain hash does not match the head record".into(),
        });
    }
    Ok(())
}

/// Checks one record fully; returns its chain hash.
fn check_one(
    tree: &sled::Tree,
    position: u64,
    previous_chain: &Hash,
    previous_recorded_at: &mut Timestamp,
    stream_versions: Option<&mut HashMap<String, u64>>,
) -> LogResult<Hash> {
    let damaged = |reason: String| LogError::DataLoss { position, reason };
    let bytes = tree
        .get(keys::event_key(position))?
        .ok_or_else(|| damaged("record is missing".into()))?;
    let checked = check_record(position, &bytes)?;
    let event = decode_record(position, &bytes)?;
    if codec::leaf_hash(checked.body) != checked.leaf_hash {
        return Err(damaged("leaf hash does not match the record".into()));
    }
    let chain = codec::chain_hash(previous_chain, &checked.leaf_hash);
    if chain != checked.chain_hash {
        return Err(damaged(
            "chain hash does not follow from the previous record".into(),
        ));
    }
    let envelope = event.envelope();
    if envelope.recorded_at < *previous_recorded_at {
        return Err(damaged("recorded_at decreases".into()));
    }
    *previous_recorded_at = envelope.recorded_at;
    let indexed = tree
        .get(keys::stream_index_key(
            &envelope.stream_id,
            envelope.stream_version,
        ))?
        .ok_or_else(|| damaged("stream index entry is missing".into()))?;
    if keys::decode_u64(&indexed, position, "stream index")? != position {
        return Err(damaged("stream index points elsewhere".into()));
    }
    let stream_head = reader::stored_stream_version(tree, &envelope.stream_id)?;
    if stream_head < envelope.stream_version {
        return Err(damaged(format!(
            "stream head {stream_head} is below the record's version"
        )));
    }
    if let Some(versions) = stream_versions {
        let last = versions.entry(envelope.stream_id.clone()).or_insert(0);
        if envelope.stream_version != *last + 1 {
            return Err(damaged(format!(
                "stream version {} follows {}",
                envelope.stream_version, last
            )));
        }
        *last = envelope.stream_version;
    }
    let command_bytes = tree
        .get(keys::command_key(envelope.command_id))?
        .ok_or_else(|| damaged("command record is missing".into()))?;
    let command: CommandRecord = keys::decode_checked(&command_bytes, position, "command record")?;
    if position < command.first_position || position >= command.first_position + u64::from(command.count) {
        return Err(damaged("command record does not cover this record".into()));
    }
    Ok(chain)
}

/// Full scan: every record, the chain, the stream index and heads, and the command records.
/// `progress(done, total)` is called every few thousand records.
pub fn verify(tree: &sled::Tree, progress: &mut dyn FnMut(u64, u64)) -> LogResult<VerifyReport> {
    let head = load_head(tree)?;
    check_on_open(tree, &head, 0)?;
    let mut chain = GENESIS_CHAIN_HASH;
    let mut recorded_at = Timestamp::EPOCH;
    let mut versions: HashMap<String, u64> = HashMap::new();
    let mut commands = std::collections::HashSet::new();
    for position in 1..=head.position {
        chain = check_one(tree, position, &chain, &mut recorded_at, Some(&mut versions))?;
        commands.insert(reader::read_event(tree, position)?.envelope().command_id);
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
    let mut index_entries = 0u64;
    for entry in tree.scan_prefix([keys::STREAM_INDEX_PREFIX]) {
        let (_, value) = entry?;
        if keys::decode_u64(&value, 0, "stream index")? > head.position {
            return Err(LogError::DataLoss {
                position: 0,
                reason: "stream index points past the head".into(),
            });
        }
        index_entries += 1;
    }
    if index_entries != head.position {
        return Err(LogError::DataLoss {
            position: 0,
            reason: format!(
                "{index_entries} stream index entries for {} records",
                head.position
            ),
        });
    }
    for entry in tree.scan_prefix([keys::STREAM_HEAD_PREFIX]) {
        let (key, value) = entry?;
        let stream_id = String::from_utf8_lossy(&key[1..]).into_owned();
        let stored = keys::decode_u64(&value, 0, "stream head")?;
        if versions.get(&stream_id) != Some(&stored) {
            return Err(LogError::DataLoss {
                position: 0,
                reason: format!(
                    "stream head of {stream_id} says {stored}, records say {:?}",
                    versions.get(&stream_id)
                ),
            });
        }
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
