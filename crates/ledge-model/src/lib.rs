//! Plain data shared by every ledge role.
//!
//! This crate owns the shapes that cross role boundaries: the distribution configuration
//! (after CloudFront's `DistributionConfig`), cache and origin request policies, the
//! versioned [`ConfigSnapshot`] that edges serve, and the Lambda@Edge event records.
//! It does no I/O; the only logic here is validation that every role must agree on.
//!
//! The JSON form of these types is documented in `docs/config-snapshot.md`.

pub mod api_form;
pub mod config;
pub mod edge_result;
pub mod event;
pub mod lambda;
pub mod policy;
pub mod snapshot;

pub use config::{
    CacheBehavior, CustomErrorResponse, CustomOriginConfig, DistributionConfig, EventType,
    ForwardedValues, LambdaFunctionAssociation, Method, Origin, OriginProtocolPolicy,
    ViewerProtocolPolicy,
};
pub use policy::{CachePolicyConfig, OriginRequestPolicyConfig};
pub use snapshot::{ConfigSnapshot, Distribution, FunctionVersion, Invalidation, SnapshotError};
