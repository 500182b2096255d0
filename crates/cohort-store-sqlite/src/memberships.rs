//! Customer ↔ segment memberships on SQLite: reading them and applying a planned change.

use std::collections::HashMap;

use cohort_core::membership::plan;
use cohort_core::{CustomerId, Membership, SegmentChange, SegmentGroupId, SegmentId, SegmentPlace, Timestamp};
use cohort_store::codec::decode_source;
use cohort_store::{StoreError, StoreResult};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use crate::error::db;

pub(crate) async fn customer_seq(conn: &mut SqliteConnection, customer: &CustomerId) -> StoreResult<i64> {
    sqlx::query_scalar("SELECT seq FROM customers WHERE id = $1")
        .bind(customer.as_str())
        .fetch_optional(conn)
        .await
        .map_err(db)?
        .ok_or_else(|| StoreError::not_found("customer", customer))
}

/// Seqs of the given customers that exist, by id.
pub(crate) async fn customer_seqs<'a>(
    conn: &mut SqliteConnection,
    ids: impl Iterator<Item = &'a str>,
) -> StoreResult<HashMap<String, i64>> {
    let wanted: Vec<&str> = ids.collect::<std::collections::HashSet<_>>().into_iter().collect();
    let mut seqs = HashMap::with_capacity(wanted.len());
    for chunk in wanted.chunks(10_000) {
        let list = serde_json::to_string(chunk).expect("strings serialize");
        // One JSON row for the chunk: sqlx hands rows over one at a time, which costs
        // more than the lookups.
        let found: String = sqlx::query_scalar(
            "SELECT json_group_array(json_array(id, seq)) FROM customers
             WHERE id IN (SELECT value FROM json_each($1))",
        )
        .bind(list)
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
        let rows: Vec<(String, i64)> = serde_json::from_str(&found)
            .map_err(|e| cohort_store::StoreError::Backend(format!("customer keys: {e}")))?;
        seqs.extend(rows);
    }
    Ok(seqs)
}

pub(crate) fn membership_from_row(customer: &CustomerId, row: &SqliteRow) -> StoreResult<Membership> {
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
    conn: &mut SqliteConnection,
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

fn id_list(ids: impl Iterator<Item = SegmentId>) -> String {
    let ids: Vec<String> = ids.map(|s| s.get().to_string()).collect();
    format!("[{}]", ids.join(","))
}

/// Applies `change` inside the caller's transaction and returns the live memberships.
pub(crate) async fn change(
    conn: &mut SqliteConnection,
    customer: &CustomerId,
    change: &SegmentChange,
    now: Timestamp,
) -> StoreResult<Vec<Membership>> {
    let seq = customer_seq(conn, customer).await?;

    let rows = sqlx::query(
        "SELECT s.id, s.group_id, g.exclusive FROM segments s JOIN segment_groups g ON g.id = s.group_id
         WHERE s.id IN (SELECT value FROM json_each($1))",
    )
    .bind(id_list(change.add.iter().map(|a| a.segment)))
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
        sqlx::query(
            "DELETE FROM memberships WHERE customer_seq = $1 AND segment_id IN (SELECT value FROM json_each($2))",
        )
        .bind(seq)
        .bind(id_list(planned.removals.iter().copied()))
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    }
    for m in &planned.upserts {
        sqlx::query(
            "INSERT INTO memberships (customer_seq, segment_id, source, assigned_at, application_counter, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (customer_seq, segment_id) DO UPDATE SET source = excluded.source,
                 assigned_at = excluded.assigned_at, application_counter = excluded.application_counter,
                 expires_at = excluded.expires_at",
        )
        .bind(seq)
        .bind(m.segment.get())
        .bind(m.source.as_str())
        .bind(m.assigned_at.unix_micros())
        .bind(i64::from(m.application_counter))
        .bind(m.expires_at.map(Timestamp::unix_micros))
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    }
    live(conn, customer, seq, now).await
}
