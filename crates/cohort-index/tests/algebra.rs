//! The index agrees with a plain set implementation on the algebra.

use std::collections::BTreeSet;

use cohort_index::{Expr, SegmentIndex};

/// Customers 0..100; segment 1 = even, 2 = multiples of 3, 3 = below 10, 4 = empty.
fn fixture() -> SegmentIndex {
    let mut index = SegmentIndex::new();
    for c in 0..100 {
        index.add_customer(c);
        if c % 2 == 0 {
            index.add(1, c);
        }
        if c % 3 == 0 {
            index.add(2, c);
        }
        if c < 10 {
            index.add(3, c);
        }
    }
    index.extend(4, []);
    index
}

fn model(f: impl Fn(u32) -> bool) -> Vec<u32> {
    (0..100).filter(|c| f(*c)).collect()
}

fn set(index: &SegmentIndex, e: &Expr) -> Vec<u32> {
    index.evaluate(e).iter().collect()
}

#[test]
fn and_or_not_match_set_semantics() {
    let index = fixture();
    let s = Expr::segment;
    let cases: Vec<(Expr, Vec<u32>)> = vec![
        (
            Expr::And(vec![s(1), s(2), Expr::not(s(3))]),
            model(|c| c % 6 == 0 && c >= 10),
        ),
        (Expr::Or(vec![s(3), s(2)]), model(|c| c < 10 || c % 3 == 0)),
        (Expr::not(s(1)), model(|c| c % 2 == 1)),
        (
            Expr::And(vec![Expr::not(s(1)), Expr::not(s(2))]),
            model(|c| c % 2 == 1 && c % 3 != 0),
        ),
        (
            Expr::And(vec![s(1), Expr::Or(vec![s(3), s(4)])]),
            model(|c| c % 2 == 0 && c < 10),
        ),
        (Expr::And(vec![]), model(|_| true)),
        (Expr::Or(vec![]), vec![]),
        (Expr::And(vec![s(1), s(99)]), vec![]),
        (Expr::not(Expr::And(vec![s(1), s(2)])), model(|c| c % 6 != 0)),
    ];
    for (expr, expected) in cases {
        assert_eq!(set(&index, &expr), expected, "{expr:?}");
        assert_eq!(index.count(&expr), expected.len() as u64, "{expr:?}");
    }
}

#[test]
fn pages_continue_after_the_last_key() {
    let index = fixture();
    let (total, first) = index.page(&Expr::segment(2), None, 3);
    assert_eq!((total, first.clone()), (34, vec![0, 3, 6]));
    let (_, next) = index.page(&Expr::segment(2), first.last().copied(), 3);
    assert_eq!(next, vec![9, 12, 15]);
}

#[test]
fn removals_keep_the_index_in_step() {
    let mut index = fixture();
    index.remove(1, 2);
    assert!(!index.contains(1, 2));
    index.remove_customer(4);
    assert_eq!(index.segments_of(4), Vec::<u32>::new());
    assert_eq!(index.segments_of(6), vec![1, 2, 3]);
    // 50 odd customers, and customer 2 that left segment 1; customer 4 is gone.
    assert_eq!(index.count(&Expr::not(Expr::segment(1))), 51);
    index.remove_segment(3);
    assert_eq!(index.segments_of(6), vec![1, 2]);
    let set: BTreeSet<u32> = index.evaluate(&Expr::segment(3)).iter().collect();
    assert!(set.is_empty());
}

#[test]
fn customers_segments_are_right_beyond_the_row_slots() {
    let mut index = SegmentIndex::new();
    // 200 segments: the first 128 created get row slots, the rest are looked up in bitmaps.
    for s in (0..200).rev() {
        index.extend(s, (0..50).filter(|c| (c + s) % 7 == 0));
    }
    for c in 0..50 {
        let expected: Vec<u32> = (0..200).filter(|s| (c + s) % 7 == 0).collect();
        assert_eq!(index.segments_of(c), expected, "customer {c}");
    }
    index.remove_segment(199);
    index.remove(198, 3);
    index.extend(500, [3]);
    let expected: Vec<u32> = (0..198).filter(|s| (3 + s) % 7 == 0).chain([500]).collect();
    assert_eq!(index.segments_of(3), expected);
}
