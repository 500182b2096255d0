//! Numbers for the names promotions use: skus, categories, customers and segments (with
//! their service). A calculation looks a basket's names up
//! once and then compares numbers.

use std::sync::Arc;

use cohort_core::{CustomerId, QualifiedSegment, ServiceId};

use crate::promotion::hash::FastMap;

#[derive(Debug, Clone, Default)]
pub(crate) struct Interner {
    pub skus: FastMap<String, u32>,
    pub categories: FastMap<String, u32>,
    pub customers: FastMap<CustomerId, u32>,
    pub segments: FastMap<QualifiedSegment, u32>,
    /// By segment number: the segment and the number of its service.
    pub segment_names: Vec<(Arc<QualifiedSegment>, u32)>,
    pub services: Vec<ServiceId>,
}

fn intern<K: std::hash::Hash + Eq + Clone>(map: &mut FastMap<K, u32>, key: &K) -> u32 {
    let next = map.len() as u32;
    *map.entry(key.clone()).or_insert(next)
}

impl Interner {
    pub fn sku(&mut self, sku: &str) -> u32 {
        intern(&mut self.skus, &sku.to_owned())
    }

    pub fn category(&mut self, category: &str) -> u32 {
        intern(&mut self.categories, &category.to_owned())
    }

    pub fn customer(&mut self, customer: &CustomerId) -> u32 {
        intern(&mut self.customers, customer)
    }

    pub fn segment(&mut self, segment: &QualifiedSegment) -> u32 {
        if let Some(id) = self.segments.get(segment) {
            return *id;
        }
        let service = match self.services.iter().position(|s| *s == segment.service) {
            Some(i) => i as u32,
            None => {
                self.services.push(segment.service.clone());
                (self.services.len() - 1) as u32
            }
        };
        let id = self.segment_names.len() as u32;
        self.segment_names.push((Arc::new(segment.clone()), service));
        self.segments.insert(segment.clone(), id);
        id
    }
}
