//! Conformance of promotions: definitions and their version, type priorities, code
//! groups and codes, and orders placed within code limits and budgets.

use cohort_core::promotion::record::{CodeGroupId, NewCodeGroup, NewStoredPromotion, PromotionCode};
use cohort_core::*;

use super::{activity, add, app, cid, group, name, new_customer, segment, t};
use crate::{OrderOutcome, OrderPlacement, Store, StoreError};

fn new_promotion(label: &str, budget: Option<i64>) -> NewStoredPromotion {
    NewStoredPromotion {
        name: name(label),
        definition: format!(r#"{{"name":"{label}"}}"#),
        budget,
    }
}

fn code(text: &str) -> PromotionCode {
    PromotionCode::parse("code", text).unwrap()
}

fn codes(texts: &[&str]) -> Vec<PromotionCode> {
    texts.iter().map(|c| code(c)).collect()
}

fn group_of(promotion: PromotionId, max_uses: Option<u32>, per_customer: Option<u32>) -> NewCodeGroup {
    NewCodeGroup {
        promotion,
        name: name("launch"),
        pattern: None,
        max_uses,
        max_uses_per_customer: per_customer,
        expires_at: Some(t(1_000)),
    }
}

fn order(id: &str, customer: Option<&str>, redeemed: &[&str], spending: &[(PromotionId, i64)]) -> OrderPlacement {
    OrderPlacement {
        id: ActivityId::parse("id", id).unwrap(),
        application: ApplicationId::parse("id", "shop").unwrap(),
        customer: customer.map(cid),
        at: t(50),
        redemptions: codes(redeemed),
        spending: spending.to_vec(),
        activity: customer.map(|c| activity(id, c, "order", 50)),
        orders_seen: None,
        answer: format!(r#"{{"order":"{id}"}}"#),
    }
}

async fn uses(store: &dyn Store, text: &str, customer: Option<&str>) -> (u32, u32) {
    let found = store
        .find_codes(&[code(text)], customer.map(cid).as_ref())
        .await
        .unwrap();
    (found[0].used, found[0].used_by_customer)
}

pub async fn promotions_round_trip_and_move_the_version(store: &dyn Store) {
    let v0 = store.promotions_version().await.unwrap();
    let created = store
        .create_promotion(&new_promotion("Ski", Some(50_000)), t(1))
        .await
        .unwrap();
    assert_eq!(store.promotion(created.id).await.unwrap().as_ref(), Some(&created));
    assert_eq!((created.spent, created.budget), (0, Some(50_000)));
    let v1 = store.promotions_version().await.unwrap();
    assert!(v1 > v0, "a new promotion moves the version");

    let other = store
        .create_promotion(&new_promotion("Boots", None), t(2))
        .await
        .unwrap();
    let replaced = store
        .replace_promotion(created.id, &new_promotion("Ski 2", None), t(3))
        .await
        .unwrap();
    assert_eq!(
        (
            replaced.name.as_str(),
            replaced.budget,
            replaced.created_at,
            replaced.updated_at
        ),
        ("Ski 2", None, t(1), t(3))
    );
    let listed: Vec<_> = store
        .list_promotions()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(listed, [created.id, other.id]);
    assert!(
        store.budgets_spent().await.unwrap().is_empty(),
        "no budget left to spend"
    );

    let v2 = store.promotions_version().await.unwrap();
    store.create_application(&app("shop")).await.unwrap();
    let shop = ApplicationId::parse("id", "shop").unwrap();
    store.set_type_priorities(&shop, Some(r#"{"gift":950}"#)).await.unwrap();
    assert_eq!(
        store.type_priorities().await.unwrap(),
        [(shop.clone(), r#"{"gift":950}"#.to_owned())]
    );
    let v3 = store.promotions_version().await.unwrap();
    assert!(v3 > v2, "type priorities move the version");
    store.set_type_priorities(&shop, None).await.unwrap();
    assert!(store.type_priorities().await.unwrap().is_empty());
    let nowhere = ApplicationId::parse("id", "nowhere").unwrap();
    assert!(matches!(
        store.set_type_priorities(&nowhere, Some("{}")).await,
        Err(StoreError::NotFound { .. })
    ));

    store.delete_promotion(other.id).await.unwrap();
    assert_eq!(store.promotion(other.id).await.unwrap(), None);
    assert!(store.promotions_version().await.unwrap() > v3);
    for result in [
        store.delete_promotion(other.id).await,
        store
            .replace_promotion(other.id, &new_promotion("x", None), t(4))
            .await
            .map(|_| ()),
    ] {
        assert!(matches!(result, Err(StoreError::NotFound { .. })), "{result:?}");
    }
}

pub async fn code_groups_hold_codes_unique_across_promotions(store: &dyn Store) {
    let ski = store.create_promotion(&new_promotion("Ski", None), t(1)).await.unwrap();
    let boots = store
        .create_promotion(&new_promotion("Boots", None), t(1))
        .await
        .unwrap();
    let group = store
        .create_code_group(
            &group_of(ski.id, Some(3), Some(1)),
            &codes(&["B-2", "A-1", "C-3"]),
            t(2),
        )
        .await
        .unwrap();
    assert_eq!((group.promotion, group.count, group.max_uses), (ski.id, 3, Some(3)));
    assert_eq!(store.code_group(group.id).await.unwrap().as_ref(), Some(&group));

    let taken = store
        .create_code_group(&group_of(boots.id, None, None), &codes(&["D-4", "a-1"]), t(3))
        .await
        .unwrap_err();
    assert!(
        matches!(&taken, StoreError::Conflict { field, .. } if field == "codes[1]"),
        "{taken:?}"
    );
    assert!(store.code_groups(boots.id).await.unwrap().is_empty(), "nothing created");
    assert!(store.find_codes(&codes(&["D-4"]), None).await.unwrap().is_empty());

    let first = store.group_codes(group.id, None, 2).await.unwrap();
    assert_eq!(first, [(code("A-1"), 0), (code("B-2"), 0)]);
    let rest = store.group_codes(group.id, Some(&first[1].0), 2).await.unwrap();
    assert_eq!(rest, [(code("C-3"), 0)]);

    let found = store.find_codes(&codes(&["C-3", "Z-9"]), None).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        (
            found[0].promotion,
            found[0].group,
            found[0].max_uses_per_customer,
            found[0].expires_at
        ),
        (ski.id, group.id, Some(1), Some(t(1_000)))
    );

    let missing = store
        .create_code_group(&group_of(PromotionId::new(999), None, None), &codes(&["E-5"]), t(3))
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound { .. })), "{missing:?}");
    store.delete_code_group(group.id).await.unwrap();
    assert!(store.find_codes(&codes(&["A-1"]), None).await.unwrap().is_empty());
    assert!(matches!(
        store.delete_code_group(group.id).await,
        Err(StoreError::NotFound { .. })
    ));
    let again = store
        .create_code_group(&group_of(boots.id, None, None), &codes(&["A-1"]), t(4))
        .await
        .unwrap();
    store.delete_promotion(boots.id).await.unwrap();
    assert_eq!(
        store.code_group(again.id).await.unwrap(),
        None,
        "deleted with its promotion"
    );
    assert_eq!(store.code_group(CodeGroupId::new(999)).await.unwrap(), None);
}

pub async fn orders_redeem_codes_within_their_limits(store: &dyn Store) {
    for c in ["c1", "c2", "c3"] {
        store.create_customer(&new_customer(c), t(0)).await.unwrap();
    }
    let ski = store.create_promotion(&new_promotion("Ski", None), t(1)).await.unwrap();
    store
        .create_code_group(&group_of(ski.id, Some(2), Some(1)), &codes(&["SKI"]), t(2))
        .await
        .unwrap();
    let place = |o: OrderPlacement| async move { store.place_order(&o).await.unwrap() };

    assert_eq!(
        place(order("o1", Some("c1"), &["ski"], &[])).await,
        OrderOutcome::Placed
    );
    assert_eq!(uses(store, "SKI", Some("c1")).await, (1, 1));
    assert_eq!(
        place(order("o2", Some("c1"), &["SKI"], &[])).await,
        OrderOutcome::CodeUsedUpByCustomer { code: code("SKI") }
    );
    assert_eq!(
        uses(store, "SKI", Some("c1")).await,
        (1, 1),
        "a refused order counts nothing"
    );
    assert_eq!(
        place(order("o3", Some("c2"), &["SKI"], &[])).await,
        OrderOutcome::Placed
    );
    assert_eq!(
        place(order("o4", Some("c3"), &["SKI"], &[])).await,
        OrderOutcome::CodeUsedUp { code: code("SKI") }
    );
    assert_eq!(uses(store, "SKI", Some("c3")).await, (2, 0));
    assert_eq!(
        place(order("o1", Some("c1"), &["SKI"], &[])).await,
        OrderOutcome::AlreadyPlaced {
            answer: r#"{"order":"o1"}"#.into()
        }
    );
    assert_eq!(uses(store, "SKI", None).await, (2, 0), "placing again redeems nothing");
    let o1 = ActivityId::parse("id", "o1").unwrap();
    assert_eq!(
        store.order_answer(&o1).await.unwrap().as_deref(),
        Some(r#"{"order":"o1"}"#)
    );
    let o2 = ActivityId::parse("id", "o2").unwrap();
    assert_eq!(
        store.order_answer(&o2).await.unwrap(),
        None,
        "a refused order is not kept"
    );

    let facts = |c: &'static str| async move { store.customer_facts(&cid(c)).await.unwrap().unwrap() };
    assert_eq!((facts("c1").await.orders, facts("c3").await.orders), (1, 0));
    assert_eq!(facts("c1").await.attributes.len(), 1, "its attributes");
    assert_eq!(store.customer_facts(&cid("nobody")).await.unwrap(), None);
    let tier = group(store, "tier", true).await;
    let gold = segment(store, &tier, "gold").await;
    let interests = group(store, "interests", false).await;
    let ski = segment(store, &interests, "ski").await;
    store
        .change_segments(&cid("c2"), &add(&[&ski, &gold]), t(70))
        .await
        .unwrap();
    let standard = [ServiceId::standard()];
    let profile = store
        .customer_profile(&cid("c2"), &standard, t(70))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(profile.facts.orders, 1);
    assert_eq!(
        Some(profile.key),
        store.customer_key(&cid("c2")).await.unwrap(),
        "its key"
    );
    let held = profile.memberships;
    let expected = store
        .customer_service_segments(&cid("c2"), &standard, t(70))
        .await
        .unwrap();
    assert_eq!(held, expected, "read together as read alone");
    let names: Vec<_> = held
        .iter()
        .map(|(_, g)| (g.group.reference.as_str(), g.segment.reference.as_str()))
        .collect();
    assert_eq!(names, [("tier", "gold"), ("interests", "ski")]);
    assert!(held[0].1.group.exclusive && !held[1].1.group.exclusive);
    assert_eq!(held[0].0.segment, gold.id);
    let other = ServiceId::parse("id", "crm").unwrap();
    let none = store
        .customer_profile(&cid("c2"), &[other], t(70))
        .await
        .unwrap()
        .unwrap()
        .memberships;
    assert!(none.is_empty(), "only the services asked for");
    assert!(
        store
            .customer_profile(&cid("nobody"), &standard, t(70))
            .await
            .unwrap()
            .is_none()
    );
    let listed = store
        .list_activities(&cid("c2"), &ActivityFilter::default(), PageRequest::first())
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1, "the order activity is recorded");
    assert!(store.queued_for_building(100).await.unwrap().len() >= 2);

    let unknown = store
        .place_order(&order("o5", Some("nobody"), &[], &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(&unknown, StoreError::DanglingReference { field, .. } if field == "customer"),
        "{unknown:?}"
    );
    assert_eq!(
        place(order("o6", None, &[], &[])).await,
        OrderOutcome::Placed,
        "anonymous orders are placed"
    );

    store.delete_customer(&cid("c1"), t(60)).await.unwrap();
    assert_eq!(
        uses(store, "SKI", None).await,
        (2, 0),
        "a deleted customer's uses still count overall"
    );
    store.create_customer(&new_customer("c1"), t(61)).await.unwrap();
    assert_eq!(uses(store, "SKI", Some("c1")).await, (2, 0), "but are no longer theirs");
}

pub async fn orders_spend_budgets_without_going_over(store: &dyn Store) {
    store.create_customer(&new_customer("c1"), t(0)).await.unwrap();
    let ski = store
        .create_promotion(&new_promotion("Ski", Some(1_000)), t(1))
        .await
        .unwrap();
    let free = store
        .create_promotion(&new_promotion("Free", None), t(1))
        .await
        .unwrap();
    let placed = store
        .place_order(&order("o1", Some("c1"), &[], &[(ski.id, 600), (free.id, 5)]))
        .await
        .unwrap();
    assert_eq!(placed, OrderOutcome::Placed);
    assert_eq!(
        store
            .place_order(&order("o2", Some("c1"), &[], &[(ski.id, 401)]))
            .await
            .unwrap(),
        OrderOutcome::BudgetExceeded { promotion: ski.id }
    );
    assert_eq!(store.budgets_spent().await.unwrap(), [(ski.id, 600)]);
    assert_eq!(
        store
            .place_order(&order("o3", Some("c1"), &[], &[(ski.id, 400)]))
            .await
            .unwrap(),
        OrderOutcome::Placed,
        "exactly the budget"
    );
    assert_eq!(store.promotion(ski.id).await.unwrap().unwrap().spent, 1_000);
    assert_eq!(
        store
            .place_order(&order("o4", Some("c1"), &[], &[(PromotionId::new(999), 1)]))
            .await
            .unwrap(),
        OrderOutcome::BudgetExceeded {
            promotion: PromotionId::new(999)
        }
    );
    let replaced = store
        .replace_promotion(ski.id, &new_promotion("Ski", Some(2_000)), t(2))
        .await
        .unwrap();
    assert_eq!(replaced.spent, 1_000, "replacing keeps what was spent");
}

/// 100 orders at once, one code good for 10 uses: exactly 10 redeem it. With a budget
/// for 8 of them, only 8 are placed: the code's other uses stay unredeemed.
pub async fn concurrent_orders_never_redeem_a_code_beyond_its_limit(store: &dyn Store) {
    store.create_customer(&new_customer("c1"), t(0)).await.unwrap();
    store.create_customer(&new_customer("c2"), t(0)).await.unwrap();
    let ski = store
        .create_promotion(&new_promotion("Ski", Some(10_000)), t(1))
        .await
        .unwrap();
    let tight = store
        .create_promotion(&new_promotion("Tight", Some(250)), t(1))
        .await
        .unwrap();
    store
        .create_code_group(&group_of(ski.id, Some(10), None), &codes(&["TEN", "ZED"]), t(2))
        .await
        .unwrap();
    store
        .create_code_group(&group_of(tight.id, Some(10), None), &codes(&["EIGHT"]), t(2))
        .await
        .unwrap();
    // Two codes redeemed in opposite orders by alternating customers.
    let orders: Vec<_> = (0..100)
        .map(|i| {
            let (customer, redeemed) = if i % 2 == 0 {
                ("c1", ["TEN", "ZED"])
            } else {
                ("c2", ["ZED", "TEN"])
            };
            order(&format!("o{i}"), Some(customer), &redeemed, &[(ski.id, 30)])
        })
        .collect();
    let outcomes = futures::future::join_all(orders.iter().map(|o| store.place_order(o))).await;
    let placed = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(OrderOutcome::Placed)))
        .count();
    let refused = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(OrderOutcome::CodeUsedUp { .. })))
        .count();
    assert_eq!((placed, refused), (10, 90), "{outcomes:?}");
    assert_eq!(
        (uses(store, "TEN", None).await.0, uses(store, "ZED", None).await.0),
        (10, 10)
    );
    let orders_of = |c: &'static str| async move { store.customer_facts(&cid(c)).await.unwrap().unwrap().orders };
    assert_eq!(orders_of("c1").await + orders_of("c2").await, 10);

    let budgeted: Vec<_> = (0..30)
        .map(|i| order(&format!("b{i}"), Some("c1"), &["EIGHT"], &[(tight.id, 30)]))
        .collect();
    let outcomes = futures::future::join_all(budgeted.iter().map(|o| store.place_order(o))).await;
    let placed = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(OrderOutcome::Placed)))
        .count();
    assert_eq!(placed, 8, "250 spends 30 eight times: {outcomes:?}");
    assert_eq!(uses(store, "EIGHT", None).await.0, 8, "refused orders redeem nothing");
    let spent: Vec<_> = store.budgets_spent().await.unwrap();
    assert_eq!(spent, [(ski.id, 300), (tight.id, 240)]);

    // The same order twice at once: placed once, the other gets its answer.
    let twice = [order("dup", Some("c2"), &[], &[]), order("dup", Some("c2"), &[], &[])];
    let outcomes = futures::future::join_all(twice.iter().map(|o| store.place_order(o))).await;
    let mut kinds: Vec<_> = outcomes
        .iter()
        .map(|o| match o {
            Ok(OrderOutcome::Placed) => "placed",
            Ok(OrderOutcome::AlreadyPlaced { .. }) => "again",
            other => panic!("{other:?}"),
        })
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["again", "placed"]);
}

/// An order counts on the customer's order count it was calculated with, its id is
/// not another activity's, and it outlives its customer.
pub async fn orders_are_placed_against_what_their_calculation_saw(store: &dyn Store) {
    store.create_customer(&new_customer("c1"), t(0)).await.unwrap();
    let mut first = order("o1", Some("c1"), &[], &[]);
    first.orders_seen = Some(0);
    assert_eq!(store.place_order(&first).await.unwrap(), OrderOutcome::Placed);
    let mut second = order("o2", Some("c1"), &[], &[]);
    second.orders_seen = Some(0);
    assert_eq!(
        store.place_order(&second).await.unwrap(),
        OrderOutcome::CustomerOrdered,
        "a first order was placed meanwhile"
    );
    assert_eq!(
        store
            .order_answer(&ActivityId::parse("id", "o2").unwrap())
            .await
            .unwrap(),
        None
    );
    second.orders_seen = Some(1);
    assert_eq!(store.place_order(&second).await.unwrap(), OrderOutcome::Placed);

    store
        .record_activities(&[activity("a-1", "c1", "login", 60)], t(60), crate::Reacting::Reacts)
        .await
        .unwrap();
    let taken = store
        .place_order(&order("a-1", Some("c1"), &[], &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(&taken, StoreError::Conflict { field, .. } if field == "id"),
        "{taken:?}"
    );
    assert_eq!(
        store
            .order_answer(&ActivityId::parse("id", "a-1").unwrap())
            .await
            .unwrap(),
        None
    );

    store.delete_customer(&cid("c1"), t(70)).await.unwrap();
    store.create_customer(&new_customer("c1"), t(71)).await.unwrap();
    assert!(
        matches!(
            store.place_order(&first).await.unwrap(),
            OrderOutcome::AlreadyPlaced { .. }
        ),
        "an order outlives its customer: placing it again places nothing"
    );
}
