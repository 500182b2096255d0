//! Segment groups and segments: the characteristics customers are sorted by.
//!
//! A group in `exclusive` mode holds at most one segment per customer (age group,
//! loyalty tier); `calculated` marks what segment builders maintain.

use crate::{Name, ReferenceKey, SegmentGroupId, SegmentId, ServiceId};

/// A group of segments such as "age group" or "interests".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentGroup {
    pub id: SegmentGroupId,
    /// The segmentation service whose segments these are (`standard` or an `import` service).
    pub service: ServiceId,
    pub name: Name,
    /// Unique among the groups of its service.
    pub reference: ReferenceKey,
    pub calculated: bool,
    pub exclusive: bool,
}

/// A group to create (the store assigns the id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSegmentGroup {
    pub service: ServiceId,
    pub name: Name,
    pub reference: ReferenceKey,
    pub calculated: bool,
    pub exclusive: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentGroupPatch {
    pub name: Option<Name>,
    pub reference: Option<ReferenceKey>,
    pub calculated: Option<bool>,
    pub exclusive: Option<bool>,
}

impl SegmentGroup {
    pub fn apply(&mut self, patch: SegmentGroupPatch) {
        if let Some(v) = patch.name {
            self.name = v;
        }
        if let Some(v) = patch.reference {
            self.reference = v;
        }
        if let Some(v) = patch.calculated {
            self.calculated = v;
        }
        if let Some(v) = patch.exclusive {
            self.exclusive = v;
        }
    }
}

/// A characteristic of a customer such as "18–25" or "skier".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub id: SegmentId,
    pub group: SegmentGroupId,
    pub name: Name,
    /// Unique within the group.
    pub reference: ReferenceKey,
    pub calculated: bool,
}

/// A segment to create (the store assigns the id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSegment {
    pub group: SegmentGroupId,
    pub name: Name,
    pub reference: ReferenceKey,
    pub calculated: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentPatch {
    pub group: Option<SegmentGroupId>,
    pub name: Option<Name>,
    pub reference: Option<ReferenceKey>,
    pub calculated: Option<bool>,
}

impl Segment {
    pub fn apply(&mut self, patch: SegmentPatch) {
        if let Some(v) = patch.group {
            self.group = v;
        }
        if let Some(v) = patch.name {
            self.name = v;
        }
        if let Some(v) = patch.reference {
            self.reference = v;
        }
        if let Some(v) = patch.calculated {
            self.calculated = v;
        }
    }
}
