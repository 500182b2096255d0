//! Decisions over compiled rules. For now: segment builders — definitions given as
//! data, checked and compiled once when saved, then evaluated per customer as a pure,
//! total function (missing data puts a customer in no segment, never fails) — and the
//! condition trees, conditions, activity aggregates and RFM scales they use.
//!
//! Architecture Invariant: this crate is pure — no I/O, no clock (`now` is a
//! parameter), no async, no JSON.

pub mod builder;
pub mod condition;
pub mod rfm;
pub mod tree;

pub use builder::{AgeRange, BuilderSpec, CompiledBuilder, ConditionalSegment, MAX_SEGMENTS, MAX_TREE_DEPTH, Profile};
pub use cohort_core::aggregate::{ActivityFact, Aggregate, AggregateValue, Aggregates, summarize};
pub use condition::{AttributeTest, Bound, Comparison, Condition, Measure};
pub use rfm::{Quintiles, RfmBounds, RfmMeasure};
pub use tree::Tree;
