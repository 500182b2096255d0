//! Points in time, in UTC with microsecond precision.
//!
//! The domain never reads the clock: callers pass `now` in, so tests inject time.

use time::{OffsetDateTime, UtcOffset, format_description::well_known::Rfc3339};

use crate::Invalid;

/// Microseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_unix_micros(micros: i64) -> Self {
        Self(micros)
    }

    pub const fn unix_micros(self) -> i64 {
        self.0
    }

    pub fn from_datetime(at: OffsetDateTime) -> Self {
        Self((at.unix_timestamp_nanos() / 1_000) as i64)
    }

    pub fn to_datetime(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(self.0 as i128 * 1_000).expect("a stored timestamp is within range")
    }

    /// Parses an RFC 3339 date-time such as `2026-11-21T10:00:00Z`.
    pub fn parse(field: &str, text: &str) -> Result<Self, Invalid> {
        OffsetDateTime::parse(text, &Rfc3339)
            .map(Self::from_datetime)
            .map_err(|_| Invalid::new(field, "expected an RFC 3339 date-time such as 2026-01-31T12:00:00Z"))
    }

    /// RFC 3339 in UTC, e.g. `2026-11-21T10:00:00.123456Z`.
    pub fn to_rfc3339(self) -> String {
        self.to_datetime()
            .to_offset(UtcOffset::UTC)
            .format(&Rfc3339)
            .expect("rfc 3339 formatting of a utc time cannot fail")
    }

    pub fn plus_micros(self, micros: i64) -> Self {
        Self(self.0.saturating_add(micros))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_through_micros() {
        let t = Timestamp::parse("at", "2026-11-21T10:00:00.123456Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-21T10:00:00.123456Z");
        let offset = Timestamp::parse("at", "2026-11-21T11:00:00+01:00").unwrap();
        assert_eq!(offset.to_rfc3339(), "2026-11-21T10:00:00Z");
    }

    #[test]
    fn a_date_without_time_is_refused_with_its_field() {
        let err = Timestamp::parse("expires_at", "2026-11-21").unwrap_err();
        assert_eq!(err.field, "expires_at");
    }
}
