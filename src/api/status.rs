//! Every mapping of an error to a `tonic::Status`, in one place (the table in docs/api.md).
//!
//! | cause | code | details |
//! |---|---|---|
//! | malformed request (API conversion, domain validation, log limits on a field) | INVALID_ARGUMENT | google.rpc.BadRequest with one field violation per bad field |
//! | domain rule (`Rejection::Rule`) | FAILED_PRECONDITION | google.rpc.ErrorInfo (reason = rule code) and PreconditionFailure |
//! | expected-version conflict | ABORTED | ErrorInfo metadata `stream_id`, `current_version`; the message names it too |
//! | command id reused with a different request; creating an existing entity | ALREADY_EXISTS | ErrorInfo / ResourceInfo |
//! | unknown entity or stream | NOT_FOUND | ResourceInfo |
//! | position or version past the end | OUT_OF_RANGE | ErrorInfo metadata `head` |
//! | over a size limit (a request message over the server's limit included); too many subscriptions or exports; the disk below its minimum | RESOURCE_EXHAUSTED | ErrorInfo / QuotaFailure |
//! | request bytes that are not protobuf (tonic's INTERNAL, remapped) | INVALID_ARGUMENT | none |
//! | shutting down, writer stopped after a disk failure | UNAVAILABLE | none |
//! | a stored record (or sled's own data) failed its integrity check | DATA_LOSS | ErrorInfo metadata `position` |
//! | bugs, storage and I/O errors | INTERNAL | none: the cause goes to the server log only |

//!
//! Every answer is bounded, whatever the request held: a value the client sent that a message,
//! a description or a detail repeats is cut to its first [`MAX_ECHOED_CHARS`] characters
//! ([`echo`]); a field violation's path and description to [`MAX_VIOLATION_TEXT_CHARS`]; at most
//! [`MAX_FIELD_VIOLATIONS`] violations are listed, then one entry `and N more`; and the message
//! plus the encoded details stay within [`MAX_STATUS_BYTES`] (both travel in HTTP/2 headers,
//! which clients limit), dropping listed violations first, then shortening the message.

use std::borrow::Cow;
use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation as PbFieldViolation, StatusExt};

use crate::domain::common::cut;
use crate::domain::{FieldViolation, Rejection};
use crate::ledger::LedgerError;
use crate::log::LogError;
use crate::projections::ProjectionError;

/// The `domain` of every google.rpc.ErrorInfo this server sends.
pub const ERROR_DOMAIN: &str = "dipledger";

/// Most characters of a value the client sent (a stream id, a code, a text) that an error
/// message, a field violation or a detail repeats; a longer value is cut there and followed by
/// `… (N bytes)`, N its full length ([`echo`]).
pub const MAX_ECHOED_CHARS: usize = crate::domain::common::MAX_QUOTED_CHARS;
/// Most characters of a field violation's path or description (cut like [`echo`]); the
/// server's own descriptions are far shorter, this bounds whatever a value added to them.
pub const MAX_VIOLATION_TEXT_CHARS: usize = 256;
/// Most field violations listed in one answer; the others are counted in one last entry, with
/// an empty field, `and N more`.
pub const MAX_FIELD_VIOLATIONS: usize = 20;
/// Most field violations an INVALID_ARGUMENT message names (each with its description) before
/// it counts the rest, `(and N more)`; all of them travel in the details.
pub const MAX_VIOLATIONS_IN_MESSAGE: usize = 3;
/// Most bytes of a status's message plus its encoded details (google.rpc.Status, which holds
/// the message again). Both travel in HTTP/2 headers, which clients limit (often to 16 KiB).
pub const MAX_STATUS_BYTES: usize = 8 * 1024;

/// A value the client sent, as an answer repeats it: whole up to [`MAX_ECHOED_CHARS`]
/// characters, else its first [`MAX_ECHOED_CHARS`] and `… (N bytes)`.
/// A gRPC status code as gRPC spells it (`INVALID_ARGUMENT`, `NOT_FOUND`): the metrics' status
/// label, the access log's outcome and the CLI's refusals all name codes this way.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

pub fn echo(value: &str) -> Cow<'_, str> {
    cut(value, MAX_ECHOED_CHARS)
}

/// What a status costs against [`MAX_STATUS_BYTES`].
pub fn status_bytes(status: &Status) -> usize {
    status.message().len() + status.details().len()
}

/// A status with `details`, its message shortened (like [`echo`]) until the status is within
/// [`MAX_STATUS_BYTES`].
fn bounded(code: Code, message: String, details: ErrorDetails) -> Status {
    let status = Status::with_error_details(code, message.clone(), details.clone());
    let mut excess = status_bytes(&status).saturating_sub(MAX_STATUS_BYTES);
    if excess == 0 {
        return status;
    }
    let mut keep = message.chars().count();
    loop {
        // The message is in the status twice (also inside the encoded details).
        keep = keep.saturating_sub(excess.div_ceil(2).max(1));
        let status = Status::with_error_details(code, cut(&message, keep), details.clone());
        excess = status_bytes(&status).saturating_sub(MAX_STATUS_BYTES);
        if excess == 0 || keep == 0 {
            return status;
        }
    }
}

/// INVALID_ARGUMENT with google.rpc.BadRequest field violations: the first
/// [`MAX_FIELD_VIOLATIONS`] (fewer if they would not fit in [`MAX_STATUS_BYTES`]), then one
/// entry with an empty field, `and N more`, for the rest. The message names the first
/// [`MAX_VIOLATIONS_IN_MESSAGE`] (field and description, `; ` between them), then counts the
/// others (`and N more`).
pub fn invalid_argument(violations: &[FieldViolation]) -> Status {
    let listed: Vec<PbFieldViolation> = violations
        .iter()
        .take(MAX_FIELD_VIOLATIONS)
        .map(|violation| {
            PbFieldViolation::new(
                cut(&violation.field, MAX_VIOLATION_TEXT_CHARS),
                cut(&violation.description, MAX_VIOLATION_TEXT_CHARS),
            )
        })
        .collect();
    let named: Vec<String> = listed
        .iter()
        .take(MAX_VIOLATIONS_IN_MESSAGE)
        .map(|violation| format!("{}: {}", violation.field, violation.description))
        .collect();
    let message = match violations.len().saturating_sub(named.len()) {
        _ if named.is_empty() => "invalid request".to_owned(),
        0 => format!("invalid request: {}", named.join("; ")),
        more => format!("invalid request: {} (and {more} more)", named.join("; ")),
    };
    let mut shown = listed.len();
    loop {
        let mut entries = listed[..shown].to_vec();
        if violations.len() > shown {
            entries.push(PbFieldViolation::new(
                "",
                format!("and {} more", violations.len() - shown),
            ));
        }
        let details = ErrorDetails::with_bad_request(entries);
        if shown == 0 {
            // Listing fewer violations was not enough: shorten the message.
            return bounded(Code::InvalidArgument, message, details);
        }
        // Violations are dropped before the message is shortened.
        let status = Status::with_error_details(Code::InvalidArgument, message.clone(), details);
        if status_bytes(&status) <= MAX_STATUS_BYTES {
            return status;
        }
        shown -= 1;
    }
}

/// INVALID_ARGUMENT for a single field.
pub fn invalid_field(field: impl Into<String>, description: impl Into<String>) -> Status {
    invalid_argument(&[FieldViolation {
        field: field.into(),
        description: description.into(),
    }])
}

/// OUT_OF_RANGE for one field of the request (a size or position past the head).
pub fn out_of_range_field(field: &str, description: String) -> Status {
    let violation = PbFieldViolation::new(field, cut(&description, MAX_VIOLATION_TEXT_CHARS));
    bounded(
        Code::OutOfRange,
        format!("{field}: {description}"),
        ErrorDetails::with_bad_request(vec![violation]),
    )
}

/// The status of a command the ledger did not record. Field paths of domain validation are
/// mapped to the request's proto paths (`provenance.sources[0]` -> `sources[0]`).
pub fn from_ledger_error(error: LedgerError) -> Status {
    match error {
        LedgerError::Rejected(Rejection::Invalid(violations)) => {
            let violations: Vec<_> = violations
                .into_iter()
                .map(|violation| FieldViolation {
                    field: super::convert::proto_field_path(&violation.field),
                    description: violation.description,
                })
                .collect();
            invalid_argument(&violations)
        }
        LedgerError::Rejected(rejection) => from_rejection(rejection),
        LedgerError::ReferenceNotFound { stream_id } => {
            let stream_id = echo(&stream_id);
            let details = ErrorDetails::with_resource_info(
                "stream",
                stream_id.as_ref(),
                "",
                "referenced but does not exist",
            );
            bounded(
                Code::NotFound,
                format!("{stream_id} is referenced by the command but does not exist"),
                details,
            )
        }
        LedgerError::WrongExpectedVersion {
            stream_id,
            expected,
            current,
        } => wrong_expected_version(&stream_id, &expected.to_string(), current),
        LedgerError::Contended { stream_id, attempts } => Status::aborted(format!(
            "{} kept changing under concurrent writers ({attempts} attempts); retry",
            echo(&stream_id)
        )),
        LedgerError::CommandIdReused { command_id } => {
            from_log_error(LogError::CommandIdReused { command_id })
        }
        LedgerError::InvalidBatch { reason } => invalid_field("commands", reason),
        LedgerError::Log(error) => from_log_error(error),
        error @ LedgerError::Undecodable { .. } => internal("ledger", error),
        LedgerError::WorkerLost(reason) => {
            eprintln!("dipledger: ledger worker lost: {reason}");
            Status::unavailable("the server is shutting down")
        }
    }
}

/// The status of a domain rejection.
pub fn from_rejection(rejection: Rejection) -> Status {
    match rejection {
        Rejection::Invalid(violations) => invalid_argument(&violations),
        Rejection::Rule { code, message } => {
            let message = cut(&message, MAX_VIOLATION_TEXT_CHARS);
            let mut details = ErrorDetails::with_error_info(code, ERROR_DOMAIN, HashMap::new());
            details.add_precondition_failure_violation(code, "command", message.clone());
            bounded(Code::FailedPrecondition, format!("{code}: {message}"), details)
        }
        Rejection::NotFound { stream_id } => not_found(&stream_id),
        Rejection::AlreadyExists { stream_id } => {
            let stream_id = echo(&stream_id);
            let details =
                ErrorDetails::with_resource_info("stream", stream_id.as_ref(), "", "already exists");
            bounded(
                Code::AlreadyExists,
                format!("{stream_id} already exists"),
                details,
            )
        }
    }
}

/// NOT_FOUND for a stream (entity).
pub fn not_found(stream_id: &str) -> Status {
    let stream_id = echo(stream_id);
    let details = ErrorDetails::with_resource_info("stream", stream_id.as_ref(), "", "does not exist");
    bounded(Code::NotFound, format!("{stream_id} does not exist"), details)
}

/// NOT_FOUND: a query names a party (well formed) that is not registered as of `position`,
/// the position the query's answer is based on.
pub fn party_not_found(code: &str, position: u64) -> Status {
    let code = echo(code);
    let details = ErrorDetails::with_resource_info(
        "party",
        code.as_ref(),
        "",
        format!("not registered as of position {position}"),
    );
    bounded(
        Code::NotFound,
        format!("party {code} is not registered (as of position {position})"),
        details,
    )
}

/// OUT_OF_RANGE: a stream version past the stream's end.
pub fn version_out_of_range(stream_id: &str, requested: u64, current: u64) -> Status {
    let stream_id = echo(stream_id);
    let metadata = HashMap::from([
        ("stream_id".to_owned(), stream_id.to_string()),
        ("stream_version".to_owned(), current.to_string()),
    ]);
    bounded(
        Code::OutOfRange,
        format!("version {requested} is past the end of {stream_id} (version {current})"),
        ErrorDetails::with_error_info("VERSION_PAST_END", ERROR_DOMAIN, metadata),
    )
}

/// RESOURCE_EXHAUSTED: the server already serves its maximum of subscriptions.
pub fn too_many_subscriptions(limit: usize) -> Status {
    let details = ErrorDetails::with_quota_failure_violation(
        "subscriptions",
        format!("at most {limit} concurrent subscriptions"),
    );
    Status::with_error_details(
        Code::ResourceExhausted,
        format!("too many open subscriptions (the limit is {limit}); retry later"),
        details,
    )
}

/// RESOURCE_EXHAUSTED: `limit` exports already run.
pub fn too_many_exports(limit: usize) -> Status {
    let details =
        ErrorDetails::with_quota_failure_violation("exports", format!("at most {limit} concurrent exports"));
    Status::with_error_details(
        Code::ResourceExhausted,
        format!("too many exports running (the limit is {limit}); retry later"),
        details,
    )
}

/// UNAVAILABLE: the server is shutting down.
pub fn shutting_down() -> Status {
    Status::unavailable("the server is shutting down")
}

/// INTERNAL without details; the cause is written to the server log only.
pub fn internal(context: &str, cause: impl std::fmt::Display) -> Status {
    eprintln!("dipledger: internal error: {context}: {cause}");
    Status::internal("internal error (see the server log)")
}

/// The status of a log error.
pub fn from_log_error(error: LogError) -> Status {
    match error {
        LogError::Invalid { field, reason } => invalid_field(field, reason),
        LogError::TooLarge { what, actual, limit } => {
            let metadata = HashMap::from([
                ("what".to_owned(), what.to_owned()),
                ("actual".to_owned(), actual.to_string()),
                ("limit".to_owned(), limit.to_string()),
            ]);
            Status::with_error_details(
                Code::ResourceExhausted,
                format!("{what} is {actual}, over the limit of {limit}"),
                ErrorDetails::with_error_info("TOO_LARGE", ERROR_DOMAIN, metadata),
            )
        }
        LogError::WrongExpectedVersion {
            stream_id,
            expected,
            current,
        } => wrong_expected_version(&stream_id, &format!("{expected:?}"), current),
        LogError::CommandIdReused { command_id } => {
            let metadata = HashMap::from([("command_id".to_owned(), command_id.to_string())]);
            Status::with_error_details(
                Code::AlreadyExists,
                format!("command {command_id} was already recorded with a different request"),
                ErrorDetails::with_error_info("COMMAND_ID_REUSED", ERROR_DOMAIN, metadata),
            )
        }
        LogError::OutOfRange { requested, head } => past_head("position", requested, head),
        LogError::DataLoss { position, reason } => {
            eprintln!("dipledger: DATA LOSS at position {position}: {reason}");
            let metadata = HashMap::from([("position".to_owned(), position.to_string())]);
            let message = match position {
                0 => format!("stored data failed its integrity check: {}", echo(&reason)),
                _ => format!("stored record at position {position} failed its integrity check"),
            };
            Status::with_error_details(
                Code::DataLoss,
                message,
                ErrorDetails::with_error_info("INTEGRITY_CHECK_FAILED", ERROR_DOMAIN, metadata),
            )
        }
        LogError::Poisoned { cause } => {
            eprintln!("dipledger: the log writer is stopped: {cause}");
            Status::unavailable("the log accepts no writes after a failed write to disk")
        }
        LogError::DiskFull { free, dir, minimum } => {
            let message = format!(
                "disk full: {free} bytes free under {}, below the minimum of {minimum}",
                echo(&dir.display().to_string())
            );
            let metadata = HashMap::from([
                ("free_bytes".to_owned(), free.to_string()),
                ("minimum_bytes".to_owned(), minimum.to_string()),
            ]);
            Status::with_error_details(
                Code::ResourceExhausted,
                message,
                ErrorDetails::with_error_info("DISK_FULL", ERROR_DOMAIN, metadata),
            )
        }
        LogError::Closed => Status::unavailable("the log is closed (the server is shutting down)"),
        error @ (LogError::UnsupportedFormat { .. }
        | LogError::Storage(_)
        | LogError::Io(_)
        | LogError::WriterPanicked) => internal("log", error),
    }
}

/// ABORTED: the stream is not at the version the caller expected. The current version is in
/// the message and in ErrorInfo metadata `current_version`.
pub fn wrong_expected_version(stream_id: &str, expected: &str, current: u64) -> Status {
    let (stream_id, expected) = (echo(stream_id), echo(expected));
    let metadata = HashMap::from([
        ("stream_id".to_owned(), stream_id.to_string()),
        ("expected_version".to_owned(), expected.to_string()),
        ("current_version".to_owned(), current.to_string()),
    ]);
    bounded(
        Code::Aborted,
        format!("{stream_id}: expected version {expected}, current version is {current}"),
        ErrorDetails::with_error_info("WRONG_EXPECTED_VERSION", ERROR_DOMAIN, metadata),
    )
}

/// OUT_OF_RANGE for a position past the head, named as the request named it (`position`, or
/// the field: `min_position`, `as_of_position`).
fn past_head(what: &str, requested: u64, head: u64) -> Status {
    let metadata = HashMap::from([("head".to_owned(), head.to_string())]);
    Status::with_error_details(
        Code::OutOfRange,
        format!("{what} {requested} is past the head of the log ({head})"),
        ErrorDetails::with_error_info("POSITION_PAST_HEAD", ERROR_DOMAIN, metadata),
    )
}

/// The status of a read-model error.
pub fn from_projection_error(error: ProjectionError) -> Status {
    match error {
        ProjectionError::NotFound { what, position } => {
            let what = echo(&what);
            let details = ErrorDetails::with_resource_info("entity", what.as_ref(), "", "does not exist");
            let message = crate::projections::error::not_found(&what, position);
            bounded(Code::NotFound, message, details)
        }
        ProjectionError::Unavailable {
            projection,
            wanted,
            reached,
        } => {
            let metadata = HashMap::from([
                ("projection".to_owned(), projection.to_owned()),
                ("wanted_position".to_owned(), wanted.to_string()),
                ("reached_position".to_owned(), reached.to_string()),
            ]);
            Status::with_error_details(
                Code::Unavailable,
                format!("read model {projection} reached position {reached}, not {wanted}, by the deadline"),
                ErrorDetails::with_error_info("READ_MODEL_BEHIND", ERROR_DOMAIN, metadata),
            )
        }
        ProjectionError::InvalidArgument { field, reason } => invalid_field(field, reason),
        ProjectionError::OutOfRange {
            field,
            requested,
            head,
        } => past_head(field, requested, head),
        ProjectionError::Log(error) => from_log_error(error),
        ProjectionError::DataLoss(reason) => {
            eprintln!("dipledger: DATA LOSS in a read model: {reason}");
            Status::with_error_details(
                Code::DataLoss,
                format!(
                    "stored data a read model needs failed its checks: {}",
                    echo(&reason)
                ),
                ErrorDetails::with_error_info("READ_MODEL_DAMAGED", ERROR_DOMAIN, HashMap::new()),
            )
        }
        ProjectionError::Stopped(cause) => {
            eprintln!("dipledger: projection runner stopped: {cause}");
            Status::unavailable("the read models stopped after an error; see the server log")
        }
        error @ ProjectionError::Storage(_) => internal("read model", error),
    }
}

/// How tonic's codec starts the message of a request message over the server's decoding limit
/// (it answers OUT_OF_RANGE, before any handler runs).
const TONIC_MESSAGE_TOO_LARGE: &str = "Error, decoded message length too large";
/// How a prost decode error's message starts (tonic answers INTERNAL with it).
const PROST_DECODE_FAILED: &str = "failed to decode Protobuf message";

/// The status a client gets instead of one of tonic's own request-decoding errors, or `None`
/// when `status` is not one (the server's layer, `api::decode_errors`, applies this to every
/// answer). A request message over `limit` bytes is RESOURCE_EXHAUSTED, like the ledger's own
/// size limits (tonic says OUT_OF_RANGE); bytes that are not a protobuf message of the request's
/// type are INVALID_ARGUMENT (tonic says INTERNAL, which would blame the server).
///
/// tonic reports both as plain statuses, so they are recognised by the start of their message
/// (pinned by `tests/it/api_server.rs`, which sends such requests to a real server).
pub fn from_codec_error(status: &Status, limit: usize) -> Option<Status> {
    match status.code() {
        Code::OutOfRange if status.message().starts_with(TONIC_MESSAGE_TOO_LARGE) => {
            // "... found {len} bytes, the limit is: {limit} bytes"
            let found = status
                .message()
                .split("found ")
                .nth(1)
                .and_then(|rest| rest.split(' ').next())
                .and_then(|digits| digits.parse::<u64>().ok());
            let mut metadata = HashMap::from([
                ("what".to_owned(), "request message bytes".to_owned()),
                ("limit".to_owned(), limit.to_string()),
            ]);
            let message = match found {
                Some(found) => {
                    metadata.insert("actual".to_owned(), found.to_string());
                    format!("the request message is {found} bytes, over the limit of {limit} bytes")
                }
                None => format!("the request message is over the limit of {limit} bytes"),
            };
            Some(Status::with_error_details(
                Code::ResourceExhausted,
                message,
                ErrorDetails::with_error_info("TOO_LARGE", ERROR_DOMAIN, metadata),
            ))
        }
        Code::Internal if status.message().starts_with(PROST_DECODE_FAILED) => {
            let reason = status.message()[PROST_DECODE_FAILED.len()..].trim_start_matches([':', ' ']);
            Some(Status::invalid_argument(if reason.is_empty() {
                "malformed request: not a protobuf message of the request's type".to_owned()
            } else {
                format!(
                    "malformed request: not a protobuf message of the request's type ({})",
                    cut(reason, MAX_VIOLATION_TEXT_CHARS)
                )
            }))
        }
        _ => None,
    }
}

/// The status of a failed blocking task (a panic or a cancelled task): a bug.
pub fn from_join_error(error: tokio::task::JoinError) -> Status {
    internal("blocking task", error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_model_behind_is_unavailable_and_a_position_past_the_head_is_out_of_range_named() {
        let behind = from_projection_error(ProjectionError::Unavailable {
            projection: "directory",
            wanted: 9,
            reached: 3,
        });
        assert_eq!(behind.code(), Code::Unavailable);
        assert_eq!(
            behind.message(),
            "read model directory reached position 3, not 9, by the deadline"
        );
        for field in ["min_position", "as_of_position"] {
            let past = from_projection_error(ProjectionError::OutOfRange {
                field,
                requested: 9,
                head: 3,
            });
            assert_eq!(past.code(), Code::OutOfRange);
            assert_eq!(
                past.message(),
                format!("{field} 9 is past the head of the log (3)")
            );
        }
    }

    #[test]
    fn codes() {
        let cases = [
            (
                from_log_error(LogError::OutOfRange {
                    requested: 9,
                    head: 3,
                }),
                Code::OutOfRange,
            ),
            (
                from_log_error(LogError::DataLoss {
                    position: 4,
                    reason: "crc".into(),
                }),
                Code::DataLoss,
            ),
            (from_log_error(LogError::Closed), Code::Unavailable),
            (from_log_error(LogError::WriterPanicked), Code::Internal),
            (
                from_log_error(LogError::TooLarge {
                    what: "x",
                    actual: 2,
                    limit: 1,
                }),
                Code::ResourceExhausted,
            ),
            (
                from_rejection(Rejection::rule("a.b", "no")),
                Code::FailedPrecondition,
            ),
            (
                from_rejection(Rejection::NotFound {
                    stream_id: "party-X".into(),
                }),
                Code::NotFound,
            ),
            (
                from_rejection(Rejection::AlreadyExists {
                    stream_id: "party-X".into(),
                }),
                Code::AlreadyExists,
            ),
            (wrong_expected_version("s", "Exact(1)", 2), Code::Aborted),
            (too_many_subscriptions(1), Code::ResourceExhausted),
            (internal("test", "boom"), Code::Internal),
        ];
        for (status, code) in cases {
            assert_eq!(status.code(), code, "{status:?}");
        }
    }

    #[test]
    fn field_violations_travel_in_the_details() {
        let status = from_rejection(Rejection::Invalid(vec![
            FieldViolation {
                field: "a".into(),
                description: "bad".into(),
            },
            FieldViolation {
                field: "b.c".into(),
                description: "worse".into(),
            },
        ]));
        assert_eq!(status.code(), Code::InvalidArgument);
        let bad_request = status.get_details_bad_request().expect("bad request details");
        let fields: Vec<_> = bad_request
            .field_violations
            .iter()
            .map(|violation| violation.field.as_str())
            .collect();
        assert_eq!(fields, ["a", "b.c"]);
    }

    fn violations(count: usize, description: &str) -> Vec<FieldViolation> {
        (0..count)
            .map(|index| FieldViolation {
                field: format!("filter.tags[{index}]"),
                description: description.to_owned(),
            })
            .collect()
    }

    #[test]
    fn an_echoed_value_is_whole_at_the_maximum_and_cut_one_past_it() {
        let at_max = "é".repeat(MAX_ECHOED_CHARS);
        assert_eq!(echo(&at_max), at_max);
        let one_past = "é".repeat(MAX_ECHOED_CHARS + 1);
        assert_eq!(
            echo(&one_past),
            format!("{at_max}… ({} bytes)", one_past.len()),
            "the first MAX_ECHOED_CHARS characters, then the full length in bytes"
        );
        let status = not_found(&"x".repeat(1_000_000));
        assert!(
            status.message().ends_with("… (1000000 bytes) does not exist"),
            "{}",
            status.message()
        );
        let resource = status.get_details_resource_info().expect("ResourceInfo");
        assert_eq!(
            resource.resource_name,
            format!("{}… (1000000 bytes)", "x".repeat(MAX_ECHOED_CHARS))
        );
    }

    #[test]
    fn violation_texts_are_whole_at_the_maximum_and_cut_one_past_it() {
        let at_max = "d".repeat(MAX_VIOLATION_TEXT_CHARS);
        let one_past = "d".repeat(MAX_VIOLATION_TEXT_CHARS + 1);
        let status = invalid_argument(&[
            FieldViolation {
                field: "a".into(),
                description: at_max.clone(),
            },
            FieldViolation {
                field: one_past.clone(),
                description: one_past.clone(),
            },
        ]);
        let entries = status
            .get_details_bad_request()
            .expect("BadRequest")
            .field_violations;
        assert_eq!(entries[0].description, at_max);
        let cut_text = format!("{at_max}… ({} bytes)", one_past.len());
        assert_eq!(entries[1].field, cut_text);
        assert_eq!(entries[1].description, cut_text);
    }

    #[test]
    fn field_violations_are_listed_up_to_the_maximum_then_counted() {
        let status = invalid_argument(&violations(MAX_FIELD_VIOLATIONS, "must not be empty"));
        let entries = status
            .get_details_bad_request()
            .expect("BadRequest")
            .field_violations;
        assert_eq!(entries.len(), MAX_FIELD_VIOLATIONS, "all of them, no count");
        assert_eq!(
            entries[MAX_FIELD_VIOLATIONS - 1].field,
            format!("filter.tags[{}]", MAX_FIELD_VIOLATIONS - 1)
        );

        let status = invalid_argument(&violations(MAX_FIELD_VIOLATIONS + 1, "must not be empty"));
        let entries = status
            .get_details_bad_request()
            .expect("BadRequest")
            .field_violations;
        assert_eq!(entries.len(), MAX_FIELD_VIOLATIONS + 1);
        assert_eq!(
            entries[MAX_FIELD_VIOLATIONS - 1].field,
            format!("filter.tags[{}]", MAX_FIELD_VIOLATIONS - 1)
        );
        assert_eq!(entries[MAX_FIELD_VIOLATIONS].field, "");
        assert_eq!(entries[MAX_FIELD_VIOLATIONS].description, "and 1 more");
        assert_eq!(
            status.message(),
            format!(
                "invalid request: filter.tags[0]: must not be empty; filter.tags[1]: must not be empty; \
                 filter.tags[2]: must not be empty (and {} more)",
                MAX_FIELD_VIOLATIONS + 1 - MAX_VIOLATIONS_IN_MESSAGE
            )
        );
    }

    #[test]
    fn the_message_names_up_to_three_violations_then_counts_the_rest() {
        let message = |count| {
            invalid_argument(&violations(count, "is required"))
                .message()
                .to_owned()
        };
        assert_eq!(message(1), "invalid request: filter.tags[0]: is required");
        assert_eq!(
            message(2),
            "invalid request: filter.tags[0]: is required; filter.tags[1]: is required",
            "both named, no count"
        );
        assert_eq!(
            message(3),
            "invalid request: filter.tags[0]: is required; filter.tags[1]: is required; \
             filter.tags[2]: is required"
        );
        assert_eq!(
            message(4),
            "invalid request: filter.tags[0]: is required; filter.tags[1]: is required; \
             filter.tags[2]: is required (and 1 more)"
        );
        // Three descriptions at the violation text limit, and 100,000 violations: still bounded.
        let long = "𝄞".repeat(MAX_VIOLATION_TEXT_CHARS + 10);
        let status = invalid_argument(&violations(100_000, &long));
        assert!(
            status_bytes(&status) <= MAX_STATUS_BYTES,
            "{}",
            status_bytes(&status)
        );
        assert!(status.message().starts_with("invalid request: filter.tags[0]: 𝄞"));
        assert!(
            status.message().ends_with("(and 99997 more)"),
            "violations are dropped from the details before the message is cut"
        );
        let listed = status
            .get_details_bad_request()
            .expect("BadRequest")
            .field_violations;
        assert!(listed.len() > 1, "{}", listed.len());
    }

    #[test]
    fn violations_that_would_not_fit_in_the_status_limit_are_counted_instead() {
        // 20 descriptions of 256 four-byte characters are ~20 KiB: only some fit.
        let long = "𝄞".repeat(MAX_VIOLATION_TEXT_CHARS);
        let total = 100_000;
        let status = invalid_argument(&violations(total, &long));
        assert!(
            status_bytes(&status) <= MAX_STATUS_BYTES,
            "{}",
            status_bytes(&status)
        );
        let entries = status
            .get_details_bad_request()
            .expect("BadRequest")
            .field_violations;
        let shown = entries.len() - 1;
        assert!(shown > 0 && shown < MAX_FIELD_VIOLATIONS, "{shown}");
        assert_eq!(entries[shown].description, format!("and {} more", total - shown));
    }

    #[test]
    fn a_status_is_kept_whole_at_the_byte_limit_and_shortened_one_past_it() {
        let message = "m".repeat(1_000);
        let details = |value_len: usize| {
            ErrorDetails::with_error_info(
                "R",
                ERROR_DOMAIN,
                HashMap::from([("k".to_owned(), "v".repeat(value_len))]),
            )
        };
        let size = |value_len| {
            status_bytes(&Status::with_error_details(
                Code::NotFound,
                message.clone(),
                details(value_len),
            ))
        };
        let mut value_len = MAX_STATUS_BYTES - 2 * message.len();
        while size(value_len) > MAX_STATUS_BYTES {
            value_len -= 1;
        }
        assert_eq!(size(value_len), MAX_STATUS_BYTES, "a status of exactly the limit");
        let at_max = bounded(Code::NotFound, message.clone(), details(value_len));
        assert_eq!(at_max.message(), message);
        assert_eq!(status_bytes(&at_max), MAX_STATUS_BYTES);

        let one_past = bounded(Code::NotFound, message.clone(), details(value_len + 1));
        assert!(status_bytes(&one_past) <= MAX_STATUS_BYTES);
        assert!(
            one_past.message().ends_with("… (1000 bytes)"),
            "{}",
            one_past.message()
        );
        assert_eq!(
            one_past.get_details_error_info().expect("details kept").metadata["k"].len(),
            value_len + 1
        );
    }

    #[test]
    fn internal_has_no_details() {
        let status = internal("test", "secret cause");
        assert!(!status.message().contains("secret"));
        assert!(status.details().is_empty());
    }
}
