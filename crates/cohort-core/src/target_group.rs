//! Target groups: summaries of visitors with similar behaviour, used to personalize
//! content. A group applies to a visitor once its weight reaches the threshold. A
//! segment used as a target group has one linked to it: named after it, renamed with
//! it, deleted with it.

use crate::{Invalid, Name, SegmentId, TargetGroupId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGroup {
    pub id: TargetGroupId,
    pub name: Name,
    pub threshold: Threshold,
    pub active: bool,
    /// The segment it is linked with 1:1 (`use_as_target_group`).
    pub segment: Option<SegmentId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTargetGroup {
    pub name: Name,
    pub threshold: Threshold,
    pub active: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetGroupPatch {
    pub name: Option<Name>,
    pub threshold: Option<Threshold>,
    pub active: Option<bool>,
}

impl TargetGroup {
    pub fn apply(&mut self, patch: TargetGroupPatch) {
        if let Some(v) = patch.name {
            self.name = v;
        }
        if let Some(v) = patch.threshold {
            self.threshold = v;
        }
        if let Some(v) = patch.active {
            self.active = v;
        }
    }
}

/// The weight a visitor needs for a target group to apply: at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Threshold(u32);

impl Threshold {
    pub const DEFAULT: Self = Self(1);

    pub fn parse(field: &str, value: i64) -> Result<Self, Invalid> {
        u32::try_from(value)
            .ok()
            .filter(|v| *v >= 1)
            .map(Self)
            .ok_or_else(|| Invalid::new(field, "a threshold is a whole number of at least 1"))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_threshold_is_at_least_one() {
        assert_eq!(Threshold::parse("t", 3).unwrap().get(), 3);
        assert!(Threshold::parse("t", 0).is_err());
        assert!(Threshold::parse("t", -1).is_err());
        assert!(Threshold::parse("t", i64::MAX).is_err());
    }
}
