//! The client of `http` segmentation services: one customer's segments from an
//! external system, with a timeout, an answer cache and a circuit breaker, so a slow,
//! failing or stopped service never fails the caller.
//!
//! Contract (JSON over HTTP, documented in the README):
//! - `GET {base_url}/customers/{id}/segments` → `200 {"segments": [{"reference": "premium",
//!   "group": "value", "name": "Premium"}]}` (`group` and `name` optional); `404` means the
//!   system does not know the customer: no segments.
//! - `GET {base_url}/segments` → the same shape: every segment the service can provide.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// How late tokio's millisecond timer may fire.
const TIMER_SLACK: Duration = Duration::from_millis(1);

use cohort_core::{CustomerId, HttpSettings, ReferenceKey, ServiceId, Timestamp};
use serde::Deserialize;

use crate::Clock;

/// A segment as an external service names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalSegment {
    pub group: Option<ReferenceKey>,
    pub reference: ReferenceKey,
    pub name: Option<String>,
}

/// Why a service contributed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unanswered {
    #[error("no answer within {0} ms")]
    Timeout(u32),
    #[error("circuit open after repeated failures")]
    CircuitOpen,
    #[error("request failed: {0}")]
    Failed(String),
    #[error("invalid answer: {0}")]
    Invalid(String),
}

#[derive(Debug, Deserialize)]
struct Answer {
    segments: Vec<AnswerSegment>,
}

#[derive(Debug, Deserialize)]
struct AnswerSegment {
    reference: String,
    group: Option<String>,
    name: Option<String>,
}

#[derive(Debug, Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Timestamp>,
}

/// Largest answer read from a service.
const MAX_ANSWER: usize = 4 << 20;

/// Most cached answers kept per process; past it the cache starts afresh.
const CACHE_LIMIT: usize = 100_000;

type CacheKey = (ServiceId, String);

pub struct ExternalServices {
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
    cache: Mutex<HashMap<CacheKey, (Vec<ExternalSegment>, Timestamp)>>,
    breakers: Mutex<HashMap<ServiceId, Breaker>>,
}

impl ExternalServices {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        let client = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(30))
            // A service answers at its own URL; redirects could point anywhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an http client with default settings builds");
        Self {
            client,
            clock,
            cache: Mutex::new(HashMap::new()),
            breakers: Mutex::new(HashMap::new()),
        }
    }

    /// One customer's segments from the service.
    pub async fn customer_segments(
        &self,
        service: &ServiceId,
        settings: &HttpSettings,
        customer: &CustomerId,
        started: Instant,
    ) -> Result<Vec<ExternalSegment>, Unanswered> {
        let url = format!(
            "{}/customers/{}/segments",
            settings.base_url,
            encode_path(customer.as_str())
        );
        self.cached_get(service, settings, customer.as_str(), &url, started)
            .await
    }

    /// Every segment the service can provide.
    pub async fn available_segments(
        &self,
        service: &ServiceId,
        settings: &HttpSettings,
        started: Instant,
    ) -> Result<Vec<ExternalSegment>, Unanswered> {
        let url = format!("{}/segments", settings.base_url);
        // Customer ids cannot contain '/', so this key never collides with a customer's.
        self.cached_get(service, settings, "/segments", &url, started).await
    }

    async fn cached_get(
        &self,
        service: &ServiceId,
        settings: &HttpSettings,
        key: &str,
        url: &str,
        started: Instant,
    ) -> Result<Vec<ExternalSegment>, Unanswered> {
        let now = self.clock.now();
        let cache_key = (service.clone(), key.to_owned());
        if let Some((segments, expires)) = self.cache.lock().expect("cache lock").get(&cache_key)
            && *expires > now
        {
            return Ok(segments.clone());
        }
        if self
            .breakers
            .lock()
            .expect("breaker lock")
            .get(service)
            .and_then(|b| b.open_until)
            .is_some_and(|t| t > now)
        {
            return Err(Unanswered::CircuitOpen);
        }
        // The timeout is a budget for the caller's whole answer, counted from its start.
        // Tokio's timer fires in the millisecond after its deadline, so it is armed that
        // millisecond early: the answer comes within the timeout, not up to 2 ms past it.
        let budget = Duration::from_millis(u64::from(settings.timeout_ms));
        let deadline = started + budget.saturating_sub(TIMER_SLACK).max(TIMER_SLACK);
        let answer = match tokio::time::timeout_at(deadline, self.fetch(url, settings.timeout_ms)).await {
            Ok(answer) => answer,
            Err(_) => Err(Unanswered::Timeout(settings.timeout_ms)),
        };
        self.record(service, settings, answer.is_ok());
        let segments = answer?;
        if settings.cache_ttl_ms > 0 {
            let mut cache = self.cache.lock().expect("cache lock");
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
            let expires = self.clock.now().plus_micros(i64::from(settings.cache_ttl_ms) * 1_000);
            cache.insert(cache_key, (segments.clone(), expires));
        }
        Ok(segments)
    }

    async fn fetch(&self, url: &str, timeout_ms: u32) -> Result<Vec<ExternalSegment>, Unanswered> {
        let failed = |e: reqwest::Error| {
            if e.is_timeout() {
                Unanswered::Timeout(timeout_ms)
            } else {
                Unanswered::Failed(e.to_string())
            }
        };
        let timeout = Duration::from_millis(u64::from(timeout_ms));
        let response = self.client.get(url).timeout(timeout).send().await.map_err(failed)?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(Vec::new());
        }
        if !response.status().is_success() {
            return Err(Unanswered::Failed(format!("status {}", response.status())));
        }
        // At most 4 MiB of answer, then parsed.
        let mut body = Vec::new();
        let mut response = response;
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            if body.len() + chunk.len() > MAX_ANSWER {
                return Err(Unanswered::Invalid(format!("answer larger than {MAX_ANSWER} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        let answer: Answer =
            serde_json::from_slice(&body).map_err(|_| Unanswered::Invalid("not the documented JSON shape".into()))?;
        answer
            .segments
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let field = format!("segments[{i}]");
                Ok(ExternalSegment {
                    group: s
                        .group
                        .map(|g| ReferenceKey::parse(&field, &g))
                        .transpose()
                        .map_err(|e| Unanswered::Invalid(e.to_string()))?,
                    reference: ReferenceKey::parse(&field, &s.reference)
                        .map_err(|e| Unanswered::Invalid(e.to_string()))?,
                    name: s.name,
                })
            })
            .collect()
    }

    fn record(&self, service: &ServiceId, settings: &HttpSettings, success: bool) {
        let mut breakers = self.breakers.lock().expect("breaker lock");
        let breaker = breakers.entry(service.clone()).or_default();
        if success {
            *breaker = Breaker::default();
        } else {
            breaker.failures += 1;
            if breaker.failures >= settings.breaker_failures {
                breaker.open_until = Some(
                    self.clock
                        .now()
                        .plus_micros(i64::from(settings.breaker_open_ms) * 1_000),
                );
                breaker.failures = 0;
            }
        }
    }
}

/// Percent-encodes a path segment.
fn encode_path(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(encode_path("C-1@shop #2"), "C-1%40shop%20%232");
    }
}
