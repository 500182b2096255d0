//! Automation use cases: saving rules (checked, their segments existing), the compiled
//! rules kept current, reacting to events — the customer read once, the rules that
//! fire counted and every action of theirs queued durably in the same transaction —,
//! dry runs, and the worker that runs due actions — claimed under a lease, finished,
//! retried with exponential backoff, or parked as dead letters — beside reacting to
//! recorded activities (`inbox.rs`).
//!
//! Every action goes through the queue, delayed or not, so an acknowledged event's
//! actions survive a crash; a claim that outlives its lease (a crashed server) is
//! taken over by the next claim.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use cohort_core::automation::{
    AssignedBy, AutomationAction, AutomationCondition, AutomationRule, AutomationRuleId, Event,
};
use cohort_core::{
    Activity, ActivityId, ActivityType, Aggregate, Attributes, CustomerId, CustomerPatch, Invalid, MembershipSource,
    SegmentAdd, SegmentChange, SegmentGroupId, SegmentId, TargetGroupId, Timestamp,
};
use cohort_engine::automation::{Automation, CustomerFacts, Evaluation, counts_as_of, evaluate, runs};
use cohort_store::{
    BuildSelection, Job, JobEffect, KeySelection, NewJob, Reacting, ScheduleProgress, Store, StoreError, StoreResult,
    StoredAutomationRule,
};
use hmac::{Hmac, Mac};
use rand::Rng;
use serde_json::{Value, json};
use sha2::Sha256;

use super::parse_automation_rule;
use crate::Clock;
use crate::index::LiveIndex;
use crate::profiles::Profiles;

/// How long a look at the store's automation version is trusted.
const FRESH_MICROS: i64 = 1_000_000;
/// How long a claimed job, or a schedule run between two pages, is held before another
/// server may take it over.
pub(super) const LEASE_MICROS: i64 = 60 * 1_000_000;
/// Jobs claimed per round.
const CLAIM: u32 = 100;
/// Customers read together when reacting to many events.
const FACTS_CHUNK: usize = 1_000;
/// Recorded activities reacted to before their request is answered, at most.
pub const INLINE: usize = 1_000;
/// Runs of a failing action before it becomes a dead letter.
pub const MAX_ATTEMPTS: u32 = 6;

/// The rules of one automation version, compiled.
pub struct Compiled {
    pub version: i64,
    pub automation: Automation,
    pub(super) rules: BTreeMap<AutomationRuleId, AutomationRule>,
    /// The groups of the segments the conditions ask about.
    pub(super) asked_groups: Vec<SegmentGroupId>,
}

/// What the conditions read of one customer.
struct Facts {
    attributes: Attributes,
    /// Live memberships among the segments the conditions ask about.
    segments: BTreeSet<SegmentId>,
    /// Activities recorded so far, of the types the conditions count.
    counts: BTreeMap<ActivityType, u32>,
}

/// A rule as stored, with its parsed definition.
#[derive(Debug, Clone)]
pub struct AutomationRecord {
    pub stored: StoredAutomationRule,
    pub rule: AutomationRule,
}

/// What a dry run found.
pub struct DryRun {
    pub evaluation: Evaluation,
    /// `(action index, minutes after the event)` of the actions that would run.
    pub actions: Vec<(usize, u32)>,
}

pub struct Automations {
    pub(super) store: Arc<dyn Store>,
    pub(super) clock: Arc<dyn Clock>,
    /// Selects the candidates of scheduled rules.
    pub(super) index: Arc<LiveIndex>,
    /// Told of every customer an action changed.
    profiles: Arc<Profiles>,
    http: reqwest::Client,
    /// Signs webhook bodies (HMAC-SHA256).
    webhook_key: RwLock<Vec<u8>>,
    compiled: RwLock<Option<Arc<Compiled>>>,
    checked_at: Mutex<Timestamp>,
    reload: tokio::sync::Mutex<()>,
    /// Held by the round reacting to recorded activities (`inbox.rs`).
    pub(super) reacting: tokio::sync::Mutex<()>,
    /// Wakes the worker to react to activities recorded by this process.
    recorded: tokio::sync::Notify,
}

impl Automations {
    /// Webhooks are signed with a random per-process key until `set_webhook_secret`.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, index: Arc<LiveIndex>, profiles: Arc<Profiles>) -> Self {
        let mut webhook_key = vec![0u8; 32];
        rand::rng().fill(&mut webhook_key[..]);
        Self {
            store,
            clock,
            index,
            profiles,
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .expect("an HTTP client"),
            webhook_key: RwLock::new(webhook_key),
            compiled: RwLock::new(None),
            checked_at: Mutex::new(Timestamp::from_unix_micros(i64::MIN)),
            reload: tokio::sync::Mutex::new(()),
            reacting: tokio::sync::Mutex::new(()),
            recorded: tokio::sync::Notify::new(),
        }
    }

    /// Signs webhooks with `secret` from now on (receivers check the signatures with it).
    pub fn set_webhook_secret(&self, secret: &str) {
        *self.webhook_key.write().expect("webhook key lock") = secret.as_bytes().to_vec();
    }

    /// The current compiled rules.
    pub async fn current(&self) -> StoreResult<Arc<Compiled>> {
        let now = self.clock.now();
        let cached = self.compiled.read().expect("automation lock").clone();
        if let Some(compiled) = &cached
            && now
                .unix_micros()
                .saturating_sub(self.checked_at.lock().expect("lock").unix_micros())
                < FRESH_MICROS
        {
            return Ok(compiled.clone());
        }
        let version = self.store.automation_version().await?;
        *self.checked_at.lock().expect("lock") = now;
        match cached {
            Some(compiled) if compiled.version == version => Ok(compiled),
            _ => self.reload().await,
        }
    }

    /// Compiles the rules from the store; a stored rule that no longer parses is
    /// skipped and logged.
    pub async fn reload(&self) -> StoreResult<Arc<Compiled>> {
        let _one = self.reload.lock().await;
        let version = self.store.automation_version().await?;
        let mut rules = BTreeMap::new();
        for stored in self.store.list_automation_rules().await? {
            match parsed(&stored) {
                Ok(rule) => {
                    rules.insert(rule.id, rule);
                }
                Err(e) => tracing::warn!(rule = %stored.id, error = %e, "stored automation rule skipped"),
            }
        }
        let compiled = Arc::new(self.compile(version, rules).await?);
        *self.compiled.write().expect("automation lock") = Some(compiled.clone());
        *self.checked_at.lock().expect("lock") = self.clock.now();
        Ok(compiled)
    }

    async fn compile(&self, version: i64, rules: BTreeMap<AutomationRuleId, AutomationRule>) -> StoreResult<Compiled> {
        let automation = Automation::compile(rules.values().cloned().collect());
        let mut groups = BTreeSet::new();
        for segment in automation.asked_segments() {
            if let Some(found) = self.store.segment(*segment).await? {
                groups.insert(found.group);
            }
        }
        Ok(Compiled {
            version,
            automation,
            rules,
            asked_groups: groups.into_iter().collect(),
        })
    }

    async fn check(&self, id: AutomationRuleId, value: &Value) -> StoreResult<AutomationRule> {
        let rule = parse_automation_rule(id, value)?;
        let mut segments = Vec::new();
        for leaf in rule.conditions.leaves() {
            if let AutomationCondition::HasSegment(segment) = leaf {
                segments.push(("conditions".to_owned(), *segment));
            }
        }
        for (i, planned) in rule.actions.iter().enumerate() {
            if let AutomationAction::AddSegment { segment, .. } | AutomationAction::RemoveSegment(segment) =
                &planned.action
            {
                segments.push((format!("actions[{i}]"), *segment));
            }
        }
        for (field, segment) in segments {
            if self.store.segment(segment).await?.is_none() {
                return Err(StoreError::dangling(
                    &field,
                    format!("segment {segment} does not exist"),
                ));
            }
        }
        Ok(rule)
    }

    pub async fn create_rule(&self, value: &Value) -> StoreResult<AutomationRecord> {
        let rule = self.check(AutomationRuleId::new(i64::MAX), value).await?;
        let stored = self
            .store
            .create_automation_rule(&value.to_string(), self.clock.now())
            .await?;
        self.reload().await?;
        Ok(AutomationRecord {
            rule: AutomationRule { id: stored.id, ..rule },
            stored,
        })
    }

    pub async fn replace_rule(&self, id: AutomationRuleId, value: &Value) -> StoreResult<AutomationRecord> {
        let rule = self.check(id, value).await?;
        let stored = self
            .store
            .replace_automation_rule(id, &value.to_string(), self.clock.now())
            .await?;
        self.reload().await?;
        Ok(AutomationRecord { stored, rule })
    }

    pub async fn delete_rule(&self, id: AutomationRuleId) -> StoreResult<()> {
        self.store.delete_automation_rule(id).await?;
        self.reload().await?;
        Ok(())
    }

    pub async fn rule(&self, id: AutomationRuleId) -> StoreResult<Option<AutomationRecord>> {
        let Some(stored) = self.store.automation_rule(id).await? else {
            return Ok(None);
        };
        let rule = parsed(&stored)?;
        Ok(Some(AutomationRecord { stored, rule }))
    }

    pub async fn rules(&self) -> StoreResult<Vec<AutomationRecord>> {
        Ok(self
            .store
            .list_automation_rules()
            .await?
            .into_iter()
            .filter_map(|stored| parsed(&stored).ok().map(|rule| AutomationRecord { stored, rule }))
            .collect())
    }

    /// What the conditions read of these customers (unknown ones are left out), in
    /// one read of attributes and counted activities and, when a condition asks about
    /// segments, one read of the memberships of those segments' groups.
    async fn facts_of(
        &self,
        compiled: &Compiled,
        ids: &[CustomerId],
        now: Timestamp,
    ) -> StoreResult<HashMap<CustomerId, Facts>> {
        let aggregates: Vec<Aggregate> = compiled
            .automation
            .counted_activity_types()
            .iter()
            .map(|kind| Aggregate {
                activity: kind.clone(),
                window_days: None,
            })
            .collect();
        let inputs = self
            .store
            .build_inputs(BuildSelection::Ids(ids), true, &aggregates, now)
            .await?;
        let mut held: HashMap<i64, BTreeSet<SegmentId>> = HashMap::new();
        if !compiled.asked_groups.is_empty() && !inputs.is_empty() {
            let keys: Vec<i64> = inputs.iter().map(|i| i.key).collect();
            let asked = compiled.automation.asked_segments();
            for (key, segment) in self
                .store
                .group_memberships(&compiled.asked_groups, KeySelection::Keys(&keys), now)
                .await?
            {
                if asked.contains(&segment) {
                    held.entry(key).or_default().insert(segment);
                }
            }
        }
        Ok(inputs
            .into_iter()
            .map(|input| {
                let counts = aggregates
                    .iter()
                    .map(|a| {
                        let count = u32::try_from(input.aggregates.get(a).count).unwrap_or(u32::MAX);
                        (a.activity.clone(), count)
                    })
                    .collect();
                let facts = Facts {
                    attributes: input.attributes,
                    segments: held.remove(&input.key).unwrap_or_default(),
                    counts,
                };
                (input.id, facts)
            })
            .collect())
    }

    /// Reacts to an event of a customer: the rules it fires are counted and their
    /// actions queued, in one transaction. Returns the rules that fired.
    pub async fn react(&self, event: &Event, customer: &CustomerId) -> StoreResult<Vec<AutomationRuleId>> {
        self.react_with(event, customer, None).await
    }

    /// Reacts to an event caused by a visitor's request, keeping the visitor's tracked
    /// segment counts with the queued actions.
    pub async fn react_with(
        &self,
        event: &Event,
        customer: &CustomerId,
        tracked: Option<&BTreeMap<SegmentId, u32>>,
    ) -> StoreResult<Vec<AutomationRuleId>> {
        Ok(self
            .react_batch(&[(customer.clone(), event.clone())], tracked, None)
            .await?
            .0)
    }

    /// Reacts to many events at once (a page of builds), in the
    /// order they happened: customers are read a chunk at a time, each event is judged
    /// with the activity counts right after it, and every rule that fired is counted
    /// and its actions queued in one transaction. Returns the rules that fired, once per
    /// firing.
    pub async fn react_many(&self, events: &[(CustomerId, Event)]) -> StoreResult<Vec<AutomationRuleId>> {
        Ok(self.react_batch(events, None, None).await?.0)
    }

    /// `react_many` for the rule of a schedule run, recording the run's progress with
    /// the jobs; `false` if the run was taken over (nothing written).
    pub(super) async fn react_rule(
        &self,
        events: &[(CustomerId, Event)],
        progress: &ScheduleProgress,
    ) -> StoreResult<bool> {
        Ok(self.react_batch(events, None, Some(progress)).await?.1)
    }

    /// Judges the events and queues what fired; with `schedule`, for its rule only and
    /// recording its progress (the second value: `false` if that run was taken over).
    async fn react_batch(
        &self,
        events: &[(CustomerId, Event)],
        tracked: Option<&BTreeMap<SegmentId, u32>>,
        schedule: Option<&ScheduleProgress>,
    ) -> StoreResult<(Vec<AutomationRuleId>, bool)> {
        let compiled = self.current().await?;
        let only = schedule.map(|s| s.rule);
        let mut order: HashMap<&CustomerId, usize> = HashMap::new();
        let mut customers: Vec<(&CustomerId, Vec<&Event>)> = Vec::new();
        for (customer, event) in events {
            if !compiled.automation.listens_to(event) {
                continue;
            }
            let at = *order.entry(customer).or_insert_with(|| {
                customers.push((customer, Vec::new()));
                customers.len() - 1
            });
            customers[at].1.push(event);
        }
        if customers.is_empty() && schedule.is_none() {
            return Ok((Vec::new(), true));
        }
        let now = self.clock.now();
        let (mut rules, mut jobs) = (Vec::new(), Vec::new());
        // Wall time of each step, logged at debug level (see BENCHMARKS.md).
        let (started, mut reading) = (Instant::now(), Duration::ZERO);
        for chunk in customers.chunks(FACTS_CHUNK) {
            let ids: Vec<CustomerId> = chunk.iter().map(|(c, _)| (*c).clone()).collect();
            let read = Instant::now();
            let mut facts = self.facts_of(&compiled, &ids, now).await?;
            reading += read.elapsed();
            for (customer, events) in chunk {
                let Some(facts) = facts.remove(*customer) else {
                    continue;
                };
                let counts = counts_as_of(events, &facts.counts);
                let view = CustomerFacts {
                    id: customer,
                    attributes: &facts.attributes,
                    segments: &facts.segments,
                    activity_counts: &facts.counts,
                };
                let fired_each = match only {
                    None => {
                        let each: Vec<_> = events.iter().copied().zip(&counts).collect();
                        compiled.automation.react_each(&each, &view, now)
                    }
                    Some(rule) => events
                        .iter()
                        .zip(&counts)
                        .map(|(event, counts)| {
                            let view = CustomerFacts {
                                activity_counts: counts,
                                ..view
                            };
                            compiled
                                .automation
                                .react_rule(rule, event, &view, now)
                                .into_iter()
                                .collect()
                        })
                        .collect(),
                };
                for (event, fired) in events.iter().zip(fired_each) {
                    queue_fired(&mut rules, &mut jobs, customer, event, tracked, fired);
                }
            }
        }
        let judging = started.elapsed().saturating_sub(reading);
        let queueing = Instant::now();
        let kept = if rules.is_empty() && schedule.is_none() {
            true
        } else {
            self.store.fire_with(&rules, &jobs, now, schedule, &[]).await?
        };
        tracing::debug!(
            customers = customers.len(),
            jobs = jobs.len(),
            ?reading,
            ?judging,
            queueing = ?queueing.elapsed(),
            "automation reacted to a batch"
        );
        Ok((rules, kept))
    }

    /// Activities were recorded: when rules listen to them, a batch of at most
    /// `INLINE` is reacted to now (its caller answers after), a larger one by the
    /// worker right away; logs instead of failing (they stay in the inbox).
    pub async fn after_recording(&self, recorded: usize) {
        let listening = match self.current().await {
            Ok(compiled) => compiled.automation.listens_to_activities(),
            Err(_) => true,
        };
        if listening && recorded <= INLINE {
            if let Err(e) = self.react_to_recorded().await {
                tracing::error!(error = %e, "automation could not react to recorded activities");
            }
        } else {
            self.wake();
        }
    }

    /// Activities were recorded: the worker reacts to them right away.
    pub fn wake(&self) {
        self.recorded.notify_one();
    }

    /// Reacts to an event, logging instead of failing (for callers whose own work is
    /// already committed).
    pub async fn react_logged(&self, event: &Event, customer: &CustomerId) {
        self.react_logged_with(event, customer, None).await;
    }

    /// `react_with`, logging instead of failing.
    pub async fn react_logged_with(
        &self,
        event: &Event,
        customer: &CustomerId,
        tracked: Option<&BTreeMap<SegmentId, u32>>,
    ) {
        if let Err(e) = self.react_with(event, customer, tracked).await {
            tracing::error!(error = %e, %customer, "automation could not react to an event");
        }
    }

    /// A rule's conditions for a customer and an event, leaf by leaf, and the actions
    /// that would run; nothing is written.
    pub async fn dry_run(&self, id: AutomationRuleId, customer: &CustomerId, event: &Event) -> StoreResult<DryRun> {
        let record = self
            .rule(id)
            .await?
            .ok_or_else(|| StoreError::not_found("automation rule", id))?;
        let compiled = self
            .compile(0, BTreeMap::from([(record.rule.id, record.rule.clone())]))
            .await?;
        let now = self.clock.now();
        let found = self
            .facts_of(&compiled, std::slice::from_ref(customer), now)
            .await?
            .remove(customer)
            .ok_or_else(|| StoreError::not_found("customer", customer))?;
        let facts = CustomerFacts {
            id: customer,
            attributes: &found.attributes,
            segments: &found.segments,
            activity_counts: &found.counts,
        };
        let evaluation = evaluate(&record.rule, event, &facts);
        let actions = if evaluation.holds {
            runs(&record.rule, now)
                .iter()
                .map(|r| (r.index, r.planned.delay_minutes))
                .collect()
        } else {
            Vec::new()
        };
        Ok(DryRun { evaluation, actions })
    }

    /// Claims and runs the due jobs, round after round until none is due. Returns how
    /// many ran (successfully or not). The effects of a claim's jobs are written in one
    /// transaction.
    pub async fn run_due(&self) -> StoreResult<usize> {
        let mut ran = 0;
        loop {
            let now = self.clock.now();
            let lease = new_lease();
            let until = Timestamp::from_unix_micros(now.unix_micros() + LEASE_MICROS);
            let jobs = self.store.claim_jobs(now, until, lease, CLAIM).await?;
            if jobs.is_empty() {
                return Ok(ran);
            }
            ran += jobs.len();
            let compiled = self.current().await?;
            let mut performed = Vec::with_capacity(jobs.len());
            for job in jobs {
                let effect = self.effect_of(&compiled, &job).await;
                performed.push((job, effect));
                // Slow actions (webhooks waiting for their timeout) must not keep what
                // ran uncompleted until the lease runs out: past half of it, complete.
                if self.clock.now().unix_micros() - now.unix_micros() > LEASE_MICROS / 2 {
                    self.finish(std::mem::take(&mut performed)).await?;
                }
            }
            self.finish(performed).await?;
        }
    }

    /// What running the job does, or why it failed.
    async fn effect_of(&self, compiled: &Compiled, job: &Job) -> Result<JobEffect, String> {
        match compiled.rules.get(&job.rule) {
            None => Err("the rule no longer exists or no longer compiles".to_owned()),
            Some(rule) => match rule.actions.get(job.action as usize) {
                None => Err("the rule no longer has this action".to_owned()),
                Some(planned) => self.perform(rule, &planned.action, job).await,
            },
        }
    }

    /// Completes the jobs that ran, with their effects, in one transaction; a job whose
    /// action failed, or whose effect cannot be written (the customer changed
    /// meanwhile), is retried later or, after its last attempt, buried.
    async fn finish(&self, performed: Vec<(Job, Result<JobEffect, String>)>) -> StoreResult<()> {
        let now = self.clock.now();
        let mut succeeded = Vec::with_capacity(performed.len());
        let mut failed = Vec::new();
        for (job, effect) in performed {
            match effect {
                Ok(effect) => succeeded.push((job, effect)),
                Err(error) => failed.push((job, error)),
            }
        }
        if !succeeded.is_empty() {
            let outcomes = self.store.complete_jobs(&succeeded, now).await?;
            self.profiles
                .forget_each(succeeded.iter().map(|(job, _)| &job.customer));
            for ((job, _), outcome) in succeeded.into_iter().zip(outcomes) {
                if let Err(error) = outcome {
                    failed.push((job, error.to_string()));
                }
            }
        }
        for (job, error) in failed {
            if job.attempts + 1 < MAX_ATTEMPTS {
                // 1, 2, 4, 8, 16 minutes.
                let wait = 60_000_000i64 << job.attempts.min(20);
                let at = Timestamp::from_unix_micros(now.unix_micros().saturating_add(wait));
                tracing::warn!(job = job.id, rule = %job.rule, attempt = job.attempts + 1, %error, "automation action failed, retrying");
                self.store.retry_job(job.id, job.lease, at, &error).await?;
            } else {
                tracing::warn!(job = job.id, rule = %job.rule, %error, "automation action failed for good");
                self.store.bury_job(job.id, job.lease, &error, now).await?;
            }
        }
        Ok(())
    }

    /// Works out what an action does for the job's customer. Changes of the customer
    /// come back as the job's effect, written with its completion; an activity is
    /// recorded under an id made from the job's, so running the job again records
    /// nothing new; a webhook is sent (at least once: receivers tell repeats by the
    /// `X-Cohort-Delivery` header). An error is a failure to retry.
    async fn perform(&self, rule: &AutomationRule, action: &AutomationAction, job: &Job) -> Result<JobEffect, String> {
        let now = self.clock.now();
        let customer = &job.customer;
        let event = decode_event(&job.environment);
        let store_error = |e: StoreError| e.to_string();
        let consent = || async {
            Ok::<bool, String>(
                self.store
                    .customer(customer)
                    .await
                    .map_err(store_error)?
                    .is_some_and(|c| c.profiling_consent),
            )
        };
        let add = |segments: Vec<SegmentId>| {
            JobEffect::Segments(SegmentChange {
                add: segments
                    .into_iter()
                    .map(|segment| SegmentAdd {
                        segment,
                        source: MembershipSource::Tracked,
                        expires_at: None,
                    })
                    .collect(),
                remove: Vec::new(),
            })
        };
        Ok(match action {
            AutomationAction::AddSegment {
                segment,
                remove_others,
                increase_counter,
                consider_consent,
            } => {
                if *consider_consent && !consent().await? {
                    return Ok(JobEffect::Nothing);
                }
                let held = self.store.customer_segments(customer, now).await.map_err(store_error)?;
                if !increase_counter && held.iter().any(|m| m.segment == *segment) {
                    return Ok(JobEffect::Nothing);
                }
                let JobEffect::Segments(mut change) = add(vec![*segment]) else {
                    unreachable!("add gives segments")
                };
                if *remove_others && let Some(found) = self.store.segment(*segment).await.map_err(store_error)? {
                    for m in &held {
                        if m.segment != *segment
                            && let Some(other) = self.store.segment(m.segment).await.map_err(store_error)?
                            && other.group == found.group
                        {
                            change.remove.push(m.segment);
                        }
                    }
                }
                JobEffect::Segments(change)
            }
            AutomationAction::RemoveSegment(segment) => JobEffect::Segments(SegmentChange {
                add: Vec::new(),
                remove: vec![*segment],
            }),
            AutomationAction::SetField { field, value } => {
                let mut patch = CustomerPatch::default();
                patch.attributes.insert(field.clone(), value.clone());
                JobEffect::Customer(patch)
            }
            AutomationAction::AddTrackedSegment { consider_consent } => {
                let Some(Event::SegmentTracked { segment, .. }) = event else {
                    return Err("the event tracked no segment".to_owned());
                };
                if *consider_consent && !consent().await? {
                    return Ok(JobEffect::Nothing);
                }
                add(vec![segment])
            }
            AutomationAction::CopyTrackedSegments {
                min_count,
                consider_consent,
            } => {
                if *consider_consent && !consent().await? {
                    return Ok(JobEffect::Nothing);
                }
                let tracked = match tracked_in(&job.environment) {
                    Some(tracked) => tracked,
                    None => {
                        let ids = self.store.customer_visitors(customer).await.map_err(store_error)?;
                        let mut tracked: BTreeMap<SegmentId, u32> = BTreeMap::new();
                        for visitor in self.store.visitors(&ids).await.map_err(store_error)? {
                            for (segment, count) in visitor.state.tracked_segments {
                                let most = tracked.entry(segment).or_insert(0);
                                *most = (*most).max(count);
                            }
                        }
                        tracked
                    }
                };
                let segments: Vec<SegmentId> = tracked
                    .into_iter()
                    .filter(|(_, count)| count >= min_count)
                    .map(|(segment, _)| segment)
                    .collect();
                // Segments deleted since they were tracked are left out.
                let mut known = Vec::with_capacity(segments.len());
                for segment in segments {
                    if self.store.segment(segment).await.map_err(store_error)?.is_some() {
                        known.push(segment);
                    }
                }
                if known.is_empty() {
                    return Ok(JobEffect::Nothing);
                }
                add(known)
            }
            AutomationAction::AddLinkedSegment { consider_consent } => {
                let Some(Event::TargetGroupAssigned { group, .. }) = event else {
                    return Err("the event assigned no target group".to_owned());
                };
                if *consider_consent && !consent().await? {
                    return Ok(JobEffect::Nothing);
                }
                let linked = self
                    .store
                    .target_group(group)
                    .await
                    .map_err(store_error)?
                    .and_then(|g| g.segment);
                match linked {
                    Some(segment) => add(vec![segment]),
                    None => JobEffect::Nothing,
                }
            }
            AutomationAction::TrackActivity(kind) => {
                let id = ActivityId::parse("id", &format!("automation_{}", job.id)).map_err(|e| e.to_string())?;
                let activity = Activity::new(id, customer.clone(), kind.clone(), now, Attributes::default(), None)
                    .map_err(|e| e.to_string())?;
                self.store
                    .record_activities(&[activity], now, Reacting::CountedOnly)
                    .await
                    .map_err(store_error)?;
                self.wake();
                JobEffect::Nothing
            }
            AutomationAction::Webhook { url } => {
                let body = json!({
                    "rule": rule.id.get(),
                    "rule_name": rule.name.as_str(),
                    "action": job.action,
                    "customer": customer.as_str(),
                    "event": serde_json::from_str::<Value>(&job.environment).unwrap_or(Value::Null),
                    "job": job.id,
                    "at": now.to_rfc3339(),
                })
                .to_string();
                let response = self
                    .http
                    .post(url)
                    .header("content-type", "application/json")
                    .header("x-cohort-signature", format!("sha256={}", self.sign(body.as_bytes())))
                    .header("x-cohort-delivery", job.id.to_string())
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| format!("webhook not delivered: {e}"))?;
                if !response.status().is_success() {
                    return Err(format!("webhook answered {}", response.status()));
                }
                JobEffect::Nothing
            }
        })
    }

    /// Hex HMAC-SHA256 of a webhook body.
    pub fn sign(&self, body: &[u8]) -> String {
        let key = self.webhook_key.read().expect("webhook key lock");
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
        mac.update(body);
        mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Runs the schedules that came due and the due jobs every `every`, and reacts to
    /// recorded activities when this process recorded some and every `every` (other
    /// servers' recordings), until `stop` resolves. The two go on side by side, so a
    /// long queue of due jobs does not hold up reactions.
    pub async fn run_until_stopped(self: Arc<Self>, every: std::time::Duration, stop: impl Future<Output = ()>) {
        use futures::FutureExt as _;
        let stop = stop.shared();
        let reacting = async {
            let mut stop = std::pin::pin!(stop.clone());
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = self.recorded.notified() => {}
                    _ = ticks.tick() => {}
                    () = &mut stop => return,
                }
                let started = tokio::time::Instant::now();
                match self.react_to_recorded().await {
                    // While large batches keep coming, a round at most every `every`:
                    // a customer of several batches is read once, and the reading
                    // leaves the recording more of the machine.
                    Ok(judged) if judged > INLINE => tokio::select! {
                        () = tokio::time::sleep_until(started + every) => {}
                        () = &mut stop => return,
                    },
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "automation did not react to recorded activities"),
                }
            }
        };
        let running = async {
            let mut stop = std::pin::pin!(stop.clone());
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {
                        if let Err(e) = self.run_schedules().await {
                            tracing::warn!(error = %e, "automation schedules not run");
                        }
                        if let Err(e) = self.run_due().await {
                            tracing::warn!(error = %e, "automation queue not run");
                        }
                    }
                    () = &mut stop => return,
                }
            }
        };
        tokio::join!(reacting, running);
    }
}

/// A claim's lease: random and non-zero, so that two servers' claims differ.
pub(super) fn new_lease() -> i64 {
    rand::rng().random_range(1..i64::MAX)
}

fn parsed(stored: &StoredAutomationRule) -> Result<AutomationRule, Invalid> {
    let value: Value = serde_json::from_str(&stored.definition)
        .map_err(|e| Invalid::new("", format!("stored definition is not JSON: {e}")))?;
    parse_automation_rule(stored.id, &value)
}

/// Counts the rules that fired for a customer's event and queues their actions' jobs,
/// with the event as their environment.
pub(super) fn queue_fired(
    rules: &mut Vec<AutomationRuleId>,
    jobs: &mut Vec<NewJob>,
    customer: &CustomerId,
    event: &Event,
    tracked: Option<&BTreeMap<SegmentId, u32>>,
    fired: Vec<cohort_engine::automation::Fired>,
) {
    if fired.is_empty() {
        return;
    }
    let environment = encode_event(event, tracked);
    for f in fired {
        rules.push(f.rule);
        jobs.extend(f.runs.iter().map(|run| NewJob {
            rule: f.rule,
            action: u32::try_from(run.index).unwrap_or(u32::MAX),
            customer: customer.clone(),
            run_at: run.at,
            environment: environment.clone(),
        }));
    }
}

/// An event as kept with its jobs (and sent to webhooks), with the tracked segment
/// counts of the visitor whose request caused it, when one did.
pub fn encode_event(event: &Event, tracked: Option<&BTreeMap<SegmentId, u32>>) -> String {
    let mut value = match event {
        Event::Activity { kind } => json!({"event": "activity", "type": kind.as_str()}),
        Event::CustomerCreated => json!({"event": "customer_created"}),
        Event::CustomerUpdated => json!({"event": "customer_updated"}),
        Event::SegmentsBuilt => json!({"event": "segments_built"}),
        Event::Scheduled => json!({"event": "scheduled"}),
        Event::SegmentTracked { segment, count } => {
            json!({"event": "segment_tracked", "segment": segment.get(), "count": count})
        }
        Event::TargetGroupAssigned { group, weight, by } => json!({
            "event": "target_group_assigned", "target_group": group.get(), "weight": weight,
            "by": match by { AssignedBy::Content => "content", AssignedBy::Rule => "rule" },
        }),
    };
    if let Some(tracked) = tracked {
        value["tracked"] = tracked.iter().map(|(s, n)| json!([s.get(), n])).collect();
    }
    value.to_string()
}

/// The visitor's tracked segment counts kept with an event, if any.
fn tracked_in(environment: &str) -> Option<BTreeMap<SegmentId, u32>> {
    let v: Value = serde_json::from_str(environment).ok()?;
    v.get("tracked")?
        .as_array()?
        .iter()
        .map(|pair| {
            let segment = SegmentId::new(pair.get(0)?.as_i64()?);
            let count = u32::try_from(pair.get(1)?.as_u64()?).ok()?;
            Some((segment, count))
        })
        .collect()
}

/// The event kept with a job.
pub fn decode_event(text: &str) -> Option<Event> {
    let v: Value = serde_json::from_str(text).ok()?;
    let count = |name: &str| v[name].as_u64().and_then(|n| u32::try_from(n).ok());
    Some(match v["event"].as_str()? {
        "activity" => Event::Activity {
            kind: ActivityType::parse("type", v["type"].as_str()?).ok()?,
        },
        "customer_created" => Event::CustomerCreated,
        "customer_updated" => Event::CustomerUpdated,
        "segments_built" => Event::SegmentsBuilt,
        "scheduled" => Event::Scheduled,
        "segment_tracked" => Event::SegmentTracked {
            segment: SegmentId::new(v["segment"].as_i64()?),
            count: count("count")?,
        },
        "target_group_assigned" => Event::TargetGroupAssigned {
            group: TargetGroupId::new(v["target_group"].as_i64()?),
            weight: count("weight")?,
            by: if v["by"] == "content" {
                AssignedBy::Content
            } else {
                AssignedBy::Rule
            },
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_their_encoding() {
        let events = [
            Event::Activity {
                kind: ActivityType::parse("t", "order").unwrap(),
            },
            Event::CustomerCreated,
            Event::CustomerUpdated,
            Event::SegmentsBuilt,
            Event::Scheduled,
            Event::SegmentTracked {
                segment: SegmentId::new(4),
                count: 5,
            },
            Event::TargetGroupAssigned {
                group: TargetGroupId::new(2),
                weight: 3,
                by: AssignedBy::Content,
            },
        ];
        for event in events {
            assert_eq!(decode_event(&encode_event(&event, None)), Some(event));
        }
        let tracked = BTreeMap::from([(SegmentId::new(4), 5), (SegmentId::new(9), 1)]);
        let event = Event::CustomerUpdated;
        let text = encode_event(&event, Some(&tracked));
        assert_eq!(decode_event(&text), Some(event));
        assert_eq!(tracked_in(&text), Some(tracked));
        assert_eq!(tracked_in(&encode_event(&Event::CustomerCreated, None)), None);
    }
}
