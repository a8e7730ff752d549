//! Export of the whole log as JSON lines, and restore of such an export into an empty data
//! directory, byte for byte: the same positions, event ids, recorded_at, hashes and chain.
//!
//! One line per event, in position order:
//!
//! ```json
//! {"position":1,"stream_id":"source-…","stream_version":1,"event_id":"…","event_type":"SourceRegistered",
//!  "schema_version":1,"command_id":"…","command_fingerprint":"<64 hex>","occurred_at_micros":…,
//!  "occurred_precision":"Day","recorded_at_micros":…,"recorded_by":"…","correlation_id":null,
//!  "causation_id":null,"tags":["…"],"leaf_input_hex":"…","leaf_hash":"<64 hex>","chain_hash":"<64 hex>"}
//! ```
//!
//! `leaf_input_hex` is the event's leaf input verbatim: the exact bytes its leaf hash (and so
//! the Merkle tree and the hash chain) is over, holding every field, payload included; the
//! readable fields beside it must agree with it. Exports written before it carried
//! `payload_hex` (the payload alone) instead; restore and `audit verify-export` read both.
//!
//! Restore re-encodes each envelope with the frozen encoding, and refuses the line unless the
//! leaf hash and the chain hash it computes equal the ones exported; positions must be dense,
//! stream versions dense, `recorded_at` non-decreasing. It stops at the first bad line, naming
//! its number, and leaves nothing half-written acknowledged (the directory is fsynced only at
//! the end, and a failed restore should be deleted).

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::codec::{encode_record, GENESIS_CHAIN_HASH};
use super::envelope::{Direction, Envelope, EventFilter, Hash};
use super::error::{LogError, LogResult};
use super::keys::{self, HeadMeta, StreamRun};
use super::limits::MAX_READ_PAGE_EVENTS;
use super::{Log, LogConfig};
use crate::time::{OccurredAt, Precision, Timestamp};

/// Records restored per sled batch.
pub const RESTORE_BATCH_RECORDS: usize = 4_096;
/// Longest export line accepted, in bytes (a maximum event in hex plus its fields).
pub const MAX_EXPORT_LINE_BYTES: usize = 256 * 1024;

/// What [`read_export_line`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportRead {
    /// The end of the input.
    End,
    /// A line (in the caller's buffer).
    Line,
    /// A line over [`MAX_EXPORT_LINE_BYTES`]: refused after reading one byte more than the
    /// limit, never read whole (a hostile file cannot make a reader hold it in memory).
    TooLong,
}

/// Reads one export line into `text` (cleared first), at most `MAX_EXPORT_LINE_BYTES + 1` bytes
/// of it. Restore and `audit verify-export` read exports through this.
pub fn read_export_line(input: &mut dyn BufRead, text: &mut String) -> std::io::Result<ExportRead> {
    use std::io::Read;
    text.clear();
    let read = input.take(MAX_EXPORT_LINE_BYTES as u64 + 1).read_line(text)?;
    Ok(match read {
        0 => ExportRead::End,
        _ if text.len() > MAX_EXPORT_LINE_BYTES => ExportRead::TooLong,
        _ => ExportRead::Line,
    })
}

/// One exported event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportLine {
    /// Global position.
    pub position: u64,
    /// Stream.
    pub stream_id: String,
    /// Version in the stream.
    pub stream_version: u64,
    /// Event id.
    pub event_id: Uuid,
    /// Event type.
    pub event_type: String,
    /// Payload schema version.
    pub schema_version: u16,
    /// Command (idempotency key).
    pub command_id: Uuid,
    /// Fingerprint of the command's request, so retries stay recognised after a restore.
    pub command_fingerprint: String,
    /// Valid time, µs since the epoch.
    pub occurred_at_micros: i64,
    /// Precision of the valid time.
    pub occurred_precision: Precision,
    /// Transaction time, µs since the epoch.
    pub recorded_at_micros: i64,
    /// Principal.
    pub recorded_by: String,
    /// Correlation id.
    pub correlation_id: Option<Uuid>,
    /// Causation id.
    pub causation_id: Option<Uuid>,
    /// Tags.
    pub tags: Vec<String>,
    /// Payload bytes, lowercase hex: exports written before `leaf_input_hex` (absent since).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_hex: Option<String>,
    /// The leaf input, lowercase hex: the exact bytes `leaf_hash` is the hash of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_input_hex: Option<String>,
    /// Leaf hash, hex.
    pub leaf_hash: String,
    /// Chain hash, hex.
    pub chain_hash: String,
}

impl ExportLine {
    /// The envelope the line holds: decoded from `leaf_input_hex` (and the readable fields must
    /// agree with it), or, in an export from before it, built from the fields and `payload_hex`.
    pub fn to_envelope(&self) -> Result<Envelope, String> {
        let Some(input) = &self.leaf_input_hex else {
            let payload = self
                .payload_hex
                .as_deref()
                .ok_or("the line has neither leaf_input_hex nor payload_hex")?;
            return Ok(self.with_payload(from_hex(payload).ok_or("payload_hex is not hex")?));
        };
        let bytes = from_hex(input).ok_or("leaf_input_hex is not hex")?;
        let envelope: Envelope = crate::encoding::decode(&bytes)
            .map_err(|error| format!("leaf_input_hex is not an event: {error}"))?;
        if self.with_payload(envelope.payload.clone()) != envelope {
            return Err("the line's fields disagree with its leaf_input_hex".into());
        }
        Ok(envelope)
    }

    /// The leaf input: `leaf_input_hex` verbatim, or (an export from before it) the encoding of
    /// the envelope its fields describe.
    pub fn leaf_input(&self) -> Result<Vec<u8>, String> {
        let envelope = self.to_envelope()?;
        match &self.leaf_input_hex {
            Some(input) => from_hex(input).ok_or_else(|| "leaf_input_hex is not hex".into()),
            None => Ok(crate::encoding::encode(&envelope)),
        }
    }

    /// The envelope of the line's readable fields with `payload`.
    fn with_payload(&self, payload: Vec<u8>) -> Envelope {
        Envelope {
            position: self.position,
            stream_id: self.stream_id.clone(),
            stream_version: self.stream_version,
            event_id: self.event_id,
            event_type: self.event_type.clone(),
            schema_version: self.schema_version,
            command_id: self.command_id,
            occurred_at: OccurredAt::new(
                Timestamp::from_unix_micros(self.occurred_at_micros),
                self.occurred_precision,
            ),
            recorded_at: Timestamp::from_unix_micros(self.recorded_at_micros),
            recorded_by: self.recorded_by.clone(),
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            tags: self.tags.clone(),
            payload,
        }
    }
}

/// Lowercase hex of bytes.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[(byte >> 4) as usize] as char);
        out.push(DIGITS[(byte & 15) as usize] as char);
    }
    out
}

/// Bytes from hex; None if malformed.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

fn hash_from_hex(text: &str) -> Option<Hash> {
    from_hex(text)?.try_into().ok()
}

/// Which events an export writes: the positions `from..=to` whose envelope matches `filter`.
/// Only the whole log (`ExportSelection::everything`) makes an export `restore` takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSelection {
    /// First position (inclusive, at least 1).
    pub from: u64,
    /// Last position (inclusive).
    pub to: u64,
    /// Which events.
    pub filter: EventFilter,
}

impl ExportSelection {
    /// Every event of `log` up to its head now.
    pub fn everything(log: &Log) -> ExportSelection {
        ExportSelection {
            from: 1,
            to: log.head(),
            filter: EventFilter::default(),
        }
    }

    /// Whether `envelope` is in the selection.
    pub fn includes(&self, envelope: &Envelope) -> bool {
        (self.from..=self.to).contains(&envelope.position) && self.filter.matches(envelope)
    }
}

/// Writes every event of `log` as one JSON line; returns the number of lines.
pub fn export_jsonl(log: &Log, out: &mut dyn Write, progress: &mut dyn FnMut(u64, u64)) -> LogResult<u64> {
    export_jsonl_selected(log, &ExportSelection::everything(log), out, progress)
}

/// Writes the events of `selection` as JSON lines, calling `progress(position examined, last
/// position)` after every page; returns the number of lines.
pub fn export_jsonl_selected(
    log: &Log,
    selection: &ExportSelection,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64, u64),
) -> LogResult<u64> {
    let head = selection.to;
    let mut fingerprints: HashMap<Uuid, Hash> = HashMap::new();
    let mut position = selection.from.max(1);
    let mut lines = 0;
    while position <= head {
        let page = log.read_all(
            position,
            Direction::Forwards,
            MAX_READ_PAGE_EVENTS,
            &selection.filter,
        )?;
        // The tree's leaf of each exported record, through one reader: consecutive positions
        // share its cached tile, and a filtered page reads only the tiles of what it exports.
        let tree = log.tree_reader();
        for event in &page.events {
            let envelope = event.envelope();
            if envelope.position > head {
                break;
            }
            use crate::merkle::tile::TileSource;
            if event.leaf_hash() != &tree.entries(0, envelope.position - 1, 1)?[0] {
                return Err(LogError::DataLoss {
                    position: envelope.position,
                    reason: "the record's hash disagrees with the Merkle tree".into(),
                });
            }
            // The leaf input as stored: the envelope's canonical encoding, checked against the
            // record's leaf hash so what the line carries is exactly what was hashed.
            let leaf_input = crate::encoding::encode(envelope);
            if &crate::merkle::leaf_hash(&leaf_input) != event.leaf_hash() {
                return Err(LogError::DataLoss {
                    position: envelope.position,
                    reason: "the record's bytes do not re-encode to its leaf hash".into(),
                });
            }
            let fingerprint = match fingerprints.get(&envelope.command_id) {
                Some(fingerprint) => *fingerprint,
                None => {
                    let (fingerprint, _) =
                        log.find_command(envelope.command_id)?.ok_or(LogError::DataLoss {
                            position: envelope.position,
                            reason: "command record is missing".into(),
                        })?;
                    if fingerprints.len() > 100_000 {
                        fingerprints.clear();
                    }
                    fingerprints.insert(envelope.command_id, fingerprint);
                    fingerprint
                }
            };
            let line = ExportLine {
                position: envelope.position,
                stream_id: envelope.stream_id.clone(),
                stream_version: envelope.stream_version,
                event_id: envelope.event_id,
                event_type: envelope.event_type.clone(),
                schema_version: envelope.schema_version,
                command_id: envelope.command_id,
                command_fingerprint: to_hex(&fingerprint),
                occurred_at_micros: envelope.occurred_at.at().unix_micros(),
                occurred_precision: envelope.occurred_at.precision(),
                recorded_at_micros: envelope.recorded_at.unix_micros(),
                recorded_by: envelope.recorded_by.clone(),
                correlation_id: envelope.correlation_id,
                causation_id: envelope.causation_id,
                tags: envelope.tags.clone(),
                payload_hex: None,
                leaf_input_hex: Some(to_hex(&leaf_input)),
                leaf_hash: to_hex(event.leaf_hash()),
                chain_hash: to_hex(event.chain_hash()),
            };
            serde_json::to_writer(&mut *out, &line).map_err(|error| LogError::Io(error.into()))?;
            out.write_all(b"\n")?;
            lines += 1;
        }
        position = page.next_position;
        progress((position - 1).min(head), head);
        if page.reached_end {
            break;
        }
    }
    out.flush()?;
    Ok(lines)
}

/// Why a restore stopped.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The target directory already holds something.
    #[error("{0} is not empty: restore only writes into an empty data directory")]
    NotEmpty(String),
    /// A line of the export is malformed or does not check out.
    #[error("line {line}: {reason}")]
    BadLine {
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// The log failed.
    #[error(transparent)]
    Log(#[from] LogError),
}

struct PendingCommand {
    command_id: Uuid,
    stream_id: String,
    first_version: u64,
    first_position: u64,
    count: u32,
    fingerprint: Hash,
}

/// Restores an export into the empty (or absent) directory `dir`; returns the number of events.
pub fn restore_jsonl(
    input: &mut dyn BufRead,
    dir: &Path,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, RestoreError> {
    if dir.exists() && std::fs::read_dir(dir).map_err(LogError::Io)?.next().is_some() {
        return Err(RestoreError::NotEmpty(dir.display().to_string()));
    }
    let log = Log::open(LogConfig::new(dir))?;
    log.forget_command_ceiling();
    let tree = log.tree().clone();
    let mut chain = GENESIS_CHAIN_HASH;
    let mut last_recorded_at = Timestamp::EPOCH;
    let mut versions: HashMap<String, u64> = HashMap::new();
    let mut seen_commands: std::collections::HashSet<Uuid> = std::collections::HashSet::new();
    let mut records: Vec<Vec<u8>> = Vec::new();
    let mut first_in_batch = 1u64;
    let mut entries: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut pending: Option<PendingCommand> = None;
    let mut merkle = super::tree::TreeState::default();
    let mut position = 0u64;
    let mut line_number = 0u64;
    let mut text = String::new();
    loop {
        let read = read_export_line(input, &mut text).map_err(LogError::Io)?;
        if read == ExportRead::End {
            break;
        }
        line_number += 1;
        let bad = |reason: String| RestoreError::BadLine {
            line: line_number,
            reason,
        };
        if read == ExportRead::TooLong {
            return Err(bad(format!("line is over {MAX_EXPORT_LINE_BYTES} bytes")));
        }
        let line: ExportLine =
            serde_json::from_str(text.trim_end()).map_err(|e| bad(format!("not an export line: {e}")))?;
        if line.position != position + 1 {
            return Err(bad(format!(
                "position {} does not follow {position}",
                line.position
            )));
        }
        position = line.position;
        let expected_version = versions.get(&line.stream_id).copied().unwrap_or(0) + 1;
        if line.stream_version != expected_version {
            return Err(bad(format!(
                "stream version {} of {}, expected {expected_version}",
                line.stream_version, line.stream_id
            )));
        }
        if line.recorded_at_micros < last_recorded_at.unix_micros() {
            return Err(bad("recorded_at decreases".into()));
        }
        last_recorded_at = Timestamp::from_unix_micros(line.recorded_at_micros);
        let envelope = line.to_envelope().map_err(bad)?;
        let fingerprint = hash_from_hex(&line.command_fingerprint)
            .ok_or_else(|| bad("command_fingerprint is not a hash".into()))?;
        let (record, next_chain) = encode_record(&envelope, &chain).map_err(|e| bad(e.to_string()))?;
        let checked = super::codec::check_record(position, &record)?;
        if to_hex(&checked.leaf_hash) != line.leaf_hash.to_lowercase() {
            return Err(bad("leaf hash does not match the event".into()));
        }
        if to_hex(&next_chain) != line.chain_hash.to_lowercase() {
            return Err(bad("chain hash does not follow from the previous line".into()));
        }
        chain = next_chain;
        versions.insert(envelope.stream_id.clone(), envelope.stream_version);
        // Group consecutive events of one command into one run and one command record.
        let continues = pending
            .as_ref()
            .is_some_and(|p| p.command_id == envelope.command_id && p.stream_id == envelope.stream_id);
        if continues {
            let current = pending.as_mut().expect("pending command");
            if current.fingerprint != fingerprint {
                return Err(bad("command_fingerprint changes within one command".into()));
            }
            current.count += 1;
        } else {
            if let Some(done) = pending.take() {
                finish_command(done, &mut entries);
            }
            if !seen_commands.insert(envelope.command_id) {
                return Err(bad(format!("command {} appears twice", envelope.command_id)));
            }
            pending = Some(PendingCommand {
                command_id: envelope.command_id,
                stream_id: envelope.stream_id.clone(),
                first_version: envelope.stream_version,
                first_position: position,
                count: 1,
                fingerprint,
            });
        }
        // The Merkle tiles go into the same batches as the records they cover.
        let mut tiles = Vec::new();
        merkle.push(checked.leaf_hash, &mut tiles);
        records.push(record);
        merkle.trim(merkle.size());
        entries.extend(super::tree::tile_entries(tiles));
        if records.len() >= RESTORE_BATCH_RECORDS {
            write_batch(
                &tree,
                &mut records,
                &mut first_in_batch,
                &mut entries,
                position,
                chain,
                last_recorded_at,
            )?;
            progress(position);
        }
    }
    if let Some(done) = pending.take() {
        finish_command(done, &mut entries);
    }
    if !records.is_empty() || !entries.is_empty() {
        write_batch(
            &tree,
            &mut records,
            &mut first_in_batch,
            &mut entries,
            position,
            chain,
            last_recorded_at,
        )?;
    }
    progress(position);
    // The full verification proves what was written (it reads the store, not the handle's
    // in-memory head), then one flush + fsync makes it durable.
    log.verify(&mut |_, _| {})?;
    log.sync_for_restore()?;
    Ok(position)
}

fn finish_command(done: PendingCommand, entries: &mut Vec<(Vec<u8>, Vec<u8>)>) {
    let run = StreamRun {
        first_version: done.first_version,
        first_position: done.first_position,
        count: done.count,
    };
    entries.extend(keys::request_entries(
        &done.stream_id,
        run,
        done.command_id,
        done.fingerprint,
    ));
}

fn write_batch(
    tree: &sled::Tree,
    records: &mut Vec<Vec<u8>>,
    first_in_batch: &mut u64,
    entries: &mut Vec<(Vec<u8>, Vec<u8>)>,
    head: u64,
    chain: Hash,
    recorded_at: Timestamp,
) -> LogResult<()> {
    let meta = HeadMeta {
        format_version: super::codec::FORMAT_VERSION,
        position: head,
        chain_hash: chain,
        recorded_at,
    };
    let (batch, next_position) =
        keys::commit_batch(*first_in_batch, records.drain(..), entries.drain(..), &meta);
    *first_in_batch = next_position;
    tree.apply_batch(batch)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_line_over_the_limit_is_refused_without_reading_it_whole() {
        let huge = vec![b'x'; 10 * MAX_EXPORT_LINE_BYTES];
        let mut input = std::io::BufReader::new(&huge[..]);
        let mut text = String::new();
        assert_eq!(
            read_export_line(&mut input, &mut text).unwrap(),
            ExportRead::TooLong
        );
        assert_eq!(text.len(), MAX_EXPORT_LINE_BYTES + 1);
        let mut lines = std::io::BufReader::new(&b"{}\n"[..]);
        assert_eq!(read_export_line(&mut lines, &mut text).unwrap(), ExportRead::Line);
        assert_eq!(text, "{}\n");
        assert_eq!(read_export_line(&mut lines, &mut text).unwrap(), ExportRead::End);
    }
}
