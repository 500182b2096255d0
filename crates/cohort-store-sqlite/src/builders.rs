//! Segment builders on SQLite: their definitions, the inputs of a build (profiles and
//! activity aggregates computed in SQL) and the membership changes it writes.

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
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};

use crate::SqliteStore;
use crate::error::{db, unique};

/// Membership rows per statement: two bound values each, under SQLite's 32,766.
const ROWS_PER_STATEMENT: usize = 8_000;

macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT id, name, group_id, definition, schedule, enabled, state, built_at, created_at, updated_at
             FROM segment_builders ",
            $rest
        )
    };
}

fn from_row(row: &SqliteRow) -> StoreResult<SegmentBuilder> {
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

/// A JSON array for `json_each`.
fn json_list<T: Into<serde_json::Value> + Clone>(items: &[T]) -> String {
    serde_json::Value::Array(items.iter().cloned().map(Into::into).collect()).to_string()
}

/// Creates the segments missing from a builder's group (those there are kept).
async fn insert_segments(
    tx: &mut sqlx::Transaction<'static, Sqlite>,
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
impl BuilderStore for SqliteStore {
    async fn create_builder(
        &self,
        builder: &NewSegmentBuilder,
        segments: &[NewSegment],
        now: Timestamp,
    ) -> StoreResult<SegmentBuilder> {
        let mut tx = self.write.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        let group: Option<i64> = sqlx::query_scalar("SELECT id FROM segment_groups WHERE id = $1")
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
        let row = sqlx::query(
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
            id: BuilderId::new(row.get(0)),
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
            .fetch_optional(&self.read)
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
        let mut tx = self.write.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        let row = sqlx::query(select!("WHERE id = $1"))
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
            .execute(&self.write)
            .await
            .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("segment builder", id));
        }
        Ok(())
    }

    async fn list_builders(&self) -> StoreResult<Vec<SegmentBuilder>> {
        let rows = sqlx::query(select!("ORDER BY id"))
            .fetch_all(&self.read)
            .await
            .map_err(db)?;
        rows.iter().map(from_row).collect()
    }

    async fn count_customers(&self) -> StoreResult<u64> {
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM customers")
            .fetch_one(&self.read)
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
            .execute(&self.write)
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
        let mut conn = self.read.acquire().await.map_err(db)?;
        let rows = match selection {
            BuildSelection::Page { after, limit } => {
                sqlx::query("SELECT seq, id, CASE WHEN $3 THEN attributes ELSE '{}' END FROM customers WHERE seq > $1 ORDER BY seq LIMIT $2")
                    .bind(after)
                    .bind(i64::from(limit))
                    .bind(profiles)
                    .fetch_all(&mut *conn)
                    .await
            }
            BuildSelection::Ids(ids) => {
                let list = json_list(&ids.iter().map(CustomerId::as_str).collect::<Vec<_>>());
                sqlx::query(
                    "SELECT seq, id, CASE WHEN $2 THEN attributes ELSE '{}' END FROM customers WHERE id IN (SELECT value FROM json_each($1))
                     ORDER BY seq",
                )
                .bind(list)
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
        // One text row for the page, `key,count,last,amount,…;…` (see group_memberships).
        let mut query = QueryBuilder::<Sqlite>::new("SELECT group_concat(line, ';') FROM (SELECT customer_seq");
        for a in aggregates {
            let since = a.since(now).map_or(i64::MIN, Timestamp::unix_micros);
            for (head, tail) in [
                ("count(CASE WHEN", " THEN 1 END)"),
                ("coalesce(max(CASE WHEN", " THEN at END), '')"),
                ("coalesce(sum(CASE WHEN", " THEN amount_e4 END), '')"),
            ] {
                query.push(" || ',' || ").push(head).push(" type = ");
                query.push_bind(a.activity.as_str().to_owned()).push(" AND at >= ");
                query.push_bind(since).push(tail);
            }
        }
        query.push(" AS line FROM activities WHERE ");
        match selection {
            BuildSelection::Page { .. } => {
                query.push("customer_seq BETWEEN ").push_bind(inputs[0].key);
                query.push(" AND ").push_bind(inputs[inputs.len() - 1].key);
            }
            BuildSelection::Ids(_) => {
                let keys: Vec<i64> = inputs.iter().map(|i| i.key).collect();
                query
                    .push("customer_seq IN (SELECT value FROM json_each(")
                    .push_bind(json_list(&keys))
                    .push("))");
            }
        }
        query.push(" AND at <= ").push_bind(now.unix_micros());
        query.push(" AND type IN (SELECT value FROM json_each(");
        query.push_bind(json_list(
            &aggregates.iter().map(|a| a.activity.as_str()).collect::<Vec<_>>(),
        ));
        query.push(")) GROUP BY customer_seq)");
        let joined: Option<String> = query.build_query_scalar().fetch_one(&mut *conn).await.map_err(db)?;
        let position: std::collections::HashMap<i64, usize> =
            inputs.iter().enumerate().map(|(i, input)| (input.key, i)).collect();
        let corrupt = |line: &str| StoreError::Backend(format!("unexpected aggregate line {line}"));
        for line in joined
            .as_deref()
            .unwrap_or_default()
            .split(';')
            .filter(|l| !l.is_empty())
        {
            let mut fields = line.split(',');
            let key: i64 = fields
                .next()
                .and_then(|k| k.parse().ok())
                .ok_or_else(|| corrupt(line))?;
            let mut values = Vec::with_capacity(aggregates.len());
            for a in aggregates {
                let mut next = || fields.next().ok_or_else(|| corrupt(line));
                let count: u64 = next()?.parse().map_err(|_| corrupt(line))?;
                let optional = |text: &str| -> Result<Option<i64>, StoreError> {
                    if text.is_empty() {
                        Ok(None)
                    } else {
                        text.parse().map(Some).map_err(|_| corrupt(line))
                    }
                };
                let last = optional(next()?)?;
                let amount = optional(next()?)?;
                let value = AggregateValue {
                    count,
                    last_at: last.map(Timestamp::from_unix_micros),
                    amount: amount.map(amount_from_e4).unwrap_or_default(),
                };
                values.push((a.clone(), value));
            }
            if let Some(&at) = position.get(&key) {
                inputs[at].aggregates = Aggregates::new(values);
            }
        }
        Ok(inputs)
    }

    async fn group_memberships(
        &self,
        groups: &[SegmentGroupId],
        customers: KeySelection<'_>,
        now: Timestamp,
    ) -> StoreResult<Vec<(i64, SegmentId)>> {
        let groups = json_list(&groups.iter().map(|g| g.get()).collect::<Vec<_>>());
        let mut conn = self.read.acquire().await.map_err(db)?;
        let segments: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM segments WHERE group_id IN (SELECT value FROM json_each($1))")
                .bind(groups)
                .fetch_all(&mut *conn)
                .await
                .map_err(db)?;
        // Constant segment ids let SQLite walk the primary key (customer, segment) of
        // the range instead of joining every membership with its segment.
        // One row for the whole selection: sqlx hands SQLite rows over one by one
        // through a channel, which costs more than reading them.
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT group_concat(customer_seq || ',' || segment_id, ';') FROM memberships WHERE ",
        );
        match customers {
            KeySelection::Range { from, to } => {
                query
                    .push("customer_seq BETWEEN ")
                    .push_bind(from)
                    .push(" AND ")
                    .push_bind(to);
            }
            KeySelection::Keys(keys) => {
                query
                    .push("customer_seq IN (SELECT value FROM json_each(")
                    .push_bind(json_list(keys))
                    .push("))");
            }
        }
        query
            .push(" AND segment_id IN (SELECT value FROM json_each(")
            .push_bind(json_list(&segments));
        query
            .push(")) AND (expires_at IS NULL OR expires_at > ")
            .push_bind(now.unix_micros());
        query.push(")");
        let joined: Option<String> = query.build_query_scalar().fetch_one(&mut *conn).await.map_err(db)?;
        let mut pairs = Vec::new();
        for pair in joined
            .as_deref()
            .unwrap_or_default()
            .split(';')
            .filter(|p| !p.is_empty())
        {
            let parsed = pair
                .split_once(',')
                .and_then(|(c, s)| Some((c.parse().ok()?, SegmentId::new(s.parse().ok()?))));
            pairs.push(parsed.ok_or_else(|| StoreError::Backend(format!("unexpected membership pair {pair}")))?);
        }
        pairs.sort_unstable();
        Ok(pairs)
    }

    async fn apply_build(&self, changes: &[BuildChange], now: Timestamp) -> StoreResult<BuildSummary> {
        let removes: Vec<(i64, i64)> = changes
            .iter()
            .flat_map(|c| c.remove.iter().map(move |s| (c.customer, s.get())))
            .collect();
        let adds: Vec<(i64, i64)> = changes
            .iter()
            .flat_map(|c| c.add.iter().map(move |s| (c.customer, s.get())))
            .collect();
        let mut summary = BuildSummary::default();
        if removes.is_empty() && adds.is_empty() {
            return Ok(summary);
        }
        let mut tx = self.write.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        for chunk in removes.chunks(ROWS_PER_STATEMENT) {
            let mut delete =
                QueryBuilder::<Sqlite>::new("DELETE FROM memberships WHERE (customer_seq, segment_id) IN (");
            delete.push_values(chunk, |mut row, (customer, segment)| {
                row.push_bind(*customer).push_bind(*segment);
            });
            delete.push(")");
            summary.removed += delete.build().execute(&mut *tx).await.map_err(db)?.rows_affected();
        }
        for chunk in adds.chunks(ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO memberships (customer_seq, segment_id, source, assigned_at, application_counter,
                 expires_at) SELECT v.column1, v.column2, 'calculated', ",
            );
            insert.push_bind(now.unix_micros()).push(", 1, NULL FROM (");
            insert.push_values(chunk, |mut row, (customer, segment)| {
                row.push_bind(*customer).push_bind(*segment);
            });
            insert.push(
                ") AS v JOIN customers c ON c.seq = v.column1 WHERE true
                 ON CONFLICT (customer_seq, segment_id) DO UPDATE SET source = 'calculated',
                   assigned_at = excluded.assigned_at, application_counter = 1, expires_at = NULL
                 WHERE memberships.expires_at IS NOT NULL AND memberships.expires_at <= excluded.assigned_at",
            );
            summary.added += insert.build().execute(&mut *tx).await.map_err(db)?.rows_affected();
        }
        tx.commit().await.map_err(db)?;
        Ok(summary)
    }
}
