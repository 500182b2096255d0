//! Conformance of automation: rule definitions with their firing counts and version,
//! and the durable queue — due jobs claimed under a lease, never handed out twice (also
//! to concurrent claimers), finished, retried, buried and replayed; jobs going with
//! their rule and their customer.

use std::collections::BTreeSet;
use std::sync::Arc;

use cohort_core::automation::AutomationRuleId;

use cohort_core::{CustomerPatch, SegmentChange};

use super::{add, cid, group, new_customer, segment, t};
use crate::{Job, JobEffect, NewJob, ScheduleProgress, ScheduleRun, Store, StoreError};

fn job(rule: AutomationRuleId, customer: &str, action: u32, run_at: i64) -> NewJob {
    NewJob {
        rule,
        action,
        customer: cid(customer),
        run_at: t(run_at),
        environment: format!(r#"{{"event":"customer_created","n":{action}}}"#),
    }
}

pub async fn automation_rules_round_trip_count_firings_and_move_the_version(store: &dyn Store) {
    let v0 = store.automation_version().await.unwrap();
    let rule = store.create_automation_rule(r#"{"name":"a"}"#, t(1)).await.unwrap();
    let v1 = store.automation_version().await.unwrap();
    assert!(v1 > v0, "creating moves the version");
    assert_eq!((rule.fired, rule.last_fired_at), (0, None));
    store.fire(&[rule.id, rule.id], &[], t(5)).await.unwrap();
    let read = store.automation_rule(rule.id).await.unwrap().unwrap();
    assert_eq!((read.fired, read.last_fired_at), (2, Some(t(5))));
    assert_eq!(
        store.automation_version().await.unwrap(),
        v1,
        "firing is not a change of definition"
    );
    let replaced = store
        .replace_automation_rule(rule.id, r#"{"name":"b"}"#, t(6))
        .await
        .unwrap();
    assert_eq!((replaced.definition.as_str(), replaced.fired), (r#"{"name":"b"}"#, 2));
    let v2 = store.automation_version().await.unwrap();
    assert!(v2 > v1);
    let other = store.create_automation_rule("{}", t(7)).await.unwrap();
    let ids: Vec<_> = store
        .list_automation_rules()
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, vec![rule.id, other.id]);
    store.delete_automation_rule(rule.id).await.unwrap();
    assert!(store.automation_version().await.unwrap() > v2);
    assert!(matches!(
        store.delete_automation_rule(rule.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.replace_automation_rule(rule.id, "{}", t(8)).await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn queued_jobs_are_claimed_once_finished_retried_buried_and_replayed(store: &dyn Store) {
    store.create_customer(&new_customer("C1"), t(0)).await.unwrap();
    let rule = store.create_automation_rule("{}", t(0)).await.unwrap();
    let jobs = [
        job(rule.id, "C1", 0, 10),
        job(rule.id, "C1", 1, 5),
        job(rule.id, "C1", 2, 100),
        job(rule.id, "GHOST", 0, 1),
    ];
    store.fire(&[rule.id], &jobs, t(1)).await.unwrap();
    assert_eq!(
        store.queued_jobs(10).await.unwrap().len(),
        3,
        "no job for an unknown customer"
    );

    let claimed = store.claim_jobs(t(20), t(80), 7, 10).await.unwrap();
    let actions: Vec<u32> = claimed.iter().map(|j| j.action).collect();
    assert_eq!(actions, vec![1, 0], "the due ones, earliest first");
    assert!(
        claimed
            .iter()
            .all(|j| j.lease == 7 && j.customer == cid("C1") && j.attempts == 0)
    );
    assert_eq!(claimed[0].environment, r#"{"event":"customer_created","n":1}"#);
    assert!(
        store.claim_jobs(t(21), t(81), 8, 10).await.unwrap().is_empty(),
        "held by the first claim"
    );

    let (first, second) = (&claimed[0], &claimed[1]);
    let nothing = JobEffect::Nothing;
    let stolen = Job {
        lease: 8,
        ..first.clone()
    };
    assert!(
        !store.complete_job(&stolen, &nothing, t(20)).await.unwrap(),
        "another lease cannot finish it"
    );
    assert!(store.complete_job(first, &nothing, t(20)).await.unwrap());
    assert!(
        !store.complete_job(first, &nothing, t(20)).await.unwrap(),
        "finished once"
    );

    assert!(store.retry_job(second.id, 7, t(50), "timeout").await.unwrap());
    assert!(
        store.claim_jobs(t(49), t(90), 9, 10).await.unwrap().is_empty(),
        "not before its new time"
    );
    let again = store.claim_jobs(t(50), t(60), 9, 10).await.unwrap();
    assert_eq!(
        (again.len(), again[0].attempts, again[0].last_error.as_deref()),
        (1, 1, Some("timeout"))
    );

    // The lease runs out: another claim takes the job over, the first can no longer bury it.
    let taken = store.claim_jobs(t(61), t(200), 10, 10).await.unwrap();
    assert_eq!(taken.iter().map(|j| j.id).collect::<Vec<_>>(), vec![second.id]);
    assert!(!store.bury_job(second.id, 9, "late", t(62)).await.unwrap());
    assert!(store.bury_job(second.id, 10, "gave up", t(63)).await.unwrap());
    let dead = store.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0].attempts, dead[0].error.as_str(), dead[0].failed_at),
        (2, "gave up", t(63))
    );
    assert_eq!(dead[0].environment, second.environment);

    let replayed = store.replay_dead_letter(dead[0].id, t(70)).await.unwrap();
    assert_eq!(
        (replayed.action, replayed.attempts, replayed.run_at, replayed.lease),
        (0, 0, t(70), 0)
    );
    assert!(store.dead_letters(10).await.unwrap().is_empty());
    assert!(matches!(
        store.replay_dead_letter(dead[0].id, t(71)).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        store.queued_jobs(10).await.unwrap().len(),
        2,
        "the replayed one and the one due at 100"
    );

    // Jobs and dead letters go with their customer and with their rule.
    let claimed = store.claim_jobs(t(300), t(400), 11, 1).await.unwrap();
    store.bury_job(claimed[0].id, 11, "x", t(300)).await.unwrap();
    store.delete_customer(&cid("C1"), t(301)).await.unwrap();
    assert!(store.queued_jobs(10).await.unwrap().is_empty());
    assert!(store.dead_letters(10).await.unwrap().is_empty());
    store.create_customer(&new_customer("C2"), t(302)).await.unwrap();
    store.fire(&[], &[job(rule.id, "C2", 0, 400)], t(302)).await.unwrap();
    store.delete_automation_rule(rule.id).await.unwrap();
    assert!(store.queued_jobs(10).await.unwrap().is_empty());
}

pub async fn concurrent_claims_never_hand_out_a_job_twice(store: &dyn Store) {
    store.create_customer(&new_customer("C1"), t(0)).await.unwrap();
    let rule = store.create_automation_rule("{}", t(0)).await.unwrap();
    let jobs: Vec<NewJob> = (0..60).map(|i| job(rule.id, "C1", i, i64::from(i))).collect();
    store.fire(&[rule.id], &jobs, t(0)).await.unwrap();
    let store: Arc<&dyn Store> = Arc::new(store);
    let claimers = (1..=6).map(|lease| {
        let store = store.clone();
        async move {
            let mut mine = Vec::new();
            loop {
                let claimed = store.claim_jobs(t(100), t(1_000), lease, 4).await.unwrap();
                if claimed.is_empty() {
                    return mine;
                }
                for job in claimed {
                    assert!(store.complete_job(&job, &JobEffect::Nothing, t(100)).await.unwrap());
                    mine.push(job.id);
                }
            }
        }
    });
    let all: Vec<i64> = futures::future::join_all(claimers)
        .await
        .into_iter()
        .flatten()
        .collect();
    let distinct: BTreeSet<i64> = all.iter().copied().collect();
    assert_eq!(
        (all.len(), distinct.len()),
        (60, 60),
        "each job claimed and finished exactly once"
    );
    assert!(store.queued_jobs(10).await.unwrap().is_empty());
}

pub async fn a_completed_job_applies_its_effect_once_and_only_under_its_lease(store: &dyn Store) {
    store.create_customer(&new_customer("C1"), t(0)).await.unwrap();
    let g = group(store, "interests", false).await;
    let ski = segment(store, &g, "ski").await;
    let rule = store.create_automation_rule("{}", t(0)).await.unwrap();
    store
        .fire(&[rule.id], &[job(rule.id, "C1", 0, 1), job(rule.id, "C1", 1, 1)], t(0))
        .await
        .unwrap();
    let claimed = store.claim_jobs(t(1), t(10), 3, 10).await.unwrap();
    let counter = || async {
        store
            .customer_segments(&cid("C1"), t(50))
            .await
            .unwrap()
            .first()
            .map(|m| m.application_counter)
    };

    // A claim that ran out and was taken over applies nothing.
    let taken = store.claim_jobs(t(11), t(100), 4, 10).await.unwrap();
    assert_eq!(taken.len(), 2);
    let segments = JobEffect::Segments(add(&[&ski]));
    assert!(!store.complete_job(&claimed[0], &segments, t(12)).await.unwrap());
    assert_eq!(counter().await, None, "a lost claim changes nothing");

    assert!(store.complete_job(&taken[0], &segments, t(13)).await.unwrap());
    assert!(!store.complete_job(&taken[0], &segments, t(14)).await.unwrap());
    assert_eq!(counter().await, Some(1), "applied once");

    let tier = cohort_core::AttributeName::parse("f", "tier").unwrap();
    let gold = cohort_core::AttributeValue::String("gold".into());
    let mut patch = CustomerPatch::default();
    patch.attributes.insert(tier.clone(), Some(gold.clone()));
    assert!(
        store
            .complete_job(&taken[1], &JobEffect::Customer(patch), t(15))
            .await
            .unwrap()
    );
    let customer = store.customer(&cid("C1")).await.unwrap().unwrap();
    assert_eq!(customer.attributes.get(&tier), Some(&gold));
    assert!(store.queued_jobs(10).await.unwrap().is_empty());

    // An effect that fails (an unknown segment) leaves the job claimed, unchanged.
    store.fire(&[], &[job(rule.id, "C1", 2, 20)], t(20)).await.unwrap();
    let claimed = store.claim_jobs(t(200), t(300), 5, 10).await.unwrap();
    let dangling = SegmentChange {
        add: vec![cohort_core::SegmentAdd {
            segment: cohort_core::SegmentId::new(999_999),
            source: cohort_core::MembershipSource::Manual,
            expires_at: None,
        }],
        remove: Vec::new(),
    };
    assert!(
        store
            .complete_job(&claimed[0], &JobEffect::Segments(dangling), t(201))
            .await
            .is_err()
    );
    assert_eq!(store.queued_jobs(10).await.unwrap().len(), 1, "still queued");
}

pub async fn a_schedule_is_claimed_by_one_server(store: &dyn Store) {
    let rule = store.create_automation_rule("{}", t(0)).await.unwrap();
    assert_eq!(rule.scheduled_through, None);
    assert_eq!(rule.schedule_run, None);
    assert!(store.claim_schedule(rule.id, None, t(60), 1, t(90)).await.unwrap());
    assert!(
        !store.claim_schedule(rule.id, None, t(61), 2, t(91)).await.unwrap(),
        "the other server read the old value"
    );
    let read = store.automation_rule(rule.id).await.unwrap().unwrap();
    assert_eq!(
        read.schedule_run,
        Some(ScheduleRun {
            lease: 1,
            until: t(90),
            after: None
        })
    );
    assert!(
        !store
            .claim_schedule(rule.id, Some(t(60)), t(120), 2, t(150))
            .await
            .unwrap(),
        "the run of 60 is not over"
    );
    let end = ScheduleProgress {
        rule: rule.id,
        lease: 1,
        after: None,
        until: t(100),
    };
    assert!(store.fire_with(&[], &[], t(70), Some(&end), &[]).await.unwrap());
    assert_eq!(
        store.automation_rule(rule.id).await.unwrap().unwrap().schedule_run,
        None
    );
    assert!(
        store
            .claim_schedule(rule.id, Some(t(60)), t(120), 2, t(150))
            .await
            .unwrap()
    );
    let read = store.automation_rule(rule.id).await.unwrap().unwrap();
    assert_eq!(read.scheduled_through, Some(t(120)));
    assert!(
        !store
            .claim_schedule(AutomationRuleId::new(rule.id.get() + 100), None, t(1), 3, t(2))
            .await
            .unwrap()
    );
}

pub async fn a_schedule_run_records_its_pages_with_their_jobs_and_is_taken_over_when_its_lease_runs_out(
    store: &dyn Store,
) {
    for id in ["C1", "C2"] {
        store.create_customer(&new_customer(id), t(0)).await.unwrap();
    }
    let rule = store.create_automation_rule("{}", t(0)).await.unwrap();
    assert!(store.claim_schedule(rule.id, None, t(60), 1, t(90)).await.unwrap());
    let page = |lease, after, until| ScheduleProgress {
        rule: rule.id,
        lease,
        after,
        until: t(until),
    };
    assert!(
        store
            .fire_with(
                &[rule.id],
                &[job(rule.id, "C1", 0, 60)],
                t(61),
                Some(&page(1, Some(7), 120)),
                &[]
            )
            .await
            .unwrap()
    );
    let run = store.automation_rule(rule.id).await.unwrap().unwrap().schedule_run;
    assert_eq!(
        run,
        Some(ScheduleRun {
            lease: 1,
            until: t(120),
            after: Some(7)
        })
    );
    assert!(
        !store.take_over_schedule(rule.id, 1, 2, t(200), t(120)).await.unwrap(),
        "the lease has not run out"
    );
    assert!(
        !store.take_over_schedule(rule.id, 9, 2, t(200), t(121)).await.unwrap(),
        "another lease than the one read"
    );
    assert!(store.take_over_schedule(rule.id, 1, 2, t(200), t(121)).await.unwrap());
    assert!(
        !store.take_over_schedule(rule.id, 1, 3, t(200), t(121)).await.unwrap(),
        "taken once"
    );
    // The server that lost it writes nothing more: neither its jobs nor its count.
    assert!(
        !store
            .fire_with(
                &[rule.id],
                &[job(rule.id, "C2", 0, 60)],
                t(122),
                Some(&page(1, Some(9), 180)),
                &[]
            )
            .await
            .unwrap()
    );
    let read = store.automation_rule(rule.id).await.unwrap().unwrap();
    assert_eq!(read.fired, 1);
    assert_eq!(read.schedule_run.map(|r| (r.lease, r.after)), Some((2, Some(7))));
    let queued: Vec<_> = store
        .queued_jobs(10)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.customer.to_string())
        .collect();
    assert_eq!(queued, vec!["C1"]);
    // The new holder goes on and ends the run.
    assert!(
        store
            .fire_with(
                &[rule.id],
                &[job(rule.id, "C2", 0, 60)],
                t(122),
                Some(&page(2, None, 0)),
                &[]
            )
            .await
            .unwrap()
    );
    let read = store.automation_rule(rule.id).await.unwrap().unwrap();
    assert_eq!((read.fired, read.schedule_run), (2, None));
    assert_eq!(store.queued_jobs(10).await.unwrap().len(), 2);
}

pub async fn jobs_completed_together_fail_alone(store: &dyn Store) {
    for id in ["C1", "C2", "C3"] {
        store.create_customer(&new_customer(id), t(0)).await.unwrap();
    }
    let g = group(store, "interests", false).await;
    let ski = segment(store, &g, "ski").await;
    let rule = store.create_automation_rule("{}", t(0)).await.unwrap();
    let queued = [
        job(rule.id, "C3", 0, 1),
        job(rule.id, "C1", 0, 1),
        job(rule.id, "C2", 0, 1),
    ];
    store.fire(&[rule.id], &queued, t(0)).await.unwrap();
    let claimed = store.claim_jobs(t(1), t(10), 7, 10).await.unwrap();
    assert_eq!(claimed.len(), 3);
    let dangling = SegmentChange {
        add: vec![cohort_core::SegmentAdd {
            segment: cohort_core::SegmentId::new(999_999),
            source: cohort_core::MembershipSource::Manual,
            expires_at: None,
        }],
        remove: Vec::new(),
    };
    let mut lost = claimed[2].clone();
    lost.lease = 8;
    let batch = [
        (claimed[0].clone(), JobEffect::Segments(add(&[&ski]))),
        (claimed[1].clone(), JobEffect::Segments(dangling)),
        (lost, JobEffect::Segments(add(&[&ski]))),
    ];
    let outcomes = store.complete_jobs(&batch, t(2)).await.unwrap();
    assert!(matches!(outcomes[0], Ok(true)), "{outcomes:?}");
    assert!(
        outcomes[1].is_err(),
        "an effect that cannot be written fails: {outcomes:?}"
    );
    assert!(
        matches!(outcomes[2], Ok(false)),
        "a claim that is not held: {outcomes:?}"
    );

    let held = |job: &Job| {
        let customer = job.customer.clone();
        async move {
            store
                .customer_segments(&customer, t(5))
                .await
                .unwrap()
                .iter()
                .map(|m| m.segment)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        held(&claimed[0]).await,
        vec![ski.id],
        "the first job's effect is written"
    );
    assert_eq!(held(&claimed[2]).await, Vec::new(), "a lost claim changes nothing");
    let left: BTreeSet<i64> = store.queued_jobs(10).await.unwrap().iter().map(|j| j.id).collect();
    assert_eq!(
        left,
        BTreeSet::from([claimed[1].id, claimed[2].id]),
        "the failed job and the one whose claim was not held stay queued"
    );
}
