//! Promotions over HTTP: definitions checked against the segments of their
//! applications, baskets calculated with the customer's current segments, codes and
//! their CSV export, product lookups, and orders placed exactly within code limits.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, problem, spawn_app};

/// An application `shop` (EUR) with the standard service's segment `standard/tier/gold`
/// held by C-1; C-2 holds nothing.
async fn shop(app: &TestApp) {
    app.create(
        "/v1/applications",
        json!({"id": "shop", "name": "Shop", "default_currency": "EUR"}),
    )
    .await;
    let group = app.create("/v1/segment-groups", json!({"name": "Tier"})).await;
    let gold = app
        .create("/v1/segments", json!({"group": group["id"], "name": "Gold"}))
        .await;
    app.create("/v1/customers", json!({"id": "C-1"})).await;
    app.create("/v1/customers", json!({"id": "C-2"})).await;
    let added = app
        .post("/v1/customers/C-1/segments", json!({"add": [gold["id"]]}))
        .await;
    assert!(added.status().is_success());
}

fn gold_ten_percent() -> Value {
    json!({
        "name": "Gold 10%", "applications": ["shop"], "currency": "EUR",
        "target": {"segments": ["standard/tier/gold"]},
        "discount": {"kind": "item_percent_off", "percent": "10"}
    })
}

fn basket(customer: Option<&str>, codes: &[&str]) -> Value {
    json!({
        "customer": customer, "currency": "EUR", "codes": codes, "shipping": "4.90",
        "items": [{"sku": "SKI-1", "categories": ["ski"], "quantity": 2, "unit_price": "100.00"}]
    })
}

async fn calculate(app: &TestApp, body: Value) -> Value {
    let response = app
        .request(Method::POST, "/v1/applications/shop/baskets/calculate", &app.read)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn applied(body: &Value) -> Vec<i64> {
    body["applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["promotion"].as_i64().unwrap())
        .collect()
}

fn reason(body: &Value, promotion: &Value) -> String {
    body["not_applied"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["promotion"] == *promotion)
        .map(|n| n["reason"].as_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_segment_promotion_applies_until_its_service_is_deactivated() {
    let app = spawn_app().await;
    shop(&app).await;
    let promotion = app.create("/v1/promotions", gold_ten_percent()).await;
    let id = promotion["id"].clone();

    let gold = calculate(&app, basket(Some("C-1"), &[])).await;
    assert_eq!(applied(&gold), [id.as_i64().unwrap()]);
    assert_eq!(
        (gold["item_discount"].as_str(), gold["total"].as_str()),
        (Some("20.00"), Some("184.90"))
    );
    assert_eq!(gold["lines"][0]["discounts"][0]["amount"], "20.00");
    assert_eq!(gold["applied"][0]["name"], "Gold 10%");

    let other = calculate(&app, basket(Some("C-2"), &[])).await;
    assert_eq!(reason(&other, &id), "not_in_target_group");
    let anonymous = calculate(&app, basket(None, &[])).await;
    assert_eq!(reason(&anonymous, &id), "anonymous_customer");

    // The service stops counting in this application: its segment no longer qualifies.
    let off = app.request(
        Method::DELETE,
        "/v1/applications/shop/segmentation-services/standard",
        &app.admin,
    );
    assert_eq!(off.send().await.unwrap().status(), 204);
    app.clock.advance_micros(2_000_000);
    let stale = calculate(&app, basket(Some("C-1"), &[])).await;
    assert!(applied(&stale).is_empty(), "{stale}");
    assert_eq!(reason(&stale, &id), "segment_not_available");
    let refused = stale["not_applied"][0].clone();
    assert_eq!(refused["subject"], "standard/tier/gold");
    assert_eq!(
        (refused.get("name"), refused.get("detail")),
        (None, None),
        "brief by default"
    );
    assert_eq!(stale["total"], "204.90");
    let mut explained = basket(Some("C-1"), &[]);
    explained["explain"] = json!("full");
    let full = calculate(&app, explained.clone()).await;
    assert_eq!(full["not_applied"][0]["name"], "Gold 10%");
    assert_eq!(
        full["not_applied"][0]["detail"],
        "segment standard/tier/gold not available in this application"
    );
    explained["explain"] = json!("none");
    assert_eq!(calculate(&app, explained.clone()).await["not_applied"], json!([]));
    explained["explain"] = json!("everything");
    let bad = app
        .request(Method::POST, "/v1/applications/shop/baskets/calculate", &app.read)
        .json(&explained)
        .send()
        .await
        .unwrap();
    assert_eq!(problem(bad, 400, "invalid_field").await["field"], "explain");

    // Nothing was deleted: switching it back on restores the promotion.
    let on = app.request(
        Method::PUT,
        "/v1/applications/shop/segmentation-services/standard",
        &app.admin,
    );
    assert!(on.send().await.unwrap().status().is_success());
    app.clock.advance_micros(2_000_000);
    assert_eq!(applied(&calculate(&app, basket(Some("C-1"), &[])).await).len(), 1);
}

#[tokio::test]
async fn only_segments_available_in_every_application_can_be_assigned() {
    let app = spawn_app().await;
    shop(&app).await;
    let picker: Value = app
        .get("/v1/promotions/segments?applications=shop")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(picker, json!([{"segment": "standard/tier/gold", "name": "Gold"}]));

    let mut unknown = gold_ten_percent();
    unknown["target"] = json!({"segments": ["standard/tier/gold", "crm/vip"]});
    let body = problem(app.post("/v1/promotions", unknown).await, 422, "dangling_reference").await;
    assert_eq!(body["field"], "target.segments[1]");

    let mut elsewhere = gold_ten_percent();
    elsewhere["applications"] = json!(["shop", "outlet"]);
    let body = problem(app.post("/v1/promotions", elsewhere).await, 422, "dangling_reference").await;
    assert_eq!(body["field"], "applications[1]");
    let mut nowhere = json!({"name": "All", "applications": ["outlet"], "target": "everyone",
                             "discount": {"kind": "gift", "sku": "G-1"}});
    let body = problem(
        app.post("/v1/promotions", nowhere.clone()).await,
        422,
        "dangling_reference",
    )
    .await;
    assert_eq!(body["field"], "applications[0]");
    nowhere["applications"] = json!(["shop"]);
    app.create("/v1/promotions", nowhere).await;

    let mut bad = gold_ten_percent();
    bad["discount"]["percent"] = json!("140");
    let body = problem(app.post("/v1/promotions", bad).await, 400, "invalid_field").await;
    assert_eq!(body["field"], "discount.percent");
    let mut with_id = gold_ten_percent();
    with_id["id"] = json!(5);
    let body = problem(app.post("/v1/promotions", with_id).await, 400, "unknown_field").await;
    assert_eq!(body["field"], "id");
    let listed: Value = app.get("/v1/promotions").await.json().await.unwrap();
    assert_eq!(
        listed.as_array().unwrap().len(),
        1,
        "refused definitions store nothing: {listed}"
    );
}

#[tokio::test]
async fn promotions_are_replaced_deleted_and_ranked_by_application_priorities() {
    let app = spawn_app().await;
    shop(&app).await;
    let percent = app.create("/v1/promotions", gold_ten_percent()).await;
    let amount = app
        .create(
            "/v1/promotions",
            json!({"name": "5 off", "applications": ["shop"], "currency": "EUR", "target": "everyone",
                   "discount": {"kind": "order_amount_off", "amount": "5.00"}, "combination": "exclusive"}),
        )
        .await;
    // By default item % off (900) ranks before order amount off (300): both apply? No —
    // the exclusive one ranks last and does not apply beside the first.
    let first = calculate(&app, basket(Some("C-1"), &[])).await;
    assert_eq!(applied(&first), [percent["id"].as_i64().unwrap()]);
    assert_eq!(reason(&first, &amount["id"]), "not_combinable");

    let set = app
        .send_json(
            Method::PUT,
            "/v1/applications/shop/promotion-priorities",
            json!({"order_amount_off": 2000}),
        )
        .await;
    assert_eq!(set.status(), 200);
    let table: Value = set.json().await.unwrap();
    assert_eq!(table["priorities"]["order_amount_off"], 2000);
    assert_eq!(table["priorities"]["item_percent_off"], 900);
    let second = calculate(&app, basket(Some("C-1"), &[])).await;
    assert_eq!(applied(&second), [amount["id"].as_i64().unwrap()]);
    assert_eq!(reason(&second, &percent["id"]), "excluded");

    let bad = app
        .send_json(
            Method::PUT,
            "/v1/applications/shop/promotion-priorities",
            json!({"bogus": 1}),
        )
        .await;
    assert_eq!(problem(bad, 400, "unknown_field").await["field"], "bogus");

    let path = format!("/v1/promotions/{}", amount["id"]);
    let mut renamed = app.get(&path).await.json::<Value>().await.unwrap()["definition"].clone();
    renamed["name"] = json!("5 off, renamed");
    let replaced = app.send_json(Method::PUT, &path, renamed).await;
    assert_eq!(replaced.status(), 200);
    let third = calculate(&app, basket(Some("C-1"), &[])).await;
    assert_eq!(third["applied"][0]["name"], "5 off, renamed");

    let deleted = app.request(Method::DELETE, &path, &app.admin).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    problem(app.get(&path).await, 404, "not_found").await;
    assert_eq!(
        applied(&calculate(&app, basket(Some("C-1"), &[])).await),
        [percent["id"].as_i64().unwrap()]
    );
}

#[tokio::test]
async fn generated_codes_are_exported_and_redeemed_by_orders() {
    let app = spawn_app().await;
    shop(&app).await;
    let promotion = app
        .create(
            "/v1/promotions",
            json!({"name": "Code 20", "applications": ["shop"], "currency": "EUR", "target": "everyone",
                   "requires_code": true, "discount": {"kind": "order_amount_off", "amount": "20.00"}}),
        )
        .await;
    let groups = format!("/v1/promotions/{}/code-groups", promotion["id"]);
    let group = app
        .create(
            &groups,
            json!({"name": "Mailing", "pattern": "ski-####-??", "count": 50, "max_uses": 1}),
        )
        .await;
    assert_eq!(
        (group["count"].as_u64(), group["max_uses"].as_u64()),
        (Some(50), Some(1))
    );
    let csv = app
        .get(&format!("/v1/code-groups/{}/codes.csv", group["id"]))
        .await
        .text()
        .await
        .unwrap();
    let codes: Vec<&str> = csv.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(csv.lines().next(), Some("code,used"));
    assert_eq!(codes.len(), 50);
    assert!(codes.iter().all(|c| c.starts_with("SKI-") && c.len() == 11), "{csv}");

    let code = codes[0].to_lowercase();
    let with_code = calculate(&app, basket(Some("C-2"), &[&code])).await;
    assert_eq!(with_code["codes"][0]["status"], "applied");
    assert_eq!(with_code["total"], "184.90");
    let without = calculate(&app, basket(Some("C-2"), &[])).await;
    assert_eq!(reason(&without, &promotion["id"]), "code_missing");
    let unknown = calculate(&app, basket(Some("C-2"), &["NOPE-1"])).await;
    assert_eq!(unknown["codes"][0]["status"], "unknown");

    let mut order = basket(Some("C-2"), &[&code]);
    order["id"] = json!("order-1");
    let placed = app
        .request(Method::POST, "/v1/applications/shop/orders", &app.ingest)
        .json(&order)
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), 201);
    let placed: Value = placed.json().await.unwrap();
    assert_eq!(
        (placed["order"].as_str(), placed["total"].as_str()),
        (Some("order-1"), Some("184.90"))
    );
    let again = app
        .request(Method::POST, "/v1/applications/shop/orders", &app.ingest)
        .json(&order)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200, "placing the same order again");
    assert_eq!(again.json::<Value>().await.unwrap(), placed);

    let used = calculate(&app, basket(Some("C-1"), &[&code])).await;
    assert_eq!(used["codes"][0]["status"], "used_up");
    assert_eq!(reason(&used, &promotion["id"]), "code_used_up");
    let csv = app
        .get(&format!("/v1/code-groups/{}/codes.csv", group["id"]))
        .await
        .text()
        .await
        .unwrap();
    assert!(csv.contains(&format!("{},1\n", codes[0])), "{csv}");
    let activities: Value = app.get("/v1/customers/C-2/activities").await.json().await.unwrap();
    assert_eq!(activities["items"][0]["type"], "order");
    assert_eq!(activities["items"][0]["order"]["total"], "184.90");

    let chosen = app
        .create(
            &groups,
            json!({"name": "Welcome", "code": "welcome", "max_uses_per_customer": 1}),
        )
        .await;
    assert_eq!(chosen["code"], "WELCOME");
    let taken = app.post(&groups, json!({"name": "Again", "code": "WELCOME"})).await;
    assert_eq!(problem(taken, 409, "conflict").await["field"], "code");
    let neither = app.post(&groups, json!({"name": "None"})).await;
    assert_eq!(problem(neither, 400, "invalid_field").await["field"], "code");
}

#[tokio::test]
async fn an_order_with_a_changed_total_is_refused_and_stores_nothing() {
    let app = spawn_app().await;
    shop(&app).await;
    app.create("/v1/promotions", gold_ten_percent()).await;
    let mut order = basket(Some("C-1"), &[]);
    order["expected_total"] = json!("204.90");
    let refused = app
        .request(Method::POST, "/v1/applications/shop/orders", &app.ingest)
        .json(&order)
        .send()
        .await
        .unwrap();
    assert_eq!(problem(refused, 409, "conflict").await["field"], "expected_total");
    let activities: Value = app.get("/v1/customers/C-1/activities").await.json().await.unwrap();
    assert_eq!(activities["items"], json!([]));

    order["customer"] = json!("C-404");
    let unknown = app
        .request(Method::POST, "/v1/applications/shop/orders", &app.ingest)
        .json(&order)
        .send()
        .await
        .unwrap();
    assert_eq!(problem(unknown, 422, "dangling_reference").await["field"], "customer");

    let mut bad = basket(Some("C-1"), &[]);
    bad["items"][0]["unit_price"] = json!("1.001");
    let body = problem(
        app.request(Method::POST, "/v1/applications/shop/baskets/calculate", &app.read)
            .json(&bad)
            .send()
            .await
            .unwrap(),
        400,
        "invalid_field",
    )
    .await;
    assert_eq!(body["field"], "items[0].unit_price");
}

#[tokio::test]
async fn a_code_limited_to_ten_uses_is_redeemed_exactly_ten_times_by_100_concurrent_orders() {
    let app = spawn_app().await;
    shop(&app).await;
    let promotion = app
        .create(
            "/v1/promotions",
            json!({"name": "Ten", "applications": ["shop"], "currency": "EUR", "target": "everyone",
                   "requires_code": true, "discount": {"kind": "order_amount_off", "amount": "10.00"}}),
        )
        .await;
    app.create(
        &format!("/v1/promotions/{}/code-groups", promotion["id"]),
        json!({"name": "Ten", "code": "TEN", "max_uses": 10}),
    )
    .await;
    let orders = (0..100).map(|i| {
        let mut order = basket(Some(if i % 2 == 0 { "C-1" } else { "C-2" }), &["TEN"]);
        order["id"] = json!(format!("o-{i}"));
        app.request(Method::POST, "/v1/applications/shop/orders", &app.ingest)
            .json(&order)
            .send()
    });
    let answers = futures::future::join_all(orders).await;
    let mut with_code = 0;
    for answer in answers {
        let answer = answer.unwrap();
        assert_eq!(answer.status(), 201);
        let body: Value = answer.json().await.unwrap();
        if body["codes"][0]["status"] == "applied" {
            with_code += 1;
            assert_eq!(body["total"], "194.90");
        } else {
            assert_eq!(body["codes"][0]["status"], "used_up", "{body}");
            assert_eq!(body["total"], "204.90");
        }
    }
    assert_eq!(with_code, 10);
    let used = calculate(&app, basket(Some("C-1"), &["TEN"])).await;
    assert_eq!(used["codes"][0]["status"], "used_up");
}

#[tokio::test]
async fn a_product_page_lists_the_promotions_that_can_apply() {
    let app = spawn_app().await;
    shop(&app).await;
    let gold = app.create("/v1/promotions", gold_ten_percent()).await;
    let boots = app
        .create(
            "/v1/promotions",
            json!({"name": "Boots", "applications": ["shop"], "target": "everyone",
                   "products": {"include_categories": ["boots"]},
                   "discount": {"kind": "item_percent_off", "percent": "5"}}),
        )
        .await;
    let offers: Value = app
        .get("/v1/applications/shop/products/SKI-1/promotions?customer=C-1&categories=ski")
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&Value> = offers["promotions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| &o["promotion"])
        .collect();
    assert_eq!(ids, [&gold["id"]]);
    let boot: Value = app
        .get("/v1/applications/shop/products/B-1/promotions?categories=boots")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(boot["promotions"][0]["promotion"], boots["id"]);
    assert_eq!(boot["promotions"].as_array().unwrap().len(), 1, "anonymous: not gold");
    problem(
        app.get("/v1/applications/shop/products/B-1/promotions?currency=euro")
            .await,
        400,
        "invalid_query",
    )
    .await;
    problem(
        app.get("/v1/applications/outlet/products/B-1/promotions").await,
        404,
        "not_found",
    )
    .await;
}

/// A promotion of 5.00 off a customer's first order in `shop`.
async fn welcome(app: &TestApp) -> Value {
    app.create(
        "/v1/promotions",
        json!({"name": "Welcome", "applications": ["shop"], "currency": "EUR", "target": "everyone",
               "conditions": {"first_order": true},
               "discount": {"kind": "order_amount_off", "amount": "5.00"}}),
    )
    .await
}

#[tokio::test]
async fn of_two_simultaneous_first_orders_only_one_is_a_first_order() {
    let app = spawn_app().await;
    shop(&app).await;
    let welcome = welcome(&app).await;
    let orders = ["f-1", "f-2"].map(|id| {
        let mut order = basket(Some("C-2"), &[]);
        order["id"] = json!(id);
        app.request(Method::POST, "/v1/applications/shop/orders", &app.ingest)
            .json(&order)
            .send()
    });
    let mut welcomed = 0;
    for answer in futures::future::join_all(orders).await {
        let answer = answer.unwrap();
        assert_eq!(answer.status(), 201);
        let body: Value = answer.json().await.unwrap();
        if applied(&body) == [welcome["id"].as_i64().unwrap()] {
            welcomed += 1;
        } else {
            assert_eq!(reason(&body, &welcome["id"]), "condition", "{body}");
        }
    }
    assert_eq!(welcomed, 1);
}

/// Known customers' profiles are kept in memory: an order recorded as an activity (one
/// as JSON, or in an NDJSON batch) moves the order count the next calculation sees.
#[tokio::test]
async fn a_recorded_order_ends_a_first_order_promotion_at_once() {
    let app = spawn_app().await;
    shop(&app).await;
    let welcome = welcome(&app).await;
    let order = |id: &str, customer: &str| {
        json!({"id": id, "customer": customer, "type": "order", "at": "2026-12-06T10:00:00Z",
               "order": {"total": "20.00", "currency": "EUR", "items": []}})
    };
    for customer in ["C-1", "C-2"] {
        let before = calculate(&app, basket(Some(customer), &[])).await;
        assert_eq!(applied(&before), [welcome["id"].as_i64().unwrap()], "{before}");
    }
    let one = app.post("/v1/activities", order("o-1", "C-1")).await;
    assert_eq!(one.status(), 201);
    let batch = app
        .request(Method::POST, "/v1/activities", &app.ingest)
        .header("content-type", "application/x-ndjson")
        .body(format!("{}\n", order("o-2", "C-2")))
        .send()
        .await
        .unwrap();
    assert_eq!(batch.status(), 200);
    for customer in ["C-1", "C-2"] {
        let after = calculate(&app, basket(Some(customer), &[])).await;
        assert_eq!(reason(&after, &welcome["id"]), "condition", "{customer}: {after}");
    }
    // Exported for operators (the values are the process's, shared by every test).
    let metrics = app.public_text("/metrics").await;
    assert!(
        metrics.contains(r#"cohort_profile_reads_total{from="store"}"#),
        "{metrics}"
    );
    assert!(metrics.contains("cohort_profiles_kept"), "{metrics}");
}
