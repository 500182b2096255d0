//! API keys on PostgreSQL: the shared SQL of `cohort_store::sql_key_store!`.

use sqlx::postgres::PgRow;

use crate::PostgresStore;

cohort_store::sql_key_store!(PostgresStore, row: PgRow, read: pool, write: pool, db: crate::error::db,
    unique: crate::error::unique);
