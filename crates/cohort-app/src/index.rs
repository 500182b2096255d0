//! The live segment index: the roaring-bitmap index of `cohort-index`, built from the
//! store once and then kept in step with every writer by following the membership log.
//!
//! Queries run on memory only. `catch_up` applies the log written since the last call
//! (by this process or any other); the serve loop calls it every few hundred
//! milliseconds and every query calls it first. Each customer the log names is also
//! forgotten by the profiles kept in memory (`profiles.rs`).
//! Memberships with an expiry leave the index when their time comes (`now` from the
//! injected clock).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use cohort_core::{CustomerId, Invalid, QualifiedSegment, SegmentId, ServiceId, Timestamp};
use cohort_index::{Expr, SegmentIndex};
use cohort_store::{LogRead, MembershipChange, Store, StoreError, StoreResult};
use tokio::sync::Mutex;

use crate::Clock;
use crate::profiles::Profiles;

/// Log entries applied per store read.
const CHANGES_PER_READ: u32 = 10_000;
/// A segment's members (those without an expiry) read per store call when building.
const MEMBERS_PER_READ: u32 = 100_000;
/// Log entries read again when the index is built: their transactions may not have
/// committed when the snapshot was read (applying an entry twice changes nothing).
pub const REPLAYED_AT_BUILD: i64 = 100_000;
/// The bound of a gap found before its writers' bound was read.
const UNBOUNDED: i64 = i64::MAX;
/// Log entries kept behind this process's position when pruning.
pub const LOG_KEPT: i64 = 1_000_000;
/// How long segment names are trusted before they are read again.
pub const NAMES_TTL_MICROS: i64 = 1_000_000;
/// Most segment references in one query.
pub const MAX_SEGMENTS: usize = 1_000;
/// Deepest accepted query.
pub const MAX_DEPTH: usize = 32;

/// A query as clients write it: qualified segment names combined with and/or/not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    Segment(QualifiedSegment),
    And(Vec<Query>),
    Or(Vec<Query>),
    Not(Box<Query>),
}

#[derive(Default)]
struct State {
    index: SegmentIndex,
    /// Log position applied so far; `None` until built.
    position: Option<i64>,
    /// Expiry time (micros) → memberships that end then.
    expiring: BTreeMap<i64, Vec<(u32, u32)>>,
    /// Current expiry of memberships that have one.
    expiry_of: HashMap<(u32, u32), i64>,
    /// Qualified names of stored segments.
    names: HashMap<QualifiedSegment, SegmentId>,
    /// Log positions passed over while not visible → a bound above the transaction
    /// ids of every writer that could still commit them.
    gaps: BTreeMap<i64, i64>,
    /// When `names` were read.
    names_at: Option<Timestamp>,
}

impl State {
    fn set(&mut self, segment: u32, customer: u32, expires_at: Option<Timestamp>, now: Timestamp) {
        self.expiry_of.remove(&(segment, customer));
        match expires_at {
            Some(at) if at <= now => self.index.remove(segment, customer),
            Some(at) => {
                self.index.add(segment, customer);
                self.expiry_of.insert((segment, customer), at.unix_micros());
                self.expiring
                    .entry(at.unix_micros())
                    .or_default()
                    .push((segment, customer));
            }
            None => self.index.add(segment, customer),
        }
    }

    fn apply(&mut self, change: &MembershipChange, now: Timestamp) -> StoreResult<()> {
        let customer = key(change.customer)?;
        match change.segment {
            None if change.present => self.index.add_customer(customer),
            None => self.index.remove_customer(customer),
            Some(segment) => {
                let segment = key(segment.get())?;
                if change.present {
                    self.set(segment, customer, change.expires_at, now);
                } else {
                    self.expiry_of.remove(&(segment, customer));
                    self.index.remove(segment, customer);
                }
            }
        }
        Ok(())
    }

    /// Applies one read of the log. Positions it passes over become gaps. An entry
    /// filling a gap is applied late: a later entry for the same membership cannot have
    /// been visible before it, as its writer waited for this one's commit (row locks).
    /// A gap is forgotten when a complete read (fewer entries than asked for) did not
    /// return it although every transaction that could write it had ended: it was
    /// rolled back.
    fn absorb(&mut self, read: &LogRead, complete: bool, now: Timestamp) -> StoreResult<()> {
        let mut position = self.position.expect("built");
        for change in &read.changes {
            if change.position <= position {
                if self.gaps.remove(&change.position).is_some() {
                    self.apply(change, now)?;
                }
                continue;
            }
            if read.ended_below.is_some() {
                for missing in position + 1..change.position {
                    self.gaps.insert(missing, UNBOUNDED);
                }
            }
            self.apply(change, now)?;
            position = change.position;
        }
        self.position = Some(position);
        if let (Some(ended_below), true) = (read.ended_below, complete) {
            self.gaps.retain(|_, bound| *bound >= ended_below);
        }
        Ok(())
    }

    fn has_unbounded_gaps(&self) -> bool {
        self.gaps.values().any(|b| *b == UNBOUNDED)
    }

    /// Gives new gaps the bound of their possible writers.
    fn bound_new_gaps(&mut self, bound: i64) {
        for b in self.gaps.values_mut().filter(|b| **b == UNBOUNDED) {
            *b = bound;
        }
    }

    /// Drops memberships whose expiry has come.
    fn sweep(&mut self, now: Timestamp) {
        let later = self.expiring.split_off(&(now.unix_micros() + 1));
        let due = std::mem::replace(&mut self.expiring, later);
        for (at, pairs) in due {
            for pair in pairs {
                if self.expiry_of.get(&pair) == Some(&at) {
                    self.expiry_of.remove(&pair);
                    self.index.remove(pair.0, pair.1);
                }
            }
        }
    }
}

fn key(raw: i64) -> StoreResult<u32> {
    u32::try_from(raw).map_err(|_| StoreError::Backend(format!("key {raw} does not fit the index")))
}

/// One page of a query's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryPage {
    pub count: u64,
    pub customers: Vec<CustomerId>,
    /// Key of the last customer on the page, to continue after.
    pub next: Option<u32>,
}

pub struct LiveIndex {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    state: RwLock<State>,
    /// One catch-up at a time.
    updating: Mutex<()>,
    /// Told of every customer the log names.
    profiles: Arc<Profiles>,
}

impl LiveIndex {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, profiles: Arc<Profiles>) -> Self {
        Self {
            store,
            clock,
            profiles,
            state: RwLock::new(State::default()),
            updating: Mutex::new(()),
        }
    }

    /// Builds the index if it is not built yet, then applies the log written since.
    pub async fn catch_up(&self) -> StoreResult<()> {
        let _one = self.updating.lock().await;
        let built = self.state.read().expect("index lock").position.is_some();
        if !built {
            self.build().await?;
            // Profiles read before the snapshot would not be named by the log after it.
            self.profiles.forget_all();
        }
        loop {
            let (position, gaps) = {
                let state = self.state.read().expect("index lock");
                (
                    state.position.expect("built"),
                    state.gaps.keys().copied().collect::<Vec<_>>(),
                )
            };
            let read = self
                .store
                .read_membership_log(position, &gaps, CHANGES_PER_READ)
                .await?;
            let complete = read.changes.len() < CHANGES_PER_READ as usize;
            if !read.changes.is_empty() {
                self.profiles.forget_keys(read.changes.iter().map(|c| c.customer));
            }
            let now = self.clock.now();
            let unbounded = {
                let mut state = self.state.write().expect("index lock");
                state.absorb(&read, complete, now)?;
                state.has_unbounded_gaps()
            };
            if unbounded {
                let bound = self.store.log_writers_bound().await?.unwrap_or(i64::MIN);
                self.state.write().expect("index lock").bound_new_gaps(bound);
            }
            if complete {
                return Ok(());
            }
        }
    }

    /// Forgets log entries far behind this index, keeping `LOG_KEPT` for slower readers.
    /// Never reaches a gap: its entry may still commit.
    pub async fn prune_log(&self) -> StoreResult<()> {
        let kept_from = {
            let state = self.state.read().expect("index lock");
            let first_gap = state.gaps.keys().next().map(|g| g - 1);
            state.position.map(|p| first_gap.map_or(p, |g| g.min(p)))
        };
        match kept_from {
            Some(p) if p > LOG_KEPT => self.store.prune_membership_log(p - LOG_KEPT).await,
            _ => Ok(()),
        }
    }

    async fn build(&self) -> StoreResult<()> {
        let position = self.store.membership_log_end().await?;
        let now = self.clock.now();
        let mut fresh = State::default();
        let mut after = 0;
        loop {
            let keys = self.store.customer_keys(after, 100_000).await?;
            let Some(last) = keys.last() else { break };
            after = *last;
            for k in keys {
                fresh.index.add_customer(key(k)?);
            }
        }
        for segment in self.store.segment_ids().await? {
            let s = key(segment.get())?;
            let mut after = i64::MIN;
            loop {
                let page = self.store.plain_members(segment, after, MEMBERS_PER_READ).await?;
                let Some(last) = page.last() else { break };
                after = *last;
                let full = page.len() == MEMBERS_PER_READ as usize;
                fresh
                    .index
                    .extend(s, page.into_iter().map(key).collect::<StoreResult<Vec<_>>>()?);
                if !full {
                    break;
                }
            }
            for (c, expires) in self.store.expiring_members(segment).await? {
                fresh.set(s, key(c)?, Some(expires), now);
            }
        }
        fresh.position = Some((position - REPLAYED_AT_BUILD).max(0));
        *self.state.write().expect("index lock") = fresh;
        tracing::info!(position, "segment index built");
        Ok(())
    }

    /// Reads the qualified names of stored segments when forced, never read, or older
    /// than `NAMES_TTL_MICROS`.
    async fn names(&self, force: bool) -> StoreResult<()> {
        let now = self.clock.now();
        let fresh = self
            .state
            .read()
            .expect("index lock")
            .names_at
            .is_some_and(|at| now.unix_micros() - at.unix_micros() < NAMES_TTL_MICROS);
        if fresh && !force {
            return Ok(());
        }
        let services: Vec<ServiceId> = self.store.list_services().await?.into_iter().map(|s| s.id).collect();
        let names = self
            .store
            .service_segments(&services)
            .await?
            .into_iter()
            .map(|g| {
                let name = QualifiedSegment {
                    service: g.group.service,
                    group: Some(g.group.reference),
                    segment: g.segment.reference,
                };
                (name, g.segment.id)
            })
            .collect();
        let mut state = self.state.write().expect("index lock");
        state.names = names;
        state.names_at = Some(now);
        Ok(())
    }

    fn resolve(names: &HashMap<QualifiedSegment, SegmentId>, query: &Query, field: &str) -> Result<Expr, Invalid> {
        Ok(match query {
            Query::Segment(name) => {
                let id = names
                    .get(name)
                    .ok_or_else(|| Invalid::new(field, format!("no stored segment is named {name}")))?;
                Expr::Segment(u32::try_from(id.get()).map_err(|_| Invalid::new(field, "segment id out of range"))?)
            }
            Query::And(items) => Expr::And(Self::resolve_all(names, items, &format!("{field}.and"))?),
            Query::Or(items) => Expr::Or(Self::resolve_all(names, items, &format!("{field}.or"))?),
            Query::Not(inner) => Expr::not(Self::resolve(names, inner, &format!("{field}.not"))?),
        })
    }

    fn resolve_all(
        names: &HashMap<QualifiedSegment, SegmentId>,
        items: &[Query],
        field: &str,
    ) -> Result<Vec<Expr>, Invalid> {
        items
            .iter()
            .enumerate()
            .map(|(i, q)| Self::resolve(names, q, &format!("{field}[{i}]")))
            .collect()
    }

    /// Counts the customers matching `query` and returns a page of them after `after`.
    pub async fn query(&self, query: &Query, after: Option<u32>, limit: usize) -> StoreResult<QueryPage> {
        self.names(false).await?;
        let resolved = Self::resolve(&self.state.read().expect("index lock").names, query, "query");
        let expr = match resolved {
            Ok(expr) => expr,
            // A segment created or renamed since the names were read: read them again once.
            Err(_) => {
                self.names(true).await?;
                Self::resolve(&self.state.read().expect("index lock").names, query, "query")?
            }
        };
        if expr.depth() > MAX_DEPTH {
            return Err(Invalid::new("query", format!("nested deeper than {MAX_DEPTH}")).into());
        }
        if expr.segments().len() > MAX_SEGMENTS {
            return Err(Invalid::new("query", format!("names more than {MAX_SEGMENTS} segments")).into());
        }
        self.select(&expr, after, limit).await
    }

    /// Counts the customers matching an expression over segment ids (caught up with
    /// the log, expired memberships swept) and returns up to `limit` of them after the
    /// key `after`, ascending.
    pub async fn select(&self, expr: &Expr, after: Option<u32>, limit: usize) -> StoreResult<QueryPage> {
        self.catch_up().await?;
        self.state.write().expect("index lock").sweep(self.clock.now());
        let (count, keys) = self.state.read().expect("index lock").index.page(expr, after, limit);
        let next = if keys.len() == limit {
            keys.last().copied()
        } else {
            None
        };
        let customers = self
            .store
            .customer_ids(&keys.iter().map(|k| i64::from(*k)).collect::<Vec<_>>())
            .await?;
        Ok(QueryPage { count, customers, next })
    }

    /// Keeps following the log until `stop` resolves.
    pub async fn run_until_stopped(
        self: Arc<Self>,
        every: std::time::Duration,
        stop: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        let mut rounds = 0u64;
        loop {
            if let Err(e) = self.catch_up().await {
                tracing::warn!(error = %e, "segment index could not catch up");
            }
            rounds += 1;
            if rounds.is_multiple_of(240)
                && let Err(e) = self.prune_log().await
            {
                tracing::warn!(error = %e, "membership log could not be pruned");
            }
            tokio::select! {
                () = &mut stop => break,
                () = tokio::time::sleep(every) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(position: i64, segment: i64) -> MembershipChange {
        MembershipChange {
            position,
            customer: 1,
            segment: Some(SegmentId::new(segment)),
            present: true,
            expires_at: None,
        }
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_unix_micros(seconds * 1_000_000)
    }

    fn read(changes: Vec<MembershipChange>, ended_below: Option<i64>) -> LogRead {
        LogRead { changes, ended_below }
    }

    #[test]
    fn a_late_commit_below_the_position_is_applied_when_it_appears() {
        let mut state = State {
            position: Some(10),
            ..Default::default()
        };
        // 12 is not visible yet: 13 applies, 12 becomes a gap.
        state
            .absorb(&read(vec![change(11, 1), change(13, 3)], Some(100)), true, at(0))
            .unwrap();
        assert_eq!(state.position, Some(13));
        assert!(state.has_unbounded_gaps());
        state.bound_new_gaps(120);
        // Transactions below 120 are still running: the gap stays.
        state.absorb(&read(vec![], Some(110)), true, at(1)).unwrap();
        assert_eq!(state.gaps.keys().copied().collect::<Vec<_>>(), [12]);
        // Its transaction commits: the entry is applied, however late.
        state
            .absorb(&read(vec![change(12, 2)], Some(110)), true, at(60))
            .unwrap();
        assert_eq!(state.index.segments_of(1), vec![1, 2, 3]);
        assert!(state.gaps.is_empty());
        assert_eq!(state.position, Some(13));
    }

    #[test]
    fn a_gap_is_forgotten_once_every_writer_that_could_fill_it_has_ended() {
        let mut state = State {
            position: Some(10),
            ..Default::default()
        };
        state
            .absorb(&read(vec![change(12, 2)], Some(100)), true, at(0))
            .unwrap();
        state.bound_new_gaps(120);
        // An incomplete read proves nothing about the gap.
        state.absorb(&read(vec![], Some(121)), false, at(1)).unwrap();
        assert_eq!(state.gaps.len(), 1);
        // A complete read after every writer below the bound ended: a rollback.
        state.absorb(&read(vec![], Some(121)), true, at(1)).unwrap();
        assert!(state.gaps.is_empty());
        // A repeated entry is not applied twice, and never moves the position back.
        state
            .absorb(&read(vec![change(12, 2)], Some(121)), true, at(2))
            .unwrap();
        assert_eq!(state.position, Some(12));
    }

    #[test]
    fn where_positions_appear_in_order_nothing_is_kept_as_a_gap() {
        let mut state = State {
            position: Some(10),
            ..Default::default()
        };
        state.absorb(&read(vec![change(12, 2)], None), true, at(0)).unwrap();
        assert!(state.gaps.is_empty());
        assert_eq!(state.position, Some(12));
    }
}
