//! Automation rules — Pimcore CMF's Action Trigger Service: one or more triggers (any
//! of them starts the rule), a condition tree over the customer and the triggering
//! event, and actions, each run at once or after a delay.
//!
//! The engine (`cohort_engine::automation`) compiles the rules once and decides, per
//! event and customer, which actions run when; the app runs them through a durable
//! queue.

use crate::targeting::CountTest;
use crate::tree::Tree;
use crate::{ActivityType, AttributeName, AttributeValue, CustomerId, Invalid, Name, SegmentId, TargetGroupId};

crate::ids::numeric_id!(
    /// Id of an automation rule, assigned by the store.
    AutomationRuleId
);

/// Who assigned a target group, for the trigger that waits for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssignedBy {
    /// Content tagged with the target group (a page's segments).
    Content,
    /// A targeting rule.
    Rule,
}

/// What starts a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// An activity was recorded for the customer (of this type, or any).
    NewActivity(Option<ActivityType>),
    CustomerCreated,
    /// The customer's attributes or flags changed.
    CustomerUpdated,
    /// Segment building finished for the customer.
    SegmentsBuilt,
    /// A cron expression (5 fields, UTC): the rule then runs for every customer its
    /// conditions select. Checked by the app when saved.
    Schedule(String),
    /// A segment was tracked for the customer's visitor.
    SegmentTracked,
    /// A target group was assigned to the customer's visitor (by anyone, or only by
    /// content or by a rule).
    TargetGroupAssigned(Option<AssignedBy>),
}

impl Trigger {
    /// Whether the trigger waits for this event.
    pub fn fires_on(&self, event: &Event) -> bool {
        match (self, event) {
            (Self::NewActivity(kind), Event::Activity { kind: happened }) => {
                kind.as_ref().is_none_or(|k| k == happened)
            }
            (Self::CustomerCreated, Event::CustomerCreated)
            | (Self::CustomerUpdated, Event::CustomerUpdated)
            | (Self::SegmentsBuilt, Event::SegmentsBuilt)
            | (Self::SegmentTracked, Event::SegmentTracked { .. })
            | (Self::Schedule(_), Event::Scheduled) => true,
            (Self::TargetGroupAssigned(by), Event::TargetGroupAssigned { by: happened, .. }) => {
                by.is_none_or(|b| b == *happened)
            }
            _ => false,
        }
    }
}

/// What happened, with what the conditions and actions of the rules it starts may
/// use (Pimcore's rule environment). Kept with a delayed action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Activity {
        kind: ActivityType,
    },
    CustomerCreated,
    CustomerUpdated,
    SegmentsBuilt,
    /// A schedule came due (the rule was selected by its own trigger).
    Scheduled,
    SegmentTracked {
        segment: SegmentId,
        /// How often it was tracked for the visitor so far.
        count: u32,
    },
    TargetGroupAssigned {
        group: TargetGroupId,
        /// The visitor's weight of the group now.
        weight: u32,
        by: AssignedBy,
    },
}

/// A condition of an automation rule.
#[derive(Debug, Clone, PartialEq)]
pub enum AutomationCondition {
    /// The customer's count of activities of a type passes the test (`%`: every n-th).
    ActivityCount { kind: ActivityType, test: CountTest },
    /// The customer is one of these.
    CustomerIs(Vec<CustomerId>),
    /// The customer has the segment (a live membership).
    HasSegment(SegmentId),
    /// An attribute equals the value (a missing attribute equals nothing).
    FieldEquals {
        field: AttributeName,
        value: AttributeValue,
    },
    /// The tracked segment of the triggering event (one of these, when any are named)
    /// has a count passing the test; false for other events.
    TrackedSegmentsCount { segments: Vec<SegmentId>, test: CountTest },
    /// The assigned target group of the triggering event (one of these, when any are
    /// named) has a weight passing the test; false for other events.
    TargetGroupWeight {
        groups: Vec<TargetGroupId>,
        test: CountTest,
    },
}

/// An action of an automation rule.
#[derive(Debug, Clone, PartialEq)]
pub enum AutomationAction {
    AddSegment {
        segment: SegmentId,
        /// Remove the customer's other segments of the segment's group.
        remove_others: bool,
        /// Count up the application counter when the customer has the segment already
        /// (otherwise an existing membership is left as it is).
        increase_counter: bool,
        /// Only for customers who agreed to profiling.
        consider_consent: bool,
    },
    RemoveSegment(SegmentId),
    /// Sets an attribute (`None` removes it).
    SetField {
        field: AttributeName,
        value: Option<AttributeValue>,
    },
    /// Adds the segment tracked by the triggering event (`segment_tracked`).
    AddTrackedSegment {
        consider_consent: bool,
    },
    /// Adds to the customer the segments tracked for its visitor at least `min_count`
    /// times (Pimcore's "track segments onto customer"): the visitor of the triggering
    /// targeting event, or else every visitor linked to the customer.
    CopyTrackedSegments {
        min_count: u32,
        consider_consent: bool,
    },
    /// Adds the segment linked to the triggering event's target group.
    AddLinkedSegment {
        consider_consent: bool,
    },
    /// Records an activity of this type for the customer.
    TrackActivity(ActivityType),
    /// POSTs the event and the customer as JSON to the URL, signed with HMAC-SHA256
    /// of the application-wide webhook secret; retried with exponential backoff, then
    /// parked as a dead letter.
    Webhook {
        url: String,
    },
}

/// One action of a rule and how long after the trigger it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedAction {
    pub action: AutomationAction,
    /// 0: at once.
    pub delay_minutes: u32,
}

/// The longest delay: one year.
pub const MAX_DELAY_MINUTES: u32 = 366 * 24 * 60;

/// An automation rule.
#[derive(Debug, Clone, PartialEq)]
pub struct AutomationRule {
    pub id: AutomationRuleId,
    pub name: Name,
    pub active: bool,
    pub triggers: Vec<Trigger>,
    /// An empty `all` always holds.
    pub conditions: Tree<AutomationCondition>,
    pub actions: Vec<PlannedAction>,
}

impl AutomationRule {
    /// Checks what spans fields: at least one trigger and one action, bounded
    /// lists, delays within a year, and conditions that need an event only with a
    /// trigger that brings it.
    pub fn checked(self) -> Result<Self, Invalid> {
        if self.triggers.is_empty() {
            return Err(Invalid::new("triggers", "a rule needs at least one trigger"));
        }
        if self.triggers.len() > 16 {
            return Err(Invalid::new("triggers", "at most 16 triggers"));
        }
        if self.actions.is_empty() {
            return Err(Invalid::new("actions", "a rule needs at least one action"));
        }
        if self.actions.len() > 32 {
            return Err(Invalid::new("actions", "at most 32 actions"));
        }
        if self.conditions.depth() > crate::targeting::MAX_TREE_DEPTH {
            return Err(Invalid::new("conditions", "nested too deeply"));
        }
        let tracked = self.triggers.iter().all(|t| *t == Trigger::SegmentTracked);
        let assigned = self
            .triggers
            .iter()
            .all(|t| matches!(t, Trigger::TargetGroupAssigned(_)));
        for leaf in self.conditions.leaves() {
            match leaf {
                AutomationCondition::TrackedSegmentsCount { .. } if !tracked => {
                    return Err(Invalid::new(
                        "conditions",
                        "a tracked segments count needs every trigger to be segment_tracked",
                    ));
                }
                AutomationCondition::TargetGroupWeight { .. } if !assigned => {
                    return Err(Invalid::new(
                        "conditions",
                        "a target group weight needs every trigger to be target_group_assigned",
                    ));
                }
                AutomationCondition::CustomerIs(ids) if ids.is_empty() || ids.len() > 1_000 => {
                    return Err(Invalid::new("conditions", "a customer list names 1 to 1000 customers"));
                }
                _ => {}
            }
        }
        for (i, planned) in self.actions.iter().enumerate() {
            if planned.delay_minutes > MAX_DELAY_MINUTES {
                return Err(Invalid::new(format!("actions[{i}].delay"), "at most a year"));
            }
            match &planned.action {
                AutomationAction::AddTrackedSegment { .. } if !tracked => {
                    return Err(Invalid::new(
                        format!("actions[{i}]"),
                        "adding the tracked segment needs every trigger to be segment_tracked",
                    ));
                }
                AutomationAction::AddLinkedSegment { .. } if !assigned => {
                    return Err(Invalid::new(
                        format!("actions[{i}]"),
                        "adding the linked segment needs every trigger to be target_group_assigned",
                    ));
                }
                AutomationAction::Webhook { url } if !(url.starts_with("https://") || url.starts_with("http://")) => {
                    return Err(Invalid::new(
                        format!("actions[{i}].webhook"),
                        "expected an http or https URL",
                    ));
                }
                _ => {}
            }
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(text: &str) -> ActivityType {
        ActivityType::parse("type", text).unwrap()
    }

    #[test]
    fn triggers_wait_for_their_events() {
        let order = Event::Activity { kind: kind("order") };
        assert!(Trigger::NewActivity(None).fires_on(&order));
        assert!(Trigger::NewActivity(Some(kind("order"))).fires_on(&order));
        assert!(!Trigger::NewActivity(Some(kind("login"))).fires_on(&order));
        let assigned = Event::TargetGroupAssigned {
            group: TargetGroupId::new(1),
            weight: 2,
            by: AssignedBy::Rule,
        };
        assert!(Trigger::TargetGroupAssigned(None).fires_on(&assigned));
        assert!(!Trigger::TargetGroupAssigned(Some(AssignedBy::Content)).fires_on(&assigned));
        assert!(!Trigger::CustomerCreated.fires_on(&assigned));
    }

    #[test]
    fn event_conditions_need_their_trigger() {
        let rule = AutomationRule {
            id: AutomationRuleId::new(1),
            name: Name::parse("name", "r").unwrap(),
            active: true,
            triggers: vec![Trigger::CustomerCreated],
            conditions: Tree::Leaf(AutomationCondition::TrackedSegmentsCount {
                segments: vec![],
                test: CountTest::MultipleOf(5),
            }),
            actions: vec![PlannedAction {
                action: AutomationAction::RemoveSegment(SegmentId::new(1)),
                delay_minutes: 0,
            }],
        };
        assert_eq!(rule.clone().checked().unwrap_err().field, "conditions");
        let fine = AutomationRule {
            triggers: vec![Trigger::SegmentTracked],
            ..rule
        };
        assert!(fine.checked().is_ok());
    }
}
