//! `/v1/segmentation-services`: the sources of segments, their activation per
//! application, membership imports, and the segment provider of an application.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use cohort_app::import::parse_membership_line;
use cohort_app::provider::{Provided, ProvidedSegment};
use cohort_core::{
    ApplicationId, CustomerId, HttpSettings, Invalid, Name, SegmentationService, ServiceId, ServiceKind, ServicePatch,
    Timestamp,
};
use cohort_store::{ImportMode, MembershipImportSummary, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::{Admin, Auth, Ingest, Read};
use crate::bulk::{LineReader, require_ndjson};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::json::Json;
use crate::problem::{ApiResult, Code, LineProblem, LineProblems, Problem, ProblemDocument};

/// Most lines in one membership import request.
pub const MAX_MEMBERSHIP_LINES: usize = 2_000_000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, update, delete))
        .routes(routes!(import_memberships))
        .routes(routes!(active_services))
        .routes(routes!(activate, deactivate))
        .routes(routes!(customer_segments))
        .routes(routes!(available_segments))
}

/// Settings of an http service.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Segments are read from `{base_url}/customers/{id}/segments` and `{base_url}/segments`.
    pub base_url: String,
    /// Default 50.
    pub timeout_ms: Option<u32>,
    /// Default 30000.
    pub cache_ttl_ms: Option<u32>,
    /// Consecutive failures that open the circuit; default 5.
    pub breaker_failures: Option<u32>,
    /// How long an open circuit skips the service; default 10000.
    pub breaker_open_ms: Option<u32>,
}

impl TryFrom<HttpConfig> for HttpSettings {
    type Error = Invalid;

    fn try_from(c: HttpConfig) -> Result<Self, Invalid> {
        HttpSettings::new(
            &c.base_url,
            c.timeout_ms,
            c.cache_ttl_ms,
            c.breaker_failures,
            c.breaker_open_ms,
        )
    }
}

/// A segmentation service.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceBody {
    pub id: String,
    pub name: String,
    /// standard, import or http.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<HttpConfig>,
    /// System-wide switch.
    pub available: bool,
}

impl From<SegmentationService> for ServiceBody {
    fn from(s: SegmentationService) -> Self {
        let config = match &s.kind {
            ServiceKind::Http(h) => Some(HttpConfig {
                base_url: h.base_url.clone(),
                timeout_ms: Some(h.timeout_ms),
                cache_ttl_ms: Some(h.cache_ttl_ms),
                breaker_failures: Some(h.breaker_failures),
                breaker_open_ms: Some(h.breaker_open_ms),
            }),
            _ => None,
        };
        Self {
            id: s.id.to_string(),
            name: s.name.into_string(),
            kind: s.kind.name(),
            config,
            available: s.available,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateService {
    pub id: String,
    pub name: String,
    /// import or http (there is one standard service).
    pub kind: String,
    /// Required for http services, refused for others.
    pub config: Option<HttpConfig>,
    #[serde(default = "yes")]
    pub available: bool,
}

fn yes() -> bool {
    true
}

impl TryFrom<CreateService> for SegmentationService {
    type Error = Invalid;

    fn try_from(c: CreateService) -> Result<Self, Invalid> {
        let kind = match (c.kind.as_str(), c.config) {
            ("import", None) => ServiceKind::Import,
            ("import", Some(_)) => return Err(Invalid::new("config", "only an http service has settings")),
            ("http", Some(config)) => ServiceKind::Http(config.try_into()?),
            ("http", None) => return Err(Invalid::new("config", "an http service needs its settings")),
            _ => return Err(Invalid::new("kind", "expected import or http")),
        };
        Ok(Self {
            id: ServiceId::parse("id", &c.id)?,
            name: Name::parse("name", &c.name)?,
            kind,
            available: c.available,
        })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateService {
    pub name: Option<String>,
    pub config: Option<HttpConfig>,
    pub available: Option<bool>,
}

impl TryFrom<UpdateService> for ServicePatch {
    type Error = Invalid;

    fn try_from(u: UpdateService) -> Result<Self, Invalid> {
        Ok(Self {
            name: u.name.map(|n| Name::parse("name", &n)).transpose()?,
            http: u.config.map(HttpSettings::try_from).transpose()?,
            available: u.available,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServicesBody {
    pub items: Vec<ServiceBody>,
}

fn service_id(id: &str) -> Result<ServiceId, Problem> {
    ServiceId::parse("id", id).map_err(Problem::invalid)
}

pub(crate) fn app_id(id: &str) -> Result<ApplicationId, Problem> {
    ApplicationId::parse("app", id).map_err(Problem::invalid)
}

#[utoipa::path(get, path = "/v1/segmentation-services", tag = "segmentation services",
    security(("bearer" = ["read"])), responses((status = 200, body = ServicesBody)))]
async fn list(_: Auth<Read>, State(state): State<AppState>) -> ApiResult<Json<ServicesBody>> {
    let services = state.app.store.list_services().await?;
    Ok(Json(ServicesBody {
        items: services.into_iter().map(Into::into).collect(),
    }))
}

#[utoipa::path(post, path = "/v1/segmentation-services", tag = "segmentation services", request_body = CreateService,
    security(("bearer" = ["admin"])),
    responses((status = 201, body = ServiceBody), (status = 400, body = ProblemDocument), (status = 409, body = ProblemDocument)))]
async fn create(
    _: Auth<Admin>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateService>,
) -> ApiResult<(StatusCode, Json<ServiceBody>)> {
    let service = SegmentationService::try_from(body)?;
    state.app.store.create_service(&service).await?;
    state.app.segments.services_changed();
    Ok((StatusCode::CREATED, Json(service.into())))
}

#[utoipa::path(get, path = "/v1/segmentation-services/{id}", tag = "segmentation services", params(("id" = String, Path)),
    security(("bearer" = ["read"])), responses((status = 200, body = ServiceBody), (status = 404, body = ProblemDocument)))]
async fn get_one(
    _: Auth<Read>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ServiceBody>> {
    let id = service_id(&id)?;
    let found = state.app.store.service(&id).await?;
    found
        .map(|s| Json(s.into()))
        .ok_or_else(|| StoreError::not_found("segmentation service", id).into())
}

#[utoipa::path(patch, path = "/v1/segmentation-services/{id}", tag = "segmentation services", params(("id" = String, Path)),
    request_body = UpdateService, security(("bearer" = ["admin"])),
    responses((status = 200, body = ServiceBody), (status = 400, body = ProblemDocument), (status = 404, body = ProblemDocument)))]
async fn update(
    _: Auth<Admin>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateService>,
) -> ApiResult<Json<ServiceBody>> {
    let id = service_id(&id)?;
    let patch = ServicePatch::try_from(body)?;
    let updated = state.app.store.update_service(&id, patch).await?;
    state.app.segments.services_changed();
    Ok(Json(updated.into()))
}

#[utoipa::path(delete, path = "/v1/segmentation-services/{id}", tag = "segmentation services", params(("id" = String, Path)),
    security(("bearer" = ["admin"])),
    responses((status = 204), (status = 404, body = ProblemDocument), (status = 409, body = ProblemDocument)))]
async fn delete(_: Auth<Admin>, State(state): State<AppState>, ApiPath(id): ApiPath<String>) -> ApiResult<StatusCode> {
    state.app.store.delete_service(&service_id(&id)?).await?;
    state.app.segments.services_changed();
    Ok(StatusCode::NO_CONTENT)
}

/// How a membership import applies.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportParams {
    /// `snapshot` (default): the lines replace the service's memberships; `delta`: they add
    /// and remove (`"remove": true`) memberships.
    pub mode: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportResult {
    pub added: u64,
    pub removed: u64,
    pub unchanged: u64,
    pub segments_created: u64,
}

impl From<MembershipImportSummary> for ImportResult {
    fn from(s: MembershipImportSummary) -> Self {
        Self {
            added: s.added,
            removed: s.removed,
            unchanged: s.unchanged,
            segments_created: s.segments_created,
        }
    }
}

/// Pushes memberships into an import service: NDJSON lines `{"customer": "c1", "segment":
/// "group/segment", "remove": false, "expires_at": "…"}`, applied whole or not at all.
#[utoipa::path(post, path = "/v1/segmentation-services/{id}/memberships", tag = "segmentation services",
    params(("id" = String, Path), ImportParams), request_body(content = String, content_type = "application/x-ndjson"),
    security(("bearer" = ["ingest"])),
    responses((status = 200, body = ImportResult), (status = 400, body = ProblemDocument), (status = 404, body = ProblemDocument),
        (status = 422, body = ProblemDocument)))]
async fn import_memberships(
    _: Auth<Ingest>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<ImportParams>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<ImportResult>> {
    let id = service_id(&id)?;
    let mode = match params.mode.as_deref() {
        None | Some("snapshot") => ImportMode::Snapshot,
        Some("delta") => ImportMode::Delta,
        Some(_) => {
            return Err(Problem::new(Code::InvalidQuery)
                .field("mode")
                .detail("expected snapshot or delta"));
        }
    };
    require_ndjson(&headers)?;
    let mut reader = LineReader::new(body);
    let (mut lines, mut numbers, mut failed) = (Vec::new(), Vec::new(), LineProblems::default());
    while let Some((line_no, text)) = reader.next_line().await? {
        if lines.len() as u64 + failed.count() >= MAX_MEMBERSHIP_LINES as u64 {
            return Err(Problem::new(Code::PayloadTooLarge).detail(format!(
                "at most {MAX_MEMBERSHIP_LINES} lines a request: use mode=delta for more"
            )));
        }
        match parse_membership_line(&text) {
            Ok(line) if mode == ImportMode::Snapshot && line.remove => failed.push(
                line_no,
                "remove",
                "a snapshot lists memberships: use mode=delta to remove",
            ),
            Ok(line) => {
                lines.push(line);
                numbers.push(line_no);
            }
            Err(e) => failed.push(line_no, e.field, e.reason),
        }
    }
    failed.check()?;
    let summary = state
        .app
        .store
        .import_memberships(&id, mode, &lines, state.app.now())
        .await
        .map_err(|e| match e {
            // Name the input line rather than the index into the parsed lines.
            StoreError::DanglingReference { field, detail } => {
                let index = field
                    .strip_prefix("lines[")
                    .and_then(|r| r.split(']').next())
                    .and_then(|i| i.parse::<usize>().ok());
                let mut problem = Problem::new(Code::DanglingReference).detail(detail.clone());
                if let Some(line) = index.and_then(|i| numbers.get(i)) {
                    problem.lines = vec![LineProblem {
                        line: *line,
                        field: "customer".into(),
                        detail,
                    }];
                }
                problem.field("customer")
            }
            other => other.into(),
        })?;
    match mode {
        // A snapshot removes the memberships of customers it does not list.
        ImportMode::Snapshot => state.app.profiles.forget_all(),
        ImportMode::Delta => state.app.profiles.forget_each(lines.iter().map(|l| &l.customer)),
    }
    Ok(Json(summary.into()))
}

#[utoipa::path(get, path = "/v1/applications/{app}/segmentation-services", tag = "segmentation services",
    params(("app" = String, Path)), security(("bearer" = ["read"])),
    responses((status = 200, body = ServicesBody), (status = 404, body = ProblemDocument)))]
async fn active_services(
    _: Auth<Read>,
    State(state): State<AppState>,
    ApiPath(app): ApiPath<String>,
) -> ApiResult<Json<ServicesBody>> {
    let services = state.app.store.application_services(&app_id(&app)?).await?;
    Ok(Json(ServicesBody {
        items: services.into_iter().map(Into::into).collect(),
    }))
}

/// Activates a service in an application (idempotent).
#[utoipa::path(put, path = "/v1/applications/{app}/segmentation-services/{service}", tag = "segmentation services",
    params(("app" = String, Path), ("service" = String, Path)), security(("bearer" = ["admin"])),
    responses((status = 204), (status = 404, body = ProblemDocument)))]
async fn activate(
    _: Auth<Admin>,
    State(state): State<AppState>,
    ApiPath((app, service)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    state
        .app
        .store
        .set_service_active(&app_id(&app)?, &service_id(&service)?, true)
        .await?;
    state.app.segments.services_changed();
    Ok(StatusCode::NO_CONTENT)
}

/// Deactivates a service in an application: its segments stop counting there at once;
/// nothing is deleted.
#[utoipa::path(delete, path = "/v1/applications/{app}/segmentation-services/{service}", tag = "segmentation services",
    params(("app" = String, Path), ("service" = String, Path)), security(("bearer" = ["admin"])),
    responses((status = 204), (status = 404, body = ProblemDocument)))]
async fn deactivate(
    _: Auth<Admin>,
    State(state): State<AppState>,
    ApiPath((app, service)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    state
        .app
        .store
        .set_service_active(&app_id(&app)?, &service_id(&service)?, false)
        .await?;
    state.app.segments.services_changed();
    Ok(StatusCode::NO_CONTENT)
}

/// A segment provided in an application.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProvidedBody {
    /// Qualified name: `service/group/segment` or `service/segment`.
    pub segment: String,
    pub service: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assigned_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_counter: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

impl From<ProvidedSegment> for ProvidedBody {
    fn from(p: ProvidedSegment) -> Self {
        let m = p.membership.as_ref();
        Self {
            segment: p.qualified.to_string(),
            service: p.qualified.service.to_string(),
            name: p.name,
            source: m.map(|m| m.source.as_str()),
            assigned_at: m.map(|m| m.assigned_at.to_rfc3339()),
            application_counter: m.map(|m| m.application_counter),
            expires_at: m.and_then(|m| m.expires_at).map(Timestamp::to_rfc3339),
        }
    }
}

/// A service that contributed nothing.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnansweredBody {
    pub service: String,
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProvidedSegmentsBody {
    pub segments: Vec<ProvidedBody>,
    /// Active, available services that did not answer (their segments are left out).
    pub unanswered: Vec<UnansweredBody>,
}

impl From<Provided> for ProvidedSegmentsBody {
    fn from(p: Provided) -> Self {
        Self {
            segments: p.segments.into_iter().map(Into::into).collect(),
            unanswered: p
                .unanswered
                .into_iter()
                .map(|s| UnansweredBody {
                    service: s.service.to_string(),
                    reason: s.reason.to_string(),
                })
                .collect(),
        }
    }
}

/// The customer's segments from every service active and available in the application.
#[utoipa::path(get, path = "/v1/applications/{app}/customers/{id}/segments", tag = "segmentation services",
    params(("app" = String, Path), ("id" = String, Path)), security(("bearer" = ["read"])),
    responses((status = 200, body = ProvidedSegmentsBody), (status = 404, body = ProblemDocument)))]
async fn customer_segments(
    _: Auth<Read>,
    State(state): State<AppState>,
    ApiPath((app, id)): ApiPath<(String, String)>,
) -> ApiResult<Json<ProvidedSegmentsBody>> {
    let customer = CustomerId::parse("id", &id).map_err(Problem::invalid)?;
    Ok(Json(
        state
            .app
            .segments
            .customer_segments(&app_id(&app)?, &customer)
            .await?
            .into(),
    ))
}

/// Every segment available in the application.
#[utoipa::path(get, path = "/v1/applications/{app}/segments", tag = "segmentation services",
    params(("app" = String, Path)), security(("bearer" = ["read"])),
    responses((status = 200, body = ProvidedSegmentsBody), (status = 404, body = ProblemDocument)))]
async fn available_segments(
    _: Auth<Read>,
    State(state): State<AppState>,
    ApiPath(app): ApiPath<String>,
) -> ApiResult<Json<ProvidedSegmentsBody>> {
    Ok(Json(
        state.app.segments.available_segments(&app_id(&app)?).await?.into(),
    ))
}
