//! Customer ↔ segment memberships and the planning of a change to them.
//!
//! `plan` turns a requested change (segments to add and to remove) and the customer's
//! stored memberships into the rows to write: repeated adds count up the application
//! counter, exclusive groups keep one segment, expired rows count as absent.

use std::collections::{HashMap, HashSet};

use crate::{CustomerId, Invalid, SegmentGroupId, SegmentId, Timestamp};

/// Why a customer is in a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MembershipSource {
    Manual,
    Calculated,
    External,
    Tracked,
}

impl MembershipSource {
    pub const ALL: [Self; 4] = [Self::Manual, Self::Calculated, Self::External, Self::Tracked];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Calculated => "calculated",
            Self::External => "external",
            Self::Tracked => "tracked",
        }
    }

    pub fn parse(field: &str, text: &str) -> Result<Self, Invalid> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| Invalid::new(field, "expected one of manual, calculated, external, tracked"))
    }
}

/// A customer's membership in a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub customer: CustomerId,
    pub segment: SegmentId,
    pub source: MembershipSource,
    pub assigned_at: Timestamp,
    /// How often the segment was applied to the customer.
    pub application_counter: u32,
    pub expires_at: Option<Timestamp>,
}

impl Membership {
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

/// One segment to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentAdd {
    pub segment: SegmentId,
    pub source: MembershipSource,
    pub expires_at: Option<Timestamp>,
}

/// Segments to add and to remove, applied together or not at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentChange {
    pub add: Vec<SegmentAdd>,
    pub remove: Vec<SegmentId>,
}

impl SegmentChange {
    /// Refuses a segment named twice, or both added and removed.
    pub fn new(add: Vec<SegmentAdd>, remove: Vec<SegmentId>) -> Result<Self, Invalid> {
        let mut seen = HashSet::new();
        for (i, a) in add.iter().enumerate() {
            if !seen.insert(a.segment) {
                return Err(Invalid::new(
                    format!("add[{i}].segment"),
                    format!("segment {} is named twice", a.segment),
                ));
            }
        }
        let mut removed = HashSet::new();
        for (i, s) in remove.iter().enumerate() {
            if seen.contains(s) {
                return Err(Invalid::new(
                    format!("remove[{i}]"),
                    format!("segment {s} is both added and removed"),
                ));
            }
            if !removed.insert(*s) {
                return Err(Invalid::new(
                    format!("remove[{i}]"),
                    format!("segment {s} is named twice"),
                ));
            }
        }
        Ok(Self { add, remove })
    }

    /// Every segment the change names, adds first.
    pub fn segments(&self) -> impl Iterator<Item = SegmentId> + '_ {
        self.add.iter().map(|a| a.segment).chain(self.remove.iter().copied())
    }
}

/// Where a segment sits, as `plan` needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentPlace {
    pub group: SegmentGroupId,
    pub exclusive: bool,
}

/// The rows to write for a change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembershipPlan {
    pub upserts: Vec<Membership>,
    pub removals: Vec<SegmentId>,
}

/// Plans `change` for `customer`, whose stored rows (expired ones included) are
/// `stored`, each with the place of its segment. `places` must know every segment the
/// change adds.
pub fn plan(
    customer: &CustomerId,
    change: &SegmentChange,
    places: &HashMap<SegmentId, SegmentPlace>,
    stored: &[(Membership, SegmentGroupId)],
    now: Timestamp,
) -> Result<MembershipPlan, Invalid> {
    let mut exclusive_groups: HashMap<SegmentGroupId, usize> = HashMap::new();
    for (i, add) in change.add.iter().enumerate() {
        let place = places.get(&add.segment).ok_or_else(|| {
            Invalid::new(
                format!("add[{i}].segment"),
                format!("segment {} does not exist", add.segment),
            )
        })?;
        if place.exclusive
            && let Some(first) = exclusive_groups.insert(place.group, i)
        {
            return Err(Invalid::new(
                format!("add[{i}].segment"),
                format!(
                    "segment group {} is exclusive and add[{first}] already names one of its segments",
                    place.group
                ),
            ));
        }
    }

    let live: HashMap<SegmentId, &Membership> = stored
        .iter()
        .filter(|(m, _)| m.is_live(now))
        .map(|(m, _)| (m.segment, m))
        .collect();
    let added: HashSet<SegmentId> = change.add.iter().map(|a| a.segment).collect();
    let mut removals: Vec<SegmentId> = change.remove.clone();
    for (m, group) in stored {
        if exclusive_groups.contains_key(group) && !added.contains(&m.segment) && !removals.contains(&m.segment) {
            removals.push(m.segment);
        }
    }

    let upserts = change
        .add
        .iter()
        .map(|add| match live.get(&add.segment) {
            Some(existing) => Membership {
                source: add.source,
                application_counter: existing.application_counter.saturating_add(1),
                expires_at: add.expires_at,
                ..(*existing).clone()
            },
            None => Membership {
                customer: customer.clone(),
                segment: add.segment,
                source: add.source,
                assigned_at: now,
                application_counter: 1,
                expires_at: add.expires_at,
            },
        })
        .collect();
    Ok(MembershipPlan { upserts, removals })
}
