//! The diplomatic domain: pure values and rules. No IO, no async, no sled, no prost.
//!
//! Every aggregate is a *decider*: `decide(&State, &Command) -> Result<Vec<Event>, Rejection>`
//! says which events a command produces, and `evolve(State, &Event) -> State` folds an event into
//! the state. Both are pure and deterministic, so replaying a stream always rebuilds the same state.
//!
//! Files:
//! - Instants and their precision live in [`crate::time`], below every layer.
//! - [`common`]: entity ids, provenance (source citations), limits and the field validator.
//! - [`error`]: [`error::Rejection`]: validation errors versus state rule rejections.
//! - [`party`]: states, governments and international organisations, keyed by code (`party-LBY`).
//! - [`official`]: people and the offices they hold over time.
//! - [`source`]: documents that report diplomatic activity; every other command cites them.
//! - [`meeting`]: meetings, their lifecycle, participants and statements.
//! - [`commitment`]: commitments (G7/G20 Research Group practice) and compliance assessments.
//! - [`event`]: the top level the ledger uses: [`event::DomainCommand`], [`event::DomainEvent`],
//!   [`event::AggregateState`], event type strings, schema versions, tags, payload encoding and
//!   upcasting of old schema versions.
//! - [`cameo`]: the versioned table mapping events to CAMEO codes (Goldstein scores) and PLOVER.
#![deny(missing_docs)]

/// Declares an aggregate's event enum: one variant per payload struct of the same name. The
/// variant name is the stable event type string; the literal is its current schema version.
macro_rules! event_enum {
    ($(#[$meta:meta])* pub enum $enum:ident { $($(#[$variant_meta:meta])* $variant:ident = $version:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        pub enum $enum {
            $($(#[$variant_meta])* $variant($variant),)*
        }

        impl $enum {
            /// Every event type of this aggregate with its current schema version.
            pub const TYPES: &'static [(&'static str, u16)] = &[$((stringify!($variant), $version),)*];

            /// The stable event type string (part of the public contract).
            pub fn event_type(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => stringify!($variant),)*
                }
            }

            /// The current schema version of this event type.
            pub fn schema_version(&self) -> u16 {
                match self {
                    $(Self::$variant(_) => $version,)*
                }
            }

            /// The payload (the variant's struct) in the frozen encoding.
            pub fn encode_payload(&self) -> Vec<u8> {
                match self {
                    $(Self::$variant(payload) => crate::encoding::encode(payload),)*
                }
            }

            /// Decodes a current-version payload of `event_type`; `None` if the type is not
            /// one of this aggregate's.
            pub(crate) fn decode_current(
                event_type: &str,
                payload: &[u8],
            ) -> Option<Result<Self, crate::encoding::DecodeError>> {
                match event_type {
                    $(stringify!($variant) => Some(crate::encoding::decode(payload).map(Self::$variant)),)*
                    _ => None,
                }
            }
        }

        $(impl From<$variant> for $enum {
            fn from(payload: $variant) -> Self {
                Self::$variant(payload)
            }
        })*
    };
}

pub mod cameo;
pub mod commitment;
pub mod common;
pub mod error;
pub mod event;
pub mod meeting;
pub mod official;
pub mod party;
pub mod source;

pub use error::{FieldViolation, Rejection};
pub use event::{
    decide_command, decode_event, evolve_state, AggregateState, DecodeEventError, DomainCommand, DomainEvent,
    EntityRef,
};
