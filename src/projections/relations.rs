//! Bilateral relations: for every pair of parties that met or share a commitment, a tally of
//! its summary (counts by month, topics, open vs fulfilled commitments, Goldstein sums by month)
//! changed by one delta per event that changes what a meeting or commitment contributes, and a
//! timeline index of the meetings and commitments between them. A relation query reads the
//! tally as of its position and one page of the timeline.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::commitments::CommitmentsModel;
use super::commitments::{CommitmentRow, CommitmentStatusView};
use super::error::ProjectionResult;
use super::index::Index;
use super::meetings::MeetingsModel;
use super::meetings::{MeetingRow, MeetingStatusView};
use super::runner::{Change, Projection};
use super::store::Map;
use super::store::{item_id, item_uuid, month_of, tally_key, Entry, Interner, Snapshot, Tally};
use crate::domain::cameo::{map_event, map_reaffirmation, ExportMapping};
use crate::domain::commitment::{self, CommitmentReaffirmed, CommitmentRecorded};
use crate::domain::common::{CommitmentId, MeetingId, Provenance};
use crate::domain::meeting::{self, MeetingHeld};
use crate::domain::{AggregateState, DomainEvent};
use crate::log::Log;
use crate::time::{OccurredAt, Timestamp};

const IDX_TIMELINE: u8 = b'T';
const ITEM_MEETING: u8 = b'm';
const ITEM_COMMITMENT: u8 = b'c';

/// The key of an unordered pair of parties inside the model: the two codes sorted, joined by
/// `/`, which no party code contains (codes may contain `-`: `LBY-GNU`), so keys never collide.
pub fn pair_key(a: &str, b: &str) -> String {
    if a <= b {
        format!("{a}/{b}")
    } else {
        format!("{b}/{a}")
    }
}

/// The pair as the API and CLI write it everywhere: the two codes in alphabetical order joined
/// by a hyphen (`FRA-LBY`).
pub fn pair_name(a: &str, b: &str) -> String {
    pair_key(a, b).replacen('/', "-", 1)
}

fn pairs_of(parties: &[String]) -> Vec<String> {
    let mut sorted: Vec<&String> = parties.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut pairs = Vec::new();
    for (index, a) in sorted.iter().enumerate() {
        for b in &sorted[index + 1..] {
            pairs.push(pair_key(a, b));
        }
    }
    pairs
}

/// Everything counted for one pair of parties. Goldstein scores are kept in tenths (CAMEO
/// scores have one decimal), so sums are exact and order-independent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelationSummary {
    /// Meetings between the two, in any state (the sum of the four counts below).
    pub meetings: i64,
    /// Of which still to happen: proposed, scheduled or rescheduled.
    pub meetings_planned: i64,
    /// Of which held.
    pub meetings_held: i64,
    /// Of which postponed without a new date.
    pub meetings_postponed: i64,
    /// Of which cancelled.
    pub meetings_cancelled: i64,
    /// Held meetings by month of holding (`YYYY-MM`).
    pub meetings_held_by_month: BTreeMap<String, i64>,
    /// Commitments both parties are committing parties or counterparties of.
    pub commitments: i64,
    /// Of which open (not fulfilled, lapsed, withdrawn or superseded).
    pub commitments_open: i64,
    /// Of which fulfilled.
    pub commitments_fulfilled: i64,
    /// Of which lapsed, withdrawn or superseded.
    pub commitments_closed_otherwise: i64,
    /// Topic slug -> number of meetings and commitments with that topic.
    pub topics: BTreeMap<String, i64>,
    /// Month -> sum of Goldstein scores (tenths) of CAMEO dyads between the two: held
    /// meetings, commitments made and reaffirmed.
    pub goldstein_tenths_by_month: BTreeMap<String, i64>,
}

impl RelationSummary {
    /// Sum of Goldstein scores for a month, as a decimal.
    pub fn goldstein(&self, month: &str) -> f64 {
        self.goldstein_tenths_by_month.get(month).copied().unwrap_or(0) as f64 / 10.0
    }

    /// The summary as tally components: `#` scalars, `t` topics, `h` held months, `g`
    /// Goldstein months.
    fn components(&self, names: &mut Interner) -> BTreeMap<u32, i64> {
        let mut components = BTreeMap::new();
        let mut put = |name: &str, value: i64| {
            if value != 0 {
                *components.entry(names.intern(name)).or_insert(0) += value;
            }
        };
        put("#meetings", self.meetings);
        put("#planned", self.meetings_planned);
        put("#held", self.meetings_held);
        put("#postponed", self.meetings_postponed);
        put("#cancelled", self.meetings_cancelled);
        put("#commitments", self.commitments);
        put("#open", self.commitments_open);
        put("#fulfilled", self.commitments_fulfilled);
        put("#closed", self.commitments_closed_otherwise);
        // One name buffer for the prefixed components (a summary has a few of each).
        let mut name = String::new();
        let prefixed = [
            ('t', &self.topics),
            ('h', &self.meetings_held_by_month),
            ('g', &self.goldstein_tenths_by_month),
        ];
        for (prefix, values) in prefixed {
            for (key, value) in values {
                name.clear();
                name.push(prefix);
                name.push_str(key);
                put(&name, *value);
            }
        }
        components
    }

    /// The summary of tally components.
    fn of_components(components: &BTreeMap<u32, i64>, names: &Interner) -> RelationSummary {
        let mut summary = RelationSummary::default();
        for (component, value) in components {
            let name = names.name(*component);
            let (kind, rest) = name.split_at(1);
            match (kind, rest) {
                ("#", "meetings") => summary.meetings = *value,
                ("#", "planned") => summary.meetings_planned = *value,
                ("#", "held") => summary.meetings_held = *value,
                ("#", "postponed") => summary.meetings_postponed = *value,
                ("#", "cancelled") => summary.meetings_cancelled = *value,
                ("#", "commitments") => summary.commitments = *value,
                ("#", "open") => summary.commitments_open = *value,
                ("#", "fulfilled") => summary.commitments_fulfilled = *value,
                ("#", "closed") => summary.commitments_closed_otherwise = *value,
                ("t", topic) => {
                    summary.topics.insert(topic.to_owned(), *value);
                }
                ("h", month) => {
                    summary.meetings_held_by_month.insert(month.to_owned(), *value);
                }
                ("g", month) => {
                    summary.goldstein_tenths_by_month.insert(month.to_owned(), *value);
                }
                _ => unreachable!("tally component {name} is not a summary component"),
            }
        }
        summary
    }
}

fn dyad_tenths(mapping: Option<&ExportMapping>, pair: &str) -> i64 {
    mapping.map_or(0, |mapping| {
        mapping
            .cameo
            .iter()
            .filter(|coding| {
                coding
                    .target
                    .as_ref()
                    .is_some_and(|target| is_pair(&coding.source, target, pair))
            })
            .map(|coding| (f64::from(coding.code.goldstein) * 10.0).round() as i64)
            .sum()
    })
}

/// Whether `pair` is `pair_key(a, b)`, without making the key.
fn is_pair(a: &str, b: &str, pair: &str) -> bool {
    let (first, second) = if a <= b { (a, b) } else { (b, a) };
    pair.len() == first.len() + 1 + second.len()
        && pair.starts_with(first)
        && pair.as_bytes()[first.len()] == b'/'
        && pair.ends_with(second)
}

fn no_provenance(occurred_at: OccurredAt) -> Provenance {
    Provenance {
        occurred_at,
        sources: Vec::new(),
    }
}

/// Whether `pair` is one of the pairs of `parties` (exactly as `pairs_of` lists them).
fn involves<S: AsRef<str>>(parties: &[S], pair: &str) -> bool {
    parties.iter().enumerate().any(|(index, a)| {
        parties[index + 1..]
            .iter()
            .any(|b| a.as_ref() != b.as_ref() && is_pair(a.as_ref(), b.as_ref(), pair))
    })
}

/// Whether the meeting contributes to `pair` (same answer as
/// `meeting_contribution(row).contains_key(pair)`, without the CAMEO mapping).
fn meeting_involves(row: &MeetingRow, pair: &str) -> bool {
    involves(&row.details.parties(), pair)
}

/// What one meeting contributes to each pair of its participants' parties: every meeting
/// counts, in the count of its state; a held one also by month and in the Goldstein sums.
pub fn meeting_contribution(row: &MeetingRow) -> BTreeMap<String, RelationSummary> {
    let mut contributions = BTreeMap::new();
    let parties: Vec<String> = row.details.parties().into_iter().map(str::to_owned).collect();
    let held = row.held_at.filter(|_| row.status == MeetingStatusView::Held);
    let mapping = held.map(|held_at| {
        map_event(&DomainEvent::Meeting(meeting::Event::MeetingHeld(MeetingHeld {
            meeting_id: row.meeting_id,
            details: row.details.clone(),
            ended_at: row.ended_at,
            provenance: no_provenance(held_at),
        })))
    });
    for pair in pairs_of(&parties) {
        let mut summary = RelationSummary {
            meetings: 1,
            ..RelationSummary::default()
        };
        match row.status {
            MeetingStatusView::Proposed | MeetingStatusView::Scheduled | MeetingStatusView::Rescheduled => {
                summary.meetings_planned = 1
            }
            MeetingStatusView::Held => summary.meetings_held = 1,
            MeetingStatusView::Postponed => summary.meetings_postponed = 1,
            MeetingStatusView::Cancelled => summary.meetings_cancelled = 1,
        }
        for topic in &row.details.topics {
            summary.topics.insert(topic.clone(), 1);
        }
        if let (Some(held_at), Some(mapping)) = (held, &mapping) {
            let month = month_of(held_at.at().unix_micros());
            summary.meetings_held_by_month.insert(month.clone(), 1);
            let tenths = dyad_tenths(mapping.as_ref(), &pair);
            if tenths != 0 {
                summary.goldstein_tenths_by_month.insert(month, tenths);
            }
        }
        contributions.insert(pair, summary);
    }
    contributions
}

/// What one commitment contributes to each pair of its parties.
pub fn commitment_contribution(row: &CommitmentRow) -> BTreeMap<String, RelationSummary> {
    let mut contributions = BTreeMap::new();
    let made_at = row
        .made_at
        .unwrap_or(OccurredAt::new(Timestamp::EPOCH, crate::time::Precision::Exact));
    let recorded = map_event(&DomainEvent::Commitment(commitment::Event::CommitmentRecorded(
        CommitmentRecorded {
            commitment_id: row.commitment_id,
            details: row.details.clone(),
            provenance: no_provenance(made_at),
        },
    )));
    // Each reaffirmation's month and CAMEO mapping, for every pair.
    let reaffirmed: Vec<(String, ExportMapping)> = row
        .reaffirmations
        .iter()
        .map(|entry| {
            let mapping = map_reaffirmation(
                &CommitmentReaffirmed {
                    commitment_id: row.commitment_id,
                    reaffirmed_by: entry.parties.clone(),
                    voiced_by: Vec::new(),
                    at_meeting: None,
                    text: None,
                    provenance: no_provenance(entry.occurred_at),
                },
                &row.details,
            );
            (month_of(entry.occurred_at.at().unix_micros()), mapping)
        })
        .collect();
    for pair in pairs_of(&row.parties()) {
        let mut summary = RelationSummary {
            commitments: 1,
            ..RelationSummary::default()
        };
        match row.status {
            CommitmentStatusView::Fulfilled => summary.commitments_fulfilled = 1,
            status if status.is_terminal() => summary.commitments_closed_otherwise = 1,
            _ => summary.commitments_open = 1,
        }
        for topic in &row.details.topics {
            summary.topics.insert(topic.clone(), 1);
        }
        let mut goldstein = BTreeMap::new();
        if row.made_at.is_some() {
            *goldstein.entry(month_of(made_at.at().unix_micros())).or_insert(0) +=
                dyad_tenths(recorded.as_ref(), &pair);
        }
        for (month, mapping) in &reaffirmed {
            *goldstein.entry(month.clone()).or_insert(0) += dyad_tenths(Some(mapping), &pair);
        }
        goldstein.retain(|_, tenths| *tenths != 0);
        summary.goldstein_tenths_by_month = goldstein;
        contributions.insert(pair, summary);
    }
    contributions
}

/// One meeting or commitment on a relation's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimelineItem {
    /// A meeting between the two parties.
    Meeting(MeetingRow),
    /// A commitment between the two parties.
    Commitment(CommitmentRow),
}

impl TimelineItem {
    /// About how many bytes the item encodes to: a commitment's estimate; a meeting's listed
    /// row is bounded (its statements are left out), counted as nothing.
    pub fn approximate_bytes(&self) -> usize {
        match self {
            TimelineItem::Meeting(_) => 0,
            TimelineItem::Commitment(row) => row.approximate_bytes(),
        }
    }

    /// When it happened (meeting held or planned; commitment made).
    pub fn occurred_at(&self) -> Option<Timestamp> {
        match self {
            TimelineItem::Meeting(row) => row.occurred_at(),
            TimelineItem::Commitment(row) => row.made_at.map(|made| made.at()),
        }
    }
}

/// A bilateral relation as of a position: the summary and one page of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Relation {
    /// The pair key (`FRA-LBY`).
    pub pair: String,
    /// The summary.
    pub summary: RelationSummary,
    /// One page of meetings and commitments between the two, by valid time.
    pub timeline: Vec<TimelineItem>,
    /// Token of the next timeline page, if any.
    pub next_page_token: Option<String>,
}

/// The relations read model.
#[derive(Default)]
pub(crate) struct RelationsModel {
    summaries: Map<String, Tally>,
    timeline: Index,
    names: Interner,
}

impl RelationsModel {
    /// The relation between `a` and `b` as of `at`.
    #[allow(clippy::too_many_arguments)] // two read models, the log, a pair, a position, a page
    pub(crate) fn relation(
        &self,
        meetings: &MeetingsModel,
        commitments: &CommitmentsModel,
        log: &Log,
        (a, b): (&str, &str),
        at: u64,
        token: Option<&str>,
        limit: usize,
    ) -> ProjectionResult<Relation> {
        let pair = pair_key(a, b);
        let name = pair_name(a, b);
        let summary = self
            .summaries
            .get(&pair)
            .map(|tally| RelationSummary::of_components(&tally.at(at), &self.names))
            .unwrap_or_default();
        let (timeline, next_page_token) = self.timeline.scan_weighed(
            IDX_TIMELINE,
            &pair,
            (i64::MIN, i64::MAX),
            at,
            token,
            limit,
            |item, sort| {
                let uuid = item_uuid(item);
                match item[0] {
                    ITEM_MEETING => Ok(meetings
                        .get_listed(log, MeetingId::from_uuid(uuid), at)?
                        .filter(|row| row.sort_key() == sort && meeting_involves(row, &pair))
                        .map(TimelineItem::Meeting)),
                    ITEM_COMMITMENT => Ok(commitments
                        .get_listed(log, CommitmentId::from_uuid(uuid), at)?
                        .filter(|row| row.sort_key() == sort && involves(&row.parties(), &pair))
                        .map(TimelineItem::Commitment)),
                    _ => Ok(None),
                }
            },
            TimelineItem::approximate_bytes,
        )?;
        Ok(Relation {
            pair: name,
            summary,
            timeline,
            next_page_token,
        })
    }

    /// Replaces what one meeting or commitment contributes to its pairs at `position`: `delta`
    /// says what it contributed before and what it contributes from `position` on.
    fn update(&mut self, position: u64, delta: &RelationDelta) {
        let RelationDelta { item, old, new } = delta;
        let (old_contribution, old_sort) = old.as_ref();
        let (new_contribution, new_sort) = new.as_ref();
        let entries = |contribution: &BTreeMap<String, RelationSummary>, sort: &i64| -> Vec<Entry> {
            contribution
                .keys()
                .map(|pair| (IDX_TIMELINE, pair.clone(), *sort))
                .collect()
        };
        // The timeline changes only with the pairs or the sort key.
        if old_sort != new_sort || !old_contribution.keys().eq(new_contribution.keys()) {
            self.timeline.update(
                *item,
                &entries(old_contribution, old_sort),
                &entries(new_contribution, new_sort),
                position,
            );
        }
        let empty = RelationSummary::default();
        let mut pairs: Vec<&String> = old_contribution.keys().chain(new_contribution.keys()).collect();
        pairs.sort();
        pairs.dedup();
        for pair in pairs {
            let before = old_contribution.get(pair).unwrap_or(&empty);
            let after = new_contribution.get(pair).unwrap_or(&empty);
            if before == after {
                continue;
            }
            let before = before.components(&mut self.names);
            let after = after.components(&mut self.names);
            self.summaries
                .entry(pair.clone())
                .or_default()
                .change(position, &before, &after);
        }
    }
}

/// What a meeting or commitment contributes to its pairs, and its sort key.
pub(crate) type Contribution = (BTreeMap<String, RelationSummary>, i64);

/// What one change of a meeting or a commitment does to the relations: what the item
/// contributed to its pairs, and its sort key, before the change and after it. A function of
/// the entity's states alone, so the runner computes it while it reads ahead, off the thread
/// that applies (the contributions are most of the relations' applying work).
pub(crate) struct RelationDelta {
    item: [u8; 17],
    old: Arc<Contribution>,
    new: Arc<Contribution>,
}

/// The last contribution computed, with the state it is of: an entity's next change starts
/// from that state (its events mostly come together), so its contribution before the change is
/// not computed again.
#[derive(Default)]
pub(crate) struct LastContribution(Option<(Arc<AggregateState>, Arc<Contribution>)>);

/// The relations' delta of a change from `before_state` to `after_state`; `None` when the
/// relations do not change (another kind of entity, an event that leaves the contributions as
/// they were, an entity whose state after has no outline yet).
pub(crate) fn relation_delta(
    before_state: &Arc<AggregateState>,
    after_state: &Arc<AggregateState>,
    last: &mut LastContribution,
) -> Option<RelationDelta> {
    let known = match last.0.take() {
        Some((state, contribution)) if Arc::ptr_eq(&state, before_state) => Some(contribution),
        _ => None,
    };
    let same = match (before_state.as_ref(), after_state.as_ref()) {
        (AggregateState::Meeting(before), AggregateState::Meeting(after)) => {
            super::meetings::same_outline(before, after)
        }
        (AggregateState::Commitment(before), AggregateState::Commitment(after)) => {
            super::commitments::same_outline(before, after)
                && before.reaffirmations() == after.reaffirmations()
        }
        _ => return None,
    };
    if same {
        // An unchanged contribution holds on for the state after.
        last.0 = known.map(|contribution| (after_state.clone(), contribution));
        return None;
    }
    let (item, new) = item_contribution(after_state)?;
    let old = known.unwrap_or_else(|| {
        let old = item_contribution(before_state).map(|(_, contribution)| contribution);
        Arc::new(old.unwrap_or((BTreeMap::new(), i64::MIN)))
    });
    let new = Arc::new(new);
    last.0 = Some((after_state.clone(), new.clone()));
    Some(RelationDelta { item, old, new })
}

/// A meeting's or commitment's item id and contribution, once it has an outline.
fn item_contribution(state: &AggregateState) -> Option<([u8; 17], Contribution)> {
    match state {
        AggregateState::Meeting(state) => {
            let row = MeetingRow::outline(state)?;
            let item = item_id(ITEM_MEETING, &row.meeting_id.uuid());
            Some((item, (meeting_contribution(&row), row.sort_key())))
        }
        AggregateState::Commitment(state) => {
            let row = CommitmentRow::outline(state)?;
            let item = item_id(ITEM_COMMITMENT, &row.commitment_id.uuid());
            Some((item, (commitment_contribution(&row), row.sort_key())))
        }
        _ => None,
    }
}

impl Projection for RelationsModel {
    fn indexes(&mut self) -> Vec<&mut super::index::Index> {
        vec![&mut self.timeline]
    }

    fn apply(&mut self, change: &Change<'_>) {
        if let Some(delta) = change.relations {
            self.update(change.envelope.position, delta);
        }
    }

    /// `T` pair seq(8) -> one summary delta; `I` -> timeline entries.
    fn save(&mut self, out: &mut Snapshot<'_>) {
        for (pair, tally) in self.summaries.iter_mut().filter(|(_, tally)| tally.unsaved()) {
            tally.save(out, &[&b"T"[..], pair.as_bytes()].concat(), &self.names);
        }
        self.timeline.save(out, b"I");
    }

    fn unsave(&mut self) {
        self.timeline.unsave();
        for tally in self.summaries.values_mut() {
            tally.unsave();
        }
    }

    fn restore(&mut self, key: &[u8], value: &[u8]) -> ProjectionResult<()> {
        match key.split_first() {
            Some((b'T', rest)) => {
                let (pair, seq) = tally_key(rest)?;
                let pair = String::from_utf8(pair.to_vec()).map_err(|_| {
                    super::ProjectionError::DataLoss("read-model snapshot: malformed pair".into())
                })?;
                self.summaries
                    .entry(pair)
                    .or_default()
                    .restore(seq, value, &mut self.names)
            }
            Some((b'I', rest)) => self.timeline.restore(rest, value),
            _ => Err(super::ProjectionError::DataLoss(
                "read-model snapshot: unknown relations key".into(),
            )),
        }
    }

    fn dump(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out: Vec<(Vec<u8>, Vec<u8>)> = self
            .summaries
            .iter()
            .map(|(pair, tally)| ([&b"T"[..], pair.as_bytes()].concat(), tally.dump(&self.names)))
            .collect();
        out.sort();
        self.timeline.dump(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_is_recognised_exactly_as_its_key_is_made() {
        let codes = ["FRA", "LBY", "FR", "FRAA", "A/B", ""];
        let pairs = [
            "FRA/LBY", "LBY/FRA", "FR/ALBY", "FRA/LB", "A/B/FRA", "/FRA", "FRA/", "/",
        ];
        for a in codes {
            for b in codes {
                for pair in pairs.iter().copied().chain([pair_key(a, b).as_str()]) {
                    assert_eq!(is_pair(a, b, pair), pair_key(a, b) == pair, "{a} {b} {pair}");
                }
            }
        }
    }

    #[test]
    fn summaries_round_trip_through_tally_components() {
        let mut summary = RelationSummary {
            meetings: 3,
            commitments: 2,
            commitments_open: 1,
            commitments_fulfilled: 1,
            ..RelationSummary::default()
        };
        for micros in [i64::MIN, -1, 0, 1_736_899_200_000_000, i64::MAX] {
            summary.meetings_held_by_month.insert(month_of(micros), 2);
            summary.goldstein_tenths_by_month.insert(month_of(micros), -35);
        }
        summary.topics.insert("trade".into(), 4);
        summary.topics.insert("meetings".into(), 1);
        let mut names = Interner::default();
        let components = summary.components(&mut names);
        assert_eq!(RelationSummary::of_components(&components, &names), summary);
    }
}
