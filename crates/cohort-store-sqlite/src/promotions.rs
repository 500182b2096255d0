//! Promotions on SQLite: the shared SQL of `cohort_store::sql_promotion_store!`, in
//! write transactions that take the write lock at once; the one writer makes every
//! limit exact without row locks.

use cohort_core::{CustomerId, ServiceId, Timestamp};
use cohort_store::codec::{decode_attributes, decode_memberships};
use cohort_store::{CustomerFacts, CustomerProfile, StoreResult};
use sqlx::sqlite::SqliteRow;
use sqlx::{Sqlite, SqliteConnection, SqlitePool};

use crate::SqliteStore;
use crate::error::db;

cohort_store::sql_promotion_store!(SqliteStore, row: SqliteRow, database: Sqlite, read: read, write: write,
    begin: begin_with("BEGIN IMMEDIATE"), db: crate::error::db, lock_codes: "", lock: "",
    insert_activity: "INSERT OR IGNORE INTO activities
                          (id, customer_seq, type, at, attributes, order_data, amount_e4, recorded_at)
                      VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    customer_facts: customer_facts);

fn count(value: Option<i64>) -> Option<u32> {
    value.map(|v| u32::try_from(v).unwrap_or(u32::MAX))
}

async fn customer_facts(store: &SqliteStore, customer: &CustomerId) -> StoreResult<Option<CustomerFacts>> {
    let mut conn = store.read.acquire().await.map_err(db)?;
    Ok(facts_of(&mut conn, customer).await?.map(|(_, facts)| facts))
}

/// The customer's key, attributes and order count.
pub(crate) async fn facts_of(
    conn: &mut SqliteConnection,
    customer: &CustomerId,
) -> StoreResult<Option<(i64, CustomerFacts)>> {
    let row: Option<(i64, String, i64, bool)> = sqlx::query_as(
        "SELECT c.seq, c.attributes,
                coalesce((SELECT n.count FROM activity_counts n WHERE n.customer_seq = c.seq AND n.type = 'order'), 0),
                c.profiling_consent
         FROM customers c WHERE c.id = $1",
    )
    .bind(customer.as_str())
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    row.map(|(seq, attributes, orders, profiling_consent)| {
        Ok((
            seq,
            CustomerFacts {
                attributes: decode_attributes(&attributes)?,
                orders: count(Some(orders)).unwrap_or(0),
                profiling_consent,
            },
        ))
    })
    .transpose()
}

/// A customer's facts and live memberships in the services' stored segments as one
/// row: the memberships as one JSON array (sqlx hands each row over from its worker
/// thread, so one row instead of one per segment halves a calculation's read time).
pub(crate) async fn profile(
    pool: &SqlitePool,
    customer: &CustomerId,
    services: &[ServiceId],
    now: Timestamp,
) -> StoreResult<Option<CustomerProfile>> {
    let row: Option<(i64, String, i64, String, bool)> = sqlx::query_as(
        "SELECT c.seq, c.attributes,
                coalesce((SELECT n.count FROM activity_counts n WHERE n.customer_seq = c.seq AND n.type = 'order'), 0),
                (SELECT json_group_array(json_array(
                     m.segment_id, m.source, m.assigned_at, m.application_counter, m.expires_at,
                     s.group_id, s.name, s.reference, s.calculated,
                     g.service, g.name, g.reference, g.calculated, g.exclusive))
                 FROM memberships m JOIN segments s ON s.id = m.segment_id JOIN segment_groups g ON g.id = s.group_id
                 WHERE m.customer_seq = c.seq AND (m.expires_at IS NULL OR m.expires_at > $2)
                   AND g.service IN (SELECT value FROM json_each($3))),
                c.profiling_consent
         FROM customers c WHERE c.id = $1",
    )
    .bind(customer.as_str())
    .bind(now.unix_micros())
    .bind(serde_json::Value::from(services.iter().map(ServiceId::as_str).collect::<Vec<_>>()).to_string())
    .fetch_optional(pool)
    .await
    .map_err(db)?;
    let Some((key, attributes, orders, memberships, profiling_consent)) = row else {
        return Ok(None);
    };
    let facts = CustomerFacts {
        attributes: decode_attributes(&attributes)?,
        orders: count(Some(orders)).unwrap_or(0),
        profiling_consent,
    };
    let mut held = decode_memberships(customer, &memberships)?;
    held.sort_by(|(_, a), (_, b)| {
        (&a.group.service, a.group.id, a.segment.id).cmp(&(&b.group.service, b.group.id, b.segment.id))
    });
    Ok(Some(CustomerProfile {
        key,
        facts,
        memberships: held,
    }))
}
