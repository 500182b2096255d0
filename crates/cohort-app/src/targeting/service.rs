//! Targeting use cases: saving rules (checked, compiled, their target groups and
//! segments existing), the compiled rules kept current, and deciding a visitor's
//! request — device and location looked up, the customer's segments asked from the
//! provider, the visitor's state changed in memory, and what the decision gives the
//! customer (segments, activities) written before answering.
//!
//! The rules are compiled when a rule changes through this process, and otherwise when
//! the store's targeting version moved (rules or target groups changed anywhere; looked
//! at most once a second).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};

use cohort_core::target_group::TargetGroup;
use cohort_core::targeting::{RuleId, TargetingAction, TargetingCondition, TargetingRule, VisitorState};
use cohort_core::{
    Activity, ApplicationId, AttributeName, AttributeValue, Attributes, CustomerId, Invalid, MembershipSource, Name,
    NameFilter, Origin, PageRequest, SegmentAdd, SegmentChange, SegmentId, TargetGroupId, Timestamp, VisitorId,
};
use cohort_engine::targeting::{CustomerView, Decision, GroupInfo, Hit, Targeting, choose_variant};
use cohort_store::{Store, StoreError, StoreResult, StoredRule};
use serde_json::Value;

use super::devices::Devices;
use super::geo::Geo;
use super::parse_rule;
use super::tokens::CustomerTokens;
use super::visitors::{Visitors, new_visitor_id};
use crate::Clock;
use crate::activities::new_activity_id;
use crate::provider::SegmentProvider;

/// An application's allowed browser origins.
pub type Origins = Arc<Vec<Origin>>;

/// Fields of a rule with the target groups and segments they name.
type References = (Vec<(String, TargetGroupId)>, Vec<(String, SegmentId)>);

/// How often visitors past their retention are deleted: hourly.
const FORGET_EVERY_MICROS: i64 = 3_600 * 1_000_000;

/// How long a look at the store's targeting version is trusted.
const FRESH_MICROS: i64 = 1_000_000;

/// The rules of one targeting version, compiled, with the target groups by id and name.
pub struct Compiled {
    pub version: i64,
    pub targeting: Targeting,
    pub groups: HashMap<TargetGroupId, TargetGroup>,
    /// Target group names are not unique: a slot's variant named so stands for each.
    by_name: HashMap<String, Vec<TargetGroupId>>,
    pub rule_names: HashMap<RuleId, Name>,
}

/// A rule as stored, with its parsed definition.
#[derive(Debug, Clone)]
pub struct RuleRecord {
    pub stored: StoredRule,
    pub rule: TargetingRule,
}

/// A visitor's request, as the context endpoint received it.
#[derive(Debug, Clone, Default)]
pub struct ContextRequest {
    /// `None`: a new visitor, given an id.
    pub visitor: Option<VisitorId>,
    /// The logged-in customer; one cohort does not know counts as anonymous.
    pub customer: Option<CustomerId>,
    pub url: String,
    pub referrer: Option<String>,
    pub user_agent: Option<String>,
    pub ip: Option<IpAddr>,
    /// Preferred first, lower case.
    pub languages: Vec<String>,
    /// Segments the page is tagged with.
    pub page_segments: Vec<SegmentId>,
    /// Content slots with the target groups (names or ids) they have variants for.
    pub slots: Vec<(String, Vec<String>)>,
    /// `false`: the visitor declined tracking — decided on a fresh state that is
    /// neither read nor kept, and no visitor id is given.
    pub tracking: bool,
    pub explain: bool,
}

/// A segment of the logged-in customer, as targeting saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerSegment {
    pub id: SegmentId,
    pub name: String,
    pub counter: u32,
}

/// The answer to a request.
pub struct ContextAnswer {
    pub visitor: Option<VisitorId>,
    pub new_visitor: bool,
    pub decision: Decision,
    /// The applying target groups with their names, highest weight first.
    pub target_groups: Vec<(TargetGroupId, String, u32)>,
    pub customer_segments: Vec<CustomerSegment>,
    /// The visitor's tracked segment counts.
    pub tracked: BTreeMap<SegmentId, u32>,
    /// Per slot, the variant chosen (`None`: the default).
    pub variants: Vec<(String, Option<String>)>,
    /// Whether the request asked why each rule fired or not.
    pub explained: bool,
    pub compiled: Arc<Compiled>,
}

/// How targeting runs in this process.
pub struct TargetingSettings {
    /// A MaxMind database for country and geopoint conditions.
    pub geo: Option<Geo>,
    /// Idle time that ends a visitor's session.
    pub session_timeout_micros: i64,
    /// The secret customer tokens are signed with (shared by every server); `None`: a
    /// random one per process.
    pub token_secret: Option<String>,
    /// Visitors not seen for this long are deleted.
    pub visitor_retention_micros: i64,
}

impl Default for TargetingSettings {
    fn default() -> Self {
        Self {
            geo: None,
            session_timeout_micros: cohort_engine::targeting::SESSION_TIMEOUT_MICROS,
            token_secret: None,
            visitor_retention_micros: 395 * 24 * 3_600 * 1_000_000,
        }
    }
}

pub struct TargetingService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    segments: Arc<SegmentProvider>,
    /// Hears of segments tracked and target groups assigned for logged-in customers.
    automation: Arc<crate::automation::Automations>,
    pub visitors: Visitors,
    devices: Devices,
    geo: Option<Geo>,
    pub tokens: CustomerTokens,
    session_timeout_micros: i64,
    visitor_retention_micros: i64,
    compiled: RwLock<Option<Arc<Compiled>>>,
    checked_at: Mutex<Timestamp>,
    reload: tokio::sync::Mutex<()>,
    /// Each application's allowed browser origins (`None`: no such application), with
    /// when they were read.
    origins: Mutex<HashMap<ApplicationId, (Timestamp, Option<Origins>)>>,
}

impl TargetingService {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        segments: Arc<SegmentProvider>,
        automation: Arc<crate::automation::Automations>,
        settings: TargetingSettings,
    ) -> Self {
        Self {
            automation,
            visitors: Visitors::new(store.clone(), settings.session_timeout_micros),
            store,
            clock,
            segments,
            devices: Devices::new(),
            geo: settings.geo,
            tokens: CustomerTokens::new(settings.token_secret.as_deref()),
            session_timeout_micros: settings.session_timeout_micros,
            visitor_retention_micros: settings.visitor_retention_micros,
            compiled: RwLock::new(None),
            checked_at: Mutex::new(Timestamp::from_unix_micros(i64::MIN)),
            reload: tokio::sync::Mutex::new(()),
            origins: Mutex::new(HashMap::new()),
        }
    }

    /// The browser origins allowed to call the application's public routes (`None`: no
    /// such application). Read again after a second, or at once after
    /// `applications_changed`.
    pub async fn allowed_origins(&self, app: &ApplicationId) -> StoreResult<Option<Origins>> {
        let now = self.clock.now();
        if let Some((at, origins)) = self.origins.lock().expect("origins lock").get(app)
            && now.unix_micros().saturating_sub(at.unix_micros()) < FRESH_MICROS
        {
            return Ok(origins.clone());
        }
        let origins = self.store.application(app).await?.map(|a| Arc::new(a.allowed_origins));
        // Only applications that exist are kept (a stranger's made-up ids are not).
        if let Some(found) = &origins {
            self.origins
                .lock()
                .expect("origins lock")
                .insert(app.clone(), (now, Some(found.clone())));
        }
        Ok(origins)
    }

    /// Forgets the cached origins (an application changed through this process).
    pub fn applications_changed(&self) {
        self.origins.lock().expect("origins lock").clear();
    }

    /// Saves changed visitors every `every` until `stop` resolves, then once more.
    pub async fn run_until_stopped(self: Arc<Self>, every: std::time::Duration, stop: impl Future<Output = ()>) {
        let mut stop = std::pin::pin!(stop);
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut forgotten_at = Timestamp::from_unix_micros(i64::MIN);
        loop {
            tokio::select! {
                _ = ticks.tick() => {
                    let now = self.clock.now();
                    if let Err(e) = self.visitors.flush(now).await {
                        tracing::warn!(error = %e, "visitors not saved yet");
                    }
                    if now.unix_micros().saturating_sub(forgotten_at.unix_micros()) >= FORGET_EVERY_MICROS {
                        forgotten_at = now;
                        self.forget_old_visitors().await;
                    }
                }
                () = &mut stop => break,
            }
        }
        self.flush_visitors().await;
    }

    /// Deletes the visitors not seen within the retention time.
    pub async fn forget_old_visitors(&self) {
        let before = Timestamp::from_unix_micros(
            self.clock
                .now()
                .unix_micros()
                .saturating_sub(self.visitor_retention_micros),
        );
        match self.store.forget_visitors(before).await {
            Ok(0) => {}
            Ok(forgotten) => tracing::info!(forgotten, "visitors past their retention deleted"),
            Err(e) => tracing::warn!(error = %e, "old visitors not deleted"),
        }
    }

    /// Saves every changed visitor (on shutdown): tries for up to about 10 s, then
    /// logs what could not be saved.
    pub async fn flush_visitors(&self) {
        let mut wait = std::time::Duration::from_millis(100);
        for attempt in 1..=7 {
            match self.visitors.flush(self.clock.now()).await {
                Ok(saved) => {
                    tracing::debug!(saved, "visitors saved");
                    return;
                }
                Err(e) if attempt < 7 => {
                    tracing::warn!(error = %e, attempt, "visitors not saved yet, trying again");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                Err(e) => {
                    tracing::error!(error = %e, unsaved = self.visitors.unsaved(), "visitors could not be saved");
                }
            }
        }
    }

    /// The current compiled rules.
    pub async fn current(&self) -> StoreResult<Arc<Compiled>> {
        let now = self.clock.now();
        let cached = self.compiled.read().expect("targeting lock").clone();
        if let Some(compiled) = &cached
            && now
                .unix_micros()
                .saturating_sub(self.checked_at.lock().expect("lock").unix_micros())
                < FRESH_MICROS
        {
            return Ok(compiled.clone());
        }
        let version = self.store.targeting_version().await?;
        *self.checked_at.lock().expect("lock") = now;
        match cached {
            Some(compiled) if compiled.version == version => Ok(compiled),
            _ => self.reload().await,
        }
    }

    /// Compiles the rules from the store (after a change through this process). A
    /// stored rule that no longer compiles is skipped and logged.
    pub async fn reload(&self) -> StoreResult<Arc<Compiled>> {
        let _one = self.reload.lock().await;
        let version = self.store.targeting_version().await?;
        if let Some(compiled) = self.compiled.read().expect("targeting lock").clone()
            && compiled.version == version
        {
            return Ok(compiled);
        }
        let groups = self.all_target_groups().await?;
        let infos: HashMap<TargetGroupId, GroupInfo> = groups
            .values()
            .map(|g| {
                let info = GroupInfo {
                    threshold: g.threshold.get(),
                    active: g.active,
                    linked_segment: g.segment,
                };
                (g.id, info)
            })
            .collect();
        let mut rules = Vec::new();
        for stored in self.store.list_rules().await? {
            match self.parsed(&stored) {
                Ok(rule) => match Targeting::compile(vec![rule.clone()], HashMap::new(), self.session_timeout_micros) {
                    Ok(_) => rules.push(rule),
                    Err(e) => tracing::warn!(rule = %stored.id, error = %e, "stored targeting rule skipped"),
                },
                Err(e) => tracing::warn!(rule = %stored.id, error = %e, "stored targeting rule skipped"),
            }
        }
        let rule_names = rules.iter().map(|r| (r.id, r.name.clone())).collect();
        let targeting = match Targeting::compile(rules, infos, self.session_timeout_micros) {
            Ok(targeting) => targeting,
            Err(e) => {
                // Rules are checked together when saved, so only a change outside this
                // process gets here: keep deciding with the last rules that compiled.
                tracing::error!(error = %e, version, "stored targeting rules do not compile together");
                let last = self.compiled.read().expect("targeting lock").clone();
                return last.ok_or_else(|| StoreError::Backend(format!("targeting rules do not compile: {e}")));
            }
        };
        let mut by_name: HashMap<String, Vec<TargetGroupId>> = HashMap::new();
        for group in groups.values() {
            by_name
                .entry(group.name.as_str().to_owned())
                .or_default()
                .push(group.id);
        }
        for ids in by_name.values_mut() {
            ids.sort();
        }
        let compiled = Arc::new(Compiled {
            version,
            targeting,
            groups,
            by_name,
            rule_names,
        });
        *self.compiled.write().expect("targeting lock") = Some(compiled.clone());
        *self.checked_at.lock().expect("lock") = self.clock.now();
        Ok(compiled)
    }

    async fn all_target_groups(&self) -> StoreResult<HashMap<TargetGroupId, TargetGroup>> {
        let mut groups = HashMap::new();
        let mut page = PageRequest::new(None, Some(cohort_core::page::MAX_LIMIT))?;
        loop {
            let found = self.store.list_target_groups(&NameFilter::default(), page).await?;
            groups.extend(found.items.into_iter().map(|g| (g.id, g)));
            match found.next {
                Some(next) => page.after = Some(next),
                None => return Ok(groups),
            }
        }
    }

    fn parsed(&self, stored: &StoredRule) -> Result<TargetingRule, Invalid> {
        let value: Value = serde_json::from_str(&stored.definition)
            .map_err(|e| Invalid::new("", format!("stored definition is not JSON: {e}")))?;
        parse_rule(stored.id, &value)
    }

    /// Checks a definition: every field, its patterns compile, and the target groups
    /// and segments it names exist.
    async fn check(&self, id: RuleId, value: &Value) -> StoreResult<TargetingRule> {
        let rule = parse_rule(id, value)?;
        Targeting::compile(vec![rule.clone()], HashMap::new(), self.session_timeout_micros).map_err(|e| {
            let field = e.field.strip_prefix("[0].").unwrap_or(&e.field).to_owned();
            Invalid::new(field, e.reason)
        })?;
        // And together with the other rules (all patterns share one automaton).
        let mut all: Vec<TargetingRule> = Vec::new();
        for stored in self.store.list_rules().await? {
            if stored.id != id
                && let Ok(other) = self.parsed(&stored)
            {
                all.push(other);
            }
        }
        all.push(rule.clone());
        Targeting::compile(all, HashMap::new(), self.session_timeout_micros)
            .map_err(|e| Invalid::new("conditions", format!("with the other rules: {}", e.reason)))?;
        let (groups, segments) = references(&rule);
        for (field, group) in groups {
            if self.store.target_group(group).await?.is_none() {
                return Err(StoreError::dangling(
                    &field,
                    format!("target group {group} does not exist"),
                ));
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

    pub async fn create_rule(&self, value: &Value) -> StoreResult<RuleRecord> {
        let rule = self.check(RuleId::new(i64::MAX), value).await?;
        let stored = self.store.create_rule(&value.to_string(), self.clock.now()).await?;
        self.reload().await?;
        Ok(RuleRecord {
            rule: TargetingRule { id: stored.id, ..rule },
            stored,
        })
    }

    pub async fn replace_rule(&self, id: RuleId, value: &Value) -> StoreResult<RuleRecord> {
        let rule = self.check(id, value).await?;
        let stored = self
            .store
            .replace_rule(id, &value.to_string(), self.clock.now())
            .await?;
        self.reload().await?;
        Ok(RuleRecord { stored, rule })
    }

    pub async fn delete_rule(&self, id: RuleId) -> StoreResult<()> {
        self.store.delete_rule(id).await?;
        self.reload().await?;
        Ok(())
    }

    pub async fn rule(&self, id: RuleId) -> StoreResult<Option<RuleRecord>> {
        let Some(stored) = self.store.rule(id).await? else {
            return Ok(None);
        };
        let rule = self.parsed(&stored)?;
        Ok(Some(RuleRecord { stored, rule }))
    }

    /// Every rule, by id (one whose stored definition no longer parses is left out).
    pub async fn rules(&self) -> StoreResult<Vec<RuleRecord>> {
        Ok(self
            .store
            .list_rules()
            .await?
            .into_iter()
            .filter_map(|stored| self.parsed(&stored).ok().map(|rule| RuleRecord { stored, rule }))
            .collect())
    }

    /// Decides a visitor's request in an application.
    pub async fn decide(&self, app: &ApplicationId, request: ContextRequest) -> StoreResult<ContextAnswer> {
        let now = self.clock.now();
        let compiled = self.current().await?;
        let device = self.devices.parse(request.user_agent.as_deref().unwrap_or(""));
        let location = match (&self.geo, request.ip) {
            (Some(geo), Some(ip)) => geo.locate(ip),
            _ => Default::default(),
        };
        let profile = match &request.customer {
            Some(customer) => self.profile(app, customer).await?,
            None => None,
        };
        let held: BTreeMap<SegmentId, u32> = profile
            .as_ref()
            .map(|p| p.segments.iter().map(|s| (s.id, s.counter)).collect())
            .unwrap_or_default();
        let customer_view = match (&request.customer, &profile) {
            (Some(id), Some(p)) => Some(CustomerView {
                id,
                segments: &held,
                profiling_consent: p.profiling_consent,
            }),
            _ => None,
        };
        let hit = Hit {
            now,
            url: &request.url,
            referrer: request.referrer.as_deref().filter(|r| !r.is_empty()),
            device: &device,
            location: &location,
            languages: &request.languages,
            customer: customer_view,
            page_segments: &request.page_segments,
        };
        let decide = |state: &mut VisitorState| {
            let decision = compiled.targeting.decide(state, &hit, request.explain);
            (decision, state.tracked_segments.clone())
        };
        let (visitor, new_visitor, (mut decision, tracked)) = if request.tracking {
            let (id, fresh) = match request.visitor {
                Some(id) => (id, false),
                None => (new_visitor_id(), true),
            };
            let (answer, new) = self
                .visitors
                .change(&id, fresh, now, |state, new| (decide(state), new))
                .await?;
            (Some(id), fresh || new, answer)
        } else {
            (None, false, decide(&mut VisitorState::new(now)))
        };
        // A new visitor's first request starts its first session.
        decision.new_session |= new_visitor;
        // A visitor who declined tracking gives the customer nothing either.
        if request.tracking
            && let Some(customer) = profile.as_ref().and(request.customer.as_ref())
        {
            self.give_customer(customer, &decision, now).await?;
            self.tell_automation(customer, &decision, &tracked).await;
        }
        let target_groups = decision
            .target_groups
            .iter()
            .map(|(id, weight)| {
                let name = compiled
                    .groups
                    .get(id)
                    .map(|g| g.name.as_str().to_owned())
                    .unwrap_or_default();
                (*id, name, *weight)
            })
            .collect();
        let variants = request
            .slots
            .iter()
            .map(|(slot, names)| {
                let options: Vec<(TargetGroupId, &String)> = names
                    .iter()
                    .flat_map(|n| {
                        let ids = match compiled.by_name.get(n) {
                            Some(ids) => ids.clone(),
                            None => n.parse().ok().map(TargetGroupId::new).into_iter().collect(),
                        };
                        ids.into_iter().map(move |id| (id, n))
                    })
                    .collect();
                (
                    slot.clone(),
                    choose_variant(&decision.target_groups, &options).map(|n| (*n).clone()),
                )
            })
            .collect();
        Ok(ContextAnswer {
            visitor,
            new_visitor,
            target_groups,
            customer_segments: profile.map(|p| p.segments).unwrap_or_default(),
            tracked,
            variants,
            decision,
            explained: request.explain,
            compiled,
        })
    }

    /// The customer's segments in the application that targeting can see (stored
    /// ones, with their counters) and its consent; `None` for a customer cohort does
    /// not know.
    async fn profile(&self, app: &ApplicationId, customer: &CustomerId) -> StoreResult<Option<Profile>> {
        let (provided, profile) = self.segments.customer_segments_and_profile(app, customer).await?;
        let Some(profile) = profile else { return Ok(None) };
        let segments = provided
            .segments
            .into_iter()
            .filter_map(|s| {
                let m = s.membership?;
                Some(CustomerSegment {
                    id: m.segment,
                    name: s.name,
                    counter: m.application_counter,
                })
            })
            .collect();
        Ok(Some(Profile {
            segments,
            profiling_consent: profile.profile.facts.profiling_consent,
        }))
    }

    /// Automation's targeting triggers, for a logged-in customer: each segment the
    /// request tracked (with the visitor's count) and each target group a rule assigned
    /// (with the visitor's weight).
    async fn tell_automation(&self, customer: &CustomerId, decision: &Decision, tracked: &BTreeMap<SegmentId, u32>) {
        use cohort_core::automation::{AssignedBy, Event};
        for segment in &decision.tracked {
            let count = tracked.get(segment).copied().unwrap_or(0);
            let event = Event::SegmentTracked {
                segment: *segment,
                count,
            };
            self.automation.react_logged_with(&event, customer, Some(tracked)).await;
        }
        for (group, _) in &decision.assigned {
            let weight = decision
                .target_groups
                .iter()
                .find(|(g, _)| g == group)
                .map_or(0, |(_, w)| *w);
            let event = Event::TargetGroupAssigned {
                group: *group,
                weight,
                by: AssignedBy::Rule,
            };
            self.automation.react_logged_with(&event, customer, Some(tracked)).await;
        }
    }

    /// Writes what the decision gives the logged-in customer: linked segments (added
    /// as often as the decision says, as `tracked`) and activities.
    async fn give_customer(&self, customer: &CustomerId, decision: &Decision, now: Timestamp) -> StoreResult<()> {
        let mut times: BTreeMap<SegmentId, u32> = BTreeMap::new();
        for (segment, n) in &decision.customer_segments {
            *times.entry(*segment).or_insert(0) += n;
        }
        let rounds = times.values().copied().max().unwrap_or(0).min(MAX_COUNTER_STEPS);
        let mut round = 0;
        let mut pruned = false;
        while round < rounds {
            let add: Vec<SegmentAdd> = times
                .iter()
                .filter(|(_, n)| **n > round)
                .map(|(segment, _)| SegmentAdd {
                    segment: *segment,
                    source: MembershipSource::Tracked,
                    expires_at: None,
                })
                .collect();
            if add.is_empty() {
                break;
            }
            let change = SegmentChange {
                add,
                remove: Vec::new(),
            };
            match self.store.change_segments(customer, &change, now).await {
                Ok(_) => {
                    self.segments.profiles.forget(customer);
                    round += 1;
                }
                // A segment that no longer exists (deleted, or a page's made-up tag):
                // leave it out and give the others.
                Err(StoreError::DanglingReference { .. }) if !pruned => {
                    pruned = true;
                    let mut known = BTreeMap::new();
                    for (segment, n) in times {
                        if self.store.segment(segment).await?.is_some() {
                            known.insert(segment, n);
                        }
                    }
                    times = known;
                }
                // The customer was deleted meanwhile.
                Err(StoreError::NotFound { .. } | StoreError::DanglingReference { .. }) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        if decision.activities.is_empty() {
            return Ok(());
        }
        let activities: Vec<Activity> = decision
            .activities
            .iter()
            .map(|(kind, assigned)| {
                let mut attributes = Attributes::default();
                if let Some((group, weight)) = assigned {
                    attributes.insert(name("target_group"), AttributeValue::Number(group.get() as f64));
                    attributes.insert(name("weight"), AttributeValue::Number(f64::from(*weight)));
                }
                Activity::new(new_activity_id(), customer.clone(), kind.clone(), now, attributes, None)
            })
            .collect::<Result<_, _>>()?;
        match self
            .store
            .record_activities(&activities, now, cohort_store::Reacting::Reacts)
            .await
        {
            Ok(_) => {
                // Judged by the worker: the visitor's request does not wait for it.
                self.automation.wake();
                Ok(())
            }
            Err(StoreError::DanglingReference { .. } | StoreError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// At most this many counter steps per segment and request (`assign_with_weight` of a
/// large weight).
const MAX_COUNTER_STEPS: u32 = 20;

struct Profile {
    segments: Vec<CustomerSegment>,
    profiling_consent: bool,
}

fn name(text: &str) -> AttributeName {
    AttributeName::parse("attribute", text).expect("a valid attribute name")
}

/// The target groups and segments a rule names, with the fields that name them.
fn references(rule: &TargetingRule) -> References {
    let (mut groups, mut segments) = (Vec::new(), Vec::new());
    for leaf in rule.conditions.leaves() {
        match leaf {
            TargetingCondition::TargetGroup(g) => groups.push(("conditions".to_owned(), *g)),
            TargetingCondition::HasSegment { segment, .. } => segments.push(("conditions".to_owned(), *segment)),
            _ => {}
        }
    }
    for (i, action) in rule.actions.iter().enumerate() {
        let field = format!("actions[{i}]");
        match action {
            TargetingAction::AssignTargetGroup { group, .. } => groups.push((field, *group)),
            TargetingAction::TrackSegment(segment) => segments.push((field, *segment)),
            TargetingAction::ApplyTargetGroupsFromSegments { groups: named, .. } => {
                groups.extend(named.iter().map(|g| (field.clone(), *g)));
            }
            TargetingAction::SaveTrackedSegments { segments: named, .. } => {
                segments.extend(named.iter().map(|s| (field.clone(), *s)));
            }
            _ => {}
        }
    }
    (groups, segments)
}
