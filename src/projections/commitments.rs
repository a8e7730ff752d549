//! Commitments register: one multi-version row per commitment, indexed by party, status,
//! topic and due date; per-party compliance scores maintained incrementally.
//!
//! Longer than ~600 lines as one read model whole: its rows, filter, indexes and fold read together,
//! as each other read model keeps its own in one file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::ProjectionError;
use super::error::ProjectionResult;
use super::kept::Kept;
use super::runner::{Change, Projection};
use super::snapshot_writer::EntityKey;
use super::store::{
    item_id, item_uuid, restore_entity, row_at, tally_key, uuid_key, Current, Dirty, Entry, Interner,
    Snapshot, Tally,
};
use super::store::{ItemId, Map};
use crate::domain::commitment::{AssessmentStage, CommitmentDetails, CommitmentStatus, PartyScore, State};
use crate::domain::common::CommitmentId;
use crate::domain::AggregateState;
use crate::log::Log;
use crate::time::{OccurredAt, Timestamp};

const IDX_ALL: u8 = b'a';
const IDX_PARTY: u8 = b'p';
const IDX_STATUS: u8 = b's';
const IDX_TOPIC: u8 = b't';
const IDX_DUE: u8 = b'd';

/// A commitment's status (derived by the domain: terminal event, else progress, else
/// reaffirmation, else made).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CommitmentStatusView {
    /// Made.
    Made,
    /// Reaffirmed at least once.
    Reaffirmed,
    /// Progress reported.
    InProgress,
    /// Fulfilled.
    Fulfilled,
    /// Lapsed unfulfilled.
    Lapsed,
    /// Withdrawn.
    Withdrawn,
    /// Replaced by another commitment.
    Superseded,
}

impl CommitmentStatusView {
    fn of(status: CommitmentStatus) -> CommitmentStatusView {
        match status {
            CommitmentStatus::Made => CommitmentStatusView::Made,
            CommitmentStatus::Reaffirmed => CommitmentStatusView::Reaffirmed,
            CommitmentStatus::InProgress => CommitmentStatusView::InProgress,
            CommitmentStatus::Fulfilled => CommitmentStatusView::Fulfilled,
            CommitmentStatus::Lapsed => CommitmentStatusView::Lapsed,
            CommitmentStatus::Withdrawn => CommitmentStatusView::Withdrawn,
            CommitmentStatus::Superseded => CommitmentStatusView::Superseded,
        }
    }

    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            CommitmentStatusView::Made => "Made",
            CommitmentStatusView::Reaffirmed => "Reaffirmed",
            CommitmentStatusView::InProgress => "InProgress",
            CommitmentStatusView::Fulfilled => "Fulfilled",
            CommitmentStatusView::Lapsed => "Lapsed",
            CommitmentStatusView::Withdrawn => "Withdrawn",
            CommitmentStatusView::Superseded => "Superseded",
        }
    }

    /// Whether the commitment is closed (fulfilled, lapsed, withdrawn, superseded).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            CommitmentStatusView::Fulfilled
                | CommitmentStatusView::Lapsed
                | CommitmentStatusView::Withdrawn
                | CommitmentStatusView::Superseded
        )
    }
}

/// A reaffirmation or progress report in effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryRow {
    /// Stream version of the event.
    pub version: u64,
    /// When.
    pub occurred_at: OccurredAt,
    /// Words used or summary.
    pub text: Option<String>,
    /// Reaffirming parties (empty for progress reports).
    pub parties: Vec<String>,
}

/// A compliance assessment in effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssessmentRow {
    /// Stream version of the event.
    pub version: u64,
    /// Interim or final.
    pub stage: AssessmentStage,
    /// Who assessed.
    pub assessor: String,
    /// Why.
    pub rationale: String,
    /// Scores per party.
    pub scores: Vec<PartyScore>,
    /// When.
    pub occurred_at: OccurredAt,
}

/// A commitment as the ledger says it is, corrections and retractions applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitmentRow {
    /// The commitment.
    pub commitment_id: CommitmentId,
    /// Derived status.
    pub status: CommitmentStatusView,
    /// Details in effect.
    pub details: CommitmentDetails,
    /// When it was made.
    pub made_at: Option<OccurredAt>,
    /// Reaffirmations in effect.
    pub reaffirmations: Vec<EntryRow>,
    /// Progress reports in effect (left out of a list's rows: see `progress_report_count`).
    pub progress_reports: Vec<EntryRow>,
    /// When it was closed (terminal status).
    pub closed_at: Option<OccurredAt>,
    /// Summary or reason given on closing.
    pub closing_text: Option<String>,
    /// The replacing commitment, if superseded.
    pub superseded_by: Option<CommitmentId>,
    /// Assessments in effect.
    pub assessments: Vec<AssessmentRow>,
    /// How many progress reports are in effect, also when the row leaves them out: a list's
    /// rows (a page of commitments, a relation's timeline) carry the count only, so a page's
    /// size does not grow with the reports of each commitment (up to
    /// `MAX_PROGRESS_REPORTS_PER_COMMITMENT` of `MAX_TEXT_LEN` bytes each).
    pub progress_report_count: u32,
    /// Stream versions retracted.
    pub retracted_versions: Vec<u64>,
    /// Events folded (stream version).
    pub stream_version: u64,
    /// Log position of the last event folded.
    pub last_position: u64,
}

fn assessment_row(assessment: &crate::domain::commitment::Assessment) -> AssessmentRow {
    AssessmentRow {
        version: assessment.version(),
        stage: assessment.stage(),
        assessor: assessment.assessor().to_owned(),
        rationale: assessment.rationale().to_owned(),
        scores: assessment.scores().to_vec(),
        occurred_at: assessment.occurred_at(),
    }
}

fn entry_rows<E: std::borrow::Borrow<crate::domain::commitment::Entry>>(entries: &[E]) -> Vec<EntryRow> {
    entries
        .iter()
        .map(std::borrow::Borrow::borrow)
        .map(|entry| EntryRow {
            version: entry.version(),
            occurred_at: entry.occurred_at(),
            text: entry.text().map(str::to_owned),
            parties: entry.parties().to_vec(),
        })
        .collect()
}

impl CommitmentRow {
    /// The row for a folded commitment state (None if it does not exist).
    pub fn from_state(state: &State, last_position: u64) -> Option<CommitmentRow> {
        CommitmentRow::from_state_with(state, last_position, true)
    }

    /// About how many bytes the row encodes to (what a page of rows is bounded by, see
    /// `store::MAX_PAGE_BYTES`): its texts and codes, and a fixed share for the rest.
    pub fn approximate_bytes(&self) -> usize {
        const FIXED: usize = 2_048;
        const PER_ITEM: usize = 64;
        let entry = |entry: &EntryRow| {
            PER_ITEM
                + entry.text.as_ref().map_or(0, String::len)
                + entry.parties.iter().map(|party| party.len() + 2).sum::<usize>()
        };
        let assessment = |assessment: &AssessmentRow| {
            PER_ITEM
                + assessment.assessor.len()
                + assessment.rationale.len()
                + assessment
                    .scores
                    .iter()
                    .map(|score| score.party.len() + 4)
                    .sum::<usize>()
        };
        FIXED
            + self.details.text.len()
            + self.closing_text.as_ref().map_or(0, String::len)
            + self.reaffirmations.iter().map(entry).sum::<usize>()
            + self.progress_reports.iter().map(entry).sum::<usize>()
            + self.assessments.iter().map(assessment).sum::<usize>()
    }

    /// The row as a list gives it: its progress reports counted, not listed.
    pub(crate) fn listed(state: &State, last_position: u64) -> Option<CommitmentRow> {
        CommitmentRow::from_state_with(state, last_position, false)
    }

    fn from_state_with(state: &State, last_position: u64, reports: bool) -> Option<CommitmentRow> {
        Some(CommitmentRow {
            commitment_id: state.commitment_id()?,
            status: CommitmentStatusView::of(state.status()?),
            details: state.details()?.clone(),
            made_at: state.made_at(),
            reaffirmations: entry_rows(state.reaffirmations()),
            progress_reports: if reports {
                entry_rows(state.progress_reports())
            } else {
                Vec::new()
            },
            closed_at: state.closed_at(),
            closing_text: state.closing_text().map(str::to_owned),
            superseded_by: state.superseded_by(),
            assessments: state.assessments().iter().map(assessment_row).collect(),
            progress_report_count: u32::try_from(state.progress_reports().len())
                .expect("progress reports per commitment are limited"),
            retracted_versions: state.retracted_versions().to_vec(),
            stream_version: state.version(),
            last_position,
        })
    }

    /// The row without progress reports: what relation and compliance counts read (they never
    /// look at reports), at a cost independent of how many were made.
    pub(crate) fn outline(state: &State) -> Option<CommitmentRow> {
        let mut row = CommitmentRow::from_state_with(state, 0, false)?;
        row.retracted_versions = Vec::new();
        Some(row)
    }

    /// Committing parties and counterparties, sorted, without duplicates.
    pub fn parties(&self) -> Vec<String> {
        let mut parties: Vec<String> = self
            .details
            .committing_parties
            .iter()
            .chain(&self.details.counterparties)
            .cloned()
            .collect();
        parties.sort();
        parties.dedup();
        parties
    }

    pub(crate) fn sort_key(&self) -> i64 {
        self.made_at.map_or(i64::MIN, |made| made.at().unix_micros())
    }

    /// Whether it is open and its due date is before `on`.
    pub fn overdue_on(&self, on: Timestamp) -> bool {
        !self.status.is_terminal() && self.details.due_by.is_some_and(|due| due.at() < on)
    }

    /// Each committing party's latest score (the last assessment in effect that scores it).
    pub fn latest_scores(&self) -> BTreeMap<String, i8> {
        let mut scores = BTreeMap::new();
        for assessment in &self.assessments {
            for score in &assessment.scores {
                scores.insert(score.party.clone(), score.score);
            }
        }
        scores
    }

    fn index_entries(&self) -> Vec<Entry> {
        let sort = self.sort_key();
        let mut entries = vec![
            (IDX_ALL, String::new(), sort),
            (IDX_STATUS, self.status.as_str().to_owned(), sort),
        ];
        for party in self.parties() {
            entries.push((IDX_PARTY, party, sort));
        }
        for topic in &self.details.topics {
            entries.push((IDX_TOPIC, topic.clone(), sort));
        }
        if let Some(due) = self.details.due_by {
            entries.push((IDX_DUE, String::new(), due.at().unix_micros()));
        }
        entries
    }
}

/// Which commitments to list (all given conditions must match).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitmentFilter {
    /// A committing party or counterparty.
    pub party: Option<String>,
    /// The status.
    pub status: Option<CommitmentStatusView>,
    /// A topic slug.
    pub topic: Option<String>,
    /// Made at or after (valid time).
    pub made_from: Option<Timestamp>,
    /// Made at or before (valid time).
    pub made_to: Option<Timestamp>,
}

impl CommitmentFilter {
    /// Whether a row passes.
    pub fn matches(&self, row: &CommitmentRow) -> bool {
        let made = row.made_at.map(|made| made.at());
        let ranged = self.made_from.is_some() || self.made_to.is_some();
        self.party
            .as_ref()
            .is_none_or(|party| row.parties().contains(party))
            && self.status.is_none_or(|status| row.status == status)
            && self
                .topic
                .as_ref()
                .is_none_or(|topic| row.details.topics.contains(topic))
            && (!ranged
                || made.is_some_and(|made| {
                    self.made_from.is_none_or(|from| made >= from) && self.made_to.is_none_or(|to| made <= to)
                }))
    }

    fn index(&self) -> (u8, String) {
        if let Some(party) = &self.party {
            return (IDX_PARTY, party.clone());
        }
        if let Some(topic) = &self.topic {
            return (IDX_TOPIC, topic.clone());
        }
        if let Some(status) = self.status {
            return (IDX_STATUS, status.as_str().to_owned());
        }
        (IDX_ALL, String::new())
    }
}

/// A party's compliance over the commitments assessed for it: each commitment counts with its
/// latest score for the party (-1, 0, +1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplianceRow {
    /// The party.
    pub party: String,
    /// Commitments with a score for the party.
    pub assessed_commitments: i64,
    /// Sum of their latest scores.
    pub score_sum: i64,
}

impl ComplianceRow {
    /// Mean score in [-1, 1]; None when nothing was assessed.
    pub fn average(&self) -> Option<f64> {
        if self.assessed_commitments == 0 {
            return None;
        }
        Some(self.score_sum as f64 / self.assessed_commitments as f64)
    }
}

/// The snapshot records of a commitment's progress reports after version `saved`: `r` uuid
/// version(8) -> one report, and a remove of each retracted version at or before `saved` (a
/// report saved earlier; a remove of a key never put is ignored on restore).
pub(crate) fn report_records(uuid: &uuid::Uuid, state: &AggregateState, saved: u64, out: &mut Snapshot<'_>) {
    let AggregateState::Commitment(state) = state else {
        return;
    };
    let report_key = |version: u64| [&b"r"[..], uuid.as_bytes(), &version.to_be_bytes()].concat();
    for report in state.progress_reports().iter().filter(|r| r.version() > saved) {
        out.put(report_key(report.version()), crate::encoding::encode(&**report));
    }
    for version in state.retracted_versions().iter().filter(|v| **v <= saved) {
        out.remove(report_key(*version));
    }
}

/// Whether two states of a commitment are listed alike (status, details, when made): what they
/// differ in, if anything, no index reads.
pub(crate) fn same_outline(before: &State, after: &State) -> bool {
    before.status() == after.status() && before.made_at() == after.made_at() && before.same_details(after)
}

const ASSESSED: &str = "assessed";
const SCORE_SUM: &str = "score_sum";

/// The commitments read model.
#[derive(Default)]
pub(crate) struct CommitmentsModel {
    rows: Map<uuid::Uuid, Current>,
    index: super::index::Index,
    compliance: Map<String, Tally>,
    names: Interner,
    /// Commitments changed since the last snapshot.
    dirty: Dirty<uuid::Uuid>,
    /// By commitment, a version up to which every progress report in effect is in the
    /// snapshot: the state's version when a snapshot wrote it, the newest report's when one
    /// was restored (no report of the state lies between the two).
    reports_saved: Map<uuid::Uuid, u64>,
    /// Progress reports read by a restore, attached by `finish_restore`.
    restored_reports: Map<uuid::Uuid, Vec<crate::domain::commitment::Entry>>,
}

impl CommitmentsModel {
    /// The commitment as of position `at`.
    pub(crate) fn get(
        &self,
        log: &Log,
        commitment_id: CommitmentId,
        at: u64,
    ) -> ProjectionResult<Option<CommitmentRow>> {
        self.row(log, commitment_id, at, CommitmentRow::from_state)
    }

    /// The commitment as of position `at` as a list gives it (`CommitmentRow::listed`).
    pub(crate) fn get_listed(
        &self,
        log: &Log,
        commitment_id: CommitmentId,
        at: u64,
    ) -> ProjectionResult<Option<CommitmentRow>> {
        self.row(log, commitment_id, at, CommitmentRow::listed)
    }

    fn row(
        &self,
        log: &Log,
        commitment_id: CommitmentId,
        at: u64,
        build: fn(&State, u64) -> Option<CommitmentRow>,
    ) -> ProjectionResult<Option<CommitmentRow>> {
        let current = self.rows.get(&commitment_id.uuid());
        row_at(
            log,
            &commitment_id.stream_id(),
            current,
            at,
            |state, last| match state {
                AggregateState::Commitment(state) => build(state, last),
                _ => None,
            },
        )
    }

    /// One page of commitments matching `filter` as of `at`, by when they were made.
    pub(crate) fn list(
        &self,
        log: &Log,
        filter: &CommitmentFilter,
        at: u64,
        token: Option<&str>,
        limit: usize,
    ) -> ProjectionResult<(Vec<CommitmentRow>, Option<String>)> {
        let (index, value) = filter.index();
        let from = filter.made_from.map_or(i64::MIN, Timestamp::unix_micros);
        let to = filter.made_to.map_or(i64::MAX, Timestamp::unix_micros);
        let accept = |id: &ItemId, sort| {
            let commitment_id = CommitmentId::from_uuid(item_uuid(id));
            Ok(self
                .get_listed(log, commitment_id, at)?
                .filter(|row| row.sort_key() == sort && filter.matches(row)))
        };
        let weigh = CommitmentRow::approximate_bytes;
        self.index
            .scan_weighed(index, &value, (from, to), at, token, limit, accept, weigh)
    }

    /// Commitments open and past their due date on `on`, as of `at`, by due date.
    pub(crate) fn overdue(
        &self,
        log: &Log,
        on: Timestamp,
        at: u64,
        token: Option<&str>,
        limit: usize,
    ) -> ProjectionResult<(Vec<CommitmentRow>, Option<String>)> {
        let to = on.unix_micros().saturating_sub(1);
        let accept = |id: &ItemId, sort| {
            let commitment_id = CommitmentId::from_uuid(item_uuid(id));
            Ok(self.get_listed(log, commitment_id, at)?.filter(|row| {
                row.details.due_by.map(|due| due.at().unix_micros()) == Some(sort) && row.overdue_on(on)
            }))
        };
        let weigh = CommitmentRow::approximate_bytes;
        self.index
            .scan_weighed(IDX_DUE, "", (i64::MIN, to), at, token, limit, accept, weigh)
    }

    /// A party's compliance as of `at`.
    pub(crate) fn compliance(&self, party: &str, at: u64) -> ComplianceRow {
        let mut row = ComplianceRow {
            party: party.to_owned(),
            ..ComplianceRow::default()
        };
        if let Some(tally) = self.compliance.get(party) {
            let value = tally.at(at);
            let component = |name| {
                self.names
                    .get(name)
                    .and_then(|id| value.get(&id).copied())
                    .unwrap_or(0)
            };
            row.assessed_commitments = component(ASSESSED);
            row.score_sum = component(SCORE_SUM);
        }
        row
    }

    fn score_components(&mut self, score: Option<&i8>) -> BTreeMap<u32, i64> {
        let mut components = BTreeMap::new();
        if let Some(score) = score {
            components.insert(self.names.intern(ASSESSED), 1);
            if *score != 0 {
                components.insert(self.names.intern(SCORE_SUM), i64::from(*score));
            }
        }
        components
    }
}

impl Projection for CommitmentsModel {
    fn indexes(&mut self) -> Vec<&mut super::index::Index> {
        vec![&mut self.index]
    }

    fn apply(&mut self, change: &Change<'_>) {
        let (AggregateState::Commitment(before), AggregateState::Commitment(after)) =
            (change.before, change.after)
        else {
            return;
        };
        let position = change.envelope.position;
        let (Some(commitment_id), Some(_), Some(_)) =
            (after.commitment_id(), after.status(), after.details())
        else {
            return;
        };
        let uuid = commitment_id.uuid();
        let current = Current::advanced(self.rows.get(&uuid), change.kept.clone(), position);
        self.rows.insert(uuid, current);
        self.dirty.mark(uuid);
        let listed_alike = same_outline(before, after);
        if listed_alike && before.assessments() == after.assessments() {
            return;
        }
        let Some(new) = CommitmentRow::outline(after) else {
            return;
        };
        let old = CommitmentRow::outline(before);
        if !listed_alike {
            let old_entries = old.as_ref().map(CommitmentRow::index_entries).unwrap_or_default();
            self.index
                .update(item_id(0, &uuid), &old_entries, &new.index_entries(), position);
        }
        // Compliance: replace this commitment's old contribution by its new one.
        let old_scores = old.map(|row| row.latest_scores()).unwrap_or_default();
        let new_scores = new.latest_scores();
        let mut parties: Vec<&String> = old_scores.keys().chain(new_scores.keys()).collect();
        parties.sort();
        parties.dedup();
        for party in parties {
            let (old_score, new_score) = (old_scores.get(party), new_scores.get(party));
            if old_score == new_score {
                continue;
            }
            let before = self.score_components(old_score);
            let after = self.score_components(new_score);
            self.compliance
                .entry(party.clone())
                .or_default()
                .change(position, &before, &after);
        }
    }

    /// `E` uuid -> the state without progress reports; `r` uuid version(8) -> one report (only
    /// new ones are written, retracted ones removed); `I` -> index entries; `T` party seq(8) ->
    /// one compliance delta.
    fn save(&mut self, out: &mut Snapshot<'_>) {
        let ids = self.dirty.take_ids(self.rows.keys().copied());
        for uuid in ids {
            let current = &self.rows[&uuid];
            out.put_entity(EntityKey::new(b'E', uuid.as_bytes()), current);
            let saved = self.reports_saved.get(&uuid).copied().unwrap_or(0);
            out.put_reports(uuid, &current.state, saved);
            // Every report up to the state's version is in this snapshot once it is written.
            self.reports_saved.insert(uuid, current.state.version());
        }
        self.index.save(out, b"I");
        for (party, tally) in self.compliance.iter_mut().filter(|(_, tally)| tally.unsaved()) {
            tally.save(out, &[&b"T"[..], party.as_bytes()].concat(), &self.names);
        }
    }

    fn restore(&mut self, key: &[u8], value: &[u8]) -> ProjectionResult<()> {
        match key.split_first() {
            Some((b'E', id)) => {
                let current = restore_entity(value, AggregateState::Commitment)?;
                self.rows.insert(uuid_key(id)?, current);
            }
            Some((b'r', rest)) if rest.len() == 24 => {
                let uuid = uuid_key(&rest[..16])?;
                let report: crate::domain::commitment::Entry =
                    crate::encoding::decode(value).map_err(|error| {
                        ProjectionError::DataLoss(format!("read-model snapshot: report: {error}"))
                    })?;
                let saved = self.reports_saved.entry(uuid).or_insert(0);
                *saved = (*saved).max(report.version());
                self.restored_reports.entry(uuid).or_default().push(report);
            }
            Some((b'I', rest)) => self.index.restore(rest, value)?,
            Some((b'T', rest)) => {
                let (party, seq) = tally_key(rest)?;
                let party = String::from_utf8(party.to_vec())
                    .map_err(|_| ProjectionError::DataLoss("read-model snapshot: malformed party".into()))?;
                self.compliance
                    .entry(party)
                    .or_default()
                    .restore(seq, value, &mut self.names)?;
            }
            _ => {
                return Err(ProjectionError::DataLoss(
                    "read-model snapshot: unknown commitments key".into(),
                ))
            }
        }
        Ok(())
    }

    fn forget(&mut self, key: &[u8]) -> ProjectionResult<()> {
        if let Some((b'r', rest)) = key.split_first() {
            if rest.len() == 24 {
                let version = u64::from_be_bytes(rest[16..].try_into().expect("8 bytes"));
                if let Some(reports) = self.restored_reports.get_mut(&uuid_key(&rest[..16])?) {
                    reports.retain(|report| report.version() != version);
                }
                return Ok(());
            }
        }
        Err(ProjectionError::DataLoss(
            "read-model snapshot: unexpected commitments remove".into(),
        ))
    }

    fn unsave(&mut self) {
        self.dirty.mark_all();
        self.reports_saved.clear();
        self.index.unsave();
        for tally in self.compliance.values_mut() {
            tally.unsave();
        }
    }

    fn finish_restore(&mut self) -> ProjectionResult<()> {
        for (uuid, reports) in std::mem::take(&mut self.restored_reports) {
            let current = self.rows.get_mut(&uuid).ok_or_else(|| {
                ProjectionError::DataLoss(format!(
                    "read-model snapshot: reports of unknown commitment {uuid}"
                ))
            })?;
            let AggregateState::Commitment(state) = &*current.state.state() else {
                continue;
            };
            let state = state.clone().with_progress_reports(reports);
            current.state = Kept::cold(&AggregateState::Commitment(state));
        }
        Ok(())
    }

    fn states(&self, out: &mut Vec<(String, std::sync::Arc<Kept>)>) {
        for (uuid, current) in &self.rows {
            out.push((CommitmentId::from_uuid(*uuid).stream_id(), current.state.clone()));
        }
    }

    fn dump(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out: Vec<(Vec<u8>, Vec<u8>)> = self
            .rows
            .iter()
            .filter_map(|(uuid, current)| {
                let AggregateState::Commitment(state) = &*current.state.state() else {
                    return None;
                };
                let row = CommitmentRow::from_state(state, current.last_position)?;
                let key = [&b"R"[..], uuid.as_bytes()].concat();
                Some((key, crate::encoding::encode(&(current.first_position, row))))
            })
            .chain(
                self.compliance
                    .iter()
                    .map(|(party, tally)| ([&b"T"[..], party.as_bytes()].concat(), tally.dump(&self.names))),
            )
            .collect();
        out.sort();
        self.index.dump(&mut out);
        out
    }
}
