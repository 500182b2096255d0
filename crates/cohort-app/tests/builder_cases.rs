//! Segment builder decisions, as data: every case in `tests/cases/builders.json` is a
//! builder definition, a time, and either the field a refused definition names or
//! customers (attributes, activities) with the segments each is expected to get.
//! A case of several customers is a population: RFM scales are fitted to it first.

use std::str::FromStr;

use cohort_app::builders::parse_builder;
use cohort_app::import::attributes_from_json;
use cohort_core::{ActivityType, Attributes, Decimal, Timestamp};
use cohort_engine::{ActivityFact, Aggregates, Profile, RfmBounds, summarize};
use serde_json::Value;

struct Customer {
    attributes: Attributes,
    aggregates: Aggregates,
    expect: Vec<String>,
}

fn customer(name: &str, value: &Value, wanted: &[cohort_engine::Aggregate], now: Timestamp) -> Customer {
    let map = value["attributes"].as_object().cloned().unwrap_or_default();
    let attributes = attributes_from_json(&map).unwrap_or_else(|e| panic!("{name}: {e}"));
    let facts: Vec<ActivityFact> = value["activities"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|a| ActivityFact {
            activity: ActivityType::parse("type", a["type"].as_str().unwrap()).unwrap(),
            at: Timestamp::parse("at", a["at"].as_str().unwrap()).unwrap(),
            amount: a["amount"].as_str().map(|s| Decimal::from_str(s).unwrap()),
        })
        .collect();
    let expect = value["expect"]
        .as_array()
        .unwrap_or_else(|| panic!("{name}: expect or error"))
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    Customer {
        attributes,
        aggregates: summarize(&facts, wanted, now),
        expect,
    }
}

fn profile(c: &Customer) -> Profile<'_> {
    Profile {
        attributes: &c.attributes,
        aggregates: &c.aggregates,
    }
}

fn check(case: &Value) {
    let name = case["name"].as_str().expect("every case has a name");
    let compiled = parse_builder(&case["builder"]);
    if let Some(field) = case.get("error") {
        let err = compiled.expect_err(name);
        assert_eq!(err.field, field.as_str().unwrap(), "{name}: {err}");
        return;
    }
    let mut compiled = compiled.unwrap_or_else(|e| panic!("{name}: {e}"));
    let now = Timestamp::parse("now", case["now"].as_str().expect("a case has a time")).unwrap();
    let wanted = compiled.aggregates().to_vec();
    let customers: Vec<Customer> = match case.get("customers") {
        Some(list) => list
            .as_array()
            .unwrap()
            .iter()
            .map(|c| customer(name, c, &wanted, now))
            .collect(),
        None => vec![customer(name, case, &wanted, now)],
    };
    if compiled.is_population_scored() {
        assert_eq!(compiled.evaluate(profile(&customers[0]), now), None, "{name}: unfitted");
        let measures: Vec<_> = customers
            .iter()
            .filter_map(|c| compiled.rfm_measure(profile(c), now))
            .collect();
        compiled.set_rfm_bounds(Some(RfmBounds::fit(&measures)));
    }
    for (i, c) in customers.iter().enumerate() {
        let got: Vec<String> = compiled
            .evaluate(profile(c), now)
            .unwrap_or_else(|| panic!("{name}: builder cannot decide"))
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(got, c.expect, "{name}: customer {i}");
    }
}

#[test]
fn every_builder_case_holds() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cases/builders.json")).unwrap();
    let cases: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert!(cases.len() >= 40, "the case file is read");
    for case in &cases {
        check(case);
    }
}
