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

    /// The time as a date-time; times outside the representable range are clamped.
    pub fn to_datetime(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(self.0 as i128 * 1_000).unwrap_or_else(|_| {
            let date = if self.0 < 0 { time::Date::MIN } else { time::Date::MAX };
            OffsetDateTime::new_utc(date, time::Time::MIDNIGHT)
        })
    }

    /// Parses an RFC 3339 date-time such as `2026-11-21T10:00:00Z`.
    pub fn parse(field: &str, text: &str) -> Result<Self, Invalid> {
        let at = OffsetDateTime::parse(text, &Rfc3339)
            .map_err(|_| Invalid::new(field, "expected an RFC 3339 date-time such as 2026-01-31T12:00:00Z"))?;
        // The parser accepts offsets that move a time outside years 0..=9999 in UTC.
        let in_range = at
            .checked_to_offset(UtcOffset::UTC)
            .is_some_and(|utc| (0..=9999).contains(&utc.year()));
        if !in_range {
            return Err(Invalid::new(
                field,
                "expected a time between the years 0 and 9999 (UTC)",
            ));
        }
        Ok(Self::from_datetime(at))
    }

    /// RFC 3339 in UTC, e.g. `2026-11-21T10:00:00.123456Z`.
    pub fn to_rfc3339(self) -> String {
        let at = self.to_datetime().to_offset(UtcOffset::UTC);
        at.format(&Rfc3339).unwrap_or_else(|_| at.to_string())
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
    fn times_beyond_year_9999_in_utc_are_refused() {
        assert!(Timestamp::parse("at", "9999-12-31T23:59:59-01:00").is_err());
        assert!(Timestamp::parse("at", "0000-01-01T00:00:00+01:00").is_err());
        assert!(Timestamp::parse("at", "9999-12-31T22:00:00-01:00").is_ok());
        assert!(!Timestamp::from_unix_micros(i64::MAX).to_rfc3339().is_empty());
    }

    #[test]
    fn a_date_without_time_is_refused_with_its_field() {
        let err = Timestamp::parse("expires_at", "2026-11-21").unwrap_err();
        assert_eq!(err.field, "expires_at");
    }
}
