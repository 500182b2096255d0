//! Targeting decisions: global rules compiled once when they or the target groups
//! change (`compiled.rs`), then one pure function per request of a visitor
//! (`decide.rs`) over what the request says (`hit.rs`) and the visitor's state.
//!
//! ```text
//! let targeting = Targeting::compile(rules, groups, SESSION_TIMEOUT_MICROS)?;
//! let decision = targeting.decide(&mut visitor, &hit, explain);
//! let variant = choose_variant(&decision.target_groups, &slot_variants);
//! ```

mod compiled;
mod decide;
mod hit;

pub use compiled::{GroupInfo, SESSION_TIMEOUT_MICROS, Targeting};
pub use decide::{Decision, Outcome, Redirect, Snippet};
pub use hit::{CustomerView, Device, Hit, Location};

use cohort_core::TargetGroupId;

/// A content slot's variant for the visitor: the one of the highest-weight applying
/// target group that has one, else `None` (the slot's default).
pub fn choose_variant<'v, V>(applying: &[(TargetGroupId, u32)], variants: &'v [(TargetGroupId, V)]) -> Option<&'v V> {
    applying
        .iter()
        .find_map(|(group, _)| variants.iter().find(|(g, _)| g == group).map(|(_, v)| v))
}
