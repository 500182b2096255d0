//! The SQL implementation of `CustomerStore`, one text for both backends.

/// `CustomerStore` in SQL, but for how a write transaction starts, how attributes go in
/// and come out (`json_in`: `""` or `"::jsonb"`; `json_out`: `""` or `"::text"`), the
/// row lock PostgreSQL takes when a customer is patched, how an import begins and the
/// connection type. Also defines `patch`, which applies a patch in the caller's
/// transaction. Expanded in each backend crate, beside its `import` and `memberships`
/// modules:
///
/// ```text
/// cohort_store::sql_customer_store!(SqliteStore, row: SqliteRow, connection: SqliteConnection,
///     read: read, write: write, begin: begin_with("BEGIN IMMEDIATE"), db: crate::error::db,
///     unique: crate::error::unique, json_in: "", json_out: "", lock: "",
///     import: import::SqliteImport::begin);
/// ```
#[macro_export]
macro_rules! sql_customer_store {
    ($store:ty, row: $row:ty, connection: $conn:ty, read: $read:ident, write: $write:ident,
     begin: $begin:ident($($arg:expr),*), db: $db:path, unique: $unique:path, json_in: $json_in:literal,
     json_out: $json_out:literal, lock: $lock:literal, import: $import:path) => {
        pub(crate) use sql_customers::patch;

        mod sql_customers {
            use async_trait::async_trait;
            use cohort_core::{
                Customer, CustomerId, CustomerPatch, Membership, NewCustomer, Page, PageRequest, SegmentChange,
                SegmentId, Timestamp,
            };
            use $crate::codec::{decode_attributes, encode_attributes, stored};
            use $crate::{CustomerFilter, CustomerImport, CustomerStore, Deletion, StoreError, StoreResult};
            use sqlx::Row as _;

            use super::*;

            fn from_row(row: &$row) -> StoreResult<(i64, Customer)> {
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
            impl CustomerStore for $store {
                async fn create_customer(&self, customer: &NewCustomer, now: Timestamp) -> StoreResult<Customer> {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "INSERT INTO customers (id, attributes, active, profiling_consent, created_at, updated_at)
                         VALUES ($1, $2{}, $3, $4, $5, $5)",
                        $json_in
                    )))
                    .bind(customer.id.as_str())
                    .bind(encode_attributes(&customer.attributes))
                    .bind(customer.active)
                    .bind(customer.profiling_consent)
                    .bind(now.unix_micros())
                    .execute(&self.$write)
                    .await
                    .map_err($unique("id", || format!("customer {} already exists", customer.id)))?;
                    Ok(customer.clone().into_customer(now))
                }

                async fn customer(&self, id: &CustomerId) -> StoreResult<Option<Customer>> {
                    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT c.seq, c.id, c.attributes{json_out} AS attributes, c.active, c.profiling_consent, c.created_at, c.updated_at FROM customers c WHERE c.id = $1{lock}", json_out = $json_out, lock = "")))
                        .bind(id.as_str())
                        .fetch_optional(&self.$read)
                        .await
                        .map_err($db)?;
                    row.map(|r| from_row(&r).map(|(_, c)| c)).transpose()
                }

                async fn update_customer(&self, id: &CustomerId, patch: &CustomerPatch, now: Timestamp) -> StoreResult<Customer> {
                    let mut tx = self.$write.$begin($($arg),*).await.map_err($db)?;
                    let customer = self::patch(&mut tx, id, patch, now).await?;
                    tx.commit().await.map_err($db)?;
                    Ok(customer)
                }

                async fn delete_customer(&self, id: &CustomerId, now: Timestamp) -> StoreResult<()> {
                    let mut tx = self.$write.$begin($($arg),*).await.map_err($db)?;
                    // The customer row first: it waits for writers holding it (a batch
                    // recording activities for it), so the activities deleted next are
                    // all it will ever have (they keep its key without a foreign key).
                    let seq: Option<i64> = sqlx::query_scalar("DELETE FROM customers WHERE id = $1 RETURNING seq")
                        .bind(id.as_str())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err($db)?;
                    let Some(seq) = seq else {
                        return Err(StoreError::not_found("customer", id));
                    };
                    for table in ["activities", "activity_counts"] {
                        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE customer_seq = $1")))
                            .bind(seq)
                            .execute(&mut *tx)
                            .await
                            .map_err($db)?;
                    }
                    sqlx::query("INSERT INTO deletions (customer_id, deleted_at) VALUES ($1, $2)")
                        .bind(id.as_str())
                        .bind(now.unix_micros())
                        .execute(&mut *tx)
                        .await
                        .map_err($db)?;
                    tx.commit().await.map_err($db)
                }

                async fn deletions(&self, since: Timestamp, page: PageRequest) -> StoreResult<Page<Deletion>> {
                    let rows: Vec<(i64, String, i64)> = sqlx::query_as(
                        "SELECT seq, customer_id, deleted_at FROM deletions WHERE deleted_at >= $1 AND seq > $2
                         ORDER BY seq LIMIT $3",
                    )
                    .bind(since.unix_micros())
                    .bind(page.after.unwrap_or(0))
                    .bind(i64::from(page.limit) + 1)
                    .fetch_all(&self.$read)
                    .await
                    .map_err($db)?;
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
                    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT c.seq, c.id, c.attributes{} AS attributes, c.active, c.profiling_consent, c.created_at, c.updated_at
                         FROM customers c
                         WHERE c.seq > $1 AND (CAST($2 AS BOOLEAN) IS NULL OR c.active = $2)
                           AND (CAST($3 AS BIGINT) IS NULL
                                OR EXISTS (SELECT 1 FROM memberships m WHERE m.customer_seq = c.seq AND m.segment_id = $3
                                           AND (m.expires_at IS NULL OR m.expires_at > $4)))
                         ORDER BY c.seq LIMIT $5",
                        $json_out
                    )))
                    .bind(page.after.unwrap_or(0))
                    .bind(filter.active)
                    .bind(filter.segment.map(SegmentId::get))
                    .bind(now.unix_micros())
                    .bind(i64::from(page.limit) + 1)
                    .fetch_all(&self.$read)
                    .await
                    .map_err($db)?;
                    let rows = rows.iter().map(from_row).collect::<StoreResult<Vec<_>>>()?;
                    Ok(Page::from_rows(rows, page.limit))
                }

                async fn import_customers(&self) -> StoreResult<Box<dyn CustomerImport>> {
                    Ok(Box::new($import(&self.$write).await?))
                }

                async fn change_segments(
                    &self,
                    customer: &CustomerId,
                    change: &SegmentChange,
                    now: Timestamp,
                ) -> StoreResult<Vec<Membership>> {
                    let mut tx = self.$write.$begin($($arg),*).await.map_err($db)?;
                    let live = memberships::change(&mut tx, customer, change, now).await?;
                    tx.commit().await.map_err($db)?;
                    Ok(live)
                }

                async fn customer_segments(&self, customer: &CustomerId, now: Timestamp) -> StoreResult<Vec<Membership>> {
                    let mut conn = self.$read.acquire().await.map_err($db)?;
                    let seq = memberships::customer_seq(&mut conn, customer).await?;
                    memberships::live(&mut conn, customer, seq, now).await
                }
            }

            /// Applies a patch to a stored customer on the caller's connection (in its transaction).
            pub(crate) async fn patch(
                conn: &mut $conn,
                id: &CustomerId,
                patch: &CustomerPatch,
                now: Timestamp,
            ) -> StoreResult<Customer> {
                let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT c.seq, c.id, c.attributes{json_out} AS attributes, c.active, c.profiling_consent, c.created_at, c.updated_at FROM customers c WHERE c.id = $1{lock}", json_out = $json_out, lock = $lock)))
                    .bind(id.as_str())
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err($db)?
                    .ok_or_else(|| StoreError::not_found("customer", id))?;
                let (seq, mut customer) = from_row(&row)?;
                patch.apply(&mut customer, now)?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE customers SET attributes = $2{}, active = $3, profiling_consent = $4, updated_at = $5 WHERE seq = $1",
                    $json_in
                )))
                .bind(seq)
                .bind(encode_attributes(&customer.attributes))
                .bind(customer.active)
                .bind(customer.profiling_consent)
                .bind(now.unix_micros())
                .execute(&mut *conn)
                .await
                .map_err($db)?;
                Ok(customer)
            }
        }
    };
}
