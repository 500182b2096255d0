//! The SQL implementation of `TargetGroupStore`, one text for both backends.

/// The SQL implementation of `TargetGroupStore`, one text for both backends but for how
/// a write transaction starts, the row locks PostgreSQL takes (`lock`: `" FOR UPDATE"`
/// or `""`) and the function that finds a text in another (`position`: `instr` or
/// `strpos`). Expanded in each backend crate:
///
/// ```text
/// cohort_store::sql_target_group_store!(SqliteStore, row: SqliteRow, read: read, write: write,
///     begin: begin_with("BEGIN IMMEDIATE"), db: crate::error::db, lock: "", position: "instr");
/// ```
#[macro_export]
macro_rules! sql_target_group_store {
    ($store:ty, row: $row:ty, read: $read:ident, write: $write:ident, begin: $begin:ident($($arg:expr),*),
     db: $db:path, lock: $lock:literal, position: $position:literal) => {
        mod sql_target_groups {
            use async_trait::async_trait;
            use cohort_core::target_group::NewTargetGroup;
            use cohort_core::{
                Name, NameFilter, Page, PageRequest, SegmentId, TargetGroup, TargetGroupId, TargetGroupPatch, Threshold,
            };
            use $crate::codec::stored;
            use $crate::{StoreError, StoreResult, TargetGroupStore};
            use sqlx::Row as _;

            use super::*;

            const COLUMNS: &str = "id, name, threshold, active, segment_id";

            fn from_row(row: &$row) -> StoreResult<TargetGroup> {
                Ok(TargetGroup {
                    id: TargetGroupId::new(row.get("id")),
                    name: stored(Name::parse("name", row.get("name")))?,
                    threshold: stored(Threshold::parse("threshold", row.get("threshold")))?,
                    active: row.get("active"),
                    segment: row.get::<Option<i64>, _>("segment_id").map(SegmentId::new),
                })
            }

            #[async_trait]
            impl TargetGroupStore for $store {
                async fn create_target_group(&self, group: &NewTargetGroup) -> StoreResult<TargetGroup> {
                    let row = sqlx::query("INSERT INTO target_groups (name, threshold, active) VALUES ($1, $2, $3) RETURNING id")
                        .bind(group.name.as_str())
                        .bind(i64::from(group.threshold.get()))
                        .bind(group.active)
                        .fetch_one(&self.$write)
                        .await
                        .map_err($db)?;
                    Ok(TargetGroup {
                        id: TargetGroupId::new(row.get(0)),
                        name: group.name.clone(),
                        threshold: group.threshold,
                        active: group.active,
                        segment: None,
                    })
                }

                async fn target_group(&self, id: TargetGroupId) -> StoreResult<Option<TargetGroup>> {
                    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM target_groups WHERE id = $1")))
                        .bind(id.get())
                        .fetch_optional(&self.$read)
                        .await
                        .map_err($db)?;
                    row.as_ref().map(from_row).transpose()
                }

                async fn update_target_group(&self, id: TargetGroupId, patch: TargetGroupPatch) -> StoreResult<TargetGroup> {
                    let mut tx = self.$write.$begin($($arg),*).await.map_err($db)?;
                    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM target_groups WHERE id = $1{}", $lock)))
                        .bind(id.get())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err($db)?
                        .ok_or_else(|| StoreError::not_found("target group", id))?;
                    let mut group = from_row(&row)?;
                    group.apply(patch);
                    sqlx::query("UPDATE target_groups SET name = $2, threshold = $3, active = $4 WHERE id = $1")
                        .bind(id.get())
                        .bind(group.name.as_str())
                        .bind(i64::from(group.threshold.get()))
                        .bind(group.active)
                        .execute(&mut *tx)
                        .await
                        .map_err($db)?;
                    tx.commit().await.map_err($db)?;
                    Ok(group)
                }

                async fn delete_target_group(&self, id: TargetGroupId) -> StoreResult<()> {
                    let done = sqlx::query("DELETE FROM target_groups WHERE id = $1")
                        .bind(id.get())
                        .execute(&self.$write)
                        .await
                        .map_err($db)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::not_found("target group", id));
                    }
                    Ok(())
                }

                async fn list_target_groups(&self, filter: &NameFilter, page: PageRequest) -> StoreResult<Page<TargetGroup>> {
                    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT {COLUMNS} FROM target_groups
                         WHERE id > $1 AND (CAST($2 AS TEXT) IS NULL OR {}(lower(name), $2) > 0) ORDER BY id LIMIT $3",
                        $position
                    )))
                    .bind(page.after.unwrap_or(0))
                    .bind(filter.contains())
                    .bind(i64::from(page.limit) + 1)
                    .fetch_all(&self.$read)
                    .await
                    .map_err($db)?;
                    let rows = rows
                        .iter()
                        .map(|r| from_row(r).map(|g| (g.id.get(), g)))
                        .collect::<StoreResult<_>>()?;
                    Ok(Page::from_rows(rows, page.limit))
                }

                async fn use_as_target_group(&self, segment: SegmentId, on: bool) -> StoreResult<Option<TargetGroup>> {
                    let mut tx = self.$write.$begin($($arg),*).await.map_err($db)?;
                    let name: Option<String> = sqlx::query_scalar(concat!("SELECT name FROM segments WHERE id = $1", $lock))
                        .bind(segment.get())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err($db)?;
                    let name = name.ok_or_else(|| StoreError::not_found("segment", segment))?;
                    let linked = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM target_groups WHERE segment_id = $1")))
                        .bind(segment.get())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err($db)?;
                    let group = match (on, linked) {
                        (true, Some(row)) => Some(from_row(&row)?),
                        (true, None) => {
                            let row = sqlx::query(
                                "INSERT INTO target_groups (name, threshold, active, segment_id) VALUES ($1, 1, TRUE, $2)
                                 RETURNING id, name, threshold, active, segment_id",
                            )
                            .bind(&name)
                            .bind(segment.get())
                            .fetch_one(&mut *tx)
                            .await
                            .map_err($db)?;
                            Some(from_row(&row)?)
                        }
                        (false, _) => {
                            sqlx::query("DELETE FROM target_groups WHERE segment_id = $1")
                                .bind(segment.get())
                                .execute(&mut *tx)
                                .await
                                .map_err($db)?;
                            None
                        }
                    };
                    tx.commit().await.map_err($db)?;
                    Ok(group)
                }
            }
        }
    };
}
