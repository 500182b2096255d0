//! Segmentation services: the sources segments come from.
//!
//! `standard` keeps memberships in cohort (manual, calculated, tracked); `import`
//! keeps memberships an external system pushes; `http` asks an external system for
//! one customer's segments at decision time. Each application activates its own set;
//! a service that is unavailable, inactive in the application or not answering simply
//! contributes no segments.

use std::fmt;

use crate::{Invalid, Name, ReferenceKey};

/// The service every installation has: memberships kept by cohort itself.
pub const STANDARD: &str = "standard";

/// A service id: a slug like an application id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceId(String);

impl ServiceId {
    pub fn parse(field: &str, text: &str) -> Result<Self, Invalid> {
        crate::ApplicationId::parse(field, text).map(|a| Self(a.into_string()))
    }

    pub fn standard() -> Self {
        Self(STANDARD.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Settings of an `http` service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// `http://` or `https://` URL; segments are read from `{base_url}/customers/{id}/segments`.
    pub base_url: String,
    /// Per-request timeout, 1 to 10,000 ms (default 50).
    pub timeout_ms: u32,
    /// How long an answer is reused, 0 to 86,400,000 ms (default 30,000).
    pub cache_ttl_ms: u32,
    /// Consecutive failures that open the circuit (default 5).
    pub breaker_failures: u32,
    /// How long an open circuit skips the service before trying again (default 10,000 ms).
    pub breaker_open_ms: u32,
}

impl HttpSettings {
    pub const DEFAULT_TIMEOUT_MS: u32 = 50;
    pub const DEFAULT_CACHE_TTL_MS: u32 = 30_000;
    pub const DEFAULT_BREAKER_FAILURES: u32 = 5;
    pub const DEFAULT_BREAKER_OPEN_MS: u32 = 10_000;

    pub fn new(
        base_url: &str,
        timeout_ms: Option<u32>,
        cache_ttl_ms: Option<u32>,
        breaker_failures: Option<u32>,
        breaker_open_ms: Option<u32>,
    ) -> Result<Self, Invalid> {
        let lower = base_url.to_ascii_lowercase();
        let rest = lower.strip_prefix("http://").or_else(|| lower.strip_prefix("https://"));
        if rest.is_none_or(|r| r.is_empty() || r.starts_with('/')) || base_url.chars().any(char::is_whitespace) {
            return Err(Invalid::new("config.base_url", "expected an http:// or https:// URL"));
        }
        let within = |field: &str, value: Option<u32>, default: u32, range: std::ops::RangeInclusive<u32>| {
            let value = value.unwrap_or(default);
            if range.contains(&value) {
                Ok(value)
            } else {
                Err(Invalid::new(
                    field,
                    format!("expected {} to {}", range.start(), range.end()),
                ))
            }
        };
        Ok(Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            timeout_ms: within("config.timeout_ms", timeout_ms, Self::DEFAULT_TIMEOUT_MS, 1..=10_000)?,
            cache_ttl_ms: within(
                "config.cache_ttl_ms",
                cache_ttl_ms,
                Self::DEFAULT_CACHE_TTL_MS,
                0..=86_400_000,
            )?,
            breaker_failures: within(
                "config.breaker_failures",
                breaker_failures,
                Self::DEFAULT_BREAKER_FAILURES,
                1..=1_000,
            )?,
            breaker_open_ms: within(
                "config.breaker_open_ms",
                breaker_open_ms,
                Self::DEFAULT_BREAKER_OPEN_MS,
                1..=3_600_000,
            )?,
        })
    }
}

/// What kind of source a service is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceKind {
    Standard,
    Import,
    Http(HttpSettings),
}

impl ServiceKind {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Import => "import",
            Self::Http(_) => "http",
        }
    }

    /// Whether the service's segments and memberships are stored in cohort.
    pub fn stores_segments(&self) -> bool {
        !matches!(self, Self::Http(_))
    }
}

/// A segmentation service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentationService {
    pub id: ServiceId,
    pub name: Name,
    pub kind: ServiceKind,
    /// System-wide switch: an unavailable service contributes nothing anywhere.
    pub available: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServicePatch {
    pub name: Option<Name>,
    /// Only the settings of an `http` service may change, not the kind.
    pub http: Option<HttpSettings>,
    pub available: Option<bool>,
}

impl SegmentationService {
    pub fn apply(&mut self, patch: ServicePatch) -> Result<(), Invalid> {
        if let Some(name) = patch.name {
            self.name = name;
        }
        if let Some(settings) = patch.http {
            match &mut self.kind {
                ServiceKind::Http(current) => *current = settings,
                _ => return Err(Invalid::new("config", "only an http service has settings")),
            }
        }
        if let Some(available) = patch.available {
            self.available = available;
        }
        Ok(())
    }
}

/// A segment named across services: `service/group/segment` for stored segments,
/// `service/segment` for an http service's segment without group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QualifiedSegment {
    pub service: ServiceId,
    pub group: Option<ReferenceKey>,
    pub segment: ReferenceKey,
}

impl QualifiedSegment {
    pub fn parse(field: &str, text: &str) -> Result<Self, Invalid> {
        let parts: Vec<&str> = text.split('/').collect();
        let invalid = || Invalid::new(field, "expected service/group/segment or service/segment");
        match parts.as_slice() {
            [service, segment] => Ok(Self {
                service: ServiceId::parse(field, service).map_err(|_| invalid())?,
                group: None,
                segment: ReferenceKey::parse(field, segment).map_err(|_| invalid())?,
            }),
            [service, group, segment] => Ok(Self {
                service: ServiceId::parse(field, service).map_err(|_| invalid())?,
                group: Some(ReferenceKey::parse(field, group).map_err(|_| invalid())?),
                segment: ReferenceKey::parse(field, segment).map_err(|_| invalid())?,
            }),
            _ => Err(invalid()),
        }
    }
}

impl fmt::Display for QualifiedSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.group {
            Some(group) => write!(f, "{}/{}/{}", self.service, group, self.segment),
            None => write!(f, "{}/{}", self.service, self.segment),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_segments_round_trip_through_text() {
        for text in ["standard/loyalty-tier/gold", "crm/premium"] {
            assert_eq!(QualifiedSegment::parse("s", text).unwrap().to_string(), text);
        }
        for bad in ["premium", "a/b/c/d", "Std/x", "crm/", "/x"] {
            assert!(QualifiedSegment::parse("s", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn http_settings_have_defaults_and_bounds() {
        let s = HttpSettings::new("https://crm.example.com/api/", None, None, None, None).unwrap();
        assert_eq!((s.base_url.as_str(), s.timeout_ms), ("https://crm.example.com/api", 50));
        assert_eq!(
            HttpSettings::new("ftp://x", None, None, None, None).unwrap_err().field,
            "config.base_url"
        );
        assert_eq!(
            HttpSettings::new("http://x", Some(0), None, None, None)
                .unwrap_err()
                .field,
            "config.timeout_ms"
        );
    }
}
