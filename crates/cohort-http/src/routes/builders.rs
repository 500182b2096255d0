//! `/v1/segment-builders`: calculated segments defined as data; and
//! `/v1/segment-builds`: full builds run as background jobs with their progress.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use cohort_app::jobs::JobView;
use cohort_core::{BuilderId, Name, SegmentBuilder, SegmentGroupId};
use cohort_store::StoreError;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::{Admin, Auth, Read};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::json::Json;
use crate::problem::{ApiResult, Code, Problem, ProblemDocument};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, update, delete))
        .routes(routes!(list_builds, start_build))
        .routes(routes!(get_build))
}

/// A segment builder.
#[derive(Debug, Serialize, ToSchema)]
pub struct BuilderBody {
    pub id: i64,
    pub name: String,
    /// The calculated segment group it writes into (and owns).
    pub group: i64,
    /// The definition: `kind` is one of `age_groups`, `attribute_mapping`,
    /// `activity_count`, `rfm`, `conditions` (see the README for each).
    #[schema(value_type = Object)]
    pub definition: Value,
    /// A five-field cron expression (UTC) for scheduled full builds.
    pub schedule: Option<String>,
    pub enabled: bool,
    /// When the last full build started (RFC 3339): it saw every change made before.
    pub built_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<SegmentBuilder> for BuilderBody {
    fn from(b: SegmentBuilder) -> Self {
        Self {
            id: b.id.get(),
            name: b.name.into_string(),
            group: b.group.get(),
            definition: serde_json::from_str(&b.definition).unwrap_or(Value::Null),
            schedule: b.schedule,
            enabled: b.enabled,
            built_at: b.built_at.map(|t| t.to_rfc3339()),
            created_at: b.created_at.to_rfc3339(),
            updated_at: b.updated_at.to_rfc3339(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBuilder {
    pub name: String,
    pub group: i64,
    #[schema(value_type = Object)]
    pub definition: Value,
    pub schedule: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// A field that may be given as `null` to clear it.
fn nullable<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBuilder {
    pub name: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub definition: Option<Value>,
    /// `null` removes the schedule.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub schedule: Option<Option<String>>,
    pub enabled: Option<bool>,
}

#[utoipa::path(get, path = "/v1/segment-builders", tag = "segment builders",
    security(("bearer" = ["read"])),
    responses((status = 200, body = Vec<BuilderBody>)))]
async fn list(_: Auth<Read>, State(state): State<AppState>) -> ApiResult<Json<Vec<BuilderBody>>> {
    let all = state.app.store.list_builders().await?;
    Ok(Json(all.into_iter().map(BuilderBody::from).collect()))
}

#[utoipa::path(post, path = "/v1/segment-builders", tag = "segment builders", request_body = CreateBuilder,
    security(("bearer" = ["admin"])),
    responses((status = 201, body = BuilderBody), (status = 400, body = ProblemDocument),
        (status = 409, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
async fn create(
    _: Auth<Admin>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateBuilder>,
) -> ApiResult<(StatusCode, Json<BuilderBody>)> {
    let name = Name::parse("name", &body.name)?;
    let created = state
        .app
        .builds
        .create(
            name,
            SegmentGroupId::new(body.group),
            &body.definition,
            body.schedule,
            body.enabled,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

#[utoipa::path(get, path = "/v1/segment-builders/{id}", tag = "segment builders", params(("id" = i64, Path)),
    security(("bearer" = ["read"])),
    responses((status = 200, body = BuilderBody), (status = 404, body = ProblemDocument)))]
async fn get_one(
    _: Auth<Read>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<BuilderBody>> {
    let id = BuilderId::new(id);
    let found = state.app.store.builder(id).await?;
    found
        .map(|b| Json(b.into()))
        .ok_or_else(|| StoreError::not_found("segment builder", id).into())
}

#[utoipa::path(patch, path = "/v1/segment-builders/{id}", tag = "segment builders", params(("id" = i64, Path)),
    request_body = UpdateBuilder, security(("bearer" = ["admin"])),
    responses((status = 200, body = BuilderBody), (status = 400, body = ProblemDocument),
        (status = 404, body = ProblemDocument)))]
async fn update(
    _: Auth<Admin>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<UpdateBuilder>,
) -> ApiResult<Json<BuilderBody>> {
    let name = body.name.map(|n| Name::parse("name", &n)).transpose()?;
    let updated = state
        .app
        .builds
        .update(
            BuilderId::new(id),
            name,
            body.definition.as_ref(),
            body.schedule,
            body.enabled,
        )
        .await?;
    Ok(Json(updated.into()))
}

#[utoipa::path(delete, path = "/v1/segment-builders/{id}", tag = "segment builders", params(("id" = i64, Path)),
    security(("bearer" = ["admin"])),
    responses((status = 204), (status = 404, body = ProblemDocument)))]
async fn delete(_: Auth<Admin>, State(state): State<AppState>, ApiPath(id): ApiPath<i64>) -> ApiResult<StatusCode> {
    state.app.store.delete_builder(BuilderId::new(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A full build running in the background, or finished.
#[derive(Debug, Serialize, ToSchema)]
pub struct BuildBody {
    pub id: u64,
    /// The builder built; absent: every enabled builder.
    pub builder: Option<i64>,
    /// `running`, `succeeded` or `failed`.
    pub status: String,
    /// `starting`, `evaluating` or `scoring` (RFM scales).
    pub phase: String,
    /// Customers gone through in this phase, of `total`.
    pub processed: u64,
    pub total: u64,
    /// Memberships written and removed (when finished).
    pub added: u64,
    pub removed: u64,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub error: Option<String>,
}

impl From<JobView> for BuildBody {
    fn from(j: JobView) -> Self {
        Self {
            id: j.id,
            builder: j.builder.map(BuilderId::get),
            status: j.status.as_str().to_owned(),
            phase: j.phase.to_owned(),
            processed: j.processed,
            total: j.total,
            added: j.added,
            removed: j.removed,
            started_at: j.started_at.to_rfc3339(),
            finished_at: j.finished_at.map(|t| t.to_rfc3339()),
            error: j.error,
        }
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartBuild {
    /// Build only this builder (enabled or not); absent: every enabled builder.
    pub builder: Option<i64>,
}

#[utoipa::path(post, path = "/v1/segment-builds", tag = "segment builders", request_body = StartBuild,
    security(("bearer" = ["admin"])),
    responses((status = 202, body = BuildBody), (status = 404, body = ProblemDocument),
        (status = 409, body = ProblemDocument)))]
async fn start_build(
    _: Auth<Admin>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<StartBuild>,
) -> ApiResult<(StatusCode, Json<BuildBody>)> {
    let builder = body.builder.map(BuilderId::new);
    if let Some(id) = builder
        && state.app.store.builder(id).await?.is_none()
    {
        return Err(Problem::new(Code::NotFound)
            .field("builder")
            .detail(format!("segment builder {id} does not exist")));
    }
    let job = state.app.jobs.start(builder)?;
    Ok((StatusCode::ACCEPTED, Json(job.into())))
}

#[utoipa::path(get, path = "/v1/segment-builds", tag = "segment builders",
    security(("bearer" = ["read"])),
    responses((status = 200, body = Vec<BuildBody>)))]
async fn list_builds(_: Auth<Read>, State(state): State<AppState>) -> Json<Vec<BuildBody>> {
    Json(state.app.jobs.list().into_iter().map(BuildBody::from).collect())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct WaitParams {
    /// Answer once the build has finished, or after this many milliseconds (at most 30,000).
    pub wait_ms: Option<u64>,
}

#[utoipa::path(get, path = "/v1/segment-builds/{id}", tag = "segment builders",
    params(("id" = u64, Path), WaitParams), security(("bearer" = ["read"])),
    responses((status = 200, body = BuildBody), (status = 400, body = ProblemDocument),
        (status = 404, body = ProblemDocument)))]
async fn get_build(
    _: Auth<Read>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<u64>,
    ApiQuery(q): ApiQuery<WaitParams>,
) -> ApiResult<Json<BuildBody>> {
    let wait = q.wait_ms.unwrap_or(0);
    if wait > 30_000 {
        return Err(Problem::new(Code::InvalidQuery)
            .field("wait_ms")
            .detail("at most 30000"));
    }
    let found = if wait == 0 {
        state.app.jobs.get(id)
    } else {
        state.app.jobs.wait(id, Duration::from_millis(wait)).await
    };
    found
        .map(|j| Json(j.into()))
        .ok_or_else(|| StoreError::not_found("build", id).into())
}
