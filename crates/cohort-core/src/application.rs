//! Applications: the channels, sites and storefronts that use cohort.
//!
//! Each has a default currency and the browser origins allowed to call its public
//! endpoints.

use std::fmt;

use crate::{ApplicationId, Invalid, Name};

/// A channel, site or storefront.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    pub id: ApplicationId,
    pub name: Name,
    pub default_currency: Currency,
    pub allowed_origins: Vec<Origin>,
    pub enabled: bool,
}

/// Fields of an application that an update may change; `None` keeps the value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplicationPatch {
    pub name: Option<Name>,
    pub default_currency: Option<Currency>,
    pub allowed_origins: Option<Vec<Origin>>,
    pub enabled: Option<bool>,
}

impl Application {
    pub fn apply(&mut self, patch: ApplicationPatch) {
        if let Some(name) = patch.name {
            self.name = name;
        }
        if let Some(currency) = patch.default_currency {
            self.default_currency = currency;
        }
        if let Some(origins) = patch.allowed_origins {
            self.allowed_origins = origins;
        }
        if let Some(enabled) = patch.enabled {
            self.enabled = enabled;
        }
    }
}

/// An ISO 4217 currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency(iso_currency::Currency);

impl Currency {
    pub fn parse(field: &str, code: &str) -> Result<Self, Invalid> {
        iso_currency::Currency::from_code(code)
            .map(Self)
            .ok_or_else(|| Invalid::new(field, "expected an ISO 4217 currency code such as EUR"))
    }

    pub fn code(self) -> &'static str {
        // `code()` of iso_currency returns a &'static str for every currency.
        self.0.code()
    }

    /// Digits after the decimal point of the currency's minor unit (2 for EUR, 0 for JPY).
    pub fn minor_unit_digits(self) -> u32 {
        self.0.exponent().map(u32::from).unwrap_or(0)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A browser origin: `scheme://host[:port]`, lowercase, with no path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin(String);

impl Origin {
    pub fn parse(field: &str, text: &str) -> Result<Self, Invalid> {
        let invalid = || Invalid::new(field, "expected an origin such as https://shop.example.com");
        let lower = text.to_ascii_lowercase();
        let rest = lower
            .strip_prefix("https://")
            .or_else(|| lower.strip_prefix("http://"))
            .ok_or_else(invalid)?;
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => (host, Some(port)),
            _ => (rest, None),
        };
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'[' | b']' | b':'));
        let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
        if host_ok && port_ok {
            Ok(Self(lower))
        } else {
            Err(invalid())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies_know_their_minor_unit() {
        assert_eq!(Currency::parse("c", "EUR").unwrap().minor_unit_digits(), 2);
        assert_eq!(Currency::parse("c", "JPY").unwrap().minor_unit_digits(), 0);
        assert!(Currency::parse("c", "EURO").is_err());
        assert!(Currency::parse("c", "eur").is_err());
    }

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        assert_eq!(
            Origin::parse("o", "HTTPS://Shop.Example.com").unwrap().as_str(),
            "https://shop.example.com"
        );
        assert!(Origin::parse("o", "http://localhost:8080").is_ok());
        for bad in [
            "shop.example.com",
            "https://shop.example.com/path",
            "ftp://x",
            "https://",
            "http://x:0",
            "http://x:99999",
        ] {
            assert!(Origin::parse("o", bad).is_err(), "{bad}");
        }
    }
}
