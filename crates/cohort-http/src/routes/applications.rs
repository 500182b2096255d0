//! `/v1/applications`: the channels, sites and storefronts that use cohort.

use axum::extract::State;
use axum::http::StatusCode;
use cohort_core::{Application, ApplicationId, ApplicationPatch, Currency, Invalid, Name, NameFilter, Origin};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Listed, NameListParams, page_request};
use crate::AppState;
use crate::auth::{Admin, Auth, Read};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::json::Json;
use crate::problem::{ApiResult, Problem, ProblemDocument};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, update, delete))
}

/// An application.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApplicationBody {
    /// Slug used in URLs and in `public:<application>` key scopes.
    pub id: String,
    pub name: String,
    /// ISO 4217 code.
    pub default_currency: String,
    /// Browser origins allowed to call the application's public endpoints.
    pub allowed_origins: Vec<String>,
    pub enabled: bool,
}

impl From<Application> for ApplicationBody {
    fn from(a: Application) -> Self {
        Self {
            id: a.id.into_string(),
            name: a.name.into_string(),
            default_currency: a.default_currency.code().to_owned(),
            allowed_origins: a.allowed_origins.iter().map(|o| o.as_str().to_owned()).collect(),
            enabled: a.enabled,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApplication {
    pub id: String,
    pub name: String,
    pub default_currency: String,
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

fn origins(list: &[String]) -> Result<Vec<Origin>, Invalid> {
    list.iter()
        .enumerate()
        .map(|(i, o)| Origin::parse(&format!("allowed_origins[{i}]"), o))
        .collect()
}

impl TryFrom<CreateApplication> for Application {
    type Error = Invalid;

    fn try_from(c: CreateApplication) -> Result<Self, Invalid> {
        Ok(Self {
            id: ApplicationId::parse("id", &c.id)?,
            name: Name::parse("name", &c.name)?,
            default_currency: Currency::parse("default_currency", &c.default_currency)?,
            allowed_origins: origins(&c.allowed_origins)?,
            enabled: c.enabled,
        })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateApplication {
    pub name: Option<String>,
    pub default_currency: Option<String>,
    pub allowed_origins: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

impl TryFrom<UpdateApplication> for ApplicationPatch {
    type Error = Invalid;

    fn try_from(u: UpdateApplication) -> Result<Self, Invalid> {
        Ok(Self {
            name: u.name.map(|n| Name::parse("name", &n)).transpose()?,
            default_currency: u
                .default_currency
                .map(|c| Currency::parse("default_currency", &c))
                .transpose()?,
            allowed_origins: u.allowed_origins.map(|o| origins(&o)).transpose()?,
            enabled: u.enabled,
        })
    }
}

fn app_id(id: &str) -> Result<ApplicationId, Problem> {
    ApplicationId::parse("id", id).map_err(Problem::invalid)
}

#[utoipa::path(get, path = "/v1/applications", tag = "applications", params(NameListParams),
    security(("bearer" = ["read"])),
    responses((status = 200, body = Listed<ApplicationBody>), (status = 400, body = ProblemDocument)))]
async fn list(
    _: Auth<Read>,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<NameListParams>,
) -> ApiResult<Json<Listed<ApplicationBody>>> {
    let page = page_request(q.limit, q.cursor.as_deref())?;
    let found = state
        .app
        .store
        .list_applications(&NameFilter::new(q.name), page)
        .await?;
    Ok(Json(Listed::from_page(found, ApplicationBody::from)))
}

#[utoipa::path(post, path = "/v1/applications", tag = "applications", request_body = CreateApplication,
    security(("bearer" = ["admin"])),
    responses((status = 201, body = ApplicationBody), (status = 400, body = ProblemDocument), (status = 409, body = ProblemDocument)))]
async fn create(
    _: Auth<Admin>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateApplication>,
) -> ApiResult<(StatusCode, Json<ApplicationBody>)> {
    let application = Application::try_from(body)?;
    state.app.store.create_application(&application).await?;
    state.app.targeting.applications_changed();
    Ok((StatusCode::CREATED, Json(application.into())))
}

#[utoipa::path(get, path = "/v1/applications/{id}", tag = "applications", params(("id" = String, Path)),
    security(("bearer" = ["read"])),
    responses((status = 200, body = ApplicationBody), (status = 404, body = ProblemDocument)))]
async fn get_one(
    _: Auth<Read>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ApplicationBody>> {
    let id = app_id(&id)?;
    let found = state.app.store.application(&id).await?;
    found
        .map(|a| Json(a.into()))
        .ok_or_else(|| cohort_store::StoreError::not_found("application", id).into())
}

#[utoipa::path(patch, path = "/v1/applications/{id}", tag = "applications", params(("id" = String, Path)),
    request_body = UpdateApplication, security(("bearer" = ["admin"])),
    responses((status = 200, body = ApplicationBody), (status = 400, body = ProblemDocument), (status = 404, body = ProblemDocument)))]
async fn update(
    _: Auth<Admin>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateApplication>,
) -> ApiResult<Json<ApplicationBody>> {
    let id = app_id(&id)?;
    let patch = ApplicationPatch::try_from(body)?;
    let updated = state.app.store.update_application(&id, patch).await?;
    state.app.targeting.applications_changed();
    Ok(Json(updated.into()))
}

#[utoipa::path(delete, path = "/v1/applications/{id}", tag = "applications", params(("id" = String, Path)),
    security(("bearer" = ["admin"])),
    responses((status = 204), (status = 404, body = ProblemDocument)))]
async fn delete(_: Auth<Admin>, State(state): State<AppState>, ApiPath(id): ApiPath<String>) -> ApiResult<StatusCode> {
    let id = app_id(&id)?;
    state.app.store.delete_application(&id).await?;
    state.app.segments.services_changed();
    state.app.targeting.applications_changed();
    Ok(StatusCode::NO_CONTENT)
}
