//! Activities and the segment-building queue on PostgreSQL.
//!
//! Recording a batch is one transaction, written part by part: for each part one
//! lookup of its customers, which holds key share locks on them (in seq order) so none
//! is deleted under the batch, then one `INSERT … SELECT FROM UNNEST(…)` per chunk of
//! activities, which skips stored ids (`ON CONFLICT DO NOTHING`) and reports which
//! customers and types it recorded activities for and the runs of seqs it took; at the
//! commit one insert of those customers into the building queue, one upsert of their
//! activity counts and one insert of the runs into automation's inbox. Columns travel as arrays, so a statement costs one round trip and
//! one plan.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use cohort_core::{Activity, ActivityFilter, ActivityId, ActivityType, CustomerId, Page, PageRequest, Timestamp};
use cohort_store::codec::{amount_e4, decode_attributes, decode_order, encode_attributes, encode_order, stored};
use cohort_store::{ActivityRecording, ActivityStore, Queued, Reacting, RecordSummary, StoreResult, skipped};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, Row, Transaction};

use crate::PostgresStore;
use crate::error::db;
use crate::memberships::{customer_seq, lock_customers};

/// Activities per INSERT: enough to amortise round trips and plans, few enough that
/// encoding the next chunk (the client's main cost) overlaps the server's work on this one.
const ROWS_PER_STATEMENT: usize = 1_000;

/// Customers per insert into the building queue.
const QUEUED_PER_STATEMENT: usize = 5_000;

/// The columns of a batch, as the INSERT binds them.
struct Columns<'a> {
    ids: Vec<&'a str>,
    customers: Vec<&'a str>,
    kinds: Vec<&'a str>,
    ats: Vec<i64>,
    attributes: Vec<String>,
    orders: Vec<Option<String>>,
    amounts: Vec<Option<i64>>,
}

impl<'a> Columns<'a> {
    fn encode(activities: &[&'a Activity]) -> Self {
        Self {
            ids: activities.iter().map(|a| a.id.as_str()).collect(),
            customers: activities.iter().map(|a| a.customer.as_str()).collect(),
            kinds: activities.iter().map(|a| a.kind.as_str()).collect(),
            ats: activities.iter().map(|a| a.at.unix_micros()).collect(),
            attributes: activities.iter().map(|a| encode_attributes(&a.attributes)).collect(),
            orders: activities.iter().map(|a| a.order.as_ref().map(encode_order)).collect(),
            amounts: activities
                .iter()
                .map(|a| a.order.as_ref().and_then(amount_e4))
                .collect(),
        }
    }
}

/// What inserting a chunk did.
struct Inserted {
    count: u64,
    /// How many activities of each type it recorded for each customer (seq).
    counts: Vec<(i64, String, i64)>,
    /// The runs of consecutive seqs it took, `(first, last)`.
    runs: Vec<(i64, i64)>,
    /// The ids it recorded, when it skipped some.
    ids: Option<Vec<String>>,
}

/// Inserts a chunk, skipping stored ids.
async fn insert(
    conn: &mut PgConnection,
    columns: &Columns<'_>,
    seqs: &HashMap<String, i64>,
    now: Timestamp,
) -> StoreResult<Inserted> {
    let customers: Vec<i64> = columns.customers.iter().map(|c| seqs[*c]).collect();
    // An INSERT from a single UNNEST takes the rows in array order, so seqs follow the
    // batch and a customer's list shows its activities as they were sent. The ids are
    // only gathered when some were skipped (the sub-query runs when its CASE is reached).
    // Concurrent inserts interleave their seqs: the runs of consecutive ones go to the inbox.
    type Answer = (
        i64,
        Option<Vec<i64>>,
        Option<Vec<String>>,
        Option<Vec<i64>>,
        Option<Vec<i64>>,
        Option<Vec<i64>>,
        Option<Vec<String>>,
    );
    let (count, counted_for, counted_types, counted, firsts, lasts, ids): Answer = sqlx::query_as(
        "WITH recorded AS (
             INSERT INTO activities (id, customer_seq, type, at, attributes, order_data, amount_e4, recorded_at)
             SELECT v.id, v.customer_seq, v.type, v.at, v.attributes::jsonb, v.order_data, v.amount_e4, $8
             FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::bigint[])
                 AS v (id, customer_seq, type, at, attributes, order_data, amount_e4)
             ON CONFLICT (id) DO NOTHING
             RETURNING seq, id, customer_seq, type
         ), counted AS (
             SELECT customer_seq, type, count(*) AS n FROM recorded GROUP BY customer_seq, type
         ), runs AS (
             SELECT min(seq) AS first, max(seq) AS last
             FROM (SELECT seq, seq - row_number() OVER (ORDER BY seq) AS run FROM recorded) r GROUP BY run
         )
         SELECT (SELECT count(*) FROM recorded),
                (SELECT array_agg(customer_seq) FROM counted), (SELECT array_agg(type::text) FROM counted),
                (SELECT array_agg(n) FROM counted),
                (SELECT array_agg(first ORDER BY first) FROM runs), (SELECT array_agg(last ORDER BY first) FROM runs),
                CASE WHEN (SELECT count(*) FROM recorded) < cardinality($1::text[])
                     THEN (SELECT array_agg(id) FROM recorded) END",
    )
    .bind(&columns.ids)
    .bind(&customers)
    .bind(&columns.kinds)
    .bind(&columns.ats)
    .bind(&columns.attributes)
    .bind(&columns.orders)
    .bind(&columns.amounts)
    .bind(now.unix_micros())
    .fetch_one(conn)
    .await
    .map_err(db)?;
    let counts = counted_for
        .unwrap_or_default()
        .into_iter()
        .zip(counted_types.unwrap_or_default())
        .zip(counted.unwrap_or_default())
        .map(|((customer, kind), n)| (customer, kind, n))
        .collect();
    let runs = firsts
        .unwrap_or_default()
        .into_iter()
        .zip(lasts.unwrap_or_default())
        .collect();
    Ok(Inserted {
        count: u64::try_from(count).unwrap_or(0),
        counts,
        runs,
        ids: ids.or_else(|| (count < columns.ids.len() as i64).then(Vec::new)),
    })
}

fn from_row(customer: &CustomerId, row: &PgRow) -> StoreResult<(i64, Activity)> {
    let order = row.get::<Option<&str>, _>("order_data").map(decode_order).transpose()?;
    let activity = Activity {
        id: stored(ActivityId::parse("id", row.get("id")))?,
        customer: customer.clone(),
        kind: stored(ActivityType::parse("type", row.get("type")))?,
        at: Timestamp::from_unix_micros(row.get("at")),
        attributes: decode_attributes(row.get("attributes"))?,
        order,
    };
    Ok((row.get("seq"), activity))
}

/// A batch being recorded: one transaction, written part by part.
struct PostgresRecording {
    tx: Transaction<'static, Postgres>,
    now: Timestamp,
    reacting: Reacting,
    /// Activities recorded per customer (seq) and type: the customers are queued for
    /// building and the counts added at the commit.
    counts: HashMap<(i64, String), i64>,
    /// Runs of consecutive seqs recorded, for automation's inbox.
    runs: Vec<(i64, i64)>,
    recorded: u64,
    retried: Vec<usize>,
}

#[async_trait]
impl ActivityRecording for PostgresRecording {
    async fn write(&mut self, activities: &[Activity], first: usize) -> StoreResult<()> {
        // Within a part the first activity of an id wins; later parts meet the ones
        // before as stored ids.
        let mut seen = HashSet::with_capacity(activities.len());
        let unique: Vec<&Activity> = activities.iter().filter(|a| seen.insert(a.id.as_str())).collect();
        let mut chunks = unique.chunks(ROWS_PER_STATEMENT);
        let Some(head) = chunks.next() else {
            return Ok(());
        };
        let named: Vec<&CustomerId> = activities.iter().map(|a| &a.customer).collect();
        // `biased` polls the statement first, which sends it; the server runs it while
        // this task encodes the next chunk.
        let (seqs, mut columns) =
            tokio::join!(biased; lock_customers(&mut self.tx, &named, first), async { Columns::encode(head) });
        let seqs = seqs?;
        let (recorded_before, mut skipped_ids) = (self.recorded, HashSet::new());
        loop {
            let next = chunks.next();
            let (inserted, encoded) = tokio::join!(biased; insert(&mut self.tx, &columns, &seqs, self.now), async { next.map(Columns::encode) });
            let inserted = inserted?;
            self.recorded += inserted.count;
            for (customer, kind, n) in inserted.counts {
                *self.counts.entry((customer, kind)).or_default() += n;
            }
            for (first, last) in inserted.runs {
                match self.runs.last_mut() {
                    Some(run) if run.1 + 1 == first => run.1 = last,
                    _ => self.runs.push((first, last)),
                }
            }
            if let Some(ids) = inserted.ids {
                let rows = columns.ids.iter().enumerate().map(|(i, id)| (i, *id));
                skipped_ids.extend(skipped(rows, ids).into_iter().map(|i| columns.ids[i]));
            }
            match encoded {
                Some(encoded) => columns = encoded,
                None => break,
            }
        }
        if self.recorded - recorded_before < activities.len() as u64 {
            // Repeats of an id within the part, and ids the inserts skipped.
            let mut seen = HashSet::with_capacity(activities.len());
            self.retried.extend(
                activities
                    .iter()
                    .enumerate()
                    .filter(|(_, a)| !seen.insert(a.id.as_str()) || skipped_ids.contains(a.id.as_str()))
                    .map(|(i, _)| first + i),
            );
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> StoreResult<RecordSummary> {
        // In seq order, so concurrent batches lock queue and count rows in the same order.
        let mut counts: Vec<((i64, String), i64)> = self.counts.drain().collect();
        counts.sort_unstable();
        let mut queued: Vec<i64> = counts.iter().map(|((customer, _), _)| *customer).collect();
        queued.dedup();
        for chunk in queued.chunks(QUEUED_PER_STATEMENT) {
            sqlx::query(
                "INSERT INTO segment_build_queue (customer_seq, queued_at)
                 SELECT s, $2 FROM UNNEST($1::bigint[]) AS s ORDER BY s
                 ON CONFLICT (customer_seq) DO UPDATE SET version = segment_build_queue.version + 1",
            )
            .bind(chunk)
            .bind(self.now.unix_micros())
            .execute(&mut *self.tx)
            .await
            .map_err(db)?;
        }
        for chunk in counts.chunks(QUEUED_PER_STATEMENT) {
            sqlx::query(
                "INSERT INTO activity_counts (customer_seq, type, count)
                 SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bigint[]) ORDER BY 1, 2
                 ON CONFLICT (customer_seq, type) DO UPDATE SET count = activity_counts.count + excluded.count",
            )
            .bind(chunk.iter().map(|((customer, _), _)| *customer).collect::<Vec<_>>())
            .bind(chunk.iter().map(|((_, kind), _)| kind.as_str()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|(_, n)| *n).collect::<Vec<_>>())
            .execute(&mut *self.tx)
            .await
            .map_err(db)?;
        }
        if !self.runs.is_empty() {
            sqlx::query(
                "INSERT INTO automation_inbox (first_activity, last_activity, reacts)
                 SELECT first, last, $3 FROM UNNEST($1::bigint[], $2::bigint[]) AS r (first, last)",
            )
            .bind(self.runs.iter().map(|r| r.0).collect::<Vec<_>>())
            .bind(self.runs.iter().map(|r| r.1).collect::<Vec<_>>())
            .bind(self.reacting == Reacting::Reacts)
            .execute(&mut *self.tx)
            .await
            .map_err(db)?;
        }
        self.tx.commit().await.map_err(db)?;
        Ok(RecordSummary {
            recorded: self.recorded,
            retried: self.retried,
        })
    }
}

#[async_trait]
impl ActivityStore for PostgresStore {
    async fn begin_recording(&self, now: Timestamp, reacting: Reacting) -> StoreResult<Box<dyn ActivityRecording>> {
        let tx = self.pool.begin().await.map_err(db)?;
        Ok(Box::new(PostgresRecording {
            tx,
            now,
            reacting,
            counts: HashMap::new(),
            runs: Vec::new(),
            recorded: 0,
            retried: Vec::new(),
        }))
    }

    async fn list_activities(
        &self,
        customer: &CustomerId,
        filter: &ActivityFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Activity>> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let seq = customer_seq(&mut conn, customer).await?;
        let rows = sqlx::query(
            "SELECT seq, id, type, at, attributes::text AS attributes, order_data FROM activities
             WHERE customer_seq = $1 AND seq > $2 AND ($3::text IS NULL OR type = $3)
               AND ($4::bigint IS NULL OR at >= $4) AND ($5::bigint IS NULL OR at < $5)
             ORDER BY seq LIMIT $6",
        )
        .bind(seq)
        .bind(page.after.unwrap_or(0))
        .bind(filter.kind.as_ref().map(ActivityType::as_str))
        .bind(filter.since.map(Timestamp::unix_micros))
        .bind(filter.until.map(Timestamp::unix_micros))
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
        let rows = rows
            .iter()
            .map(|r| from_row(customer, r))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_rows(rows, page.limit))
    }

    async fn queued_for_building(&self, limit: u32) -> StoreResult<Vec<Queued>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT c.id, q.version FROM segment_build_queue q JOIN customers c ON c.seq = q.customer_seq
             ORDER BY q.queued_at, q.customer_seq LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|(id, version)| {
                Ok(Queued {
                    customer: stored(CustomerId::parse("id", id))?,
                    version: *version,
                })
            })
            .collect()
    }

    async fn built(&self, done: &[Queued]) -> StoreResult<()> {
        sqlx::query(
            "DELETE FROM segment_build_queue q USING customers c, UNNEST($1::text[], $2::bigint[]) AS d (id, version)
             WHERE c.id = d.id AND q.customer_seq = c.seq AND q.version = d.version",
        )
        .bind(done.iter().map(|q| q.customer.as_str()).collect::<Vec<_>>())
        .bind(done.iter().map(|q| q.version).collect::<Vec<_>>())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }
}
