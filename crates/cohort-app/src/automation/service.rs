//! Automation use cases: saving rules (checked, their segments existing), the compiled
//! rules kept current, reacting to events — the customer read once, the rules that
//! fire counted and every action of theirs queued durably in the same transaction —,
//! dry runs, and the worker that runs due actions: claimed under a lease, finished,
//! retried with exponential backoff, or parked as dead letters.
//!
//! Every action goes through the queue, delayed or not, so an acknowledged event's
//! actions survive a crash; a claim that outlives its lease (a crashed server) is
//! taken over by the next claim.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, RwLock};

use cohort_core::automation::{
    AssignedBy, AutomationAction, AutomationCondition, AutomationRule, AutomationRuleId, Event,
};
use cohort_core::{
    Activity, ActivityType, Aggregate, Attributes, CustomerId, CustomerPatch, Invalid, MembershipSource, SegmentAdd,
    SegmentChange, SegmentId, TargetGroupId, Timestamp,
};
use cohort_engine::automation::{Automation, CustomerFacts, Evaluation, evaluate, runs};
use cohort_store::{BuildSelection, Job, NewJob, Store, StoreError, StoreResult, StoredAutomationRule};
use hmac::{Hmac, Mac};
use rand::Rng;
use serde_json::{Value, json};
use sha2::Sha256;

use super::parse_automation_rule;
use crate::Clock;
use crate::activities::new_activity_id;

/// How long a look at the store's automation version is trusted.
const FRESH_MICROS: i64 = 1_000_000;
/// How long a claimed job is held before another server may take it over.
const LEASE_MICROS: i64 = 60 * 1_000_000;
/// Jobs claimed per round.
const CLAIM: u32 = 100;
/// Runs of a failing action before it becomes a dead letter.
pub const MAX_ATTEMPTS: u32 = 6;

/// The rules of one automation version, compiled.
pub struct Compiled {
    pub version: i64,
    pub automation: Automation,
    rules: BTreeMap<AutomationRuleId, AutomationRule>,
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

/// How one run of a job went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    Done,
    Retried,
    Buried,
}

pub struct Automations {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    /// Signs webhook bodies (HMAC-SHA256).
    webhook_key: Vec<u8>,
    compiled: RwLock<Option<Arc<Compiled>>>,
    checked_at: Mutex<Timestamp>,
    reload: tokio::sync::Mutex<()>,
}

impl Automations {
    /// `webhook_secret`: the key webhook signatures are made with (receivers check
    /// them); `None` signs with a random per-process key.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, webhook_secret: Option<&str>) -> Self {
        let webhook_key = match webhook_secret {
            Some(secret) => secret.as_bytes().to_vec(),
            None => {
                let mut key = vec![0u8; 32];
                rand::rng().fill(&mut key[..]);
                key
            }
        };
        Self {
            store,
            clock,
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .expect("an HTTP client"),
            webhook_key,
            compiled: RwLock::new(None),
            checked_at: Mutex::new(Timestamp::from_unix_micros(i64::MIN)),
            reload: tokio::sync::Mutex::new(()),
        }
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
        let compiled = Arc::new(Compiled {
            version,
            automation: Automation::compile(rules.values().cloned().collect()),
            rules,
        });
        *self.compiled.write().expect("automation lock") = Some(compiled.clone());
        *self.checked_at.lock().expect("lock") = self.clock.now();
        Ok(compiled)
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

    /// What the conditions need of a customer: attributes, live segments, activity
    /// counts (`None`: a customer cohort does not know).
    async fn facts(
        &self,
        compiled: &Compiled,
        customer: &CustomerId,
        now: Timestamp,
    ) -> StoreResult<Option<(Attributes, BTreeSet<SegmentId>, BTreeMap<ActivityType, u32>)>> {
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
            .build_inputs(
                BuildSelection::Ids(std::slice::from_ref(customer)),
                true,
                &aggregates,
                now,
            )
            .await?;
        let Some(input) = inputs.into_iter().next() else {
            return Ok(None);
        };
        let segments = self
            .store
            .customer_segments(customer, now)
            .await?
            .into_iter()
            .map(|m| m.segment)
            .collect();
        let counts = aggregates
            .iter()
            .map(|a| {
                let count = u32::try_from(input.aggregates.get(a).count).unwrap_or(u32::MAX);
                (a.activity.clone(), count)
            })
            .collect();
        Ok(Some((input.attributes, segments, counts)))
    }

    /// Reacts to an event of a customer: the rules it fires are counted and their
    /// actions queued, in one transaction. Returns the rules that fired.
    pub async fn react(&self, event: &Event, customer: &CustomerId) -> StoreResult<Vec<AutomationRuleId>> {
        let compiled = self.current().await?;
        if !compiled.automation.listens_to(event) {
            return Ok(Vec::new());
        }
        let now = self.clock.now();
        let Some((attributes, segments, counts)) = self.facts(&compiled, customer, now).await? else {
            return Ok(Vec::new());
        };
        let facts = CustomerFacts {
            id: customer,
            attributes: &attributes,
            segments: &segments,
            activity_counts: &counts,
        };
        let fired = compiled.automation.react(event, &facts, now);
        if fired.is_empty() {
            return Ok(Vec::new());
        }
        let environment = encode_event(event);
        let jobs: Vec<NewJob> = fired
            .iter()
            .flat_map(|f| {
                f.runs.iter().map(|run| NewJob {
                    rule: f.rule,
                    action: u32::try_from(run.index).unwrap_or(u32::MAX),
                    customer: customer.clone(),
                    run_at: run.at,
                    environment: environment.clone(),
                })
            })
            .collect();
        let rules: Vec<AutomationRuleId> = fired.iter().map(|f| f.rule).collect();
        self.store.fire(&rules, &jobs, now).await?;
        Ok(rules)
    }

    /// Reacts to an event, logging instead of failing (for callers whose own work is
    /// already committed).
    pub async fn react_logged(&self, event: &Event, customer: &CustomerId) {
        if let Err(e) = self.react(event, customer).await {
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
        let compiled = Compiled {
            version: 0,
            automation: Automation::compile(vec![record.rule.clone()]),
            rules: BTreeMap::new(),
        };
        let now = self.clock.now();
        let (attributes, segments, counts) = self
            .facts(&compiled, customer, now)
            .await?
            .ok_or_else(|| StoreError::not_found("customer", customer))?;
        let facts = CustomerFacts {
            id: customer,
            attributes: &attributes,
            segments: &segments,
            activity_counts: &counts,
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
    /// many ran (successfully or not).
    pub async fn run_due(&self) -> StoreResult<usize> {
        let mut ran = 0;
        loop {
            let now = self.clock.now();
            let lease: i64 = rand::rng().random_range(1..i64::MAX);
            let until = Timestamp::from_unix_micros(now.unix_micros() + LEASE_MICROS);
            let jobs = self.store.claim_jobs(now, until, lease, CLAIM).await?;
            if jobs.is_empty() {
                return Ok(ran);
            }
            let compiled = self.current().await?;
            for job in jobs {
                self.run(&compiled, job).await?;
                ran += 1;
            }
        }
    }

    /// Runs one claimed job and records how it went.
    pub async fn run(&self, compiled: &Compiled, job: Job) -> StoreResult<RunOutcome> {
        let result = match compiled.rules.get(&job.rule) {
            None => Err("the rule no longer exists or no longer compiles".to_owned()),
            Some(rule) => match rule.actions.get(job.action as usize) {
                None => Err("the rule no longer has this action".to_owned()),
                Some(planned) => self.perform(rule, &planned.action, &job).await,
            },
        };
        let now = self.clock.now();
        match result {
            Ok(()) => {
                self.store.finish_job(job.id, job.lease).await?;
                Ok(RunOutcome::Done)
            }
            Err(error) if job.attempts + 1 < MAX_ATTEMPTS => {
                // 1, 2, 4, 8, 16 minutes.
                let wait = 60_000_000i64 << job.attempts.min(20);
                let at = Timestamp::from_unix_micros(now.unix_micros().saturating_add(wait));
                tracing::warn!(job = job.id, rule = %job.rule, attempt = job.attempts + 1, %error, "automation action failed, retrying");
                self.store.retry_job(job.id, job.lease, at, &error).await?;
                Ok(RunOutcome::Retried)
            }
            Err(error) => {
                tracing::warn!(job = job.id, rule = %job.rule, %error, "automation action failed for good");
                self.store.bury_job(job.id, job.lease, &error, now).await?;
                Ok(RunOutcome::Buried)
            }
        }
    }

    /// Does what an action says for the job's customer; an error is a failure to retry.
    async fn perform(&self, rule: &AutomationRule, action: &AutomationAction, job: &Job) -> Result<(), String> {
        let now = self.clock.now();
        let customer = &job.customer;
        let event = decode_event(&job.environment);
        let consent = || async {
            Ok::<bool, String>(
                self.store
                    .customer(customer)
                    .await
                    .map_err(|e| e.to_string())?
                    .is_some_and(|c| c.profiling_consent),
            )
        };
        let add = |segment: SegmentId| SegmentChange {
            add: vec![SegmentAdd {
                segment,
                source: MembershipSource::Tracked,
                expires_at: None,
            }],
            remove: Vec::new(),
        };
        let store_error = |e: StoreError| e.to_string();
        match action {
            AutomationAction::AddSegment {
                segment,
                remove_others,
                increase_counter,
                consider_consent,
            } => {
                if *consider_consent && !consent().await? {
                    return Ok(());
                }
                let held = self.store.customer_segments(customer, now).await.map_err(store_error)?;
                if !increase_counter && held.iter().any(|m| m.segment == *segment) {
                    return Ok(());
                }
                let mut change = add(*segment);
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
                self.store
                    .change_segments(customer, &change, now)
                    .await
                    .map_err(store_error)?;
            }
            AutomationAction::RemoveSegment(segment) => {
                let change = SegmentChange {
                    add: Vec::new(),
                    remove: vec![*segment],
                };
                self.store
                    .change_segments(customer, &change, now)
                    .await
                    .map_err(store_error)?;
            }
            AutomationAction::SetField { field, value } => {
                let mut patch = CustomerPatch::default();
                patch.attributes.insert(field.clone(), value.clone());
                self.store
                    .update_customer(customer, &patch, now)
                    .await
                    .map_err(store_error)?;
            }
            AutomationAction::AddTrackedSegment { consider_consent } => {
                let Some(Event::SegmentTracked { segment, .. }) = event else {
                    return Err("the event tracked no segment".to_owned());
                };
                if *consider_consent && !consent().await? {
                    return Ok(());
                }
                self.store
                    .change_segments(customer, &add(segment), now)
                    .await
                    .map_err(store_error)?;
            }
            AutomationAction::AddLinkedSegment { consider_consent } => {
                let Some(Event::TargetGroupAssigned { group, .. }) = event else {
                    return Err("the event assigned no target group".to_owned());
                };
                if *consider_consent && !consent().await? {
                    return Ok(());
                }
                let linked = self
                    .store
                    .target_group(group)
                    .await
                    .map_err(store_error)?
                    .and_then(|g| g.segment);
                if let Some(segment) = linked {
                    self.store
                        .change_segments(customer, &add(segment), now)
                        .await
                        .map_err(store_error)?;
                }
            }
            AutomationAction::TrackActivity(kind) => {
                let activity = Activity::new(
                    new_activity_id(),
                    customer.clone(),
                    kind.clone(),
                    now,
                    Attributes::default(),
                    None,
                )
                .map_err(|e| e.to_string())?;
                self.store
                    .record_activities(&[activity], now)
                    .await
                    .map_err(store_error)?;
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
            }
        }
        Ok(())
    }

    /// Hex HMAC-SHA256 of a webhook body.
    pub fn sign(&self, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.webhook_key).expect("any key length");
        mac.update(body);
        mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Runs due jobs every `every` until `stop` resolves.
    pub async fn run_until_stopped(self: Arc<Self>, every: std::time::Duration, stop: impl Future<Output = ()>) {
        let mut stop = std::pin::pin!(stop);
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {
                    if let Err(e) = self.run_due().await {
                        tracing::warn!(error = %e, "automation queue not run");
                    }
                }
                () = &mut stop => return,
            }
        }
    }
}

fn parsed(stored: &StoredAutomationRule) -> Result<AutomationRule, Invalid> {
    let value: Value = serde_json::from_str(&stored.definition)
        .map_err(|e| Invalid::new("", format!("stored definition is not JSON: {e}")))?;
    parse_automation_rule(stored.id, &value)
}

/// An event as kept with its jobs (and sent to webhooks).
pub fn encode_event(event: &Event) -> String {
    match event {
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
    }
    .to_string()
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
            assert_eq!(decode_event(&encode_event(&event)), Some(event));
        }
    }
}
