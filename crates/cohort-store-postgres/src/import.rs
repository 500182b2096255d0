//! Bulk customer upserts on PostgreSQL, inside one transaction.
//!
//! Each chunk of a batch takes two statements, whatever its size: an
//! `UPDATE … FROM UNNEST(…)` of the known customers, which keeps a stored value where a
//! line leaves the field out and returns the ids it found, then an
//! `INSERT … SELECT FROM UNNEST(…)` of the rest, with defaults for missing fields.
//! Columns travel as arrays, so a statement costs one round trip and one plan.

use std::collections::HashSet;

use async_trait::async_trait;
use cohort_core::Timestamp;
use cohort_core::customer::CustomerUpsert;
use cohort_store::codec::encode_attributes;
use cohort_store::{CustomerImport, ImportSummary, StoreResult};
use sqlx::{PgPool, Postgres, Transaction};

use crate::error::{db, unique};

/// Lines per statement: large enough to amortise round trips, small enough to keep
/// each statement's arrays a few megabytes at most.
const ROWS_PER_STATEMENT: usize = 5_000;

pub(crate) struct PostgresImport {
    tx: Transaction<'static, Postgres>,
    written: u64,
}

impl PostgresImport {
    pub(crate) async fn begin(pool: &PgPool) -> StoreResult<Self> {
        let tx = pool.begin().await.map_err(db)?;
        Ok(Self { tx, written: 0 })
    }

    /// Updates the customers of `chunk` that exist and returns their ids.
    async fn update_known(&mut self, chunk: &[&CustomerUpsert], now: Timestamp) -> StoreResult<HashSet<String>> {
        let found: Vec<String> = sqlx::query_scalar(
            "UPDATE customers c SET attributes = COALESCE(v.attributes::jsonb, c.attributes),
                 active = COALESCE(v.active, c.active),
                 profiling_consent = COALESCE(v.profiling_consent, c.profiling_consent),
                 updated_at = $5
             FROM UNNEST($1::text[], $2::text[], $3::boolean[], $4::boolean[])
                 AS v (id, attributes, active, profiling_consent)
             WHERE c.id = v.id
             RETURNING c.id",
        )
        .bind(chunk.iter().map(|l| l.id.as_str()).collect::<Vec<_>>())
        .bind(
            chunk
                .iter()
                .map(|l| l.attributes.as_ref().map(encode_attributes))
                .collect::<Vec<_>>(),
        )
        .bind(chunk.iter().map(|l| l.active).collect::<Vec<_>>())
        .bind(chunk.iter().map(|l| l.profiling_consent).collect::<Vec<_>>())
        .bind(now.unix_micros())
        .fetch_all(&mut *self.tx)
        .await
        .map_err(db)?;
        Ok(found.into_iter().collect())
    }

    /// Inserts `new` customers, with defaults for the fields a line leaves out.
    async fn insert_new(&mut self, new: &[&CustomerUpsert], now: Timestamp) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO customers (id, attributes, active, profiling_consent, created_at, updated_at)
             SELECT v.id, v.attributes::jsonb, v.active, v.profiling_consent, $5, $5
             FROM UNNEST($1::text[], $2::text[], $3::boolean[], $4::boolean[])
                 AS v (id, attributes, active, profiling_consent)",
        )
        .bind(new.iter().map(|l| l.id.as_str()).collect::<Vec<_>>())
        .bind(
            new.iter()
                .map(|l| l.attributes.as_ref().map_or_else(|| "{}".to_owned(), encode_attributes))
                .collect::<Vec<_>>(),
        )
        .bind(new.iter().map(|l| l.active.unwrap_or(true)).collect::<Vec<_>>())
        .bind(
            new.iter()
                .map(|l| l.profiling_consent.unwrap_or(false))
                .collect::<Vec<_>>(),
        )
        .bind(now.unix_micros())
        .execute(&mut *self.tx)
        .await
        .map_err(unique("id", || {
            "another writer created one of the imported customers".to_owned()
        }))?;
        Ok(())
    }
}

#[async_trait]
impl CustomerImport for PostgresImport {
    async fn write(&mut self, batch: &[CustomerUpsert], now: Timestamp) -> StoreResult<()> {
        // Lines of one id fold into one: later given fields win (`fold_upserts`).
        let folded = cohort_core::customer::fold_upserts(batch);
        let lines: Vec<&CustomerUpsert> = folded.iter().collect();
        for chunk in lines.chunks(ROWS_PER_STATEMENT) {
            let known = self.update_known(chunk, now).await?;
            let new: Vec<&CustomerUpsert> = chunk
                .iter()
                .copied()
                .filter(|l| !known.contains(l.id.as_str()))
                .collect();
            if !new.is_empty() {
                self.insert_new(&new, now).await?;
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
