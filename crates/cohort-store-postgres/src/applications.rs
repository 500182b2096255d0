//! Applications on PostgreSQL: the shared SQL of `cohort_store::sql_application_store!`,
//! with the row it changes locked first.

use sqlx::postgres::PgRow;

use crate::PostgresStore;

cohort_store::sql_application_store!(PostgresStore, row: PgRow, read: pool, write: pool,
    begin: begin(), db: crate::error::db, unique: crate::error::unique,
    lock: " FOR UPDATE", position: "strpos");
