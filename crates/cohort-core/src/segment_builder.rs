//! Segment builders as stored: a name, the calculated group they write into, their
//! definition and schedule, and what the last full build left behind.
//!
//! The definition is kept as the client wrote it (JSON text) and compiled by the
//! application layer when saved and when loaded; the store never interprets it.

use crate::{Name, SegmentGroupId, Timestamp};

crate::ids::numeric_id!(
    /// Id of a segment builder, assigned by the store.
    BuilderId
);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentBuilder {
    pub id: BuilderId,
    pub name: Name,
    /// The group it writes into; a group has at most one builder, which owns its memberships.
    pub group: SegmentGroupId,
    /// The definition, as JSON text.
    pub definition: String,
    /// A cron expression for scheduled full builds.
    pub schedule: Option<String>,
    pub enabled: bool,
    /// What a full build fitted (RFM scales), as JSON text.
    pub state: Option<String>,
    /// When the last full build started (it saw every change made before then).
    pub built_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A builder to create (the store assigns the id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSegmentBuilder {
    pub name: Name,
    pub group: SegmentGroupId,
    pub definition: String,
    pub schedule: Option<String>,
    pub enabled: bool,
}

/// Fields to change. A new definition forgets the fitted state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentBuilderPatch {
    pub name: Option<Name>,
    pub definition: Option<String>,
    pub schedule: Option<Option<String>>,
    pub enabled: Option<bool>,
}

impl SegmentBuilder {
    pub fn apply(&mut self, patch: SegmentBuilderPatch, now: Timestamp) {
        if let Some(v) = patch.name {
            self.name = v;
        }
        if let Some(v) = patch.definition
            && v != self.definition
        {
            self.definition = v;
            self.state = None;
        }
        if let Some(v) = patch.schedule {
            self.schedule = v;
        }
        if let Some(v) = patch.enabled {
            self.enabled = v;
        }
        self.updated_at = now;
    }
}
