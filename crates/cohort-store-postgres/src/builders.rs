//! Segment builders on PostgreSQL: their definitions are the shared SQL of
//! `cohort_store::sql_builder_store!`; here are the inputs of a build (profiles and
//! activity aggregates computed in SQL), the memberships of groups, and the membership
//! changes a build writes.
//!
//! The inputs of a page of customers take two statements whatever its size: one for the
//! profiles, one that computes every aggregate asked for (`FILTER`ed aggregates over the
//! covering index `activities_by_customer`). Applying a build is one transaction of a
//! delete and an insert, each binding its pairs as two arrays; the insert locks the
//! customers it writes for (`FOR KEY SHARE`, in seq order) and skips those deleted
//! meanwhile.

use std::collections::HashMap;

use cohort_core::{Aggregate, AggregateValue, Aggregates, CustomerId, SegmentGroupId, SegmentId, Timestamp};
use cohort_store::codec::amount_from_e4;
use cohort_store::{BuildChange, BuildInput, BuildSelection, BuildSummary, KeySelection, StoreResult};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, QueryBuilder, Row};

use crate::PostgresStore;
use crate::error::db;

/// The `(customer key, segment)` pairs of `changes` picked by `side`, as two columns,
/// sorted (so concurrent builds lock rows in the same order) and without duplicates
/// (an upsert cannot touch one row twice).
fn pairs(changes: &[BuildChange], side: impl Fn(&BuildChange) -> &[SegmentId]) -> (Vec<i64>, Vec<i64>) {
    let mut pairs: Vec<(i64, i64)> = changes
        .iter()
        .flat_map(|c| side(c).iter().map(move |s| (c.customer, s.get())))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    pairs.into_iter().unzip()
}

cohort_store::sql_builder_store!(PostgresStore, row: PgRow, database: Postgres, read: pool, write: pool,
    begin: begin(), db: crate::error::db, unique: crate::error::unique, lock: " FOR UPDATE", key_share: " FOR KEY SHARE",
    build_inputs: build_inputs, group_memberships: group_memberships, apply_build: apply_build);

async fn build_inputs(
    store: &PostgresStore,
    selection: BuildSelection<'_>,
    profiles: bool,
    aggregates: &[Aggregate],
    now: Timestamp,
) -> StoreResult<Vec<BuildInput>> {
    let mut conn = store.pool.acquire().await.map_err(db)?;
    let rows = match selection {
        BuildSelection::Page { after, limit } => {
            sqlx::query("SELECT seq, id, CASE WHEN $3 THEN attributes::text ELSE '{}' END FROM customers WHERE seq > $1 ORDER BY seq LIMIT $2")
                .bind(after)
                .bind(i64::from(limit))
                .bind(profiles)
                .fetch_all(&mut *conn)
                .await
        }
        BuildSelection::Ids(ids) => {
            sqlx::query("SELECT seq, id, CASE WHEN $2 THEN attributes::text ELSE '{}' END FROM customers WHERE id = ANY($1) ORDER BY seq")
                .bind(ids.iter().map(CustomerId::as_str).collect::<Vec<_>>())
                .bind(profiles)
                .fetch_all(&mut *conn)
                .await
        }
    }
    .map_err(db)?;
    let mut inputs = Vec::with_capacity(rows.len());
    for row in &rows {
        inputs.push(BuildInput::from_row(row.get(0), row.get(1), row.get(2), aggregates)?);
    }
    if aggregates.is_empty() || inputs.is_empty() {
        return Ok(inputs);
    }
    // Three columns per aggregate; the statement depends only on how many there
    // are, so its prepared form is reused.
    let mut query = QueryBuilder::<Postgres>::new("SELECT customer_seq");
    for a in aggregates {
        let since = a.since(now).map_or(i64::MIN, Timestamp::unix_micros);
        for expression in ["count(*)", "max(at)", "sum(amount_e4)"] {
            query.push(", ").push(expression).push(" FILTER (WHERE type = ");
            query.push_bind(a.activity.as_str().to_owned()).push(" AND at >= ");
            query.push_bind(since).push(")");
            if expression == "sum(amount_e4)" {
                query.push("::bigint");
            }
        }
    }
    query.push(" FROM activities WHERE ");
    match selection {
        BuildSelection::Page { .. } => {
            query.push("customer_seq BETWEEN ").push_bind(inputs[0].key);
            query.push(" AND ").push_bind(inputs[inputs.len() - 1].key);
        }
        BuildSelection::Ids(_) => {
            let keys: Vec<i64> = inputs.iter().map(|i| i.key).collect();
            query.push("customer_seq = ANY(").push_bind(keys).push(")");
        }
    }
    query.push(" AND at <= ").push_bind(now.unix_micros());
    query.push(" AND type = ANY(");
    query.push_bind(
        aggregates
            .iter()
            .map(|a| a.activity.as_str().to_owned())
            .collect::<Vec<_>>(),
    );
    query.push(") GROUP BY customer_seq");
    let rows = query.build().fetch_all(&mut *conn).await.map_err(db)?;
    let position: HashMap<i64, usize> = inputs.iter().enumerate().map(|(i, input)| (input.key, i)).collect();
    for row in &rows {
        let Some(&at) = position.get(&row.get::<i64, _>(0)) else {
            continue;
        };
        let values = aggregates
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let count: i64 = row.get(1 + 3 * i);
                let last: Option<i64> = row.get(2 + 3 * i);
                let amount: Option<i64> = row.get(3 + 3 * i);
                let value = AggregateValue {
                    count: count as u64,
                    last_at: last.map(Timestamp::from_unix_micros),
                    amount: amount.map(amount_from_e4).unwrap_or_default(),
                };
                (a.clone(), value)
            })
            .collect();
        inputs[at].aggregates = Aggregates::new(values);
    }
    Ok(inputs)
}

async fn group_memberships(
    store: &PostgresStore,
    groups: &[SegmentGroupId],
    customers: KeySelection<'_>,
    now: Timestamp,
) -> StoreResult<Vec<(i64, SegmentId)>> {
    let groups: Vec<i64> = groups.iter().map(|g| g.get()).collect();
    let rows: Vec<(i64, i64)> = match customers {
        KeySelection::Range { from, to } => {
            sqlx::query_as(
                "SELECT m.customer_seq, m.segment_id FROM memberships m JOIN segments s ON s.id = m.segment_id
                 WHERE s.group_id = ANY($1) AND m.customer_seq BETWEEN $2 AND $3
                   AND (m.expires_at IS NULL OR m.expires_at > $4)
                 ORDER BY m.customer_seq, m.segment_id",
            )
            .bind(&groups)
            .bind(from)
            .bind(to)
            .bind(now.unix_micros())
            .fetch_all(&store.pool)
            .await
        }
        KeySelection::Keys(keys) => {
            sqlx::query_as(
                "SELECT m.customer_seq, m.segment_id FROM memberships m JOIN segments s ON s.id = m.segment_id
                 WHERE s.group_id = ANY($1) AND m.customer_seq = ANY($2)
                   AND (m.expires_at IS NULL OR m.expires_at > $3)
                 ORDER BY m.customer_seq, m.segment_id",
            )
            .bind(&groups)
            .bind(keys)
            .bind(now.unix_micros())
            .fetch_all(&store.pool)
            .await
        }
    }
    .map_err(db)?;
    Ok(rows.into_iter().map(|(c, s)| (c, SegmentId::new(s))).collect())
}

async fn apply_build(store: &PostgresStore, changes: &[BuildChange], now: Timestamp) -> StoreResult<BuildSummary> {
    let (remove_customers, remove_segments) = pairs(changes, |c| &c.remove);
    let (add_customers, add_segments) = pairs(changes, |c| &c.add);
    let mut summary = BuildSummary::default();
    if remove_customers.is_empty() && add_customers.is_empty() {
        return Ok(summary);
    }
    let mut tx = store.pool.begin().await.map_err(db)?;
    if !remove_customers.is_empty() {
        summary.removed = sqlx::query(
            "DELETE FROM memberships m USING UNNEST($1::bigint[], $2::bigint[]) AS d (customer_seq, segment_id)
             WHERE m.customer_seq = d.customer_seq AND m.segment_id = d.segment_id",
        )
        .bind(&remove_customers)
        .bind(&remove_segments)
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
    }
    if !add_customers.is_empty() {
        // The key share lock is the one the foreign key takes; taken in the join, it
        // makes a customer deleted meanwhile drop out of the rows instead of failing
        // the foreign key.
        summary.added = sqlx::query(
            "INSERT INTO memberships (customer_seq, segment_id, source, assigned_at, application_counter,
             expires_at)
             SELECT v.customer_seq, v.segment_id, 'calculated', $3, 1, NULL
             FROM UNNEST($1::bigint[], $2::bigint[]) AS v (customer_seq, segment_id)
             JOIN customers c ON c.seq = v.customer_seq
             ORDER BY v.customer_seq, v.segment_id
             FOR KEY SHARE OF c
             ON CONFLICT (customer_seq, segment_id) DO UPDATE SET source = 'calculated',
               assigned_at = EXCLUDED.assigned_at, application_counter = 1, expires_at = NULL
             WHERE memberships.expires_at IS NOT NULL AND memberships.expires_at <= EXCLUDED.assigned_at",
        )
        .bind(&add_customers)
        .bind(&add_segments)
        .bind(now.unix_micros())
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
    }
    tx.commit().await.map_err(db)?;
    Ok(summary)
}
