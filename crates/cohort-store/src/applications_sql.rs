//! The SQL implementation of `ApplicationStore`, one text for both backends.

/// `ApplicationStore` in SQL, but for how a write transaction starts, the row lock
/// PostgreSQL takes (`lock`: `" FOR UPDATE"` or `""`), the function that finds a text
/// in another (`position`: `instr` or `strpos`) and how a unique violation becomes a
/// conflict (`unique`). Expanded in each backend crate:
///
/// ```text
/// cohort_store::sql_application_store!(SqliteStore, row: SqliteRow, read: read, write: write,
///     begin: begin_with("BEGIN IMMEDIATE"), db: crate::error::db, unique: crate::error::unique,
///     lock: "", position: "instr");
/// ```
#[macro_export]
macro_rules! sql_application_store {
    ($store:ty, row: $row:ty, read: $read:ident, write: $write:ident, begin: $begin:ident($($arg:expr),*),
     db: $db:path, unique: $unique:path, lock: $lock:literal, position: $position:literal) => {
        mod sql_applications {
            use async_trait::async_trait;
            use cohort_core::{Application, ApplicationId, ApplicationPatch, Currency, Name, NameFilter, Page, PageRequest};
            use $crate::codec::{decode_origins, encode_origins, stored};
            use $crate::{ApplicationStore, StoreError, StoreResult};
            use sqlx::Row as _;

            use super::*;

            const COLUMNS: &str = "seq, id, name, default_currency, allowed_origins, enabled";

            fn from_row(row: &$row) -> StoreResult<(i64, Application)> {
                let application = Application {
                    id: stored(ApplicationId::parse("id", row.get("id")))?,
                    name: stored(Name::parse("name", row.get("name")))?,
                    default_currency: stored(Currency::parse("default_currency", row.get("default_currency")))?,
                    allowed_origins: decode_origins(row.get("allowed_origins"))?,
                    enabled: row.get("enabled"),
                };
                Ok((row.get("seq"), application))
            }

            #[async_trait]
            impl ApplicationStore for $store {
                async fn create_application(&self, app: &Application) -> StoreResult<()> {
                    let mut tx = self.$write.$begin($($arg),*).await.map_err($db)?;
                    let seq: i64 = sqlx::query_scalar(
                        "INSERT INTO applications (id, name, default_currency, allowed_origins, enabled)
                         VALUES ($1, $2, $3, $4, $5) RETURNING seq",
                    )
                    .bind(app.id.as_str())
                    .bind(app.name.as_str())
                    .bind(app.default_currency.code())
                    .bind(encode_origins(&app.allowed_origins))
                    .bind(app.enabled)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err($unique("id", || format!("application {} already exists", app.id)))?;
                    // A new application starts with the standard service active.
                    sqlx::query("INSERT INTO application_services (application_seq, service_id) VALUES ($1, $2)")
                        .bind(seq)
                        .bind(cohort_core::service::STANDARD)
                        .execute(&mut *tx)
                        .await
                        .map_err($db)?;
                    tx.commit().await.map_err($db)
                }

                async fn application(&self, id: &ApplicationId) -> StoreResult<Option<Application>> {
                    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM applications WHERE id = $1")))
                        .bind(id.as_str())
                        .fetch_optional(&self.$read)
                        .await
                        .map_err($db)?;
                    row.map(|r| from_row(&r).map(|(_, a)| a)).transpose()
                }

                async fn update_application(&self, id: &ApplicationId, patch: ApplicationPatch) -> StoreResult<Application> {
                    let mut tx = self.$write.$begin($($arg),*).await.map_err($db)?;
                    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM applications WHERE id = $1{}", $lock)))
                        .bind(id.as_str())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err($db)?
                        .ok_or_else(|| StoreError::not_found("application", id))?;
                    let (_, mut app) = from_row(&row)?;
                    app.apply(patch);
                    sqlx::query("UPDATE applications SET name = $2, default_currency = $3, allowed_origins = $4, enabled = $5 WHERE id = $1")
                        .bind(id.as_str())
                        .bind(app.name.as_str())
                        .bind(app.default_currency.code())
                        .bind(encode_origins(&app.allowed_origins))
                        .bind(app.enabled)
                        .execute(&mut *tx)
                        .await
                        .map_err($db)?;
                    tx.commit().await.map_err($db)?;
                    Ok(app)
                }

                async fn delete_application(&self, id: &ApplicationId) -> StoreResult<()> {
                    let mut tx = self.$write.$begin($($arg),*).await.map_err($db)?;
                    let done = sqlx::query("DELETE FROM applications WHERE id = $1")
                        .bind(id.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err($db)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::not_found("application", id));
                    }
                    // Its type priorities went with it: compiled catalogs must notice.
                    sqlx::query("UPDATE promotions_version SET version = version + 1")
                        .execute(&mut *tx)
                        .await
                        .map_err($db)?;
                    tx.commit().await.map_err($db)
                }

                async fn list_applications(&self, filter: &NameFilter, page: PageRequest) -> StoreResult<Page<Application>> {
                    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT {COLUMNS} FROM applications
                         WHERE seq > $1 AND (CAST($2 AS TEXT) IS NULL OR {position}(lower(name), $2) > 0 OR {position}(id, $2) > 0)
                         ORDER BY seq LIMIT $3",
                        position = $position
                    )))
                    .bind(page.after.unwrap_or(0))
                    .bind(filter.contains())
                    .bind(i64::from(page.limit) + 1)
                    .fetch_all(&self.$read)
                    .await
                    .map_err($db)?;
                    let rows = rows.iter().map(from_row).collect::<StoreResult<Vec<_>>>()?;
                    Ok(Page::from_rows(rows, page.limit))
                }
            }
        }
    };
}
