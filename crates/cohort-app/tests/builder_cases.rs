//! Segment builder decisions, as data: every case in `tests/cases/builders.json` is a
//! builder definition, a customer (attributes, activities) and a time, and either the
//! segments expected or the field a refused definition names.

use std::collections::HashMap;

use cohort_app::builders::parse_builder;
use cohort_app::import::attributes_from_json;
use cohort_core::{ActivityType, Timestamp};
use serde_json::Value;

fn check(case: &Value) {
    let name = case["name"].as_str().expect("every case has a name");
    let compiled = parse_builder(&case["builder"]);
    if let Some(field) = case.get("error") {
        let err = compiled.expect_err(name);
        assert_eq!(err.field, field.as_str().unwrap(), "{name}: {err}");
        return;
    }
    let compiled = compiled.unwrap_or_else(|e| panic!("{name}: {e}"));
    let now = Timestamp::parse("now", case["now"].as_str().expect("a case has a time")).unwrap();
    let map = case["attributes"].as_object().cloned().unwrap_or_default();
    let attributes = attributes_from_json(&map).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut activities: HashMap<ActivityType, Vec<Timestamp>> = HashMap::new();
    for a in case["activities"].as_array().cloned().unwrap_or_default() {
        let kind = ActivityType::parse("type", a["type"].as_str().unwrap()).unwrap();
        activities
            .entry(kind)
            .or_default()
            .push(Timestamp::parse("at", a["at"].as_str().unwrap()).unwrap());
    }
    let got: Vec<String> = compiled
        .evaluate(&attributes, &activities, now)
        .iter()
        .map(|s| s.to_string())
        .collect();
    let expected: Vec<String> = case["expect"]
        .as_array()
        .expect("expect or error")
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, expected, "{name}");
}

#[test]
fn every_builder_case_holds() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cases/builders.json")).unwrap();
    let cases: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert!(cases.len() >= 15, "the case file is read");
    for case in &cases {
        check(case);
    }
}
