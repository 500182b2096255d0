//! Bulk customer upserts on SQLite, inside one transaction.
//!
//! Each batch is split into new and known customers: new ones are inserted with
//! multi-row INSERTs, known ones updated with one `UPDATE … FROM (VALUES …)`, so a
//! line that leaves a field out keeps the stored value.

use std::collections::HashSet;

use async_trait::async_trait;
use cohort_core::Timestamp;
use cohort_core::customer::CustomerUpsert;
use cohort_store::codec::encode_attributes;
use cohort_store::{CustomerImport, ImportSummary, StoreResult};
use sqlx::{QueryBuilder, Sqlite, SqlitePool, Transaction};

use crate::error::db;

/// Rows per statement: 6 bound values each stays far below SQLite's 32,766.
const ROWS_PER_STATEMENT: usize = 1_000;

pub(crate) struct SqliteImport {
    tx: Transaction<'static, Sqlite>,
    written: u64,
}

impl SqliteImport {
    pub(crate) async fn begin(pool: &SqlitePool) -> StoreResult<Self> {
        let tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        Ok(Self { tx, written: 0 })
    }
}

#[async_trait]
impl CustomerImport for SqliteImport {
    async fn write(&mut self, batch: &[CustomerUpsert], now: Timestamp) -> StoreResult<()> {
        // Lines of one id fold into one: later given fields win (`fold_upserts`).
        let folded = cohort_core::customer::fold_upserts(batch);
        let lines: Vec<&CustomerUpsert> = folded.iter().collect();
        for chunk in lines.chunks(ROWS_PER_STATEMENT) {
            let mut known = QueryBuilder::<Sqlite>::new("SELECT id FROM customers WHERE id IN (");
            let mut ids = known.separated(", ");
            for line in chunk {
                ids.push_bind(line.id.as_str().to_owned());
            }
            known.push(")");
            let known: HashSet<String> = known
                .build_query_scalar()
                .fetch_all(&mut *self.tx)
                .await
                .map_err(db)?
                .into_iter()
                .collect();
            let (updates, inserts): (Vec<&CustomerUpsert>, Vec<&CustomerUpsert>) =
                chunk.iter().partition(|l| known.contains(l.id.as_str()));

            if !inserts.is_empty() {
                let mut insert = QueryBuilder::<Sqlite>::new(
                    "INSERT INTO customers (id, attributes, active, profiling_consent, created_at, updated_at) ",
                );
                insert.push_values(inserts, |mut row, line| {
                    row.push_bind(line.id.as_str().to_owned())
                        .push_bind(
                            line.attributes
                                .as_ref()
                                .map_or_else(|| "{}".to_owned(), encode_attributes),
                        )
                        .push_bind(line.active.unwrap_or(true))
                        .push_bind(line.profiling_consent.unwrap_or(false))
                        .push_bind(now.unix_micros())
                        .push_bind(now.unix_micros());
                });
                insert.build().execute(&mut *self.tx).await.map_err(db)?;
            }
            if !updates.is_empty() {
                let mut update = QueryBuilder::<Sqlite>::new(
                    "UPDATE customers SET attributes = COALESCE(v.column2, customers.attributes),
                         active = COALESCE(v.column3, customers.active),
                         profiling_consent = COALESCE(v.column4, customers.profiling_consent), updated_at = ",
                );
                update.push_bind(now.unix_micros()).push(" FROM (");
                update.push_values(updates, |mut row, line| {
                    row.push_bind(line.id.as_str().to_owned())
                        .push_bind(line.attributes.as_ref().map(encode_attributes))
                        .push_bind(line.active)
                        .push_bind(line.profiling_consent);
                });
                update.push(") AS v WHERE customers.id = v.column1");
                update.build().execute(&mut *self.tx).await.map_err(db)?;
            }
        }
        self.written += batch.len() as u64;
        Ok(())
    }

    async fn commit(self: Box<Self>) -> StoreResult<ImportSummary> {
        self.tx.commit().await.map_err(db)?;
        Ok(ImportSummary { written: self.written })
    }
}
