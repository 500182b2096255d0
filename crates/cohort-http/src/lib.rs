//! cohort's HTTP API (axum): routes, wire types, authorization, problem documents,
//! metrics and the OpenAPI document generated from the handlers.
//!
//! `server::run(listener, app, shutdown)`-style entry: `serve` takes a bound listener
//! so tests start the real server on port 0.

pub mod auth;
pub mod bulk;
mod cors;
pub mod extract;
pub mod json;
mod metrics;
pub mod problem;
pub mod routes;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use cohort_app::App;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use problem::{Code, Problem};

/// Largest JSON body outside the streaming bulk endpoint.
pub const MAX_BODY: usize = 1 << 20;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Behind one `Arc`: each request clones the state, so it costs one count.
    pub app: Arc<App>,
    metrics: PrometheusHandle,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "cohort", description = "Customer segmentation, targeting and segment-based promotions."),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// The router and the OpenAPI document describing it.
pub fn router(app: App) -> (Router, utoipa::openapi::OpenApi) {
    let state = AppState {
        app: Arc::new(app),
        metrics: metrics::handle(),
    };
    let (api, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::applications::router())
        .merge(routes::activities::router())
        .merge(routes::segment_groups::router())
        .merge(routes::segments::router())
        .merge(routes::builders::router())
        .merge(routes::promotions::router())
        .merge(routes::baskets::router())
        .merge(routes::query::router())
        .merge(routes::services::router())
        .merge(routes::target_groups::router())
        .merge(routes::targeting::router())
        .merge(routes::context::router())
        .merge(routes::automation::router())
        .merge(routes::customers::router())
        .merge(routes::rights::router())
        .merge(routes::system::router())
        .split_for_parts();
    let spec = Arc::new(openapi.clone());
    let router = api
        .merge(routes::tracker::router())
        .route("/openapi.json", get(move || async move { Json(spec.as_ref().clone()) }))
        .fallback(|| async { Problem::new(Code::NotFound).detail("no such route") })
        .layer(middleware::from_fn(problem_for_bare_errors))
        .layer(middleware::from_fn_with_state(state.clone(), cors::public_routes))
        .layer(middleware::from_fn(metrics::track))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            tracing::error!("a request handler panicked");
            Problem::new(Code::Internal).into_response()
        }))
        .with_state(state);
    (router, openapi)
}

/// Gives a problem body to 4xx responses produced without one (405 from the router,
/// rejections of layers), so every error a client sees is problem+json.
async fn problem_for_bare_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !status.is_client_error() || response.headers().contains_key(header::CONTENT_TYPE) {
        return response;
    }
    let code = match status {
        StatusCode::METHOD_NOT_ALLOWED => Code::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => Code::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Code::UnsupportedMediaType,
        StatusCode::UNAUTHORIZED => Code::Unauthenticated,
        StatusCode::FORBIDDEN => Code::Forbidden,
        StatusCode::NOT_FOUND => Code::NotFound,
        _ => Code::InvalidRequest,
    };
    let mut problem = Problem::new(code).into_response();
    *problem.status_mut() = status;
    problem
}

/// Serves the API on `listener` until `shutdown` resolves, then finishes in-flight
/// requests and saves the visitors they changed.
pub async fn serve(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (router, _) = router(app.clone());
    let served = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await;
    app.targeting.flush_visitors().await;
    served
}
