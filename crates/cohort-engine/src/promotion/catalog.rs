//! The promotion catalog: every promotion checked and compiled once, when promotions
//! or an application's type priorities change, so a calculation only walks numbers.
//!
//! Skus, categories, customers, segments, services and attributes named by any
//! promotion are interned to small integers; condition trees live in one arena, target
//! lists in flat arrays, equal product scopes once. Each application's enabled
//! promotions are ranked once with its priority table — higher effective priority
//! first, then the newest start (no start counts as oldest), then the lowest id — and
//! their `Hot` records stored in that order.

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};

use cohort_core::{ApplicationId, Invalid, Promotion, PromotionId, PromotionTarget, QualifiedSegment, TypePriorities};

use crate::promotion::compiled::{self, Compiled, Hot, Scope, Tables};
use crate::promotion::conditions::Conditions;
use crate::promotion::intern::Interner;

#[derive(Debug, Clone)]
struct Ranking {
    priorities: TypePriorities,
    /// The application's enabled promotions, best first.
    hot: Vec<Hot>,
}

/// Every promotion, compiled, with each application's ranking.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub(crate) promotions: Vec<Compiled>,
    pub(crate) interner: Interner,
    pub(crate) conditions: Conditions,
    pub(crate) scopes: Vec<Scope>,
    pub(crate) customers: Vec<u32>,
    pub(crate) segments: Vec<u32>,
    by_id: HashMap<PromotionId, usize>,
    rankings: HashMap<ApplicationId, Ranking>,
}

impl Catalog {
    /// Checks and compiles the promotions; `priorities` overrides the default type
    /// priorities of some applications. Errors name the promotion by its position
    /// (`[3].budget`) or a repeated id.
    pub fn compile(
        promotions: Vec<Promotion>,
        priorities: &HashMap<ApplicationId, TypePriorities>,
    ) -> Result<Self, Invalid> {
        let mut tables = Tables::new();
        let mut by_id = HashMap::new();
        let mut compiled = Vec::with_capacity(promotions.len());
        for (i, promotion) in promotions.into_iter().enumerate() {
            let promotion = promotion.checked().map_err(|e| e.within(&format!("[{i}]")))?;
            if by_id.insert(promotion.id, i).is_some() {
                return Err(Invalid::new(
                    format!("[{i}].id"),
                    format!("promotion {} is defined twice", promotion.id),
                ));
            }
            compiled.push(compiled::compile(i as u32, promotion, &mut tables));
        }
        let mut rankings: HashMap<ApplicationId, Ranking> = HashMap::new();
        let applications = priorities
            .keys()
            .chain(compiled.iter().flat_map(|c| c.definition.applications.iter()));
        for application in applications {
            if rankings.contains_key(application) {
                continue;
            }
            let table = priorities.get(application).copied().unwrap_or_default();
            let mut members: Vec<&Compiled> = compiled
                .iter()
                .filter(|c| c.definition.enabled && c.definition.applications.contains(application))
                .collect();
            members.sort_by_key(|c| {
                let p = &c.definition;
                (
                    Reverse(p.effective_priority(&table)),
                    Reverse(p.starts_at.map_or(i64::MIN, |t| t.unix_micros())),
                    p.id,
                )
            });
            let hot = members.into_iter().map(|c| c.hot.clone()).collect();
            rankings.insert(application.clone(), Ranking { priorities: table, hot });
        }
        Ok(Self {
            promotions: compiled,
            interner: tables.interner,
            conditions: tables.conditions,
            scopes: tables.scopes,
            customers: tables.customers,
            segments: tables.segments,
            by_id,
            rankings,
        })
    }

    pub fn len(&self) -> usize {
        self.promotions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.promotions.is_empty()
    }

    pub fn get(&self, id: PromotionId) -> Option<&Promotion> {
        self.by_id.get(&id).map(|i| &self.promotions[*i].definition)
    }

    /// The type priorities the application's promotions are ranked with.
    pub fn priorities(&self, application: &ApplicationId) -> TypePriorities {
        self.rankings.get(application).map(|r| r.priorities).unwrap_or_default()
    }

    /// The enabled promotions of an application, in the order a calculation walks them.
    pub fn ranked(&self, application: &ApplicationId) -> impl Iterator<Item = &Promotion> {
        self.hot(application)
            .iter()
            .map(|h| &self.promotions[h.index as usize].definition)
    }

    /// Which of the segments assigned to promotions are available, for contexts of an
    /// application providing `available`. Computed once when the application's
    /// segments change (a service activated, stopped, or a segment deleted), not per
    /// calculation.
    pub fn availability(&self, available: &HashSet<QualifiedSegment>) -> Availability {
        Availability(
            self.interner
                .segment_names
                .iter()
                .map(|(name, _)| available.contains(&**name))
                .collect(),
        )
    }

    /// The assigned segments of the application's promotions that the application does
    /// not provide (a stopped service, a deleted segment): they qualify no one there.
    /// For listing promotions; a calculation reports such a segment
    /// (`segment_not_available`) to a customer it does not qualify.
    pub fn unavailable_segments(
        &self,
        application: &ApplicationId,
        available: &HashSet<QualifiedSegment>,
    ) -> Vec<(PromotionId, QualifiedSegment)> {
        let mut stale = Vec::new();
        for hot in self.hot(application) {
            if let PromotionTarget::Segments(segments) = &self.cold(hot).definition.target {
                stale.extend(
                    segments
                        .iter()
                        .filter(|s| !available.contains(*s))
                        .map(|s| (hot.id, s.clone())),
                );
            }
        }
        stale
    }

    pub(crate) fn hot(&self, application: &ApplicationId) -> &[Hot] {
        self.rankings.get(application).map_or(&[], |r| &r.hot)
    }

    pub(crate) fn cold(&self, hot: &Hot) -> &Compiled {
        &self.promotions[hot.index as usize]
    }
}

/// Whether each segment assigned to a promotion of a catalog is available in an
/// application (`Catalog::availability`); valid for that catalog only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Availability(Vec<bool>);

impl Availability {
    /// An interned segment; one unknown to the catalog that built this is unavailable.
    pub(crate) fn has(&self, id: u32) -> bool {
        self.0.get(id as usize).copied().unwrap_or(false)
    }
}
