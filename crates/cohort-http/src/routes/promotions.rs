//! `/v1/promotions`: promotion definitions, their code groups (a chosen code or
//! generated codes, exported as CSV), the segment picker, and each application's
//! discount type priorities.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use cohort_app::promotions::codes::CodeSpec;
use cohort_app::promotions::service::definition;
use cohort_core::promotion::record::{CodeGroup, CodeGroupId, PromotionCode, StoredPromotion};
use cohort_core::{ApplicationId, PromotionId, Timestamp};
use cohort_store::StoreError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::{Admin, Auth, Read};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::json::Json;
use crate::problem::{ApiResult, Code, Problem, ProblemDocument};
use crate::routes::services::app_id;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, replace, delete))
        .routes(routes!(segment_picker))
        .routes(routes!(list_code_groups, create_code_group))
        .routes(routes!(get_code_group, delete_code_group))
        .routes(routes!(export_codes))
        .routes(routes!(get_priorities, set_priorities, reset_priorities))
}

/// A promotion: its definition (see the README for every field) with its id, what its
/// budget gave so far, and the segments it targets that one of its applications no
/// longer provides (they qualify no one there).
#[derive(Debug, Serialize, ToSchema)]
pub struct PromotionBody {
    pub id: i64,
    #[schema(value_type = Object)]
    pub definition: Value,
    /// Discount given by placed orders, in the promotion's currency (with a budget).
    pub spent: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

fn body(p: StoredPromotion) -> PromotionBody {
    let digits = definition(&p)
        .ok()
        .filter(|d| d.budget.is_some())
        .and_then(|d| d.currency)
        .map(|c| c.minor_unit_digits());
    PromotionBody {
        id: p.id.get(),
        definition: serde_json::from_str(&p.definition).unwrap_or(Value::Null),
        spent: digits.map(|d| cohort_core::Decimal::new(p.spent, d).to_string()),
        created_at: p.created_at.to_rfc3339(),
        updated_at: p.updated_at.to_rfc3339(),
    }
}

#[utoipa::path(get, path = "/v1/promotions", tag = "promotions", security(("bearer" = ["read"])),
    responses((status = 200, body = Vec<PromotionBody>)))]
async fn list(_: Auth<Read>, State(state): State<AppState>) -> ApiResult<Json<Vec<PromotionBody>>> {
    let all = state.app.store.list_promotions().await?;
    Ok(Json(all.into_iter().map(body).collect()))
}

/// Creates a promotion; cohort assigns its id. Each segment it targets must be
/// available in each of its applications.
#[utoipa::path(post, path = "/v1/promotions", tag = "promotions", request_body = Object,
    security(("bearer" = ["admin"])),
    responses((status = 201, body = PromotionBody), (status = 400, body = ProblemDocument),
        (status = 422, body = ProblemDocument)))]
async fn create(
    _: Auth<Admin>,
    State(state): State<AppState>,
    ApiJson(definition): ApiJson<Value>,
) -> ApiResult<(StatusCode, Json<PromotionBody>)> {
    let created = state.app.promotions.create(&definition).await?;
    Ok((StatusCode::CREATED, Json(body(created))))
}

#[utoipa::path(get, path = "/v1/promotions/{id}", tag = "promotions", params(("id" = i64, Path)),
    security(("bearer" = ["read"])),
    responses((status = 200, body = PromotionBody), (status = 404, body = ProblemDocument)))]
async fn get_one(
    _: Auth<Read>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<PromotionBody>> {
    let id = PromotionId::new(id);
    let found = state.app.store.promotion(id).await?;
    found
        .map(|p| Json(body(p)))
        .ok_or_else(|| StoreError::not_found("promotion", id).into())
}

/// Replaces a promotion's definition; what its budget gave stays.
#[utoipa::path(put, path = "/v1/promotions/{id}", tag = "promotions", params(("id" = i64, Path)),
    request_body = Object, security(("bearer" = ["admin"])),
    responses((status = 200, body = PromotionBody), (status = 400, body = ProblemDocument),
        (status = 404, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
async fn replace(
    _: Auth<Admin>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(definition): ApiJson<Value>,
) -> ApiResult<Json<PromotionBody>> {
    let replaced = state.app.promotions.replace(PromotionId::new(id), &definition).await?;
    Ok(Json(body(replaced)))
}

/// Deletes a promotion with its code groups.
#[utoipa::path(delete, path = "/v1/promotions/{id}", tag = "promotions", params(("id" = i64, Path)),
    security(("bearer" = ["admin"])),
    responses((status = 204), (status = 404, body = ProblemDocument)))]
async fn delete(_: Auth<Admin>, State(state): State<AppState>, ApiPath(id): ApiPath<i64>) -> ApiResult<StatusCode> {
    state.app.promotions.delete(PromotionId::new(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PickerParams {
    /// The promotion's applications, comma-separated.
    pub applications: String,
}

/// A segment a promotion may target.
#[derive(Debug, Serialize, ToSchema)]
pub struct PickableSegment {
    /// `service/group/segment`.
    pub segment: String,
    pub name: String,
}

/// The segment picker: the segments available in every one of the listed applications
/// (only these can be assigned to a promotion offered there).
#[utoipa::path(get, path = "/v1/promotions/segments", tag = "promotions", params(PickerParams),
    security(("bearer" = ["read"])),
    responses((status = 200, body = Vec<PickableSegment>), (status = 400, body = ProblemDocument),
        (status = 404, body = ProblemDocument)))]
async fn segment_picker(
    _: Auth<Read>,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<PickerParams>,
) -> ApiResult<Json<Vec<PickableSegment>>> {
    let apps = q
        .applications
        .split(',')
        .map(|a| ApplicationId::parse("applications", a.trim()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Problem::new(Code::InvalidQuery).field(e.field).detail(e.reason))?;
    let segments = state.app.promotions.available_segments(&apps).await?;
    Ok(Json(
        segments
            .into_iter()
            .map(|(q, name)| PickableSegment {
                segment: q.to_string(),
                name,
            })
            .collect(),
    ))
}

/// Codes of a promotion sharing their limits.
#[derive(Debug, Serialize, ToSchema)]
pub struct CodeGroupBody {
    pub id: i64,
    pub promotion: i64,
    pub name: String,
    /// The pattern its codes were generated from (absent for a chosen code).
    pub pattern: Option<String>,
    pub count: u32,
    /// Uses of each code by anyone (absent: unlimited).
    pub max_uses: Option<u32>,
    /// Uses of each code by one customer (absent: unlimited).
    pub max_uses_per_customer: Option<u32>,
    pub expires_at: Option<String>,
    pub created_at: String,
    /// The chosen code (for a group of one chosen code).
    pub code: Option<String>,
}

fn group_body(g: CodeGroup, code: Option<String>) -> CodeGroupBody {
    CodeGroupBody {
        id: g.id.get(),
        promotion: g.promotion.get(),
        name: g.name.into_string(),
        pattern: g.pattern,
        count: g.count,
        max_uses: g.max_uses,
        max_uses_per_customer: g.max_uses_per_customer,
        expires_at: g.expires_at.map(|t| t.to_rfc3339()),
        created_at: g.created_at.to_rfc3339(),
        code,
    }
}

/// Either `code` (one code chosen by you) or `pattern` and `count` (generated codes:
/// in the pattern `#` stands for a digit and `?` for a letter or digit, other
/// characters are kept).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCodeGroup {
    pub name: String,
    pub code: Option<String>,
    pub pattern: Option<String>,
    pub count: Option<u32>,
    pub max_uses: Option<u32>,
    pub max_uses_per_customer: Option<u32>,
    /// RFC 3339; the codes are valid before this time.
    pub expires_at: Option<String>,
}

#[utoipa::path(get, path = "/v1/promotions/{id}/code-groups", tag = "promotions", params(("id" = i64, Path)),
    security(("bearer" = ["read"])),
    responses((status = 200, body = Vec<CodeGroupBody>), (status = 404, body = ProblemDocument)))]
async fn list_code_groups(
    _: Auth<Read>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Vec<CodeGroupBody>>> {
    let id = PromotionId::new(id);
    if state.app.store.promotion(id).await?.is_none() {
        return Err(StoreError::not_found("promotion", id).into());
    }
    let groups = state.app.store.code_groups(id).await?;
    Ok(Json(groups.into_iter().map(|g| group_body(g, None)).collect()))
}

/// Creates a code group: one chosen code, or `count` codes generated from `pattern`.
#[utoipa::path(post, path = "/v1/promotions/{id}/code-groups", tag = "promotions", params(("id" = i64, Path)),
    request_body = CreateCodeGroup, security(("bearer" = ["admin"])),
    responses((status = 201, body = CodeGroupBody), (status = 400, body = ProblemDocument),
        (status = 404, body = ProblemDocument), (status = 409, body = ProblemDocument)))]
async fn create_code_group(
    _: Auth<Admin>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<CreateCodeGroup>,
) -> ApiResult<(StatusCode, Json<CodeGroupBody>)> {
    let spec = CodeSpec::parse(
        &b.name,
        b.code.as_deref(),
        b.pattern.as_deref(),
        b.count,
        b.max_uses,
        b.max_uses_per_customer,
        b.expires_at
            .as_deref()
            .map(|t| Timestamp::parse("expires_at", t))
            .transpose()?,
    )?;
    let chosen = spec.chosen().map(|c| c.to_string());
    let group = state
        .app
        .promotions
        .create_code_group(PromotionId::new(id), spec)
        .await?;
    Ok((StatusCode::CREATED, Json(group_body(group, chosen))))
}

#[utoipa::path(get, path = "/v1/code-groups/{id}", tag = "promotions", params(("id" = i64, Path)),
    security(("bearer" = ["read"])),
    responses((status = 200, body = CodeGroupBody), (status = 404, body = ProblemDocument)))]
async fn get_code_group(
    _: Auth<Read>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<CodeGroupBody>> {
    let id = CodeGroupId::new(id);
    let found = state.app.store.code_group(id).await?;
    found
        .map(|g| Json(group_body(g, None)))
        .ok_or_else(|| StoreError::not_found("code group", id).into())
}

#[utoipa::path(delete, path = "/v1/code-groups/{id}", tag = "promotions", params(("id" = i64, Path)),
    security(("bearer" = ["admin"])),
    responses((status = 204), (status = 404, body = ProblemDocument)))]
async fn delete_code_group(
    _: Auth<Admin>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    state.app.store.delete_code_group(CodeGroupId::new(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A group's codes as CSV (`code,used`), in code order.
#[utoipa::path(get, path = "/v1/code-groups/{id}/codes.csv", tag = "promotions", params(("id" = i64, Path)),
    security(("bearer" = ["admin"])),
    responses((status = 200, content_type = "text/csv", body = String), (status = 404, body = ProblemDocument)))]
async fn export_codes(
    _: Auth<Admin>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<impl IntoResponse> {
    let id = CodeGroupId::new(id);
    if state.app.store.code_group(id).await?.is_none() {
        return Err(StoreError::not_found("code group", id).into());
    }
    let mut csv = String::from("code,used\n");
    let mut after: Option<PromotionCode> = None;
    loop {
        let page = state.app.store.group_codes(id, after.as_ref(), 10_000).await?;
        for (code, used) in &page {
            csv.push_str(&format!("{code},{used}\n"));
        }
        match page.last() {
            Some((last, _)) if page.len() == 10_000 => after = Some(last.clone()),
            _ => break,
        }
    }
    let disposition = format!("attachment; filename=\"codes-{id}.csv\"");
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        csv,
    ))
}

/// An application's discount type priorities: every kind with its priority (those not
/// set keep Intershop's defaults).
#[derive(Debug, Serialize, ToSchema)]
pub struct PrioritiesBody {
    #[schema(value_type = Object)]
    pub priorities: Value,
}

fn priorities_body(table: cohort_core::TypePriorities) -> PrioritiesBody {
    let map = cohort_core::DiscountKind::ALL
        .iter()
        .map(|k| (k.as_str().to_owned(), Value::from(table.get(*k))))
        .collect();
    PrioritiesBody {
        priorities: Value::Object(map),
    }
}

#[utoipa::path(get, path = "/v1/applications/{app}/promotion-priorities", tag = "promotions",
    params(("app" = String, Path)), security(("bearer" = ["read"])),
    responses((status = 200, body = PrioritiesBody), (status = 404, body = ProblemDocument)))]
async fn get_priorities(
    _: Auth<Read>,
    State(state): State<AppState>,
    ApiPath(app): ApiPath<String>,
) -> ApiResult<Json<PrioritiesBody>> {
    let app = app_id(&app)?;
    if state.app.store.application(&app).await?.is_none() {
        return Err(StoreError::not_found("application", app).into());
    }
    let loaded = state.app.promotions.current().await?;
    Ok(Json(priorities_body(loaded.catalog.priorities(&app))))
}

/// Sets an application's type priorities, e.g. `{"item_percent_off": 1100}`: kinds not
/// named keep their defaults.
#[utoipa::path(put, path = "/v1/applications/{app}/promotion-priorities", tag = "promotions",
    params(("app" = String, Path)), request_body = Object, security(("bearer" = ["admin"])),
    responses((status = 200, body = PrioritiesBody), (status = 400, body = ProblemDocument),
        (status = 404, body = ProblemDocument)))]
async fn set_priorities(
    _: Auth<Admin>,
    State(state): State<AppState>,
    ApiPath(app): ApiPath<String>,
    ApiJson(table): ApiJson<Value>,
) -> ApiResult<Json<PrioritiesBody>> {
    let set = state
        .app
        .promotions
        .set_type_priorities(&app_id(&app)?, Some(&table))
        .await?;
    Ok(Json(priorities_body(set)))
}

/// Puts an application back on the default type priorities.
#[utoipa::path(delete, path = "/v1/applications/{app}/promotion-priorities", tag = "promotions",
    params(("app" = String, Path)), security(("bearer" = ["admin"])),
    responses((status = 204), (status = 404, body = ProblemDocument)))]
async fn reset_priorities(
    _: Auth<Admin>,
    State(state): State<AppState>,
    ApiPath(app): ApiPath<String>,
) -> ApiResult<StatusCode> {
    state.app.promotions.set_type_priorities(&app_id(&app)?, None).await?;
    Ok(StatusCode::NO_CONTENT)
}
