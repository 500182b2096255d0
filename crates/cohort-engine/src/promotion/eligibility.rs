//! Whether a promotion may apply for this customer now, apart from its conditions and
//! its combination: time window, currency, target group (with segment validity),
//! code, budget. The first failing check is the reason.
//!
//! Segment validity follows Intershop: a segments target qualifies only through an
//! assigned segment the customer currently has *and* the application provides. When
//! none qualifies, the reason is, in this order: an assigned segment whose service did
//! not answer (`service_did_not_answer`), an assigned segment the application does not
//! provide, held or not (`segment_not_available` — the provider returns only segments of
//! active services, so a stale segment is usually not held at all), else
//! `not_in_target_group`. The customer's segments are interned once per call; the
//! availability of a segment is looked up only when a target asks for it, and
//! remembered for the rest of the call.
//!
//! Checks fail with a `Fail`: the reason in the catalog's numbers, small enough to pass
//! in registers; it becomes a `Reason` only when recorded.

use std::sync::Arc;

use cohort_core::{Currency, PromotionId, Timestamp};
use rust_decimal::{Decimal, RoundingStrategy};

use crate::promotion::catalog::Catalog;
use crate::promotion::compiled::{Hot, Target};
use crate::promotion::context::{CodeProblem, CodeState, Context};
use crate::promotion::reasons::Reason;

/// The customer in the catalog's numbers, for one call.
pub(crate) struct Audience {
    known: bool,
    customer: Option<u32>,
    /// Interned segments the customer has, sorted.
    held: Vec<u32>,
    /// Interned services that did not answer.
    unanswered: Vec<u32>,
}

impl Audience {
    pub fn new(catalog: &Catalog, ctx: &Context<'_>) -> Self {
        let interner = &catalog.interner;
        let customer = ctx.customer.and_then(|c| interner.customers.get(c).copied());
        let mut held: Vec<u32> = ctx
            .segments
            .iter()
            .filter_map(|s| interner.segments.get(s).copied())
            .collect();
        held.sort_unstable();
        held.dedup();
        let unanswered = ctx
            .unanswered
            .iter()
            .filter_map(|s| interner.services.iter().position(|known| known == s).map(|i| i as u32))
            .collect();
        Self {
            known: ctx.customer.is_some(),
            customer,
            held,
            unanswered,
        }
    }

    pub fn target<'c>(&self, catalog: &Catalog, ctx: &Context<'_>, target: Target) -> Result<(), Fail<'c>> {
        let segments = match target {
            Target::Everyone => return Ok(()),
            _ if !self.known => return Err(Fail::AnonymousCustomer),
            Target::Customers(span) => {
                return match self.customer {
                    Some(c) if span.of(&catalog.customers).binary_search(&c).is_ok() => Ok(()),
                    _ => Err(Fail::NotInTargetGroup),
                };
            }
            Target::Segments(span) => span.of(&catalog.segments),
        };
        let names = &catalog.interner.segment_names;
        if segments
            .iter()
            .any(|id| self.held.binary_search(id).is_ok() && ctx.availability.has(*id))
        {
            return Ok(());
        }
        if let Some(id) = segments
            .iter()
            .find(|id| self.unanswered.contains(&names[**id as usize].1))
        {
            return Err(Fail::ServiceDidNotAnswer(names[*id as usize].1));
        }
        if let Some(id) = segments.iter().find(|id| !ctx.availability.has(**id)) {
            return Err(Fail::SegmentNotAvailable(*id));
        }
        Err(Fail::NotInTargetGroup)
    }
}

/// Why a promotion did not apply, in the catalog's numbers (16 bytes).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Fail<'c> {
    NotStarted(Timestamp),
    Ended(Timestamp),
    Currency(Currency),
    AnonymousCustomer,
    NotInTargetGroup,
    /// An interned segment.
    SegmentNotAvailable(u32),
    /// An interned service.
    ServiceDidNotAnswer(u32),
    Condition(&'c Arc<str>),
    CodeMissing,
    /// A position in `Context::codes`.
    Code(u32, CodeProblem),
    BudgetSpent,
    NothingToDiscount,
    ExcludedBy(PromotionId),
    NotCombinable(PromotionId),
}

impl Fail<'_> {
    /// The reason, with the names and values it speaks of.
    pub fn reason(self, catalog: &Catalog, ctx: &Context<'_>) -> Reason {
        let interner = &catalog.interner;
        match self {
            Self::NotStarted(at) => Reason::NotStarted(at),
            Self::Ended(at) => Reason::Ended(at),
            Self::Currency(currency) => Reason::Currency(currency),
            Self::AnonymousCustomer => Reason::AnonymousCustomer,
            Self::NotInTargetGroup => Reason::NotInTargetGroup,
            Self::SegmentNotAvailable(id) => Reason::SegmentNotAvailable(interner.segment_names[id as usize].0.clone()),
            Self::ServiceDidNotAnswer(id) => Reason::ServiceDidNotAnswer(interner.services[id as usize].clone()),
            Self::Condition(text) => Reason::Condition(text.clone()),
            Self::CodeMissing => Reason::CodeMissing,
            Self::Code(i, problem) => {
                let code = ctx.codes[i as usize].code.clone();
                match problem {
                    CodeProblem::Expired => Reason::CodeExpired(code),
                    CodeProblem::UsedUp => Reason::CodeUsedUp(code),
                    CodeProblem::UsedUpByCustomer => Reason::CodeUsedUpByCustomer(code),
                    CodeProblem::NeedsCustomer => Reason::CodeNeedsCustomer(code),
                }
            }
            Self::BudgetSpent => Reason::BudgetSpent,
            Self::NothingToDiscount => Reason::NothingToDiscount,
            Self::ExcludedBy(id) => Reason::ExcludedBy(id),
            Self::NotCombinable(id) => Reason::NotCombinable(id),
        }
    }
}

/// What an eligible promotion carries into the calculation.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Eligible {
    /// The entered code it uses (position in `Context::codes`).
    pub code: Option<u32>,
    /// What remains of its budget, in whole minor units.
    pub remaining: Option<Decimal>,
}

/// Every check but conditions and combination; `currency` is the basket's. What the
/// promotion may use is left in `eligible`.
pub(crate) fn check<'c>(
    p: &Hot,
    catalog: &Catalog,
    ctx: &Context<'_>,
    audience: &Audience,
    currency: Currency,
    eligible: &mut Eligible,
) -> Result<(), Fail<'c>> {
    window(p, ctx.now)?;
    if let Some(wanted) = p.currency
        && wanted != currency
    {
        return Err(Fail::Currency(wanted));
    }
    audience.target(catalog, ctx, p.target)?;
    eligible.code = code(p, ctx)?;
    eligible.remaining = remaining_budget(p, catalog, ctx, currency)?;
    Ok(())
}

pub(crate) fn window<'c>(p: &Hot, now: Timestamp) -> Result<(), Fail<'c>> {
    let now = now.unix_micros();
    if now < p.starts {
        return Err(Fail::NotStarted(Timestamp::from_unix_micros(p.starts)));
    }
    if now >= p.ends {
        return Err(Fail::Ended(Timestamp::from_unix_micros(p.ends)));
    }
    Ok(())
}

/// The first valid entered code of a promotion that requires one (its absence, or the
/// first entered code's problem, is the reason). A promotion without `requires_code`
/// takes no code: a valid code of it is reported `not_applicable`.
pub(crate) fn code<'c>(p: &Hot, ctx: &Context<'_>) -> Result<Option<u32>, Fail<'c>> {
    if !p.requires_code {
        return Ok(None);
    }
    let mut problem = None;
    for (i, entered) in ctx.codes.iter().enumerate() {
        if let CodeState::Found(usage) = &entered.state
            && usage.promotion == p.id
        {
            match usage.problem(ctx.now, ctx.customer.is_some()) {
                None => return Ok(Some(i as u32)),
                Some(found) => {
                    problem.get_or_insert((i as u32, found));
                }
            }
        }
    }
    Err(match problem {
        None => Fail::CodeMissing,
        Some((i, found)) => Fail::Code(i, found),
    })
}

/// What remains of the budget, rounded down to the currency's minor unit.
pub(crate) fn remaining_budget<'c>(
    p: &Hot,
    catalog: &Catalog,
    ctx: &Context<'_>,
    currency: Currency,
) -> Result<Option<Decimal>, Fail<'c>> {
    if !p.has_budget {
        return Ok(None);
    }
    let Some(budget) = catalog.cold(p).definition.budget else {
        return Ok(None);
    };
    let spent = ctx.spent.get(&p.id).copied().unwrap_or_default().max(Decimal::ZERO);
    let remaining = budget
        .checked_sub(spent)
        .unwrap_or(Decimal::ZERO)
        .round_dp_with_strategy(currency.minor_unit_digits(), RoundingStrategy::ToZero);
    if remaining <= Decimal::ZERO {
        return Err(Fail::BudgetSpent);
    }
    Ok(Some(remaining))
}

#[cfg(test)]
mod tests {
    use super::Fail;

    #[test]
    fn a_failure_fits_in_two_registers() {
        assert!(std::mem::size_of::<Fail<'_>>() <= 16);
    }
}
