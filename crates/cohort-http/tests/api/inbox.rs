//! Automation reacting to recorded activities through the store's inbox: a batch of
//! more than 1,000 activities is answered before its rules are judged, each activity
//! is judged with its customer's counts right after it however many batches came
//! since, activities recorded before a restart are reacted to after it, and an
//! activity an automation action tracked fires no rule; an order placed through its
//! application is judged as a recorded one.

use reqwest::Method;
use serde_json::{Value, json};

use crate::automation::{rule_read, segments_of, third_order_rule};
use crate::helpers::{TestApp, spawn_app};

/// Records `(id, customer)` orders as one NDJSON batch; returns its answer.
pub(crate) async fn record_orders(app: &TestApp, orders: &[(String, &str)]) -> Value {
    let batch: String = orders
        .iter()
        .map(|(id, customer)| {
            format!(
                "{}\n",
                json!({"id": id, "customer": customer, "type": "order",
                       "order": {"total": "10.00", "currency": "EUR", "items": []}})
            )
        })
        .collect();
    let response = app
        .request(Method::POST, "/v1/activities", &app.ingest)
        .header("content-type", "application/x-ndjson")
        .body(batch)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// `n` orders of `customer`, ids starting with `prefix`.
fn orders<'a>(prefix: &str, customer: &'a str, n: usize) -> Vec<(String, &'a str)> {
    (0..n).map(|i| (format!("{prefix}-{i}"), customer)).collect()
}

async fn fired(app: &TestApp, rule: &Value) -> u64 {
    rule_read(app, &rule["id"]).await["fired"].as_u64().unwrap()
}

#[tokio::test]
async fn large_batches_are_judged_after_their_answer_with_the_counts_right_after_each_order() {
    let app = spawn_app().await;
    let (loyal, rule) = third_order_rule(&app).await;
    for id in ["C-1", "C-2", "C-3"] {
        app.create("/v1/customers", json!({"id": id})).await;
    }
    // Two batches before any reaction: C-1's third order is in the second, C-2's in
    // the first; C-3 orders twice only.
    let mut first = orders("a", "C-2", 999);
    first.extend(orders("a1", "C-1", 2));
    record_orders(&app, &first).await;
    let mut second = orders("b1", "C-1", 2);
    second.extend(orders("b3", "C-3", 2));
    second.extend(orders("b2", "C-2", 998));
    record_orders(&app, &second).await;
    assert_eq!(fired(&app, &rule).await, 0, "not judged before the answer");

    assert_eq!(app.app.automation.react_to_recorded().await.unwrap(), 1_001 + 1_002);
    assert_eq!(fired(&app, &rule).await, 2, "C-1 and C-2, once each");
    assert_eq!(app.app.automation.react_to_recorded().await.unwrap(), 0, "nothing left");
    assert_eq!(app.app.automation.run_due().await.unwrap(), 2);
    let segment = loyal["id"].as_i64().unwrap();
    assert_eq!(segments_of(&app, "C-1").await, vec![segment]);
    assert_eq!(segments_of(&app, "C-2").await, vec![segment]);
    assert!(segments_of(&app, "C-3").await.is_empty());
}

#[tokio::test]
async fn activities_recorded_before_a_restart_are_reacted_to_after_it() {
    let app = spawn_app().await;
    let (loyal, rule) = third_order_rule(&app).await;
    app.create("/v1/customers", json!({"id": "C-1"})).await;
    app.create("/v1/customers", json!({"id": "C-2"})).await;
    let mut batch = orders("a", "C-2", 1_000);
    batch.extend(orders("b", "C-1", 3));
    record_orders(&app, &batch).await;
    let app = app.restart().await;
    assert_eq!(app.app.automation.react_to_recorded().await.unwrap(), 1_003);
    assert_eq!(fired(&app, &rule).await, 2);
    app.app.automation.run_due().await.unwrap();
    assert_eq!(segments_of(&app, "C-1").await, vec![loyal["id"].as_i64().unwrap()]);
}

#[tokio::test]
async fn an_activity_tracked_by_an_action_fires_no_rule() {
    let app = spawn_app().await;
    app.create("/v1/customers", json!({"id": "C-1"})).await;
    // Each rule would set the other off without end.
    let ping = app
        .create(
            "/v1/automation/rules",
            json!({"name": "ping", "triggers": [{"new_activity": "ping"}], "actions": [{"track_activity": "pong"}]}),
        )
        .await;
    let pong = app
        .create(
            "/v1/automation/rules",
            json!({"name": "pong", "triggers": [{"new_activity": "pong"}], "actions": [{"track_activity": "ping"}]}),
        )
        .await;
    let response = app
        .request(Method::POST, "/v1/activities", &app.ingest)
        .json(&json!({"id": "p-1", "customer": "C-1", "type": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(fired(&app, &ping).await, 1, "judged before the answer");
    assert_eq!(app.app.automation.run_due().await.unwrap(), 1);
    assert_eq!(
        app.app.automation.react_to_recorded().await.unwrap(),
        1,
        "the pong is counted"
    );
    assert_eq!(fired(&app, &pong).await, 0, "but fires nothing");
    assert_eq!(app.app.automation.run_due().await.unwrap(), 0);
    let pongs: Value = app
        .get("/v1/customers/C-1/activities?type=pong")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pongs["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_order_placed_through_its_application_fires_activity_rules_before_the_answer() {
    let app = spawn_app().await;
    app.create(
        "/v1/applications",
        json!({"id": "shop", "name": "Shop", "default_currency": "EUR"}),
    )
    .await;
    app.create("/v1/customers", json!({"id": "C-1"})).await;
    let rule = app
        .create(
            "/v1/automation/rules",
            json!({"name": "thanks", "triggers": [{"new_activity": "order"}],
                   "conditions": {"activity_count": "order", "op": "=", "value": 1},
                   "actions": [{"track_activity": "thanked"}]}),
        )
        .await;
    let place = |id: &str| {
        app.request(Method::POST, "/v1/applications/shop/orders", &app.ingest)
            .json(&json!({"id": id, "customer": "C-1", "currency": "EUR",
                          "items": [{"sku": "SKI-1", "quantity": 1, "unit_price": "100.00"}]}))
            .send()
    };
    assert_eq!(place("order-1").await.unwrap().status(), 201);
    assert_eq!(fired(&app, &rule).await, 1);
    assert_eq!(place("order-1").await.unwrap().status(), 200, "placed again");
    assert_eq!(place("order-2").await.unwrap().status(), 201);
    assert_eq!(fired(&app, &rule).await, 1, "the second order is not the first");
}
