//! `/v1/segments`: the characteristics customers are sorted by.

use axum::extract::State;
use axum::http::StatusCode;
use cohort_core::segment::NewSegment;
use cohort_core::{Invalid, Name, NameFilter, ReferenceKey, Segment, SegmentGroupId, SegmentId, SegmentPatch};
use cohort_store::{SegmentFilter, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::segment_groups::reference_or_slug;
use super::target_groups::TargetGroupBody;
use super::{Listed, page_request};
use crate::AppState;
use crate::auth::{Admin, Auth, Read};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::json::Json;
use crate::problem::{ApiResult, ProblemDocument};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, update, delete))
        .routes(routes!(use_as_target_group, stop_as_target_group))
}

/// A segment.
#[derive(Debug, Serialize, ToSchema)]
pub struct SegmentBody {
    pub id: i64,
    /// Id of its segment group.
    pub group: i64,
    pub name: String,
    /// Programmatic key, unique within the group.
    pub reference: String,
    pub calculated: bool,
}

impl From<Segment> for SegmentBody {
    fn from(s: Segment) -> Self {
        Self {
            id: s.id.get(),
            group: s.group.get(),
            name: s.name.into_string(),
            reference: s.reference.into_string(),
            calculated: s.calculated,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSegment {
    pub group: i64,
    pub name: String,
    /// Defaults to a slug of the name.
    pub reference: Option<String>,
    #[serde(default)]
    pub calculated: bool,
}

impl TryFrom<CreateSegment> for NewSegment {
    type Error = Invalid;

    fn try_from(c: CreateSegment) -> Result<Self, Invalid> {
        let name = Name::parse("name", &c.name)?;
        let reference = reference_or_slug(c.reference.as_deref(), &name)?;
        Ok(Self {
            group: SegmentGroupId::new(c.group),
            name,
            reference,
            calculated: c.calculated,
        })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSegment {
    pub group: Option<i64>,
    pub name: Option<String>,
    pub reference: Option<String>,
    pub calculated: Option<bool>,
}

impl TryFrom<UpdateSegment> for SegmentPatch {
    type Error = Invalid;

    fn try_from(u: UpdateSegment) -> Result<Self, Invalid> {
        Ok(Self {
            group: u.group.map(SegmentGroupId::new),
            name: u.name.map(|n| Name::parse("name", &n)).transpose()?,
            reference: u.reference.map(|r| ReferenceKey::parse("reference", &r)).transpose()?,
            calculated: u.calculated,
        })
    }
}

/// Query parameters of the segment list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SegmentListParams {
    /// Case-insensitive part of the name.
    pub name: Option<String>,
    /// Only segments of this group.
    pub group: Option<i64>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/segments", tag = "segments", params(SegmentListParams),
    security(("bearer" = ["read"])),
    responses((status = 200, body = Listed<SegmentBody>), (status = 400, body = ProblemDocument)))]
async fn list(
    _: Auth<Read>,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<SegmentListParams>,
) -> ApiResult<Json<Listed<SegmentBody>>> {
    let page = page_request(q.limit, q.cursor.as_deref())?;
    let filter = SegmentFilter {
        name: NameFilter::new(q.name),
        group: q.group.map(SegmentGroupId::new),
    };
    let found = state.app.store.list_segments(&filter, page).await?;
    Ok(Json(Listed::from_page(found, SegmentBody::from)))
}

#[utoipa::path(post, path = "/v1/segments", tag = "segments", request_body = CreateSegment,
    security(("bearer" = ["admin"])),
    responses((status = 201, body = SegmentBody), (status = 400, body = ProblemDocument), (status = 409, body = ProblemDocument),
        (status = 422, body = ProblemDocument)))]
async fn create(
    _: Auth<Admin>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateSegment>,
) -> ApiResult<(StatusCode, Json<SegmentBody>)> {
    let new = NewSegment::try_from(body)?;
    let created = state.app.store.create_segment(&new).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

#[utoipa::path(get, path = "/v1/segments/{id}", tag = "segments", params(("id" = i64, Path)),
    security(("bearer" = ["read"])),
    responses((status = 200, body = SegmentBody), (status = 404, body = ProblemDocument)))]
async fn get_one(
    _: Auth<Read>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<SegmentBody>> {
    let id = SegmentId::new(id);
    let found = state.app.store.segment(id).await?;
    found
        .map(|s| Json(s.into()))
        .ok_or_else(|| StoreError::not_found("segment", id).into())
}

#[utoipa::path(patch, path = "/v1/segments/{id}", tag = "segments", params(("id" = i64, Path)),
    request_body = UpdateSegment, security(("bearer" = ["admin"])),
    responses((status = 200, body = SegmentBody), (status = 400, body = ProblemDocument), (status = 404, body = ProblemDocument),
        (status = 409, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
async fn update(
    _: Auth<Admin>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<UpdateSegment>,
) -> ApiResult<Json<SegmentBody>> {
    let patch = SegmentPatch::try_from(body)?;
    let updated = state.app.store.update_segment(SegmentId::new(id), patch).await?;
    // Kept profiles name segments by their reference and name.
    state.app.profiles.forget_all();
    Ok(Json(updated.into()))
}

#[utoipa::path(delete, path = "/v1/segments/{id}", tag = "segments", params(("id" = i64, Path)),
    security(("bearer" = ["admin"])),
    responses((status = 204), (status = 404, body = ProblemDocument)))]
async fn delete(_: Auth<Admin>, State(state): State<AppState>, ApiPath(id): ApiPath<i64>) -> ApiResult<StatusCode> {
    state.app.store.delete_segment(SegmentId::new(id)).await?;
    state.app.profiles.forget_all();
    Ok(StatusCode::NO_CONTENT)
}

/// Uses the segment as a target group: links a target group named after it (threshold
/// 1, active), or returns the one already linked. Renaming the segment renames it;
/// deleting the segment deletes it.
#[utoipa::path(put, path = "/v1/segments/{id}/target-group", tag = "segments", params(("id" = i64, Path)),
    security(("bearer" = ["admin"])),
    responses((status = 200, body = TargetGroupBody), (status = 404, body = ProblemDocument)))]
async fn use_as_target_group(
    _: Auth<Admin>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<TargetGroupBody>> {
    let id = SegmentId::new(id);
    let linked = state.app.store.use_as_target_group(id, true).await?;
    linked
        .map(|g| Json(g.into()))
        .ok_or_else(|| StoreError::not_found("segment", id).into())
}

/// Stops using the segment as a target group: deletes the linked target group.
#[utoipa::path(delete, path = "/v1/segments/{id}/target-group", tag = "segments", params(("id" = i64, Path)),
    security(("bearer" = ["admin"])),
    responses((status = 204), (status = 404, body = ProblemDocument)))]
async fn stop_as_target_group(
    _: Auth<Admin>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    state.app.store.use_as_target_group(SegmentId::new(id), false).await?;
    Ok(StatusCode::NO_CONTENT)
}
