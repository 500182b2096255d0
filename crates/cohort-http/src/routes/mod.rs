//! The routes of the API, one module per resource, and what they share:
//! list parameters, cursors and list bodies.

pub mod activities;
pub mod applications;
pub mod automation;
pub mod baskets;
pub mod builders;
pub mod context;
pub mod customers;
pub mod promotions;
pub mod query;
pub mod rights;
pub mod segment_groups;
pub mod segments;
pub mod services;
pub mod system;
pub mod target_groups;
pub mod targeting;
pub mod tracker;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cohort_core::{Invalid, Page, PageRequest};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::problem::{Code, Problem};

/// Query parameters of list endpoints filtered by name.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NameListParams {
    /// Case-insensitive part of the name.
    pub name: Option<String>,
    /// Page size, 1 to 1000 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Listed<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to read the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl<T> Listed<T> {
    pub fn from_page<D>(page: Page<D>, to_wire: impl Fn(D) -> T) -> Self {
        Self {
            items: page.items.into_iter().map(to_wire).collect(),
            next_cursor: page.next.map(encode_cursor),
        }
    }
}

fn encode_cursor(position: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("p{position}"))
}

fn decode_cursor(cursor: &str) -> Result<i64, Problem> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix('p').and_then(|n| n.parse().ok()))
        .ok_or_else(|| {
            Problem::new(Code::InvalidQuery)
                .field("cursor")
                .detail("not a cursor this API returned")
        })
}

/// Reads `limit` and `cursor` into a page request.
pub fn page_request(limit: Option<u32>, cursor: Option<&str>) -> Result<PageRequest, Problem> {
    let after = cursor.map(decode_cursor).transpose()?;
    PageRequest::new(after, limit)
        .map_err(|e: Invalid| Problem::new(Code::InvalidQuery).field(e.field).detail(e.reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        assert_eq!(decode_cursor(&encode_cursor(42)).unwrap(), 42);
        assert_eq!(decode_cursor("42").unwrap_err().code.as_str(), "invalid_query");
    }
}
