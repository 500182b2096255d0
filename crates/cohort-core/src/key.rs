//! API key scopes and the permission each route requires.
//!
//! `admin` may do everything; `read` may read admin data; `ingest` may write customers
//! and activities; `public:<application>` may call that application's browser-facing
//! endpoints.

use std::fmt;

use crate::{ApplicationId, Invalid};

/// What a key is allowed to do.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyScope {
    Admin,
    Read,
    Ingest,
    Public(ApplicationId),
}

/// What a route requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Permission {
    /// Reading admin data (GET).
    Read,
    /// Writing customers, their segments and activities.
    Ingest,
    /// Any other write.
    Admin,
    /// The browser-facing endpoints of one application.
    Public(ApplicationId),
}

impl KeyScope {
    pub fn parse(field: &str, text: &str) -> Result<Self, Invalid> {
        match text {
            "admin" => Ok(Self::Admin),
            "read" => Ok(Self::Read),
            "ingest" => Ok(Self::Ingest),
            _ => match text.strip_prefix("public:") {
                Some(app) => ApplicationId::parse(field, app).map(Self::Public),
                None => Err(Invalid::new(
                    field,
                    "expected admin, read, ingest or public:<application>",
                )),
            },
        }
    }

    pub fn allows(&self, needed: &Permission) -> bool {
        match (self, needed) {
            (Self::Admin, _) => true,
            (Self::Read, Permission::Read) => true,
            (Self::Ingest, Permission::Ingest) => true,
            // A site's server asks for its visitors' decisions, naming its customers.
            (Self::Ingest, Permission::Public(_)) => true,
            (Self::Public(mine), Permission::Public(app)) => mine == app,
            _ => false,
        }
    }
}

impl fmt::Display for KeyScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Admin => f.write_str("admin"),
            Self::Read => f.write_str("read"),
            Self::Ingest => f.write_str("ingest"),
            Self::Public(app) => write!(f, "public:{app}"),
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read => f.write_str("read"),
            Self::Ingest => f.write_str("ingest"),
            Self::Admin => f.write_str("admin"),
            Self::Public(app) => write!(f, "public:{app}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(s: &str) -> ApplicationId {
        ApplicationId::parse("a", s).unwrap()
    }

    #[test]
    fn admin_allows_everything_and_others_only_their_own() {
        let all = [
            Permission::Read,
            Permission::Ingest,
            Permission::Admin,
            Permission::Public(app("shop")),
        ];
        assert!(all.iter().all(|p| KeyScope::Admin.allows(p)));
        assert_eq!(all.iter().filter(|p| KeyScope::Read.allows(p)).count(), 1);
        assert_eq!(
            all.iter().filter(|p| KeyScope::Ingest.allows(p)).count(),
            2,
            "ingest and public"
        );
        assert!(KeyScope::Public(app("shop")).allows(&Permission::Public(app("shop"))));
        assert!(!KeyScope::Public(app("blog")).allows(&Permission::Public(app("shop"))));
        assert!(!KeyScope::Public(app("shop")).allows(&Permission::Read));
    }

    #[test]
    fn scopes_round_trip_through_text() {
        for text in ["admin", "read", "ingest", "public:web-shop"] {
            assert_eq!(KeyScope::parse("scope", text).unwrap().to_string(), text);
        }
        assert!(KeyScope::parse("scope", "public:").is_err());
        assert!(KeyScope::parse("scope", "root").is_err());
    }
}

/// A stored API key. The secret itself is never stored, only its SHA-256 hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Public part of the key, also its id (`ck_<id>_<secret>`).
    pub id: String,
    pub name: crate::Name,
    pub scopes: Vec<KeyScope>,
    /// Lowercase hex SHA-256 of the secret part.
    pub secret_hash: String,
    pub created_at: crate::Timestamp,
    pub revoked_at: Option<crate::Timestamp>,
}
