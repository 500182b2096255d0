//! Promotions on PostgreSQL: the shared SQL of `cohort_store::sql_promotion_store!`.
//! Limits hold under concurrent orders because each use is a conditional update of a
//! locked row, re-checked after a concurrent writer commits; codes and budgets are
//! updated in a fixed order, and an order locks its customer's row, so orders never
//! deadlock. Replacing a promotion locks its codes first, as orders do.

use cohort_core::{CustomerId, ServiceId, Timestamp};
use cohort_store::codec::{decode_attributes, decode_memberships};
use cohort_store::{CustomerFacts, CustomerProfile, StoreResult};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Postgres};

use crate::PostgresStore;
use crate::error::db;

cohort_store::sql_promotion_store!(PostgresStore, row: PgRow, database: Postgres, read: pool, write: pool,
    begin: begin(), db: crate::error::db,
    lock_codes: "SELECT 1 FROM promotion_codes c JOIN code_groups g ON g.id = c.group_id
                 WHERE g.promotion_id = $1 ORDER BY c.code FOR UPDATE OF c",
    lock: " FOR UPDATE",
    insert_activity: "INSERT INTO activities (id, customer_seq, type, at, attributes, order_data, amount_e4, recorded_at)
                      VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
    customer_facts: customer_facts);

fn count(value: Option<i64>) -> Option<u32> {
    value.map(|v| u32::try_from(v).unwrap_or(u32::MAX))
}

/// A customer's facts and live memberships in the services' stored segments as one
/// row (the memberships as one JSON array): one round trip for a calculation.
pub(crate) async fn profile(
    pool: &PgPool,
    customer: &CustomerId,
    services: &[ServiceId],
    now: Timestamp,
) -> StoreResult<Option<CustomerProfile>> {
    let row: Option<(i64, String, i64, String, bool)> = sqlx::query_as(
        "SELECT c.seq, c.attributes::text,
                coalesce((SELECT n.count FROM activity_counts n WHERE n.customer_seq = c.seq AND n.type = 'order'), 0),
                (SELECT COALESCE(json_agg(json_build_array(
                     m.segment_id, m.source, m.assigned_at, m.application_counter, m.expires_at,
                     s.group_id, s.name, s.reference, s.calculated::int,
                     g.service, g.name, g.reference, g.calculated::int, g.exclusive::int)), '[]')::text
                 FROM memberships m JOIN segments s ON s.id = m.segment_id JOIN segment_groups g ON g.id = s.group_id
                 WHERE m.customer_seq = c.seq AND (m.expires_at IS NULL OR m.expires_at > $2)
                   AND g.service = ANY($3)),
                c.profiling_consent
         FROM customers c WHERE c.id = $1",
    )
    .bind(customer.as_str())
    .bind(now.unix_micros())
    .bind(services.iter().map(ServiceId::as_str).collect::<Vec<_>>())
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

async fn customer_facts(store: &PostgresStore, customer: &CustomerId) -> StoreResult<Option<CustomerFacts>> {
    let row: Option<(String, i64, bool)> = sqlx::query_as(
        "SELECT c.attributes::text,
                coalesce((SELECT n.count FROM activity_counts n WHERE n.customer_seq = c.seq AND n.type = 'order'), 0),
                c.profiling_consent
         FROM customers c WHERE c.id = $1",
    )
    .bind(customer.as_str())
    .fetch_optional(&store.pool)
    .await
    .map_err(db)?;
    row.map(|(attributes, orders, profiling_consent)| {
        Ok(CustomerFacts {
            attributes: decode_attributes(&attributes)?,
            orders: count(Some(orders)).unwrap_or(0),
            profiling_consent,
        })
    })
    .transpose()
}
