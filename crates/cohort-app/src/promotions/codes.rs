//! Promotion codes: a group of one chosen code, or of codes generated from a pattern
//! (`#` a digit, `?` a letter or digit, other characters kept), unique in the group
//! and, checked by the store, across every promotion.

use std::collections::HashSet;

use cohort_core::promotion::record::{NewCodeGroup, PromotionCode};
use cohort_core::{Invalid, Name, PromotionId, Timestamp};
use rand::Rng;

/// The most codes one group may have.
pub const MAX_CODES: u32 = 100_000;

/// Letters and digits that cannot be read as one another (no 0/O, 1/I/L).
const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

/// A code group to create, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeSpec {
    name: Name,
    codes: Codes,
    max_uses: Option<u32>,
    max_uses_per_customer: Option<u32>,
    expires_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Codes {
    Chosen(PromotionCode),
    Generated { pattern: String, count: u32 },
}

impl CodeSpec {
    /// Either `code`, or `pattern` with `count`; limits of at least 1.
    pub fn parse(
        name: &str,
        code: Option<&str>,
        pattern: Option<&str>,
        count: Option<u32>,
        max_uses: Option<u32>,
        max_uses_per_customer: Option<u32>,
        expires_at: Option<Timestamp>,
    ) -> Result<Self, Invalid> {
        let codes = match (code, pattern, count) {
            (Some(code), None, None) => Codes::Chosen(PromotionCode::parse("code", code)?),
            (None, Some(pattern), Some(count)) => {
                PromotionCode::parse("pattern", pattern)
                    .or_else(|_| PromotionCode::parse("pattern", &pattern.replace(['#', '?'], "X")))
                    .map_err(|_| Invalid::new("pattern", "expected letters, digits, '-', '_', '#' and '?'"))?;
                if !(1..=MAX_CODES).contains(&count) {
                    return Err(Invalid::new("count", format!("expected 1 to {MAX_CODES}")));
                }
                if combinations(pattern) < 10 * u128::from(count) {
                    return Err(Invalid::new(
                        "pattern",
                        format!("too few combinations for {count} codes: add '#' or '?'"),
                    ));
                }
                Codes::Generated {
                    pattern: pattern.to_ascii_uppercase(),
                    count,
                }
            }
            (Some(_), _, _) => return Err(Invalid::new("code", "give either code, or pattern and count")),
            (None, Some(_), None) => return Err(Invalid::new("count", "missing field")),
            (None, None, Some(_)) | (None, None, None) => {
                return Err(Invalid::new("code", "give either code, or pattern and count"));
            }
        };
        for (field, limit) in [("max_uses", max_uses), ("max_uses_per_customer", max_uses_per_customer)] {
            if limit == Some(0) {
                return Err(Invalid::new(field, "at least 1 (leave it out for no limit)"));
            }
        }
        Ok(Self {
            name: Name::parse("name", name)?,
            codes,
            max_uses,
            max_uses_per_customer,
            expires_at,
        })
    }

    /// The chosen code, for a group of one.
    pub fn chosen(&self) -> Option<&PromotionCode> {
        match &self.codes {
            Codes::Chosen(code) => Some(code),
            Codes::Generated { .. } => None,
        }
    }

    /// The group to store for `promotion`.
    pub fn group(&self, promotion: PromotionId) -> NewCodeGroup {
        NewCodeGroup {
            promotion,
            name: self.name.clone(),
            pattern: match &self.codes {
                Codes::Chosen(_) => None,
                Codes::Generated { pattern, .. } => Some(pattern.clone()),
            },
            max_uses: self.max_uses,
            max_uses_per_customer: self.max_uses_per_customer,
            expires_at: self.expires_at,
        }
    }

    /// The codes: the chosen one, or `count` distinct codes drawn from the pattern.
    pub fn codes(&self, rng: &mut impl Rng) -> Vec<PromotionCode> {
        match &self.codes {
            Codes::Chosen(code) => vec![code.clone()],
            Codes::Generated { pattern, count } => {
                let mut seen = HashSet::with_capacity(*count as usize);
                let mut codes = Vec::with_capacity(*count as usize);
                while codes.len() < *count as usize {
                    let text: String = pattern
                        .chars()
                        .map(|c| match c {
                            '#' => char::from(b'0' + rng.random_range(0..10u8)),
                            '?' => char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]),
                            other => other,
                        })
                        .collect();
                    if seen.insert(text.clone()) {
                        codes.push(PromotionCode::parse("pattern", &text).expect("a generated code is valid"));
                    }
                }
                codes
            }
        }
    }
}

/// How many distinct codes a pattern can give (saturating).
fn combinations(pattern: &str) -> u128 {
    pattern.chars().fold(1u128, |n, c| match c {
        '#' => n.saturating_mul(10),
        '?' => n.saturating_mul(ALPHABET.len() as u128),
        _ => n,
    })
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn spec(code: Option<&str>, pattern: Option<&str>, count: Option<u32>) -> Result<CodeSpec, Invalid> {
        CodeSpec::parse("launch", code, pattern, count, Some(1), None, None)
    }

    #[test]
    fn generated_codes_follow_the_pattern_and_differ() {
        let spec = spec(None, Some("ski-####-??"), Some(500)).unwrap();
        let codes = spec.codes(&mut StdRng::seed_from_u64(7));
        assert_eq!(codes.len(), 500);
        assert_eq!(codes.iter().collect::<HashSet<_>>().len(), 500);
        for code in &codes {
            let text = code.as_str();
            assert!(text.starts_with("SKI-") && text.len() == 11, "{text}");
            assert!(text[4..8].chars().all(|c| c.is_ascii_digit()), "{text}");
            assert!(text[9..].bytes().all(|b| ALPHABET.contains(&b)), "{text}");
        }
        assert_eq!(spec.group(PromotionId::new(3)).pattern.as_deref(), Some("SKI-####-??"));
    }

    #[test]
    fn a_chosen_code_is_the_only_code() {
        let spec = spec(Some("welcome"), None, None).unwrap();
        assert_eq!(
            spec.codes(&mut StdRng::seed_from_u64(1)),
            [PromotionCode::parse("c", "WELCOME").unwrap()]
        );
        assert_eq!(spec.group(PromotionId::new(3)).pattern, None);
    }

    #[test]
    fn impossible_groups_are_refused_on_their_field() {
        for (code, pattern, count, field) in [
            (None, None, None, "code"),
            (Some("A"), Some("B#"), Some(1), "code"),
            (None, Some("B##"), None, "count"),
            (None, Some("B##"), Some(0), "count"),
            (None, Some("B##"), Some(50), "pattern"),
            (None, Some("B #"), Some(1), "pattern"),
            (None, Some("B#"), Some(MAX_CODES + 1), "count"),
        ] {
            assert_eq!(
                spec(code, pattern, count).unwrap_err().field,
                field,
                "{code:?} {pattern:?} {count:?}"
            );
        }
        let zero = CodeSpec::parse("launch", Some("A"), None, None, Some(0), None, None);
        assert_eq!(zero.unwrap_err().field, "max_uses");
    }
}
