//! Automation on PostgreSQL: the shared SQL of `cohort_store::sql_automation_store!`;
//! due jobs are claimed with `FOR UPDATE SKIP LOCKED`, so servers sharing the database
//! claim different jobs without waiting for each other.

use sqlx::postgres::PgRow;

use crate::PostgresStore;

cohort_store::sql_automation_store!(PostgresStore, row: PgRow, read: pool, write: pool,
    begin: begin(), lock: "FOR UPDATE SKIP LOCKED", db: crate::error::db,
    change_segments: crate::memberships::change, patch_customer: crate::customers::patch);
