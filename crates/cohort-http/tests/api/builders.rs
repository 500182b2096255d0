//! Segment builders over HTTP: definitions checked when saved, full builds as jobs
//! with progress, the resulting segments served by the provider.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, problem, spawn_app};

async fn calculated_group(app: &TestApp, name: &str, exclusive: bool) -> Value {
    app.create(
        "/v1/segment-groups",
        json!({"name": name, "calculated": true, "exclusive": exclusive}),
    )
    .await
}

fn ages() -> Value {
    json!({"kind": "age_groups", "attribute": "birthdate", "ranges": [
        {"from": 18, "to": 34, "segment": "young"}, {"from": 35, "segment": "older"}]})
}

async fn provided(app: &TestApp, customer: &str) -> Vec<String> {
    let response = app
        .get(&format!("/v1/applications/shop/customers/{customer}/segments"))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let mut names: Vec<String> = body["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["segment"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn builders_are_saved_checked_changed_and_deleted() {
    let app = spawn_app().await;
    let group = calculated_group(&app, "Age", true).await;
    let body = json!({"name": "Ages", "group": group["id"], "definition": ages(), "schedule": "0 3 * * *"});
    let created = app.create("/v1/segment-builders", body.clone()).await;
    assert_eq!(created["definition"], ages());
    assert_eq!(created["schedule"], "0 3 * * *");
    assert_eq!(created["built_at"], Value::Null);
    // Its segments exist in the group.
    let segments: Value = app
        .get(&format!("/v1/segments?group={}", group["id"]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(segments["items"].as_array().unwrap().len(), 2);

    problem(app.post("/v1/segment-builders", body).await, 409, "conflict").await;
    let bad = json!({"name": "Bad", "group": group["id"], "definition": {"kind": "age_groups", "attribute": "birthdate",
        "ranges": [{"from": 30, "to": 20, "segment": "x"}]}});
    let p = problem(app.post("/v1/segment-builders", bad).await, 400, "invalid_field").await;
    assert_eq!(p["field"], "definition.ranges[0].to");
    let rfm = json!({"name": "RFM", "group": group["id"], "definition": {"kind": "rfm"}});
    let p = problem(app.post("/v1/segment-builders", rfm).await, 400, "invalid_field").await;
    assert_eq!(
        p["field"], "definition.kind",
        "an exclusive group cannot take three scores"
    );
    let nowhere = json!({"name": "X", "group": 999, "definition": ages()});
    let p = problem(
        app.post("/v1/segment-builders", nowhere).await,
        422,
        "dangling_reference",
    )
    .await;
    assert_eq!(p["field"], "group");
    let cron = json!({"name": "X", "group": group["id"], "definition": ages(), "schedule": "nightly"});
    let p = problem(app.post("/v1/segment-builders", cron).await, 400, "invalid_field").await;
    assert_eq!(p["field"], "schedule");

    let path = format!("/v1/segment-builders/{}", created["id"]);
    let patched = app
        .send_json(Method::PATCH, &path, json!({"name": "Age groups", "schedule": null}))
        .await;
    assert_eq!(patched.status(), 200);
    let patched: Value = patched.json().await.unwrap();
    assert_eq!(
        (patched["name"].as_str(), &patched["schedule"]),
        (Some("Age groups"), &Value::Null)
    );
    // A bad definition changes nothing; an unknown builder is not found.
    let bad = json!({"definition": {"kind": "age_groups", "ranges": []}});
    let p = problem(app.send_json(Method::PATCH, &path, bad).await, 400, "missing_field").await;
    assert_eq!(p["field"], "definition.attribute");
    let unchanged: Value = app.get(&path).await.json().await.unwrap();
    assert_eq!(unchanged["definition"], ages());
    let missing = app
        .send_json(Method::PATCH, "/v1/segment-builders/999", json!({"enabled": false}))
        .await;
    problem(missing, 404, "not_found").await;
    // The group's kind is the builder's: it cannot be changed under it.
    let kind = app
        .send_json(
            Method::PATCH,
            &format!("/v1/segment-groups/{}", group["id"]),
            json!({"calculated": false}),
        )
        .await;
    let p = problem(kind, 409, "conflict").await;
    assert_eq!(p["field"], "calculated");
    let list: Value = app.get("/v1/segment-builders").await.json().await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);

    let deleted = app.request(Method::DELETE, &path, &app.admin).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    problem(app.get(&path).await, 404, "not_found").await;
}

#[tokio::test]
async fn a_build_job_reports_its_progress_and_its_segments_are_provided() {
    let app = spawn_app().await;
    app.create(
        "/v1/applications",
        json!({"id": "shop", "name": "Shop", "default_currency": "EUR"}),
    )
    .await;
    let age = calculated_group(&app, "Age", true).await;
    let value = calculated_group(&app, "Value", false).await;
    app.create(
        "/v1/segment-builders",
        json!({"name": "Ages", "group": age["id"], "definition": ages()}),
    )
    .await;
    let rfm = app
        .create(
            "/v1/segment-builders",
            json!({"name": "RFM", "group": value["id"], "definition": {"kind": "rfm", "window_days": 365}}),
        )
        .await;
    for (id, birthdate) in [("ann", "1995-03-01"), ("bob", "1950-03-01")] {
        app.create(
            "/v1/customers",
            json!({"id": id, "attributes": {"birthdate": birthdate}}),
        )
        .await;
    }
    let order =
        json!({"customer": "ann", "type": "order", "order": {"total": "42.00", "currency": "EUR", "items": []}});
    let recorded = app
        .request(Method::POST, "/v1/activities", &app.ingest)
        .json(&order)
        .send()
        .await
        .unwrap();
    assert_eq!(recorded.status(), 201, "{}", recorded.text().await.unwrap());

    let started = app.post("/v1/segment-builds", json!({})).await;
    assert_eq!(started.status(), 202);
    let started: Value = started.json().await.unwrap();
    assert_eq!(started["status"], "running");
    let done: Value = app
        .get(&format!("/v1/segment-builds/{}?wait_ms=20000", started["id"]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(
        (done["added"].as_u64(), done["removed"].as_u64()),
        (Some(2 + 3), Some(0))
    );
    assert_eq!(
        (done["phase"].as_str(), done["processed"].as_u64()),
        (Some("scoring"), Some(2))
    );
    assert_eq!(
        provided(&app, "ann").await,
        [
            "standard/age/young",
            "standard/value/f1",
            "standard/value/m1",
            "standard/value/r1"
        ]
    );
    assert_eq!(provided(&app, "bob").await, ["standard/age/older"]);
    let builder: Value = app
        .get(&format!("/v1/segment-builders/{}", rfm["id"]))
        .await
        .json()
        .await
        .unwrap();
    assert!(builder["built_at"].is_string());
    let jobs: Value = app.get("/v1/segment-builds").await.json().await.unwrap();
    assert_eq!(jobs[0]["id"], started["id"]);

    let p = problem(
        app.post("/v1/segment-builds", json!({"builder": 999})).await,
        404,
        "not_found",
    )
    .await;
    assert_eq!(p["field"], "builder");
    problem(app.get("/v1/segment-builds/999").await, 404, "not_found").await;
    let p = problem(
        app.get("/v1/segment-builds/1?wait_ms=60000").await,
        400,
        "invalid_query",
    )
    .await;
    assert_eq!(p["field"], "wait_ms");
}
