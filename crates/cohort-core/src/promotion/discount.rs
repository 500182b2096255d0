//! What a promotion gives: one discount of one kind, and the default priority of each
//! kind (Intershop's table: item discounts before shipping before order before gifts).
//!
//! Values with rules are types of their own, so a discount that exists is valid: a
//! percentage lies in (0, 100], amounts and target prices are not negative, a gift
//! gives at least one item.

use std::fmt;

use rust_decimal::Decimal;

use crate::Invalid;
use crate::promotion::product_key;

/// The kinds of discount, in the order of their default priorities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DiscountKind {
    ItemTargetPrice,
    ItemPercentOff,
    ItemAmountOff,
    ShippingTargetPrice,
    ShippingPercentOff,
    ShippingAmountOff,
    OrderPercentOff,
    OrderAmountOff,
    Gift,
}

/// What a kind of discount reduces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscountLevel {
    /// Each eligible line, per unit.
    Item,
    /// The shipping cost.
    Shipping,
    /// The total of the eligible lines, spread over them.
    Order,
    /// Nothing: a free line is added.
    Gift,
}

impl DiscountKind {
    pub const ALL: [Self; 9] = [
        Self::ItemTargetPrice,
        Self::ItemPercentOff,
        Self::ItemAmountOff,
        Self::ShippingTargetPrice,
        Self::ShippingPercentOff,
        Self::ShippingAmountOff,
        Self::OrderPercentOff,
        Self::OrderAmountOff,
        Self::Gift,
    ];

    /// 1000 for item target prices down to 200 for gifts, in steps of 100.
    pub const fn default_priority(self) -> i32 {
        1000 - 100 * self as i32
    }

    /// Position in `ALL`.
    pub const fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ItemTargetPrice => "item_target_price",
            Self::ItemPercentOff => "item_percent_off",
            Self::ItemAmountOff => "item_amount_off",
            Self::ShippingTargetPrice => "shipping_target_price",
            Self::ShippingPercentOff => "shipping_percent_off",
            Self::ShippingAmountOff => "shipping_amount_off",
            Self::OrderPercentOff => "order_percent_off",
            Self::OrderAmountOff => "order_amount_off",
            Self::Gift => "gift",
        }
    }

    pub fn parse(field: &str, text: &str) -> Result<Self, Invalid> {
        Self::ALL.into_iter().find(|k| k.as_str() == text).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|k| k.as_str()).collect();
            Invalid::new(field, format!("expected one of {}", names.join(", ")))
        })
    }

    pub fn level(self) -> DiscountLevel {
        match self {
            Self::ItemTargetPrice | Self::ItemPercentOff | Self::ItemAmountOff => DiscountLevel::Item,
            Self::ShippingTargetPrice | Self::ShippingPercentOff | Self::ShippingAmountOff => DiscountLevel::Shipping,
            Self::OrderPercentOff | Self::OrderAmountOff => DiscountLevel::Order,
            Self::Gift => DiscountLevel::Gift,
        }
    }
}

impl fmt::Display for DiscountKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The priority of each kind of discount in one application: the defaults, some
/// possibly overridden. A promotion without an explicit priority takes its kind's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TypePriorities([i32; 9]);

impl Default for TypePriorities {
    fn default() -> Self {
        Self(DiscountKind::ALL.map(DiscountKind::default_priority))
    }
}

impl TypePriorities {
    pub fn get(&self, kind: DiscountKind) -> i32 {
        self.0[kind.index()]
    }

    pub fn set(&mut self, kind: DiscountKind, priority: i32) {
        self.0[kind.index()] = priority;
    }
}

/// The most decimal places of a percentage.
pub const PERCENT_DECIMALS: u32 = 6;

/// The most decimal places of an amount of money or a price.
pub const MONEY_DECIMALS: u32 = 9;

/// A percentage above 0 and at most 100, with at most `PERCENT_DECIMALS` decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Percent(Decimal);

impl Percent {
    pub fn parse(field: &str, value: Decimal) -> Result<Self, Invalid> {
        let value = value.normalize();
        if value <= Decimal::ZERO || value > Decimal::ONE_HUNDRED {
            Err(Invalid::new(field, "expected a percentage above 0 and at most 100"))
        } else if value.scale() > PERCENT_DECIMALS {
            Err(Invalid::new(
                field,
                format!("at most {PERCENT_DECIMALS} decimal places"),
            ))
        } else {
            Ok(Self(value))
        }
    }

    pub fn get(self) -> Decimal {
        self.0
    }
}

/// The largest amount of money a promotion or basket names (10^15): sums and products
/// of a basket's amounts then stay far within `Decimal`'s range.
pub const MAX_MONEY: Decimal = Decimal::from_parts(0xA4C6_8000, 0x0003_8D7E, 0, false, 0);

/// An amount of money or a price, from 0 to `MAX_MONEY`, with at most
/// `MONEY_DECIMALS` decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Amount(Decimal);

impl Amount {
    pub fn parse(field: &str, value: Decimal) -> Result<Self, Invalid> {
        if value < Decimal::ZERO {
            Err(Invalid::new(field, "must not be negative"))
        } else if value > MAX_MONEY {
            Err(Invalid::new(field, format!("must be at most {MAX_MONEY}")))
        } else if value.normalize().scale() > MONEY_DECIMALS {
            Err(Invalid::new(field, format!("at most {MONEY_DECIMALS} decimal places")))
        } else {
            Ok(Self(value))
        }
    }

    pub fn get(self) -> Decimal {
        self.0
    }
}

/// The most units one gift gives.
pub const MAX_GIFT_QUANTITY: u32 = 1_000;

/// A product given for free.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Gift {
    sku: String,
    quantity: u32,
}

impl Gift {
    /// `field` is the discount's path: errors name `{field}.sku` or `{field}.quantity`.
    pub fn new(field: &str, sku: &str, quantity: i64) -> Result<Self, Invalid> {
        let sku = product_key(&join(field, "sku"), sku)?;
        let quantity = u32::try_from(quantity)
            .ok()
            .filter(|q| (1..=MAX_GIFT_QUANTITY).contains(q))
            .ok_or_else(|| {
                Invalid::new(
                    join(field, "quantity"),
                    format!("expected a whole number from 1 to {MAX_GIFT_QUANTITY}"),
                )
            })?;
        Ok(Self { sku, quantity })
    }

    pub fn sku(&self) -> &str {
        &self.sku
    }

    pub fn quantity(&self) -> u32 {
        self.quantity
    }
}

fn join(field: &str, name: &str) -> String {
    if field.is_empty() {
        name.to_owned()
    } else {
        format!("{field}.{name}")
    }
}

/// The one discount of a promotion: its kind and its value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Discount {
    /// Each eligible unit costs at most this.
    ItemTargetPrice(Amount),
    ItemPercentOff(Percent),
    /// Off each eligible unit.
    ItemAmountOff(Amount),
    /// Shipping costs at most this.
    ShippingTargetPrice(Amount),
    ShippingPercentOff(Percent),
    ShippingAmountOff(Amount),
    /// Off the total of the eligible lines.
    OrderPercentOff(Percent),
    OrderAmountOff(Amount),
    Gift(Gift),
}

impl Discount {
    pub fn kind(&self) -> DiscountKind {
        match self {
            Self::ItemTargetPrice(_) => DiscountKind::ItemTargetPrice,
            Self::ItemPercentOff(_) => DiscountKind::ItemPercentOff,
            Self::ItemAmountOff(_) => DiscountKind::ItemAmountOff,
            Self::ShippingTargetPrice(_) => DiscountKind::ShippingTargetPrice,
            Self::ShippingPercentOff(_) => DiscountKind::ShippingPercentOff,
            Self::ShippingAmountOff(_) => DiscountKind::ShippingAmountOff,
            Self::OrderPercentOff(_) => DiscountKind::OrderPercentOff,
            Self::OrderAmountOff(_) => DiscountKind::OrderAmountOff,
            Self::Gift(_) => DiscountKind::Gift,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    #[test]
    fn default_priorities_are_intershops() {
        let table: Vec<i32> = DiscountKind::ALL.iter().map(|k| k.default_priority()).collect();
        assert_eq!(table, [1000, 900, 800, 700, 600, 500, 400, 300, 200]);
        let mut priorities = TypePriorities::default();
        priorities.set(DiscountKind::Gift, 2000);
        assert_eq!(priorities.get(DiscountKind::Gift), 2000);
        assert_eq!(priorities.get(DiscountKind::OrderAmountOff), 300);
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in DiscountKind::ALL {
            assert_eq!(DiscountKind::parse("kind", kind.as_str()).unwrap(), kind);
        }
        assert!(DiscountKind::parse("kind", "free_shipping").is_err());
    }

    #[test]
    fn a_percentage_lies_above_zero_and_at_most_one_hundred() {
        assert!(Percent::parse("p", dec("100")).is_ok());
        assert!(Percent::parse("p", dec("0.5")).is_ok());
        for bad in ["0", "-1", "100.01", "12.0000001"] {
            assert_eq!(Percent::parse("p", dec(bad)).unwrap_err().field, "p", "{bad}");
        }
        assert!(Percent::parse("p", dec("12.500000000")).is_ok());
    }

    #[test]
    fn amounts_are_not_negative_and_gifts_give_at_least_one() {
        assert!(Amount::parse("a", Decimal::ZERO).is_ok());
        assert!(Amount::parse("a", dec("-0.01")).is_err());
        assert_eq!(MAX_MONEY, Decimal::from(1_000_000_000_000_000_i64));
        assert!(Amount::parse("a", MAX_MONEY).is_ok());
        assert!(Amount::parse("a", MAX_MONEY + Decimal::ONE).is_err());
        assert!(Amount::parse("a", dec("0.0000000001")).is_err());
        assert!(Amount::parse("a", dec("0.123456789000")).is_ok());
        assert_eq!(Gift::new("discount", "G-1", 0).unwrap_err().field, "discount.quantity");
        assert_eq!(Gift::new("discount", "", 1).unwrap_err().field, "discount.sku");
        assert_eq!(Gift::new("discount", "G-1", 2).unwrap().quantity(), 2);
    }
}
