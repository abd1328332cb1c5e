//! Event time: instants in milliseconds since the Unix epoch (UTC).
//!
//! Every timestamp on the wire is RFC 3339 with *any* offset (`Z`, `+07:00`, `-05:00`). We turn
//! it into an instant at decode time, so order and gaps always come from the instant and never
//! from the text. Nothing in the core reads the wall clock: "now" is the stream's event time.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// One second, one minute, one hour and one day in milliseconds.
pub const SECOND: i64 = 1_000;
pub const MINUTE: i64 = 60 * SECOND;
pub const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;

/// An instant in event time: milliseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Parses an RFC 3339 timestamp with any UTC offset.
    pub fn parse_rfc3339(text: &str) -> Result<Self, String> {
        let at = OffsetDateTime::parse(text, &Rfc3339)
            .map_err(|e| format!("not an RFC 3339 timestamp with offset ({e})"))?;
        Ok(Timestamp((at.unix_timestamp_nanos() / 1_000_000) as i64))
    }

    /// Parses a calendar date (`2026-11-24`) as the instant its day starts in UTC, or a full
    /// RFC 3339 timestamp. Travel notices carry dates.
    pub fn parse_date_or_rfc3339(text: &str) -> Result<Self, String> {
        if text.len() == 10 {
            let date = time::Date::parse(text, DATE).map_err(|e| format!("not a date YYYY-MM-DD ({e})"))?;
            let at = date.midnight().assume_utc();
            return Ok(Timestamp(at.unix_timestamp() * SECOND));
        }
        Self::parse_rfc3339(text)
    }

    /// Milliseconds from `earlier` to `self` (negative if `earlier` is later).
    pub fn millis_since(self, earlier: Timestamp) -> i64 {
        self.0 - earlier.0
    }

    /// This instant moved by `millis`.
    pub fn plus(self, millis: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(millis))
    }

    /// Days since the epoch (UTC), for day- and week-bucketed counters.
    pub fn day_number(self) -> i64 {
        self.0.div_euclid(DAY)
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with millisecond precision, e.g. `2026-11-24T10:15:00.000Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = i128::from(self.0) * 1_000_000;
        match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(at) => {
                let (h, m, s) = at.time().as_hms();
                write!(
                    f,
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                    at.year(),
                    u8::from(at.month()),
                    at.day(),
                    h,
                    m,
                    s,
                    at.millisecond()
                )
            }
            Err(_) => write!(f, "@{}ms", self.0),
        }
    }
}

/// RFC 3339 text in human-readable formats (JSON); milliseconds in binary ones (stored state).
impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            serializer.serialize_i64(self.0)
        }
    }
}

/// The reverse of [`Serialize`]: RFC 3339 text with an offset, or milliseconds.
impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let text = String::deserialize(d)?;
            Timestamp::parse_rfc3339(&text).map_err(serde::de::Error::custom)
        } else {
            i64::deserialize(d).map(Timestamp)
        }
    }
}

/// A span of event time written as `<number><unit>` in rule files: `90s`, `10m`, `6h`, `7d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span(pub i64);

impl Span {
    /// Parses `<number><unit>` with unit `s`, `m`, `h` or `d`.
    pub fn parse(text: &str) -> Result<Span, String> {
        let text = text.trim();
        let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let n: i64 =
            number.parse().map_err(|_| format!("`{text}` is not a duration such as 10m, 6h or 7d"))?;
        let unit_ms = match unit {
            "s" => SECOND,
            "m" => MINUTE,
            "h" => HOUR,
            "d" => DAY,
            _ => return Err(format!("`{text}` has unknown unit `{unit}` (use s, m, h or d)")),
        };
        n.checked_mul(unit_ms).map(Span).ok_or_else(|| format!("`{text}` is too long"))
    }
}

impl<'de> serde::Deserialize<'de> for Span {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Span::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// `YYYY-MM-DD`.
const DATE: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_give_the_same_instant() {
        let utc = Timestamp::parse_rfc3339("2026-11-24T03:00:00Z").unwrap();
        let phnom_penh = Timestamp::parse_rfc3339("2026-11-24T10:00:00+07:00").unwrap();
        let new_york = Timestamp::parse_rfc3339("2026-11-23T22:00:00-05:00").unwrap();
        assert_eq!(utc, phnom_penh);
        assert_eq!(utc, new_york);
    }

    #[test]
    fn order_comes_from_the_instant_not_the_text() {
        // Textually later, but an hour earlier as an instant.
        let a = Timestamp::parse_rfc3339("2026-11-24T10:30:00+02:00").unwrap();
        let b = Timestamp::parse_rfc3339("2026-11-24T09:30:00Z").unwrap();
        assert!(a < b);
        assert_eq!(b.millis_since(a), HOUR);
    }

    #[test]
    fn rejects_timestamps_without_offset() {
        assert!(Timestamp::parse_rfc3339("2026-11-24T10:30:00").is_err());
        assert!(Timestamp::parse_rfc3339("yesterday").is_err());
    }

    #[test]
    fn displays_as_utc() {
        let t = Timestamp::parse_rfc3339("2026-11-24T10:00:00.250+07:00").unwrap();
        assert_eq!(t.to_string(), "2026-11-24T03:00:00.250Z");
    }

    #[test]
    fn spans() {
        assert_eq!(Span::parse("10m"), Ok(Span(10 * MINUTE)));
        assert_eq!(Span::parse("7d"), Ok(Span(7 * DAY)));
        assert!(Span::parse("7 days").is_err());
        assert!(Span::parse("h").is_err());
    }

    #[test]
    fn parses_dates() {
        let d = Timestamp::parse_date_or_rfc3339("2026-11-24").unwrap();
        assert_eq!(d.to_string(), "2026-11-24T00:00:00.000Z");
        assert!(Timestamp::parse_date_or_rfc3339("2026-13-24").is_err());
    }
}
