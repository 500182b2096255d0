//! Cron schedules of builders: five-field expressions (minute hour day month
//! weekday, with ranges, steps, lists and names) in UTC, parsed with croner.

use std::str::FromStr;

use cohort_core::{Invalid, Timestamp};
use croner::Cron;

#[derive(Debug, Clone)]
pub struct Schedule(Cron);

impl Schedule {
    pub fn parse(field: &str, text: &str) -> Result<Self, Invalid> {
        if text.split_whitespace().count() != 5 {
            return Err(Invalid::new(
                field,
                "expected a cron expression of five fields: minute hour day month weekday",
            ));
        }
        let schedule = Cron::from_str(text)
            .map(Self)
            .map_err(|e| Invalid::new(field, format!("not a cron expression: {e}")))?;
        if schedule.next_after(Timestamp::from_unix_micros(0)).is_none() {
            return Err(Invalid::new(field, "the expression names no time that exists"));
        }
        Ok(schedule)
    }

    /// The first time strictly after `at` that the schedule names.
    pub fn next_after(&self, at: Timestamp) -> Option<Timestamp> {
        let start = chrono::DateTime::from_timestamp_micros(at.unix_micros())?;
        let next = self.0.find_next_occurrence(&start, false).ok()?;
        Some(Timestamp::from_unix_micros(next.timestamp_micros()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse("at", text).unwrap()
    }

    #[test]
    fn the_next_time_follows_the_expression_in_utc() {
        let nightly = Schedule::parse("s", "0 3 * * *").unwrap();
        assert_eq!(
            nightly.next_after(at("2026-11-21T02:59:59Z")),
            Some(at("2026-11-21T03:00:00Z"))
        );
        assert_eq!(
            nightly.next_after(at("2026-11-21T03:00:00Z")),
            Some(at("2026-11-22T03:00:00Z"))
        );
        let mondays = Schedule::parse("s", "30 6 * * MON").unwrap();
        assert_eq!(
            mondays.next_after(at("2026-11-21T12:00:00Z")),
            Some(at("2026-11-23T06:30:00Z"))
        );
    }

    #[test]
    fn malformed_expressions_are_refused() {
        for bad in [
            "",
            "* * * *",
            "0 3 * * * *",
            "61 * * * *",
            "0 3 * * FUNDAY",
            "every night",
        ] {
            let err = Schedule::parse("schedule", bad).unwrap_err();
            assert_eq!(err.field, "schedule", "{bad}");
        }
    }
}
