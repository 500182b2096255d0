//! The storage port: the `Store` trait every backend implements, its error type,
//! the text encodings shared by the SQL backends, and the conformance suite that
//! every backend must pass.

mod applications_sql;
pub mod automation;
mod builders_sql;
pub mod codec;
pub mod conformance;
mod customers_sql;
mod error;
pub mod import_plan;
mod keys_sql;
mod promotions;
mod promotions_sql;
mod segments_sql;
mod store;
mod target_groups_sql;
mod targeting;

pub use automation::{
    AutomationStore, DeadLetter, InboxCustomer, Job, JobEffect, NewJob, ScheduleProgress, ScheduleRun,
    StoredAutomationRule, Unreacted, UnreactedActivity,
};
pub use error::{StoreError, StoreResult};
pub use promotions::{CustomerFacts, CustomerProfile, OrderOutcome, OrderPlacement, PromotionStore};
pub use store::{
    ActivityRecording, ActivityStore, ApplicationStore, BuildChange, BuildInput, BuildSelection, BuildSummary,
    BuilderStore, CustomerFilter, CustomerImport, CustomerStore, Deletion, GroupedSegment, ImportMode, ImportSummary,
    ImportedMembership, KeySelection, KeyStore, LogRead, MembershipChange, MembershipFeed, MembershipImportSummary,
    Queued, Reacting, RecordSummary, SegmentFilter, SegmentStore, ServiceStore, Store, TargetGroupStore, skipped,
};
pub use targeting::{StoredRule, StoredVisitor, TargetingStore};
