//! The result of a calculation: each line, what each promotion took off each line, the
//! gifts, the totals, the promotions applied in order, why every other considered
//! promotion did not apply, and what became of each entered code.

use cohort_core::{Currency, DiscountKind, PromotionId};
use rust_decimal::Decimal;

use crate::promotion::reasons::{CodeStatus, Reason};

#[derive(Debug, Clone, PartialEq)]
pub struct Calculation {
    pub currency: Currency,
    /// The basket's lines, in its order.
    pub lines: Vec<CalculatedLine>,
    /// What each promotion took off each line, in the order they applied.
    pub line_discounts: Vec<LineDiscount>,
    pub gifts: Vec<GiftLine>,
    /// The lines before any discount.
    pub subtotal: Decimal,
    /// Taken off lines by item discounts.
    pub item_discount: Decimal,
    /// Taken off lines by order discounts.
    pub order_discount: Decimal,
    pub shipping: Decimal,
    pub shipping_discount: Decimal,
    pub shipping_total: Decimal,
    /// Lines after discounts plus shipping after discounts.
    pub total: Decimal,
    /// In the order they applied.
    pub applied: Vec<Applied>,
    /// Every promotion of the application that was considered and did not apply, in
    /// rank order.
    pub not_applied: Vec<NotApplied>,
    /// Each entered code, in the order entered.
    pub codes: Vec<CodeResult>,
}

impl Calculation {
    /// Why a promotion did not apply (`None` when it applied or was not considered).
    pub fn reason(&self, promotion: PromotionId) -> Option<&Reason> {
        self.not_applied
            .iter()
            .find(|n| n.promotion == promotion)
            .map(|n| &n.reason)
    }

    /// All discounts together.
    pub fn discount(&self) -> Decimal {
        self.item_discount + self.order_discount + self.shipping_discount
    }

    /// What each promotion took off one line (by its position in the basket).
    pub fn discounts_of(&self, line: usize) -> impl Iterator<Item = &LineDiscount> {
        self.line_discounts.iter().filter(move |d| d.line == line)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalculatedLine {
    pub sku: String,
    pub quantity: u32,
    pub unit_price: Decimal,
    pub subtotal: Decimal,
    pub discount: Decimal,
    pub total: Decimal,
}

/// What one promotion took off one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineDiscount {
    /// The line's position in the basket.
    pub line: usize,
    pub promotion: PromotionId,
    pub kind: DiscountKind,
    pub amount: Decimal,
}

/// A free line added by a gift promotion (its price is zero).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GiftLine {
    pub promotion: PromotionId,
    pub sku: String,
    pub quantity: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub promotion: PromotionId,
    pub kind: DiscountKind,
    /// What it took off (zero for a gift).
    pub amount: Decimal,
    /// The entered code it used.
    pub code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotApplied {
    pub promotion: PromotionId,
    pub reason: Reason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeResult {
    pub code: String,
    pub status: CodeStatus,
}
