//! The index itself: bitmaps per segment plus the set of all customers.

use std::collections::HashMap;

use roaring::RoaringBitmap;

use crate::Expr;

/// Customers by segment, as roaring bitmaps of customer keys.
#[derive(Debug, Default, Clone)]
pub struct SegmentIndex {
    customers: RoaringBitmap,
    members: HashMap<u32, RoaringBitmap>,
}

impl SegmentIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a customer (needed for `not`).
    pub fn add_customer(&mut self, customer: u32) {
        self.customers.insert(customer);
    }

    /// Forgets a customer and all its memberships.
    pub fn remove_customer(&mut self, customer: u32) {
        self.customers.remove(customer);
        for bitmap in self.members.values_mut() {
            bitmap.remove(customer);
        }
    }

    /// Adds a membership (and the customer, if new).
    pub fn add(&mut self, segment: u32, customer: u32) {
        self.customers.insert(customer);
        self.members.entry(segment).or_default().insert(customer);
    }

    pub fn remove(&mut self, segment: u32, customer: u32) {
        if let Some(bitmap) = self.members.get_mut(&segment) {
            bitmap.remove(customer);
        }
    }

    /// Adds many memberships of one segment at once; `customers` need not be sorted.
    pub fn extend(&mut self, segment: u32, customers: impl IntoIterator<Item = u32>) {
        let bitmap = self.members.entry(segment).or_default();
        for c in customers {
            bitmap.insert(c);
        }
        self.customers |= &*bitmap;
    }

    /// Forgets a segment.
    pub fn remove_segment(&mut self, segment: u32) {
        self.members.remove(&segment);
    }

    pub fn customer_count(&self) -> u64 {
        self.customers.len()
    }

    pub fn segment_count(&self) -> usize {
        self.members.len()
    }

    /// The segments a customer is in, ascending.
    pub fn segments_of(&self, customer: u32) -> Vec<u32> {
        let mut out: Vec<u32> = self
            .members
            .iter()
            .filter(|(_, bitmap)| bitmap.contains(customer))
            .map(|(segment, _)| *segment)
            .collect();
        out.sort_unstable();
        out
    }

    pub fn contains(&self, segment: u32, customer: u32) -> bool {
        self.members.get(&segment).is_some_and(|b| b.contains(customer))
    }

    /// The customers matching the expression.
    pub fn evaluate(&self, expr: &Expr) -> RoaringBitmap {
        match expr {
            Expr::Segment(k) => self.members.get(k).cloned().unwrap_or_default(),
            Expr::Or(items) => items.iter().fold(RoaringBitmap::new(), |mut acc, e| {
                match e {
                    Expr::Segment(k) => {
                        if let Some(b) = self.members.get(k) {
                            acc |= b;
                        }
                    }
                    other => acc |= self.evaluate(other),
                }
                acc
            }),
            Expr::Not(inner) => &self.customers - &self.evaluate(inner),
            Expr::And(items) => self.and(items),
        }
    }

    /// Intersects the positive operands smallest first, then subtracts the negated ones,
    /// borrowing segment bitmaps instead of copying them.
    fn and(&self, items: &[Expr]) -> RoaringBitmap {
        let empty = RoaringBitmap::new();
        let mut owned: Vec<RoaringBitmap> = Vec::new();
        let mut positive: Vec<&RoaringBitmap> = Vec::new();
        let mut negative_owned: Vec<RoaringBitmap> = Vec::new();
        let mut negative: Vec<&RoaringBitmap> = Vec::new();
        for item in items {
            match item {
                Expr::Segment(k) => positive.push(self.members.get(k).unwrap_or(&empty)),
                Expr::Not(inner) => match inner.as_ref() {
                    Expr::Segment(k) => negative.push(self.members.get(k).unwrap_or(&empty)),
                    other => negative_owned.push(self.evaluate(other)),
                },
                other => owned.push(self.evaluate(other)),
            }
        }
        positive.extend(owned.iter());
        negative.extend(negative_owned.iter());
        positive.sort_by_key(|b| b.len());
        let mut result = match positive.split_first() {
            Some((first, rest)) => {
                let mut acc = (*first).clone();
                for b in rest {
                    if acc.is_empty() {
                        break;
                    }
                    acc &= *b;
                }
                acc
            }
            None => self.customers.clone(),
        };
        for b in negative {
            result -= b;
        }
        result
    }

    /// How many customers match.
    pub fn count(&self, expr: &Expr) -> u64 {
        match expr {
            Expr::Segment(k) => self.members.get(k).map_or(0, RoaringBitmap::len),
            Expr::And(items) if items.len() == 2 => match (&items[0], &items[1]) {
                (Expr::Segment(a), Expr::Segment(b)) => match (self.members.get(a), self.members.get(b)) {
                    (Some(a), Some(b)) => a.intersection_len(b),
                    _ => 0,
                },
                _ => self.evaluate(expr).len(),
            },
            _ => self.evaluate(expr).len(),
        }
    }

    /// The count and up to `limit` matching customers after `after`, ascending.
    pub fn page(&self, expr: &Expr, after: Option<u32>, limit: usize) -> (u64, Vec<u32>) {
        let matched = self.evaluate(expr);
        let start = after.map_or(0, |a| a.saturating_add(1));
        let keys = matched.range(start..).take(limit).collect();
        (matched.len(), keys)
    }

    /// Approximate heap bytes of the bitmaps.
    pub fn memory_bytes(&self) -> usize {
        self.customers.serialized_size() + self.members.values().map(|b| b.serialized_size() + 48).sum::<usize>()
    }
}
