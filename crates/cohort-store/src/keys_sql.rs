//! The SQL implementation of `KeyStore`, one text for both backends: API keys as their
//! hashes only, never their secrets.

/// `KeyStore` in SQL. Expanded in each backend crate:
///
/// ```text
/// cohort_store::sql_key_store!(SqliteStore, row: SqliteRow, read: read, write: write,
///     db: crate::error::db, unique: crate::error::unique);
/// ```
#[macro_export]
macro_rules! sql_key_store {
    ($store:ty, row: $row:ty, read: $read:ident, write: $write:ident, db: $db:path, unique: $unique:path) => {
        mod sql_keys {
            use async_trait::async_trait;
            use cohort_core::{ApiKey, Name, Timestamp};
            use $crate::codec::{decode_scopes, encode_scopes, stored};
            use $crate::{KeyStore, StoreError, StoreResult};
            use sqlx::Row as _;

            use super::*;

            const COLUMNS: &str = "id, name, scopes, secret_hash, created_at, revoked_at";

            fn from_row(row: &$row) -> StoreResult<ApiKey> {
                Ok(ApiKey {
                    id: row.get("id"),
                    name: stored(Name::parse("name", row.get("name")))?,
                    scopes: decode_scopes(row.get("scopes"))?,
                    secret_hash: row.get("secret_hash"),
                    created_at: Timestamp::from_unix_micros(row.get("created_at")),
                    revoked_at: row.get::<Option<i64>, _>("revoked_at").map(Timestamp::from_unix_micros),
                })
            }

            #[async_trait]
            impl KeyStore for $store {
                async fn create_api_key(&self, key: &ApiKey) -> StoreResult<()> {
                    sqlx::query(
                        "INSERT INTO api_keys (id, name, scopes, secret_hash, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(&key.id)
                    .bind(key.name.as_str())
                    .bind(encode_scopes(&key.scopes))
                    .bind(&key.secret_hash)
                    .bind(key.created_at.unix_micros())
                    .bind(key.revoked_at.map(Timestamp::unix_micros))
                    .execute(&self.$write)
                    .await
                    .map_err($unique("id", || format!("api key {} already exists", key.id)))?;
                    Ok(())
                }

                async fn api_key(&self, id: &str) -> StoreResult<Option<ApiKey>> {
                    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM api_keys WHERE id = $1")))
                        .bind(id)
                        .fetch_optional(&self.$read)
                        .await
                        .map_err($db)?;
                    row.as_ref().map(from_row).transpose()
                }

                async fn list_api_keys(&self) -> StoreResult<Vec<ApiKey>> {
                    let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM api_keys ORDER BY created_at, id")))
                        .fetch_all(&self.$read)
                        .await
                        .map_err($db)?;
                    rows.iter().map(from_row).collect()
                }

                async fn revoke_api_key(&self, id: &str, now: Timestamp) -> StoreResult<()> {
                    let done = sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1")
                        .bind(id)
                        .bind(now.unix_micros())
                        .execute(&self.$write)
                        .await
                        .map_err($db)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::not_found("api key", id));
                    }
                    Ok(())
                }
            }
        }
    };
}
