//! In-memory segment membership: one roaring bitmap of customer keys per segment,
//! and boolean queries over them (and, or, not) answered without touching a database.
//!
//! Architecture Invariant: this crate is pure — no I/O, no clock, no async. Keys are
//! the store's customer numbers and segment ids; the application layer maps names to
//! keys and keeps the index in step with every membership change.

mod expr;
mod index;

pub use expr::Expr;
pub use index::SegmentIndex;
