//! Pimcore CMF's four example use cases of targeting with customer data, end to end
//! over HTTP: segments used 1:1 as target groups; target groups initialized from the
//! customer's segments at every visit; two-step profiling with tracked segments; and
//! tracked segments saved to the customer once known.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};
use crate::targeting::context;

async fn shop(app: &TestApp) {
    app.create(
        "/v1/applications",
        json!({"id": "shop", "name": "Shop", "default_currency": "EUR"}),
    )
    .await;
}

/// A segment of group `group` (created when absent), used as a target group: returns
/// (segment id, target group id).
async fn segment_as_target_group(app: &TestApp, group: &Value, name: &str) -> (Value, Value) {
    let segment = app
        .create("/v1/segments", json!({"group": group["id"], "name": name}))
        .await;
    let response = app
        .request(
            Method::PUT,
            &format!("/v1/segments/{}/target-group", segment["id"]),
            &app.admin,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let linked: Value = response.json().await.unwrap();
    (segment["id"].clone(), linked["id"].clone())
}

async fn customer_segments(app: &TestApp, customer: &str) -> Vec<(i64, u64)> {
    let body: Value = app
        .get(&format!("/v1/customers/{customer}/segments"))
        .await
        .json()
        .await
        .unwrap();
    body["segments"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|m| {
            (
                m["segment"].as_i64().unwrap(),
                m["application_counter"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn groups(answer: &Value) -> Vec<(i64, u64)> {
    answer["target_groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["id"].as_i64().unwrap(), g["weight"].as_u64().unwrap()))
        .collect()
}

#[tokio::test]
async fn segments_used_one_to_one_as_target_groups_follow_the_customer_across_devices() {
    let app = spawn_app().await;
    shop(&app).await;
    let interests = app.create("/v1/segment-groups", json!({"name": "Interests"})).await;
    let (skiing, skiers) = segment_as_target_group(&app, &interests, "Skiing").await;
    app.create("/v1/customers", json!({"id": "C-1", "profiling_consent": true}))
        .await;
    app.create(
        "/v1/targeting/rules",
        json!({"name": "profiling: ski fan", "conditions": {"url": "/ski"},
               "actions": [{"assign_target_group": skiers, "linked_segment": "assign"}]}),
    )
    .await;
    app.create(
        "/v1/targeting/rules",
        json!({"name": "init target groups", "scope": "session", "priority": -1,
               "conditions": {"customer_logged_in": true},
               "actions": [{"apply_target_groups_from_segments": "only_merge"}]}),
    )
    .await;

    // On the laptop: a ski page, logged in. The segment is stored on the customer.
    let laptop = context(&app, json!({"url": "https://shop.example/ski", "customer": "C-1"})).await;
    assert_eq!(groups(&laptop), vec![(skiers.as_i64().unwrap(), 1)]);
    assert_eq!(
        customer_segments(&app, "C-1").await,
        vec![(skiing.as_i64().unwrap(), 1)]
    );

    // On the phone, a new visitor: the target group comes from the customer's segment.
    let phone = context(&app, json!({"url": "https://shop.example/", "customer": "C-1"})).await;
    assert_ne!(phone["visitor"], laptop["visitor"]);
    assert_eq!(groups(&phone), vec![(skiers.as_i64().unwrap(), 1)]);

    // An anonymous visitor on the phone gets nothing.
    let anonymous = context(&app, json!({"url": "https://shop.example/"})).await;
    assert!(groups(&anonymous).is_empty());
}

#[tokio::test]
async fn target_groups_are_initialized_from_the_customer_segments_and_follow_their_changes() {
    let app = spawn_app().await;
    shop(&app).await;
    let tiers = app.create("/v1/segment-groups", json!({"name": "Tiers"})).await;
    let (gold, gold_group) = segment_as_target_group(&app, &tiers, "Gold").await;
    let (vip, vip_group) = segment_as_target_group(&app, &tiers, "VIP").await;
    app.create("/v1/customers", json!({"id": "C-1"})).await;
    let add = |segment: &Value| json!({"add": [segment]});
    assert!(
        app.post("/v1/customers/C-1/segments", add(&gold))
            .await
            .status()
            .is_success()
    );
    assert!(
        app.post("/v1/customers/C-1/segments", add(&gold))
            .await
            .status()
            .is_success()
    );
    app.create(
        "/v1/targeting/rules",
        json!({"name": "init_target_groups", "scope": "session_with_variables",
               "conditions": {"customer_segments_changed": true},
               "actions": [{"apply_target_groups_from_segments": "cleanup_and_overwrite"}]}),
    )
    .await;

    let first = context(&app, json!({"url": "https://shop.example/", "customer": "C-1"})).await;
    let visitor = first["visitor"].clone();
    assert_eq!(
        groups(&first),
        vec![(gold_group.as_i64().unwrap(), 2)],
        "weight = the application counter"
    );
    assert_eq!(first["fired"].as_array().unwrap().len(), 1);

    // Same session, nothing changed: the rule does not run again.
    let again = context(
        &app,
        json!({"visitor": visitor, "url": "https://shop.example/a", "customer": "C-1"}),
    )
    .await;
    assert!(again["fired"].as_array().unwrap().is_empty());

    // The customer's segments change (VIP added, Gold removed): the next request applies it.
    let changed = app
        .post("/v1/customers/C-1/segments", json!({"add": [vip], "remove": [gold]}))
        .await;
    assert!(changed.status().is_success());
    let after = context(
        &app,
        json!({"visitor": visitor, "url": "https://shop.example/b", "customer": "C-1"}),
    )
    .await;
    assert_eq!(after["fired"].as_array().unwrap().len(), 1);
    assert_eq!(
        groups(&after),
        vec![(vip_group.as_i64().unwrap(), 1)],
        "Gold cleaned up"
    );
}

#[tokio::test]
async fn two_step_profiling_assigns_the_target_group_once_a_segment_was_tracked_five_times() {
    let app = spawn_app().await;
    shop(&app).await;
    let interests = app.create("/v1/segment-groups", json!({"name": "Interests"})).await;
    let sports_cars = app
        .create("/v1/segments", json!({"group": interests["id"], "name": "Sports cars"}))
        .await;
    let fans = app
        .create("/v1/target-groups", json!({"name": "sports car fans"}))
        .await;
    // Step one: every visit of a sports car page tracks the segment (a rule here; the
    // page's own tags do the same).
    app.create(
        "/v1/targeting/rules",
        json!({"name": "profiling: sports car fan", "priority": 1, "conditions": {"url": "/cars/(ferrari|porsche)"},
               "actions": [{"track_segment": sports_cars["id"]}]}),
    )
    .await;
    // Step two: every fifth time, the target group gets weight.
    app.create(
        "/v1/targeting/rules",
        json!({"name": "profiling: sports car fan, apply target group", "priority": 2,
               "conditions": {"has_segment": sports_cars["id"], "tracked": true, "customer": false, "op": "%", "value": 5},
               "actions": [{"assign_target_group": fans["id"]}]}),
    )
    .await;

    let mut visitor = Value::Null;
    for visit in 1..=5 {
        let page = if visit % 2 == 0 { "ferrari" } else { "porsche" };
        let mut body = json!({"url": format!("https://shop.example/cars/{page}")});
        if !visitor.is_null() {
            body["visitor"] = visitor.clone();
        }
        let answer = context(&app, body).await;
        visitor = answer["visitor"].clone();
        let tracked = &answer["segments"]["tracked"][0];
        assert_eq!(tracked["count"], visit);
        if visit < 5 {
            assert!(groups(&answer).is_empty(), "visit {visit}");
        } else {
            assert_eq!(groups(&answer), vec![(fans["id"].as_i64().unwrap(), 1)]);
        }
    }
    // Other pages track nothing.
    let other = context(
        &app,
        json!({"visitor": visitor, "url": "https://shop.example/cars/van"}),
    )
    .await;
    assert_eq!(other["segments"]["tracked"][0]["count"], 5);
}

#[tokio::test]
async fn tracked_segments_are_saved_to_the_customer_once_known() {
    let app = spawn_app().await;
    shop(&app).await;
    let interests = app.create("/v1/segment-groups", json!({"name": "Interests"})).await;
    let hiking = app
        .create("/v1/segments", json!({"group": interests["id"], "name": "Hiking"}))
        .await;
    let cycling = app
        .create("/v1/segments", json!({"group": interests["id"], "name": "Cycling"}))
        .await;
    app.create("/v1/customers", json!({"id": "C-7", "profiling_consent": true}))
        .await;
    app.create(
        "/v1/targeting/rules",
        json!({"name": "visit counter", "scope": "session", "conditions": {"customer_logged_in": true},
               "actions": [{"save_tracked_segments": "all", "min_count": 3}]}),
    )
    .await;

    // Anonymous: pages tagged Hiking three times, Cycling once.
    let mut visitor = Value::Null;
    for tags in [
        json!([hiking["id"]]),
        json!([hiking["id"], cycling["id"]]),
        json!([hiking["id"]]),
    ] {
        let mut body = json!({"url": "https://shop.example/trails", "segments": tags});
        if !visitor.is_null() {
            body["visitor"] = visitor.clone();
        }
        visitor = context(&app, body).await["visitor"].clone();
    }
    assert!(customer_segments(&app, "C-7").await.is_empty());

    // The visitor logs in: what was tracked often enough goes to the customer.
    let known = context(
        &app,
        json!({"visitor": visitor, "url": "https://shop.example/account", "customer": "C-7"}),
    )
    .await;
    assert_eq!(known["fired"].as_array().unwrap().len(), 1);
    assert_eq!(
        customer_segments(&app, "C-7").await,
        vec![(hiking["id"].as_i64().unwrap(), 1)]
    );
}
