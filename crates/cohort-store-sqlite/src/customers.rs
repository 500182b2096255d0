//! Customers on SQLite: the shared SQL of `cohort_store::sql_customer_store!`.

use sqlx::SqliteConnection;
use sqlx::sqlite::SqliteRow;

use crate::{SqliteStore, import, memberships};

cohort_store::sql_customer_store!(SqliteStore, row: SqliteRow, connection: SqliteConnection, read: read,
    write: write, begin: begin_with("BEGIN IMMEDIATE"), db: crate::error::db, unique: crate::error::unique,
    json_in: "", json_out: "", lock: "", import: import::SqliteImport::begin);
