//! The QueryService answers that are no single aggregate's: timeline items (a meeting or a
//! commitment) and audit-trail entries (any stream's event with its log fields and the sources
//! it cites). Each aggregate's own views are in its file.

use super::commitment::commitment_to_pb;
use super::common::{occurred_at_to_pb, timestamp_to_pb};
use super::events::event_to_pb;
use super::meeting::meeting_to_pb;
use crate::api::pb;
use crate::projections::{HistoryEntry, Names, TimelineItem};

/// A timeline item to its view (a meeting with the names of its participants).
pub fn timeline_item_to_pb(item: &TimelineItem, names: &Names) -> pb::TimelineItemView {
    pb::TimelineItemView {
        item: Some(match item {
            TimelineItem::Meeting(row) => pb::timeline_item_view::Item::Meeting(meeting_to_pb(row, names)),
            TimelineItem::Commitment(row) => pb::timeline_item_view::Item::Commitment(commitment_to_pb(row)),
        }),
    }
}

/// An audit-trail entry to its view.
pub fn history_entry_to_pb(entry: &HistoryEntry) -> pb::HistoryEntryView {
    pb::HistoryEntryView {
        position: entry.position,
        stream_version: entry.stream_version,
        event_id: entry.event_id.to_string(),
        event_type: entry.event_type.clone(),
        command_id: entry.command_id.to_string(),
        occurred_at: Some(occurred_at_to_pb(entry.occurred_at)),
        recorded_at: Some(timestamp_to_pb(entry.recorded_at)),
        recorded_by: entry.recorded_by.clone(),
        correlation_id: entry.correlation_id.map(|id| id.to_string()),
        causation_id: entry.causation_id.map(|id| id.to_string()),
        sources: entry
            .sources
            .iter()
            .map(|source| pb::SourceRefView {
                citation: Some(pb::SourceCitation {
                    source_id: source.citation.source_id.to_string(),
                    quote: source.citation.quote.clone(),
                }),
                url: source.url.clone(),
                title: source.title.clone(),
                publisher: source.publisher.clone(),
            })
            .collect(),
        corrects_version: entry.corrects_version,
        retracts_version: entry.retracts_version,
        corrected_by: entry.corrected_by,
        retracted_by: entry.retracted_by,
        reason: entry.reason.clone(),
        event: Some(event_to_pb(&entry.event)),
    }
}
