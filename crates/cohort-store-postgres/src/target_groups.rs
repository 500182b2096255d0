//! Target groups on PostgreSQL: the shared SQL of `cohort_store::sql_target_group_store!`,
//! with the rows it changes locked first.

use sqlx::postgres::PgRow;

use crate::PostgresStore;

cohort_store::sql_target_group_store!(PostgresStore, row: PgRow, read: pool, write: pool,
    begin: begin(), db: crate::error::db, lock: " FOR UPDATE", position: "strpos");
