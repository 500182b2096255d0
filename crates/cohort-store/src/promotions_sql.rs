//! The SQL implementation of `PromotionStore`, one text for both backends
//! (`sql_promotion_store!`); what differs is passed in: how a write transaction
//! starts, the row locks PostgreSQL takes (SQLite's one writer makes them needless),
//! the insert of an order's activity, and how a customer's facts are read.

/// Expanded in each backend crate:
///
/// ```text
/// cohort_store::sql_promotion_store!(SqliteStore, row: SqliteRow, database: Sqlite, read: read,
///     write: write, begin: begin_with("BEGIN IMMEDIATE"), db: crate::error::db,
///     lock_codes: "", lock: "", insert_activity: "INSERT OR IGNORE INTO activities …",
///     customer_facts: customer_facts);
/// ```
///
/// `lock_codes` runs first when a promotion is replaced (its id bound as `$1`): orders
/// lock codes, then promotions, so replacing one must too. `lock` ends the read of the
/// ordering customer's key. `insert_activity` binds id, customer key, type, time,
/// attributes, order, amount and recording time, skipping a stored id.
#[macro_export]
macro_rules! sql_promotion_store {
    ($store:ty, row: $row:ty, database: $database:ty, read: $read:ident, write: $write:ident,
     begin: $begin:ident($($arg:expr),*), db: $db:path, lock_codes: $lock_codes:literal, lock: $lock:literal,
     insert_activity: $insert_activity:literal, customer_facts: $facts:path) => {
        mod sql_promotions {
            use async_trait::async_trait;
            use cohort_core::promotion::record::{
                CodeGroup, CodeGroupId, FoundCode, NewCodeGroup, NewStoredPromotion, PromotionCode, StoredPromotion,
            };
            use cohort_core::{ActivityId, ApplicationId, CustomerId, Name, PromotionId, Timestamp};
            use $crate::codec::{amount_e4, encode_attributes, encode_order, stored};
            use $crate::{CustomerFacts, OrderOutcome, OrderPlacement, PromotionStore, StoreError, StoreResult};
            use sqlx::Row as _;

            use super::*;

            const PROMOTION_COLUMNS: &str = "id, name, definition, budget, spent, created_at, updated_at";
            const GROUP_COLUMNS: &str =
                "id, promotion_id, name, pattern, count, max_uses, max_uses_per_customer, expires_at, created_at";

            fn promotion_from_row(row: &$row) -> StoreResult<StoredPromotion> {
                Ok(StoredPromotion {
                    id: PromotionId::new(row.get("id")),
                    name: stored(Name::parse("name", row.get("name")))?,
                    definition: row.get("definition"),
                    budget: row.get("budget"),
                    spent: row.get("spent"),
                    created_at: Timestamp::from_unix_micros(row.get("created_at")),
                    updated_at: Timestamp::from_unix_micros(row.get("updated_at")),
                })
            }

            fn count(value: Option<i64>) -> Option<u32> {
                value.map(|v| u32::try_from(v).unwrap_or(u32::MAX))
            }

            fn group_from_row(row: &$row) -> StoreResult<CodeGroup> {
                Ok(CodeGroup {
                    id: CodeGroupId::new(row.get("id")),
                    promotion: PromotionId::new(row.get("promotion_id")),
                    name: stored(Name::parse("name", row.get("name")))?,
                    pattern: row.get("pattern"),
                    count: count(Some(row.get("count"))).unwrap_or(0),
                    max_uses: count(row.get("max_uses")),
                    max_uses_per_customer: count(row.get("max_uses_per_customer")),
                    expires_at: row.get::<Option<i64>, _>("expires_at").map(Timestamp::from_unix_micros),
                    created_at: Timestamp::from_unix_micros(row.get("created_at")),
                })
            }

            /// A unique violation on a code: a conflict on `codes[i]`.
            fn code_taken(e: sqlx::Error, i: usize, code: &PromotionCode) -> StoreError {
                match &e {
                    sqlx::Error::Database(d) if d.is_unique_violation() => {
                        StoreError::conflict(&format!("codes[{i}]"), format!("code {code} exists already"))
                    }
                    _ => $db(e),
                }
            }

            async fn bump_version(tx: &mut sqlx::Transaction<'static, $database>) -> StoreResult<()> {
                sqlx::query("UPDATE promotions_version SET version = version + 1")
                    .execute(&mut **tx)
                    .await
                    .map_err($db)?;
                Ok(())
            }

            #[async_trait]
            impl PromotionStore for $store {
                async fn create_promotion(&self, promotion: &NewStoredPromotion, now: Timestamp) -> StoreResult<StoredPromotion> {
                    let mut tx = self.$write.$begin($($arg),*).await.map_err($db)?;
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO promotions (name, definition, budget, created_at, updated_at)
                         VALUES ($1, $2, $3, $4, $4) RETURNING id",
                    )
                    .bind(promotion.name.as_str())
                    .bind(&promotion.definition)
                    .bind(promotion.budget)
                    .bind(now.unix_micros())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err($db)?;
                    bump_version(&mut tx).await?;
                    tx.commit().await.map_err($db)?;
                    Ok(StoredPromotion {
                        id: PromotionId::new(id),
                        name: promotion.name.clone(),
                        definition: promotion.definition.clone(),
                        budget: promotion.budget,
                        spent: 0,
                        created_at: now,
                        updated_at: now,
                    })
                }

                async fn promotion(&self, id: PromotionId) -> StoreResult<Option<StoredPromotion>> {
                    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {PROMOTION_COLUMNS} FROM promotions WHERE id = $1")))
                        .bind(id.get())
                        .fetch_optional(&self.$read)
                        .await
                        .map_err($db)?;
                    row.as_ref().map(promotion_from_row).transpose()
                }

                async fn replace_promotion(
                    &self,
                    id: PromotionId,
                    promotion: &NewStoredPromotion,
                    now: Timestamp,
                ) -> StoreResult<StoredPromotion> {
                    let mut tx = self.$write.$begin($($arg),*).await.map_err($db)?;
                    if !$lock_codes.is_empty() {
                        sqlx::query($lock_codes)
                            .bind(id.get())
                            .execute(&mut *tx)
                            .await
                            .map_err($db)?;
                    }
                    let row = sqlx::query(
                        "UPDATE promotions SET name = $2, definition = $3, budget = $4, updated_at = $5 WHERE id = $1
                         RETURNING id, name, definition, budget, spent, created_at, updated_at",
                    )
                    .bind(id.get())
                    .bind(promotion.name.as_str())
                    .bind(&promotion.definition)
                    .bind(promotion.budget)
                    .bind(now.unix_micros())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err($db)?
                    .ok_or_else(|| StoreError::not_found("promotion", id))?;
                    bump_version(&mut tx).await?;
                    tx.commit().await.map_err($db)?;
                    promotion_from_row(&row)
                }

                async fn delete_promotion(&self, id: PromotionId) -> StoreResult<()> {
                    let mut tx = self.$write.$begin($($arg),*).await.map_err($db)?;
                    let done = sqlx::query("DELETE FROM promotions WHERE id = $1")
                        .bind(id.get())
                        .execute(&mut *tx)
                        .await
                        .map_err($db)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::not_found("promotion", id));
                    }
                    bump_version(&mut tx).await?;
                    tx.commit().await.map_err($db)
                }

                async fn list_promotions(&self) -> StoreResult<Vec<StoredPromotion>> {
                    let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {PROMOTION_COLUMNS} FROM promotions ORDER BY id")))
                        .fetch_all(&self.$read)
                        .await
                        .map_err($db)?;
                    rows.iter().map(promotion_from_row).collect()
                }

                async fn promotions_version(&self) -> StoreResult<i64> {
                    sqlx::query_scalar("SELECT version FROM promotions_version")
                        .fetch_one(&self.$read)
                        .await
                        .map_err($db)
                }

                async fn budgets_spent(&self) -> StoreResult<Vec<(PromotionId, i64)>> {
                    let rows: Vec<(i64, i64)> =
                        sqlx::query_as("SELECT id, spent FROM promotions WHERE budget IS NOT NULL ORDER BY id")
                            .fetch_all(&self.$read)
                            .await
                            .map_err($db)?;
                    Ok(rows
                        .into_iter()
                        .map(|(id, spent)| (PromotionId::new(id), spent))
                        .collect())
                }

                async fn set_type_priorities(&self, application: &ApplicationId, priorities: Option<&str>) -> StoreResult<()> {
                    let mut tx = self.$write.$begin($($arg),*).await.map_err($db)?;
                    let done = sqlx::query("UPDATE applications SET type_priorities = $2 WHERE id = $1")
                        .bind(application.as_str())
                        .bind(priorities)
                        .execute(&mut *tx)
                        .await
                        .map_err($db)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::not_found("application", application));
                    }
                    bump_version(&mut tx).await?;
                    tx.commit().await.map_err($db)
                }

                async fn type_priorities(&self) -> StoreResult<Vec<(ApplicationId, String)>> {
                    let rows: Vec<(String, String)> = sqlx::query_as(
                        "SELECT id, type_priorities FROM applications WHERE type_priorities IS NOT NULL ORDER BY id",
                    )
                    .fetch_all(&self.$read)
                    .await
                    .map_err($db)?;
                    rows.into_iter()
                        .map(|(id, priorities)| Ok((stored(ApplicationId::parse("id", &id))?, priorities)))
                        .collect()
                }

                async fn create_code_group(
                    &self,
                    group: &NewCodeGroup,
                    codes: &[PromotionCode],
                    now: Timestamp,
                ) -> StoreResult<CodeGroup> {
                    let mut tx = self.$write.$begin($($arg),*).await.map_err($db)?;
                    let row = sqlx::query(
                        "INSERT INTO code_groups (promotion_id, name, pattern, count, max_uses, max_uses_per_customer,
                                                  expires_at, created_at)
                         SELECT id, $2, $3, $4, $5, $6, $7, $8 FROM promotions WHERE id = $1
                         RETURNING id, promotion_id, name, pattern, count, max_uses, max_uses_per_customer, expires_at, created_at",
                    )
                    .bind(group.promotion.get())
                    .bind(group.name.as_str())
                    .bind(&group.pattern)
                    .bind(codes.len() as i64)
                    .bind(group.max_uses.map(i64::from))
                    .bind(group.max_uses_per_customer.map(i64::from))
                    .bind(group.expires_at.map(Timestamp::unix_micros))
                    .bind(now.unix_micros())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err($db)?
                    .ok_or_else(|| StoreError::not_found("promotion", group.promotion))?;
                    let created = group_from_row(&row)?;
                    for (i, code) in codes.iter().enumerate() {
                        sqlx::query("INSERT INTO promotion_codes (code, group_id) VALUES ($1, $2)")
                            .bind(code.as_str())
                            .bind(created.id.get())
                            .execute(&mut *tx)
                            .await
                            .map_err(|e| code_taken(e, i, code))?;
                    }
                    tx.commit().await.map_err($db)?;
                    Ok(created)
                }

                async fn code_group(&self, id: CodeGroupId) -> StoreResult<Option<CodeGroup>> {
                    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {GROUP_COLUMNS} FROM code_groups WHERE id = $1")))
                        .bind(id.get())
                        .fetch_optional(&self.$read)
                        .await
                        .map_err($db)?;
                    row.as_ref().map(group_from_row).transpose()
                }

                async fn code_groups(&self, promotion: PromotionId) -> StoreResult<Vec<CodeGroup>> {
                    let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {GROUP_COLUMNS} FROM code_groups WHERE promotion_id = $1 ORDER BY id")))
                        .bind(promotion.get())
                        .fetch_all(&self.$read)
                        .await
                        .map_err($db)?;
                    rows.iter().map(group_from_row).collect()
                }

                async fn delete_code_group(&self, id: CodeGroupId) -> StoreResult<()> {
                    let done = sqlx::query("DELETE FROM code_groups WHERE id = $1")
                        .bind(id.get())
                        .execute(&self.$write)
                        .await
                        .map_err($db)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::not_found("code group", id));
                    }
                    Ok(())
                }

                async fn group_codes(
                    &self,
                    id: CodeGroupId,
                    after: Option<&PromotionCode>,
                    limit: u32,
                ) -> StoreResult<Vec<(PromotionCode, u32)>> {
                    let rows: Vec<(String, i64)> = sqlx::query_as(
                        "SELECT code, used FROM promotion_codes WHERE group_id = $1 AND code > $2 ORDER BY code LIMIT $3",
                    )
                    .bind(id.get())
                    .bind(after.map_or("", PromotionCode::as_str))
                    .bind(i64::from(limit))
                    .fetch_all(&self.$read)
                    .await
                    .map_err($db)?;
                    rows.into_iter()
                        .map(|(code, used)| {
                            Ok((
                                stored(PromotionCode::parse("code", &code))?,
                                count(Some(used)).unwrap_or(0),
                            ))
                        })
                        .collect()
                }

                async fn find_codes(&self, codes: &[PromotionCode], customer: Option<&CustomerId>) -> StoreResult<Vec<FoundCode>> {
                    let mut found = Vec::new();
                    for code in codes {
                        let row = sqlx::query(
                            "SELECT c.group_id, g.promotion_id, g.max_uses, g.max_uses_per_customer, g.expires_at, c.used,
                                    COALESCE((SELECT u.used FROM code_uses u JOIN customers k ON k.seq = u.customer_seq
                                              WHERE u.code = c.code AND k.id = $2), 0) AS by_customer
                             FROM promotion_codes c JOIN code_groups g ON g.id = c.group_id WHERE c.code = $1",
                        )
                        .bind(code.as_str())
                        .bind(customer.map(CustomerId::as_str))
                        .fetch_optional(&self.$read)
                        .await
                        .map_err($db)?;
                        if let Some(row) = row {
                            found.push(FoundCode {
                                code: code.clone(),
                                group: CodeGroupId::new(row.get(0)),
                                promotion: PromotionId::new(row.get(1)),
                                max_uses: count(row.get(2)),
                                max_uses_per_customer: count(row.get(3)),
                                expires_at: row.get::<Option<i64>, _>(4).map(Timestamp::from_unix_micros),
                                used: count(Some(row.get(5))).unwrap_or(0),
                                used_by_customer: count(Some(row.get(6))).unwrap_or(0),
                            });
                        }
                    }
                    Ok(found)
                }

                async fn customer_facts(&self, customer: &CustomerId) -> StoreResult<Option<CustomerFacts>> {
                    $facts(self, customer).await
                }

                async fn place_order(&self, order: &OrderPlacement) -> StoreResult<OrderOutcome> {
                    let mut tx = self.$write.$begin($($arg),*).await.map_err($db)?;
                    let customer_seq: Option<i64> = match &order.customer {
                        None => None,
                        Some(customer) => Some(
                            sqlx::query_scalar(concat!("SELECT seq FROM customers WHERE id = $1", $lock))
                                .bind(customer.as_str())
                                .fetch_optional(&mut *tx)
                                .await
                                .map_err($db)?
                                .ok_or_else(|| StoreError::dangling("customer", format!("customer {customer} does not exist")))?,
                        ),
                    };
                    let placed = sqlx::query(
                        "INSERT INTO orders (id, application_id, customer_seq, placed_at, answer) VALUES ($1, $2, $3, $4, $5)
                         ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(order.id.as_str())
                    .bind(order.application.as_str())
                    .bind(customer_seq)
                    .bind(order.at.unix_micros())
                    .bind(&order.answer)
                    .execute(&mut *tx)
                    .await
                    .map_err($db)?;
                    if placed.rows_affected() == 0 {
                        let answer: String = sqlx::query_scalar("SELECT answer FROM orders WHERE id = $1")
                            .bind(order.id.as_str())
                            .fetch_one(&mut *tx)
                            .await
                            .map_err($db)?;
                        return Ok(OrderOutcome::AlreadyPlaced { answer });
                    }
                    if let (Some(seen), Some(seq)) = (order.orders_seen, customer_seq) {
                        let orders: i64 = sqlx::query_scalar(
                            "SELECT coalesce(max(count), 0) FROM activity_counts WHERE customer_seq = $1 AND type = 'order'",
                        )
                                .bind(seq)
                                .fetch_one(&mut *tx)
                                .await
                                .map_err($db)?;
                        if orders != i64::from(seen) {
                            return Ok(OrderOutcome::CustomerOrdered);
                        }
                    }
                    let mut codes: Vec<&PromotionCode> = order.redemptions.iter().collect();
                    codes.sort();
                    for code in codes {
                        let counted = sqlx::query(
                            "UPDATE promotion_codes SET used = used + 1
                             WHERE code = $1 AND used < COALESCE(
                                 (SELECT g.max_uses FROM code_groups g WHERE g.id = promotion_codes.group_id),
                                 9223372036854775807)",
                        )
                        .bind(code.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err($db)?;
                        if counted.rows_affected() == 0 {
                            return Ok(OrderOutcome::CodeUsedUp { code: code.clone() });
                        }
                        if let Some(seq) = customer_seq {
                            let counted = sqlx::query(
                                "INSERT INTO code_uses (code, customer_seq, used) VALUES ($1, $2, 1)
                                 ON CONFLICT (code, customer_seq) DO UPDATE SET used = code_uses.used + 1
                                 WHERE code_uses.used < COALESCE(
                                     (SELECT g.max_uses_per_customer FROM promotion_codes c
                                      JOIN code_groups g ON g.id = c.group_id WHERE c.code = $1),
                                     9223372036854775807)",
                            )
                            .bind(code.as_str())
                            .bind(seq)
                            .execute(&mut *tx)
                            .await
                            .map_err($db)?;
                            if counted.rows_affected() == 0 {
                                return Ok(OrderOutcome::CodeUsedUpByCustomer { code: code.clone() });
                            }
                        }
                    }
                    let mut spending = order.spending.clone();
                    spending.sort();
                    for (promotion, amount) in spending {
                        let spent = sqlx::query(
                            "UPDATE promotions SET spent = spent + $2 WHERE id = $1 AND (budget IS NULL OR spent + $2 <= budget)",
                        )
                        .bind(promotion.get())
                        .bind(amount)
                        .execute(&mut *tx)
                        .await
                        .map_err($db)?;
                        if spent.rows_affected() == 0 {
                            return Ok(OrderOutcome::BudgetExceeded { promotion });
                        }
                    }
                    if let (Some(activity), Some(seq)) = (&order.activity, customer_seq) {
                        let recorded = sqlx::query($insert_activity)
                        .bind(activity.id.as_str())
                        .bind(seq)
                        .bind(activity.kind.as_str())
                        .bind(activity.at.unix_micros())
                        .bind(encode_attributes(&activity.attributes))
                        .bind(activity.order.as_ref().map(encode_order))
                        .bind(activity.order.as_ref().and_then(amount_e4))
                        .bind(order.at.unix_micros())
                        .execute(&mut *tx)
                        .await
                        .map_err($db)?;
                        if recorded.rows_affected() == 0 {
                            return Err(StoreError::conflict(
                                "id",
                                format!("an activity with id {} exists already", activity.id),
                            ));
                        }
                        {
                            sqlx::query(
                                "INSERT INTO segment_build_queue (customer_seq, queued_at) VALUES ($1, $2)
                                 ON CONFLICT (customer_seq) DO UPDATE SET version = segment_build_queue.version + 1",
                            )
                            .bind(seq)
                            .bind(order.at.unix_micros())
                            .execute(&mut *tx)
                            .await
                            .map_err($db)?;
                            sqlx::query(
                                "INSERT INTO activity_counts (customer_seq, type, count) VALUES ($1, $2, 1)
                                 ON CONFLICT (customer_seq, type) DO UPDATE SET count = activity_counts.count + 1",
                            )
                            .bind(seq)
                            .bind(activity.kind.as_str())
                            .execute(&mut *tx)
                            .await
                            .map_err($db)?;
                            sqlx::query(
                                "INSERT INTO automation_inbox (first_activity, last_activity, reacts)
                                 SELECT seq, seq, $2 FROM activities WHERE id = $1",
                            )
                            .bind(activity.id.as_str())
                            .bind(true)
                            .execute(&mut *tx)
                            .await
                            .map_err($db)?;
                        }
                    }
                    tx.commit().await.map_err($db)?;
                    Ok(OrderOutcome::Placed)
                }

                async fn order_answer(&self, id: &ActivityId) -> StoreResult<Option<String>> {
                    sqlx::query_scalar("SELECT answer FROM orders WHERE id = $1")
                        .bind(id.as_str())
                        .fetch_optional(&self.$read)
                        .await
                        .map_err($db)
                }
            }
        }
    };
}
