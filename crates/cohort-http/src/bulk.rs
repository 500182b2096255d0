//! `POST /v1/customers:bulk`: NDJSON upserts streamed into one transaction.
//!
//! The body is read line by line, never whole. Every line is checked; if any fails,
//! nothing is stored and the answer lists the failed lines.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use cohort_app::import::{Importer, OnError, parse_ndjson_line};
use futures::StreamExt;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{Auth, Ingest};
use crate::problem::{ApiResult, Code, LineProblem, Problem, ProblemDocument};

/// Longest accepted line.
pub const MAX_LINE: usize = 1 << 20;

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkResult {
    /// Lines written.
    pub written: u64,
}

fn is_ndjson(headers: &HeaderMap) -> bool {
    let mime = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = mime
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    matches!(
        essence.as_str(),
        "application/x-ndjson" | "application/ndjson" | "application/jsonl"
    )
}

/// Upserts customers from NDJSON lines (`{"id": …, "attributes": {…}, "active": …,
/// "profiling_consent": …}`), all or nothing.
#[utoipa::path(post, path = "/v1/customers:bulk", tag = "customers",
    request_body(content = String, content_type = "application/x-ndjson"),
    security(("bearer" = ["ingest"])),
    responses((status = 200, body = BulkResult), (status = 400, body = ProblemDocument), (status = 413, body = ProblemDocument),
        (status = 415, body = ProblemDocument)))]
pub async fn bulk_upsert(
    _: Auth<Ingest>,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<BulkResult>> {
    if !is_ndjson(&headers) {
        return Err(Problem::new(Code::UnsupportedMediaType)
            .detail("expected content-type application/x-ndjson"));
    }
    let mut importer = Importer::begin(&*state.app.store, OnError::Abort, state.app.now()).await?;
    let mut stream = body.into_data_stream();
    let mut pending: Vec<u8> = Vec::new();
    let mut line_no = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            Problem::new(Code::InvalidLines).detail(format!("could not read the body: {e}"))
        })?;
        pending.extend_from_slice(&chunk);
        let mut start = 0;
        while let Some(end) = pending[start..].iter().position(|b| *b == b'\n') {
            line_no += 1;
            feed(&mut importer, line_no, &pending[start..start + end]).await?;
            start += end + 1;
        }
        pending.drain(..start);
        if pending.len() > MAX_LINE {
            return Err(Problem::new(Code::PayloadTooLarge).detail(format!(
                "line {} is longer than {MAX_LINE} bytes",
                line_no + 1
            )));
        }
    }
    if !pending.is_empty() {
        line_no += 1;
        feed(&mut importer, line_no, &pending).await?;
    }
    let report = importer.finish().await?;
    if report.failed > 0 {
        let mut problem = Problem::new(Code::InvalidLines)
            .detail(format!("{} of {line_no} lines are invalid", report.failed));
        problem.lines = report
            .errors
            .into_iter()
            .map(|e| LineProblem {
                line: e.line,
                field: e.error.field,
                detail: e.error.reason,
            })
            .collect();
        return Err(problem);
    }
    Ok(Json(BulkResult {
        written: report.written,
    }))
}

async fn feed(importer: &mut Importer, line_no: u64, bytes: &[u8]) -> ApiResult<()> {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    if text.is_empty() {
        return Ok(());
    }
    importer.push(line_no, parse_ndjson_line(text)).await?;
    Ok(())
}
