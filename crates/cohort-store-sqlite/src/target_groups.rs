//! Target groups on SQLite: the shared SQL of `cohort_store::sql_target_group_store!`.

use sqlx::sqlite::SqliteRow;

use crate::SqliteStore;

cohort_store::sql_target_group_store!(SqliteStore, row: SqliteRow, read: read, write: write,
    begin: begin_with("BEGIN IMMEDIATE"), db: crate::error::db, lock: "", position: "instr");
