//! `POST /v1/segments/query`: customers matching a boolean expression over qualified
//! segments, answered from the in-memory index.

use axum::extract::State;
use cohort_app::index::Query;
use cohort_core::{Invalid, QualifiedSegment};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::{Auth, Read};
use crate::extract::ApiJson;
use crate::json::Json;
use crate::problem::{ApiResult, Code, Problem, ProblemDocument};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(query))
}

/// A membership query.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    /// A qualified segment name (`"standard/tier/gold"`), or `{"and": [...]}`,
    /// `{"or": [...]}`, `{"not": ...}` of such expressions.
    #[schema(value_type = Object)]
    pub query: Value,
    /// Customers per page, 0 to 10,000 (default 100; 0 only counts).
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueryResponse {
    /// How many customers match.
    pub count: u64,
    /// Matching customer ids, in store order.
    pub customers: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

fn parse(value: &Value, field: &str) -> Result<Query, Invalid> {
    match value {
        Value::String(name) => QualifiedSegment::parse(field, name).map(Query::Segment),
        Value::Object(map) if map.len() == 1 => {
            let (op, operand) = map.iter().next().expect("one entry");
            let field = format!("{field}.{op}");
            match (op.as_str(), operand) {
                ("and" | "or", Value::Array(items)) => {
                    let items = items
                        .iter()
                        .enumerate()
                        .map(|(i, v)| parse(v, &format!("{field}[{i}]")))
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(if op == "and" {
                        Query::And(items)
                    } else {
                        Query::Or(items)
                    })
                }
                ("not", inner) => Ok(Query::Not(Box::new(parse(inner, &field)?))),
                ("and" | "or", _) => Err(Invalid::new(field, "expected a list of expressions")),
                _ => Err(Invalid::new(field, "expected and, or or not")),
            }
        }
        _ => Err(Invalid::new(
            field,
            "expected a segment name or one of {\"and\": […]}, {\"or\": […]}, {\"not\": …}",
        )),
    }
}

fn cursor(text: &str) -> Result<u32, Problem> {
    text.strip_prefix('k').and_then(|n| n.parse().ok()).ok_or_else(|| {
        Problem::new(Code::InvalidField)
            .field("cursor")
            .detail("not a cursor this API returned")
    })
}

/// Counts the customers matching an expression and lists a page of them.
#[utoipa::path(post, path = "/v1/segments/query", tag = "segments", request_body = QueryRequest,
    security(("bearer" = ["read"])),
    responses((status = 200, body = QueryResponse), (status = 400, body = ProblemDocument)))]
async fn query(
    _: Auth<Read>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<QueryRequest>,
) -> ApiResult<Json<QueryResponse>> {
    let expr = parse(&body.query, "query")?;
    let limit = body.limit.unwrap_or(100);
    if limit > 10_000 {
        return Err(Problem::new(Code::InvalidField)
            .field("limit")
            .detail("expected 0 to 10000"));
    }
    let after = body.cursor.as_deref().map(cursor).transpose()?;
    let page = state.app.index.query(&expr, after, limit).await?;
    Ok(Json(QueryResponse {
        count: page.count,
        customers: page.customers.into_iter().map(|c| c.into_string()).collect(),
        next_cursor: page.next.filter(|_| limit > 0).map(|k| format!("k{k}")),
    }))
}
