//! Typed customer attributes: string, number, bool, date and list values by name.
//!
//! On the wire a date is a string of the exact form `YYYY-MM-DD`; every other string
//! stays a string. Lists hold scalar values only.

use std::collections::BTreeMap;
use std::fmt;

use time::{Date, format_description::well_known::Iso8601, macros::format_description};

use crate::Invalid;

/// The attributes of one customer, ordered by name.
pub type Attributes = BTreeMap<AttributeName, AttributeValue>;

/// At most this many attributes per customer.
pub const MAX_ATTRIBUTES: usize = 200;
/// At most this many elements in a list value.
pub const MAX_LIST_LEN: usize = 1_000;
/// At most this many bytes in a string value.
pub const MAX_STRING_LEN: usize = 4_096;

/// An attribute name: a letter or `_`, then letters, digits or `_`; at most 64.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AttributeName(String);

impl AttributeName {
    pub fn parse(field: &str, text: &str) -> Result<Self, Invalid> {
        let mut bytes = text.bytes();
        let ok = text.len() <= 64
            && bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(Invalid::new(
                field,
                "an attribute name is a letter or '_' followed by letters, digits or '_', at most 64",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AttributeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue {
    String(String),
    /// A finite number.
    Number(f64),
    Bool(bool),
    Date(Date),
    /// Scalar values (no nested lists).
    List(Vec<AttributeValue>),
}

impl AttributeValue {
    /// A string value, read as a date when it has the exact form `YYYY-MM-DD`.
    pub fn from_text(field: &str, text: &str) -> Result<Self, Invalid> {
        if let Some(date) = parse_date(text) {
            return Ok(Self::Date(date));
        }
        check_string(field, text)?;
        Ok(Self::String(text.to_owned()))
    }

    pub fn number(field: &str, n: f64) -> Result<Self, Invalid> {
        if n.is_finite() {
            Ok(Self::Number(n))
        } else {
            Err(Invalid::new(field, "a number must be finite"))
        }
    }

    pub fn list(field: &str, items: Vec<AttributeValue>) -> Result<Self, Invalid> {
        if items.len() > MAX_LIST_LEN {
            return Err(Invalid::new(
                field,
                format!("a list holds at most {MAX_LIST_LEN} values"),
            ));
        }
        if let Some(i) = items.iter().position(|v| matches!(v, Self::List(_))) {
            return Err(Invalid::new(format!("{field}[{i}]"), "a list holds scalar values only"));
        }
        Ok(Self::List(items))
    }

    /// Reads a typed text cell as used in CSV imports (`type` from a `name:type` header).
    pub fn from_typed_text(field: &str, kind: ValueKind, text: &str) -> Result<Self, Invalid> {
        match kind {
            ValueKind::String => check_string(field, text).map(|()| Self::String(text.to_owned())),
            ValueKind::Number => text
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .map(Self::Number)
                .ok_or_else(|| Invalid::new(field, "expected a number")),
            ValueKind::Bool => match text.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Ok(Self::Bool(true)),
                "false" | "0" | "no" => Ok(Self::Bool(false)),
                _ => Err(Invalid::new(field, "expected true or false")),
            },
            ValueKind::Date => parse_date(text.trim())
                .map(Self::Date)
                .ok_or_else(|| Invalid::new(field, "expected a date as YYYY-MM-DD")),
            ValueKind::List => {
                let items = text
                    .split('|')
                    .filter(|s| !s.is_empty())
                    .map(|s| Self::from_text(field, s))
                    .collect::<Result<Vec<_>, _>>()?;
                Self::list(field, items)
            }
        }
    }

    /// The date as `YYYY-MM-DD`, for writing back to the wire.
    pub fn format_date(date: Date) -> String {
        date.format(format_description!("[year]-[month]-[day]"))
            .expect("a date formats")
    }
}

/// The declared type of an imported column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    String,
    Number,
    Bool,
    Date,
    List,
}

impl ValueKind {
    pub fn parse(field: &str, text: &str) -> Result<Self, Invalid> {
        match text {
            "string" => Ok(Self::String),
            "number" => Ok(Self::Number),
            "bool" => Ok(Self::Bool),
            "date" => Ok(Self::Date),
            "list" => Ok(Self::List),
            _ => Err(Invalid::new(
                field,
                "a column type is one of string, number, bool, date, list",
            )),
        }
    }
}

/// Strings are at most `MAX_STRING_LEN` bytes and hold no NUL (which PostgreSQL cannot store).
fn check_string(field: &str, text: &str) -> Result<(), Invalid> {
    if text.len() > MAX_STRING_LEN {
        return Err(Invalid::new(
            field,
            format!("a string value is at most {MAX_STRING_LEN} bytes"),
        ));
    }
    if text.contains('\0') {
        return Err(Invalid::new(field, "a string value must not contain NUL"));
    }
    Ok(())
}

fn parse_date(text: &str) -> Option<Date> {
    let b = text.as_bytes();
    let shaped = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shaped {
        return None;
    }
    Date::parse(text, &Iso8601::DATE).ok()
}

/// Checks the size rules of a whole attribute map.
pub fn check_attributes(field: &str, attributes: &Attributes) -> Result<(), Invalid> {
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(Invalid::new(field, format!("at most {MAX_ATTRIBUTES} attributes")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exact_calendar_dates_become_dates() {
        assert!(matches!(
            AttributeValue::from_text("a", "1990-02-28").unwrap(),
            AttributeValue::Date(_)
        ));
        for text in ["1990-02-30", "1990-2-28", "19900228", "01234", "1990-02-28T00:00:00Z"] {
            assert!(
                matches!(AttributeValue::from_text("a", text).unwrap(), AttributeValue::String(_)),
                "{text}"
            );
        }
    }

    #[test]
    fn a_date_formats_back_to_its_text() {
        let AttributeValue::Date(d) = AttributeValue::from_text("a", "2001-09-09").unwrap() else {
            panic!()
        };
        assert_eq!(AttributeValue::format_date(d), "2001-09-09");
    }

    #[test]
    fn lists_refuse_nested_lists_naming_the_element() {
        let nested = AttributeValue::List(vec![]);
        let err = AttributeValue::list("tags", vec![AttributeValue::Bool(true), nested]).unwrap_err();
        assert_eq!(err.field, "tags[1]");
    }

    #[test]
    fn typed_text_cells_are_checked_against_their_type() {
        assert_eq!(
            AttributeValue::from_typed_text("x", ValueKind::Number, "42.5").unwrap(),
            AttributeValue::Number(42.5)
        );
        assert_eq!(
            AttributeValue::from_typed_text("x", ValueKind::String, "01234").unwrap(),
            AttributeValue::String("01234".into())
        );
        assert!(AttributeValue::from_typed_text("x", ValueKind::Number, "forty").is_err());
        assert!(AttributeValue::from_typed_text("x", ValueKind::Bool, "maybe").is_err());
        assert!(AttributeValue::from_typed_text("x", ValueKind::Date, "31.12.2020").is_err());
        assert_eq!(
            AttributeValue::from_typed_text("x", ValueKind::List, "ski|bike").unwrap(),
            AttributeValue::List(vec![
                AttributeValue::String("ski".into()),
                AttributeValue::String("bike".into())
            ])
        );
    }

    #[test]
    fn attribute_names_are_identifiers() {
        assert!(AttributeName::parse("a", "birth_date2").is_ok());
        assert!(AttributeName::parse("a", "2fast").is_err());
        assert!(AttributeName::parse("a", "with-dash").is_err());
        assert!(AttributeName::parse("a", "").is_err());
    }
}
