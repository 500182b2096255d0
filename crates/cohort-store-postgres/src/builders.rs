//! Segment builders on PostgreSQL (being ported from the SQLite backend).

use async_trait::async_trait;
use cohort_core::{
    Aggregate, BuilderId, NewSegmentBuilder, SegmentBuilder, SegmentBuilderPatch, SegmentGroupId, SegmentId, Timestamp,
};
use cohort_store::{
    BuildChange, BuildInput, BuildSelection, BuildSummary, BuilderStore, KeySelection, StoreError, StoreResult,
};

use crate::PostgresStore;

fn missing() -> StoreError {
    StoreError::Backend("segment builders are not available on PostgreSQL yet".into())
}

#[async_trait]
impl BuilderStore for PostgresStore {
    async fn create_builder(&self, _: &NewSegmentBuilder, _: Timestamp) -> StoreResult<SegmentBuilder> {
        Err(missing())
    }
    async fn builder(&self, _: BuilderId) -> StoreResult<Option<SegmentBuilder>> {
        Err(missing())
    }
    async fn update_builder(&self, _: BuilderId, _: SegmentBuilderPatch, _: Timestamp) -> StoreResult<SegmentBuilder> {
        Err(missing())
    }
    async fn delete_builder(&self, _: BuilderId) -> StoreResult<()> {
        Err(missing())
    }
    async fn list_builders(&self) -> StoreResult<Vec<SegmentBuilder>> {
        Ok(Vec::new())
    }
    async fn count_customers(&self) -> StoreResult<u64> {
        Err(missing())
    }
    async fn record_build(&self, _: BuilderId, _: Option<&str>, _: Timestamp) -> StoreResult<()> {
        Err(missing())
    }
    async fn build_inputs(&self, _: BuildSelection<'_>, _: &[Aggregate], _: Timestamp) -> StoreResult<Vec<BuildInput>> {
        Err(missing())
    }
    async fn group_memberships(
        &self,
        _: &[SegmentGroupId],
        _: KeySelection<'_>,
        _: Timestamp,
    ) -> StoreResult<Vec<(i64, SegmentId)>> {
        Err(missing())
    }
    async fn apply_build(&self, _: &[BuildChange], _: Timestamp) -> StoreResult<BuildSummary> {
        Err(missing())
    }
}
