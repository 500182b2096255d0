//! Segment builders: age groups from a birth date, attribute values mapped to
//! segments, activity counts over a time window, RFM scores, and segments defined by
//! condition trees over attributes and activity aggregates.

use std::collections::{HashMap, HashSet};

use cohort_core::{AttributeName, AttributeValue, Attributes, Invalid, ReferenceKey, Timestamp};

use crate::condition::{Comparison, Condition, text};
use crate::rfm::{RfmBounds, RfmMeasure};
use crate::tree::Tree;
use cohort_core::aggregate::{Aggregate, Aggregates};

/// An age range `from..=to` (years; `to` open-ended when `None`) and its segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgeRange {
    pub from: u32,
    pub to: Option<u32>,
    pub segment: ReferenceKey,
}

/// A segment and the condition tree that puts a customer in it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionalSegment {
    pub segment: ReferenceKey,
    pub when: Tree<Condition>,
}

/// The deepest condition tree a builder accepts.
pub const MAX_TREE_DEPTH: usize = 16;

/// The most segments one builder may assign.
pub const MAX_SEGMENTS: usize = 1_000;

/// A builder as defined by a user.
#[derive(Debug, Clone, PartialEq)]
pub enum BuilderSpec {
    /// The customer's age from a date attribute picks one range.
    AgeGroups {
        attribute: AttributeName,
        ranges: Vec<AgeRange>,
    },
    /// The attribute's value (each value, for a list) picks segments; `otherwise`
    /// applies when the attribute is present but no value is mapped.
    AttributeMapping {
        attribute: AttributeName,
        mapping: Vec<(String, ReferenceKey)>,
        otherwise: Option<ReferenceKey>,
    },
    /// Customers whose count of activities of a type within the window compares with
    /// the threshold.
    ActivityCount {
        aggregate: Aggregate,
        comparison: Comparison,
        threshold: u64,
        segment: ReferenceKey,
    },
    /// Recency, frequency and monetary scores 1–5 of the activities in the window
    /// (orders: their totals are the monetary value), as segments `r1`…`r5`,
    /// `f1`…`f5`, `m1`…`m5`. Customers without one in the window get none.
    Rfm { aggregate: Aggregate },
    /// Each segment whose condition tree holds.
    Conditions { segments: Vec<ConditionalSegment> },
}

/// What a builder reads of one customer.
#[derive(Debug, Clone, Copy)]
pub struct Profile<'a> {
    pub attributes: &'a Attributes,
    /// The values of the builder's `aggregates()` (others read as zero).
    pub aggregates: &'a Aggregates,
}

/// A checked builder, ready to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledBuilder {
    spec: BuilderSpec,
    /// Every segment the builder can assign.
    segments: Vec<ReferenceKey>,
    lookup: HashMap<String, ReferenceKey>,
    aggregates: Vec<Aggregate>,
    /// The population scales of an RFM builder, once fitted.
    rfm: Option<RfmBounds>,
}

const RFM_LETTERS: [char; 3] = ['r', 'f', 'm'];

impl CompiledBuilder {
    /// Checks a definition: ranges ordered and disjoint, mapped values distinct, each
    /// segment named once, condition trees of bounded depth.
    pub fn compile(spec: BuilderSpec) -> Result<Self, Invalid> {
        let mut segments = Vec::new();
        let mut lookup = HashMap::new();
        let mut aggregates = Vec::new();
        match &spec {
            BuilderSpec::AgeGroups { ranges, .. } => {
                if ranges.is_empty() {
                    return Err(Invalid::new("ranges", "at least one range"));
                }
                let mut previous_end: Option<Option<u32>> = None;
                for (i, range) in ranges.iter().enumerate() {
                    if range.to.is_some_and(|to| to < range.from) {
                        return Err(Invalid::new(format!("ranges[{i}].to"), "must not be below from"));
                    }
                    match previous_end {
                        Some(None) => return Err(Invalid::new(format!("ranges[{i}]"), "follows an open-ended range")),
                        Some(Some(end)) if range.from <= end => {
                            return Err(Invalid::new(
                                format!("ranges[{i}].from"),
                                "ranges must be ascending and disjoint",
                            ));
                        }
                        _ => {}
                    }
                    previous_end = Some(range.to);
                    if segments.contains(&range.segment) {
                        return Err(Invalid::new(
                            format!("ranges[{i}].segment"),
                            "each range needs its own segment",
                        ));
                    }
                    segments.push(range.segment.clone());
                }
            }
            BuilderSpec::AttributeMapping { mapping, otherwise, .. } => {
                if mapping.is_empty() {
                    return Err(Invalid::new("mapping", "at least one value"));
                }
                for (i, (value, segment)) in mapping.iter().enumerate() {
                    if lookup.insert(value.clone(), segment.clone()).is_some() {
                        return Err(Invalid::new(
                            format!("mapping.{value}"),
                            format!("value {value} is mapped twice (mapping entry {i})"),
                        ));
                    }
                    segments.push(segment.clone());
                }
                segments.extend(otherwise.iter().cloned());
                let mut seen = HashSet::new();
                segments.retain(|s| seen.insert(s.clone()));
            }
            BuilderSpec::ActivityCount { aggregate, segment, .. } => {
                segments.push(segment.clone());
                aggregates.push(aggregate.clone());
            }
            BuilderSpec::Rfm { aggregate } => {
                for letter in RFM_LETTERS {
                    for score in 1..=5 {
                        segments.push(rfm_segment(letter, score));
                    }
                }
                aggregates.push(aggregate.clone());
            }
            BuilderSpec::Conditions { segments: rules } => {
                if rules.is_empty() {
                    return Err(Invalid::new("segments", "at least one segment"));
                }
                for (i, rule) in rules.iter().enumerate() {
                    if segments.contains(&rule.segment) {
                        return Err(Invalid::new(format!("segments[{i}].segment"), "named twice"));
                    }
                    if rule.when.depth() > MAX_TREE_DEPTH {
                        return Err(Invalid::new(
                            format!("segments[{i}].when"),
                            format!("nested deeper than {MAX_TREE_DEPTH} levels"),
                        ));
                    }
                    segments.push(rule.segment.clone());
                    for leaf in rule.when.leaves() {
                        if let Condition::Activity { aggregate, .. } = leaf
                            && !aggregates.contains(aggregate)
                        {
                            aggregates.push(aggregate.clone());
                        }
                    }
                }
            }
        }
        if segments.len() > MAX_SEGMENTS {
            return Err(Invalid::new(
                "",
                format!(
                    "a builder assigns at most {MAX_SEGMENTS} segments, this one {}",
                    segments.len()
                ),
            ));
        }
        Ok(Self {
            spec,
            segments,
            lookup,
            aggregates,
            rfm: None,
        })
    }

    /// Every segment this builder can assign (its group's segments).
    pub fn segments(&self) -> &[ReferenceKey] {
        &self.segments
    }

    /// The activity aggregates the builder reads.
    pub fn aggregates(&self) -> &[Aggregate] {
        &self.aggregates
    }

    /// Whether the builder scores customers against the whole population (RFM): a full
    /// build fits its scales before it can evaluate anyone.
    pub fn is_population_scored(&self) -> bool {
        matches!(self.spec, BuilderSpec::Rfm { .. })
    }

    /// Whether a customer gets several of its segments at once whatever the data
    /// (RFM: three scores), so it cannot write into an exclusive group.
    pub fn assigns_several(&self) -> bool {
        self.is_population_scored()
    }

    /// An RFM builder's raw measure of a customer; `None` for other builders and for
    /// customers without an activity in the window.
    pub fn rfm_measure(&self, profile: Profile<'_>, now: Timestamp) -> Option<RfmMeasure> {
        let BuilderSpec::Rfm { aggregate } = &self.spec else {
            return None;
        };
        RfmMeasure::of(&profile.aggregates.get(aggregate), now)
    }

    /// The fitted scales of an RFM builder.
    pub fn rfm_bounds(&self) -> Option<RfmBounds> {
        self.rfm
    }

    pub fn set_rfm_bounds(&mut self, bounds: Option<RfmBounds>) {
        self.rfm = bounds;
    }

    /// The RFM segments of a measure on the fitted scales (none before they are fitted).
    pub fn rfm_segments(&self, measure: &RfmMeasure) -> Vec<ReferenceKey> {
        let Some(bounds) = &self.rfm else { return Vec::new() };
        RFM_LETTERS
            .iter()
            .zip(bounds.score(measure))
            .map(|(letter, score)| rfm_segment(*letter, score))
            .collect()
    }

    /// The segments the customer belongs in at `now`; `None` when the builder cannot
    /// decide yet (an RFM builder before its first full build): leave them as they are.
    pub fn evaluate(&self, profile: Profile<'_>, now: Timestamp) -> Option<Vec<ReferenceKey>> {
        let attributes = profile.attributes;
        Some(match &self.spec {
            BuilderSpec::AgeGroups { attribute, ranges } => age(attributes, attribute, now)
                .and_then(|age| ranges.iter().find(|r| age >= r.from && r.to.is_none_or(|to| age <= to)))
                .map(|r| vec![r.segment.clone()])
                .unwrap_or_default(),
            BuilderSpec::AttributeMapping {
                attribute, otherwise, ..
            } => {
                let values: Vec<String> = match attributes.get(attribute) {
                    None => return Some(Vec::new()),
                    Some(AttributeValue::List(items)) => items.iter().filter_map(text).collect(),
                    Some(value) => text(value).into_iter().collect(),
                };
                let mut out: Vec<ReferenceKey> = Vec::new();
                for value in &values {
                    if let Some(segment) = self.lookup.get(value)
                        && !out.contains(segment)
                    {
                        out.push(segment.clone());
                    }
                }
                if out.is_empty() {
                    out.extend(otherwise.iter().cloned());
                }
                out
            }
            BuilderSpec::ActivityCount {
                aggregate,
                comparison,
                threshold,
                segment,
            } => {
                if comparison.holds(profile.aggregates.get(aggregate).count, *threshold) {
                    vec![segment.clone()]
                } else {
                    Vec::new()
                }
            }
            BuilderSpec::Rfm { .. } => {
                self.rfm?;
                self.rfm_measure(profile, now)
                    .map(|m| self.rfm_segments(&m))
                    .unwrap_or_default()
            }
            BuilderSpec::Conditions { segments } => segments
                .iter()
                .filter(|rule| rule.when.holds(&mut |c| c.holds(attributes, profile.aggregates, now)))
                .map(|rule| rule.segment.clone())
                .collect(),
        })
    }
}

fn rfm_segment(letter: char, score: u8) -> ReferenceKey {
    ReferenceKey::parse("segment", &format!("{letter}{score}")).expect("r1…m5 are valid references")
}

/// The customer's age in whole years at `now`, from a date attribute.
fn age(attributes: &Attributes, attribute: &AttributeName, now: Timestamp) -> Option<u32> {
    let Some(AttributeValue::Date(birth)) = attributes.get(attribute) else {
        return None;
    };
    let today = now.to_datetime().date();
    let mut age = today.year() - birth.year();
    if (today.month() as u8, today.day()) < (birth.month() as u8, birth.day()) {
        age -= 1;
    }
    u32::try_from(age).ok()
}
