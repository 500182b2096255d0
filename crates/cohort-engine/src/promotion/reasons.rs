//! Why a considered promotion did not apply, and what became of each entered code: a
//! structured value with a stable code (for clients and tests) and a sentence.

use std::fmt;
use std::sync::Arc;

use cohort_core::{Currency, PromotionId, QualifiedSegment, ServiceId, Timestamp};

/// Why a promotion of the application was considered and did not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    NotStarted(Timestamp),
    Ended(Timestamp),
    /// The promotion is for baskets in another currency.
    Currency(Currency),
    /// Customers and segments target groups hold no anonymous customer.
    AnonymousCustomer,
    NotInTargetGroup,
    /// The customer has this assigned segment, but the application does not provide it
    /// (a stopped service, a deleted segment).
    SegmentNotAvailable(Arc<QualifiedSegment>),
    /// The service of an assigned segment did not answer, so membership is unknown.
    ServiceDidNotAnswer(ServiceId),
    /// This part of the conditions does not hold.
    Condition(Arc<str>),
    /// It requires a code and none for it was entered.
    CodeMissing,
    CodeExpired(String),
    CodeUsedUp(String),
    CodeUsedUpByCustomer(String),
    /// The code has a per-customer limit and the customer is anonymous.
    CodeNeedsCustomer(String),
    BudgetSpent,
    /// It would discount nothing: no line in scope (or none left undiscounted), nothing
    /// left of the price or shipping.
    NothingToDiscount,
    /// An exclusive promotion ranked before it applied.
    ExcludedBy(PromotionId),
    /// It and this promotion, applied before it, do not both accept each other.
    NotCombinable(PromotionId),
}

impl Reason {
    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotStarted(_) => "not_started",
            Self::Ended(_) => "ended",
            Self::Currency(_) => "currency",
            Self::AnonymousCustomer => "anonymous_customer",
            Self::NotInTargetGroup => "not_in_target_group",
            Self::SegmentNotAvailable(_) => "segment_not_available",
            Self::ServiceDidNotAnswer(_) => "service_did_not_answer",
            Self::Condition(_) => "condition",
            Self::CodeMissing => "code_missing",
            Self::CodeExpired(_) => "code_expired",
            Self::CodeUsedUp(_) => "code_used_up",
            Self::CodeUsedUpByCustomer(_) => "code_used_up_by_customer",
            Self::CodeNeedsCustomer(_) => "code_needs_customer",
            Self::BudgetSpent => "budget_spent",
            Self::NothingToDiscount => "nothing_to_discount",
            Self::ExcludedBy(_) => "excluded",
            Self::NotCombinable(_) => "not_combinable",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotStarted(at) => write!(f, "starts at {}", at.to_rfc3339()),
            Self::Ended(at) => write!(f, "ended at {}", at.to_rfc3339()),
            Self::Currency(c) => write!(f, "only for baskets in {c}"),
            Self::AnonymousCustomer => f.write_str("not for anonymous customers"),
            Self::NotInTargetGroup => f.write_str("customer not in target group"),
            Self::SegmentNotAvailable(s) => write!(f, "segment {s} not available in this application"),
            Self::ServiceDidNotAnswer(s) => write!(f, "service {s} did not answer"),
            Self::Condition(text) => write!(f, "condition not met: {text}"),
            Self::CodeMissing => f.write_str("requires a code"),
            Self::CodeExpired(code) => write!(f, "code {code} expired"),
            Self::CodeUsedUp(code) => write!(f, "code {code} used up"),
            Self::CodeUsedUpByCustomer(code) => write!(f, "code {code} used up by this customer"),
            Self::CodeNeedsCustomer(code) => {
                write!(f, "code {code} is limited per customer and needs a known customer")
            }
            Self::BudgetSpent => f.write_str("budget spent"),
            Self::NothingToDiscount => f.write_str("nothing to discount"),
            Self::ExcludedBy(id) => write!(f, "excluded by exclusive promotion {id}"),
            Self::NotCombinable(id) => write!(f, "not combinable with promotion {id} applied before"),
        }
    }
}

/// What became of an entered code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeStatus {
    /// Its promotion applied with it.
    Applied,
    Unknown,
    Expired,
    UsedUp,
    UsedUpByCustomer,
    /// It has a per-customer limit and the customer is anonymous.
    NeedsCustomer,
    /// Valid, but not used: its promotion did not apply (see its reason), another code
    /// was used, or its promotion does not require a code (such a promotion applies, or
    /// not, without consuming it).
    NotApplicable,
}

impl CodeStatus {
    pub fn code(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Unknown => "unknown",
            Self::Expired => "expired",
            Self::UsedUp => "used_up",
            Self::UsedUpByCustomer => "used_up_by_customer",
            Self::NeedsCustomer => "needs_customer",
            Self::NotApplicable => "not_applicable",
        }
    }
}

impl fmt::Display for CodeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Applied => "applied",
            Self::Unknown => "unknown code",
            Self::Expired => "expired",
            Self::UsedUp => "used up",
            Self::UsedUpByCustomer => "used up by this customer",
            Self::NeedsCustomer => "needs a known customer",
            Self::NotApplicable => "not applicable",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_as_sentences() {
        let segment = QualifiedSegment::parse("s", "crm/vip").unwrap();
        assert_eq!(
            Reason::SegmentNotAvailable(Arc::new(segment)).to_string(),
            "segment crm/vip not available in this application"
        );
        assert_eq!(
            Reason::ExcludedBy(PromotionId::new(3)).to_string(),
            "excluded by exclusive promotion 3"
        );
        assert_eq!(Reason::Condition("subtotal >= 100".into()).code(), "condition");
    }

    #[test]
    fn a_reason_is_small_enough_to_report_for_every_promotion() {
        assert!(std::mem::size_of::<Reason>() <= 32);
    }
}
