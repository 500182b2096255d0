//! Automation on PostgreSQL: the shared SQL of `cohort_store::sql_automation_store!`;
//! due jobs are claimed with `FOR UPDATE SKIP LOCKED`, so servers sharing the database
//! claim different jobs without waiting for each other, and the inbox is read under
//! repeatable read, so its activities and their customers' counts are one snapshot;
//! each entry's activities are read by a range of seqs (`OFFSET 0` keeps the planner
//! from turning the lateral join into a scan of every activity).

use sqlx::postgres::PgRow;

use crate::PostgresStore;

cohort_store::sql_automation_store!(PostgresStore, row: PgRow, read: pool, write: pool,
    begin: begin(), lock: "FOR UPDATE SKIP LOCKED",
    snapshot: "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
    inbox_activities: "automation_inbox i CROSS JOIN LATERAL (SELECT a.seq, a.customer_seq, a.type FROM activities a
                       WHERE a.seq BETWEEN i.first_activity AND i.last_activity OFFSET 0) a",
    json_out: "::text", db: crate::error::db,
    change_segments: crate::memberships::change, patch_customer: crate::customers::patch);
