//! The membership feed on PostgreSQL: the trigger-written log and the snapshot reads an
//! in-memory index builds from.
//!
//! Positions come from an identity column. They are handed out when a row is written,
//! not when its transaction commits, so with concurrent writers a lower position can
//! become visible after a higher one: readers ask again for positions they passed over
//! until every transaction that could still write them has ended (see `MembershipFeed`).

use std::collections::HashMap;

use async_trait::async_trait;
use cohort_core::{CustomerId, SegmentId, Timestamp};
use cohort_store::codec::stored;
use cohort_store::{LogRead, MembershipChange, MembershipFeed, StoreResult};
use sqlx::Row;

use crate::PostgresStore;
use crate::error::db;

#[async_trait]
impl MembershipFeed for PostgresStore {
    async fn membership_log_end(&self) -> StoreResult<i64> {
        // After pruning the table may be empty: the identity sequence still knows the end
        // (NULL until its first value, hence 0 on a fresh database).
        sqlx::query_scalar(
            "SELECT COALESCE(
                 (SELECT MAX(position) FROM membership_log),
                 (SELECT s.last_value FROM pg_sequences s
                  WHERE format('%I.%I', s.schemaname, s.sequencename)::regclass
                      = pg_get_serial_sequence('membership_log', 'position')::regclass),
                 0)",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(db)
    }

    async fn customer_keys(&self, after: i64, limit: u32) -> StoreResult<Vec<i64>> {
        sqlx::query_scalar("SELECT seq FROM customers WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db)
    }

    async fn segment_ids(&self) -> StoreResult<Vec<SegmentId>> {
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM segments ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        Ok(ids.into_iter().map(SegmentId::new).collect())
    }

    async fn plain_members(&self, segment: SegmentId, after: i64, limit: u32) -> StoreResult<Vec<i64>> {
        // One array instead of a row each; the by-segment index carries the expiry (an
        // index-only scan).
        let keys: Option<Vec<i64>> = sqlx::query_scalar(
            "SELECT array_agg(customer_seq ORDER BY customer_seq) FROM (
                 SELECT customer_seq FROM memberships
                 WHERE segment_id = $1 AND customer_seq > $2 AND expires_at IS NULL
                 ORDER BY customer_seq LIMIT $3) AS page",
        )
        .bind(segment.get())
        .bind(after)
        .bind(i64::from(limit))
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        Ok(keys.unwrap_or_default())
    }

    async fn expiring_members(&self, segment: SegmentId) -> StoreResult<Vec<(i64, Timestamp)>> {
        let rows = sqlx::query(
            "SELECT customer_seq, expires_at FROM memberships WHERE segment_id = $1 AND expires_at IS NOT NULL",
        )
        .bind(segment.get())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), Timestamp::from_unix_micros(r.get(1))))
            .collect())
    }

    async fn read_membership_log(&self, after: i64, gaps: &[i64], limit: u32) -> StoreResult<LogRead> {
        // One statement, one snapshot: the horizon says which transactions had ended
        // when exactly these rows were visible.
        let rows = sqlx::query(
            "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS ended_below,
                    l.position, l.customer_seq, l.segment_id, l.present, l.expires_at
             FROM (SELECT 1) AS one LEFT JOIN LATERAL (
                 SELECT * FROM (
                     SELECT position, customer_seq, segment_id, present, expires_at
                     FROM membership_log WHERE position = ANY($2)
                     UNION ALL
                     (SELECT position, customer_seq, segment_id, present, expires_at
                      FROM membership_log WHERE position > $1 ORDER BY position LIMIT $3)
                 ) AS u ORDER BY position LIMIT $3
             ) AS l ON TRUE",
        )
        .bind(after)
        .bind(gaps)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let ended_below = rows.first().map(|r| r.get::<i64, _>(0));
        let changes = rows
            .iter()
            .filter_map(|r| {
                Some(MembershipChange {
                    position: r.get::<Option<i64>, _>(1)?,
                    customer: r.get(2),
                    segment: r.get::<Option<i64>, _>(3).map(SegmentId::new),
                    present: r.get(4),
                    expires_at: r.get::<Option<i64>, _>(5).map(Timestamp::from_unix_micros),
                })
            })
            .collect();
        Ok(LogRead { changes, ended_below })
    }

    async fn log_writers_bound(&self) -> StoreResult<Option<i64>> {
        // A new transaction id is above every id handed out before it. A log writer gets
        // its id before its first position: its row triggers run after its own change
        // to customers or memberships, which assigned the id.
        let bound: i64 = sqlx::query_scalar("SELECT pg_current_xact_id()::text::bigint")
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        Ok(Some(bound))
    }

    async fn prune_membership_log(&self, through: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM membership_log WHERE position <= $1")
            .bind(through)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn customer_key(&self, id: &CustomerId) -> StoreResult<Option<i64>> {
        sqlx::query_scalar("SELECT seq FROM customers WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)
    }

    async fn customer_ids(&self, keys: &[i64]) -> StoreResult<Vec<CustomerId>> {
        let rows: Vec<(i64, String)> = sqlx::query_as("SELECT seq, id FROM customers WHERE seq = ANY($1)")
            .bind(keys)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        let by_key: HashMap<i64, String> = rows.into_iter().collect();
        keys.iter()
            .filter_map(|k| by_key.get(k))
            .map(|id| stored(CustomerId::parse("id", id)))
            .collect()
    }
}
