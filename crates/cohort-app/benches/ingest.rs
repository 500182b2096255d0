//! Criterion benchmarks of the ingestion path: parsing NDJSON lines and bulk upserts
//! into SQLite (a temporary file, durable settings as in production).
//!
//! Run: `cargo bench -p cohort-app --bench ingest`

use std::time::Duration;

use cohort_app::import::parse_ndjson_line;
use cohort_core::Timestamp;
use cohort_core::customer::CustomerUpsert;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

fn line(i: usize) -> String {
    format!(
        r#"{{"id":"B{i:08}","attributes":{{"birthdate":"1984-0{}-12","country":"FR","zip":"0{i:04}","loyalty_tier":"gold","orders_count":{},"newsletter":true,"interests":["ski","yoga"]}}}}"#,
        1 + i % 9,
        i % 60
    )
}

fn parsing(c: &mut Criterion) {
    let lines: Vec<String> = (0..1_000).map(line).collect();
    let mut group = c.benchmark_group("parse_ndjson_line");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("1000 customers", |b| {
        b.iter(|| lines.iter().map(|l| parse_ndjson_line(l).unwrap()).collect::<Vec<_>>())
    });
    group.finish();
}

fn upserts(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let batch: Vec<CustomerUpsert> = (0..10_000).map(|i| parse_ndjson_line(&line(i)).unwrap()).collect();
    let mut group = c.benchmark_group("sqlite_import");
    group
        .throughput(Throughput::Elements(batch.len() as u64))
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("10000 new customers", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}/bench.db", dir.path().display());
                let store = runtime.block_on(cohort_app::open_store(&url)).unwrap();
                (dir, store)
            },
            |(_dir, store)| {
                runtime.block_on(async {
                    let mut import = store.import_customers().await.unwrap();
                    for chunk in batch.chunks(5_000) {
                        import.write(chunk, Timestamp::from_unix_micros(0)).await.unwrap();
                    }
                    import.commit().await.unwrap();
                })
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, parsing, upserts);
criterion_main!(benches);
