//! Automation decisions: the active rules compiled once (indexed by the kind of event
//! their triggers wait for), then, per event and customer, which rules fire and which
//! of their actions run when. A rule's conditions are evaluated when it fires; what a
//! delayed action does is decided when it runs (the app checks consent and reads the
//! customer again then).
//!
//! ```text
//! let automation = Automation::compile(rules);
//! for fired in automation.react(&event, &customer, now) { /* queue fired.runs */ }
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};

use cohort_core::automation::{AutomationCondition, AutomationRule, AutomationRuleId, Event, PlannedAction, Trigger};
use cohort_core::{ActivityType, AttributeName, AttributeValue, Attributes, CustomerId, SegmentId, Timestamp, Tree};

/// What the conditions may ask of the customer.
#[derive(Debug, Clone, Copy)]
pub struct CustomerFacts<'a> {
    pub id: &'a CustomerId,
    pub attributes: &'a Attributes,
    /// Live segments.
    pub segments: &'a BTreeSet<SegmentId>,
    /// Activities recorded so far, per type (the types the rules ask about; a missing
    /// type counts 0).
    pub activity_counts: &'a BTreeMap<ActivityType, u32>,
}

/// An action to run, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// Its position in the rule's actions.
    pub index: usize,
    pub planned: PlannedAction,
    pub at: Timestamp,
}

/// A rule that fired for the event and customer.
#[derive(Debug, Clone, PartialEq)]
pub struct Fired {
    pub rule: AutomationRuleId,
    pub runs: Vec<Run>,
}

/// A rule's conditions for one customer, leaf by leaf (for dry runs).
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub holds: bool,
    /// Each leaf condition in order with whether it holds.
    pub conditions: Vec<(String, bool)>,
}

/// The event kinds, to index rules by what they wait for.
const KINDS: usize = 7;

fn kind_of(event: &Event) -> usize {
    match event {
        Event::Activity { .. } => 0,
        Event::CustomerCreated => 1,
        Event::CustomerUpdated => 2,
        Event::SegmentsBuilt => 3,
        Event::Scheduled => 4,
        Event::SegmentTracked { .. } => 5,
        Event::TargetGroupAssigned { .. } => 6,
    }
}

fn kinds_of(trigger: &Trigger) -> usize {
    match trigger {
        Trigger::NewActivity(_) => 0,
        Trigger::CustomerCreated => 1,
        Trigger::CustomerUpdated => 2,
        Trigger::SegmentsBuilt => 3,
        Trigger::Schedule(_) => 4,
        Trigger::SegmentTracked => 5,
        Trigger::TargetGroupAssigned(_) => 6,
    }
}

/// Rules of one event kind by a field value each needs: a rule whose conditions are
/// all of a list holding "field equals text" (or that one leaf) can only fire for a
/// customer with that value, so a customer meets only the rules of its own values.
#[derive(Debug, Clone, Default)]
struct Guarded {
    /// Rules without such a condition: every customer meets them.
    open: Vec<usize>,
    /// Per field, the rules needing each of its values.
    by_field: Vec<(AttributeName, HashMap<String, Vec<usize>>)>,
}

impl Guarded {
    fn add(&mut self, index: usize, guard: Option<(&AttributeName, &str)>) {
        let Some((field, value)) = guard else {
            self.open.push(index);
            return;
        };
        let at = match self.by_field.iter().position(|(f, _)| f == field) {
            Some(at) => at,
            None => {
                self.by_field.push((field.clone(), HashMap::new()));
                self.by_field.len() - 1
            }
        };
        self.by_field[at].1.entry(value.to_owned()).or_default().push(index);
    }

    /// The rules a customer with these attributes meets, in rule order.
    fn met(&self, attributes: &Attributes) -> Vec<usize> {
        let mut met = self.open.clone();
        for (field, by_value) in &self.by_field {
            if let Some(AttributeValue::String(value)) = attributes.get(field)
                && let Some(rules) = by_value.get(value.as_str())
            {
                met.extend_from_slice(rules);
            }
        }
        met.sort_unstable();
        met
    }
}

/// The "field equals text" condition every way through the rule's conditions passes.
fn guard_of(conditions: &Tree<AutomationCondition>) -> Option<(&AttributeName, &str)> {
    fn text(leaf: &Tree<AutomationCondition>) -> Option<(&AttributeName, &str)> {
        match leaf {
            Tree::Leaf(AutomationCondition::FieldEquals {
                field,
                value: AttributeValue::String(value),
            }) => Some((field, value.as_str())),
            _ => None,
        }
    }
    match conditions {
        Tree::All(items) => items.iter().find_map(text),
        leaf => text(leaf),
    }
}

/// The active rules, compiled.
#[derive(Debug, Clone, Default)]
pub struct Automation {
    rules: Vec<AutomationRule>,
    /// Per event kind, the rules with a trigger of that kind.
    by_kind: [Vec<usize>; KINDS],
    /// The same, by the field values they need.
    guarded: [Guarded; KINDS],
    /// Activity types some condition counts.
    counted: BTreeSet<ActivityType>,
    /// Segments some condition asks about.
    asked: BTreeSet<SegmentId>,
    /// Customer fields some condition tests.
    tested: Vec<AttributeName>,
}

impl Automation {
    /// Keeps the active rules, indexed by the events they wait for.
    pub fn compile(rules: Vec<AutomationRule>) -> Self {
        let mut automation = Self::default();
        for rule in rules.into_iter().filter(|r| r.active) {
            let index = automation.rules.len();
            let mut kinds: Vec<usize> = rule.triggers.iter().map(kinds_of).collect();
            kinds.dedup();
            for kind in kinds {
                if automation.by_kind[kind].last() != Some(&index) {
                    automation.by_kind[kind].push(index);
                    automation.guarded[kind].add(index, guard_of(&rule.conditions));
                }
            }
            for leaf in rule.conditions.leaves() {
                match leaf {
                    AutomationCondition::ActivityCount { kind, .. } => {
                        automation.counted.insert(kind.clone());
                    }
                    AutomationCondition::HasSegment(segment) => {
                        automation.asked.insert(*segment);
                    }
                    AutomationCondition::FieldEquals { field, .. } if !automation.tested.contains(field) => {
                        automation.tested.push(field.clone());
                    }
                    _ => {}
                }
            }
            automation.rules.push(rule);
        }
        automation
    }

    /// The activity types whose counts the conditions need.
    pub fn counted_activity_types(&self) -> &BTreeSet<ActivityType> {
        &self.counted
    }

    /// The segments whose membership the conditions ask about (the caller reads only
    /// those).
    pub fn asked_segments(&self) -> &BTreeSet<SegmentId> {
        &self.asked
    }

    /// The customer fields the conditions test (the caller reads only those).
    pub fn tested_fields(&self) -> &[AttributeName] {
        &self.tested
    }

    /// Whether some active rule waits for this kind of event (so the caller can skip
    /// reading the customer).
    pub fn listens_to(&self, event: &Event) -> bool {
        self.rules_for(event).next().is_some()
    }

    /// Whether some active rule waits for new activities (so ingestion can skip
    /// collecting them).
    pub fn listens_to_activities(&self) -> bool {
        !self.by_kind[0].is_empty()
    }

    /// The active rules a trigger of which waits for the event.
    pub fn rules_for<'a>(&'a self, event: &'a Event) -> impl Iterator<Item = &'a AutomationRule> + 'a {
        self.by_kind[kind_of(event)]
            .iter()
            .map(|i| &self.rules[*i])
            .filter(move |r| r.triggers.iter().any(|t| t.fires_on(event)))
    }

    /// The active rules with a schedule, with their cron expressions.
    pub fn scheduled(&self) -> impl Iterator<Item = (&AutomationRule, &str)> {
        self.by_kind[4].iter().flat_map(|i| {
            let rule = &self.rules[*i];
            rule.triggers.iter().filter_map(move |t| match t {
                Trigger::Schedule(cron) => Some((rule, cron.as_str())),
                _ => None,
            })
        })
    }

    /// The rules that fire for the event and customer, with their actions' times.
    pub fn react(&self, event: &Event, customer: &CustomerFacts<'_>, now: Timestamp) -> Vec<Fired> {
        self.rules_for(event)
            .filter(|rule| holds(rule, event, customer))
            .map(|rule| Fired {
                rule: rule.id,
                runs: runs(rule, now),
            })
            .collect()
    }
}

impl Automation {
    /// The rules that fire for each of one customer's events (given with the activity
    /// counts right after each, see `counts_as_of`). Only the rules the customer's
    /// field values meet are looked at (`Guarded`); what depends only on the customer
    /// (fields, segments, who it is) is judged once per rule for all the events, and
    /// only the rules it leaves open are judged per event.
    pub fn react_each(
        &self,
        events: &[(&Event, &BTreeMap<ActivityType, u32>)],
        customer: &CustomerFacts<'_>,
        now: Timestamp,
    ) -> Vec<Vec<Fired>> {
        // Per rule: not judged yet, or whether the customer's own facts leave it open.
        let mut open: Vec<Option<bool>> = vec![None; self.rules.len()];
        // Per event kind, the rules the customer meets, once looked up.
        let mut met: [Option<Vec<usize>>; KINDS] = Default::default();
        events
            .iter()
            .map(|(event, counts)| {
                let facts = CustomerFacts {
                    activity_counts: counts,
                    ..*customer
                };
                let kind = kind_of(event);
                met[kind]
                    .get_or_insert_with(|| self.guarded[kind].met(customer.attributes))
                    .iter()
                    .filter(|i| {
                        let rule = &self.rules[**i];
                        rule.triggers.iter().any(|t| t.fires_on(event))
                            && *open[**i].get_or_insert_with(|| may_hold(&rule.conditions, customer) != Some(false))
                            && holds(rule, event, &facts)
                    })
                    .map(|i| Fired {
                        rule: self.rules[*i].id,
                        runs: runs(&self.rules[*i], now),
                    })
                    .collect()
            })
            .collect()
    }

    /// Whether one rule fires for the event and customer (its own schedule came due).
    pub fn react_rule(
        &self,
        rule: AutomationRuleId,
        event: &Event,
        customer: &CustomerFacts<'_>,
        now: Timestamp,
    ) -> Option<Fired> {
        self.rules_for(event)
            .find(|r| r.id == rule)
            .filter(|r| holds(r, event, customer))
            .map(|r| Fired {
                rule: r.id,
                runs: runs(r, now),
            })
    }
}

/// The activity counts right after each of one customer's events, given in the order
/// they happened and all already in `totals` (a recorded batch): each activity of the
/// batch counts only for itself and the events after it.
pub fn counts_as_of(events: &[&Event], totals: &BTreeMap<ActivityType, u32>) -> Vec<BTreeMap<ActivityType, u32>> {
    let mut current = totals.clone();
    let mut out = vec![BTreeMap::new(); events.len()];
    for (i, event) in events.iter().enumerate().rev() {
        out[i] = current.clone();
        if let Event::Activity { kind } = event
            && let Some(count) = current.get_mut(kind)
        {
            *count = count.saturating_sub(1);
        }
    }
    out
}

/// When each action of a rule that fired at `now` runs.
pub fn runs(rule: &AutomationRule, now: Timestamp) -> Vec<Run> {
    rule.actions
        .iter()
        .enumerate()
        .map(|(index, planned)| Run {
            index,
            planned: planned.clone(),
            at: Timestamp::from_unix_micros(
                now.unix_micros()
                    .saturating_add(i64::from(planned.delay_minutes) * 60 * 1_000_000),
            ),
        })
        .collect()
}

/// What the customer's own facts say of a condition tree: `Some` when they decide it,
/// `None` when the event (or the activity counts, which move with it) must.
fn may_hold(tree: &Tree<AutomationCondition>, customer: &CustomerFacts<'_>) -> Option<bool> {
    match tree {
        Tree::Leaf(
            leaf @ (AutomationCondition::FieldEquals { .. }
            | AutomationCondition::HasSegment(_)
            | AutomationCondition::CustomerIs(_)),
        ) => Some(condition(leaf, &Event::Scheduled, customer)),
        Tree::Leaf(_) => None,
        Tree::Not(inner) => may_hold(inner, customer).map(|b| !b),
        Tree::All(items) => {
            let mut all = Some(true);
            for item in items {
                match may_hold(item, customer) {
                    Some(false) => return Some(false),
                    None => all = None,
                    Some(true) => {}
                }
            }
            all
        }
        Tree::Any(items) => {
            let mut any = Some(false);
            for item in items {
                match may_hold(item, customer) {
                    Some(true) => return Some(true),
                    None => any = None,
                    Some(false) => {}
                }
            }
            any
        }
    }
}

/// Whether the rule's conditions hold for the event and customer.
pub fn holds(rule: &AutomationRule, event: &Event, customer: &CustomerFacts<'_>) -> bool {
    rule.conditions.holds(&mut |leaf| condition(leaf, event, customer))
}

/// Every leaf of the rule's conditions with whether it holds, and the whole.
pub fn evaluate(rule: &AutomationRule, event: &Event, customer: &CustomerFacts<'_>) -> Evaluation {
    Evaluation {
        holds: holds(rule, event, customer),
        conditions: rule
            .conditions
            .leaves()
            .into_iter()
            .map(|leaf| (describe(leaf), condition(leaf, event, customer)))
            .collect(),
    }
}

fn condition(leaf: &AutomationCondition, event: &Event, customer: &CustomerFacts<'_>) -> bool {
    match leaf {
        AutomationCondition::ActivityCount { kind, test } => {
            test.holds(customer.activity_counts.get(kind).copied().unwrap_or(0))
        }
        AutomationCondition::CustomerIs(ids) => ids.contains(customer.id),
        AutomationCondition::HasSegment(segment) => customer.segments.contains(segment),
        AutomationCondition::FieldEquals { field, value } => customer.attributes.get(field) == Some(value),
        AutomationCondition::TrackedSegmentsCount { segments, test } => match event {
            Event::SegmentTracked { segment, count } => {
                (segments.is_empty() || segments.contains(segment)) && test.holds(*count)
            }
            _ => false,
        },
        AutomationCondition::TargetGroupWeight { groups, test } => match event {
            Event::TargetGroupAssigned { group, weight, .. } => {
                (groups.is_empty() || groups.contains(group)) && test.holds(*weight)
            }
            _ => false,
        },
    }
}

/// A leaf as a short text for dry runs.
pub fn describe(leaf: &AutomationCondition) -> String {
    use cohort_core::targeting::CountTest;
    let test = |t: &CountTest| match t {
        CountTest::Compare(op, value) => format!("{op} {value}"),
        CountTest::MultipleOf(n) => format!("every {n}"),
    };
    match leaf {
        AutomationCondition::ActivityCount { kind, test: t } => format!("activities of type {kind} {}", test(t)),
        AutomationCondition::CustomerIs(ids) => format!("customer is one of {} listed", ids.len()),
        AutomationCondition::HasSegment(segment) => format!("has segment {segment}"),
        AutomationCondition::FieldEquals { field, value } => format!("{field} = {value:?}"),
        AutomationCondition::TrackedSegmentsCount { segments, test: t } => {
            format!("tracked segment count {} (segments {segments:?})", test(t))
        }
        AutomationCondition::TargetGroupWeight { groups, test: t } => {
            format!("target group weight {} (groups {groups:?})", test(t))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_of_a_batch_sees_the_counts_of_its_own_time() {
        let kind = |t: &str| ActivityType::parse("type", t).unwrap();
        let order = Event::Activity { kind: kind("order") };
        let login = Event::Activity { kind: kind("login") };
        let built = Event::SegmentsBuilt;
        let totals = BTreeMap::from([(kind("order"), 5)]);
        let counts = counts_as_of(&[&order, &login, &order, &built, &order], &totals);
        let orders: Vec<u32> = counts.iter().map(|c| c[&kind("order")]).collect();
        assert_eq!(orders, vec![3, 3, 4, 4, 5]);
        assert!(
            counts.iter().all(|c| !c.contains_key(&kind("login"))),
            "only counted types"
        );
    }
}
