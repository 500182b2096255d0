//! The basket calculation: walk the application's promotions best first; each one that
//! is eligible, whose conditions hold, that combines with those applied before and
//! would discount something, applies — and later ones see the reduced prices.
//!
//! Combination rules (the bugs peers' users report, avoided by construction): a
//! promotion that does not apply, for any reason, blocks nothing; an applied exclusive
//! promotion stops every later one; an exclusive promotion ranked after applied ones
//! does not apply and never removes them; `with` needs both sides' consent.

use cohort_core::promotion::DiscountLevel;
use cohort_core::{Basket, Currency, Discount, PromotionId};

use crate::promotion::calculation::{
    Applied, CalculatedLine, Calculation, CodeResult, GiftLine, LineDiscount, NotApplied,
};
use crate::promotion::catalog::Catalog;
use crate::promotion::compiled::{Hot, Mode, Scope};
use crate::promotion::conditions::{BasketFacts, Facts};
use crate::promotion::context::{CodeProblem, CodeState, Context};
use crate::promotion::eligibility::{self, Audience, Eligible, Fail};
use crate::promotion::money::{Line, Money};
use crate::promotion::reasons::CodeStatus;

/// Applies the application's promotions to the basket.
pub fn calculate(catalog: &Catalog, ctx: &Context<'_>, basket: &Basket) -> Calculation {
    let ranked = catalog.hot(ctx.application);
    let facts = Facts::new(
        &catalog.conditions,
        ctx.attributes,
        ctx.customer.and(ctx.previous_orders),
    );
    let mut walk = Walk::new(catalog, ctx, basket, &facts);
    let mut not_applied = Vec::with_capacity(ranked.len());
    for hot in ranked {
        if let Err(fail) = walk.consider(hot) {
            not_applied.push(NotApplied {
                promotion: hot.id,
                reason: fail.reason(catalog, ctx),
            });
        }
    }
    walk.finish(basket, not_applied)
}

/// Whether a line's product is in the scope (`categories`: every line's, by range).
fn in_scope(scope: &Scope, line: &Line, categories: &[u32]) -> bool {
    scope.all
        || scope.includes(
            line.sku,
            &categories[line.categories.0 as usize..line.categories.1 as usize],
        )
}

/// The state of one calculation.
struct Walk<'c> {
    catalog: &'c Catalog,
    ctx: &'c Context<'c>,
    currency: Currency,
    money: Money,
    audience: Audience,
    customer: &'c Facts<'c>,
    facts: BasketFacts,
    lines: Vec<Line>,
    /// The interned categories of every line (each line holds a range).
    categories: Vec<u32>,
    /// Lines no promotion discounted yet.
    undiscounted: usize,
    /// What each promotion took off each line, in application order.
    taken: Vec<LineDiscount>,
    shipping: i128,
    shipping_discount: i128,
    shipping_discounted: bool,
    item_discount: i128,
    order_discount: i128,
    gifts: Vec<GiftLine>,
    /// Catalog position, what applied, and the entered code used.
    applied: Vec<(u32, Applied, Option<u32>)>,
    /// Positions in `applied` of promotions that accept only some others.
    choosy: Vec<usize>,
    exclusive: Option<PromotionId>,
}

impl<'c> Walk<'c> {
    fn new(catalog: &'c Catalog, ctx: &'c Context<'c>, basket: &Basket, customer: &'c Facts<'c>) -> Self {
        let interner = &catalog.interner;
        let n = basket.items().len();
        let money = Money::for_basket(basket);
        let mut lines = Vec::with_capacity(n);
        let mut categories = Vec::with_capacity(2 * n);
        let mut facts = BasketFacts {
            subtotal: basket.subtotal(),
            skus: Vec::with_capacity(n),
            categories: Vec::with_capacity(2 * n),
        };
        for item in basket.items() {
            let sku = interner.skus.get(item.sku.as_str()).copied();
            let start = categories.len();
            for category in &item.categories {
                if let Some(id) = interner.categories.get(category.as_str())
                    && !categories[start..].contains(id)
                {
                    categories.push(*id);
                }
            }
            if let Some(sku) = sku {
                BasketFacts::add(&mut facts.skus, sku, item.quantity);
            }
            for id in &categories[start..] {
                BasketFacts::add(&mut facts.categories, *id, item.quantity);
            }
            let quantity = i128::from(item.quantity);
            let subtotal = money.units(item.unit_price) * quantity;
            lines.push(Line::new(
                sku,
                (start as u32, categories.len() as u32),
                quantity,
                subtotal,
            ));
        }
        Self {
            catalog,
            ctx,
            currency: basket.currency(),
            money,
            audience: Audience::new(catalog, ctx),
            customer,
            facts,
            lines,
            categories,
            undiscounted: n,
            taken: Vec::with_capacity(8 * n),
            shipping: money.units(basket.shipping()),
            shipping_discount: 0,
            shipping_discounted: false,
            item_discount: 0,
            order_discount: 0,
            gifts: Vec::new(),
            applied: Vec::with_capacity(32),
            choosy: Vec::new(),
            exclusive: None,
        }
    }

    fn consider(&mut self, p: &Hot) -> Result<(), Fail<'c>> {
        let (ctx, catalog) = (self.ctx, self.catalog);
        let mut eligible = Eligible::default();
        eligibility::check(p, catalog, ctx, &self.audience, self.currency, &mut eligible)?;
        if p.conditions != Hot::NONE
            && let Some(text) = catalog.conditions.failing(p.conditions, self.customer, &self.facts)
        {
            return Err(Fail::Condition(text));
        }
        self.combines(p)?;
        let (id, kind) = (p.id, p.kind);
        let level = kind.level();
        let again = p.applies_to_discounted;
        let remaining = eligible.remaining.map(|r| self.money.units(r));
        let cold = catalog.cold(p);
        let scope = &catalog.scopes[p.scope as usize];
        let amount = match (level, &cold.definition.discount) {
            (_, Discount::Gift(gift)) => {
                if !self.lines.iter().any(|line| in_scope(scope, line, &self.categories)) {
                    return Err(Fail::NothingToDiscount);
                }
                self.gifts.push(GiftLine {
                    promotion: id,
                    sku: gift.sku().to_owned(),
                    quantity: gift.quantity(),
                });
                0
            }
            (DiscountLevel::Item | DiscountLevel::Order, _) if again || self.undiscounted > 0 => {
                let categories = &self.categories;
                let open =
                    |line: &Line| (again || !line.discounted) && line.total > 0 && in_scope(scope, line, categories);
                if level == DiscountLevel::Item {
                    self.money.items(cold.off, &mut self.lines, open, remaining)
                } else {
                    self.money.order(cold.off, &mut self.lines, open, remaining)
                }
            }
            (DiscountLevel::Shipping, _) if again || !self.shipping_discounted => {
                let current = self.shipping - self.shipping_discount;
                self.money.shipping(cold.off, current, remaining)
            }
            _ => 0,
        };
        if amount == 0 && level != DiscountLevel::Gift {
            return Err(Fail::NothingToDiscount);
        }
        match level {
            DiscountLevel::Item | DiscountLevel::Order => {
                for (i, line) in self.lines.iter_mut().enumerate() {
                    if line.take == 0 {
                        continue;
                    }
                    line.total -= line.take;
                    if !line.discounted {
                        line.discounted = true;
                        self.undiscounted -= 1;
                    }
                    self.taken.push(LineDiscount {
                        line: i,
                        promotion: id,
                        kind,
                        amount: self.money.decimal(line.take),
                    });
                }
                if level == DiscountLevel::Item {
                    self.item_discount += amount;
                } else {
                    self.order_discount += amount;
                }
            }
            DiscountLevel::Shipping => {
                self.shipping_discount += amount;
                self.shipping_discounted = true;
            }
            DiscountLevel::Gift => {}
        }
        let code = eligible.code;
        let applied = Applied {
            promotion: id,
            kind,
            amount: self.money.decimal(amount),
            code: code.map(|i| ctx.codes[i as usize].code.clone()),
        };
        match p.mode {
            Mode::Exclusive => self.exclusive = Some(id),
            Mode::With => self.choosy.push(self.applied.len()),
            Mode::All => {}
        }
        self.applied.push((p.index, applied, code));
        Ok(())
    }

    /// Whether the promotion may join those applied before it: both sides must accept
    /// each other. Applied promotions that accept all need no asking.
    fn combines(&self, p: &Hot) -> Result<(), Fail<'c>> {
        if let Some(exclusive) = self.exclusive {
            return Err(Fail::ExcludedBy(exclusive));
        }
        let promotions = &self.catalog.promotions;
        let own = &promotions[p.index as usize].combination;
        let refused = |(index, applied, _): &(u32, Applied, Option<u32>)| {
            let before = &promotions[*index as usize].combination;
            !(before.accepts(p.id, p.kind) && own.accepts(applied.promotion, applied.kind))
        };
        let first = match p.mode {
            Mode::All => self.choosy.iter().map(|i| &self.applied[*i]).find(|a| refused(a)),
            _ => self.applied.iter().find(|a| refused(a)),
        };
        match first {
            Some((_, applied, _)) => Err(Fail::NotCombinable(applied.promotion)),
            None => Ok(()),
        }
    }

    fn finish(self, basket: &Basket, not_applied: Vec<NotApplied>) -> Calculation {
        let money = self.money;
        let lines: Vec<CalculatedLine> = basket
            .items()
            .iter()
            .zip(&self.lines)
            .map(|(item, line)| CalculatedLine {
                sku: item.sku.clone(),
                quantity: item.quantity,
                unit_price: item.unit_price,
                subtotal: money.decimal(line.subtotal),
                discount: money.decimal(line.subtotal - line.total),
                total: money.decimal(line.total),
            })
            .collect();
        let codes = self
            .ctx
            .codes
            .iter()
            .enumerate()
            .map(|(i, entered)| {
                let status = match &entered.state {
                    CodeState::Unknown => CodeStatus::Unknown,
                    CodeState::Found(usage) => match usage.problem(self.ctx.now, self.ctx.customer.is_some()) {
                        Some(CodeProblem::Expired) => CodeStatus::Expired,
                        Some(CodeProblem::UsedUp) => CodeStatus::UsedUp,
                        Some(CodeProblem::UsedUpByCustomer) => CodeStatus::UsedUpByCustomer,
                        Some(CodeProblem::NeedsCustomer) => CodeStatus::NeedsCustomer,
                        None if self.applied.iter().any(|(_, _, code)| *code == Some(i as u32)) => CodeStatus::Applied,
                        None => CodeStatus::NotApplicable,
                    },
                };
                CodeResult {
                    code: entered.code.clone(),
                    status,
                }
            })
            .collect();
        let shipping_total = self.shipping - self.shipping_discount;
        let lines_total: i128 = self.lines.iter().map(|l| l.total).sum();
        Calculation {
            currency: self.currency,
            subtotal: self.facts.subtotal,
            item_discount: money.decimal(self.item_discount),
            order_discount: money.decimal(self.order_discount),
            shipping: money.decimal(self.shipping),
            shipping_discount: money.decimal(self.shipping_discount),
            shipping_total: money.decimal(shipping_total),
            total: money.decimal(lines_total + shipping_total),
            lines,
            line_discounts: self.taken,
            gifts: self.gifts,
            applied: self.applied.into_iter().map(|(_, a, _)| a).collect(),
            not_applied,
            codes,
        }
    }
}
