//! Reacting to recorded activities from the store's inbox, off the request path.
//!
//! Every transaction that records activities also adds them to automation's inbox
//! and to their customers' activity counts, so an acknowledged activity is reacted to
//! even if the server stops right after. A round reads the whole inbox in one
//! snapshot — the activities in the order recorded, and their customers' attributes
//! and counts, which include every activity read —, judges each activity with the
//! counts right after it (the snapshot's less the customer's later ones), and queues
//! what fired in the transaction that removes the entries it read. If another server
//! removed one of them first, nothing is written and the round starts again from a
//! fresh snapshot: each activity is reacted to once, with exact counts however far
//! behind the rounds are.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use cohort_core::automation::{AutomationRuleId, Event};
use cohort_core::{ActivityType, SegmentId};
use cohort_engine::automation::{CustomerFacts, counts_as_of};
use cohort_store::{InboxCustomer, KeySelection, NewJob, StoreResult, Unreacted};

use super::service::{Automations, Compiled, queue_fired};

/// Customers whose memberships are read together.
const MEMBERSHIPS_CHUNK: usize = 1_000;
/// Rounds tried before giving up when other servers keep reacting first.
const ATTEMPTS: usize = 5;

impl Automations {
    /// Reacts to every activity recorded so far that no round reacted to; returns how
    /// many activities it judged. One round at a time in this process.
    pub async fn react_to_recorded(&self) -> StoreResult<usize> {
        let _one = self.reacting.lock().await;
        for _ in 0..ATTEMPTS {
            let compiled = self.current().await?;
            if !compiled.automation.listens_to_activities() {
                self.store.discard_unreacted().await?;
                return Ok(0);
            }
            let counted: Vec<ActivityType> = compiled.automation.counted_activity_types().iter().cloned().collect();
            let read = Instant::now();
            let unreacted = self
                .store
                .unreacted(&counted, compiled.automation.tested_fields())
                .await?;
            if unreacted.entries.is_empty() {
                return Ok(0);
            }
            let reading = read.elapsed();
            let judged = unreacted.activities();
            let judge = Instant::now();
            let (rules, jobs) = self.judge(&compiled, &unreacted).await?;
            let judging = judge.elapsed();
            let queue = Instant::now();
            let now = self.clock.now();
            if self
                .store
                .fire_with(&rules, &jobs, now, None, &unreacted.entries)
                .await?
            {
                tracing::debug!(
                    activities = judged,
                    customers = unreacted.customers.len(),
                    jobs = jobs.len(),
                    ?reading,
                    ?judging,
                    queueing = ?queue.elapsed(),
                    "automation reacted to recorded activities"
                );
                return Ok(judged);
            }
        }
        tracing::warn!("automation inbox: other servers kept reacting first; left for the next round");
        Ok(0)
    }

    /// The rules that fired for the inbox's activities, once per firing, and their jobs.
    async fn judge(
        &self,
        compiled: &Compiled,
        unreacted: &Unreacted,
    ) -> StoreResult<(Vec<AutomationRuleId>, Vec<NewJob>)> {
        let now = self.clock.now();
        let (mut rules, mut jobs) = (Vec::new(), Vec::new());
        let no_segments = BTreeSet::new();
        for chunk in unreacted.customers.chunks(MEMBERSHIPS_CHUNK) {
            let mut held = self.memberships(compiled, chunk).await?;
            for customer in chunk {
                let events: Vec<Event> = customer
                    .activities
                    .iter()
                    .map(|a| Event::Activity { kind: a.kind.clone() })
                    .collect();
                let all: Vec<&Event> = events.iter().collect();
                // Counted-only activities move the counts but are not judged.
                let counts = counts_as_of(&all, &customer.counts);
                let judged: Vec<(&Event, &BTreeMap<ActivityType, u32>)> = customer
                    .activities
                    .iter()
                    .zip(events.iter().zip(&counts))
                    .filter(|(activity, _)| activity.reacts)
                    .map(|(_, judged)| judged)
                    .collect();
                if judged.is_empty() {
                    continue;
                }
                let segments = held.remove(&customer.key);
                let view = CustomerFacts {
                    id: &customer.id,
                    attributes: &customer.attributes,
                    segments: segments.as_ref().unwrap_or(&no_segments),
                    activity_counts: &customer.counts,
                };
                for ((event, _), fired) in judged.iter().zip(compiled.automation.react_each(&judged, &view, now)) {
                    queue_fired(&mut rules, &mut jobs, &customer.id, event, None, fired);
                }
            }
        }
        Ok((rules, jobs))
    }

    /// The live memberships of these customers among the segments the conditions ask
    /// about (none read when no condition asks).
    async fn memberships(
        &self,
        compiled: &Compiled,
        customers: &[InboxCustomer],
    ) -> StoreResult<HashMap<i64, BTreeSet<SegmentId>>> {
        let mut held: HashMap<i64, BTreeSet<SegmentId>> = HashMap::new();
        if compiled.asked_groups.is_empty() {
            return Ok(held);
        }
        let keys: Vec<i64> = customers.iter().map(|c| c.key).collect();
        let asked = compiled.automation.asked_segments();
        for (key, segment) in self
            .store
            .group_memberships(&compiled.asked_groups, KeySelection::Keys(&keys), self.clock.now())
            .await?
        {
            if asked.contains(&segment) {
                held.entry(key).or_default().insert(segment);
            }
        }
        Ok(held)
    }
}
