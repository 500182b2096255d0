//! `/v1/customers`: known customers, their attributes and their segments.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use cohort_app::import::attributes_from_json;
use cohort_core::{
    AttributeName, Customer, CustomerId, CustomerPatch, Invalid, Membership, MembershipSource, NewCustomer, SegmentAdd,
    SegmentChange, SegmentId, Timestamp,
};
use cohort_store::codec::{attribute_from_json, attributes_to_json};
use cohort_store::{CustomerFilter, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Listed, page_request};
use crate::AppState;
use crate::auth::{Admin, Auth, Ingest, Read};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::json::Json;
use crate::problem::{ApiResult, Problem, ProblemDocument};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, update, delete))
        .routes(routes!(segments, change_segments))
        .routes(routes!(crate::bulk::bulk_upsert))
}

/// A customer.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerBody {
    /// The customer's id in the shop's own systems.
    pub id: String,
    /// Typed attributes: strings, numbers, booleans, dates (`YYYY-MM-DD`) and lists.
    #[schema(value_type = Object)]
    pub attributes: Value,
    pub active: bool,
    pub profiling_consent: bool,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

impl From<Customer> for CustomerBody {
    fn from(c: Customer) -> Self {
        Self {
            id: c.id.into_string(),
            attributes: attributes_to_json(&c.attributes),
            active: c.active,
            profiling_consent: c.profiling_consent,
            created_at: c.created_at.to_rfc3339(),
            updated_at: c.updated_at.to_rfc3339(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCustomer {
    pub id: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default)]
    pub profiling_consent: bool,
}

fn yes() -> bool {
    true
}

impl TryFrom<CreateCustomer> for NewCustomer {
    type Error = Invalid;

    fn try_from(c: CreateCustomer) -> Result<Self, Invalid> {
        let id = CustomerId::parse("id", &c.id)?;
        NewCustomer::new(id, attributes_from_json(&c.attributes)?, c.active, c.profiling_consent)
    }
}

/// A partial update: attributes are merged, `null` removes one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCustomer {
    #[serde(default)]
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
    pub active: Option<bool>,
    pub profiling_consent: Option<bool>,
}

impl TryFrom<UpdateCustomer> for CustomerPatch {
    type Error = Invalid;

    fn try_from(u: UpdateCustomer) -> Result<Self, Invalid> {
        let mut attributes = BTreeMap::new();
        for (k, v) in &u.attributes {
            let field = format!("attributes.{k}");
            let value = if v.is_null() {
                None
            } else {
                Some(attribute_from_json(&field, v)?)
            };
            attributes.insert(AttributeName::parse(&field, k)?, value);
        }
        Ok(Self {
            attributes,
            active: u.active,
            profiling_consent: u.profiling_consent,
        })
    }
}

/// Query parameters of the customer list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CustomerListParams {
    /// Only customers currently in this segment.
    pub segment: Option<i64>,
    pub active: Option<bool>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// A customer's membership in a segment.
#[derive(Debug, Serialize, ToSchema)]
pub struct MembershipBody {
    pub segment: i64,
    /// manual, calculated, external or tracked.
    pub source: &'static str,
    pub assigned_at: String,
    /// How often the segment was applied to the customer.
    pub application_counter: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

impl From<Membership> for MembershipBody {
    fn from(m: Membership) -> Self {
        Self {
            segment: m.segment.get(),
            source: m.source.as_str(),
            assigned_at: m.assigned_at.to_rfc3339(),
            application_counter: m.application_counter,
            expires_at: m.expires_at.map(Timestamp::to_rfc3339),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SegmentsBody {
    pub segments: Vec<MembershipBody>,
}

/// A segment to add: its id, or an object with options.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum AddItem {
    Id(i64),
    Detailed(AddDetailed),
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddDetailed {
    pub segment: i64,
    /// manual (default), calculated, external or tracked.
    pub source: Option<String>,
    /// RFC 3339; the membership stops counting then.
    pub expires_at: Option<String>,
}

/// Segments to add and remove, applied together or not at all.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeSegments {
    #[serde(default)]
    pub add: Vec<AddItem>,
    #[serde(default)]
    pub remove: Vec<i64>,
}

impl TryFrom<ChangeSegments> for SegmentChange {
    type Error = Invalid;

    fn try_from(c: ChangeSegments) -> Result<Self, Invalid> {
        let add = c
            .add
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                AddItem::Id(id) => Ok(SegmentAdd {
                    segment: SegmentId::new(id),
                    source: MembershipSource::Manual,
                    expires_at: None,
                }),
                AddItem::Detailed(d) => Ok(SegmentAdd {
                    segment: SegmentId::new(d.segment),
                    source: d
                        .source
                        .map(|s| MembershipSource::parse(&format!("add[{i}].source"), &s))
                        .transpose()?
                        .unwrap_or(MembershipSource::Manual),
                    expires_at: d
                        .expires_at
                        .map(|t| Timestamp::parse(&format!("add[{i}].expires_at"), &t))
                        .transpose()?,
                }),
            })
            .collect::<Result<Vec<_>, Invalid>>()?;
        SegmentChange::new(add, c.remove.into_iter().map(SegmentId::new).collect())
    }
}

fn customer_id(id: &str) -> Result<CustomerId, Problem> {
    CustomerId::parse("id", id).map_err(Problem::invalid)
}

#[utoipa::path(get, path = "/v1/customers", tag = "customers", params(CustomerListParams),
    security(("bearer" = ["read"])),
    responses((status = 200, body = Listed<CustomerBody>), (status = 400, body = ProblemDocument)))]
async fn list(
    _: Auth<Read>,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<CustomerListParams>,
) -> ApiResult<Json<Listed<CustomerBody>>> {
    let page = page_request(q.limit, q.cursor.as_deref())?;
    let filter = CustomerFilter {
        segment: q.segment.map(SegmentId::new),
        active: q.active,
    };
    let found = state.app.store.list_customers(&filter, page, state.app.now()).await?;
    Ok(Json(Listed::from_page(found, CustomerBody::from)))
}

#[utoipa::path(post, path = "/v1/customers", tag = "customers", request_body = CreateCustomer,
    security(("bearer" = ["ingest"])),
    responses((status = 201, body = CustomerBody), (status = 400, body = ProblemDocument), (status = 409, body = ProblemDocument)))]
async fn create(
    _: Auth<Ingest>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateCustomer>,
) -> ApiResult<(StatusCode, Json<CustomerBody>)> {
    let new = NewCustomer::try_from(body)?;
    let created = state.app.store.create_customer(&new, state.app.now()).await?;
    state.app.profiles.forget(&created.id);
    let event = cohort_core::automation::Event::CustomerCreated;
    state.app.automation.react_logged(&event, &created.id).await;
    Ok((StatusCode::CREATED, Json(created.into())))
}

#[utoipa::path(get, path = "/v1/customers/{id}", tag = "customers", params(("id" = String, Path)),
    security(("bearer" = ["read"])),
    responses((status = 200, body = CustomerBody), (status = 404, body = ProblemDocument)))]
async fn get_one(
    _: Auth<Read>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<CustomerBody>> {
    let id = customer_id(&id)?;
    let found = state.app.store.customer(&id).await?;
    found
        .map(|c| Json(c.into()))
        .ok_or_else(|| StoreError::not_found("customer", id).into())
}

#[utoipa::path(patch, path = "/v1/customers/{id}", tag = "customers", params(("id" = String, Path)),
    request_body = UpdateCustomer, security(("bearer" = ["ingest"])),
    responses((status = 200, body = CustomerBody), (status = 400, body = ProblemDocument), (status = 404, body = ProblemDocument)))]
async fn update(
    _: Auth<Ingest>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateCustomer>,
) -> ApiResult<Json<CustomerBody>> {
    let id = customer_id(&id)?;
    let patch = CustomerPatch::try_from(body)?;
    let updated = state.app.store.update_customer(&id, &patch, state.app.now()).await?;
    state.app.profiles.forget(&id);
    let event = cohort_core::automation::Event::CustomerUpdated;
    state.app.automation.react_logged(&event, &updated.id).await;
    Ok(Json(updated.into()))
}

#[utoipa::path(delete, path = "/v1/customers/{id}", tag = "customers", params(("id" = String, Path)),
    security(("bearer" = ["admin"])),
    responses((status = 204), (status = 404, body = ProblemDocument)))]
async fn delete(_: Auth<Admin>, State(state): State<AppState>, ApiPath(id): ApiPath<String>) -> ApiResult<StatusCode> {
    let id = customer_id(&id)?;
    state.app.store.delete_customer(&id, state.app.now()).await?;
    state.app.profiles.forget(&id);
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/customers/{id}/segments", tag = "customers", params(("id" = String, Path)),
    security(("bearer" = ["read"])),
    responses((status = 200, body = SegmentsBody), (status = 404, body = ProblemDocument)))]
async fn segments(
    _: Auth<Read>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<SegmentsBody>> {
    let id = customer_id(&id)?;
    let memberships = state.app.store.customer_segments(&id, state.app.now()).await?;
    Ok(Json(SegmentsBody {
        segments: memberships.into_iter().map(Into::into).collect(),
    }))
}

#[utoipa::path(post, path = "/v1/customers/{id}/segments", tag = "customers", params(("id" = String, Path)),
    request_body = ChangeSegments, security(("bearer" = ["ingest"])),
    responses((status = 200, body = SegmentsBody), (status = 400, body = ProblemDocument), (status = 404, body = ProblemDocument),
        (status = 422, body = ProblemDocument)))]
async fn change_segments(
    _: Auth<Ingest>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ChangeSegments>,
) -> ApiResult<Json<SegmentsBody>> {
    let id = customer_id(&id)?;
    let change = SegmentChange::try_from(body)?;
    let memberships = state.app.store.change_segments(&id, &change, state.app.now()).await?;
    state.app.profiles.forget(&id);
    Ok(Json(SegmentsBody {
        segments: memberships.into_iter().map(Into::into).collect(),
    }))
}
