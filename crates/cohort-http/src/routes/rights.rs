//! Customer data rights: everything cohort keeps about a customer, as one export, and
//! the log of deleted customers (a deletion removes everything else).

use axum::extract::State;
use cohort_core::{ActivityFilter, CustomerId, PageRequest, ServiceId, Timestamp};
use cohort_store::StoreError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::activities::ActivityBody;
use super::customers::CustomerBody;
use super::services::ProvidedBody;
use super::{Listed, page_request};
use crate::AppState;
use crate::auth::{Admin, Auth, Read};
use crate::extract::{ApiPath, ApiQuery};
use crate::json::Json;
use crate::problem::{ApiResult, Code, Problem, ProblemDocument};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(export)).routes(routes!(deletions))
}

/// Everything cohort keeps about one customer.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerExport {
    pub customer: CustomerBody,
    /// Memberships in every stored service, expired ones included.
    pub memberships: Vec<ProvidedBody>,
    pub activities: Vec<ActivityBody>,
}

#[utoipa::path(get, path = "/v1/customers/{id}/export", tag = "customers", params(("id" = String, Path)),
    security(("bearer" = ["admin"])),
    responses((status = 200, body = CustomerExport), (status = 404, body = ProblemDocument)))]
async fn export(
    _: Auth<Admin>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<CustomerExport>> {
    let id = CustomerId::parse("id", &id).map_err(Problem::invalid)?;
    let store = &state.app.store;
    let customer = store
        .customer(&id)
        .await?
        .ok_or_else(|| StoreError::not_found("customer", &id))?;
    let services: Vec<ServiceId> = store.list_services().await?.into_iter().map(|s| s.id).collect();
    let memberships = store
        // Expired memberships are kept too: "now" before every expiry lists them all.
        .customer_service_segments(&id, &services, Timestamp::from_unix_micros(i64::MIN))
        .await?
        .into_iter()
        .map(|(membership, grouped)| {
            ProvidedBody::from(cohort_app::provider::ProvidedSegment {
                qualified: cohort_core::QualifiedSegment {
                    service: grouped.group.service,
                    group: Some(grouped.group.reference),
                    segment: grouped.segment.reference,
                },
                name: grouped.segment.name.into_string(),
                membership: Some(membership),
            })
        })
        .collect();
    let mut activities = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_activities(&id, &ActivityFilter::default(), PageRequest::new(after, Some(1_000))?)
            .await?;
        activities.extend(page.items.into_iter().map(ActivityBody::from));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    Ok(Json(CustomerExport {
        customer: customer.into(),
        memberships,
        activities,
    }))
}

/// Query parameters of the deletions log.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeletionParams {
    /// RFC 3339; deletions at or after this time (default: all).
    pub since: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// A deleted customer.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeletionBody {
    pub customer: String,
    pub deleted_at: String,
}

#[utoipa::path(get, path = "/v1/deletions", tag = "customers", params(DeletionParams), security(("bearer" = ["read"])),
    responses((status = 200, body = Listed<DeletionBody>), (status = 400, body = ProblemDocument)))]
async fn deletions(
    _: Auth<Read>,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<DeletionParams>,
) -> ApiResult<Json<Listed<DeletionBody>>> {
    let since = q
        .since
        .map(|t| Timestamp::parse("since", &t))
        .transpose()
        .map_err(|e| Problem::new(Code::InvalidQuery).field(e.field).detail(e.reason))?
        .unwrap_or(Timestamp::from_unix_micros(i64::MIN));
    let page = page_request(q.limit, q.cursor.as_deref())?;
    let found = state.app.store.deletions(since, page).await?;
    Ok(Json(Listed::from_page(found, |d| DeletionBody {
        customer: d.customer.into_string(),
        deleted_at: d.deleted_at.to_rfc3339(),
    })))
}
