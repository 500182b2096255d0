//! RFM scores: recency, frequency and monetary value of a customer's orders, each
//! scored 1–5 by the quintiles of the whole population.
//!
//! A full build measures every customer, fits the quintile bounds, then scores; the
//! bounds are kept so incremental builds score one customer against the same scale.
//! Tied values get the same score.

use cohort_core::Timestamp;
use rust_decimal::Decimal;

use cohort_core::aggregate::AggregateValue;

/// One customer's raw RFM values; higher is better for all three.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RfmMeasure {
    /// Minus the age of the latest order in microseconds (more recent is higher).
    pub recency: i64,
    pub frequency: u64,
    pub monetary: Decimal,
}

impl RfmMeasure {
    /// The measure of a customer's order aggregate; none without an order in the window.
    pub fn of(value: &AggregateValue, now: Timestamp) -> Option<Self> {
        let last = value.last_at?;
        Some(Self {
            recency: -(now.unix_micros() - last.unix_micros()).max(0),
            frequency: value.count,
            monetary: value.amount,
        })
    }
}

/// A quintile scale: the least value that scores 2, 3, 4 and 5 (`None`: nobody in
/// the population reached that score, so nobody will).
///
/// In a population of `n`, a value with `less` values below it scores
/// `1 + floor(5 · less / (n − 1))`, at most 5: the lowest scores 1, the highest 5
/// (unless everyone is tied, or alone: then everyone scores 1), ties score alike, and
/// a small population spreads over the whole scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quintiles<T>(pub [Option<T>; 4]);

impl<T: Ord + Copy> Quintiles<T> {
    /// Fits the scale to values (sorted in place). With no values nobody reaches a
    /// threshold: whoever comes later scores 1 until the next fit.
    pub fn fit(values: &mut [T]) -> Self {
        values.sort_unstable();
        let n = values.len();
        let mut least: [Option<T>; 4] = [None; 4];
        let mut less = 0;
        for i in 0..n {
            if i > 0 && values[i] != values[i - 1] {
                less = i;
            }
            let score = if n == 1 { 1 } else { (1 + 5 * less / (n - 1)).min(5) };
            for slot in least.iter_mut().take(score - 1) {
                if slot.is_none() {
                    *slot = Some(values[i]);
                }
            }
        }
        Self(least)
    }

    /// 1 to 5: one more for each threshold the value reaches.
    pub fn score(&self, value: T) -> u8 {
        1 + self.0.iter().filter(|t| t.is_some_and(|t| value >= t)).count() as u8
    }
}

/// The scales of the three scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RfmBounds {
    pub recency: Quintiles<i64>,
    pub frequency: Quintiles<u64>,
    pub monetary: Quintiles<Decimal>,
}

impl RfmBounds {
    /// Fits the scales to a population.
    pub fn fit(measures: &[RfmMeasure]) -> Self {
        Self {
            recency: Quintiles::fit(&mut measures.iter().map(|m| m.recency).collect::<Vec<_>>()),
            frequency: Quintiles::fit(&mut measures.iter().map(|m| m.frequency).collect::<Vec<_>>()),
            monetary: Quintiles::fit(&mut measures.iter().map(|m| m.monetary).collect::<Vec<_>>()),
        }
    }

    /// The recency, frequency and monetary scores.
    pub fn score(&self, m: &RfmMeasure) -> [u8; 3] {
        [
            self.recency.score(m.recency),
            self.frequency.score(m.frequency),
            self.monetary.score(m.monetary),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::Quintiles;

    #[test]
    fn ten_distinct_values_fill_each_quintile_twice() {
        let mut values: Vec<u64> = (1..=10).collect();
        let q = Quintiles::fit(&mut values);
        let scores: Vec<u8> = (1..=10).map(|v| q.score(v)).collect();
        assert_eq!(scores, vec![1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
    }

    #[test]
    fn ties_share_the_lowest_quintile_they_reach() {
        let mut values = vec![1u64, 1, 1, 1, 1, 1, 2, 3, 4, 5];
        let q = Quintiles::fit(&mut values);
        let scores: Vec<u8> = [1, 2, 3, 4, 5].iter().map(|v| q.score(*v)).collect();
        assert_eq!(scores, vec![1, 4, 4, 5, 5]);
        let mut same = vec![7u64; 3];
        assert_eq!(Quintiles::fit(&mut same).score(7), 1);
    }

    #[test]
    fn three_values_spread_over_the_scale() {
        let q = Quintiles::fit(&mut [10u64, 20, 30]);
        assert_eq!([q.score(10), q.score(20), q.score(30)], [1, 3, 5]);
        assert_eq!(q.score(15), 1, "between population values: the lower score");
    }

    #[test]
    fn no_values_score_one_and_unseen_values_clamp() {
        assert_eq!(Quintiles::<u64>::fit(&mut []).score(7), 1);
        let q = Quintiles::fit(&mut [10u64, 20, 30, 40, 50]);
        assert_eq!(q.score(0), 1);
        assert_eq!(q.score(1_000), 5);
    }
}
