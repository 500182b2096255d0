//! The membership feed on SQLite: the trigger-written log and the snapshot reads an
//! in-memory index builds from.

use async_trait::async_trait;
use cohort_core::{CustomerId, SegmentId, Timestamp};
use cohort_store::codec::stored;
use cohort_store::{LogRead, MembershipChange, MembershipFeed, StoreError, StoreResult};
use sqlx::Row;

use crate::SqliteStore;
use crate::error::db;

#[async_trait]
impl MembershipFeed for SqliteStore {
    async fn membership_log_end(&self) -> StoreResult<i64> {
        let end: Option<i64> = sqlx::query_scalar("SELECT MAX(position) FROM membership_log")
            .fetch_one(&self.read)
            .await
            .map_err(db)?;
        // After pruning the table may be empty: the AUTOINCREMENT counter still knows the end.
        match end {
            Some(end) => Ok(end),
            None => sqlx::query_scalar(
                "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'membership_log'), 0)",
            )
            .fetch_one(&self.read)
            .await
            .map_err(db),
        }
    }

    async fn customer_keys(&self, after: i64, limit: u32) -> StoreResult<Vec<i64>> {
        sqlx::query_scalar("SELECT seq FROM customers WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.read)
            .await
            .map_err(db)
    }

    async fn segment_ids(&self) -> StoreResult<Vec<SegmentId>> {
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM segments ORDER BY id")
            .fetch_all(&self.read)
            .await
            .map_err(db)?;
        Ok(ids.into_iter().map(SegmentId::new).collect())
    }

    async fn plain_members(&self, segment: SegmentId, after: i64, limit: u32) -> StoreResult<Vec<i64>> {
        // One text of keys instead of a row each: sqlx hands SQLite rows over one at a
        // time, which at millions of members costs more than reading them. The
        // by-segment index carries the expiry: no table lookups.
        let keys: Option<String> = sqlx::query_scalar(
            "SELECT group_concat(customer_seq) FROM (
                 SELECT customer_seq FROM memberships
                 WHERE segment_id = $1 AND customer_seq > $2 AND expires_at IS NULL
                 ORDER BY customer_seq LIMIT $3)",
        )
        .bind(segment.get())
        .bind(after)
        .bind(i64::from(limit))
        .fetch_one(&self.read)
        .await
        .map_err(db)?;
        let mut keys = keys
            .iter()
            .flat_map(|text| text.split(','))
            .map(|k| {
                k.parse()
                    .map_err(|_| StoreError::Backend(format!("customer key {k:?} among a segment's members")))
            })
            .collect::<StoreResult<Vec<i64>>>()?;
        // group_concat keeps no promised order.
        keys.sort_unstable();
        Ok(keys)
    }

    async fn expiring_members(&self, segment: SegmentId) -> StoreResult<Vec<(i64, Timestamp)>> {
        let rows = sqlx::query(
            "SELECT customer_seq, expires_at FROM memberships WHERE segment_id = $1 AND expires_at IS NOT NULL",
        )
        .bind(segment.get())
        .fetch_all(&self.read)
        .await
        .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), Timestamp::from_unix_micros(r.get(1))))
            .collect())
    }

    async fn read_membership_log(&self, after: i64, gaps: &[i64], limit: u32) -> StoreResult<LogRead> {
        let gaps = serde_json::to_string(gaps).expect("numbers serialize");
        let rows = sqlx::query(
            "SELECT position, customer_seq, segment_id, present, expires_at FROM membership_log
             WHERE position > $1 OR position IN (SELECT value FROM json_each($2))
             ORDER BY position LIMIT $3",
        )
        .bind(after)
        .bind(gaps)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await
        .map_err(db)?;
        let changes = rows
            .iter()
            .map(|r| MembershipChange {
                position: r.get(0),
                customer: r.get(1),
                segment: r.get::<Option<i64>, _>(2).map(SegmentId::new),
                present: r.get(3),
                expires_at: r.get::<Option<i64>, _>(4).map(Timestamp::from_unix_micros),
            })
            .collect();
        // One writer at a time, committing positions in order.
        Ok(LogRead {
            changes,
            ended_below: None,
        })
    }

    async fn log_writers_bound(&self) -> StoreResult<Option<i64>> {
        Ok(None)
    }

    async fn prune_membership_log(&self, through: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM membership_log WHERE position <= $1")
            .bind(through)
            .execute(&self.write)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn customer_key(&self, id: &CustomerId) -> StoreResult<Option<i64>> {
        sqlx::query_scalar("SELECT seq FROM customers WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.read)
            .await
            .map_err(db)
    }

    async fn customer_ids(&self, keys: &[i64]) -> StoreResult<Vec<CustomerId>> {
        let list = serde_json::to_string(keys).expect("numbers serialize");
        let rows: Vec<(i64, String)> =
            sqlx::query_as("SELECT seq, id FROM customers WHERE seq IN (SELECT value FROM json_each($1))")
                .bind(list)
                .fetch_all(&self.read)
                .await
                .map_err(db)?;
        let by_key: std::collections::HashMap<i64, String> = rows.into_iter().collect();
        keys.iter()
            .filter_map(|k| by_key.get(k))
            .map(|id| stored(CustomerId::parse("id", id)))
            .collect()
    }
}
