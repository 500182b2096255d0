//! Automation rule definitions as clients write them (JSON), parsed into checked domain
//! rules; errors name the exact field (`triggers[1]`, `actions[0].delay`), unknown
//! fields are refused.
//!
//! ```json
//! {"name": "Third order", "active": true,
//!  "triggers": [{"new_activity": "order"}],
//!  "conditions": {"all": [{"activity_count": "order", "op": "=", "value": 3},
//!                         {"not": {"has_segment": 12}}]},
//!  "actions": [{"add_segment": 12}, {"webhook": "https://crm.example/hooks/cohort", "delay": "2h"}]}
//! ```
//!
//! - `triggers`: `{"new_activity": TYPE | null}`, `"customer_created"`,
//!   `"customer_updated"`, `"segments_built"`, `{"schedule": "MIN HOUR DOM MON DOW"}`
//!   (UTC), `"segment_tracked"`, `{"target_group_assigned": "any" | "content" | "rule"}`.
//! - `conditions`: `all` / `any` / `not` over `{"activity_count": TYPE, "op": "<" | "<="
//!   | "=" | "!=" | ">=" | ">" | "%", "value": N}`, `{"customer_is": [ID…]}`,
//!   `{"has_segment": ID}`, `{"field": NAME, "equals": VALUE}`,
//!   `{"tracked_segments_count": [ID…] | "any", "op", "value"}`,
//!   `{"target_group_weight": [ID…] | "any", "op", "value"}`.
//! - `actions` (each with an optional `"delay"`: minutes, or `"30m"`, `"2h"`, `"3d"`):
//!   `{"add_segment": ID, "remove_others": false, "increase_counter": true,
//!   "consider_consent": false}`, `{"remove_segment": ID}`, `{"set_field": NAME,
//!   "value": VALUE | null}`, `{"add_tracked_segment": true, "consider_consent": …}`,
//!   `{"copy_tracked_segments": true, "min_count": 1, "consider_consent": …}`,
//!   `{"add_linked_segment": true, "consider_consent": …}`, `{"track_activity": TYPE}`,
//!   `{"webhook": URL}`.

use cohort_core::automation::{
    AssignedBy, AutomationAction, AutomationCondition, AutomationRule, AutomationRuleId, MAX_DELAY_MINUTES,
    PlannedAction, Trigger,
};
use cohort_core::targeting::{CountTest, MAX_TREE_DEPTH};
use cohort_core::{ActivityType, AttributeName, CustomerId, Invalid, Name, SegmentId, TargetGroupId, Tree};
use cohort_store::codec::attribute_from_json;
use serde_json::{Map, Value};

use crate::builders::{array, condition_tree, join, object, only, string};
use crate::schedule::Schedule;
use crate::targeting::rules::{flag, positive, small};

const FIELDS: [&str; 5] = ["name", "active", "triggers", "conditions", "actions"];

/// Parses and checks a rule definition (without its id) as rule `id`.
pub fn parse_automation_rule(id: AutomationRuleId, value: &Value) -> Result<AutomationRule, Invalid> {
    let map = object("", value)?;
    only(map, "", &FIELDS)?;
    let rule = AutomationRule {
        id,
        name: Name::parse("name", &string(map, "", "name")?)?,
        active: flag(map, "", "active", true)?,
        triggers: array(map, "", "triggers")?
            .iter()
            .enumerate()
            .map(|(i, v)| trigger(&format!("triggers[{i}]"), v))
            .collect::<Result<_, _>>()?,
        conditions: match map.get("conditions") {
            None | Some(Value::Null) => Tree::All(Vec::new()),
            Some(v) => condition_tree(
                "conditions",
                v,
                1,
                MAX_TREE_DEPTH,
                &|f, m| leaf(f, m),
                "expected all, any, not, or a condition (activity_count, customer_is, has_segment, field, \
                 tracked_segments_count, target_group_weight)",
            )?,
        },
        actions: array(map, "", "actions")?
            .iter()
            .enumerate()
            .map(|(i, v)| action(&format!("actions[{i}]"), v))
            .collect::<Result<_, _>>()?,
    };
    rule.checked()
}

fn trigger(field: &str, value: &Value) -> Result<Trigger, Invalid> {
    if let Value::String(name) = value {
        return match name.as_str() {
            "customer_created" => Ok(Trigger::CustomerCreated),
            "customer_updated" => Ok(Trigger::CustomerUpdated),
            "segments_built" => Ok(Trigger::SegmentsBuilt),
            "segment_tracked" => Ok(Trigger::SegmentTracked),
            "new_activity" => Ok(Trigger::NewActivity(None)),
            "target_group_assigned" => Ok(Trigger::TargetGroupAssigned(None)),
            _ => Err(Invalid::new(
                field,
                "expected new_activity, customer_created, customer_updated, segments_built, schedule, \
                 segment_tracked or target_group_assigned",
            )),
        };
    }
    let map = object(field, value)?;
    if let Some(kind) = map.get("new_activity") {
        only(map, field, &["new_activity"])?;
        return Ok(Trigger::NewActivity(match kind {
            Value::Null => None,
            _ => Some(ActivityType::parse(
                &join(field, "new_activity"),
                &string(map, field, "new_activity")?,
            )?),
        }));
    }
    if map.contains_key("schedule") {
        only(map, field, &["schedule"])?;
        let cron = string(map, field, "schedule")?;
        Schedule::parse(&join(field, "schedule"), &cron)?;
        return Ok(Trigger::Schedule(cron));
    }
    if map.contains_key("target_group_assigned") {
        only(map, field, &["target_group_assigned"])?;
        let by = match string(map, field, "target_group_assigned")?.as_str() {
            "any" => None,
            "content" => Some(AssignedBy::Content),
            "rule" => Some(AssignedBy::Rule),
            _ => {
                return Err(Invalid::new(
                    join(field, "target_group_assigned"),
                    "expected any, content or rule",
                ));
            }
        };
        return Ok(Trigger::TargetGroupAssigned(by));
    }
    Err(Invalid::new(field, "expected a trigger"))
}

/// `"op"` and `"value"` of a count test (`%`: every n-th).
fn count_test(map: &Map<String, Value>, field: &str) -> Result<CountTest, Invalid> {
    let op = string(map, field, "op")?;
    CountTest::parse(&join(field, "op"), &op, small(map, field, "value")?)
}

/// `"any"` or a non-empty list of ids.
fn ids<T>(map: &Map<String, Value>, field: &str, name: &str, make: fn(i64) -> T) -> Result<Vec<T>, Invalid> {
    match map.get(name) {
        Some(Value::String(any)) if any == "any" => Ok(Vec::new()),
        Some(Value::Array(list)) if !list.is_empty() && list.len() <= 1_000 => list
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_i64()
                    .filter(|id| *id >= 1)
                    .map(make)
                    .ok_or_else(|| Invalid::new(format!("{}[{i}]", join(field, name)), "expected an id"))
            })
            .collect(),
        _ => Err(Invalid::new(
            join(field, name),
            "expected \"any\" or a list of 1 to 1000 ids",
        )),
    }
}

const LEAVES: [&str; 6] = [
    "activity_count",
    "customer_is",
    "has_segment",
    "field",
    "tracked_segments_count",
    "target_group_weight",
];

fn leaf(field: &str, map: &Map<String, Value>) -> Option<Result<Tree<AutomationCondition>, Invalid>> {
    let key = LEAVES.iter().find(|k| map.contains_key(**k))?;
    let read = || -> Result<AutomationCondition, Invalid> {
        let here = join(field, key);
        Ok(match *key {
            "activity_count" => {
                only(map, field, &["activity_count", "op", "value"])?;
                AutomationCondition::ActivityCount {
                    kind: ActivityType::parse(&here, &string(map, field, key)?)?,
                    test: count_test(map, field)?,
                }
            }
            "customer_is" => {
                only(map, field, &[key])?;
                let list = array(map, field, key)?;
                let ids = list
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let text = v.as_str().unwrap_or_default();
                        CustomerId::parse(&format!("{here}[{i}]"), text)
                    })
                    .collect::<Result<_, _>>()?;
                AutomationCondition::CustomerIs(ids)
            }
            "has_segment" => {
                only(map, field, &[key])?;
                AutomationCondition::HasSegment(SegmentId::new(positive(map, field, key)?))
            }
            "field" => {
                only(map, field, &["field", "equals"])?;
                let value = map
                    .get("equals")
                    .ok_or_else(|| Invalid::new(join(field, "equals"), "missing field"))?;
                AutomationCondition::FieldEquals {
                    field: AttributeName::parse(&here, &string(map, field, key)?)?,
                    value: attribute_from_json(&join(field, "equals"), value)?,
                }
            }
            "tracked_segments_count" => {
                only(map, field, &[key, "op", "value"])?;
                AutomationCondition::TrackedSegmentsCount {
                    segments: ids(map, field, key, SegmentId::new)?,
                    test: count_test(map, field)?,
                }
            }
            _ => {
                only(map, field, &[key, "op", "value"])?;
                AutomationCondition::TargetGroupWeight {
                    groups: ids(map, field, key, TargetGroupId::new)?,
                    test: count_test(map, field)?,
                }
            }
        })
    };
    Some(read().map(Tree::Leaf))
}

/// A delay in minutes: a number, or `"30m"`, `"2h"`, `"3d"`.
fn delay(field: &str, value: Option<&Value>) -> Result<u32, Invalid> {
    let invalid = || {
        Invalid::new(
            field,
            "expected minutes, or a number followed by m, h or d (at most a year)",
        )
    };
    let minutes = match value {
        None | Some(Value::Null) => 0,
        Some(Value::Number(n)) => n.as_u64().ok_or_else(invalid)?,
        Some(Value::String(text)) => {
            let (digits, unit) = text.split_at(text.len().saturating_sub(1));
            let n: u64 = digits.parse().map_err(|_| invalid())?;
            match unit {
                "m" => n,
                "h" => n.saturating_mul(60),
                "d" => n.saturating_mul(1_440),
                _ => return Err(invalid()),
            }
        }
        Some(_) => return Err(invalid()),
    };
    u32::try_from(minutes)
        .ok()
        .filter(|m| *m <= MAX_DELAY_MINUTES)
        .ok_or_else(invalid)
}

fn action(field: &str, value: &Value) -> Result<PlannedAction, Invalid> {
    let map = object(field, value)?;
    let delay_minutes = delay(&join(field, "delay"), map.get("delay"))?;
    let allowed = |names: &[&str]| {
        let mut all = names.to_vec();
        all.push("delay");
        only(map, field, &all)
    };
    let action = if map.contains_key("add_segment") {
        allowed(&["add_segment", "remove_others", "increase_counter", "consider_consent"])?;
        AutomationAction::AddSegment {
            segment: SegmentId::new(positive(map, field, "add_segment")?),
            remove_others: flag(map, field, "remove_others", false)?,
            increase_counter: flag(map, field, "increase_counter", true)?,
            consider_consent: flag(map, field, "consider_consent", false)?,
        }
    } else if map.contains_key("remove_segment") {
        allowed(&["remove_segment"])?;
        AutomationAction::RemoveSegment(SegmentId::new(positive(map, field, "remove_segment")?))
    } else if map.contains_key("set_field") {
        allowed(&["set_field", "value"])?;
        let name = AttributeName::parse(&join(field, "set_field"), &string(map, field, "set_field")?)?;
        let value = match map.get("value") {
            None => return Err(Invalid::new(join(field, "value"), "missing field")),
            Some(Value::Null) => None,
            Some(v) => Some(attribute_from_json(&join(field, "value"), v)?),
        };
        AutomationAction::SetField { field: name, value }
    } else if map.contains_key("add_tracked_segment") {
        allowed(&["add_tracked_segment", "consider_consent"])?;
        AutomationAction::AddTrackedSegment {
            consider_consent: flag(map, field, "consider_consent", false)?,
        }
    } else if map.contains_key("copy_tracked_segments") {
        allowed(&["copy_tracked_segments", "min_count", "consider_consent"])?;
        let min_count = match map.get("min_count") {
            None => 1,
            Some(_) => match small(map, field, "min_count")? {
                0 => return Err(Invalid::new(join(field, "min_count"), "at least 1")),
                n => n,
            },
        };
        AutomationAction::CopyTrackedSegments {
            min_count,
            consider_consent: flag(map, field, "consider_consent", false)?,
        }
    } else if map.contains_key("add_linked_segment") {
        allowed(&["add_linked_segment", "consider_consent"])?;
        AutomationAction::AddLinkedSegment {
            consider_consent: flag(map, field, "consider_consent", false)?,
        }
    } else if map.contains_key("track_activity") {
        allowed(&["track_activity"])?;
        AutomationAction::TrackActivity(ActivityType::parse_tracked(
            &join(field, "track_activity"),
            &string(map, field, "track_activity")?,
        )?)
    } else if map.contains_key("webhook") {
        allowed(&["webhook"])?;
        let url = string(map, field, "webhook")?;
        if url.len() > 2_048 {
            return Err(Invalid::new(join(field, "webhook"), "at most 2048 bytes"));
        }
        AutomationAction::Webhook { url }
    } else {
        return Err(Invalid::new(
            field,
            "expected one of add_segment, remove_segment, set_field, add_tracked_segment, copy_tracked_segments, \
             add_linked_segment, track_activity, webhook",
        ));
    };
    Ok(PlannedAction { action, delay_minutes })
}
