//! Visitors kept in memory, written behind to the store.
//!
//! A request changes its visitor's state under the lock of one of 64 shards (the
//! decision is microseconds of pure work, never an await). A visitor not in memory is
//! read from the store first. Changed visitors are saved in batches by `flush` —
//! every second by the server's worker, and once more on graceful shutdown — so a
//! request never waits for a write. Each entry counts its changes: a flush marks an
//! entry clean only if nothing changed it while the batch was being written. Clean
//! visitors idle longer than a session are dropped from memory after a flush. A
//! panic under a shard lock does not poison it: the state is plain data, and a
//! half-applied decision is still a valid state.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, PoisonError};

use cohort_core::targeting::VisitorState;
use cohort_core::{Timestamp, VisitorId};
use cohort_store::{Store, StoreResult, StoredVisitor};
use rand::Rng;

const SHARDS: usize = 64;
/// Visitors per store call of a flush.
const FLUSH_BATCH: usize = 2_000;

struct Entry {
    state: VisitorState,
    /// Changes so far; `saved` is the count the store has.
    changes: u64,
    saved: u64,
}

pub struct Visitors {
    store: Arc<dyn Store>,
    shards: Box<[Mutex<HashMap<VisitorId, Entry>>]>,
    hasher: RandomState,
    /// Clean visitors idle longer than this are dropped from memory by `flush`.
    idle_micros: i64,
    flushing: tokio::sync::Mutex<()>,
}

/// A fresh visitor id: `v_` and 22 random letters and digits (about 131 bits).
pub fn new_visitor_id() -> VisitorId {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    let tail: String = (0..22)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    VisitorId::parse("visitor", &format!("v_{tail}")).expect("a generated id is valid")
}

impl Visitors {
    pub fn new(store: Arc<dyn Store>, idle_micros: i64) -> Self {
        Self {
            store,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            idle_micros,
            flushing: tokio::sync::Mutex::new(()),
        }
    }

    fn shard(&self, id: &VisitorId) -> &Mutex<HashMap<VisitorId, Entry>> {
        &self.shards[(self.hasher.hash_one(id) as usize) % SHARDS]
    }

    /// Runs `change` on the visitor's state (a new one, started at `now`, if cohort
    /// does not know it) and keeps the result to be saved. `change` is told whether
    /// the visitor is new. `issued`: the id was just generated, so the store is not
    /// asked for it.
    pub async fn change<R>(
        &self,
        id: &VisitorId,
        issued: bool,
        now: Timestamp,
        change: impl FnOnce(&mut VisitorState, bool) -> R,
    ) -> StoreResult<R> {
        if let Some(entry) = self
            .shard(id)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(id)
        {
            entry.changes += 1;
            return Ok(change(&mut entry.state, false));
        }
        let stored = if issued {
            None
        } else {
            self.store.visitors(std::slice::from_ref(id)).await?.pop()
        };
        let known = stored.is_some();
        let mut inserted = false;
        let mut shard = self.shard(id).lock().unwrap_or_else(PoisonError::into_inner);
        let entry = shard.entry(id.clone()).or_insert_with(|| {
            inserted = true;
            Entry {
                state: stored.map_or_else(|| VisitorState::new(now), |v| v.state),
                changes: 0,
                saved: 0,
            }
        });
        entry.changes += 1;
        Ok(change(&mut entry.state, inserted && !known))
    }

    /// A copy of the visitor's state, from memory or the store.
    pub async fn get(&self, id: &VisitorId) -> StoreResult<Option<VisitorState>> {
        if let Some(entry) = self.shard(id).lock().unwrap_or_else(PoisonError::into_inner).get(id) {
            return Ok(Some(entry.state.clone()));
        }
        Ok(self
            .store
            .visitors(std::slice::from_ref(id))
            .await?
            .pop()
            .map(|v| v.state))
    }

    /// Visitors in memory.
    pub fn resident(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    /// Visitors changed and not saved yet.
    pub fn unsaved(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .expect("visitor shard")
                    .values()
                    .filter(|e| e.changes != e.saved)
                    .count()
            })
            .sum()
    }

    /// Saves every changed visitor, then drops clean ones idle since before `now`
    /// minus the idle time. Returns how many were saved. On an error, what was not
    /// saved stays changed and is saved by a later flush.
    pub async fn flush(&self, now: Timestamp) -> StoreResult<usize> {
        let _one = self.flushing.lock().await;
        let mut batch: Vec<(StoredVisitor, u64)> = Vec::new();
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            batch.extend(shard.iter().filter(|(_, e)| e.changes != e.saved).map(|(id, e)| {
                (
                    StoredVisitor {
                        id: id.clone(),
                        state: e.state.clone(),
                    },
                    e.changes,
                )
            }));
        }
        // In key order, each store call updates one stretch of the table's pages: a page
        // is written to the log once a flush, not once per call that touches it.
        batch.sort_unstable_by(|(a, _), (b, _)| a.id.cmp(&b.id));
        let mut saved = 0;
        for chunk in batch.chunks(FLUSH_BATCH) {
            let visitors: Vec<StoredVisitor> = chunk.iter().map(|(v, _)| v.clone()).collect();
            self.store.save_visitors(&visitors).await?;
            for (visitor, changes) in chunk {
                if let Some(entry) = self
                    .shard(&visitor.id)
                    .lock()
                    .expect("visitor shard")
                    .get_mut(&visitor.id)
                {
                    entry.saved = entry.saved.max(*changes);
                }
            }
            saved += chunk.len();
        }
        let idle_before = now.unix_micros().saturating_sub(self.idle_micros);
        for shard in self.shards.iter() {
            shard
                .lock()
                .expect("visitor shard")
                .retain(|_, e| e.changes != e.saved || e.state.last_seen.unix_micros() >= idle_before);
        }
        Ok(saved)
    }
}
