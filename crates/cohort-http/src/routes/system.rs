//! Unauthenticated system routes: health, metrics and the OpenAPI document.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::json::Json;
use crate::problem::{Code, Problem, ProblemDocument};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(metrics))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
    /// sqlite or postgres.
    pub store: &'static str,
}

/// Liveness and store reachability.
#[utoipa::path(get, path = "/healthz", tag = "system",
    responses((status = 200, body = Health), (status = 503, body = ProblemDocument)))]
async fn healthz(State(state): State<AppState>) -> Result<Json<Health>, Problem> {
    state.app.store.ping().await.map_err(|e| {
        tracing::warn!(error = %e, "health check failed");
        Problem::new(Code::Unavailable).detail("the store does not answer")
    })?;
    Ok(Json(Health {
        status: "ok",
        store: state.app.store.backend(),
    }))
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "system", responses((status = 200, content_type = "text/plain")))]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let profiles = state.app.profiles.counts();
    metrics::gauge!("cohort_profiles_kept").set(profiles.kept as f64);
    metrics::counter!("cohort_profile_reads_total", "from" => "memory").absolute(profiles.from_memory);
    metrics::counter!("cohort_profile_reads_total", "from" => "store").absolute(profiles.from_store);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
