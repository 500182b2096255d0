//! Every route of the router, as the OpenAPI document lists it, refuses requests
//! without a valid key (401) and with a key of the wrong scope (403), and lets the
//! scope it declares through.

use reqwest::Method;
use serde_json::Value;

use crate::helpers::spawn_app;

struct Operation {
    method: Method,
    path: String,
    /// The scopes its security requirement names; empty for public routes.
    scopes: Vec<String>,
}

async fn operations(app: &crate::helpers::TestApp) -> Vec<Operation> {
    let spec: Value = app
        .client
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut ops = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let scopes = op["security"]
                .as_array()
                .map(|reqs| {
                    reqs.iter()
                        .flat_map(|r| r["bearer"].as_array().cloned().unwrap_or_default())
                        .map(|s| s.as_str().unwrap().to_owned())
                        .collect()
                })
                .unwrap_or_default();
            let concrete = path
                .replace("{id}", "1")
                .replace("{app}", "shop")
                .replace("{service}", "standard");
            ops.push(Operation {
                method: method.to_uppercase().parse().unwrap(),
                path: concrete,
                scopes,
            });
        }
    }
    ops
}

#[tokio::test]
async fn every_v1_route_declares_a_scope_and_refuses_missing_or_wrong_keys() {
    let app = spawn_app().await;
    let ops = operations(&app).await;
    assert!(ops.len() >= 20, "the spec lists only {} operations", ops.len());
    for op in &ops {
        if !op.path.starts_with("/v1/") {
            continue;
        }
        assert_eq!(
            op.scopes.len(),
            1,
            "{} {} must declare exactly one scope",
            op.method,
            op.path
        );
        let url = format!("{}{}", app.base, op.path);
        let bare = app.client.request(op.method.clone(), &url).send().await.unwrap();
        assert_eq!(bare.status(), 401, "{} {} without a key", op.method, op.path);
        for wrong in ["ck_000000000000_bogus", "not-a-key", &format!("{}x", app.admin)] {
            let response = app
                .client
                .request(op.method.clone(), &url)
                .bearer_auth(wrong)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 401, "{} {} with key {wrong}", op.method, op.path);
            assert_eq!(response.headers()["content-type"], "application/problem+json");
        }
    }
}

#[tokio::test]
async fn a_key_without_the_declared_scope_is_forbidden_and_one_with_it_passes() {
    let app = spawn_app().await;
    let keys = [
        ("admin", &app.admin),
        ("read", &app.read),
        ("ingest", &app.ingest),
        ("public:shop", &app.public_shop),
    ];
    for op in operations(&app).await.iter().filter(|op| op.path.starts_with("/v1/")) {
        // Browser-facing routes name the application of their path.
        let needed = &op.scopes[0].replace("{app}", "shop");
        for (scope, key) in keys {
            let allowed = scope == "admin" || scope == needed || (scope == "ingest" && needed.starts_with("public:"));
            let response = app
                .request(op.method.clone(), &op.path, key)
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            if allowed {
                assert!(
                    status != 401 && status != 403,
                    "{} {} with {scope} got {status}",
                    op.method,
                    op.path
                );
            } else {
                assert_eq!(status, 403, "{} {} with {scope} (needs {needed})", op.method, op.path);
            }
        }
    }
}

#[tokio::test]
async fn system_routes_need_no_key() {
    let app = spawn_app().await;
    for path in ["/healthz", "/metrics", "/openapi.json"] {
        let response = app.client.get(format!("{}{path}", app.base)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn a_revoked_key_is_refused_at_once() {
    let app = spawn_app().await;
    assert_eq!(
        app.request(Method::GET, "/v1/segments", &app.read)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let id = app.read.split('_').nth(1).unwrap();
    app.app.keys.revoke(id).await.unwrap();
    assert_eq!(
        app.request(Method::GET, "/v1/segments", &app.read)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}
