//! Activity aggregates: per activity type and time window, how many, the latest, and
//! the summed order amount. Stores compute them in SQL for whole populations;
//! `summarize` computes the same from raw activities (tests, single customers).

use rust_decimal::Decimal;

use crate::{ActivityType, Timestamp};

pub const MICROS_PER_DAY: i64 = 86_400_000_000;

/// What to aggregate: activities of a type within the last `window_days` (all time
/// when `None`), up to `now`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Aggregate {
    pub activity: ActivityType,
    pub window_days: Option<u32>,
}

impl Aggregate {
    /// The oldest time inside the window at `now`.
    pub fn since(&self, now: Timestamp) -> Option<Timestamp> {
        self.window_days
            .map(|d| now.plus_micros(-i64::from(d) * MICROS_PER_DAY))
    }

    pub fn contains(&self, at: Timestamp, now: Timestamp) -> bool {
        at <= now && self.since(now).is_none_or(|s| at >= s)
    }
}

/// An aggregate's value for one customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AggregateValue {
    pub count: u64,
    pub last_at: Option<Timestamp>,
    /// The sum of the order totals (activities without an amount add nothing).
    pub amount: Decimal,
}

/// One customer's values of the aggregates a set of builders asked for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Aggregates(Vec<(Aggregate, AggregateValue)>);

impl Aggregates {
    pub fn new(values: Vec<(Aggregate, AggregateValue)>) -> Self {
        Self(values)
    }

    /// The value of an aggregate; one nobody computed is zero.
    pub fn get(&self, aggregate: &Aggregate) -> AggregateValue {
        self.0
            .iter()
            .find(|(a, _)| a == aggregate)
            .map(|(_, v)| *v)
            .unwrap_or_default()
    }
}

/// An activity as aggregates read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityFact {
    pub activity: ActivityType,
    pub at: Timestamp,
    pub amount: Option<Decimal>,
}

/// The aggregates `wanted` over raw activities at `now`.
pub fn summarize(activities: &[ActivityFact], wanted: &[Aggregate], now: Timestamp) -> Aggregates {
    let values = wanted
        .iter()
        .map(|aggregate| {
            let mut value = AggregateValue::default();
            for fact in activities
                .iter()
                .filter(|f| f.activity == aggregate.activity && aggregate.contains(f.at, now))
            {
                value.count += 1;
                value.last_at = value.last_at.max(Some(fact.at));
                value.amount += fact.amount.unwrap_or_default();
            }
            (aggregate.clone(), value)
        })
        .collect();
    Aggregates(values)
}
