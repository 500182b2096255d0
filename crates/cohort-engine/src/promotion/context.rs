//! What a calculation is given besides the catalog and the basket: the time, the
//! application, the customer, the segments the application's segment provider returned,
//! the codes entered (as the caller looked them up) and the budgets already spent.
//!
//! Everything is passed in; the engine reads no clock and no store.

use std::collections::HashMap;

use cohort_core::{ApplicationId, Attributes, CustomerId, PromotionId, QualifiedSegment, ServiceId, Timestamp};
use rust_decimal::Decimal;

use crate::promotion::catalog::Availability;

/// The facts of one calculation or product lookup.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub now: Timestamp,
    pub application: &'a ApplicationId,
    /// `None`: an anonymous customer, in no target group but everyone.
    pub customer: Option<&'a CustomerId>,
    pub attributes: &'a Attributes,
    /// The customer's orders before this one; `None` when unknown (first-order
    /// conditions are then false).
    pub previous_orders: Option<u32>,
    /// The customer's current segments, as the segment provider of the application
    /// returned them.
    pub segments: &'a [QualifiedSegment],
    /// Which segments assigned to promotions the application provides (of its active,
    /// available services): `Catalog::availability` of the application's segments;
    /// the customer's segments count only if available.
    pub availability: &'a Availability,
    /// Services active in the application that did not answer the provider.
    pub unanswered: &'a [ServiceId],
    /// The codes entered with the basket, in the order entered.
    pub codes: &'a [EnteredCode],
    /// Discount already given by each promotion with a budget.
    pub spent: &'a HashMap<PromotionId, Decimal>,
}

/// A code as entered, and what the caller found under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnteredCode {
    pub code: String,
    pub state: CodeState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeState {
    /// No promotion has this code.
    Unknown,
    Found(CodeUse),
}

/// A known code of a promotion, with its limits and how often it was used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeUse {
    pub promotion: PromotionId,
    /// Valid before this time.
    pub expires_at: Option<Timestamp>,
    pub max_uses: Option<u32>,
    /// Uses so far, by anyone.
    pub used: u32,
    pub max_uses_per_customer: Option<u32>,
    /// Uses so far by this customer (0 for anonymous customers).
    pub used_by_customer: u32,
}

/// Why a known code cannot be used now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeProblem {
    Expired,
    UsedUp,
    UsedUpByCustomer,
    /// It has a per-customer limit and the customer is anonymous, so uses cannot be
    /// counted.
    NeedsCustomer,
}

impl CodeUse {
    /// Why it cannot be used now by this customer (`known`: not anonymous).
    pub fn problem(&self, now: Timestamp, known: bool) -> Option<CodeProblem> {
        if self.expires_at.is_some_and(|at| at <= now) {
            Some(CodeProblem::Expired)
        } else if self.max_uses.is_some_and(|max| self.used >= max) {
            Some(CodeProblem::UsedUp)
        } else if self.max_uses_per_customer.is_some() && !known {
            Some(CodeProblem::NeedsCustomer)
        } else if self
            .max_uses_per_customer
            .is_some_and(|max| self.used_by_customer >= max)
        {
            Some(CodeProblem::UsedUpByCustomer)
        } else {
            None
        }
    }
}
