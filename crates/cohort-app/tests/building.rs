//! Full and incremental builds on a real (SQLite) store: builders write their groups,
//! rebuilds write nothing, customer changes rebuild through the queue, RFM scales
//! fitted by a full build score later customers, schedules fall due on the clock.

use std::collections::HashMap;
use std::sync::Arc;

use cohort_app::building::Silent;
use cohort_app::{App, Clock, ManualClock};
use cohort_core::segment::NewSegmentGroup;
use cohort_core::*;
use cohort_store::StoreError;
use serde_json::{Value, json};

const NOW: &str = "2026-11-21T12:00:00Z";

struct World {
    app: App,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = cohort_app::open_store(&format!("sqlite://{}/c.db", dir.path().display()))
        .await
        .unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::parse("now", NOW).unwrap()));
    World {
        app: App::new(store, clock.clone() as Arc<dyn Clock>),
        clock,
        _dir: dir,
    }
}

impl World {
    async fn group(&self, reference: &str, exclusive: bool) -> SegmentGroupId {
        let new = NewSegmentGroup {
            service: ServiceId::standard(),
            name: Name::parse("n", reference).unwrap(),
            reference: ReferenceKey::parse("r", reference).unwrap(),
            calculated: true,
            exclusive,
        };
        self.app.store.create_segment_group(&new).await.unwrap().id
    }

    async fn builder(&self, reference: &str, exclusive: bool, definition: Value) -> BuilderId {
        let group = self.group(reference, exclusive).await;
        let name = Name::parse("n", reference).unwrap();
        self.app
            .builds
            .create(name, group, &definition, None, true)
            .await
            .unwrap()
            .id
    }

    async fn customer(&self, id: &str, attributes: Value) {
        let attributes = cohort_app::import::attributes_from_json(attributes.as_object().unwrap()).unwrap();
        let new = NewCustomer::new(CustomerId::parse("id", id).unwrap(), attributes, true, true).unwrap();
        self.app.store.create_customer(&new, self.app.now()).await.unwrap();
    }

    async fn order(&self, customer: &str, n: usize, days_ago: i64, total: &str) {
        let mut batch = Vec::new();
        for i in 0..n {
            let line = json!({
                "id": format!("{customer}-{days_ago}-{i}"), "customer": customer, "type": "order",
                "at": self.app.now().plus_micros(-days_ago * 86_400_000_000).to_rfc3339(),
                "order": {"total": total, "currency": "EUR", "items": []},
            });
            batch.push(cohort_app::activities::parse_activity(&line.to_string(), self.app.now()).unwrap());
        }
        self.app
            .store
            .record_activities(&batch, self.app.now(), cohort_store::Reacting::Reacts)
            .await
            .unwrap();
    }

    /// The customer's segments as `group/segment`, sorted.
    async fn segments(&self, customer: &str) -> Vec<String> {
        let id = CustomerId::parse("id", customer).unwrap();
        let mut out = Vec::new();
        for m in self.app.store.customer_segments(&id, self.app.now()).await.unwrap() {
            let segment = self.app.store.segment(m.segment).await.unwrap().unwrap();
            let group = self.app.store.segment_group(segment.group).await.unwrap().unwrap();
            out.push(format!("{}/{}", group.reference, segment.reference));
        }
        out.sort();
        out
    }
}

fn ages() -> Value {
    json!({"kind": "age_groups", "attribute": "birthdate", "ranges": [
        {"from": 18, "to": 34, "segment": "young"}, {"from": 35, "segment": "older"}]})
}

fn regions() -> Value {
    json!({"kind": "attribute_mapping", "attribute": "country", "mapping": {"FR": "west", "DE": "central"}})
}

#[tokio::test]
async fn a_full_build_writes_each_group_and_a_rebuild_writes_nothing() {
    let w = world().await;
    w.builder("age", true, ages()).await;
    w.builder("region", false, regions()).await;
    w.builder("rfm", false, json!({"kind": "rfm", "window_days": 365}))
        .await;
    w.customer("ann", json!({"birthdate": "1995-01-01", "country": "FR"}))
        .await;
    w.customer("bob", json!({"birthdate": "1960-05-05", "country": "DE"}))
        .await;
    w.customer("cid", json!({"country": "IT"})).await;
    w.order("ann", 3, 2, "120.00").await;
    w.order("bob", 1, 200, "15.00").await;

    let report = w.app.builds.run_full(None, &Silent).await.unwrap();
    assert_eq!((report.customers, report.added, report.removed), (3, 4 + 6, 0));
    assert_eq!(
        w.segments("ann").await,
        ["age/young", "region/west", "rfm/f5", "rfm/m5", "rfm/r5"]
    );
    assert_eq!(
        w.segments("bob").await,
        ["age/older", "region/central", "rfm/f1", "rfm/m1", "rfm/r1"]
    );
    assert!(w.segments("cid").await.is_empty());

    let again = w.app.builds.run_full(None, &Silent).await.unwrap();
    assert_eq!((again.added, again.removed), (0, 0), "a rebuild writes only changes");

    // Time passes and every order leaves the window: a rebuild takes the scores away.
    w.clock.advance_micros(400 * 86_400_000_000);
    let later = w.app.builds.run_full(None, &Silent).await.unwrap();
    assert_eq!(later.removed, 6, "everyone loses their RFM scores");
    assert_eq!(w.segments("ann").await, ["age/young", "region/west"]);
}

#[tokio::test]
async fn customer_changes_and_activities_rebuild_through_the_queue() {
    let w = world().await;
    w.builder("age", true, ages()).await;
    w.builder("region", false, regions()).await;
    let frequent = json!({"kind": "conditions", "segments": [
        {"segment": "frequent", "when": {"activity": "order", "window_days": 30, "op": ">=", "value": 2}},
        {"segment": "french-buyer", "when": {"all": [
            {"attribute": "country", "op": "=", "value": "FR"}, {"activity": "order", "op": ">", "value": 0}]}}]});
    w.builder("behaviour", false, frequent).await;
    w.customer("ann", json!({"birthdate": "1995-01-01", "country": "DE"}))
        .await;
    let first = w.app.builds.run_queued(100).await.unwrap();
    assert_eq!((first.customers, first.added), (1, 2));
    assert_eq!(w.segments("ann").await, ["age/young", "region/central"]);
    assert_eq!(
        w.app.builds.run_queued(100).await.unwrap().customers,
        0,
        "the queue is drained"
    );

    let mut patch = CustomerPatch::default();
    patch.attributes.insert(
        AttributeName::parse("a", "country").unwrap(),
        Some(AttributeValue::String("FR".into())),
    );
    w.app
        .store
        .update_customer(&CustomerId::parse("id", "ann").unwrap(), &patch, w.app.now())
        .await
        .unwrap();
    w.order("ann", 2, 1, "10").await;
    let second = w.app.builds.run_queued(100).await.unwrap();
    assert_eq!((second.customers, second.added, second.removed), (1, 3, 1));
    assert_eq!(
        w.segments("ann").await,
        [
            "age/young",
            "behaviour/french-buyer",
            "behaviour/frequent",
            "region/west"
        ]
    );
}

#[tokio::test]
async fn an_exclusive_group_keeps_one_segment_per_customer() {
    let w = world().await;
    let interests =
        json!({"kind": "attribute_mapping", "attribute": "hobbies", "mapping": {"ski": "ski", "golf": "golf"}});
    w.builder("interest", true, interests).await;
    w.customer("ann", json!({"hobbies": ["golf", "ski"]})).await;
    w.app.builds.run_full(None, &Silent).await.unwrap();
    assert_eq!(w.segments("ann").await, ["interest/golf"]);
}

#[tokio::test]
async fn rfm_scales_from_a_full_build_score_customers_built_later() {
    let w = world().await;
    let id = w.builder("rfm", false, json!({"kind": "rfm"})).await;
    w.customer("a", json!({})).await;
    w.customer("b", json!({})).await;
    w.order("a", 1, 100, "10").await;
    w.order("b", 5, 1, "500").await;
    // Before any full build, the incremental worker leaves RFM alone.
    w.app.builds.run_queued(100).await.unwrap();
    assert!(w.segments("a").await.is_empty());

    w.app.builds.run_full(Some(id), &Silent).await.unwrap();
    let stored = w.app.store.builder(id).await.unwrap().unwrap();
    assert!(stored.state.is_some() && stored.built_at == Some(w.app.now()));
    w.customer("c", json!({})).await;
    w.order("c", 5, 1, "900").await;
    w.app.builds.run_queued(100).await.unwrap();
    assert_eq!(w.segments("c").await, ["rfm/f5", "rfm/m5", "rfm/r5"]);
}

#[tokio::test]
async fn definitions_are_checked_when_saved() {
    let w = world().await;
    let plain = w
        .app
        .store
        .create_segment_group(&NewSegmentGroup {
            service: ServiceId::standard(),
            name: Name::parse("n", "manual").unwrap(),
            reference: ReferenceKey::parse("r", "manual").unwrap(),
            calculated: false,
            exclusive: false,
        })
        .await
        .unwrap();
    let exclusive = w.group("scores", true).await;
    let name = || Name::parse("n", "b").unwrap();
    let field = |e: StoreError| match e {
        StoreError::Invalid(i) => i.field,
        StoreError::DanglingReference { field, .. } => field,
        other => panic!("{other:?}"),
    };
    let b = &w.app.builds;
    let err = b.create(name(), plain.id, &ages(), None, true).await.unwrap_err();
    assert_eq!(field(err), "group");
    let err = b
        .create(name(), exclusive, &json!({"kind": "rfm"}), None, true)
        .await
        .unwrap_err();
    assert_eq!(field(err), "definition.kind");
    let err = b
        .create(name(), exclusive, &json!({"kind": "age_groups"}), None, true)
        .await
        .unwrap_err();
    assert_eq!(field(err), "definition.attribute");
    let err = b
        .create(name(), exclusive, &ages(), Some("at night".into()), true)
        .await
        .unwrap_err();
    assert_eq!(field(err), "schedule");
    let err = b
        .create(name(), SegmentGroupId::new(999), &ages(), None, true)
        .await
        .unwrap_err();
    assert_eq!(field(err), "group");
    assert!(
        w.app.store.list_builders().await.unwrap().is_empty(),
        "nothing was saved"
    );
    let filter = cohort_store::SegmentFilter::default();
    let segments = w.app.store.list_segments(&filter, PageRequest::first()).await.unwrap();
    assert!(segments.items.is_empty(), "no segment was created");

    // Saved: its segments exist in the group, named after their references.
    b.create(name(), exclusive, &ages(), Some("0 3 * * *".into()), true)
        .await
        .unwrap();
    let segments = w.app.store.list_segments(&filter, PageRequest::first()).await.unwrap();
    let names: Vec<&str> = segments.items.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["young", "older"]);
    assert!(segments.items.iter().all(|s| s.calculated));
}

#[tokio::test]
async fn a_schedule_falls_due_once_per_occurrence() {
    let w = world().await;
    let group = w.group("age", true).await;
    let nightly = w
        .app
        .builds
        .create(
            Name::parse("n", "ages").unwrap(),
            group,
            &ages(),
            Some("0 3 * * *".into()),
            true,
        )
        .await
        .unwrap();
    let b = &w.app.builds;
    assert!(
        b.due(w.app.now(), &HashMap::new()).await.unwrap().is_empty(),
        "created at noon: next is 03:00 tomorrow"
    );
    w.clock.advance_micros(15 * 3_600_000_000 - 1);
    assert!(b.due(w.app.now(), &HashMap::new()).await.unwrap().is_empty());
    w.clock.advance_micros(1);
    assert_eq!(b.due(w.app.now(), &HashMap::new()).await.unwrap(), vec![nightly.id]);
    b.run_full(Some(nightly.id), &Silent).await.unwrap();
    assert!(
        b.due(w.app.now(), &HashMap::new()).await.unwrap().is_empty(),
        "built: due again tomorrow"
    );
}

/// Runs `during` when the full build enters a phase (outside its turn).
struct Hook<F: Fn(&'static str) + Send + Sync>(F);

impl<F: Fn(&'static str) + Send + Sync> cohort_app::building::Progress for Hook<F> {
    fn phase(&self, name: &'static str, _: u64) {
        (self.0)(name)
    }

    fn advance(&self, _: u64) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfm_scores_are_written_from_data_read_after_the_scales_were_fitted() {
    let w = world().await;
    w.builder("rfm", false, json!({"kind": "rfm", "window_days": 365}))
        .await;
    for c in ["a", "b", "late"] {
        w.customer(c, json!({})).await;
    }
    w.order("a", 1, 100, "10").await;
    w.order("b", 3, 1, "90").await;
    let handle = tokio::runtime::Handle::current();
    let hook = Hook(|phase| {
        if phase == "scoring" {
            // Between the passes, "late" orders for the first time.
            tokio::task::block_in_place(|| handle.block_on(w.order("late", 5, 0, "500")));
        }
    });
    w.app.builds.run_full(None, &hook).await.unwrap();
    assert_eq!(w.segments("late").await, ["rfm/f5", "rfm/m5", "rfm/r5"]);
    assert_eq!(w.segments("a").await, ["rfm/f1", "rfm/m1", "rfm/r1"]);
}
