//! Visitors in memory, written behind: a change is saved by the next flush and only
//! once, a flush keeps what changed meanwhile, idle visitors leave memory but not the
//! store, and a new process reads them back.

use std::sync::Arc;

use cohort_app::targeting::visitors::{Visitors, new_visitor_id};
use cohort_core::{TargetGroupId, Timestamp, VisitorId};
use cohort_store::Store;

const MINUTE: i64 = 60 * 1_000_000;

fn t(minutes: i64) -> Timestamp {
    Timestamp::from_unix_micros(1_790_000_000_000_000 + minutes * MINUTE)
}

async fn store(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    cohort_app::open_store(&format!("sqlite://{}/v.db", dir.path().display()))
        .await
        .unwrap()
}

async fn visit(visitors: &Visitors, id: &VisitorId, at: Timestamp) -> bool {
    visitors
        .change(id, false, at, |state, new| {
            state.touch(at, 30 * MINUTE);
            state.visited_pages += 1;
            *state.target_groups.entry(TargetGroupId::new(1)).or_insert(0) += 1;
            new
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn changes_are_saved_by_the_next_flush_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let visitors = Visitors::new(store.clone(), 30 * MINUTE);
    let id = new_visitor_id();
    assert!(visit(&visitors, &id, t(0)).await, "unknown: new");
    assert!(!visit(&visitors, &id, t(1)).await);
    assert_eq!(visitors.unsaved(), 1);
    assert!(
        store.visitors(std::slice::from_ref(&id)).await.unwrap().is_empty(),
        "not written yet"
    );

    assert_eq!(visitors.flush(t(1)).await.unwrap(), 1);
    assert_eq!(visitors.unsaved(), 0);
    assert_eq!(visitors.flush(t(1)).await.unwrap(), 0, "nothing changed since");
    let saved = store.visitors(std::slice::from_ref(&id)).await.unwrap();
    assert_eq!(saved[0].state.visited_pages, 2);
}

#[tokio::test]
async fn idle_visitors_leave_memory_and_come_back_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let visitors = Visitors::new(store.clone(), 30 * MINUTE);
    let (idle, active) = (new_visitor_id(), new_visitor_id());
    visit(&visitors, &idle, t(0)).await;
    visit(&visitors, &active, t(40)).await;
    visitors.flush(t(45)).await.unwrap();
    assert_eq!(visitors.resident(), 1, "the idle one left memory");
    // Dropped from memory (idle 45 minutes), then changed again: read back first.
    assert!(!visit(&visitors, &idle, t(50)).await, "known to the store: not new");
    let state = visitors.get(&idle).await.unwrap().unwrap();
    assert_eq!((state.visited_pages, state.sessions), (2, 2));
    assert_eq!(state.target_groups[&TargetGroupId::new(1)], 2);

    // A new process (a restart) reads what the flush wrote.
    visitors.flush(t(50)).await.unwrap();
    let again = Visitors::new(store, 30 * MINUTE);
    assert_eq!(again.get(&active).await.unwrap().unwrap().visited_pages, 1);
    assert_eq!(again.get(&idle).await.unwrap().unwrap().visited_pages, 2);
    assert!(again.get(&new_visitor_id()).await.unwrap().is_none());
}

#[tokio::test]
async fn an_issued_id_is_not_looked_up() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let id = new_visitor_id();
    assert!(id.as_str().starts_with("v_") && id.as_str().len() == 24);
    // The store knows the id (as if another server had saved it): asked, it would say
    // "not new"; an issued id skips the look-up, so the visitor starts fresh.
    let elsewhere = Visitors::new(store.clone(), 30 * MINUTE);
    visit(&elsewhere, &id, t(0)).await;
    elsewhere.flush(t(0)).await.unwrap();
    let visitors = Visitors::new(store, 30 * MINUTE);
    let pages = visitors
        .change(&id, true, t(1), |state, new| (new, state.visited_pages))
        .await
        .unwrap();
    assert_eq!(pages, (true, 0), "not read from the store");
    assert!(
        visit(&visitors, &new_visitor_id(), t(2)).await,
        "an unknown id is new too"
    );
}
