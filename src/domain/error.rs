//! Why a command was refused: malformed input ([`Rejection::Invalid`], with one
//! [`FieldViolation`] per bad field) versus a well-formed command that the current state forbids
//! ([`Rejection::Rule`], [`Rejection::NotFound`], [`Rejection::AlreadyExists`]).

use std::fmt;

/// One malformed field of a command. `field` is a path such as `participants[1].role` or
/// `provenance.sources[0].quote`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// Path of the offending field inside the command.
    pub field: String,
    /// What is wrong with it, in plain words.
    pub description: String,
}

impl fmt::Display for FieldViolation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}: {}", self.field, self.description)
    }
}

/// Why `decide` produced no events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The command is malformed (maps to INVALID_ARGUMENT). Never empty.
    #[error("invalid command: {}", join_violations(.0))]
    Invalid(Vec<FieldViolation>),
    /// The command is well formed but the entity's state forbids it (maps to FAILED_PRECONDITION).
    #[error("{code}: {message}")]
    Rule {
        /// Stable machine-readable code, e.g. `meeting.already_held`.
        code: &'static str,
        /// Human explanation.
        message: String,
    },
    /// The command targets an entity that has not been created (maps to NOT_FOUND).
    #[error("{stream_id} does not exist")]
    NotFound {
        /// Stream of the missing entity, e.g. `meeting-<uuid>`.
        stream_id: String,
    },
    /// The command would create an entity that already exists (maps to ALREADY_EXISTS).
    #[error("{stream_id} already exists")]
    AlreadyExists {
        /// Stream of the existing entity.
        stream_id: String,
    },
}

impl Rejection {
    /// A state rule rejection.
    pub fn rule(code: &'static str, message: impl Into<String>) -> Rejection {
        Rejection::Rule {
            code,
            message: message.into(),
        }
    }

    /// A single-field validation rejection.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Rejection {
        Rejection::Invalid(vec![FieldViolation {
            field: field.into(),
            description: description.into(),
        }])
    }

    /// The field violations if this is a validation rejection, else an empty slice.
    pub fn violations(&self) -> &[FieldViolation] {
        match self {
            Rejection::Invalid(violations) => violations,
            _ => &[],
        }
    }
}

fn join_violations(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(FieldViolation::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
