//! Analyst exports of the log: a CAMEO/GDELT-style TSV and PLOVER-style JSON lines, coded with the
//! versioned mapping table of `domain::cameo` (table version in every row).
//!
//! Each event is coded **as recorded**, in position order; rows carry the log position and event
//! id so they join with the audit trail. Registrations, schedules, corrections and retractions
//! have no CAMEO meaning and produce no row; a later correction of a meeting does not rewrite the
//! row of the meeting as first recorded (the history of the meeting shows both).
//!
//! TSV columns, in order (one row per CAMEO dyad):
//!
//! | column | meaning |
//! |---|---|
//! | `position` | log position of the event |
//! | `event_id` | the event's UUID |
//! | `date` | `YYYYMMDD` of `occurred_at` (UTC) |
//! | `date_precision` | `Year` ... `Exact`: how precisely the source dates it |
//! | `actor1_code`, `actor1_country` | acting party code and its ISO 3166 alpha-3 (empty if unknown) |
//! | `actor2_code`, `actor2_country` | target party code and its alpha-3 (empty for none) |
//! | `event_code`, `event_root_code` | CAMEO code (`040`) and its two-digit root (`04`) |
//! | `quad_class` | 1 verbal cooperation, 2 material cooperation, 3 verbal conflict, 4 material conflict |
//! | `goldstein` | Goldstein score of the code |
//! | `place`, `place_country` | where it happened, when recorded |
//! | `source_url` | URL of the first cited source, when registered with one |
//! | `plover_type`, `plover_mode` | the PLOVER coding |
//! | `table_version` | version of the mapping table |

use std::collections::HashMap;
use std::io::Write;

use serde::Serialize;

use crate::domain::cameo::{self, ExportMapping};
use crate::domain::common::SourceId;
use crate::domain::{
    commitment, decode_event, evolve_state, meeting, party, source, AggregateState, DomainEvent,
};
use crate::log::backup::ExportSelection;
use crate::log::limits::MAX_READ_PAGE_EVENTS;
use crate::log::{Direction, EventFilter, Log, LogError, LogResult, RecordedEvent};

/// The TSV header line.
pub const TSV_HEADER: &str = "position\tevent_id\tdate\tdate_precision\tactor1_code\tactor1_country\tactor2_code\tactor2_country\tevent_code\tevent_root_code\tquad_class\tgoldstein\tplace\tplace_country\tsource_url\tplover_type\tplover_mode\ttable_version";

/// Which analyst format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnalystFormat {
    /// CAMEO/GDELT-style tab-separated values.
    CameoTsv,
    /// PLOVER-style JSON, one object per line.
    PloverJsonl,
}

/// One coded dyad, the unit of both formats.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CodedEvent {
    /// Log position.
    pub position: u64,
    /// Event id.
    pub event_id: String,
    /// `YYYYMMDD`.
    pub date: String,
    /// Precision of the date.
    pub date_precision: String,
    /// Acting party.
    pub actor: String,
    /// Its ISO alpha-3, if known.
    pub actor_country: Option<String>,
    /// Target party, if any.
    pub recipient: Option<String>,
    /// Its ISO alpha-3, if known.
    pub recipient_country: Option<String>,
    /// CAMEO code.
    pub cameo_code: String,
    /// CAMEO root code.
    pub cameo_root: String,
    /// CAMEO quad class.
    pub quad_class: u8,
    /// Goldstein score.
    pub goldstein: f32,
    /// Place, if recorded.
    pub place: Option<String>,
    /// Country of the place, if recorded.
    pub place_country: Option<String>,
    /// URL of the first cited source, if known.
    pub source_url: Option<String>,
    /// PLOVER event type.
    pub plover_type: String,
    /// PLOVER mode, if any.
    pub plover_mode: Option<String>,
    /// Mapping table version.
    pub table_version: u16,
}

/// CAMEO quad class of a code: roots 01-05 verbal cooperation, 06-09 material cooperation,
/// 10-14 verbal conflict, 15-20 material conflict.
pub fn quad_class(code: &str) -> u8 {
    match code.get(..2).and_then(|root| root.parse::<u8>().ok()) {
        Some(1..=5) => 1,
        Some(6..=9) => 2,
        Some(10..=14) => 3,
        _ => 4,
    }
}

/// What the coder remembers while it walks the log: party countries, source URLs, and the state
/// of commitments (a reaffirmation is coded with the details of the commitment it reaffirms).
#[derive(Default)]
struct Context {
    countries: HashMap<String, Option<String>>,
    urls: HashMap<SourceId, Option<String>>,
    commitments: HashMap<String, AggregateState>,
}

impl Context {
    fn learn(&mut self, stream_id: &str, event: &DomainEvent) {
        match event {
            DomainEvent::Party(party::Event::PartyRegistered(e)) => {
                self.countries
                    .insert(e.code.clone(), e.details.iso_alpha3.clone());
            }
            DomainEvent::Party(party::Event::PartyCorrected(e)) => {
                self.countries
                    .insert(e.code.clone(), e.details.iso_alpha3.clone());
            }
            DomainEvent::Source(source::Event::SourceRegistered(e)) => {
                self.urls.insert(e.source_id, e.details.url.clone());
            }
            DomainEvent::Source(source::Event::SourceCorrected(e)) => {
                self.urls.insert(e.source_id, e.details.url.clone());
            }
            DomainEvent::Commitment(_) => {
                let state = self
                    .commitments
                    .remove(stream_id)
                    .unwrap_or_else(|| AggregateState::empty_for_event(event));
                self.commitments
                    .insert(stream_id.to_owned(), evolve_state(state, event));
            }
            _ => {}
        }
    }

    fn mapping(&self, stream_id: &str, event: &DomainEvent) -> Option<ExportMapping> {
        if let DomainEvent::Commitment(commitment::Event::CommitmentReaffirmed(reaffirmed)) = event {
            let Some(AggregateState::Commitment(state)) = self.commitments.get(stream_id) else {
                return None;
            };
            return state
                .details()
                .map(|details| cameo::map_reaffirmation(reaffirmed, details));
        }
        cameo::map_event(event)
    }

    fn country(&self, code: &str) -> Option<String> {
        self.countries.get(code).cloned().flatten()
    }
}

fn code(recorded: &RecordedEvent, event: &DomainEvent, context: &Context) -> Vec<CodedEvent> {
    let envelope = recorded.envelope();
    let Some(mapping) = context.mapping(&envelope.stream_id, event) else {
        return Vec::new();
    };
    let (year, month, day) = envelope.occurred_at.at().civil_date();
    let location = match event {
        DomainEvent::Meeting(meeting::Event::MeetingHeld(held)) => held.details.location.clone(),
        _ => None,
    };
    let source_url = event
        .citations()
        .first()
        .and_then(|citation| context.urls.get(&citation.source_id).cloned().flatten());
    mapping
        .cameo
        .iter()
        .map(|dyad| CodedEvent {
            position: envelope.position,
            event_id: envelope.event_id.to_string(),
            date: format!("{year:04}{month:02}{day:02}"),
            date_precision: format!("{:?}", envelope.occurred_at.precision()),
            actor: dyad.source.clone(),
            actor_country: context.country(&dyad.source),
            recipient: dyad.target.clone(),
            recipient_country: dyad.target.as_deref().and_then(|target| context.country(target)),
            cameo_code: dyad.code.code.to_owned(),
            cameo_root: dyad.code.code[..2].to_owned(),
            quad_class: quad_class(dyad.code.code),
            goldstein: dyad.code.goldstein,
            place: location.as_ref().map(|l| l.place.clone()),
            place_country: location.as_ref().and_then(|l| l.country.clone()),
            source_url: source_url.clone(),
            plover_type: mapping.plover.event_type.to_owned(),
            plover_mode: mapping.plover.mode.map(str::to_owned),
            table_version: mapping.table_version,
        })
        .collect()
}

fn tsv_field(value: &str) -> String {
    value.replace(['\t', '\n', '\r'], " ")
}

fn tsv_row(row: &CodedEvent) -> String {
    let optional = |value: &Option<String>| tsv_field(value.as_deref().unwrap_or(""));
    [
        row.position.to_string(),
        row.event_id.clone(),
        row.date.clone(),
        row.date_precision.clone(),
        tsv_field(&row.actor),
        optional(&row.actor_country),
        optional(&row.recipient),
        optional(&row.recipient_country),
        row.cameo_code.clone(),
        row.cameo_root.clone(),
        row.quad_class.to_string(),
        format!("{:.1}", row.goldstein),
        optional(&row.place),
        optional(&row.place_country),
        optional(&row.source_url),
        row.plover_type.clone(),
        optional(&row.plover_mode),
        row.table_version.to_string(),
    ]
    .join("\t")
}

/// Every format `dipledger export` writes, offline or from a server (`EventStore.Export`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// The lossless envelope export `restore` reads (`log::backup`).
    Jsonl,
    /// Coded rows, one of [`AnalystFormat`].
    Coded(AnalystFormat),
}

impl ExportFormat {
    /// Every format, in the order the CLI lists them.
    pub const ALL: [ExportFormat; 3] = [
        ExportFormat::Jsonl,
        ExportFormat::Coded(AnalystFormat::CameoTsv),
        ExportFormat::Coded(AnalystFormat::PloverJsonl),
    ];

    /// The name the CLI takes (`jsonl`, `cameo-tsv`, `plover`).
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Jsonl => "jsonl",
            ExportFormat::Coded(AnalystFormat::CameoTsv) => "cameo-tsv",
            ExportFormat::Coded(AnalystFormat::PloverJsonl) => "plover",
        }
    }

    /// A format by its name.
    pub fn parse(name: &str) -> Option<ExportFormat> {
        ExportFormat::ALL
            .into_iter()
            .find(|format| format.as_str() == name)
    }

    /// What one unit of the output is, for messages (`events`, `coded rows`).
    pub fn unit(self) -> &'static str {
        match self {
            ExportFormat::Jsonl => "events",
            ExportFormat::Coded(_) => "coded rows",
        }
    }
}

/// Writes `selection` of `log` in `format` (the one export function, offline and online);
/// returns the number of lines or rows.
pub fn write_export(
    log: &Log,
    format: ExportFormat,
    selection: &ExportSelection,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64, u64),
) -> LogResult<u64> {
    match format {
        ExportFormat::Jsonl => crate::log::backup::export_jsonl_selected(log, selection, out, progress),
        ExportFormat::Coded(coded) => export_selected(log, coded, selection, out, progress),
    }
}

/// Writes every coded event of `log` in `format`; returns the number of rows.
pub fn export(log: &Log, format: AnalystFormat, out: &mut dyn Write) -> LogResult<u64> {
    export_selected(
        log,
        format,
        &ExportSelection::everything(log),
        out,
        &mut |_, _| {},
    )
}

/// Writes the coded events of `selection` in `format`, calling `progress(position examined,
/// last position)` after every page; returns the number of rows. Every event up to
/// `selection.to` is read (party countries, source URLs and commitments are learned from the
/// events before `from` too), only the selected ones are written.
pub fn export_selected(
    log: &Log,
    format: AnalystFormat,
    selection: &ExportSelection,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64, u64),
) -> LogResult<u64> {
    let mut context = Context::default();
    let mut rows = 0u64;
    if format == AnalystFormat::CameoTsv {
        writeln!(out, "{TSV_HEADER}")?;
    }
    let mut position = 1;
    while position <= selection.to {
        let page = log.read_all(
            position,
            Direction::Forwards,
            MAX_READ_PAGE_EVENTS,
            &EventFilter::default(),
        )?;
        for recorded in &page.events {
            let envelope = recorded.envelope();
            if envelope.position > selection.to {
                break;
            }
            let event = decode_event(&envelope.event_type, envelope.schema_version, &envelope.payload)
                .map_err(|error| LogError::DataLoss {
                    position: envelope.position,
                    reason: format!("event does not decode: {error}"),
                })?;
            context.learn(&envelope.stream_id, &event);
            if !selection.includes(envelope) {
                continue;
            }
            for row in code(recorded, &event, &context) {
                match format {
                    AnalystFormat::CameoTsv => writeln!(out, "{}", tsv_row(&row))?,
                    AnalystFormat::PloverJsonl => {
                        serde_json::to_writer(&mut *out, &row).map_err(|error| LogError::Io(error.into()))?;
                        out.write_all(b"\n")?;
                    }
                }
                rows += 1;
            }
        }
        position = page.next_position;
        progress((position - 1).min(selection.to), selection.to);
        if page.reached_end {
            break;
        }
    }
    out.flush()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quad_classes_follow_the_cameo_roots() {
        assert_eq!(quad_class("030"), 1);
        assert_eq!(quad_class("057"), 1);
        assert_eq!(quad_class("061"), 2);
        assert_eq!(quad_class("112"), 3);
        assert_eq!(quad_class("190"), 4);
    }
}
