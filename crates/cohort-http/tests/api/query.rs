//! Membership queries answered from the in-memory index, kept in step with writes.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, problem, spawn_app};

async fn query(app: &TestApp, body: Value) -> Value {
    let response = app.send_json(Method::POST, "/v1/segments/query", body).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn queries_follow_every_membership_change() {
    let app = spawn_app().await;
    let tiers = app
        .create("/v1/segment-groups", json!({"name": "Tier", "exclusive": true}))
        .await;
    let interests = app.create("/v1/segment-groups", json!({"name": "Interests"})).await;
    let gold = app
        .create("/v1/segments", json!({"group": tiers["id"], "name": "Gold"}))
        .await;
    let ski = app
        .create("/v1/segments", json!({"group": interests["id"], "name": "Ski"}))
        .await;
    let bike = app
        .create("/v1/segments", json!({"group": interests["id"], "name": "Bike"}))
        .await;
    for (id, segments) in [
        ("A", vec![&gold, &ski]),
        ("B", vec![&gold, &ski, &bike]),
        ("C", vec![&ski]),
        ("D", vec![]),
    ] {
        app.create("/v1/customers", json!({"id": id})).await;
        let add: Vec<Value> = segments.iter().map(|s| s["id"].clone()).collect();
        app.post(&format!("/v1/customers/{id}/segments"), json!({"add": add}))
            .await;
    }
    let gold_ski_not_bike =
        json!({"query": {"and": ["standard/tier/gold", "standard/interests/ski", {"not": "standard/interests/bike"}]}});
    assert_eq!(
        query(&app, gold_ski_not_bike.clone()).await,
        json!({"count": 1, "customers": ["A"]})
    );
    let not_ski = query(&app, json!({"query": {"not": "standard/interests/ski"}})).await;
    assert_eq!(not_ski["customers"], json!(["D"]));

    // Every write path is followed: a change, a customer deletion, an expiry.
    app.post("/v1/customers/B/segments", json!({"remove": [bike["id"]]}))
        .await;
    assert_eq!(query(&app, gold_ski_not_bike.clone()).await["count"], 2);
    app.request(Method::DELETE, "/v1/customers/A", &app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(query(&app, gold_ski_not_bike.clone()).await["customers"], json!(["B"]));
    let soon = "2026-09-21T14:14:00Z";
    app.post(
        "/v1/customers/D/segments",
        json!({"add": [{"segment": ski["id"], "expires_at": soon}]}),
    )
    .await;
    assert_eq!(
        query(&app, json!({"query": "standard/interests/ski"})).await["count"],
        3
    );
    app.clock.advance_micros(60_000_000);
    assert_eq!(
        query(&app, json!({"query": "standard/interests/ski"})).await["count"],
        2
    );
}

#[tokio::test]
async fn query_pages_continue_with_a_cursor() {
    let app = spawn_app().await;
    let group = app.create("/v1/segment-groups", json!({"name": "Interests"})).await;
    let ski = app
        .create("/v1/segments", json!({"group": group["id"], "name": "Ski"}))
        .await;
    for i in 0..5 {
        app.create("/v1/customers", json!({"id": format!("C{i}")})).await;
        app.post(&format!("/v1/customers/C{i}/segments"), json!({"add": [ski["id"]]}))
            .await;
    }
    let first = query(&app, json!({"query": "standard/interests/ski", "limit": 2})).await;
    assert_eq!(
        (first["count"].clone(), first["customers"].clone()),
        (json!(5), json!(["C0", "C1"]))
    );
    let next = query(
        &app,
        json!({"query": "standard/interests/ski", "limit": 2, "cursor": first["next_cursor"]}),
    )
    .await;
    assert_eq!(next["customers"], json!(["C2", "C3"]));
    let count_only = query(&app, json!({"query": "standard/interests/ski", "limit": 0})).await;
    assert_eq!(count_only, json!({"count": 5, "customers": []}));
}

#[tokio::test]
async fn bad_queries_name_the_offending_part() {
    let app = spawn_app().await;
    let cases = [
        (json!({"query": {"and": ["standard/x/y"]}}), "query.and[0]"),
        (json!({"query": {"xor": []}}), "query.xor"),
        (json!({"query": {"and": "standard/x/y"}}), "query.and"),
        (json!({"query": 7}), "query"),
        (json!({"query": "nogroup"}), "query"),
        (json!({"query": "standard/x/y", "limit": 20000}), "limit"),
    ];
    for (body, field) in cases {
        let p = problem(
            app.send_json(Method::POST, "/v1/segments/query", body.clone()).await,
            400,
            "invalid_field",
        )
        .await;
        assert_eq!(p["field"], field, "{body}");
    }
}
