//! Automation: rule definitions as JSON (`rules.rs`).

mod rules;

pub use rules::parse_automation_rule;
