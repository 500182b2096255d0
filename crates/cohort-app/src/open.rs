//! Opens the store a database URL names: `sqlite:` for the embedded default,
//! `postgres://` or `postgresql://` for PostgreSQL.

use std::sync::Arc;

use cohort_store::{Store, StoreError, StoreResult};
use cohort_store_postgres::PostgresStore;
use cohort_store_sqlite::SqliteStore;

/// The embedded default: an SQLite file in `./cohort-data/`.
pub fn default_database_url() -> String {
    "sqlite://cohort-data/cohort.db".to_owned()
}

/// Opens the store and applies pending migrations.
pub async fn open_store(url: &str) -> StoreResult<Arc<dyn Store>> {
    let store: Arc<dyn Store> = if url.starts_with("sqlite:") {
        Arc::new(SqliteStore::open(url).await?)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Arc::new(PostgresStore::open(url).await?)
    } else {
        return Err(StoreError::Backend(format!(
            "unsupported database url {}: use sqlite://PATH or postgres://…",
            redact(url)
        )));
    };
    store.migrate().await?;
    Ok(store)
}

/// The URL without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{}:***{}", &url[..scheme_end], user, &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(redact("postgres://u:secret@db:5432/x"), "postgres://u:***@db:5432/x");
        assert_eq!(redact("sqlite://data/c.db"), "sqlite://data/c.db");
    }
}
