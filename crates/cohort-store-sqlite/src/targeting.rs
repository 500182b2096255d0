//! Targeting on SQLite: rule definitions, the targeting version (moved by triggers on
//! rules and target groups), and visitors saved in batches of multi-row upserts.

use async_trait::async_trait;
use cohort_core::targeting::RuleId;
use cohort_core::{CustomerId, Timestamp, VisitorId};
use cohort_store::codec::{decode_visitor_state, encode_visitor_state, stored};
use cohort_store::{StoreError, StoreResult, StoredRule, StoredVisitor, TargetingStore};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};

use crate::SqliteStore;
use crate::error::db;

/// Visitors per statement (4 bound values each, within SQLite's 32,766).
const VISITORS_PER_STATEMENT: usize = 500;

fn rule_from_row(row: &SqliteRow) -> StoredRule {
    StoredRule {
        id: RuleId::new(row.get("id")),
        definition: row.get("definition"),
        created_at: Timestamp::from_unix_micros(row.get("created_at")),
        updated_at: Timestamp::from_unix_micros(row.get("updated_at")),
    }
}

#[async_trait]
impl TargetingStore for SqliteStore {
    async fn create_rule(&self, definition: &str, now: Timestamp) -> StoreResult<StoredRule> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO targeting_rules (definition, created_at, updated_at) VALUES ($1, $2, $2) RETURNING id",
        )
        .bind(definition)
        .bind(now.unix_micros())
        .fetch_one(&self.write)
        .await
        .map_err(db)?;
        Ok(StoredRule {
            id: RuleId::new(id),
            definition: definition.to_owned(),
            created_at: now,
            updated_at: now,
        })
    }

    async fn rule(&self, id: RuleId) -> StoreResult<Option<StoredRule>> {
        let row = sqlx::query("SELECT id, definition, created_at, updated_at FROM targeting_rules WHERE id = $1")
            .bind(id.get())
            .fetch_optional(&self.read)
            .await
            .map_err(db)?;
        Ok(row.as_ref().map(rule_from_row))
    }

    async fn replace_rule(&self, id: RuleId, definition: &str, now: Timestamp) -> StoreResult<StoredRule> {
        let row = sqlx::query(
            "UPDATE targeting_rules SET definition = $2, updated_at = $3 WHERE id = $1
             RETURNING id, definition, created_at, updated_at",
        )
        .bind(id.get())
        .bind(definition)
        .bind(now.unix_micros())
        .fetch_optional(&self.write)
        .await
        .map_err(db)?;
        row.as_ref()
            .map(rule_from_row)
            .ok_or_else(|| StoreError::not_found("targeting rule", id))
    }

    async fn delete_rule(&self, id: RuleId) -> StoreResult<()> {
        let done = sqlx::query("DELETE FROM targeting_rules WHERE id = $1")
            .bind(id.get())
            .execute(&self.write)
            .await
            .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("targeting rule", id));
        }
        Ok(())
    }

    async fn list_rules(&self) -> StoreResult<Vec<StoredRule>> {
        let rows = sqlx::query("SELECT id, definition, created_at, updated_at FROM targeting_rules ORDER BY id")
            .fetch_all(&self.read)
            .await
            .map_err(db)?;
        Ok(rows.iter().map(rule_from_row).collect())
    }

    async fn targeting_version(&self) -> StoreResult<i64> {
        sqlx::query_scalar("SELECT version FROM targeting_version")
            .fetch_one(&self.read)
            .await
            .map_err(db)
    }

    async fn visitors(&self, ids: &[VisitorId]) -> StoreResult<Vec<StoredVisitor>> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(VISITORS_PER_STATEMENT) {
            let mut query = QueryBuilder::<Sqlite>::new(
                "SELECT v.id, v.state, c.id AS customer FROM visitors v
                 LEFT JOIN customers c ON c.seq = v.customer_seq WHERE v.id IN (",
            );
            let mut list = query.separated(", ");
            for id in chunk {
                list.push_bind(id.as_str());
            }
            query.push(")");
            let rows = query.build().fetch_all(&self.read).await.map_err(db)?;
            for row in rows {
                let customer = row
                    .get::<Option<String>, _>("customer")
                    .map(|c| stored(CustomerId::parse("customer", &c)))
                    .transpose()?;
                found.push(StoredVisitor {
                    id: stored(VisitorId::parse("id", row.get("id")))?,
                    state: decode_visitor_state(row.get("state"), customer)?,
                });
            }
        }
        Ok(found)
    }

    async fn save_visitors(&self, visitors: &[StoredVisitor]) -> StoreResult<()> {
        let mut tx = self.write.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        for chunk in visitors.chunks(VISITORS_PER_STATEMENT) {
            let mut query = QueryBuilder::<Sqlite>::new("INSERT INTO visitors (id, customer_seq, last_seen, state) ");
            query.push_values(chunk, |mut row, v| {
                row.push_bind(v.id.as_str())
                    .push("(SELECT seq FROM customers WHERE id = ")
                    .push_bind_unseparated(v.state.customer.as_ref().map(CustomerId::as_str))
                    .push_unseparated(")")
                    .push_bind(v.state.last_seen.unix_micros())
                    .push_bind(encode_visitor_state(&v.state));
            });
            query.push(
                " ON CONFLICT (id) DO UPDATE SET customer_seq = excluded.customer_seq,
                   last_seen = excluded.last_seen, state = excluded.state",
            );
            query.build().execute(&mut *tx).await.map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn customer_visitors(&self, customer: &CustomerId) -> StoreResult<Vec<VisitorId>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT v.id FROM visitors v JOIN customers c ON c.seq = v.customer_seq
             WHERE c.id = $1 ORDER BY v.last_seen DESC, v.id",
        )
        .bind(customer.as_str())
        .fetch_all(&self.read)
        .await
        .map_err(db)?;
        ids.iter().map(|id| stored(VisitorId::parse("id", id))).collect()
    }

    async fn forget_visitors(&self, before: Timestamp) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM visitors WHERE last_seen < $1")
            .bind(before.unix_micros())
            .execute(&self.write)
            .await
            .map_err(db)?;
        Ok(done.rows_affected())
    }
}
