//! Planning a membership import against what is stored, shared by the SQL backends.
//!
//! The last line for a (customer, segment) pair wins. An expired membership counts as
//! absent: naming it again renews it. A live one whose expiry changed is rewritten and
//! counted unchanged. A snapshot removes every stored membership it does not name.

use std::collections::HashMap;

use crate::ImportMode;

/// (customer key, segment id).
pub type Pair = (i64, i64);

/// What to write.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImportPlan {
    /// Pairs to insert, or to overwrite (renewed or new expiry), with their expiry.
    pub upserts: Vec<(Pair, Option<i64>)>,
    pub removes: Vec<Pair>,
    /// New or renewed memberships.
    pub added: u64,
    pub unchanged: u64,
}

/// `existing`: every stored membership of the service with its expiry (micros);
/// `lines`: (pair, remove, expiry) in input order; `now` in micros.
pub fn plan_import(
    existing: &HashMap<Pair, Option<i64>>,
    lines: impl IntoIterator<Item = (Pair, bool, Option<i64>)>,
    mode: ImportMode,
    now: i64,
) -> ImportPlan {
    let mut last: HashMap<Pair, (bool, Option<i64>)> = HashMap::new();
    for (pair, remove, expires) in lines {
        last.insert(pair, (remove, expires));
    }
    let live = |e: &Option<i64>| e.is_none_or(|at| at > now);
    let mut plan = ImportPlan::default();
    for (pair, (remove, expires)) in &last {
        match (existing.get(pair), remove) {
            (Some(_), true) => plan.removes.push(*pair),
            (None, true) => {}
            (Some(current), false) if live(current) && current == expires => plan.unchanged += 1,
            (Some(current), false) if live(current) => {
                plan.upserts.push((*pair, *expires));
                plan.unchanged += 1;
            }
            (_, false) => {
                plan.upserts.push((*pair, *expires));
                plan.added += 1;
            }
        }
    }
    if mode == ImportMode::Snapshot {
        plan.removes
            .extend(existing.keys().filter(|pair| !last.contains_key(*pair)));
    }
    plan.upserts.sort_unstable();
    plan.removes.sort_unstable();
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_line_for_a_pair_wins_in_a_delta() {
        let existing = HashMap::from([((1, 1), None)]);
        let plan = plan_import(
            &existing,
            [
                ((1, 1), true, None),
                ((1, 1), false, None),
                ((2, 1), false, None),
                ((2, 1), true, None),
            ],
            ImportMode::Delta,
            0,
        );
        assert_eq!((plan.upserts, plan.removes, plan.unchanged), (vec![], vec![], 1));
    }

    #[test]
    fn expired_memberships_are_renewed_and_changed_expiries_rewritten() {
        let existing = HashMap::from([((1, 1), Some(5)), ((2, 1), Some(50)), ((3, 1), None)]);
        let lines = [((1, 1), false, None), ((2, 1), false, Some(60)), ((3, 1), false, None)];
        let plan = plan_import(&existing, lines, ImportMode::Snapshot, 10);
        assert_eq!(plan.upserts, vec![((1, 1), None), ((2, 1), Some(60))]);
        assert_eq!((plan.added, plan.unchanged, plan.removes.len()), (1, 2, 0));
    }

    #[test]
    fn a_snapshot_removes_what_it_does_not_name() {
        let existing = HashMap::from([((1, 1), None), ((2, 1), None)]);
        let plan = plan_import(
            &existing,
            [((2, 1), false, None), ((3, 1), false, None)],
            ImportMode::Snapshot,
            0,
        );
        assert_eq!((plan.removes, plan.added, plan.unchanged), (vec![(1, 1)], 1, 1));
    }
}
