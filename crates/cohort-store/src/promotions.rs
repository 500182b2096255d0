//! The promotion part of the storage port: promotion definitions, per-application
//! type priorities, code groups and codes, and placing an order — which redeems codes,
//! spends budgets and records the order activity in one transaction.

use async_trait::async_trait;
use cohort_core::promotion::record::{
    CodeGroup, CodeGroupId, FoundCode, NewCodeGroup, NewStoredPromotion, PromotionCode, StoredPromotion,
};
use cohort_core::{Activity, ActivityId, ApplicationId, Attributes, CustomerId, PromotionId, Timestamp};

use crate::StoreResult;

/// What a calculation needs to know of a customer besides its segments.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerFacts {
    pub attributes: Attributes,
    /// Orders recorded so far (`order` activities).
    pub orders: u32,
    /// Whether the customer agreed to profiling (targeting actions may ask for it).
    pub profiling_consent: bool,
}

/// A known customer as a calculation reads it: its key (the `customer_seq` of the
/// membership log), its facts and its live memberships in the services asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerProfile {
    pub key: i64,
    pub facts: CustomerFacts,
    pub memberships: Vec<(cohort_core::Membership, crate::GroupedSegment)>,
}

/// An order to place: everything its calculation decided, written together.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderPlacement {
    /// The order's id, also the id of its `order` activity; placing an id again
    /// changes nothing and returns the first answer.
    pub id: ActivityId,
    pub application: ApplicationId,
    pub customer: Option<CustomerId>,
    pub at: Timestamp,
    /// Codes used, each redeemed once (by the customer, when known).
    pub redemptions: Vec<PromotionCode>,
    /// Discount given by promotions with a budget, in minor units.
    pub spending: Vec<(PromotionId, i64)>,
    /// The `order` activity (for a known customer).
    pub activity: Option<Activity>,
    /// The customer's order count the calculation saw (first-order conditions): if
    /// another order of the customer was placed meanwhile, nothing is written.
    pub orders_seen: Option<u32>,
    /// The answer given to the client, returned again when the order is placed again.
    pub answer: String,
}

/// How placing an order went. Anything but `Placed` and `AlreadyPlaced` changed
/// nothing: the caller recalculates with fresh uses and budgets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderOutcome {
    Placed,
    /// An order with this id was placed before: its answer.
    AlreadyPlaced {
        answer: String,
    },
    /// The code reached its maximum uses (or no longer exists).
    CodeUsedUp {
        code: PromotionCode,
    },
    /// The customer reached the code's maximum uses per customer.
    CodeUsedUpByCustomer {
        code: PromotionCode,
    },
    /// The spending would go over the promotion's budget (or it no longer exists).
    BudgetExceeded {
        promotion: PromotionId,
    },
    /// Another order of the customer was placed since the calculation.
    CustomerOrdered,
}

#[async_trait]
pub trait PromotionStore: Send + Sync + 'static {
    async fn create_promotion(&self, promotion: &NewStoredPromotion, now: Timestamp) -> StoreResult<StoredPromotion>;
    async fn promotion(&self, id: PromotionId) -> StoreResult<Option<StoredPromotion>>;
    /// Replaces the definition and budget; what was spent stays.
    async fn replace_promotion(
        &self,
        id: PromotionId,
        promotion: &NewStoredPromotion,
        now: Timestamp,
    ) -> StoreResult<StoredPromotion>;
    /// Deletes the promotion with its code groups and codes.
    async fn delete_promotion(&self, id: PromotionId) -> StoreResult<()>;
    /// Every promotion, by id.
    async fn list_promotions(&self) -> StoreResult<Vec<StoredPromotion>>;
    /// A number that changes with every change of a promotion definition or of an
    /// application's type priorities (not with spending): the compiled catalog is
    /// current while it stays the same.
    async fn promotions_version(&self) -> StoreResult<i64>;
    /// What was spent of each budgeted promotion, in minor units.
    async fn budgets_spent(&self) -> StoreResult<Vec<(PromotionId, i64)>>;

    /// Sets (or with `None` clears) an application's type priorities (JSON text).
    async fn set_type_priorities(&self, application: &ApplicationId, priorities: Option<&str>) -> StoreResult<()>;
    /// The applications with type priorities of their own.
    async fn type_priorities(&self) -> StoreResult<Vec<(ApplicationId, String)>>;

    /// Creates a code group with its codes. A code that exists already (in any group)
    /// is a conflict on `codes[i]` and nothing is created.
    async fn create_code_group(
        &self,
        group: &NewCodeGroup,
        codes: &[PromotionCode],
        now: Timestamp,
    ) -> StoreResult<CodeGroup>;
    async fn code_group(&self, id: CodeGroupId) -> StoreResult<Option<CodeGroup>>;
    /// The code groups of a promotion, by id.
    async fn code_groups(&self, promotion: PromotionId) -> StoreResult<Vec<CodeGroup>>;
    /// Deletes a group and its codes.
    async fn delete_code_group(&self, id: CodeGroupId) -> StoreResult<()>;
    /// A page of a group's codes with their uses, in code order after `after`.
    async fn group_codes(
        &self,
        id: CodeGroupId,
        after: Option<&PromotionCode>,
        limit: u32,
    ) -> StoreResult<Vec<(PromotionCode, u32)>>;
    /// The codes that exist among these, with their uses overall and by `customer`.
    async fn find_codes(&self, codes: &[PromotionCode], customer: Option<&CustomerId>) -> StoreResult<Vec<FoundCode>>;

    /// The customer's attributes and order count; `None` for a customer cohort does not know.
    async fn customer_facts(&self, customer: &CustomerId) -> StoreResult<Option<CustomerFacts>>;
    /// Places an order in one transaction: each code's use counted within its limits,
    /// each budget spent within its size, the order activity recorded (its customer
    /// queued for segment building). The customer must exist (`customer`, dangling), and
    /// no other activity may have the order's id (`id`, conflict). Orders of one customer
    /// are placed one at a time.
    async fn place_order(&self, order: &OrderPlacement) -> StoreResult<OrderOutcome>;
    /// The answer given when the order with this id was placed.
    async fn order_answer(&self, id: &ActivityId) -> StoreResult<Option<String>>;
}
