//! Segmentation services, their activation per application, and membership imports
//! on PostgreSQL.
//!
//! Updating a service or importing into it locks the service row (`FOR UPDATE`), so
//! concurrent imports of one service run one after the other. An import then holds key
//! share locks on the customers it names and the segments of its service, taken before
//! it touches a membership, so none of them is deleted under it and it never waits on a
//! segment change while holding memberships that change waits on.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use cohort_core::{
    ApplicationId, CustomerId, Invalid, Membership, Name, ReferenceKey, SegmentGroup, SegmentGroupId,
    SegmentationService, ServiceId, ServicePatch, Timestamp,
};
use cohort_store::codec::{decode_service_kind, encode_service_kind, stored};
use cohort_store::import_plan::plan_import;
use cohort_store::{
    GroupedSegment, ImportMode, ImportedMembership, MembershipImportSummary, ServiceStore, StoreError, StoreResult,
};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::PostgresStore;
use crate::error::{db, unique};
use crate::memberships::{customer_seq, lock_customers, membership_from_row};
use crate::segments::segment_from_row;

/// Rows per statement when an import writes memberships.
const CHUNK: usize = 10_000;

macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT id, name, kind, config, available FROM segmentation_services ",
            $rest
        )
    };
}

/// Columns of a segment joined with its group, as `grouped_from_row` reads them.
macro_rules! grouped_columns {
    () => {
        "s.id, s.group_id, s.name, s.reference, s.calculated,
         g.id AS g_id, g.service AS g_service, g.name AS g_name, g.reference AS g_reference,
         g.calculated AS g_calculated, g.exclusive AS g_exclusive"
    };
}

fn from_row(row: &PgRow) -> StoreResult<SegmentationService> {
    Ok(SegmentationService {
        id: stored(ServiceId::parse("id", row.get("id")))?,
        name: stored(Name::parse("name", row.get("name")))?,
        kind: decode_service_kind(row.get("kind"), row.get("config"))?,
        available: row.get("available"),
    })
}

fn grouped_from_row(row: &PgRow) -> StoreResult<GroupedSegment> {
    let segment = segment_from_row(row)?;
    let group = SegmentGroup {
        id: SegmentGroupId::new(row.get("g_id")),
        service: stored(ServiceId::parse("service", row.get("g_service")))?,
        name: stored(Name::parse("name", row.get("g_name")))?,
        reference: stored(ReferenceKey::parse("reference", row.get("g_reference")))?,
        calculated: row.get("g_calculated"),
        exclusive: row.get("g_exclusive"),
    };
    Ok(GroupedSegment { group, segment })
}

fn id_list(services: &[ServiceId]) -> Vec<String> {
    services.iter().map(|s| s.as_str().to_owned()).collect()
}

fn service_not_found(id: &ServiceId) -> StoreError {
    StoreError::not_found("segmentation service", id)
}

fn service_in_use(id: &ServiceId) -> StoreError {
    StoreError::InUse {
        detail: format!("segmentation service {id} still owns segment groups"),
    }
}

#[async_trait]
impl ServiceStore for PostgresStore {
    async fn create_service(&self, service: &SegmentationService) -> StoreResult<()> {
        let (kind, config) = encode_service_kind(&service.kind);
        sqlx::query(
            "INSERT INTO segmentation_services (id, name, kind, config, available) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(service.id.as_str())
        .bind(service.name.as_str())
        .bind(kind)
        .bind(config)
        .bind(service.available)
        .execute(&self.pool)
        .await
        .map_err(unique("id", || {
            format!("segmentation service {} already exists", service.id)
        }))?;
        Ok(())
    }

    async fn service(&self, id: &ServiceId) -> StoreResult<Option<SegmentationService>> {
        let row = sqlx::query(select!("WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(from_row).transpose()
    }

    async fn update_service(&self, id: &ServiceId, patch: ServicePatch) -> StoreResult<SegmentationService> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let row = sqlx::query(select!("WHERE id = $1 FOR UPDATE"))
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?
            .ok_or_else(|| service_not_found(id))?;
        let mut service = from_row(&row)?;
        service.apply(patch)?;
        let (_, config) = encode_service_kind(&service.kind);
        sqlx::query("UPDATE segmentation_services SET name = $2, config = $3, available = $4 WHERE id = $1")
            .bind(id.as_str())
            .bind(service.name.as_str())
            .bind(config)
            .bind(service.available)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(service)
    }

    async fn delete_service(&self, id: &ServiceId) -> StoreResult<()> {
        if id.as_str() == cohort_core::service::STANDARD {
            return Err(StoreError::InUse {
                detail: "the standard service cannot be deleted".into(),
            });
        }
        let mut tx = self.pool.begin().await.map_err(db)?;
        // The lock waits for groups being created in the service, so the check sees them.
        sqlx::query("SELECT 1 FROM segmentation_services WHERE id = $1 FOR UPDATE")
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?
            .ok_or_else(|| service_not_found(id))?;
        let owns = sqlx::query("SELECT 1 FROM segment_groups WHERE service = $1 LIMIT 1")
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        if owns.is_some() {
            return Err(service_in_use(id));
        }
        sqlx::query("DELETE FROM segmentation_services WHERE id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(d) if d.is_foreign_key_violation() => service_in_use(id),
                _ => db(e),
            })?;
        tx.commit().await.map_err(db)
    }

    async fn list_services(&self) -> StoreResult<Vec<SegmentationService>> {
        let rows = sqlx::query(select!("ORDER BY id"))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(from_row).collect()
    }

    async fn set_service_active(&self, app: &ApplicationId, service: &ServiceId, active: bool) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        // Key share locks, as the foreign keys take: neither row is deleted meanwhile.
        let seq: i64 = sqlx::query_scalar("SELECT seq FROM applications WHERE id = $1 FOR KEY SHARE")
            .bind(app.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?
            .ok_or_else(|| StoreError::not_found("application", app))?;
        sqlx::query("SELECT 1 FROM segmentation_services WHERE id = $1 FOR KEY SHARE")
            .bind(service.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?
            .ok_or_else(|| service_not_found(service))?;
        let sql = if active {
            "INSERT INTO application_services (application_seq, service_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM application_services WHERE application_seq = $1 AND service_id = $2"
        };
        sqlx::query(sql)
            .bind(seq)
            .bind(service.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn application_services(&self, app: &ApplicationId) -> StoreResult<Vec<SegmentationService>> {
        // One statement: the application's existence and its services come from one snapshot.
        let rows = sqlx::query(
            "SELECT s.id, s.name, s.kind, s.config, s.available
             FROM applications a
             LEFT JOIN application_services x ON x.application_seq = a.seq
             LEFT JOIN segmentation_services s ON s.id = x.service_id
             WHERE a.id = $1
             ORDER BY s.id",
        )
        .bind(app.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        if rows.is_empty() {
            return Err(StoreError::not_found("application", app));
        }
        rows.iter()
            .filter(|r| r.get::<Option<String>, _>("id").is_some())
            .map(from_row)
            .collect()
    }

    async fn service_segments(&self, services: &[ServiceId]) -> StoreResult<Vec<GroupedSegment>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            grouped_columns!(),
            " FROM segments s JOIN segment_groups g ON g.id = s.group_id
             WHERE g.service = ANY($1)
             ORDER BY g.service, g.id, s.id"
        ))
        .bind(id_list(services))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(grouped_from_row).collect()
    }

    async fn customer_service_segments(
        &self,
        customer: &CustomerId,
        services: &[ServiceId],
        now: Timestamp,
    ) -> StoreResult<Vec<(Membership, GroupedSegment)>> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let seq = customer_seq(&mut conn, customer).await?;
        let rows = sqlx::query(concat!(
            "SELECT m.segment_id, m.source, m.assigned_at, m.application_counter, m.expires_at, ",
            grouped_columns!(),
            " FROM memberships m
             JOIN segments s ON s.id = m.segment_id
             JOIN segment_groups g ON g.id = s.group_id
             WHERE m.customer_seq = $1 AND (m.expires_at IS NULL OR m.expires_at > $2)
               AND g.service = ANY($3)
             ORDER BY g.service, g.id, s.id"
        ))
        .bind(seq)
        .bind(now.unix_micros())
        .bind(id_list(services))
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|r| Ok((membership_from_row(customer, r)?, grouped_from_row(r)?)))
            .collect()
    }

    async fn import_memberships(
        &self,
        service: &ServiceId,
        mode: ImportMode,
        lines: &[ImportedMembership],
        now: Timestamp,
    ) -> StoreResult<MembershipImportSummary> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let kind: Option<String> =
            sqlx::query_scalar("SELECT kind FROM segmentation_services WHERE id = $1 FOR UPDATE")
                .bind(service.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        match kind.as_deref() {
            None => return Err(service_not_found(service)),
            Some("import") => {}
            Some(_) => return Err(Invalid::new("service", format!("{service} is not an import service")).into()),
        }
        let named: Vec<&CustomerId> = lines.iter().map(|l| &l.customer).collect();
        let customers = lock_customers(&mut tx, &named, 0).await?;
        let (segments, created) = segment_ids(&mut tx, service, lines).await?;

        let existing: HashMap<(i64, i64), Option<i64>> = sqlx::query_as(
            "SELECT m.customer_seq, m.segment_id, m.expires_at
             FROM memberships m
             JOIN segments s ON s.id = m.segment_id
             JOIN segment_groups g ON g.id = s.group_id
             WHERE g.service = $1",
        )
        .bind(service.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?
        .into_iter()
        .map(|(c, s, e): (i64, i64, Option<i64>)| ((c, s), e))
        .collect();
        let keyed = lines.iter().map(|line| {
            let pair = (
                customers[line.customer.as_str()],
                segments[&(line.group.as_str(), line.segment.as_str())],
            );
            (pair, line.remove, line.expires_at.map(Timestamp::unix_micros))
        });
        let plan = plan_import(&existing, keyed, mode, now.unix_micros());
        for chunk in plan.removes.chunks(CHUNK) {
            sqlx::query(
                "DELETE FROM memberships m
                 USING UNNEST($1::bigint[], $2::bigint[]) AS r (customer_seq, segment_id)
                 WHERE m.customer_seq = r.customer_seq AND m.segment_id = r.segment_id",
            )
            .bind(chunk.iter().map(|r| r.0).collect::<Vec<_>>())
            .bind(chunk.iter().map(|r| r.1).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        for chunk in plan.upserts.chunks(CHUNK) {
            // A renewed (expired) membership starts afresh; a live one only changes its expiry.
            sqlx::query(
                "INSERT INTO memberships (customer_seq, segment_id, source, assigned_at, application_counter, expires_at)
                 SELECT v.customer_seq, v.segment_id, 'external', $1, 1, v.expires_at
                 FROM UNNEST($2::bigint[], $3::bigint[], $4::bigint[]) AS v (customer_seq, segment_id, expires_at)
                 ON CONFLICT (customer_seq, segment_id) DO UPDATE SET expires_at = excluded.expires_at,
                     assigned_at = CASE WHEN memberships.expires_at <= $1 THEN excluded.assigned_at
                                        ELSE memberships.assigned_at END,
                     source = excluded.source",
            )
            .bind(now.unix_micros())
            .bind(chunk.iter().map(|((c, _), _)| *c).collect::<Vec<_>>())
            .bind(chunk.iter().map(|((_, s), _)| *s).collect::<Vec<_>>())
            .bind(chunk.iter().map(|(_, e)| *e).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        let summary = MembershipImportSummary {
            added: plan.added,
            removed: plan.removes.len() as u64,
            unchanged: plan.unchanged,
            segments_created: created,
        };
        tx.commit().await.map_err(db)?;
        Ok(summary)
    }
}

type SegmentKeys<'a> = HashMap<(&'a str, &'a str), i64>;

/// Segment ids of every (group, segment) the lines name, creating what is missing.
async fn segment_ids<'a>(
    conn: &mut PgConnection,
    service: &ServiceId,
    lines: &'a [ImportedMembership],
) -> StoreResult<(SegmentKeys<'a>, u64)> {
    let known: HashMap<(String, String), i64> = sqlx::query_as::<_, (String, String, i64)>(
        "SELECT g.reference, s.reference, s.id
         FROM segments s JOIN segment_groups g ON g.id = s.group_id
         WHERE g.service = $1
         FOR KEY SHARE OF s",
    )
    .bind(service.as_str())
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?
    .into_iter()
    .map(|(g, s, id)| ((g, s), id))
    .collect();
    let mut groups: HashMap<String, i64> =
        sqlx::query_as("SELECT reference, id FROM segment_groups WHERE service = $1")
            .bind(service.as_str())
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?
            .into_iter()
            .collect();

    // What is missing, in the order the lines first name it.
    let mut ids = SegmentKeys::new();
    let mut missing: Vec<(&str, &str)> = Vec::new();
    let mut seen = HashSet::new();
    for line in lines {
        let key = (line.group.as_str(), line.segment.as_str());
        if !seen.insert(key) {
            continue;
        }
        match known.get(&(key.0.to_owned(), key.1.to_owned())) {
            Some(id) => {
                ids.insert(key, *id);
            }
            None => missing.push(key),
        }
    }
    if missing.is_empty() {
        return Ok((ids, 0));
    }

    let mut new_groups: Vec<&str> = Vec::new();
    let mut seen = HashSet::new();
    for (group, _) in &missing {
        if !groups.contains_key(*group) && seen.insert(*group) {
            new_groups.push(group);
        }
    }
    if !new_groups.is_empty() {
        let created: Vec<(String, i64)> = sqlx::query_as(
            "INSERT INTO segment_groups (service, name, reference, calculated, exclusive)
             SELECT $1, r.reference, r.reference, FALSE, FALSE
             FROM UNNEST($2::text[]) WITH ORDINALITY AS r (reference, n)
             ORDER BY r.n
             RETURNING reference, id",
        )
        .bind(service.as_str())
        .bind(&new_groups)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
        groups.extend(created);
    }

    let created: Vec<(i64, String, i64)> = sqlx::query_as(
        "INSERT INTO segments (group_id, name, reference, calculated)
         SELECT v.group_id, v.reference, v.reference, FALSE
         FROM UNNEST($1::bigint[], $2::text[]) WITH ORDINALITY AS v (group_id, reference, n)
         ORDER BY v.n
         RETURNING group_id, reference, id",
    )
    .bind(missing.iter().map(|(g, _)| groups[*g]).collect::<Vec<_>>())
    .bind(missing.iter().map(|(_, s)| *s).collect::<Vec<_>>())
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    let by_group: HashMap<(i64, String), i64> = created.into_iter().map(|(g, s, id)| ((g, s), id)).collect();
    for key in &missing {
        ids.insert(*key, by_group[&(groups[key.0], key.1.to_owned())]);
    }
    Ok((ids, missing.len() as u64))
}
