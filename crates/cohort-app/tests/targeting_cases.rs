//! Targeting decisions, as data: every case in `tests/cases/targeting.json` is a set of
//! rule definitions (the JSON format of `cohort_app::targeting`, with an `id` added),
//! target groups (`id`, `threshold`, `active`, `linked_segment`), and a sequence of
//! visits by one visitor — each a request (seconds since the first, URL, referrer,
//! device, location, languages, logged-in customer, page segments) with partial
//! expectations of its decision. The visitor's state carries from one visit to the
//! next, so scopes and sessions are checked over several requests. A case with
//! `error` expects the rules to be refused on that field.

use std::collections::{BTreeMap, HashMap};

use cohort_app::targeting::parse_rule;
use cohort_core::targeting::{Platform, RuleId, TargetingRule, VisitorState};
use cohort_core::{CustomerId, Invalid, SegmentId, TargetGroupId, Timestamp};
use cohort_engine::targeting::{
    CustomerView, Decision, Device, GroupInfo, Hit, Location, Outcome, SESSION_TIMEOUT_MICROS, Targeting,
};
use serde_json::Value;

const START: i64 = 1_790_000_000_000_000;

fn rules(case: &Value) -> Result<Vec<TargetingRule>, Invalid> {
    case["rules"]
        .as_array()
        .map(|rules| {
            rules
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let mut r = r.clone();
                    let id = r.as_object_mut().unwrap().remove("id").and_then(|v| v.as_i64());
                    parse_rule(RuleId::new(id.unwrap_or(i as i64 + 1)), &r)
                })
                .collect()
        })
        .unwrap_or(Ok(Vec::new()))
}

fn groups(case: &Value) -> HashMap<TargetGroupId, GroupInfo> {
    case["groups"]
        .as_array()
        .map(|groups| {
            groups
                .iter()
                .map(|g| {
                    (
                        TargetGroupId::new(g["id"].as_i64().unwrap()),
                        GroupInfo {
                            threshold: g["threshold"].as_u64().unwrap_or(1) as u32,
                            active: g["active"].as_bool().unwrap_or(true),
                            linked_segment: g["linked_segment"].as_i64().map(SegmentId::new),
                        },
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| items.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

fn pairs(value: &Value) -> Vec<(i64, u32)> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_i64().unwrap(), p[1].as_u64().unwrap() as u32))
        .collect()
}

fn device(value: &Value) -> Device {
    Device {
        browser: value["browser"].as_str().map(str::to_owned),
        os: value["os"].as_str().map(str::to_owned),
        platform: value["platform"]
            .as_str()
            .map(|p| Platform::parse("platform", p).unwrap())
            .unwrap_or(Platform::Desktop),
        bot: value["bot"].as_bool().unwrap_or(false),
    }
}

fn location(value: &Value) -> Location {
    Location {
        country: value["country"].as_str().map(str::to_owned),
        coordinates: value["coordinates"]
            .as_array()
            .map(|c| (c[0].as_f64().unwrap(), c[1].as_f64().unwrap())),
    }
}

fn outcome(text: &str) -> Outcome {
    match text {
        "fired" => Outcome::Fired,
        "not_matched" => Outcome::NotMatched,
        "already_fired" => Outcome::AlreadyFired,
        other => panic!("unknown outcome {other}"),
    }
}

fn check(name: &str, visit: usize, expect: &Value, decision: &Decision, state: &VisitorState) {
    let at = format!("{name}, visit {visit}");
    let ids = |rules: &[RuleId]| rules.iter().map(|r| r.get()).collect::<Vec<_>>();
    if let Some(fired) = expect.get("fired") {
        let want: Vec<i64> = fired.as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
        assert_eq!(ids(&decision.fired), want, "{at}: fired");
    }
    if let Some(groups) = expect.get("target_groups") {
        let got: Vec<(i64, u32)> = decision.target_groups.iter().map(|(g, w)| (g.get(), *w)).collect();
        assert_eq!(got, pairs(groups), "{at}: target groups");
    }
    if let Some(redirect) = expect.get("redirect") {
        assert_eq!(
            decision.redirect.as_ref().map(|r| r.url.as_str()),
            redirect.as_str(),
            "{at}: redirect"
        );
    }
    if let Some(snippets) = expect.get("snippets") {
        let got: Vec<String> = decision.snippets.iter().map(|s| s.html.clone()).collect();
        assert_eq!(got, strings(snippets), "{at}: snippets");
    }
    if let Some(segments) = expect.get("customer_segments") {
        let got: Vec<(i64, u32)> = decision.customer_segments.iter().map(|(s, n)| (s.get(), *n)).collect();
        assert_eq!(got, pairs(segments), "{at}: customer segments");
    }
    if let Some(activities) = expect.get("activities") {
        let got: Vec<String> = decision.activities.iter().map(|(k, _)| k.as_str().to_owned()).collect();
        assert_eq!(got, strings(activities), "{at}: activities");
    }
    if let Some(tracked) = expect.get("tracked") {
        let got: Vec<(i64, u32)> = state.tracked_segments.iter().map(|(s, n)| (s.get(), *n)).collect();
        assert_eq!(got, pairs(tracked), "{at}: tracked counts");
    }
    if let Some(new_session) = expect.get("new_session") {
        assert_eq!(
            decision.new_session,
            new_session.as_bool().unwrap(),
            "{at}: new session"
        );
    }
    if let Some(outcomes) = expect.get("outcomes") {
        for (rule, want) in outcomes.as_object().unwrap() {
            let rule: i64 = rule.parse().unwrap();
            let got = decision
                .explanation
                .iter()
                .find(|(r, _)| r.get() == rule)
                .map(|(_, o)| *o);
            assert_eq!(
                got,
                Some(outcome(want.as_str().unwrap())),
                "{at}: outcome of rule {rule}"
            );
        }
    }
}

#[test]
fn targeting_cases() {
    let text = include_str!("cases/targeting.json");
    let cases: Vec<Value> = serde_json::from_str(text).expect("cases parse");
    assert!(cases.len() >= 30, "the cases are all there");
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let compiled = rules(case).and_then(|rules| {
            let timeout = case["session_timeout_seconds"]
                .as_i64()
                .map_or(SESSION_TIMEOUT_MICROS, |s| s * 1_000_000);
            Targeting::compile(rules, groups(case), timeout)
        });
        if let Some(field) = case.get("error") {
            let error = compiled.expect_err(name);
            assert_eq!(error.field, field.as_str().unwrap(), "{name}: {error:?}");
            continue;
        }
        let targeting = compiled.unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let mut state = VisitorState::new(Timestamp::from_unix_micros(START));
        for (i, visit) in case["visits"].as_array().unwrap().iter().enumerate() {
            let device = device(&visit["device"]);
            let location = location(&visit["location"]);
            let languages = strings(&visit["languages"]);
            let customer_id = visit["customer"]["id"]
                .as_str()
                .map(|c| CustomerId::parse("customer", c).unwrap());
            let customer_segments: BTreeMap<SegmentId, u32> = visit["customer"]["segments"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (SegmentId::new(k.parse().unwrap()), v.as_u64().unwrap() as u32))
                        .collect()
                })
                .unwrap_or_default();
            let page_segments: Vec<SegmentId> = visit["page_segments"]
                .as_array()
                .map(|s| s.iter().map(|v| SegmentId::new(v.as_i64().unwrap())).collect())
                .unwrap_or_default();
            let hit = Hit {
                now: Timestamp::from_unix_micros(START + visit["at"].as_i64().unwrap_or(i as i64) * 1_000_000),
                url: visit["url"].as_str().unwrap_or("https://shop.example/"),
                referrer: visit["referrer"].as_str(),
                device: &device,
                location: &location,
                languages: &languages,
                customer: customer_id.as_ref().map(|id| CustomerView {
                    id,
                    segments: &customer_segments,
                    profiling_consent: visit["customer"]["consent"].as_bool().unwrap_or(true),
                }),
                page_segments: &page_segments,
            };
            let decision = targeting.decide(&mut state, &hit, true);
            check(name, i + 1, &visit["expect"], &decision, &state);
        }
    }
}
