//! The website tracker and its demo: `GET /cohort.js` (a dependency-free script a site
//! includes, see `assets/cohort.js`) and `GET /demo/{app}[/{page}]?key=…`, a small
//! shop page personalized by it (the key is the application's public key, which a
//! page shows anyway). Neither needs a key to be fetched.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::AppState;
use crate::extract::ApiQuery;

const TRACKER: &str = include_str!("../../assets/cohort.js");
const DEMO: &str = include_str!("../../assets/demo.html");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/cohort.js", get(tracker))
        .route("/demo/{app}", get(demo_home))
        .route("/demo/{app}/{page}", get(demo_page))
}

async fn tracker() -> Response {
    let mut response = TRACKER.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}

#[derive(Debug, Deserialize)]
struct DemoParams {
    #[serde(default)]
    key: String,
}

async fn demo_home(Path(app): Path<String>, ApiQuery(params): ApiQuery<DemoParams>) -> Html<String> {
    demo(&app, "home", &params.key)
}

async fn demo_page(Path((app, page)): Path<(String, String)>, ApiQuery(params): ApiQuery<DemoParams>) -> Html<String> {
    demo(&app, &page, &params.key)
}

fn demo(app: &str, page: &str, key: &str) -> Html<String> {
    Html(
        DEMO.replace("{{app}}", &escape(app))
            .replace("{{page}}", &escape(page))
            .replace("{{key}}", &escape(key)),
    )
}

/// HTML-escapes a value placed in text or a quoted attribute.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_escaped() {
        let Html(page) = demo("shop", "<script>", "k\"ey");
        assert!(page.contains("&lt;script&gt;"));
        assert!(!page.contains("<script>alert"));
        assert!(page.contains("k&quot;ey"));
    }
}
