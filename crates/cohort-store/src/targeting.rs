//! The targeting part of the storage port: global targeting rules (the client's JSON,
//! compiled by the app when saved and when loaded) and visitors with their state,
//! linked to a customer once one logged in.

use async_trait::async_trait;
use cohort_core::targeting::{RuleId, VisitorState};
use cohort_core::{CustomerId, Timestamp, VisitorId};

use crate::StoreResult;

/// A targeting rule as stored: the definition as the client wrote it, without its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRule {
    pub id: RuleId,
    pub definition: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A visitor and what cohort keeps of it. `state.customer` is the customer it is
/// linked to: when saved, a customer cohort does not know is not linked; when the
/// customer is deleted, the link goes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVisitor {
    pub id: VisitorId,
    pub state: VisitorState,
}

#[async_trait]
pub trait TargetingStore: Send + Sync + 'static {
    async fn create_rule(&self, definition: &str, now: Timestamp) -> StoreResult<StoredRule>;
    async fn rule(&self, id: RuleId) -> StoreResult<Option<StoredRule>>;
    /// Replaces the definition. `NotFound` if there is no such rule.
    async fn replace_rule(&self, id: RuleId, definition: &str, now: Timestamp) -> StoreResult<StoredRule>;
    async fn delete_rule(&self, id: RuleId) -> StoreResult<()>;
    /// Every rule, by id.
    async fn list_rules(&self) -> StoreResult<Vec<StoredRule>>;
    /// Moves with every change of a rule or of a target group (its threshold, whether
    /// it is active, its linked segment), so servers know when to compile again.
    async fn targeting_version(&self) -> StoreResult<i64>;

    /// The visitors among `ids` that cohort knows, in no particular order.
    async fn visitors(&self, ids: &[VisitorId]) -> StoreResult<Vec<StoredVisitor>>;
    /// Creates or overwrites these visitors in one transaction.
    async fn save_visitors(&self, visitors: &[StoredVisitor]) -> StoreResult<()>;
    /// The visitors linked to a customer, most recently seen first.
    async fn customer_visitors(&self, customer: &CustomerId) -> StoreResult<Vec<VisitorId>>;
    /// Deletes the visitors last seen before `before`; returns how many.
    async fn forget_visitors(&self, before: Timestamp) -> StoreResult<u64>;
}

/// The SQL implementation of `TargetingStore`: rules, the version and the visitor
/// lookups by customer and age are the same text on both backends; reading and saving
/// visitors in batches is each backend's own (`visitors`, `save_visitors`: async
/// functions of the store taking the trait method's arguments). Expanded in each
/// backend crate:
///
/// ```text
/// cohort_store::sql_targeting_store!(SqliteStore, row: SqliteRow, read: read, write: write,
///     db: crate::error::db, visitors: visitors, save_visitors: save_visitors);
/// ```
#[macro_export]
macro_rules! sql_targeting_store {
    ($store:ty, row: $row:ty, read: $read:ident, write: $write:ident, db: $db:path,
     visitors: $visitors:path, save_visitors: $save:path) => {
        const RULE_COLUMNS: &str = "id, definition, created_at, updated_at";

        fn rule_from_row(row: &$row) -> $crate::StoredRule {
            use sqlx::Row as _;
            $crate::StoredRule {
                id: cohort_core::targeting::RuleId::new(row.get("id")),
                definition: row.get("definition"),
                created_at: cohort_core::Timestamp::from_unix_micros(row.get("created_at")),
                updated_at: cohort_core::Timestamp::from_unix_micros(row.get("updated_at")),
            }
        }

        /// A visitor read with `v.id, v.state, c.id AS customer`.
        fn visitor_from_row(row: &$row) -> $crate::StoreResult<$crate::StoredVisitor> {
            use sqlx::Row as _;
            let customer = row
                .get::<Option<String>, _>("customer")
                .map(|c| $crate::codec::stored(cohort_core::CustomerId::parse("customer", &c)))
                .transpose()?;
            Ok($crate::StoredVisitor {
                id: $crate::codec::stored(cohort_core::VisitorId::parse("id", row.get("id")))?,
                state: $crate::codec::decode_visitor_state(row.get("state"), customer)?,
            })
        }

        #[async_trait::async_trait]
        impl $crate::TargetingStore for $store {
            async fn create_rule(
                &self,
                definition: &str,
                now: cohort_core::Timestamp,
            ) -> $crate::StoreResult<$crate::StoredRule> {
                let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO targeting_rules (definition, created_at, updated_at) VALUES ($1, $2, $2)
                     RETURNING {RULE_COLUMNS}"
                )))
                .bind(definition)
                .bind(now.unix_micros())
                .fetch_one(&self.$write)
                .await
                .map_err($db)?;
                Ok(rule_from_row(&row))
            }

            async fn rule(
                &self,
                id: cohort_core::targeting::RuleId,
            ) -> $crate::StoreResult<Option<$crate::StoredRule>> {
                let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {RULE_COLUMNS} FROM targeting_rules WHERE id = $1"
                )))
                .bind(id.get())
                .fetch_optional(&self.$read)
                .await
                .map_err($db)?;
                Ok(row.as_ref().map(rule_from_row))
            }

            async fn replace_rule(
                &self,
                id: cohort_core::targeting::RuleId,
                definition: &str,
                now: cohort_core::Timestamp,
            ) -> $crate::StoreResult<$crate::StoredRule> {
                let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE targeting_rules SET definition = $2, updated_at = $3 WHERE id = $1 RETURNING {RULE_COLUMNS}"
                )))
                .bind(id.get())
                .bind(definition)
                .bind(now.unix_micros())
                .fetch_optional(&self.$write)
                .await
                .map_err($db)?;
                row.as_ref()
                    .map(rule_from_row)
                    .ok_or_else(|| $crate::StoreError::not_found("targeting rule", id))
            }

            async fn delete_rule(&self, id: cohort_core::targeting::RuleId) -> $crate::StoreResult<()> {
                let done = sqlx::query("DELETE FROM targeting_rules WHERE id = $1")
                    .bind(id.get())
                    .execute(&self.$write)
                    .await
                    .map_err($db)?;
                if done.rows_affected() == 0 {
                    return Err($crate::StoreError::not_found("targeting rule", id));
                }
                Ok(())
            }

            async fn list_rules(&self) -> $crate::StoreResult<Vec<$crate::StoredRule>> {
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {RULE_COLUMNS} FROM targeting_rules ORDER BY id"
                )))
                .fetch_all(&self.$read)
                .await
                .map_err($db)?;
                Ok(rows.iter().map(rule_from_row).collect())
            }

            async fn targeting_version(&self) -> $crate::StoreResult<i64> {
                sqlx::query_scalar("SELECT version FROM targeting_version")
                    .fetch_one(&self.$read)
                    .await
                    .map_err($db)
            }

            async fn visitors(
                &self,
                ids: &[cohort_core::VisitorId],
            ) -> $crate::StoreResult<Vec<$crate::StoredVisitor>> {
                $visitors(self, ids).await
            }

            async fn save_visitors(&self, visitors: &[$crate::StoredVisitor]) -> $crate::StoreResult<()> {
                $save(self, visitors).await
            }

            async fn customer_visitors(
                &self,
                customer: &cohort_core::CustomerId,
            ) -> $crate::StoreResult<Vec<cohort_core::VisitorId>> {
                let ids: Vec<String> = sqlx::query_scalar(
                    "SELECT v.id FROM visitors v JOIN customers c ON c.seq = v.customer_seq
                     WHERE c.id = $1 ORDER BY v.last_seen DESC, v.id",
                )
                .bind(customer.as_str())
                .fetch_all(&self.$read)
                .await
                .map_err($db)?;
                ids.iter()
                    .map(|id| $crate::codec::stored(cohort_core::VisitorId::parse("id", id)))
                    .collect()
            }

            async fn forget_visitors(&self, before: cohort_core::Timestamp) -> $crate::StoreResult<u64> {
                let done = sqlx::query("DELETE FROM visitors WHERE last_seen < $1")
                    .bind(before.unix_micros())
                    .execute(&self.$write)
                    .await
                    .map_err($db)?;
                Ok(done.rows_affected())
            }
        }
    };
}
