//! Promotions: a discount granted, in some applications and for some time, to a target
//! group of customers whose basket meets conditions — Intershop's model, with
//! Shopware's and Sylius' usage limits and stacking rules.
//!
//! A promotion ranks by its explicit priority, else by its kind's priority in the
//! application; its combination setting says which others may apply beside it. The
//! engine (`cohort_engine::promotion`) compiles a catalog of them and calculates baskets.

pub mod basket;
pub mod condition;
pub mod discount;
pub mod record;

use std::collections::BTreeSet;

use rust_decimal::Decimal;

use crate::tree::Tree;
use crate::{ApplicationId, Currency, CustomerId, Invalid, Name, QualifiedSegment, Timestamp};

pub use basket::{Basket, MAX_BASKET_LINES};
pub use condition::PromotionCondition;
pub use discount::{
    Amount, Discount, DiscountKind, DiscountLevel, Gift, MAX_MONEY, MONEY_DECIMALS, PERCENT_DECIMALS, Percent,
    TypePriorities,
};

crate::ids::numeric_id!(
    /// Id of a promotion. Among promotions ranked equally, the lowest id comes first.
    PromotionId
);

/// The most entries of any list in a promotion (customers, segments, products,
/// categories, promotions it combines with, applications).
pub const MAX_LISTED: usize = 1_000;

/// The deepest condition tree a promotion accepts.
pub const MAX_TREE_DEPTH: usize = 16;

/// The longest description, in characters.
pub const MAX_DESCRIPTION: usize = 2_000;

/// Which other promotions may apply beside this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Combination {
    /// None: applied, it stops every promotion ranked after it; ranked after applied
    /// ones, it does not apply.
    Exclusive,
    /// Any.
    All,
    /// The listed promotions and the promotions of the listed kinds.
    With {
        promotions: Vec<PromotionId>,
        kinds: Vec<DiscountKind>,
    },
}

impl Combination {
    /// Whether this setting lets a promotion `id` of `kind` apply beside its own.
    /// Combining takes both sides' consent.
    pub fn accepts(&self, id: PromotionId, kind: DiscountKind) -> bool {
        match self {
            Self::Exclusive => false,
            Self::All => true,
            Self::With { promotions, kinds } => promotions.contains(&id) || kinds.contains(&kind),
        }
    }
}

/// Who a promotion is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromotionTarget {
    /// Every customer, anonymous ones included.
    Everyone,
    /// These known customers.
    Customers(BTreeSet<CustomerId>),
    /// Customers in any of these segments — as the application's segment provider
    /// returns them at calculation time, so a segment no longer provided there (a
    /// stopped service, a deleted external segment) qualifies no one.
    Segments(Vec<QualifiedSegment>),
}

/// The products a promotion discounts: those included (every product when both
/// include lists are empty) and not excluded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductScope {
    pub include_skus: Vec<String>,
    pub include_categories: Vec<String>,
    pub exclude_skus: Vec<String>,
    pub exclude_categories: Vec<String>,
}

impl ProductScope {
    /// Whether a product with this sku and these categories is in scope.
    pub fn includes(&self, sku: &str, categories: &[String]) -> bool {
        let everything = self.include_skus.is_empty() && self.include_categories.is_empty();
        let included = everything
            || self.include_skus.iter().any(|s| s == sku)
            || categories.iter().any(|c| self.include_categories.contains(c));
        included
            && !self.exclude_skus.iter().any(|s| s == sku)
            && !categories.iter().any(|c| self.exclude_categories.contains(c))
    }
}

/// A promotion as defined by a user.
#[derive(Debug, Clone, PartialEq)]
pub struct Promotion {
    pub id: PromotionId,
    pub name: Name,
    pub description: String,
    /// A disabled promotion is never considered.
    pub enabled: bool,
    /// The applications it is offered in (none: nowhere).
    pub applications: Vec<ApplicationId>,
    /// From this time on (inclusive); `None`: since always.
    pub starts_at: Option<Timestamp>,
    /// Until this time (exclusive); `None`: forever.
    pub ends_at: Option<Timestamp>,
    /// Only baskets in this currency; `None`: any currency (only for percentages and
    /// gifts without a budget or subtotal condition, see `checked`).
    pub currency: Option<Currency>,
    /// The total discount it may ever give, in `currency` (required with a budget).
    pub budget: Option<Decimal>,
    /// Overrides the priority of its discount kind.
    pub priority: Option<i32>,
    pub combination: Combination,
    /// Whether it also discounts what an earlier promotion discounted (on the reduced
    /// price); when not, such lines (and shipping) are left alone.
    pub applies_to_discounted: bool,
    pub target: PromotionTarget,
    pub conditions: Tree<PromotionCondition>,
    pub products: ProductScope,
    pub discount: Discount,
    /// Whether it applies only with a valid code entered.
    pub requires_code: bool,
}

impl Promotion {
    /// Checks the rules that span fields or lists (end after start, a positive budget,
    /// list sizes, product keys, tree depth); values with rules of their own are
    /// already checked by their types. Errors name the field as the JSON format does.
    ///
    /// Definitions that could never apply, or mean nothing, are refused too: an amount
    /// off of 0, an empty `any` (an empty `all` is accepted: always true, the default),
    /// a `with` combination naming nothing or the promotion itself, a product or
    /// category both included and excluded, a budget on a gift (it gives no money).
    /// Money a promotion names needs its currency: a budget, an amount off or a target
    /// price, or a subtotal condition requires `currency` (only percentages and gifts
    /// may be for any currency), and a budget has at most the currency's minor-unit
    /// decimals.
    pub fn checked(self) -> Result<Self, Invalid> {
        if self.description.chars().count() > MAX_DESCRIPTION {
            return Err(Invalid::new(
                "description",
                format!("at most {MAX_DESCRIPTION} characters"),
            ));
        }
        listed("applications", self.applications.len())?;
        if let (Some(start), Some(end)) = (self.starts_at, self.ends_at)
            && end <= start
        {
            return Err(Invalid::new("ends_at", "must be after starts_at"));
        }
        self.check_money()?;
        if let Combination::With { promotions, kinds } = &self.combination {
            listed("combination.with.promotions", promotions.len())?;
            listed("combination.with.kinds", kinds.len())?;
            if promotions.is_empty() && kinds.is_empty() {
                return Err(Invalid::new(
                    "combination.with",
                    "at least one promotion or kind (use \"exclusive\" to combine with none)",
                ));
            }
            if let Some(i) = promotions.iter().position(|p| *p == self.id) {
                return Err(Invalid::new(
                    format!("combination.with.promotions[{i}]"),
                    "must not name the promotion itself",
                ));
            }
        }
        match &self.target {
            PromotionTarget::Everyone => {}
            PromotionTarget::Customers(customers) => {
                if customers.is_empty() {
                    return Err(Invalid::new("target.customers", "at least one customer"));
                }
                listed("target.customers", customers.len())?;
            }
            PromotionTarget::Segments(segments) => {
                if segments.is_empty() {
                    return Err(Invalid::new("target.segments", "at least one segment"));
                }
                listed("target.segments", segments.len())?;
            }
        }
        let scope = &self.products;
        for (name, keys) in [
            ("include_skus", &scope.include_skus),
            ("include_categories", &scope.include_categories),
            ("exclude_skus", &scope.exclude_skus),
            ("exclude_categories", &scope.exclude_categories),
        ] {
            let field = format!("products.{name}");
            listed(&field, keys.len())?;
            for (i, key) in keys.iter().enumerate() {
                product_key(&format!("{field}[{i}]"), key)?;
            }
        }
        for (name, include, exclude) in [
            ("skus", &scope.include_skus, &scope.exclude_skus),
            ("categories", &scope.include_categories, &scope.exclude_categories),
        ] {
            if let Some(i) = exclude.iter().position(|key| include.contains(key)) {
                return Err(Invalid::new(
                    format!("products.exclude_{name}[{i}]"),
                    format!("also in include_{name}"),
                ));
            }
        }
        if self.conditions.depth() > MAX_TREE_DEPTH {
            return Err(Invalid::new(
                "conditions",
                format!("nested deeper than {MAX_TREE_DEPTH} levels"),
            ));
        }
        check_tree("conditions", &self.conditions)?;
        Ok(self)
    }

    /// The budget, the discount's value and the currency they need.
    fn check_money(&self) -> Result<(), Invalid> {
        if let Some(budget) = self.budget {
            if matches!(self.discount, Discount::Gift(_)) {
                return Err(Invalid::new("budget", "a gift gives no money to budget"));
            }
            Amount::parse("budget", budget)?;
            if budget <= Decimal::ZERO {
                return Err(Invalid::new(
                    "budget",
                    format!("must be above 0 and at most {MAX_MONEY}"),
                ));
            }
            if let Some(currency) = self.currency {
                let digits = currency.minor_unit_digits();
                if budget.normalize().scale() > digits {
                    return Err(Invalid::new(
                        "budget",
                        format!("at most {digits} decimal places in {currency}"),
                    ));
                }
            }
        }
        if let Discount::ItemAmountOff(a) | Discount::ShippingAmountOff(a) | Discount::OrderAmountOff(a) =
            &self.discount
            && a.get().is_zero()
        {
            return Err(Invalid::new("discount.amount", "must be above 0"));
        }
        if self.currency.is_none() {
            let amount = matches!(
                self.discount,
                Discount::ItemAmountOff(_)
                    | Discount::ItemTargetPrice(_)
                    | Discount::ShippingAmountOff(_)
                    | Discount::ShippingTargetPrice(_)
                    | Discount::OrderAmountOff(_)
            );
            let why = if self.budget.is_some() {
                Some("a budget")
            } else if amount {
                Some("an amount off or a target price")
            } else if has_subtotal(&self.conditions) {
                Some("a subtotal condition")
            } else {
                None
            };
            if let Some(why) = why {
                return Err(Invalid::new(
                    "currency",
                    format!("required with {why}: amounts are in one currency"),
                ));
            }
        }
        Ok(())
    }

    pub fn kind(&self) -> DiscountKind {
        self.discount.kind()
    }

    /// Its priority in an application with these kind priorities.
    pub fn effective_priority(&self, priorities: &TypePriorities) -> i32 {
        self.priority.unwrap_or_else(|| priorities.get(self.kind()))
    }
}

fn listed(field: &str, len: usize) -> Result<(), Invalid> {
    if len > MAX_LISTED {
        return Err(Invalid::new(field, format!("at most {MAX_LISTED} entries")));
    }
    Ok(())
}

fn has_subtotal(tree: &Tree<PromotionCondition>) -> bool {
    match tree {
        Tree::All(items) | Tree::Any(items) => items.iter().any(has_subtotal),
        Tree::Not(inner) => has_subtotal(inner),
        Tree::Leaf(leaf) => matches!(leaf, PromotionCondition::Subtotal { .. }),
    }
}

/// Leaves checked, lists bounded; an empty `any` (never true) is refused.
fn check_tree(field: &str, tree: &Tree<PromotionCondition>) -> Result<(), Invalid> {
    match tree {
        Tree::All(items) | Tree::Any(items) => {
            let name = if matches!(tree, Tree::All(_)) { "all" } else { "any" };
            listed(&format!("{field}.{name}"), items.len())?;
            if name == "any" && items.is_empty() {
                return Err(Invalid::new(
                    format!("{field}.any"),
                    "at least one condition (an empty any is never true)",
                ));
            }
            for (i, item) in items.iter().enumerate() {
                check_tree(&format!("{field}.{name}[{i}]"), item)?;
            }
            Ok(())
        }
        Tree::Not(inner) => check_tree(&format!("{field}.not"), inner),
        Tree::Leaf(leaf) => leaf.check(field),
    }
}

/// A sku or category: 1 to 128 characters without control characters.
pub fn product_key(field: &str, text: &str) -> Result<String, Invalid> {
    if text.is_empty() || text.len() > 128 || text.chars().any(char::is_control) {
        return Err(Invalid::new(
            field,
            "expected 1 to 128 characters without control characters",
        ));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests;
