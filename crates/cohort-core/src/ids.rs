//! Identifiers and names: the validated strings and numbers that name things.
//!
//! Numeric ids are assigned by the store. String ids are chosen by users: an
//! application id is a slug used in URLs and key scopes, a customer id is the id the
//! customer has in the shop's own systems.

use std::fmt;

use crate::Invalid;

macro_rules! numeric_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(i64);

        impl $name {
            pub const fn new(raw: i64) -> Self {
                Self(raw)
            }

            pub const fn get(self) -> i64 {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

pub(crate) use numeric_id;

numeric_id!(
    /// Id of a segment group, assigned by the store.
    SegmentGroupId
);
numeric_id!(
    /// Id of a segment, assigned by the store.
    SegmentId
);
numeric_id!(
    /// Id of a target group, assigned by the store.
    TargetGroupId
);

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_id!(
    /// An application (channel, site, storefront): a slug of lowercase letters, digits,
    /// `-` and `_`, starting with a letter or digit, at most 64 characters.
    ApplicationId
);
string_id!(
    /// A customer's id in the shop's own systems: 1 to 128 printable characters
    /// without `/` or white space.
    CustomerId
);
string_id!(
    /// An anonymous browser: 8 to 64 ASCII letters, digits, `-` or `_` (cohort issues
    /// `v_` and 22 random characters when a visitor comes without one).
    VisitorId
);
string_id!(
    /// A human-readable name: 1 to 200 characters after trimming, no control characters.
    Name
);
string_id!(
    /// A programmatic key (reference): letters, digits, `-`, `_` and `.`, at most 64.
    ReferenceKey
);

impl ApplicationId {
    pub fn parse(field: &str, text: &str) -> Result<Self, Invalid> {
        let ok = !text.is_empty()
            && text.len() <= 64
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            && text.as_bytes()[0].is_ascii_alphanumeric();
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(Invalid::new(
                field,
                "expected 1 to 64 lowercase letters, digits, '-' or '_', starting with a letter or digit",
            ))
        }
    }
}

impl VisitorId {
    pub fn parse(field: &str, text: &str) -> Result<Self, Invalid> {
        let ok = (8..=64).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(Invalid::new(
                field,
                "expected 8 to 64 ASCII letters, digits, '-' or '_'",
            ))
        }
    }
}

impl CustomerId {
    pub fn parse(field: &str, text: &str) -> Result<Self, Invalid> {
        let ok = !text.is_empty()
            && text.len() <= 128
            && text != "."
            && text != ".."
            && text.chars().all(|c| !c.is_whitespace() && !c.is_control() && c != '/');
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(Invalid::new(
                field,
                "expected 1 to 128 characters without white space, control characters or '/', other than . and ..",
            ))
        }
    }
}

impl Name {
    pub fn parse(field: &str, text: &str) -> Result<Self, Invalid> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(Invalid::new(field, "must not be empty"));
        }
        if trimmed.chars().count() > 200 {
            return Err(Invalid::new(field, "must be at most 200 characters"));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(Invalid::new(field, "must not contain control characters"));
        }
        Ok(Self(trimmed.to_owned()))
    }
}

impl ReferenceKey {
    pub fn parse(field: &str, text: &str) -> Result<Self, Invalid> {
        let ok = !text.is_empty()
            && text.len() <= 64
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(Invalid::new(field, "expected 1 to 64 letters, digits, '-', '_' or '.'"))
        }
    }

    /// Derives a key from a name: lowercase ASCII words joined by `-`.
    /// Returns `None` when the name has no ASCII letter or digit.
    pub fn from_name(name: &Name) -> Option<Self> {
        let mut key = String::new();
        for c in name.as_str().chars() {
            if c.is_ascii_alphanumeric() {
                key.push(c.to_ascii_lowercase());
            } else if !key.is_empty() && !key.ends_with('-') {
                key.push('-');
            }
            if key.len() >= 64 {
                break;
            }
        }
        let key = key.trim_end_matches('-');
        (!key.is_empty()).then(|| Self(key.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn application_ids_are_lowercase_slugs() {
        assert!(ApplicationId::parse("id", "web-shop_2").is_ok());
        for bad in ["", "Web", "-shop", "shop/1", "a b", &"x".repeat(65)] {
            assert_eq!(ApplicationId::parse("id", bad).unwrap_err().field, "id", "{bad:?}");
        }
    }

    #[test]
    fn customer_ids_refuse_slashes_and_spaces() {
        assert!(CustomerId::parse("id", "C-0001@shop").is_ok());
        assert!(VisitorId::parse("visitor", "v_4kZ9xQ2mT7bN1cR8pL3sWd").is_ok());
        assert!(VisitorId::parse("visitor", "short").is_err());
        assert!(VisitorId::parse("visitor", "v_with space__").is_err());
        assert!(CustomerId::parse("id", "a/b").is_err());
        assert!(CustomerId::parse("id", "a b").is_err());
        assert!(CustomerId::parse("id", "").is_err());
        assert!(CustomerId::parse("id", "..").is_err());
        assert!(CustomerId::parse("id", ".").is_err());
    }

    #[test]
    fn names_are_trimmed_and_never_empty() {
        assert_eq!(Name::parse("name", "  Premium  ").unwrap().as_str(), "Premium");
        assert!(Name::parse("name", "   ").is_err());
        assert!(Name::parse("name", "a\u{0}b").is_err());
    }

    #[test]
    fn a_reference_key_is_derived_from_a_name() {
        let name = Name::parse("name", "Age 18–25 (young)").unwrap();
        assert_eq!(ReferenceKey::from_name(&name).unwrap().as_str(), "age-18-25-young");
        assert!(ReferenceKey::from_name(&Name::parse("name", "ÄÖÜ").unwrap()).is_none());
    }
}
