//! Automation decisions as data: `cases/automation.json` lists rules (as clients write
//! them) and events happening to customers at given minutes of an injected clock, with
//! the rules expected to fire, their conditions leaf by leaf, and when each action
//! runs; or the field a refused rule names. A step may be a `batch` of one customer's
//! events recorded together (each judged with the counts right after it), or a
//! schedule coming due for `only` one rule.

use std::collections::{BTreeMap, BTreeSet};

use cohort_app::automation::parse_automation_rule;
use cohort_core::automation::{AssignedBy, AutomationRuleId, Event};
use cohort_core::{ActivityType, AttributeName, CustomerId, SegmentId, TargetGroupId, Timestamp};
use cohort_engine::automation::{Automation, CustomerFacts, counts_as_of, evaluate};
use cohort_store::codec::attribute_from_json;
use serde_json::Value;

const START: i64 = 1_790_000_000_000_000;

fn minutes(m: i64) -> Timestamp {
    Timestamp::from_unix_micros(START + m * 60_000_000)
}

fn event(value: &Value) -> Event {
    let kind = |text: &str| ActivityType::parse("type", text).unwrap();
    match value {
        Value::String(name) => match name.as_str() {
            "customer_created" => Event::CustomerCreated,
            "customer_updated" => Event::CustomerUpdated,
            "segments_built" => Event::SegmentsBuilt,
            "scheduled" => Event::Scheduled,
            other => panic!("unknown event {other}"),
        },
        Value::Object(map) => {
            if let Some(k) = map.get("activity") {
                Event::Activity {
                    kind: kind(k.as_str().unwrap()),
                }
            } else if let Some(segment) = map.get("segment_tracked") {
                Event::SegmentTracked {
                    segment: SegmentId::new(segment.as_i64().unwrap()),
                    count: map["count"].as_u64().unwrap() as u32,
                }
            } else if let Some(group) = map.get("target_group_assigned") {
                Event::TargetGroupAssigned {
                    group: TargetGroupId::new(group.as_i64().unwrap()),
                    weight: map["weight"].as_u64().unwrap() as u32,
                    by: match map["by"].as_str().unwrap() {
                        "content" => AssignedBy::Content,
                        _ => AssignedBy::Rule,
                    },
                }
            } else {
                panic!("unknown event {value}")
            }
        }
        _ => panic!("unknown event {value}"),
    }
}

fn run_case(case: &Value) {
    let name = case["name"].as_str().unwrap();
    let parsed: Vec<_> = case["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut definition = r.clone();
            let id = definition
                .as_object_mut()
                .unwrap()
                .remove("id")
                .unwrap()
                .as_i64()
                .unwrap();
            parse_automation_rule(AutomationRuleId::new(id), &definition)
        })
        .collect();
    if let Some(field) = case.get("error") {
        let error = parsed
            .into_iter()
            .find_map(Result::err)
            .unwrap_or_else(|| panic!("{name}: expected a refusal"));
        assert_eq!(error.field, field.as_str().unwrap(), "{name}: {error}");
        return;
    }
    let rules: Vec<_> = parsed
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("{name}: {e}")))
        .collect();
    let automation = Automation::compile(rules.clone());
    for (i, step) in case["events"].as_array().unwrap().iter().enumerate() {
        let at = format!("{name}, event {i}");
        let customer = &step["customer"];
        let id = CustomerId::parse("id", customer["id"].as_str().unwrap_or("C1")).unwrap();
        let attributes = customer["attributes"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        (
                            AttributeName::parse("a", k).unwrap(),
                            attribute_from_json("a", v).unwrap(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let segments: BTreeSet<SegmentId> = customer["segments"]
            .as_array()
            .map(|a| a.iter().map(|s| SegmentId::new(s.as_i64().unwrap())).collect())
            .unwrap_or_default();
        let counts: BTreeMap<ActivityType, u32> = customer["activities"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (ActivityType::parse("t", k).unwrap(), v.as_u64().unwrap() as u32))
                    .collect()
            })
            .unwrap_or_default();
        let facts = CustomerFacts {
            id: &id,
            attributes: &attributes,
            segments: &segments,
            activity_counts: &counts,
        };
        let now = minutes(step["at"].as_i64().unwrap_or(0));
        let expect = &step["expect"];
        if let Some(batch) = step.get("batch") {
            // One customer's events recorded together; `activities` are the totals after.
            let events: Vec<Event> = batch.as_array().unwrap().iter().map(event).collect();
            let refs: Vec<&Event> = events.iter().collect();
            let counts = counts_as_of(&refs, &counts);
            let each: Vec<_> = refs.iter().copied().zip(&counts).collect();
            let got: Vec<Vec<i64>> = automation
                .react_each(&each, &facts, now)
                .iter()
                .map(|fired| fired.iter().map(|f| f.rule.get()).collect())
                .collect();
            let want: Vec<Vec<i64>> = serde_json::from_value(expect["fired_each"].clone()).unwrap();
            assert_eq!(got, want, "{at}: rules fired by each event of the batch");
            continue;
        }
        let happened = event(&step["event"]);
        let fired = match step.get("only") {
            // A schedule of this rule came due.
            Some(rule) => automation
                .react_rule(AutomationRuleId::new(rule.as_i64().unwrap()), &happened, &facts, now)
                .into_iter()
                .collect(),
            None => {
                let fired = automation.react(&happened, &facts, now);
                let each = automation.react_each(&[(&happened, &counts)], &facts, now);
                assert_eq!(each, vec![fired.clone()], "{at}: judged alone or as a batch of one");
                fired
            }
        };
        let got: Vec<i64> = fired.iter().map(|f| f.rule.get()).collect();
        let want: Vec<i64> = expect["fired"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(got, want, "{at}: rules fired");
        if let Some(runs) = expect.get("runs") {
            let got: Vec<(i64, usize, i64)> = fired
                .iter()
                .flat_map(|f| {
                    f.runs
                        .iter()
                        .map(move |r| (f.rule.get(), r.index, (r.at.unix_micros() - START) / 60_000_000))
                })
                .collect();
            let want: Vec<(i64, usize, i64)> = runs
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r[0].as_i64().unwrap(),
                        r[1].as_u64().unwrap() as usize,
                        r[2].as_i64().unwrap(),
                    )
                })
                .collect();
            assert_eq!(got, want, "{at}: (rule, action, minute) of each run");
        }
        if let Some(leaves) = expect.get("conditions") {
            let rule = &rules[0];
            let evaluation = evaluate(rule, &happened, &facts);
            let got: Vec<bool> = evaluation.conditions.iter().map(|(_, holds)| *holds).collect();
            let want: Vec<bool> = leaves
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_bool().unwrap())
                .collect();
            assert_eq!(got, want, "{at}: leaves of rule {}", rule.id);
        }
    }
}

#[test]
fn every_automation_case_decides_as_written() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cases/automation.json")).unwrap();
    let cases: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert!(cases.len() >= 20, "{} cases", cases.len());
    for case in &cases {
        run_case(case);
    }
}
