//! Automation on PostgreSQL: the shared SQL of `cohort_store::sql_automation_store!`;
//! due jobs are claimed with `FOR UPDATE SKIP LOCKED`, so servers sharing the database
//! claim different jobs without waiting for each other, and the inbox is read under
//! repeatable read, so its activities and their customers' counts are one snapshot.

use sqlx::postgres::PgRow;

use crate::PostgresStore;

cohort_store::sql_automation_store!(PostgresStore, row: PgRow, read: pool, write: pool,
    begin: begin(), lock: "FOR UPDATE SKIP LOCKED",
    snapshot: "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", json_out: "::text", db: crate::error::db,
    change_segments: crate::memberships::change, patch_customer: crate::customers::patch);
