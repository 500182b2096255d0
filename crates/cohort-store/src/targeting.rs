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
