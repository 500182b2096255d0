//! Conformance of segment builders: their definitions, the inputs a build reads, the
//! changes it writes, and the queue that customer changes feed.

use std::str::FromStr;

use cohort_core::*;

use super::{activity, attrs, cid, group, name, new_customer, segment, t};
use crate::{BuildChange, BuildInput, BuildSelection, KeySelection, Store, StoreError};

fn new_builder(group: SegmentGroupId, definition: &str) -> NewSegmentBuilder {
    NewSegmentBuilder {
        name: name("ages"),
        group,
        definition: definition.to_owned(),
        schedule: Some("0 3 * * *".to_owned()),
        enabled: true,
    }
}

/// Empties the build queue (customer creation queues customers).
pub(super) async fn drain_queue(store: &dyn Store) {
    let queued = store.queued_for_building(10_000).await.unwrap();
    store.built(&queued).await.unwrap();
}

pub async fn builders_round_trip_and_own_their_group(store: &dyn Store) {
    let g = group(store, "ages", false).await;
    let segments = [new_segment(g.id, "young"), new_segment(g.id, "old")];
    let created = store
        .create_builder(&new_builder(g.id, r#"{"kind":"x"}"#), &segments, t(1))
        .await
        .unwrap();
    assert_eq!(held(store, g.id).await, ["young", "old"], "saved with its segments");
    assert_eq!(created.group, g.id);
    assert_eq!(created.schedule.as_deref(), Some("0 3 * * *"));
    assert_eq!(
        (created.state.clone(), created.built_at, created.created_at),
        (None, None, t(1))
    );
    assert_eq!(store.builder(created.id).await.unwrap(), Some(created.clone()));

    let more = [new_segment(g.id, "other")];
    let second = store
        .create_builder(&new_builder(g.id, "{}"), &more, t(2))
        .await
        .unwrap_err();
    assert!(
        matches!(second, StoreError::Conflict { ref field, .. } if field == "group"),
        "{second:?}"
    );
    let dangling = store
        .create_builder(&new_builder(SegmentGroupId::new(9_999), "{}"), &[], t(2))
        .await
        .unwrap_err();
    assert!(
        matches!(dangling, StoreError::DanglingReference { ref field, .. } if field == "group"),
        "{dangling:?}"
    );

    store
        .record_build(created.id, Some(r#"{"fitted":1}"#), t(5), created.updated_at)
        .await
        .unwrap();
    let built = store.builder(created.id).await.unwrap().unwrap();
    assert_eq!(
        (built.state.as_deref(), built.built_at),
        (Some(r#"{"fitted":1}"#), Some(t(5)))
    );

    // Renaming keeps the fitted state; a new definition forgets it.
    let patch = SegmentBuilderPatch {
        name: Some(name("renamed")),
        schedule: Some(None),
        ..Default::default()
    };
    let renamed = store.update_builder(created.id, patch, &[], t(6)).await.unwrap();
    assert_eq!((renamed.name.as_str(), renamed.schedule.clone()), ("renamed", None));
    assert!(renamed.state.is_some());
    let patch = SegmentBuilderPatch {
        definition: Some(r#"{"kind":"y"}"#.to_owned()),
        enabled: Some(false),
        ..Default::default()
    };
    let young = [new_segment(g.id, "young"), new_segment(g.id, "middle")];
    let redefined = store.update_builder(created.id, patch, &young, t(7)).await.unwrap();
    assert_eq!(
        (redefined.state.clone(), redefined.enabled, redefined.updated_at),
        (None, false, t(7))
    );
    assert_eq!(held(store, g.id).await, ["young", "old", "middle"]);
    // A build that read the builder before this change records nothing.
    store
        .record_build(created.id, Some("{}"), t(8), renamed.updated_at)
        .await
        .unwrap();
    assert_eq!(store.builder(created.id).await.unwrap(), Some(redefined.clone()));
    assert_eq!(store.list_builders().await.unwrap(), vec![redefined]);

    store.delete_builder(created.id).await.unwrap();
    assert!(store.builder(created.id).await.unwrap().is_none());
    assert!(matches!(
        store.delete_builder(created.id).await.unwrap_err(),
        StoreError::NotFound { .. }
    ));
    assert!(matches!(
        store
            .update_builder(created.id, SegmentBuilderPatch::default(), &[], t(8))
            .await
            .unwrap_err(),
        StoreError::NotFound { .. }
    ));
    // The group is free again.
    store.create_builder(&new_builder(g.id, "{}"), &[], t(9)).await.unwrap();
}

pub async fn a_group_owned_by_a_builder_keeps_its_kind(store: &dyn Store) {
    let g = group(store, "scores", false).await;
    let patch = |calculated, exclusive| SegmentGroupPatch {
        calculated,
        exclusive,
        ..Default::default()
    };
    store.create_builder(&new_builder(g.id, "{}"), &[], t(1)).await.unwrap();
    let err = store
        .update_segment_group(g.id, patch(None, Some(true)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { ref field, .. } if field == "exclusive"),
        "{err:?}"
    );
    let err = store
        .update_segment_group(g.id, patch(Some(true), None))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { ref field, .. } if field == "calculated"),
        "{err:?}"
    );
    let renamed = SegmentGroupPatch {
        name: Some(name("RFM")),
        ..Default::default()
    };
    assert_eq!(
        store.update_segment_group(g.id, renamed).await.unwrap().name.as_str(),
        "RFM"
    );
}

/// The references of a group's segments, in creation order.
async fn held(store: &dyn Store, group: SegmentGroupId) -> Vec<String> {
    let filter = crate::SegmentFilter {
        group: Some(group),
        ..Default::default()
    };
    let page = store.list_segments(&filter, PageRequest::first()).await.unwrap();
    page.items.iter().map(|s| s.reference.as_str().to_owned()).collect()
}

fn new_segment(group: SegmentGroupId, reference: &str) -> cohort_core::segment::NewSegment {
    cohort_core::segment::NewSegment {
        group,
        name: name(reference),
        reference: super::key(reference),
        calculated: true,
    }
}

fn aggregate(kind: &str, window_days: Option<u32>) -> Aggregate {
    Aggregate {
        activity: ActivityType::parse("a", kind).unwrap(),
        window_days,
    }
}

const DAY: i64 = 86_400_000_000;

pub async fn build_inputs_read_attributes_and_activity_aggregates(store: &dyn Store) {
    for c in ["c1", "c2", "c3"] {
        store.create_customer(&new_customer(c), t(0)).await.unwrap();
    }
    let now = t(100 * DAY);
    let mut orders = vec![
        activity("o1", "c1", "order", 10 * DAY),
        activity("o2", "c1", "order", 95 * DAY),
        activity("o3", "c1", "order", 101 * DAY),
        activity("o4", "c2", "order", 70 * DAY),
        activity("l1", "c2", "login", 99 * DAY),
    ];
    orders[1].order.as_mut().unwrap().total = Decimal::from_str("10.12345").unwrap();
    store
        .record_activities(&orders, t(0), crate::Reacting::Reacts)
        .await
        .unwrap();
    let wanted = [
        aggregate("order", None),
        aggregate("order", Some(30)),
        aggregate("login", Some(1)),
    ];
    let inputs = store
        .build_inputs(BuildSelection::Page { after: 0, limit: 10 }, true, &wanted, now)
        .await
        .unwrap();
    let ids: Vec<&str> = inputs.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["c1", "c2", "c3"]);
    assert_eq!(store.count_customers().await.unwrap(), 3);
    assert!(inputs.windows(2).all(|w| w[0].key < w[1].key));
    assert_eq!(inputs[0].attributes, new_customer("c1").attributes);

    let value = |input: &BuildInput, a: &Aggregate| input.aggregates.get(a);
    // c1: two orders up to now (one after now does not count), 39.98 + 10.1235 (4 decimals).
    let all = value(&inputs[0], &wanted[0]);
    assert_eq!((all.count, all.last_at), (2, Some(t(95 * DAY))));
    assert_eq!(all.amount, Decimal::from_str("50.1035").unwrap());
    let recent = value(&inputs[0], &wanted[1]);
    assert_eq!((recent.count, recent.last_at), (1, Some(t(95 * DAY))));
    // c2: an order exactly 30 days ago is inside the window; a login one day ago too.
    assert_eq!(value(&inputs[1], &wanted[1]).count, 1);
    assert_eq!(value(&inputs[1], &wanted[2]).count, 1);
    assert_eq!(
        value(&inputs[1], &wanted[0]).amount,
        Decimal::from_str("39.98").unwrap()
    );
    // c3: nothing at all.
    assert_eq!(value(&inputs[2], &wanted[0]), AggregateValue::default());

    let page = store
        .build_inputs(
            BuildSelection::Page {
                after: inputs[0].key,
                limit: 1,
            },
            true,
            &wanted,
            now,
        )
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].id.as_str(), "c2");
    let chosen = [cid("c3"), cid("ghost"), cid("c1")];
    let mut some = store
        .build_inputs(BuildSelection::Ids(&chosen), true, &wanted, now)
        .await
        .unwrap();
    some.sort_by_key(|i| i.key);
    assert_eq!(some, vec![inputs[0].clone(), inputs[2].clone()]);
    // Without aggregates, only profiles.
    let bare = store
        .build_inputs(BuildSelection::Page { after: 0, limit: 10 }, false, &[], now)
        .await
        .unwrap();
    assert_eq!(bare.len(), 3);
    assert!(bare.iter().all(|i| i.attributes.is_empty()), "profiles only when asked");
}

pub async fn applied_builds_write_calculated_memberships(store: &dyn Store) {
    for c in ["c1", "c2", "c3"] {
        store.create_customer(&new_customer(c), t(0)).await.unwrap();
    }
    let g = group(store, "ages", false).await;
    let other = group(store, "other", false).await;
    let (a, b) = (segment(store, &g, "a").await, segment(store, &g, "b").await);
    let elsewhere = segment(store, &other, "x").await;
    let inputs = store
        .build_inputs(BuildSelection::Page { after: 0, limit: 10 }, false, &[], t(0))
        .await
        .unwrap();
    let (k1, k2, k3) = (inputs[0].key, inputs[1].key, inputs[2].key);
    // c3 holds b until t(5): expired afterwards, so absent.
    let expiring = SegmentChange::new(
        vec![SegmentAdd {
            segment: b.id,
            source: MembershipSource::Manual,
            expires_at: Some(t(5)),
        }],
        vec![],
    )
    .unwrap();
    store.change_segments(&cid("c3"), &expiring, t(1)).await.unwrap();
    store
        .change_segments(&cid("c1"), &super::add(&[&elsewhere]), t(1))
        .await
        .unwrap();

    let change = |customer, add: Vec<SegmentId>, remove: Vec<SegmentId>| BuildChange { customer, add, remove };
    let first = [change(k1, vec![a.id], vec![]), change(k3, vec![b.id], vec![])];
    let summary = store.apply_build(&first, t(10)).await.unwrap();
    assert_eq!((summary.added, summary.removed), (2, 0));
    let groups = [g.id];
    let mut held = store
        .group_memberships(&groups, KeySelection::Range { from: k1, to: k3 }, t(10))
        .await
        .unwrap();
    held.sort();
    assert_eq!(held, vec![(k1, a.id), (k3, b.id)]);
    let c3 = store.customer_segments(&cid("c3"), t(10)).await.unwrap();
    assert_eq!(
        (c3[0].source, c3[0].expires_at, c3[0].assigned_at),
        (MembershipSource::Calculated, None, t(10))
    );

    // Moving c1 from a to b; removing what is absent and adding for a deleted
    // customer change nothing.
    store.delete_customer(&cid("c2"), t(11)).await.unwrap();
    let second = [
        change(k1, vec![b.id], vec![a.id]),
        change(k2, vec![a.id], vec![]),
        change(k3, vec![], vec![a.id]),
    ];
    let summary = store.apply_build(&second, t(12)).await.unwrap();
    assert_eq!((summary.added, summary.removed), (1, 1));
    let held = store
        .group_memberships(&groups, KeySelection::Keys(&[k1, k2]), t(12))
        .await
        .unwrap();
    assert_eq!(held, vec![(k1, b.id)]);
    // Memberships outside the groups asked for are not read, nor touched.
    let c1: Vec<SegmentId> = store
        .customer_segments(&cid("c1"), t(12))
        .await
        .unwrap()
        .iter()
        .map(|m| m.segment)
        .collect();
    assert_eq!(c1.len(), 2);
    assert!(c1.contains(&elsewhere.id));
    // The membership log saw every write, so live indexes follow builds.
    let log = store.membership_changes(0, 1_000).await.unwrap();
    assert!(
        log.iter()
            .any(|c| c.customer == k1 && c.segment == Some(b.id) && c.present)
    );
    assert!(
        log.iter()
            .any(|c| c.customer == k1 && c.segment == Some(a.id) && !c.present)
    );
}

pub async fn customer_changes_queue_them_for_building(store: &dyn Store) {
    store.create_customer(&new_customer("c1"), t(0)).await.unwrap();
    let queued = store.queued_for_building(10).await.unwrap();
    assert_eq!(queued.len(), 1);
    store.built(&queued).await.unwrap();

    // A change of flags only does not queue; a change of attributes does.
    let flags = CustomerPatch {
        active: Some(false),
        ..Default::default()
    };
    store.update_customer(&cid("c1"), &flags, t(1)).await.unwrap();
    assert!(store.queued_for_building(10).await.unwrap().is_empty());
    let mut patch = CustomerPatch::default();
    patch.attributes.insert(
        AttributeName::parse("a", "country").unwrap(),
        Some(AttributeValue::String("FR".into())),
    );
    store.update_customer(&cid("c1"), &patch, t(2)).await.unwrap();
    assert_eq!(store.queued_for_building(10).await.unwrap().len(), 1);
    drain_queue(store).await;

    let mut import = store.import_customers().await.unwrap();
    let line = cohort_core::customer::CustomerUpsert {
        id: cid("c2"),
        attributes: Some(attrs(&[("country", AttributeValue::String("DE".into()))])),
        active: None,
        profiling_consent: None,
    };
    import.write(&[line], t(3)).await.unwrap();
    import.commit().await.unwrap();
    let names: Vec<String> = store
        .queued_for_building(10)
        .await
        .unwrap()
        .iter()
        .map(|q| q.customer.as_str().to_owned())
        .collect();
    assert_eq!(names, ["c2"]);
}
