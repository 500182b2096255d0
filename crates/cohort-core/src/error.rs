//! The one error of the domain layer: a value that does not satisfy its rules.
//!
//! It names the offending field (a JSON-pointer-like path such as `attributes.birthdate`)
//! so the HTTP edge can report it without guessing.

use std::fmt;

/// A value was refused by a domain rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Invalid {
    /// Path of the offending field, e.g. `name` or `add[2].segment`.
    pub field: String,
    /// Lowercase reason without trailing period.
    pub reason: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Prefixes the field path, used when a nested value is checked on its own.
    pub fn within(mut self, parent: &str) -> Self {
        self.field = if self.field.is_empty() {
            parent.to_owned()
        } else if self.field.starts_with('[') {
            format!("{parent}{}", self.field)
        } else {
            format!("{parent}.{}", self.field)
        };
        self
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}
