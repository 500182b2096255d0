//! Customer ↔ segment memberships on PostgreSQL: reading them and applying a planned change.
//!
//! A change locks the customer row first (`FOR NO KEY UPDATE`), so concurrent changes
//! for one customer run one after the other — but not against a batch recording
//! activities, whose `FOR KEY SHARE` only keeps the customer from being deleted (two
//! stronger locks, taken in different orders, deadlocked) —, and holds share locks on the segments it adds and
//! their groups, so none of them is deleted, moved or made exclusive meanwhile.

use std::collections::{HashMap, HashSet};

use cohort_core::membership::plan;
use cohort_core::{CustomerId, Membership, SegmentChange, SegmentGroupId, SegmentId, SegmentPlace, Timestamp};
use cohort_store::codec::decode_source;
use cohort_store::{StoreError, StoreResult};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::error::db;

pub(crate) async fn customer_seq(conn: &mut PgConnection, customer: &CustomerId) -> StoreResult<i64> {
    sqlx::query_scalar("SELECT seq FROM customers WHERE id = $1")
        .bind(customer.as_str())
        .fetch_optional(conn)
        .await
        .map_err(db)?
        .ok_or_else(|| StoreError::not_found("customer", customer))
}

/// Like `customer_seq`, and locks the customer row against other changes until the
/// transaction ends.
async fn lock_customer(conn: &mut PgConnection, customer: &CustomerId) -> StoreResult<i64> {
    sqlx::query_scalar("SELECT seq FROM customers WHERE id = $1 FOR NO KEY UPDATE")
        .bind(customer.as_str())
        .fetch_optional(conn)
        .await
        .map_err(db)?
        .ok_or_else(|| StoreError::not_found("customer", customer))
}

/// Seqs of the customers that lines of a batch name, by id, each locked against deletion
/// (`FOR KEY SHARE`, in seq order) until the transaction ends. The first line naming an
/// unknown customer fails the batch (`lines[i].customer`).
pub(crate) async fn lock_customers(
    conn: &mut PgConnection,
    lines: &[&CustomerId],
    first: usize,
) -> StoreResult<HashMap<String, i64>> {
    let wanted: Vec<&str> = lines
        .iter()
        .map(|c| c.as_str())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let seqs: HashMap<String, i64> =
        sqlx::query_as("SELECT id, seq FROM customers WHERE id = ANY($1) ORDER BY seq FOR KEY SHARE")
            .bind(wanted)
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?
            .into_iter()
            .collect();
    if let Some((i, customer)) = lines.iter().enumerate().find(|(_, c)| !seqs.contains_key(c.as_str())) {
        return Err(StoreError::dangling(
            &format!("lines[{}].customer", first + i),
            format!("customer {customer} does not exist"),
        ));
    }
    Ok(seqs)
}

pub(crate) fn membership_from_row(customer: &CustomerId, row: &PgRow) -> StoreResult<Membership> {
    Ok(Membership {
        customer: customer.clone(),
        segment: SegmentId::new(row.get("segment_id")),
        source: decode_source(row.get("source"))?,
        assigned_at: Timestamp::from_unix_micros(row.get("assigned_at")),
        application_counter: u32::try_from(row.get::<i64, _>("application_counter")).unwrap_or(u32::MAX),
        expires_at: row.get::<Option<i64>, _>("expires_at").map(Timestamp::from_unix_micros),
    })
}

pub(crate) async fn live(
    conn: &mut PgConnection,
    customer: &CustomerId,
    seq: i64,
    now: Timestamp,
) -> StoreResult<Vec<Membership>> {
    let rows = sqlx::query(
        "SELECT segment_id, source, assigned_at, application_counter, expires_at FROM memberships
         WHERE customer_seq = $1 AND (expires_at IS NULL OR expires_at > $2) ORDER BY segment_id",
    )
    .bind(seq)
    .bind(now.unix_micros())
    .fetch_all(conn)
    .await
    .map_err(db)?;
    rows.iter().map(|r| membership_from_row(customer, r)).collect()
}

/// Applies `change` inside the caller's transaction and returns the live memberships.
pub(crate) async fn change(
    conn: &mut PgConnection,
    customer: &CustomerId,
    change: &SegmentChange,
    now: Timestamp,
) -> StoreResult<Vec<Membership>> {
    let seq = lock_customer(conn, customer).await?;

    let added: Vec<i64> = change.add.iter().map(|a| a.segment.get()).collect();
    let rows = sqlx::query(
        "SELECT s.id, s.group_id, g.exclusive FROM segments s JOIN segment_groups g ON g.id = s.group_id
         WHERE s.id = ANY($1) FOR SHARE",
    )
    .bind(&added)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    let places: HashMap<SegmentId, SegmentPlace> = rows
        .iter()
        .map(|r| {
            let place = SegmentPlace {
                group: SegmentGroupId::new(r.get("group_id")),
                exclusive: r.get("exclusive"),
            };
            (SegmentId::new(r.get("id")), place)
        })
        .collect();
    if let Some((i, missing)) = change
        .add
        .iter()
        .enumerate()
        .find(|(_, a)| !places.contains_key(&a.segment))
    {
        return Err(StoreError::dangling(
            &format!("add[{i}].segment"),
            format!("segment {} does not exist", missing.segment),
        ));
    }

    let rows = sqlx::query(
        "SELECT m.segment_id, m.source, m.assigned_at, m.application_counter, m.expires_at, s.group_id
         FROM memberships m JOIN segments s ON s.id = m.segment_id WHERE m.customer_seq = $1",
    )
    .bind(seq)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    let stored = rows
        .iter()
        .map(|r| {
            Ok((
                membership_from_row(customer, r)?,
                SegmentGroupId::new(r.get("group_id")),
            ))
        })
        .collect::<StoreResult<Vec<_>>>()?;

    let planned = plan(customer, change, &places, &stored, now)?;
    if !planned.removals.is_empty() {
        let removals: Vec<i64> = planned.removals.iter().map(|s| s.get()).collect();
        sqlx::query("DELETE FROM memberships WHERE customer_seq = $1 AND segment_id = ANY($2)")
            .bind(seq)
            .bind(removals)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
    }
    if !planned.upserts.is_empty() {
        // One statement for all rows; a change names each segment at most once.
        let upserts = &planned.upserts;
        sqlx::query(
            "INSERT INTO memberships (customer_seq, segment_id, source, assigned_at, application_counter, expires_at)
             SELECT $1, v.* FROM UNNEST($2::bigint[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[])
                 AS v (segment_id, source, assigned_at, application_counter, expires_at)
             ON CONFLICT (customer_seq, segment_id) DO UPDATE SET source = excluded.source,
                 assigned_at = excluded.assigned_at, application_counter = excluded.application_counter,
                 expires_at = excluded.expires_at",
        )
        .bind(seq)
        .bind(upserts.iter().map(|m| m.segment.get()).collect::<Vec<_>>())
        .bind(upserts.iter().map(|m| m.source.as_str()).collect::<Vec<_>>())
        .bind(upserts.iter().map(|m| m.assigned_at.unix_micros()).collect::<Vec<_>>())
        .bind(
            upserts
                .iter()
                .map(|m| i64::from(m.application_counter))
                .collect::<Vec<_>>(),
        )
        .bind(
            upserts
                .iter()
                .map(|m| m.expires_at.map(Timestamp::unix_micros))
                .collect::<Vec<_>>(),
        )
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    }
    live(conn, customer, seq, now).await
}
