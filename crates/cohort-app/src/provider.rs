//! The segment provider: one customer's segments, and the segments available, in an
//! application — combined from every segmentation service active and available there.
//!
//! Stored services (standard, import) are read from the customer's profile, kept in
//! memory (`profiles.rs`) or read from the store; `http` services are
//! asked concurrently, each within its timeout counted from the start of the call. A
//! service that does not answer is left out and named in the answer; it never fails
//! the caller.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use cohort_core::{
    ApplicationId, CustomerId, Membership, QualifiedSegment, SegmentationService, ServiceId, ServiceKind, Timestamp,
};
use cohort_store::{Store, StoreResult};
use futures::future::join_all;

use crate::Clock;
use crate::external::{ExternalSegment, ExternalServices, Unanswered};
use crate::profiles::{Cached, Profiles};

/// A segment as the provider returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvidedSegment {
    pub qualified: QualifiedSegment,
    pub name: String,
    /// For stored services: the membership (source, time, counter, expiry).
    pub membership: Option<Membership>,
}

/// A service that contributed nothing, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Silent {
    pub service: ServiceId,
    pub reason: Unanswered,
}

/// The combined answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provided {
    pub segments: Vec<ProvidedSegment>,
    /// Services active and available in the application that did not answer.
    pub unanswered: Vec<Silent>,
}

/// How long an application's services are used without reading them again (changes
/// made through this process are seen at once: `services_changed`).
const SERVICES_FRESH_MICROS: i64 = 1_000_000;

type ServicesOf = Arc<Vec<SegmentationService>>;

pub struct SegmentProvider {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    external: ExternalServices,
    /// Known customers' profiles, kept current by every writer.
    pub profiles: Arc<Profiles>,
    /// Each application's active and available services, with when they were read.
    services: Mutex<HashMap<ApplicationId, (Timestamp, ServicesOf)>>,
    /// Moves with every `services_changed`: a read that started before a change is not kept.
    generation: AtomicU64,
}

impl SegmentProvider {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        let external = ExternalServices::new(clock.clone());
        Self {
            store,
            clock,
            external,
            profiles: Arc::new(Profiles::default()),
            services: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
        }
    }

    /// To be called after a service, its availability, its settings or its activation in
    /// an application changed: the next answers read them again.
    pub fn services_changed(&self) {
        self.profiles.forget_all();
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.services.lock().expect("services lock").clear();
    }

    /// The services active and available in the application. Read from the store at
    /// most once a second per application (other processes' changes show within that).
    async fn services(&self, app: &ApplicationId) -> StoreResult<ServicesOf> {
        let now = self.clock.now();
        if let Some((at, services)) = self.services.lock().expect("services lock").get(app)
            && now.unix_micros().saturating_sub(at.unix_micros()) < SERVICES_FRESH_MICROS
        {
            return Ok(services.clone());
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let services: ServicesOf = Arc::new(
            self.store
                .application_services(app)
                .await?
                .into_iter()
                .filter(|s| s.available)
                .collect(),
        );
        let mut cache = self.services.lock().expect("services lock");
        if self.generation.load(Ordering::SeqCst) == generation {
            cache.insert(app.clone(), (now, services.clone()));
        }
        Ok(services)
    }

    /// The customer's segments in the application. A customer cohort does not know
    /// has no stored segments; http services are asked all the same.
    pub async fn customer_segments(&self, app: &ApplicationId, customer: &CustomerId) -> StoreResult<Provided> {
        Ok(self.customer_segments_and_profile(app, customer).await?.0)
    }

    /// The customer's segments in the application and the profile they were taken
    /// from, with its facts (`None`: a customer cohort does not know).
    pub async fn customer_segments_and_profile(
        &self,
        app: &ApplicationId,
        customer: &CustomerId,
    ) -> StoreResult<(Provided, Option<Arc<Cached>>)> {
        let started = tokio::time::Instant::now();
        let services = self.services(app).await?;
        let stored: Vec<ServiceId> = services
            .iter()
            .filter(|s| s.kind.stores_segments())
            .map(|s| s.id.clone())
            .collect();
        let now = self.clock.now();
        let stored_read = self.profiles.profile(self.store.as_ref(), customer, &stored, now);
        let asked = join_all(services.iter().filter_map(|s| match &s.kind {
            ServiceKind::Http(settings) => Some(async move {
                (
                    s.id.clone(),
                    self.external
                        .customer_segments(&s.id, settings, customer, started)
                        .await,
                )
            }),
            _ => None,
        }));
        let (stored_read, answers) = futures::join!(stored_read, asked);
        let profile = stored_read?;
        let mut provided = Provided::default();
        let held = profile.iter().flat_map(|p| &p.profile.memberships);
        for (membership, grouped) in held.filter(|(m, _)| m.is_live(now)) {
            provided.segments.push(ProvidedSegment {
                qualified: QualifiedSegment {
                    service: grouped.group.service.clone(),
                    group: Some(grouped.group.reference.clone()),
                    segment: grouped.segment.reference.clone(),
                },
                name: grouped.segment.name.to_string(),
                membership: Some(membership.clone()),
            });
        }
        collect_external(&mut provided, answers);
        Ok((provided, profile))
    }

    /// Every segment available in the application.
    pub async fn available_segments(&self, app: &ApplicationId) -> StoreResult<Provided> {
        let started = tokio::time::Instant::now();
        let services = self.services(app).await?;
        let stored: Vec<ServiceId> = services
            .iter()
            .filter(|s| s.kind.stores_segments())
            .map(|s| s.id.clone())
            .collect();
        let asked = join_all(services.iter().filter_map(|s| match &s.kind {
            ServiceKind::Http(settings) => Some(async move {
                (
                    s.id.clone(),
                    self.external.available_segments(&s.id, settings, started).await,
                )
            }),
            _ => None,
        }));
        let (stored_rows, answers) = futures::join!(self.store.service_segments(&stored), asked);
        let mut provided = Provided::default();
        for grouped in stored_rows? {
            provided.segments.push(ProvidedSegment {
                qualified: QualifiedSegment {
                    service: grouped.group.service.clone(),
                    group: Some(grouped.group.reference.clone()),
                    segment: grouped.segment.reference.clone(),
                },
                name: grouped.segment.name.into_string(),
                membership: None,
            });
        }
        collect_external(&mut provided, answers);
        Ok(provided)
    }
}

fn collect_external(provided: &mut Provided, answers: Vec<(ServiceId, Result<Vec<ExternalSegment>, Unanswered>)>) {
    for (service, answer) in answers {
        match answer {
            Ok(segments) => provided.segments.extend(segments.into_iter().map(|s| ProvidedSegment {
                name: s.name.unwrap_or_else(|| s.reference.to_string()),
                qualified: QualifiedSegment {
                    service: service.clone(),
                    group: s.group,
                    segment: s.reference,
                },
                membership: None,
            })),
            Err(reason) => {
                tracing::warn!(%service, %reason, "segmentation service did not answer");
                provided.unanswered.push(Silent { service, reason });
            }
        }
    }
}
