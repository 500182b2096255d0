//! Segment groups and segments on PostgreSQL: the shared SQL of
//! `cohort_store::sql_segment_store!`, with the row locks that keep exclusivity checks,
//! group deletions and service references exact under concurrent writers.

use sqlx::PgConnection;
use sqlx::postgres::PgRow;

use crate::PostgresStore;

cohort_store::sql_segment_store!(PostgresStore, row: PgRow, connection: PgConnection, read: pool,
    write: pool, begin: begin(), db: crate::error::db, unique: crate::error::unique,
    lock: " FOR UPDATE", share: " FOR SHARE", key_share: " FOR KEY SHARE", position: "strpos");
