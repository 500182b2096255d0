//! Activities and the segment-building queue on SQLite.

use async_trait::async_trait;
use cohort_core::{Activity, ActivityFilter, ActivityId, ActivityType, CustomerId, Page, PageRequest, Timestamp};
use cohort_store::codec::{decode_attributes, decode_order, stored};
use cohort_store::{ActivityRecording, ActivityStore, Queued, Reacting, StoreResult};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::SqliteStore;
use crate::error::db;
use crate::memberships::customer_seq;
use crate::recording::SqliteRecording;

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
    async fn begin_recording(&self, now: Timestamp, reacting: Reacting) -> StoreResult<Box<dyn ActivityRecording>> {
        Ok(Box::new(SqliteRecording::begin(self, now, reacting).await?))
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
