//! Segment builders on PostgreSQL: their definitions, the inputs of a build (profiles and
//! activity aggregates computed in SQL) and the membership changes it writes.
//!
//! The inputs of a page of customers take two statements whatever its size: one for the
//! profiles, one that computes every aggregate asked for (`FILTER`ed aggregates over the
//! covering index `activities_by_customer`). Applying a build is one transaction of a
//! delete and an insert, each binding its pairs as two arrays; the insert locks the
//! customers it writes for (`FOR KEY SHARE`, in seq order) and skips those deleted
//! meanwhile.

use std::collections::HashMap;

use async_trait::async_trait;
use cohort_core::segment::NewSegment;
use cohort_core::{
    Aggregate, AggregateValue, Aggregates, BuilderId, CustomerId, Name, NewSegmentBuilder, SegmentBuilder,
    SegmentBuilderPatch, SegmentGroupId, SegmentId, Timestamp,
};
use cohort_store::codec::{amount_from_e4, decode_attributes, stored};
use cohort_store::{
    BuildChange, BuildInput, BuildSelection, BuildSummary, BuilderStore, KeySelection, StoreError, StoreResult,
};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, QueryBuilder, Row};

use crate::PostgresStore;
use crate::error::{db, unique};

macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT id, name, group_id, definition, schedule, enabled, state, built_at, created_at, updated_at
             FROM segment_builders ",
            $rest
        )
    };
}

fn from_row(row: &PgRow) -> StoreResult<SegmentBuilder> {
    Ok(SegmentBuilder {
        id: BuilderId::new(row.get("id")),
        name: stored(Name::parse("name", row.get("name")))?,
        group: SegmentGroupId::new(row.get("group_id")),
        definition: row.get("definition"),
        schedule: row.get("schedule"),
        enabled: row.get("enabled"),
        state: row.get("state"),
        built_at: row.get::<Option<i64>, _>("built_at").map(Timestamp::from_unix_micros),
        created_at: Timestamp::from_unix_micros(row.get("created_at")),
        updated_at: Timestamp::from_unix_micros(row.get("updated_at")),
    })
}

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

/// Creates the segments missing from a builder's group (those there are kept).
async fn insert_segments(
    tx: &mut sqlx::Transaction<'static, Postgres>,
    group: SegmentGroupId,
    segments: &[NewSegment],
) -> StoreResult<()> {
    for segment in segments {
        sqlx::query(
            "INSERT INTO segments (group_id, name, reference, calculated) VALUES ($1, $2, $3, TRUE)
             ON CONFLICT (group_id, reference) DO NOTHING",
        )
        .bind(group.get())
        .bind(segment.name.as_str())
        .bind(segment.reference.as_str())
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    }
    Ok(())
}

#[async_trait]
impl BuilderStore for PostgresStore {
    async fn create_builder(
        &self,
        builder: &NewSegmentBuilder,
        segments: &[NewSegment],
        now: Timestamp,
    ) -> StoreResult<SegmentBuilder> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        // The lock is the one the foreign key takes, taken before the check.
        let group: Option<i64> = sqlx::query_scalar("SELECT id FROM segment_groups WHERE id = $1 FOR KEY SHARE")
            .bind(builder.group.get())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        if group.is_none() {
            return Err(StoreError::dangling(
                "group",
                format!("segment group {} does not exist", builder.group),
            ));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO segment_builders (name, group_id, definition, schedule, enabled, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
        )
        .bind(builder.name.as_str())
        .bind(builder.group.get())
        .bind(&builder.definition)
        .bind(&builder.schedule)
        .bind(builder.enabled)
        .bind(now.unix_micros())
        .fetch_one(&mut *tx)
        .await
        .map_err(unique("group", || {
            format!("segment group {} already has a builder", builder.group)
        }))?;
        insert_segments(&mut tx, builder.group, segments).await?;
        tx.commit().await.map_err(db)?;
        Ok(SegmentBuilder {
            id: BuilderId::new(id),
            name: builder.name.clone(),
            group: builder.group,
            definition: builder.definition.clone(),
            schedule: builder.schedule.clone(),
            enabled: builder.enabled,
            state: None,
            built_at: None,
            created_at: now,
            updated_at: now,
        })
    }

    async fn builder(&self, id: BuilderId) -> StoreResult<Option<SegmentBuilder>> {
        let row = sqlx::query(select!("WHERE id = $1"))
            .bind(id.get())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(from_row).transpose()
    }

    async fn update_builder(
        &self,
        id: BuilderId,
        patch: SegmentBuilderPatch,
        segments: &[NewSegment],
        now: Timestamp,
    ) -> StoreResult<SegmentBuilder> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let row = sqlx::query(select!("WHERE id = $1 FOR UPDATE"))
            .bind(id.get())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?
            .ok_or_else(|| StoreError::not_found("segment builder", id))?;
        let mut builder = from_row(&row)?;
        builder.apply(patch, now);
        sqlx::query(
            "UPDATE segment_builders SET name = $2, definition = $3, schedule = $4, enabled = $5, state = $6,
             updated_at = $7 WHERE id = $1",
        )
        .bind(id.get())
        .bind(builder.name.as_str())
        .bind(&builder.definition)
        .bind(&builder.schedule)
        .bind(builder.enabled)
        .bind(&builder.state)
        .bind(now.unix_micros())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        insert_segments(&mut tx, builder.group, segments).await?;
        tx.commit().await.map_err(db)?;
        Ok(builder)
    }

    async fn delete_builder(&self, id: BuilderId) -> StoreResult<()> {
        let done = sqlx::query("DELETE FROM segment_builders WHERE id = $1")
            .bind(id.get())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("segment builder", id));
        }
        Ok(())
    }

    async fn list_builders(&self) -> StoreResult<Vec<SegmentBuilder>> {
        let rows = sqlx::query(select!("ORDER BY id"))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(from_row).collect()
    }

    async fn count_customers(&self) -> StoreResult<u64> {
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM customers")
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        Ok(count as u64)
    }

    async fn record_build(
        &self,
        id: BuilderId,
        state: Option<&str>,
        at: Timestamp,
        read_at: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE segment_builders SET state = $2, built_at = $3 WHERE id = $1 AND updated_at = $4")
            .bind(id.get())
            .bind(state)
            .bind(at.unix_micros())
            .bind(read_at.unix_micros())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn build_inputs(
        &self,
        selection: BuildSelection<'_>,
        profiles: bool,
        aggregates: &[Aggregate],
        now: Timestamp,
    ) -> StoreResult<Vec<BuildInput>> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
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
            inputs.push(BuildInput {
                key: row.get(0),
                id: stored(CustomerId::parse("id", row.get(1)))?,
                attributes: decode_attributes(row.get(2))?,
                aggregates: Aggregates::new(
                    aggregates
                        .iter()
                        .map(|a| (a.clone(), AggregateValue::default()))
                        .collect(),
                ),
            });
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
        &self,
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
                .fetch_all(&self.pool)
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
                .fetch_all(&self.pool)
                .await
            }
        }
        .map_err(db)?;
        Ok(rows.into_iter().map(|(c, s)| (c, SegmentId::new(s))).collect())
    }

    async fn apply_build(&self, changes: &[BuildChange], now: Timestamp) -> StoreResult<BuildSummary> {
        let (remove_customers, remove_segments) = pairs(changes, |c| &c.remove);
        let (add_customers, add_segments) = pairs(changes, |c| &c.add);
        let mut summary = BuildSummary::default();
        if remove_customers.is_empty() && add_customers.is_empty() {
            return Ok(summary);
        }
        let mut tx = self.pool.begin().await.map_err(db)?;
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
}
