//! What cohort keeps of a visitor between requests: target group weights, tracked
//! segment counts, pages seen, the current session, and which rules already fired in
//! which scope.

use std::collections::{BTreeMap, BTreeSet};

use crate::{CustomerId, SegmentId, TargetGroupId, Timestamp};

use super::RuleId;

/// A visitor's state. A new visitor starts with `VisitorState::new(now)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitorState {
    /// Accumulated weight per target group.
    pub target_groups: BTreeMap<TargetGroupId, u32>,
    /// How often each segment was tracked for the visitor.
    pub tracked_segments: BTreeMap<SegmentId, u32>,
    /// Pages seen so far.
    pub visited_pages: u32,
    /// Sessions so far (the current one included).
    pub sessions: u32,
    pub session_started: Timestamp,
    pub last_seen: Timestamp,
    /// Rules of scope `session` fired in this session.
    pub session_rules: BTreeSet<RuleId>,
    /// Rules of scope `session_with_variables` fired in this session, with the hash of
    /// the values their conditions matched.
    pub session_variables: BTreeSet<(RuleId, u64)>,
    /// Rules of scope `visitor` fired so far.
    pub visitor_rules: BTreeSet<RuleId>,
    /// The customer the visitor logged in as, last.
    pub customer: Option<CustomerId>,
}

impl VisitorState {
    pub fn new(now: Timestamp) -> Self {
        Self {
            target_groups: BTreeMap::new(),
            tracked_segments: BTreeMap::new(),
            visited_pages: 0,
            sessions: 1,
            session_started: now,
            last_seen: now,
            session_rules: BTreeSet::new(),
            session_variables: BTreeSet::new(),
            visitor_rules: BTreeSet::new(),
            customer: None,
        }
    }

    /// Starts a new session when the visitor was idle longer than `timeout_micros`.
    /// Returns whether it did.
    pub fn touch(&mut self, now: Timestamp, timeout_micros: i64) -> bool {
        let idle = now.unix_micros().saturating_sub(self.last_seen.unix_micros());
        let new = idle > timeout_micros;
        if new {
            self.sessions += 1;
            self.session_started = now;
            self.session_rules.clear();
            self.session_variables.clear();
        }
        if now > self.last_seen {
            self.last_seen = now;
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_ends_after_the_idle_timeout_and_forgets_its_rules() {
        let t = Timestamp::from_unix_micros;
        let mut v = VisitorState::new(t(0));
        v.session_rules.insert(RuleId::new(1));
        v.visitor_rules.insert(RuleId::new(2));
        assert!(!v.touch(t(1_000), 1_000), "idle exactly the timeout: same session");
        assert!(!v.touch(t(1_500), 1_000));
        assert!(v.touch(t(2_501), 1_000));
        assert_eq!((v.sessions, v.session_started, v.last_seen), (2, t(2_501), t(2_501)));
        assert!(v.session_rules.is_empty());
        assert_eq!(v.visitor_rules.len(), 1, "visitor rules outlive sessions");
    }
}
