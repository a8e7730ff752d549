//! Instants and their precision, at the bottom of the crate: the log stores them in envelopes,
//! the domain validates them in commands, and neither imports the other for them. Pure values:
//! no clock is read here.

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

    /// RFC 3339 in UTC with microseconds, e.g. `2025-01-15T08:30:00.000000Z`.
    pub fn to_rfc3339(self) -> String {
        let (year, month, day) = self.civil_date();
        let of_day = self.0.rem_euclid(86_400_000_000);
        let (seconds, micros) = (of_day / 1_000_000, of_day % 1_000_000);
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60
        )
    }

    /// Parses ISO 8601 in UTC with the precision it is written to: `2025` (year), `2025-01`
    /// (month), `2025-01-15` (day), `2025-01-15T08` (hour), `2025-01-15T08:30` (minute),
    /// `2025-01-15T08:30:00` (second), with fractional seconds (exact); a trailing `Z` is allowed.
    pub fn parse_iso8601(text: &str) -> Option<OccurredAt> {
        let text = text.strip_suffix('Z').unwrap_or(text);
        let (date, time) = match text.split_once('T') {
            Some((date, time)) => (date, Some(time)),
            None => (text, None),
        };
        let mut parts = date.split('-');
        let year: i64 = parts.next()?.parse().ok()?;
        let month: Option<u32> = parts.next().map(str::parse).transpose().ok()?;
        let day: Option<u32> = parts.next().map(str::parse).transpose().ok()?;
        if parts.next().is_some()
            || !(1..=12).contains(&month.unwrap_or(1))
            || !(1..=31).contains(&day.unwrap_or(1))
        {
            return None;
        }
        let days = days_from_civil(year, month.unwrap_or(1), day.unwrap_or(1));
        let mut micros = days.checked_mul(86_400_000_000)?;
        let mut precision = match (month, day) {
            (None, _) => Precision::Year,
            (Some(_), None) => Precision::Month,
            (Some(_), Some(_)) => Precision::Day,
        };
        if let Some(time) = time {
            day?;
            let mut fields = time.split(':');
            let hour: i64 = fields.next()?.parse().ok()?;
            let minute: Option<i64> = fields.next().map(str::parse).transpose().ok()?;
            let second_text = fields.next();
            if fields.next().is_some() || hour > 23 || minute.unwrap_or(0) > 59 {
                return None;
            }
            micros += hour * 3_600_000_000 + minute.unwrap_or(0) * 60_000_000;
            precision = if minute.is_some() {
                Precision::Minute
            } else {
                Precision::Hour
            };
            if let Some(second_text) = second_text {
                let (whole, fraction) = match second_text.split_once('.') {
                    Some((whole, fraction)) => (whole, Some(fraction)),
                    None => (second_text, None),
                };
                let seconds: i64 = whole.parse().ok()?;
                if seconds > 60 {
                    return None;
                }
                micros += seconds * 1_000_000;
                precision = Precision::Second;
                if let Some(fraction) = fraction {
                    if fraction.is_empty() || !fraction.bytes().all(|b| b.is_ascii_digit()) {
                        return None;
                    }
                    let padded: String = fraction.chars().chain(std::iter::repeat('0')).take(6).collect();
                    micros += padded.parse::<i64>().ok()?;
                    precision = Precision::Exact;
                }
            }
        }
        Some(OccurredAt::new(Timestamp::from_unix_micros(micros), precision))
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

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let month = i64::from(month);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_keeps_the_precision_it_is_written_to() {
        let parse = |text| Timestamp::parse_iso8601(text).map(|o| (o.at().to_rfc3339(), o.precision()));
        assert_eq!(
            parse("2025-01-15"),
            Some(("2025-01-15T00:00:00.000000Z".into(), Precision::Day))
        );
        assert_eq!(
            parse("2025"),
            Some(("2025-01-01T00:00:00.000000Z".into(), Precision::Year))
        );
        assert_eq!(
            parse("2025-02"),
            Some(("2025-02-01T00:00:00.000000Z".into(), Precision::Month))
        );
        assert_eq!(
            parse("2025-01-15T08"),
            Some(("2025-01-15T08:00:00.000000Z".into(), Precision::Hour))
        );
        assert_eq!(
            parse("2025-01-15T08:30Z"),
            Some(("2025-01-15T08:30:00.000000Z".into(), Precision::Minute))
        );
        assert_eq!(
            parse("2025-01-15T08:30:05"),
            Some(("2025-01-15T08:30:05.000000Z".into(), Precision::Second))
        );
        assert_eq!(
            parse("2025-01-15T08:30:05.25Z"),
            Some(("2025-01-15T08:30:05.250000Z".into(), Precision::Exact))
        );
        assert_eq!(
            parse("1648-10-24"),
            Some(("1648-10-24T00:00:00.000000Z".into(), Precision::Day))
        );
        for bad in [
            "",
            "2025-13-01",
            "2025-01-32",
            "2025-01-15T25",
            "2025-01T08",
            "yesterday",
            "2025-01-15T08:30:05.",
        ] {
            assert_eq!(Timestamp::parse_iso8601(bad), None, "{bad:?}");
        }
    }

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
