//! Targeting on PostgreSQL: the shared SQL of `cohort_store::sql_targeting_store!`, with
//! visitors read with `= ANY` and saved with one `UNNEST` upsert per batch, in id order
//! so concurrent savers lock rows alike.

use cohort_core::{CustomerId, VisitorId};
use cohort_store::codec::encode_visitor_state;
use cohort_store::{StoreResult, StoredVisitor};
use sqlx::postgres::PgRow;

use crate::PostgresStore;
use crate::error::db;

cohort_store::sql_targeting_store!(PostgresStore, row: PgRow, read: pool, write: pool,
    db: crate::error::db, visitors: visitors, save_visitors: save_visitors);

async fn visitors(store: &PostgresStore, ids: &[VisitorId]) -> StoreResult<Vec<StoredVisitor>> {
    let ids: Vec<&str> = ids.iter().map(VisitorId::as_str).collect();
    let rows = sqlx::query(
        "SELECT v.id, v.state, c.id AS customer FROM visitors v
         LEFT JOIN customers c ON c.seq = v.customer_seq WHERE v.id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&store.pool)
    .await
    .map_err(db)?;
    rows.iter().map(visitor_from_row).collect()
}

async fn save_visitors(store: &PostgresStore, visitors: &[StoredVisitor]) -> StoreResult<()> {
    let mut sorted: Vec<&StoredVisitor> = visitors.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    sorted.dedup_by(|a, b| a.id == b.id);
    let ids: Vec<&str> = sorted.iter().map(|v| v.id.as_str()).collect();
    let customers: Vec<Option<&str>> = sorted
        .iter()
        .map(|v| v.state.customer.as_ref().map(CustomerId::as_str))
        .collect();
    let seen: Vec<i64> = sorted.iter().map(|v| v.state.last_seen.unix_micros()).collect();
    let states: Vec<String> = sorted.iter().map(|v| encode_visitor_state(&v.state)).collect();
    sqlx::query(
        "INSERT INTO visitors (id, customer_seq, last_seen, state)
         SELECT u.id, c.seq, u.last_seen, u.state
         FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[]) AS u (id, customer, last_seen, state)
         LEFT JOIN customers c ON c.id = u.customer
         ORDER BY u.id
         ON CONFLICT (id) DO UPDATE SET customer_seq = excluded.customer_seq,
           last_seen = excluded.last_seen, state = excluded.state",
    )
    .bind(&ids)
    .bind(&customers)
    .bind(&seen)
    .bind(&states)
    .execute(&store.pool)
    .await
    .map_err(db)?;
    Ok(())
}
