//! Segment groups and segments on SQLite: the shared SQL of
//! `cohort_store::sql_segment_store!`.

use sqlx::SqliteConnection;
use sqlx::sqlite::SqliteRow;

use crate::SqliteStore;

cohort_store::sql_segment_store!(SqliteStore, row: SqliteRow, connection: SqliteConnection, read: read,
    write: write, begin: begin_with("BEGIN IMMEDIATE"), db: crate::error::db, unique: crate::error::unique,
    lock: "", share: "", key_share: "", position: "instr");
