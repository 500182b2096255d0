//! Automation on SQLite: the shared SQL of `cohort_store::sql_automation_store!`, with
//! write transactions that take the write lock at once (`BEGIN IMMEDIATE`); the one
//! writer makes a claim exclusive.

use sqlx::sqlite::SqliteRow;

use crate::SqliteStore;

cohort_store::sql_automation_store!(SqliteStore, row: SqliteRow, read: read, write: write,
    begin: begin_with("BEGIN IMMEDIATE"), lock: "", snapshot: "", json_out: "", db: crate::error::db,
    change_segments: crate::memberships::change, patch_customer: crate::customers::patch);
