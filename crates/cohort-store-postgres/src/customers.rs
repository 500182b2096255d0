//! Customers on PostgreSQL: the shared SQL of `cohort_store::sql_customer_store!`, with
//! attributes stored as `jsonb` and a patched customer's row locked first. The triggers
//! and cascades of a delete (memberships, the membership log) and the deletion of its
//! activities run in its transaction.

use sqlx::PgConnection;
use sqlx::postgres::PgRow;

use crate::{PostgresStore, import, memberships};

cohort_store::sql_customer_store!(PostgresStore, row: PgRow, connection: PgConnection, read: pool,
    write: pool, begin: begin(), db: crate::error::db, unique: crate::error::unique,
    json_in: "::jsonb", json_out: "::text", lock: " FOR NO KEY UPDATE", import: import::PostgresImport::begin);
