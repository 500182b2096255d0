//! Request extractors whose rejections are problem documents: JSON bodies (unknown
//! fields refused, the offending field named), query strings and path parameters.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::problem::{Code, Problem};

/// A JSON body of type `T`.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        if !is_json(req.headers().get(header::CONTENT_TYPE)) {
            return Err(Problem::new(Code::UnsupportedMediaType).detail("expected content-type application/json"));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(body_problem)?;
        parse_json(&bytes).map(ApiJson)
    }
}

fn is_json(value: Option<&header::HeaderValue>) -> bool {
    let Some(mime) = value.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = mime.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

pub(crate) fn body_problem(e: BytesRejection) -> Problem {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        Problem::new(Code::PayloadTooLarge).detail(e.body_text())
    } else {
        Problem::new(Code::InvalidJson).detail(e.body_text())
    }
}

/// Deserializes JSON, turning serde's errors into problems that name the field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        json_problem(&path, &inner)
    })?;
    de.end()
        .map_err(|e| Problem::new(Code::InvalidJson).detail(e.to_string()))?;
    Ok(value)
}

fn json_problem(path: &str, e: &serde_json::Error) -> Problem {
    use serde_json::error::Category;
    let path = if path == "." { "" } else { path };
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => Problem::new(Code::InvalidJson).detail(e.to_string()),
        Category::Data => {
            let message = e.to_string();
            let named = |prefix: &str| {
                message
                    .strip_prefix(prefix)
                    .and_then(|rest| rest.split('`').next())
                    .map(|name| join(path, name))
            };
            if let Some(field) = named("unknown field `") {
                // The path already ends with the unknown field's name.
                let field = if path.is_empty() { field } else { path.to_owned() };
                Problem::new(Code::UnknownField)
                    .field(field)
                    .detail(strip_position(&message))
            } else if let Some(field) = named("missing field `") {
                Problem::new(Code::MissingField)
                    .field(field)
                    .detail(strip_position(&message))
            } else {
                Problem::new(Code::InvalidField)
                    .field(path)
                    .detail(strip_position(&message))
            }
        }
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn strip_position(message: &str) -> String {
    message.split(" at line ").next().unwrap_or(message).to_owned()
}

/// A query string of type `T`.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| ApiQuery(q))
            .map_err(|e| Problem::new(Code::InvalidQuery).detail(e.body_text()))
    }
}

/// Path parameters of type `T`.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(p)| ApiPath(p))
            .map_err(|e| Problem::new(Code::NotFound).detail(e.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        segment: i64,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        #[serde(default)]
        add: Vec<Inner>,
    }

    fn problem(json: &str) -> Problem {
        parse_json::<Outer>(json.as_bytes()).unwrap_err()
    }

    #[test]
    fn errors_name_the_offending_field() {
        let p = problem(r#"{"name":"x","add":[{"segment":1},{"segment":"two"}]}"#);
        assert_eq!(
            (p.code.as_str(), p.field.as_deref()),
            ("invalid_field", Some("add[1].segment"))
        );
        let p = problem(r#"{"name":"x","colour":1}"#);
        assert_eq!((p.code.as_str(), p.field.as_deref()), ("unknown_field", Some("colour")));
        let p = problem(r#"{"name":"x","add":[{"segment":1,"extra":2}]}"#);
        assert_eq!(
            (p.code.as_str(), p.field.as_deref()),
            ("unknown_field", Some("add[0].extra"))
        );
        let p = problem(r#"{"add":[]}"#);
        assert_eq!((p.code.as_str(), p.field.as_deref()), ("missing_field", Some("name")));
        assert_eq!(problem(r#"{"name":"#).code.as_str(), "invalid_json");
        assert_eq!(problem(r#"{"name":"x"} trailing"#).code.as_str(), "invalid_json");
    }
}
