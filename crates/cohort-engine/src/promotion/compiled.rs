//! One promotion compiled, split by how often a calculation reads it.
//!
//! `Hot` holds what every considered promotion needs (time window, currency, target,
//! code and budget, where its conditions and scope are) in a few dozen bytes; each
//! application keeps its promotions' `Hot` records in rank order, so the walk reads
//! memory in sequence. `Compiled` keeps the rest — the definition, the combination
//! lists, the discount value — read only for promotions that get that far.

use cohort_core::promotion::Combination;
use cohort_core::{Currency, DiscountKind, ProductScope, Promotion, PromotionId, PromotionTarget, Timestamp};

use crate::promotion::conditions::Conditions;
use crate::promotion::hash::FastMap;
use crate::promotion::intern::Interner;
use crate::promotion::money::Off;

/// A range of a flat list of the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: u32,
    pub len: u32,
}

impl Span {
    pub fn of(self, list: &[u32]) -> &[u32] {
        &list[self.start as usize..(self.start + self.len) as usize]
    }
}

/// A target group in numbers: sorted spans of the catalog's flat customer and segment
/// lists.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target {
    Everyone,
    Customers(Span),
    Segments(Span),
}

/// How a promotion combines (its lists, if any, are in `Compiled`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Exclusive,
    All,
    With,
}

/// What every considered promotion needs, in one cache line.
#[derive(Debug, Clone)]
pub(crate) struct Hot {
    pub id: PromotionId,
    /// Microseconds; `i64::MIN` when it has no start.
    pub starts: i64,
    /// Microseconds; `i64::MAX` when it has no end.
    pub ends: i64,
    /// Position in the catalog's `promotions`.
    pub index: u32,
    pub target: Target,
    /// Root of its conditions in the catalog's nodes; `NONE` when it has none.
    pub conditions: u32,
    /// Its product scope in the catalog's scopes.
    pub scope: u32,
    pub currency: Option<Currency>,
    pub kind: DiscountKind,
    pub mode: Mode,
    pub requires_code: bool,
    pub applies_to_discounted: bool,
    /// Its budget is in its definition.
    pub has_budget: bool,
}

impl Hot {
    /// No conditions.
    pub const NONE: u32 = u32::MAX;
}

/// A product scope in numbers (lists sorted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct Scope {
    /// Every product, nothing excluded.
    pub all: bool,
    pub everything: bool,
    pub skus: Vec<u32>,
    pub categories: Vec<u32>,
    pub exclude_skus: Vec<u32>,
    pub exclude_categories: Vec<u32>,
}

impl Scope {
    /// Every product.
    pub fn all() -> Self {
        Self {
            all: true,
            everything: true,
            ..Self::default()
        }
    }

    /// Whether a product (its interned sku, if any promotion names it, and its interned
    /// categories) is in scope.
    pub fn includes(&self, sku: Option<u32>, categories: &[u32]) -> bool {
        if self.all {
            return true;
        }
        let has = |list: &[u32], id: u32| list.binary_search(&id).is_ok();
        let included = self.everything
            || sku.is_some_and(|s| has(&self.skus, s))
            || categories.iter().any(|c| has(&self.categories, *c));
        included
            && !sku.is_some_and(|s| has(&self.exclude_skus, s))
            && !categories.iter().any(|c| has(&self.exclude_categories, *c))
    }
}

/// A combination setting: listed ids sorted, kinds as a bit set.
#[derive(Debug, Clone)]
pub(crate) enum Combo {
    Exclusive,
    All,
    With { promotions: Vec<PromotionId>, kinds: u16 },
}

impl Combo {
    pub fn accepts(&self, id: PromotionId, kind: DiscountKind) -> bool {
        match self {
            Self::Exclusive => false,
            Self::All => true,
            Self::With { promotions, kinds } => {
                kinds & (1 << kind.index()) != 0 || promotions.binary_search(&id).is_ok()
            }
        }
    }
}

/// What only some promotions need.
#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    pub definition: Promotion,
    pub combination: Combo,
    pub off: Off,
    /// Its record for the walk (copied into each application's ranking).
    pub hot: Hot,
}

/// The catalog's shared tables while compiling.
#[derive(Debug, Default)]
pub(crate) struct Tables {
    pub interner: Interner,
    pub conditions: Conditions,
    pub scopes: Vec<Scope>,
    scope_numbers: FastMap<Scope, u32>,
    pub customers: Vec<u32>,
    pub segments: Vec<u32>,
}

impl Tables {
    pub fn new() -> Self {
        let mut tables = Self::default();
        tables.scope(Scope::all());
        tables
    }

    fn scope(&mut self, scope: Scope) -> u32 {
        let next = self.scopes.len() as u32;
        let number = *self.scope_numbers.entry(scope.clone()).or_insert(next);
        if number == next {
            self.scopes.push(scope);
        }
        number
    }

    fn span(list: &mut Vec<u32>, items: Vec<u32>) -> Span {
        let start = list.len() as u32;
        let len = items.len() as u32;
        list.extend(items);
        Span { start, len }
    }
}

pub(crate) fn compile(index: u32, definition: Promotion, tables: &mut Tables) -> Compiled {
    let interner = &mut tables.interner;
    let target = match &definition.target {
        PromotionTarget::Everyone => Target::Everyone,
        PromotionTarget::Customers(customers) => {
            let numbers = sorted(customers.iter().map(|c| interner.customer(c)));
            Target::Customers(Tables::span(&mut tables.customers, numbers))
        }
        PromotionTarget::Segments(segments) => {
            let numbers = sorted(segments.iter().map(|s| interner.segment(s)));
            Target::Segments(Tables::span(&mut tables.segments, numbers))
        }
    };
    let ProductScope {
        include_skus,
        include_categories,
        exclude_skus,
        exclude_categories,
    } = &definition.products;
    let everything = include_skus.is_empty() && include_categories.is_empty();
    let scope = Scope {
        all: everything && exclude_skus.is_empty() && exclude_categories.is_empty(),
        everything,
        skus: sorted(include_skus.iter().map(|s| interner.sku(s))),
        categories: sorted(include_categories.iter().map(|c| interner.category(c))),
        exclude_skus: sorted(exclude_skus.iter().map(|s| interner.sku(s))),
        exclude_categories: sorted(exclude_categories.iter().map(|c| interner.category(c))),
    };
    let (combination, mode) = match &definition.combination {
        Combination::Exclusive => (Combo::Exclusive, Mode::Exclusive),
        Combination::All => (Combo::All, Mode::All),
        Combination::With { promotions, kinds } => (
            Combo::With {
                promotions: sorted(promotions.iter().copied()),
                kinds: kinds.iter().fold(0, |bits, k| bits | (1 << k.index())),
            },
            Mode::With,
        ),
    };
    let conditions = tables.conditions.compile(&definition.conditions, &mut tables.interner);
    let hot = Hot {
        id: definition.id,
        starts: definition.starts_at.map_or(i64::MIN, Timestamp::unix_micros),
        ends: definition.ends_at.map_or(i64::MAX, Timestamp::unix_micros),
        index,
        target,
        conditions: conditions.unwrap_or(Hot::NONE),
        scope: tables.scope(scope),
        currency: definition.currency,
        kind: definition.discount.kind(),
        mode,
        requires_code: definition.requires_code,
        applies_to_discounted: definition.applies_to_discounted,
        has_budget: definition.budget.is_some(),
    };
    Compiled {
        combination,
        off: Off::of(&definition.discount),
        hot,
        definition,
    }
}

fn sorted<T: Ord>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut list: Vec<T> = items.collect();
    list.sort_unstable();
    list.dedup();
    list
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_hot_record_fits_in_a_cache_line() {
        assert!(std::mem::size_of::<super::Hot>() <= 64);
    }
}
