//! Targeting over HTTP: rules checked when saved, the context endpoint (visitors,
//! sessions, target groups, variants, explanations), its public key and CORS, and
//! visitors kept across a graceful restart.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, problem, spawn_app};

const ORIGIN: &str = "https://shop.example";

/// A shop allowing `ORIGIN`, a target group `skiers` (threshold 2), and a rule that
/// gives it weight 1 on every ski page.
pub async fn shop_with_skiers(app: &TestApp) -> (Value, Value) {
    app.create(
        "/v1/applications",
        json!({"id": "shop", "name": "Shop", "default_currency": "EUR", "allowed_origins": [ORIGIN]}),
    )
    .await;
    let skiers = app
        .create("/v1/target-groups", json!({"name": "skiers", "threshold": 2}))
        .await;
    let rule = app
        .create(
            "/v1/targeting/rules",
            json!({"name": "ski pages", "conditions": {"url": "/ski"},
                   "actions": [{"assign_target_group": skiers["id"]}]}),
        )
        .await;
    (skiers, rule)
}

/// The decision, asked by the site's server (an `ingest` key may name customers).
pub async fn context(app: &TestApp, body: Value) -> Value {
    let response = app
        .request(Method::POST, "/v1/applications/shop/context", &app.ingest)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    response.json().await.unwrap()
}

#[tokio::test]
async fn rules_are_checked_when_saved_and_listed_as_written() {
    let app = spawn_app().await;
    let (skiers, rule) = shop_with_skiers(&app).await;
    assert_eq!(rule["definition"]["name"], "ski pages");

    let bad_regex = app
        .post(
            "/v1/targeting/rules",
            json!({"name": "bad", "conditions": {"all": [{"url": "(unclosed"}]}}),
        )
        .await;
    let body = problem(bad_regex, 400, "invalid_field").await;
    assert_eq!(body["field"], "conditions");

    let unknown_group = app
        .post(
            "/v1/targeting/rules",
            json!({"name": "ghost", "actions": [{"assign_target_group": 999}]}),
        )
        .await;
    let body = problem(unknown_group, 422, "dangling_reference").await;
    assert_eq!(body["field"], "actions[0]");

    let order = app
        .post(
            "/v1/targeting/rules",
            json!({"name": "orders", "actions": [{"track_activity": "order"}]}),
        )
        .await;
    assert_eq!(
        problem(order, 400, "invalid_field").await["field"],
        "actions[0].track_activity"
    );

    let unknown_field = app
        .post("/v1/targeting/rules", json!({"name": "typo", "scop": "session"}))
        .await;
    assert_eq!(problem(unknown_field, 400, "unknown_field").await["field"], "scop");

    let listed: Value = app.get("/v1/targeting/rules").await.json().await.unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "refused rules are not stored");

    let path = format!("/v1/targeting/rules/{}", rule["id"]);
    let replaced = app
        .send_json(
            Method::PUT,
            &path,
            json!({"name": "ski pages", "scope": "session", "conditions": {"url": "/ski"},
                   "actions": [{"assign_target_group": skiers["id"], "weight": 2}]}),
        )
        .await;
    assert_eq!(replaced.status(), 200);
    let read: Value = app.get(&path).await.json().await.unwrap();
    assert_eq!(read["definition"]["scope"], "session");
    assert_eq!(
        app.request(Method::DELETE, &path, &app.admin)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    problem(app.get(&path).await, 404, "not_found").await;
}

#[tokio::test]
async fn a_visitor_gets_an_id_and_a_target_group_once_its_weight_reaches_the_threshold() {
    let app = spawn_app().await;
    let (skiers, rule) = shop_with_skiers(&app).await;
    let first = context(
        &app,
        json!({"url": "https://shop.example/ski/boots", "slots": {"hero": ["skiers"]}}),
    )
    .await;
    let visitor = first["visitor"].as_str().unwrap().to_owned();
    assert!(visitor.starts_with("v_"), "{first}");
    assert_eq!(
        (first["new_visitor"].as_bool(), first["new_session"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(first["fired"], json!([rule["id"]]));
    assert_eq!(
        first["target_groups"],
        json!([]),
        "weight 1 is below the threshold of 2"
    );
    assert_eq!(first["variants"], json!({"hero": null}));

    let second = context(
        &app,
        json!({"visitor": visitor, "url": "https://shop.example/ski/skis", "slots": {"hero": ["skiers", "bikers"]}}),
    )
    .await;
    assert_eq!(second["new_visitor"], false);
    assert_eq!(
        second["target_groups"],
        json!([{"id": skiers["id"], "name": "skiers", "weight": 2}])
    );
    assert_eq!(second["variants"], json!({"hero": "skiers"}));

    let home = context(&app, json!({"visitor": visitor, "url": "https://shop.example/"})).await;
    assert_eq!(home["fired"], json!([]));
    assert_eq!(home["target_groups"][0]["weight"], 2, "the weight stays");

    let kept: Value = app.get(&format!("/v1/visitors/{visitor}")).await.json().await.unwrap();
    assert_eq!(kept["visited_pages"], 3);
    assert_eq!(kept["target_groups"], json!([{"id": skiers["id"], "count": 2}]));
}

#[tokio::test]
async fn explain_says_what_became_of_every_rule() {
    let app = spawn_app().await;
    let (_, rule) = shop_with_skiers(&app).await;
    let response = app
        .request(Method::POST, "/v1/applications/shop/context?explain=true", &app.ingest)
        .json(&json!({"url": "https://shop.example/bikes"}))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["explanation"],
        json!([{"rule": rule["id"], "name": "ski pages", "outcome": "not_matched"}])
    );
    let plain = context(&app, json!({"url": "https://shop.example/bikes"})).await;
    assert!(plain.get("explanation").is_none());
}

#[tokio::test]
async fn sessions_end_after_thirty_idle_minutes() {
    let app = spawn_app().await;
    shop_with_skiers(&app).await;
    let skiers = app.get("/v1/target-groups").await.json::<Value>().await.unwrap()["items"][0]["id"].clone();
    app.create(
        "/v1/targeting/rules",
        json!({"name": "once a session", "scope": "session", "actions": [{"assign_target_group": skiers}]}),
    )
    .await;
    let first = context(&app, json!({"url": "https://shop.example/"})).await;
    let visitor = first["visitor"].clone();
    assert_eq!(first["fired"].as_array().unwrap().len(), 1);
    app.clock.advance_micros(29 * 60 * 1_000_000);
    let same = context(&app, json!({"visitor": visitor, "url": "https://shop.example/"})).await;
    assert_eq!(
        (same["new_session"].as_bool(), same["fired"].as_array().unwrap().len()),
        (Some(false), 0)
    );
    app.clock.advance_micros(31 * 60 * 1_000_000);
    let next = context(&app, json!({"visitor": visitor, "url": "https://shop.example/"})).await;
    assert_eq!(
        (next["new_session"].as_bool(), next["fired"].as_array().unwrap().len()),
        (Some(true), 1)
    );
}

#[tokio::test]
async fn browsers_need_an_allowed_origin_and_may_send_the_key_and_body_simply() {
    let app = spawn_app().await;
    shop_with_skiers(&app).await;
    let url = format!("{}/v1/applications/shop/context?key={}", app.base, app.public_shop);
    let simple = app
        .client
        .post(&url)
        .header("origin", ORIGIN)
        .header("content-type", "text/plain;charset=UTF-8")
        .body(r#"{"url": "https://shop.example/ski"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(simple.status(), 200);
    assert_eq!(simple.headers()["access-control-allow-origin"], ORIGIN);

    let foreign = app
        .client
        .post(&url)
        .header("origin", "https://evil.example")
        .header("content-type", "text/plain")
        .body(r#"{"url": "https://shop.example/ski"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(problem(foreign, 403, "forbidden").await["field"], "origin");

    let preflight = app
        .client
        .request(Method::OPTIONS, &url)
        .header("origin", ORIGIN)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(preflight.headers()["access-control-allow-origin"], ORIGIN);

    let refused = app
        .client
        .post(&url)
        .header("origin", ORIGIN)
        .header("content-type", "text/plain")
        .body(r#"{"url": 5}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.headers()["access-control-allow-origin"],
        ORIGIN,
        "errors are readable too"
    );
    assert_eq!(problem(refused, 400, "invalid_field").await["field"], "url");

    let other_key = app
        .client
        .post(format!("{}/v1/applications/shop/context?key={}", app.base, app.read))
        .header("content-type", "application/json")
        .body(r#"{"url": "https://shop.example/"}"#)
        .send()
        .await
        .unwrap();
    problem(other_key, 403, "forbidden").await;
}

#[tokio::test]
async fn declined_tracking_decides_without_keeping_anything() {
    let app = spawn_app().await;
    let (skiers, _) = shop_with_skiers(&app).await;
    let group = app.create("/v1/segment-groups", json!({"name": "Interests"})).await;
    let skiing = app
        .create("/v1/segments", json!({"group": group["id"], "name": "Skiing"}))
        .await;
    app.create(
        "/v1/targeting/rules",
        json!({"name": "track", "actions": [{"track_segment": skiing["id"]},
               {"save_tracked_segments": "all", "consider_consent": false},
               {"assign_target_group": skiers["id"], "track_activity": true, "consider_consent": false}]}),
    )
    .await;
    app.create("/v1/customers", json!({"id": "C-1"})).await;
    let answer = context(
        &app,
        json!({"url": "https://shop.example/ski", "consent": false, "customer": "C-1"}),
    )
    .await;
    assert_eq!(answer["visitor"], Value::Null);
    assert_eq!(answer["fired"].as_array().unwrap().len(), 2);
    assert_eq!(app.app.targeting.visitors.unsaved(), 0);
    let segments: Value = app.get("/v1/customers/C-1/segments").await.json().await.unwrap();
    assert_eq!(segments["segments"], json!([]), "nothing given to the customer");
    let activities: Value = app.get("/v1/customers/C-1/activities").await.json().await.unwrap();
    assert!(
        !activities.to_string().contains("target_group_assigned"),
        "{activities}"
    );
}

#[tokio::test]
async fn a_public_key_names_customers_only_with_a_token_and_gets_no_explanations() {
    let app = spawn_app().await;
    shop_with_skiers(&app).await;
    app.create("/v1/customers", json!({"id": "C-1"})).await;
    let public = |body: Value, query: &str| {
        app.request(
            Method::POST,
            &format!("/v1/applications/shop/context{query}"),
            &app.public_shop,
        )
        .json(&body)
        .send()
    };
    let named = public(json!({"url": "https://shop.example/", "customer": "C-1"}), "")
        .await
        .unwrap();
    assert_eq!(problem(named, 403, "forbidden").await["field"], "customer");
    let explained = public(json!({"url": "https://shop.example/"}), "?explain=true")
        .await
        .unwrap();
    assert_eq!(problem(explained, 403, "forbidden").await["field"], "explain");

    let issued = app
        .request(Method::POST, "/v1/applications/shop/customer-tokens", &app.ingest)
        .json(&json!({"customer": "C-1", "ttl_minutes": 60}))
        .send()
        .await
        .unwrap();
    assert_eq!(issued.status(), 201);
    let token = issued.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let known = public(json!({"url": "https://shop.example/", "customer_token": token}), "")
        .await
        .unwrap();
    assert_eq!(known.status(), 200);
    let visitor = known.json::<Value>().await.unwrap()["visitor"]
        .as_str()
        .unwrap()
        .to_owned();
    let kept: Value = app.get(&format!("/v1/visitors/{visitor}")).await.json().await.unwrap();
    assert_eq!(kept["customer"], "C-1");

    let forged = format!("{}x", &token[..token.len() - 1]);
    let refused = public(json!({"url": "https://shop.example/", "customer_token": forged}), "")
        .await
        .unwrap();
    assert_eq!(problem(refused, 400, "invalid_field").await["field"], "customer_token");
    app.clock.advance_micros(61 * 60 * 1_000_000);
    let expired = public(json!({"url": "https://shop.example/", "customer_token": token}), "")
        .await
        .unwrap();
    assert_eq!(problem(expired, 400, "invalid_field").await["field"], "customer_token");
}

#[tokio::test]
async fn only_public_keys_travel_in_urls_and_requests_are_bounded() {
    let app = spawn_app().await;
    shop_with_skiers(&app).await;
    let in_url = |key: &str, body: Value| {
        app.client
            .post(format!("{}/v1/applications/shop/context?key={key}", app.base))
            .json(&body)
            .send()
    };
    let admin = in_url(&app.admin, json!({"url": "https://shop.example/"}))
        .await
        .unwrap();
    assert_eq!(problem(admin, 403, "forbidden").await["field"], "key");
    let segments: Vec<i64> = (1..=33).collect();
    let many = in_url(
        &app.public_shop,
        json!({"url": "https://shop.example/", "segments": segments}),
    )
    .await
    .unwrap();
    assert_eq!(problem(many, 400, "invalid_field").await["field"], "segments");
    let long_agent = in_url(
        &app.public_shop,
        json!({"url": "https://x/", "user_agent": "a".repeat(2_000)}),
    )
    .await
    .unwrap();
    assert_eq!(problem(long_agent, 400, "invalid_field").await["field"], "user_agent");
    let huge = app
        .client
        .post(format!(
            "{}/v1/applications/shop/context?key={}",
            app.base, app.public_shop
        ))
        .header("content-type", "text/plain")
        .body(vec![b' '; 2 << 20])
        .send()
        .await
        .unwrap();
    problem(huge, 413, "payload_too_large").await;
    let foreign_preflight = app
        .client
        .request(Method::OPTIONS, format!("{}/v1/applications/shop/context", app.base))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(foreign_preflight, 403, "forbidden").await["field"], "origin");
    let unknown_app = app
        .client
        .post(format!(
            "{}/v1/applications/nope/context?key={}",
            app.base, app.public_shop
        ))
        .header("origin", ORIGIN)
        .json(&json!({"url": "https://shop.example/"}))
        .send()
        .await
        .unwrap();
    problem(unknown_app, 403, "forbidden").await;
}

#[tokio::test]
async fn visitors_survive_a_graceful_restart() {
    let app = spawn_app().await;
    let (skiers, _) = shop_with_skiers(&app).await;
    let first = context(&app, json!({"url": "https://shop.example/ski"})).await;
    let visitor = first["visitor"].clone();
    assert_eq!(app.app.targeting.visitors.unsaved(), 1, "kept in memory until a flush");
    let app = app.restart().await;
    let after = context(&app, json!({"visitor": visitor, "url": "https://shop.example/ski"})).await;
    assert_eq!(after["new_visitor"], false);
    assert_eq!(
        after["target_groups"],
        json!([{"id": skiers["id"], "name": "skiers", "weight": 2}])
    );
}

#[tokio::test]
async fn a_login_links_the_visitor_and_rules_give_the_customer_segments() {
    let app = spawn_app().await;
    shop_with_skiers(&app).await;
    let group = app.create("/v1/segment-groups", json!({"name": "Interests"})).await;
    let skiing = app
        .create("/v1/segments", json!({"group": group["id"], "name": "Skiing"}))
        .await;
    let linked: Value = app
        .request(
            Method::PUT,
            &format!("/v1/segments/{}/target-group", skiing["id"]),
            &app.admin,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    app.create(
        "/v1/targeting/rules",
        json!({"name": "ski fans", "conditions": {"url": "/ski"},
               "actions": [{"assign_target_group": linked["id"], "linked_segment": "assign", "track_activity": true}]}),
    )
    .await;
    app.create("/v1/customers", json!({"id": "C-1", "profiling_consent": true}))
        .await;
    let answer = context(&app, json!({"url": "https://shop.example/ski", "customer": "C-1"})).await;
    let visitor = answer["visitor"].as_str().unwrap();
    let kept: Value = app.get(&format!("/v1/visitors/{visitor}")).await.json().await.unwrap();
    assert_eq!(kept["customer"], "C-1");
    let segments: Value = app.get("/v1/customers/C-1/segments").await.json().await.unwrap();
    assert_eq!(
        segments
            .to_string()
            .matches(&format!("\"segment\":{}", skiing["id"]))
            .count(),
        1,
        "{segments}"
    );
    let activities: Value = app.get("/v1/customers/C-1/activities").await.json().await.unwrap();
    assert!(activities.to_string().contains("target_group_assigned"), "{activities}");

    let again = context(
        &app,
        json!({"visitor": visitor, "url": "https://shop.example/", "customer": "C-1"}),
    )
    .await;
    assert_eq!(again["segments"]["customer"][0]["name"], "Skiing");
}

#[tokio::test]
async fn the_tracker_and_the_demo_page_are_served_without_a_key() {
    let app = spawn_app().await;
    let script = app.client.get(format!("{}/cohort.js", app.base)).send().await.unwrap();
    assert_eq!(script.status(), 200);
    assert!(
        script.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let demo = app.public_text("/demo/shop/ski?key=abc").await;
    assert!(demo.contains("data-cohort-slot=\"hero\""));
    assert!(demo.contains("data-key=\"abc\""));
}
