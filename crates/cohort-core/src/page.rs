//! Cursor pagination and the simple filters of list endpoints.

use crate::Invalid;

/// Page size when none is asked for.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size.
pub const MAX_LIMIT: u32 = 1_000;

/// Which page to read: items after the cursor position, at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Position of the last item of the previous page (a store-internal sort key).
    pub after: Option<i64>,
    pub limit: u32,
}

impl PageRequest {
    pub fn new(after: Option<i64>, limit: Option<u32>) -> Result<Self, Invalid> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(Invalid::new("limit", format!("expected 1 to {MAX_LIMIT}")));
        }
        Ok(Self { after, limit })
    }

    pub fn first() -> Self {
        Self {
            after: None,
            limit: DEFAULT_LIMIT,
        }
    }
}

/// One page of items and the position to continue after, if there may be more.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<i64>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows read with their sort keys.
    pub fn from_rows(mut rows: Vec<(i64, T)>, limit: u32) -> Self {
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next = if more { rows.last().map(|(k, _)| *k) } else { None };
        Self {
            items: rows.into_iter().map(|(_, t)| t).collect(),
            next,
        }
    }
}

/// Case-insensitive substring filter on names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameFilter(Option<String>);

impl NameFilter {
    pub fn new(contains: Option<String>) -> Self {
        Self(contains.filter(|s| !s.is_empty()).map(|s| s.to_lowercase()))
    }

    pub fn contains(&self) -> Option<&str> {
        self.0.as_deref()
    }

    pub fn matches(&self, name: &str) -> bool {
        self.0
            .as_deref()
            .is_none_or(|needle| name.to_lowercase().contains(needle))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_has_a_next_position_only_when_more_rows_exist() {
        let full = Page::from_rows(vec![(1, 'a'), (2, 'b'), (3, 'c')], 2);
        assert_eq!((full.items, full.next), (vec!['a', 'b'], Some(2)));
        let last = Page::from_rows(vec![(1, 'a'), (2, 'b')], 2);
        assert_eq!(last.next, None);
    }

    #[test]
    fn limits_outside_the_range_are_refused() {
        assert!(PageRequest::new(None, Some(0)).is_err());
        assert!(PageRequest::new(None, Some(MAX_LIMIT + 1)).is_err());
        assert_eq!(PageRequest::new(None, None).unwrap().limit, DEFAULT_LIMIT);
    }
}
