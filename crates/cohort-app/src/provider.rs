//! The segment provider: one customer's segments, and the segments available, in an
//! application — combined from every segmentation service active and available there.
//!
//! Stored services (standard, import) are read from the store; `http` services are
//! asked concurrently, each within its timeout counted from the start of the call. A
//! service that does not answer is left out and named in the answer; it never fails
//! the caller.

use std::sync::Arc;

use cohort_core::{
    ApplicationId, CustomerId, Membership, QualifiedSegment, SegmentationService, ServiceId, ServiceKind,
};
use cohort_store::{Store, StoreError, StoreResult};
use futures::future::join_all;

use crate::Clock;
use crate::external::{ExternalSegment, ExternalServices, Unanswered};

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

pub struct SegmentProvider {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    external: ExternalServices,
}

impl SegmentProvider {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        let external = ExternalServices::new(clock.clone());
        Self { store, clock, external }
    }

    async fn services(&self, app: &ApplicationId) -> StoreResult<Vec<SegmentationService>> {
        Ok(self
            .store
            .application_services(app)
            .await?
            .into_iter()
            .filter(|s| s.available)
            .collect())
    }

    /// The customer's segments in the application. A customer cohort does not know
    /// has no stored segments; http services are asked all the same.
    pub async fn customer_segments(&self, app: &ApplicationId, customer: &CustomerId) -> StoreResult<Provided> {
        let started = tokio::time::Instant::now();
        let services = self.services(app).await?;
        let stored: Vec<ServiceId> = services
            .iter()
            .filter(|s| s.kind.stores_segments())
            .map(|s| s.id.clone())
            .collect();
        let now = self.clock.now();
        let stored_read = async {
            match self.store.customer_service_segments(customer, &stored, now).await {
                Err(StoreError::NotFound { .. }) => Ok(Vec::new()),
                other => other,
            }
        };
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
        let (stored_rows, answers) = futures::join!(stored_read, asked);
        let mut provided = Provided::default();
        for (membership, grouped) in stored_rows? {
            provided.segments.push(ProvidedSegment {
                qualified: QualifiedSegment {
                    service: grouped.group.service.clone(),
                    group: Some(grouped.group.reference.clone()),
                    segment: grouped.segment.reference.clone(),
                },
                name: grouped.segment.name.into_string(),
                membership: Some(membership),
            });
        }
        collect_external(&mut provided, answers);
        Ok(provided)
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
