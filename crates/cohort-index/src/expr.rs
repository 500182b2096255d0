//! Membership expressions: segments combined with and, or and not.

/// A boolean expression over segment keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// Customers in the segment.
    Segment(u32),
    /// Customers in every operand (an empty `And` is every customer).
    And(Vec<Expr>),
    /// Customers in any operand (an empty `Or` is no customer).
    Or(Vec<Expr>),
    /// Customers not in the operand.
    Not(Box<Expr>),
}

impl Expr {
    pub fn segment(key: u32) -> Self {
        Self::Segment(key)
    }

    #[allow(clippy::should_implement_trait)]
    pub fn not(inner: Expr) -> Self {
        Self::Not(Box::new(inner))
    }

    /// Nesting depth, for refusing pathological input.
    pub fn depth(&self) -> usize {
        match self {
            Self::Segment(_) => 1,
            Self::And(items) | Self::Or(items) => 1 + items.iter().map(Expr::depth).max().unwrap_or(0),
            Self::Not(inner) => 1 + inner.depth(),
        }
    }

    /// Every segment the expression names.
    pub fn segments(&self) -> Vec<u32> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect(&self, out: &mut Vec<u32>) {
        match self {
            Self::Segment(k) => out.push(*k),
            Self::And(items) | Self::Or(items) => items.iter().for_each(|i| i.collect(out)),
            Self::Not(inner) => inner.collect(out),
        }
    }
}
