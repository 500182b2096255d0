//! Mapping of sqlx errors to store errors.

use cohort_store::StoreError;

/// Any database failure: logged by the caller, opaque to clients.
pub(crate) fn db(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Maps a unique violation to a conflict on `field`, anything else to `db`.
pub(crate) fn unique(field: &'static str, detail: impl FnOnce() -> String) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::conflict(field, detail()),
        _ => db(e),
    }
}
