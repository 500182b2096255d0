//! The SQL implementation of `SegmentStore`, one text for both backends.

/// `SegmentStore` in SQL, but for how a write transaction starts, the row locks
/// PostgreSQL takes (`lock`: `" FOR UPDATE"`, `share`: `" FOR SHARE"`, `key_share`:
/// `" FOR KEY SHARE"`, each `""` on SQLite, whose one writer needs none), the function
/// that finds a text in another (`position`) and the connection type. Changing a group's
/// exclusivity locks the group row, and adding memberships holds a share lock on their
/// groups, so the exclusivity check never races with a change that would break it;
/// creating a group holds a key share lock on its service, so the service is not deleted
/// meanwhile. Also defines `segment_from_row` for the services' queries. Expanded in
/// each backend crate:
///
/// ```text
/// cohort_store::sql_segment_store!(SqliteStore, row: SqliteRow, connection: SqliteConnection,
///     read: read, write: write, begin: begin_with("BEGIN IMMEDIATE"), db: crate::error::db,
///     unique: crate::error::unique, lock: "", share: "", key_share: "", position: "instr");
/// ```
#[macro_export]
macro_rules! sql_segment_store {
    ($store:ty, row: $row:ty, connection: $conn:ty, read: $read:ident, write: $write:ident,
     begin: $begin:ident($($arg:expr),*), db: $db:path, unique: $unique:path, lock: $lock:literal,
     share: $share:literal, key_share: $key_share:literal, position: $position:literal) => {
        pub(crate) use sql_segments::segment_from_row;

        mod sql_segments {
            use async_trait::async_trait;
            use cohort_core::segment::{NewSegment, NewSegmentGroup};
            use cohort_core::{
                Invalid, Name, NameFilter, Page, PageRequest, ReferenceKey, Segment, SegmentGroup, SegmentGroupId,
                SegmentGroupPatch, SegmentId, SegmentPatch, ServiceId,
            };
            use $crate::codec::stored;
            use $crate::{SegmentFilter, SegmentStore, StoreError, StoreResult};
            use sqlx::Row as _;

            use super::*;

            const GROUP_COLUMNS: &str = "id, service, name, reference, calculated, exclusive";
            const SEGMENT_COLUMNS: &str = "id, group_id, name, reference, calculated";

            fn group_from_row(row: &$row) -> StoreResult<SegmentGroup> {
                Ok(SegmentGroup {
                    id: SegmentGroupId::new(row.get("id")),
                    service: stored(ServiceId::parse("service", row.get("service")))?,
                    name: stored(Name::parse("name", row.get("name")))?,
                    reference: stored(ReferenceKey::parse("reference", row.get("reference")))?,
                    calculated: row.get("calculated"),
                    exclusive: row.get("exclusive"),
                })
            }

            pub(crate) fn segment_from_row(row: &$row) -> StoreResult<Segment> {
                Ok(Segment {
                    id: SegmentId::new(row.get("id")),
                    group: SegmentGroupId::new(row.get("group_id")),
                    name: stored(Name::parse("name", row.get("name")))?,
                    reference: stored(ReferenceKey::parse("reference", row.get("reference")))?,
                    calculated: row.get("calculated"),
                })
            }

            fn group_conflict(reference: &ReferenceKey) -> impl FnOnce() -> String + '_ {
                move || format!("a segment group with reference {reference} already exists")
            }

            fn segment_conflict(reference: &ReferenceKey) -> impl FnOnce() -> String + '_ {
                move || format!("the group already has a segment with reference {reference}")
            }

            /// Maps a foreign key violation on `segments.group_id` to a dangling reference.
            fn segment_write_error(reference: &ReferenceKey, group: SegmentGroupId) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
                move |e| match &e {
                    sqlx::Error::Database(d) if d.is_foreign_key_violation() => {
                        StoreError::dangling("group", format!("segment group {group} does not exist"))
                    }
                    _ => $unique("reference", segment_conflict(reference))(e),
                }
            }

            /// Only existing services that store segments (standard, import) may own groups.
            fn check_owner(service: &ServiceId, kind: Option<&str>, exclusive: bool) -> StoreResult<()> {
                match kind {
                    None => Err(StoreError::dangling(
                        "service",
                        format!("segmentation service {service} does not exist"),
                    )),
                    Some("http") => {
                        Err(Invalid::new("service", format!("{service} is an http service: it keeps no segments")).into())
                    }
                    // An import replaces what an external system says; it never chooses between segments.
                    Some("import") if exclusive => Err(Invalid::new(
                        "exclusive",
                        format!("{service} is an import service: its groups cannot be exclusive"),
                    )
                    .into()),
                    Some(_) => Ok(()),
                }
            }

            /// The kind of the service that owns a group.
            async fn owner_kind(conn: &mut $conn, service: &ServiceId) -> StoreResult<Option<String>> {
                sqlx::query_scalar("SELECT kind FROM segmentation_services WHERE id = $1")
                    .bind(service.as_str())
                    .fetch_optional(conn)
                    .await
                    .map_err($db)
            }

            /// Whether some customer holds two segments of `group` (expired rows included).
            async fn exclusivity_broken(conn: &mut $conn, group: SegmentGroupId) -> StoreResult<bool> {
                let row = sqlx::query(
                    "SELECT 1 FROM memberships m JOIN segments s ON s.id = m.segment_id
                     WHERE s.group_id = $1
                     GROUP BY m.customer_seq HAVING COUNT(*) > 1 LIMIT 1",
                )
                .bind(group.get())
                .fetch_optional(conn)
                .await
                .map_err($db)?;
                Ok(row.is_some())
            }

            #[async_trait]
            impl SegmentStore for $store {
                async fn create_segment_group(&self, group: &NewSegmentGroup) -> StoreResult<SegmentGroup> {
                    let mut tx = self.$write.$begin($($arg),*).await.map_err($db)?;
                    let kind: Option<String> = // The lock is the one the foreign key takes, taken before the check.
                    sqlx::query_scalar(concat!("SELECT kind FROM segmentation_services WHERE id = $1", $key_share))
                        .bind(group.service.as_str())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err($db)?;
                    check_owner(&group.service, kind.as_deref(), group.exclusive)?;
                    let row = sqlx::query(
                        "INSERT INTO segment_groups (service, name, reference, calculated, exclusive)
                         VALUES ($1, $2, $3, $4, $5) RETURNING id",
                    )
                    .bind(group.service.as_str())
                    .bind(group.name.as_str())
                    .bind(group.reference.as_str())
                    .bind(group.calculated)
                    .bind(group.exclusive)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err($unique("reference", group_conflict(&group.reference)))?;
                    tx.commit().await.map_err($db)?;
                    Ok(SegmentGroup {
                        id: SegmentGroupId::new(row.get(0)),
                        service: group.service.clone(),
                        name: group.name.clone(),
                        reference: group.reference.clone(),
                        calculated: group.calculated,
                        exclusive: group.exclusive,
                    })
                }

                async fn segment_group(&self, id: SegmentGroupId) -> StoreResult<Option<SegmentGroup>> {
                    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {GROUP_COLUMNS} FROM segment_groups WHERE id = $1{}", "")))
                        .bind(id.get())
                        .fetch_optional(&self.$read)
                        .await
                        .map_err($db)?;
                    row.as_ref().map(group_from_row).transpose()
                }

                async fn update_segment_group(&self, id: SegmentGroupId, patch: SegmentGroupPatch) -> StoreResult<SegmentGroup> {
                    let mut tx = self.$write.$begin($($arg),*).await.map_err($db)?;
                    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {GROUP_COLUMNS} FROM segment_groups WHERE id = $1{}", $lock)))
                        .bind(id.get())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err($db)?
                        .ok_or_else(|| StoreError::not_found("segment group", id))?;
                    let mut group = group_from_row(&row)?;
                    let becomes_exclusive = patch.exclusive == Some(true) && !group.exclusive;
                    let before = (group.calculated, group.exclusive);
                    group.apply(patch);
                    if before != (group.calculated, group.exclusive) {
                        let owned = sqlx::query("SELECT 1 FROM segment_builders WHERE group_id = $1")
                            .bind(id.get())
                            .fetch_optional(&mut *tx)
                            .await
                            .map_err($db)?;
                        if owned.is_some() {
                            let field = if before.0 == group.calculated {
                                "exclusive"
                            } else {
                                "calculated"
                            };
                            return Err(StoreError::conflict(
                                field,
                                "a segment builder owns this group: delete the builder to change how the group works",
                            ));
                        }
                    }
                    if becomes_exclusive {
                        let kind = owner_kind(&mut tx, &group.service).await?;
                        check_owner(&group.service, kind.as_deref(), true)?;
                    }
                    if becomes_exclusive && exclusivity_broken(&mut tx, id).await? {
                        return Err(StoreError::conflict(
                            "exclusive",
                            "some customers have more than one segment of this group",
                        ));
                    }
                    sqlx::query(
                        "UPDATE segment_groups SET name = $2, reference = $3, calculated = $4, exclusive = $5 WHERE id = $1",
                    )
                    .bind(id.get())
                    .bind(group.name.as_str())
                    .bind(group.reference.as_str())
                    .bind(group.calculated)
                    .bind(group.exclusive)
                    .execute(&mut *tx)
                    .await
                    .map_err($unique("reference", group_conflict(&group.reference)))?;
                    tx.commit().await.map_err($db)?;
                    Ok(group)
                }

                async fn delete_segment_group(&self, id: SegmentGroupId) -> StoreResult<()> {
                    let mut tx = self.$write.$begin($($arg),*).await.map_err($db)?;
                    // The lock keeps segments from being created in the group until we are done.
                    sqlx::query(concat!("SELECT 1 FROM segment_groups WHERE id = $1", $lock))
                        .bind(id.get())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err($db)?
                        .ok_or_else(|| StoreError::not_found("segment group", id))?;
                    let in_use = || StoreError::InUse {
                        detail: format!("segment group {id} still has segments"),
                    };
                    let used = sqlx::query("SELECT 1 FROM segments WHERE group_id = $1 LIMIT 1")
                        .bind(id.get())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err($db)?;
                    if used.is_some() {
                        return Err(in_use());
                    }
                    sqlx::query("DELETE FROM segment_groups WHERE id = $1")
                        .bind(id.get())
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| match &e {
                            sqlx::Error::Database(d) if d.is_foreign_key_violation() => in_use(),
                            _ => $db(e),
                        })?;
                    tx.commit().await.map_err($db)
                }

                async fn list_segment_groups(&self, filter: &NameFilter, page: PageRequest) -> StoreResult<Page<SegmentGroup>> {
                    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT {GROUP_COLUMNS} FROM segment_groups
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
                        .map(|r| group_from_row(r).map(|g| (g.id.get(), g)))
                        .collect::<StoreResult<_>>()?;
                    Ok(Page::from_rows(rows, page.limit))
                }

                async fn create_segment(&self, segment: &NewSegment) -> StoreResult<Segment> {
                    let row = sqlx::query(
                        "INSERT INTO segments (group_id, name, reference, calculated) VALUES ($1, $2, $3, $4) RETURNING id",
                    )
                    .bind(segment.group.get())
                    .bind(segment.name.as_str())
                    .bind(segment.reference.as_str())
                    .bind(segment.calculated)
                    .fetch_one(&self.$write)
                    .await
                    .map_err(segment_write_error(&segment.reference, segment.group))?;
                    Ok(Segment {
                        id: SegmentId::new(row.get(0)),
                        group: segment.group,
                        name: segment.name.clone(),
                        reference: segment.reference.clone(),
                        calculated: segment.calculated,
                    })
                }

                async fn segment(&self, id: SegmentId) -> StoreResult<Option<Segment>> {
                    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {SEGMENT_COLUMNS} FROM segments WHERE id = $1{}", "")))
                        .bind(id.get())
                        .fetch_optional(&self.$read)
                        .await
                        .map_err($db)?;
                    row.as_ref().map(segment_from_row).transpose()
                }

                async fn update_segment(&self, id: SegmentId, patch: SegmentPatch) -> StoreResult<Segment> {
                    let mut tx = self.$write.$begin($($arg),*).await.map_err($db)?;
                    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {SEGMENT_COLUMNS} FROM segments WHERE id = $1{}", $lock)))
                        .bind(id.get())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err($db)?
                        .ok_or_else(|| StoreError::not_found("segment", id))?;
                    let mut segment = segment_from_row(&row)?;
                    let moved = patch.group.filter(|g| *g != segment.group);
                    segment.apply(patch);
                    sqlx::query("UPDATE segments SET group_id = $2, name = $3, reference = $4, calculated = $5 WHERE id = $1")
                        .bind(id.get())
                        .bind(segment.group.get())
                        .bind(segment.name.as_str())
                        .bind(segment.reference.as_str())
                        .bind(segment.calculated)
                        .execute(&mut *tx)
                        .await
                        .map_err(segment_write_error(&segment.reference, segment.group))?;
                    // A target group linked to the segment is named after it.
                    sqlx::query("UPDATE target_groups SET name = $2 WHERE segment_id = $1")
                        .bind(id.get())
                        .bind(segment.name.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err($db)?;
                    if let Some(group) = moved {
                        let exclusive: bool = sqlx::query_scalar(concat!("SELECT exclusive FROM segment_groups WHERE id = $1", $share))
                            .bind(group.get())
                            .fetch_one(&mut *tx)
                            .await
                            .map_err($db)?;
                        if exclusive && exclusivity_broken(&mut tx, group).await? {
                            return Err(StoreError::conflict(
                                "group",
                                "customers of this segment already have a segment of that exclusive group",
                            ));
                        }
                    }
                    tx.commit().await.map_err($db)?;
                    Ok(segment)
                }

                async fn delete_segment(&self, id: SegmentId) -> StoreResult<()> {
                    let done = sqlx::query("DELETE FROM segments WHERE id = $1")
                        .bind(id.get())
                        .execute(&self.$write)
                        .await
                        .map_err($db)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::not_found("segment", id));
                    }
                    Ok(())
                }

                async fn list_segments(&self, filter: &SegmentFilter, page: PageRequest) -> StoreResult<Page<Segment>> {
                    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT {SEGMENT_COLUMNS} FROM segments
                         WHERE id > $1 AND (CAST($2 AS TEXT) IS NULL OR {}(lower(name), $2) > 0)
                           AND (CAST($3 AS BIGINT) IS NULL OR group_id = $3)
                         ORDER BY id LIMIT $4",
                        $position
                    )))
                    .bind(page.after.unwrap_or(0))
                    .bind(filter.name.contains())
                    .bind(filter.group.map(SegmentGroupId::get))
                    .bind(i64::from(page.limit) + 1)
                    .fetch_all(&self.$read)
                    .await
                    .map_err($db)?;
                    let rows = rows
                        .iter()
                        .map(|r| segment_from_row(r).map(|s| (s.id.get(), s)))
                        .collect::<StoreResult<_>>()?;
                    Ok(Page::from_rows(rows, page.limit))
                }
            }
        }
    };
}
