//! Known customers' profiles kept in memory: what a basket calculation or a targeting
//! decision reads of a customer (its facts and stored memberships), so that a known
//! customer costs no database read while its profile stays current.
//!
//! An entry is dropped
//! - at once when this process changes the customer (`forget`: every writer of facts,
//!   memberships or orders calls it after its commit, before answering) or the names
//!   of segments (`forget_all`);
//! - when the membership log shows that any process changed the customer's existence,
//!   memberships, attributes or consent (`forget_keys`, fed by the live index);
//! - after `TTL_MICROS`, which bounds what no log records: orders recorded and segments
//!   renamed by other processes (placing an order re-checks the order count anyway).
//!
//! A read that started before a `forget` of its customer is not kept: each shard counts
//! its forgets, the log's forgets move one generation, and a read is kept only if
//! neither moved while it ran. Locks are taken shard first, then the key map. Unknown
//! customers are not kept (their creation by another process would have no key to be
//! forgotten by). At most about 65,536 entries are kept.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use cohort_core::{CustomerId, ServiceId, Timestamp};
use cohort_store::{CustomerProfile, Store, StoreResult};

/// How long an entry is used at most.
pub const TTL_MICROS: i64 = 10_000_000;
/// Entries kept per shard by default; a full shard drops its expired entries, then
/// any one.
const PER_SHARD: usize = 1_024;
const SHARDS: usize = 64;

/// A profile as read, with the services whose memberships it holds.
#[derive(Debug)]
pub struct Cached {
    pub profile: CustomerProfile,
    pub services: Vec<ServiceId>,
    pub read_at: Timestamp,
}

/// What `lookup` found.
enum Lookup {
    Kept(Arc<Cached>),
    Missing(Ticket),
}

/// The forget counts a read started under.
#[derive(Debug, Clone, Copy)]
struct Ticket {
    forgets: u64,
    generation: u64,
}

fn fresh(cached: &Cached, now: Timestamp) -> bool {
    now.unix_micros().saturating_sub(cached.read_at.unix_micros()) < TTL_MICROS
}

#[derive(Default)]
struct Shard {
    entries: HashMap<CustomerId, Arc<Cached>>,
    forgets: u64,
}

pub struct Profiles {
    shards: Box<[Mutex<Shard>]>,
    /// Customer key → id of the entries kept (and of those being kept, with how many
    /// `keep` calls for it are under way), for forgetting by the log's keys.
    ids: Mutex<HashMap<i64, (CustomerId, u32)>>,
    /// Moves with every `forget_keys` and `forget_all`.
    generation: AtomicU64,
    per_shard: usize,
    /// Profiles answered from memory, and read from the store.
    hits: AtomicU64,
    reads: AtomicU64,
}

/// How the kept profiles are used (for metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileCounts {
    pub kept: usize,
    pub from_memory: u64,
    pub from_store: u64,
}

impl Default for Profiles {
    fn default() -> Self {
        Self::with_capacity(PER_SHARD * SHARDS)
    }
}

impl Profiles {
    /// Keeps about `entries` profiles at most.
    pub fn with_capacity(entries: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            ids: Mutex::default(),
            generation: AtomicU64::new(0),
            per_shard: entries.div_ceil(SHARDS).max(1),
            hits: AtomicU64::new(0),
            reads: AtomicU64::new(0),
        }
    }

    fn shard(&self, customer: &CustomerId) -> &Mutex<Shard> {
        let mut hasher = DefaultHasher::new();
        customer.hash(&mut hasher);
        &self.shards[hasher.finish() as usize % SHARDS]
    }

    /// The customer's profile with its memberships in `services` (`None`: unknown),
    /// from memory when kept and fresh, else read from the store and kept.
    pub async fn profile(
        &self,
        store: &dyn Store,
        customer: &CustomerId,
        services: &[ServiceId],
        now: Timestamp,
    ) -> StoreResult<Option<Arc<Cached>>> {
        let ticket = match self.lookup(customer, services, now) {
            Lookup::Kept(cached) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(Some(cached));
            }
            Lookup::Missing(ticket) => ticket,
        };
        self.reads.fetch_add(1, Ordering::Relaxed);
        let Some(profile) = store.customer_profile(customer, services, now).await? else {
            return Ok(None);
        };
        let cached = Arc::new(Cached {
            profile,
            services: services.to_vec(),
            read_at: now,
        });
        self.keep(customer, ticket, cached.clone());
        Ok(Some(cached))
    }

    /// The customer's entry if kept, fresh at `now` and for these services; else the
    /// ticket to keep what is read next.
    fn lookup(&self, customer: &CustomerId, services: &[ServiceId], now: Timestamp) -> Lookup {
        let shard = self.shard(customer).lock().expect("profiles lock");
        if let Some(cached) = shard.entries.get(customer)
            && cached.services == services
            && fresh(cached, now)
        {
            return Lookup::Kept(cached.clone());
        }
        Lookup::Missing(Ticket {
            forgets: shard.forgets,
            generation: self.generation.load(Ordering::SeqCst),
        })
    }

    /// Keeps what was read after `lookup` gave `ticket`, unless the customer (or the
    /// log) was forgotten since; `true` if kept.
    fn keep(&self, customer: &CustomerId, ticket: Ticket, cached: Arc<Cached>) -> bool {
        let key = cached.profile.key;
        // The key is known before the entry is visible: a `forget_keys` from then on
        // finds it. While this call runs, the key is not dropped with an entry.
        self.ids
            .lock()
            .expect("profiles lock")
            .entry(key)
            .and_modify(|(id, keeping)| {
                id.clone_from(customer);
                *keeping += 1;
            })
            .or_insert_with(|| (customer.clone(), 1));
        let mut shard = self.shard(customer).lock().expect("profiles lock");
        let kept = shard.forgets == ticket.forgets && self.generation.load(Ordering::SeqCst) == ticket.generation;
        if kept {
            if shard.entries.len() >= self.per_shard && !shard.entries.contains_key(customer) {
                let now = cached.read_at;
                let stale: Vec<CustomerId> = shard
                    .entries
                    .iter()
                    .filter(|(_, c)| !fresh(c, now))
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in &stale {
                    self.drop_entry(&mut shard, id);
                }
                if shard.entries.len() >= self.per_shard
                    && let Some(any) = shard.entries.keys().next().cloned()
                {
                    self.drop_entry(&mut shard, &any);
                }
            }
            shard.entries.insert(customer.clone(), cached);
        }
        let mut ids = self.ids.lock().expect("profiles lock");
        if let Some((_, keeping)) = ids.get_mut(&key) {
            *keeping -= 1;
            if *keeping == 0 && !shard.entries.contains_key(customer) {
                ids.remove(&key);
            }
        }
        kept
    }

    /// Drops an entry and its key (unless a `keep` of that key is under way).
    fn drop_entry(&self, shard: &mut Shard, customer: &CustomerId) {
        if let Some(gone) = shard.entries.remove(customer) {
            let mut ids = self.ids.lock().expect("profiles lock");
            if ids.get(&gone.profile.key).is_some_and(|(_, keeping)| *keeping == 0) {
                ids.remove(&gone.profile.key);
            }
        }
    }

    /// Drops the customer's entry, and keeps no read of it already under way.
    pub fn forget(&self, customer: &CustomerId) {
        let mut shard = self.shard(customer).lock().expect("profiles lock");
        shard.forgets += 1;
        self.drop_entry(&mut shard, customer);
    }

    /// `forget` for each customer.
    pub fn forget_each<'a>(&self, customers: impl IntoIterator<Item = &'a CustomerId>) {
        for customer in customers {
            self.forget(customer);
        }
    }

    /// Drops the entries of the customers with these keys (as the membership log names
    /// them), and keeps no read under way.
    pub fn forget_keys(&self, keys: impl IntoIterator<Item = i64>) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        let forgotten: Vec<CustomerId> = {
            let mut ids = self.ids.lock().expect("profiles lock");
            keys.into_iter()
                .filter_map(|k| ids.remove(&k))
                .map(|(id, _)| id)
                .collect()
        };
        self.forget_each(&forgotten);
    }

    /// Drops every entry (segments or groups renamed, moved or deleted).
    pub fn forget_all(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        for shard in self.shards.iter() {
            let mut shard = shard.lock().expect("profiles lock");
            shard.forgets += 1;
            shard.entries.clear();
        }
        self.ids.lock().expect("profiles lock").clear();
    }

    /// Entries kept and profiles answered so far, from memory and from the store.
    pub fn counts(&self) -> ProfileCounts {
        ProfileCounts {
            kept: self.len(),
            from_memory: self.hits.load(Ordering::Relaxed),
            from_store: self.reads.load(Ordering::Relaxed),
        }
    }

    /// Entries kept (for tests and metrics).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().expect("profiles lock").entries.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use cohort_core::Attributes;
    use cohort_store::CustomerFacts;

    use super::*;

    fn id(text: &str) -> CustomerId {
        CustomerId::parse("id", text).unwrap()
    }

    fn at(micros: i64) -> Timestamp {
        Timestamp::from_unix_micros(1_790_000_000_000_000 + micros)
    }

    fn read(key: i64, orders: u32, now: Timestamp) -> Arc<Cached> {
        Arc::new(Cached {
            profile: CustomerProfile {
                key,
                facts: CustomerFacts {
                    attributes: Attributes::default(),
                    orders,
                    profiling_consent: false,
                },
                memberships: Vec::new(),
            },
            services: vec![ServiceId::standard()],
            read_at: now,
        })
    }

    fn ticket(profiles: &Profiles, customer: &CustomerId, now: Timestamp) -> Ticket {
        match profiles.lookup(customer, &[ServiceId::standard()], now) {
            Lookup::Missing(ticket) => ticket,
            Lookup::Kept(_) => panic!("{customer} is kept"),
        }
    }

    fn orders(profiles: &Profiles, customer: &CustomerId, now: Timestamp) -> Option<u32> {
        match profiles.lookup(customer, &[ServiceId::standard()], now) {
            Lookup::Kept(cached) => Some(cached.profile.facts.orders),
            Lookup::Missing(_) => None,
        }
    }

    #[test]
    fn a_kept_profile_is_used_until_forgotten() {
        let profiles = Profiles::default();
        let c1 = id("c1");
        let t = ticket(&profiles, &c1, at(0));
        assert!(profiles.keep(&c1, t, read(1, 3, at(0))));
        assert_eq!(orders(&profiles, &c1, at(5)), Some(3));
        profiles.forget(&c1);
        assert_eq!(orders(&profiles, &c1, at(5)), None);
    }

    #[test]
    fn a_read_under_way_when_its_customer_is_forgotten_is_not_kept() {
        let profiles = Profiles::default();
        let c1 = id("c1");
        let elsewhere = (2..)
            .map(|n| id(&format!("c{n}")))
            .find(|c| !std::ptr::eq(profiles.shard(c), profiles.shard(&c1)))
            .unwrap();
        let t1 = ticket(&profiles, &c1, at(0));
        let t2 = ticket(&profiles, &elsewhere, at(0));
        profiles.forget(&c1);
        assert!(!profiles.keep(&c1, t1, read(1, 3, at(0))));
        assert_eq!(orders(&profiles, &c1, at(0)), None);
        assert!(profiles.ids.lock().unwrap().is_empty(), "no key is kept for it");
        // A forget in another shard does not stop it.
        assert!(profiles.keep(&elsewhere, t2, read(2, 1, at(0))));
        assert_eq!(orders(&profiles, &elsewhere, at(0)), Some(1));
    }

    #[test]
    fn the_log_forgets_by_key_and_stops_reads_under_way() {
        let profiles = Profiles::default();
        let (c1, c2) = (id("c1"), id("c2"));
        let t = ticket(&profiles, &c1, at(0));
        assert!(profiles.keep(&c1, t, read(1, 3, at(0))));
        let t = ticket(&profiles, &c2, at(0));
        assert!(profiles.keep(&c2, t, read(2, 5, at(0))));
        let under_way = ticket(&profiles, &id("c3"), at(0));
        profiles.forget_keys([1, 99]);
        assert_eq!(orders(&profiles, &c1, at(0)), None);
        assert_eq!(orders(&profiles, &c2, at(0)), Some(5), "another key stays");
        assert!(!profiles.keep(&id("c3"), under_way, read(3, 0, at(0))));
    }

    #[test]
    fn a_profile_is_read_again_after_its_time_or_for_other_services() {
        let profiles = Profiles::default();
        let c1 = id("c1");
        let t = ticket(&profiles, &c1, at(0));
        assert!(profiles.keep(&c1, t, read(1, 3, at(0))));
        assert_eq!(orders(&profiles, &c1, at(TTL_MICROS - 1)), Some(3));
        assert_eq!(orders(&profiles, &c1, at(TTL_MICROS)), None);
        let crm = ServiceId::parse("id", "crm").unwrap();
        assert!(matches!(
            profiles.lookup(&c1, &[ServiceId::standard(), crm], at(0)),
            Lookup::Missing(_)
        ));
    }

    #[test]
    fn a_full_cache_drops_entries_to_stay_within_its_capacity() {
        let profiles = Profiles::with_capacity(64);
        for n in 0..1_000 {
            let c = id(&format!("c{n}"));
            let t = ticket(&profiles, &c, at(0));
            assert!(profiles.keep(&c, t, read(n, 0, at(0))));
        }
        assert!(profiles.len() <= 64, "{} kept", profiles.len());
        assert!(
            profiles.ids.lock().unwrap().len() <= 64,
            "keys of dropped entries are dropped"
        );
        profiles.forget_all();
        assert!(profiles.is_empty());
    }
}
