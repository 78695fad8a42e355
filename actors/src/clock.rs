//! Wall-clock helpers: millisecond timestamps and their RFC 3339 rendering on the wire.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Renders a millisecond timestamp as RFC 3339 UTC with milliseconds, e.g.
/// `2026-11-21T10:00:00.123Z` (XEP-0082 profile, as XMPP `<delay stamp>` uses).
pub fn format_stamp(ms: i64) -> String {
    Stamp(ms).to_string()
}

/// An instant in epoch milliseconds that displays as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC), or as
/// the bare number when it is outside what a calendar date can show. Writing it into a
/// buffer allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp(pub i64);

impl std::fmt::Display for Stamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Ok(t) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000) else {
            return write!(f, "{}", self.0);
        };
        if !(0..=9999).contains(&t.year()) {
            return write!(f, "{}", self.0);
        }
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond()
        )
    }
}

impl serde::Serialize for Stamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Parses an RFC 3339 instant, a plain `YYYY-MM-DD` date (midnight UTC) or epoch
/// milliseconds into milliseconds since the epoch.
pub fn parse_instant(raw: &str) -> Option<i64> {
    let raw = raw.trim();
    if let Ok(ms) = raw.parse::<i64>() {
        return Some(ms);
    }
    if let Ok(t) = OffsetDateTime::parse(raw, &Rfc3339) {
        return Some((t.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(raw, &format).ok().map(|d| d.midnight().assume_utc().unix_timestamp() * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip() {
        let ms = 1_763_712_000_123;
        let text = format_stamp(ms);
        assert!(text.ends_with(".123Z"), "{text}");
        assert_eq!(format_stamp(1_763_712_000_100), "2025-11-21T08:00:00.100Z");
        assert_eq!(parse_instant(&text), Some(ms));
        assert_eq!(parse_instant("2025-11-21"), Some(1_763_683_200_000));
        assert_eq!(parse_instant("42"), Some(42));
        assert_eq!(parse_instant("yesterday"), None);
    }
}
