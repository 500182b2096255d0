//! Bearer-key authorization as an extractor: a handler names the permission it
//! needs in its signature (`_: Auth<Admin>`), so no route can forget it, and the
//! route-walking test proves it for every route of the router.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use cohort_app::AuthError;
use cohort_core::Permission;

use crate::AppState;
use crate::problem::Problem;

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

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| key.trim())
        .filter(|k| !k.is_empty())
}
