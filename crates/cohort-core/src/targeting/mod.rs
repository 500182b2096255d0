//! Targeting: global rules run on a visitor's requests — Pimcore's targeting engine
//! with CMF's additions. A rule has a scope (how often it may fire), a condition tree
//! over what the request and the visitor's state say, and actions that assign target
//! groups, track segments, insert code, redirect or feed the customer's profile.
//!
//! The engine (`cohort_engine::targeting`) compiles the rules once and decides per
//! request; the visitor's state (`visitor.rs`) is what it keeps between requests.

pub mod visitor;

use crate::condition::Comparison;
use crate::tree::Tree;
use crate::{ActivityType, Invalid, Name, SegmentId, TargetGroupId};

pub use visitor::VisitorState;

crate::ids::numeric_id!(
    /// Id of a targeting rule, assigned by the store.
    RuleId
);

/// How often a rule may fire for one visitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// On every request whose conditions hold.
    Hit,
    /// Once per session.
    Session,
    /// Once per session for each distinct set of values its conditions matched (a
    /// customer's changed segments fire it again).
    SessionWithVariables,
    /// Once per visitor.
    Visitor,
}

impl Scope {
    pub fn parse(field: &str, text: &str) -> Result<Self, Invalid> {
        Ok(match text {
            "hit" => Self::Hit,
            "session" => Self::Session,
            "session_with_variables" => Self::SessionWithVariables,
            "visitor" => Self::Visitor,
            _ => {
                return Err(Invalid::new(
                    field,
                    "expected hit, session, session_with_variables or visitor",
                ));
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Session => "session",
            Self::SessionWithVariables => "session_with_variables",
            Self::Visitor => "visitor",
        }
    }
}

/// Search engines a referrer is recognised as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SearchEngine {
    Any,
    Google,
    Bing,
    Yahoo,
    DuckDuckGo,
    Ecosia,
    Baidu,
    Yandex,
}

impl SearchEngine {
    pub const NAMED: [Self; 7] = [
        Self::Google,
        Self::Bing,
        Self::Yahoo,
        Self::DuckDuckGo,
        Self::Ecosia,
        Self::Baidu,
        Self::Yandex,
    ];

    pub fn parse(field: &str, text: &str) -> Result<Self, Invalid> {
        Ok(match text {
            "any" => Self::Any,
            "google" => Self::Google,
            "bing" => Self::Bing,
            "yahoo" => Self::Yahoo,
            "duckduckgo" => Self::DuckDuckGo,
            "ecosia" => Self::Ecosia,
            "baidu" => Self::Baidu,
            "yandex" => Self::Yandex,
            _ => {
                return Err(Invalid::new(
                    field,
                    "expected any, google, bing, yahoo, duckduckgo, ecosia, baidu or yandex",
                ));
            }
        })
    }

    /// The part of a referrer's host that names the engine (`google.` matches
    /// `www.google.fr`).
    pub fn host_mark(self) -> &'static str {
        match self {
            Self::Any => "",
            Self::Google => "google.",
            Self::Bing => "bing.",
            Self::Yahoo => "yahoo.",
            Self::DuckDuckGo => "duckduckgo.",
            Self::Ecosia => "ecosia.",
            Self::Baidu => "baidu.",
            Self::Yandex => "yandex.",
        }
    }
}

/// The kind of device, from the user agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    Desktop,
    Tablet,
    /// Phones of every kind.
    Mobile,
}

impl Platform {
    pub fn parse(field: &str, text: &str) -> Result<Self, Invalid> {
        Ok(match text {
            "desktop" => Self::Desktop,
            "tablet" => Self::Tablet,
            "mobile" => Self::Mobile,
            _ => return Err(Invalid::new(field, "expected desktop, tablet or mobile")),
        })
    }
}

/// A test of a count: a comparison, or "a positive multiple of" (Pimcore's `%`: every
/// fifth time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountTest {
    Compare(Comparison, u32),
    MultipleOf(u32),
}

impl CountTest {
    pub fn parse(field: &str, op: &str, value: u32) -> Result<Self, Invalid> {
        if op == "%" {
            if value == 0 {
                return Err(Invalid::new(field, "a multiple of 0 is never reached"));
            }
            return Ok(Self::MultipleOf(value));
        }
        Ok(Self::Compare(Comparison::parse(field, op)?, value))
    }

    pub fn holds(self, count: u32) -> bool {
        match self {
            Self::MultipleOf(n) => count > 0 && count.is_multiple_of(n),
            Self::Compare(op, value) => match op {
                Comparison::Less => count < value,
                Comparison::LessOrEqual => count <= value,
                Comparison::Equal => count == value,
                Comparison::NotEqual => count != value,
                Comparison::GreaterOrEqual => count >= value,
                Comparison::Greater => count > value,
            },
        }
    }
}

/// A condition of a targeting rule.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetingCondition {
    /// The request's URL matches this regular expression (checked when compiled).
    Url(String),
    /// The referrer matches (a request without one has the referrer `direct`).
    Referrer(String),
    SearchEngine(SearchEngine),
    /// The browser family, lower case (`chrome`, `firefox`, `safari`, `edge`…);
    /// bots match no browser.
    Browser(String),
    /// The operating system family, lower case (`windows`, `mac os x`, `linux`,
    /// `android`, `ios`…).
    OperatingSystem(String),
    Platform(Platform),
    /// ISO 3166 alpha-2, upper case.
    Country(String),
    /// Within a radius (km) of a point.
    GeoPoint {
        latitude: f64,
        longitude: f64,
        radius_km: f64,
    },
    /// A preferred language of the visitor: `de` matches `de-AT`.
    Language(String),
    /// Pages seen before this one, at least.
    VisitedPagesBefore(u32),
    /// Seconds since the session started, at least.
    TimeOnSite(u64),
    /// The target group applies to the visitor (weight at or above its threshold).
    TargetGroup(TargetGroupId),
    /// The count of a segment — tracked for the visitor, held by the customer (its
    /// application counter), or both summed — passes the test.
    HasSegment {
        segment: SegmentId,
        tracked: bool,
        customer: bool,
        test: CountTest,
    },
    CustomerLoggedIn,
    /// A customer is logged in; its segments are the condition's value, so a
    /// `session_with_variables` rule fires again when they change.
    CustomerSegmentsChanged,
}

/// Whether assigning a target group also gives its linked segment to the logged-in
/// customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkedSegment {
    No,
    /// Added once (counter +1).
    Assign,
    /// Added `weight` times (counter + weight).
    AssignWithWeight,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SnippetPlace {
    Head,
    Body,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SnippetPosition {
    Beginning,
    End,
    Replace,
}

/// How target groups are derived from the customer's segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApplyMode {
    /// Forget the considered groups, then set each from its linked segment's counter.
    CleanupAndOverwrite,
    /// Forget the considered groups the customer has no linked segment of; raise the
    /// others to the counter when it is higher.
    CleanupAndMerge,
    /// Raise to the counter when it is higher; forget nothing.
    OnlyMerge,
}

/// An action of a targeting rule.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetingAction {
    AssignTargetGroup {
        group: TargetGroupId,
        /// Added to the visitor's weight of the group (at least 1).
        weight: u32,
        linked_segment: LinkedSegment,
        /// Also record a `target_group_assigned` activity for the logged-in customer.
        track_activity: bool,
        /// Only for customers who consented to profiling (segment and activity).
        consider_consent: bool,
    },
    CodeSnippet {
        html: String,
        place: SnippetPlace,
        position: SnippetPosition,
    },
    /// Never to the page it comes from, and never twice in a row (loop guard).
    Redirect { url: String, status: u16 },
    /// +1 to the visitor's tracked count of the segment.
    TrackSegment(SegmentId),
    /// Records an activity for the logged-in customer.
    TrackActivity { kind: ActivityType, consider_consent: bool },
    /// Target groups from the logged-in customer's linked segments (`groups` empty:
    /// every linked group).
    ApplyTargetGroupsFromSegments {
        groups: Vec<TargetGroupId>,
        mode: ApplyMode,
    },
    /// Gives the logged-in customer each segment tracked for the visitor at least
    /// `min_count` times (`segments` empty: every tracked segment), counter +1 each
    /// time the rule fires.
    SaveTrackedSegments {
        segments: Vec<SegmentId>,
        min_count: u32,
        consider_consent: bool,
    },
}

/// A global targeting rule.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetingRule {
    pub id: RuleId,
    pub name: Name,
    pub active: bool,
    /// Lower runs first.
    pub priority: i32,
    pub scope: Scope,
    /// An empty `all` always holds.
    pub conditions: Tree<TargetingCondition>,
    pub actions: Vec<TargetingAction>,
}

/// The deepest condition tree a rule accepts.
pub const MAX_TREE_DEPTH: usize = 16;

/// The most actions a rule has.
pub const MAX_ACTIONS: usize = 50;

impl TargetingRule {
    /// Checks what spans fields: tree depth, the number of actions, value ranges.
    /// Regular expressions are checked when the engine compiles the rule.
    pub fn checked(self) -> Result<Self, Invalid> {
        if self.conditions.depth() > MAX_TREE_DEPTH {
            return Err(Invalid::new(
                "conditions",
                format!("nested deeper than {MAX_TREE_DEPTH} levels"),
            ));
        }
        if self.actions.len() > MAX_ACTIONS {
            return Err(Invalid::new("actions", format!("at most {MAX_ACTIONS}")));
        }
        for (i, action) in self.actions.iter().enumerate() {
            let field = format!("actions[{i}]");
            match action {
                TargetingAction::AssignTargetGroup { weight: 0, .. } => {
                    return Err(Invalid::new(format!("{field}.weight"), "at least 1"));
                }
                TargetingAction::Redirect { url, status } => {
                    let path = url.starts_with('/') && !url.starts_with("//");
                    if !(url.starts_with("https://") || url.starts_with("http://") || path) {
                        return Err(Invalid::new(
                            format!("{field}.redirect"),
                            "an absolute http(s) URL or a path starting with a single /",
                        ));
                    }
                    if ![301, 302, 303, 307, 308].contains(status) {
                        return Err(Invalid::new(
                            format!("{field}.status"),
                            "expected 301, 302, 303, 307 or 308",
                        ));
                    }
                }
                _ => {}
            }
        }
        for leaf in self.conditions.leaves() {
            if let TargetingCondition::GeoPoint {
                latitude,
                longitude,
                radius_km,
            } = leaf
            {
                let ok = (-90.0..=90.0).contains(latitude)
                    && (-180.0..=180.0).contains(longitude)
                    && radius_km.is_finite()
                    && *radius_km > 0.0;
                if !ok {
                    return Err(Invalid::new(
                        "conditions",
                        "a geopoint needs a latitude in [-90, 90], a longitude in [-180, 180] and a positive radius",
                    ));
                }
            }
        }
        Ok(self)
    }
}
