//! Instants and their precision, shared by every layer (the log stores them in envelopes, the
//! domain validates them in commands). Pure values: no clock is read here.

use serde::{Deserialize, Serialize};

/// An instant as whole microseconds since 1970-01-01T00:00:00Z (negative before). i64
/// microseconds cover about ±292,000 years, so historical treaties fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// An instant from microseconds since the Unix epoch.
    pub const fn from_unix_micros(micros: i64) -> Timestamp {
        Timestamp(micros)
    }

    /// Microseconds since the Unix epoch.
    pub const fn unix_micros(self) -> i64 {
        self.0
    }
}

/// How precisely a report states when something happened ("on Wednesday" is a day).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Precision {
    /// Only the year is known.
    Year,
    /// The year and month are known.
    Month,
    /// The calendar day is known.
    Day,
    /// To the hour.
    Hour,
    /// To the minute.
    Minute,
    /// To the second.
    Second,
    /// The instant is exact (machine-recorded).
    Exact,
}

/// Valid time: when something happened in the world, with the precision the source gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OccurredAt {
    at: Timestamp,
    precision: Precision,
}

impl OccurredAt {
    /// An instant with the precision it is known to.
    pub const fn new(at: Timestamp, precision: Precision) -> OccurredAt {
        OccurredAt { at, precision }
    }

    /// The instant (the start of the period for coarse precisions).
    pub const fn at(&self) -> Timestamp {
        self.at
    }

    /// How precisely the instant is known.
    pub const fn precision(&self) -> Precision {
        self.precision
    }
}
