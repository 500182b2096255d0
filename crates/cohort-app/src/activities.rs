//! Activities as clients send them: JSON objects parsed into domain activities.
//!
//! `{"id": "o-1001", "customer": "C1", "type": "order", "at": "2026-11-21T10:00:00Z",
//!   "attributes": {…}, "order": {"total": "39.98", "currency": "EUR",
//!   "items": [{"sku": "SKI-1", "quantity": 2, "unit_price": "19.99", "categories": ["ski"]}]}}`
//!
//! `id` is optional (cohort assigns one; give it to make retries idempotent), `at`
//! defaults to now, decimals may be strings or numbers.

use std::str::FromStr;

use cohort_core::{
    Activity, ActivityId, ActivityType, Attributes, Currency, CustomerId, Decimal, Invalid, Order, OrderItem, Timestamp,
};
use rand::RngCore;
use serde_json::{Map, Value};

use crate::import::attributes_from_json;

/// A fresh activity id: `a_` and 128 random bits in hex.
pub fn new_activity_id() -> ActivityId {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    ActivityId::parse("id", &format!("a_{hex}")).expect("a generated id is valid")
}

/// Parses one activity object; `now` stands in for a missing `at`.
pub fn parse_activity(text: &str, now: Timestamp) -> Result<Activity, Invalid> {
    let value: Value = serde_json::from_str(text).map_err(|e| Invalid::new("", format!("invalid json: {e}")))?;
    let Value::Object(mut object) = value else {
        return Err(Invalid::new("", "expected a JSON object"));
    };
    let id = match take_string(&mut object, "id")? {
        Some(id) => ActivityId::parse("id", &id)?,
        None => new_activity_id(),
    };
    let customer = take_string(&mut object, "customer")?.ok_or_else(|| Invalid::new("customer", "missing field"))?;
    let customer = CustomerId::parse("customer", &customer)?;
    let kind = take_string(&mut object, "type")?.ok_or_else(|| Invalid::new("type", "missing field"))?;
    let kind = ActivityType::parse("type", &kind)?;
    let at = take_string(&mut object, "at")?
        .map(|t| Timestamp::parse("at", &t))
        .transpose()?
        .unwrap_or(now);
    let attributes = match object.remove("attributes") {
        None => Attributes::new(),
        Some(Value::Object(map)) => attributes_from_json(&map)?,
        Some(_) => return Err(Invalid::new("attributes", "expected an object")),
    };
    let order = match object.remove("order") {
        None => None,
        Some(Value::Object(map)) => Some(parse_order(map)?),
        Some(_) => return Err(Invalid::new("order", "expected an object")),
    };
    if let Some(unknown) = object.keys().next() {
        return Err(Invalid::new(unknown.as_str(), "unknown field"));
    }
    Activity::new(id, customer, kind, at, attributes, order)
}

fn take_string(object: &mut Map<String, Value>, name: &str) -> Result<Option<String>, Invalid> {
    match object.remove(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Invalid::new(name, "expected a string")),
    }
}

pub(crate) fn decimal(field: &str, value: Option<&Value>) -> Result<Decimal, Invalid> {
    let text = match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err(Invalid::new(field, "expected a decimal number")),
        None => return Err(Invalid::new(field, "missing field")),
    };
    Decimal::from_str(&text).map_err(|_| Invalid::new(field, "expected a decimal number"))
}

fn parse_order(mut map: Map<String, Value>) -> Result<Order, Invalid> {
    let total = decimal("order.total", map.get("total"))?;
    let currency = match map.get("currency") {
        Some(Value::String(c)) => Currency::parse("order.currency", c)?,
        _ => return Err(Invalid::new("order.currency", "expected an ISO 4217 code")),
    };
    let items = match map.remove("items") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| parse_item(i, v))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(Invalid::new("order.items", "expected a list")),
    };
    if let Some(unknown) = map.keys().find(|k| !matches!(k.as_str(), "total" | "currency")) {
        return Err(Invalid::new(format!("order.{unknown}"), "unknown field"));
    }
    Order::new(total, currency, items)
}

fn parse_item(i: usize, value: &Value) -> Result<OrderItem, Invalid> {
    let field = format!("order.items[{i}]");
    let Value::Object(map) = value else {
        return Err(Invalid::new(field, "expected an object"));
    };
    if let Some(unknown) = map
        .keys()
        .find(|k| !matches!(k.as_str(), "sku" | "quantity" | "unit_price" | "categories"))
    {
        return Err(Invalid::new(format!("{field}.{unknown}"), "unknown field"));
    }
    let sku = map
        .get("sku")
        .and_then(Value::as_str)
        .ok_or_else(|| Invalid::new(format!("{field}.sku"), "expected a string"))?;
    let quantity = map
        .get("quantity")
        .and_then(Value::as_i64)
        .ok_or_else(|| Invalid::new(format!("{field}.quantity"), "expected a whole number"))?;
    let unit_price = decimal(&format!("{field}.unit_price"), map.get("unit_price"))?;
    let categories = match map.get("categories") {
        None => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .map(|c| c.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| Invalid::new(format!("{field}.categories"), "expected a list of strings"))?,
        Some(_) => {
            return Err(Invalid::new(
                format!("{field}.categories"),
                "expected a list of strings",
            ));
        }
    };
    OrderItem::new(&field, sku, quantity, unit_price, categories)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_unix_micros(1_000);

    #[test]
    fn an_order_parses_with_exact_decimals() {
        let a = parse_activity(
            r#"{"id":"o1","customer":"C1","type":"order","order":{"total":39.98,"currency":"EUR",
                "items":[{"sku":"S","quantity":2,"unit_price":"19.99","categories":["ski"]}]}}"#,
            NOW,
        )
        .unwrap();
        let order = a.order.unwrap();
        assert_eq!(
            (order.total.to_string(), order.items[0].unit_price.to_string()),
            ("39.98".into(), "19.99".into())
        );
        assert_eq!(a.at, NOW);
    }

    #[test]
    fn bad_activities_name_their_field() {
        let field = |json: &str| parse_activity(json, NOW).unwrap_err().field;
        assert_eq!(field(r#"{"type":"login"}"#), "customer");
        assert_eq!(field(r#"{"customer":"C1","type":"Log In"}"#), "type");
        assert_eq!(field(r#"{"customer":"C1","type":"login","at":"yesterday"}"#), "at");
        assert_eq!(field(r#"{"customer":"C1","type":"order"}"#), "order");
        assert_eq!(
            field(r#"{"customer":"C1","type":"order","order":{"total":"x","currency":"EUR"}}"#),
            "order.total"
        );
        let item = r#"{"customer":"C1","type":"order","order":{"total":1,"currency":"EUR","items":[{"sku":"S","quantity":0,"unit_price":1}]}}"#;
        assert_eq!(field(item), "order.items[0].quantity");
        assert_eq!(field(r#"{"customer":"C1","type":"login","colour":1}"#), "colour");
    }

    #[test]
    fn generated_ids_differ() {
        assert_ne!(new_activity_id(), new_activity_id());
    }
}
