//! Checks of promotion definitions: the rules that span fields, and the scope and
//! combination rules the engine builds on.

use super::*;
use crate::condition::Comparison;

fn promotion() -> Promotion {
    Promotion {
        id: PromotionId::new(1),
        name: Name::parse("name", "Ski 10%").unwrap(),
        description: String::new(),
        enabled: true,
        applications: vec![ApplicationId::parse("a", "shop").unwrap()],
        starts_at: None,
        ends_at: None,
        currency: None,
        budget: None,
        priority: None,
        combination: Combination::All,
        applies_to_discounted: false,
        target: PromotionTarget::Everyone,
        conditions: Tree::All(vec![]),
        products: ProductScope::default(),
        discount: Discount::ItemPercentOff(Percent::parse("p", Decimal::TEN).unwrap()),
        requires_code: false,
    }
}

fn field(p: Promotion) -> String {
    p.checked().unwrap_err().field
}

#[test]
fn a_plain_promotion_passes() {
    let p = promotion().checked().unwrap();
    assert_eq!(p.kind(), DiscountKind::ItemPercentOff);
    assert_eq!(p.effective_priority(&TypePriorities::default()), 900);
    let explicit = Promotion {
        priority: Some(5),
        ..promotion()
    };
    assert_eq!(explicit.effective_priority(&TypePriorities::default()), 5);
}

#[test]
fn the_end_comes_after_the_start() {
    let at = Timestamp::from_unix_micros(1_000);
    let p = Promotion {
        starts_at: Some(at),
        ends_at: Some(at),
        ..promotion()
    };
    assert_eq!(field(p), "ends_at");
}

#[test]
fn a_budget_is_above_zero() {
    let p = Promotion {
        budget: Some(Decimal::ZERO),
        ..promotion()
    };
    assert_eq!(field(p), "budget");
}

#[test]
fn lists_are_bounded_and_targets_name_someone() {
    let many = (0..=MAX_LISTED).map(|i| format!("SKU-{i}")).collect();
    let p = Promotion {
        products: ProductScope {
            exclude_skus: many,
            ..ProductScope::default()
        },
        ..promotion()
    };
    assert_eq!(field(p), "products.exclude_skus");
    let p = Promotion {
        target: PromotionTarget::Segments(vec![]),
        ..promotion()
    };
    assert_eq!(field(p), "target.segments");
    let p = Promotion {
        products: ProductScope {
            include_categories: vec!["ski".into(), String::new()],
            ..ProductScope::default()
        },
        ..promotion()
    };
    assert_eq!(field(p), "products.include_categories[1]");
}

#[test]
fn condition_trees_are_bounded_and_their_leaves_checked() {
    let leaf = Tree::Leaf(PromotionCondition::FirstOrder(true));
    let deep = (0..MAX_TREE_DEPTH).fold(leaf, |t, _| Tree::Not(Box::new(t)));
    let p = Promotion {
        conditions: deep,
        ..promotion()
    };
    assert_eq!(field(p), "conditions");
    let bad = PromotionCondition::ProductQuantity {
        sku: String::new(),
        comparison: Comparison::GreaterOrEqual,
        quantity: 1,
    };
    let p = Promotion {
        conditions: Tree::All(vec![Tree::Leaf(PromotionCondition::FirstOrder(true)), Tree::Leaf(bad)]),
        ..promotion()
    };
    assert_eq!(field(p), "conditions.all[1].sku");
}

#[test]
fn combining_accepts_listed_ids_and_kinds() {
    let with = Combination::With {
        promotions: vec![PromotionId::new(7)],
        kinds: vec![DiscountKind::Gift],
    };
    assert!(with.accepts(PromotionId::new(7), DiscountKind::OrderAmountOff));
    assert!(with.accepts(PromotionId::new(8), DiscountKind::Gift));
    assert!(!with.accepts(PromotionId::new(8), DiscountKind::OrderAmountOff));
    assert!(!Combination::Exclusive.accepts(PromotionId::new(7), DiscountKind::Gift));
    assert!(Combination::All.accepts(PromotionId::new(8), DiscountKind::Gift));
}

#[test]
fn a_scope_includes_then_excludes() {
    let scope = ProductScope {
        include_categories: vec!["ski".into()],
        exclude_skus: vec!["SKI-OLD".into()],
        ..ProductScope::default()
    };
    let ski = vec!["ski".to_owned()];
    assert!(scope.includes("SKI-1", &ski));
    assert!(!scope.includes("SKI-OLD", &ski));
    assert!(!scope.includes("BOOT-1", &["boots".to_owned()]));
    assert!(ProductScope::default().includes("ANY", &[]));
}
