//! `POST /v1/customers:bulk`: NDJSON upserts streamed into one transaction.
//!
//! The body is read line by line, never whole. Every line is checked; if any fails,
//! nothing is stored and the answer lists the failed lines.

use crate::json::Json;
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
    let essence = mime.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
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
    require_ndjson(&headers)?;
    let mut importer = Importer::new(state.app.store.clone(), OnError::Abort, state.app.now());
    let mut lines = LineReader::new(body);
    while let Some((line_no, text)) = lines.next_line().await? {
        importer.push(line_no, parse_ndjson_line(&text)).await?;
    }
    let line_no = lines.line_no;
    let report = importer.finish().await?;
    if report.written > 0 {
        // A whole import's customers: cheaper forgotten at once than one by one.
        state.app.profiles.forget_all();
    }
    if report.failed > 0 {
        let mut problem =
            Problem::new(Code::InvalidLines).detail(format!("{} of {line_no} lines are invalid", report.failed));
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

/// Reads a body as NDJSON lines, skipping blank ones, never holding more than one line.
pub struct LineReader {
    stream: axum::body::BodyDataStream,
    pending: Vec<u8>,
    ready: std::collections::VecDeque<(u64, String)>,
    /// Lines seen so far (blank ones included).
    pub line_no: u64,
    done: bool,
}

impl LineReader {
    pub fn new(body: Body) -> Self {
        Self {
            stream: body.into_data_stream(),
            pending: Vec::new(),
            ready: Default::default(),
            line_no: 0,
            done: false,
        }
    }

    pub async fn next_line(&mut self) -> ApiResult<Option<(u64, String)>> {
        loop {
            if let Some(line) = self.ready.pop_front() {
                return Ok(Some(line));
            }
            if self.done {
                return Ok(None);
            }
            match self.stream.next().await {
                Some(chunk) => {
                    let chunk = chunk.map_err(|e| {
                        Problem::new(Code::InvalidLines).detail(format!("could not read the body: {e}"))
                    })?;
                    self.pending.extend_from_slice(&chunk);
                    let mut start = 0;
                    while let Some(end) = self.pending[start..].iter().position(|b| *b == b'\n') {
                        if end > MAX_LINE {
                            return Err(Problem::new(Code::PayloadTooLarge)
                                .detail(format!("line {} is longer than {MAX_LINE} bytes", self.line_no + 1)));
                        }
                        let line = self.pending[start..start + end].to_vec();
                        self.push(&line)?;
                        start += end + 1;
                    }
                    self.pending.drain(..start);
                    if self.pending.len() > MAX_LINE {
                        return Err(Problem::new(Code::PayloadTooLarge)
                            .detail(format!("line {} is longer than {MAX_LINE} bytes", self.line_no + 1)));
                    }
                }
                None => {
                    self.done = true;
                    if !self.pending.is_empty() {
                        let line = std::mem::take(&mut self.pending);
                        self.push(&line)?;
                    }
                }
            }
        }
    }

    fn push(&mut self, bytes: &[u8]) -> ApiResult<()> {
        self.line_no += 1;
        let text = std::str::from_utf8(bytes).map_err(|_| {
            Problem::new(Code::InvalidLines).detail(format!("line {} is not valid UTF-8", self.line_no))
        })?;
        let text = text.trim();
        if !text.is_empty() {
            self.ready.push_back((self.line_no, text.to_owned()));
        }
        Ok(())
    }
}

/// Whether the request says its body is NDJSON.
pub fn require_ndjson(headers: &HeaderMap) -> ApiResult<()> {
    if is_ndjson(headers) {
        Ok(())
    } else {
        Err(Problem::new(Code::UnsupportedMediaType).detail("expected content-type application/x-ndjson"))
    }
}
