//! Segment builders on SQLite: their definitions are the shared SQL of
//! `cohort_store::sql_builder_store!`; here are the inputs of a build (profiles and
//! activity aggregates computed in SQL), the memberships of groups, and the membership
//! changes a build writes.

use cohort_core::{Aggregate, AggregateValue, Aggregates, CustomerId, SegmentGroupId, SegmentId, Timestamp};
use cohort_store::codec::amount_from_e4;
use cohort_store::{BuildChange, BuildInput, BuildSelection, BuildSummary, KeySelection, StoreError, StoreResult};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};

use crate::SqliteStore;
use crate::error::db;

/// Membership rows per statement: two bound values each, under SQLite's 32,766.
const ROWS_PER_STATEMENT: usize = 8_000;

/// A JSON array for `json_each`.
fn json_list<T: Into<serde_json::Value> + Clone>(items: &[T]) -> String {
    serde_json::Value::Array(items.iter().cloned().map(Into::into).collect()).to_string()
}

cohort_store::sql_builder_store!(SqliteStore, row: SqliteRow, database: Sqlite, read: read, write: write,
    begin: begin_with("BEGIN IMMEDIATE"), db: crate::error::db, unique: crate::error::unique, lock: "", key_share: "",
    build_inputs: build_inputs, group_memberships: group_memberships, apply_build: apply_build);

async fn build_inputs(
    store: &SqliteStore,
    selection: BuildSelection<'_>,
    profiles: bool,
    aggregates: &[Aggregate],
    now: Timestamp,
) -> StoreResult<Vec<BuildInput>> {
    let mut conn = store.read.acquire().await.map_err(db)?;
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
        inputs.push(BuildInput::from_row(row.get(0), row.get(1), row.get(2), aggregates)?);
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
    store: &SqliteStore,
    groups: &[SegmentGroupId],
    customers: KeySelection<'_>,
    now: Timestamp,
) -> StoreResult<Vec<(i64, SegmentId)>> {
    let groups = json_list(&groups.iter().map(|g| g.get()).collect::<Vec<_>>());
    let mut conn = store.read.acquire().await.map_err(db)?;
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

async fn apply_build(store: &SqliteStore, changes: &[BuildChange], now: Timestamp) -> StoreResult<BuildSummary> {
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
    let mut tx = store.write.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
    for chunk in removes.chunks(ROWS_PER_STATEMENT) {
        let mut delete = QueryBuilder::<Sqlite>::new("DELETE FROM memberships WHERE (customer_seq, segment_id) IN (");
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
