//! The money of a calculation: what one promotion takes off each line or the
//! shipping, rounded to the currency's minor unit (half away from zero) when computed,
//! never more than what is left, capped by the remaining budget.
//!
//! Inside a calculation money is exact integers: units of 10^-scale, the scale being the
//! finest of the currency's minor unit and the basket's prices. Prices and amounts have
//! at most 9 decimals and percentages 6, and a subtotal is at most 10^15 (`cohort-core`
//! checks both), so every amount fits in 128 bits; a product that would not is larger
//! than any basket and is capped as such. Results go back to `Decimal` at the end.
//!
//! Order discounts are computed on the current total of the eligible lines and spread
//! over them pro rata; the shares sum exactly to the discount (the last line takes the
//! remainder, and no share exceeds its line).

use cohort_core::promotion::MONEY_DECIMALS;
use cohort_core::{Basket, Discount};
use rust_decimal::{Decimal, RoundingStrategy};

/// A decimal as its mantissa and scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fixed {
    pub mantissa: i128,
    pub scale: u32,
}

impl Fixed {
    pub fn of(value: Decimal) -> Self {
        let value = value.normalize();
        Self {
            mantissa: value.mantissa(),
            scale: value.scale(),
        }
    }
}

/// A discount's value as the calculation uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Off {
    /// A percentage as a factor (10 % is 0.1).
    Percent(Fixed),
    /// Off each unit (items), or once (order, shipping).
    Amount(Fixed),
    /// What each unit (items) or the shipping costs at most.
    Price(Fixed),
    /// Nothing off: a free line.
    Gift,
}

impl Off {
    pub fn of(discount: &Discount) -> Self {
        match discount {
            Discount::ItemPercentOff(p) | Discount::ShippingPercentOff(p) | Discount::OrderPercentOff(p) => {
                let percent = Fixed::of(p.get());
                Self::Percent(Fixed {
                    mantissa: percent.mantissa,
                    scale: percent.scale + 2,
                })
            }
            Discount::ItemAmountOff(a) | Discount::ShippingAmountOff(a) | Discount::OrderAmountOff(a) => {
                Self::Amount(Fixed::of(a.get()))
            }
            Discount::ItemTargetPrice(t) | Discount::ShippingTargetPrice(t) => Self::Price(Fixed::of(t.get())),
            Discount::Gift(_) => Self::Gift,
        }
    }
}

/// One basket line while promotions are applied (money in units).
#[derive(Debug, Clone)]
pub(crate) struct Line {
    /// Interned sku, when a promotion names it.
    pub sku: Option<u32>,
    /// Range of the line's interned categories in the calculation's category list.
    pub categories: (u32, u32),
    pub quantity: i128,
    pub subtotal: i128,
    /// What is left of the subtotal.
    pub total: i128,
    /// An earlier promotion took something off this line.
    pub discounted: bool,
    /// The promotion at hand may discount it.
    pub open: bool,
    /// What the promotion at hand takes off it (units), until committed.
    pub take: i128,
}

impl Line {
    pub fn new(sku: Option<u32>, categories: (u32, u32), quantity: i128, subtotal: i128) -> Self {
        Self {
            sku,
            categories,
            quantity,
            subtotal,
            total: subtotal,
            discounted: false,
            open: false,
            take: 0,
        }
    }
}

/// The units of one calculation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Money {
    /// Decimals of the currency's minor unit.
    pub digits: u32,
    /// Decimals of a unit (at least `digits`).
    pub scale: u32,
}

impl Money {
    /// Units fine enough for the basket's prices and shipping.
    pub fn for_basket(basket: &Basket) -> Self {
        let digits = basket.currency().minor_unit_digits();
        let values = || basket.items().iter().map(|i| i.unit_price).chain([basket.shipping()]);
        let mut scale = values().map(|v| v.scale()).fold(digits, u32::max);
        if scale > MONEY_DECIMALS {
            // Trailing zeros: the values themselves have at most `MONEY_DECIMALS`.
            scale = values().map(|v| v.normalize().scale()).fold(digits, u32::max);
        }
        Self { digits, scale }
    }

    /// A decimal with at most `scale` significant decimals, in units.
    pub fn units(self, value: Decimal) -> i128 {
        let (mantissa, scale) = (value.mantissa(), value.scale());
        if scale <= self.scale {
            mantissa * POWERS[(self.scale - scale) as usize]
        } else {
            mantissa / POWERS[(scale - self.scale) as usize]
        }
    }

    pub fn decimal(self, units: i128) -> Decimal {
        match i64::try_from(units) {
            Ok(small) => Decimal::new(small, self.scale),
            Err(_) => Decimal::from_i128_with_scale(units, self.scale),
        }
    }

    /// One minor unit, in units.
    fn step(self) -> i128 {
        POWERS[(self.scale - self.digits) as usize]
    }

    /// A value with `scale` decimals rounded to the minor unit, in units; `None` when it
    /// is beyond any basket amount.
    fn rounded(self, value: i128, scale: u32) -> Option<i128> {
        if scale <= self.digits {
            mul(value, POWERS[(self.scale - scale) as usize])
        } else {
            mul(divide_away(value, POWERS[(scale - self.digits) as usize]), self.step())
        }
    }

    /// `base × factor`, rounded.
    fn percent(self, base: i128, factor: Fixed) -> i128 {
        let product = mul(base, factor.mantissa);
        match product.and_then(|p| self.rounded(p, self.scale + factor.scale)) {
            Some(amount) => amount,
            // Beyond the checked bounds of prices and percentages; exact enough in decimal.
            None => {
                let factor = Decimal::from_i128_with_scale(factor.mantissa, factor.scale);
                self.round_decimal(self.decimal(base) * factor)
            }
        }
    }

    fn round_decimal(self, value: Decimal) -> i128 {
        self.units(value.round_dp_with_strategy(self.digits, RoundingStrategy::MidpointAwayFromZero))
    }

    /// `value × quantity`, rounded; `None` when beyond any basket amount.
    fn times(self, value: Fixed, quantity: i128) -> Option<i128> {
        self.rounded(mul(value.mantissa, quantity)?, value.scale)
    }

    /// What brings `base` down to `price × quantity`, rounded, within 0 and `base`.
    fn down_to(self, base: i128, price: Fixed, quantity: i128) -> i128 {
        if price.scale <= self.scale {
            // The target is exact in units; only a base finer than the minor unit rounds.
            let target =
                mul(price.mantissa, POWERS[(self.scale - price.scale) as usize]).and_then(|t| mul(t, quantity));
            return match target {
                Some(target) if target < base && self.scale == self.digits => base - target,
                Some(target) if target < base => self.rounded(base - target, self.scale).unwrap_or(0).min(base),
                _ => 0,
            };
        }
        let scale = self.scale.max(price.scale);
        let target = mul(price.mantissa, quantity).and_then(|t| mul(t, POWERS[(scale - price.scale) as usize]));
        let base_at = mul(base, POWERS[(scale - self.scale) as usize]);
        match (base_at, target) {
            (Some(b), Some(t)) => self.rounded(b - t, scale).unwrap_or(0).clamp(0, base),
            _ => 0,
        }
    }

    /// `part × amount ÷ whole`, rounded (whole > 0).
    fn share(self, part: i128, amount: i128, whole: i128) -> i128 {
        match (mul(part, amount), mul(whole, self.step())) {
            (Some(n), Some(d)) => divide_away(n, d) * self.step(),
            _ => self.round_decimal(self.decimal(part) * (self.decimal(amount) / self.decimal(whole))),
        }
    }

    /// An item discount: what it takes off each line `open` admits (into `take`);
    /// returns the sum.
    pub fn items(
        self,
        off: Off,
        lines: &mut [Line],
        open: impl Fn(&Line) -> bool,
        mut remaining: Option<i128>,
    ) -> i128 {
        // An amount in whole minor units, or a price exact in units, is converted once.
        let amount_units = match off {
            Off::Amount(a) if a.scale <= self.digits => self.rounded(a.mantissa, a.scale),
            _ => None,
        };
        let price_units = match off {
            Off::Price(t) if t.scale <= self.scale && self.scale == self.digits => {
                mul(t.mantissa, POWERS[(self.scale - t.scale) as usize])
            }
            _ => None,
        };
        let mut sum = 0;
        for line in lines.iter_mut() {
            line.take = 0;
            if remaining == Some(0) || !open(line) {
                continue;
            }
            let base = line.total;
            let mut amount = match (off, amount_units, price_units) {
                (Off::Amount(_), Some(units), _) => mul(units, line.quantity).unwrap_or(base),
                (Off::Price(_), _, Some(units)) => mul(units, line.quantity).map_or(0, |target| base - target),
                (Off::Percent(factor), ..) => self.percent(base, factor),
                (Off::Amount(a), ..) => self.times(a, line.quantity).unwrap_or(base),
                (Off::Price(t), ..) => self.down_to(base, t, line.quantity),
                (Off::Gift, ..) => 0,
            }
            .clamp(0, base);
            if let Some(left) = remaining.as_mut() {
                amount = amount.min(*left);
                *left -= amount;
            }
            line.take = amount;
            sum += amount;
        }
        sum
    }

    /// An order discount spread over the lines `open` admits (into `take`); returns
    /// the sum.
    pub fn order(self, off: Off, lines: &mut [Line], open: impl Fn(&Line) -> bool, remaining: Option<i128>) -> i128 {
        let mut base = 0;
        let mut last = None;
        for (i, line) in lines.iter_mut().enumerate() {
            line.take = 0;
            line.open = open(line);
            if line.open {
                base += line.total;
                last = Some(i);
            }
        }
        let Some(last) = last else { return 0 };
        let amount = match off {
            Off::Percent(factor) => self.percent(base, factor),
            Off::Amount(a) => self.times(a, 1).unwrap_or(base),
            _ => 0,
        };
        let amount = amount.clamp(0, base);
        let amount = remaining.map_or(amount, |left| amount.min(left));
        if amount == 0 {
            return 0;
        }
        let mut assigned = 0;
        for line in lines[..last].iter_mut().filter(|l| l.open) {
            line.take = self.share(line.total, amount, base).min(line.total);
            assigned += line.take;
        }
        lines[last].take = amount - assigned;
        reconcile(lines, last);
        amount
    }

    /// A shipping discount on the current shipping cost.
    pub fn shipping(self, off: Off, current: i128, remaining: Option<i128>) -> i128 {
        let amount = match off {
            Off::Percent(factor) => self.percent(current, factor),
            Off::Amount(a) => self.times(a, 1).unwrap_or(current),
            Off::Price(t) => self.down_to(current, t, 1),
            Off::Gift => 0,
        };
        let amount = amount.clamp(0, current);
        remaining.map_or(amount, |left| amount.min(left))
    }
}

/// Powers of ten up to 10^38, the largest an `i128` holds.
const POWERS: [i128; 39] = {
    let mut table = [1i128; 39];
    let mut i = 1;
    while i < table.len() {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

/// `a × b`, `None` on overflow; machine multiplication when both fit in 64 bits (the
/// product then always fits in 128).
fn mul(a: i128, b: i128) -> Option<i128> {
    if fits(a) && fits(b) {
        Some(a * b)
    } else {
        a.checked_mul(b)
    }
}

fn fits(n: i128) -> bool {
    i64::try_from(n).is_ok()
}

/// `n ÷ d` (d > 0) rounded half away from zero; machine division when both fit in 64
/// bits.
fn divide_away(n: i128, d: i128) -> i128 {
    if let (Ok(n), Ok(d)) = (i64::try_from(n), i64::try_from(d)) {
        let (q, r) = (n / d, n % d);
        let up = r.unsigned_abs() >= d.unsigned_abs() - r.unsigned_abs();
        return i128::from(if up { q + n.signum() } else { q });
    }
    let (q, r) = (n / d, n % d);
    if r.unsigned_abs() >= d.unsigned_abs() - r.unsigned_abs() {
        q + n.signum()
    } else {
        q
    }
}

/// Moves what the last line cannot take (or gave too much) onto the others, from the
/// end, so every share lies within its line and the sum stays exact.
fn reconcile(lines: &mut [Line], last: usize) {
    let capacity = lines[last].total;
    if lines[last].take > capacity {
        let mut excess = lines[last].take - capacity;
        lines[last].take = capacity;
        for line in lines[..last].iter_mut().rev().filter(|l| l.open) {
            let moved = excess.min(line.total - line.take);
            line.take += moved;
            excess -= moved;
            if excess == 0 {
                break;
            }
        }
    } else if lines[last].take < 0 {
        let mut deficit = -lines[last].take;
        lines[last].take = 0;
        for line in lines[..last].iter_mut().rev().filter(|l| l.open) {
            let moved = deficit.min(line.take);
            line.take -= moved;
            deficit -= moved;
            if deficit == 0 {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests;
