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

    /// The UTC calendar date (year, month 1-12, day 1-31), proleptic Gregorian.
    pub fn civil_date(self) -> (i64, u32, u32) {
        let days = self.0.div_euclid(86_400_000_000);
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        (year, month, day)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(Timestamp::EPOCH.civil_date(), (1970, 1, 1));
        assert_eq!(
            Timestamp::from_unix_micros(1_736_899_200_000_000).civil_date(),
            (2025, 1, 15)
        );
        assert_eq!(
            Timestamp::from_unix_micros(951_782_400_000_000).civil_date(),
            (2000, 2, 29)
        );
        assert_eq!(Timestamp::from_unix_micros(-1).civil_date(), (1969, 12, 31));
        // 1648-10-24, the Peace of Westphalia: -10,135,670,400 s.
        assert_eq!(
            Timestamp::from_unix_micros(-10_135_670_400_000_000).civil_date(),
            (1648, 10, 24)
        );
    }
}
