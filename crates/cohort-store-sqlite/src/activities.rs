//! Activities and the segment-building queue on SQLite.

use std::collections::HashSet;

use async_trait::async_trait;
use cohort_core::{Activity, ActivityFilter, ActivityId, ActivityType, CustomerId, Page, PageRequest, Timestamp};
use cohort_store::codec::{amount_e4, decode_attributes, decode_order, encode_attributes, encode_order, stored};
use cohort_store::{ActivityStore, Queued, RecordSummary, StoreError, StoreResult};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};

use crate::SqliteStore;
use crate::error::db;
use crate::memberships::{customer_seq, customer_seqs};

/// Rows per INSERT: 7 bound values each.
const ROWS_PER_STATEMENT: usize = 1_000;

fn from_row(customer: &CustomerId, row: &SqliteRow) -> StoreResult<(i64, Activity)> {
    let order = row.get::<Option<&str>, _>("order_data").map(decode_order).transpose()?;
    let activity = Activity {
        id: stored(ActivityId::parse("id", row.get("id")))?,
        customer: customer.clone(),
        kind: stored(ActivityType::parse("type", row.get("type")))?,
        at: Timestamp::from_unix_micros(row.get("at")),
        attributes: decode_attributes(row.get("attributes"))?,
        order,
    };
    Ok((row.get("seq"), activity))
}

#[async_trait]
impl ActivityStore for SqliteStore {
    async fn record_activities(&self, activities: &[Activity], now: Timestamp) -> StoreResult<RecordSummary> {
        let mut tx = self.write.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        let seqs = customer_seqs(&mut tx, activities.iter().map(|a| a.customer.as_str())).await?;
        if let Some((i, a)) = activities
            .iter()
            .enumerate()
            .find(|(_, a)| !seqs.contains_key(a.customer.as_str()))
        {
            return Err(StoreError::dangling(
                &format!("lines[{i}].customer"),
                format!("customer {} does not exist", a.customer),
            ));
        }
        let mut seen = HashSet::new();
        let unique: Vec<&Activity> = activities.iter().filter(|a| seen.insert(a.id.as_str())).collect();
        // Only customers with a newly recorded activity are queued for building.
        let (mut recorded, mut queued) = (0u64, HashSet::new());
        for chunk in unique.chunks(ROWS_PER_STATEMENT) {
            // Ids already stored are retries: leave them out (cheaper than RETURNING).
            let ids = serde_json::to_string(&chunk.iter().map(|a| a.id.as_str()).collect::<Vec<_>>())
                .expect("strings serialize");
            let known: HashSet<String> =
                sqlx::query_scalar("SELECT id FROM activities WHERE id IN (SELECT value FROM json_each($1))")
                    .bind(ids)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db)?
                    .into_iter()
                    .collect();
            let fresh: Vec<&&Activity> = chunk.iter().filter(|a| !known.contains(a.id.as_str())).collect();
            if fresh.is_empty() {
                continue;
            }
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO activities (id, customer_seq, type, at, attributes, order_data, amount_e4, recorded_at) ",
            );
            insert.push_values(&fresh, |mut row, a| {
                row.push_bind(a.id.as_str().to_owned())
                    .push_bind(seqs[a.customer.as_str()])
                    .push_bind(a.kind.as_str().to_owned())
                    .push_bind(a.at.unix_micros())
                    .push_bind(encode_attributes(&a.attributes))
                    .push_bind(a.order.as_ref().map(encode_order))
                    .push_bind(a.order.as_ref().and_then(amount_e4))
                    .push_bind(now.unix_micros());
            });
            insert.build().execute(&mut *tx).await.map_err(db)?;
            recorded += fresh.len() as u64;
            queued.extend(fresh.iter().map(|a| seqs[a.customer.as_str()]));
        }
        let queued: Vec<i64> = queued.into_iter().collect();
        for chunk in queued.chunks(ROWS_PER_STATEMENT) {
            let mut queue = QueryBuilder::<Sqlite>::new("INSERT INTO segment_build_queue (customer_seq, queued_at) ");
            queue.push_values(chunk, |mut row, seq| {
                row.push_bind(*seq).push_bind(now.unix_micros());
            });
            queue.push(" ON CONFLICT (customer_seq) DO UPDATE SET version = segment_build_queue.version + 1");
            queue.build().execute(&mut *tx).await.map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(RecordSummary {
            recorded,
            duplicates: activities.len() as u64 - recorded,
        })
    }

    async fn list_activities(
        &self,
        customer: &CustomerId,
        filter: &ActivityFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Activity>> {
        let mut conn = self.read.acquire().await.map_err(db)?;
        let seq = customer_seq(&mut conn, customer).await?;
        let rows = sqlx::query(
            "SELECT seq, id, type, at, attributes, order_data FROM activities
             WHERE customer_seq = $1 AND seq > $2 AND ($3 IS NULL OR type = $3)
               AND ($4 IS NULL OR at >= $4) AND ($5 IS NULL OR at < $5)
             ORDER BY seq LIMIT $6",
        )
        .bind(seq)
        .bind(page.after.unwrap_or(0))
        .bind(filter.kind.as_ref().map(ActivityType::as_str))
        .bind(filter.since.map(Timestamp::unix_micros))
        .bind(filter.until.map(Timestamp::unix_micros))
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
        let rows = rows
            .iter()
            .map(|r| from_row(customer, r))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_rows(rows, page.limit))
    }

    async fn queued_for_building(&self, limit: u32) -> StoreResult<Vec<Queued>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT c.id, q.version FROM segment_build_queue q JOIN customers c ON c.seq = q.customer_seq
             ORDER BY q.queued_at, q.customer_seq LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|(id, version)| {
                Ok(Queued {
                    customer: stored(CustomerId::parse("id", id))?,
                    version: *version,
                })
            })
            .collect()
    }

    async fn built(&self, done: &[Queued]) -> StoreResult<()> {
        let list = serde_json::to_string(
            &done
                .iter()
                .map(|q| (q.customer.as_str(), q.version))
                .collect::<Vec<_>>(),
        )
        .expect("pairs serialize");
        sqlx::query(
            "DELETE FROM segment_build_queue WHERE (customer_seq, version) IN
             (SELECT c.seq, json_extract(j.value, '$[1]') FROM json_each($1) j
              JOIN customers c ON c.id = json_extract(j.value, '$[0]'))",
        )
        .bind(list)
        .execute(&self.write)
        .await
        .map_err(db)?;
        Ok(())
    }
}
