//! JSON answers, serialized into one growing buffer.
//!
//! axum's `Json` writes through a `BytesMut` writer, one `put_slice` per token; an
//! answer of a few kilobytes (a basket with its reasons) then spends more time in
//! those calls than in serializing. This writes into a `Vec` and hands it over as
//! the body without a copy.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::problem::{Code, Problem};

/// Room for a typical answer before the first reallocation.
const INITIAL_CAPACITY: usize = 1024;

/// A JSON answer of type `T`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        let mut body = Vec::with_capacity(INITIAL_CAPACITY);
        match serde_json::to_writer(&mut body, &self.0) {
            Ok(()) => (
                [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
                body,
            )
                .into_response(),
            Err(cause) => {
                tracing::error!(%cause, "answer not serialized");
                Problem::new(Code::Internal).into_response()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;

    use super::*;

    #[derive(Serialize)]
    struct Answer {
        id: i64,
        name: &'static str,
    }

    #[tokio::test]
    async fn an_answer_is_its_json_with_the_json_content_type() {
        let response = Json(Answer {
            id: 7,
            name: "Gold \"tier\"",
        })
        .into_response();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        assert_eq!(&body[..], br#"{"id":7,"name":"Gold \"tier\""}"#);
    }

    #[tokio::test]
    async fn an_answer_that_cannot_be_serialized_is_an_opaque_internal_error() {
        let mut map = std::collections::HashMap::new();
        map.insert((1, 2), "a key JSON cannot hold");
        let response = Json(map).into_response();
        assert_eq!(response.status(), 500);
    }
}
