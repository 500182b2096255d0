//! Promotion definitions as clients write them (JSON), parsed into checked domain
//! promotions; errors name the exact field (`discount.percent`,
//! `conditions.all[1].value`), unknown fields are refused.
//!
//! ```json
//! {"id": 7, "name": "Ski 10%", "description": "", "enabled": true, "applications": ["shop"],
//!  "starts_at": "2026-01-01T00:00:00Z", "ends_at": null, "currency": "EUR", "budget": "500.00",
//!  "priority": null, "combination": "all", "applies_to_discounted": false,
//!  "target": {"segments": ["standard/tier/premium"]},
//!  "conditions": {"all": [{"subtotal": ">=", "value": "100.00"}, {"category": "ski", "quantity": ">=", "value": 2}]},
//!  "products": {"include_categories": ["ski"], "exclude_skus": ["SKU-1"]},
//!  "discount": {"kind": "item_percent_off", "percent": "10"}, "requires_code": false}
//! ```
//!
//! Over the API and in the store the definition has no `id` (cohort assigns it;
//! `parse_definition`); `parse_promotion` reads one with its id (decision cases).
//!
//! Required: `id`, `name`, `applications`, `target`, `discount`, and `currency` with a
//! budget, an amount off, a target price or a subtotal condition. Defaults: enabled,
//! no time limits, any currency, no budget, the kind's priority, `"all"` combination,
//! not on discounted prices, no conditions, every product, no code.
//!
//! - `combination`: `"exclusive"`, `"all"` or `{"with": {"promotions": [3], "kinds": ["gift"]}}`.
//! - `target`: `"everyone"`, `{"customers": ["C1"]}` or `{"segments": ["service/group/segment"]}` (any of them).
//! - `conditions`: a tree as in builder definitions — `{"all": […]}`, `{"any": […]}`, `{"not": …}` — over
//!   `{"subtotal": ">=", "value": "100.00"}`, `{"sku": "SKU-1", "quantity": ">=", "value": 2}`,
//!   `{"category": "ski", "quantity": ">=", "value": 2}`, `{"first_order": true}` and attribute tests
//!   `{"attribute": "country", "op": "=", "value": "FR"}` (ops as in builders; `!=` is one
//!   leaf: the attribute present and different). `{"all": []}` is always true (the
//!   default); `{"any": []}` is refused.
//! - `discount`: `{"kind": "item_percent_off" | "shipping_percent_off" | "order_percent_off", "percent": "10"}`,
//!   `{"kind": "item_amount_off" | "shipping_amount_off" | "order_amount_off", "amount": "5.00"}`,
//!   `{"kind": "item_target_price" | "shipping_target_price", "price": "9.99"}`,
//!   `{"kind": "gift", "sku": "GIFT-1", "quantity": 1}` (quantity defaults to 1).
//!
//! An application's type priorities: `{"item_percent_off": 1100, "gift": 950}` — the
//! kinds not named keep their defaults.

pub mod codes;
mod conditions;
pub mod service;

use std::collections::BTreeSet;

use cohort_core::promotion::{Amount, Gift, Percent, product_key};
use cohort_core::{
    ApplicationId, Combination, Currency, CustomerId, Discount, DiscountKind, Invalid, Name, ProductScope, Promotion,
    PromotionId, PromotionTarget, QualifiedSegment, Timestamp, Tree, TypePriorities,
};
use serde_json::{Map, Value};

use crate::activities::decimal;
use crate::builders::{array, join, object, only, string};
use conditions::tree;

const FIELDS: [&str; 17] = [
    "id",
    "name",
    "description",
    "enabled",
    "applications",
    "starts_at",
    "ends_at",
    "currency",
    "budget",
    "priority",
    "combination",
    "applies_to_discounted",
    "target",
    "conditions",
    "products",
    "discount",
    "requires_code",
];

/// Parses and checks a promotion definition.
pub fn parse_promotion(value: &Value) -> Result<Promotion, Invalid> {
    let map = object("", value)?;
    only(map, "", &FIELDS)?;
    let id = match map.get("id") {
        None => return Err(Invalid::new("id", "missing field")),
        Some(v) => v
            .as_i64()
            .filter(|id| *id >= 1)
            .map(PromotionId::new)
            .ok_or_else(|| Invalid::new("id", "expected a whole number of at least 1"))?,
    };
    let promotion = Promotion {
        id,
        name: Name::parse("name", &string(map, "", "name")?)?,
        description: optional(map, "description", |v| match v {
            Value::String(s) => Ok(s.clone()),
            _ => Err(Invalid::new("description", "expected a string")),
        })?
        .unwrap_or_default(),
        enabled: boolean(map, "enabled", true)?,
        applications: array(map, "", "applications")?
            .iter()
            .enumerate()
            .map(|(i, v)| ApplicationId::parse(&format!("applications[{i}]"), text(&format!("applications[{i}]"), v)?))
            .collect::<Result<_, _>>()?,
        starts_at: optional(map, "starts_at", |v| {
            Timestamp::parse("starts_at", text("starts_at", v)?)
        })?,
        ends_at: optional(map, "ends_at", |v| Timestamp::parse("ends_at", text("ends_at", v)?))?,
        currency: optional(map, "currency", |v| Currency::parse("currency", text("currency", v)?))?,
        budget: optional(map, "budget", |v| decimal("budget", Some(v)))?,
        priority: optional(map, "priority", |v| {
            v.as_i64()
                .and_then(|p| i32::try_from(p).ok())
                .ok_or_else(|| Invalid::new("priority", "expected a whole number"))
        })?,
        combination: optional(map, "combination", combination)?.unwrap_or(Combination::All),
        applies_to_discounted: boolean(map, "applies_to_discounted", false)?,
        target: match map.get("target") {
            None => return Err(Invalid::new("target", "missing field")),
            Some(v) => target(v)?,
        },
        conditions: optional(map, "conditions", |v| tree("conditions", v, 1))?.unwrap_or(Tree::All(Vec::new())),
        products: optional(map, "products", products)?.unwrap_or_default(),
        discount: match map.get("discount") {
            None => return Err(Invalid::new("discount", "missing field")),
            Some(v) => discount(v)?,
        },
        requires_code: boolean(map, "requires_code", false)?,
    };
    promotion.checked()
}

/// Parses a definition as clients send it and cohort stores it — without its id —
/// as promotion `id`.
pub fn parse_definition(id: PromotionId, value: &Value) -> Result<Promotion, Invalid> {
    let map = object("", value)?;
    if map.contains_key("id") {
        return Err(Invalid::new("id", "unknown field: cohort assigns the id"));
    }
    let mut with_id = map.clone();
    with_id.insert("id".into(), Value::from(id.get()));
    parse_promotion(&Value::Object(with_id))
}

/// Parses an application's type priorities: kinds named override their defaults.
pub fn parse_type_priorities(value: &Value) -> Result<TypePriorities, Invalid> {
    let map = object("", value)?;
    let mut priorities = TypePriorities::default();
    for (name, priority) in map {
        let kind =
            DiscountKind::parse(name, name).map_err(|e| Invalid::new(name, format!("unknown field: {}", e.reason)))?;
        let priority = priority
            .as_i64()
            .and_then(|p| i32::try_from(p).ok())
            .ok_or_else(|| Invalid::new(name, "expected a whole number"))?;
        priorities.set(kind, priority);
    }
    Ok(priorities)
}

/// A field that may be absent or null.
fn optional<T>(
    map: &Map<String, Value>,
    name: &str,
    parse: impl FnOnce(&Value) -> Result<T, Invalid>,
) -> Result<Option<T>, Invalid> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => parse(v).map(Some),
    }
}

fn boolean(map: &Map<String, Value>, name: &str, default: bool) -> Result<bool, Invalid> {
    optional(map, name, |v| {
        v.as_bool().ok_or_else(|| Invalid::new(name, "expected true or false"))
    })
    .map(|b| b.unwrap_or(default))
}

fn text<'a>(field: &str, value: &'a Value) -> Result<&'a str, Invalid> {
    value.as_str().ok_or_else(|| Invalid::new(field, "expected a string"))
}

/// A list of strings at `{field}.{name}`, each parsed with its own path.
fn list<T>(
    map: &Map<String, Value>,
    field: &str,
    name: &str,
    parse: impl Fn(&str, &str) -> Result<T, Invalid>,
) -> Result<Vec<T>, Invalid> {
    let here = join(field, name);
    array(map, field, name)?
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let path = format!("{here}[{i}]");
            parse(&path, text(&path, v)?)
        })
        .collect()
}

fn combination(value: &Value) -> Result<Combination, Invalid> {
    let field = "combination";
    match value {
        Value::String(s) if s == "exclusive" => Ok(Combination::Exclusive),
        Value::String(s) if s == "all" => Ok(Combination::All),
        Value::Object(map) => {
            only(map, field, &["with"])?;
            let here = join(field, "with");
            let with = object(
                &here,
                map.get("with").ok_or_else(|| Invalid::new(&here, "missing field"))?,
            )?;
            only(with, &here, &["promotions", "kinds"])?;
            let promotions = match with.get("promotions") {
                None => Vec::new(),
                Some(_) => array(with, &here, "promotions")?
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        v.as_i64().filter(|id| *id >= 1).map(PromotionId::new).ok_or_else(|| {
                            Invalid::new(
                                format!("{here}.promotions[{i}]"),
                                "expected a whole number of at least 1",
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?,
            };
            let kinds = match with.get("kinds") {
                None => Vec::new(),
                Some(_) => list(with, &here, "kinds", DiscountKind::parse)?,
            };
            Ok(Combination::With { promotions, kinds })
        }
        _ => Err(Invalid::new(
            field,
            "expected \"exclusive\", \"all\" or {\"with\": {\"promotions\": […], \"kinds\": […]}}",
        )),
    }
}

fn target(value: &Value) -> Result<PromotionTarget, Invalid> {
    let field = "target";
    match value {
        Value::String(s) if s == "everyone" => Ok(PromotionTarget::Everyone),
        Value::Object(map) if map.contains_key("customers") => {
            only(map, field, &["customers"])?;
            let customers: BTreeSet<CustomerId> =
                list(map, field, "customers", CustomerId::parse)?.into_iter().collect();
            Ok(PromotionTarget::Customers(customers))
        }
        Value::Object(map) if map.contains_key("segments") => {
            only(map, field, &["segments"])?;
            Ok(PromotionTarget::Segments(list(
                map,
                field,
                "segments",
                QualifiedSegment::parse,
            )?))
        }
        _ => Err(Invalid::new(
            field,
            "expected \"everyone\", {\"customers\": […]} or {\"segments\": […]}",
        )),
    }
}

fn products(value: &Value) -> Result<ProductScope, Invalid> {
    let field = "products";
    let map = object(field, value)?;
    let names = [
        "include_skus",
        "include_categories",
        "exclude_skus",
        "exclude_categories",
    ];
    only(map, field, &names)?;
    let keys = |name: &str| match map.get(name) {
        None => Ok(Vec::new()),
        Some(_) => list(map, field, name, product_key),
    };
    Ok(ProductScope {
        include_skus: keys("include_skus")?,
        include_categories: keys("include_categories")?,
        exclude_skus: keys("exclude_skus")?,
        exclude_categories: keys("exclude_categories")?,
    })
}

fn discount(value: &Value) -> Result<Discount, Invalid> {
    let field = "discount";
    let map = object(field, value)?;
    let kind = DiscountKind::parse("discount.kind", &string(map, field, "kind")?)?;
    let number = |name: &str| decimal(&join(field, name), map.get(name));
    let percent = || -> Result<Percent, Invalid> {
        only(map, field, &["kind", "percent"])?;
        Percent::parse("discount.percent", number("percent")?)
    };
    let amount = |name: &str| -> Result<Amount, Invalid> {
        only(map, field, &["kind", name])?;
        Amount::parse(&join(field, name), number(name)?)
    };
    Ok(match kind {
        DiscountKind::ItemTargetPrice => Discount::ItemTargetPrice(amount("price")?),
        DiscountKind::ItemPercentOff => Discount::ItemPercentOff(percent()?),
        DiscountKind::ItemAmountOff => Discount::ItemAmountOff(amount("amount")?),
        DiscountKind::ShippingTargetPrice => Discount::ShippingTargetPrice(amount("price")?),
        DiscountKind::ShippingPercentOff => Discount::ShippingPercentOff(percent()?),
        DiscountKind::ShippingAmountOff => Discount::ShippingAmountOff(amount("amount")?),
        DiscountKind::OrderPercentOff => Discount::OrderPercentOff(percent()?),
        DiscountKind::OrderAmountOff => Discount::OrderAmountOff(amount("amount")?),
        DiscountKind::Gift => {
            only(map, field, &["kind", "sku", "quantity"])?;
            let quantity = match map.get("quantity") {
                None => 1,
                Some(q) => q
                    .as_i64()
                    .ok_or_else(|| Invalid::new("discount.quantity", "expected a whole number"))?,
            };
            Discount::Gift(Gift::new(field, &string(map, field, "sku")?, quantity)?)
        }
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_documented_example_parses() {
        let value = json!({"id": 7, "name": "Ski 10%", "description": "", "enabled": true, "applications": ["shop"],
            "starts_at": "2026-01-01T00:00:00Z", "ends_at": null, "currency": "EUR", "budget": "500.00",
            "priority": null, "combination": {"with": {"promotions": [3], "kinds": ["gift"]}},
            "applies_to_discounted": false, "target": {"segments": ["standard/tier/premium"]},
            "conditions": {"all": [{"subtotal": ">=", "value": "100.00"}, {"category": "ski", "quantity": ">=", "value": 2}]},
            "products": {"include_categories": ["ski"], "exclude_skus": ["SKU-1"]},
            "discount": {"kind": "item_percent_off", "percent": "10"}, "requires_code": false});
        let p = parse_promotion(&value).unwrap();
        assert_eq!(p.id, PromotionId::new(7));
        assert_eq!(p.kind(), DiscountKind::ItemPercentOff);
        assert!(p.combination.accepts(PromotionId::new(9), DiscountKind::Gift));
        assert_eq!(
            p.conditions.to_string(),
            "all(subtotal >= 100.00, quantity in category ski >= 2)"
        );
    }

    #[test]
    fn type_priorities_override_the_kinds_they_name() {
        let table = parse_type_priorities(&json!({"gift": 1200, "order_amount_off": -5})).unwrap();
        assert_eq!(table.get(DiscountKind::Gift), 1200);
        assert_eq!(table.get(DiscountKind::OrderAmountOff), -5);
        assert_eq!(table.get(DiscountKind::ItemTargetPrice), 1000);
        let unknown = parse_type_priorities(&json!({"cashback": 1100})).unwrap_err();
        assert_eq!(unknown.field, "cashback");
        assert!(unknown.reason.starts_with("unknown field"));
        let fraction = parse_type_priorities(&json!({"gift": 1.5})).unwrap_err();
        assert_eq!(fraction.field, "gift");
    }

    #[test]
    fn a_gift_quantity_defaults_to_one() {
        let value = json!({"id": 1, "name": "Gift", "applications": [], "target": "everyone",
            "discount": {"kind": "gift", "sku": "GLOVES"}});
        let Discount::Gift(gift) = parse_promotion(&value).unwrap().discount else {
            panic!("a gift")
        };
        assert_eq!((gift.sku(), gift.quantity()), ("GLOVES", 1));
    }
}
