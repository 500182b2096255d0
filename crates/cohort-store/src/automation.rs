//! The automation part of the storage port: rule definitions (the client's JSON) with
//! how often and when each last fired, and the durable queue of actions to run — due
//! ones claimed for a lease so that two servers never run one at once, finished,
//! retried later, or parked as dead letters that can be replayed. The SQL is shared by
//! both backends (`sql_automation_store!`); its only formatted parts are column lists
//! written here.

use async_trait::async_trait;
use cohort_core::automation::AutomationRuleId;
use std::collections::BTreeMap;

use cohort_core::{ActivityType, AttributeName, Attributes, CustomerId, CustomerPatch, SegmentChange, Timestamp};

use crate::StoreResult;

/// An automation rule as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAutomationRule {
    pub id: AutomationRuleId,
    pub definition: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// How often it fired.
    pub fired: u64,
    pub last_fired_at: Option<Timestamp>,
    /// The time up to which its schedule has run (`None`: not yet).
    pub scheduled_through: Option<Timestamp>,
    /// The run of that time, while it is not over.
    pub schedule_run: Option<ScheduleRun>,
}

/// A schedule run in progress: the server holding `lease` goes through the customers
/// in index-key order and records, with each page's jobs, the last key it did. A run
/// whose lease ran out (its server stopped) is taken over and goes on from there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleRun {
    pub lease: i64,
    pub until: Timestamp,
    /// The last customer key done (`None`: none yet).
    pub after: Option<u32>,
}

/// What a page of a schedule run records with its jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleProgress {
    pub rule: AutomationRuleId,
    /// The run's lease, as claimed or taken over.
    pub lease: i64,
    /// The last customer key done; `None`: the run is over.
    pub after: Option<u32>,
    /// The lease's new end.
    pub until: Timestamp,
}

/// An action to run for a customer at a time, with the event that fired its rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub rule: AutomationRuleId,
    /// The action's position in the rule.
    pub action: u32,
    pub customer: CustomerId,
    pub run_at: Timestamp,
    /// The triggering event, encoded by the app.
    pub environment: String,
}

/// A queued action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: i64,
    pub rule: AutomationRuleId,
    pub action: u32,
    pub customer: CustomerId,
    pub run_at: Timestamp,
    pub environment: String,
    /// Runs that failed so far.
    pub attempts: u32,
    pub last_error: Option<String>,
    /// The claim this job was handed out under (0: not claimed); finishing, retrying
    /// or burying it needs the same value, so a claim that ran out and was taken over
    /// cannot finish the job twice.
    pub lease: i64,
}

/// An action that failed for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub id: i64,
    pub rule: AutomationRuleId,
    pub action: u32,
    pub customer: CustomerId,
    pub environment: String,
    pub attempts: u32,
    pub error: String,
    pub failed_at: Timestamp,
}

/// What a finished job changes of its customer, written in the transaction that
/// removes the job, so an action's effect and its completion are one.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum JobEffect {
    /// Nothing more (the action's effect is outside the store, or made idempotent).
    #[default]
    Nothing,
    Segments(SegmentChange),
    Customer(CustomerPatch),
}

/// Automation's inbox as one snapshot read it: the activities recorded since
/// automation last reacted, by customer, with what their conditions read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Unreacted {
    /// The entries read; the firing that reacts to them removes them.
    pub entries: Vec<i64>,
    /// The customers of the entries' activities (those still stored), each once.
    pub customers: Vec<InboxCustomer>,
}

impl Unreacted {
    /// How many activities were read.
    pub fn activities(&self) -> usize {
        self.customers.iter().map(|c| c.activities.len()).sum()
    }
}

/// A customer with activities automation has yet to react to, as the snapshot saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxCustomer {
    pub key: i64,
    pub id: CustomerId,
    /// The attributes asked for (those it has).
    pub attributes: Attributes,
    /// Its activity counts of the types asked for (types without activities left out),
    /// every unreacted activity included.
    pub counts: BTreeMap<ActivityType, u32>,
    /// Its unreacted activities, in the order they were recorded.
    pub activities: Vec<UnreactedActivity>,
}

/// An activity automation has yet to react to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreactedActivity {
    pub kind: ActivityType,
    /// `false`: counted, but no rule fires for it (`Reacting::CountedOnly`).
    pub reacts: bool,
}

#[async_trait]
pub trait AutomationStore: Send + Sync + 'static {
    async fn create_automation_rule(&self, definition: &str, now: Timestamp) -> StoreResult<StoredAutomationRule>;
    async fn automation_rule(&self, id: AutomationRuleId) -> StoreResult<Option<StoredAutomationRule>>;
    /// Replaces the definition (statistics stay). `NotFound` if there is no such rule.
    async fn replace_automation_rule(
        &self,
        id: AutomationRuleId,
        definition: &str,
        now: Timestamp,
    ) -> StoreResult<StoredAutomationRule>;
    /// Deletes the rule with its queued actions and dead letters.
    async fn delete_automation_rule(&self, id: AutomationRuleId) -> StoreResult<()>;
    /// Every rule, by id.
    async fn list_automation_rules(&self) -> StoreResult<Vec<StoredAutomationRule>>;
    /// Moves with every change of a rule definition.
    async fn automation_version(&self) -> StoreResult<i64>;

    /// Counts the rules that fired and queues their actions, in one transaction.
    /// Jobs for customers cohort does not know are left out.
    async fn fire(&self, rules: &[AutomationRuleId], jobs: &[NewJob], now: Timestamp) -> StoreResult<()> {
        self.fire_with(rules, jobs, now, None, &[]).await.map(|_| ())
    }
    /// `fire`, recording in the same transaction how far a schedule run went, so a page
    /// of it is queued exactly once, and removing the inbox entries `reacted` to, so an
    /// activity is reacted to once; `false` (nothing written) if the run's lease is no
    /// longer `progress.lease` (it was taken over, or the rule deleted) or one of the
    /// entries is gone (another server reacted to it).
    async fn fire_with(
        &self,
        rules: &[AutomationRuleId],
        jobs: &[NewJob],
        now: Timestamp,
        progress: Option<&ScheduleProgress>,
        reacted: &[i64],
    ) -> StoreResult<bool>;
    /// Reads automation's inbox in one snapshot: every entry, their activities, and
    /// their customers with the attributes among `fields` and their counts of the
    /// `counted` types. The counts include every activity read, so the counts right
    /// after an activity are the snapshot's less the same customer's later ones.
    async fn unreacted(&self, counted: &[ActivityType], fields: &[AttributeName]) -> StoreResult<Unreacted>;
    /// Empties the inbox without reacting (when no rule listens to activities).
    async fn discard_unreacted(&self) -> StoreResult<()>;
    /// Claims up to `limit` jobs due at `now` (earliest first) that no live claim
    /// holds, until `lease_until`, under the claim `lease` (non-zero).
    async fn claim_jobs(&self, now: Timestamp, lease_until: Timestamp, lease: i64, limit: u32)
    -> StoreResult<Vec<Job>>;
    /// Removes a job that ran and applies its effect on the job's customer, in one
    /// transaction; `false` (and nothing applied) if the claim was lost. An effect that
    /// cannot be applied (the customer was deleted) leaves the job claimed.
    async fn complete_job(&self, job: &Job, effect: &JobEffect, now: Timestamp) -> StoreResult<bool> {
        let mut done = self.complete_jobs(&[(job.clone(), effect.clone())], now).await?;
        done.pop().unwrap_or(Ok(false))
    }
    /// Completes several jobs as `complete_job` would, in one transaction: each job's
    /// outcome, in the order given, is `true`, `false` (the claim was lost) or the error
    /// of an effect that could not be applied — that job alone stays claimed, the
    /// others complete. Customers are changed in the order of their ids, so two servers
    /// completing jobs of the same customers cannot deadlock.
    async fn complete_jobs(&self, jobs: &[(Job, JobEffect)], now: Timestamp) -> StoreResult<Vec<StoreResult<bool>>>;
    /// Releases a job to run again at `run_at`, counting the failure; `false` if the
    /// claim was lost.
    async fn retry_job(&self, id: i64, lease: i64, run_at: Timestamp, error: &str) -> StoreResult<bool>;
    /// Moves a job to the dead letters; `false` if the claim was lost.
    async fn bury_job(&self, id: i64, lease: i64, error: &str, now: Timestamp) -> StoreResult<bool>;
    /// Moves the rule's schedule from `previous` (as read) to `through` and starts its
    /// run under `lease` until `until`; `false` if another server moved it first, a run
    /// is still in progress, or there is no such rule.
    async fn claim_schedule(
        &self,
        rule: AutomationRuleId,
        previous: Option<Timestamp>,
        through: Timestamp,
        lease: i64,
        until: Timestamp,
    ) -> StoreResult<bool>;
    /// Takes over a run whose lease `previous` ran out before `now`, under `lease`
    /// until `until`; `false` if it is not so (it moved on, ended, or another server
    /// took it first).
    async fn take_over_schedule(
        &self,
        rule: AutomationRuleId,
        previous: i64,
        lease: i64,
        until: Timestamp,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Queued jobs, earliest first.
    async fn queued_jobs(&self, limit: u32) -> StoreResult<Vec<Job>>;
    /// Dead letters, newest first.
    async fn dead_letters(&self, limit: u32) -> StoreResult<Vec<DeadLetter>>;
    /// Queues a dead letter again, to run at `now` with its failures forgotten.
    /// `NotFound` if there is no such dead letter.
    async fn replay_dead_letter(&self, id: i64, now: Timestamp) -> StoreResult<Job>;
}

/// The SQL implementation of `AutomationStore`, the same text on both backends but for
/// how a write transaction starts and how due jobs are locked (PostgreSQL skips rows
/// another claim holds: `FOR UPDATE SKIP LOCKED`). Expanded in each backend crate:
///
/// ```text
/// cohort_store::sql_automation_store!(SqliteStore, row: SqliteRow, read: read, write: write,
///     begin: begin_with("BEGIN IMMEDIATE"), lock: "", snapshot: "",
///     inbox_activities: "automation_inbox i JOIN activities a ON …", json_out: "", db: crate::error::db,
///     change_segments: crate::memberships::change, patch_customer: crate::customers::patch);
/// ```
///
/// `snapshot` is the first statement of a read transaction whose statements must all
/// see one snapshot (SQLite's read transactions do; PostgreSQL's need repeatable read);
/// `inbox_activities` joins the inbox's entries `i` to their activities `a` by a range
/// scan of each entry's seqs (PostgreSQL's planner, left to itself, scans all
/// activities in customer order instead); `json_out` turns the stored attributes into
/// JSON text.
#[macro_export]
macro_rules! sql_automation_store {
    ($store:ty, row: $row:ty, read: $read:ident, write: $write:ident, begin: $begin:ident($($arg:expr),*),
     lock: $lock:literal, snapshot: $snapshot:literal, inbox_activities: $inbox_activities:literal,
     json_out: $json_out:literal, db: $db:path,
     change_segments: $change:path, patch_customer: $patch:path) => {
        use sqlx::Row as _;

        const RULE_COLUMNS: &str = "id, definition, created_at, updated_at, fired, last_fired_at, scheduled_through,
             schedule_lease, schedule_until, schedule_after";
        const JOB_COLUMNS: &str = "j.id, j.rule_id, j.action, c.id AS customer, j.run_at, j.environment, j.attempts,
             j.last_error, j.lease";

        fn automation_rule_from_row(row: &$row) -> $crate::automation::StoredAutomationRule {
            $crate::automation::StoredAutomationRule {
                id: cohort_core::automation::AutomationRuleId::new(row.get("id")),
                definition: row.get("definition"),
                created_at: cohort_core::Timestamp::from_unix_micros(row.get("created_at")),
                updated_at: cohort_core::Timestamp::from_unix_micros(row.get("updated_at")),
                fired: u64::try_from(row.get::<i64, _>("fired")).unwrap_or(0),
                last_fired_at: row
                    .get::<Option<i64>, _>("last_fired_at")
                    .map(cohort_core::Timestamp::from_unix_micros),
                scheduled_through: row
                    .get::<Option<i64>, _>("scheduled_through")
                    .map(cohort_core::Timestamp::from_unix_micros),
                schedule_run: row.get::<Option<i64>, _>("schedule_lease").map(|lease| $crate::automation::ScheduleRun {
                    lease,
                    until: cohort_core::Timestamp::from_unix_micros(row.get::<Option<i64>, _>("schedule_until").unwrap_or(0)),
                    after: row.get::<Option<i64>, _>("schedule_after").and_then(|k| u32::try_from(k).ok()),
                }),
            }
        }

        fn job_from_row(row: &$row) -> $crate::StoreResult<$crate::automation::Job> {
            Ok($crate::automation::Job {
                id: row.get("id"),
                rule: cohort_core::automation::AutomationRuleId::new(row.get("rule_id")),
                action: u32::try_from(row.get::<i64, _>("action")).unwrap_or(u32::MAX),
                customer: $crate::codec::stored(cohort_core::CustomerId::parse("customer", &row.get::<String, _>("customer")))?,
                run_at: cohort_core::Timestamp::from_unix_micros(row.get("run_at")),
                environment: row.get("environment"),
                attempts: u32::try_from(row.get::<i64, _>("attempts")).unwrap_or(u32::MAX),
                last_error: row.get("last_error"),
                lease: row.get("lease"),
            })
        }

        #[async_trait::async_trait]
        impl $crate::automation::AutomationStore for $store {
            async fn create_automation_rule(
                &self,
                definition: &str,
                now: cohort_core::Timestamp,
            ) -> $crate::StoreResult<$crate::automation::StoredAutomationRule> {
                let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO automation_rules (definition, created_at, updated_at) VALUES ($1, $2, $2)
                     RETURNING {RULE_COLUMNS}"
                )))
                .bind(definition)
                .bind(now.unix_micros())
                .fetch_one(&self.$write)
                .await
                .map_err($db)?;
                Ok(automation_rule_from_row(&row))
            }

            async fn automation_rule(
                &self,
                id: cohort_core::automation::AutomationRuleId,
            ) -> $crate::StoreResult<Option<$crate::automation::StoredAutomationRule>> {
                let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {RULE_COLUMNS} FROM automation_rules WHERE id = $1")))
                    .bind(id.get())
                    .fetch_optional(&self.$read)
                    .await
                    .map_err($db)?;
                Ok(row.as_ref().map(automation_rule_from_row))
            }

            async fn replace_automation_rule(
                &self,
                id: cohort_core::automation::AutomationRuleId,
                definition: &str,
                now: cohort_core::Timestamp,
            ) -> $crate::StoreResult<$crate::automation::StoredAutomationRule> {
                let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE automation_rules SET definition = $2, updated_at = $3 WHERE id = $1 RETURNING {RULE_COLUMNS}"
                )))
                .bind(id.get())
                .bind(definition)
                .bind(now.unix_micros())
                .fetch_optional(&self.$write)
                .await
                .map_err($db)?;
                row.as_ref()
                    .map(automation_rule_from_row)
                    .ok_or_else(|| $crate::StoreError::not_found("automation rule", id))
            }

            async fn delete_automation_rule(&self, id: cohort_core::automation::AutomationRuleId) -> $crate::StoreResult<()> {
                let done = sqlx::query("DELETE FROM automation_rules WHERE id = $1")
                    .bind(id.get())
                    .execute(&self.$write)
                    .await
                    .map_err($db)?;
                if done.rows_affected() == 0 {
                    return Err($crate::StoreError::not_found("automation rule", id));
                }
                Ok(())
            }

            async fn list_automation_rules(&self) -> $crate::StoreResult<Vec<$crate::automation::StoredAutomationRule>> {
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {RULE_COLUMNS} FROM automation_rules ORDER BY id")))
                    .fetch_all(&self.$read)
                    .await
                    .map_err($db)?;
                Ok(rows.iter().map(automation_rule_from_row).collect())
            }

            async fn automation_version(&self) -> $crate::StoreResult<i64> {
                sqlx::query_scalar("SELECT version FROM automation_version")
                    .fetch_one(&self.$read)
                    .await
                    .map_err($db)
            }

            async fn fire_with(
                &self,
                rules: &[cohort_core::automation::AutomationRuleId],
                jobs: &[$crate::automation::NewJob],
                now: cohort_core::Timestamp,
                progress: Option<&$crate::automation::ScheduleProgress>,
                reacted: &[i64],
            ) -> $crate::StoreResult<bool> {
                let mut tx = self.$write.$begin($($arg),*).await.map_err($db)?;
                for position in reacted {
                    let removed = sqlx::query("DELETE FROM automation_inbox WHERE position = $1")
                        .bind(position)
                        .execute(&mut *tx)
                        .await
                        .map_err($db)?;
                    if removed.rows_affected() == 0 {
                        return Ok(false);
                    }
                }
                if let Some(p) = progress {
                    // The run's last page ends it; the others move it on and renew its lease.
                    let moved = match p.after {
                        Some(after) => sqlx::query(
                            "UPDATE automation_rules SET schedule_after = $3, schedule_until = $4
                             WHERE id = $1 AND schedule_lease = $2",
                        )
                        .bind(p.rule.get())
                        .bind(p.lease)
                        .bind(i64::from(after))
                        .bind(p.until.unix_micros()),
                        None => sqlx::query(
                            "UPDATE automation_rules SET schedule_lease = NULL, schedule_until = NULL, schedule_after = NULL
                             WHERE id = $1 AND schedule_lease = $2",
                        )
                        .bind(p.rule.get())
                        .bind(p.lease),
                    }
                    .execute(&mut *tx)
                    .await
                    .map_err($db)?;
                    if moved.rows_affected() == 0 {
                        return Ok(false);
                    }
                }
                let mut firings: std::collections::BTreeMap<i64, i64> = std::collections::BTreeMap::new();
                for rule in rules {
                    *firings.entry(rule.get()).or_default() += 1;
                }
                for (rule, fired) in firings {
                    sqlx::query("UPDATE automation_rules SET fired = fired + $3, last_fired_at = $2 WHERE id = $1")
                        .bind(rule)
                        .bind(now.unix_micros())
                        .bind(fired)
                        .execute(&mut *tx)
                        .await
                        .map_err($db)?;
                }
                // Many jobs a statement: its cost is mostly per statement.
                for chunk in jobs.chunks(200) {
                    let values: Vec<String> = (0..chunk.len())
                        .map(|i| {
                            let n = i * 5;
                            format!("(${}, ${}, ${}, ${}, ${})", n + 1, n + 2, n + 3, n + 4, n + 5)
                        })
                        .collect();
                    let sql = format!(
                        "INSERT INTO automation_jobs (rule_id, action, customer_seq, run_at, environment)
                         SELECT v.column1, v.column2, c.seq, v.column4, v.column5
                         FROM (VALUES {}) AS v JOIN customers c ON c.id = v.column3",
                        values.join(", ")
                    );
                    let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for job in chunk {
                        insert = insert
                            .bind(job.rule.get())
                            .bind(i64::from(job.action))
                            .bind(job.customer.as_str())
                            .bind(job.run_at.unix_micros())
                            .bind(&job.environment);
                    }
                    insert.execute(&mut *tx).await.map_err($db)?;
                }
                tx.commit().await.map_err($db)?;
                Ok(true)
            }

            async fn unreacted(
                &self,
                counted: &[cohort_core::ActivityType],
                fields: &[cohort_core::AttributeName],
            ) -> $crate::StoreResult<$crate::automation::Unreacted> {
                use $crate::automation::{InboxCustomer, Unreacted, UnreactedActivity};
                let mut tx = self.$read.begin().await.map_err($db)?;
                if !$snapshot.is_empty() {
                    sqlx::query($snapshot).execute(&mut *tx).await.map_err($db)?;
                }
                let entries: Vec<i64> = sqlx::query_scalar("SELECT position FROM automation_inbox ORDER BY position")
                    .fetch_all(&mut *tx)
                    .await
                    .map_err($db)?;
                if entries.is_empty() {
                    return Ok(Unreacted::default());
                }
                // A line a customer: its key, id, attributes, its activity types in
                // order (`!` before a counted-only one) and its counts as "type count"
                // pairs. The activities are grouped before the customers are joined, so
                // the grouping does not carry their attributes.
                let attributes_column = if fields.is_empty() { "''" } else { concat!("c.attributes", $json_out) };
                let counts_column = if counted.is_empty() {
                    "''"
                } else {
                    "coalesce((SELECT string_agg(n.type || ' ' || n.count, ' ') FROM activity_counts n
                               WHERE n.customer_seq = c.seq), '')"
                };
                // All lines in one text, columns split by tabs (neither is in ids,
                // types, numbers or compact JSON): a row costs the driver more than SQL
                // takes to join them.
                let inbox_activities = $inbox_activities;
                let text: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT string_agg(c.seq || '\t' || c.id || '\t' || {attributes_column} || '\t' || g.types
                                       || '\t' || {counts_column}, '\n')
                     FROM (SELECT a.customer_seq,
                                  string_agg(CASE WHEN i.reacts THEN a.type ELSE '!' || a.type END, ' ' ORDER BY a.seq)
                                      AS types
                           FROM {inbox_activities}
                           GROUP BY a.customer_seq) g
                     JOIN customers c ON c.seq = g.customer_seq"
                )))
                .fetch_one(&mut *tx)
                .await
                .map_err($db)?;
                // The snapshot is not needed any more: a reader holding one keeps
                // SQLite from recycling its log.
                tx.commit().await.map_err($db)?;
                let corrupt = |what: &str| $crate::StoreError::Backend(format!("stored {what} is not valid"));
                let text = text.unwrap_or_default();
                let mut rows = Vec::new();
                for line in text.split('\n').filter(|l| !l.is_empty()) {
                    let mut columns = line.split('\t');
                    let mut next = || columns.next().ok_or_else(|| corrupt("inbox line"));
                    let key: i64 = next()?.parse().map_err(|_| corrupt("customer key"))?;
                    rows.push((key, next()?, next()?, next()?, next()?));
                }
                // Few distinct types: each is parsed once.
                let mut kinds: Vec<cohort_core::ActivityType> = Vec::new();
                let mut kind_of = |text: &str| -> $crate::StoreResult<cohort_core::ActivityType> {
                    if let Some(known) = kinds.iter().find(|k| k.as_str() == text) {
                        return Ok(known.clone());
                    }
                    let parsed = $crate::codec::stored(cohort_core::ActivityType::parse("type", text))?;
                    kinds.push(parsed.clone());
                    Ok(parsed)
                };
                let mut customers = Vec::with_capacity(rows.len());
                for (key, id, stored_attributes, types, counts) in rows {
                    let mut activities = Vec::new();
                    for text in types.split(' ') {
                        let (reacts, text) = match text.strip_prefix('!') {
                            Some(counted_only) => (false, counted_only),
                            None => (true, text),
                        };
                        activities.push(UnreactedActivity { kind: kind_of(text)?, reacts });
                    }
                    let mut parts = counts.split(' ');
                    let mut kept = std::collections::BTreeMap::new();
                    while let (Some(kind), Some(count)) = (parts.next(), parts.next()) {
                        if let Some(kind) = counted.iter().find(|k| k.as_str() == kind) {
                            let count: u64 = count.parse().map_err(|_| corrupt("activity count"))?;
                            kept.insert(kind.clone(), u32::try_from(count).unwrap_or(u32::MAX));
                        }
                    }
                    customers.push(InboxCustomer {
                        key,
                        id: $crate::codec::stored(cohort_core::CustomerId::parse("id", id))?,
                        attributes: $crate::codec::decode_named_attributes(stored_attributes, fields)?,
                        counts: kept,
                        activities,
                    });
                }
                Ok(Unreacted { entries, customers })
            }

            async fn discard_unreacted(&self) -> $crate::StoreResult<()> {
                sqlx::query("DELETE FROM automation_inbox")
                    .execute(&self.$write)
                    .await
                    .map_err($db)?;
                Ok(())
            }

            async fn claim_jobs(
                &self,
                now: cohort_core::Timestamp,
                lease_until: cohort_core::Timestamp,
                lease: i64,
                limit: u32,
            ) -> $crate::StoreResult<Vec<$crate::automation::Job>> {
                let mut tx = self.$write.$begin($($arg),*).await.map_err($db)?;
                let due: Vec<i64> = sqlx::query_scalar(concat!(
                    "SELECT id FROM automation_jobs
                     WHERE run_at <= $1 AND (claimed_until IS NULL OR claimed_until < $1)
                     ORDER BY run_at, id LIMIT $2 ",
                    $lock
                ))
                .bind(now.unix_micros())
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await
                .map_err($db)?;
                for id in &due {
                    sqlx::query("UPDATE automation_jobs SET lease = $2, claimed_until = $3 WHERE id = $1")
                        .bind(id)
                        .bind(lease)
                        .bind(lease_until.unix_micros())
                        .execute(&mut *tx)
                        .await
                        .map_err($db)?;
                }
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {JOB_COLUMNS} FROM automation_jobs j JOIN customers c ON c.seq = j.customer_seq
                     WHERE j.lease = $1 AND j.claimed_until = $2 ORDER BY j.run_at, j.id"
                )))
                .bind(lease)
                .bind(lease_until.unix_micros())
                .fetch_all(&mut *tx)
                .await
                .map_err($db)?;
                tx.commit().await.map_err($db)?;
                rows.iter().map(job_from_row).collect()
            }

            async fn complete_jobs(
                &self,
                jobs: &[($crate::automation::Job, $crate::automation::JobEffect)],
                now: cohort_core::Timestamp,
            ) -> $crate::StoreResult<Vec<$crate::StoreResult<bool>>> {
                let mut order: Vec<usize> = (0..jobs.len()).collect();
                order.sort_by(|&a, &b| jobs[a].0.customer.cmp(&jobs[b].0.customer));
                let mut outcomes: Vec<$crate::StoreResult<bool>> = jobs.iter().map(|_| Ok(false)).collect();
                let mut tx = self.$write.$begin($($arg),*).await.map_err($db)?;
                for i in order {
                    let (job, effect) = &jobs[i];
                    // Each job under its own savepoint: an effect that fails takes back
                    // only its own job's removal.
                    let mut step = sqlx::Connection::begin(&mut *tx).await.map_err($db)?;
                    let outcome = async {
                        let done = sqlx::query("DELETE FROM automation_jobs WHERE id = $1 AND lease = $2")
                            .bind(job.id)
                            .bind(job.lease)
                            .execute(&mut *step)
                            .await
                            .map_err($db)?;
                        if done.rows_affected() == 0 {
                            return Ok(false);
                        }
                        match effect {
                            $crate::automation::JobEffect::Nothing => {}
                            $crate::automation::JobEffect::Segments(change) => {
                                $change(&mut *step, &job.customer, change, now).await?;
                            }
                            $crate::automation::JobEffect::Customer(patch) => {
                                $patch(&mut *step, &job.customer, patch, now).await?;
                            }
                        }
                        Ok(true)
                    }
                    .await;
                    match outcome {
                        Ok(_) => step.commit().await.map_err($db)?,
                        Err(_) => step.rollback().await.map_err($db)?,
                    }
                    outcomes[i] = outcome;
                }
                tx.commit().await.map_err($db)?;
                Ok(outcomes)
            }

            async fn retry_job(
                &self,
                id: i64,
                lease: i64,
                run_at: cohort_core::Timestamp,
                error: &str,
            ) -> $crate::StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE automation_jobs SET run_at = $3, attempts = attempts + 1, last_error = $4, lease = 0,
                       claimed_until = NULL
                     WHERE id = $1 AND lease = $2",
                )
                .bind(id)
                .bind(lease)
                .bind(run_at.unix_micros())
                .bind(error)
                .execute(&self.$write)
                .await
                .map_err($db)?;
                Ok(done.rows_affected() == 1)
            }

            async fn bury_job(
                &self,
                id: i64,
                lease: i64,
                error: &str,
                now: cohort_core::Timestamp,
            ) -> $crate::StoreResult<bool> {
                let mut tx = self.$write.$begin($($arg),*).await.map_err($db)?;
                let moved = sqlx::query(
                    "INSERT INTO automation_dead_letters
                       (rule_id, action, customer_seq, environment, attempts, error, failed_at)
                     SELECT rule_id, action, customer_seq, environment, attempts + 1, $3, $4
                     FROM automation_jobs WHERE id = $1 AND lease = $2",
                )
                .bind(id)
                .bind(lease)
                .bind(error)
                .bind(now.unix_micros())
                .execute(&mut *tx)
                .await
                .map_err($db)?;
                if moved.rows_affected() == 0 {
                    return Ok(false);
                }
                sqlx::query("DELETE FROM automation_jobs WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err($db)?;
                tx.commit().await.map_err($db)?;
                Ok(true)
            }

            async fn claim_schedule(
                &self,
                rule: cohort_core::automation::AutomationRuleId,
                previous: Option<cohort_core::Timestamp>,
                through: cohort_core::Timestamp,
                lease: i64,
                until: cohort_core::Timestamp,
            ) -> $crate::StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE automation_rules
                     SET scheduled_through = $3, schedule_lease = $4, schedule_until = $5, schedule_after = NULL
                     WHERE id = $1 AND scheduled_through IS NOT DISTINCT FROM $2 AND schedule_lease IS NULL",
                )
                .bind(rule.get())
                .bind(previous.map(|t| t.unix_micros()))
                .bind(through.unix_micros())
                .bind(lease)
                .bind(until.unix_micros())
                .execute(&self.$write)
                .await
                .map_err($db)?;
                Ok(done.rows_affected() == 1)
            }

            async fn take_over_schedule(
                &self,
                rule: cohort_core::automation::AutomationRuleId,
                previous: i64,
                lease: i64,
                until: cohort_core::Timestamp,
                now: cohort_core::Timestamp,
            ) -> $crate::StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE automation_rules SET schedule_lease = $3, schedule_until = $4
                     WHERE id = $1 AND schedule_lease = $2 AND schedule_until < $5",
                )
                .bind(rule.get())
                .bind(previous)
                .bind(lease)
                .bind(until.unix_micros())
                .bind(now.unix_micros())
                .execute(&self.$write)
                .await
                .map_err($db)?;
                Ok(done.rows_affected() == 1)
            }

            async fn queued_jobs(&self, limit: u32) -> $crate::StoreResult<Vec<$crate::automation::Job>> {
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {JOB_COLUMNS} FROM automation_jobs j JOIN customers c ON c.seq = j.customer_seq
                     ORDER BY j.run_at, j.id LIMIT $1"
                )))
                .bind(i64::from(limit))
                .fetch_all(&self.$read)
                .await
                .map_err($db)?;
                rows.iter().map(job_from_row).collect()
            }

            async fn dead_letters(&self, limit: u32) -> $crate::StoreResult<Vec<$crate::automation::DeadLetter>> {
                let rows = sqlx::query(
                    "SELECT d.id, d.rule_id, d.action, c.id AS customer, d.environment, d.attempts, d.error, d.failed_at
                     FROM automation_dead_letters d JOIN customers c ON c.seq = d.customer_seq
                     ORDER BY d.failed_at DESC, d.id DESC LIMIT $1",
                )
                .bind(i64::from(limit))
                .fetch_all(&self.$read)
                .await
                .map_err($db)?;
                rows.iter()
                    .map(|row| {
                        Ok($crate::automation::DeadLetter {
                            id: row.get("id"),
                            rule: cohort_core::automation::AutomationRuleId::new(row.get("rule_id")),
                            action: u32::try_from(row.get::<i64, _>("action")).unwrap_or(u32::MAX),
                            customer: $crate::codec::stored(cohort_core::CustomerId::parse(
                                "customer",
                                &row.get::<String, _>("customer"),
                            ))?,
                            environment: row.get("environment"),
                            attempts: u32::try_from(row.get::<i64, _>("attempts")).unwrap_or(u32::MAX),
                            error: row.get("error"),
                            failed_at: cohort_core::Timestamp::from_unix_micros(row.get("failed_at")),
                        })
                    })
                    .collect()
            }

            async fn replay_dead_letter(
                &self,
                id: i64,
                now: cohort_core::Timestamp,
            ) -> $crate::StoreResult<$crate::automation::Job> {
                let mut tx = self.$write.$begin($($arg),*).await.map_err($db)?;
                let job: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO automation_jobs (rule_id, action, customer_seq, run_at, environment)
                     SELECT rule_id, action, customer_seq, $2, environment FROM automation_dead_letters WHERE id = $1
                     RETURNING id",
                )
                .bind(id)
                .bind(now.unix_micros())
                .fetch_optional(&mut *tx)
                .await
                .map_err($db)?;
                let Some(job) = job else {
                    return Err($crate::StoreError::not_found("dead letter", id));
                };
                sqlx::query("DELETE FROM automation_dead_letters WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err($db)?;
                let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {JOB_COLUMNS} FROM automation_jobs j JOIN customers c ON c.seq = j.customer_seq
                     WHERE j.id = $1"
                )))
                .bind(job)
                .fetch_one(&mut *tx)
                .await
                .map_err($db)?;
                tx.commit().await.map_err($db)?;
                job_from_row(&row)
            }
        }
    };
}
