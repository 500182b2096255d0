//! Activities and the segment-building queue on SQLite.

use async_trait::async_trait;
use cohort_core::{Activity, ActivityFilter, ActivityId, ActivityType, CustomerId, Page, PageRequest, Timestamp};
use cohort_store::codec::{amount_e4, decode_attributes, decode_order, encode_attributes, encode_order, stored};
use cohort_store::{ActivityStore, Queued, RecordSummary, StoreError, StoreResult};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};

use crate::SqliteStore;
use crate::error::db;
use crate::memberships::{customer_seq, customer_seqs};

/// Rows per INSERT: 8 bound values each.
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
        // Rows recorded by this transaction get ids above the largest one now.
        let before: i64 = sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM activities")
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        // An id already stored (or repeated in the batch) is a retry: the unique index
        // skips it, which costs less than looking it up first.
        let mut recorded = 0u64;
        for chunk in activities.chunks(ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO activities (id, customer_seq, type, at, attributes, order_data, amount_e4, recorded_at) ",
            );
            insert.push_values(chunk, |mut row, a| {
                row.push_bind(a.id.as_str().to_owned())
                    .push_bind(seqs[a.customer.as_str()])
                    .push_bind(a.kind.as_str().to_owned())
                    .push_bind(a.at.unix_micros())
                    .push_bind(encode_attributes(&a.attributes))
                    .push_bind(a.order.as_ref().map(encode_order))
                    .push_bind(a.order.as_ref().and_then(amount_e4))
                    .push_bind(now.unix_micros());
            });
            insert.push(" ON CONFLICT (id) DO NOTHING");
            recorded += insert.build().execute(&mut *tx).await.map_err(db)?.rows_affected();
        }
        // Only customers with a newly recorded activity are queued for building.
        sqlx::query(
            "INSERT INTO segment_build_queue (customer_seq, queued_at)
             SELECT DISTINCT customer_seq, $2 FROM activities WHERE seq > $1
             ON CONFLICT (customer_seq) DO UPDATE SET version = segment_build_queue.version + 1",
        )
        .bind(before)
        .bind(now.unix_micros())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
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
