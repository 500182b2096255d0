//! The conformance suite: behaviour every `Store` backend must show.
//!
//! Each backend's tests call `conformance_suite!(fresh)` where `fresh()` returns a new,
//! empty store that cleans up after itself. New store behaviour is added here first.

use std::collections::BTreeMap;

use cohort_core::customer::CustomerUpsert;
use cohort_core::segment::{NewSegment, NewSegmentGroup};
use cohort_core::target_group::NewTargetGroup;
use cohort_core::*;

use crate::{CustomerFilter, ImportMode, ImportedMembership, SegmentFilter, Store, StoreError};

mod automation;
mod builders;
mod inbox;
mod promotions;
mod targeting;
pub use automation::*;
use builders::drain_queue;
pub use builders::*;
pub use inbox::*;
pub use promotions::*;
pub use targeting::*;

/// Expands to one `#[tokio::test]` per conformance check, each on a fresh store.
/// Extra attributes (such as `#[ignore = "…"]`) are put on every test.
#[macro_export]
macro_rules! conformance_suite {
    ($fresh:path $(, #[$attr:meta])*) => {
        $crate::conformance_suite!(@each $fresh, [$(#[$attr])*]
            applications_round_trip_and_update,
            application_ids_are_unique,
            missing_entities_are_not_found,
            lists_page_with_a_cursor_and_filter_by_name,
            segment_group_references_are_unique,
            segments_need_an_existing_group,
            segment_references_are_unique_within_their_group_only,
            a_group_with_segments_cannot_be_deleted,
            customers_round_trip_with_typed_attributes,
            customer_ids_are_unique,
            a_customer_patch_merges_attributes,
            a_segment_change_is_all_or_nothing,
            adding_a_segment_again_counts_up,
            an_exclusive_group_keeps_one_segment_per_customer,
            a_group_cannot_become_exclusive_while_customers_have_two_of_its_segments,
            expired_memberships_are_never_returned,
            deleting_a_segment_or_customer_removes_its_memberships,
            customers_are_listed_by_segment_and_active_flag,
            an_import_upserts_and_is_invisible_until_committed,
            an_import_keeps_flags_that_a_line_leaves_out,
            api_keys_are_found_listed_and_revoked,
            target_groups_round_trip,
            a_segment_used_as_target_group_has_one_linked,
            the_standard_service_exists_and_new_applications_use_it,
            services_are_created_updated_and_deleted,
            services_are_activated_per_application,
            segment_groups_belong_to_services_that_store_segments,
            customer_segments_are_read_per_service,
            a_snapshot_import_replaces_the_previous_one_or_nothing,
            a_delta_import_adds_and_removes,
            activities_are_recorded_listed_and_filtered,
            a_retried_activity_is_a_duplicate_not_a_second_record,
            a_batch_recorded_in_parts_is_one_transaction,
            an_unknown_customer_fails_a_whole_activity_batch,
            recorded_activities_queue_their_customers_for_building,
            deleting_a_customer_deletes_its_activities,
            the_membership_log_follows_every_change,
            the_membership_feed_reads_a_snapshot,
            a_deleted_customer_leaves_only_the_deletion_log,
            an_import_renews_expired_memberships_and_the_last_line_wins,
            deleted_ids_are_never_given_again,
            builders_round_trip_and_own_their_group,
            build_inputs_read_attributes_and_activity_aggregates,
            applied_builds_write_calculated_memberships,
            customer_changes_queue_them_for_building,
            a_group_owned_by_a_builder_keeps_its_kind,
            promotions_round_trip_and_move_the_version,
            code_groups_hold_codes_unique_across_promotions,
            orders_redeem_codes_within_their_limits,
            orders_spend_budgets_without_going_over,
            concurrent_orders_never_redeem_a_code_beyond_its_limit,
            orders_are_placed_against_what_their_calculation_saw,
            targeting_rules_round_trip_and_move_the_version,
            visitors_are_saved_read_back_and_linked_to_customers,
            many_visitors_are_saved_in_one_call,
            automation_rules_round_trip_count_firings_and_move_the_version,
            queued_jobs_are_claimed_once_finished_retried_buried_and_replayed,
            concurrent_claims_never_hand_out_a_job_twice,
            a_completed_job_applies_its_effect_once_and_only_under_its_lease,
            a_schedule_is_claimed_by_one_server,
            a_schedule_run_records_its_pages_with_their_jobs_and_is_taken_over_when_its_lease_runs_out,
            jobs_completed_together_fail_alone,
            recorded_activities_enter_the_inbox_with_their_customers_counts,
            two_servers_reacting_to_the_same_entries_write_once,
        );
    };
    (@each $fresh:path, $attrs:tt $name:ident $(, $rest:ident)* $(,)?) => {
        $crate::conformance_suite!(@one $fresh, $attrs $name);
        $crate::conformance_suite!(@each $fresh, $attrs $($rest),*);
    };
    (@each $fresh:path, $attrs:tt) => {};
    (@one $fresh:path, [$($attr:tt)*] $name:ident) => {
        #[tokio::test]
        $($attr)*
        async fn $name() {
            let store = $fresh().await;
            $crate::conformance::$name(&*store).await;
        }
    };
}

fn t(micros: i64) -> Timestamp {
    Timestamp::from_unix_micros(1_700_000_000_000_000 + micros)
}

fn name(s: &str) -> Name {
    Name::parse("name", s).unwrap()
}

fn key(s: &str) -> ReferenceKey {
    ReferenceKey::parse("reference", s).unwrap()
}

fn cid(s: &str) -> CustomerId {
    CustomerId::parse("id", s).unwrap()
}

fn app(id: &str) -> Application {
    Application {
        id: ApplicationId::parse("id", id).unwrap(),
        name: name(&format!("App {id}")),
        default_currency: Currency::parse("c", "EUR").unwrap(),
        allowed_origins: vec![Origin::parse("o", "https://shop.example.com").unwrap()],
        enabled: true,
    }
}

fn attrs(pairs: &[(&str, AttributeValue)]) -> Attributes {
    pairs
        .iter()
        .map(|(k, v)| (AttributeName::parse("a", k).unwrap(), v.clone()))
        .collect()
}

fn new_customer(id: &str) -> NewCustomer {
    NewCustomer::new(
        cid(id),
        attrs(&[("city", AttributeValue::String("Lyon".into()))]),
        true,
        false,
    )
    .unwrap()
}

async fn group(store: &dyn Store, reference: &str, exclusive: bool) -> SegmentGroup {
    let new = NewSegmentGroup {
        service: ServiceId::standard(),
        name: name(reference),
        reference: key(reference),
        calculated: false,
        exclusive,
    };
    store.create_segment_group(&new).await.unwrap()
}

async fn segment(store: &dyn Store, group: &SegmentGroup, reference: &str) -> Segment {
    let new = NewSegment {
        group: group.id,
        name: name(reference),
        reference: key(reference),
        calculated: false,
    };
    store.create_segment(&new).await.unwrap()
}

fn add(segments: &[&Segment]) -> SegmentChange {
    let add = segments
        .iter()
        .map(|s| SegmentAdd {
            segment: s.id,
            source: MembershipSource::Manual,
            expires_at: None,
        })
        .collect();
    SegmentChange::new(add, vec![]).unwrap()
}

fn ids(memberships: &[Membership]) -> Vec<SegmentId> {
    let mut ids: Vec<_> = memberships.iter().map(|m| m.segment).collect();
    ids.sort();
    ids
}

pub async fn applications_round_trip_and_update(store: &dyn Store) {
    let shop = app("shop");
    store.create_application(&shop).await.unwrap();
    assert_eq!(store.application(&shop.id).await.unwrap(), Some(shop.clone()));

    let patch = ApplicationPatch {
        enabled: Some(false),
        allowed_origins: Some(vec![]),
        ..Default::default()
    };
    let updated = store.update_application(&shop.id, patch).await.unwrap();
    assert!(!updated.enabled && updated.allowed_origins.is_empty());
    assert_eq!(updated.name, shop.name);
    assert_eq!(store.application(&shop.id).await.unwrap(), Some(updated));

    store.delete_application(&shop.id).await.unwrap();
    assert_eq!(store.application(&shop.id).await.unwrap(), None);
}

pub async fn application_ids_are_unique(store: &dyn Store) {
    store.create_application(&app("shop")).await.unwrap();
    let mut again = app("shop");
    again.name = name("Another");
    let err = store.create_application(&again).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { ref field, .. } if field == "id"),
        "{err:?}"
    );
    assert_eq!(
        store.application(&again.id).await.unwrap().unwrap().name,
        name("App shop")
    );
}

pub async fn missing_entities_are_not_found(store: &dyn Store) {
    let missing_app = ApplicationId::parse("id", "nope").unwrap();
    assert!(matches!(
        store.delete_application(&missing_app).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store
            .update_application(&missing_app, ApplicationPatch::default())
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.delete_customer(&cid("nobody"), t(0)).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.customer_segments(&cid("nobody"), t(0)).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store
            .update_customer(&cid("nobody"), &CustomerPatch::default(), t(0))
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.delete_segment(SegmentId::new(999)).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.delete_segment_group(SegmentGroupId::new(999)).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.delete_target_group(TargetGroupId::new(999)).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(store.segment(SegmentId::new(999)).await.unwrap().is_none());
}

pub async fn lists_page_with_a_cursor_and_filter_by_name(store: &dyn Store) {
    for i in 0..5 {
        store.create_application(&app(&format!("app{i}"))).await.unwrap();
    }
    let first = store
        .list_applications(&NameFilter::default(), PageRequest::new(None, Some(2)).unwrap())
        .await
        .unwrap();
    assert_eq!(first.items.len(), 2);
    let second = store
        .list_applications(&NameFilter::default(), PageRequest::new(first.next, Some(2)).unwrap())
        .await
        .unwrap();
    let third = store
        .list_applications(&NameFilter::default(), PageRequest::new(second.next, Some(2)).unwrap())
        .await
        .unwrap();
    let seen: Vec<_> = [first.items, second.items, third.items]
        .concat()
        .into_iter()
        .map(|a| a.id.into_string())
        .collect();
    assert_eq!(seen, ["app0", "app1", "app2", "app3", "app4"]);
    assert_eq!(third.next, None);

    let filtered = store
        .list_applications(&NameFilter::new(Some("APP3".into())), PageRequest::first())
        .await
        .unwrap();
    assert_eq!(filtered.items.len(), 1);
    assert_eq!(filtered.items[0].id.as_str(), "app3");
}

pub async fn segment_group_references_are_unique(store: &dyn Store) {
    group(store, "age", true).await;
    let again = NewSegmentGroup {
        service: ServiceId::standard(),
        name: name("Age 2"),
        reference: key("age"),
        calculated: false,
        exclusive: false,
    };
    let err = store.create_segment_group(&again).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { ref field, .. } if field == "reference"),
        "{err:?}"
    );
}

pub async fn segments_need_an_existing_group(store: &dyn Store) {
    let orphan = NewSegment {
        group: SegmentGroupId::new(4242),
        name: name("x"),
        reference: key("x"),
        calculated: false,
    };
    let err = store.create_segment(&orphan).await.unwrap_err();
    assert!(
        matches!(err, StoreError::DanglingReference { ref field, .. } if field == "group"),
        "{err:?}"
    );
    let page = store
        .list_segments(&SegmentFilter::default(), PageRequest::first())
        .await
        .unwrap();
    assert!(page.items.is_empty());
}

pub async fn segment_references_are_unique_within_their_group_only(store: &dyn Store) {
    let a = group(store, "a", false).await;
    let b = group(store, "b", false).await;
    segment(store, &a, "premium").await;
    let in_b = segment(store, &b, "premium").await;
    let dup = NewSegment {
        group: a.id,
        name: name("Premium"),
        reference: key("premium"),
        calculated: false,
    };
    let err = store.create_segment(&dup).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { ref field, .. } if field == "reference"),
        "{err:?}"
    );
    let moved = store
        .update_segment(
            in_b.id,
            SegmentPatch {
                group: Some(a.id),
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(moved, Err(StoreError::Conflict { .. })), "{moved:?}");
    let listed = store
        .list_segments(
            &SegmentFilter {
                group: Some(b.id),
                ..Default::default()
            },
            PageRequest::first(),
        )
        .await
        .unwrap();
    assert_eq!(listed.items, vec![in_b]);
}

pub async fn a_group_with_segments_cannot_be_deleted(store: &dyn Store) {
    let g = group(store, "tier", true).await;
    let s = segment(store, &g, "gold").await;
    assert!(matches!(
        store.delete_segment_group(g.id).await,
        Err(StoreError::InUse { .. })
    ));
    store.delete_segment(s.id).await.unwrap();
    store.delete_segment_group(g.id).await.unwrap();
    assert!(store.segment_group(g.id).await.unwrap().is_none());
}

pub async fn customers_round_trip_with_typed_attributes(store: &dyn Store) {
    let birth = AttributeValue::from_text("b", "1985-03-01").unwrap();
    let attributes = attrs(&[
        ("birthdate", birth),
        ("score", AttributeValue::Number(12.5)),
        ("vip", AttributeValue::Bool(true)),
        ("zip", AttributeValue::String("01234".into())),
        ("tags", AttributeValue::List(vec![AttributeValue::String("ski".into())])),
    ]);
    let new = NewCustomer::new(cid("c-1"), attributes.clone(), true, true).unwrap();
    let created = store.create_customer(&new, t(1)).await.unwrap();
    assert_eq!(created, new.clone().into_customer(t(1)));
    assert_eq!(store.customer(&cid("c-1")).await.unwrap(), Some(created));
    assert_eq!(store.customer(&cid("c-2")).await.unwrap(), None);
}

pub async fn customer_ids_are_unique(store: &dyn Store) {
    store.create_customer(&new_customer("c1"), t(1)).await.unwrap();
    let err = store.create_customer(&new_customer("c1"), t(2)).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { ref field, .. } if field == "id"),
        "{err:?}"
    );
    assert_eq!(store.customer(&cid("c1")).await.unwrap().unwrap().created_at, t(1));
}

pub async fn a_customer_patch_merges_attributes(store: &dyn Store) {
    store.create_customer(&new_customer("c1"), t(1)).await.unwrap();
    let mut attributes = BTreeMap::new();
    attributes.insert(AttributeName::parse("a", "city").unwrap(), None);
    attributes.insert(
        AttributeName::parse("a", "tier").unwrap(),
        Some(AttributeValue::String("gold".into())),
    );
    let patch = CustomerPatch {
        attributes,
        active: Some(false),
        profiling_consent: None,
    };
    let updated = store.update_customer(&cid("c1"), &patch, t(5)).await.unwrap();
    assert_eq!(
        updated.attributes,
        attrs(&[("tier", AttributeValue::String("gold".into()))])
    );
    assert!(!updated.active);
    assert_eq!((updated.created_at, updated.updated_at), (t(1), t(5)));
    assert_eq!(store.customer(&cid("c1")).await.unwrap(), Some(updated));
}

pub async fn a_segment_change_is_all_or_nothing(store: &dyn Store) {
    store.create_customer(&new_customer("c1"), t(0)).await.unwrap();
    let g = group(store, "interests", false).await;
    let (ski, bike) = (segment(store, &g, "ski").await, segment(store, &g, "bike").await);
    store.change_segments(&cid("c1"), &add(&[&ski]), t(1)).await.unwrap();

    let missing = SegmentAdd {
        segment: SegmentId::new(9999),
        source: MembershipSource::Manual,
        expires_at: None,
    };
    let bike_add = SegmentAdd {
        segment: bike.id,
        source: MembershipSource::Manual,
        expires_at: None,
    };
    let change = SegmentChange::new(vec![bike_add, missing], vec![ski.id]).unwrap();
    let err = store.change_segments(&cid("c1"), &change, t(2)).await.unwrap_err();
    assert!(
        matches!(err, StoreError::DanglingReference { ref field, .. } if field == "add[1].segment"),
        "{err:?}"
    );
    assert_eq!(
        ids(&store.customer_segments(&cid("c1"), t(3)).await.unwrap()),
        vec![ski.id]
    );

    let swap = SegmentChange::new(
        vec![SegmentAdd {
            segment: bike.id,
            source: MembershipSource::External,
            expires_at: None,
        }],
        vec![ski.id],
    )
    .unwrap();
    let after = store.change_segments(&cid("c1"), &swap, t(4)).await.unwrap();
    assert_eq!(ids(&after), vec![bike.id]);
    assert_eq!(after[0].source, MembershipSource::External);
    assert_eq!(after[0].assigned_at, t(4));

    let unknown_customer = store.change_segments(&cid("ghost"), &add(&[&ski]), t(5)).await;
    assert!(matches!(unknown_customer, Err(StoreError::NotFound { .. })));
}

pub async fn adding_a_segment_again_counts_up(store: &dyn Store) {
    store.create_customer(&new_customer("c1"), t(0)).await.unwrap();
    let g = group(store, "interests", false).await;
    let ski = segment(store, &g, "ski").await;
    store.change_segments(&cid("c1"), &add(&[&ski]), t(1)).await.unwrap();
    let after = store.change_segments(&cid("c1"), &add(&[&ski]), t(2)).await.unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!((after[0].application_counter, after[0].assigned_at), (2, t(1)));
}

pub async fn an_exclusive_group_keeps_one_segment_per_customer(store: &dyn Store) {
    store.create_customer(&new_customer("c1"), t(0)).await.unwrap();
    let tiers = group(store, "tier", true).await;
    let other = group(store, "interests", false).await;
    let (silver, gold) = (
        segment(store, &tiers, "silver").await,
        segment(store, &tiers, "gold").await,
    );
    let ski = segment(store, &other, "ski").await;
    store
        .change_segments(&cid("c1"), &add(&[&silver, &ski]), t(1))
        .await
        .unwrap();
    let after = store.change_segments(&cid("c1"), &add(&[&gold]), t(2)).await.unwrap();
    assert_eq!(
        ids(&after),
        ids(&store.customer_segments(&cid("c1"), t(3)).await.unwrap())
    );
    let mut expected = vec![gold.id, ski.id];
    expected.sort();
    assert_eq!(ids(&after), expected);

    let both = store
        .change_segments(&cid("c1"), &add(&[&silver, &gold]), t(4))
        .await
        .unwrap_err();
    assert!(
        matches!(both, StoreError::Invalid(ref e) if e.field == "add[1].segment"),
        "{both:?}"
    );
}

pub async fn a_group_cannot_become_exclusive_while_customers_have_two_of_its_segments(store: &dyn Store) {
    store.create_customer(&new_customer("c1"), t(0)).await.unwrap();
    let g = group(store, "interests", false).await;
    let (ski, bike) = (segment(store, &g, "ski").await, segment(store, &g, "bike").await);
    store
        .change_segments(&cid("c1"), &add(&[&ski, &bike]), t(1))
        .await
        .unwrap();
    let patch = SegmentGroupPatch {
        exclusive: Some(true),
        name: Some(name("Renamed")),
        ..Default::default()
    };
    let err = store.update_segment_group(g.id, patch).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { ref field, .. } if field == "exclusive"),
        "{err:?}"
    );
    assert_eq!(store.segment_group(g.id).await.unwrap().unwrap(), g);
}

pub async fn expired_memberships_are_never_returned(store: &dyn Store) {
    store.create_customer(&new_customer("c1"), t(0)).await.unwrap();
    let g = group(store, "campaign", false).await;
    let s = segment(store, &g, "summer").await;
    let change = SegmentChange::new(
        vec![SegmentAdd {
            segment: s.id,
            source: MembershipSource::Tracked,
            expires_at: Some(t(10)),
        }],
        vec![],
    )
    .unwrap();
    store.change_segments(&cid("c1"), &change, t(1)).await.unwrap();
    assert_eq!(store.customer_segments(&cid("c1"), t(9)).await.unwrap().len(), 1);
    assert!(store.customer_segments(&cid("c1"), t(10)).await.unwrap().is_empty());
    let filter = CustomerFilter {
        segment: Some(s.id),
        ..Default::default()
    };
    assert_eq!(
        store
            .list_customers(&filter, PageRequest::first(), t(9))
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    assert!(
        store
            .list_customers(&filter, PageRequest::first(), t(11))
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // Adding an expired segment again starts a fresh membership.
    let again = store.change_segments(&cid("c1"), &add(&[&s]), t(20)).await.unwrap();
    assert_eq!(
        (again[0].application_counter, again[0].assigned_at, again[0].expires_at),
        (1, t(20), None)
    );
}

pub async fn deleting_a_segment_or_customer_removes_its_memberships(store: &dyn Store) {
    store.create_customer(&new_customer("c1"), t(0)).await.unwrap();
    let g = group(store, "interests", false).await;
    let (ski, bike) = (segment(store, &g, "ski").await, segment(store, &g, "bike").await);
    store
        .change_segments(&cid("c1"), &add(&[&ski, &bike]), t(1))
        .await
        .unwrap();
    store.delete_segment(ski.id).await.unwrap();
    assert_eq!(
        ids(&store.customer_segments(&cid("c1"), t(2)).await.unwrap()),
        vec![bike.id]
    );

    store.delete_customer(&cid("c1"), t(100)).await.unwrap();
    assert!(store.customer(&cid("c1")).await.unwrap().is_none());
    store.create_customer(&new_customer("c1"), t(3)).await.unwrap();
    assert!(store.customer_segments(&cid("c1"), t(4)).await.unwrap().is_empty());
}

pub async fn customers_are_listed_by_segment_and_active_flag(store: &dyn Store) {
    let g = group(store, "interests", false).await;
    let ski = segment(store, &g, "ski").await;
    for (i, active) in [true, false, true, true].into_iter().enumerate() {
        let mut c = new_customer(&format!("c{i}"));
        c.active = active;
        store.create_customer(&c, t(0)).await.unwrap();
        if i != 3 {
            store.change_segments(&c.id, &add(&[&ski]), t(1)).await.unwrap();
        }
    }
    let both = CustomerFilter {
        segment: Some(ski.id),
        active: Some(true),
    };
    let page = store.list_customers(&both, PageRequest::first(), t(2)).await.unwrap();
    let listed: Vec<_> = page.items.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(listed, ["c0", "c2"]);

    let all = store
        .list_customers(
            &CustomerFilter::default(),
            PageRequest::new(None, Some(3)).unwrap(),
            t(2),
        )
        .await
        .unwrap();
    assert_eq!(all.items.len(), 3);
    let rest = store
        .list_customers(
            &CustomerFilter::default(),
            PageRequest::new(all.next, Some(3)).unwrap(),
            t(2),
        )
        .await
        .unwrap();
    assert_eq!(rest.items.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["c3"]);
}

pub async fn an_import_upserts_and_is_invisible_until_committed(store: &dyn Store) {
    store.create_customer(&new_customer("old"), t(0)).await.unwrap();
    let line = |id: &str, city: &str| {
        CustomerUpsert::new(
            cid(id),
            Some(attrs(&[("city", AttributeValue::String(city.into()))])),
            None,
            None,
        )
        .unwrap()
    };

    let mut dropped = store.import_customers().await.unwrap();
    dropped.write(&[line("new1", "Oslo")], t(1)).await.unwrap();
    drop(dropped);
    assert!(store.customer(&cid("new1")).await.unwrap().is_none());

    let mut import = store.import_customers().await.unwrap();
    import
        .write(
            &[line("old", "Rome"), line("new1", "Oslo"), line("new1", "Bergen")],
            t(2),
        )
        .await
        .unwrap();
    import.write(&[line("new2", "Kyiv")], t(2)).await.unwrap();
    let summary = import.commit().await.unwrap();
    assert_eq!(summary.written, 4);

    let old = store.customer(&cid("old")).await.unwrap().unwrap();
    assert_eq!(
        old.attributes,
        attrs(&[("city", AttributeValue::String("Rome".into()))])
    );
    assert_eq!((old.created_at, old.updated_at), (t(0), t(2)));
    let new1 = store.customer(&cid("new1")).await.unwrap().unwrap();
    assert_eq!(
        new1.attributes,
        attrs(&[("city", AttributeValue::String("Bergen".into()))])
    );
    assert!(new1.active && !new1.profiling_consent);
    assert!(store.customer(&cid("new2")).await.unwrap().is_some());
}

pub async fn an_import_keeps_flags_that_a_line_leaves_out(store: &dyn Store) {
    let mut c = new_customer("c1");
    c.active = false;
    c.profiling_consent = true;
    store.create_customer(&c, t(0)).await.unwrap();
    let mut import = store.import_customers().await.unwrap();
    let line = CustomerUpsert::new(cid("c1"), None, None, Some(false)).unwrap();
    import.write(&[line], t(1)).await.unwrap();
    import.commit().await.unwrap();
    let stored = store.customer(&cid("c1")).await.unwrap().unwrap();
    assert_eq!((stored.active, stored.profiling_consent), (false, false));
    assert_eq!(stored.attributes, c.attributes);
}

pub async fn api_keys_are_found_listed_and_revoked(store: &dyn Store) {
    let key = ApiKey {
        id: "abc123".into(),
        name: name("ci"),
        scopes: vec![
            KeyScope::Read,
            KeyScope::Public(ApplicationId::parse("a", "shop").unwrap()),
        ],
        secret_hash: "00ff".into(),
        created_at: t(1),
        revoked_at: None,
    };
    store.create_api_key(&key).await.unwrap();
    assert!(matches!(
        store.create_api_key(&key).await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(store.api_key("abc123").await.unwrap(), Some(key.clone()));
    assert_eq!(store.list_api_keys().await.unwrap(), vec![key.clone()]);
    store.revoke_api_key("abc123", t(2)).await.unwrap();
    assert_eq!(store.api_key("abc123").await.unwrap().unwrap().revoked_at, Some(t(2)));
    assert!(matches!(
        store.revoke_api_key("zzz", t(3)).await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn target_groups_round_trip(store: &dyn Store) {
    let new = NewTargetGroup {
        name: name("Skiers"),
        threshold: Threshold::parse("t", 3).unwrap(),
        active: true,
    };
    let created = store.create_target_group(&new).await.unwrap();
    assert_eq!(store.target_group(created.id).await.unwrap(), Some(created.clone()));
    let patch = TargetGroupPatch {
        active: Some(false),
        ..Default::default()
    };
    let updated = store.update_target_group(created.id, patch).await.unwrap();
    assert!(!updated.active && updated.threshold.get() == 3);
    let listed = store
        .list_target_groups(&NameFilter::new(Some("ski".into())), PageRequest::first())
        .await
        .unwrap();
    assert_eq!(listed.items, vec![updated]);
    store.delete_target_group(created.id).await.unwrap();
    assert!(store.target_group(created.id).await.unwrap().is_none());
}

fn import_service(id: &str) -> SegmentationService {
    SegmentationService {
        id: ServiceId::parse("id", id).unwrap(),
        name: name(id),
        kind: ServiceKind::Import,
        available: true,
    }
}

fn http_service(id: &str) -> SegmentationService {
    let settings = HttpSettings::new("http://127.0.0.1:9/crm", None, None, None, None).unwrap();
    SegmentationService {
        id: ServiceId::parse("id", id).unwrap(),
        name: name(id),
        kind: ServiceKind::Http(settings),
        available: true,
    }
}

fn imported(customer: &str, group: &str, segment: &str) -> ImportedMembership {
    ImportedMembership {
        customer: cid(customer),
        group: key(group),
        segment: key(segment),
        remove: false,
        expires_at: None,
    }
}

/// How many live memberships the customer has in the service's segments.
async fn held(store: &dyn Store, customer: &str, service: &ServiceId) -> usize {
    store
        .customer_service_segments(&cid(customer), std::slice::from_ref(service), t(3))
        .await
        .unwrap()
        .len()
}

fn service_ids(services: &[SegmentationService]) -> Vec<&str> {
    services.iter().map(|s| s.id.as_str()).collect()
}

pub async fn the_standard_service_exists_and_new_applications_use_it(store: &dyn Store) {
    let standard = store.service(&ServiceId::standard()).await.unwrap().unwrap();
    assert_eq!((standard.kind, standard.available), (ServiceKind::Standard, true));
    store.create_application(&app("shop")).await.unwrap();
    let active = store.application_services(&app("shop").id).await.unwrap();
    assert_eq!(service_ids(&active), ["standard"]);
}

pub async fn services_are_created_updated_and_deleted(store: &dyn Store) {
    store.create_service(&http_service("crm")).await.unwrap();
    store.create_service(&import_service("dmp")).await.unwrap();
    let dup = store.create_service(&import_service("crm")).await.unwrap_err();
    assert!(
        matches!(dup, StoreError::Conflict { ref field, .. } if field == "id"),
        "{dup:?}"
    );
    assert_eq!(
        service_ids(&store.list_services().await.unwrap()),
        ["crm", "dmp", "standard"]
    );

    let slower = HttpSettings::new("http://127.0.0.1:9/crm", Some(200), None, None, None).unwrap();
    let patch = ServicePatch {
        http: Some(slower.clone()),
        available: Some(false),
        ..Default::default()
    };
    let updated = store
        .update_service(&ServiceId::parse("id", "crm").unwrap(), patch)
        .await
        .unwrap();
    assert_eq!((updated.kind, updated.available), (ServiceKind::Http(slower), false));
    let wrong = ServicePatch {
        http: Some(HttpSettings::new("http://x", None, None, None, None).unwrap()),
        ..Default::default()
    };
    assert!(matches!(
        store
            .update_service(&ServiceId::parse("id", "dmp").unwrap(), wrong)
            .await,
        Err(StoreError::Invalid(_))
    ));

    assert!(matches!(
        store.delete_service(&ServiceId::standard()).await,
        Err(StoreError::InUse { .. })
    ));
    store
        .import_memberships(&ServiceId::parse("id", "dmp").unwrap(), ImportMode::Delta, &[], t(0))
        .await
        .unwrap();
    let dmp = ServiceId::parse("id", "dmp").unwrap();
    let owned = NewSegmentGroup {
        service: dmp.clone(),
        name: name("x"),
        reference: key("x"),
        calculated: false,
        exclusive: false,
    };
    store.create_segment_group(&owned).await.unwrap();
    assert!(matches!(
        store.delete_service(&dmp).await,
        Err(StoreError::InUse { .. })
    ));
    store
        .delete_service(&ServiceId::parse("id", "crm").unwrap())
        .await
        .unwrap();
    assert!(matches!(
        store.delete_service(&ServiceId::parse("id", "crm").unwrap()).await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn services_are_activated_per_application(store: &dyn Store) {
    store.create_application(&app("shop")).await.unwrap();
    store.create_application(&app("blog")).await.unwrap();
    store.create_service(&http_service("crm")).await.unwrap();
    let crm = ServiceId::parse("id", "crm").unwrap();
    let shop = app("shop").id;
    store.set_service_active(&shop, &crm, true).await.unwrap();
    store.set_service_active(&shop, &crm, true).await.unwrap();
    assert_eq!(
        service_ids(&store.application_services(&shop).await.unwrap()),
        ["crm", "standard"]
    );
    assert_eq!(
        service_ids(&store.application_services(&app("blog").id).await.unwrap()),
        ["standard"]
    );
    store
        .set_service_active(&shop, &ServiceId::standard(), false)
        .await
        .unwrap();
    assert_eq!(service_ids(&store.application_services(&shop).await.unwrap()), ["crm"]);

    let nowhere = ApplicationId::parse("id", "nowhere").unwrap();
    assert!(matches!(
        store.set_service_active(&nowhere, &crm, true).await,
        Err(StoreError::NotFound { .. })
    ));
    let ghost = ServiceId::parse("id", "ghost").unwrap();
    assert!(matches!(
        store.set_service_active(&shop, &ghost, true).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.application_services(&nowhere).await,
        Err(StoreError::NotFound { .. })
    ));
    store.delete_application(&shop).await.unwrap();
    store.create_application(&app("shop")).await.unwrap();
    assert_eq!(
        service_ids(&store.application_services(&shop).await.unwrap()),
        ["standard"]
    );
}

pub async fn segment_groups_belong_to_services_that_store_segments(store: &dyn Store) {
    store.create_service(&http_service("crm")).await.unwrap();
    store.create_service(&import_service("dmp")).await.unwrap();
    let in_service = |service: &str| NewSegmentGroup {
        service: ServiceId::parse("id", service).unwrap(),
        name: name("Tier"),
        reference: key("tier"),
        calculated: false,
        exclusive: true,
    };
    let standard = store.create_segment_group(&in_service("standard")).await.unwrap();
    let refused = store.create_segment_group(&in_service("dmp")).await.unwrap_err();
    assert!(
        matches!(refused, StoreError::Invalid(ref e) if e.field == "exclusive"),
        "{refused:?}"
    );
    let dmp = store
        .create_segment_group(&NewSegmentGroup {
            exclusive: false,
            ..in_service("dmp")
        })
        .await
        .unwrap();
    let made_exclusive = SegmentGroupPatch {
        exclusive: Some(true),
        ..Default::default()
    };
    assert!(matches!(
        store.update_segment_group(dmp.id, made_exclusive).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!((standard.service.as_str(), dmp.service.as_str()), ("standard", "dmp"));
    assert_eq!(store.segment_group(dmp.id).await.unwrap(), Some(dmp));
    assert!(
        matches!(store.create_segment_group(&in_service("crm")).await, Err(StoreError::Invalid(ref e)) if e.field == "service")
    );
    let err = store.create_segment_group(&in_service("ghost")).await.unwrap_err();
    assert!(
        matches!(err, StoreError::DanglingReference { ref field, .. } if field == "service"),
        "{err:?}"
    );
}

pub async fn customer_segments_are_read_per_service(store: &dyn Store) {
    store.create_customer(&new_customer("c1"), t(0)).await.unwrap();
    store.create_service(&import_service("dmp")).await.unwrap();
    let dmp = ServiceId::parse("id", "dmp").unwrap();
    let g = group(store, "interests", false).await;
    let ski = segment(store, &g, "ski").await;
    store.change_segments(&cid("c1"), &add(&[&ski]), t(1)).await.unwrap();
    store
        .import_memberships(&dmp, ImportMode::Snapshot, &[imported("c1", "value", "premium")], t(1))
        .await
        .unwrap();

    let both = store
        .customer_service_segments(&cid("c1"), &[ServiceId::standard(), dmp.clone()], t(2))
        .await
        .unwrap();
    let names: Vec<String> = both
        .iter()
        .map(|(_, g)| format!("{}/{}/{}", g.group.service, g.group.reference, g.segment.reference))
        .collect();
    assert_eq!(names, ["dmp/value/premium", "standard/interests/ski"]);
    assert_eq!(both[0].0.source, MembershipSource::External);
    let standard_only = store
        .customer_service_segments(&cid("c1"), &[ServiceId::standard()], t(2))
        .await
        .unwrap();
    assert_eq!(standard_only.len(), 1);
    assert!(
        store
            .customer_service_segments(&cid("c1"), &[], t(2))
            .await
            .unwrap()
            .is_empty()
    );
    let available = store.service_segments(&[dmp]).await.unwrap();
    assert_eq!(
        available
            .iter()
            .map(|g| g.segment.reference.as_str())
            .collect::<Vec<_>>(),
        ["premium"]
    );
    assert!(matches!(
        store
            .customer_service_segments(&cid("ghost"), &[ServiceId::standard()], t(2))
            .await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn a_snapshot_import_replaces_the_previous_one_or_nothing(store: &dyn Store) {
    for c in ["c1", "c2", "c3"] {
        store.create_customer(&new_customer(c), t(0)).await.unwrap();
    }
    store.create_service(&import_service("dmp")).await.unwrap();
    let dmp = ServiceId::parse("id", "dmp").unwrap();
    let first = [
        imported("c1", "value", "premium"),
        imported("c2", "value", "premium"),
        imported("c2", "value", "churn"),
    ];
    let summary = store
        .import_memberships(&dmp, ImportMode::Snapshot, &first, t(1))
        .await
        .unwrap();
    assert_eq!((summary.added, summary.removed, summary.segments_created), (3, 0, 2));

    // A snapshot naming an unknown customer fails whole: the first one stays.
    let failing = [
        imported("c3", "value", "premium"),
        imported("ghost", "value", "premium"),
    ];
    let err = store
        .import_memberships(&dmp, ImportMode::Snapshot, &failing, t(2))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::DanglingReference { ref field, .. } if field == "lines[1].customer"),
        "{err:?}"
    );
    assert_eq!(
        (
            held(store, "c1", &dmp).await,
            held(store, "c2", &dmp).await,
            held(store, "c3", &dmp).await
        ),
        (1, 2, 0)
    );

    let second = [imported("c2", "value", "premium"), imported("c3", "value", "premium")];
    let summary = store
        .import_memberships(&dmp, ImportMode::Snapshot, &second, t(4))
        .await
        .unwrap();
    assert_eq!(
        (
            summary.added,
            summary.removed,
            summary.unchanged,
            summary.segments_created
        ),
        (1, 2, 1, 0)
    );
    assert_eq!(
        (
            held(store, "c1", &dmp).await,
            held(store, "c2", &dmp).await,
            held(store, "c3", &dmp).await
        ),
        (0, 1, 1)
    );
    let kept = store
        .customer_service_segments(&cid("c2"), &[ServiceId::parse("id", "dmp").unwrap()], t(5))
        .await
        .unwrap();
    assert_eq!(
        kept[0].0.assigned_at,
        t(1),
        "an unchanged membership keeps its assignment time"
    );

    let standard = store
        .import_memberships(&ServiceId::standard(), ImportMode::Snapshot, &second, t(6))
        .await;
    assert!(matches!(standard, Err(StoreError::Invalid(_))));
}

pub async fn a_delta_import_adds_and_removes(store: &dyn Store) {
    for c in ["c1", "c2"] {
        store.create_customer(&new_customer(c), t(0)).await.unwrap();
    }
    store.create_service(&import_service("dmp")).await.unwrap();
    let dmp = ServiceId::parse("id", "dmp").unwrap();
    store
        .import_memberships(&dmp, ImportMode::Delta, &[imported("c1", "value", "premium")], t(1))
        .await
        .unwrap();
    let mut removal = imported("c1", "value", "premium");
    removal.remove = true;
    let delta = [removal, imported("c2", "value", "premium")];
    let summary = store
        .import_memberships(&dmp, ImportMode::Delta, &delta, t(2))
        .await
        .unwrap();
    assert_eq!((summary.added, summary.removed), (1, 1));
    assert_eq!((held(store, "c1", &dmp).await, held(store, "c2", &dmp).await), (0, 1));
}

fn activity(id: &str, customer: &str, kind: &str, at: i64) -> Activity {
    let order = (kind == "order").then(|| {
        let item = OrderItem::new("items[0]", "SKU-1", 2, Decimal::new(1999, 2), vec!["ski".into()]).unwrap();
        Order::new(Decimal::new(3998, 2), Currency::parse("c", "EUR").unwrap(), vec![item]).unwrap()
    });
    Activity::new(
        ActivityId::parse("id", id).unwrap(),
        cid(customer),
        ActivityType::parse("type", kind).unwrap(),
        t(at),
        attrs(&[("channel", AttributeValue::String("web".into()))]),
        order,
    )
    .unwrap()
}

pub async fn activities_are_recorded_listed_and_filtered(store: &dyn Store) {
    store.create_customer(&new_customer("c1"), t(0)).await.unwrap();
    store.create_customer(&new_customer("c2"), t(0)).await.unwrap();
    let batch = [
        activity("a1", "c1", "order", 10),
        activity("a2", "c1", "login", 20),
        activity("a3", "c1", "order", 30),
        activity("a4", "c2", "order", 40),
    ];
    let summary = store
        .record_activities(&batch, t(50), crate::Reacting::Reacts)
        .await
        .unwrap();
    assert_eq!((summary.recorded, summary.duplicates()), (4, 0));

    let all = store
        .list_activities(&cid("c1"), &ActivityFilter::default(), PageRequest::first())
        .await
        .unwrap();
    assert_eq!(
        all.items,
        batch[..3].to_vec(),
        "stored whole, order and decimals included"
    );
    let orders = ActivityFilter {
        kind: Some(ActivityType::parse("t", "order").unwrap()),
        ..Default::default()
    };
    let listed = store
        .list_activities(&cid("c1"), &orders, PageRequest::first())
        .await
        .unwrap();
    assert_eq!(
        listed.items.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
        ["a1", "a3"]
    );
    let window = ActivityFilter {
        since: Some(t(20)),
        until: Some(t(30)),
        ..Default::default()
    };
    let listed = store
        .list_activities(&cid("c1"), &window, PageRequest::first())
        .await
        .unwrap();
    assert_eq!(listed.items.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), ["a2"]);
    let first = store
        .list_activities(
            &cid("c1"),
            &ActivityFilter::default(),
            PageRequest::new(None, Some(2)).unwrap(),
        )
        .await
        .unwrap();
    let rest = store
        .list_activities(
            &cid("c1"),
            &ActivityFilter::default(),
            PageRequest::new(first.next, Some(2)).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!((first.items.len(), rest.items.len(), rest.next), (2, 1, None));
    let missing = store
        .list_activities(&cid("ghost"), &ActivityFilter::default(), PageRequest::first())
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound { .. })));
}

pub async fn a_retried_activity_is_a_duplicate_not_a_second_record(store: &dyn Store) {
    store.create_customer(&new_customer("c1"), t(0)).await.unwrap();
    store
        .record_activities(&[activity("a1", "c1", "login", 10)], t(11), crate::Reacting::Reacts)
        .await
        .unwrap();
    let retry = store
        .record_activities(
            &[activity("a1", "c1", "login", 10), activity("a2", "c1", "login", 12)],
            t(13),
            crate::Reacting::Reacts,
        )
        .await
        .unwrap();
    assert_eq!((retry.recorded, retry.retried), (1, vec![0]));
    let twice = store
        .record_activities(
            &[activity("a3", "c1", "login", 14), activity("a3", "c1", "login", 14)],
            t(15),
            crate::Reacting::Reacts,
        )
        .await
        .unwrap();
    assert_eq!((twice.recorded, twice.retried), (1, vec![1]));
    let mixed = store
        .record_activities(
            &[
                activity("a4", "c1", "login", 16),
                activity("a2", "c1", "login", 12),
                activity("a4", "c1", "login", 16),
                activity("a5", "c1", "login", 17),
            ],
            t(18),
            crate::Reacting::Reacts,
        )
        .await
        .unwrap();
    assert_eq!(
        (mixed.recorded, mixed.retried),
        (2, vec![1, 2]),
        "which lines were not recorded"
    );
    let all = store
        .list_activities(&cid("c1"), &ActivityFilter::default(), PageRequest::first())
        .await
        .unwrap();
    assert_eq!(all.items.len(), 5);
}

pub async fn a_batch_recorded_in_parts_is_one_transaction(store: &dyn Store) {
    for c in ["c1", "c2"] {
        store.create_customer(&new_customer(c), t(0)).await.unwrap();
    }
    drain_queue(store).await;
    // Dropped before its commit: nothing recorded, nothing queued.
    let mut dropped = store.begin_recording(t(5), crate::Reacting::Reacts).await.unwrap();
    dropped.write(&[activity("a1", "c1", "login", 1)], 0).await.unwrap();
    drop(dropped);
    // An unknown customer in a later part names its line in the whole batch.
    let mut failing = store.begin_recording(t(5), crate::Reacting::Reacts).await.unwrap();
    failing.write(&[activity("a1", "c1", "login", 1)], 0).await.unwrap();
    let err = failing
        .write(
            &[activity("a2", "c2", "login", 2), activity("a3", "ghost", "login", 3)],
            1,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::DanglingReference { ref field, .. } if field == "lines[2].customer"),
        "{err:?}"
    );
    drop(failing);
    let none = store
        .list_activities(&cid("c1"), &ActivityFilter::default(), PageRequest::first())
        .await
        .unwrap();
    assert!(none.items.is_empty());
    assert!(store.queued_for_building(10).await.unwrap().is_empty());

    // Parts commit together; an id of an earlier part is a duplicate in a later one.
    let mut recording = store.begin_recording(t(6), crate::Reacting::Reacts).await.unwrap();
    recording
        .write(&[activity("a1", "c1", "login", 1), activity("a2", "c1", "login", 2)], 0)
        .await
        .unwrap();
    recording
        .write(&[activity("a2", "c1", "login", 2), activity("a3", "c2", "login", 3)], 2)
        .await
        .unwrap();
    let summary = recording.commit().await.unwrap();
    assert_eq!((summary.recorded, summary.retried), (3, vec![2]));
    let c1 = store
        .list_activities(&cid("c1"), &ActivityFilter::default(), PageRequest::first())
        .await
        .unwrap();
    let ids: Vec<&str> = c1.items.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["a1", "a2"]);
    let queued: Vec<String> = store
        .queued_for_building(10)
        .await
        .unwrap()
        .into_iter()
        .map(|q| q.customer.to_string())
        .collect();
    assert_eq!(queued.len(), 2, "{queued:?}");
}

pub async fn an_unknown_customer_fails_a_whole_activity_batch(store: &dyn Store) {
    store.create_customer(&new_customer("c1"), t(0)).await.unwrap();
    drain_queue(store).await;
    let batch = [activity("a1", "c1", "login", 10), activity("a2", "ghost", "login", 11)];
    let err = store
        .record_activities(&batch, t(12), crate::Reacting::Reacts)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::DanglingReference { ref field, .. } if field == "lines[1].customer"),
        "{err:?}"
    );
    let all = store
        .list_activities(&cid("c1"), &ActivityFilter::default(), PageRequest::first())
        .await
        .unwrap();
    assert!(all.items.is_empty());
    assert!(store.queued_for_building(10).await.unwrap().is_empty());
}

pub async fn recorded_activities_queue_their_customers_for_building(store: &dyn Store) {
    for c in ["c1", "c2", "c3"] {
        store.create_customer(&new_customer(c), t(0)).await.unwrap();
    }
    drain_queue(store).await;
    store
        .record_activities(
            &[activity("a1", "c2", "login", 1), activity("a2", "c1", "login", 2)],
            t(3),
            crate::Reacting::Reacts,
        )
        .await
        .unwrap();
    store
        .record_activities(&[activity("a3", "c2", "login", 4)], t(5), crate::Reacting::Reacts)
        .await
        .unwrap();
    let queued = store.queued_for_building(10).await.unwrap();
    // Oldest first; customers queued by one batch come in the order they were created.
    let names = |q: &[crate::Queued]| q.iter().map(|q| q.customer.as_str().to_owned()).collect::<Vec<_>>();
    assert_eq!(names(&queued), ["c1", "c2"]);
    assert_eq!(store.queued_for_building(1).await.unwrap().len(), 1);
    // c1 is queued again while a build of the first read runs: it must stay queued.
    store
        .record_activities(&[activity("a4", "c1", "login", 5)], t(6), crate::Reacting::Reacts)
        .await
        .unwrap();
    store.built(&queued).await.unwrap();
    assert_eq!(names(&store.queued_for_building(10).await.unwrap()), ["c1"]);
    // A batch of retries records nothing and queues nobody.
    store
        .record_activities(&[activity("a3", "c2", "login", 4)], t(7), crate::Reacting::Reacts)
        .await
        .unwrap();
    assert_eq!(names(&store.queued_for_building(10).await.unwrap()), ["c1"]);
    let again = store.queued_for_building(10).await.unwrap();
    store.built(&again).await.unwrap();
    assert!(store.queued_for_building(10).await.unwrap().is_empty());
}

pub async fn deleting_a_customer_deletes_its_activities(store: &dyn Store) {
    store.create_customer(&new_customer("c1"), t(0)).await.unwrap();
    store
        .record_activities(&[activity("a1", "c1", "order", 1)], t(2), crate::Reacting::Reacts)
        .await
        .unwrap();
    store.delete_customer(&cid("c1"), t(100)).await.unwrap();
    store.create_customer(&new_customer("c1"), t(3)).await.unwrap();
    drain_queue(store).await;
    let all = store
        .list_activities(&cid("c1"), &ActivityFilter::default(), PageRequest::first())
        .await
        .unwrap();
    assert!(all.items.is_empty());
    assert!(store.queued_for_building(10).await.unwrap().is_empty());
    // The id of a deleted activity can be used again.
    assert_eq!(
        store
            .record_activities(&[activity("a1", "c1", "order", 4)], t(5), crate::Reacting::Reacts)
            .await
            .unwrap()
            .recorded,
        1
    );
}

async fn changes_after(store: &dyn Store, after: i64) -> Vec<(i64, Option<i64>, bool)> {
    store
        .membership_changes(after, 1_000)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.customer, c.segment.map(SegmentId::get), c.present))
        .collect()
}

pub async fn the_membership_log_follows_every_change(store: &dyn Store) {
    let start = store.membership_log_end().await.unwrap();
    store.create_customer(&new_customer("c1"), t(0)).await.unwrap();
    let key = store.customer_key(&cid("c1")).await.unwrap().unwrap();
    let g = group(store, "tier", true).await;
    let (silver, gold) = (segment(store, &g, "silver").await, segment(store, &g, "gold").await);
    store.change_segments(&cid("c1"), &add(&[&silver]), t(1)).await.unwrap();
    store.change_segments(&cid("c1"), &add(&[&gold]), t(2)).await.unwrap();
    let (s, gd) = (Some(silver.id.get()), Some(gold.id.get()));
    assert_eq!(
        changes_after(store, start).await,
        vec![(key, None, true), (key, s, true), (key, s, false), (key, gd, true)]
    );

    // A change of the customer's facts is logged as its presence again; an update that
    // changes neither attributes nor consent is not logged.
    let before = store.membership_log_end().await.unwrap();
    let consent = CustomerPatch {
        profiling_consent: Some(true),
        ..CustomerPatch::default()
    };
    store.update_customer(&cid("c1"), &consent, t(3)).await.unwrap();
    store.update_customer(&cid("c1"), &consent, t(4)).await.unwrap();
    let inactive = CustomerPatch {
        active: Some(false),
        ..CustomerPatch::default()
    };
    store.update_customer(&cid("c1"), &inactive, t(5)).await.unwrap();
    assert_eq!(changes_after(store, before).await, vec![(key, None, true)]);

    let mid = store.membership_log_end().await.unwrap();
    // Positions passed over earlier are read again when asked for, in order.
    let again = store
        .read_membership_log(mid, &[start + 2, start + 1], 10)
        .await
        .unwrap();
    let again: Vec<i64> = again.changes.iter().map(|c| c.position).collect();
    assert_eq!(again, [start + 1, start + 2]);
    store.delete_customer(&cid("c1"), t(100)).await.unwrap();
    let tail = changes_after(store, mid).await;
    assert!(
        tail.contains(&(key, gd, false)) && tail.last() == Some(&(key, None, false)),
        "{tail:?}"
    );

    let end = store.membership_log_end().await.unwrap();
    store.prune_membership_log(end).await.unwrap();
    assert!(store.membership_changes(start, 10).await.unwrap().is_empty());
    assert_eq!(
        store.membership_log_end().await.unwrap(),
        end,
        "pruning keeps the position"
    );
    store.create_customer(&new_customer("c2"), t(3)).await.unwrap();
    assert_eq!(store.membership_changes(end, 10).await.unwrap().len(), 1);
}

pub async fn the_membership_feed_reads_a_snapshot(store: &dyn Store) {
    for c in ["c1", "c2", "c3"] {
        store.create_customer(&new_customer(c), t(0)).await.unwrap();
    }
    let g = group(store, "interests", false).await;
    let ski = segment(store, &g, "ski").await;
    let bike = segment(store, &g, "bike").await;
    let expiring = SegmentChange::new(
        vec![SegmentAdd {
            segment: ski.id,
            source: MembershipSource::Manual,
            expires_at: Some(t(9)),
        }],
        vec![],
    )
    .unwrap();
    store.change_segments(&cid("c1"), &expiring, t(1)).await.unwrap();
    store
        .change_segments(&cid("c3"), &add(&[&ski, &bike]), t(1))
        .await
        .unwrap();

    let keys = store.customer_keys(0, 2).await.unwrap();
    let rest = store.customer_keys(keys[1], 10).await.unwrap();
    assert_eq!((keys.len(), rest.len()), (2, 1));
    let (k1, k3) = (keys[0], rest[0]);
    assert_eq!(store.segment_ids().await.unwrap(), vec![ski.id, bike.id]);
    assert_eq!(store.plain_members(ski.id, i64::MIN, 10).await.unwrap(), vec![k3]);
    assert_eq!(store.expiring_members(ski.id).await.unwrap(), vec![(k1, t(9))]);
    // Plain members page by key; one with an expiry is never among them.
    store.change_segments(&cid("c1"), &add(&[&bike]), t(1)).await.unwrap();
    store.change_segments(&cid("c2"), &add(&[&bike]), t(1)).await.unwrap();
    let k2 = keys[1];
    assert_eq!(store.plain_members(bike.id, i64::MIN, 2).await.unwrap(), vec![k1, k2]);
    assert_eq!(store.plain_members(bike.id, k2, 2).await.unwrap(), vec![k3]);
    assert!(store.plain_members(bike.id, k3, 2).await.unwrap().is_empty());
    assert_eq!(
        store.customer_ids(&[k3, 999_999, k1]).await.unwrap(),
        vec![cid("c3"), cid("c1")]
    );
    assert_eq!(store.customer_key(&cid("ghost")).await.unwrap(), None);
}

pub async fn a_deleted_customer_leaves_only_the_deletion_log(store: &dyn Store) {
    store.create_customer(&new_customer("c1"), t(0)).await.unwrap();
    store.create_customer(&new_customer("c2"), t(0)).await.unwrap();
    store.create_service(&import_service("dmp")).await.unwrap();
    let dmp = ServiceId::parse("id", "dmp").unwrap();
    store
        .import_memberships(&dmp, ImportMode::Snapshot, &[imported("c1", "value", "premium")], t(1))
        .await
        .unwrap();
    let g = group(store, "interests", false).await;
    let ski = segment(store, &g, "ski").await;
    store.change_segments(&cid("c1"), &add(&[&ski]), t(1)).await.unwrap();
    store
        .record_activities(&[activity("a1", "c1", "order", 2)], t(2), crate::Reacting::Reacts)
        .await
        .unwrap();

    store.delete_customer(&cid("c1"), t(10)).await.unwrap();
    store.delete_customer(&cid("c2"), t(20)).await.unwrap();
    assert!(store.customer(&cid("c1")).await.unwrap().is_none());
    assert!(store.plain_members(ski.id, i64::MIN, 10).await.unwrap().is_empty());
    assert!(store.queued_for_building(10).await.unwrap().is_empty());
    let in_dmp = store.service_segments(&[dmp]).await.unwrap();
    assert!(
        store
            .plain_members(in_dmp[0].segment.id, i64::MIN, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let all = store.deletions(t(0), PageRequest::first()).await.unwrap();
    let seen: Vec<(&str, Timestamp)> = all.items.iter().map(|d| (d.customer.as_str(), d.deleted_at)).collect();
    assert_eq!(seen, [("c1", t(10)), ("c2", t(20))]);
    let since = store.deletions(t(11), PageRequest::first()).await.unwrap();
    assert_eq!(since.items.len(), 1);
    let paged = store
        .deletions(t(0), PageRequest::new(None, Some(1)).unwrap())
        .await
        .unwrap();
    let rest = store
        .deletions(t(0), PageRequest::new(paged.next, Some(1)).unwrap())
        .await
        .unwrap();
    assert_eq!(
        (paged.items[0].customer.as_str(), rest.items[0].customer.as_str()),
        ("c1", "c2")
    );
    assert!(matches!(
        store.delete_customer(&cid("c1"), t(30)).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        store.deletions(t(0), PageRequest::first()).await.unwrap().items.len(),
        2
    );
}

pub async fn an_import_renews_expired_memberships_and_the_last_line_wins(store: &dyn Store) {
    store.create_customer(&new_customer("c1"), t(0)).await.unwrap();
    store.create_service(&import_service("dmp")).await.unwrap();
    let dmp = ServiceId::parse("id", "dmp").unwrap();
    let mut expiring = imported("c1", "value", "premium");
    expiring.expires_at = Some(t(5));
    store
        .import_memberships(&dmp, ImportMode::Snapshot, &[expiring], t(1))
        .await
        .unwrap();
    assert_eq!(
        store
            .customer_service_segments(&cid("c1"), std::slice::from_ref(&dmp), t(6))
            .await
            .unwrap()
            .len(),
        0
    );

    // Named again after it expired: renewed, not "unchanged".
    let summary = store
        .import_memberships(&dmp, ImportMode::Snapshot, &[imported("c1", "value", "premium")], t(7))
        .await
        .unwrap();
    assert_eq!((summary.added, summary.unchanged), (1, 0));
    let held = store
        .customer_service_segments(&cid("c1"), std::slice::from_ref(&dmp), t(8))
        .await
        .unwrap();
    assert_eq!(
        (held.len(), held[0].0.assigned_at, held[0].0.expires_at),
        (1, t(7), None)
    );

    // In a delta, the last line for a membership decides.
    let mut removal = imported("c1", "value", "premium");
    removal.remove = true;
    let delta = [removal.clone(), imported("c1", "value", "premium")];
    store
        .import_memberships(&dmp, ImportMode::Delta, &delta, t(9))
        .await
        .unwrap();
    assert_eq!(held_in(store, &dmp).await, 1);
    let delta = [imported("c1", "value", "premium"), removal];
    store
        .import_memberships(&dmp, ImportMode::Delta, &delta, t(10))
        .await
        .unwrap();
    assert_eq!(held_in(store, &dmp).await, 0);
}

async fn held_in(store: &dyn Store, service: &ServiceId) -> usize {
    store
        .customer_service_segments(&cid("c1"), std::slice::from_ref(service), t(11))
        .await
        .unwrap()
        .len()
}

pub async fn deleted_ids_are_never_given_again(store: &dyn Store) {
    let g = group(store, "interests", false).await;
    let first = segment(store, &g, "ski").await;
    store.delete_segment(first.id).await.unwrap();
    let second = segment(store, &g, "bike").await;
    assert!(second.id > first.id, "{:?} reused {:?}", second.id, first.id);
    store.create_customer(&new_customer("c1"), t(0)).await.unwrap();
    let key = store.customer_key(&cid("c1")).await.unwrap().unwrap();
    store.delete_customer(&cid("c1"), t(1)).await.unwrap();
    store.create_customer(&new_customer("c2"), t(2)).await.unwrap();
    assert!(store.customer_key(&cid("c2")).await.unwrap().unwrap() > key);
}

pub async fn a_segment_used_as_target_group_has_one_linked(store: &dyn Store) {
    let tiers = group(store, "tier", false).await;
    let gold = segment(store, &tiers, "gold").await;
    let linked = store.use_as_target_group(gold.id, true).await.unwrap().unwrap();
    assert_eq!(
        (linked.name.as_str(), linked.threshold, linked.active, linked.segment),
        ("gold", Threshold::DEFAULT, true, Some(gold.id))
    );
    let again = store.use_as_target_group(gold.id, true).await.unwrap().unwrap();
    assert_eq!(again, linked, "one linked group a segment");

    let renamed = SegmentPatch {
        name: Some(name("Gold club")),
        ..SegmentPatch::default()
    };
    store.update_segment(gold.id, renamed).await.unwrap();
    let after = store.target_group(linked.id).await.unwrap().unwrap();
    assert_eq!(
        (after.name.as_str(), after.segment),
        ("Gold club", Some(gold.id)),
        "a rename keeps the link"
    );

    assert_eq!(store.use_as_target_group(gold.id, false).await.unwrap(), None);
    assert_eq!(
        store.target_group(linked.id).await.unwrap(),
        None,
        "stopping deletes the linked group"
    );
    let relinked = store.use_as_target_group(gold.id, true).await.unwrap().unwrap();
    store.delete_segment(gold.id).await.unwrap();
    assert_eq!(
        store.target_group(relinked.id).await.unwrap(),
        None,
        "deleted with its segment"
    );
    assert!(matches!(
        store.use_as_target_group(gold.id, true).await,
        Err(StoreError::NotFound { .. })
    ));
    let plain = store
        .create_target_group(&NewTargetGroup {
            name: name("Skiers"),
            threshold: Threshold::DEFAULT,
            active: true,
        })
        .await
        .unwrap();
    assert_eq!(plain.segment, None);
}
