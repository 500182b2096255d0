//! Known customers' profiles kept in memory, on a real (SQLite) store shared by two
//! processes' worth of store connections: what another process writes reaches this
//! one's kept profiles through the membership log (memberships, attributes, consent)
//! or, for orders, once the profile's time is up; what this process writes is seen at
//! once.

use std::sync::Arc;

use cohort_app::profiles::Cached;
use cohort_app::provider::Provided;
use cohort_app::{App, Clock, ManualClock};
use cohort_core::segment::{NewSegment, NewSegmentGroup};
use cohort_core::*;
use cohort_store::Store;
use serde_json::json;

const NOW: &str = "2026-12-06T12:00:00Z";

struct World {
    app: App,
    /// Another process's connections to the same database.
    other: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    shop: ApplicationId,
    c1: CustomerId,
    gold: SegmentId,
    _dir: tempfile::TempDir,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/p.db", dir.path().display());
    let store = cohort_app::open_store(&url).await.unwrap();
    let other = cohort_app::open_store(&url).await.unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::parse("now", NOW).unwrap()));
    let app = App::new(store, clock.clone() as Arc<dyn Clock>);
    let shop = ApplicationId::parse("id", "shop").unwrap();
    let application = Application {
        id: shop.clone(),
        name: Name::parse("name", "Shop").unwrap(),
        default_currency: Currency::parse("currency", "EUR").unwrap(),
        allowed_origins: vec![],
        enabled: true,
    };
    app.store.create_application(&application).await.unwrap();
    let group = NewSegmentGroup {
        service: ServiceId::standard(),
        name: Name::parse("n", "tier").unwrap(),
        reference: ReferenceKey::parse("r", "tier").unwrap(),
        calculated: false,
        exclusive: false,
    };
    let group = app.store.create_segment_group(&group).await.unwrap().id;
    let segment = NewSegment {
        group,
        name: Name::parse("n", "Gold").unwrap(),
        reference: ReferenceKey::parse("r", "gold").unwrap(),
        calculated: false,
    };
    let gold = app.store.create_segment(&segment).await.unwrap().id;
    let c1 = CustomerId::parse("id", "c1").unwrap();
    let new = NewCustomer::new(c1.clone(), Attributes::default(), true, false).unwrap();
    app.store.create_customer(&new, app.now()).await.unwrap();
    app.index.catch_up().await.unwrap();
    World {
        app,
        other,
        clock,
        shop,
        c1,
        gold,
        _dir: dir,
    }
}

/// c1's segments in the shop as the provider gives them, with the profile they came from.
async fn provided(w: &World) -> (Provided, Option<Arc<Cached>>) {
    w.app
        .segments
        .customer_segments_and_profile(&w.shop, &w.c1)
        .await
        .unwrap()
}

/// What this process sees of c1: its segments' names, its tier attribute, its orders.
async fn seen(w: &World) -> (Vec<String>, Option<String>, u32) {
    let (provided, profile) = provided(w).await;
    let facts = &profile.expect("a known customer").profile.facts;
    let tier = facts
        .attributes
        .get(&AttributeName::parse("a", "tier").unwrap())
        .map(|v| format!("{v:?}"));
    let names = provided.segments.into_iter().map(|s| s.name).collect();
    (names, tier, facts.orders)
}

fn gold(w: &World) -> SegmentChange {
    SegmentChange::new(
        vec![SegmentAdd {
            segment: w.gold,
            source: MembershipSource::Manual,
            expires_at: None,
        }],
        vec![],
    )
    .unwrap()
}

async fn order(store: &dyn Store, w: &World, id: &str) {
    let line = json!({
        "id": id, "customer": "c1", "type": "order", "at": NOW,
        "order": {"total": "10.00", "currency": "EUR", "items": []},
    });
    let activity = cohort_app::activities::parse_activity(&line.to_string(), w.app.now()).unwrap();
    store
        .record_activities(&[activity], w.app.now(), cohort_store::Reacting::Reacts)
        .await
        .unwrap();
}

#[tokio::test]
async fn another_processs_membership_and_attribute_changes_arrive_through_the_log() {
    let w = world().await;
    assert_eq!(seen(&w).await, (vec![], None, 0));
    w.other.change_segments(&w.c1, &gold(&w), w.app.now()).await.unwrap();
    assert_eq!(seen(&w).await, (vec![], None, 0), "kept: no read of the store");
    let counts = w.app.profiles.counts();
    assert_eq!((counts.kept, counts.from_store, counts.from_memory), (1, 1, 1));
    w.app.index.catch_up().await.unwrap();
    assert_eq!(seen(&w).await, (vec!["Gold".to_string()], None, 0));
    // An attribute change alone is logged too.
    let mut patch = CustomerPatch::default();
    patch.attributes.insert(
        AttributeName::parse("a", "tier").unwrap(),
        Some(AttributeValue::String("vip".into())),
    );
    w.other.update_customer(&w.c1, &patch, w.app.now()).await.unwrap();
    assert_eq!(seen(&w).await.1, None, "kept");
    w.app.index.catch_up().await.unwrap();
    let tier = seen(&w).await.1;
    assert!(tier.as_ref().is_some_and(|t| t.contains("vip")), "{tier:?}");
}

#[tokio::test]
async fn another_processs_orders_arrive_when_the_profile_is_read_again() {
    let w = world().await;
    assert_eq!(seen(&w).await.2, 0);
    order(w.other.as_ref(), &w, "o-1").await;
    w.app.index.catch_up().await.unwrap();
    assert_eq!(seen(&w).await.2, 0, "orders are not in the log");
    w.clock.advance_micros(cohort_app::profiles::TTL_MICROS);
    assert_eq!(seen(&w).await.2, 1);
}

#[tokio::test]
async fn an_expired_membership_stops_counting_while_kept() {
    let w = world().await;
    let until = SegmentChange::new(
        vec![SegmentAdd {
            segment: w.gold,
            source: MembershipSource::Manual,
            expires_at: Some(w.app.now().plus_micros(1_000)),
        }],
        vec![],
    )
    .unwrap();
    w.app.store.change_segments(&w.c1, &until, w.app.now()).await.unwrap();
    w.app.profiles.forget(&w.c1);
    assert_eq!(seen(&w).await.0, ["Gold"]);
    w.clock.advance_micros(1_000);
    assert!(seen(&w).await.0.is_empty());
}

#[tokio::test]
async fn this_processs_writes_are_seen_at_once() {
    let w = world().await;
    assert_eq!(seen(&w).await, (vec![], None, 0));
    // As the HTTP handlers and services do: write, then forget.
    w.app
        .store
        .change_segments(&w.c1, &gold(&w), w.app.now())
        .await
        .unwrap();
    w.app.profiles.forget(&w.c1);
    assert_eq!(seen(&w).await.0, ["Gold"]);
    order(w.app.store.as_ref(), &w, "o-1").await;
    w.app.profiles.forget(&w.c1);
    assert_eq!(seen(&w).await.2, 1);
    // A customer deleted elsewhere: the log names its key.
    w.other.delete_customer(&w.c1, w.app.now()).await.unwrap();
    w.app.index.catch_up().await.unwrap();
    let (provided, profile) = provided(&w).await;
    assert!(profile.is_none() && provided.segments.is_empty());
}
