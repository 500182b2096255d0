//! Segment builders: age groups from a birth date, attribute values mapped to
//! segments, and activity counts over a time window.

use std::collections::{HashMap, HashSet};

use cohort_core::{ActivityType, AttributeName, AttributeValue, Attributes, Invalid, ReferenceKey, Timestamp};

/// An age range `from..=to` (years; `to` open-ended when `None`) and its segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgeRange {
    pub from: u32,
    pub to: Option<u32>,
    pub segment: ReferenceKey,
}

/// How an activity count compares with its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Less,
    LessOrEqual,
    Equal,
    GreaterOrEqual,
    Greater,
}

impl Comparison {
    pub fn parse(field: &str, text: &str) -> Result<Self, Invalid> {
        match text {
            "<" => Ok(Self::Less),
            "<=" => Ok(Self::LessOrEqual),
            "=" => Ok(Self::Equal),
            ">=" => Ok(Self::GreaterOrEqual),
            ">" => Ok(Self::Greater),
            _ => Err(Invalid::new(field, "expected one of <, <=, =, >=, >")),
        }
    }

    fn holds(self, left: u64, right: u64) -> bool {
        match self {
            Self::Less => left < right,
            Self::LessOrEqual => left <= right,
            Self::Equal => left == right,
            Self::GreaterOrEqual => left >= right,
            Self::Greater => left > right,
        }
    }
}

/// A builder as defined by a user.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// Customers with a count of activities of a type, within the last `window_days`
    /// (all time when `None`), that compares with the threshold.
    ActivityCount {
        activity: ActivityType,
        window_days: Option<u32>,
        comparison: Comparison,
        threshold: u64,
        segment: ReferenceKey,
    },
}

/// A customer's activity times by type, as builders read them.
pub type ActivityTimes = HashMap<ActivityType, Vec<Timestamp>>;

/// A checked builder, ready to evaluate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledBuilder {
    spec: BuilderSpec,
    /// Every segment the builder can assign.
    segments: Vec<ReferenceKey>,
    lookup: HashMap<String, ReferenceKey>,
}

const MICROS_PER_DAY: i64 = 86_400_000_000;

impl CompiledBuilder {
    /// Checks a definition: ranges ordered and disjoint, mapped values distinct, each
    /// segment named once by a range.
    pub fn compile(spec: BuilderSpec) -> Result<Self, Invalid> {
        let mut segments = Vec::new();
        let mut lookup = HashMap::new();
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
                            format!("mapping[{i}].value"),
                            format!("value {value} is mapped twice"),
                        ));
                    }
                    segments.push(segment.clone());
                }
                segments.extend(otherwise.iter().cloned());
                let mut seen = HashSet::new();
                segments.retain(|s| seen.insert(s.clone()));
            }
            BuilderSpec::ActivityCount { segment, .. } => segments.push(segment.clone()),
        }
        Ok(Self { spec, segments, lookup })
    }

    pub fn spec(&self) -> &BuilderSpec {
        &self.spec
    }

    /// Every segment this builder can assign (its group's segments).
    pub fn segments(&self) -> &[ReferenceKey] {
        &self.segments
    }

    /// The segments the customer belongs in, given its attributes and activities at `now`.
    pub fn evaluate(&self, attributes: &Attributes, activities: &ActivityTimes, now: Timestamp) -> Vec<ReferenceKey> {
        match &self.spec {
            BuilderSpec::AgeGroups { attribute, ranges } => {
                let Some(AttributeValue::Date(birth)) = attributes.get(attribute) else {
                    return Vec::new();
                };
                let today = now.to_datetime().date();
                let mut age = today.year() - birth.year();
                if (today.month() as u8, today.day()) < (birth.month() as u8, birth.day()) {
                    age -= 1;
                }
                let Ok(age) = u32::try_from(age) else { return Vec::new() };
                ranges
                    .iter()
                    .find(|r| age >= r.from && r.to.is_none_or(|to| age <= to))
                    .map(|r| vec![r.segment.clone()])
                    .unwrap_or_default()
            }
            BuilderSpec::AttributeMapping {
                attribute, otherwise, ..
            } => {
                let values: Vec<String> = match attributes.get(attribute) {
                    None => return Vec::new(),
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
                activity,
                window_days,
                comparison,
                threshold,
                segment,
            } => {
                let since = window_days.map(|d| now.plus_micros(-i64::from(d) * MICROS_PER_DAY));
                let count = activities.get(activity).map_or(0, |times| {
                    times
                        .iter()
                        .filter(|t| since.is_none_or(|s| **t >= s) && **t <= now)
                        .count()
                });
                if comparison.holds(count as u64, *threshold) {
                    vec![segment.clone()]
                } else {
                    Vec::new()
                }
            }
        }
    }
}

/// A scalar attribute as the text a mapping matches: strings as they are, whole
/// numbers without a fraction, booleans as true/false, dates as YYYY-MM-DD.
fn text(value: &AttributeValue) -> Option<String> {
    match value {
        AttributeValue::String(s) => Some(s.clone()),
        AttributeValue::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Some(format!("{}", *n as i64)),
        AttributeValue::Number(n) => Some(n.to_string()),
        AttributeValue::Bool(b) => Some(b.to_string()),
        AttributeValue::Date(d) => Some(AttributeValue::format_date(*d)),
        AttributeValue::List(_) => None,
    }
}
