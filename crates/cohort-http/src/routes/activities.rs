//! `/v1/activities`: what customers do. One activity as JSON, or a batch as NDJSON,
//! acknowledged only once committed; a client-supplied id makes retries idempotent.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use cohort_app::activities::parse_activity;
use cohort_core::{Activity, ActivityFilter, ActivityType, CustomerId, Timestamp};
use cohort_store::{Reacting, RecordSummary, StoreError};
use futures::{StreamExt, stream};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Listed, page_request};
use crate::AppState;
use crate::auth::{Auth, Ingest, Read};
use crate::bulk::{LineReader, require_ndjson};
use crate::extract::{ApiPath, ApiQuery};
use crate::json::Json;
use crate::problem::{ApiResult, Code, LineProblem, LineProblems, Problem, ProblemDocument};

/// Most activities in one NDJSON request.
pub const MAX_BATCH: usize = 100_000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(record)).routes(routes!(list))
}

/// What a request recorded.
#[derive(Debug, Serialize, ToSchema)]
pub struct Recorded {
    pub recorded: u64,
    /// Activities whose id was already stored (retries): not recorded again.
    pub duplicates: u64,
    /// For a single activity: its id (the one given, or the one cohort assigned).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// An order line.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderItemBody {
    pub sku: String,
    pub quantity: u32,
    /// Decimal as a string.
    pub unit_price: String,
    pub categories: Vec<String>,
}

/// The order of an `order` activity.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderBody {
    /// Decimal as a string.
    pub total: String,
    pub currency: String,
    pub items: Vec<OrderItemBody>,
}

/// An activity.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityBody {
    pub id: String,
    pub customer: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// RFC 3339.
    pub at: String,
    #[schema(value_type = Object)]
    pub attributes: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<OrderBody>,
}

impl From<Activity> for ActivityBody {
    fn from(a: Activity) -> Self {
        Self {
            id: a.id.to_string(),
            customer: a.customer.into_string(),
            kind: a.kind.to_string(),
            at: a.at.to_rfc3339(),
            attributes: cohort_store::codec::attributes_to_json(&a.attributes),
            order: a.order.map(|o| OrderBody {
                total: o.total.to_string(),
                currency: o.currency.code().to_owned(),
                items: o
                    .items
                    .into_iter()
                    .map(|i| OrderItemBody {
                        sku: i.sku,
                        quantity: i.quantity,
                        unit_price: i.unit_price.to_string(),
                        categories: i.categories,
                    })
                    .collect(),
            }),
        }
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
        })
}

/// Maps `lines[i].customer` from the store to the request's line numbers.
fn dangling(e: StoreError, numbers: &[u64]) -> Problem {
    match e {
        StoreError::DanglingReference { field, detail } => {
            let index = field
                .strip_prefix("lines[")
                .and_then(|r| r.split(']').next())
                .and_then(|i| i.parse::<usize>().ok());
            let mut problem = Problem::new(Code::DanglingReference)
                .field("customer")
                .detail(detail.clone());
            if let Some(line) = index.and_then(|i| numbers.get(i)) {
                problem.lines = vec![LineProblem {
                    line: *line,
                    field: "customer".into(),
                    detail,
                }];
            }
            problem
        }
        other => other.into(),
    }
}

/// Records one activity (`application/json`) or a batch (`application/x-ndjson`, at most
/// 100,000 lines, all or nothing). The answer comes after the commit. Automation rules
/// react to a batch of at most 1,000 new activities before the answer; to a larger
/// one right after it, off the request path.
#[utoipa::path(post, path = "/v1/activities", tag = "activities",
    request_body(content = Object, description = "one activity as JSON, or NDJSON lines of them", content_type = "application/json"),
    security(("bearer" = ["ingest"])),
    responses((status = 201, body = Recorded), (status = 200, body = Recorded), (status = 400, body = ProblemDocument),
        (status = 413, body = ProblemDocument), (status = 415, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
async fn record(
    _: Auth<Ingest>,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<Recorded>)> {
    let now = state.app.now();
    if is_json(&headers) {
        let bytes = axum::body::to_bytes(body, crate::MAX_BODY)
            .await
            .map_err(|_| Problem::new(Code::PayloadTooLarge).detail("an activity is at most 1 MiB"))?;
        let text = std::str::from_utf8(&bytes).map_err(|_| Problem::new(Code::InvalidJson).detail("not UTF-8"))?;
        let activity = parse_activity(text, now).map_err(|e| {
            if e.reason.starts_with("invalid json") {
                Problem::new(Code::InvalidJson).detail(e.reason)
            } else {
                e.into()
            }
        })?;
        let id = activity.id.to_string();
        let summary = state
            .app
            .store
            .record_activities(std::slice::from_ref(&activity), now, Reacting::Reacts)
            .await
            .map_err(|e| dangling(e, &[1]))?;
        if activity.kind.is_order() {
            state.app.profiles.forget(&activity.customer);
        }
        // A retry (already recorded) was reacted to the first time.
        let status = if summary.recorded == 1 {
            state.app.automation.after_recording(1).await;
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        return Ok((
            status,
            Json(Recorded {
                recorded: summary.recorded,
                duplicates: summary.duplicates(),
                id: Some(id),
            }),
        ));
    }
    require_ndjson(&headers)
        .map_err(|p| p.detail("expected application/json (one activity) or application/x-ndjson"))?;
    // The whole body first: a slow client never holds the write transaction open.
    let mut reader = LineReader::new(body);
    let mut lines = Vec::new();
    while let Some(line) = reader.next_line().await? {
        if lines.len() >= MAX_BATCH {
            return Err(Problem::new(Code::PayloadTooLarge).detail(format!("at most {MAX_BATCH} activities a request")));
        }
        lines.push(line);
    }
    let (summary, ordering) = record_lines(&state, lines, now).await?;
    // Their order counts moved.
    state.app.profiles.forget_each(&ordering);
    if summary.recorded > 0 {
        // Retried activities were reacted to when they were first recorded.
        let recorded = usize::try_from(summary.recorded).unwrap_or(usize::MAX);
        state.app.automation.after_recording(recorded).await;
    }
    Ok((
        StatusCode::OK,
        Json(Recorded {
            recorded: summary.recorded,
            duplicates: summary.duplicates(),
            id: None,
        }),
    ))
}

/// Lines parsed per part: the next part is parsed (on a blocking thread) while the
/// store writes this one.
const LINES_PER_PART: usize = 4_096;

/// Parses and records the lines of a batch, all or nothing. Parts are written as soon
/// as they are parsed; a line that does not parse stops the writing (the transaction is
/// dropped, recording nothing), and parsing goes on to report every bad line.
/// Also returns the customers of its orders.
async fn record_lines(
    state: &AppState,
    lines: Vec<(u64, String)>,
    now: Timestamp,
) -> ApiResult<(RecordSummary, Vec<CustomerId>)> {
    let mut ordering = Vec::new();
    let mut parts = Vec::with_capacity(lines.len().div_ceil(LINES_PER_PART));
    let mut rest = lines;
    while !rest.is_empty() {
        let tail = rest.split_off(LINES_PER_PART.min(rest.len()));
        parts.push(std::mem::replace(&mut rest, tail));
    }
    let mut parsed = stream::iter(parts)
        .map(|part| {
            tokio::task::spawn_blocking(move || {
                part.into_iter()
                    .map(|(n, text)| (n, parse_activity(&text, now)))
                    .collect::<Vec<_>>()
            })
        })
        .buffered(2);
    let (mut recording, mut numbers, mut failed) = (None, Vec::new(), LineProblems::default());
    while let Some(part) = parsed.next().await {
        let mut good = Vec::with_capacity(LINES_PER_PART);
        for (line_no, parsed) in part.expect("parsing does not panic") {
            match parsed {
                Ok(a) => {
                    if a.kind.is_order() && ordering.last() != Some(&a.customer) {
                        ordering.push(a.customer.clone());
                    }
                    good.push(a);
                    numbers.push(line_no);
                }
                Err(e) => failed.push(line_no, e.field, e.reason),
            }
        }
        if !failed.is_empty() {
            recording = None;
            continue;
        }
        let first = numbers.len() - good.len();
        let writing = match recording.as_mut() {
            Some(writing) => writing,
            None => recording.insert(state.app.store.begin_recording(now, Reacting::Reacts).await?),
        };
        writing.write(&good, first).await.map_err(|e| dangling(e, &numbers))?;
    }
    failed.check()?;
    match recording {
        Some(writing) => Ok((writing.commit().await?, ordering)),
        None => Ok((RecordSummary::default(), ordering)),
    }
}

/// Query parameters of a customer's activity list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ActivityListParams {
    /// Only activities of this type.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<String>,
    /// RFC 3339; from this time on.
    pub since: Option<String>,
    /// RFC 3339; before this time.
    pub until: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/customers/{id}/activities", tag = "activities",
    params(("id" = String, Path), ActivityListParams), security(("bearer" = ["read"])),
    responses((status = 200, body = Listed<ActivityBody>), (status = 400, body = ProblemDocument), (status = 404, body = ProblemDocument)))]
async fn list(
    _: Auth<Read>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ActivityListParams>,
) -> ApiResult<Json<Listed<ActivityBody>>> {
    let customer = CustomerId::parse("id", &id).map_err(Problem::invalid)?;
    let query = |e: cohort_core::Invalid| Problem::new(Code::InvalidQuery).field(e.field).detail(e.reason);
    let filter = ActivityFilter {
        kind: q
            .kind
            .map(|k| ActivityType::parse("type", &k))
            .transpose()
            .map_err(query)?,
        since: q
            .since
            .map(|t| Timestamp::parse("since", &t))
            .transpose()
            .map_err(query)?,
        until: q
            .until
            .map(|t| Timestamp::parse("until", &t))
            .transpose()
            .map_err(query)?,
    };
    let page = page_request(q.limit, q.cursor.as_deref())?;
    let found = state.app.store.list_activities(&customer, &filter, page).await?;
    Ok(Json(Listed::from_page(found, ActivityBody::from)))
}
