//! Schedule triggers: when a rule's cron time has come, one server claims the run
//! (the rule's `scheduled_through` moved from the value it read) and reacts with a
//! `scheduled` event for every customer the rule's conditions may select.
//!
//! The candidates come from the segment index: the condition tree is read as a
//! membership expression that holds for every customer the conditions can hold for
//! (`has segment` leaves are exact, other leaves stand for everyone), so a rule for
//! the customers of a segment reads only those; the engine then judges each candidate
//! on its facts, read from the store a page at a time. Times missed while no server
//! ran fire once, at the next look.
//!
//! A run records, with each page's jobs and in their transaction, the last customer key
//! it did, and renews its lease: a server that stops half-way leaves the rest of the run
//! to whichever server sees the lease run out, which goes on after that key. No customer
//! is left out and none is done twice.

use cohort_core::automation::{AutomationCondition, AutomationRule, Event};
use cohort_core::{Timestamp, Tree};
use cohort_index::Expr;
use cohort_store::{ScheduleProgress, StoreResult};

use super::Automations;
use super::service::{LEASE_MICROS, new_lease};
use crate::schedule::Schedule;

/// Candidates read and judged together.
const PAGE: usize = 1_000;

/// A membership expression true for every customer the conditions may hold for.
pub fn candidates(conditions: &Tree<AutomationCondition>) -> Expr {
    let everyone = || Expr::And(Vec::new());
    match conditions {
        Tree::Leaf(AutomationCondition::HasSegment(segment)) => match u32::try_from(segment.get()) {
            Ok(key) => Expr::Segment(key),
            Err(_) => Expr::Or(Vec::new()),
        },
        Tree::Leaf(_) => everyone(),
        Tree::All(items) => Expr::And(items.iter().map(candidates).collect()),
        Tree::Any(items) => Expr::Or(items.iter().map(candidates).collect()),
        // Only a negated segment is exact; the negation of a wider set is not wider.
        Tree::Not(inner) => match inner.as_ref() {
            Tree::Leaf(AutomationCondition::HasSegment(_)) => Expr::not(candidates(inner)),
            _ => everyone(),
        },
    }
}

impl Automations {
    /// Runs the schedules that came due, and the runs of servers that stopped half-way
    /// (their lease ran out); returns how many runs ended.
    pub async fn run_schedules(&self) -> StoreResult<usize> {
        let compiled = self.current().await?;
        if compiled.automation.scheduled().next().is_none() {
            return Ok(0);
        }
        let now = self.clock.now();
        let until = Timestamp::from_unix_micros(now.unix_micros().saturating_add(LEASE_MICROS));
        let mut ran = 0;
        for stored in self.store.list_automation_rules().await? {
            let Some(rule) = compiled.rules.get(&stored.id).filter(|r| r.active) else {
                continue;
            };
            let lease = new_lease();
            let after = match stored.schedule_run {
                None => {
                    let since = stored.scheduled_through.unwrap_or(stored.updated_at);
                    let next = compiled
                        .automation
                        .scheduled()
                        .filter(|(r, _)| r.id == rule.id)
                        .filter_map(|(_, cron)| Schedule::parse("schedule", cron).ok()?.next_after(since))
                        .min();
                    if next.is_none_or(|next| next > now)
                        || !self
                            .store
                            .claim_schedule(rule.id, stored.scheduled_through, now, lease, until)
                            .await?
                    {
                        continue; // not due, or another server runs it
                    }
                    None
                }
                Some(run) if run.until < now => {
                    if !self
                        .store
                        .take_over_schedule(rule.id, run.lease, lease, until, now)
                        .await?
                    {
                        continue;
                    }
                    tracing::warn!(rule = %rule.id, "taking over a schedule run whose server stopped");
                    run.after
                }
                Some(_) => continue, // another server is at it
            };
            if self.run_schedule(rule, lease, after).await? {
                ran += 1;
            } else {
                tracing::warn!(rule = %rule.id, "a schedule run was taken over by another server");
            }
        }
        Ok(ran)
    }

    /// Goes through a run's candidates after `after`, a page at a time, each page's
    /// jobs queued with the run's progress; `false` if the run was taken over.
    async fn run_schedule(&self, rule: &AutomationRule, lease: i64, mut after: Option<u32>) -> StoreResult<bool> {
        let expr = candidates(&rule.conditions);
        loop {
            let page = self.index.select(&expr, after, PAGE).await?;
            let events: Vec<_> = page.customers.into_iter().map(|c| (c, Event::Scheduled)).collect();
            let progress = ScheduleProgress {
                rule: rule.id,
                lease,
                after: page.next,
                until: Timestamp::from_unix_micros(self.clock.now().unix_micros().saturating_add(LEASE_MICROS)),
            };
            if !self.react_rule(&events, &progress).await? {
                return Ok(false);
            }
            match page.next {
                Some(key) => after = Some(key),
                None => return Ok(true),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use cohort_core::{CustomerId, SegmentId};

    use super::*;

    fn has(segment: i64) -> Tree<AutomationCondition> {
        Tree::Leaf(AutomationCondition::HasSegment(SegmentId::new(segment)))
    }

    fn other() -> Tree<AutomationCondition> {
        Tree::Leaf(AutomationCondition::CustomerIs(vec![
            CustomerId::parse("id", "c1").unwrap(),
        ]))
    }

    #[test]
    fn conditions_become_a_membership_expression_no_narrower_than_they_are() {
        let everyone = Expr::And(Vec::new());
        assert_eq!(candidates(&has(3)), Expr::Segment(3));
        assert_eq!(candidates(&other()), everyone);
        assert_eq!(
            candidates(&Tree::All(vec![has(3), other()])),
            Expr::And(vec![Expr::Segment(3), everyone.clone()])
        );
        assert_eq!(
            candidates(&Tree::Any(vec![has(3), has(4)])),
            Expr::Or(vec![Expr::Segment(3), Expr::Segment(4)])
        );
        assert_eq!(candidates(&Tree::Not(Box::new(has(3)))), Expr::not(Expr::Segment(3)));
        assert_eq!(
            candidates(&Tree::Not(Box::new(Tree::All(vec![has(3), other()])))),
            everyone,
            "not (a and b) may hold outside not a"
        );
    }
}
