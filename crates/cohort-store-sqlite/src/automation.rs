//! Automation on SQLite: the shared SQL of `cohort_store::sql_automation_store!`, with
//! write transactions that take the write lock at once (`BEGIN IMMEDIATE`); the one
//! writer makes a claim exclusive.

use sqlx::sqlite::SqliteRow;

use crate::SqliteStore;

cohort_store::sql_automation_store!(SqliteStore, row: SqliteRow, read: read, write: write,
    begin: begin_with("BEGIN IMMEDIATE"), lock: "", snapshot: "",
    inbox_activities: "automation_inbox i JOIN activities a ON a.seq BETWEEN i.first_activity AND i.last_activity",
    json_out: "", db: crate::error::db,
    change_segments: crate::memberships::change, patch_customer: crate::customers::patch);
