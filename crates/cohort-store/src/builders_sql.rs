//! The SQL implementation of `BuilderStore`'s definitions, one text for both backends.

/// `BuilderStore` in SQL: builder definitions and build records are one text, with how a
/// write transaction starts and PostgreSQL's row locks passed in (`lock`: `" FOR UPDATE"`,
/// `key_share`: `" FOR KEY SHARE"`, `""` on SQLite); the inputs of a build, the memberships
/// of groups and applying a build are each backend's own (`build_inputs`,
/// `group_memberships`, `apply_build`: async functions of the store taking the trait
/// method's arguments). Expanded in each backend crate:
///
/// ```text
/// cohort_store::sql_builder_store!(SqliteStore, row: SqliteRow, database: Sqlite, read: read,
///     write: write, begin: begin_with("BEGIN IMMEDIATE"), db: crate::error::db,
///     unique: crate::error::unique, lock: "", key_share: "", build_inputs: build_inputs,
///     group_memberships: group_memberships, apply_build: apply_build);
/// ```
#[macro_export]
macro_rules! sql_builder_store {
    ($store:ty, row: $row:ty, database: $database:ty, read: $read:ident, write: $write:ident,
     begin: $begin:ident($($arg:expr),*), db: $db:path, unique: $unique:path, lock: $lock:literal,
     key_share: $key_share:literal, build_inputs: $inputs:path, group_memberships: $memberships:path,
     apply_build: $apply:path) => {
        mod sql_builders {
            use async_trait::async_trait;
            use cohort_core::segment::NewSegment;
            use cohort_core::{
                Aggregate, BuilderId, Name, NewSegmentBuilder, SegmentBuilder, SegmentBuilderPatch, SegmentGroupId,
                SegmentId, Timestamp,
            };
            use $crate::codec::stored;
            use $crate::{
                BuildChange, BuildInput, BuildSelection, BuildSummary, BuilderStore, KeySelection, StoreError,
                StoreResult,
            };
            use sqlx::Row as _;

            use super::*;

            const COLUMNS: &str =
                "id, name, group_id, definition, schedule, enabled, state, built_at, created_at, updated_at";

            fn from_row(row: &$row) -> StoreResult<SegmentBuilder> {
                Ok(SegmentBuilder {
                    id: BuilderId::new(row.get("id")),
                    name: stored(Name::parse("name", row.get("name")))?,
                    group: SegmentGroupId::new(row.get("group_id")),
                    definition: row.get("definition"),
                    schedule: row.get("schedule"),
                    enabled: row.get("enabled"),
                    state: row.get("state"),
                    built_at: row.get::<Option<i64>, _>("built_at").map(Timestamp::from_unix_micros),
                    created_at: Timestamp::from_unix_micros(row.get("created_at")),
                    updated_at: Timestamp::from_unix_micros(row.get("updated_at")),
                })
            }

            /// Creates the segments missing from a builder's group (those there are kept).
            async fn insert_segments(
                tx: &mut sqlx::Transaction<'static, $database>,
                group: SegmentGroupId,
                segments: &[NewSegment],
            ) -> StoreResult<()> {
                for segment in segments {
                    sqlx::query(
                        "INSERT INTO segments (group_id, name, reference, calculated) VALUES ($1, $2, $3, TRUE)
                         ON CONFLICT (group_id, reference) DO NOTHING",
                    )
                    .bind(group.get())
                    .bind(segment.name.as_str())
                    .bind(segment.reference.as_str())
                    .execute(&mut **tx)
                    .await
                    .map_err($db)?;
                }
                Ok(())
            }

            #[async_trait]
            impl BuilderStore for $store {

                async fn create_builder(
                    &self,
                    builder: &NewSegmentBuilder,
                    segments: &[NewSegment],
                    now: Timestamp,
                ) -> StoreResult<SegmentBuilder> {
                    let mut tx = self.$write.$begin($($arg),*).await.map_err($db)?;
                    let group: Option<i64> = // The lock is the one the foreign key takes, taken before the check.
                    sqlx::query_scalar(concat!("SELECT id FROM segment_groups WHERE id = $1", $key_share))
                        .bind(builder.group.get())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err($db)?;
                    if group.is_none() {
                        return Err(StoreError::dangling(
                            "group",
                            format!("segment group {} does not exist", builder.group),
                        ));
                    }
                    let row = sqlx::query(
                        "INSERT INTO segment_builders (name, group_id, definition, schedule, enabled, created_at, updated_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
                    )
                    .bind(builder.name.as_str())
                    .bind(builder.group.get())
                    .bind(&builder.definition)
                    .bind(&builder.schedule)
                    .bind(builder.enabled)
                    .bind(now.unix_micros())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err($unique("group", || {
                        format!("segment group {} already has a builder", builder.group)
                    }))?;
                    insert_segments(&mut tx, builder.group, segments).await?;
                    tx.commit().await.map_err($db)?;
                    Ok(SegmentBuilder {
                        id: BuilderId::new(row.get(0)),
                        name: builder.name.clone(),
                        group: builder.group,
                        definition: builder.definition.clone(),
                        schedule: builder.schedule.clone(),
                        enabled: builder.enabled,
                        state: None,
                        built_at: None,
                        created_at: now,
                        updated_at: now,
                    })
                }

                async fn builder(&self, id: BuilderId) -> StoreResult<Option<SegmentBuilder>> {
                    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM segment_builders WHERE id = $1{}", "")))
                        .bind(id.get())
                        .fetch_optional(&self.$read)
                        .await
                        .map_err($db)?;
                    row.as_ref().map(from_row).transpose()
                }

                async fn update_builder(
                    &self,
                    id: BuilderId,
                    patch: SegmentBuilderPatch,
                    segments: &[NewSegment],
                    now: Timestamp,
                ) -> StoreResult<SegmentBuilder> {
                    let mut tx = self.$write.$begin($($arg),*).await.map_err($db)?;
                    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM segment_builders WHERE id = $1{}", $lock)))
                        .bind(id.get())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err($db)?
                        .ok_or_else(|| StoreError::not_found("segment builder", id))?;
                    let mut builder = from_row(&row)?;
                    builder.apply(patch, now);
                    sqlx::query(
                        "UPDATE segment_builders SET name = $2, definition = $3, schedule = $4, enabled = $5, state = $6,
                         updated_at = $7 WHERE id = $1",
                    )
                    .bind(id.get())
                    .bind(builder.name.as_str())
                    .bind(&builder.definition)
                    .bind(&builder.schedule)
                    .bind(builder.enabled)
                    .bind(&builder.state)
                    .bind(now.unix_micros())
                    .execute(&mut *tx)
                    .await
                    .map_err($db)?;
                    insert_segments(&mut tx, builder.group, segments).await?;
                    tx.commit().await.map_err($db)?;
                    Ok(builder)
                }

                async fn delete_builder(&self, id: BuilderId) -> StoreResult<()> {
                    let done = sqlx::query("DELETE FROM segment_builders WHERE id = $1")
                        .bind(id.get())
                        .execute(&self.$write)
                        .await
                        .map_err($db)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::not_found("segment builder", id));
                    }
                    Ok(())
                }

                async fn list_builders(&self) -> StoreResult<Vec<SegmentBuilder>> {
                    let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM segment_builders ORDER BY id")))
                        .fetch_all(&self.$read)
                        .await
                        .map_err($db)?;
                    rows.iter().map(from_row).collect()
                }

                async fn count_customers(&self) -> StoreResult<u64> {
                    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM customers")
                        .fetch_one(&self.$read)
                        .await
                        .map_err($db)?;
                    Ok(count as u64)
                }

                async fn record_build(
                    &self,
                    id: BuilderId,
                    state: Option<&str>,
                    at: Timestamp,
                    read_at: Timestamp,
                ) -> StoreResult<()> {
                    sqlx::query("UPDATE segment_builders SET state = $2, built_at = $3 WHERE id = $1 AND updated_at = $4")
                        .bind(id.get())
                        .bind(state)
                        .bind(at.unix_micros())
                        .bind(read_at.unix_micros())
                        .execute(&self.$write)
                        .await
                        .map_err($db)?;
                    Ok(())
                }

                async fn build_inputs(
                    &self,
                    selection: BuildSelection<'_>,
                    profiles: bool,
                    aggregates: &[Aggregate],
                    now: Timestamp,
                ) -> StoreResult<Vec<BuildInput>> {
                    $inputs(self, selection, profiles, aggregates, now).await
                }

                async fn group_memberships(
                    &self,
                    groups: &[SegmentGroupId],
                    customers: KeySelection<'_>,
                    now: Timestamp,
                ) -> StoreResult<Vec<(i64, SegmentId)>> {
                    $memberships(self, groups, customers, now).await
                }

                async fn apply_build(&self, changes: &[BuildChange], now: Timestamp) -> StoreResult<BuildSummary> {
                    $apply(self, changes, now).await
                }
            }
        }
    };
}
