//! The leaves of a promotion's condition tree: what the basket holds and who the
//! customer is.
//!
//! Basket conditions read the basket as entered (the subtotal before any discount,
//! quantities of entered lines); customer conditions read attributes and the number of
//! previous orders. The engine evaluates them; a condition on missing data is false.

use std::fmt;

use rust_decimal::Decimal;

use super::Amount;
use crate::condition::{AttributeTest, Comparison};
use crate::{AttributeName, Invalid};

/// One leaf of a promotion's condition tree.
#[derive(Debug, Clone, PartialEq)]
pub enum PromotionCondition {
    /// The basket's subtotal before any discount compares with the value.
    Subtotal { comparison: Comparison, value: Decimal },
    /// The quantity of one product in the basket compares with `quantity`.
    ProductQuantity {
        sku: String,
        comparison: Comparison,
        quantity: u32,
    },
    /// The quantity of the basket's products in a category compares with `quantity`.
    CategoryQuantity {
        category: String,
        comparison: Comparison,
        quantity: u32,
    },
    /// A customer attribute passes the test.
    Attribute {
        attribute: AttributeName,
        test: AttributeTest,
    },
    /// A customer attribute is present and differs from the value (`country != FR`):
    /// one leaf, as the user wrote it. False when the attribute is missing.
    AttributeDiffers { attribute: AttributeName, value: String },
    /// Whether this is the customer's first order (`true`) or a later one (`false`).
    /// False for anonymous customers either way.
    FirstOrder(bool),
}

impl PromotionCondition {
    /// Whether the condition reads the basket (as opposed to the customer).
    pub fn reads_basket(&self) -> bool {
        matches!(
            self,
            Self::Subtotal { .. } | Self::ProductQuantity { .. } | Self::CategoryQuantity { .. }
        )
    }

    /// Checks the values a leaf holds that its types do not: product keys, a subtotal
    /// within 0 and `MAX_MONEY`.
    pub fn check(&self, field: &str) -> Result<(), Invalid> {
        match self {
            Self::Subtotal { value, .. } => Amount::parse(&format!("{field}.value"), *value).map(drop),
            Self::ProductQuantity { sku, .. } => super::product_key(&format!("{field}.sku"), sku).map(drop),
            Self::CategoryQuantity { category, .. } => {
                super::product_key(&format!("{field}.category"), category).map(drop)
            }
            _ => Ok(()),
        }
    }
}

impl fmt::Display for PromotionCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Subtotal { comparison, value } => write!(f, "subtotal {comparison} {value}"),
            Self::ProductQuantity {
                sku,
                comparison,
                quantity,
            } => write!(f, "quantity of {sku} {comparison} {quantity}"),
            Self::CategoryQuantity {
                category,
                comparison,
                quantity,
            } => write!(f, "quantity in category {category} {comparison} {quantity}"),
            Self::Attribute { attribute, test } => f.write_str(&test.describe(attribute.as_str())),
            Self::AttributeDiffers { attribute, value } => write!(f, "{attribute} != {value}"),
            Self::FirstOrder(true) => f.write_str("first order"),
            Self::FirstOrder(false) => f.write_str("not a first order"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_render_as_text() {
        let subtotal = PromotionCondition::Subtotal {
            comparison: Comparison::GreaterOrEqual,
            value: Decimal::new(10000, 2),
        };
        assert_eq!(subtotal.to_string(), "subtotal >= 100.00");
        let category = PromotionCondition::CategoryQuantity {
            category: "ski".into(),
            comparison: Comparison::GreaterOrEqual,
            quantity: 2,
        };
        assert_eq!(category.to_string(), "quantity in category ski >= 2");
        assert!(category.reads_basket());
        assert!(!PromotionCondition::FirstOrder(true).reads_basket());
        let differs = PromotionCondition::AttributeDiffers {
            attribute: AttributeName::parse("a", "country").unwrap(),
            value: "FR".into(),
        };
        assert_eq!(differs.to_string(), "country != FR");
    }

    #[test]
    fn a_negative_subtotal_is_refused() {
        let bad = PromotionCondition::Subtotal {
            comparison: Comparison::Less,
            value: Decimal::NEGATIVE_ONE,
        };
        assert_eq!(bad.check("conditions").unwrap_err().field, "conditions.value");
    }
}
