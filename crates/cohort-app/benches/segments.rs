//! Criterion benchmarks of segment answers, each beside its alternative in one run:
//! - membership counts from the in-memory index vs the same query as SQL on the same
//!   SQLite store (`COHORT_BENCH_CUSTOMERS` customers × 100 segments, default 1,000,000;
//!   where one SQL count takes more than 10 s, as at 10,000,000, the SQL side is timed
//!   by the bench itself over three runs and its median printed);
//! - the segment provider of an application with a standard service and an `http`
//!   service whose backend accepts connections and never answers (timeout 50 ms).
//!
//! Run: `cargo bench -p cohort-app --bench segments`

use std::sync::Arc;
use std::time::{Duration, Instant};

use cohort_app::index::Query;
use cohort_app::{App, SystemClock};
use cohort_core::segment::{NewSegment, NewSegmentGroup};
use cohort_core::{
    Application, ApplicationId, Currency, CustomerId, HttpSettings, Name, NewCustomer, QualifiedSegment, ReferenceKey,
    SegmentationService, ServiceId, ServiceKind,
};
use criterion::{Criterion, criterion_group, criterion_main};

/// Runs of the SQL count when it is timed here rather than by criterion.
const SQL_RUNS_TIMED_HERE: usize = 3;

fn customers() -> i64 {
    std::env::var("COHORT_BENCH_CUSTOMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn name(s: &str) -> Name {
    Name::parse("n", s).unwrap()
}

fn q(segment: &str) -> Query {
    Query::Segment(QualifiedSegment::parse("q", &format!("standard/bench/{segment}")).unwrap())
}

fn index_vs_sql(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/bench.db", dir.path().display());
    let n = customers();
    let (app, pool) = runtime.block_on(async {
        let store = cohort_app::open_store(&url).await.unwrap();
        let group = NewSegmentGroup {
            service: ServiceId::standard(),
            name: name("bench"),
            reference: ReferenceKey::parse("r", "bench").unwrap(),
            calculated: true,
            exclusive: false,
        };
        let group = store.create_segment_group(&group).await.unwrap();
        let mut ids = Vec::new();
        for s in 0..100 {
            let new = NewSegment {
                group: group.id,
                name: name(&format!("s{s}")),
                reference: ReferenceKey::parse("r", &format!("s{s}")).unwrap(),
                calculated: true,
            };
            ids.push(store.create_segment(&new).await.unwrap().id.get());
        }
        // The store's own page cache, so the SQL side reads as the store would.
        let options: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
        let pool = sqlx::SqlitePool::connect_with(options.pragma("cache_size", "-65536"))
            .await
            .unwrap();
        sqlx::query(
            "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < $1)
             INSERT INTO customers (id, attributes, active, profiling_consent, created_at, updated_at)
             SELECT 'B' || x, '{}', 1, 0, 0, 0 FROM n",
        )
        .bind(n)
        .execute(&pool)
        .await
        .unwrap();
        // Generated in primary-key order with the log triggers and the by-segment index
        // set aside (the index is created afterwards, the triggers put back): at
        // 10,000,000 customers this writes 260 M rows in minutes instead of hours.
        // One connection for all of it: another would prepare against the schema it
        // read before the index was dropped.
        let mut conn = pool.acquire().await.unwrap();
        let mut definitions = Vec::new();
        for name in ["memberships_by_segment", "membership_log_insert"] {
            let sql: String = sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE name = $1")
                .bind(name)
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            definitions.push(sql);
        }
        for sql in [
            "DROP TRIGGER membership_log_insert",
            "DROP INDEX memberships_by_segment",
        ] {
            sqlx::query(sql).execute(&mut *conn).await.unwrap();
        }
        // Segment s holds about (s % 20 + 1) × 2.5 % of the customers.
        let list = ids
            .iter()
            .enumerate()
            .map(|(s, id)| format!("({id}, {})", (s as i64 % 20 + 1) * 25))
            .collect::<Vec<_>>()
            .join(", ");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "WITH s(id, per_mille) AS (VALUES {list})
             INSERT INTO memberships (customer_seq, segment_id, source, assigned_at, application_counter, expires_at)
             SELECT c.seq, s.id, 'calculated', 0, 1, NULL FROM customers c CROSS JOIN s
             WHERE ((c.seq * 2654435761 + s.id * 40503) % 1000) < s.per_mille ORDER BY c.seq, s.id"
        )))
        .execute(&mut *conn)
        .await
        .unwrap();
        for sql in definitions {
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *conn).await.unwrap();
        }
        drop(conn);
        let end = store.membership_log_end().await.unwrap();
        store.prune_membership_log(end).await.unwrap();
        let app = App::new(store, Arc::new(SystemClock));
        let started = Instant::now();
        app.index.catch_up().await.unwrap();
        eprintln!(
            "live index built from the store in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        (app, pool)
    });
    // A = 50 % of customers (s19), B = 25 % (s9), C = 12.5 % (s4).
    let query = Query::And(vec![q("s19"), q("s9"), Query::Not(Box::new(q("s4")))]);
    let index_count = runtime.block_on(app.index.query(&query, None, 0)).unwrap().count;
    let (a, b, cc): (i64, i64, i64) = runtime.block_on(async {
        let id = |r: &str| {
            sqlx::query_scalar::<_, i64>("SELECT id FROM segments WHERE reference = $1")
                .bind(r.to_owned())
                .fetch_one(&pool)
        };
        (
            id("s19").await.unwrap(),
            id("s9").await.unwrap(),
            id("s4").await.unwrap(),
        )
    });
    let sql = "SELECT COUNT(*) FROM memberships a
               JOIN memberships b ON b.customer_seq = a.customer_seq AND b.segment_id = $2
               WHERE a.segment_id = $1
                 AND NOT EXISTS (SELECT 1 FROM memberships c WHERE c.customer_seq = a.customer_seq AND c.segment_id = $3)";
    let sql_count = || {
        runtime
            .block_on(
                sqlx::query_scalar::<_, i64>(sql)
                    .bind(a)
                    .bind(b)
                    .bind(cc)
                    .fetch_one(&pool),
            )
            .unwrap()
    };
    let started = Instant::now();
    assert_eq!(index_count, sql_count() as u64, "the index and SQL agree");
    let first = started.elapsed();
    eprintln!("{n} customers × 100 segments; A ∧ B ∧ ¬C matches {index_count}");
    // Criterion needs eleven runs or more: where one SQL count takes minutes, the SQL side
    // is timed here instead, a few runs after the checked one, and its median printed.
    let timed_here = first > Duration::from_secs(10);
    if timed_here {
        let mut runs = vec![first];
        for _ in 0..SQL_RUNS_TIMED_HERE - 1 {
            let started = Instant::now();
            sql_count();
            runs.push(started.elapsed());
        }
        runs.sort();
        let seconds: Vec<String> = runs.iter().map(|r| format!("{:.1} s", r.as_secs_f64())).collect();
        eprintln!(
            "SQL on SQLite ({n} customers): median {:.1} s of {} runs ({})",
            runs[runs.len() / 2].as_secs_f64(),
            runs.len(),
            seconds.join(", ")
        );
    }

    let mut group = c.benchmark_group("count A and B and not C");
    group.sample_size(10).measurement_time(Duration::from_secs(10));
    group.bench_function(format!("index ({n} customers)"), |bench| {
        bench.iter(|| runtime.block_on(app.index.query(&query, None, 0)).unwrap().count)
    });
    if !timed_here {
        group.bench_function(format!("SQL on SQLite ({n} customers)"), |bench| bench.iter(sql_count));
    }
    group.finish();
}

fn provider_with_a_dead_service(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/provider.db", dir.path().display());
    let (app, shop, customer, _listener) = runtime.block_on(async {
        // Accepts connections and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let store = cohort_app::open_store(&url).await.unwrap();
        let shop = ApplicationId::parse("a", "shop").unwrap();
        store
            .create_application(&Application {
                id: shop.clone(),
                name: name("Shop"),
                default_currency: Currency::parse("c", "EUR").unwrap(),
                allowed_origins: vec![],
                enabled: true,
            })
            .await
            .unwrap();
        let settings =
            HttpSettings::new(&format!("http://{address}/dead"), Some(50), Some(0), Some(1_000), None).unwrap();
        let dead = SegmentationService {
            id: ServiceId::parse("s", "dead").unwrap(),
            name: name("Dead"),
            kind: ServiceKind::Http(settings),
            available: true,
        };
        store.create_service(&dead).await.unwrap();
        store.set_service_active(&shop, &dead.id, true).await.unwrap();
        let customer = CustomerId::parse("c", "C1").unwrap();
        store
            .create_customer(
                &NewCustomer::new(customer.clone(), Default::default(), true, false).unwrap(),
                system_now(),
            )
            .await
            .unwrap();
        (App::new(store, Arc::new(SystemClock)), shop, customer, hold)
    });
    let mut group = c.benchmark_group("provider");
    group.sample_size(20);
    group.bench_function("standard + http service that never answers (timeout 50 ms)", |bench| {
        bench.iter(|| {
            let provided = runtime
                .block_on(app.segments.customer_segments(&shop, &customer))
                .unwrap();
            assert_eq!(provided.unanswered.len(), 1);
        })
    });
    group.finish();
}

fn system_now() -> cohort_core::Timestamp {
    use cohort_app::Clock;
    SystemClock.now()
}

criterion_group!(benches, provider_with_a_dead_service, index_vs_sql);
criterion_main!(benches);
