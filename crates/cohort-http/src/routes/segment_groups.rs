//! `/v1/segment-groups`: groups of segments such as age group or interests.

use axum::extract::State;
use axum::http::StatusCode;
use cohort_core::segment::NewSegmentGroup;
use cohort_core::{
    Invalid, Name, NameFilter, ReferenceKey, SegmentGroup, SegmentGroupId, SegmentGroupPatch, ServiceId,
};
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

/// A segment group.
#[derive(Debug, Serialize, ToSchema)]
pub struct SegmentGroupBody {
    pub id: i64,
    /// The segmentation service whose segments these are.
    pub service: String,
    pub name: String,
    /// Programmatic key, unique among groups.
    pub reference: String,
    /// Maintained by segment builders.
    pub calculated: bool,
    /// At most one segment of the group per customer.
    pub exclusive: bool,
}

impl From<SegmentGroup> for SegmentGroupBody {
    fn from(g: SegmentGroup) -> Self {
        Self {
            id: g.id.get(),
            service: g.service.to_string(),
            name: g.name.into_string(),
            reference: g.reference.into_string(),
            calculated: g.calculated,
            exclusive: g.exclusive,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSegmentGroup {
    /// `standard` (default) or an import service.
    pub service: Option<String>,
    pub name: String,
    /// Defaults to a slug of the name.
    pub reference: Option<String>,
    #[serde(default)]
    pub calculated: bool,
    #[serde(default)]
    pub exclusive: bool,
}

/// The given reference, or one derived from the name.
pub(crate) fn reference_or_slug(reference: Option<&str>, name: &Name) -> Result<ReferenceKey, Invalid> {
    match reference {
        Some(r) => ReferenceKey::parse("reference", r),
        None => ReferenceKey::from_name(name).ok_or_else(|| {
            Invalid::new(
                "reference",
                "the name has no letters or digits to derive a reference from: give one",
            )
        }),
    }
}

impl TryFrom<CreateSegmentGroup> for NewSegmentGroup {
    type Error = Invalid;

    fn try_from(c: CreateSegmentGroup) -> Result<Self, Invalid> {
        let service = c
            .service
            .map(|s| ServiceId::parse("service", &s))
            .transpose()?
            .unwrap_or_else(ServiceId::standard);
        let name = Name::parse("name", &c.name)?;
        let reference = reference_or_slug(c.reference.as_deref(), &name)?;
        Ok(Self {
            service,
            name,
            reference,
            calculated: c.calculated,
            exclusive: c.exclusive,
        })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSegmentGroup {
    pub name: Option<String>,
    pub reference: Option<String>,
    pub calculated: Option<bool>,
    pub exclusive: Option<bool>,
}

impl TryFrom<UpdateSegmentGroup> for SegmentGroupPatch {
    type Error = Invalid;

    fn try_from(u: UpdateSegmentGroup) -> Result<Self, Invalid> {
        Ok(Self {
            name: u.name.map(|n| Name::parse("name", &n)).transpose()?,
            reference: u.reference.map(|r| ReferenceKey::parse("reference", &r)).transpose()?,
            calculated: u.calculated,
            exclusive: u.exclusive,
        })
    }
}

#[utoipa::path(get, path = "/v1/segment-groups", tag = "segments", params(NameListParams),
    security(("bearer" = ["read"])),
    responses((status = 200, body = Listed<SegmentGroupBody>), (status = 400, body = ProblemDocument)))]
async fn list(
    _: Auth<Read>,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<NameListParams>,
) -> ApiResult<Json<Listed<SegmentGroupBody>>> {
    let page = page_request(q.limit, q.cursor.as_deref())?;
    let found = state
        .app
        .store
        .list_segment_groups(&NameFilter::new(q.name), page)
        .await?;
    Ok(Json(Listed::from_page(found, SegmentGroupBody::from)))
}

#[utoipa::path(post, path = "/v1/segment-groups", tag = "segments", request_body = CreateSegmentGroup,
    security(("bearer" = ["admin"])),
    responses((status = 201, body = SegmentGroupBody), (status = 400, body = ProblemDocument), (status = 409, body = ProblemDocument)))]
async fn create(
    _: Auth<Admin>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateSegmentGroup>,
) -> ApiResult<(StatusCode, Json<SegmentGroupBody>)> {
    let new = NewSegmentGroup::try_from(body)?;
    let created = state.app.store.create_segment_group(&new).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

#[utoipa::path(get, path = "/v1/segment-groups/{id}", tag = "segments", params(("id" = i64, Path)),
    security(("bearer" = ["read"])),
    responses((status = 200, body = SegmentGroupBody), (status = 404, body = ProblemDocument)))]
async fn get_one(
    _: Auth<Read>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<SegmentGroupBody>> {
    let id = SegmentGroupId::new(id);
    let found = state.app.store.segment_group(id).await?;
    found
        .map(|g| Json(g.into()))
        .ok_or_else(|| StoreError::not_found("segment group", id).into())
}

#[utoipa::path(patch, path = "/v1/segment-groups/{id}", tag = "segments", params(("id" = i64, Path)),
    request_body = UpdateSegmentGroup, security(("bearer" = ["admin"])),
    responses((status = 200, body = SegmentGroupBody), (status = 400, body = ProblemDocument), (status = 404, body = ProblemDocument),
        (status = 409, body = ProblemDocument)))]
async fn update(
    _: Auth<Admin>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<UpdateSegmentGroup>,
) -> ApiResult<Json<SegmentGroupBody>> {
    let patch = SegmentGroupPatch::try_from(body)?;
    let updated = state
        .app
        .store
        .update_segment_group(SegmentGroupId::new(id), patch)
        .await?;
    // Kept profiles name segments by their group's reference.
    state.app.profiles.forget_all();
    Ok(Json(updated.into()))
}

#[utoipa::path(delete, path = "/v1/segment-groups/{id}", tag = "segments", params(("id" = i64, Path)),
    security(("bearer" = ["admin"])),
    responses((status = 204), (status = 404, body = ProblemDocument), (status = 409, body = ProblemDocument)))]
async fn delete(_: Auth<Admin>, State(state): State<AppState>, ApiPath(id): ApiPath<i64>) -> ApiResult<StatusCode> {
    state.app.store.delete_segment_group(SegmentGroupId::new(id)).await?;
    state.app.profiles.forget_all();
    Ok(StatusCode::NO_CONTENT)
}
