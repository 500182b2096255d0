//! Automation: rule definitions as JSON (`rules.rs`), and the service that keeps rules
//! compiled, reacts to events by queueing actions durably, and runs them
//! (`service.rs`).

mod rules;
pub mod service;

pub use rules::parse_automation_rule;
pub use service::{Automations, DryRun, RunOutcome};
