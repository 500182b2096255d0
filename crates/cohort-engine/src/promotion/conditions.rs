//! Promotion conditions compiled: skus and categories interned to numbers, every tree
//! flattened into the catalog's node arena (children side by side), identical attribute
//! tests stored once and evaluated at most once per calculation, and the text of every
//! node rendered once — so a calculation names the condition that did not hold without
//! formatting anything.
//!
//! Evaluation is total: an attribute the customer lacks, an anonymous customer's order
//! count, a product not in the basket read as false (or as quantity 0). Without a
//! basket (product pages), basket conditions are unknown and trees are evaluated in
//! three-valued logic.

use std::cell::Cell;
use std::sync::Arc;

use cohort_core::condition::{AttributeTest, Comparison};
use cohort_core::{AttributeName, Attributes, PromotionCondition, Tree};
use rust_decimal::Decimal;

use crate::condition::attribute_holds;
use crate::promotion::hash::FastMap;
use crate::promotion::intern::Interner;

/// A node of the arena (its text is at the same position in `Conditions::texts`).
#[derive(Debug, Clone)]
pub(crate) enum Node {
    /// Children at `first..first + count`.
    All {
        first: u32,
        count: u32,
    },
    Any {
        first: u32,
        count: u32,
    },
    Not {
        child: u32,
    },
    Leaf(Leaf),
}

#[derive(Debug, Clone)]
pub(crate) enum Leaf {
    Subtotal(Comparison, Decimal),
    Sku(u32, Comparison, u32),
    Category(u32, Comparison, u32),
    /// An attribute test of the catalog.
    Attribute(u32),
    /// An attribute present and not passing this test (of equality: `!=`).
    AttributeDiffers(u32),
    FirstOrder(bool),
}

/// Every condition tree of a catalog.
#[derive(Debug, Clone, Default)]
pub(crate) struct Conditions {
    pub nodes: Vec<Node>,
    /// By node: what a reason says when it does not hold.
    pub texts: Vec<Arc<str>>,
    /// Distinct attribute tests.
    pub tests: Vec<(AttributeName, AttributeTest)>,
    test_numbers: FastMap<String, u32>,
}

/// What conditions read in one calculation.
#[derive(Debug)]
pub(crate) struct Facts<'a> {
    pub attributes: &'a Attributes,
    /// `None` for anonymous customers or an unknown count.
    pub previous_orders: Option<u32>,
    /// The outcome of each attribute test, once asked: 0 not yet, 1 holds, 2 does not.
    tests: Vec<Cell<u8>>,
}

impl<'a> Facts<'a> {
    pub fn new(conditions: &Conditions, attributes: &'a Attributes, previous_orders: Option<u32>) -> Self {
        Self {
            attributes,
            previous_orders,
            tests: vec![Cell::new(0); conditions.tests.len()],
        }
    }
}

/// What basket conditions read: the subtotal before discounts and quantities per
/// interned sku and category, sorted by id.
#[derive(Debug, Clone, Default)]
pub(crate) struct BasketFacts {
    pub subtotal: Decimal,
    pub skus: Vec<(u32, u32)>,
    pub categories: Vec<(u32, u32)>,
}

impl BasketFacts {
    /// Sums quantities of equal ids (a line's repeated category counts once: the caller
    /// passes each line's categories deduplicated).
    pub fn add(list: &mut Vec<(u32, u32)>, id: u32, quantity: u32) {
        match list.binary_search_by_key(&id, |e| e.0) {
            Ok(i) => list[i].1 = list[i].1.saturating_add(quantity),
            Err(i) => list.insert(i, (id, quantity)),
        }
    }

    fn quantity(list: &[(u32, u32)], id: u32) -> u32 {
        list.binary_search_by_key(&id, |e| e.0).map_or(0, |i| list[i].1)
    }
}

impl Conditions {
    /// Compiles a tree into the arena; `None` for a tree that always holds (an empty all).
    pub fn compile(&mut self, tree: &Tree<PromotionCondition>, interner: &mut Interner) -> Option<u32> {
        if matches!(tree, Tree::All(items) if items.is_empty()) {
            return None;
        }
        let root = self.slots(1);
        self.fill(root, tree, interner);
        Some(root as u32)
    }

    fn slots(&mut self, count: usize) -> usize {
        let first = self.nodes.len();
        self.nodes.resize(first + count, Node::All { first: 0, count: 0 });
        self.texts.resize(first + count, Arc::from(""));
        first
    }

    /// Writes `tree` at `at`, its children in fresh slots side by side.
    fn fill(&mut self, at: usize, tree: &Tree<PromotionCondition>, interner: &mut Interner) {
        let node = match tree {
            Tree::All(items) | Tree::Any(items) => {
                let first = self.slots(items.len());
                for (k, item) in items.iter().enumerate() {
                    self.fill(first + k, item, interner);
                }
                let (first, count) = (first as u32, items.len() as u32);
                if matches!(tree, Tree::All(_)) {
                    Node::All { first, count }
                } else {
                    Node::Any { first, count }
                }
            }
            Tree::Not(inner) => {
                let child = self.slots(1);
                self.fill(child, inner, interner);
                Node::Not { child: child as u32 }
            }
            Tree::Leaf(condition) => Node::Leaf(match condition {
                PromotionCondition::Subtotal { comparison, value } => Leaf::Subtotal(*comparison, *value),
                PromotionCondition::ProductQuantity {
                    sku,
                    comparison,
                    quantity,
                } => Leaf::Sku(interner.sku(sku), *comparison, *quantity),
                PromotionCondition::CategoryQuantity {
                    category,
                    comparison,
                    quantity,
                } => Leaf::Category(interner.category(category), *comparison, *quantity),
                PromotionCondition::Attribute { attribute, test } => Leaf::Attribute(self.test(attribute, test)),
                PromotionCondition::AttributeDiffers { attribute, value } => {
                    Leaf::AttributeDiffers(self.test(attribute, &AttributeTest::In(vec![value.clone()])))
                }
                PromotionCondition::FirstOrder(first) => Leaf::FirstOrder(*first),
            }),
        };
        self.nodes[at] = node;
        self.texts[at] = tree.to_string().into();
    }

    fn test(&mut self, attribute: &AttributeName, test: &AttributeTest) -> u32 {
        let next = self.tests.len() as u32;
        let number = *self
            .test_numbers
            .entry(format!("{attribute}\u{0}{test:?}"))
            .or_insert(next);
        if number == next {
            self.tests.push((attribute.clone(), test.clone()));
        }
        number
    }

    /// Whether the customer passes an attribute test, evaluated once a call.
    fn attribute(&self, test: u32, facts: &Facts<'_>) -> bool {
        let known = &facts.tests[test as usize];
        if known.get() == 0 {
            let (name, test) = &self.tests[test as usize];
            let holds = facts.attributes.get(name).is_some_and(|v| attribute_holds(test, v));
            known.set(if holds { 1 } else { 2 });
        }
        known.get() == 1
    }

    /// `None` when the leaf reads the basket and there is none.
    fn leaf(&self, leaf: &Leaf, facts: &Facts<'_>, basket: Option<&BasketFacts>) -> Option<bool> {
        Some(match leaf {
            Leaf::Subtotal(comparison, value) => comparison.holds(basket?.subtotal, *value),
            Leaf::Sku(id, comparison, n) => comparison.holds(BasketFacts::quantity(&basket?.skus, *id), *n),
            Leaf::Category(id, comparison, n) => comparison.holds(BasketFacts::quantity(&basket?.categories, *id), *n),
            Leaf::Attribute(test) => self.attribute(*test, facts),
            Leaf::AttributeDiffers(test) => {
                facts.attributes.get(&self.tests[*test as usize].0).is_some() && !self.attribute(*test, facts)
            }
            Leaf::FirstOrder(first) => facts.previous_orders.is_some_and(|n| (n == 0) == *first),
        })
    }

    /// The text of the part of the tree at `at` that does not hold, or `None` when it holds.
    pub fn failing(&self, at: u32, facts: &Facts<'_>, basket: &BasketFacts) -> Option<&Arc<str>> {
        let text = &self.texts[at as usize];
        match &self.nodes[at as usize] {
            Node::All { first, count } => (*first..first + count).find_map(|n| self.failing(n, facts, basket)),
            Node::Any { first, count } => {
                let holds = (*first..first + count).any(|n| self.failing(n, facts, basket).is_none());
                (!holds).then_some(text)
            }
            Node::Not { child } => self.failing(*child, facts, basket).is_none().then_some(text),
            Node::Leaf(leaf) => (self.leaf(leaf, facts, Some(basket)) != Some(true)).then_some(text),
        }
    }

    /// Three-valued evaluation without a basket: `None` when it depends on the basket.
    pub fn known(&self, at: u32, facts: &Facts<'_>) -> Option<bool> {
        let (first, count, all) = match &self.nodes[at as usize] {
            Node::All { first, count } => (*first, *count, true),
            Node::Any { first, count } => (*first, *count, false),
            Node::Not { child } => return self.known(*child, facts).map(|b| !b),
            Node::Leaf(leaf) => return self.leaf(leaf, facts, None),
        };
        // All: a false child decides; Any: a true one. Otherwise an unknown child
        // leaves it unknown.
        let mut unknown = false;
        for n in first..first + count {
            match self.known(n, facts) {
                Some(b) if b != all => return Some(b),
                None => unknown = true,
                Some(_) => {}
            }
        }
        if unknown { None } else { Some(all) }
    }
}
