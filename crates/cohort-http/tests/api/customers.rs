//! Customers, their segments and bulk upserts over HTTP.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, problem, spawn_app};

async fn segments_fixture(app: &TestApp) -> (i64, i64, i64) {
    let tiers = app
        .create("/v1/segment-groups", json!({"name": "Tier", "exclusive": true}))
        .await;
    let interests = app.create("/v1/segment-groups", json!({"name": "Interests"})).await;
    let silver = app
        .create("/v1/segments", json!({"group": tiers["id"], "name": "Silver"}))
        .await;
    let gold = app
        .create("/v1/segments", json!({"group": tiers["id"], "name": "Gold"}))
        .await;
    let ski = app
        .create("/v1/segments", json!({"group": interests["id"], "name": "Ski"}))
        .await;
    (
        silver["id"].as_i64().unwrap(),
        gold["id"].as_i64().unwrap(),
        ski["id"].as_i64().unwrap(),
    )
}

fn segment_ids(body: &Value) -> Vec<i64> {
    let mut ids: Vec<i64> = body["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["segment"].as_i64().unwrap())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_customer_round_trips_with_typed_attributes_and_merges_updates() {
    let app = spawn_app().await;
    let attributes =
        json!({"birthdate": "1985-03-01", "zip": "01234", "score": 12.5, "orders": 3, "vip": true, "tags": ["ski"]});
    let created = app
        .create("/v1/customers", json!({"id": "C-1", "attributes": attributes}))
        .await;
    assert_eq!(created["attributes"], attributes);
    assert_eq!(
        (created["active"].clone(), created["profiling_consent"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(created["created_at"], "2026-09-21T14:13:20Z");

    app.clock.advance_micros(1_000_000);
    let patch = json!({"attributes": {"zip": null, "tier": "gold"}, "profiling_consent": true});
    let updated: Value = app
        .send_json(Method::PATCH, "/v1/customers/C-1", patch)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(updated["attributes"]["tier"], "gold");
    assert!(updated["attributes"].get("zip").is_none());
    assert_eq!(updated["updated_at"], "2026-09-21T14:13:21Z");
    assert_eq!(
        app.get("/v1/customers/C-1").await.json::<Value>().await.unwrap(),
        updated
    );

    let dup = app.post("/v1/customers", json!({"id": "C-1"})).await;
    assert_eq!(problem(dup, 409, "conflict").await["field"], "id");
}

#[tokio::test]
async fn bad_customer_input_names_the_field_and_changes_nothing() {
    let app = spawn_app().await;
    app.create("/v1/customers", json!({"id": "C-1", "attributes": {"city": "Lyon"}}))
        .await;
    let before = app.get("/v1/customers/C-1").await.json::<Value>().await.unwrap();
    let cases = [
        (
            Method::POST,
            "/v1/customers",
            json!({"id": "a b"}),
            "invalid_field",
            "id",
        ),
        (
            Method::POST,
            "/v1/customers",
            json!({"id": "x", "attributes": {"a": {"nested": 1}}}),
            "invalid_field",
            "attributes.a",
        ),
        (
            Method::POST,
            "/v1/customers",
            json!({"id": "x", "attributes": {"2bad": 1}}),
            "invalid_field",
            "attributes.2bad",
        ),
        (
            Method::POST,
            "/v1/customers",
            json!({"id": "x", "attributes": {"l": [[1]]}}),
            "invalid_field",
            "attributes.l[0]",
        ),
        (
            Method::PATCH,
            "/v1/customers/C-1",
            json!({"active": "yes"}),
            "invalid_field",
            "active",
        ),
        (
            Method::PATCH,
            "/v1/customers/C-1",
            json!({"attributes": {"city": {}}}),
            "invalid_field",
            "attributes.city",
        ),
        (
            Method::PATCH,
            "/v1/customers/C-1",
            json!({"nickname": "x"}),
            "unknown_field",
            "nickname",
        ),
    ];
    for (method, path, body, code, field) in cases {
        let p = problem(app.send_json(method, path, body.clone()).await, 400, code).await;
        assert_eq!(p["field"], field, "{body}");
    }
    assert_eq!(
        app.get("/v1/customers/C-1").await.json::<Value>().await.unwrap(),
        before
    );
    problem(app.get("/v1/customers/x").await, 404, "not_found").await;
}

#[tokio::test]
async fn segments_are_added_and_removed_atomically() {
    let app = spawn_app().await;
    let (silver, gold, ski) = segments_fixture(&app).await;
    app.create("/v1/customers", json!({"id": "C-1"})).await;

    let body: Value = app
        .post("/v1/customers/C-1/segments", json!({"add": [silver, ski]}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(segment_ids(&body), vec![silver, ski]);

    // A failing change (dangling segment) leaves the memberships as they were.
    let failing = app
        .post(
            "/v1/customers/C-1/segments",
            json!({"add": [gold, 999], "remove": [ski]}),
        )
        .await;
    assert_eq!(
        problem(failing, 422, "dangling_reference").await["field"],
        "add[1].segment"
    );
    let failing = app
        .post("/v1/customers/C-1/segments", json!({"add": [silver, gold]}))
        .await;
    assert_eq!(problem(failing, 400, "invalid_field").await["field"], "add[1].segment");
    let failing = app
        .post(
            "/v1/customers/C-1/segments",
            json!({"add": [{"segment": gold, "source": "magic"}]}),
        )
        .await;
    assert_eq!(problem(failing, 400, "invalid_field").await["field"], "add[0].source");
    let unchanged: Value = app.get("/v1/customers/C-1/segments").await.json().await.unwrap();
    assert_eq!(segment_ids(&unchanged), vec![silver, ski]);

    // Gold replaces silver in the exclusive tier group; ski is removed.
    let change = json!({"add": [{"segment": gold, "source": "external", "expires_at": "2030-01-01T00:00:00Z"}], "remove": [ski]});
    let body: Value = app
        .post("/v1/customers/C-1/segments", change)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(segment_ids(&body), vec![gold]);
    assert_eq!(body["segments"][0]["source"], "external");
    assert_eq!(body["segments"][0]["expires_at"], "2030-01-01T00:00:00Z");

    let members: Value = app
        .get(&format!("/v1/customers?segment={gold}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(members["items"][0]["id"], "C-1");
    let missing = app.post("/v1/customers/nobody/segments", json!({"add": [gold]})).await;
    problem(missing, 404, "not_found").await;
}

#[tokio::test]
async fn an_expired_membership_stops_counting() {
    let app = spawn_app().await;
    let (_, _, ski) = segments_fixture(&app).await;
    app.create("/v1/customers", json!({"id": "C-1"})).await;
    let soon = "2026-09-21T14:14:00Z";
    app.post(
        "/v1/customers/C-1/segments",
        json!({"add": [{"segment": ski, "expires_at": soon}]}),
    )
    .await;
    let body: Value = app.get("/v1/customers/C-1/segments").await.json().await.unwrap();
    assert_eq!(segment_ids(&body), vec![ski]);
    app.clock.advance_micros(60_000_000);
    let body: Value = app.get("/v1/customers/C-1/segments").await.json().await.unwrap();
    assert_eq!(segment_ids(&body), Vec::<i64>::new());
}

async fn bulk(app: &TestApp, body: &str) -> reqwest::Response {
    app.request(Method::POST, "/v1/customers:bulk", &app.ingest)
        .header("content-type", "application/x-ndjson")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_bulk_upsert_writes_every_line() {
    let app = spawn_app().await;
    app.create("/v1/customers", json!({"id": "old", "active": false})).await;
    let lines = "{\"id\":\"old\",\"attributes\":{\"city\":\"Rome\"}}\n\n{\"id\":\"new\",\"profiling_consent\":true}\n";
    let response = bulk(&app, lines).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["written"], 2);
    let old: Value = app.get("/v1/customers/old").await.json().await.unwrap();
    assert_eq!(
        (old["attributes"]["city"].clone(), old["active"].clone()),
        (json!("Rome"), json!(false))
    );
    let new: Value = app.get("/v1/customers/new").await.json().await.unwrap();
    assert_eq!(new["profiling_consent"], true);
}

#[tokio::test]
async fn a_bulk_upsert_with_a_bad_line_stores_nothing_and_names_the_lines() {
    let app = spawn_app().await;
    let lines = "{\"id\":\"a\"}\n{\"id\":\"b\",\"extra\":1}\n{\"id\":\"c\"}\nnot json\n";
    let p = problem(bulk(&app, lines).await, 400, "invalid_lines").await;
    assert_eq!(p["lines"][0]["line"], 2);
    assert_eq!(p["lines"][0]["field"], "extra");
    assert_eq!(p["lines"][1]["line"], 4);
    problem(app.get("/v1/customers/a").await, 404, "not_found").await;
    let wrong_type = app
        .request(Method::POST, "/v1/customers:bulk", &app.ingest)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    problem(wrong_type, 415, "unsupported_media_type").await;
}

#[tokio::test]
async fn a_bad_line_after_flushed_batches_rolls_every_batch_back() {
    let app = spawn_app().await;
    // More lines than one write batch (5,000), so batches were written before the bad line.
    let mut lines: String = (0..6_000).map(|i| format!("{{\"id\":\"b{i}\"}}\n")).collect();
    lines.push_str("{\"id\":\"last\",\"active\":\"no\"}\n");
    let p = problem(bulk(&app, &lines).await, 400, "invalid_lines").await;
    assert_eq!(p["lines"][0]["line"], 6_001);
    problem(app.get("/v1/customers/b0").await, 404, "not_found").await;
    let listed: Value = app.get("/v1/customers?limit=1").await.json().await.unwrap();
    assert_eq!(listed["items"], json!([]));
}

#[tokio::test]
async fn metrics_count_requests_per_route() {
    let app = spawn_app().await;
    app.get("/v1/customers/nobody").await;
    let text = app.public_text("/metrics").await;
    assert!(text.contains(r#"route="/v1/customers/{id}""#), "{text}");
    assert!(text.contains("http_request_duration_seconds_bucket"), "{text}");
}

#[tokio::test]
async fn a_customer_exports_everything_and_a_deletion_leaves_only_the_log() {
    let app = spawn_app().await;
    let (_, gold, _) = segments_fixture(&app).await;
    app.create("/v1/customers", json!({"id": "C-1", "attributes": {"city": "Lyon"}}))
        .await;
    app.post("/v1/customers/C-1/segments", json!({"add": [gold]})).await;
    let order =
        json!({"id": "o-1", "customer": "C-1", "type": "order", "order": {"total": "10.00", "currency": "EUR"}});
    app.request(Method::POST, "/v1/activities", &app.ingest)
        .json(&order)
        .send()
        .await
        .unwrap();

    let export: Value = app.get("/v1/customers/C-1/export").await.json().await.unwrap();
    assert_eq!(export["customer"]["attributes"]["city"], "Lyon");
    assert_eq!(export["memberships"][0]["segment"], "standard/tier/gold");
    assert_eq!(export["activities"][0]["id"], "o-1");
    let forbidden = app
        .request(Method::GET, "/v1/customers/C-1/export", &app.read)
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), 403);

    let deleted = app
        .request(Method::DELETE, "/v1/customers/C-1", &app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    problem(app.get("/v1/customers/C-1/export").await, 404, "not_found").await;
    problem(app.get("/v1/customers/C-1/activities").await, 404, "not_found").await;
    let log: Value = app
        .get("/v1/deletions?since=2026-01-01T00:00:00Z")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        log["items"],
        json!([{"customer": "C-1", "deleted_at": "2026-09-21T14:13:20Z"}])
    );
    let later: Value = app
        .get("/v1/deletions?since=2027-01-01T00:00:00Z")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(later["items"], json!([]));

    // Recreated under the same id, the customer starts empty.
    app.create("/v1/customers", json!({"id": "C-1"})).await;
    let export: Value = app.get("/v1/customers/C-1/export").await.json().await.unwrap();
    assert_eq!(
        (export["memberships"].clone(), export["activities"].clone()),
        (json!([]), json!([]))
    );
}
