//! One request of a visitor: the session kept or renewed, the page's segments tracked,
//! then every active rule in priority order — skipped if its scope says it already
//! fired, else its conditions evaluated and, when they hold, its actions applied to the
//! visitor's state (later rules see what earlier ones did). Returns what the caller
//! must do (code snippets, a redirect, segments and activities for the customer) and
//! the target groups that apply.

use std::hash::Hasher;

use cohort_core::targeting::{
    ApplyMode, LinkedSegment, RuleId, Scope, SnippetPlace, SnippetPosition, TargetingAction, VisitorState,
};
use cohort_core::{ActivityType, SegmentId, TargetGroupId};

use super::compiled::{GroupInfo, Leaf, Node, Op, Targeting};
use super::hit::Hit;
use crate::promotion::{FastHasher, FastMap};

/// A code snippet to insert into the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippet {
    pub rule: RuleId,
    pub html: String,
    pub place: SnippetPlace,
    pub position: SnippetPosition,
}

/// A redirect to perform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    pub rule: RuleId,
    /// The target with `cohort_rule=<id>` added, the loop guard.
    pub url: String,
    pub status: u16,
}

/// Why a rule did or did not fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Fired,
    /// Its conditions did not hold.
    NotMatched,
    /// Its scope allows it once per session, session and values, or visitor, and it
    /// already fired.
    AlreadyFired,
}

/// What a request decided.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    /// Rules that fired, in order.
    pub fired: Vec<RuleId>,
    pub snippets: Vec<Snippet>,
    pub redirect: Option<Redirect>,
    /// Segments to add to the logged-in customer, with how many times.
    pub customer_segments: Vec<(SegmentId, u32)>,
    /// Activities to record for the logged-in customer: type and, for target group
    /// assignments, the group and weight.
    pub activities: Vec<(ActivityType, Option<(TargetGroupId, u32)>)>,
    /// Segments tracked by this request (page tags and rules), in order.
    pub tracked: Vec<SegmentId>,
    /// Target groups assigned by rules in this request, with the weight added.
    pub assigned: Vec<(TargetGroupId, u32)>,
    /// The target groups that apply to the visitor now: active, weight at or above the
    /// threshold, highest weight first (then lowest id).
    pub target_groups: Vec<(TargetGroupId, u32)>,
    /// Whether a new session started with this request.
    pub new_session: bool,
    /// With `explain`: every active rule and what became of it.
    pub explanation: Vec<(RuleId, Outcome)>,
}

/// The facts of one request, with the patterns and request-only conditions evaluated
/// lazily, once. The visitor's state is passed to each evaluation: actions of earlier
/// rules change it.
struct Facts<'a> {
    hit: &'a Hit<'a>,
    groups: &'a FastMap<TargetGroupId, GroupInfo>,
    urls: &'a regex::RegexSet,
    referrers: &'a regex::RegexSet,
    /// The URL's and the referrer's matches, once asked for.
    matched: Matched,
    shared: &'a [Leaf],
    direct: &'a [Leaf],
    /// Per shared condition: 0 not evaluated yet, 1 false, 2 true.
    memo: Vec<u8>,
    pages_before: u32,
}

#[derive(Default)]
struct Matched {
    url: Option<regex::SetMatches>,
    referrer: Option<regex::SetMatches>,
}

impl Targeting {
    /// Decides one request and updates the visitor's state.
    pub fn decide(&self, state: &mut VisitorState, hit: &Hit<'_>, explain: bool) -> Decision {
        let mut decision = Decision {
            new_session: state.touch(hit.now, self.session_timeout_micros),
            ..Decision::default()
        };
        let pages_before = state.visited_pages;
        state.visited_pages = state.visited_pages.saturating_add(1);
        if let Some(customer) = hit.customer {
            state.customer = Some(customer.id.clone());
        }
        for segment in hit.page_segments {
            track(state, &mut decision, *segment);
        }
        let mut facts = Facts {
            hit,
            groups: &self.groups,
            urls: &self.urls,
            referrers: &self.referrers,
            matched: Matched::default(),
            shared: &self.shared,
            direct: &self.direct,
            memo: vec![0u8; self.shared.len()],
            pages_before,
        };
        for rule in &self.rules {
            let fired_before = match rule.scope {
                Scope::Hit | Scope::SessionWithVariables => false,
                Scope::Session => state.session_rules.contains(&rule.id),
                Scope::Visitor => state.visitor_rules.contains(&rule.id),
            };
            if fired_before {
                if explain {
                    decision.explanation.push((rule.id, Outcome::AlreadyFired));
                }
                continue;
            }
            let mut variables = FastHasher::default();
            let keep = rule.scope == Scope::SessionWithVariables;
            let holds = rule.conditions.is_empty()
                || facts.eval(&rule.conditions, &mut 0, state, keep.then_some(&mut variables));
            let outcome = if !holds {
                Outcome::NotMatched
            } else {
                let first = match rule.scope {
                    Scope::Hit => true,
                    Scope::Session => state.session_rules.insert(rule.id),
                    Scope::Visitor => state.visitor_rules.insert(rule.id),
                    Scope::SessionWithVariables => state.session_variables.insert((rule.id, variables.finish())),
                };
                if first {
                    decision.fired.push(rule.id);
                    for action in &rule.actions {
                        self.act(rule.id, action, state, hit, &mut decision);
                    }
                    Outcome::Fired
                } else {
                    Outcome::AlreadyFired
                }
            };
            if explain {
                decision.explanation.push((rule.id, outcome));
            }
        }
        decision.target_groups = self.applying(state);
        decision
    }

    /// The groups that apply: active, at or above their threshold, by weight.
    fn applying(&self, state: &VisitorState) -> Vec<(TargetGroupId, u32)> {
        let mut groups: Vec<(TargetGroupId, u32)> = state
            .target_groups
            .iter()
            .filter(|(id, weight)| {
                self.groups
                    .get(id)
                    .is_some_and(|g| g.active && **weight >= g.threshold.max(1))
            })
            .map(|(id, weight)| (*id, *weight))
            .collect();
        groups.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        groups
    }

    fn act(&self, rule: RuleId, action: &TargetingAction, state: &mut VisitorState, hit: &Hit<'_>, out: &mut Decision) {
        match action {
            TargetingAction::AssignTargetGroup {
                group,
                weight,
                linked_segment,
                track_activity,
                consider_consent,
            } => {
                let current = state.target_groups.entry(*group).or_insert(0);
                *current = current.saturating_add(*weight);
                out.assigned.push((*group, *weight));
                let Some(customer) = hit.customer else { return };
                if *consider_consent && !customer.profiling_consent {
                    return;
                }
                let linked = self.groups.get(group).and_then(|g| g.linked_segment);
                match (linked_segment, linked) {
                    (LinkedSegment::Assign, Some(segment)) => out.customer_segments.push((segment, 1)),
                    (LinkedSegment::AssignWithWeight, Some(segment)) => out.customer_segments.push((segment, *weight)),
                    _ => {}
                }
                if *track_activity {
                    let kind = ActivityType::parse("type", "target_group_assigned").expect("a valid type");
                    out.activities.push((kind, Some((*group, *weight))));
                }
            }
            TargetingAction::CodeSnippet { html, place, position } => out.snippets.push(Snippet {
                rule,
                html: html.clone(),
                place: *place,
                position: *position,
            }),
            TargetingAction::Redirect { url, status } => {
                let guard = format!("cohort_rule={rule}");
                let looped = query_has(hit.url, &guard);
                let same = same_page(hit.url, url);
                if out.redirect.is_none() && !looped && !same {
                    let separator = if url.contains('?') { '&' } else { '?' };
                    out.redirect = Some(Redirect {
                        rule,
                        url: format!("{url}{separator}{guard}"),
                        status: *status,
                    });
                }
            }
            TargetingAction::TrackSegment(segment) => track(state, out, *segment),
            TargetingAction::TrackActivity { kind, consider_consent } => {
                if let Some(customer) = hit.customer
                    && (!consider_consent || customer.profiling_consent)
                {
                    out.activities.push((kind.clone(), None));
                }
            }
            TargetingAction::SaveTrackedSegments {
                segments,
                min_count,
                consider_consent,
            } => {
                let Some(customer) = hit.customer else { return };
                if *consider_consent && !customer.profiling_consent {
                    return;
                }
                for (segment, count) in &state.tracked_segments {
                    if *count >= *min_count && (segments.is_empty() || segments.contains(segment)) {
                        out.customer_segments.push((*segment, 1));
                    }
                }
            }
            TargetingAction::ApplyTargetGroupsFromSegments { groups, mode } => {
                let Some(customer) = hit.customer else { return };
                let considered: Vec<(TargetGroupId, SegmentId)> = self
                    .groups
                    .iter()
                    .filter(|(id, _)| groups.is_empty() || groups.contains(id))
                    .filter_map(|(id, g)| g.linked_segment.map(|s| (*id, s)))
                    .collect();
                for (group, segment) in considered {
                    let counter = customer.segments.get(&segment).copied();
                    match (mode, counter) {
                        (ApplyMode::CleanupAndOverwrite, None) | (ApplyMode::CleanupAndMerge, None) => {
                            state.target_groups.remove(&group);
                        }
                        (ApplyMode::OnlyMerge, None) => {}
                        (ApplyMode::CleanupAndOverwrite, Some(counter)) => {
                            state.target_groups.insert(group, counter.max(1));
                        }
                        (ApplyMode::CleanupAndMerge | ApplyMode::OnlyMerge, Some(counter)) => {
                            let current = state.target_groups.entry(group).or_insert(0);
                            *current = (*current).max(counter.max(1));
                        }
                    }
                }
            }
        }
    }
}

fn track(state: &mut VisitorState, out: &mut Decision, segment: SegmentId) {
    let count = state.tracked_segments.entry(segment).or_insert(0);
    *count = count.saturating_add(1);
    out.tracked.push(segment);
}

/// Whether a redirect target (absolute, or a path) is the page requested.
fn same_page(requested: &str, target: &str) -> bool {
    let page = requested.split(['?', '#']).next().unwrap_or("");
    let path = page
        .find("://")
        .and_then(|i| page[i + 3..].find('/').map(|j| &page[i + 3 + j..]))
        .unwrap_or(page);
    let target = target.split(['?', '#']).next().unwrap_or("");
    target == page || target == path
}

/// Whether the URL's query has exactly this `name=value` pair.
fn query_has(url: &str, pair: &str) -> bool {
    url.split_once('?')
        .is_some_and(|(_, query)| query.split('#').next().unwrap_or("").split('&').any(|p| p == pair))
}

impl Facts<'_> {
    /// Evaluates the subtree starting at `ops[*at]` and moves `at` past it.
    fn eval(
        &mut self,
        ops: &[Op],
        at: &mut usize,
        state: &VisitorState,
        mut variables: Option<&mut FastHasher>,
    ) -> bool {
        let op = &ops[*at];
        *at += 1;
        match op {
            Op::Leaf(node) => self.node(*node, state, variables),
            Op::Not => !self.eval(ops, at, state, variables),
            Op::All { span } | Op::Any { span } => {
                let end = *at - 1 + *span as usize;
                let all = matches!(op, Op::All { .. });
                while *at < end {
                    if self.eval(ops, at, state, variables.as_deref_mut()) != all {
                        *at = end;
                        return !all;
                    }
                }
                all
            }
        }
    }

    fn url(&mut self, index: usize) -> bool {
        let (set, url) = (self.urls, self.hit.url);
        self.matched.url.get_or_insert_with(|| set.matches(url)).matched(index)
    }

    fn referrer(&mut self, index: usize) -> bool {
        let (set, referrer) = (self.referrers, self.hit.referrer.unwrap_or("direct"));
        self.matched
            .referrer
            .get_or_insert_with(|| set.matches(referrer))
            .matched(index)
    }

    /// Whether the node holds; its matched value goes into `variables` when the rule
    /// keeps them (`session_with_variables`).
    fn node(&mut self, node: Node, state: &VisitorState, variables: Option<&mut FastHasher>) -> bool {
        let (shared, direct) = (self.shared, self.direct);
        let leaf = match node {
            Node::Memo(i) => &shared[i as usize],
            Node::Direct(i) => &direct[i as usize],
        };
        if let Some(v) = variables {
            self.write_variable(leaf, v);
        }
        match node {
            Node::Memo(i) => match self.memo[i as usize] {
                0 => {
                    let holds = self.leaf(leaf, state);
                    self.memo[i as usize] = 1 + u8::from(holds);
                    holds
                }
                known => known == 2,
            },
            Node::Direct(_) => self.leaf(leaf, state),
        }
    }

    /// The value a leaf matched on, for `session_with_variables` rules.
    fn write_variable(&self, leaf: &Leaf, v: &mut FastHasher) {
        match leaf {
            Leaf::Url(_) => v.write(self.hit.url.as_bytes()),
            Leaf::Referrer(_) => v.write(self.hit.referrer.unwrap_or("direct").as_bytes()),
            Leaf::Country(code) => v.write(code.as_bytes()),
            Leaf::CustomerSegmentsChanged => {
                if let Some(c) = self.hit.customer {
                    for (segment, counter) in c.segments {
                        v.write_i64(segment.get());
                        v.write_u32(*counter);
                    }
                }
            }
            _ => {}
        }
    }

    /// Whether the leaf holds.
    fn leaf(&mut self, leaf: &Leaf, state: &VisitorState) -> bool {
        let hit = self.hit;
        let device = hit.device;
        match leaf {
            Leaf::Url(p) => self.url(*p),
            Leaf::Referrer(p) => self.referrer(*p),
            Leaf::SearchEngine(engine) => search_engine(hit.referrer).is_some_and(|found| match engine {
                cohort_core::targeting::SearchEngine::Any => true,
                named => *named == found,
            }),
            Leaf::Browser(name) => !device.bot && device.browser.as_deref() == Some(name.as_str()),
            Leaf::OperatingSystem(name) => !device.bot && device.os.as_deref() == Some(name.as_str()),
            Leaf::Platform(platform) => !device.bot && device.platform == *platform,
            Leaf::Country(code) => hit.location.country.as_deref() == Some(code.as_str()),
            Leaf::GeoPoint {
                latitude,
                longitude,
                radius_km,
            } => hit
                .location
                .coordinates
                .is_some_and(|(lat, lon)| haversine_km(lat, lon, *latitude, *longitude) <= *radius_km),
            Leaf::Language(language) => hit.languages.iter().any(|l| {
                l == language || (l.starts_with(language.as_str()) && l.as_bytes().get(language.len()) == Some(&b'-'))
            }),
            Leaf::VisitedPagesBefore(n) => self.pages_before >= *n,
            Leaf::TimeOnSite(micros) => {
                hit.now
                    .unix_micros()
                    .saturating_sub(state.session_started.unix_micros())
                    >= *micros
            }
            Leaf::TargetGroup(group) => {
                let weight = state.target_groups.get(group).copied().unwrap_or(0);
                self.groups
                    .get(group)
                    .is_some_and(|g| g.active && weight >= g.threshold.max(1))
            }
            Leaf::HasSegment {
                segment,
                tracked,
                customer,
                test,
            } => {
                let mut count = 0u32;
                if *tracked {
                    count = count.saturating_add(state.tracked_segments.get(segment).copied().unwrap_or(0));
                }
                if *customer && let Some(c) = hit.customer {
                    count = count.saturating_add(c.segments.get(segment).copied().unwrap_or(0));
                }
                test.holds(count)
            }
            Leaf::CustomerLoggedIn => hit.customer.is_some(),
            Leaf::CustomerSegmentsChanged => hit.customer.is_some(),
        }
    }
}

/// The search engine a referrer's host belongs to.
fn search_engine(referrer: Option<&str>) -> Option<cohort_core::targeting::SearchEngine> {
    let host = referrer?.split("://").nth(1)?.split(['/', '?', '#', ':']).next()?;
    let host = host.to_ascii_lowercase();
    cohort_core::targeting::SearchEngine::NAMED.into_iter().find(|engine| {
        let mark = engine.host_mark();
        host.starts_with(mark) || host.contains(&format!(".{mark}"))
    })
}

/// Great-circle distance in km.
fn haversine_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    const EARTH_RADIUS_KM: f64 = 6_371.0;
    let (phi1, phi2) = (lat1.to_radians(), lat2.to_radians());
    let (dphi, dlambda) = ((lat2 - lat1).to_radians(), (lon2 - lon1).to_radians());
    let a = (dphi / 2.0).sin().powi(2) + phi1.cos() * phi2.cos() * (dlambda / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_and_referrers() {
        // Paris – London is about 344 km.
        let d = haversine_km(48.8566, 2.3522, 51.5074, -0.1278);
        assert!((d - 343.5).abs() < 2.0, "{d}");
        use cohort_core::targeting::SearchEngine as E;
        assert_eq!(
            search_engine(Some("https://www.google.fr/search?q=ski")),
            Some(E::Google)
        );
        assert_eq!(search_engine(Some("https://duckduckgo.com/")), Some(E::DuckDuckGo));
        assert_eq!(search_engine(Some("https://notgoogle.example/")), None);
        assert_eq!(search_engine(None), None);
        assert!(query_has("/a?x=1&cohort_rule=3#top", "cohort_rule=3"));
        assert!(!query_has("/a?cohort_rule=33", "cohort_rule=3"));
        assert!(same_page("https://shop.example/ski?x=1", "/ski"));
        assert!(same_page("https://shop.example/ski", "https://shop.example/ski?from=a"));
        assert!(!same_page("https://shop.example/x/ski", "/ski"));
        assert!(!same_page("https://shop.example/ski", "/skis"));
    }
}
