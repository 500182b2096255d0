//! A basket as promotions see it: lines (an order's items: sku, categories, quantity,
//! unit price), a currency and a shipping cost. Prices and shipping are amounts (0 to
//! `MAX_MONEY`, with no more decimals than the currency's minor unit: 2 for EUR, 0 for
//! JPY) and the subtotal is at most `MAX_MONEY`, so every total is in whole minor units
//! and a calculation's money is exact in 128-bit integers.

use rust_decimal::Decimal;

use super::{Amount, MAX_MONEY};
use crate::{Currency, Invalid, OrderItem};

/// The most lines a basket holds.
pub const MAX_BASKET_LINES: usize = 1_000;

/// The basket a calculation discounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Basket {
    currency: Currency,
    items: Vec<OrderItem>,
    shipping: Decimal,
}

impl Basket {
    pub fn new(currency: Currency, items: Vec<OrderItem>, shipping: Decimal) -> Result<Self, Invalid> {
        if items.len() > MAX_BASKET_LINES {
            return Err(Invalid::new("items", format!("at most {MAX_BASKET_LINES} lines")));
        }
        minor_units(currency, "shipping", shipping)?;
        let mut subtotal = Decimal::ZERO;
        for (i, item) in items.iter().enumerate() {
            minor_units(currency, &format!("items[{i}].unit_price"), item.unit_price)?;
            subtotal += item.unit_price * Decimal::from(item.quantity);
        }
        if subtotal > MAX_MONEY {
            return Err(Invalid::new("items", format!("a subtotal of at most {MAX_MONEY}")));
        }
        Ok(Self {
            currency,
            items,
            shipping,
        })
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    pub fn items(&self) -> &[OrderItem] {
        &self.items
    }

    pub fn shipping(&self) -> Decimal {
        self.shipping
    }

    /// The sum of the lines before any discount.
    pub fn subtotal(&self) -> Decimal {
        self.items
            .iter()
            .map(|i| i.unit_price * Decimal::from(i.quantity))
            .sum()
    }
}

/// An amount of the basket's currency: within `Amount`'s bounds and in whole minor units.
fn minor_units(currency: Currency, field: &str, value: Decimal) -> Result<(), Invalid> {
    Amount::parse(field, value)?;
    let digits = currency.minor_unit_digits();
    if value.normalize().scale() > digits {
        return Err(Invalid::new(
            field,
            format!("at most {digits} decimal places in {currency}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_basket_sums_its_lines_and_refuses_negative_shipping() {
        let eur = Currency::parse("c", "EUR").unwrap();
        let item = OrderItem::new("items[0]", "A", 3, Decimal::new(250, 2), vec![]).unwrap();
        let basket = Basket::new(eur, vec![item], Decimal::new(490, 2)).unwrap();
        assert_eq!(basket.subtotal(), Decimal::new(750, 2));
        assert_eq!(
            Basket::new(eur, vec![], Decimal::NEGATIVE_ONE).unwrap_err().field,
            "shipping"
        );
        let dear = OrderItem::new("items[0]", "A", 2, MAX_MONEY, vec![]).unwrap();
        assert_eq!(Basket::new(eur, vec![dear], Decimal::ZERO).unwrap_err().field, "items");
        let fine = OrderItem::new("items[0]", "A", 1, "0.0000000001".parse().unwrap(), vec![]).unwrap();
        assert_eq!(
            Basket::new(eur, vec![fine], Decimal::ZERO).unwrap_err().field,
            "items[0].unit_price"
        );
    }

    #[test]
    fn basket_money_is_in_whole_minor_units() {
        let eur = Currency::parse("c", "EUR").unwrap();
        let jpy = Currency::parse("c", "JPY").unwrap();
        let cent = OrderItem::new("items[0]", "A", 1, "0.010".parse().unwrap(), vec![]).unwrap();
        let third = OrderItem::new("items[1]", "B", 1, "0.005".parse().unwrap(), vec![]).unwrap();
        assert!(Basket::new(eur, vec![cent.clone()], "4.90".parse().unwrap()).is_ok());
        let err = Basket::new(eur, vec![cent.clone(), third], Decimal::ZERO).unwrap_err();
        assert_eq!(err.field, "items[1].unit_price");
        assert_eq!(err.reason, "at most 2 decimal places in EUR");
        assert_eq!(
            Basket::new(jpy, vec![], "0.5".parse().unwrap()).unwrap_err().field,
            "shipping"
        );
        assert_eq!(
            Basket::new(jpy, vec![cent], Decimal::ZERO).unwrap_err().field,
            "items[0].unit_price"
        );
    }
}
