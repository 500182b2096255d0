//! API keys on SQLite: the shared SQL of `cohort_store::sql_key_store!`.

use sqlx::sqlite::SqliteRow;

use crate::SqliteStore;

cohort_store::sql_key_store!(SqliteStore, row: SqliteRow, read: read, write: write, db: crate::error::db,
    unique: crate::error::unique);
