//! Segmentation services, their activation per application, and membership imports
//! on SQLite.

use std::collections::HashMap;

use async_trait::async_trait;
use cohort_core::{
    ApplicationId, CustomerId, Invalid, Membership, Name, ReferenceKey, SegmentationService, ServiceId, ServicePatch,
    Timestamp,
};
use cohort_store::codec::{decode_service_kind, encode_service_kind, stored};
use cohort_store::import_plan::plan_import;
use cohort_store::{
    GroupedSegment, ImportMode, ImportedMembership, MembershipImportSummary, ServiceStore, StoreError, StoreResult,
};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use crate::SqliteStore;
use crate::error::{db, unique};
use crate::memberships::{customer_seq, membership_from_row};
use crate::segments::segment_from_row;

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

fn from_row(row: &SqliteRow) -> StoreResult<SegmentationService> {
    Ok(SegmentationService {
        id: stored(ServiceId::parse("id", row.get("id")))?,
        name: stored(Name::parse("name", row.get("name")))?,
        kind: decode_service_kind(row.get("kind"), row.get("config"))?,
        available: row.get("available"),
    })
}

fn grouped_from_row(row: &SqliteRow) -> StoreResult<GroupedSegment> {
    let segment = segment_from_row(row)?;
    let group = cohort_core::SegmentGroup {
        id: cohort_core::SegmentGroupId::new(row.get("g_id")),
        service: stored(ServiceId::parse("service", row.get("g_service")))?,
        name: stored(Name::parse("name", row.get("g_name")))?,
        reference: stored(ReferenceKey::parse("reference", row.get("g_reference")))?,
        calculated: row.get("g_calculated"),
        exclusive: row.get("g_exclusive"),
    };
    Ok(GroupedSegment { group, segment })
}

fn json_strings<'a>(items: impl Iterator<Item = &'a str>) -> String {
    serde_json::to_string(&items.collect::<Vec<_>>()).expect("strings serialize")
}

async fn application_seq(conn: &mut SqliteConnection, app: &ApplicationId) -> StoreResult<i64> {
    sqlx::query_scalar("SELECT seq FROM applications WHERE id = $1")
        .bind(app.as_str())
        .fetch_optional(conn)
        .await
        .map_err(db)?
        .ok_or_else(|| StoreError::not_found("application", app))
}

#[async_trait]
impl ServiceStore for SqliteStore {
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
        .execute(&self.write)
        .await
        .map_err(unique("id", || {
            format!("segmentation service {} already exists", service.id)
        }))?;
        Ok(())
    }

    async fn service(&self, id: &ServiceId) -> StoreResult<Option<SegmentationService>> {
        let row = sqlx::query(select!("WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(&self.read)
            .await
            .map_err(db)?;
        row.as_ref().map(from_row).transpose()
    }

    async fn update_service(&self, id: &ServiceId, patch: ServicePatch) -> StoreResult<SegmentationService> {
        let mut tx = self.write.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        let row = sqlx::query(select!("WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?
            .ok_or_else(|| StoreError::not_found("segmentation service", id))?;
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
        let mut tx = self.write.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        let owns = sqlx::query("SELECT 1 FROM segment_groups WHERE service = $1 LIMIT 1")
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        if owns.is_some() {
            return Err(StoreError::InUse {
                detail: format!("segmentation service {id} still owns segment groups"),
            });
        }
        let done = sqlx::query("DELETE FROM segmentation_services WHERE id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("segmentation service", id));
        }
        tx.commit().await.map_err(db)
    }

    async fn list_services(&self) -> StoreResult<Vec<SegmentationService>> {
        let rows = sqlx::query(select!("ORDER BY id"))
            .fetch_all(&self.read)
            .await
            .map_err(db)?;
        rows.iter().map(from_row).collect()
    }

    async fn set_service_active(&self, app: &ApplicationId, service: &ServiceId, active: bool) -> StoreResult<()> {
        let mut tx = self.write.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        let seq = application_seq(&mut tx, app).await?;
        let exists = sqlx::query("SELECT 1 FROM segmentation_services WHERE id = $1")
            .bind(service.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        if exists.is_none() {
            return Err(StoreError::not_found("segmentation service", service));
        }
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
        let mut conn = self.read.acquire().await.map_err(db)?;
        let seq = application_seq(&mut conn, app).await?;
        let rows = sqlx::query(select!(
            "WHERE id IN (SELECT service_id FROM application_services WHERE application_seq = $1) ORDER BY id"
        ))
        .bind(seq)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
        rows.iter().map(from_row).collect()
    }

    async fn service_segments(&self, services: &[ServiceId]) -> StoreResult<Vec<GroupedSegment>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            grouped_columns!(),
            " FROM segments s JOIN segment_groups g ON g.id = s.group_id
             WHERE g.service IN (SELECT value FROM json_each($1)) ORDER BY g.service, g.id, s.id"
        ))
        .bind(json_strings(services.iter().map(ServiceId::as_str)))
        .fetch_all(&self.read)
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
        let mut conn = self.read.acquire().await.map_err(db)?;
        let seq = customer_seq(&mut conn, customer).await?;
        memberships_in(&mut conn, customer, seq, services, now).await
    }

    async fn import_memberships(
        &self,
        service: &ServiceId,
        mode: ImportMode,
        lines: &[ImportedMembership],
        now: Timestamp,
    ) -> StoreResult<MembershipImportSummary> {
        let mut tx = self.write.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        let kind: Option<String> = sqlx::query_scalar("SELECT kind FROM segmentation_services WHERE id = $1")
            .bind(service.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        match kind.as_deref() {
            None => return Err(StoreError::not_found("segmentation service", service)),
            Some("import") => {}
            Some(_) => return Err(Invalid::new("service", format!("{service} is not an import service")).into()),
        }
        let customers = customer_seqs(&mut tx, lines).await?;
        let (segments, created) = segment_ids(&mut tx, service, lines).await?;

        let existing: HashMap<(i64, i64), Option<i64>> = sqlx::query_as(
            "SELECT m.customer_seq, m.segment_id, m.expires_at FROM memberships m
             JOIN segments s ON s.id = m.segment_id JOIN segment_groups g ON g.id = s.group_id WHERE g.service = $1",
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
        for chunk in plan.removes.chunks(1_000) {
            let pairs = serde_json::to_string(chunk).expect("pairs serialize");
            sqlx::query(
                "DELETE FROM memberships WHERE (customer_seq, segment_id) IN
                 (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each($1))",
            )
            .bind(pairs)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        for chunk in plan.upserts.chunks(1_000) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO memberships (customer_seq, segment_id, source, assigned_at, application_counter, expires_at) ",
            );
            insert.push_values(chunk, |mut row, ((customer, segment), expires)| {
                row.push_bind(*customer)
                    .push_bind(*segment)
                    .push_bind("external")
                    .push_bind(now.unix_micros())
                    .push_bind(1_i64)
                    .push_bind(*expires);
            });
            // A renewed (expired) membership starts afresh; a live one only changes its expiry.
            insert.push(" ON CONFLICT (customer_seq, segment_id) DO UPDATE SET expires_at = excluded.expires_at, ");
            insert.push("assigned_at = CASE WHEN memberships.expires_at <= ");
            insert.push_bind(now.unix_micros());
            insert.push(" THEN excluded.assigned_at ELSE memberships.assigned_at END, source = excluded.source");
            insert.build().execute(&mut *tx).await.map_err(db)?;
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

/// Customer seqs of every customer the lines name; an unknown one fails the import.
async fn customer_seqs(conn: &mut SqliteConnection, lines: &[ImportedMembership]) -> StoreResult<HashMap<String, i64>> {
    let seqs = crate::memberships::customer_seqs(conn, lines.iter().map(|l| l.customer.as_str())).await?;
    if let Some((i, line)) = lines
        .iter()
        .enumerate()
        .find(|(_, l)| !seqs.contains_key(l.customer.as_str()))
    {
        return Err(StoreError::dangling(
            &format!("lines[{i}].customer"),
            format!("customer {} does not exist", line.customer),
        ));
    }
    Ok(seqs)
}

type SegmentKeys<'a> = HashMap<(&'a str, &'a str), i64>;

/// Segment ids of every (group, segment) the lines name, creating what is missing.
async fn segment_ids<'a>(
    conn: &mut SqliteConnection,
    service: &ServiceId,
    lines: &'a [ImportedMembership],
) -> StoreResult<(SegmentKeys<'a>, u64)> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT g.reference, s.reference, s.id FROM segments s JOIN segment_groups g ON g.id = s.group_id
         WHERE g.service = $1",
    )
    .bind(service.as_str())
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    let known: HashMap<(String, String), i64> = rows.into_iter().map(|(g, s, id)| ((g, s), id)).collect();
    let mut groups: HashMap<String, i64> =
        sqlx::query_as("SELECT reference, id FROM segment_groups WHERE service = $1")
            .bind(service.as_str())
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?
            .into_iter()
            .collect();
    let mut ids = SegmentKeys::new();
    let mut created = 0;
    for line in lines {
        let key = (line.group.as_str(), line.segment.as_str());
        if ids.contains_key(&key) {
            continue;
        }
        if let Some(id) = known.get(&(key.0.to_owned(), key.1.to_owned())) {
            ids.insert(key, *id);
            continue;
        }
        let group_id = match groups.get(key.0) {
            Some(id) => *id,
            None => {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO segment_groups (service, name, reference, calculated, exclusive)
                     VALUES ($1, $2, $2, 0, 0) RETURNING id",
                )
                .bind(service.as_str())
                .bind(key.0)
                .fetch_one(&mut *conn)
                .await
                .map_err(db)?;
                groups.insert(key.0.to_owned(), id);
                id
            }
        };
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO segments (group_id, name, reference, calculated) VALUES ($1, $2, $2, 0) RETURNING id",
        )
        .bind(group_id)
        .bind(key.1)
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
        ids.insert(key, id);
        created += 1;
    }
    Ok((ids, created))
}

/// The customer's live memberships in stored segments of the given services.
pub(crate) async fn memberships_in(
    conn: &mut SqliteConnection,
    customer: &CustomerId,
    seq: i64,
    services: &[ServiceId],
    now: Timestamp,
) -> StoreResult<Vec<(Membership, GroupedSegment)>> {
    let rows = sqlx::query(concat!(
        "SELECT m.segment_id, m.source, m.assigned_at, m.application_counter, m.expires_at, ",
        grouped_columns!(),
        " FROM memberships m JOIN segments s ON s.id = m.segment_id JOIN segment_groups g ON g.id = s.group_id
             WHERE m.customer_seq = $1 AND (m.expires_at IS NULL OR m.expires_at > $2)
               AND g.service IN (SELECT value FROM json_each($3))
             ORDER BY g.service, g.id, s.id"
    ))
    .bind(seq)
    .bind(now.unix_micros())
    .bind(json_strings(services.iter().map(ServiceId::as_str)))
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    rows.iter()
        .map(|r| Ok((membership_from_row(customer, r)?, grouped_from_row(r)?)))
        .collect()
}
