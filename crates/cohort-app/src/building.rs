//! Running segment builders: full builds over every customer, incremental builds of
//! the customers the queue names, and the definitions' life cycle (checked, compiled
//! and given their segments when saved).
//!
//! A builder owns its group: after a build, the group's live memberships are exactly
//! what the builder computed, and only the differences were written. Builds and the
//! incremental worker take turns page by page (`turn`), so neither writes a result
//! computed from data the other has already replaced.

use std::collections::HashMap;
use std::sync::Arc;

use cohort_core::automation::Event;
use cohort_core::segment::NewSegment;
use cohort_core::{
    Aggregate, BuilderId, CustomerId, Invalid, Name, NewSegmentBuilder, PageRequest, ReferenceKey, SegmentBuilder,
    SegmentBuilderPatch, SegmentGroup, SegmentGroupId, SegmentId, ServiceId, Timestamp,
};
use cohort_engine::{CompiledBuilder, Profile, Quintiles, RfmBounds, RfmMeasure};
use cohort_store::{
    BuildChange, BuildInput, BuildSelection, BuildSummary, KeySelection, SegmentFilter, Store, StoreError, StoreResult,
};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::Clock;
use crate::automation::Automations;
use crate::builders::parse_builder;
use crate::profiles::Profiles;
use crate::schedule::Schedule;

/// Customers read and written per step of a full build.
pub const PAGE: u32 = 5_000;

/// Reports how far a build has come.
pub trait Progress: Send + Sync {
    /// A new phase starts with `total` customers to go through.
    fn phase(&self, name: &'static str, total: u64);
    fn advance(&self, customers: u64);
}

/// A progress nobody watches.
pub struct Silent;

impl Progress for Silent {
    fn phase(&self, _: &'static str, _: u64) {}
    fn advance(&self, _: u64) {}
}

/// What a build did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BuildReport {
    pub customers: u64,
    pub added: u64,
    pub removed: u64,
}

impl BuildReport {
    fn absorb(&mut self, summary: BuildSummary) {
        self.added += summary.added;
        self.removed += summary.removed;
    }
}

/// A builder ready to run: its record, compiled definition and group's segments.
#[derive(Clone)]
struct Loaded {
    record: SegmentBuilder,
    compiled: CompiledBuilder,
    group: SegmentGroup,
    /// Every segment of the group, by reference.
    segments: HashMap<ReferenceKey, SegmentId>,
}

impl Loaded {
    /// The segments a customer should hold in the group; `None`: leave them alone.
    fn desired(&self, input: &BuildInput, now: Timestamp) -> Option<Vec<SegmentId>> {
        let profile = Profile {
            attributes: &input.attributes,
            aggregates: &input.aggregates,
        };
        let mut ids: Vec<SegmentId> = self
            .compiled
            .evaluate(profile, now)?
            .iter()
            .filter_map(|r| self.segments.get(r).copied())
            .collect();
        if self.group.exclusive {
            ids.truncate(1);
        }
        Some(ids)
    }

    fn owns(&self, segment: SegmentId) -> bool {
        self.segments.values().any(|s| *s == segment)
    }
}

/// The adds and removes that turn `current` (the customer's memberships in the
/// builder's group) into `desired`.
fn diff(loaded: &Loaded, desired: &[SegmentId], current: &[SegmentId], change: &mut BuildChange) {
    change
        .add
        .extend(desired.iter().filter(|s| !current.contains(s)).copied());
    change.remove.extend(
        current
            .iter()
            .filter(|s| loaded.owns(**s) && !desired.contains(s))
            .copied(),
    );
}

/// What a population-scored builder (by its position) measured of a customer (by key).
type Measured<'m> = dyn FnMut(usize, i64, RfmMeasure) + Send + 'm;

/// The changes that bring each customer's memberships in the builders' groups to what
/// the builders compute. With `measured`, population-scored builders only measure
/// (a full build scores once everyone is measured); without, they score on their
/// fitted scales.
fn changes(
    loaded: &[Loaded],
    inputs: &[BuildInput],
    current: &HashMap<i64, Vec<SegmentId>>,
    now: Timestamp,
    mut measured: Option<&mut Measured<'_>>,
) -> Vec<BuildChange> {
    let mut changes = Vec::new();
    for input in inputs {
        let held = current.get(&input.key).map_or(&[][..], Vec::as_slice);
        let mut change = BuildChange {
            customer: input.key,
            add: Vec::new(),
            remove: Vec::new(),
        };
        for (i, l) in loaded.iter().enumerate() {
            match measured.as_mut() {
                Some(measure) if l.compiled.is_population_scored() => {
                    let profile = Profile {
                        attributes: &input.attributes,
                        aggregates: &input.aggregates,
                    };
                    if let Some(m) = l.compiled.rfm_measure(profile, now) {
                        measure(i, input.key, m);
                    }
                }
                _ => {
                    if let Some(desired) = l.desired(input, now) {
                        diff(l, &desired, held, &mut change);
                    }
                }
            }
        }
        if !change.add.is_empty() || !change.remove.is_empty() {
            changes.push(change);
        }
    }
    changes
}

/// Memberships by customer key.
fn by_customer(rows: Vec<(i64, SegmentId)>) -> HashMap<i64, Vec<SegmentId>> {
    let mut map: HashMap<i64, Vec<SegmentId>> = HashMap::new();
    for (customer, segment) in rows {
        map.entry(customer).or_default().push(segment);
    }
    map
}

pub struct Builds {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// Told of every customer a build finished (`segments_built`).
    automation: Arc<Automations>,
    /// Told of every customer a build changed.
    profiles: Arc<Profiles>,
    turn: Mutex<()>,
}

impl Builds {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        automation: Arc<Automations>,
        profiles: Arc<Profiles>,
    ) -> Self {
        Self {
            store,
            clock,
            automation,
            profiles,
            turn: Mutex::new(()),
        }
    }

    /// Drops the kept profiles of the customers whose memberships `changes` changed.
    fn forget(&self, changes: &[BuildChange]) {
        let changed = changes.iter().filter(|c| !c.add.is_empty() || !c.remove.is_empty());
        self.profiles.forget_keys(changed.map(|c| c.customer));
    }

    /// Tells automation that building finished for these customers (after their
    /// results were written); a failure is logged, the build stands.
    async fn tell_built(&self, customers: impl Iterator<Item = CustomerId>) {
        let events: Vec<(CustomerId, Event)> = customers.map(|c| (c, Event::SegmentsBuilt)).collect();
        if let Err(e) = self.automation.react_many(&events).await {
            tracing::error!(error = %e, customers = events.len(), "automation not told of finished builds");
        }
    }

    /// Checks and saves a builder, creating the segments it assigns in its group.
    pub async fn create(
        &self,
        name: Name,
        group: SegmentGroupId,
        definition: &Value,
        schedule: Option<String>,
        enabled: bool,
    ) -> StoreResult<SegmentBuilder> {
        let compiled = compile(definition)?;
        let group = self.writable_group(group, &compiled).await?;
        if let Some(s) = &schedule {
            Schedule::parse("schedule", s)?;
        }
        let new = NewSegmentBuilder {
            name,
            group: group.id,
            definition: definition.to_string(),
            schedule,
            enabled,
        };
        let segments = new_segments(&group, &compiled)?;
        self.store.create_builder(&new, &segments, self.clock.now()).await
    }

    /// Changes a builder; a new definition is checked against its group.
    pub async fn update(
        &self,
        id: BuilderId,
        name: Option<Name>,
        definition: Option<&Value>,
        schedule: Option<Option<String>>,
        enabled: Option<bool>,
    ) -> StoreResult<SegmentBuilder> {
        let existing = self
            .store
            .builder(id)
            .await?
            .ok_or_else(|| StoreError::not_found("segment builder", id))?;
        let compiled = definition.map(compile).transpose()?;
        let group = match &compiled {
            Some(c) => Some(self.writable_group(existing.group, c).await?),
            None => None,
        };
        if let Some(Some(s)) = &schedule {
            Schedule::parse("schedule", s)?;
        }
        let patch = SegmentBuilderPatch {
            name,
            definition: definition.map(Value::to_string),
            schedule,
            enabled,
        };
        let segments = match (&group, &compiled) {
            (Some(group), Some(compiled)) => new_segments(group, compiled)?,
            _ => Vec::new(),
        };
        self.store.update_builder(id, patch, &segments, self.clock.now()).await
    }

    /// The group a builder may write into: calculated, of the standard service, and
    /// not exclusive when the builder gives customers several segments.
    async fn writable_group(&self, id: SegmentGroupId, compiled: &CompiledBuilder) -> StoreResult<SegmentGroup> {
        let group = self
            .store
            .segment_group(id)
            .await?
            .ok_or_else(|| StoreError::dangling("group", format!("segment group {id} does not exist")))?;
        if group.service != ServiceId::standard() || !group.calculated {
            return Err(Invalid::new("group", "builders write into calculated groups of the standard service").into());
        }
        if group.exclusive && compiled.assigns_several() {
            return Err(Invalid::new(
                "definition.kind",
                "this builder gives customers several segments; its group cannot be exclusive",
            )
            .into());
        }
        Ok(group)
    }

    /// Every segment of a group, by reference.
    async fn group_segments(&self, group: SegmentGroupId) -> StoreResult<HashMap<ReferenceKey, SegmentId>> {
        let mut segments = HashMap::new();
        let filter = SegmentFilter {
            group: Some(group),
            ..Default::default()
        };
        let mut page = PageRequest::new(None, Some(cohort_core::page::MAX_LIMIT))?;
        loop {
            let found = self.store.list_segments(&filter, page).await?;
            segments.extend(found.items.into_iter().map(|s| (s.reference, s.id)));
            match found.next {
                Some(next) => page.after = Some(next),
                None => break,
            }
        }
        Ok(segments)
    }

    /// Loads the enabled builders (or just `only`, enabled or not).
    async fn load(&self, only: Option<BuilderId>) -> StoreResult<Vec<Loaded>> {
        let records = match only {
            Some(id) => vec![
                self.store
                    .builder(id)
                    .await?
                    .ok_or_else(|| StoreError::not_found("segment builder", id))?,
            ],
            None => self
                .store
                .list_builders()
                .await?
                .into_iter()
                .filter(|b| b.enabled)
                .collect(),
        };
        let mut loaded = Vec::with_capacity(records.len());
        for record in records {
            match self.load_one(record).await {
                Ok(one) => loaded.push(one),
                // One broken builder must not stop the others.
                Err(e) if only.is_none() => tracing::error!(error = %e, "segment builder skipped"),
                Err(e) => return Err(e),
            }
        }
        Ok(loaded)
    }

    async fn load_one(&self, record: SegmentBuilder) -> StoreResult<Loaded> {
        let broken = |e: String| StoreError::Backend(format!("builder {}: stored definition: {e}", record.id));
        let stored = serde_json::from_str(&record.definition).map_err(|e| broken(e.to_string()))?;
        let mut compiled = compile(&stored).map_err(|e| broken(e.to_string()))?;
        compiled.set_rfm_bounds(record.state.as_deref().and_then(decode_bounds));
        let group = self
            .store
            .segment_group(record.group)
            .await?
            .ok_or_else(|| StoreError::Backend(format!("builder {}: its group is gone", record.id)))?;
        let segments = self.group_segments(group.id).await?;
        Ok(Loaded {
            record,
            compiled,
            group,
            segments,
        })
    }

    /// Builds every enabled builder (or one) for every customer, writing only changes.
    ///
    /// Page by page, under the turn, with the clock read again for each page: a
    /// customer the worker built meanwhile from newer data is not overwritten with an
    /// older view. RFM builders measure everyone first, fit their scales, then score a
    /// second pass over fresh data.
    pub async fn run_full(&self, only: Option<BuilderId>, progress: &dyn Progress) -> StoreResult<BuildReport> {
        let mut loaded = self.load(only).await?;
        let mut report = BuildReport::default();
        if loaded.is_empty() {
            return Ok(report);
        }
        let started = self.clock.now();
        let mut measures: Vec<Vec<RfmMeasure>> = vec![Vec::new(); loaded.len()];
        progress.phase("evaluating", self.store.count_customers().await?);
        let mut customers = 0;
        let scoring = loaded.iter().any(|l| l.compiled.is_population_scored());
        let evaluated = self
            .pass(
                &loaded,
                progress,
                &mut customers,
                Some(&mut |i, _, m| measures[i].push(m)),
                !scoring,
            )
            .await?;
        report.absorb(evaluated);
        report.customers = customers;
        for (l, measured) in loaded.iter_mut().zip(&measures) {
            if l.compiled.is_population_scored() {
                l.compiled.set_rfm_bounds(Some(RfmBounds::fit(measured)));
            }
        }
        let scored: Vec<Loaded> = loaded
            .iter()
            .filter(|l| l.compiled.is_population_scored())
            .cloned()
            .collect();
        if !scored.is_empty() {
            progress.phase("scoring", report.customers);
            report.absorb(self.pass(&scored, progress, &mut 0, None, true).await?);
        }
        for l in &loaded {
            let state = l.compiled.rfm_bounds().map(|b| encode_bounds(&b));
            self.store
                .record_build(l.record.id, state.as_deref(), started, l.record.updated_at)
                .await?;
        }
        Ok(report)
    }

    /// One pass over every customer, a page at a time (see `changes` for `measured`);
    /// the last pass of a build tells automation of each page's customers.
    async fn pass(
        &self,
        loaded: &[Loaded],
        progress: &dyn Progress,
        customers: &mut u64,
        mut measured: Option<&mut Measured<'_>>,
        last: bool,
    ) -> StoreResult<BuildSummary> {
        let aggregates = union_of_aggregates(loaded);
        // RFM reads only activities: a pass of RFM builders alone skips the profiles.
        let profiles = loaded.iter().any(|l| !l.compiled.is_population_scored());
        let groups: Vec<SegmentGroupId> = loaded.iter().map(|l| l.group.id).collect();
        let mut total = BuildSummary::default();
        let mut after = 0;
        loop {
            let _turn = self.turn.lock().await;
            let now = self.clock.now();
            let inputs = self
                .store
                .build_inputs(BuildSelection::Page { after, limit: PAGE }, profiles, &aggregates, now)
                .await?;
            let (Some(first), Some(last_input)) = (inputs.first(), inputs.last()) else {
                break;
            };
            let range = KeySelection::Range {
                from: first.key,
                to: last_input.key,
            };
            let current = by_customer(self.store.group_memberships(&groups, range, now).await?);
            let changes = changes(loaded, &inputs, &current, now, measured.as_deref_mut());
            let summary = self.store.apply_build(&changes, now).await?;
            self.forget(&changes);
            total.added += summary.added;
            total.removed += summary.removed;
            *customers += inputs.len() as u64;
            progress.advance(inputs.len() as u64);
            after = last_input.key;
            if last {
                self.tell_built(inputs.into_iter().map(|i| i.id)).await;
            }
        }
        Ok(total)
    }

    /// Builds the customers waiting in the queue (at most `limit`) with every enabled
    /// builder; returns how many were built. Without an enabled builder the queue is
    /// left alone (it holds a customer once at most): the first full build covers it.
    pub async fn run_queued(&self, limit: u32) -> StoreResult<BuildReport> {
        let mut report = BuildReport::default();
        if !self.store.list_builders().await?.iter().any(|b| b.enabled) {
            return Ok(report);
        }
        let queued = self.store.queued_for_building(limit).await?;
        if queued.is_empty() {
            return Ok(report);
        }
        let loaded = self.load(None).await?;
        {
            let _turn = self.turn.lock().await;
            let now = self.clock.now();
            let aggregates = union_of_aggregates(&loaded);
            let ids: Vec<_> = queued.iter().map(|q| q.customer.clone()).collect();
            let inputs = self
                .store
                .build_inputs(BuildSelection::Ids(&ids), true, &aggregates, now)
                .await?;
            let keys: Vec<i64> = inputs.iter().map(|i| i.key).collect();
            let groups: Vec<SegmentGroupId> = loaded.iter().map(|l| l.group.id).collect();
            let current = by_customer(
                self.store
                    .group_memberships(&groups, KeySelection::Keys(&keys), now)
                    .await?,
            );
            let changes = changes(&loaded, &inputs, &current, now, None);
            report.absorb(self.store.apply_build(&changes, now).await?);
            self.forget(&changes);
        }
        self.store.built(&queued).await?;
        report.customers = queued.len() as u64;
        self.tell_built(queued.into_iter().map(|q| q.customer)).await;
        Ok(report)
    }

    /// Builders whose schedule has come since their last build (or creation, or the
    /// last attempt in `attempted`).
    pub async fn due(&self, now: Timestamp, attempted: &HashMap<BuilderId, Timestamp>) -> StoreResult<Vec<BuilderId>> {
        let mut due = Vec::new();
        for builder in self.store.list_builders().await? {
            let Some(text) = builder.schedule.as_deref().filter(|_| builder.enabled) else {
                continue;
            };
            let Ok(schedule) = Schedule::parse("schedule", text) else {
                continue;
            };
            let since = builder
                .built_at
                .unwrap_or(builder.created_at)
                .max(attempted.get(&builder.id).copied().unwrap_or(builder.created_at));
            if schedule.next_after(since).is_some_and(|at| at <= now) {
                due.push(builder.id);
            }
        }
        Ok(due)
    }
}

/// The segments a builder assigns, to create in its group where missing.
fn new_segments(group: &SegmentGroup, compiled: &CompiledBuilder) -> Result<Vec<NewSegment>, Invalid> {
    compiled
        .segments()
        .iter()
        .map(|reference| {
            Ok(NewSegment {
                group: group.id,
                name: Name::parse("name", reference.as_str())?,
                reference: reference.clone(),
                calculated: true,
            })
        })
        .collect()
}

fn compile(definition: &Value) -> Result<CompiledBuilder, Invalid> {
    parse_builder(definition).map_err(|e| {
        let field = if e.field.is_empty() {
            "definition".to_owned()
        } else {
            format!("definition.{}", e.field)
        };
        Invalid::new(field, e.reason)
    })
}

fn union_of_aggregates(loaded: &[Loaded]) -> Vec<Aggregate> {
    let mut all: Vec<Aggregate> = Vec::new();
    for a in loaded.iter().flat_map(|l| l.compiled.aggregates()) {
        if !all.contains(a) {
            all.push(a.clone());
        }
    }
    all
}

/// RFM scales as stored: thresholds per scale, `null` where nobody reached a score;
/// amounts as decimal strings.
fn encode_bounds(b: &RfmBounds) -> String {
    json!({
        "recency": b.recency.0,
        "frequency": b.frequency.0,
        "monetary": b.monetary.0.map(|t| t.map(|d| d.to_string())),
    })
    .to_string()
}

fn decode_bounds(text: &str) -> Option<RfmBounds> {
    let value: Value = serde_json::from_str(text).ok()?;
    fn four<T>(value: &Value, read: impl Fn(&Value) -> Option<T>) -> Option<[Option<T>; 4]> {
        let items = value.as_array().filter(|a| a.len() == 4)?;
        let mut out: [Option<T>; 4] = [None, None, None, None];
        for (slot, item) in out.iter_mut().zip(items) {
            *slot = if item.is_null() { None } else { Some(read(item)?) };
        }
        Some(out)
    }
    Some(RfmBounds {
        recency: Quintiles(four(&value["recency"], Value::as_i64)?),
        frequency: Quintiles(four(&value["frequency"], Value::as_u64)?),
        monetary: Quintiles(four(&value["monetary"], |v| v.as_str()?.parse().ok())?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fitted_scales_survive_storage() {
        let measure = |recency, frequency, monetary: i64| RfmMeasure {
            recency,
            frequency,
            monetary: cohort_core::Decimal::new(monetary, 2),
        };
        let bounds = RfmBounds::fit(&[measure(-5, 1, 1050), measure(-1, 3, 99), measure(-9, 2, 7)]);
        assert_eq!(decode_bounds(&encode_bounds(&bounds)), Some(bounds));
        let empty = RfmBounds::fit(&[]);
        assert_eq!(decode_bounds(&encode_bounds(&empty)), Some(empty));
        assert_eq!(decode_bounds("{}"), None);
    }
}
