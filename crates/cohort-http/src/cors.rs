//! CORS for the browser-facing routes (`/v1/applications/{app}/context`): a request
//! from a browser origin the application does not allow is refused (403, field
//! `origin`) before anything else; one it allows gets its origin named in every
//! answer, errors included, and preflight requests are answered here. Requests
//! without an `Origin` (servers) pass. Every other route sends no CORS headers.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cohort_core::ApplicationId;

use crate::AppState;
use crate::problem::{Code, Problem};

/// The application of a browser-facing route: `/v1/applications/{app}/context`.
fn public_app(path: &str) -> Option<&str> {
    path.strip_prefix("/v1/applications/")?.strip_suffix("/context")
}

pub async fn public_routes(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(app) = public_app(request.uri().path()) else {
        return next.run(request).await;
    };
    let Some(origin) = request.headers().get(header::ORIGIN).cloned() else {
        return next.run(request).await;
    };
    let Ok(app) = ApplicationId::parse("app", app) else {
        return Problem::new(Code::Forbidden)
            .field("origin")
            .detail("this origin may not call this application")
            .into_response();
    };
    let allowed = match state.app.targeting.allowed_origins(&app).await {
        Ok(Some(origins)) => origin
            .to_str()
            .is_ok_and(|o| origins.iter().any(|a| a.as_str().eq_ignore_ascii_case(o))),
        // No such application: refused like a foreign origin, so strangers cannot
        // tell which applications exist.
        Ok(None) => false,
        Err(e) => return Problem::from(e).into_response(),
    };
    if !allowed {
        let mut refused = Problem::new(Code::Forbidden)
            .field("origin")
            .detail("this origin may not call this application")
            .into_response();
        refused
            .headers_mut()
            .insert(header::VARY, HeaderValue::from_static("Origin"));
        return refused;
    }
    let mut response = if request.method() == Method::OPTIONS {
        let mut preflight = StatusCode::NO_CONTENT.into_response();
        let headers = preflight.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST, OPTIONS"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type"),
        );
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        preflight
    } else {
        next.run(request).await
    };
    name_origin(response.headers_mut(), origin);
    response
}

fn name_origin(headers: &mut HeaderMap, origin: HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_context_route_is_browser_facing() {
        assert_eq!(public_app("/v1/applications/shop/context"), Some("shop"));
        assert_eq!(public_app("/v1/applications/shop"), None);
        assert_eq!(public_app("/v1/applications/shop/services"), None);
    }
}
