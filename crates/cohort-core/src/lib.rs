//! cohort's domain vocabulary: applications, customers, segment groups, segments,
//! target groups, memberships, API key scopes, condition trees and promotions.
//!
//! Architecture Invariant: this crate is pure. It performs no I/O, has no async code,
//! never reads the clock or a random source and knows nothing of JSON or SQL. Values
//! with rules are newtypes whose `parse` is the only way in, so everything past the
//! HTTP edge can trust them.

pub mod activity;
pub mod aggregate;
pub mod application;
pub mod attributes;
pub mod automation;
pub mod condition;
pub mod customer;
pub mod error;
pub mod ids;
pub mod key;
pub mod membership;
pub mod page;
pub mod promotion;
pub mod segment;
pub mod segment_builder;
pub mod service;
pub mod target_group;
pub mod targeting;
pub mod timestamp;
pub mod tree;

pub use activity::{Activity, ActivityFilter, ActivityId, ActivityType, Order, OrderItem};
pub use aggregate::{ActivityFact, Aggregate, AggregateValue, Aggregates};
pub use application::{Application, ApplicationPatch, Currency, Origin};
pub use attributes::{AttributeName, AttributeValue, Attributes, ValueKind};
pub use customer::{Customer, CustomerPatch, CustomerUpsert, NewCustomer};
pub use error::Invalid;
pub use ids::{ApplicationId, CustomerId, Name, ReferenceKey, SegmentGroupId, SegmentId, TargetGroupId, VisitorId};
pub use key::{ApiKey, KeyScope, Permission};
pub use membership::{
    Membership, MembershipPlan, MembershipSource, SegmentAdd, SegmentChange, SegmentPlace, plan as plan_membership,
};
pub use page::{NameFilter, Page, PageRequest};
pub use promotion::{
    Basket, Combination, Discount, DiscountKind, ProductScope, Promotion, PromotionCondition, PromotionId,
    PromotionTarget, TypePriorities,
};
pub use rust_decimal::Decimal;
pub use segment::{NewSegment, NewSegmentGroup, Segment, SegmentGroup, SegmentGroupPatch, SegmentPatch};
pub use segment_builder::{BuilderId, NewSegmentBuilder, SegmentBuilder, SegmentBuilderPatch};
pub use service::{HttpSettings, QualifiedSegment, SegmentationService, ServiceId, ServiceKind, ServicePatch};
pub use target_group::{NewTargetGroup, TargetGroup, TargetGroupPatch, Threshold};
pub use timestamp::Timestamp;
pub use tree::Tree;
