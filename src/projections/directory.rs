//! Parties and sources: every party's and source's latest state, listed in key order. And of
//! every stream, the later events that corrected or retracted earlier ones (its
//! back-references), so that a history page reads only its own events.

use std::collections::BTreeMap;
use std::ops::Bound;

use serde::{Deserialize, Serialize};

use super::error::ProjectionError;
use super::error::ProjectionResult;
use super::history::{back_reference, BackReference};
use super::kept::Kept;
use super::runner::{Change, Projection};
use super::snapshot_writer::EntityKey;
use super::store::{
    decode_token, encode_hex, invalid_token, page_size, restore_entity, row_at, uuid_key, Current, Dirty,
    Snapshot, MAX_SCANNED_PER_PAGE,
};
use crate::domain::common::{party_stream_id, SourceId};
use crate::domain::party::PartyDetails;
use crate::domain::source::SourceDetails;
use crate::domain::AggregateState;
use crate::log::Log;

/// A party as the ledger says it is (the latest correction applied).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartyRow {
    /// The code (`LBY`).
    pub code: String,
    /// Details in effect.
    pub details: PartyDetails,
    /// Stream version of the event whose details are in effect.
    pub details_version: u64,
    /// Events folded.
    pub stream_version: u64,
    /// Log position of the last event folded.
    pub last_position: u64,
}

/// A source document as the ledger says it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRow {
    /// The source.
    pub source_id: SourceId,
    /// Details in effect.
    pub details: SourceDetails,
    /// Events folded.
    pub stream_version: u64,
    /// Log position of the last event folded.
    pub last_position: u64,
}

/// The directory read model: parties by code, sources by id.
#[derive(Default)]
pub(crate) struct DirectoryModel {
    parties: BTreeMap<String, Current>,
    sources: BTreeMap<uuid::Uuid, Current>,
    /// Parties changed since the last snapshot.
    dirty_parties: Dirty<String>,
    /// Sources changed since the last snapshot.
    dirty_sources: Dirty<uuid::Uuid>,
    /// Each stream's back-references, in stream-version (so also position) order.
    back_references: BTreeMap<String, Vec<BackReference>>,
    /// The snapshot holds every back-reference recorded at or before this position (they are
    /// only ever added, in log order).
    references_saved_through: u64,
}

/// The snapshot key of a back-reference: `r` stream-id 0x00 by-version(8). Stream ids never
/// hold a 0x00 byte (the log refuses them).
fn reference_key(stream_id: &str, by_version: u64) -> Vec<u8> {
    [b"r", stream_id.as_bytes(), &[0], &by_version.to_be_bytes()[..]].concat()
}

/// The row of a party state (None if it does not exist).
fn party_row(state: &AggregateState, last_position: u64) -> Option<PartyRow> {
    let AggregateState::Party(state) = state else {
        return None;
    };
    Some(PartyRow {
        code: state.code()?.to_owned(),
        details: state.details()?.clone(),
        details_version: state.details_version(),
        stream_version: state.version(),
        last_position,
    })
}

/// The row of a source state (None if it does not exist).
fn source_row(state: &AggregateState, last_position: u64) -> Option<SourceRow> {
    let AggregateState::Source(state) = state else {
        return None;
    };
    Some(SourceRow {
        source_id: state.source_id()?,
        details: state.details()?.clone(),
        stream_version: state.version(),
        last_position,
    })
}

/// One page of a directory map in key order: entries that existed at `at`, resuming after the
/// key in `token` (a token is `kind` then the key's bytes, hex).
fn page<K: Ord + Clone, T>(
    map: &BTreeMap<K, Current>,
    kind: u8,
    key_bytes: impl Fn(&K) -> Vec<u8>,
    key_of: impl Fn(&[u8]) -> Option<K>,
    (token, limit): (Option<&str>, usize),
    at: u64,
    mut row: impl FnMut(&K, &Current) -> ProjectionResult<Option<T>>,
) -> ProjectionResult<(Vec<T>, Option<String>)> {
    let limit = page_size(limit)?;
    let start = match token {
        None => Bound::Unbounded,
        Some(token) => {
            let bytes = decode_token(token)?;
            match bytes.split_first() {
                Some((first, rest)) if *first == kind => {
                    Bound::Excluded(key_of(rest).ok_or_else(|| invalid_token("malformed"))?)
                }
                _ => return Err(invalid_token("belongs to another query")),
            }
        }
    };
    let mut rows = Vec::new();
    let mut scanned = 0;
    for (key, current) in map.range((start, Bound::Unbounded)) {
        scanned += 1;
        if current.first_position <= at {
            if let Some(item) = row(key, current)? {
                rows.push(item);
            }
        }
        if rows.len() == limit || scanned == MAX_SCANNED_PER_PAGE {
            let mut bytes = vec![kind];
            bytes.extend_from_slice(&key_bytes(key));
            return Ok((rows, Some(encode_hex(&bytes))));
        }
    }
    Ok((rows, None))
}

impl DirectoryModel {
    /// The back-references of `stream_id` from versions after `after_version`, recorded at or
    /// before `at`.
    pub(crate) fn back_references(&self, stream_id: &str, after_version: u64, at: u64) -> Vec<BackReference> {
        let Some(references) = self.back_references.get(stream_id) else {
            return Vec::new();
        };
        let start = references.partition_point(|reference| reference.by_version <= after_version);
        references[start..]
            .iter()
            .take_while(|reference| reference.by_position <= at)
            .copied()
            .collect()
    }

    /// Appends a back-reference of `stream_id`; false (and nothing added) unless it follows the
    /// stream's last one in version order.
    fn add_reference(&mut self, stream_id: &str, reference: BackReference) -> bool {
        let references = match self.back_references.get_mut(stream_id) {
            Some(references) => references,
            None => self.back_references.entry(stream_id.to_owned()).or_default(),
        };
        let in_order = references.last().is_none_or(|last| {
            last.by_version < reference.by_version && last.by_position < reference.by_position
        });
        if in_order {
            references.push(reference);
        }
        in_order
    }

    /// One party as of `at`.
    pub(crate) fn party(&self, log: &Log, code: &str, at: u64) -> ProjectionResult<Option<PartyRow>> {
        row_at(log, &party_stream_id(code), self.parties.get(code), at, party_row)
    }

    /// One source as of `at`.
    pub(crate) fn source(
        &self,
        log: &Log,
        source_id: SourceId,
        at: u64,
    ) -> ProjectionResult<Option<SourceRow>> {
        let current = self.sources.get(&source_id.uuid());
        row_at(log, &source_id.stream_id(), current, at, source_row)
    }

    /// Parties by code as of `at`.
    pub(crate) fn parties(
        &self,
        log: &Log,
        at: u64,
        token: Option<&str>,
        limit: usize,
    ) -> ProjectionResult<(Vec<PartyRow>, Option<String>)> {
        page(
            &self.parties,
            b'P',
            |code: &String| code.as_bytes().to_vec(),
            |bytes| String::from_utf8(bytes.to_vec()).ok(),
            (token, limit),
            at,
            |code, _| self.party(log, code, at),
        )
    }

    /// Sources by id as of `at`.
    pub(crate) fn sources(
        &self,
        log: &Log,
        at: u64,
        token: Option<&str>,
        limit: usize,
    ) -> ProjectionResult<(Vec<SourceRow>, Option<String>)> {
        page(
            &self.sources,
            b'S',
            |uuid: &uuid::Uuid| uuid.as_bytes().to_vec(),
            |bytes| uuid::Uuid::from_slice(bytes).ok(),
            (token, limit),
            at,
            |uuid, _| self.source(log, SourceId::from_uuid(*uuid), at),
        )
    }
}

impl Projection for DirectoryModel {
    fn apply(&mut self, change: &Change<'_>) {
        let position = change.envelope.position;
        if let Some((target, retracts)) = back_reference(change.event) {
            let reference = BackReference {
                by_version: change.envelope.stream_version,
                by_position: position,
                target,
                retracts,
            };
            let added = self.add_reference(&change.envelope.stream_id, reference);
            assert!(added, "a stream's events are applied in version order");
        }
        match change.after {
            AggregateState::Party(after) => {
                let Some(code) = after.code().filter(|_| after.details().is_some()) else {
                    return;
                };
                let current = Current::advanced(self.parties.get(code), change.kept.clone(), position);
                self.parties.insert(code.to_owned(), current);
                self.dirty_parties.mark(code.to_owned());
            }
            AggregateState::Source(after) => {
                let Some(source_id) = after.source_id().filter(|_| after.details().is_some()) else {
                    return;
                };
                let uuid = source_id.uuid();
                let current = Current::advanced(self.sources.get(&uuid), change.kept.clone(), position);
                self.sources.insert(uuid, current);
                self.dirty_sources.mark(uuid);
            }
            _ => {}
        }
    }

    /// `p` code -> a party's state; `s` uuid -> a source's state; `r` stream 0x00 version ->
    /// one back-reference (only new ones are written: a correction costs the same bytes however
    /// many came before it).
    fn save(&mut self, out: &mut Snapshot<'_>) {
        let codes = self.dirty_parties.take_ids(self.parties.keys().cloned());
        let uuids = self.dirty_sources.take_ids(self.sources.keys().copied());
        for code in codes {
            out.put_entity(EntityKey::new(b'p', code.as_bytes()), &self.parties[&code]);
        }
        for uuid in uuids {
            out.put_entity(EntityKey::new(b's', uuid.as_bytes()), &self.sources[&uuid]);
        }
        let saved_through = self.references_saved_through;
        for (stream_id, references) in &self.back_references {
            let unsaved = references.partition_point(|reference| reference.by_position <= saved_through);
            for reference in &references[unsaved..] {
                out.put(
                    reference_key(stream_id, reference.by_version),
                    crate::encoding::encode(reference),
                );
                self.references_saved_through = self.references_saved_through.max(reference.by_position);
            }
        }
    }

    fn unsave(&mut self) {
        self.dirty_parties.mark_all();
        self.dirty_sources.mark_all();
        self.references_saved_through = 0;
    }

    fn restore(&mut self, key: &[u8], value: &[u8]) -> ProjectionResult<()> {
        match key.split_first() {
            Some((b'p', code)) => {
                let malformed = || ProjectionError::DataLoss("read-model snapshot: malformed party".into());
                // A party's snapshot key holds its code inline (`EntityKey`): a code the
                // commands would refuse is damage, not a party.
                if !crate::domain::common::PARTY_CODE_LEN.contains(&code.len()) {
                    return Err(malformed());
                }
                let code = String::from_utf8(code.to_vec()).map_err(|_| malformed())?;
                let current = restore_entity(value, AggregateState::Party)?;
                self.parties.insert(code, current);
            }
            Some((b's', id)) => {
                let current = restore_entity(value, AggregateState::Source)?;
                self.sources.insert(uuid_key(id)?, current);
            }
            Some((b'r', rest)) if rest.len() > 9 && rest[rest.len() - 9] == 0 => {
                let malformed =
                    || ProjectionError::DataLoss("read-model snapshot: malformed back-reference".into());
                let stream_id = std::str::from_utf8(&rest[..rest.len() - 9]).map_err(|_| malformed())?;
                let reference: BackReference = crate::encoding::decode(value).map_err(|_| malformed())?;
                if reference_key(stream_id, reference.by_version) != key {
                    return Err(malformed());
                }
                // Written in log order, so each stream's in version order.
                if !self.add_reference(stream_id, reference) {
                    return Err(malformed());
                }
                self.references_saved_through = self.references_saved_through.max(reference.by_position);
            }
            _ => {
                return Err(ProjectionError::DataLoss(
                    "read-model snapshot: unknown directory key".into(),
                ))
            }
        }
        Ok(())
    }

    fn states(&self, out: &mut Vec<(String, std::sync::Arc<Kept>)>) {
        for (code, current) in &self.parties {
            out.push((party_stream_id(code), current.state.clone()));
        }
        for (uuid, current) in &self.sources {
            out.push((SourceId::from_uuid(*uuid).stream_id(), current.state.clone()));
        }
    }

    fn dump(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let parties = self.parties.iter().filter_map(|(code, current)| {
            let row = party_row(&current.state.state(), current.last_position)?;
            Some((
                [&b"P"[..], code.as_bytes()].concat(),
                crate::encoding::encode(&(current.first_position, row)),
            ))
        });
        let sources = self.sources.iter().filter_map(|(uuid, current)| {
            let row = source_row(&current.state.state(), current.last_position)?;
            Some((
                [&b"S"[..], uuid.as_bytes()].concat(),
                crate::encoding::encode(&(current.first_position, row)),
            ))
        });
        // Stream ids in order, 0x00 after each: the keys come in order.
        let references = self.back_references.iter().flat_map(|(stream_id, references)| {
            references.iter().map(move |reference| {
                let mut key = reference_key(stream_id, reference.by_version);
                key[0] = b'R';
                (key, crate::encoding::encode(reference))
            })
        });
        // In key order: `P` < `R` < `S`.
        parties.chain(references).chain(sources).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::DirectoryModel;
    use crate::projections::error::ProjectionError;
    use crate::projections::runner::Projection;

    #[test]
    fn a_restored_party_whose_code_no_command_accepts_is_data_loss() {
        let mut model = DirectoryModel::default();
        for code in ["A".repeat(13), "A".to_owned()] {
            let key = [&b"p"[..], code.as_bytes()].concat();
            let error = model.restore(&key, b"").expect_err("not a party");
            assert!(
                matches!(&error, ProjectionError::DataLoss(message) if message.contains("malformed party")),
                "{error}"
            );
        }
    }
}
