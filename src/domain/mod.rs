//! The diplomatic domain: pure values and rules. No IO, no async, no sled, no prost.
pub mod time;
