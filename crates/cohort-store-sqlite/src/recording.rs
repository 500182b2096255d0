//! Recording a batch of activities on SQLite, part by part in one write transaction.
//!
//! The write connection is the one SQLite writer, so its time is what bounds
//! ingestion. Everything else is kept off it: the caller parses the next part while
//! this one is written, each part is encoded to bind values on the caller's thread,
//! and the customer keys of a part are looked up on a read connection while the
//! previous part is inserted. The lookup is exact: the open write transaction keeps
//! every other writer out, so the read sees the state the insert will see. The commit
//! queues the batch's customers for building, adds its activities to their counts and
//! puts its range of seqs in automation's inbox.

use std::collections::HashMap;

use async_trait::async_trait;
use cohort_core::{Activity, Timestamp};
use cohort_store::codec::{amount_e4, encode_attributes, encode_order};
use cohort_store::{ActivityRecording, Reacting, RecordSummary, StoreError, StoreResult, skipped};
use sqlx::{QueryBuilder, Sqlite, SqlitePool, Transaction};

use crate::SqliteStore;
use crate::error::db;
use crate::memberships::customer_seqs;

/// Rows per INSERT: 8 bound values each.
const ROWS_PER_STATEMENT: usize = 1_000;

/// An activity encoded as its row, waiting for its insert.
struct Row {
    /// Its position in the batch.
    line: usize,
    id: String,
    customer_seq: i64,
    kind: String,
    at: i64,
    attributes: String,
    order: Option<String>,
    amount: Option<i64>,
}

pub(crate) struct SqliteRecording {
    tx: Transaction<'static, Sqlite>,
    /// Where customer keys are looked up; `None` when only the transaction can read.
    lookups: Option<SqlitePool>,
    /// Largest activity seq before this batch: its rows come after.
    before: i64,
    now: Timestamp,
    reacting: Reacting,
    /// The previous part, inserted while the next one is looked up.
    pending: Vec<Row>,
    recorded: u64,
    retried: Vec<usize>,
}

impl SqliteRecording {
    pub(crate) async fn begin(store: &SqliteStore, now: Timestamp, reacting: Reacting) -> StoreResult<Self> {
        let mut tx = store.write.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        let before: i64 = sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM activities")
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        Ok(Self {
            tx,
            lookups: (!store.in_memory).then(|| store.read.clone()),
            before,
            now,
            reacting,
            pending: Vec::new(),
            recorded: 0,
            retried: Vec::new(),
        })
    }

    async fn insert_pending(&mut self) -> StoreResult<()> {
        let rows = std::mem::take(&mut self.pending);
        let (recorded, retried) = insert(&mut self.tx, &rows, self.now).await?;
        self.recorded += recorded;
        self.retried.extend(retried);
        Ok(())
    }
}

#[async_trait]
impl ActivityRecording for SqliteRecording {
    async fn write(&mut self, activities: &[Activity], first: usize) -> StoreResult<()> {
        let ids = activities.iter().map(|a| a.customer.as_str());
        self.pending = match &self.lookups {
            Some(pool) => {
                let mut conn = pool.acquire().await.map_err(db)?;
                let pending = std::mem::take(&mut self.pending);
                let prepare = async {
                    let seqs = customer_seqs(&mut conn, ids).await?;
                    encode(activities, &seqs, first)
                };
                let (rows, inserted) = tokio::join!(prepare, insert(&mut self.tx, &pending, self.now));
                let (recorded, retried) = inserted?;
                self.recorded += recorded;
                self.retried.extend(retried);
                rows?
            }
            None => {
                self.insert_pending().await?;
                let seqs = customer_seqs(&mut self.tx, ids).await?;
                encode(activities, &seqs, first)?
            }
        };
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> StoreResult<RecordSummary> {
        self.insert_pending().await?;
        // Only customers with a newly recorded activity are queued for building.
        sqlx::query(
            "INSERT INTO segment_build_queue (customer_seq, queued_at)
             SELECT DISTINCT customer_seq, $2 FROM activities WHERE seq > $1
             ON CONFLICT (customer_seq) DO UPDATE SET version = segment_build_queue.version + 1",
        )
        .bind(self.before)
        .bind(self.now.unix_micros())
        .execute(&mut *self.tx)
        .await
        .map_err(db)?;
        sqlx::query(
            "INSERT INTO activity_counts (customer_seq, type, count)
             SELECT customer_seq, type, count(*) FROM activities WHERE seq > $1 GROUP BY customer_seq, type
             ON CONFLICT (customer_seq, type) DO UPDATE SET count = activity_counts.count + excluded.count",
        )
        .bind(self.before)
        .execute(&mut *self.tx)
        .await
        .map_err(db)?;
        // The batch's seqs follow each other: the one writer recorded nothing between.
        sqlx::query(
            "INSERT INTO automation_inbox (first_activity, last_activity, reacts)
             SELECT first, last, $2 FROM (SELECT min(seq) AS first, max(seq) AS last FROM activities WHERE seq > $1)
             WHERE first IS NOT NULL",
        )
        .bind(self.before)
        .bind(self.reacting == Reacting::Reacts)
        .execute(&mut *self.tx)
        .await
        .map_err(db)?;
        self.tx.commit().await.map_err(db)?;
        Ok(RecordSummary {
            recorded: self.recorded,
            retried: self.retried,
        })
    }
}

/// The rows of a part, or the error naming its first unknown customer.
fn encode(activities: &[Activity], seqs: &HashMap<String, i64>, first: usize) -> StoreResult<Vec<Row>> {
    activities
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let customer_seq = *seqs.get(a.customer.as_str()).ok_or_else(|| {
                StoreError::dangling(
                    &format!("lines[{}].customer", first + i),
                    format!("customer {} does not exist", a.customer),
                )
            })?;
            Ok(Row {
                line: first + i,
                id: a.id.as_str().to_owned(),
                customer_seq,
                kind: a.kind.as_str().to_owned(),
                at: a.at.unix_micros(),
                attributes: encode_attributes(&a.attributes),
                order: a.order.as_ref().map(encode_order),
                amount: a.order.as_ref().and_then(amount_e4),
            })
        })
        .collect()
}

/// Inserts rows, skipping ids already stored (a retry: the unique index skips it, which
/// costs less than looking it up first); returns how many it recorded and the lines of
/// the rows it skipped.
///
/// Nothing may abort a statement half-way, or SQLite keeps a statement journal that
/// copies every page the insert touches (half the time of a batch): `OR IGNORE` rather
/// than `ON CONFLICT (id) DO NOTHING` (the id is the only constraint a row can break;
/// columns that must not be NULL are always bound), and the activity keeps its
/// customer's key without a foreign key (migration 0014): every customer was looked up
/// under the write lock, and deleting a customer deletes its activities.
async fn insert(tx: &mut Transaction<'static, Sqlite>, rows: &[Row], now: Timestamp) -> StoreResult<(u64, Vec<usize>)> {
    let (mut recorded, mut retried) = (0, Vec::new());
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT OR IGNORE INTO activities (id, customer_seq, type, at, attributes, order_data, amount_e4, recorded_at) ",
        );
        insert.push_values(chunk, |mut row, r| {
            row.push_bind(r.id.as_str())
                .push_bind(r.customer_seq)
                .push_bind(r.kind.as_str())
                .push_bind(r.at)
                .push_bind(r.attributes.as_str())
                .push_bind(r.order.as_deref())
                .push_bind(r.amount)
                .push_bind(now.unix_micros());
        });
        let inserted = insert.build().execute(&mut **tx).await.map_err(db)?.rows_affected();
        recorded += inserted;
        if inserted < chunk.len() as u64 {
            // Seqs only grow (AUTOINCREMENT) and this is the only writer: the rows just
            // inserted are the last ones.
            let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM activities ORDER BY seq DESC LIMIT $1")
                .bind(i64::try_from(inserted).unwrap_or(i64::MAX))
                .fetch_all(&mut **tx)
                .await
                .map_err(db)?;
            retried.extend(skipped(chunk.iter().map(|r| (r.line, r.id.as_str())), ids));
        }
    }
    Ok((recorded, retried))
}
