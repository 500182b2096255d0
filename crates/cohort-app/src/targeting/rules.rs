//! Targeting rule definitions as clients write them (JSON), parsed into checked domain
//! rules; errors name the exact field (`conditions.all[1].url`, `actions[0].weight`),
//! unknown fields are refused.
//!
//! ```json
//! {"name": "Ski fans", "active": true, "priority": 10, "scope": "session",
//!  "conditions": {"all": [{"url": "^https://shop\\.example/ski"}, {"not": {"country": "GB"}}]},
//!  "actions": [{"assign_target_group": 4, "weight": 2}, {"track_segment": 12}]}
//! ```
//!
//! - `scope`: `hit` (default), `session`, `session_with_variables`, `visitor`.
//! - `conditions`: `all` / `any` / `not` (and-not is `{"all": [a, {"not": b}]}`) over
//!   `{"url": REGEX}`, `{"referrer": REGEX}` (`direct` without one), `{"search_engine":
//!   "any" | "google" | "bing" | "yahoo" | "duckduckgo" | "ecosia" | "baidu" | "yandex"}`,
//!   `{"browser": "chrome"}`, `{"os": "ios"}`, `{"platform": "desktop" | "tablet" |
//!   "mobile"}`, `{"country": "FR"}`, `{"geopoint": {"latitude", "longitude",
//!   "radius_km"}}`, `{"language": "de"}`, `{"visited_pages_before": 3}`,
//!   `{"time_on_site": SECONDS}`, `{"target_group": ID}`, `{"has_segment": ID, "tracked":
//!   true, "customer": true, "op": ">=" | "%" | …, "value": 5}` (defaults: both counts,
//!   `>=`, 1), `{"customer_logged_in": true}`, `{"customer_segments_changed": true}`.
//! - `actions`: `{"assign_target_group": ID, "weight": 1, "linked_segment": "no" |
//!   "assign" | "assign_with_weight", "track_activity": false, "consider_consent": true}`,
//!   `{"code_snippet": HTML, "place": "head" | "body", "position": "beginning" | "end" |
//!   "replace"}`, `{"redirect": URL, "status": 302}`, `{"track_segment": ID}`,
//!   `{"track_activity": TYPE, "consider_consent": true}`,
//!   `{"apply_target_groups_from_segments": "cleanup_and_overwrite" | "cleanup_and_merge"
//!   | "only_merge", "groups": [ID…]}`, `{"save_tracked_segments": "all" | [ID…],
//!   "min_count": 1, "consider_consent": true}`.

use cohort_core::targeting::{
    ApplyMode, CountTest, LinkedSegment, MAX_TREE_DEPTH, Platform, RuleId, Scope, SearchEngine, SnippetPlace,
    SnippetPosition, TargetingAction, TargetingCondition, TargetingRule,
};
use cohort_core::{ActivityType, Invalid, Name, SegmentId, TargetGroupId, Tree};
use serde_json::{Map, Value};

use crate::builders::{array, condition_tree, join, object, only, string};

const FIELDS: [&str; 6] = ["name", "active", "priority", "scope", "conditions", "actions"];

/// Parses and checks a rule definition (without its id) as rule `id`.
pub fn parse_rule(id: RuleId, value: &Value) -> Result<TargetingRule, Invalid> {
    let map = object("", value)?;
    only(map, "", &FIELDS)?;
    let rule = TargetingRule {
        id,
        name: Name::parse("name", &string(map, "", "name")?)?,
        active: flag(map, "", "active", true)?,
        priority: match map.get("priority") {
            None | Some(Value::Null) => 0,
            Some(v) => v
                .as_i64()
                .and_then(|p| i32::try_from(p).ok())
                .ok_or_else(|| Invalid::new("priority", "expected a whole number"))?,
        },
        scope: match map.get("scope") {
            None | Some(Value::Null) => Scope::Hit,
            Some(_) => Scope::parse("scope", &string(map, "", "scope")?)?,
        },
        conditions: match map.get("conditions") {
            None | Some(Value::Null) => Tree::All(Vec::new()),
            Some(v) => tree("conditions", v, 1)?,
        },
        actions: match map.get("actions") {
            None => Vec::new(),
            Some(_) => array(map, "", "actions")?
                .iter()
                .enumerate()
                .map(|(i, v)| action(&format!("actions[{i}]"), v))
                .collect::<Result<_, _>>()?,
        },
    };
    rule.checked()
}

pub(crate) fn flag(map: &Map<String, Value>, field: &str, name: &str, default: bool) -> Result<bool, Invalid> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_bool()
            .ok_or_else(|| Invalid::new(join(field, name), "expected true or false")),
    }
}

pub(crate) fn number(map: &Map<String, Value>, field: &str, name: &str) -> Result<u64, Invalid> {
    match map.get(name) {
        None => Err(Invalid::new(join(field, name), "missing field")),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| Invalid::new(join(field, name), "expected a whole number of at least 0")),
    }
}

pub(crate) fn small(map: &Map<String, Value>, field: &str, name: &str) -> Result<u32, Invalid> {
    u32::try_from(number(map, field, name)?).map_err(|_| Invalid::new(join(field, name), "too large"))
}

fn float(map: &Map<String, Value>, field: &str, name: &str) -> Result<f64, Invalid> {
    map.get(name)
        .and_then(Value::as_f64)
        .ok_or_else(|| Invalid::new(join(field, name), "expected a number"))
}

fn tree(field: &str, value: &Value, depth: usize) -> Result<Tree<TargetingCondition>, Invalid> {
    let expected = "expected all, any, not, or a targeting condition (url, referrer, search_engine, browser, os, \
                    platform, country, geopoint, language, visited_pages_before, time_on_site, target_group, \
                    has_segment, customer_logged_in, customer_segments_changed)";
    condition_tree(field, value, depth, MAX_TREE_DEPTH, &|f, m| leaf(f, m), expected)
}

const LEAVES: [&str; 15] = [
    "url",
    "referrer",
    "search_engine",
    "browser",
    "os",
    "platform",
    "country",
    "geopoint",
    "language",
    "visited_pages_before",
    "time_on_site",
    "target_group",
    "has_segment",
    "customer_logged_in",
    "customer_segments_changed",
];

fn leaf(field: &str, map: &Map<String, Value>) -> Option<Result<Tree<TargetingCondition>, Invalid>> {
    let key = LEAVES.iter().find(|k| map.contains_key(**k))?;
    let read = || -> Result<TargetingCondition, Invalid> {
        let here = join(field, key);
        if *key == "has_segment" {
            only(map, field, &["has_segment", "tracked", "customer", "op", "value"])?;
            let op = match map.get("op") {
                None => ">=".to_owned(),
                Some(_) => string(map, field, "op")?,
            };
            let value = if map.contains_key("value") {
                small(map, field, "value")?
            } else {
                1
            };
            let (tracked, customer) = (flag(map, field, "tracked", true)?, flag(map, field, "customer", true)?);
            if !tracked && !customer {
                return Err(Invalid::new(
                    join(field, "tracked"),
                    "count tracked or customer segments, or both",
                ));
            }
            return Ok(TargetingCondition::HasSegment {
                segment: SegmentId::new(positive(map, field, "has_segment")?),
                tracked,
                customer,
                test: CountTest::parse(&join(field, "op"), &op, value)?,
            });
        }
        only(map, field, &[key])?;
        Ok(match *key {
            "url" => TargetingCondition::Url(string(map, field, "url")?),
            "referrer" => TargetingCondition::Referrer(string(map, field, "referrer")?),
            "search_engine" => TargetingCondition::SearchEngine(SearchEngine::parse(&here, &string(map, field, key)?)?),
            "browser" => TargetingCondition::Browser(nonempty(&here, string(map, field, key)?)?.to_lowercase()),
            "os" => TargetingCondition::OperatingSystem(nonempty(&here, string(map, field, key)?)?.to_lowercase()),
            "platform" => TargetingCondition::Platform(Platform::parse(&here, &string(map, field, key)?)?),
            "country" => {
                let code = string(map, field, key)?;
                if code.len() != 2 || !code.chars().all(|c| c.is_ascii_alphabetic()) {
                    return Err(Invalid::new(here, "expected an ISO 3166 alpha-2 code"));
                }
                TargetingCondition::Country(code.to_ascii_uppercase())
            }
            "geopoint" => {
                let point = object(&here, &map["geopoint"])?;
                only(point, &here, &["latitude", "longitude", "radius_km"])?;
                TargetingCondition::GeoPoint {
                    latitude: float(point, &here, "latitude")?,
                    longitude: float(point, &here, "longitude")?,
                    radius_km: float(point, &here, "radius_km")?,
                }
            }
            "language" => TargetingCondition::Language(nonempty(&here, string(map, field, key)?)?.to_lowercase()),
            "visited_pages_before" => TargetingCondition::VisitedPagesBefore(small(map, field, key)?),
            "time_on_site" => TargetingCondition::TimeOnSite(number(map, field, key)?),
            "target_group" => TargetingCondition::TargetGroup(TargetGroupId::new(positive(map, field, key)?)),
            "customer_logged_in" | "customer_segments_changed" => {
                if map[*key] != Value::Bool(true) {
                    return Err(Invalid::new(here, "expected true"));
                }
                if *key == "customer_logged_in" {
                    TargetingCondition::CustomerLoggedIn
                } else {
                    TargetingCondition::CustomerSegmentsChanged
                }
            }
            _ => unreachable!("every leaf key is read"),
        })
    };
    Some(read().map(Tree::Leaf))
}

fn nonempty(field: &str, text: String) -> Result<String, Invalid> {
    if text.trim().is_empty() || text.len() > 200 {
        return Err(Invalid::new(field, "expected 1 to 200 characters"));
    }
    Ok(text)
}

pub(crate) fn positive(map: &Map<String, Value>, field: &str, name: &str) -> Result<i64, Invalid> {
    map.get(name)
        .and_then(Value::as_i64)
        .filter(|id| *id >= 1)
        .ok_or_else(|| Invalid::new(join(field, name), "expected an id (a whole number of at least 1)"))
}

fn action(field: &str, value: &Value) -> Result<TargetingAction, Invalid> {
    let map = object(field, value)?;
    let text = |name: &str, default: &str| -> Result<String, Invalid> {
        match map.get(name) {
            None | Some(Value::Null) => Ok(default.to_owned()),
            Some(_) => string(map, field, name),
        }
    };
    if map.contains_key("assign_target_group") {
        only(
            map,
            field,
            &[
                "assign_target_group",
                "weight",
                "linked_segment",
                "track_activity",
                "consider_consent",
            ],
        )?;
        let linked = match text("linked_segment", "no")?.as_str() {
            "no" => LinkedSegment::No,
            "assign" => LinkedSegment::Assign,
            "assign_with_weight" => LinkedSegment::AssignWithWeight,
            _ => {
                return Err(Invalid::new(
                    join(field, "linked_segment"),
                    "expected no, assign or assign_with_weight",
                ));
            }
        };
        return Ok(TargetingAction::AssignTargetGroup {
            group: TargetGroupId::new(positive(map, field, "assign_target_group")?),
            weight: if map.contains_key("weight") {
                small(map, field, "weight")?
            } else {
                1
            },
            linked_segment: linked,
            track_activity: flag(map, field, "track_activity", false)?,
            consider_consent: flag(map, field, "consider_consent", true)?,
        });
    }
    if map.contains_key("code_snippet") {
        only(map, field, &["code_snippet", "place", "position"])?;
        let html = string(map, field, "code_snippet")?;
        if html.len() > 65_536 {
            return Err(Invalid::new(join(field, "code_snippet"), "at most 64 KiB"));
        }
        let place = match text("place", "body")?.as_str() {
            "head" => SnippetPlace::Head,
            "body" => SnippetPlace::Body,
            _ => return Err(Invalid::new(join(field, "place"), "expected head or body")),
        };
        let position = match text("position", "end")?.as_str() {
            "beginning" => SnippetPosition::Beginning,
            "end" => SnippetPosition::End,
            "replace" => SnippetPosition::Replace,
            _ => {
                return Err(Invalid::new(
                    join(field, "position"),
                    "expected beginning, end or replace",
                ));
            }
        };
        return Ok(TargetingAction::CodeSnippet { html, place, position });
    }
    if map.contains_key("redirect") {
        only(map, field, &["redirect", "status"])?;
        let status = if map.contains_key("status") {
            small(map, field, "status")?
        } else {
            302
        };
        return Ok(TargetingAction::Redirect {
            url: string(map, field, "redirect")?,
            status: u16::try_from(status).unwrap_or(0),
        });
    }
    if map.contains_key("track_segment") {
        only(map, field, &["track_segment"])?;
        return Ok(TargetingAction::TrackSegment(SegmentId::new(positive(
            map,
            field,
            "track_segment",
        )?)));
    }
    if map.contains_key("track_activity") {
        only(map, field, &["track_activity", "consider_consent"])?;
        return Ok(TargetingAction::TrackActivity {
            kind: ActivityType::parse_tracked(&join(field, "track_activity"), &string(map, field, "track_activity")?)?,
            consider_consent: flag(map, field, "consider_consent", true)?,
        });
    }
    if map.contains_key("apply_target_groups_from_segments") {
        only(map, field, &["apply_target_groups_from_segments", "groups"])?;
        let mode = match string(map, field, "apply_target_groups_from_segments")?.as_str() {
            "cleanup_and_overwrite" => ApplyMode::CleanupAndOverwrite,
            "cleanup_and_merge" => ApplyMode::CleanupAndMerge,
            "only_merge" => ApplyMode::OnlyMerge,
            _ => {
                return Err(Invalid::new(
                    join(field, "apply_target_groups_from_segments"),
                    "expected cleanup_and_overwrite, cleanup_and_merge or only_merge",
                ));
            }
        };
        let groups = match map.get("groups") {
            None => Vec::new(),
            Some(_) => array(map, field, "groups")?
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_i64()
                        .filter(|id| *id >= 1)
                        .map(TargetGroupId::new)
                        .ok_or_else(|| Invalid::new(format!("{field}.groups[{i}]"), "expected an id"))
                })
                .collect::<Result<_, _>>()?,
        };
        return Ok(TargetingAction::ApplyTargetGroupsFromSegments { groups, mode });
    }
    if map.contains_key("save_tracked_segments") {
        only(map, field, &["save_tracked_segments", "min_count", "consider_consent"])?;
        let segments = match map.get("save_tracked_segments") {
            Some(Value::String(all)) if all == "all" => Vec::new(),
            Some(Value::Array(ids)) if !ids.is_empty() => {
                ids.iter()
                    .enumerate()
                    .map(|(i, v)| {
                        v.as_i64().filter(|id| *id >= 1).map(SegmentId::new).ok_or_else(|| {
                            Invalid::new(format!("{field}.save_tracked_segments[{i}]"), "expected an id")
                        })
                    })
                    .collect::<Result<_, _>>()?
            }
            _ => {
                return Err(Invalid::new(
                    join(field, "save_tracked_segments"),
                    "expected \"all\" or a non-empty list of segment ids",
                ));
            }
        };
        return Ok(TargetingAction::SaveTrackedSegments {
            segments,
            min_count: if map.contains_key("min_count") {
                small(map, field, "min_count")?.max(1)
            } else {
                1
            },
            consider_consent: flag(map, field, "consider_consent", true)?,
        });
    }
    Err(Invalid::new(
        field,
        "expected one of assign_target_group, code_snippet, redirect, track_segment, track_activity, \
         apply_target_groups_from_segments, save_tracked_segments",
    ))
}
