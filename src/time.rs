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
        let of_day = self.0.rem_euclid(MICROS_PER_DAY);
        let (seconds, micros) = (of_day / 1_000_000, of_day % 1_000_000);
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60
        )
    }

    /// Parses ISO 8601 / RFC 3339 with the precision it is written to: `2025` (year), `2025-01`
    /// (month), `2025-01-15` (day), `2025-01-15T08` (hour), `2025-01-15T08:30` (minute),
    /// `2025-01-15T08:30:00` (second), with fractional seconds (exact). A time may end in `Z` or
    /// a UTC offset `+01:00` / `-05:30` (the instant is converted to UTC); without either it is
    /// UTC. Impossible dates (`2025-02-30`) and times are refused with the reason.
    pub fn parse_iso8601(text: &str) -> Result<OccurredAt, String> {
        let (date, time) = match text.split_once(['T', 't']) {
            Some((date, time)) => (date, Some(time)),
            None => (text, None),
        };
        let (year, month, day) = parse_date(date)?;
        let days = days_from_civil(year, month.unwrap_or(1), day.unwrap_or(1));
        let micros = days
            .checked_mul(MICROS_PER_DAY)
            .ok_or_else(|| format!("year {year} is out of range"))?;
        let precision = match (month, day) {
            (None, _) => Precision::Year,
            (Some(_), None) => Precision::Month,
            (Some(_), Some(_)) => Precision::Day,
        };
        let Some(time) = time else {
            return Ok(OccurredAt::new(Timestamp::from_unix_micros(micros), precision));
        };
        if day.is_none() {
            return Err("a time of day needs a full date (YYYY-MM-DDThh:mm)".into());
        }
        let (of_day, precision) = parse_time(time)?;
        Ok(OccurredAt::new(
            Timestamp::from_unix_micros(micros + of_day),
            precision,
        ))
    }

    /// The first instant (UTC) of the year, month or day containing this instant; itself for
    /// finer precisions.
    pub fn start_of(self, precision: Precision) -> Timestamp {
        let (year, month, _) = self.civil_date();
        let days = match precision {
            Precision::Year => days_from_civil(year, 1, 1),
            Precision::Month => days_from_civil(year, month, 1),
            Precision::Day => self.0.div_euclid(MICROS_PER_DAY),
            _ => return self,
        };
        Timestamp(days.saturating_mul(MICROS_PER_DAY))
    }

    /// The UTC calendar date (year, month 1-12, day 1-31), proleptic Gregorian.
    pub fn civil_date(self) -> (i64, u32, u32) {
        let days = self.0.div_euclid(MICROS_PER_DAY);
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
    /// An instant with the precision it is known to. A year, month or day is normalised to its
    /// first instant (UTC), so a coarse value never pretends to an exact instant inside its
    /// period. Finer precisions are kept as given (an hour in a `+05:30` zone is not a whole
    /// UTC hour).
    pub fn new(at: Timestamp, precision: Precision) -> OccurredAt {
        OccurredAt {
            at: at.start_of(precision),
            precision,
        }
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

/// Microseconds in a day.
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Days in a month of the proleptic Gregorian calendar.
fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `YYYY`, `YYYY-MM` or `YYYY-MM-DD`, each part checked against the calendar.
fn parse_date(date: &str) -> Result<(i64, Option<u32>, Option<u32>), String> {
    let number = |part: &str, what: &str, digits: usize| -> Result<i64, String> {
        if part.len() != digits || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{what} {part:?} is not {digits} digits"));
        }
        part.parse::<i64>()
            .map_err(|_| format!("{what} {part:?} is not a number"))
    };
    let mut parts = date.split('-');
    let year = number(parts.next().unwrap_or_default(), "year", 4)?;
    let month = parts.next().map(|part| number(part, "month", 2)).transpose()?;
    let day = parts.next().map(|part| number(part, "day", 2)).transpose()?;
    if parts.next().is_some() {
        return Err("a date is YYYY, YYYY-MM or YYYY-MM-DD".into());
    }
    let month = match month {
        Some(month @ 1..=12) => Some(month as u32),
        Some(month) => return Err(format!("month {month} is not 1 to 12")),
        None => None,
    };
    let day = match (month, day) {
        (Some(month), Some(day)) => {
            let last = days_in_month(year, month);
            if !(1..=i64::from(last)).contains(&day) {
                return Err(format!("{year:04}-{month:02} has days 1 to {last}, not {day}"));
            }
            Some(day as u32)
        }
        (None, Some(_)) => unreachable!("a third part implies a second"),
        (_, None) => None,
    };
    Ok((year, month, day))
}

/// `hh`, `hh:mm`, `hh:mm:ss` or `hh:mm:ss.ffffff`, then `Z`, a `±hh:mm` offset or nothing:
/// microseconds since midnight UTC (may be negative or past a day after the offset) and the
/// precision.
fn parse_time(time: &str) -> Result<(i64, Precision), String> {
    let (clock, offset_micros) = split_offset(time)?;
    let mut fields = clock.split(':');
    let field = |part: Option<&str>, what: &str, max: i64| -> Result<Option<i64>, String> {
        let Some(part) = part else { return Ok(None) };
        if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{what} {part:?} is not two digits"));
        }
        let value: i64 = part
            .parse()
            .map_err(|_| format!("{what} {part:?} is not a number"))?;
        if value > max {
            return Err(format!("{what} {value} is over {max}"));
        }
        Ok(Some(value))
    };
    let hour = field(fields.next(), "hour", 23)?.unwrap_or_default();
    let minute = field(fields.next(), "minute", 59)?;
    let second_text = fields.next();
    if fields.next().is_some() {
        return Err("a time is hh, hh:mm or hh:mm:ss[.ffffff]".into());
    }
    let (whole, fraction) = match second_text.map(|text| text.split_once('.')) {
        Some(Some((whole, fraction))) => (Some(whole), Some(fraction)),
        Some(None) => (second_text, None),
        None => (None, None),
    };
    if whole.is_some() && minute.is_none() {
        return Err("seconds need minutes".into());
    }
    let second = field(whole, "second", 59)?;
    let mut micros =
        hour * 3_600_000_000 + minute.unwrap_or(0) * 60_000_000 + second.unwrap_or(0) * 1_000_000;
    let precision = match (minute, second, fraction) {
        (None, _, _) => Precision::Hour,
        (Some(_), None, _) => Precision::Minute,
        (Some(_), Some(_), None) => Precision::Second,
        (Some(_), Some(_), Some(fraction)) => {
            if fraction.is_empty() || fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("fraction of a second {fraction:?} is not 1 to 9 digits"));
            }
            let padded: String = fraction.chars().chain(std::iter::repeat('0')).take(6).collect();
            micros += padded.parse::<i64>().map_err(|error| error.to_string())?;
            Precision::Exact
        }
    };
    Ok((micros - offset_micros, precision))
}

/// Splits a trailing `Z` or `±hh:mm` from a time: the clock text and the offset east of UTC in
/// microseconds.
fn split_offset(time: &str) -> Result<(&str, i64), String> {
    if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        return Ok((clock, 0));
    }
    let Some(sign_at) = time.rfind(['+', '-']) else {
        return Ok((time, 0));
    };
    let (clock, offset) = time.split_at(sign_at);
    let sign = if offset.starts_with('-') { -1 } else { 1 };
    let digits = &offset[1..];
    let valid = digits.len() == 5
        && digits.as_bytes()[2] == b':'
        && digits[..2]
            .bytes()
            .chain(digits[3..].bytes())
            .all(|b| b.is_ascii_digit());
    if !valid {
        return Err(format!("UTC offset {offset:?} is not +hh:mm or -hh:mm"));
    }
    let hours: i64 = digits[..2].parse().unwrap_or(99);
    let minutes: i64 = digits[3..].parse().unwrap_or(99);
    if hours > 23 || minutes > 59 {
        return Err(format!("UTC offset {offset:?} is out of range"));
    }
    Ok((clock, sign * (hours * 3_600_000_000 + minutes * 60_000_000)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_keeps_the_precision_it_is_written_to() {
        let parse = |text| {
            Timestamp::parse_iso8601(text)
                .ok()
                .map(|o| (o.at().to_rfc3339(), o.precision()))
        };
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
            "2025-01-15T08:30+1",
            "2025-01-15T08:30+24:00",
            "2025-1-15T8",
        ] {
            assert!(Timestamp::parse_iso8601(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn impossible_calendar_dates_are_refused_with_the_reason() {
        assert_eq!(
            Timestamp::parse_iso8601("2025-02-30"),
            Err("2025-02 has days 1 to 28, not 30".to_owned())
        );
        assert!(Timestamp::parse_iso8601("2025-02-29").is_err());
        assert!(Timestamp::parse_iso8601("2024-02-29").is_ok());
        assert!(Timestamp::parse_iso8601("2000-02-29").is_ok());
        assert!(Timestamp::parse_iso8601("1900-02-29").is_err());
        assert!(Timestamp::parse_iso8601("2025-04-31").is_err());
        assert!(Timestamp::parse_iso8601("2025-12-31T23:59:59").is_ok());
        assert!(Timestamp::parse_iso8601("2025-12-31T23:59:60").is_err());
    }

    #[test]
    fn utc_offsets_are_converted_to_utc() {
        let utc = |text| Timestamp::parse_iso8601(text).map(|o| (o.at().to_rfc3339(), o.precision()));
        assert_eq!(
            utc("2025-01-15T10:00:00+01:00"),
            Ok(("2025-01-15T09:00:00.000000Z".into(), Precision::Second))
        );
        assert_eq!(
            utc("2025-01-15T00:30-05:30"),
            Ok(("2025-01-15T06:00:00.000000Z".into(), Precision::Minute))
        );
        assert_eq!(
            utc("2025-01-15T23:00+00:00"),
            Ok(("2025-01-15T23:00:00.000000Z".into(), Precision::Minute))
        );
        assert_eq!(
            utc("2025-01-01T00:00-01:00"),
            Ok(("2025-01-01T01:00:00.000000Z".into(), Precision::Minute))
        );
    }

    #[test]
    fn coarse_precisions_are_normalised_to_their_first_instant() {
        let mid_march = Timestamp::parse_iso8601("2025-03-17T15:45:10.5").unwrap().at();
        let at = |precision| OccurredAt::new(mid_march, precision).at().to_rfc3339();
        assert_eq!(at(Precision::Year), "2025-01-01T00:00:00.000000Z");
        assert_eq!(at(Precision::Month), "2025-03-01T00:00:00.000000Z");
        assert_eq!(at(Precision::Day), "2025-03-17T00:00:00.000000Z");
        assert_eq!(at(Precision::Hour), "2025-03-17T15:45:10.500000Z");
        assert_eq!(at(Precision::Exact), "2025-03-17T15:45:10.500000Z");
        let before_1970 = Timestamp::parse_iso8601("1648-10-24T12:00").unwrap().at();
        assert_eq!(
            OccurredAt::new(before_1970, Precision::Month).at().to_rfc3339(),
            "1648-10-01T00:00:00.000000Z"
        );
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
