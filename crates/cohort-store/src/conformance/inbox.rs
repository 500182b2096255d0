//! Conformance of automation's inbox and the activity counts: every recorded activity
//! enters the inbox (counted-only ones marked) and its customer's counts in the same
//! transaction; one snapshot reads the activities in order with their customers'
//! attributes and counts; the firing that reacts to entries removes them, once.

use std::collections::BTreeMap;

use cohort_core::{ActivityType, AttributeName, AttributeValue, Timestamp};

use super::{activity, attrs, cid, new_customer, t};
use crate::{NewJob, Reacting, Store, Unreacted, UnreactedActivity};

fn kind(text: &str) -> ActivityType {
    ActivityType::parse("type", text).unwrap()
}

fn city() -> AttributeName {
    AttributeName::parse("field", "city").unwrap()
}

fn counts(pairs: &[(&str, u32)]) -> BTreeMap<ActivityType, u32> {
    pairs.iter().map(|(k, n)| (kind(k), *n)).collect()
}

fn unreacted(text: &str, reacts: bool) -> UnreactedActivity {
    UnreactedActivity {
        kind: kind(text),
        reacts,
    }
}

/// The unreacted activities of the customer read with this id.
fn of(read: &Unreacted, id: &str) -> Vec<UnreactedActivity> {
    read.customers
        .iter()
        .find(|c| c.id == cid(id))
        .map(|c| c.activities.clone())
        .unwrap_or_default()
}

async fn record(store: &dyn Store, batch: &[(&str, &str, &str)], reacting: Reacting) {
    let activities: Vec<_> = batch
        .iter()
        .map(|(id, customer, kind)| activity(id, customer, kind, 10))
        .collect();
    store.record_activities(&activities, t(10), reacting).await.unwrap();
}

pub async fn recorded_activities_enter_the_inbox_with_their_customers_counts(store: &dyn Store) {
    let now = Timestamp::from_unix_micros(20);
    store.create_customer(&new_customer("C1"), t(0)).await.unwrap();
    store.create_customer(&new_customer("C2"), t(0)).await.unwrap();
    record(store, &[("a1", "C1", "order"), ("a2", "C1", "login")], Reacting::Reacts).await;
    // Reacted to before: neither in the inbox nor counted again.
    let reacted = store.unreacted(&[kind("order")], &[]).await.unwrap();
    store.fire_with(&[], &[], now, None, &reacted.entries).await.unwrap();
    record(
        store,
        &[("a2", "C1", "login"), ("a3", "C2", "order"), ("a4", "C1", "order")],
        Reacting::Reacts,
    )
    .await;
    record(store, &[("a5", "C2", "order")], Reacting::CountedOnly).await;

    let read = store.unreacted(&[kind("order")], &[city()]).await.unwrap();
    assert_eq!(
        of(&read, "C1"),
        vec![unreacted("order", true)],
        "the retried a2 is left out"
    );
    assert_eq!(
        of(&read, "C2"),
        vec![unreacted("order", true), unreacted("order", false)],
        "in the order recorded; a5 is counted only"
    );
    assert_eq!(read.activities(), 3);
    assert_eq!(read.entries.len(), 2, "one entry a recording");
    assert_eq!(read.customers.len(), 2);
    for customer in &read.customers {
        // C1: a1 and a4; C2: a3 and the counted-only a5. Logins are not asked for.
        assert_eq!(customer.counts, counts(&[("order", 2)]));
        assert_eq!(
            customer.attributes,
            attrs(&[("city", AttributeValue::String("Lyon".into()))])
        );
    }
    let bare = store.unreacted(&[], &[]).await.unwrap();
    assert_eq!((bare.activities(), &bare.entries), (3, &read.entries));
    assert!(
        bare.customers
            .iter()
            .all(|c| c.attributes.is_empty() && c.counts.is_empty())
    );

    // The reaction removes the entries with its jobs; a second one with the same
    // entries (another server) writes nothing.
    let rule = store.create_automation_rule("{}", t(0)).await.unwrap();
    let job = NewJob {
        rule: rule.id,
        action: 0,
        customer: cid("C1"),
        run_at: t(30),
        environment: "{}".into(),
    };
    assert!(
        store
            .fire_with(&[rule.id], std::slice::from_ref(&job), now, None, &read.entries)
            .await
            .unwrap()
    );
    assert!(
        !store
            .fire_with(&[rule.id], std::slice::from_ref(&job), now, None, &read.entries)
            .await
            .unwrap()
    );
    assert_eq!(store.queued_jobs(10).await.unwrap().len(), 1);
    assert_eq!(store.automation_rule(rule.id).await.unwrap().unwrap().fired, 1);
    assert!(store.unreacted(&[], &[]).await.unwrap().entries.is_empty());

    // Counts go on from where they were; a deleted customer's go with it.
    record(store, &[("a6", "C1", "order"), ("a7", "C2", "login")], Reacting::Reacts).await;
    store.delete_customer(&cid("C2"), t(40)).await.unwrap();
    let read = store.unreacted(&[kind("order"), kind("login")], &[]).await.unwrap();
    assert_eq!(of(&read, "C1"), vec![unreacted("order", true)]);
    assert_eq!(read.customers.len(), 1);
    assert_eq!(read.customers[0].counts, counts(&[("order", 3), ("login", 1)]));
    store.discard_unreacted().await.unwrap();
    assert!(store.unreacted(&[], &[]).await.unwrap().entries.is_empty());
}

pub async fn two_servers_reacting_to_the_same_entries_write_once(store: &dyn Store) {
    store.create_customer(&new_customer("C1"), t(0)).await.unwrap();
    let rule = store.create_automation_rule("{}", t(0)).await.unwrap();
    for i in 0..5 {
        let id = format!("a{i}");
        record(store, &[(&id, "C1", "order")], Reacting::Reacts).await;
    }
    let read = store.unreacted(&[], &[]).await.unwrap();
    assert_eq!(read.entries.len(), 5);
    let job = |action| NewJob {
        rule: rule.id,
        action,
        customer: cid("C1"),
        run_at: t(30),
        environment: "{}".into(),
    };
    let now = t(20);
    let (first, second) = futures::future::join(
        store.fire_with(&[rule.id], &[job(0)], now, None, &read.entries),
        store.fire_with(&[rule.id], &[job(1)], now, None, &read.entries),
    )
    .await;
    assert_eq!(
        [first.unwrap(), second.unwrap()].iter().filter(|won| **won).count(),
        1,
        "one reaction is written"
    );
    assert_eq!(store.queued_jobs(10).await.unwrap().len(), 1);
    assert_eq!(store.automation_rule(rule.id).await.unwrap().unwrap().fired, 1);
}
