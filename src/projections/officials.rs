//! Officials: offices held over time, who held a post on a date, and who met whom (held
//! meetings both attended, maintained incrementally per official).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::ProjectionResult;
use super::index::Index;
use super::kept::Kept;
use super::meetings::{MeetingRow, MeetingStatusView};
use super::runner::{Change, Projection};
use super::snapshot_writer::EntityKey;
use super::store::Map;
use super::store::{
    item_id, item_uuid, restore_entity, row_at, tally_key, uuid_key, Current, Dirty, Entry, Interner,
    Snapshot, Tally,
};
use crate::domain::common::OfficialId;
use crate::domain::official::State;
use crate::domain::AggregateState;
use crate::log::Log;
use crate::time::{OccurredAt, Timestamp};

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

    fn index_entries(&self) -> Vec<Entry> {
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

/// The officials read model.
#[derive(Default)]
pub(crate) struct OfficialsModel {
    rows: Map<uuid::Uuid, Current>,
    index: Index,
    contacts: Map<uuid::Uuid, Tally>,
    names: Interner,
    /// Officials changed since the last snapshot.
    dirty: Dirty<uuid::Uuid>,
}

impl OfficialsModel {
    /// The official as of `at`.
    pub(crate) fn get(
        &self,
        log: &Log,
        official_id: OfficialId,
        at: u64,
    ) -> ProjectionResult<Option<OfficialRow>> {
        let current = self.rows.get(&official_id.uuid());
        row_at(
            log,
            &official_id.stream_id(),
            current,
            at,
            |state, last| match state {
                AggregateState::Official(state) => OfficialRow::from_state(state, last),
                _ => None,
            },
        )
    }

    /// Who `official_id` met, as of `at`.
    pub(crate) fn contacts(&self, official_id: OfficialId, at: u64) -> ContactsRow {
        let met = self
            .contacts
            .get(&official_id.uuid())
            .map(|tally| {
                tally
                    .at(at)
                    .into_iter()
                    .map(|(other, count)| (self.names.name(other).to_owned(), count))
                    .collect()
            })
            .unwrap_or_default();
        ContactsRow { met }
    }

    /// Officials who held `post` (case-insensitive) on `on` (valid time), as of `at`.
    #[allow(clippy::too_many_arguments)] // the log, a post, a date, a position, a page
    pub(crate) fn post_holders(
        &self,
        log: &Log,
        post: &str,
        on: Timestamp,
        at: u64,
        token: Option<&str>,
        limit: usize,
    ) -> ProjectionResult<(Vec<PostHolder>, Option<String>)> {
        let post = post.to_lowercase();
        self.index
            .scan(IDX_POST, &post, (0, 0), at, token, limit, |id, _| {
                let official_id = OfficialId::from_uuid(item_uuid(id));
                let Some(row) = self.get(log, official_id, at)? else {
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
        &self,
        log: &Log,
        party: &str,
        at: u64,
        token: Option<&str>,
        limit: usize,
    ) -> ProjectionResult<(Vec<OfficialRow>, Option<String>)> {
        self.index
            .scan(IDX_PARTY, party, (0, 0), at, token, limit, |id, _| {
                let official_id = OfficialId::from_uuid(item_uuid(id));
                Ok(self.get(log, official_id, at)?.filter(|row| {
                    row.offices
                        .iter()
                        .any(|office| office.party == party || office.accredited_to.as_deref() == Some(party))
                }))
            })
    }

    fn apply_official(&mut self, change: &Change<'_>, before: &State, after: &State) {
        let position = change.envelope.position;
        let Some(new) = OfficialRow::from_state(after, position) else {
            return;
        };
        let old_entries = OfficialRow::from_state(before, 0)
            .map(|row| row.index_entries())
            .unwrap_or_default();
        let uuid = new.official_id.uuid();
        self.index
            .update(item_id(0, &uuid), &old_entries, &new.index_entries(), position);
        let current = Current::advanced(self.rows.get(&uuid), change.kept.clone(), position);
        self.rows.insert(uuid, current);
        self.dirty.mark(uuid);
    }

    fn apply_meeting(
        &mut self,
        position: u64,
        before: &crate::domain::meeting::State,
        after: &crate::domain::meeting::State,
    ) {
        if super::meetings::same_outline(before, after) {
            return;
        }
        let old = MeetingRow::outline(before)
            .map(|row| meeting_contacts(&row))
            .unwrap_or_default();
        let new = MeetingRow::outline(after)
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
            let mut components = |counts: &BTreeMap<String, i64>| -> BTreeMap<u32, i64> {
                counts
                    .iter()
                    .map(|(other, count)| (self.names.intern(other), *count))
                    .collect()
            };
            let (before, after) = (components(before), components(after));
            self.contacts
                .entry(official.uuid())
                .or_default()
                .change(position, &before, &after);
        }
    }
}

impl Projection for OfficialsModel {
    fn indexes(&mut self) -> Vec<&mut super::index::Index> {
        vec![&mut self.index]
    }

    fn apply(&mut self, change: &Change<'_>) {
        match (change.before, change.after) {
            (AggregateState::Official(before), AggregateState::Official(after)) => {
                self.apply_official(change, before, after);
            }
            (AggregateState::Meeting(before), AggregateState::Meeting(after)) => {
                self.apply_meeting(change.envelope.position, before, after);
            }
            _ => {}
        }
    }

    /// `E` uuid -> the state; `I` -> index entries; `T` uuid seq(8) -> one contacts delta.
    fn save(&mut self, out: &mut Snapshot<'_>) {
        let ids = self.dirty.take_ids(self.rows.keys().copied());
        for uuid in ids {
            out.put_entity(EntityKey::new(b'E', uuid.as_bytes()), &self.rows[&uuid]);
        }
        self.index.save(out, b"I");
        for (uuid, tally) in self.contacts.iter_mut().filter(|(_, tally)| tally.unsaved()) {
            tally.save(out, &[&b"T"[..], uuid.as_bytes()].concat(), &self.names);
        }
    }

    fn unsave(&mut self) {
        self.dirty.mark_all();
        self.index.unsave();
        for tally in self.contacts.values_mut() {
            tally.unsave();
        }
    }

    fn restore(&mut self, key: &[u8], value: &[u8]) -> ProjectionResult<()> {
        match key.split_first() {
            Some((b'E', id)) => {
                let current = restore_entity(value, AggregateState::Official)?;
                self.rows.insert(uuid_key(id)?, current);
            }
            Some((b'I', rest)) => self.index.restore(rest, value)?,
            Some((b'T', rest)) => {
                let (uuid, seq) = tally_key(rest)?;
                self.contacts
                    .entry(uuid_key(uuid)?)
                    .or_default()
                    .restore(seq, value, &mut self.names)?;
            }
            _ => {
                return Err(super::ProjectionError::DataLoss(
                    "read-model snapshot: unknown officials key".into(),
                ))
            }
        }
        Ok(())
    }

    fn states(&self, out: &mut Vec<(String, std::sync::Arc<Kept>)>) {
        for (uuid, current) in &self.rows {
            out.push((OfficialId::from_uuid(*uuid).stream_id(), current.state.clone()));
        }
    }

    fn dump(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out: Vec<(Vec<u8>, Vec<u8>)> = self
            .rows
            .iter()
            .filter_map(|(uuid, current)| {
                let AggregateState::Official(state) = &*current.state.state() else {
                    return None;
                };
                let row = OfficialRow::from_state(state, current.last_position)?;
                let key = [&b"R"[..], uuid.as_bytes()].concat();
                Some((key, crate::encoding::encode(&(current.first_position, row))))
            })
            .chain(
                self.contacts
                    .iter()
                    .map(|(uuid, tally)| ([&b"T"[..], uuid.as_bytes()].concat(), tally.dump(&self.names))),
            )
            .collect();
        out.sort();
        self.index.dump(&mut out);
        out
    }
}
