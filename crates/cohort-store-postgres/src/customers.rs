//! Customers on PostgreSQL.

use async_trait::async_trait;
use cohort_core::{
    Customer, CustomerId, CustomerPatch, Membership, NewCustomer, Page, PageRequest, SegmentChange, SegmentId,
    Timestamp,
};
use cohort_store::codec::{decode_attributes, encode_attributes, stored};
use cohort_store::{CustomerFilter, CustomerImport, CustomerStore, Deletion, StoreError, StoreResult};
use sqlx::PgConnection;
use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::error::{db, unique};
use crate::{PostgresStore, import, memberships};

/// `SELECT … FROM customers c` followed by the rest of a query; attributes come back
/// as JSON text for the shared codec.
macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT c.seq, c.id, c.attributes::text AS attributes, c.active, c.profiling_consent, c.created_at, c.updated_at FROM customers c ",
            $rest
        )
    };
}

fn from_row(row: &PgRow) -> StoreResult<(i64, Customer)> {
    let customer = Customer {
        id: stored(CustomerId::parse("id", row.get("id")))?,
        attributes: decode_attributes(row.get("attributes"))?,
        active: row.get("active"),
        profiling_consent: row.get("profiling_consent"),
        created_at: Timestamp::from_unix_micros(row.get("created_at")),
        updated_at: Timestamp::from_unix_micros(row.get("updated_at")),
    };
    Ok((row.get("seq"), customer))
}

#[async_trait]
impl CustomerStore for PostgresStore {
    async fn create_customer(&self, customer: &NewCustomer, now: Timestamp) -> StoreResult<Customer> {
        sqlx::query(
            "INSERT INTO customers (id, attributes, active, profiling_consent, created_at, updated_at)
             VALUES ($1, $2::jsonb, $3, $4, $5, $5)",
        )
        .bind(customer.id.as_str())
        .bind(encode_attributes(&customer.attributes))
        .bind(customer.active)
        .bind(customer.profiling_consent)
        .bind(now.unix_micros())
        .execute(&self.pool)
        .await
        .map_err(unique("id", || format!("customer {} already exists", customer.id)))?;
        Ok(customer.clone().into_customer(now))
    }

    async fn customer(&self, id: &CustomerId) -> StoreResult<Option<Customer>> {
        let row = sqlx::query(select!("WHERE c.id = $1"))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.map(|r| from_row(&r).map(|(_, c)| c)).transpose()
    }

    async fn update_customer(&self, id: &CustomerId, patch: &CustomerPatch, now: Timestamp) -> StoreResult<Customer> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let customer = self::patch(&mut tx, id, patch, now).await?;
        tx.commit().await.map_err(db)?;
        Ok(customer)
    }

    async fn delete_customer(&self, id: &CustomerId, now: Timestamp) -> StoreResult<()> {
        // The triggers and cascades of the delete (memberships, activities, the
        // membership log) run in this transaction too.
        let mut tx = self.pool.begin().await.map_err(db)?;
        let done = sqlx::query("DELETE FROM customers WHERE id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("customer", id));
        }
        sqlx::query("INSERT INTO deletions (customer_id, deleted_at) VALUES ($1, $2)")
            .bind(id.as_str())
            .bind(now.unix_micros())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn deletions(&self, since: Timestamp, page: PageRequest) -> StoreResult<Page<Deletion>> {
        let rows: Vec<(i64, String, i64)> = sqlx::query_as(
            "SELECT seq, customer_id, deleted_at FROM deletions WHERE deleted_at >= $1 AND seq > $2
             ORDER BY seq LIMIT $3",
        )
        .bind(since.unix_micros())
        .bind(page.after.unwrap_or(0))
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let rows = rows
            .into_iter()
            .map(|(seq, id, at)| {
                let customer = stored(CustomerId::parse("customer", &id))?;
                Ok((
                    seq,
                    Deletion {
                        customer,
                        deleted_at: Timestamp::from_unix_micros(at),
                    },
                ))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_rows(rows, page.limit))
    }

    async fn list_customers(
        &self,
        filter: &CustomerFilter,
        page: PageRequest,
        now: Timestamp,
    ) -> StoreResult<Page<Customer>> {
        let rows = sqlx::query(select!(
            "WHERE c.seq > $1 AND ($2::boolean IS NULL OR c.active = $2)
               AND ($3::bigint IS NULL OR EXISTS (SELECT 1 FROM memberships m WHERE m.customer_seq = c.seq AND m.segment_id = $3
                                                  AND (m.expires_at IS NULL OR m.expires_at > $4)))
             ORDER BY c.seq LIMIT $5"
        ))
        .bind(page.after.unwrap_or(0))
        .bind(filter.active)
        .bind(filter.segment.map(SegmentId::get))
        .bind(now.unix_micros())
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let rows = rows.iter().map(from_row).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_rows(rows, page.limit))
    }

    async fn import_customers(&self) -> StoreResult<Box<dyn CustomerImport>> {
        Ok(Box::new(import::PostgresImport::begin(&self.pool).await?))
    }

    async fn change_segments(
        &self,
        customer: &CustomerId,
        change: &SegmentChange,
        now: Timestamp,
    ) -> StoreResult<Vec<Membership>> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let live = memberships::change(&mut tx, customer, change, now).await?;
        tx.commit().await.map_err(db)?;
        Ok(live)
    }

    async fn customer_segments(&self, customer: &CustomerId, now: Timestamp) -> StoreResult<Vec<Membership>> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let seq = memberships::customer_seq(&mut conn, customer).await?;
        memberships::live(&mut conn, customer, seq, now).await
    }
}

/// Applies a patch to a stored customer on the caller's connection (in its transaction).
pub(crate) async fn patch(
    conn: &mut PgConnection,
    id: &CustomerId,
    patch: &CustomerPatch,
    now: Timestamp,
) -> StoreResult<Customer> {
    let row = sqlx::query(select!("WHERE c.id = $1 FOR UPDATE"))
        .bind(id.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?
        .ok_or_else(|| StoreError::not_found("customer", id))?;
    let (seq, mut customer) = from_row(&row)?;
    patch.apply(&mut customer, now)?;
    sqlx::query("UPDATE customers SET attributes = $2::jsonb, active = $3, profiling_consent = $4, updated_at = $5 WHERE seq = $1")
            .bind(seq)
            .bind(encode_attributes(&customer.attributes))
            .bind(customer.active)
            .bind(customer.profiling_consent)
            .bind(now.unix_micros())
            .execute(&mut *conn)
            .await
            .map_err(db)?;
    Ok(customer)
}
