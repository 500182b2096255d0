//! Automation: rule definitions as JSON (`rules.rs`), the service that keeps rules
//! compiled, reacts to events by queueing actions durably, and runs them
//! (`service.rs`), reacting to recorded activities from the store's inbox
//! (`inbox.rs`), and schedule triggers (`schedule.rs`).

mod inbox;
mod rules;
pub mod schedule;
pub mod service;

pub use rules::parse_automation_rule;
pub use service::{Automations, DryRun};
