//! Targeting rules compiled once when saved: regular expressions checked, and all URL
//! patterns (and all referrer patterns) built into one `RegexSet` each, so a request's
//! URL is scanned once for every pattern, on the first condition that needs it; active
//! rules sorted by priority; target group thresholds and links looked up by id.

use std::collections::HashMap;

use cohort_core::targeting::{SearchEngine, TargetingAction, TargetingCondition, TargetingRule};
use cohort_core::tree::Tree;
use cohort_core::{Invalid, SegmentId, TargetGroupId};
use regex::RegexSet;

use crate::promotion::FastMap;

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

/// A leaf of a compiled tree, as an index: a condition that depends on the request only,
/// shared by every rule that has it and evaluated at most once per request (`Memo`, into
/// `Targeting::shared`), or one that reads state earlier rules may change (`Direct`,
/// into `Targeting::direct`). Small, so a rule's ops stay in a few cache lines.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Node {
    Memo(u32),
    Direct(u32),
}

/// A condition with its pattern compiled.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Leaf {
    /// Index into the URL patterns.
    Url(usize),
    /// Index into the referrer patterns.
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

/// A condition tree flattened in prefix order: a group spans the ops of its subtree,
/// so a short-circuit skips them in one step, and a walk reads one array.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    All { span: u32 },
    Any { span: u32 },
    Not,
    Leaf(Node),
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledRule {
    pub id: RuleId,
    pub scope: Scope,
    pub conditions: Vec<Op>,
    pub actions: Vec<TargetingAction>,
}

/// Every active rule, compiled, with the target groups they may assign.
#[derive(Debug, Clone)]
pub struct Targeting {
    pub(crate) rules: Vec<CompiledRule>,
    /// The distinct conditions that depend on the request only.
    pub(crate) shared: Vec<Leaf>,
    /// The conditions that read the visitor's state.
    pub(crate) direct: Vec<Leaf>,
    pub(crate) urls: RegexSet,
    pub(crate) referrers: RegexSet,
    pub(crate) groups: FastMap<TargetGroupId, GroupInfo>,
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
        let mut patterns = Patterns::default();
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
                        conditions: flatten(conditions),
                        actions: rule.actions,
                    },
                ));
            }
        }
        compiled.sort_by_key(|(priority, rule)| (*priority, rule.id));
        let set = |sources: &[String]| {
            regex::RegexSetBuilder::new(sources)
                .size_limit(1 << 24)
                .build()
                .map_err(|e| Invalid::new("conditions", format!("the patterns together are too large: {e}")))
        };
        Ok(Self {
            rules: compiled.into_iter().map(|(_, r)| r).collect(),
            urls: set(&patterns.urls)?,
            shared: patterns.shared,
            direct: patterns.direct,
            referrers: set(&patterns.referrers)?,
            groups: groups.into_iter().collect(),
            session_timeout_micros,
        })
    }
}

fn compile_tree(tree: &Tree<TargetingCondition>, patterns: &mut Patterns) -> Result<Tree<Node>, String> {
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
        Tree::Leaf(leaf) => {
            let leaf = compile_leaf(leaf, patterns)?;
            let index = |list: &mut Vec<Leaf>, leaf: Leaf| {
                let i = list.iter().position(|l| *l == leaf).unwrap_or_else(|| {
                    list.push(leaf);
                    list.len() - 1
                });
                u32::try_from(i).map_err(|_| "too many conditions".to_owned())
            };
            Tree::Leaf(if matches!(leaf, Leaf::TargetGroup(_) | Leaf::HasSegment { .. }) {
                Node::Direct(index(&mut patterns.direct, leaf)?)
            } else {
                Node::Memo(index(&mut patterns.shared, leaf)?)
            })
        }
    })
}

fn flatten(tree: Tree<Node>) -> Vec<Op> {
    let mut ops = Vec::new();
    flatten_into(tree, &mut ops);
    ops
}

fn flatten_into(tree: Tree<Node>, ops: &mut Vec<Op>) {
    match tree {
        Tree::All(items) => group(items, ops, true),
        Tree::Any(items) => group(items, ops, false),
        Tree::Not(inner) => {
            ops.push(Op::Not);
            flatten_into(*inner, ops);
        }
        Tree::Leaf(node) => ops.push(Op::Leaf(node)),
    }
}

fn group(items: Vec<Tree<Node>>, ops: &mut Vec<Op>, all: bool) {
    let at = ops.len();
    ops.push(Op::Not);
    for item in items {
        flatten_into(item, ops);
    }
    let span = u32::try_from(ops.len() - at).expect("a rule's tree is small");
    ops[at] = if all { Op::All { span } } else { Op::Any { span } };
}

/// The distinct URL and referrer patterns and request-only conditions of all rules.
#[derive(Default)]
struct Patterns {
    urls: Vec<String>,
    referrers: Vec<String>,
    shared: Vec<Leaf>,
    direct: Vec<Leaf>,
}

/// Checks a pattern alone (for a clear error) and returns its index among `sources`.
fn pattern(source: &str, sources: &mut Vec<String>) -> Result<usize, String> {
    if let Some(i) = sources.iter().position(|p| p == source) {
        return Ok(i);
    }
    regex::RegexBuilder::new(source)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("invalid regular expression {source:?}: {e}"))?;
    sources.push(source.to_owned());
    Ok(sources.len() - 1)
}

fn compile_leaf(leaf: &TargetingCondition, patterns: &mut Patterns) -> Result<Leaf, String> {
    use TargetingCondition as C;
    Ok(match leaf {
        C::Url(p) => Leaf::Url(pattern(p, &mut patterns.urls)?),
        C::Referrer(p) => Leaf::Referrer(pattern(p, &mut patterns.referrers)?),
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
        C::TimeOnSite(seconds) => {
            Leaf::TimeOnSite(i64::try_from(*seconds).unwrap_or(i64::MAX).saturating_mul(1_000_000))
        }
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
