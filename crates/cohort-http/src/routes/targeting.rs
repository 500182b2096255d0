//! `/v1/targeting/rules`: global targeting rules (the definition format is in
//! `cohort-app/src/targeting/rules.rs` and the README), and `/v1/visitors/{id}`: what
//! cohort keeps of a visitor.

use axum::extract::State;
use axum::http::StatusCode;
use cohort_app::targeting::RuleRecord;
use cohort_core::VisitorId;
use cohort_core::targeting::RuleId;
use cohort_store::StoreError;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::{Admin, Auth, Read};
use crate::extract::{ApiJson, ApiPath};
use crate::json::Json;
use crate::problem::{ApiResult, Problem, ProblemDocument};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, replace, delete))
        .routes(routes!(visitor))
}

/// A targeting rule: its definition as written, with its id.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleBody {
    pub id: i64,
    #[schema(value_type = Object)]
    pub definition: Value,
    pub created_at: String,
    pub updated_at: String,
}

fn body(record: RuleRecord) -> RuleBody {
    let stored = record.stored;
    RuleBody {
        id: stored.id.get(),
        definition: serde_json::from_str(&stored.definition).unwrap_or(Value::Null),
        created_at: stored.created_at.to_rfc3339(),
        updated_at: stored.updated_at.to_rfc3339(),
    }
}

#[utoipa::path(get, path = "/v1/targeting/rules", tag = "targeting", security(("bearer" = ["read"])),
    responses((status = 200, body = Vec<RuleBody>)))]
async fn list(_: Auth<Read>, State(state): State<AppState>) -> ApiResult<Json<Vec<RuleBody>>> {
    let rules = state.app.targeting.rules().await?;
    Ok(Json(rules.into_iter().map(body).collect()))
}

/// Creates a rule; it is checked and compiled first (an invalid one is refused with
/// the field and the reason) and applies to the next request.
#[utoipa::path(post, path = "/v1/targeting/rules", tag = "targeting", request_body = Object,
    security(("bearer" = ["admin"])),
    responses((status = 201, body = RuleBody), (status = 400, body = ProblemDocument),
        (status = 422, body = ProblemDocument)))]
async fn create(
    _: Auth<Admin>,
    State(state): State<AppState>,
    ApiJson(definition): ApiJson<Value>,
) -> ApiResult<(StatusCode, Json<RuleBody>)> {
    let created = state.app.targeting.create_rule(&definition).await?;
    Ok((StatusCode::CREATED, Json(body(created))))
}

#[utoipa::path(get, path = "/v1/targeting/rules/{id}", tag = "targeting", params(("id" = i64, Path)),
    security(("bearer" = ["read"])),
    responses((status = 200, body = RuleBody), (status = 404, body = ProblemDocument)))]
async fn get_one(_: Auth<Read>, State(state): State<AppState>, ApiPath(id): ApiPath<i64>) -> ApiResult<Json<RuleBody>> {
    let id = RuleId::new(id);
    let found = state.app.targeting.rule(id).await?;
    found
        .map(|r| Json(body(r)))
        .ok_or_else(|| StoreError::not_found("targeting rule", id).into())
}

#[utoipa::path(put, path = "/v1/targeting/rules/{id}", tag = "targeting", params(("id" = i64, Path)),
    request_body = Object, security(("bearer" = ["admin"])),
    responses((status = 200, body = RuleBody), (status = 400, body = ProblemDocument),
        (status = 404, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
async fn replace(
    _: Auth<Admin>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(definition): ApiJson<Value>,
) -> ApiResult<Json<RuleBody>> {
    let replaced = state.app.targeting.replace_rule(RuleId::new(id), &definition).await?;
    Ok(Json(body(replaced)))
}

#[utoipa::path(delete, path = "/v1/targeting/rules/{id}", tag = "targeting", params(("id" = i64, Path)),
    security(("bearer" = ["admin"])),
    responses((status = 204), (status = 404, body = ProblemDocument)))]
async fn delete(_: Auth<Admin>, State(state): State<AppState>, ApiPath(id): ApiPath<i64>) -> ApiResult<StatusCode> {
    state.app.targeting.delete_rule(RuleId::new(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A target group weight or a tracked segment count.
#[derive(Debug, Serialize, ToSchema)]
pub struct Count {
    pub id: i64,
    pub count: u32,
}

/// What cohort keeps of a visitor.
#[derive(Debug, Serialize, ToSchema)]
pub struct VisitorBody {
    pub id: String,
    /// The customer it is linked to (it logged in as).
    pub customer: Option<String>,
    /// Weight per target group (applying or not).
    pub target_groups: Vec<Count>,
    pub tracked_segments: Vec<Count>,
    pub visited_pages: u32,
    pub sessions: u32,
    pub session_started: String,
    pub last_seen: String,
}

#[utoipa::path(get, path = "/v1/visitors/{id}", tag = "targeting", params(("id" = String, Path)),
    security(("bearer" = ["read"])),
    responses((status = 200, body = VisitorBody), (status = 404, body = ProblemDocument)))]
async fn visitor(
    _: Auth<Read>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<VisitorBody>> {
    let id = VisitorId::parse("id", &id).map_err(Problem::invalid)?;
    let state_of = state.app.targeting.visitors.get(&id).await?;
    let v = state_of.ok_or_else(|| StoreError::not_found("visitor", &id))?;
    Ok(Json(VisitorBody {
        id: id.into_string(),
        customer: v.customer.map(|c| c.into_string()),
        target_groups: v
            .target_groups
            .iter()
            .map(|(g, c)| Count { id: g.get(), count: *c })
            .collect(),
        tracked_segments: v
            .tracked_segments
            .iter()
            .map(|(s, c)| Count { id: s.get(), count: *c })
            .collect(),
        visited_pages: v.visited_pages,
        sessions: v.sessions,
        session_started: v.session_started.to_rfc3339(),
        last_seen: v.last_seen.to_rfc3339(),
    }))
}
