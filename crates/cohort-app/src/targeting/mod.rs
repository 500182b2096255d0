//! Targeting: rule definitions as JSON (`rules.rs`), the service that keeps rules
//! compiled and decides visitors' requests (`service.rs`), visitors kept in memory and
//! written behind (`visitors.rs`), devices from user agents (`devices.rs`) and
//! locations from IP addresses (`geo.rs`), and customer tokens for browsers
//! (`tokens.rs`).

pub mod devices;
pub mod geo;
pub(crate) mod rules;
pub mod service;
pub mod tokens;
pub mod visitors;

pub use rules::parse_rule;
pub use service::{ContextAnswer, ContextRequest, CustomerSegment, RuleRecord, TargetingService, TargetingSettings};
