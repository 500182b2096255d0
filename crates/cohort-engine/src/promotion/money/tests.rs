//! Integer money against its decimal definition: rounding half away from zero to the
//! minor unit, exact spreading, budget caps.

use super::*;

fn dec(text: &str) -> Decimal {
    text.parse().unwrap()
}

fn money(digits: u32, scale: u32) -> Money {
    Money { digits, scale }
}

fn line(money: Money, total: &str) -> Line {
    Line::new(None, (0, 0), 1, money.units(dec(total)))
}

fn round(digits: u32, value: Decimal) -> Decimal {
    value.round_dp_with_strategy(digits, RoundingStrategy::MidpointAwayFromZero)
}

#[test]
fn percentages_round_as_decimals_do() {
    for (digits, scale) in [(0, 0), (2, 2), (2, 3), (3, 4)] {
        let m = money(digits, scale);
        for base in ["29.97", "0.05", "1999", "990", "0.005", "123.456"] {
            let base = dec(base);
            if base.scale() > scale {
                continue;
            }
            for percent in ["10", "50", "15", "12.5", "33.333333", "100"] {
                let off = Off::of(&Discount::ItemPercentOff(
                    cohort_core::promotion::Percent::parse("p", dec(percent)).unwrap(),
                ));
                let Off::Percent(factor) = off else {
                    panic!("a percentage")
                };
                let want = round(digits, base * dec(percent) / Decimal::ONE_HUNDRED);
                assert_eq!(
                    m.decimal(m.percent(m.units(base), factor)),
                    want,
                    "{percent}% of {base} to {digits}"
                );
            }
        }
    }
}

#[test]
fn amounts_and_target_prices_round_as_decimals_do() {
    let m = money(2, 3);
    for (amount, quantity) in [("0.125", 3), ("5", 2), ("0.005", 1), ("1.0049", 1)] {
        let want = round(2, dec(amount) * Decimal::from(quantity));
        let got = m.times(Fixed::of(dec(amount)), quantity).unwrap();
        assert_eq!(m.decimal(got), want, "{amount} × {quantity}");
    }
    for (base, price, quantity) in [
        ("200.00", "80", 2),
        ("29.970", "9.995", 3),
        ("10", "7.5", 1),
        ("5", "9", 1),
    ] {
        let want = round(2, dec(base) - dec(price) * Decimal::from(quantity)).clamp(Decimal::ZERO, dec(base));
        let got = m.down_to(m.units(dec(base)), Fixed::of(dec(price)), quantity);
        assert_eq!(m.decimal(got), want, "{base} down to {price} × {quantity}");
    }
    assert_eq!(m.times(Fixed::of(dec("1000000000000000")), i128::MAX / 2), None);
}

#[test]
fn an_order_discount_is_spread_exactly() {
    let m = money(2, 2);
    let mut lines = [line(m, "10.00"), line(m, "10.00"), line(m, "10.00")];
    let off = Off::Amount(Fixed::of(Decimal::TEN));
    assert_eq!(m.decimal(m.order(off, &mut lines, |_| true, None)), Decimal::TEN);
    assert_eq!(lines.map(|l| m.decimal(l.take).to_string()), ["3.33", "3.33", "3.34"]);
}

#[test]
fn the_last_share_never_exceeds_its_line() {
    let m = money(0, 1);
    let mut lines = [line(m, "1.4"), line(m, "1.4"), line(m, "0.2")];
    let amount = m.order(Off::Amount(Fixed::of(Decimal::from(3))), &mut lines, |_| true, None);
    assert_eq!(m.decimal(amount), Decimal::from(3));
    assert_eq!(
        lines.map(|l| m.decimal(l.take).normalize().to_string()),
        ["1.4", "1.4", "0.2"]
    );
}

#[test]
fn a_budget_caps_item_discounts_line_by_line() {
    let m = money(2, 2);
    let mut lines = [line(m, "10.00"), line(m, "10.00")];
    let budget = Some(m.units(Decimal::from(5)));
    let sum = m.items(Off::Amount(Fixed::of(Decimal::from(4))), &mut lines, |_| true, budget);
    assert_eq!(m.decimal(sum), Decimal::from(5));
    assert_eq!(lines.map(|l| m.decimal(l.take)), [Decimal::from(4), Decimal::ONE]);
}

#[test]
fn units_follow_the_finest_price_and_drop_trailing_zeros() {
    // Basket prices are in whole minor units (of dinars here: 3 digits).
    let bhd = cohort_core::Currency::parse("c", "BHD").unwrap();
    let item = cohort_core::OrderItem::new("i", "A", 1, dec("0.125"), vec![]).unwrap();
    let zeros = cohort_core::OrderItem::new("i", "B", 1, dec("1.000000000000000"), vec![]).unwrap();
    let basket = Basket::new(bhd, vec![item, zeros], dec("4.90")).unwrap();
    let m = Money::for_basket(&basket);
    assert_eq!((m.digits, m.scale), (3, 3));
    assert_eq!(m.units(dec("1.000000000000000")), 1000);
    assert_eq!(m.decimal(m.units(dec("0.125"))), dec("0.125"));
}

#[test]
fn halves_round_away_from_zero() {
    assert_eq!(divide_away(25, 10), 3);
    assert_eq!(divide_away(-25, 10), -3);
    assert_eq!(divide_away(24, 10), 2);
    assert_eq!(divide_away(-15, 10), -2);
    assert_eq!(divide_away(i128::MAX, i128::MAX), 1);
    assert_eq!(divide_away(i128::MAX, 2), i128::MAX / 2 + 1);
    assert_eq!(divide_away(-(1i128 << 70) - 5, 10), -((1i128 << 70) / 10) - 1);
    assert_eq!(
        mul(i128::from(i64::MAX), i128::from(i64::MAX)),
        Some(i128::from(i64::MAX) * i128::from(i64::MAX))
    );
    assert_eq!(mul(i128::MAX, 2), None);
}

#[test]
fn a_shipping_target_price_above_the_cost_takes_nothing() {
    let m = money(2, 2);
    let price = Off::Price(Fixed::of(dec("17.99")));
    assert_eq!(m.shipping(price, m.units(dec("4.90")), None), 0);
    assert_eq!(m.shipping(price, m.units(dec("4.90")), Some(100)), 0);
    let off = Off::Amount(Fixed::of(dec("10")));
    assert_eq!(m.shipping(off, m.units(dec("4.90")), None), 490);
    assert_eq!(m.shipping(off, m.units(dec("4.90")), Some(100)), 100);
}
