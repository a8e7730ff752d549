//! Parties and sources: one multi-version row each, listed in key order.

use serde::{Deserialize, Serialize};

use super::error::ProjectionResult;
use super::runner::{Change, Projection};
use super::store::{add_index_entries, row_at, row_base, scan_index, Txn};
use crate::domain::common::SourceId;
use crate::domain::party::PartyDetails;
use crate::domain::source::SourceDetails;
use crate::domain::AggregateState;

const KIND_PARTY: u8 = b'p';
const KIND_SOURCE: u8 = b's';
const IDX_PARTIES: u8 = b'P';
const IDX_SOURCES: u8 = b'S';

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

fn party_base(code: &str) -> Vec<u8> {
    row_base(KIND_PARTY, code.as_bytes())
}

fn source_base(source_id: SourceId) -> Vec<u8> {
    row_base(KIND_SOURCE, source_id.uuid().as_bytes())
}

/// The party as of `at`.
pub(crate) fn party(tree: &sled::Tree, code: &str, at: u64) -> ProjectionResult<Option<PartyRow>> {
    row_at(tree, &party_base(code), at)
}

/// The source as of `at`.
pub(crate) fn source(tree: &sled::Tree, source_id: SourceId, at: u64) -> ProjectionResult<Option<SourceRow>> {
    row_at(tree, &source_base(source_id), at)
}

/// Parties registered as of `at`, by code.
pub(crate) fn parties(
    tree: &sled::Tree,
    at: u64,
    token: Option<&str>,
    limit: usize,
) -> ProjectionResult<(Vec<PartyRow>, Option<String>)> {
    scan_index(tree, IDX_PARTIES, "", 0, 0, token, limit, |id, _| {
        party(tree, std::str::from_utf8(id).unwrap_or_default(), at)
    })
}

/// Sources registered as of `at`, by id (UUID v7: roughly by registration time).
pub(crate) fn sources(
    tree: &sled::Tree,
    at: u64,
    token: Option<&str>,
    limit: usize,
) -> ProjectionResult<(Vec<SourceRow>, Option<String>)> {
    scan_index(
        tree,
        IDX_SOURCES,
        "",
        0,
        0,
        token,
        limit,
        |id, _| match uuid::Uuid::from_slice(id) {
            Ok(uuid) => source(tree, SourceId::from_uuid(uuid), at),
            Err(_) => Ok(None),
        },
    )
}

/// The directory projection.
pub(crate) struct DirectoryProjection;

impl Projection for DirectoryProjection {
    fn apply(&self, change: &Change<'_>, _tree: &sled::Tree, txn: &mut Txn) -> ProjectionResult<()> {
        let position = change.envelope.position;
        let stream_version = change.envelope.stream_version;
        match (change.before, change.after) {
            (AggregateState::Party(before), AggregateState::Party(after)) => {
                let (Some(code), Some(details)) = (after.code(), after.details()) else {
                    return Ok(());
                };
                if !before.exists() {
                    add_index_entries(txn, code.as_bytes(), &[], &[(IDX_PARTIES, String::new(), 0)]);
                }
                let row = PartyRow {
                    code: code.to_owned(),
                    details: details.clone(),
                    details_version: after.details_version(),
                    stream_version,
                    last_position: position,
                };
                txn.put_row(&party_base(code), position, &row);
            }
            (AggregateState::Source(before), AggregateState::Source(after)) => {
                let (Some(source_id), Some(details)) = (after.source_id(), after.details()) else {
                    return Ok(());
                };
                if !before.exists() {
                    add_index_entries(
                        txn,
                        source_id.uuid().as_bytes(),
                        &[],
                        &[(IDX_SOURCES, String::new(), 0)],
                    );
                }
                let row = SourceRow {
                    source_id,
                    details: details.clone(),
                    stream_version,
                    last_position: position,
                };
                txn.put_row(&source_base(source_id), position, &row);
            }
            _ => {}
        }
        Ok(())
    }
}
