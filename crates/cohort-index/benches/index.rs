//! Criterion benchmarks of the segment index at production size: 10,000,000
//! customers × 100 segments (densities from 0.5 % to 50 %), built once.
//!
//! Run: `cargo bench -p cohort-index --bench index`

use cohort_index::{Expr, SegmentIndex};
use criterion::{Criterion, criterion_group, criterion_main};

const CUSTOMERS: u32 = 10_000_000;
const SEGMENTS: u32 = 100;

/// Deterministic pseudo-random membership: segment s holds about (s % 20 + 1) × 2.5 % of customers.
fn build() -> SegmentIndex {
    let mut index = SegmentIndex::new();
    for c in 0..CUSTOMERS {
        index.add_customer(c);
    }
    for s in 0..SEGMENTS {
        let per_mille = (s % 20 + 1) * 25;
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ u64::from(s);
        let members = (0..CUSTOMERS).filter(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 1000) < u64::from(per_mille)
        });
        index.extend(s, members);
    }
    index
}

fn queries(c: &mut Criterion) {
    let index = build();
    eprintln!(
        "index: {} customers, {} segments, {:.0} MiB",
        index.customer_count(),
        index.segment_count(),
        index.memory_bytes() as f64 / 1_048_576.0
    );
    // A = 50 % dense, B = 25 %, C = 12.5 %.
    let a_and_b_not_c = Expr::And(vec![Expr::segment(19), Expr::segment(9), Expr::not(Expr::segment(4))]);
    c.bench_function("count A and B and not C (10M customers)", |b| {
        b.iter(|| index.count(&a_and_b_not_c))
    });
    let a_or_b = Expr::Or(vec![Expr::segment(19), Expr::segment(9)]);
    c.bench_function("count A or B (10M customers)", |b| b.iter(|| index.count(&a_or_b)));
    c.bench_function("segments of one customer (100 segments)", |b| {
        let mut customer = 0u32;
        b.iter(|| {
            customer = (customer + 7_919) % CUSTOMERS;
            index.segments_of(customer)
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = queries
}
criterion_main!(benches);
