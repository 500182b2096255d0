//! Promotions and their codes as stored: the definition kept as the client wrote it
//! (JSON text, compiled by the application layer when saved and loaded), the budget
//! and what was spent of it in minor units, code groups with their limits, and codes
//! with their uses.

use crate::{Invalid, Name, PromotionId, Timestamp};

crate::ids::numeric_id!(
    /// Id of a code group, assigned by the store.
    CodeGroupId
);

/// A stored promotion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPromotion {
    pub id: PromotionId,
    pub name: Name,
    /// The definition without its id, as JSON text.
    pub definition: String,
    /// The budget in minor units of the promotion's currency.
    pub budget: Option<i64>,
    /// Discount given so far by placed orders, in minor units.
    pub spent: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A promotion to create or replace (the store assigns the id of a new one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStoredPromotion {
    pub name: Name,
    pub definition: String,
    pub budget: Option<i64>,
}

/// Codes of one promotion sharing their limits: one code chosen by a user, or many
/// generated from a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeGroup {
    pub id: CodeGroupId,
    pub promotion: PromotionId,
    pub name: Name,
    /// The pattern its codes were generated from; `None` for a chosen code.
    pub pattern: Option<String>,
    /// How many codes it has.
    pub count: u32,
    /// Uses of each code, by anyone.
    pub max_uses: Option<u32>,
    /// Uses of each code by one customer.
    pub max_uses_per_customer: Option<u32>,
    /// Its codes are valid before this time.
    pub expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

/// A code group to create, with its codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCodeGroup {
    pub promotion: PromotionId,
    pub name: Name,
    pub pattern: Option<String>,
    pub max_uses: Option<u32>,
    pub max_uses_per_customer: Option<u32>,
    pub expires_at: Option<Timestamp>,
}

/// A code found for a basket: its group's limits and its uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundCode {
    pub code: PromotionCode,
    pub group: CodeGroupId,
    pub promotion: PromotionId,
    pub max_uses: Option<u32>,
    pub max_uses_per_customer: Option<u32>,
    pub expires_at: Option<Timestamp>,
    pub used: u32,
    /// Uses by the customer asked about (0 when none was).
    pub used_by_customer: u32,
}

/// A promotion code: 1 to 64 letters, digits, `-` and `_`, compared without regard to
/// case (kept in upper case).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PromotionCode(String);

impl PromotionCode {
    pub const MAX_LEN: usize = 64;

    pub fn parse(field: &str, text: &str) -> Result<Self, Invalid> {
        let ok = !text.is_empty()
            && text.len() <= Self::MAX_LEN
            && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if ok {
            Ok(Self(text.to_ascii_uppercase()))
        } else {
            Err(Invalid::new(
                field,
                format!("expected 1 to {} letters, digits, '-' or '_'", Self::MAX_LEN),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for PromotionCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_compared_in_upper_case_and_bounded() {
        assert_eq!(PromotionCode::parse("code", "ski-10_a").unwrap().as_str(), "SKI-10_A");
        for bad in ["", "a b", "é", &"x".repeat(65), "A/B"] {
            assert_eq!(PromotionCode::parse("code", bad).unwrap_err().field, "code", "{bad:?}");
        }
    }
}
