//! Applications on SQLite: the shared SQL of `cohort_store::sql_application_store!`.

use sqlx::sqlite::SqliteRow;

use crate::SqliteStore;

cohort_store::sql_application_store!(SqliteStore, row: SqliteRow, read: read, write: write,
    begin: begin_with("BEGIN IMMEDIATE"), db: crate::error::db, unique: crate::error::unique,
    lock: "", position: "instr");
