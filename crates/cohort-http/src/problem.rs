//! RFC 9457 problem details: every error response of the API.
//!
//! One table (`Code`) maps each error kind to its HTTP status and a stable `code`
//! that clients can match on. 5xx bodies are opaque; their cause is logged.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cohort_app::AuthError;
use cohort_core::Invalid;
use cohort_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// The stable error codes of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    InvalidJson,
    InvalidField,
    UnknownField,
    MissingField,
    InvalidQuery,
    InvalidLines,
    InvalidRequest,
    UnsupportedMediaType,
    PayloadTooLarge,
    Unauthenticated,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    InUse,
    DanglingReference,
    Internal,
    Unavailable,
}

impl Code {
    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidJson
            | Self::InvalidField
            | Self::UnknownField
            | Self::MissingField
            | Self::InvalidQuery
            | Self::InvalidLines
            | Self::InvalidRequest => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict | Self::InUse => StatusCode::CONFLICT,
            Self::DanglingReference => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::InvalidField => "invalid_field",
            Self::UnknownField => "unknown_field",
            Self::MissingField => "missing_field",
            Self::InvalidQuery => "invalid_query",
            Self::InvalidLines => "invalid_lines",
            Self::InvalidRequest => "invalid_request",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::PayloadTooLarge => "payload_too_large",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Conflict => "conflict",
            Self::InUse => "in_use",
            Self::DanglingReference => "dangling_reference",
            Self::Internal => "internal",
            Self::Unavailable => "unavailable",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::InvalidJson => "The body is not valid JSON",
            Self::InvalidField => "A field has an invalid value",
            Self::UnknownField => "The body has a field this endpoint does not know",
            Self::MissingField => "A required field is missing",
            Self::InvalidQuery => "A query parameter is invalid",
            Self::InvalidLines => "Some lines of the body are invalid; nothing was stored",
            Self::InvalidRequest => "The request is not valid",
            Self::UnsupportedMediaType => "Unsupported media type",
            Self::PayloadTooLarge => "The body is too large",
            Self::Unauthenticated => "A valid API key is required",
            Self::Forbidden => "The API key lacks the scope this endpoint needs",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::Conflict => "Conflict with stored data",
            Self::InUse => "Still in use",
            Self::DanglingReference => "A field refers to something that does not exist",
            Self::Internal => "Internal error",
            Self::Unavailable => "Service unavailable",
        }
    }
}

/// One failed line of a bulk request.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LineProblem {
    pub line: u64,
    pub field: String,
    pub detail: String,
}

/// The failed lines of a bulk request: every one counted, the first
/// `MAX_REPORTED` kept for the answer.
#[derive(Debug, Default)]
pub struct LineProblems {
    shown: Vec<LineProblem>,
    count: u64,
}

impl LineProblems {
    pub fn push(&mut self, line: u64, field: impl Into<String>, detail: impl Into<String>) {
        self.count += 1;
        if self.shown.len() < cohort_app::import::MAX_REPORTED {
            self.shown.push(LineProblem {
                line,
                field: field.into(),
                detail: detail.into(),
            });
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Nothing failed, or the `invalid_lines` problem listing what did.
    pub fn check(self) -> ApiResult<()> {
        if self.is_empty() {
            return Ok(());
        }
        let mut problem = Problem::new(Code::InvalidLines).detail(format!("{} lines are invalid", self.count));
        problem.lines = self.shown;
        Err(problem)
    }
}

/// An error on its way to becoming an RFC 9457 problem document.
#[derive(Debug, Clone)]
pub struct Problem {
    pub code: Code,
    pub detail: Option<String>,
    /// The offending field, as a path such as `attributes.birthdate` or `add[1].segment`.
    pub field: Option<String>,
    pub lines: Vec<LineProblem>,
}

/// An RFC 9457 problem document, as sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemDocument {
    /// `urn:cohort:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    /// Stable machine-readable code.
    pub code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The offending field, as a path such as `attributes.birthdate` or `add[1].segment`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For bulk requests: the lines that failed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<LineProblem>,
}

impl Problem {
    pub fn new(code: Code) -> Self {
        Self {
            code,
            detail: None,
            field: None,
            lines: Vec::new(),
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        let field = field.into();
        self.field = (!field.is_empty()).then_some(field);
        self
    }

    /// A refused value; fields that are missing or unknown get their own codes.
    pub fn invalid(e: Invalid) -> Self {
        let code = if e.reason.starts_with("missing field") {
            Code::MissingField
        } else if e.reason.starts_with("unknown field") {
            Code::UnknownField
        } else {
            Code::InvalidField
        };
        Self::new(code).field(e.field).detail(e.reason)
    }

    pub fn document(self) -> ProblemDocument {
        ProblemDocument {
            kind: format!("urn:cohort:problem:{}", self.code.as_str()),
            title: self.code.title(),
            status: self.code.status().as_u16(),
            code: self.code.as_str(),
            detail: self.detail,
            field: self.field,
            lines: self.lines,
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.code.status();
        let body = serde_json::to_vec(&self.document()).expect("a problem serializes");
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

impl From<Invalid> for Problem {
    fn from(e: Invalid) -> Self {
        Self::invalid(e)
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { .. } => Self::new(Code::NotFound).detail(e.to_string()),
            StoreError::Conflict { field, detail } => Self::new(Code::Conflict).field(field).detail(detail),
            StoreError::DanglingReference { field, detail } => {
                Self::new(Code::DanglingReference).field(field).detail(detail)
            }
            StoreError::InUse { detail } => Self::new(Code::InUse).detail(detail),
            StoreError::Invalid(invalid) => Self::invalid(invalid),
            StoreError::Backend(cause) => {
                tracing::error!(%cause, "store failure");
                Self::new(Code::Internal)
            }
        }
    }
}

impl From<AuthError> for Problem {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Missing | AuthError::Unknown => Self::new(Code::Unauthenticated).detail(e.to_string()),
            AuthError::Forbidden(_) => Self::new(Code::Forbidden).detail(e.to_string()),
            AuthError::Unavailable => Self::new(Code::Unavailable),
        }
    }
}

/// The result type of handlers.
pub type ApiResult<T> = Result<T, Problem>;
