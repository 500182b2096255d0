//! Bearer-key authorization as an extractor: a handler names the permission it
//! needs in its signature (`_: Auth<Admin>`), so no route can forget it, and the
//! route-walking test proves it for every route of the router.

use std::marker::PhantomData;

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Path};
use axum::http::header;
use axum::http::request::Parts;
use cohort_app::AuthError;
use cohort_core::{ApplicationId, KeyScope, Permission};

use crate::AppState;
use crate::problem::{Code, Problem};

/// A permission a route may require.
pub trait Requirement: Send + Sync + 'static {
    fn permission() -> Permission;
}

/// Reading admin data.
pub struct Read;
/// Writing customers, their segments and activities.
pub struct Ingest;
/// Any other write.
pub struct Admin;

impl Requirement for Read {
    fn permission() -> Permission {
        Permission::Read
    }
}

impl Requirement for Ingest {
    fn permission() -> Permission {
        Permission::Ingest
    }
}

impl Requirement for Admin {
    fn permission() -> Permission {
        Permission::Admin
    }
}

/// Proof that the request carried a key allowing `P`.
pub struct Auth<P>(PhantomData<P>);

impl<P: Requirement> FromRequestParts<AppState> for Auth<P> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let key = bearer(parts).ok_or(AuthError::Missing)?;
        state.app.keys.authorize(key, &P::permission()).await?;
        Ok(Self(PhantomData))
    }
}

/// Proof that the request carried a key for the browser-facing routes of the
/// application in its path: `public:<app>` — the key pages embed — as a bearer token
/// or as the `key` query parameter (a browser's simple request carries no such
/// header); or, from a site's server, a bearer key that may write customers
/// (`ingest`, `admin`). Only a public key may travel in a URL (URLs end up in logs
/// and histories).
pub struct PublicKey {
    pub app: ApplicationId,
    /// A server's key: it may name customers and ask for explanations.
    pub trusted: bool,
}

impl FromRequestParts<AppState> for PublicKey {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let (key, in_url) = match bearer(parts) {
            Some(key) => (key.to_owned(), false),
            None => (query_key(parts).ok_or(AuthError::Missing)?.to_owned(), true),
        };
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| Problem::new(Code::NotFound).detail(e.body_text()))?;
        let app =
            ApplicationId::parse("app", params.get("app").map_or("", String::as_str)).map_err(Problem::invalid)?;
        let scopes = state.app.keys.scopes(&key).await?;
        let needed = Permission::Public(app.clone());
        if !scopes.iter().any(|s| s.allows(&needed)) {
            return Err(AuthError::Forbidden(needed).into());
        }
        let trusted = scopes.iter().any(|s| s.allows(&Permission::Ingest));
        if in_url && scopes.iter().any(|s| !matches!(s, KeyScope::Public(_))) {
            return Err(Problem::new(Code::Forbidden)
                .field("key")
                .detail("only a public key may be sent in the URL; send other keys as a bearer token"));
        }
        Ok(Self { app, trusted })
    }
}

fn query_key(parts: &Parts) -> Option<&str> {
    parts
        .uri
        .query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("key="))
        .filter(|k| !k.is_empty())
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| key.trim())
        .filter(|k| !k.is_empty())
}
