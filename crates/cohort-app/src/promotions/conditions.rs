//! The condition tree of a promotion definition: `all`, `any` and `not` over subtotal,
//! product and category quantity, attribute and first-order leaves. Errors name the
//! leaf's path (`conditions.all[1].value`); nesting deeper than `MAX_TREE_DEPTH` is
//! refused at the node that passes it.

use cohort_core::condition::AttributeTest;
use cohort_core::promotion::{Amount, MAX_TREE_DEPTH, product_key};
use cohort_core::{Invalid, PromotionCondition, Tree};
use cohort_engine::Comparison;
use serde_json::{Map, Value};

use crate::activities::decimal;
use crate::builders::{attribute_condition, condition_tree, join, only, string};

pub(super) fn tree(field: &str, value: &Value, depth: usize) -> Result<Tree<PromotionCondition>, Invalid> {
    let expected = "expected all, any, not, or a subtotal, sku, category, attribute or first_order condition";
    condition_tree(
        field,
        value,
        depth,
        MAX_TREE_DEPTH,
        &|field, map| leaf(field, map),
        expected,
    )
}

/// A leaf of a promotion's conditions, `None` for an object that is none.
fn leaf(field: &str, map: &Map<String, Value>) -> Option<Result<Tree<PromotionCondition>, Invalid>> {
    let read = || -> Result<Tree<PromotionCondition>, Invalid> {
        let condition = if map.contains_key("attribute") {
            return attribute(field, map);
        } else if map.contains_key("subtotal") {
            only(map, field, &["subtotal", "value"])?;
            PromotionCondition::Subtotal {
                comparison: Comparison::parse(&join(field, "subtotal"), &string(map, field, "subtotal")?)?,
                value: Amount::parse(&join(field, "value"), decimal(&join(field, "value"), map.get("value"))?)?.get(),
            }
        } else if map.contains_key("sku") {
            only(map, field, &["sku", "quantity", "value"])?;
            let (comparison, quantity) = quantity_test(field, map)?;
            PromotionCondition::ProductQuantity {
                sku: product_key(&join(field, "sku"), &string(map, field, "sku")?)?,
                comparison,
                quantity,
            }
        } else if map.contains_key("category") {
            only(map, field, &["category", "quantity", "value"])?;
            let (comparison, quantity) = quantity_test(field, map)?;
            PromotionCondition::CategoryQuantity {
                category: product_key(&join(field, "category"), &string(map, field, "category")?)?,
                comparison,
                quantity,
            }
        } else {
            only(map, field, &["first_order"])?;
            let first = map["first_order"]
                .as_bool()
                .ok_or_else(|| Invalid::new(join(field, "first_order"), "expected true or false"))?;
            PromotionCondition::FirstOrder(first)
        };
        Ok(Tree::Leaf(condition))
    };
    ["attribute", "subtotal", "sku", "category", "first_order"]
        .iter()
        .any(|k| map.contains_key(*k))
        .then(read)
}

/// `"quantity": ">=", "value": 2`.
fn quantity_test(field: &str, map: &Map<String, Value>) -> Result<(Comparison, u32), Invalid> {
    let comparison = Comparison::parse(&join(field, "quantity"), &string(map, field, "quantity")?)?;
    let value_field = join(field, "value");
    let quantity = match map.get("value") {
        None => return Err(Invalid::new(value_field, "missing field")),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| Invalid::new(&value_field, "expected a whole number of at least 0"))?,
    };
    Ok((comparison, quantity))
}

/// An attribute test as in builders, but `!=` is one leaf (`country != FR`), so its
/// text and its depth are what the user wrote.
fn attribute(field: &str, map: &Map<String, Value>) -> Result<Tree<PromotionCondition>, Invalid> {
    if map.get("op").and_then(Value::as_str) != Some("!=") {
        return attribute_condition(field, map, |attribute, test| PromotionCondition::Attribute {
            attribute,
            test,
        });
    }
    let mut equal = map.clone();
    equal.insert("op".into(), Value::from("="));
    match attribute_condition(field, &equal, |attribute, test| (attribute, test))? {
        Tree::Leaf((attribute, AttributeTest::In(mut values))) if values.len() == 1 => {
            Ok(Tree::Leaf(PromotionCondition::AttributeDiffers {
                attribute,
                value: values.remove(0),
            }))
        }
        _ => Err(Invalid::new(join(field, "op"), "expected an equality test")),
    }
}
