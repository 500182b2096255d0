//! Conditions over a customer's profile: attribute tests and activity aggregates.
//!
//! A condition on data the customer does not have is false (a missing attribute, a
//! "days since last" with no activity in the window); `Not` turns that around.

use cohort_core::{AttributeName, AttributeValue, Attributes, Timestamp};
use rust_decimal::Decimal;

use cohort_core::aggregate::{Aggregate, Aggregates, MICROS_PER_DAY};
pub use cohort_core::condition::{AttributeTest, Bound, Comparison};

/// What is measured of an aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    Count,
    /// Summed order amount.
    Amount,
    /// Whole days since the latest activity in the window.
    DaysSinceLast,
}

/// One leaf of a condition tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Attribute {
        attribute: AttributeName,
        test: AttributeTest,
    },
    Activity {
        aggregate: Aggregate,
        measure: Measure,
        comparison: Comparison,
        value: Decimal,
    },
}

impl Condition {
    pub fn holds(&self, attributes: &Attributes, aggregates: &Aggregates, now: Timestamp) -> bool {
        match self {
            Self::Attribute { attribute, test } => attributes
                .get(attribute)
                .is_some_and(|value| attribute_holds(test, value)),
            Self::Activity {
                aggregate,
                measure,
                comparison,
                value,
            } => {
                let measured = aggregates.get(aggregate);
                let left = match measure {
                    Measure::Count => Decimal::from(measured.count),
                    Measure::Amount => measured.amount,
                    Measure::DaysSinceLast => match measured.last_at {
                        Some(at) => Decimal::from((now.unix_micros() - at.unix_micros()).max(0) / MICROS_PER_DAY),
                        None => return false,
                    },
                };
                comparison.holds(left, *value)
            }
        }
    }
}

/// Whether an attribute's value passes the test.
pub fn attribute_holds(test: &AttributeTest, value: &AttributeValue) -> bool {
    match test {
        AttributeTest::Exists => true,
        AttributeTest::In(options) => match value {
            AttributeValue::List(items) => items.iter().any(|item| is_one_of(item, options)),
            other => is_one_of(other, options),
        },
        AttributeTest::Compare(comparison, bound) => match (value, bound) {
            (AttributeValue::Number(n), Bound::Number(b)) => comparison.holds(*n, *b),
            (AttributeValue::Date(d), Bound::Date(b)) => comparison.holds(*d, *b),
            _ => false,
        },
        AttributeTest::Contains(needle) => match value {
            AttributeValue::String(s) => s.contains(needle.as_str()),
            AttributeValue::List(items) => items.iter().filter_map(text).any(|t| &t == needle),
            _ => false,
        },
    }
}

/// Whether a scalar's text is one of the options (strings compared in place).
fn is_one_of(value: &AttributeValue, options: &[String]) -> bool {
    match value {
        AttributeValue::String(s) => options.iter().any(|o| o == s),
        other => text(other).is_some_and(|t| options.contains(&t)),
    }
}

/// A scalar attribute as the text a mapping or `in` test matches: strings as they
/// are, whole numbers without a fraction, booleans as true/false, dates as YYYY-MM-DD.
pub fn text(value: &AttributeValue) -> Option<String> {
    match value {
        AttributeValue::String(s) => Some(s.clone()),
        AttributeValue::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Some(format!("{}", *n as i64)),
        AttributeValue::Number(n) => Some(n.to_string()),
        AttributeValue::Bool(b) => Some(b.to_string()),
        AttributeValue::Date(d) => Some(AttributeValue::format_date(*d)),
        AttributeValue::List(_) => None,
    }
}
