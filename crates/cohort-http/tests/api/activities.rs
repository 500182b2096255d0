//! Activities over HTTP: one as JSON, batches as NDJSON, idempotent retries, filters.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, problem, spawn_app};

async fn ndjson(app: &TestApp, lines: &str) -> reqwest::Response {
    app.request(Method::POST, "/v1/activities", &app.ingest)
        .header("content-type", "application/x-ndjson")
        .body(lines.to_owned())
        .send()
        .await
        .unwrap()
}

async fn listed(app: &TestApp, query: &str) -> Vec<String> {
    let body: Value = app
        .get(&format!("/v1/customers/C-1/activities{query}"))
        .await
        .json()
        .await
        .unwrap();
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn an_order_is_recorded_once_even_when_retried() {
    let app = spawn_app().await;
    app.create("/v1/customers", json!({"id": "C-1"})).await;
    let order = json!({"id": "o-1", "customer": "C-1", "type": "order", "at": "2026-11-01T10:00:00Z",
        "order": {"total": "39.98", "currency": "EUR", "items": [{"sku": "SKI-1", "quantity": 2, "unit_price": 19.99}]}});
    let send = || {
        app.request(Method::POST, "/v1/activities", &app.ingest)
            .json(&order)
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), 201);
    assert_eq!(
        first.json::<Value>().await.unwrap(),
        json!({"recorded": 1, "duplicates": 0, "id": "o-1"})
    );
    let retry = send().await.unwrap();
    assert_eq!(retry.status(), 200);
    assert_eq!(retry.json::<Value>().await.unwrap()["duplicates"], 1);

    let body: Value = app.get("/v1/customers/C-1/activities").await.json().await.unwrap();
    assert_eq!(body["items"].as_array().unwrap().len(), 1);
    assert_eq!(body["items"][0]["order"]["total"], "39.98");
    assert_eq!(body["items"][0]["order"]["items"][0]["unit_price"], "19.99");

    let generated = app
        .request(Method::POST, "/v1/activities", &app.ingest)
        .json(&json!({"customer": "C-1", "type": "login"}))
        .send();
    let generated: Value = generated.await.unwrap().json().await.unwrap();
    assert!(generated["id"].as_str().unwrap().starts_with("a_"));
}

#[tokio::test]
async fn a_batch_is_recorded_whole_or_not_at_all() {
    let app = spawn_app().await;
    app.create("/v1/customers", json!({"id": "C-1"})).await;
    let bad_line = "{\"id\":\"a1\",\"customer\":\"C-1\",\"type\":\"login\"}\n{\"id\":\"a2\",\"customer\":\"C-1\",\"type\":\"Log In\"}\n";
    let p = problem(ndjson(&app, bad_line).await, 400, "invalid_lines").await;
    assert_eq!(
        (p["lines"][0]["line"].clone(), p["lines"][0]["field"].clone()),
        (json!(2), json!("type"))
    );
    let unknown = "{\"id\":\"a1\",\"customer\":\"C-1\",\"type\":\"login\"}\n\n{\"id\":\"a3\",\"customer\":\"nobody\",\"type\":\"login\"}\n";
    let p = problem(ndjson(&app, unknown).await, 422, "dangling_reference").await;
    assert_eq!(p["lines"][0]["line"], 3);
    assert!(listed(&app, "").await.is_empty());

    let good = "{\"id\":\"a1\",\"customer\":\"C-1\",\"type\":\"login\",\"at\":\"2026-11-01T10:00:00Z\"}\n\
                {\"id\":\"a2\",\"customer\":\"C-1\",\"type\":\"page_view\",\"at\":\"2026-11-02T10:00:00Z\",\"attributes\":{\"url\":\"/ski\"}}\n\
                {\"id\":\"a1\",\"customer\":\"C-1\",\"type\":\"login\"}\n";
    let body: Value = ndjson(&app, good).await.json().await.unwrap();
    assert_eq!(body, json!({"recorded": 2, "duplicates": 1}));
    assert_eq!(listed(&app, "?type=page_view").await, ["a2"]);
    assert_eq!(listed(&app, "?since=2026-11-02T00:00:00Z").await, ["a2"]);
    assert_eq!(listed(&app, "?until=2026-11-02T00:00:00Z").await, ["a1"]);
    problem(
        app.get("/v1/customers/C-1/activities?since=yesterday").await,
        400,
        "invalid_query",
    )
    .await;
    problem(app.get("/v1/customers/nobody/activities").await, 404, "not_found").await;
    let text = app
        .request(Method::POST, "/v1/activities", &app.ingest)
        .header("content-type", "text/plain")
        .body("x");
    problem(text.send().await.unwrap(), 415, "unsupported_media_type").await;
}

#[tokio::test]
async fn a_batch_of_many_parts_fails_whole_on_a_late_line_and_records_whole_otherwise() {
    let app = spawn_app().await;
    app.create("/v1/customers", json!({"id": "C-1"})).await;
    let line =
        |i: usize, customer: &str| format!("{{\"id\":\"a{i}\",\"customer\":\"{customer}\",\"type\":\"login\"}}\n");
    // 10,000 lines are parsed and written in several parts; the unknown customer is
    // in the last one, after earlier parts were written.
    let mut late: String = (1..10_000).map(|i| line(i, "C-1")).collect();
    late.push_str(&line(10_000, "nobody"));
    let p = problem(ndjson(&app, &late).await, 422, "dangling_reference").await;
    assert_eq!(p["lines"][0]["line"], 10_000);
    assert!(listed(&app, "").await.is_empty());

    let mut bad: String = (1..10_000).map(|i| line(i, "C-1")).collect();
    bad.push_str("{\"id\":\"x\",\"customer\":\"C-1\",\"type\":\"Log In\"}\n");
    let p = problem(ndjson(&app, &bad).await, 400, "invalid_lines").await;
    assert_eq!(p["lines"][0]["line"], 10_000);
    assert!(listed(&app, "").await.is_empty());

    // Every bad line is counted; the first 1,000 are listed.
    let many_bad: String = (1..=1_500)
        .map(|i| format!("{{\"id\":\"b{i}\",\"customer\":\"C-1\",\"type\":\"Log In\"}}\n"))
        .collect();
    let p = problem(ndjson(&app, &many_bad).await, 400, "invalid_lines").await;
    assert_eq!(p["detail"], "1500 lines are invalid");
    assert_eq!(p["lines"].as_array().unwrap().len(), 1_000);

    // A retry of the first half inside the batch counts as duplicates.
    let mut good: String = (1..=10_000).map(|i| line(i, "C-1")).collect();
    good.extend((1..=5_000).map(|i| line(i, "C-1")));
    let body: Value = ndjson(&app, &good).await.json().await.unwrap();
    assert_eq!(body, json!({"recorded": 10_000, "duplicates": 5_000}));
}
