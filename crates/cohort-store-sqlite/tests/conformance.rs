//! The storage conformance suite on SQLite, each test on its own in-memory database.

use cohort_store::Store;
use cohort_store_sqlite::SqliteStore;

async fn fresh() -> Box<dyn Store> {
    let store = SqliteStore::open("sqlite::memory:").await.expect("open sqlite");
    store.migrate().await.expect("migrate");
    Box::new(store)
}

cohort_store::conformance_suite!(fresh);
