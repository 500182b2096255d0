//! Use cases of cohort: the only crate that combines the store with the domain.
//!
//! It opens the store chosen by a database URL, owns the clock (injected in tests),
//! issues and verifies API keys, parses import files, builder and promotion definitions
//! and loads the demo data set.

pub mod activities;
pub mod automation;
pub mod builders;
pub mod building;
pub mod clock;
pub mod demo;
pub mod external;
pub mod import;
pub mod index;
pub mod jobs;
pub mod keys;
mod open;
pub mod profiles;
pub mod promotions;
pub mod provider;
pub mod schedule;
pub mod targeting;

use std::sync::Arc;

use cohort_store::Store;

pub use clock::{Clock, FileClock, ManualClock, SystemClock};
pub use keys::{AuthError, Keys, NewKey};
pub use open::{default_database_url, open_store};

/// Everything a request handler or command needs.
#[derive(Clone)]
pub struct App {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub keys: Arc<Keys>,
    pub segments: Arc<provider::SegmentProvider>,
    /// Known customers' profiles in memory: every writer of a customer's facts or
    /// memberships in this process forgets its entry after committing.
    pub profiles: Arc<profiles::Profiles>,
    pub index: Arc<index::LiveIndex>,
    pub builds: Arc<building::Builds>,
    pub jobs: Arc<jobs::Jobs>,
    pub promotions: Arc<promotions::service::Promotions>,
    pub targeting: Arc<targeting::TargetingService>,
    pub automation: Arc<automation::Automations>,
}

impl App {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        let keys = Arc::new(Keys::new(store.clone(), clock.clone()));
        let segments = Arc::new(provider::SegmentProvider::new(store.clone(), clock.clone()));
        let profiles = segments.profiles.clone();
        let index = Arc::new(index::LiveIndex::new(store.clone(), clock.clone(), profiles.clone()));
        let automation = Arc::new(automation::Automations::new(
            store.clone(),
            clock.clone(),
            index.clone(),
            profiles.clone(),
        ));
        let builds = Arc::new(building::Builds::new(
            store.clone(),
            clock.clone(),
            automation.clone(),
            profiles.clone(),
        ));
        let jobs = Arc::new(jobs::Jobs::new(builds.clone(), clock.clone()));
        let promotions = Arc::new(promotions::service::Promotions::new(
            store.clone(),
            clock.clone(),
            segments.clone(),
        ));
        let targeting = Arc::new(targeting::TargetingService::new(
            store.clone(),
            clock.clone(),
            segments.clone(),
            automation.clone(),
            targeting::TargetingSettings::default(),
        ));
        Self {
            store,
            clock,
            keys,
            segments,
            profiles,
            index,
            builds,
            jobs,
            promotions,
            targeting,
            automation,
        }
    }

    /// Targeting with other settings (a GeoIP database, the session timeout, the
    /// token secret). Call before serving: visitors kept by the previous targeting
    /// service are not carried over.
    pub fn with_targeting(mut self, settings: targeting::TargetingSettings) -> Self {
        self.targeting = Arc::new(targeting::TargetingService::new(
            self.store.clone(),
            self.clock.clone(),
            self.segments.clone(),
            self.automation.clone(),
            settings,
        ));
        self
    }

    /// Automation signing its webhooks with `secret` (shared with their receivers).
    pub fn with_webhook_secret(self, secret: Option<&str>) -> Self {
        if let Some(secret) = secret {
            self.automation.set_webhook_secret(secret);
        }
        self
    }

    pub fn now(&self) -> cohort_core::Timestamp {
        self.clock.now()
    }
}
