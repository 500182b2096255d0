//! The index itself: bitmaps per segment plus the set of all customers.

use roaring::RoaringBitmap;

use crate::Expr;

/// Segments that get a bit in every customer's row.
const ROW_BITS: usize = 128;

/// Customers by segment, as roaring bitmaps of customer keys.
///
/// Queries combine the bitmaps. For "which segments has this customer", the first 128
/// segments also get a slot in a row of bits per customer (16 bytes a customer), so
/// that answer is one memory read instead of a lookup in every bitmap; segments beyond
/// the slots are looked up in their bitmaps.
#[derive(Debug, Clone)]
pub struct SegmentIndex {
    customers: RoaringBitmap,
    /// Sorted by segment key.
    members: Vec<(u32, RoaringBitmap)>,
    /// Row of slot bits per customer key.
    rows: Vec<u128>,
    /// Segment key of each slot in use.
    slots: [Option<u32>; ROW_BITS],
}

impl Default for SegmentIndex {
    fn default() -> Self {
        Self {
            customers: RoaringBitmap::new(),
            members: Vec::new(),
            rows: Vec::new(),
            slots: [None; ROW_BITS],
        }
    }
}

impl SegmentIndex {
    pub fn new() -> Self {
        Self::default()
    }

    fn get(&self, segment: u32) -> Option<&RoaringBitmap> {
        self.members
            .binary_search_by_key(&segment, |(k, _)| *k)
            .ok()
            .map(|i| &self.members[i].1)
    }

    fn entry(&mut self, segment: u32) -> &mut RoaringBitmap {
        let i = match self.members.binary_search_by_key(&segment, |(k, _)| *k) {
            Ok(i) => i,
            Err(i) => {
                self.members.insert(i, (segment, RoaringBitmap::new()));
                if let Some(free) = self.slots.iter_mut().find(|s| s.is_none()) {
                    *free = Some(segment);
                }
                i
            }
        };
        &mut self.members[i].1
    }

    fn slot(&self, segment: u32) -> Option<usize> {
        self.slots.iter().position(|s| *s == Some(segment))
    }

    fn set_bit(&mut self, segment: u32, customer: u32, on: bool) {
        let Some(slot) = self.slot(segment) else { return };
        let c = customer as usize;
        if c >= self.rows.len() {
            if !on {
                return;
            }
            self.rows.resize(c + 1, 0);
        }
        if on {
            self.rows[c] |= 1 << slot;
        } else {
            self.rows[c] &= !(1 << slot);
        }
    }

    /// Registers a customer (needed for `not`).
    pub fn add_customer(&mut self, customer: u32) {
        self.customers.insert(customer);
    }

    /// Forgets a customer and all its memberships.
    pub fn remove_customer(&mut self, customer: u32) {
        self.customers.remove(customer);
        for (_, bitmap) in &mut self.members {
            bitmap.remove(customer);
        }
        if let Some(row) = self.rows.get_mut(customer as usize) {
            *row = 0;
        }
    }

    /// Adds a membership (and the customer, if new).
    pub fn add(&mut self, segment: u32, customer: u32) {
        self.customers.insert(customer);
        self.entry(segment).insert(customer);
        self.set_bit(segment, customer, true);
    }

    pub fn remove(&mut self, segment: u32, customer: u32) {
        if let Ok(i) = self.members.binary_search_by_key(&segment, |(k, _)| *k) {
            self.members[i].1.remove(customer);
        }
        self.set_bit(segment, customer, false);
    }

    /// Adds many memberships of one segment at once; `customers` need not be sorted.
    pub fn extend(&mut self, segment: u32, customers: impl IntoIterator<Item = u32>) {
        let mut added = RoaringBitmap::new();
        for c in customers {
            added.insert(c);
        }
        self.customers |= &added;
        self.entry(segment);
        for c in &added {
            self.set_bit(segment, c, true);
        }
        *self.entry(segment) |= added;
    }

    /// Forgets a segment.
    pub fn remove_segment(&mut self, segment: u32) {
        if let Ok(i) = self.members.binary_search_by_key(&segment, |(k, _)| *k) {
            self.members.remove(i);
        }
        if let Some(slot) = self.slot(segment) {
            self.slots[slot] = None;
            let mask = !(1u128 << slot);
            self.rows.iter_mut().for_each(|row| *row &= mask);
        }
    }

    pub fn customer_count(&self) -> u64 {
        self.customers.len()
    }

    pub fn segment_count(&self) -> usize {
        self.members.len()
    }

    /// The segments a customer is in, ascending.
    pub fn segments_of(&self, customer: u32) -> Vec<u32> {
        let mut row = self.rows.get(customer as usize).copied().unwrap_or(0);
        let mut out = Vec::with_capacity(row.count_ones() as usize);
        while row != 0 {
            let slot = row.trailing_zeros() as usize;
            out.extend(self.slots[slot]);
            row &= row - 1;
        }
        if self.members.len() > self.slots.iter().flatten().count() {
            let slotted = |k: u32| self.slots.contains(&Some(k));
            out.extend(
                self.members
                    .iter()
                    .filter(|(k, b)| !slotted(*k) && b.contains(customer))
                    .map(|(k, _)| *k),
            );
        }
        out.sort_unstable();
        out
    }

    pub fn contains(&self, segment: u32, customer: u32) -> bool {
        self.get(segment).is_some_and(|b| b.contains(customer))
    }

    /// The customers matching the expression.
    pub fn evaluate(&self, expr: &Expr) -> RoaringBitmap {
        match expr {
            Expr::Segment(k) => self.get(*k).cloned().unwrap_or_default(),
            Expr::Or(items) => items.iter().fold(RoaringBitmap::new(), |mut acc, e| {
                match e {
                    Expr::Segment(k) => {
                        if let Some(b) = self.get(*k) {
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
                Expr::Segment(k) => positive.push(self.get(*k).unwrap_or(&empty)),
                Expr::Not(inner) => match inner.as_ref() {
                    Expr::Segment(k) => negative.push(self.get(*k).unwrap_or(&empty)),
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
            Expr::Segment(k) => self.get(*k).map_or(0, RoaringBitmap::len),
            Expr::And(items) if items.len() == 2 => match (&items[0], &items[1]) {
                (Expr::Segment(a), Expr::Segment(b)) => match (self.get(*a), self.get(*b)) {
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

    /// Approximate heap bytes of the bitmaps and rows.
    pub fn memory_bytes(&self) -> usize {
        self.rows.len() * std::mem::size_of::<u128>()
            + self.customers.serialized_size()
            + self
                .members
                .iter()
                .map(|(_, b)| b.serialized_size() + 48)
                .sum::<usize>()
    }
}
