//! API keys on PostgreSQL (hashes only, never secrets).

use async_trait::async_trait;
use cohort_core::{ApiKey, Name, Timestamp};
use cohort_store::codec::{decode_scopes, encode_scopes, stored};
use cohort_store::{KeyStore, StoreError, StoreResult};
use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::PostgresStore;
use crate::error::{db, unique};

macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT id, name, scopes, secret_hash, created_at, revoked_at FROM api_keys ",
            $rest
        )
    };
}

fn from_row(row: &PgRow) -> StoreResult<ApiKey> {
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
impl KeyStore for PostgresStore {
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
        .execute(&self.pool)
        .await
        .map_err(unique("id", || format!("api key {} already exists", key.id)))?;
        Ok(())
    }

    async fn api_key(&self, id: &str) -> StoreResult<Option<ApiKey>> {
        let row = sqlx::query(select!("WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(from_row).transpose()
    }

    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKey>> {
        let rows = sqlx::query(select!("ORDER BY created_at, id"))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(from_row).collect()
    }

    async fn revoke_api_key(&self, id: &str, now: Timestamp) -> StoreResult<()> {
        let done = sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1")
            .bind(id)
            .bind(now.unix_micros())
            .execute(&self.pool)
            .await
            .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("api key", id));
        }
        Ok(())
    }
}
