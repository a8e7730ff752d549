//! What the conversions of every aggregate share, in both directions: [`Violations`] (the
//! collector of malformed fields), timestamps, precision and valid time, provenance, time
//! windows, UUIDs and id lists; the log's directions and filters; and commands as a whole: the
//! request header, [`CommandRequest`] with the `command_request!`/`source_request!` macros that
//! implement it (invoked in each aggregate's file), proto field paths, entity ids, command
//! results, and batches ([`batch_from_pb`] in; [`command_to_pb`] out, which dispatches to each
//! aggregate).
//!
//! Timestamps: the domain stores whole microseconds; inbound nanos are truncated towards the
//! past, and seconds must be within the protobuf Timestamp range (years 1 to 9999).
//!
//! Longer than ~600 lines because every helper the five aggregate files share lives here, so that
//! each aggregate file holds only its own messages.

use prost_types::Timestamp as PbTimestamp;
use uuid::Uuid;

use super::{commitment, meeting, official, party, source};
use crate::api::pb;
use crate::domain::common::{
    quoted, EntityId, Provenance, SourceCitation, TimeWindow, WindowKind, PARTY_STREAM_PREFIX,
};
use crate::domain::{decide_command, AggregateState, DomainCommand, FieldViolation, Rejection};
use crate::ledger::{CommandEnvelope, CommandOutcome};
use crate::log::{Direction, EventFilter};
use crate::time::{OccurredAt, Precision, Timestamp};

/// Smallest seconds value of a protobuf Timestamp (0001-01-01T00:00:00Z).
const MIN_TIMESTAMP_SECONDS: i64 = -62_135_596_800;
/// Largest seconds value of a protobuf Timestamp (9999-12-31T23:59:59Z).
const MAX_TIMESTAMP_SECONDS: i64 = 253_402_300_799;

// ---------------------------------------------------------------------------------------------
// Validation: the collector of malformed fields.
// ---------------------------------------------------------------------------------------------

/// Collects every malformed field of a request (by proto field path), then fails with all.
#[derive(Debug, Default)]
pub struct Violations {
    violations: Vec<FieldViolation>,
}

impl Violations {
    /// No violations yet.
    pub fn new() -> Violations {
        Violations::default()
    }

    /// Records that `field` is malformed.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.violations.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
    }

    /// `Ok(value)` if nothing was recorded, else every violation.
    pub fn finish<T>(self, value: T) -> Result<T, Vec<FieldViolation>> {
        if self.violations.is_empty() {
            Ok(value)
        } else {
            Err(self.violations)
        }
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.violations.is_empty()
    }

    /// Adds the violations of a nested conversion, prefixed by `prefix` (`commands[3].`).
    pub fn extend_prefixed(&mut self, prefix: &str, violations: Vec<FieldViolation>) {
        for violation in violations {
            self.add(format!("{prefix}{}", violation.field), violation.description);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Value types: timestamps, valid time, provenance, time windows, ids.
// ---------------------------------------------------------------------------------------------

/// A domain instant as a protobuf Timestamp.
pub fn timestamp_to_pb(timestamp: Timestamp) -> PbTimestamp {
    let micros = timestamp.unix_micros();
    PbTimestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1_000) as i32,
    }
}

/// A protobuf Timestamp as a domain instant (nanos truncated to microseconds).
pub fn timestamp_from_pb(timestamp: &PbTimestamp, field: &str, violations: &mut Violations) -> Timestamp {
    if !(0..1_000_000_000).contains(&timestamp.nanos) {
        violations.add(
            field,
            format!(
                "nanos {} is out of range: must be between 0 and 999,999,999",
                timestamp.nanos
            ),
        );
        return Timestamp::EPOCH;
    }
    if !(MIN_TIMESTAMP_SECONDS..=MAX_TIMESTAMP_SECONDS).contains(&timestamp.seconds) {
        violations.add(
            field,
            format!(
                "seconds {} is out of range: must be between {MIN_TIMESTAMP_SECONDS} and \
                 {MAX_TIMESTAMP_SECONDS} (the years 1 to 9999)",
                timestamp.seconds
            ),
        );
        return Timestamp::EPOCH;
    }
    Timestamp::from_unix_micros(timestamp.seconds * 1_000_000 + i64::from(timestamp.nanos / 1_000))
}

/// A required timestamp.
pub fn required_timestamp(
    timestamp: Option<&PbTimestamp>,
    field: &str,
    violations: &mut Violations,
) -> Timestamp {
    match timestamp {
        Some(timestamp) => timestamp_from_pb(timestamp, field, violations),
        None => {
            violations.add(field, "is required");
            Timestamp::EPOCH
        }
    }
}

/// An optional timestamp.
pub fn optional_timestamp(
    timestamp: Option<&PbTimestamp>,
    field: &str,
    violations: &mut Violations,
) -> Option<Timestamp> {
    timestamp.map(|timestamp| timestamp_from_pb(timestamp, field, violations))
}

/// A precision as its proto enum.
pub fn precision_to_pb(precision: Precision) -> pb::Precision {
    match precision {
        Precision::Year => pb::Precision::Year,
        Precision::Month => pb::Precision::Month,
        Precision::Day => pb::Precision::Day,
        Precision::Hour => pb::Precision::Hour,
        Precision::Minute => pb::Precision::Minute,
        Precision::Second => pb::Precision::Second,
        Precision::Exact => pb::Precision::Exact,
    }
}

/// What a precision may be, as its refusals say.
const VALID_PRECISIONS: &str = "one of PRECISION_YEAR (1), PRECISION_MONTH (2), PRECISION_DAY (3), \
     PRECISION_HOUR (4), PRECISION_MINUTE (5), PRECISION_SECOND (6) or PRECISION_EXACT (7)";

/// A precision (UNSPECIFIED is rejected).
pub fn precision_from_pb(value: i32, field: &str, violations: &mut Violations) -> Precision {
    match pb::Precision::try_from(value) {
        Ok(pb::Precision::Year) => Precision::Year,
        Ok(pb::Precision::Month) => Precision::Month,
        Ok(pb::Precision::Day) => Precision::Day,
        Ok(pb::Precision::Hour) => Precision::Hour,
        Ok(pb::Precision::Minute) => Precision::Minute,
        Ok(pb::Precision::Second) => Precision::Second,
        Ok(pb::Precision::Exact) => Precision::Exact,
        Ok(pb::Precision::Unspecified) => {
            violations.add(field, format!("is required: {VALID_PRECISIONS}"));
            Precision::Exact
        }
        Err(_) => {
            violations.add(field, format!("{value} is not a precision: {VALID_PRECISIONS}"));
            Precision::Exact
        }
    }
}

/// Valid time as its message.
pub fn occurred_at_to_pb(occurred_at: OccurredAt) -> pb::OccurredAt {
    pb::OccurredAt {
        at: Some(timestamp_to_pb(occurred_at.at())),
        precision: precision_to_pb(occurred_at.precision()) as i32,
    }
}

/// A valid time.
pub fn occurred_at_from_pb(value: &pb::OccurredAt, field: &str, violations: &mut Violations) -> OccurredAt {
    let at = required_timestamp(value.at.as_ref(), &format!("{field}.at"), violations);
    let precision = precision_from_pb(value.precision, &format!("{field}.precision"), violations);
    OccurredAt::new(at, precision)
}

/// A required valid time.
pub fn required_occurred_at(
    value: Option<&pb::OccurredAt>,
    field: &str,
    violations: &mut Violations,
) -> OccurredAt {
    match value {
        Some(value) => occurred_at_from_pb(value, field, violations),
        None => {
            violations.add(field, "is required");
            OccurredAt::new(Timestamp::EPOCH, Precision::Exact)
        }
    }
}

/// An optional valid time.
pub fn optional_occurred_at(
    value: Option<&pb::OccurredAt>,
    field: &str,
    violations: &mut Violations,
) -> Option<OccurredAt> {
    value.map(|value| occurred_at_from_pb(value, field, violations))
}

pub(super) fn provenance_to_pb(provenance: &Provenance) -> pb::Provenance {
    pb::Provenance {
        occurred_at: Some(occurred_at_to_pb(provenance.occurred_at)),
        sources: provenance
            .sources
            .iter()
            .map(|citation| pb::SourceCitation {
                source_id: citation.source_id.to_string(),
                quote: citation.quote.clone(),
            })
            .collect(),
    }
}

fn provenance_from_pb(
    occurred_at: Option<&pb::OccurredAt>,
    sources: &[pb::SourceCitation],
    violations: &mut Violations,
) -> Provenance {
    Provenance {
        occurred_at: required_occurred_at(occurred_at, "header.occurred_at", violations),
        sources: sources
            .iter()
            .enumerate()
            .map(|(index, citation)| SourceCitation {
                source_id: entity_id_from_pb(
                    &citation.source_id,
                    &format!("header.sources[{index}].source_id"),
                    violations,
                ),
                quote: citation.quote.clone(),
            })
            .collect(),
    }
}

pub(super) fn window_to_pb(window: &TimeWindow) -> pb::TimeWindow {
    pb::TimeWindow {
        start: Some(occurred_at_to_pb(window.start)),
        end: window.end.map(occurred_at_to_pb),
        kind: match window.kind {
            WindowKind::Span => pb::WindowKind::Span,
            WindowKind::Within => pb::WindowKind::Within,
        } as i32,
    }
}

pub(super) fn window_from_pb(
    window: &pb::TimeWindow,
    field: &str,
    violations: &mut Violations,
) -> TimeWindow {
    let kind = match pb::WindowKind::try_from(window.kind) {
        Ok(pb::WindowKind::Span) => WindowKind::Span,
        Ok(pb::WindowKind::Within) => WindowKind::Within,
        Err(_) => {
            violations.add(
                format!("{field}.kind"),
                format!("{} is not a window kind (SPAN or WITHIN)", window.kind),
            );
            WindowKind::Span
        }
    };
    TimeWindow {
        start: required_occurred_at(window.start.as_ref(), &format!("{field}.start"), violations),
        end: optional_occurred_at(window.end.as_ref(), &format!("{field}.end"), violations),
        kind,
    }
}

pub(super) fn required_window(
    window: Option<&pb::TimeWindow>,
    field: &str,
    violations: &mut Violations,
) -> TimeWindow {
    let default = pb::TimeWindow::default();
    window_from_pb(
        required(window, field, violations).unwrap_or(&default),
        field,
        violations,
    )
}

/// A required UUID in canonical text form.
pub fn uuid_from_pb(value: &str, field: &str, violations: &mut Violations) -> Uuid {
    if value.is_empty() {
        violations.add(field, "is required (a UUID)");
        return Uuid::nil();
    }
    match Uuid::try_parse(value) {
        Ok(uuid) => uuid,
        Err(_) => {
            violations.add(
                field,
                format!(
                    "{} is not a UUID: give one such as 0190c1d2-3e4f-7a5b-8c6d-7e8f90a1b2c3",
                    quoted(value)
                ),
            );
            Uuid::nil()
        }
    }
}

/// An optional UUID (absent or empty is `None`).
pub fn optional_uuid(value: Option<&str>, field: &str, violations: &mut Violations) -> Option<Uuid> {
    match value {
        None | Some("") => None,
        Some(value) => Some(uuid_from_pb(value, field, violations)),
    }
}

/// The bare id of an entity given either bare (`LBY`, a UUID) or as its stream id
/// (`party-LBY`, `meeting-<uuid>`): one id form is accepted everywhere, the other too.
fn bare_id<'a>(value: &'a str, prefix: &str) -> &'a str {
    value
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .unwrap_or(value)
}

/// A party code given bare (`LBY`) or as its stream id (`party-LBY`). The domain checks it; a
/// party command's own code is checked by the ledger before any lookup, as the request's `code`.
pub fn party_code_from_pb(value: &str) -> String {
    bare_id(value, PARTY_STREAM_PREFIX).to_owned()
}

/// Party codes, each given bare or as its stream id.
pub(super) fn party_codes_from_pb(values: &[String]) -> Vec<String> {
    values.iter().map(|value| party_code_from_pb(value)).collect()
}

/// A required entity id: its UUID, bare or as its stream id (`meeting-<uuid>`).
pub fn entity_id_from_pb<T: EntityId>(value: &str, field: &str, violations: &mut Violations) -> T {
    T::from_uuid(uuid_from_pb(bare_id(value, T::STREAM_PREFIX), field, violations))
}

/// An optional entity id (absent or empty is `None`), bare or as its stream id.
pub fn optional_entity_id<T: EntityId>(
    value: Option<&str>,
    field: &str,
    violations: &mut Violations,
) -> Option<T> {
    match value {
        None | Some("") => None,
        Some(value) => Some(entity_id_from_pb(value, field, violations)),
    }
}

/// The id of an entity a command creates: the given id, or the command id when empty (so a
/// retry creates the same entity).
pub(super) fn new_entity_id<T: EntityId>(
    value: &str,
    command_id: Uuid,
    field: &str,
    violations: &mut Violations,
) -> T {
    if value.is_empty() {
        T::from_uuid(command_id)
    } else {
        entity_id_from_pb(value, field, violations)
    }
}

/// A list of entity ids, each bare or as its stream id.
pub(super) fn entity_ids<T: EntityId>(values: &[String], field: &str, violations: &mut Violations) -> Vec<T> {
    values
        .iter()
        .enumerate()
        .map(|(index, value)| entity_id_from_pb(value, &format!("{field}[{index}]"), violations))
        .collect()
}

pub(super) fn ids_to_pb<T: std::fmt::Display>(ids: &[T]) -> Vec<String> {
    ids.iter().map(ToString::to_string).collect()
}

pub(super) fn required<'a, T>(
    value: Option<&'a T>,
    field: &str,
    violations: &mut Violations,
) -> Option<&'a T> {
    if value.is_none() {
        violations.add(field, "is required");
    }
    value
}

// ---------------------------------------------------------------------------------------------
// The log: directions and filters.
// ---------------------------------------------------------------------------------------------

/// A direction (UNSPECIFIED is forwards).
pub fn direction_from_pb(value: i32, field: &str, violations: &mut Violations) -> Direction {
    match pb::Direction::try_from(value) {
        Ok(pb::Direction::Unspecified | pb::Direction::Forwards) => Direction::Forwards,
        Ok(pb::Direction::Backwards) => Direction::Backwards,
        Err(_) => {
            violations.add(field, format!("unknown direction {value}"));
            Direction::Forwards
        }
    }
}

/// A filter (absent matches everything). Entries must be non-empty.
pub fn filter_from_pb(
    filter: Option<pb::EventFilter>,
    field: &str,
    violations: &mut Violations,
) -> EventFilter {
    let Some(filter) = filter else {
        return EventFilter::default();
    };
    let lists = [
        ("event_types", &filter.event_types),
        ("stream_prefixes", &filter.stream_prefixes),
        ("tags", &filter.tags),
    ];
    for (name, list) in lists {
        if list.len() > MAX_FILTER_ENTRIES {
            violations.add(
                format!("{field}.{name}"),
                format!("has {} entries, the limit is {MAX_FILTER_ENTRIES}", list.len()),
            );
        }
        for (index, entry) in list.iter().enumerate() {
            if entry.is_empty() {
                violations.add(format!("{field}.{name}[{index}]"), "must not be empty");
            }
        }
    }
    EventFilter {
        event_types: filter.event_types,
        stream_prefixes: filter.stream_prefixes,
        tags: filter.tags,
    }
}

/// Most entries in each list of an event filter.
pub const MAX_FILTER_ENTRIES: usize = 256;

// ---------------------------------------------------------------------------------------------
// Commands: the header, requests, results and batches.
// ---------------------------------------------------------------------------------------------

/// A command request that converts to what the ledger records, with every malformed field
/// reported (by proto field path).
pub trait CommandRequest {
    /// The command envelope, sent by `recorded_by`.
    fn into_command(self, recorded_by: &str) -> Result<CommandEnvelope, Vec<FieldViolation>>;
}

/// The fields every command request carries in its `header`, validated.
pub(super) struct Header {
    pub(super) command_id: Uuid,
    expected_version: Option<u64>,
    correlation_id: Option<Uuid>,
    causation_id: Option<Uuid>,
}

impl Header {
    /// Reads `header` (absent reads as empty, so each missing field is named). With
    /// `provenance` the valid time and citations are read too; without, setting either is a
    /// violation (source commands take neither).
    pub(super) fn read(
        header: Option<pb::CommandHeader>,
        provenance: bool,
        violations: &mut Violations,
    ) -> (Header, Option<Provenance>) {
        let header = header.unwrap_or_default();
        let read = Header {
            command_id: uuid_from_pb(&header.command_id, "header.command_id", violations),
            expected_version: header.expected_version,
            correlation_id: optional_uuid(
                header.correlation_id.as_deref(),
                "header.correlation_id",
                violations,
            ),
            causation_id: optional_uuid(header.causation_id.as_deref(), "header.causation_id", violations),
        };
        if provenance {
            let provenance = provenance_from_pb(header.occurred_at.as_ref(), &header.sources, violations);
            return (read, Some(provenance));
        }
        if header.occurred_at.is_some() {
            violations.add(
                "header.occurred_at",
                "a source command takes no valid time (its own is published_at)",
            );
        }
        if !header.sources.is_empty() {
            violations.add("header.sources", "a source command cites no sources");
        }
        (read, None)
    }

    pub(super) fn envelope(self, command: DomainCommand, recorded_by: &str) -> CommandEnvelope {
        CommandEnvelope {
            command_id: self.command_id,
            expected_version: self.expected_version,
            command,
            recorded_by: recorded_by.to_owned(),
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
        }
    }
}

/// Implements [`CommandRequest`] for a request with provenance (valid time and citations in its
/// header). The body builds the domain command from the request (`$r`), the violations (`$v`),
/// the command id (`$id`) and the provenance (`$p`). Used in each aggregate's file; the paths
/// are absolute so that the invoking file needs no imports for them.
macro_rules! command_request {
    ($request:ty, |$r:ident, $v:ident, $id:ident, $p:ident| $build:expr) => {
        impl $crate::api::convert::CommandRequest for $request {
            fn into_command(
                mut self,
                recorded_by: &str,
            ) -> Result<$crate::ledger::CommandEnvelope, Vec<$crate::domain::FieldViolation>> {
                let mut violations = $crate::api::convert::Violations::new();
                let $v = &mut violations;
                let (header, provenance) =
                    $crate::api::convert::common::Header::read(self.header.take(), true, $v);
                #[allow(unused_variables)]
                let $id = header.command_id;
                let $p = provenance.expect("read with provenance");
                let $r = self;
                let command: $crate::domain::DomainCommand = $build;
                violations.finish(header.envelope(command, recorded_by))
            }
        }
    };
}
pub(super) use command_request;

/// Implements [`CommandRequest`] for a source command (no provenance).
macro_rules! source_request {
    ($request:ty, |$r:ident, $v:ident, $id:ident| $build:expr) => {
        impl $crate::api::convert::CommandRequest for $request {
            fn into_command(
                mut self,
                recorded_by: &str,
            ) -> Result<$crate::ledger::CommandEnvelope, Vec<$crate::domain::FieldViolation>> {
                let mut violations = $crate::api::convert::Violations::new();
                let $v = &mut violations;
                let (header, _) = $crate::api::convert::common::Header::read(self.header.take(), false, $v);
                #[allow(unused_variables)]
                let $id = header.command_id;
                let $r = self;
                let command: $crate::domain::DomainCommand = $build;
                violations.finish(header.envelope(command, recorded_by))
            }
        }
    };
}
pub(super) use source_request;

/// Maps a domain field path to the request's proto path: the domain nests valid time and
/// citations under `provenance`, requests carry them in the `header`.
pub fn proto_field_path(domain_field: &str) -> String {
    match domain_field.strip_prefix("provenance.") {
        Some(field) => format!("header.{field}"),
        None => domain_field.to_owned(),
    }
}

/// The entity a command is about, as the responses name it: a party code or a UUID.
pub fn entity_id(command: &DomainCommand) -> String {
    match command {
        DomainCommand::Party(command) => command.code().to_owned(),
        DomainCommand::Official(command) => command.official_id().to_string(),
        DomainCommand::Source(command) => command.source_id().to_string(),
        DomainCommand::Meeting(command) => command.meeting_id().to_string(),
        DomainCommand::Commitment(command) => command.commitment_id().to_string(),
    }
}

/// What a recorded command did, as every command response carries it.
pub fn command_result_to_pb(outcome: &CommandOutcome) -> pb::CommandResult {
    pb::CommandResult {
        stream_id: outcome.stream_id().to_owned(),
        stream_version: outcome.stream_version(),
        positions: outcome.positions().to_vec(),
        recorded_at: outcome.recorded_at().map(timestamp_to_pb),
        event_ids: ids_to_pb(outcome.event_ids()),
    }
}

/// The commands of a batch, each converted by `convert` (the command table's dispatch);
/// violations are prefixed `commands[i].`.
pub fn batch_from_pb(
    request: pb::SubmitBatchRequest,
    convert: impl Fn(pb::batch_command::Command) -> Result<CommandEnvelope, Vec<FieldViolation>>,
) -> Result<Vec<CommandEnvelope>, Vec<FieldViolation>> {
    let mut violations = Violations::new();
    if request.commands.is_empty() {
        violations.add("commands", "needs at least one command");
    }
    let mut envelopes = Vec::with_capacity(request.commands.len());
    for (index, command) in request.commands.into_iter().enumerate() {
        let Some(command) = command.command else {
            violations.add(format!("commands[{index}]"), "no command set");
            continue;
        };
        let converted = convert(command);
        match converted {
            Ok(envelope) => {
                // The domain's field checks need no state: run them now so that a malformed
                // command is reported with its index.
                let empty = AggregateState::empty_for(&envelope.command);
                if let Err(Rejection::Invalid(domain)) = decide_command(&empty, &envelope.command) {
                    for violation in domain {
                        violations.add(
                            format!("commands[{index}].{}", proto_field_path(&violation.field)),
                            violation.description,
                        );
                    }
                }
                envelopes.push(envelope);
            }
            Err(nested) => violations.extend_prefixed(&format!("commands[{index}]."), nested),
        }
    }
    violations.finish(envelopes)
}

// ---------------------------------------------------------------------------------------------
// Outbound commands: a domain command as the request a client sends (clients written in Rust,
// `dipledger demo --server`). The inverse of the inbound conversion above; each aggregate's file
// converts its own commands.
// ---------------------------------------------------------------------------------------------

/// The header of a request [`command_to_pb`] builds: `command_id`, and the valid time and
/// citations of `provenance` (none for a source command).
pub(super) fn command_header(command_id: Uuid, provenance: Option<&Provenance>) -> Option<pb::CommandHeader> {
    Some(pb::CommandHeader {
        command_id: command_id.to_string(),
        occurred_at: provenance.map(|provenance| occurred_at_to_pb(provenance.occurred_at)),
        sources: provenance.map_or_else(Vec::new, |provenance| provenance_to_pb(provenance).sources),
        ..Default::default()
    })
}

/// A request message of a command with provenance, as [`command_to_pb`] builds it: `$message`
/// with the header of `$command_id` and `$provenance`, and the given fields.
macro_rules! request_to_pb {
    ($message:ident, $command_id:expr, $provenance:expr, { $($field:ident: $value:expr),* $(,)? }) => {
        $crate::api::pb::$message {
            header: $crate::api::convert::common::command_header($command_id, Some($provenance)),
            $($field: $value,)*
        }
    };
}
pub(super) use request_to_pb;

/// A domain command as a `SubmitBatch` entry with `command_id`.
pub fn command_to_pb(command: &DomainCommand, command_id: Uuid) -> pb::BatchCommand {
    let command = match command {
        DomainCommand::Party(command) => party::command_to_pb(command, command_id),
        DomainCommand::Source(command) => source::command_to_pb(command, command_id),
        DomainCommand::Official(command) => official::command_to_pb(command, command_id),
        DomainCommand::Meeting(command) => meeting::command_to_pb(command, command_id),
        DomainCommand::Commitment(command) => commitment::command_to_pb(command, command_id),
    };
    pb::BatchCommand {
        command: Some(command),
    }
}

#[cfg(test)]
mod outbound_tests {
    use super::*;

    #[test]
    fn commands_round_trip_through_their_requests() {
        let commands = crate::sample::news_report_commands();
        let request = pb::SubmitBatchRequest {
            commands: commands
                .iter()
                .map(|command| command_to_pb(command, uuid::Uuid::now_v7()))
                .collect(),
        };
        let back = batch_from_pb(request, |command| {
            crate::api::commands::batch_command(command, "tester")
        })
        .expect("valid requests");
        let back: Vec<_> = back.into_iter().map(|envelope| envelope.command).collect();
        assert_eq!(back, commands);
    }
}

#[cfg(test)]
mod message_tests {
    use super::*;
    use crate::api::convert::CommandRequest;

    /// The descriptions recorded by `convert`, by field.
    fn described(convert: impl FnOnce(&mut Violations)) -> Vec<(String, String)> {
        let mut violations = Violations::new();
        convert(&mut violations);
        violations
            .finish(())
            .unwrap_err()
            .into_iter()
            .map(|violation| (violation.field, violation.description))
            .collect()
    }

    #[test]
    fn a_timestamp_out_of_range_names_its_value_and_the_range() {
        let nanos = described(|v| {
            timestamp_from_pb(
                &PbTimestamp {
                    seconds: 0,
                    nanos: 1_000_000_000,
                },
                "header.occurred_at.at",
                v,
            );
        });
        assert_eq!(
            nanos,
            [(
                "header.occurred_at.at".to_owned(),
                "nanos 1000000000 is out of range: must be between 0 and 999,999,999".to_owned()
            )]
        );
        let negative = described(|v| {
            timestamp_from_pb(
                &PbTimestamp {
                    seconds: 0,
                    nanos: -1,
                },
                "t",
                v,
            );
        });
        assert_eq!(
            negative[0].1,
            "nanos -1 is out of range: must be between 0 and 999,999,999"
        );
        let year_10000 = described(|v| {
            timestamp_from_pb(
                &PbTimestamp {
                    seconds: MAX_TIMESTAMP_SECONDS + 1,
                    nanos: 0,
                },
                "t",
                v,
            );
        });
        assert_eq!(
            year_10000[0].1,
            "seconds 253402300800 is out of range: must be between -62135596800 and 253402300799 (the years 1 to 9999)"
        );
        // The bounds themselves are valid.
        let mut violations = Violations::new();
        for seconds in [MIN_TIMESTAMP_SECONDS, MAX_TIMESTAMP_SECONDS] {
            timestamp_from_pb(
                &PbTimestamp {
                    seconds,
                    nanos: 999_999_999,
                },
                "t",
                &mut violations,
            );
        }
        assert!(violations.is_empty(), "{violations:?}");
    }

    #[test]
    fn a_precision_refused_lists_the_valid_names() {
        let missing = described(|v| {
            precision_from_pb(0, "header.occurred_at.precision", v);
        });
        assert_eq!(missing[0].0, "header.occurred_at.precision");
        assert_eq!(
            missing[0].1,
            "is required: one of PRECISION_YEAR (1), PRECISION_MONTH (2), PRECISION_DAY (3), \
             PRECISION_HOUR (4), PRECISION_MINUTE (5), PRECISION_SECOND (6) or PRECISION_EXACT (7)"
        );
        let unknown = described(|v| {
            precision_from_pb(42, "p", v);
        });
        assert!(
            unknown[0]
                .1
                .starts_with("42 is not a precision: one of PRECISION_YEAR (1), "),
            "{unknown:?}"
        );
    }

    #[test]
    fn a_malformed_uuid_is_quoted_and_cut() {
        let short = described(|v| {
            uuid_from_pb("not-a-uuid", "meeting_id", v);
        });
        assert_eq!(
            short[0].1,
            "\"not-a-uuid\" is not a UUID: give one such as 0190c1d2-3e4f-7a5b-8c6d-7e8f90a1b2c3"
        );
        let long = "x".repeat(100_000);
        let cut_value = described(|v| {
            uuid_from_pb(&long, "meeting_id", v);
        });
        assert!(
            cut_value[0].1.contains("… (100000 bytes) is not a UUID"),
            "{cut_value:?}"
        );
        assert!(cut_value[0].1.len() < 200, "bounded: {}", cut_value[0].1.len());
    }

    #[test]
    fn an_unknown_participant_role_lists_the_valid_roles() {
        let mut request = pb::RecordMeetingHeldRequest {
            header: Some(pb::CommandHeader {
                command_id: Uuid::now_v7().to_string(),
                occurred_at: Some(occurred_at_to_pb(OccurredAt::new(
                    Timestamp::EPOCH,
                    Precision::Day,
                ))),
                ..Default::default()
            }),
            details: Some(pb::MeetingDetails {
                format: pb::MeetingFormat::Bilateral as i32,
                participants: vec![pb::Participant {
                    party: "LBY".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        request.details.as_mut().unwrap().participants[0].role = 9;
        let violations = request.into_command("tester").unwrap_err();
        let role: Vec<_> = violations
            .iter()
            .filter(|violation| violation.field == "details.participants[0].role")
            .map(|violation| violation.description.as_str())
            .collect();
        assert_eq!(
            role,
            ["9 is not a participant role: one of PARTICIPANT_ROLE_HOST (1), PARTICIPANT_ROLE_VISITOR (2), \
              PARTICIPANT_ROLE_THIRD_PARTY (3) or PARTICIPANT_ROLE_MEDIATOR (4), or unset when the sources do not say"]
        );
    }
}
