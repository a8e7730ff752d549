//! Bilateral relations: for every pair of parties that met or share a commitment, an
//! incrementally maintained multi-version summary (counts by month, topics, open vs fulfilled
//! commitments, Goldstein sums by month) and a timeline index of the meetings and commitments
//! between them. A relation query reads one summary version and one page of the timeline.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::commitments::{CommitmentRow, CommitmentStatusView};
use super::error::ProjectionResult;
use super::meetings::{MeetingRow, MeetingStatusView};
use super::runner::{Change, Projection};
use super::store::{month_of, row_at, row_base, scan_index, Txn};
use crate::domain::cameo::{map_event, map_reaffirmation, ExportMapping};
use crate::domain::commitment::{self, CommitmentReaffirmed, CommitmentRecorded};
use crate::domain::common::{CommitmentId, MeetingId, Provenance};
use crate::domain::meeting::{self, MeetingHeld};
use crate::domain::time::{OccurredAt, Timestamp};
use crate::domain::{AggregateState, DomainEvent};

const KIND_SUMMARY: u8 = b'r';
const IDX_TIMELINE: u8 = b'T';
const ITEM_MEETING: u8 = b'm';
const ITEM_COMMITMENT: u8 = b'c';

/// The canonical key of an unordered pair of parties: the two codes sorted, joined by `/`.
pub fn pair_key(a: &str, b: &str) -> String {
    if a <= b {
        format!("{a}/{b}")
    } else {
        format!("{b}/{a}")
    }
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
    /// Meetings between the two (any status but cancelled).
    pub meetings: i64,
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

    fn add(&mut self, other: &RelationSummary, sign: i64) {
        fn merge(into: &mut BTreeMap<String, i64>, from: &BTreeMap<String, i64>, sign: i64) {
            for (key, value) in from {
                let entry = into.entry(key.clone()).or_insert(0);
                *entry += sign * value;
                if *entry == 0 {
                    into.remove(key);
                }
            }
        }
        self.meetings += sign * other.meetings;
        merge(
            &mut self.meetings_held_by_month,
            &other.meetings_held_by_month,
            sign,
        );
        self.commitments += sign * other.commitments;
        self.commitments_open += sign * other.commitments_open;
        self.commitments_fulfilled += sign * other.commitments_fulfilled;
        self.commitments_closed_otherwise += sign * other.commitments_closed_otherwise;
        merge(&mut self.topics, &other.topics, sign);
        merge(
            &mut self.goldstein_tenths_by_month,
            &other.goldstein_tenths_by_month,
            sign,
        );
    }
}

/// The stored form of a [`RelationSummary`]: the same counts, with months as integers
/// (`year * 12 + month - 1`) delta-encoded in ascending order, so a version takes a few hundred
/// bytes rather than ~2 KB after years of history (it is rewritten for most changes of a pair).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct StoredSummary {
    meetings: i64,
    commitments: i64,
    commitments_open: i64,
    commitments_fulfilled: i64,
    commitments_closed_otherwise: i64,
    topics: Vec<(String, i64)>,
    held_by_month: PackedMonths,
    goldstein_by_month: PackedMonths,
}

/// Month -> value: months of years 0..=9999 as delta-encoded numbers, any other month (far
/// past or future timestamps) as text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct PackedMonths {
    numbered: Vec<(u32, i64)>,
    other: Vec<(String, i64)>,
}

/// `YYYY-MM` (exactly four year digits, two month digits 01..=12) -> months since year 0;
/// None for any other text (kept as text, so packing is exact for every month).
fn month_number(month: &str) -> Option<u32> {
    let bytes = month.as_bytes();
    if bytes.len() != 7 || bytes[4] != b'-' {
        return None;
    }
    let mut digits = [0u32; 6];
    for (slot, &byte) in digits.iter_mut().zip(bytes[..4].iter().chain(&bytes[5..])) {
        if !byte.is_ascii_digit() {
            return None;
        }
        *slot = u32::from(byte - b'0');
    }
    let year = digits[0] * 1_000 + digits[1] * 100 + digits[2] * 10 + digits[3];
    let month = digits[4] * 10 + digits[5];
    if !(1..=12).contains(&month) {
        return None;
    }
    Some(year * 12 + month - 1)
}

fn month_text(number: u32) -> String {
    format!("{:04}-{:02}", number / 12, number % 12 + 1)
}

fn pack_months(months: &BTreeMap<String, i64>) -> PackedMonths {
    let mut previous = 0;
    let mut packed = PackedMonths::default();
    // BTreeMap order of `YYYY-MM` texts of years 0..=9999 is numeric order.
    for (month, value) in months {
        match month_number(month) {
            Some(number) if number >= previous => {
                packed.numbered.push((number - previous, *value));
                previous = number;
            }
            _ => packed.other.push((month.clone(), *value)),
        }
    }
    packed
}

fn unpack_months(packed: &PackedMonths) -> BTreeMap<String, i64> {
    let mut number = 0;
    let mut months: BTreeMap<String, i64> = packed
        .numbered
        .iter()
        .map(|(delta, value)| {
            number += delta;
            (month_text(number), *value)
        })
        .collect();
    months.extend(packed.other.iter().cloned());
    months
}

impl StoredSummary {
    fn pack(summary: &RelationSummary) -> StoredSummary {
        StoredSummary {
            meetings: summary.meetings,
            commitments: summary.commitments,
            commitments_open: summary.commitments_open,
            commitments_fulfilled: summary.commitments_fulfilled,
            commitments_closed_otherwise: summary.commitments_closed_otherwise,
            topics: summary
                .topics
                .iter()
                .map(|(topic, count)| (topic.clone(), *count))
                .collect(),
            held_by_month: pack_months(&summary.meetings_held_by_month),
            goldstein_by_month: pack_months(&summary.goldstein_tenths_by_month),
        }
    }

    fn unpack(&self) -> RelationSummary {
        RelationSummary {
            meetings: self.meetings,
            meetings_held_by_month: unpack_months(&self.held_by_month),
            commitments: self.commitments,
            commitments_open: self.commitments_open,
            commitments_fulfilled: self.commitments_fulfilled,
            commitments_closed_otherwise: self.commitments_closed_otherwise,
            topics: self.topics.iter().cloned().collect(),
            goldstein_tenths_by_month: unpack_months(&self.goldstein_by_month),
        }
    }
}

fn dyad_tenths(mapping: Option<ExportMapping>, pair: &str) -> i64 {
    mapping.map_or(0, |mapping| {
        mapping
            .cameo
            .iter()
            .filter(|coding| {
                coding
                    .target
                    .as_ref()
                    .is_some_and(|target| pair_key(&coding.source, target) == pair)
            })
            .map(|coding| (f64::from(coding.code.goldstein) * 10.0).round() as i64)
            .sum()
    })
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
            .any(|b| a.as_ref() != b.as_ref() && pair_key(a.as_ref(), b.as_ref()) == pair)
    })
}

/// Whether the meeting contributes to `pair` (same answer as
/// `meeting_contribution(row).contains_key(pair)`, without the CAMEO mapping).
fn meeting_involves(row: &MeetingRow, pair: &str) -> bool {
    row.status != MeetingStatusView::Cancelled && involves(&row.details.parties(), pair)
}

/// What one meeting contributes to each pair of its participants' parties.
pub fn meeting_contribution(row: &MeetingRow) -> BTreeMap<String, RelationSummary> {
    let mut contributions = BTreeMap::new();
    if row.status == MeetingStatusView::Cancelled {
        return contributions;
    }
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
        for topic in &row.details.topics {
            summary.topics.insert(topic.clone(), 1);
        }
        if let (Some(held_at), Some(mapping)) = (held, &mapping) {
            let month = month_of(held_at.at().unix_micros());
            summary.meetings_held_by_month.insert(month.clone(), 1);
            let tenths = dyad_tenths(mapping.clone(), &pair);
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
    let made_at = row.made_at.unwrap_or(OccurredAt::new(
        Timestamp::EPOCH,
        crate::domain::time::Precision::Exact,
    ));
    let recorded = map_event(&DomainEvent::Commitment(commitment::Event::CommitmentRecorded(
        CommitmentRecorded {
            commitment_id: row.commitment_id,
            details: row.details.clone(),
            provenance: no_provenance(made_at),
        },
    )));
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
                dyad_tenths(recorded.clone(), &pair);
        }
        for entry in &row.reaffirmations {
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
            *goldstein
                .entry(month_of(entry.occurred_at.at().unix_micros()))
                .or_insert(0) += dyad_tenths(Some(mapping), &pair);
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
    /// The pair key (`FRA/LBY`).
    pub pair: String,
    /// The summary.
    pub summary: RelationSummary,
    /// One page of meetings and commitments between the two, by valid time.
    pub timeline: Vec<TimelineItem>,
    /// Token of the next timeline page, if any.
    pub next_page_token: Option<String>,
}

fn summary_base(pair: &str) -> Vec<u8> {
    row_base(KIND_SUMMARY, pair.as_bytes())
}

/// The relation between `a` and `b` as of `at`.
#[allow(clippy::too_many_arguments)] // three trees, a pair, a position and a page
pub(crate) fn relation(
    relations: &sled::Tree,
    meetings: &sled::Tree,
    commitments: &sled::Tree,
    a: &str,
    b: &str,
    at: u64,
    token: Option<&str>,
    limit: usize,
) -> ProjectionResult<Relation> {
    let pair = pair_key(a, b);
    let summary = row_at::<StoredSummary>(relations, &summary_base(&pair), at)?
        .map(|stored| stored.unpack())
        .unwrap_or_default();
    let (timeline, next_page_token) = scan_index(
        relations,
        IDX_TIMELINE,
        &pair,
        i64::MIN,
        i64::MAX,
        token,
        limit,
        |item, sort| {
            let Some((&kind, id)) = item.split_first() else {
                return Ok(None);
            };
            let Ok(uuid) = uuid::Uuid::from_slice(id) else {
                return Ok(None);
            };
            match kind {
                ITEM_MEETING => Ok(super::meetings::get(meetings, MeetingId::from_uuid(uuid), at)?
                    .filter(|row| row.sort_key() == sort && meeting_involves(row, &pair))
                    .map(TimelineItem::Meeting)),
                ITEM_COMMITMENT => {
                    Ok(
                        super::commitments::get(commitments, CommitmentId::from_uuid(uuid), at)?
                            .filter(|row| row.sort_key() == sort && involves(&row.parties(), &pair))
                            .map(TimelineItem::Commitment),
                    )
                }
                _ => Ok(None),
            }
        },
    )?;
    Ok(Relation {
        pair,
        summary,
        timeline,
        next_page_token,
    })
}

/// The relations projection.
pub(crate) struct RelationsProjection;

impl RelationsProjection {
    #[allow(clippy::too_many_arguments)]
    fn update(
        tree: &sled::Tree,
        txn: &mut Txn,
        position: u64,
        item: &[u8],
        old: (BTreeMap<String, RelationSummary>, Option<i64>),
        new: (BTreeMap<String, RelationSummary>, i64),
    ) -> ProjectionResult<()> {
        let (old_contribution, old_sort) = old;
        let (new_contribution, new_sort) = new;
        let mut pairs: Vec<&String> = old_contribution.keys().chain(new_contribution.keys()).collect();
        pairs.sort();
        pairs.dedup();
        for pair in pairs {
            let (before, after) = (old_contribution.get(pair), new_contribution.get(pair));
            if after.is_some() && (before.is_none() || old_sort != Some(new_sort)) {
                let mut key = super::store::index_key(IDX_TIMELINE, pair, new_sort, &[]);
                key.extend_from_slice(item);
                txn.put_index(key);
            }
            if before == after {
                continue;
            }
            let base = summary_base(pair);
            let mut summary = txn
                .latest_aggregate::<StoredSummary>(tree, &base)?
                .map(|stored| stored.unpack())
                .unwrap_or_default();
            if let Some(before) = before {
                summary.add(before, -1);
            }
            if let Some(after) = after {
                summary.add(after, 1);
            }
            txn.put_aggregate(base, position, &StoredSummary::pack(&summary));
        }
        Ok(())
    }
}

impl Projection for RelationsProjection {
    fn apply(&self, change: &Change<'_>, tree: &sled::Tree, txn: &mut Txn) -> ProjectionResult<()> {
        let position = change.envelope.position;
        match (change.before, change.after) {
            (AggregateState::Meeting(before), AggregateState::Meeting(after)) => {
                let Some(new) = MeetingRow::from_state(after, position) else {
                    return Ok(());
                };
                let old = MeetingRow::from_state(before, 0);
                let mut item = vec![ITEM_MEETING];
                item.extend_from_slice(new.meeting_id.uuid().as_bytes());
                Self::update(
                    tree,
                    txn,
                    position,
                    &item,
                    (
                        old.as_ref().map(meeting_contribution).unwrap_or_default(),
                        old.as_ref().map(MeetingRow::sort_key),
                    ),
                    (meeting_contribution(&new), new.sort_key()),
                )
            }
            (AggregateState::Commitment(before), AggregateState::Commitment(after)) => {
                let Some(new) = CommitmentRow::from_state(after, position) else {
                    return Ok(());
                };
                let old = CommitmentRow::from_state(before, 0);
                let mut item = vec![ITEM_COMMITMENT];
                item.extend_from_slice(new.commitment_id.uuid().as_bytes());
                Self::update(
                    tree,
                    txn,
                    position,
                    &item,
                    (
                        old.as_ref().map(commitment_contribution).unwrap_or_default(),
                        old.as_ref().map(CommitmentRow::sort_key),
                    ),
                    (commitment_contribution(&new), new.sort_key()),
                )
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_summaries_round_trip() {
        let mut summary = RelationSummary {
            meetings: 3,
            commitments: 2,
            commitments_open: 1,
            commitments_fulfilled: 1,
            ..RelationSummary::default()
        };
        for micros in [
            i64::MIN,
            i64::MIN / 2,
            -62_135_596_800_000_001,
            -1,
            0,
            951_782_400_000_000,
            1_736_899_200_000_000,
            253_402_300_799_000_000,
            253_402_300_800_000_000,
            i64::MAX,
        ] {
            summary.meetings_held_by_month.insert(month_of(micros), 2);
            summary.goldstein_tenths_by_month.insert(month_of(micros), -35);
        }
        summary.topics.insert("trade".into(), 4);
        for odd in ["2025-13", "2025-00", "-001-01", "12345-01", "2025-1", "20a5-01"] {
            summary.meetings_held_by_month.insert(odd.into(), 1);
        }
        let stored = StoredSummary::pack(&summary);
        assert_eq!(stored.held_by_month.numbered.len(), 6);
        assert_eq!(stored.unpack(), summary);
        let bytes = crate::encoding::encode(&stored);
        assert_eq!(crate::encoding::decode::<StoredSummary>(&bytes).unwrap(), stored);
    }
}
