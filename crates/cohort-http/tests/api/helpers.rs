//! `spawn_app()`: a fresh database, a server on port 0 and keys of every scope.

use std::sync::Arc;

use cohort_app::{App, Clock, ManualClock};
use cohort_core::{KeyScope, Name, Timestamp};
use reqwest::{Client, Method, RequestBuilder, Response};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub admin: String,
    pub read: String,
    pub ingest: String,
    pub public_shop: String,
    pub clock: Arc<ManualClock>,
    pub app: App,
    _dir: tempfile::TempDir,
    stop: Option<(oneshot::Sender<()>, tokio::task::JoinHandle<()>)>,
}

pub const START: Timestamp = Timestamp::from_unix_micros(1_790_000_000_000_000);

pub async fn spawn_app() -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = Arc::new(ManualClock::new(START));
    let app = open(&dir, &clock).await;
    let key = |scope: KeyScope| {
        let app = app.clone();
        async move {
            app.keys
                .create(Name::parse("n", "test").unwrap(), vec![scope])
                .await
                .unwrap()
                .secret
        }
    };
    let admin = key(KeyScope::Admin).await;
    let read = key(KeyScope::Read).await;
    let ingest = key(KeyScope::Ingest).await;
    let public_shop = key(KeyScope::parse("s", "public:shop").unwrap()).await;
    serve(app, dir, clock, [admin, read, ingest, public_shop]).await
}

async fn open(dir: &tempfile::TempDir, clock: &Arc<ManualClock>) -> App {
    let url = format!("sqlite://{}/cohort.db", dir.path().display());
    let store = cohort_app::open_store(&url).await.expect("open store");
    App::new(store, clock.clone() as Arc<dyn Clock>)
}

async fn serve(app: App, dir: tempfile::TempDir, clock: Arc<ManualClock>, keys: [String; 4]) -> TestApp {
    let [admin, read, ingest, public_shop] = keys;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let served = app.clone();
    let server = tokio::spawn(async move {
        cohort_http::serve(listener, served, async {
            let _ = stopped.await;
        })
        .await
        .expect("serve");
    });
    TestApp {
        base,
        client: Client::new(),
        admin,
        read,
        ingest,
        public_shop,
        clock,
        app,
        _dir: dir,
        stop: Some((stop, server)),
    }
}

impl TestApp {
    /// Shuts the server down gracefully (as on SIGTERM), then starts a new process's
    /// worth of state — a new `App` over the same database — on a new port.
    pub async fn restart(mut self) -> TestApp {
        let (stop, server) = self.stop.take().expect("running");
        let _ = stop.send(());
        server.await.expect("the server stops");
        let app = open(&self._dir, &self.clock).await;
        let keys = [
            self.admin.clone(),
            self.read.clone(),
            self.ingest.clone(),
            self.public_shop.clone(),
        ];
        let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().expect("temp dir"));
        serve(app, dir, self.clock.clone(), keys).await
    }

    pub fn request(&self, method: Method, path: &str, key: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path, &self.admin)
            .send()
            .await
            .expect("request")
    }

    /// GETs a route that needs no key (metrics, pages) and returns its body.
    pub async fn public_text(&self, path: &str) -> String {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request");
        response.text().await.expect("a text body")
    }

    pub async fn send_json(&self, method: Method, path: &str, body: Value) -> Response {
        self.request(method, path, &self.admin)
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.send_json(Method::POST, path, body).await
    }

    /// POSTs and returns the created body, failing the test on any other status.
    pub async fn create(&self, path: &str, body: Value) -> Value {
        let response = self.post(path, body).await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        response.json().await.unwrap()
    }
}

/// Reads a problem document, checking its content type, status and code.
pub async fn problem(response: Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status(), status);
    let content_type = response
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status);
    body
}
