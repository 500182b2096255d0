//! `/v1/target-groups`: groups of visitors with similar behaviour.

use axum::extract::State;
use axum::http::StatusCode;
use cohort_core::target_group::NewTargetGroup;
use cohort_core::{Invalid, Name, NameFilter, SegmentId, TargetGroup, TargetGroupId, TargetGroupPatch, Threshold};
use cohort_store::StoreError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Listed, NameListParams, page_request};
use crate::AppState;
use crate::auth::{Admin, Auth, Read};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::json::Json;
use crate::problem::{ApiResult, ProblemDocument};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, update, delete))
}

/// A target group.
#[derive(Debug, Serialize, ToSchema)]
pub struct TargetGroupBody {
    pub id: i64,
    pub name: String,
    /// Weight a visitor needs for the group to apply (at least 1).
    pub threshold: u32,
    pub active: bool,
    /// The segment it is linked with (`PUT /v1/segments/{id}/target-group`): named after
    /// it, deleted with it.
    pub segment: Option<i64>,
}

impl From<TargetGroup> for TargetGroupBody {
    fn from(g: TargetGroup) -> Self {
        Self {
            id: g.id.get(),
            name: g.name.into_string(),
            threshold: g.threshold.get(),
            active: g.active,
            segment: g.segment.map(SegmentId::get),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTargetGroup {
    pub name: String,
    /// Defaults to 1.
    pub threshold: Option<i64>,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

impl TryFrom<CreateTargetGroup> for NewTargetGroup {
    type Error = Invalid;

    fn try_from(c: CreateTargetGroup) -> Result<Self, Invalid> {
        Ok(Self {
            name: Name::parse("name", &c.name)?,
            threshold: c
                .threshold
                .map(|t| Threshold::parse("threshold", t))
                .transpose()?
                .unwrap_or(Threshold::DEFAULT),
            active: c.active,
        })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTargetGroup {
    pub name: Option<String>,
    pub threshold: Option<i64>,
    pub active: Option<bool>,
}

impl TryFrom<UpdateTargetGroup> for TargetGroupPatch {
    type Error = Invalid;

    fn try_from(u: UpdateTargetGroup) -> Result<Self, Invalid> {
        Ok(Self {
            name: u.name.map(|n| Name::parse("name", &n)).transpose()?,
            threshold: u.threshold.map(|t| Threshold::parse("threshold", t)).transpose()?,
            active: u.active,
        })
    }
}

#[utoipa::path(get, path = "/v1/target-groups", tag = "target groups", params(NameListParams),
    security(("bearer" = ["read"])),
    responses((status = 200, body = Listed<TargetGroupBody>), (status = 400, body = ProblemDocument)))]
async fn list(
    _: Auth<Read>,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<NameListParams>,
) -> ApiResult<Json<Listed<TargetGroupBody>>> {
    let page = page_request(q.limit, q.cursor.as_deref())?;
    let found = state
        .app
        .store
        .list_target_groups(&NameFilter::new(q.name), page)
        .await?;
    Ok(Json(Listed::from_page(found, TargetGroupBody::from)))
}

#[utoipa::path(post, path = "/v1/target-groups", tag = "target groups", request_body = CreateTargetGroup,
    security(("bearer" = ["admin"])),
    responses((status = 201, body = TargetGroupBody), (status = 400, body = ProblemDocument)))]
async fn create(
    _: Auth<Admin>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateTargetGroup>,
) -> ApiResult<(StatusCode, Json<TargetGroupBody>)> {
    let new = NewTargetGroup::try_from(body)?;
    let created = state.app.store.create_target_group(&new).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

#[utoipa::path(get, path = "/v1/target-groups/{id}", tag = "target groups", params(("id" = i64, Path)),
    security(("bearer" = ["read"])),
    responses((status = 200, body = TargetGroupBody), (status = 404, body = ProblemDocument)))]
async fn get_one(
    _: Auth<Read>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<TargetGroupBody>> {
    let id = TargetGroupId::new(id);
    let found = state.app.store.target_group(id).await?;
    found
        .map(|g| Json(g.into()))
        .ok_or_else(|| StoreError::not_found("target group", id).into())
}

#[utoipa::path(patch, path = "/v1/target-groups/{id}", tag = "target groups", params(("id" = i64, Path)),
    request_body = UpdateTargetGroup, security(("bearer" = ["admin"])),
    responses((status = 200, body = TargetGroupBody), (status = 400, body = ProblemDocument), (status = 404, body = ProblemDocument)))]
async fn update(
    _: Auth<Admin>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<UpdateTargetGroup>,
) -> ApiResult<Json<TargetGroupBody>> {
    let patch = TargetGroupPatch::try_from(body)?;
    Ok(Json(
        state
            .app
            .store
            .update_target_group(TargetGroupId::new(id), patch)
            .await?
            .into(),
    ))
}

#[utoipa::path(delete, path = "/v1/target-groups/{id}", tag = "target groups", params(("id" = i64, Path)),
    security(("bearer" = ["admin"])),
    responses((status = 204), (status = 404, body = ProblemDocument)))]
async fn delete(_: Auth<Admin>, State(state): State<AppState>, ApiPath(id): ApiPath<i64>) -> ApiResult<StatusCode> {
    state.app.store.delete_target_group(TargetGroupId::new(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
