//! The words conditions are made of: comparisons, bounds and attribute tests.
//!
//! Segment builders and promotions both test customer attributes, so the tests are
//! vocabulary here; the engine evaluates them (`cohort_engine::condition`).

use std::fmt;

use time::Date;

use crate::{AttributeValue, Invalid};

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
    pub fn parse(field: &str, text: &str) -> Result<Self, Invalid> {
        match text {
            "<" => Ok(Self::Less),
            "<=" => Ok(Self::LessOrEqual),
            "=" => Ok(Self::Equal),
            "!=" => Ok(Self::NotEqual),
            ">=" => Ok(Self::GreaterOrEqual),
            ">" => Ok(Self::Greater),
            _ => Err(Invalid::new(field, "expected one of <, <=, =, !=, >=, >")),
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

    pub fn symbol(self) -> &'static str {
        match self {
            Self::Less => "<",
            Self::LessOrEqual => "<=",
            Self::Equal => "=",
            Self::NotEqual => "!=",
            Self::GreaterOrEqual => ">=",
            Self::Greater => ">",
        }
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// A value an attribute is ordered against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    Number(f64),
    Date(Date),
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::Date(d) => f.write_str(&AttributeValue::format_date(*d)),
        }
    }
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

impl AttributeTest {
    /// The test applied to a named attribute, e.g. `country in [FR, BE]`.
    pub fn describe(&self, attribute: &str) -> String {
        match self {
            Self::Exists => format!("{attribute} exists"),
            Self::In(options) if options.len() == 1 => format!("{attribute} = {}", options[0]),
            Self::In(options) => format!("{attribute} in [{}]", options.join(", ")),
            Self::Compare(comparison, bound) => format!("{attribute} {comparison} {bound}"),
            Self::Contains(text) => format!("{attribute} contains {text}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_parse_from_and_render_as_their_symbol() {
        for symbol in ["<", "<=", "=", "!=", ">=", ">"] {
            assert_eq!(Comparison::parse("op", symbol).unwrap().to_string(), symbol);
        }
        assert_eq!(Comparison::parse("op", "==").unwrap_err().field, "op");
    }

    #[test]
    fn attribute_tests_describe_themselves() {
        assert_eq!(AttributeTest::In(vec!["FR".into()]).describe("country"), "country = FR");
        assert_eq!(
            AttributeTest::In(vec!["FR".into(), "BE".into()]).describe("country"),
            "country in [FR, BE]"
        );
        assert_eq!(
            AttributeTest::Compare(Comparison::GreaterOrEqual, Bound::Number(18.0)).describe("age"),
            "age >= 18"
        );
    }
}
