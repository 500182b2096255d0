//! The `Store` trait: everything cohort keeps, behind one port.
//!
//! Every method is one transaction: it either changes everything it says or nothing.
//! Methods that depend on the time take `now` so that callers inject the clock.

use async_trait::async_trait;
use cohort_core::customer::CustomerUpsert;
use cohort_core::segment::{NewSegment, NewSegmentGroup};
use cohort_core::target_group::NewTargetGroup;
use cohort_core::{
    Activity, ActivityFilter, Aggregate, AggregateValue, Aggregates, ApiKey, Application, ApplicationId,
    ApplicationPatch, Attributes, BuilderId, Customer, CustomerId, CustomerPatch, Membership, NameFilter, NewCustomer,
    NewSegmentBuilder, Page, PageRequest, ReferenceKey, Segment, SegmentBuilder, SegmentBuilderPatch, SegmentChange,
    SegmentGroup, SegmentGroupId, SegmentGroupPatch, SegmentId, SegmentPatch, SegmentationService, ServiceId,
    ServicePatch, TargetGroup, TargetGroupId, TargetGroupPatch, Timestamp,
};

use crate::StoreResult;

/// Filter of the segment list.
#[derive(Debug, Clone, Default)]
pub struct SegmentFilter {
    pub name: NameFilter,
    pub group: Option<SegmentGroupId>,
}

/// Filter of the customer list.
#[derive(Debug, Clone, Default)]
pub struct CustomerFilter {
    /// Only customers with a live membership in this segment.
    pub segment: Option<SegmentId>,
    pub active: Option<bool>,
}

/// Counts of a finished import.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Lines written (created or updated).
    pub written: u64,
}

/// A bulk upsert of customers inside one open transaction.
///
/// Nothing is visible to others until `commit`; dropping it without `commit` rolls
/// everything back.
#[async_trait]
pub trait CustomerImport: Send {
    /// Writes a batch. Within a batch a later line for the same id wins.
    async fn write(&mut self, batch: &[CustomerUpsert], now: Timestamp) -> StoreResult<()>;
    async fn commit(self: Box<Self>) -> StoreResult<ImportSummary>;
}

/// Everything cohort keeps. Backends implement one sub-trait per aggregate.
#[async_trait]
pub trait Store:
    ApplicationStore
    + SegmentStore
    + ServiceStore
    + TargetGroupStore
    + CustomerStore
    + ActivityStore
    + MembershipFeed
    + BuilderStore
    + KeyStore
    + crate::PromotionStore
    + crate::TargetingStore
    + crate::AutomationStore
{
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Applies pending migrations.
    async fn migrate(&self) -> StoreResult<()>;
    /// Checks that the database answers.
    async fn ping(&self) -> StoreResult<()>;

    /// A customer's key, facts and live memberships in stored segments of the given
    /// services, read together (a basket calculation needs all of them); `None` for a
    /// customer cohort does not know.
    async fn customer_profile(
        &self,
        customer: &CustomerId,
        services: &[ServiceId],
        now: Timestamp,
    ) -> StoreResult<Option<crate::CustomerProfile>>;
}

#[async_trait]
pub trait ApplicationStore: Send + Sync + 'static {
    async fn create_application(&self, app: &Application) -> StoreResult<()>;
    async fn application(&self, id: &ApplicationId) -> StoreResult<Option<Application>>;
    async fn update_application(&self, id: &ApplicationId, patch: ApplicationPatch) -> StoreResult<Application>;
    async fn delete_application(&self, id: &ApplicationId) -> StoreResult<()>;
    async fn list_applications(&self, filter: &NameFilter, page: PageRequest) -> StoreResult<Page<Application>>;
}

/// Segment groups and segments.
#[async_trait]
pub trait SegmentStore: Send + Sync + 'static {
    async fn create_segment_group(&self, group: &NewSegmentGroup) -> StoreResult<SegmentGroup>;
    async fn segment_group(&self, id: SegmentGroupId) -> StoreResult<Option<SegmentGroup>>;
    /// Refuses to make a group exclusive while a customer has two of its segments.
    async fn update_segment_group(&self, id: SegmentGroupId, patch: SegmentGroupPatch) -> StoreResult<SegmentGroup>;
    /// Refuses to delete a group that still has segments.
    async fn delete_segment_group(&self, id: SegmentGroupId) -> StoreResult<()>;
    async fn list_segment_groups(&self, filter: &NameFilter, page: PageRequest) -> StoreResult<Page<SegmentGroup>>;

    async fn create_segment(&self, segment: &NewSegment) -> StoreResult<Segment>;
    async fn segment(&self, id: SegmentId) -> StoreResult<Option<Segment>>;
    async fn update_segment(&self, id: SegmentId, patch: SegmentPatch) -> StoreResult<Segment>;
    /// Deletes the segment and every membership in it.
    async fn delete_segment(&self, id: SegmentId) -> StoreResult<()>;
    async fn list_segments(&self, filter: &SegmentFilter, page: PageRequest) -> StoreResult<Page<Segment>>;
}

/// A stored segment with its group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupedSegment {
    pub group: SegmentGroup,
    pub segment: Segment,
}

/// One line of a membership import into an `import` service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedMembership {
    pub customer: CustomerId,
    pub group: ReferenceKey,
    pub segment: ReferenceKey,
    /// In a delta: remove the membership instead of adding it.
    pub remove: bool,
    pub expires_at: Option<Timestamp>,
}

/// How a membership import applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportMode {
    /// The lines are the service's memberships: every other one is removed.
    Snapshot,
    /// The lines add and remove memberships; the others stay.
    Delta,
}

/// What a membership import changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MembershipImportSummary {
    pub added: u64,
    pub removed: u64,
    pub unchanged: u64,
    pub segments_created: u64,
}

/// Segmentation services and their activation per application.
#[async_trait]
pub trait ServiceStore: Send + Sync + 'static {
    async fn create_service(&self, service: &SegmentationService) -> StoreResult<()>;
    async fn service(&self, id: &ServiceId) -> StoreResult<Option<SegmentationService>>;
    async fn update_service(&self, id: &ServiceId, patch: ServicePatch) -> StoreResult<SegmentationService>;
    /// Refuses the standard service and services that still own segment groups.
    async fn delete_service(&self, id: &ServiceId) -> StoreResult<()>;
    async fn list_services(&self) -> StoreResult<Vec<SegmentationService>>;

    /// Activates or deactivates a service in an application (idempotent).
    async fn set_service_active(&self, app: &ApplicationId, service: &ServiceId, active: bool) -> StoreResult<()>;
    /// The services active in an application, available or not, by id.
    async fn application_services(&self, app: &ApplicationId) -> StoreResult<Vec<SegmentationService>>;

    /// Every stored segment of the given services.
    async fn service_segments(&self, services: &[ServiceId]) -> StoreResult<Vec<GroupedSegment>>;
    /// The customer's live memberships in stored segments of the given services.
    async fn customer_service_segments(
        &self,
        customer: &CustomerId,
        services: &[ServiceId],
        now: Timestamp,
    ) -> StoreResult<Vec<(Membership, GroupedSegment)>>;
    /// Applies a membership import to an `import` service in one transaction, creating
    /// the groups and segments it names. Unknown customers fail the whole import.
    async fn import_memberships(
        &self,
        service: &ServiceId,
        mode: ImportMode,
        lines: &[ImportedMembership],
        now: Timestamp,
    ) -> StoreResult<MembershipImportSummary>;
}

#[async_trait]
pub trait TargetGroupStore: Send + Sync + 'static {
    async fn create_target_group(&self, group: &NewTargetGroup) -> StoreResult<TargetGroup>;
    async fn target_group(&self, id: TargetGroupId) -> StoreResult<Option<TargetGroup>>;
    async fn update_target_group(&self, id: TargetGroupId, patch: TargetGroupPatch) -> StoreResult<TargetGroup>;
    async fn delete_target_group(&self, id: TargetGroupId) -> StoreResult<()>;
    /// Uses a segment as a target group, or stops: `true` links a target group named
    /// after the segment (threshold 1, active; the one already linked if any), `false`
    /// deletes the linked group. Returns the linked group.
    async fn use_as_target_group(&self, segment: SegmentId, on: bool) -> StoreResult<Option<TargetGroup>>;
    async fn list_target_groups(&self, filter: &NameFilter, page: PageRequest) -> StoreResult<Page<TargetGroup>>;
}

/// A deleted customer, as the deletions log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    pub customer: CustomerId,
    pub deleted_at: Timestamp,
}

/// Customers and their segment memberships.
#[async_trait]
pub trait CustomerStore: Send + Sync + 'static {
    async fn create_customer(&self, customer: &NewCustomer, now: Timestamp) -> StoreResult<Customer>;
    async fn customer(&self, id: &CustomerId) -> StoreResult<Option<Customer>>;
    async fn update_customer(&self, id: &CustomerId, patch: &CustomerPatch, now: Timestamp) -> StoreResult<Customer>;
    /// Deletes the customer with its memberships and activities, and records the
    /// deletion (id and time) in the deletions log, in one transaction.
    async fn delete_customer(&self, id: &CustomerId, now: Timestamp) -> StoreResult<()>;
    /// Customers deleted at or after `since`, oldest first.
    async fn deletions(&self, since: Timestamp, page: PageRequest) -> StoreResult<Page<Deletion>>;
    async fn list_customers(
        &self,
        filter: &CustomerFilter,
        page: PageRequest,
        now: Timestamp,
    ) -> StoreResult<Page<Customer>>;
    /// Starts a bulk upsert in one transaction.
    async fn import_customers(&self) -> StoreResult<Box<dyn CustomerImport>>;

    /// Applies a change to a customer's segments atomically and returns its live memberships.
    async fn change_segments(
        &self,
        customer: &CustomerId,
        change: &SegmentChange,
        now: Timestamp,
    ) -> StoreResult<Vec<Membership>>;
    /// The customer's live (not expired) memberships, by segment id.
    async fn customer_segments(&self, customer: &CustomerId, now: Timestamp) -> StoreResult<Vec<Membership>>;
}

/// A customer waiting for segment building. `version` counts how often it was queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub customer: CustomerId,
    pub version: i64,
}

/// What recording a batch of activities did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordSummary {
    pub recorded: u64,
    /// The positions in the batch of the activities whose id was already stored, or
    /// came earlier in the batch (retries): not recorded again, nor reacted to.
    pub retried: Vec<usize>,
}

impl RecordSummary {
    /// How many activities were retries.
    pub fn duplicates(&self) -> u64 {
        self.retried.len() as u64
    }
}

/// The lines of a statement's rows that it did not record, given the ids it recorded:
/// a recorded id stands for its first row; a later row with that id, or a row whose id
/// was not recorded, was skipped.
pub fn skipped<'a>(rows: impl IntoIterator<Item = (usize, &'a str)>, recorded: Vec<String>) -> Vec<usize> {
    let mut recorded: std::collections::HashSet<String> = recorded.into_iter().collect();
    rows.into_iter()
        .filter(|(_, id)| !recorded.remove(*id))
        .map(|(line, _)| line)
        .collect()
}

/// A batch of activities recorded in one transaction, written part by part so that the
/// caller can prepare the next part while the store writes this one. Dropped without
/// `commit`, it records nothing.
#[async_trait]
pub trait ActivityRecording: Send {
    /// Writes the next part. `first` is the index of its first activity in the whole
    /// batch, for errors that name a line (`lines[i].customer`).
    async fn write(&mut self, activities: &[Activity], first: usize) -> StoreResult<()>;
    /// Commits the batch; only then is it acknowledged.
    async fn commit(self: Box<Self>) -> StoreResult<RecordSummary>;
}

/// Whether automation rules react to recorded activities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reacting {
    /// Rules listening to new activities judge them.
    Reacts,
    /// Tracked by an automation action: counted, but they fire no rule, so rules
    /// cannot set each other off without end.
    CountedOnly,
}

/// Activities, and the queue of customers whose segments need building again.
#[async_trait]
pub trait ActivityStore: Send + Sync + 'static {
    /// Starts recording a batch in one transaction. An activity whose id is already
    /// stored (or earlier in the batch) is a retry: skipped and counted. A customer that
    /// does not exist fails the whole batch (`lines[i].customer`). Each customer with a
    /// recorded activity is queued for incremental segment building, its activity
    /// counts move, and the recorded activities enter automation's inbox
    /// (`AutomationStore::unreacted`) in the same transaction.
    async fn begin_recording(&self, now: Timestamp, reacting: Reacting) -> StoreResult<Box<dyn ActivityRecording>>;
    /// Records a batch in one transaction (`begin_recording`, one write, commit).
    async fn record_activities(
        &self,
        activities: &[Activity],
        now: Timestamp,
        reacting: Reacting,
    ) -> StoreResult<RecordSummary> {
        let mut recording = self.begin_recording(now, reacting).await?;
        recording.write(activities, 0).await?;
        recording.commit().await
    }
    /// A customer's activities in the order they were recorded.
    async fn list_activities(
        &self,
        customer: &CustomerId,
        filter: &ActivityFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Activity>>;
    /// Customers queued for segment building, oldest first.
    async fn queued_for_building(&self, limit: u32) -> StoreResult<Vec<Queued>>;
    /// Takes built customers off the queue, unless they were queued again since they
    /// were read (their version moved on): then they stay for the next round.
    async fn built(&self, done: &[Queued]) -> StoreResult<()>;
}

/// One entry of the membership log. `segment` is `None` for a customer's creation
/// (`present`) or deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MembershipChange {
    pub position: i64,
    /// The customer's store key (its surrogate number).
    pub customer: i64,
    pub segment: Option<SegmentId>,
    pub present: bool,
    pub expires_at: Option<Timestamp>,
}

/// One read of the membership log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogRead {
    /// Entries in position order.
    pub changes: Vec<MembershipChange>,
    /// Every transaction with an id below this had ended when the entries were read
    /// (the same snapshot). `None` where positions become visible in order, one writer
    /// at a time (SQLite): there a position passed over never appears later.
    pub ended_below: Option<i64>,
}

/// What an in-memory index needs to build itself and then follow every writer.
///
/// Build: read `membership_log_end`, then the customers and the members of each
/// segment; then apply `read_membership_log` again and again. On PostgreSQL positions
/// are handed out before commit, so a position can become visible after higher ones:
/// a reader keeps the positions it passed over (gaps) and asks for them again until
/// every transaction that could still write them has ended (`log_writers_bound`,
/// `LogRead::ended_below`).
#[async_trait]
pub trait MembershipFeed: Send + Sync + 'static {
    async fn membership_log_end(&self) -> StoreResult<i64>;
    /// Customer keys greater than `after`, ascending, at most `limit`.
    async fn customer_keys(&self, after: i64, limit: u32) -> StoreResult<Vec<i64>>;
    /// Every segment id.
    async fn segment_ids(&self) -> StoreResult<Vec<SegmentId>>;
    /// Keys of the segment's members without an expiry greater than `after`,
    /// ascending, at most `limit`.
    async fn plain_members(&self, segment: SegmentId, after: i64, limit: u32) -> StoreResult<Vec<i64>>;
    /// The segment's members with an expiry (expired ones too), with it.
    async fn expiring_members(&self, segment: SegmentId) -> StoreResult<Vec<(i64, Timestamp)>>;
    /// Log entries after `after` and at the positions of `gaps`, in order, at most `limit`.
    async fn read_membership_log(&self, after: i64, gaps: &[i64], limit: u32) -> StoreResult<LogRead>;
    /// Log entries after `after`, in order, at most `limit`.
    async fn membership_changes(&self, after: i64, limit: u32) -> StoreResult<Vec<MembershipChange>> {
        Ok(self.read_membership_log(after, &[], limit).await?.changes)
    }
    /// A transaction id above that of every transaction started so far, so every log
    /// writer that could hold a position now passed over; `None` where positions become
    /// visible in order.
    async fn log_writers_bound(&self) -> StoreResult<Option<i64>>;
    /// Forgets log entries at or before `position`.
    async fn prune_membership_log(&self, through: i64) -> StoreResult<()>;
    /// The key of a customer.
    async fn customer_key(&self, id: &CustomerId) -> StoreResult<Option<i64>>;
    /// The ids of customers by key, in the order given (unknown keys are skipped).
    async fn customer_ids(&self, keys: &[i64]) -> StoreResult<Vec<CustomerId>>;
}

/// Which customers a build reads.
#[derive(Debug, Clone, Copy)]
pub enum BuildSelection<'a> {
    /// Customers with a key above `after`, ascending, at most `limit` (full builds page).
    Page { after: i64, limit: u32 },
    /// These customers (incremental builds); unknown ids are skipped.
    Ids(&'a [CustomerId]),
}

/// Whose memberships a build compares with.
#[derive(Debug, Clone, Copy)]
pub enum KeySelection<'a> {
    /// Keys `from..=to`.
    Range {
        from: i64,
        to: i64,
    },
    Keys(&'a [i64]),
}

/// What builders read of one customer.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildInput {
    pub key: i64,
    pub id: CustomerId,
    pub attributes: Attributes,
    /// The aggregates asked for, at the time given.
    pub aggregates: Aggregates,
}

impl BuildInput {
    /// A customer's input as its row reads (key, id, attributes as JSON text), with
    /// the aggregates asked for all at zero until they are counted.
    pub fn from_row(key: i64, id: &str, attributes: &str, aggregates: &[Aggregate]) -> StoreResult<Self> {
        Ok(Self {
            key,
            id: crate::codec::stored(CustomerId::parse("id", id))?,
            attributes: crate::codec::decode_attributes(attributes)?,
            aggregates: Aggregates::new(
                aggregates
                    .iter()
                    .map(|a| (a.clone(), AggregateValue::default()))
                    .collect(),
            ),
        })
    }
}

/// A customer's computed membership changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildChange {
    pub customer: i64,
    pub add: Vec<SegmentId>,
    pub remove: Vec<SegmentId>,
}

/// What applying build changes wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BuildSummary {
    pub added: u64,
    pub removed: u64,
}

/// Segment builders, and what building reads and writes.
#[async_trait]
pub trait BuilderStore: Send + Sync + 'static {
    /// Saves a builder with the segments its definition assigns (`segments`, in its
    /// group; those already there are kept). Refuses a group that does not exist
    /// (`group`, dangling) or already has a builder (conflict).
    async fn create_builder(
        &self,
        builder: &NewSegmentBuilder,
        segments: &[NewSegment],
        now: Timestamp,
    ) -> StoreResult<SegmentBuilder>;
    async fn builder(&self, id: BuilderId) -> StoreResult<Option<SegmentBuilder>>;
    /// Changes a builder and creates the `segments` missing from its group, together.
    async fn update_builder(
        &self,
        id: BuilderId,
        patch: SegmentBuilderPatch,
        segments: &[NewSegment],
        now: Timestamp,
    ) -> StoreResult<SegmentBuilder>;
    /// Deletes the builder; the memberships it wrote stay.
    async fn delete_builder(&self, id: BuilderId) -> StoreResult<()>;
    /// Every builder, by id.
    async fn list_builders(&self) -> StoreResult<Vec<SegmentBuilder>>;
    /// How many customers there are (the size of a full build).
    async fn count_customers(&self) -> StoreResult<u64>;
    /// Records a full build: the state it fitted and when it started. Nothing is
    /// recorded when the builder changed since the build read it (`read_at` is the
    /// `updated_at` it read): its state would belong to another definition.
    async fn record_build(
        &self,
        id: BuilderId,
        state: Option<&str>,
        at: Timestamp,
        read_at: Timestamp,
    ) -> StoreResult<()>;

    /// Customers with their attributes (empty unless `profiles`) and the aggregates of
    /// their activities at `now` (activities after `now` do not count; order amounts
    /// are summed to 4 decimals).
    async fn build_inputs(
        &self,
        selection: BuildSelection<'_>,
        profiles: bool,
        aggregates: &[Aggregate],
        now: Timestamp,
    ) -> StoreResult<Vec<BuildInput>>;
    /// The live memberships `(customer key, segment)` of the selected customers in
    /// the groups' segments.
    async fn group_memberships(
        &self,
        groups: &[SegmentGroupId],
        customers: KeySelection<'_>,
        now: Timestamp,
    ) -> StoreResult<Vec<(i64, SegmentId)>>;
    /// Applies computed changes in one transaction: added memberships are
    /// `calculated`, without expiry, replacing an expired row; removing an absent one
    /// and changes of customers deleted meanwhile are no-ops.
    async fn apply_build(&self, changes: &[BuildChange], now: Timestamp) -> StoreResult<BuildSummary>;
}

#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    async fn create_api_key(&self, key: &ApiKey) -> StoreResult<()>;
    async fn api_key(&self, id: &str) -> StoreResult<Option<ApiKey>>;
    async fn list_api_keys(&self) -> StoreResult<Vec<ApiKey>>;
    async fn revoke_api_key(&self, id: &str, now: Timestamp) -> StoreResult<()>;
}

#[cfg(test)]
mod tests {
    use super::skipped;

    #[test]
    fn rows_not_recorded_are_the_skipped_ones_and_repeats_of_an_id() {
        let rows = [(4, "a"), (5, "b"), (6, "a"), (7, "c")];
        assert_eq!(skipped(rows, vec!["a".into(), "c".into()]), vec![5, 6]);
        assert_eq!(skipped(rows, Vec::new()), vec![4, 5, 6, 7]);
        assert_eq!(
            skipped(rows[..2].iter().copied(), vec!["b".into(), "a".into()]),
            Vec::<usize>::new()
        );
    }
}
