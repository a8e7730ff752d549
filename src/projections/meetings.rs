//! Meetings read model: every meeting's latest state, indexed by party, official, topic,
//! place, country, status and (for all meetings) by when it happened.

use serde::{Deserialize, Serialize};

use super::error::{ProjectionError, ProjectionResult};
use super::index::Index;
use super::kept::Kept;
use super::runner::{Change, Projection};
use super::snapshot_writer::EntityKey;
use super::store::Map;
use super::store::{
    item_id, item_uuid, restore_entity, state_at, uuid_key, Changed, Current, Dirty, Entry, Snapshot,
};
use crate::domain::common::{MeetingId, OfficialId, TimeWindow};
use crate::domain::meeting::{self, MeetingDetails, MeetingStatus, Speaker, State};
use crate::domain::{AggregateState, DomainEvent};
use crate::log::{Log, RecordLocation};
use crate::time::{OccurredAt, Timestamp};

const IDX_ALL: u8 = b'a';
const IDX_PARTY: u8 = b'p';
const IDX_OFFICIAL: u8 = b'o';
const IDX_TOPIC: u8 = b't';
const IDX_PLACE: u8 = b'l';
const IDX_COUNTRY: u8 = b'c';
const IDX_STATUS: u8 = b's';

/// A meeting's lifecycle status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MeetingStatusView {
    /// Proposed by a party.
    Proposed,
    /// Scheduled.
    Scheduled,
    /// Moved to another time.
    Rescheduled,
    /// Took place.
    Held,
    /// Called off.
    Cancelled,
    /// Put off without a new date.
    Postponed,
}

impl MeetingStatusView {
    fn of(status: MeetingStatus) -> MeetingStatusView {
        match status {
            MeetingStatus::Proposed => MeetingStatusView::Proposed,
            MeetingStatus::Scheduled => MeetingStatusView::Scheduled,
            MeetingStatus::Rescheduled => MeetingStatusView::Rescheduled,
            MeetingStatus::Held => MeetingStatusView::Held,
            MeetingStatus::Cancelled => MeetingStatusView::Cancelled,
            MeetingStatus::Postponed => MeetingStatusView::Postponed,
        }
    }

    /// Stable name, e.g. `Held`.
    pub fn as_str(self) -> &'static str {
        match self {
            MeetingStatusView::Proposed => "Proposed",
            MeetingStatusView::Scheduled => "Scheduled",
            MeetingStatusView::Rescheduled => "Rescheduled",
            MeetingStatusView::Held => "Held",
            MeetingStatusView::Cancelled => "Cancelled",
            MeetingStatusView::Postponed => "Postponed",
        }
    }
}

/// A statement in effect (retracted statements are not listed; the history keeps them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementRow {
    /// Stream version of the `StatementRecorded` event.
    pub version: u64,
    /// Who spoke.
    pub speaker: Speaker,
    /// What was said.
    pub text: String,
    /// Whether `text` is verbatim.
    pub verbatim: bool,
    /// When it was said.
    pub occurred_at: OccurredAt,
}

/// A statement count as a row's (statements are limited far below 2^32).
fn statement_count(len: usize) -> u32 {
    u32::try_from(len).expect("statements per meeting are limited")
}

/// A meeting as the ledger says it is, corrections and retractions applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeetingRow {
    /// The meeting.
    pub meeting_id: MeetingId,
    /// Lifecycle status.
    pub status: MeetingStatusView,
    /// Proposing parties, if it was proposed.
    pub proposed_by: Vec<String>,
    /// Details in effect (the latest correction).
    pub details: MeetingDetails,
    /// Stream version of the event whose details are in effect.
    pub details_version: u64,
    /// Planned time, if scheduled.
    pub window: Option<TimeWindow>,
    /// When it was held.
    pub held_at: Option<OccurredAt>,
    /// When it ended, if known.
    pub ended_at: Option<Timestamp>,
    /// Why it was cancelled, if it is.
    pub cancellation_reason: Option<String>,
    /// Who cancelled it, if it is (empty: not reported).
    pub cancelled_by: Vec<String>,
    /// Why it was postponed, if it is.
    pub postponement_reason: Option<String>,
    /// Statements in effect (left out of a list's rows: see `statement_count`).
    pub statements: Vec<StatementRow>,
    /// How many statements are in effect, also when the row leaves them out: a list's rows (a
    /// page of meetings, a relation's timeline) carry the count only, so a page's size does not
    /// grow with what was said at each meeting (up to `MAX_STATEMENTS_PER_MEETING` statements
    /// of `MAX_TEXT_LEN` bytes each).
    pub statement_count: u32,
    /// Stream versions retracted.
    pub retracted_versions: Vec<u64>,
    /// Events folded (stream version).
    pub stream_version: u64,
    /// Log position of the last event folded.
    pub last_position: u64,
}

impl MeetingRow {
    /// The row for a folded meeting state (None if the meeting does not exist) with
    /// `statements`, the ones its state names as in effect (their texts are the log's: the read
    /// model reads them where it saw them stored).
    pub fn from_state(
        state: &State,
        last_position: u64,
        statements: Vec<StatementRow>,
    ) -> Option<MeetingRow> {
        Some(MeetingRow::outline(state)?.completed(state, last_position, statements))
    }

    /// The outline completed with its statements, retractions and last position.
    fn completed(mut self, state: &State, last_position: u64, statements: Vec<StatementRow>) -> MeetingRow {
        self.statement_count = statement_count(statements.len());
        self.statements = statements;
        self.retracted_versions = state.retracted_versions().to_vec();
        self.last_position = last_position;
        self
    }

    /// The outline completed as a list gives it: its statements counted, not listed.
    fn listed(self, state: &State, last_position: u64) -> MeetingRow {
        let in_effect = state.statements_in_effect().count();
        let mut row = self.completed(state, last_position, Vec::new());
        row.statement_count = statement_count(in_effect);
        row
    }

    /// The row without its statements and retractions: what relation and contact counts read
    /// (they never look at statements), at a cost independent of how many were made.
    pub(crate) fn outline(state: &State) -> Option<MeetingRow> {
        Some(MeetingRow {
            meeting_id: state.meeting_id()?,
            status: MeetingStatusView::of(state.status()?),
            proposed_by: state.proposed_by().to_vec(),
            details: state.details()?.clone(),
            details_version: state.details_version(),
            window: state.window(),
            held_at: state.held_at(),
            ended_at: state.ended_at(),
            cancellation_reason: state.cancellation_reason().map(str::to_owned),
            cancelled_by: state.cancelled_by().to_vec(),
            postponement_reason: state.postponement_reason().map(str::to_owned),
            statements: Vec::new(),
            statement_count: 0,
            retracted_versions: Vec::new(),
            stream_version: state.version(),
            last_position: 0,
        })
    }

    /// Valid time of the meeting: when it was held, else the start of its planned window.
    pub fn occurred_at(&self) -> Option<Timestamp> {
        self.held_at
            .map(|held| held.at())
            .or(self.window.map(|window| window.start.at()))
    }

    pub(crate) fn sort_key(&self) -> i64 {
        self.occurred_at().map_or(i64::MIN, Timestamp::unix_micros)
    }
}

/// Whether two states of a meeting are listed, counted and related alike: what they differ in,
/// if anything, is statements and retractions of them, which no index, relation or contact
/// count reads. Lets the read models skip the work for the most common event, a statement.
pub(crate) fn same_outline(before: &State, after: &State) -> bool {
    before.status() == after.status()
        && before.held_at() == after.held_at()
        && before.window() == after.window()
        && before.ended_at() == after.ended_at()
        && before.same_details(after)
}

/// The statements in effect of a meeting's state, each read from where the read model saw it
/// stored (`located`: one per statement recorded, in order; an as-of state uses a prefix).
fn read_located_statements(
    log: &Log,
    meeting_id: MeetingId,
    state: &State,
    located: &[StatementAt],
) -> ProjectionResult<Vec<StatementRow>> {
    let mut records = Vec::new();
    let mut versions = Vec::new();
    for (ordinal, version) in state.statements_in_effect() {
        let at = located.get(ordinal).ok_or_else(|| {
            ProjectionError::DataLoss(format!(
                "{}: statement {ordinal} was never located",
                meeting_id.stream_id()
            ))
        })?;
        records.push(at.located());
        versions.push(version);
    }
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let stream_id = meeting_id.stream_id();
    let mut rows = Vec::with_capacity(records.len());
    let mut failure = None;
    log.scan_located(&records, &mut |view| {
        let envelope = &view.envelope;
        let expected = versions[rows.len()];
        let row = if envelope.stream_version == expected && envelope.stream_id == stream_id {
            statement_row(envelope)
        } else {
            Err(ProjectionError::DataLoss(format!(
                "event at position {}: not statement {expected} of {stream_id}",
                envelope.position
            )))
        };
        match row {
            Ok(row) => {
                rows.push(row);
                std::ops::ControlFlow::Continue(())
            }
            Err(error) => {
                failure = Some(error);
                std::ops::ControlFlow::Break(())
            }
        }
    })?;
    match failure {
        Some(error) => Err(error),
        None => Ok(rows),
    }
}

/// The statement row of a `StatementRecorded` event read in place.
fn statement_row(envelope: &crate::log::EnvelopeRef<'_>) -> ProjectionResult<StatementRow> {
    let event = crate::domain::decode_event(envelope.event_type, envelope.schema_version, envelope.payload)
        .map_err(|error| {
        ProjectionError::DataLoss(format!("event at position {}: {error}", envelope.position))
    })?;
    let DomainEvent::Meeting(meeting::Event::StatementRecorded(event)) = event else {
        return Err(ProjectionError::DataLoss(format!(
            "event at position {}: a {} where the meeting's state has a statement",
            envelope.position, envelope.event_type
        )));
    };
    Ok(StatementRow {
        version: envelope.stream_version,
        speaker: event.speaker,
        text: event.text,
        verbatim: event.verbatim,
        occurred_at: event.provenance.occurred_at,
    })
}

/// The index memberships of a meeting's state (none if the meeting does not exist).
fn index_entries(state: &State) -> Vec<Entry> {
    let (Some(_), Some(status), Some(details)) = (state.meeting_id(), state.status(), state.details()) else {
        return Vec::new();
    };
    let sort = state
        .held_at()
        .map(|held| held.at())
        .or(state.window().map(|window| window.start.at()))
        .map_or(i64::MIN, Timestamp::unix_micros);
    let mut entries = vec![
        (IDX_ALL, String::new(), sort),
        (
            IDX_STATUS,
            MeetingStatusView::of(status).as_str().to_owned(),
            sort,
        ),
    ];
    for party in details.parties() {
        entries.push((IDX_PARTY, party.to_owned(), sort));
    }
    for official in details.official_ids() {
        entries.push((IDX_OFFICIAL, official.to_string(), sort));
    }
    for topic in &details.topics {
        entries.push((IDX_TOPIC, topic.clone(), sort));
    }
    if let Some(location) = &details.location {
        entries.push((IDX_PLACE, location.place.to_lowercase(), sort));
        if let Some(country) = &location.country {
            entries.push((IDX_COUNTRY, country.clone(), sort));
        }
    }
    entries
}

/// Which meetings to list. Every field given must match (AND); `occurred_from..=occurred_to`
/// is valid time (when it happened), independent of as-of (when it was recorded).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MeetingFilter {
    /// A participating party.
    pub party: Option<String>,
    /// A participating official.
    pub official: Option<OfficialId>,
    /// A topic slug.
    pub topic: Option<String>,
    /// The place (case-insensitive).
    pub place: Option<String>,
    /// The location's country (party code).
    pub country: Option<String>,
    /// The status.
    pub status: Option<MeetingStatusView>,
    /// Held (or planned) at or after.
    pub occurred_from: Option<Timestamp>,
    /// Held (or planned) at or before.
    pub occurred_to: Option<Timestamp>,
}

impl MeetingFilter {
    /// Whether a row passes every condition.
    pub fn matches(&self, row: &MeetingRow) -> bool {
        let details = &row.details;
        let location = details.location.as_ref();
        self.party
            .as_ref()
            .is_none_or(|party| details.parties().contains(&party.as_str()))
            && self
                .official
                .is_none_or(|official| details.official_ids().contains(&official))
            && self
                .topic
                .as_ref()
                .is_none_or(|topic| details.topics.contains(topic))
            && self.place.as_ref().is_none_or(|place| {
                location.is_some_and(|location| location.place.to_lowercase() == place.to_lowercase())
            })
            && self.country.as_ref().is_none_or(|country| {
                location.is_some_and(|location| location.country.as_ref() == Some(country))
            })
            && self.status.is_none_or(|status| row.status == status)
            && self.in_range(row.occurred_at())
    }

    fn in_range(&self, occurred_at: Option<Timestamp>) -> bool {
        if self.occurred_from.is_none() && self.occurred_to.is_none() {
            return true;
        }
        let Some(at) = occurred_at else { return false };
        self.occurred_from.is_none_or(|from| at >= from) && self.occurred_to.is_none_or(|to| at <= to)
    }

    /// The most selective index for the filter.
    fn index(&self) -> (u8, String) {
        if let Some(official) = self.official {
            return (IDX_OFFICIAL, official.to_string());
        }
        if let Some(party) = &self.party {
            return (IDX_PARTY, party.clone());
        }
        if let Some(topic) = &self.topic {
            return (IDX_TOPIC, topic.clone());
        }
        if let Some(place) = &self.place {
            return (IDX_PLACE, place.to_lowercase());
        }
        if let Some(country) = &self.country {
            return (IDX_COUNTRY, country.clone());
        }
        if let Some(status) = self.status {
            return (IDX_STATUS, status.as_str().to_owned());
        }
        (IDX_ALL, String::new())
    }
}

/// Where one statement is stored in the log: its position and its record's location, packed
/// in 16 bytes in memory (the chunk's first position as a distance back from the statement's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct StatementAt {
    position: u64,
    chunk_back: u32,
    offset: u32,
}

impl StatementAt {
    fn new(position: u64, location: RecordLocation) -> StatementAt {
        StatementAt {
            position,
            // A chunk holds at most a few hundred records; a distance that does not fit makes
            // a location that is not there, which a read finds by position instead.
            chunk_back: u32::try_from(position.saturating_sub(location.chunk_start)).unwrap_or(u32::MAX),
            offset: location.offset,
        }
    }

    fn located(self) -> (u64, RecordLocation) {
        let location = RecordLocation {
            chunk_start: self.position.saturating_sub(u64::from(self.chunk_back)),
            offset: self.offset,
        };
        (self.position, location)
    }
}

/// Whether a row lists its statements (read from the log) or only counts them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Statements {
    Read,
    Counted,
}

/// The meetings read model.
#[derive(Default)]
pub(crate) struct MeetingsModel {
    rows: Map<uuid::Uuid, Current>,
    index: Index,
    /// Meetings changed since the last snapshot.
    dirty: Dirty<uuid::Uuid>,
    /// Where each meeting's statements are in the log: one per `StatementRecorded`, in stream
    /// order, retracted ones too (the state says which are in effect). Their texts are read
    /// from there; this is 16 bytes a statement instead of the statement.
    statements: Map<uuid::Uuid, Vec<StatementAt>>,
    /// Statements (meeting, ordinal) located since the last snapshot.
    statements_dirty: Dirty<(uuid::Uuid, u32)>,
    /// Statement locations read by a restore, put in order by `finish_restore`.
    restored_statements: Map<uuid::Uuid, Vec<(u32, StatementAt)>>,
}

impl MeetingsModel {
    /// The meeting as of position `at`.
    pub(crate) fn get(
        &self,
        log: &Log,
        meeting_id: MeetingId,
        at: u64,
    ) -> ProjectionResult<Option<MeetingRow>> {
        self.get_if(log, meeting_id, at, |_| true, Statements::Read)
    }

    /// The meeting as of position `at` as a list gives it (`MeetingRow::listed`).
    pub(crate) fn get_listed(
        &self,
        log: &Log,
        meeting_id: MeetingId,
        at: u64,
    ) -> ProjectionResult<Option<MeetingRow>> {
        self.get_if(log, meeting_id, at, |_| true, Statements::Counted)
    }

    /// The meeting as of position `at` if its outline passes `keep` (its statements are read
    /// from the log only then, and only if `statements` says so).
    fn get_if(
        &self,
        log: &Log,
        meeting_id: MeetingId,
        at: u64,
        keep: impl FnOnce(&MeetingRow) -> bool,
        statements: Statements,
    ) -> ProjectionResult<Option<MeetingRow>> {
        let current = self.rows.get(&meeting_id.uuid());
        let Some((state, last)) = state_at(log, &meeting_id.stream_id(), current, at)? else {
            return Ok(None);
        };
        let AggregateState::Meeting(state) = &*state else {
            return Ok(None);
        };
        let Some(outline) = MeetingRow::outline(state).filter(|outline| keep(outline)) else {
            return Ok(None);
        };
        if statements == Statements::Counted {
            return Ok(Some(outline.listed(state, last)));
        }
        let located = self
            .statements
            .get(&meeting_id.uuid())
            .map_or(&[][..], Vec::as_slice);
        let statements = read_located_statements(log, meeting_id, state, located)?;
        Ok(Some(outline.completed(state, last, statements)))
    }

    /// One page of meetings matching `filter` as of `at`, in order of valid time.
    pub(crate) fn list(
        &self,
        log: &Log,
        filter: &MeetingFilter,
        at: u64,
        token: Option<&str>,
        limit: usize,
    ) -> ProjectionResult<(Vec<MeetingRow>, Option<String>)> {
        let (index, value) = filter.index();
        let from = filter.occurred_from.map_or(i64::MIN, Timestamp::unix_micros);
        let to = filter.occurred_to.map_or(i64::MAX, Timestamp::unix_micros);
        self.index
            .scan(index, &value, (from, to), at, token, limit, |id, sort| {
                let meeting_id = MeetingId::from_uuid(item_uuid(id));
                let keep = |row: &MeetingRow| row.sort_key() == sort && filter.matches(row);
                self.get_if(log, meeting_id, at, keep, Statements::Counted)
            })
    }
}

impl Projection for MeetingsModel {
    fn indexes(&mut self) -> Vec<&mut super::index::Index> {
        vec![&mut self.index]
    }

    fn apply(&mut self, change: &Change<'_>) {
        let (AggregateState::Meeting(before), AggregateState::Meeting(after)) = (change.before, change.after)
        else {
            return;
        };
        let Some(meeting_id) = after.meeting_id() else {
            return;
        };
        if let DomainEvent::Meeting(meeting::Event::StatementRecorded(_)) = change.event {
            let uuid = meeting_id.uuid();
            let located = self.statements.entry(uuid).or_default();
            let ordinal = u32::try_from(located.len()).expect("statements per meeting are limited");
            crate::domain::common::push_exact(
                located,
                StatementAt::new(change.envelope.position, change.location),
            );
            self.statements_dirty.mark((uuid, ordinal));
        }
        if after.status().is_none() || after.details().is_none() {
            return;
        }
        let position = change.envelope.position;
        let uuid = meeting_id.uuid();
        if !same_outline(before, after) {
            let new = index_entries(after);
            self.index
                .update(item_id(0, &uuid), &index_entries(before), &new, position);
        }
        let current = Current::advanced(self.rows.get(&uuid), change.kept.clone(), position);
        self.rows.insert(uuid, current);
        self.dirty.mark(uuid);
    }

    /// `E` uuid -> the state; `s` uuid ordinal(4) -> where that statement is in the log (only
    /// new ones are written: 16 bytes per statement, whatever the meeting's size); `I` -> index
    /// entries.
    fn save(&mut self, out: &mut Snapshot<'_>) {
        let ids = self.dirty.take_ids(self.rows.keys().copied());
        for uuid in ids {
            let current = &self.rows[&uuid];
            out.put_entity(EntityKey::new(b'E', uuid.as_bytes()), current);
        }
        // A base puts every statement's location (hundreds of thousands): straight from the
        // map, each from one buffer, not one allocation each.
        let mut value = Vec::new();
        let mut put = |out: &mut Snapshot<'_>, uuid: &uuid::Uuid, ordinal: usize, at: &StatementAt| {
            let mut key = [0u8; 21];
            key[0] = b's';
            key[1..17].copy_from_slice(uuid.as_bytes());
            key[17..].copy_from_slice(&(ordinal as u32).to_be_bytes());
            value.clear();
            crate::encoding::encode_into(at, &mut value);
            out.put(key, &value);
        };
        match self.statements_dirty.take() {
            Changed::All => {
                for (uuid, located) in &self.statements {
                    for (ordinal, at) in located.iter().enumerate() {
                        put(out, uuid, ordinal, at);
                    }
                }
            }
            Changed::Keys(keys) => {
                for (uuid, ordinal) in keys {
                    let located = self.statements.get(&uuid);
                    if let Some(at) = located.and_then(|located| located.get(ordinal as usize)) {
                        put(out, &uuid, ordinal as usize, at);
                    }
                }
            }
        }
        self.index.save(out, b"I");
    }

    fn restore(&mut self, key: &[u8], value: &[u8]) -> ProjectionResult<()> {
        match key.split_first() {
            Some((b'E', id)) => {
                let current = restore_entity(value, AggregateState::Meeting)?;
                self.rows.insert(uuid_key(id)?, current);
            }
            Some((b's', rest)) if rest.len() == 20 => {
                let ordinal = u32::from_be_bytes(rest[16..].try_into().expect("4 bytes"));
                let at: StatementAt = crate::encoding::decode(value).map_err(|error| {
                    ProjectionError::DataLoss(format!("read-model snapshot: statement location: {error}"))
                })?;
                self.restored_statements
                    .entry(uuid_key(&rest[..16])?)
                    .or_default()
                    .push((ordinal, at));
            }
            Some((b'I', rest)) => self.index.restore(rest, value)?,
            _ => {
                return Err(ProjectionError::DataLoss(
                    "read-model snapshot: unknown meetings key".into(),
                ))
            }
        }
        Ok(())
    }

    fn unsave(&mut self) {
        self.dirty.mark_all();
        self.statements_dirty.mark_all();
        self.index.unsave();
    }

    fn finish_restore(&mut self) -> ProjectionResult<()> {
        for (uuid, mut restored) in std::mem::take(&mut self.restored_statements) {
            if !self.rows.contains_key(&uuid) {
                return Err(ProjectionError::DataLoss(format!(
                    "read-model snapshot: statements of unknown meeting {uuid}"
                )));
            }
            restored.sort_unstable_by_key(|(ordinal, _)| *ordinal);
            if restored
                .iter()
                .zip(0u32..)
                .any(|((ordinal, _), expected)| *ordinal != expected)
            {
                return Err(ProjectionError::DataLoss(format!(
                    "read-model snapshot: statements of meeting {uuid} are not dense"
                )));
            }
            self.statements
                .insert(uuid, restored.into_iter().map(|(_, at)| at).collect());
        }
        Ok(())
    }

    fn states(&self, out: &mut Vec<(String, std::sync::Arc<Kept>)>) {
        for (uuid, current) in &self.rows {
            out.push((MeetingId::from_uuid(*uuid).stream_id(), current.state.clone()));
        }
    }

    fn dump(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out: Vec<(Vec<u8>, Vec<u8>)> = self
            .rows
            .iter()
            .filter_map(|(uuid, current)| {
                let AggregateState::Meeting(state) = &*current.state.state() else {
                    return None;
                };
                // Statements as the versions in effect and where they are stored (the texts
                // are the log's).
                let row = MeetingRow::from_state(state, current.last_position, Vec::new())?;
                let statements: Vec<u64> = state.statement_versions().collect();
                let located = self.statements.get(uuid).cloned().unwrap_or_default();
                let key = [&b"R"[..], uuid.as_bytes()].concat();
                let value = (current.first_position, row, statements, located);
                Some((key, crate::encoding::encode(&value)))
            })
            .collect();
        out.sort();
        self.index.dump(&mut out);
        out
    }
}
