//! Officials: offices held over time, who held a post on a date, and who met whom (held
//! meetings both attended, maintained incrementally per official).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::ProjectionResult;
use super::meetings::{MeetingRow, MeetingStatusView};
use super::runner::{Change, Projection};
use super::store::{add_index_entries, row_at, row_base, scan_index, Txn};
use crate::domain::common::OfficialId;
use crate::domain::official::State;
use crate::domain::time::{OccurredAt, Timestamp};
use crate::domain::AggregateState;

const KIND: u8 = b'o';
const KIND_CONTACTS: u8 = b'x';
const IDX_POST: u8 = b'P';
const IDX_PARTY: u8 = b'p';

/// One office (tenure) in effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfficeRow {
    /// Stream version of the `OfficialAppointed` event (identifies the tenure).
    pub tenure_version: u64,
    /// The post.
    pub post: String,
    /// The party served.
    pub party: String,
    /// Where accredited, for envoys.
    pub accredited_to: Option<String>,
    /// Start, if known.
    pub from: Option<OccurredAt>,
    /// End, if known (from the term or a `TenureEnded`).
    pub to: Option<OccurredAt>,
    /// When a source showed the person in office.
    pub attested_at: OccurredAt,
}

impl OfficeRow {
    /// Whether the office was held at `instant`: from its start (else its attestation) until
    /// its end, exclusive.
    pub fn held_on(&self, instant: Timestamp) -> bool {
        let start = self.from.unwrap_or(self.attested_at).at();
        start <= instant && self.to.is_none_or(|end| instant < end.at())
    }
}

/// An official as the ledger says they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfficialRow {
    /// The official.
    pub official_id: OfficialId,
    /// Name in effect.
    pub name: String,
    /// Offices in effect, in order recorded.
    pub offices: Vec<OfficeRow>,
    /// Stream versions retracted.
    pub retracted_versions: Vec<u64>,
    /// Events folded (stream version).
    pub stream_version: u64,
    /// Log position of the last event folded.
    pub last_position: u64,
}

impl OfficialRow {
    /// The row for a folded official state.
    pub fn from_state(state: &State, last_position: u64) -> Option<OfficialRow> {
        Some(OfficialRow {
            official_id: state.official_id()?,
            name: state.name().to_owned(),
            offices: state
                .offices()
                .iter()
                .map(|office| OfficeRow {
                    tenure_version: office.tenure_version(),
                    post: office.post().to_owned(),
                    party: office.party().to_owned(),
                    accredited_to: office.accredited_to().map(str::to_owned),
                    from: office.from(),
                    to: office.to(),
                    attested_at: office.attested_at(),
                })
                .collect(),
            retracted_versions: state.retracted_versions().to_vec(),
            stream_version: state.version(),
            last_position,
        })
    }

    fn index_entries(&self) -> Vec<(u8, String, i64)> {
        let mut entries = Vec::new();
        for office in &self.offices {
            entries.push((IDX_POST, office.post.to_lowercase(), 0));
            entries.push((IDX_PARTY, office.party.clone(), 0));
            if let Some(accredited_to) = &office.accredited_to {
                entries.push((IDX_PARTY, accredited_to.clone(), 0));
            }
        }
        entries.sort();
        entries.dedup();
        entries
    }
}

/// Who an official met: other officials at held meetings, with the number of meetings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactsRow {
    /// Other official (UUID text) -> held meetings both attended.
    pub met: BTreeMap<String, i64>,
}

/// The stored form of a [`ContactsRow`]: other officials as 16-byte UUIDs (keys that are not
/// UUID text, which the projection never writes, are kept as text), ~18 bytes per contact
/// instead of ~38.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct StoredContacts {
    met: Vec<([u8; 16], i64)>,
    other: Vec<(String, i64)>,
}

impl StoredContacts {
    fn pack(row: &ContactsRow) -> StoredContacts {
        let mut stored = StoredContacts::default();
        for (other, count) in &row.met {
            match uuid::Uuid::parse_str(other) {
                Ok(uuid) if uuid.to_string() == *other => stored.met.push((*uuid.as_bytes(), *count)),
                _ => stored.other.push((other.clone(), *count)),
            }
        }
        stored
    }

    fn unpack(&self) -> ContactsRow {
        let mut met: BTreeMap<String, i64> = self
            .met
            .iter()
            .map(|(uuid, count)| (uuid::Uuid::from_bytes(*uuid).to_string(), *count))
            .collect();
        met.extend(self.other.iter().cloned());
        ContactsRow { met }
    }
}

/// An official who held a post on a date, with the office.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostHolder {
    /// The official.
    pub official_id: OfficialId,
    /// Their name.
    pub name: String,
    /// The office held on the date.
    pub office: OfficeRow,
}

fn base(official_id: OfficialId) -> Vec<u8> {
    row_base(KIND, official_id.uuid().as_bytes())
}

fn contacts_base(official_id: OfficialId) -> Vec<u8> {
    row_base(KIND_CONTACTS, official_id.uuid().as_bytes())
}

/// The official as of `at`.
pub(crate) fn get(
    tree: &sled::Tree,
    official_id: OfficialId,
    at: u64,
) -> ProjectionResult<Option<OfficialRow>> {
    row_at(tree, &base(official_id), at)
}

/// Who `official_id` met, as of `at`.
pub(crate) fn contacts(tree: &sled::Tree, official_id: OfficialId, at: u64) -> ProjectionResult<ContactsRow> {
    Ok(row_at::<StoredContacts>(tree, &contacts_base(official_id), at)?
        .map(|stored| stored.unpack())
        .unwrap_or_default())
}

fn id_from_bytes(bytes: &[u8]) -> Option<OfficialId> {
    uuid::Uuid::from_slice(bytes).ok().map(OfficialId::from_uuid)
}

/// Officials who held `post` (case-insensitive) on `on` (valid time), as of `at`.
pub(crate) fn post_holders(
    tree: &sled::Tree,
    post: &str,
    on: Timestamp,
    at: u64,
    token: Option<&str>,
    limit: usize,
) -> ProjectionResult<(Vec<PostHolder>, Option<String>)> {
    let post = post.to_lowercase();
    scan_index(tree, IDX_POST, &post, 0, 0, token, limit, |id, _| {
        let Some(official_id) = id_from_bytes(id) else {
            return Ok(None);
        };
        let Some(row) = get(tree, official_id, at)? else {
            return Ok(None);
        };
        let office = row
            .offices
            .iter()
            .find(|office| office.post.to_lowercase() == post && office.held_on(on))
            .cloned();
        Ok(office.map(|office| PostHolder {
            official_id,
            name: row.name.clone(),
            office,
        }))
    })
}

/// Officials serving or accredited to `party` (at any time), as of `at`.
pub(crate) fn by_party(
    tree: &sled::Tree,
    party: &str,
    at: u64,
    token: Option<&str>,
    limit: usize,
) -> ProjectionResult<(Vec<OfficialRow>, Option<String>)> {
    scan_index(tree, IDX_PARTY, party, 0, 0, token, limit, |id, _| {
        let Some(official_id) = id_from_bytes(id) else {
            return Ok(None);
        };
        Ok(get(tree, official_id, at)?.filter(|row| {
            row.offices
                .iter()
                .any(|office| office.party == party || office.accredited_to.as_deref() == Some(party))
        }))
    })
}

/// Pairs of officials at a held meeting: official -> (other -> 1).
pub fn meeting_contacts(row: &MeetingRow) -> BTreeMap<OfficialId, BTreeMap<String, i64>> {
    let mut contacts = BTreeMap::new();
    if row.status != MeetingStatusView::Held {
        return contacts;
    }
    let officials = row.details.official_ids();
    for official in &officials {
        let others: BTreeMap<String, i64> = officials
            .iter()
            .filter(|other| *other != official)
            .map(|other| (other.to_string(), 1))
            .collect();
        if !others.is_empty() {
            contacts.insert(*official, others);
        }
    }
    contacts
}

/// The officials projection.
pub(crate) struct OfficialsProjection;

impl Projection for OfficialsProjection {
    fn apply(&self, change: &Change<'_>, tree: &sled::Tree, txn: &mut Txn) -> ProjectionResult<()> {
        let position = change.envelope.position;
        match (change.before, change.after) {
            (AggregateState::Official(before), AggregateState::Official(after)) => {
                let Some(new) = OfficialRow::from_state(after, position) else {
                    return Ok(());
                };
                let old_entries = OfficialRow::from_state(before, 0)
                    .map(|row| row.index_entries())
                    .unwrap_or_default();
                add_index_entries(
                    txn,
                    new.official_id.uuid().as_bytes(),
                    &old_entries,
                    &new.index_entries(),
                );
                txn.put_row(&base(new.official_id), position, &new);
                Ok(())
            }
            (AggregateState::Meeting(before), AggregateState::Meeting(after)) => {
                let old = MeetingRow::from_state(before, 0)
                    .map(|row| meeting_contacts(&row))
                    .unwrap_or_default();
                let new = MeetingRow::from_state(after, position)
                    .map(|row| meeting_contacts(&row))
                    .unwrap_or_default();
                let mut officials: Vec<&OfficialId> = old.keys().chain(new.keys()).collect();
                officials.sort();
                officials.dedup();
                let empty = BTreeMap::new();
                for official in officials {
                    let (before, after) = (
                        old.get(official).unwrap_or(&empty),
                        new.get(official).unwrap_or(&empty),
                    );
                    if before == after {
                        continue;
                    }
                    let contacts_key = contacts_base(*official);
                    let mut row = txn
                        .latest_aggregate::<StoredContacts>(tree, &contacts_key)?
                        .map(|stored| stored.unpack())
                        .unwrap_or_default();
                    for (other, count) in before {
                        *row.met.entry(other.clone()).or_insert(0) -= count;
                    }
                    for (other, count) in after {
                        *row.met.entry(other.clone()).or_insert(0) += count;
                    }
                    row.met.retain(|_, count| *count != 0);
                    txn.put_aggregate(contacts_key, position, &StoredContacts::pack(&row));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}
