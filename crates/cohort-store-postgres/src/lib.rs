//! The PostgreSQL backend of the storage port, for deployments that share one database
//! between several cohort instances.
//!
//! One pool serves reads and writes. Read-modify-write methods run in a transaction
//! that locks the rows they change (`SELECT … FOR UPDATE`), so concurrent changes to
//! one entity queue up instead of overwriting each other.

mod activities;
mod applications;
mod automation;
mod builders;
mod customers;
mod error;
mod feed;
mod import;
mod keys;
mod memberships;
mod promotions;
mod segments;
mod services;
mod target_groups;
mod targeting;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use cohort_core::{CustomerId, ServiceId, Timestamp};
use cohort_store::{CustomerProfile, Store, StoreError, StoreResult};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use error::db;

/// Connections per process: enough for concurrent requests, small next to the
/// server's default `max_connections` of 100.
const MAX_CONNECTIONS: u32 = 16;

/// A store in one PostgreSQL database.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user@host:port/database`).
    pub async fn open(url: &str) -> StoreResult<Self> {
        let options =
            PgConnectOptions::from_str(url).map_err(|e| StoreError::Backend(format!("invalid postgres url: {e}")))?;
        Self::open_with(options).await
    }

    /// Connects with options built by the caller.
    pub async fn open_with(options: PgConnectOptions) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(db)?;
        Ok(Self { pool })
    }

    /// Closes every connection once it is returned; later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> StoreResult<()> {
        sqlx::migrate!("./migrations")
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Backend(format!("migration failed: {e}")))
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(db)?;
        Ok(())
    }

    async fn customer_profile(
        &self,
        customer: &CustomerId,
        services: &[ServiceId],
        now: Timestamp,
    ) -> StoreResult<Option<CustomerProfile>> {
        promotions::profile(&self.pool, customer, services, now).await
    }
}
