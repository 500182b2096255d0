//! Automation over HTTP: a rule adds a segment after a customer's third order; a
//! delayed action waits for its time (injected clock) and survives a restart; a
//! webhook receiver that is down gets retries with backoff, then a dead letter that can
//! be replayed; dry runs; rule statistics.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::{HeaderMap, StatusCode};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, problem, spawn_app};

async fn order(app: &TestApp, id: &str) {
    let response = app
        .request(Method::POST, "/v1/activities", &app.ingest)
        .json(&json!({"id": id, "customer": "C-1", "type": "order",
                      "order": {"total": "10.00", "currency": "EUR", "items": []}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
}

pub(crate) async fn segments_of(app: &TestApp, customer: &str) -> Vec<i64> {
    let body: Value = app
        .get(&format!("/v1/customers/{customer}/segments"))
        .await
        .json()
        .await
        .unwrap();
    body["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["segment"].as_i64().unwrap())
        .collect()
}

/// Serves `receiver` on loopback and creates a rule posting every new customer to it.
async fn crm_webhook_rule(app: &TestApp, receiver: axum::Router) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });
    app.create(
        "/v1/automation/rules",
        json!({"name": "tell the CRM", "triggers": ["customer_created"], "actions": [{"webhook": url}]}),
    )
    .await;
}

/// A rule as the API shows it (with its firing statistics).
pub(crate) async fn rule_read(app: &TestApp, id: &Value) -> Value {
    app.get(&format!("/v1/automation/rules/{id}"))
        .await
        .json()
        .await
        .unwrap()
}

/// A segment "Loyal" and a rule adding it at a customer's third order.
pub(crate) async fn third_order_rule(app: &TestApp) -> (Value, Value) {
    let group = app.create("/v1/segment-groups", json!({"name": "Loyalty"})).await;
    let loyal = app
        .create("/v1/segments", json!({"group": group["id"], "name": "Loyal"}))
        .await;
    let rule = app
        .create(
            "/v1/automation/rules",
            json!({"name": "third order", "triggers": [{"new_activity": "order"}],
                   "conditions": {"activity_count": "order", "op": "=", "value": 3},
                   "actions": [{"add_segment": loyal["id"]}]}),
        )
        .await;
    (loyal, rule)
}

#[tokio::test]
async fn the_third_order_adds_a_segment() {
    let app = spawn_app().await;
    let (loyal, rule) = third_order_rule(&app).await;
    app.create("/v1/customers", json!({"id": "C-1"})).await;
    for n in 1..=2 {
        order(&app, &format!("o-{n}")).await;
        app.app.automation.run_due().await.unwrap();
        assert!(segments_of(&app, "C-1").await.is_empty(), "after order {n}");
    }
    order(&app, "o-3").await;
    let queue: Value = app.get("/v1/automation/queue").await.json().await.unwrap();
    assert_eq!(
        queue.as_array().unwrap().len(),
        1,
        "queued durably before it runs: {queue}"
    );
    assert_eq!(app.app.automation.run_due().await.unwrap(), 1);
    assert_eq!(segments_of(&app, "C-1").await, vec![loyal["id"].as_i64().unwrap()]);

    let read = rule_read(&app, &rule["id"]).await;
    assert_eq!(read["fired"], 1);
    assert!(read["last_fired_at"].is_string());

    let dry: Value = app
        .post(
            &format!("/v1/automation/rules/{}/dry-run", rule["id"]),
            json!({"customer": "C-1", "event": {"event": "activity", "type": "order"}}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(dry["holds"], true, "{dry}");
    assert_eq!(dry["actions"], json!([{"action": 0, "delay_minutes": 0}]));
}

#[tokio::test]
async fn a_delayed_action_waits_for_its_time_and_survives_a_restart() {
    let app = spawn_app().await;
    let group = app.create("/v1/segment-groups", json!({"name": "Lifecycle"})).await;
    let new = app
        .create("/v1/segments", json!({"group": group["id"], "name": "New"}))
        .await;
    app.create(
        "/v1/automation/rules",
        json!({"name": "welcome later", "triggers": ["customer_created"],
               "actions": [{"add_segment": new["id"], "delay": "2h"}]}),
    )
    .await;
    app.create("/v1/customers", json!({"id": "C-1"})).await;
    assert_eq!(app.app.automation.run_due().await.unwrap(), 0, "not due yet");
    let app = app.restart().await;
    app.clock.advance_micros(119 * 60 * 1_000_000);
    assert_eq!(app.app.automation.run_due().await.unwrap(), 0);
    app.clock.advance_micros(60 * 1_000_000);
    assert_eq!(app.app.automation.run_due().await.unwrap(), 1);
    assert_eq!(segments_of(&app, "C-1").await, vec![new["id"].as_i64().unwrap()]);
    assert_eq!(app.app.automation.run_due().await.unwrap(), 0, "ran once");
}

#[tokio::test]
async fn a_webhook_receiver_that_is_down_gets_retries_then_a_dead_letter_that_can_be_replayed() {
    let app = spawn_app().await;
    // A receiver that answers 503 until told otherwise, and checks the signature.
    let calls = Arc::new(AtomicUsize::new(0));
    let healthy = Arc::new(AtomicUsize::new(0));
    let automation = app.app.automation.clone();
    let receiver = {
        let (calls, healthy) = (calls.clone(), healthy.clone());
        axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let (calls, healthy, automation) = (calls.clone(), healthy.clone(), automation.clone());
                async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    let signature = headers["x-cohort-signature"].to_str().unwrap().to_owned();
                    assert_eq!(signature, format!("sha256={}", automation.sign(body.as_bytes())));
                    let event: Value = serde_json::from_str(&body).unwrap();
                    assert_eq!(event["customer"], "C-1");
                    if healthy.load(Ordering::SeqCst) == 1 {
                        StatusCode::NO_CONTENT
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    }
                }
            }),
        )
    };
    crm_webhook_rule(&app, receiver).await;
    app.create("/v1/customers", json!({"id": "C-1"})).await;
    let mut waits = Vec::new();
    for _ in 0..6 {
        assert_eq!(app.app.automation.run_due().await.unwrap(), 1);
        let queue: Value = app.get("/v1/automation/queue").await.json().await.unwrap();
        if let Some(job) = queue.as_array().unwrap().first() {
            let at = cohort_core::Timestamp::parse("at", job["run_at"].as_str().unwrap()).unwrap();
            let wait = at.unix_micros() - app.app.now().unix_micros();
            waits.push(wait / 60_000_000);
            app.clock.advance_micros(wait);
            assert!(job["last_error"].as_str().unwrap().contains("503"), "{job}");
        }
    }
    assert_eq!(waits, vec![1, 2, 4, 8, 16], "exponential backoff in minutes");
    assert_eq!(calls.load(Ordering::SeqCst), 6);
    let dead: Value = app.get("/v1/automation/dead-letters").await.json().await.unwrap();
    assert_eq!(dead.as_array().unwrap().len(), 1, "{dead}");
    assert_eq!(dead[0]["attempts"], 6);

    healthy.store(1, Ordering::SeqCst);
    let replayed = app
        .request(
            Method::POST,
            &format!("/v1/automation/dead-letters/{}/replay", dead[0]["id"]),
            &app.admin,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status(), 200);
    assert_eq!(app.app.automation.run_due().await.unwrap(), 1);
    assert_eq!(calls.load(Ordering::SeqCst), 7);
    let dead: Value = app.get("/v1/automation/dead-letters").await.json().await.unwrap();
    assert_eq!(dead, json!([]));
    let queue: Value = app.get("/v1/automation/queue").await.json().await.unwrap();
    assert_eq!(queue, json!([]));
}

#[tokio::test]
async fn invalid_rules_are_refused_with_their_field() {
    let app = spawn_app().await;
    let refused = app
        .post(
            "/v1/automation/rules",
            json!({"name": "x", "triggers": [{"schedule": "whenever"}], "actions": [{"remove_segment": 1}]}),
        )
        .await;
    assert_eq!(
        problem(refused, 400, "invalid_field").await["field"],
        "triggers[0].schedule"
    );
    let order = app
        .post(
            "/v1/automation/rules",
            json!({"name": "x", "triggers": ["customer_created"], "actions": [{"track_activity": "order"}]}),
        )
        .await;
    assert_eq!(
        problem(order, 400, "invalid_field").await["field"],
        "actions[0].track_activity"
    );
    let dangling = app
        .post(
            "/v1/automation/rules",
            json!({"name": "x", "triggers": ["customer_created"], "actions": [{"add_segment": 99}]}),
        )
        .await;
    assert_eq!(
        problem(dangling, 422, "dangling_reference").await["field"],
        "actions[0]"
    );
    let listed: Value = app.get("/v1/automation/rules").await.json().await.unwrap();
    assert_eq!(listed, json!([]));
}

fn at(text: &str) -> cohort_core::Timestamp {
    cohort_core::Timestamp::parse("at", text).unwrap()
}

/// Customers C-1 to C-3, the segments VIP (for `vips` of them) and Greeted, and a rule
/// greeting every VIP at 03:00 each night (`conditions` added to `has_segment VIP`);
/// returns the ids of VIP, Greeted and the rule. The clock is at 02:00.
async fn nightly_greeting(app: &TestApp, vips: &[&str], conditions: Vec<Value>) -> (i64, i64, i64) {
    app.clock.set(at("2026-03-02T02:00:00Z"));
    let group = app.create("/v1/segment-groups", json!({"name": "Status"})).await;
    let vip = app
        .create("/v1/segments", json!({"group": group["id"], "name": "VIP"}))
        .await;
    let greeted = app
        .create("/v1/segments", json!({"group": group["id"], "name": "Greeted"}))
        .await;
    for id in ["C-1", "C-2", "C-3"] {
        app.create("/v1/customers", json!({"id": id})).await;
    }
    for id in vips {
        let added = app
            .post(&format!("/v1/customers/{id}/segments"), json!({"add": [vip["id"]]}))
            .await;
        assert!(added.status().is_success());
    }
    let mut all = vec![json!({"has_segment": vip["id"]})];
    all.extend(conditions);
    let rule = app
        .create(
            "/v1/automation/rules",
            json!({"name": "nightly greeting", "triggers": [{"schedule": "0 3 * * *"}],
                   "conditions": {"all": all},
                   "actions": [{"add_segment": greeted["id"], "increase_counter": false}]}),
        )
        .await;
    let id = |v: &Value| v["id"].as_i64().unwrap();
    (id(&vip), id(&greeted), id(&rule))
}

#[tokio::test]
async fn a_schedule_fires_at_its_time_for_the_customers_its_conditions_select() {
    let app = spawn_app().await;
    let (vip, greeted, _) =
        nightly_greeting(&app, &["C-1", "C-3"], vec![json!({"not": {"customer_is": ["C-3"]}})]).await;

    app.clock.set(at("2026-03-02T02:59:59Z"));
    assert_eq!(app.app.automation.run_schedules().await.unwrap(), 0, "not yet");
    app.clock.set(at("2026-03-02T03:00:00Z"));
    assert_eq!(app.app.automation.run_schedules().await.unwrap(), 1);
    assert_eq!(
        app.app.automation.run_schedules().await.unwrap(),
        0,
        "this time is claimed"
    );
    assert_eq!(app.app.automation.run_due().await.unwrap(), 1, "for C-1 only");
    assert_eq!(segments_of(&app, "C-1").await, vec![vip, greeted]);
    assert_eq!(segments_of(&app, "C-2").await, Vec::<i64>::new());
    assert_eq!(segments_of(&app, "C-3").await, vec![vip]);

    // Times missed while no server looked fire once, at the next look.
    app.clock.set(at("2026-03-05T12:00:00Z"));
    assert_eq!(app.app.automation.run_schedules().await.unwrap(), 1);
    assert_eq!(app.app.automation.run_schedules().await.unwrap(), 0);
}

#[tokio::test]
async fn a_schedule_run_whose_server_stopped_half_way_is_finished_by_another_once() {
    use cohort_app::automation::schedule::candidates;
    use cohort_app::automation::service::encode_event;
    use cohort_core::automation::{AutomationCondition, AutomationRuleId, Event};
    use cohort_core::{CustomerId, SegmentId, Tree};
    use cohort_store::{NewJob, ScheduleProgress};

    let app = spawn_app().await;
    let (vip, greeted, rule) = nightly_greeting(&app, &["C-1", "C-2", "C-3"], Vec::new()).await;
    let id = AutomationRuleId::new(rule);

    // Another server claims 03:00, queues C-1's action with its first page, and stops.
    let now = at("2026-03-02T03:00:00Z");
    let until = at("2026-03-02T03:01:00Z");
    app.clock.set(now);
    let store = &app.app.store;
    assert!(store.claim_schedule(id, None, now, 42, until).await.unwrap());
    let vips = candidates(&Tree::Leaf(AutomationCondition::HasSegment(SegmentId::new(vip))));
    let first = app.app.index.select(&vips, None, 1).await.unwrap();
    assert_eq!(first.customers, [CustomerId::parse("id", "C-1").unwrap()]);
    let job = NewJob {
        rule: id,
        action: 0,
        customer: first.customers[0].clone(),
        run_at: now,
        environment: encode_event(&Event::Scheduled, None),
    };
    let progress = ScheduleProgress {
        rule: id,
        lease: 42,
        after: first.next,
        until,
    };
    assert!(store.fire_with(&[id], &[job], now, Some(&progress), &[]).await.unwrap());

    // While its lease lasts the run is left to it.
    app.clock.set(at("2026-03-02T03:00:30Z"));
    assert_eq!(app.app.automation.run_schedules().await.unwrap(), 0);
    assert_eq!(
        app.app.automation.run_due().await.unwrap(),
        1,
        "C-1's, queued by the stopped server"
    );
    // Then this server goes on after C-1, and the run ends.
    app.clock.set(at("2026-03-02T03:01:01Z"));
    assert_eq!(app.app.automation.run_schedules().await.unwrap(), 1);
    assert_eq!(
        app.app.automation.run_due().await.unwrap(),
        2,
        "C-2 and C-3, not C-1 again"
    );
    for customer in ["C-1", "C-2", "C-3"] {
        assert_eq!(segments_of(&app, customer).await, vec![vip, greeted], "{customer}");
    }
    let read = rule_read(&app, &json!(rule)).await;
    assert_eq!(read["fired"], 3, "once per customer");
    assert_eq!(app.app.automation.run_schedules().await.unwrap(), 0, "over");
    app.clock.set(at("2026-03-03T03:00:00Z"));
    assert_eq!(app.app.automation.run_schedules().await.unwrap(), 1, "the next night");
    assert_eq!(app.app.automation.run_due().await.unwrap(), 3);
}

#[tokio::test]
async fn building_a_customer_fires_segments_built() {
    let app = spawn_app().await;
    let ages = app
        .create(
            "/v1/segment-groups",
            json!({"name": "Age", "calculated": true, "exclusive": true}),
        )
        .await;
    app.create(
        "/v1/segment-builders",
        json!({"name": "Ages", "group": ages["id"], "definition": {"kind": "age_groups",
               "attribute": "birthdate", "ranges": [{"from": 18, "to": 34, "segment": "young"},
                                                    {"from": 35, "segment": "older"}]}}),
    )
    .await;
    let segments: Value = app
        .get(&format!("/v1/segments?group={}", ages["id"]))
        .await
        .json()
        .await
        .unwrap();
    let young = segments["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "young")
        .unwrap()["id"]
        .clone();
    let group = app.create("/v1/segment-groups", json!({"name": "Campaigns"})).await;
    let campaign = app
        .create("/v1/segments", json!({"group": group["id"], "name": "Student offer"}))
        .await;
    app.create(
        "/v1/automation/rules",
        json!({"name": "young after building", "triggers": ["segments_built"],
               "conditions": {"has_segment": young},
               "actions": [{"add_segment": campaign["id"]}]}),
    )
    .await;
    app.create(
        "/v1/customers",
        json!({"id": "C-1", "attributes": {"birthdate": "2000-05-01"}}),
    )
    .await;
    app.create(
        "/v1/customers",
        json!({"id": "C-2", "attributes": {"birthdate": "1960-05-01"}}),
    )
    .await;
    let built = app.app.builds.run_queued(100).await.unwrap();
    assert_eq!(built.customers, 2);
    assert_eq!(app.app.automation.run_due().await.unwrap(), 1, "for the young one");
    assert!(
        segments_of(&app, "C-1")
            .await
            .contains(&campaign["id"].as_i64().unwrap())
    );
    assert!(
        !segments_of(&app, "C-2")
            .await
            .contains(&campaign["id"].as_i64().unwrap())
    );
}

#[tokio::test]
async fn a_batch_of_orders_fires_the_third_order_rule_once_and_a_retried_batch_nothing() {
    let app = spawn_app().await;
    let (loyal, rule) = third_order_rule(&app).await;
    app.create("/v1/customers", json!({"id": "C-1"})).await;
    for _ in 0..2 {
        orders_batch(&app, &["o-1", "o-2", "o-3", "o-4"]).await;
    }
    let read = rule_read(&app, &rule["id"]).await;
    assert_eq!(read["fired"], 1, "the third order of four, and not again for the retry");
    assert_eq!(app.app.automation.run_due().await.unwrap(), 1);
    assert_eq!(segments_of(&app, "C-1").await, vec![loyal["id"].as_i64().unwrap()]);
}

/// Sends C-1's orders with these ids as one NDJSON batch; returns its answer.
async fn orders_batch(app: &TestApp, ids: &[&str]) -> Value {
    let orders: Vec<(String, &str)> = ids.iter().map(|id| ((*id).to_owned(), "C-1")).collect();
    crate::inbox::record_orders(app, &orders).await
}

#[tokio::test]
async fn a_batch_with_retried_activities_fires_rules_for_its_new_ones_only() {
    let app = spawn_app().await;
    let (loyal, rule) = third_order_rule(&app).await;
    app.create("/v1/customers", json!({"id": "C-1"})).await;
    orders_batch(&app, &["o-1", "o-2"]).await;
    // o-2 is a retry and o-3 comes twice: the third order is o-3, once.
    let answer = orders_batch(&app, &["o-2", "o-3", "o-3"]).await;
    assert_eq!(
        (answer["recorded"].as_u64(), answer["duplicates"].as_u64()),
        (Some(1), Some(2))
    );
    let fired = || async { rule_read(&app, &rule["id"]).await["fired"].clone() };
    assert_eq!(fired().await, 1, "the new order of a batch with a retry fires");
    // A retried o-3 beside a fourth order: had the retry been told as new, it would be
    // judged as the third order again.
    orders_batch(&app, &["o-3", "o-4"]).await;
    assert_eq!(fired().await, 1);
    assert_eq!(app.app.automation.run_due().await.unwrap(), 1);
    assert_eq!(segments_of(&app, "C-1").await, vec![loyal["id"].as_i64().unwrap()]);
}

#[tokio::test]
async fn tracked_segments_are_copied_to_the_customer_once_tracked_often_enough() {
    let app = spawn_app().await;
    crate::targeting::shop_with_skiers(&app).await;
    let group = app.create("/v1/segment-groups", json!({"name": "Interests"})).await;
    let ski = app
        .create("/v1/segments", json!({"group": group["id"], "name": "Ski"}))
        .await;
    app.create(
        "/v1/targeting/rules",
        json!({"name": "track ski", "conditions": {"url": "/ski"},
               "actions": [{"track_segment": ski["id"]}]}),
    )
    .await;
    app.create(
        "/v1/automation/rules",
        json!({"name": "keep interests", "triggers": ["segment_tracked"],
               "actions": [{"copy_tracked_segments": true, "min_count": 2}]}),
    )
    .await;
    app.create("/v1/customers", json!({"id": "C-1"})).await;

    let first = crate::targeting::context(&app, json!({"url": "https://shop.example/ski", "customer": "C-1"})).await;
    assert_eq!(app.app.automation.run_due().await.unwrap(), 1);
    assert!(segments_of(&app, "C-1").await.is_empty(), "tracked once only");
    crate::targeting::context(
        &app,
        json!({"visitor": first["visitor"], "url": "https://shop.example/ski/boots", "customer": "C-1"}),
    )
    .await;
    assert_eq!(app.app.automation.run_due().await.unwrap(), 1);
    assert_eq!(segments_of(&app, "C-1").await, vec![ski["id"].as_i64().unwrap()]);
}

#[tokio::test]
async fn slow_webhooks_complete_what_ran_before_half_the_lease_is_spent() {
    use cohort_app::Clock as _;
    let app = spawn_app().await;
    // Each delivery takes 25 s of the injected clock; during the third, another server
    // claims whatever is due and no longer held.
    let calls = Arc::new(AtomicUsize::new(0));
    let taken_over = Arc::new(AtomicUsize::new(usize::MAX));
    let receiver = {
        let (calls, taken_over, store, clock) = (
            calls.clone(),
            taken_over.clone(),
            app.app.store.clone(),
            app.clock.clone(),
        );
        axum::Router::new().route(
            "/hook",
            axum::routing::post(move || {
                let (calls, taken_over, store, clock) =
                    (calls.clone(), taken_over.clone(), store.clone(), clock.clone());
                async move {
                    clock.advance_micros(25_000_000);
                    if calls.fetch_add(1, Ordering::SeqCst) == 2 {
                        let now = clock.now();
                        let until = cohort_core::Timestamp::from_unix_micros(now.unix_micros() + 60_000_000);
                        let jobs = store.claim_jobs(now, until, 99, 10).await.unwrap();
                        taken_over.store(jobs.len(), Ordering::SeqCst);
                    }
                    StatusCode::NO_CONTENT
                }
            }),
        )
    };
    crm_webhook_rule(&app, receiver).await;
    for id in ["C-1", "C-2", "C-3"] {
        app.create("/v1/customers", json!({"id": id})).await;
    }

    assert_eq!(app.app.automation.run_due().await.unwrap(), 3);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    // The first two were completed at 50 s (past half the 60 s lease); only the third,
    // still running when its lease ran out at 60 s, could be taken over at 75 s.
    assert_eq!(taken_over.load(Ordering::SeqCst), 1);
    let queue: Value = app.get("/v1/automation/queue").await.json().await.unwrap();
    assert_eq!(
        queue.as_array().unwrap().len(),
        1,
        "only the job taken over is left: {queue}"
    );
    assert_eq!(queue[0]["customer"], "C-3");
}
