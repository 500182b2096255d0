//! Activities: what customers do (orders, logins, page views), the raw material of
//! segment builders and automation rules.
//!
//! An activity of type `order` carries an order: a total, a currency and its items.
//! Money is decimal, never floating point.

use std::fmt;

use rust_decimal::Decimal;

use crate::attributes::check_attributes;
use crate::{Attributes, Currency, CustomerId, Invalid, Timestamp};

/// The activity type that carries an order.
pub const ORDER: &str = "order";

/// An activity type: 1 to 64 lowercase letters, digits, `_`, `-` or `.`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ActivityType(String);

impl ActivityType {
    pub fn parse(field: &str, text: &str) -> Result<Self, Invalid> {
        let ok = !text.is_empty()
            && text.len() <= 64
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.'));
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(Invalid::new(
                field,
                "expected 1 to 64 lowercase letters, digits, '_', '-' or '.'",
            ))
        }
    }

    /// The type of an activity a rule tracks: any but `order`, which is recorded with
    /// its order (placed through the orders endpoint, or sent with its order data).
    pub fn parse_tracked(field: &str, text: &str) -> Result<Self, Invalid> {
        let kind = Self::parse(field, text)?;
        if kind.is_order() {
            return Err(Invalid::new(
                field,
                "an order is recorded with its order, not tracked by a rule",
            ));
        }
        Ok(kind)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_order(&self) -> bool {
        self.0 == ORDER
    }
}

impl fmt::Display for ActivityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An activity id: chosen by the client (so retries are idempotent) or by cohort.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ActivityId(String);

impl ActivityId {
    pub fn parse(field: &str, text: &str) -> Result<Self, Invalid> {
        let ok = !text.is_empty() && text.len() <= 128 && text.chars().all(|c| !c.is_whitespace() && !c.is_control());
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(Invalid::new(field, "expected 1 to 128 characters without white space"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ActivityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderItem {
    pub sku: String,
    pub quantity: u32,
    pub unit_price: Decimal,
    pub categories: Vec<String>,
}

impl OrderItem {
    pub fn new(
        field: &str,
        sku: &str,
        quantity: i64,
        unit_price: Decimal,
        categories: Vec<String>,
    ) -> Result<Self, Invalid> {
        if sku.is_empty() || sku.len() > 128 {
            return Err(Invalid::new(format!("{field}.sku"), "expected 1 to 128 characters"));
        }
        let quantity = u32::try_from(quantity)
            .ok()
            .filter(|q| *q >= 1)
            .ok_or_else(|| Invalid::new(format!("{field}.quantity"), "expected a whole number of at least 1"))?;
        if unit_price.is_sign_negative() {
            return Err(Invalid::new(format!("{field}.unit_price"), "must not be negative"));
        }
        if categories.len() > 100 || categories.iter().any(|c| c.is_empty() || c.len() > 128) {
            return Err(Invalid::new(
                format!("{field}.categories"),
                "at most 100 categories of 1 to 128 characters",
            ));
        }
        Ok(Self {
            sku: sku.to_owned(),
            quantity,
            unit_price,
            categories,
        })
    }
}

/// The order an `order` activity carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub total: Decimal,
    pub currency: Currency,
    pub items: Vec<OrderItem>,
}

impl Order {
    pub fn new(total: Decimal, currency: Currency, items: Vec<OrderItem>) -> Result<Self, Invalid> {
        if total.is_sign_negative() {
            return Err(Invalid::new("order.total", "must not be negative"));
        }
        if items.len() > 1_000 {
            return Err(Invalid::new("order.items", "at most 1000 items"));
        }
        Ok(Self { total, currency, items })
    }
}

/// Something a customer did.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    pub id: ActivityId,
    pub customer: CustomerId,
    pub kind: ActivityType,
    pub at: Timestamp,
    pub attributes: Attributes,
    pub order: Option<Order>,
}

impl Activity {
    /// Checks that an `order` activity has an order and no other activity has one.
    pub fn new(
        id: ActivityId,
        customer: CustomerId,
        kind: ActivityType,
        at: Timestamp,
        attributes: Attributes,
        order: Option<Order>,
    ) -> Result<Self, Invalid> {
        check_attributes("attributes", &attributes)?;
        match (&order, kind.is_order()) {
            (None, true) => return Err(Invalid::new("order", "an order activity needs its order")),
            (Some(_), false) => return Err(Invalid::new("order", "only an activity of type order carries an order")),
            _ => {}
        }
        Ok(Self {
            id,
            customer,
            kind,
            at,
            attributes,
            order,
        })
    }
}

/// Filter of a customer's activity list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityFilter {
    pub kind: Option<ActivityType>,
    /// From this time on (inclusive).
    pub since: Option<Timestamp>,
    /// Before this time (exclusive).
    pub until: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer() -> CustomerId {
        CustomerId::parse("c", "c1").unwrap()
    }

    #[test]
    fn only_order_activities_carry_an_order() {
        let order = Order::new(Decimal::new(1250, 2), Currency::parse("c", "EUR").unwrap(), vec![]).unwrap();
        let id = ActivityId::parse("id", "a1").unwrap();
        let at = Timestamp::from_unix_micros(0);
        let order_type = ActivityType::parse("type", "order").unwrap();
        let login = ActivityType::parse("type", "login").unwrap();
        assert!(
            Activity::new(
                id.clone(),
                customer(),
                order_type.clone(),
                at,
                Attributes::new(),
                Some(order.clone())
            )
            .is_ok()
        );
        assert_eq!(
            Activity::new(id.clone(), customer(), order_type, at, Attributes::new(), None)
                .unwrap_err()
                .field,
            "order"
        );
        assert_eq!(
            Activity::new(id, customer(), login, at, Attributes::new(), Some(order))
                .unwrap_err()
                .field,
            "order"
        );
    }

    #[test]
    fn order_items_name_their_bad_field() {
        let ok = OrderItem::new("order.items[0]", "SKU-1", 2, Decimal::new(999, 2), vec!["ski".into()]);
        assert!(ok.is_ok());
        let zero = OrderItem::new("order.items[0]", "SKU-1", 0, Decimal::ONE, vec![]).unwrap_err();
        assert_eq!(zero.field, "order.items[0].quantity");
        let negative = OrderItem::new("order.items[1]", "SKU-1", 1, Decimal::NEGATIVE_ONE, vec![]).unwrap_err();
        assert_eq!(negative.field, "order.items[1].unit_price");
        assert!(ActivityType::parse("type", "Page View").is_err());
    }
}
