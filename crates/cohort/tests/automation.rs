//! Automation across whole server processes: a delayed action survives `kill -9` of
//! the server and runs once after a restart; two servers on one PostgreSQL database
//! never run an action twice. The servers read the time from a clock file the test
//! moves (`serve --clock-file`), so delays come due without waiting for them.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const T0: i64 = 1_800_000_000_000_000;
const MINUTE: i64 = 60_000_000;

/// The order part of an `order` activity.
static ORDER: std::sync::LazyLock<Value> =
    std::sync::LazyLock::new(|| json!({"total": "10.00", "currency": "EUR", "items": []}));

fn set_clock(file: &Path, micros: i64) {
    std::fs::write(file, micros.to_string()).unwrap();
}

fn admin_key(dir: &Path, url: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_cohort"))
        .args([
            "--database-url",
            url,
            "keys",
            "create",
            "--name",
            "test",
            "--scope",
            "admin",
        ])
        .current_dir(dir)
        .env_remove("COHORT_CONFIG")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_owned()
}

/// A `cohort serve` process, killed when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(dir: &Path, url: &str, clock: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cohort"))
            .args([
                "--database-url",
                url,
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--clock-file",
            ])
            .arg(clock)
            .current_dir(dir)
            .env("COHORT_LOG", "info")
            .env_remove("COHORT_CONFIG")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let address = loop {
            let line = lines.next().expect("the server logs its address").unwrap();
            if let Some(rest) = line.split("address=").nth(1) {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        // Keep reading the log so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self {
            child,
            base: format!("http://{address}"),
        }
    }

    /// SIGKILL: no shutdown hook runs.
    fn kill_9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Api {
    http: reqwest::Client,
    key: String,
}

impl Api {
    async fn send(&self, server: &Server, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method, format!("{}{path}", server.base))
            .bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    async fn post(&self, server: &Server, path: &str, body: Value) -> Value {
        self.send(server, reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, server: &Server, path: &str) -> Value {
        self.send(server, reqwest::Method::GET, path, None).await
    }

    async fn queued(&self, server: &Server) -> usize {
        self.get(server, "/v1/automation/queue?limit=1000")
            .await
            .as_array()
            .unwrap()
            .len()
    }

    /// Waits (at most a minute of real time) for the servers' workers to empty the queue.
    async fn drained(&self, server: &Server) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.queued(server).await > 0 {
            assert!(Instant::now() < deadline, "the queue was not run");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A segment and a rule giving it, and a `thanked` activity, two hours after each order.
    async fn setup(&self, server: &Server) -> (i64, i64) {
        let group = self
            .post(server, "/v1/segment-groups", json!({"name": "Loyalty"}))
            .await;
        let segment = self
            .post(server, "/v1/segments", json!({"group": group["id"], "name": "Thanked"}))
            .await["id"]
            .as_i64()
            .unwrap();
        let rule = self
            .post(
                server,
                "/v1/automation/rules",
                json!({"name": "thank later", "triggers": [{"new_activity": "order"}],
                       "actions": [{"add_segment": segment, "delay": "2h"},
                                   {"track_activity": "thanked", "delay": "2h"}]}),
            )
            .await["id"]
            .as_i64()
            .unwrap();
        (segment, rule)
    }

    /// The customer's application counter of the segment and its `thanked` activities.
    async fn effects(&self, server: &Server, customer: &str, segment: i64) -> (u64, usize) {
        let segments = self.get(server, &format!("/v1/customers/{customer}/segments")).await;
        let counter = segments["segments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["segment"] == segment)
            .map_or(0, |m| m["application_counter"].as_u64().unwrap());
        let activities = self
            .get(server, &format!("/v1/customers/{customer}/activities?type=thanked"))
            .await;
        (counter, activities["items"].as_array().unwrap().len())
    }
}

fn client(key: String) -> Api {
    Api {
        http: reqwest::Client::new(),
        key,
    }
}

#[tokio::test]
async fn a_delayed_action_survives_kill_9_and_runs_once_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cohort.db").display());
    let clock = dir.path().join("clock");
    set_clock(&clock, T0);
    let api = client(admin_key(dir.path(), &url));

    let first = Server::start(dir.path(), &url, &clock);
    let (segment, rule) = api.setup(&first).await;
    api.post(&first, "/v1/customers", json!({"id": "C-1"})).await;
    api.post(
        &first,
        "/v1/activities",
        json!({"id": "o-1", "customer": "C-1", "type": "order", "order": *ORDER}),
    )
    .await;
    assert_eq!(api.queued(&first).await, 2, "both actions wait two hours");
    first.kill_9();

    let second = Server::start(dir.path(), &url, &clock);
    assert_eq!(api.queued(&second).await, 2, "the queue survived the crash");
    assert_eq!(
        api.effects(&second, "C-1", segment).await,
        (0, 0),
        "not before their time"
    );
    set_clock(&clock, T0 + 121 * MINUTE);
    api.drained(&second).await;
    assert_eq!(
        api.effects(&second, "C-1", segment).await,
        (1, 1),
        "each action ran once"
    );
    let stats = api.get(&second, &format!("/v1/automation/rules/{rule}")).await;
    assert_eq!(stats["fired"], 1);
    second.kill_9();

    // Another crash and restart later: nothing runs again.
    let third = Server::start(dir.path(), &url, &clock);
    set_clock(&clock, T0 + 300 * MINUTE);
    assert_eq!(api.queued(&third).await, 0);
    assert_eq!(api.effects(&third, "C-1", segment).await, (1, 1));
}

/// A PostgreSQL database of its own, dropped at the end.
struct Database {
    server: String,
    name: String,
}

impl Database {
    async fn create() -> Self {
        use sqlx::Connection;
        let server = std::env::var("COHORT_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let name = format!("cohort_test_servers_{}", std::process::id());
        let mut conn = sqlx::PgConnection::connect(&server).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        Self { server, name }
    }

    fn url(&self) -> String {
        let (base, _) = self.server.rsplit_once('/').unwrap();
        format!("{base}/{}", self.name)
    }

    async fn drop_now(self) {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.server).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE {} WITH (FORCE)", self.name)))
            .execute(&mut conn)
            .await
            .unwrap();
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL (scripts/test runs it when PostgreSQL answers)"]
async fn two_servers_on_one_postgresql_database_never_run_an_action_twice() {
    let database = Database::create().await;
    let dir = tempfile::tempdir().unwrap();
    let url = database.url();
    let clock = dir.path().join("clock");
    set_clock(&clock, T0);
    let api = client(admin_key(dir.path(), &url));
    let servers = [
        Server::start(dir.path(), &url, &clock),
        Server::start(dir.path(), &url, &clock),
    ];
    let (segment, rule) = api.setup(&servers[0]).await;
    // The other server compiles rules it did not save itself within a second.
    set_clock(&clock, T0 + MINUTE);

    const CUSTOMERS: usize = 300;
    let mut orders = String::new();
    for i in 0..CUSTOMERS {
        api.post(&servers[i % 2], "/v1/customers", json!({"id": format!("C-{i}")}))
            .await;
        let order = json!({"id": format!("o-{i}"), "customer": format!("C-{i}"), "type": "order", "order": *ORDER});
        orders.push_str(&order.to_string());
        orders.push('\n');
    }
    let response = api
        .http
        .post(format!("{}/v1/activities", servers[1].base))
        .bearer_auth(&api.key)
        .header("content-type", "application/x-ndjson")
        .body(orders)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    assert_eq!(api.queued(&servers[0]).await, 2 * CUSTOMERS);

    // Both servers' workers find the same jobs due at once.
    set_clock(&clock, T0 + 122 * MINUTE);
    api.drained(&servers[0]).await;
    for i in 0..CUSTOMERS {
        let effects = api.effects(&servers[i % 2], &format!("C-{i}"), segment).await;
        assert_eq!(effects, (1, 1), "customer C-{i}: each action ran exactly once");
    }
    let stats = api.get(&servers[1], &format!("/v1/automation/rules/{rule}")).await;
    assert_eq!(stats["fired"], CUSTOMERS);
    drop(servers);
    database.drop_now().await;
}
