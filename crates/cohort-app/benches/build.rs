//! Full segment build: age groups + region (attribute mapping) + RFM for
//! `COHORT_BENCH_CUSTOMERS` customers (default 1,000,000) with
//! `COHORT_BENCH_ACTIVITIES` order activities (default 10,000,000) on SQLite.
//! Times the first build (writes every membership) and a rebuild (writes only
//! changes: none), each once — a 30-second operation is not a criterion loop — with
//! the time of each phase (evaluating every builder, then scoring RFM).
//!
//! Run: `cargo bench -p cohort-app --bench build`

use std::sync::Arc;
use std::time::Instant;

use cohort_app::building::Progress;
use cohort_app::{App, Clock, ManualClock};
use cohort_core::customer::CustomerUpsert;
use cohort_core::segment::NewSegmentGroup;
use cohort_core::*;
use serde_json::json;
use sqlx::Connection;

/// Prints how long each phase of a build took.
struct Phases(std::sync::Mutex<Option<(&'static str, Instant)>>);

impl Phases {
    fn end(&self) {
        if let Some((name, started)) = self.0.lock().unwrap().take() {
            println!("  {name}: {:.2} s", started.elapsed().as_secs_f64());
        }
    }
}

impl Progress for Phases {
    fn phase(&self, name: &'static str, _: u64) {
        self.end();
        *self.0.lock().unwrap() = Some((name, Instant::now()));
    }

    fn advance(&self, _: u64) {}
}

fn env(name: &str, default: i64) -> i64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

const COUNTRIES: [&str; 8] = ["FR", "DE", "AT", "CH", "IT", "GB", "ES", "NL"];
const NOW: i64 = 1_795_000_000_000_000;
const DAY: i64 = 86_400_000_000;

fn main() {
    let customers = env("COHORT_BENCH_CUSTOMERS", 1_000_000);
    let activities = env("COHORT_BENCH_ACTIVITIES", 10_000_000);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let url = format!("sqlite://{}", path.display());
    runtime.block_on(async {
        let store = cohort_app::open_store(&url).await.unwrap();
        let clock = Arc::new(ManualClock::new(Timestamp::from_unix_micros(NOW)));
        let app = App::new(store.clone(), clock.clone());
        let started = Instant::now();
        let mut import = store.import_customers().await.unwrap();
        let mut batch = Vec::with_capacity(10_000);
        for i in 0..customers {
            let mut attributes = Attributes::new();
            let birth =
                time::Date::from_calendar_date(1940 + (i * 7 % 67) as i32, time::Month::March, 1 + (i % 28) as u8)
                    .unwrap();
            attributes.insert(
                AttributeName::parse("a", "birthdate").unwrap(),
                AttributeValue::Date(birth),
            );
            attributes.insert(
                AttributeName::parse("a", "country").unwrap(),
                AttributeValue::String(COUNTRIES[(i % 8) as usize].into()),
            );
            let id = CustomerId::parse("id", &format!("B{i:08}")).unwrap();
            batch.push(CustomerUpsert::new(id, Some(attributes), None, None).unwrap());
            if batch.len() == 10_000 {
                import.write(&batch, clock.now()).await.unwrap();
                batch.clear();
            }
        }
        import.write(&batch, clock.now()).await.unwrap();
        import.commit().await.unwrap();
        // Activities straight into the table (the build reads customer, type, time and
        // amount): generating 10M rows through the API would dwarf the build itself.
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $1 - 1)
             INSERT INTO activities (id, customer_seq, type, at, attributes, order_data, amount_e4, recorded_at)
             SELECT 'o' || i, (i * 7919) % $2 + 1, 'order', $3 - (i * 104729) % (400 * $4), '{}', NULL,
                    150000 + (i * 31337) % 2850000, $3
             FROM n",
        )
        .bind(activities)
        .bind(customers)
        .bind(NOW)
        .bind(DAY)
        .execute(&mut conn)
        .await
        .unwrap();
        sqlx::query("DELETE FROM segment_build_queue")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        eprintln!(
            "setup: {customers} customers, {activities} activities in {:.1} s",
            started.elapsed().as_secs_f64()
        );

        let mut groups = Vec::new();
        for (reference, exclusive) in [("age", true), ("region", true), ("rfm", false)] {
            let new = NewSegmentGroup {
                service: ServiceId::standard(),
                name: Name::parse("n", reference).unwrap(),
                reference: ReferenceKey::parse("r", reference).unwrap(),
                calculated: true,
                exclusive,
            };
            groups.push(store.create_segment_group(&new).await.unwrap().id);
        }
        let definitions = [
            json!({"kind": "age_groups", "attribute": "birthdate", "ranges": [
                {"from": 18, "to": 24, "segment": "18-24"}, {"from": 25, "to": 34, "segment": "25-34"},
                {"from": 35, "to": 44, "segment": "35-44"}, {"from": 45, "to": 54, "segment": "45-54"},
                {"from": 55, "to": 64, "segment": "55-64"}, {"from": 65, "segment": "65-plus"}]}),
            json!({"kind": "attribute_mapping", "attribute": "country", "mapping": {
                "FR": "west", "ES": "west", "GB": "west", "NL": "west", "DE": "central", "AT": "central",
                "CH": "central", "IT": "south"}}),
            json!({"kind": "rfm", "activity": "order", "window_days": 365}),
        ];
        for (group, definition) in groups.iter().zip(&definitions) {
            let name = Name::parse("n", "bench").unwrap();
            app.builds.create(name, *group, definition, None, true).await.unwrap();
        }
        for label in ["first build", "rebuild"] {
            let started = Instant::now();
            let phases = Phases(std::sync::Mutex::new(None));
            let report = app.builds.run_full(None, &phases).await.unwrap();
            phases.end();
            println!(
                "{label}: {} customers, {} memberships added, {} removed in {:.2} s",
                report.customers,
                report.added,
                report.removed,
                started.elapsed().as_secs_f64()
            );
        }
    });
}
