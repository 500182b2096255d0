//! Targeting on SQLite: the shared SQL of `cohort_store::sql_targeting_store!`, with
//! visitors read and saved in batches of multi-row statements.

use cohort_core::{CustomerId, VisitorId};
use cohort_store::codec::encode_visitor_state;
use cohort_store::{StoreResult, StoredVisitor};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Sqlite};

use crate::SqliteStore;
use crate::error::db;

/// Visitors per statement (4 bound values each, within SQLite's 32,766).
const VISITORS_PER_STATEMENT: usize = 500;

cohort_store::sql_targeting_store!(SqliteStore, row: SqliteRow, read: read, write: write,
    db: crate::error::db, visitors: visitors, save_visitors: save_visitors);

async fn visitors(store: &SqliteStore, ids: &[VisitorId]) -> StoreResult<Vec<StoredVisitor>> {
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(VISITORS_PER_STATEMENT) {
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT v.id, v.state, c.id AS customer FROM visitors v
             LEFT JOIN customers c ON c.seq = v.customer_seq WHERE v.id IN (",
        );
        let mut list = query.separated(", ");
        for id in chunk {
            list.push_bind(id.as_str());
        }
        query.push(")");
        for row in query.build().fetch_all(&store.read).await.map_err(db)? {
            found.push(visitor_from_row(&row)?);
        }
    }
    Ok(found)
}

async fn save_visitors(store: &SqliteStore, visitors: &[StoredVisitor]) -> StoreResult<()> {
    let mut tx = store.write.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
    for chunk in visitors.chunks(VISITORS_PER_STATEMENT) {
        let mut query = QueryBuilder::<Sqlite>::new("INSERT INTO visitors (id, customer_seq, last_seen, state) ");
        query.push_values(chunk, |mut row, v| {
            row.push_bind(v.id.as_str())
                .push("(SELECT seq FROM customers WHERE id = ")
                .push_bind_unseparated(v.state.customer.as_ref().map(CustomerId::as_str))
                .push_unseparated(")")
                .push_bind(v.state.last_seen.unix_micros())
                .push_bind(encode_visitor_state(&v.state));
        });
        query.push(
            " ON CONFLICT (id) DO UPDATE SET customer_seq = excluded.customer_seq,
               last_seen = excluded.last_seen, state = excluded.state",
        );
        query.build().execute(&mut *tx).await.map_err(db)?;
    }
    tx.commit().await.map_err(db)
}
