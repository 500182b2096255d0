//! `/v1/automation`: automation rules (the definition format is in
//! `cohort-app/src/automation/rules.rs`) with how often and when each fired, dry runs
//! for a customer, the queue of actions waiting to run and the dead letters, which can
//! be replayed.

use axum::extract::State;
use axum::http::StatusCode;
use cohort_app::automation::service::{AutomationRecord, decode_event};
use cohort_core::CustomerId;
use cohort_core::automation::{AutomationRuleId, Event};
use cohort_store::{DeadLetter, Job, StoreError};
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

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, replace, delete))
        .routes(routes!(dry_run))
        .routes(routes!(queue))
        .routes(routes!(dead_letters))
        .routes(routes!(replay))
}

/// An automation rule: its definition as written, with its id and statistics.
#[derive(Debug, Serialize, ToSchema)]
pub struct AutomationRuleBody {
    pub id: i64,
    #[schema(value_type = Object)]
    pub definition: Value,
    /// How often it fired.
    pub fired: u64,
    pub last_fired_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

fn body(record: AutomationRecord) -> AutomationRuleBody {
    let stored = record.stored;
    AutomationRuleBody {
        id: stored.id.get(),
        definition: serde_json::from_str(&stored.definition).unwrap_or(Value::Null),
        fired: stored.fired,
        last_fired_at: stored.last_fired_at.map(|t| t.to_rfc3339()),
        created_at: stored.created_at.to_rfc3339(),
        updated_at: stored.updated_at.to_rfc3339(),
    }
}

#[utoipa::path(get, path = "/v1/automation/rules", tag = "automation", security(("bearer" = ["read"])),
    responses((status = 200, body = Vec<AutomationRuleBody>)))]
async fn list(_: Auth<Read>, State(state): State<AppState>) -> ApiResult<Json<Vec<AutomationRuleBody>>> {
    let rules = state.app.automation.rules().await?;
    Ok(Json(rules.into_iter().map(body).collect()))
}

/// Creates a rule, checked first (an invalid one is refused with the field and the reason).
#[utoipa::path(post, path = "/v1/automation/rules", tag = "automation", request_body = Object,
    security(("bearer" = ["admin"])),
    responses((status = 201, body = AutomationRuleBody), (status = 400, body = ProblemDocument),
        (status = 422, body = ProblemDocument)))]
async fn create(
    _: Auth<Admin>,
    State(state): State<AppState>,
    ApiJson(definition): ApiJson<Value>,
) -> ApiResult<(StatusCode, Json<AutomationRuleBody>)> {
    let created = state.app.automation.create_rule(&definition).await?;
    Ok((StatusCode::CREATED, Json(body(created))))
}

#[utoipa::path(get, path = "/v1/automation/rules/{id}", tag = "automation", params(("id" = i64, Path)),
    security(("bearer" = ["read"])),
    responses((status = 200, body = AutomationRuleBody), (status = 404, body = ProblemDocument)))]
async fn get_one(
    _: Auth<Read>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<AutomationRuleBody>> {
    let id = AutomationRuleId::new(id);
    let found = state.app.automation.rule(id).await?;
    found
        .map(|r| Json(body(r)))
        .ok_or_else(|| StoreError::not_found("automation rule", id).into())
}

/// Replaces a rule's definition (its statistics and queued actions stay).
#[utoipa::path(put, path = "/v1/automation/rules/{id}", tag = "automation", params(("id" = i64, Path)),
    request_body = Object, security(("bearer" = ["admin"])),
    responses((status = 200, body = AutomationRuleBody), (status = 400, body = ProblemDocument),
        (status = 404, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
async fn replace(
    _: Auth<Admin>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(definition): ApiJson<Value>,
) -> ApiResult<Json<AutomationRuleBody>> {
    let replaced = state
        .app
        .automation
        .replace_rule(AutomationRuleId::new(id), &definition)
        .await?;
    Ok(Json(body(replaced)))
}

/// Deletes a rule with its queued actions and dead letters.
#[utoipa::path(delete, path = "/v1/automation/rules/{id}", tag = "automation", params(("id" = i64, Path)),
    security(("bearer" = ["admin"])),
    responses((status = 204), (status = 404, body = ProblemDocument)))]
async fn delete(_: Auth<Admin>, State(state): State<AppState>, ApiPath(id): ApiPath<i64>) -> ApiResult<StatusCode> {
    state.app.automation.delete_rule(AutomationRuleId::new(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A dry run: for this customer (and an event, by default a customer update).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DryRunRequest {
    pub customer: String,
    /// An event as queued jobs keep it, e.g. `{"event": "activity", "type": "order"}`.
    #[schema(value_type = Object)]
    pub event: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LeafResult {
    pub condition: String,
    pub holds: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlannedRun {
    pub action: usize,
    pub delay_minutes: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DryRunBody {
    pub holds: bool,
    pub conditions: Vec<LeafResult>,
    /// The actions that would run (none when the conditions do not hold).
    pub actions: Vec<PlannedRun>,
}

/// Which conditions hold for a customer and which actions would run; nothing is written.
#[utoipa::path(post, path = "/v1/automation/rules/{id}/dry-run", tag = "automation", params(("id" = i64, Path)),
    request_body = DryRunRequest, security(("bearer" = ["read"])),
    responses((status = 200, body = DryRunBody), (status = 400, body = ProblemDocument),
        (status = 404, body = ProblemDocument)))]
async fn dry_run(
    _: Auth<Read>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(request): ApiJson<DryRunRequest>,
) -> ApiResult<Json<DryRunBody>> {
    let customer = CustomerId::parse("customer", &request.customer).map_err(Problem::invalid)?;
    let event = match &request.event {
        None => Event::CustomerUpdated,
        Some(v) => decode_event(&v.to_string())
            .ok_or_else(|| Problem::new(Code::InvalidField).field("event").detail("not an event"))?,
    };
    let run = state
        .app
        .automation
        .dry_run(AutomationRuleId::new(id), &customer, &event)
        .await?;
    Ok(Json(DryRunBody {
        holds: run.evaluation.holds,
        conditions: run
            .evaluation
            .conditions
            .into_iter()
            .map(|(condition, holds)| LeafResult { condition, holds })
            .collect(),
        actions: run
            .actions
            .into_iter()
            .map(|(action, delay_minutes)| PlannedRun { action, delay_minutes })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// At most this many (1 to 1000, default 100).
    pub limit: Option<u32>,
}

fn limit(params: &ListParams) -> Result<u32, Problem> {
    let limit = params.limit.unwrap_or(100);
    if (1..=1_000).contains(&limit) {
        Ok(limit)
    } else {
        Err(Problem::new(Code::InvalidQuery).field("limit").detail("1 to 1000"))
    }
}

/// An action waiting in the queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobBody {
    pub id: i64,
    pub rule: i64,
    pub action: u32,
    pub customer: String,
    pub run_at: String,
    #[schema(value_type = Object)]
    pub event: Value,
    pub attempts: u32,
    pub last_error: Option<String>,
}

fn job_body(job: Job) -> JobBody {
    JobBody {
        id: job.id,
        rule: job.rule.get(),
        action: job.action,
        customer: job.customer.into_string(),
        run_at: job.run_at.to_rfc3339(),
        event: serde_json::from_str(&job.environment).unwrap_or(Value::Null),
        attempts: job.attempts,
        last_error: job.last_error,
    }
}

/// Queued actions, earliest first.
#[utoipa::path(get, path = "/v1/automation/queue", tag = "automation", params(ListParams),
    security(("bearer" = ["read"])), responses((status = 200, body = Vec<JobBody>)))]
async fn queue(
    _: Auth<Read>,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<Vec<JobBody>>> {
    let jobs = state.app.store.queued_jobs(limit(&params)?).await?;
    Ok(Json(jobs.into_iter().map(job_body).collect()))
}

/// An action that failed for good.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterBody {
    pub id: i64,
    pub rule: i64,
    pub action: u32,
    pub customer: String,
    #[schema(value_type = Object)]
    pub event: Value,
    pub attempts: u32,
    pub error: String,
    pub failed_at: String,
}

fn dead_letter_body(dead: DeadLetter) -> DeadLetterBody {
    DeadLetterBody {
        id: dead.id,
        rule: dead.rule.get(),
        action: dead.action,
        customer: dead.customer.into_string(),
        event: serde_json::from_str(&dead.environment).unwrap_or(Value::Null),
        attempts: dead.attempts,
        error: dead.error,
        failed_at: dead.failed_at.to_rfc3339(),
    }
}

/// Dead letters, newest first.
#[utoipa::path(get, path = "/v1/automation/dead-letters", tag = "automation", params(ListParams),
    security(("bearer" = ["read"])), responses((status = 200, body = Vec<DeadLetterBody>)))]
async fn dead_letters(
    _: Auth<Read>,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<Vec<DeadLetterBody>>> {
    let dead = state.app.store.dead_letters(limit(&params)?).await?;
    Ok(Json(dead.into_iter().map(dead_letter_body).collect()))
}

/// Queues a dead letter again, to run at once with its failures forgotten.
#[utoipa::path(post, path = "/v1/automation/dead-letters/{id}/replay", tag = "automation",
    params(("id" = i64, Path)), security(("bearer" = ["admin"])),
    responses((status = 200, body = JobBody), (status = 404, body = ProblemDocument)))]
async fn replay(_: Auth<Admin>, State(state): State<AppState>, ApiPath(id): ApiPath<i64>) -> ApiResult<Json<JobBody>> {
    let job = state.app.store.replay_dead_letter(id, state.app.now()).await?;
    Ok(Json(job_body(job)))
}
