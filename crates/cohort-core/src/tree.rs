//! Condition trees: all / any / not over leaves of any kind.
//!
//! Builders use them over profile conditions, promotions over basket and customer
//! conditions; targeting and automation rules will use them over their own. An empty
//! `All` holds, an empty `Any` does not. The tree is vocabulary (definitions hold one);
//! the engine evaluates it.

use std::fmt;

/// A boolean tree over leaves `L`.
#[derive(Debug, Clone, PartialEq)]
pub enum Tree<L> {
    All(Vec<Tree<L>>),
    Any(Vec<Tree<L>>),
    Not(Box<Tree<L>>),
    Leaf(L),
}

impl<L> Tree<L> {
    /// Whether the tree holds, asking `leaf` for each leaf it needs (short-circuit).
    pub fn holds(&self, leaf: &mut impl FnMut(&L) -> bool) -> bool {
        match self {
            Self::All(items) => items.iter().all(|t| t.holds(leaf)),
            Self::Any(items) => items.iter().any(|t| t.holds(leaf)),
            Self::Not(inner) => !inner.holds(leaf),
            Self::Leaf(l) => leaf(l),
        }
    }

    /// Every leaf, depth first.
    pub fn leaves(&self) -> Vec<&L> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a L>) {
        match self {
            Self::All(items) | Self::Any(items) => items.iter().for_each(|t| t.collect(out)),
            Self::Not(inner) => inner.collect(out),
            Self::Leaf(l) => out.push(l),
        }
    }

    /// The depth of the deepest leaf (a leaf alone is 1).
    pub fn depth(&self) -> usize {
        match self {
            Self::All(items) | Self::Any(items) => 1 + items.iter().map(Tree::depth).max().unwrap_or(0),
            Self::Not(inner) => 1 + inner.depth(),
            Self::Leaf(_) => 1,
        }
    }
}

/// `all(a, b)`, `any(a, b)`, `not a`: a one-line rendering for reasons and logs.
impl<L: fmt::Display> fmt::Display for Tree<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, name: &str, items: &[Tree<L>]| {
            write!(f, "{name}(")?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{item}")?;
            }
            f.write_str(")")
        };
        match self {
            Self::All(items) => list(f, "all", items),
            Self::Any(items) => list(f, "any", items),
            Self::Not(inner) => write!(f, "not {inner}"),
            Self::Leaf(leaf) => write!(f, "{leaf}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Tree;

    fn eval(tree: &Tree<bool>) -> bool {
        tree.holds(&mut |b| *b)
    }

    #[test]
    fn empty_all_holds_and_empty_any_does_not() {
        assert!(eval(&Tree::All(vec![])));
        assert!(!eval(&Tree::Any(vec![])));
    }

    #[test]
    fn nesting_and_negation() {
        let t = Tree::All(vec![
            Tree::Leaf(true),
            Tree::Not(Box::new(Tree::Any(vec![Tree::Leaf(false), Tree::Leaf(false)]))),
        ]);
        assert!(eval(&t));
        assert_eq!(t.leaves(), vec![&true, &false, &false]);
        assert_eq!(t.depth(), 4);
        assert!(!eval(&Tree::Not(Box::new(t))));
    }

    #[test]
    fn evaluation_stops_at_the_first_deciding_leaf() {
        let mut asked = 0;
        let t = Tree::Any(vec![Tree::Leaf(true), Tree::Leaf(false)]);
        assert!(t.holds(&mut |b| {
            asked += 1;
            *b
        }));
        assert_eq!(asked, 1);
    }

    #[test]
    fn a_tree_renders_on_one_line() {
        let t = Tree::All(vec![
            Tree::Leaf(1),
            Tree::Not(Box::new(Tree::Any(vec![Tree::Leaf(2), Tree::Leaf(3)]))),
        ]);
        assert_eq!(t.to_string(), "all(1, not any(2, 3))");
    }
}
