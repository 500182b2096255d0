//! Targeting rules compiled once when saved: regular expressions built, identical
//! patterns shared (each evaluated at most once per request), active rules sorted by
//! priority, target group thresholds and links looked up by id.

use std::collections::HashMap;

use cohort_core::targeting::{SearchEngine, TargetingAction, TargetingCondition, TargetingRule};
use cohort_core::tree::Tree;
use cohort_core::{Invalid, SegmentId, TargetGroupId};
use regex::Regex;

use cohort_core::targeting::{CountTest, Platform, RuleId, Scope};

/// A target group as targeting needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupInfo {
    /// The weight at which it applies (at least 1).
    pub threshold: u32,
    pub active: bool,
    /// The segment linked 1:1 with it (`use_as_target_group`).
    pub linked_segment: Option<SegmentId>,
}

/// A condition with its pattern compiled.
#[derive(Debug, Clone)]
pub(crate) enum Leaf {
    /// Index into the shared patterns.
    Url(usize),
    Referrer(usize),
    SearchEngine(SearchEngine),
    Browser(String),
    OperatingSystem(String),
    Platform(Platform),
    Country(String),
    GeoPoint {
        latitude: f64,
        longitude: f64,
        radius_km: f64,
    },
    Language(String),
    VisitedPagesBefore(u32),
    TimeOnSite(i64),
    TargetGroup(TargetGroupId),
    HasSegment {
        segment: SegmentId,
        tracked: bool,
        customer: bool,
        test: CountTest,
    },
    CustomerLoggedIn,
    CustomerSegmentsChanged,
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledRule {
    pub id: RuleId,
    pub scope: Scope,
    pub conditions: Tree<Leaf>,
    pub actions: Vec<TargetingAction>,
}

/// Every active rule, compiled, with the target groups they may assign.
#[derive(Debug, Clone)]
pub struct Targeting {
    pub(crate) rules: Vec<CompiledRule>,
    pub(crate) patterns: Vec<Regex>,
    pub(crate) groups: HashMap<TargetGroupId, GroupInfo>,
    /// Idle time after which a visitor's session ends.
    pub(crate) session_timeout_micros: i64,
}

/// The default idle time that ends a session: 30 minutes.
pub const SESSION_TIMEOUT_MICROS: i64 = 30 * 60 * 1_000_000;

impl Targeting {
    /// Checks and compiles the rules (inactive ones are left out); errors name the rule
    /// by its position (`[2].conditions`).
    pub fn compile(
        rules: Vec<TargetingRule>,
        groups: HashMap<TargetGroupId, GroupInfo>,
        session_timeout_micros: i64,
    ) -> Result<Self, Invalid> {
        let mut patterns: Vec<Regex> = Vec::new();
        let mut compiled = Vec::new();
        for (i, rule) in rules.into_iter().enumerate() {
            let rule = rule.checked().map_err(|e| e.within(&format!("[{i}]")))?;
            let conditions = compile_tree(&rule.conditions, &mut patterns)
                .map_err(|reason| Invalid::new(format!("[{i}].conditions"), reason))?;
            if rule.active {
                compiled.push((
                    rule.priority,
                    CompiledRule {
                        id: rule.id,
                        scope: rule.scope,
                        conditions,
                        actions: rule.actions,
                    },
                ));
            }
        }
        compiled.sort_by_key(|(priority, rule)| (*priority, rule.id));
        Ok(Self {
            rules: compiled.into_iter().map(|(_, r)| r).collect(),
            patterns,
            groups,
            session_timeout_micros,
        })
    }

    /// How many active rules there are.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// Checks one rule's regular expressions (for saving a single rule).
pub fn check_patterns(rule: &TargetingRule) -> Result<(), Invalid> {
    compile_tree(&rule.conditions, &mut Vec::new())
        .map(|_| ())
        .map_err(|reason| Invalid::new("conditions", reason))
}

fn compile_tree(tree: &Tree<TargetingCondition>, patterns: &mut Vec<Regex>) -> Result<Tree<Leaf>, String> {
    Ok(match tree {
        Tree::All(items) => Tree::All(
            items
                .iter()
                .map(|t| compile_tree(t, patterns))
                .collect::<Result<_, _>>()?,
        ),
        Tree::Any(items) => Tree::Any(
            items
                .iter()
                .map(|t| compile_tree(t, patterns))
                .collect::<Result<_, _>>()?,
        ),
        Tree::Not(inner) => Tree::Not(Box::new(compile_tree(inner, patterns)?)),
        Tree::Leaf(leaf) => Tree::Leaf(compile_leaf(leaf, patterns)?),
    })
}

fn pattern(source: &str, patterns: &mut Vec<Regex>) -> Result<usize, String> {
    if let Some(i) = patterns.iter().position(|p| p.as_str() == source) {
        return Ok(i);
    }
    let regex = regex::RegexBuilder::new(source)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("invalid regular expression {source:?}: {e}"))?;
    patterns.push(regex);
    Ok(patterns.len() - 1)
}

fn compile_leaf(leaf: &TargetingCondition, patterns: &mut Vec<Regex>) -> Result<Leaf, String> {
    use TargetingCondition as C;
    Ok(match leaf {
        C::Url(p) => Leaf::Url(pattern(p, patterns)?),
        C::Referrer(p) => Leaf::Referrer(pattern(p, patterns)?),
        C::SearchEngine(e) => Leaf::SearchEngine(*e),
        C::Browser(b) => Leaf::Browser(b.to_lowercase()),
        C::OperatingSystem(o) => Leaf::OperatingSystem(o.to_lowercase()),
        C::Platform(p) => Leaf::Platform(*p),
        C::Country(c) => Leaf::Country(c.to_uppercase()),
        C::GeoPoint {
            latitude,
            longitude,
            radius_km,
        } => Leaf::GeoPoint {
            latitude: *latitude,
            longitude: *longitude,
            radius_km: *radius_km,
        },
        C::Language(l) => Leaf::Language(l.to_lowercase().replace('_', "-")),
        C::VisitedPagesBefore(n) => Leaf::VisitedPagesBefore(*n),
        C::TimeOnSite(seconds) => Leaf::TimeOnSite(i64::try_from(*seconds).unwrap_or(i64::MAX / 1_000_000) * 1_000_000),
        C::TargetGroup(g) => Leaf::TargetGroup(*g),
        C::HasSegment {
            segment,
            tracked,
            customer,
            test,
        } => Leaf::HasSegment {
            segment: *segment,
            tracked: *tracked,
            customer: *customer,
            test: *test,
        },
        C::CustomerLoggedIn => Leaf::CustomerLoggedIn,
        C::CustomerSegmentsChanged => Leaf::CustomerSegmentsChanged,
    })
}
