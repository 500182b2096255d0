//! Conditions over a customer's profile: attribute tests and activity aggregates.
//!
//! A condition on data the customer does not have is false (a missing attribute, a
//! "days since last" with no activity in the window); `Not` turns that around.

use cohort_core::{AttributeName, AttributeValue, Attributes, Timestamp};
use rust_decimal::Decimal;
use time::Date;

use cohort_core::aggregate::{Aggregate, Aggregates, MICROS_PER_DAY};

/// How a measured value compares with a given one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Less,
    LessOrEqual,
    Equal,
    NotEqual,
    GreaterOrEqual,
    Greater,
}

impl Comparison {
    pub fn parse(field: &str, text: &str) -> Result<Self, cohort_core::Invalid> {
        match text {
            "<" => Ok(Self::Less),
            "<=" => Ok(Self::LessOrEqual),
            "=" => Ok(Self::Equal),
            "!=" => Ok(Self::NotEqual),
            ">=" => Ok(Self::GreaterOrEqual),
            ">" => Ok(Self::Greater),
            _ => Err(cohort_core::Invalid::new(field, "expected one of <, <=, =, !=, >=, >")),
        }
    }

    pub fn holds<T: PartialOrd>(self, left: T, right: T) -> bool {
        match self {
            Self::Less => left < right,
            Self::LessOrEqual => left <= right,
            Self::Equal => left == right,
            Self::NotEqual => left != right,
            Self::GreaterOrEqual => left >= right,
            Self::Greater => left > right,
        }
    }
}

/// A value an attribute is ordered against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    Number(f64),
    Date(Date),
}

/// A test of one attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeTest {
    /// The attribute is set.
    Exists,
    /// Its value (any value of a list) is one of these, compared as text.
    In(Vec<String>),
    /// A number or date attribute compares with the bound (same kind only).
    Compare(Comparison, Bound),
    /// A string contains the text, or a list has it as an element.
    Contains(String),
}

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

fn attribute_holds(test: &AttributeTest, value: &AttributeValue) -> bool {
    match test {
        AttributeTest::Exists => true,
        AttributeTest::In(options) => match value {
            AttributeValue::List(items) => items.iter().filter_map(text).any(|t| options.contains(&t)),
            other => text(other).is_some_and(|t| options.contains(&t)),
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
