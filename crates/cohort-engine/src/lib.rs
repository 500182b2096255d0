//! Decisions over compiled rules. For now: segment builders — definitions given as
//! data, checked and compiled once when saved, then evaluated per customer as a pure,
//! total function (missing data puts a customer in no segment, never fails).
//!
//! Architecture Invariant: this crate is pure — no I/O, no clock (`now` is a
//! parameter), no async, no JSON.

pub mod builder;

pub use builder::{ActivityTimes, AgeRange, BuilderSpec, Comparison, CompiledBuilder};
