//! Conformance of targeting: rule definitions and the version that moves with rules
//! and target groups; visitors saved, read back, linked to customers and forgotten.

use cohort_core::target_group::{NewTargetGroup, TargetGroupPatch};
use cohort_core::targeting::{RuleId, VisitorState};
use cohort_core::*;

use super::{cid, name, new_customer, t};
use crate::{Store, StoreError, StoredVisitor};

fn visitor(id: &str, customer: Option<&str>, seen: i64) -> StoredVisitor {
    let mut state = VisitorState::new(t(seen - 10));
    state.touch(t(seen), 1_000_000);
    state.visited_pages = 3;
    state.target_groups.insert(TargetGroupId::new(7), 4);
    state.tracked_segments.insert(SegmentId::new(9), 5);
    state.session_rules.insert(RuleId::new(1));
    state.session_variables.insert((RuleId::new(2), u64::MAX - 1));
    state.visitor_rules.insert(RuleId::new(3));
    state.customer = customer.map(cid);
    StoredVisitor {
        id: VisitorId::parse("id", id).unwrap(),
        state,
    }
}

fn vid(id: &str) -> VisitorId {
    VisitorId::parse("id", id).unwrap()
}

pub async fn targeting_rules_round_trip_and_move_the_version(store: &dyn Store) {
    let mut version = store.targeting_version().await.unwrap();
    let mut moved = async |what: &str| {
        let now = store.targeting_version().await.unwrap();
        assert!(now > version, "{what} moves the version");
        version = now;
    };
    let rule = store.create_rule(r#"{"name":"a"}"#, t(1)).await.unwrap();
    moved("creating a rule").await;
    assert_eq!(store.rule(rule.id).await.unwrap(), Some(rule.clone()));
    let replaced = store.replace_rule(rule.id, r#"{"name":"b"}"#, t(2)).await.unwrap();
    assert_eq!(
        (replaced.definition.as_str(), replaced.created_at, replaced.updated_at),
        (r#"{"name":"b"}"#, t(1), t(2))
    );
    moved("replacing a rule").await;
    let other = store.create_rule(r#"{"name":"c"}"#, t(3)).await.unwrap();
    let listed: Vec<RuleId> = store.list_rules().await.unwrap().iter().map(|r| r.id).collect();
    assert_eq!(listed, vec![rule.id, other.id]);

    let group = store
        .create_target_group(&NewTargetGroup {
            name: name("Skiers"),
            threshold: Threshold::DEFAULT,
            active: true,
        })
        .await
        .unwrap();
    moved("creating a target group").await;
    let patch = TargetGroupPatch {
        threshold: Some(Threshold::parse("threshold", 3).unwrap()),
        ..TargetGroupPatch::default()
    };
    store.update_target_group(group.id, patch).await.unwrap();
    moved("changing a target group").await;
    store.delete_target_group(group.id).await.unwrap();
    moved("deleting a target group").await;

    store.delete_rule(rule.id).await.unwrap();
    moved("deleting a rule").await;
    assert_eq!(store.rule(rule.id).await.unwrap(), None);
    let missing = RuleId::new(rule.id.get() + 1_000);
    assert!(matches!(
        store.delete_rule(rule.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.replace_rule(missing, "{}", t(4)).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        store.targeting_version().await.unwrap(),
        version,
        "a failed change moves nothing"
    );
}

pub async fn visitors_are_saved_read_back_and_linked_to_customers(store: &dyn Store) {
    store.create_customer(&new_customer("C1"), t(0)).await.unwrap();
    let known = visitor("v_known_0001", Some("C1"), 100);
    let stranger = visitor("v_stranger_01", Some("NOBODY"), 200);
    let anonymous = visitor("v_anonymous1", None, 300);
    store
        .save_visitors(&[known.clone(), stranger.clone(), anonymous.clone()])
        .await
        .unwrap();

    let mut read = store
        .visitors(&[
            vid("v_known_0001"),
            vid("v_stranger_01"),
            vid("v_anonymous1"),
            vid("v_never_seen"),
        ])
        .await
        .unwrap();
    read.sort_by(|a, b| a.id.cmp(&b.id));
    let mut unlinked = stranger.clone();
    unlinked.state.customer = None;
    assert_eq!(
        read,
        vec![anonymous.clone(), known.clone(), unlinked],
        "an unknown customer is not linked"
    );

    // Overwrite, and link a second visitor to the same customer.
    let mut again = known.clone();
    again.state.touch(t(500), 1_000_000);
    again.state.visited_pages = 4;
    let mut second = anonymous.clone();
    second.state.customer = Some(cid("C1"));
    second.state.touch(t(400), 1_000_000);
    store.save_visitors(&[again.clone(), second.clone()]).await.unwrap();
    assert_eq!(
        store.visitors(&[vid("v_known_0001")]).await.unwrap(),
        vec![again.clone()]
    );
    assert_eq!(
        store.customer_visitors(&cid("C1")).await.unwrap(),
        vec![vid("v_known_0001"), vid("v_anonymous1")],
        "most recently seen first"
    );

    // Deleting the customer keeps the visitors but not the link.
    store.delete_customer(&cid("C1"), t(600)).await.unwrap();
    let read = store.visitors(&[vid("v_known_0001")]).await.unwrap();
    assert_eq!(read[0].state.customer, None);
    assert_eq!(read[0].state.visited_pages, 4);
    assert!(store.customer_visitors(&cid("C1")).await.unwrap().is_empty());

    // Visitors last seen before a time are forgotten.
    assert_eq!(store.forget_visitors(t(450)).await.unwrap(), 2, "seen at 200 and 400");
    let left: Vec<VisitorId> = store
        .visitors(&[vid("v_known_0001"), vid("v_stranger_01"), vid("v_anonymous1")])
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.id)
        .collect();
    assert_eq!(left, vec![vid("v_known_0001")]);
}

pub async fn many_visitors_are_saved_in_one_call(store: &dyn Store) {
    let all: Vec<StoredVisitor> = (0..1_234)
        .map(|i| visitor(&format!("v_bulk_{i:06}"), None, 10 + i))
        .collect();
    store.save_visitors(&all).await.unwrap();
    let ids: Vec<VisitorId> = all.iter().map(|v| v.id.clone()).collect();
    let mut read = store.visitors(&ids).await.unwrap();
    read.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(read, all);
}
