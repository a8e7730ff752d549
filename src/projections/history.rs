//! Entity history (the audit trail): every event of one stream up to a position, with who
//! recorded it and when, the sources it cites, and which later events corrected or retracted
//! it. Read straight from the log's stream index; no projection is needed.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::{ProjectionError, ProjectionResult};
use super::runner::decode;
use crate::domain::common::SourceCitation;
use crate::domain::{commitment, meeting, official, party, source, DomainEvent};
use crate::log::limits::MAX_READ_PAGE_EVENTS;
use crate::log::{Direction, Log};
use crate::time::{OccurredAt, Timestamp};

/// Most history entries one page returns.
pub const MAX_HISTORY_PAGE: usize = 500;

/// A cited source, with what the directory knew about it at the query position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRef {
    /// The citation (source id and quote).
    pub citation: SourceCitation,
    /// The source's URL, if registered and known.
    pub url: Option<String>,
    /// Its title, if known.
    pub title: Option<String>,
    /// Its publisher, if known.
    pub publisher: Option<String>,
}

/// One event of an entity's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Log position.
    pub position: u64,
    /// Version in the stream.
    pub stream_version: u64,
    /// Event id.
    pub event_id: Uuid,
    /// Event type.
    pub event_type: String,
    /// Command that produced it.
    pub command_id: Uuid,
    /// Valid time.
    pub occurred_at: OccurredAt,
    /// Transaction time.
    pub recorded_at: Timestamp,
    /// Who recorded it.
    pub recorded_by: String,
    /// Correlation id, if any.
    pub correlation_id: Option<Uuid>,
    /// Causation id, if any.
    pub causation_id: Option<Uuid>,
    /// Sources cited.
    pub sources: Vec<SourceRef>,
    /// The stream version this event corrects, if it is a correction.
    pub corrects_version: Option<u64>,
    /// The stream version this event retracts, if it is a retraction.
    pub retracts_version: Option<u64>,
    /// Stream version of the later correction that replaced this event's details, if any (up
    /// to the query position).
    pub corrected_by: Option<u64>,
    /// Stream version of the later retraction of this event, if any.
    pub retracted_by: Option<u64>,
    /// Reason given by a correction or retraction.
    pub reason: Option<String>,
    /// The decoded event.
    pub event: DomainEvent,
}

/// (corrects, retracts, reason) of an event.
fn references(event: &DomainEvent) -> (Option<u64>, Option<u64>, Option<&str>) {
    match event {
        DomainEvent::Party(party::Event::PartyCorrected(e)) => {
            (Some(e.corrects_version), None, Some(&e.reason))
        }
        DomainEvent::Source(source::Event::SourceCorrected(e)) => {
            (Some(e.corrects_version), None, Some(&e.reason))
        }
        DomainEvent::Official(official::Event::OfficialNameCorrected(e)) => {
            (Some(e.corrects_version), None, Some(&e.reason))
        }
        DomainEvent::Official(official::Event::OfficialEventRetracted(e)) => {
            (None, Some(e.retracts_version), Some(&e.reason))
        }
        DomainEvent::Meeting(meeting::Event::MeetingCorrected(e)) => {
            (Some(e.corrects_version), None, Some(&e.reason))
        }
        DomainEvent::Meeting(meeting::Event::MeetingEventRetracted(e)) => {
            (None, Some(e.retracts_version), Some(&e.reason))
        }
        DomainEvent::Commitment(commitment::Event::CommitmentCorrected(e)) => {
            (Some(e.corrects_version), None, Some(&e.reason))
        }
        DomainEvent::Commitment(commitment::Event::CommitmentEventRetracted(e)) => {
            (None, Some(e.retracts_version), Some(&e.reason))
        }
        _ => (None, None, None),
    }
}

/// What an event refers back to: the version it corrects or retracts, and whether it retracts.
pub(crate) fn back_reference(event: &DomainEvent) -> Option<(u64, bool)> {
    match references(event) {
        (Some(corrected), _, _) => Some((corrected, false)),
        (None, Some(retracted), _) => Some((retracted, true)),
        (None, None, _) => None,
    }
}

/// A later event of a stream that corrects or retracts an earlier one: what the directory read
/// model keeps of every stream, so a history page need not read past itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BackReference {
    /// The correcting or retracting event's stream version.
    pub by_version: u64,
    /// Its log position.
    pub by_position: u64,
    /// The stream version it corrects or retracts.
    pub target: u64,
    /// A retraction (else a correction).
    pub retracts: bool,
}

/// Marks the entry that the event at `by_version` corrects or retracts (`target`, `retracts`).
/// Entries hold consecutive versions from `from_version`, so the entry is found by its version,
/// not searched for.
fn mark_reference(
    entries: &mut [HistoryEntry],
    from_version: u64,
    (target, retracts): (u64, bool),
    by_version: u64,
) {
    let Some(entry) = target
        .checked_sub(from_version)
        .and_then(|index| entries.get_mut(index as usize))
    else {
        return;
    };
    debug_assert_eq!(entry.stream_version, target);
    if retracts {
        entry.retracted_by = Some(by_version);
    } else {
        entry.corrected_by = Some(by_version);
    }
}

/// `describe_source` of `citation`, asked once per source within one history answer (events
/// of one entity mostly cite the same few sources).
fn describe_once(
    seen: &mut Vec<(SourceCitation, SourceRef)>,
    citation: &SourceCitation,
    describe_source: &dyn Fn(&SourceCitation) -> ProjectionResult<SourceRef>,
) -> ProjectionResult<SourceRef> {
    if let Some((_, described)) = seen.iter().find(|(seen, _)| seen == citation) {
        return Ok(described.clone());
    }
    let described = describe_source(citation)?;
    if seen.len() < DESCRIBED_SOURCES_KEPT {
        seen.push((citation.clone(), described.clone()));
    }
    Ok(described)
}

/// Distinct citations one history answer remembers the description of.
const DESCRIBED_SOURCES_KEPT: usize = 64;

/// The history of `stream_id` as of position `at`: entries with versions from `from_version`,
/// at most `limit`, and the next version to ask for if there are more. The page reads only its
/// own events (and the first one after it, to know there are more); `later_references(v)`
/// gives the stream's back-references from versions after `v` recorded at or before `at`,
/// which mark the entries corrected or retracted after the page.
pub(crate) fn history(
    log: &Log,
    stream_id: &str,
    (from_version, limit): (u64, usize),
    at: u64,
    describe_source: &dyn Fn(&SourceCitation) -> ProjectionResult<SourceRef>,
    later_references: &dyn Fn(u64) -> Vec<BackReference>,
) -> ProjectionResult<(Vec<HistoryEntry>, Option<u64>)> {
    if limit == 0 || limit > MAX_HISTORY_PAGE {
        return Err(ProjectionError::InvalidArgument {
            field: "limit",
            reason: format!("must be 1 to {MAX_HISTORY_PAGE}"),
        });
    }
    let from_version = from_version.max(1);
    let mut entries: Vec<HistoryEntry> = Vec::with_capacity(limit);
    // Whether the stream has an event past the page, at or before `at`.
    let mut more = false;
    let mut sources_seen: Vec<(SourceCitation, SourceRef)> = Vec::new();
    let mut next = from_version;
    'read: loop {
        // The page's events and the one after it.
        let wanted = (limit + 1 - entries.len()).min(MAX_READ_PAGE_EVENTS);
        let events = log.read_stream(stream_id, next, Direction::Forwards, wanted)?;
        if events.is_empty() {
            break;
        }
        for recorded in events {
            let envelope = recorded.into_envelope();
            if envelope.position > at {
                break 'read;
            }
            next = envelope.stream_version + 1;
            if entries.len() == limit {
                more = true;
                break 'read;
            }
            let event = decode(&envelope)?;
            if let Some(reference) = back_reference(&event) {
                mark_reference(&mut entries, from_version, reference, envelope.stream_version);
            }
            let (corrects_version, retracts_version, reason) = references(&event);
            let reason = reason.map(str::to_owned);
            let mut sources = Vec::with_capacity(event.citations().len());
            for citation in event.citations() {
                sources.push(describe_once(&mut sources_seen, citation, describe_source)?);
            }
            entries.push(HistoryEntry {
                position: envelope.position,
                stream_version: envelope.stream_version,
                event_id: envelope.event_id,
                event_type: envelope.event_type,
                command_id: envelope.command_id,
                occurred_at: envelope.occurred_at,
                recorded_at: envelope.recorded_at,
                recorded_by: envelope.recorded_by,
                correlation_id: envelope.correlation_id,
                causation_id: envelope.causation_id,
                sources,
                corrects_version,
                retracts_version,
                corrected_by: None,
                retracted_by: None,
                reason,
                event,
            });
        }
    }
    let next_version = if more {
        entries.last().map(|entry| entry.stream_version + 1)
    } else {
        None
    };
    if let Some(next_version) = next_version {
        // Corrections and retractions after the page, from the read model's back-references.
        for reference in later_references(next_version - 1) {
            debug_assert!(reference.by_version >= next_version && reference.by_position <= at);
            let target = (reference.target, reference.retracts);
            mark_reference(&mut entries, from_version, target, reference.by_version);
        }
    }
    Ok((entries, next_version))
}
