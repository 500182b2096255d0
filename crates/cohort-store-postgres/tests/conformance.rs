//! The storage conformance suite on PostgreSQL, each test on a database of its own.
//!
//! The server comes from `COHORT_TEST_POSTGRES_URL`; every test creates a database with
//! a unique name and drops it when the test ends, whether it passed or not.

use std::ops::Deref;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Waker};
use std::time::{SystemTime, UNIX_EPOCH};

use cohort_store::Store;
use cohort_store_postgres::PostgresStore;
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn server_url() -> String {
    std::env::var("COHORT_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// A name no other test, run or process uses at the same time.
fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "cohort_test_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs `sql` on the server's administration database.
async fn administer(server: &str, sql: String) -> Result<(), sqlx::Error> {
    let mut conn = PgConnection::connect(server).await?;
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await?;
    conn.close().await
}

/// A store on a database of its own, dropped with it.
struct TestStore {
    store: PostgresStore,
    server: String,
    database: String,
}

impl Deref for TestStore {
    type Target = dyn Store;

    fn deref(&self) -> &Self::Target {
        &self.store
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        // Async drop does not exist: mark the pool closed and let it close what idle
        // connections it can without waiting, then drop the database from a thread of
        // its own (`WITH (FORCE)` ends whatever connection is left).
        let close = std::pin::pin!(self.store.close());
        let _ = close.poll(&mut Context::from_waker(Waker::noop()));
        let server = self.server.clone();
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.database);
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(administer(&server, sql))
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("cannot drop test database {}: {e}", self.database),
            Err(_) => eprintln!("cannot drop test database {}", self.database),
        }
    }
}

async fn fresh() -> TestStore {
    let server = server_url();
    let database = unique_name();
    administer(&server, format!("CREATE DATABASE \"{database}\""))
        .await
        .expect("create test database (is PostgreSQL running?)");
    let options = PgConnectOptions::from_str(&server)
        .expect("postgres url")
        .database(&database);
    let test = TestStore {
        store: PostgresStore::open_with(options).await.expect("open postgres"),
        server,
        database,
    };
    test.migrate().await.expect("migrate");
    test
}

cohort_store::conformance_suite!(fresh, #[ignore = "needs PostgreSQL: run with --include-ignored (scripts/test does when PostgreSQL answers)"]);

/// Log positions are handed out before commit: a reader sees a later position first,
/// and the earlier one when its transaction commits — or learns that it never will.
#[tokio::test]
#[ignore = "needs PostgreSQL: run with --include-ignored (scripts/test does when PostgreSQL answers)"]
async fn a_log_position_committed_late_is_read_as_a_gap_and_a_rolled_back_one_is_settled() {
    let test = fresh().await;
    let url = PgConnectOptions::from_str(&test.server)
        .expect("postgres url")
        .database(&test.database);
    let (mut late, mut other) = (
        PgConnection::connect_with(&url).await.unwrap(),
        PgConnection::connect_with(&url).await.unwrap(),
    );
    let insert = |id: &str| {
        format!(
            "INSERT INTO customers (id, attributes, active, profiling_consent, created_at, updated_at) \
             VALUES ('{id}', '{{}}', TRUE, FALSE, 0, 0)"
        )
    };
    let start = test.membership_log_end().await.unwrap();
    let positions = |read: &cohort_store::LogRead| read.changes.iter().map(|c| c.position).collect::<Vec<_>>();

    sqlx::raw_sql(AssertSqlSafe(format!("BEGIN; {}", insert("late"))))
        .execute(&mut late)
        .await
        .unwrap();
    sqlx::raw_sql(AssertSqlSafe(insert("early")))
        .execute(&mut other)
        .await
        .unwrap();
    let read = test.read_membership_log(start, &[], 100).await.unwrap();
    assert_eq!(positions(&read), [start + 2], "the uncommitted position is not visible");
    let bound = test
        .log_writers_bound()
        .await
        .unwrap()
        .expect("postgres bounds its writers");
    let again = test.read_membership_log(start + 2, &[start + 1], 100).await.unwrap();
    assert!(again.changes.is_empty());
    assert!(
        again.ended_below.unwrap() <= bound,
        "the writer of the gap is still running"
    );

    sqlx::raw_sql("COMMIT").execute(&mut late).await.unwrap();
    let filled = test.read_membership_log(start + 2, &[start + 1], 100).await.unwrap();
    assert_eq!(
        positions(&filled),
        [start + 1],
        "the late commit is read at its position"
    );

    sqlx::raw_sql(AssertSqlSafe(format!("BEGIN; {}", insert("gone"))))
        .execute(&mut late)
        .await
        .unwrap();
    sqlx::raw_sql(AssertSqlSafe(insert("after")))
        .execute(&mut other)
        .await
        .unwrap();
    sqlx::raw_sql("ROLLBACK").execute(&mut late).await.unwrap();
    let read = test.read_membership_log(start + 2, &[], 100).await.unwrap();
    assert_eq!(positions(&read), [start + 4]);
    let bound = test.log_writers_bound().await.unwrap().unwrap();
    // Transaction ids are shared by the whole server: a transaction of a test running
    // beside this one (in another database) also holds the horizon back. Its end is
    // awaited; the rolled-back writer itself never holds it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let settled = test.read_membership_log(start + 4, &[start + 3], 100).await.unwrap();
        assert!(settled.changes.is_empty(), "a rolled-back position is never read");
        if settled.ended_below.unwrap() > bound {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "every writer that could fill the gap has ended: it was rolled back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Activities keep their customer's key without a foreign key: a customer deleted while
/// a batch records activities for it waits for the batch's locks, then deletes what it
/// recorded too, so no activity outlives its customer.
#[tokio::test]
#[ignore = "needs PostgreSQL: run with --include-ignored (scripts/test does when PostgreSQL answers)"]
async fn a_customer_deleted_while_a_batch_records_for_it_keeps_no_activity() {
    use cohort_core::{Activity, ActivityId, ActivityType, Attributes, CustomerId, NewCustomer, Timestamp};

    let test = fresh().await;
    let url = PgConnectOptions::from_str(&test.server)
        .expect("postgres url")
        .database(&test.database);
    let mut watch = PgConnection::connect_with(&url).await.unwrap();
    let at = Timestamp::from_unix_micros(1_000_000);
    let customer = CustomerId::parse("id", "c1").unwrap();
    test.create_customer(
        &NewCustomer::new(customer.clone(), Attributes::default(), true, false).unwrap(),
        at,
    )
    .await
    .unwrap();
    let login = |id: &str| {
        Activity::new(
            ActivityId::parse("id", id).unwrap(),
            customer.clone(),
            ActivityType::parse("type", "login").unwrap(),
            at,
            Attributes::default(),
            None,
        )
        .unwrap()
    };
    let mut batch = test.begin_recording(at, cohort_store::Reacting::Reacts).await.unwrap();
    batch.write(&[login("a1"), login("a2")], 0).await.unwrap();

    // The deletion runs until it waits for a lock the batch holds; then the batch commits.
    let deleting = test.delete_customer(&customer, at);
    let committing = async {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                 WHERE NOT l.granted AND a.datname = current_database()",
            )
            .fetch_one(&mut watch)
            .await
            .unwrap();
            if waiting > 0 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the deletion waits for the batch");
            tokio::task::yield_now().await;
        }
        batch.commit().await
    };
    let (deleted, committed) = tokio::join!(deleting, committing);
    deleted.unwrap();
    assert_eq!(committed.unwrap().recorded, 2);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM activities")
        .fetch_one(&mut watch)
        .await
        .unwrap();
    assert_eq!(left, 0, "no activity outlives its customer");
}
