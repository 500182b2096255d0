//! Segmentation services over HTTP: activation per application, import snapshots,
//! and the provider combining a stored service with an external http service that
//! answers, hangs, fails or is stopped.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::helpers::{TestApp, problem, spawn_app};

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Answer,
    Hang,
    Fail,
}

/// A stand-in external segmentation system.
#[derive(Clone)]
struct External {
    mode: Arc<Mutex<Mode>>,
    segments: Arc<Mutex<Vec<Value>>>,
    calls: Arc<Mutex<u32>>,
}

struct RunningExternal {
    base_url: String,
    state: External,
    stop: Option<oneshot::Sender<()>>,
}

impl RunningExternal {
    fn set(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    fn calls(&self) -> u32 {
        *self.state.calls.lock().unwrap()
    }

    fn stop(&mut self) {
        self.stop.take().map(|s| s.send(()));
    }
}

async fn answer(State(external): State<External>, Path(id): Path<String>) -> Response {
    *external.calls.lock().unwrap() += 1;
    let mode = *external.mode.lock().unwrap();
    match mode {
        Mode::Hang => std::future::pending::<Response>().await,
        Mode::Fail => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Mode::Answer if id == "unknown" => StatusCode::NOT_FOUND.into_response(),
        Mode::Answer => axum::Json(json!({"segments": *external.segments.lock().unwrap()})).into_response(),
    }
}

async fn start_external() -> RunningExternal {
    let state = External {
        mode: Arc::new(Mutex::new(Mode::Answer)),
        segments: Arc::new(Mutex::new(vec![json!({"reference": "premium", "name": "Premium"})])),
        calls: Arc::new(Mutex::new(0)),
    };
    let router = Router::new()
        .route("/crm/customers/{id}/segments", get(answer))
        .route(
            "/crm/segments",
            get(|State(e): State<External>| async move { answer(State(e), Path("all".into())).await }),
        )
        .with_state(state.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}/crm", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
            .unwrap()
    });
    RunningExternal {
        base_url,
        state,
        stop: Some(stop),
    }
}

/// An application `shop` with a standard segment for C-1 and an http service `crm`.
async fn fixture(app: &TestApp, external: &RunningExternal) {
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
    app.post("/v1/customers/C-1/segments", json!({"add": [gold["id"]]}))
        .await;
    let config = json!({"base_url": external.base_url, "timeout_ms": 50, "cache_ttl_ms": 1000, "breaker_failures": 2, "breaker_open_ms": 5000});
    app.create(
        "/v1/segmentation-services",
        json!({"id": "crm", "name": "CRM", "kind": "http", "config": config}),
    )
    .await;
    let put = app
        .request(
            Method::PUT,
            "/v1/applications/shop/segmentation-services/crm",
            &app.admin,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 204);
}

async fn provided(app: &TestApp, customer: &str) -> Value {
    let response = app
        .get(&format!("/v1/applications/shop/customers/{customer}/segments"))
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn names(body: &Value) -> Vec<String> {
    body["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["segment"].as_str().unwrap().to_owned())
        .collect()
}

fn silent(body: &Value) -> Vec<String> {
    body["unanswered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["service"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_provider_combines_the_services_active_in_the_application() {
    let app = spawn_app().await;
    let external = start_external().await;
    fixture(&app, &external).await;
    let body = provided(&app, "C-1").await;
    assert_eq!(names(&body), ["standard/tier/gold", "crm/premium"]);
    assert_eq!(body["segments"][0]["source"], "manual");
    assert!(silent(&body).is_empty());
    let available: Value = app.get("/v1/applications/shop/segments").await.json().await.unwrap();
    assert_eq!(names(&available), ["standard/tier/gold", "crm/premium"]);

    // A customer unknown to the external system simply has no segments there.
    assert_eq!(names(&provided(&app, "unknown").await), Vec::<String>::new());

    // Deactivating a service removes its segments from both answers at once.
    let delete = app.request(
        Method::DELETE,
        "/v1/applications/shop/segmentation-services/crm",
        &app.admin,
    );
    assert_eq!(delete.send().await.unwrap().status(), 204);
    assert_eq!(names(&provided(&app, "C-1").await), ["standard/tier/gold"]);
    let available: Value = app.get("/v1/applications/shop/segments").await.json().await.unwrap();
    assert_eq!(names(&available), ["standard/tier/gold"]);

    // So does making it unavailable system-wide.
    app.request(
        Method::PUT,
        "/v1/applications/shop/segmentation-services/crm",
        &app.admin,
    )
    .send()
    .await
    .unwrap();
    app.send_json(
        Method::PATCH,
        "/v1/segmentation-services/standard",
        json!({"available": false}),
    )
    .await;
    assert_eq!(names(&provided(&app, "C-1").await), ["crm/premium"]);
}

#[tokio::test]
async fn a_hanging_service_is_left_out_within_its_timeout() {
    let app = spawn_app().await;
    let external = start_external().await;
    fixture(&app, &external).await;
    external.set(Mode::Hang);
    let started = std::time::Instant::now();
    let body = provided(&app, "C-1").await;
    let elapsed = started.elapsed();
    assert_eq!(names(&body), ["standard/tier/gold"]);
    assert_eq!(silent(&body), ["crm"]);
    assert!(
        body["unanswered"][0]["reason"].as_str().unwrap().contains("50 ms"),
        "{body}"
    );
    assert!(elapsed.as_millis() < 1_000, "answered after {elapsed:?}");
}

#[tokio::test]
async fn a_failing_service_opens_its_circuit_until_the_clock_moves_on() {
    let app = spawn_app().await;
    let external = start_external().await;
    fixture(&app, &external).await;
    external.set(Mode::Fail);
    for _ in 0..2 {
        assert_eq!(silent(&provided(&app, "C-1").await), ["crm"]);
    }
    let calls = external.calls();
    external.set(Mode::Answer);
    let body = provided(&app, "C-1").await;
    assert!(
        body["unanswered"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("circuit open"),
        "{body}"
    );
    assert_eq!(external.calls(), calls, "an open circuit does not call the service");
    app.clock.advance_micros(5_000_001);
    assert_eq!(
        names(&provided(&app, "C-1").await),
        ["standard/tier/gold", "crm/premium"]
    );
}

#[tokio::test]
async fn answers_are_cached_for_their_ttl_and_a_stopped_service_is_left_out() {
    let app = spawn_app().await;
    let mut external = start_external().await;
    fixture(&app, &external).await;
    assert_eq!(names(&provided(&app, "C-1").await).len(), 2);
    external
        .state
        .segments
        .lock()
        .unwrap()
        .push(json!({"reference": "vip", "group": "value"}));
    assert_eq!(names(&provided(&app, "C-1").await).len(), 2, "served from the cache");
    app.clock.advance_micros(1_000_001);
    assert_eq!(
        names(&provided(&app, "C-1").await),
        ["standard/tier/gold", "crm/premium", "crm/value/vip"]
    );

    external.stop();
    app.clock.advance_micros(1_000_001);
    let body = provided(&app, "C-1").await;
    assert_eq!(names(&body), ["standard/tier/gold"]);
    assert_eq!(silent(&body), ["crm"]);
}

async fn import(app: &TestApp, mode: &str, lines: &str) -> reqwest::Response {
    app.request(
        Method::POST,
        &format!("/v1/segmentation-services/dmp/memberships?mode={mode}"),
        &app.ingest,
    )
    .header("content-type", "application/x-ndjson")
    .body(lines.to_owned())
    .send()
    .await
    .unwrap()
}

#[tokio::test]
async fn an_import_snapshot_replaces_the_previous_one_whole_or_not_at_all() {
    let app = spawn_app().await;
    app.create(
        "/v1/applications",
        json!({"id": "shop", "name": "Shop", "default_currency": "EUR"}),
    )
    .await;
    app.create(
        "/v1/segmentation-services",
        json!({"id": "dmp", "name": "DMP", "kind": "import"}),
    )
    .await;
    app.request(
        Method::PUT,
        "/v1/applications/shop/segmentation-services/dmp",
        &app.admin,
    )
    .send()
    .await
    .unwrap();
    for id in ["C-1", "C-2"] {
        app.create("/v1/customers", json!({"id": id})).await;
    }
    let first =
        "{\"customer\":\"C-1\",\"segment\":\"value/premium\"}\n{\"customer\":\"C-2\",\"segment\":\"value/premium\"}\n";
    let summary: Value = import(&app, "snapshot", first).await.json().await.unwrap();
    assert_eq!(
        summary,
        json!({"added": 2, "removed": 0, "unchanged": 0, "segments_created": 1})
    );

    // Fails half-way on an unknown customer: the first snapshot stays whole.
    let failing =
        "{\"customer\":\"C-2\",\"segment\":\"value/churn\"}\n{\"customer\":\"ghost\",\"segment\":\"value/premium\"}\n";
    let p = problem(import(&app, "snapshot", failing).await, 422, "dangling_reference").await;
    assert_eq!(p["lines"][0]["line"], 2);
    assert_eq!(names(&provided(&app, "C-1").await), ["dmp/value/premium"]);
    let bad = problem(
        import(&app, "snapshot", "{\"customer\":\"C-1\"}\n").await,
        400,
        "invalid_lines",
    )
    .await;
    assert_eq!(bad["lines"][0]["field"], "segment");

    let second = "{\"customer\":\"C-2\",\"segment\":\"value/premium\"}\n";
    let summary: Value = import(&app, "snapshot", second).await.json().await.unwrap();
    assert_eq!(
        (summary["removed"].clone(), summary["unchanged"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(names(&provided(&app, "C-1").await), Vec::<String>::new());
    let delta = "{\"customer\":\"C-1\",\"segment\":\"value/premium\"}\n{\"customer\":\"C-2\",\"segment\":\"value/premium\",\"remove\":true}\n";
    import(&app, "delta", delta).await;
    assert_eq!(names(&provided(&app, "C-1").await), ["dmp/value/premium"]);
    assert_eq!(names(&provided(&app, "C-2").await), Vec::<String>::new());
}

#[tokio::test]
async fn bad_service_definitions_are_refused() {
    let app = spawn_app().await;
    let cases = [
        (json!({"id": "x", "name": "X", "kind": "http"}), "config"),
        (
            json!({"id": "x", "name": "X", "kind": "import", "config": {"base_url": "http://a"}}),
            "config",
        ),
        (json!({"id": "x", "name": "X", "kind": "magic"}), "kind"),
        (
            json!({"id": "x", "name": "X", "kind": "http", "config": {"base_url": "ftp://a"}}),
            "config.base_url",
        ),
        (
            json!({"id": "x", "name": "X", "kind": "http", "config": {"base_url": "http://a", "timeout_ms": 0}}),
            "config.timeout_ms",
        ),
    ];
    for (body, field) in cases {
        assert_eq!(
            problem(app.post("/v1/segmentation-services", body).await, 400, "invalid_field").await["field"],
            field
        );
    }
    let services: Value = app.get("/v1/segmentation-services").await.json().await.unwrap();
    assert_eq!(
        services["items"].as_array().unwrap().len(),
        1,
        "only the standard service"
    );
    let standard = app
        .request(Method::DELETE, "/v1/segmentation-services/standard", &app.admin)
        .send()
        .await
        .unwrap();
    problem(standard, 409, "in_use").await;
    let missing = app.request(
        Method::PUT,
        "/v1/applications/nowhere/segmentation-services/standard",
        &app.admin,
    );
    problem(missing.send().await.unwrap(), 404, "not_found").await;
}
