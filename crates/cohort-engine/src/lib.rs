//! Decisions over compiled rules, each a pure, total function of a compiled form and
//! the facts passed in (missing data never fails a decision):
//! - segment builders (`builder`): definitions checked and compiled once when saved,
//!   evaluated per customer, with the conditions, activity aggregates and RFM scales
//!   they use;
//! - promotions (`promotion`): a catalog compiled once when promotions change, the
//!   basket calculation (priorities, combination, segment validity, codes, budgets,
//!   money rounded to the currency) and the product lookup;
//! - targeting (`targeting`): global rules compiled once, one decision per request of
//!   a visitor;
//! - automation (`automation`): rules indexed by the events they wait for, which fire
//!   for an event and customer, and when their actions run.
//!
//! Architecture Invariant: this crate is pure — no I/O, no clock (`now` is a
//! parameter), no async, no JSON.

pub mod automation;
pub mod builder;
pub mod condition;
pub mod promotion;
pub mod rfm;
pub mod targeting;
pub use cohort_core::tree;

pub use builder::{AgeRange, BuilderSpec, CompiledBuilder, ConditionalSegment, MAX_SEGMENTS, MAX_TREE_DEPTH, Profile};
pub use cohort_core::aggregate::{ActivityFact, Aggregate, AggregateValue, Aggregates, summarize};
pub use condition::{AttributeTest, Bound, Comparison, Condition, Measure};
pub use promotion::{Calculation, Catalog, Context, ProductOffer, ProductQuery, Reason, calculate, product_promotions};
pub use rfm::{Quintiles, RfmBounds, RfmMeasure};
pub use tree::Tree;
