//! Applications, segment groups, segments and target groups over HTTP, and the
//! shape of every kind of bad input.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{problem, spawn_app};

#[tokio::test]
async fn an_application_is_created_read_updated_listed_and_deleted() {
    let app = spawn_app().await;
    let created = app
        .create(
            "/v1/applications",
            json!({"id": "shop", "name": "Shop", "default_currency": "EUR",
            "allowed_origins": ["https://Shop.Example.com"]}),
        )
        .await;
    assert_eq!(created["allowed_origins"], json!(["https://shop.example.com"]));
    assert_eq!(created["enabled"], true);
    assert_eq!(
        app.get("/v1/applications/shop").await.json::<Value>().await.unwrap(),
        created
    );

    let updated: Value = app
        .send_json(Method::PATCH, "/v1/applications/shop", json!({"enabled": false}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (updated["enabled"].clone(), updated["name"].clone()),
        (json!(false), json!("Shop"))
    );

    let listed: Value = app.get("/v1/applications?name=sho").await.json().await.unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);

    let deleted = app
        .request(Method::DELETE, "/v1/applications/shop", &app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    problem(app.get("/v1/applications/shop").await, 404, "not_found").await;
}

#[tokio::test]
async fn bad_application_input_is_refused_naming_the_field_and_stores_nothing() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"id": "Shop!", "name": "S", "default_currency": "EUR"}),
            "invalid_field",
            "id",
        ),
        (
            json!({"id": "shop", "name": "  ", "default_currency": "EUR"}),
            "invalid_field",
            "name",
        ),
        (
            json!({"id": "shop", "name": "S", "default_currency": "EURO"}),
            "invalid_field",
            "default_currency",
        ),
        (
            json!({"id": "shop", "name": "S", "default_currency": "EUR", "allowed_origins": ["ftp://x"]}),
            "invalid_field",
            "allowed_origins[0]",
        ),
        (
            json!({"id": "shop", "name": "S", "default_currency": "EUR", "colour": "red"}),
            "unknown_field",
            "colour",
        ),
        (
            json!({"id": "shop", "default_currency": "EUR"}),
            "missing_field",
            "name",
        ),
        (
            json!({"id": 7, "name": "S", "default_currency": "EUR"}),
            "invalid_field",
            "id",
        ),
    ];
    for (body, code, field) in cases {
        let p = problem(app.post("/v1/applications", body.clone()).await, 400, code).await;
        assert_eq!(p["field"], field, "{body}");
    }
    let listed: Value = app.get("/v1/applications").await.json().await.unwrap();
    assert_eq!(listed["items"], json!([]));
}

#[tokio::test]
async fn malformed_json_wrong_media_types_and_oversize_bodies_get_problems() {
    let app = spawn_app().await;
    let send = |body: Vec<u8>, content_type: &'static str| {
        app.request(Method::POST, "/v1/target-groups", &app.admin)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    problem(
        send(b"{\"name\": ".to_vec(), "application/json").await.unwrap(),
        400,
        "invalid_json",
    )
    .await;
    problem(
        send(b"[1, 2]".to_vec(), "application/json").await.unwrap(),
        400,
        "invalid_field",
    )
    .await;
    problem(
        send(b"{\"name\": \"x\"}".to_vec(), "text/plain").await.unwrap(),
        415,
        "unsupported_media_type",
    )
    .await;
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(2 << 20)).into_bytes();
    problem(send(huge, "application/json").await.unwrap(), 413, "payload_too_large").await;
    let listed: Value = app.get("/v1/target-groups").await.json().await.unwrap();
    assert_eq!(listed["items"], json!([]));
}

#[tokio::test]
async fn unknown_routes_and_methods_get_problems() {
    let app = spawn_app().await;
    problem(app.get("/v1/nothing-here").await, 404, "not_found").await;
    let put = app
        .request(Method::PUT, "/v1/segments", &app.admin)
        .send()
        .await
        .unwrap();
    problem(put, 405, "method_not_allowed").await;
    problem(app.get("/v1/segments?limit=0").await, 400, "invalid_query").await;
    problem(app.get("/v1/segments?colour=red").await, 400, "invalid_query").await;
    problem(app.get("/v1/segments?cursor=abc").await, 400, "invalid_query").await;
    problem(app.get("/v1/segments/not-a-number").await, 404, "not_found").await;
}

#[tokio::test]
async fn segments_live_in_groups_with_references_unique_per_group() {
    let app = spawn_app().await;
    let group = app
        .create("/v1/segment-groups", json!({"name": "Loyalty tier", "exclusive": true}))
        .await;
    assert_eq!(group["reference"], "loyalty-tier");
    let gid = group["id"].as_i64().unwrap();
    let gold = app.create("/v1/segments", json!({"group": gid, "name": "Gold"})).await;
    assert_eq!(
        (gold["reference"].clone(), gold["group"].clone()),
        (json!("gold"), json!(gid))
    );

    let dup = app
        .post(
            "/v1/segments",
            json!({"group": gid, "name": "Gold again", "reference": "gold"}),
        )
        .await;
    assert_eq!(problem(dup, 409, "conflict").await["field"], "reference");
    let dangling = app.post("/v1/segments", json!({"group": 999, "name": "Lost"})).await;
    assert_eq!(problem(dangling, 422, "dangling_reference").await["field"], "group");
    let dup_group = app
        .post(
            "/v1/segment-groups",
            json!({"name": "Other", "reference": "loyalty-tier"}),
        )
        .await;
    assert_eq!(problem(dup_group, 409, "conflict").await["field"], "reference");

    let in_use = app
        .request(Method::DELETE, &format!("/v1/segment-groups/{gid}"), &app.admin)
        .send()
        .await
        .unwrap();
    problem(in_use, 409, "in_use").await;

    let listed: Value = app
        .get(&format!("/v1/segments?group={gid}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"], json!([gold]));
}

#[tokio::test]
async fn lists_are_paged_with_cursors() {
    let app = spawn_app().await;
    for i in 0..7 {
        app.create(
            "/v1/target-groups",
            json!({"name": format!("Group {i}"), "threshold": i + 1}),
        )
        .await;
    }
    let mut seen = Vec::new();
    let mut path = "/v1/target-groups?limit=3".to_owned();
    loop {
        let page: Value = app.get(&path).await.json().await.unwrap();
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| g["name"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/target-groups?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, (0..7).map(|i| format!("Group {i}")).collect::<Vec<_>>());
    let bad = app
        .post("/v1/target-groups", json!({"name": "Zero", "threshold": 0}))
        .await;
    assert_eq!(problem(bad, 400, "invalid_field").await["field"], "threshold");
}

#[tokio::test]
async fn a_segment_is_used_as_a_target_group_and_takes_it_along() {
    let app = spawn_app().await;
    let group = app.create("/v1/segment-groups", json!({"name": "Tier"})).await;
    let gold = app
        .create("/v1/segments", json!({"group": group["id"], "name": "Gold"}))
        .await;
    let path = format!("/v1/segments/{}/target-group", gold["id"]);
    let linked = app.request(Method::PUT, &path, &app.admin).send().await.unwrap();
    assert_eq!(linked.status(), 200);
    let linked: Value = linked.json().await.unwrap();
    assert_eq!(
        (linked["name"].as_str(), &linked["segment"]),
        (Some("Gold"), &gold["id"])
    );

    let renamed = app
        .send_json(
            Method::PATCH,
            &format!("/v1/segments/{}", gold["id"]),
            json!({"name": "Gold club"}),
        )
        .await;
    assert_eq!(renamed.status(), 200);
    let group_path = format!("/v1/target-groups/{}", linked["id"]);
    let after: Value = app.get(&group_path).await.json().await.unwrap();
    assert_eq!(after["name"], "Gold club");

    let deleted = app
        .request(Method::DELETE, &format!("/v1/segments/{}", gold["id"]), &app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    problem(app.get(&group_path).await, 404, "not_found").await;
    let gone = app.request(Method::PUT, &path, &app.admin).send().await.unwrap();
    problem(gone, 404, "not_found").await;
}
