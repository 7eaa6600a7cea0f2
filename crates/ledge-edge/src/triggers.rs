//! The four Lambda@Edge trigger points, as one trait the pipeline calls at fixed places.
//!
//! The pipeline (`pipeline.rs`) calls, in this order:
//!
//! ```mermaid
//! flowchart TD
//!   A[route + behavior] --> VR[viewer_request]
//!   VR -- Respond --> VS[viewer_response]
//!   VR -- Continue --> C{cache lookup}
//!   C -- hit --> VS
//!   C -- miss --> OR[origin_request]
//!   OR -- Respond --> VS
//!   OR -- Continue --> F[origin fetch] --> ORS[origin_response] --> S[cache store] --> VS
//!   VS --> V[viewer]
//! ```
//!
//! Every method defaults to "continue unchanged", so [`NoTriggers`] costs nothing.

use std::future::Future;
use std::sync::Arc;

use http::{HeaderValue, Request, Response};
use ledge_model::CacheBehavior;

use crate::body::{EdgeBody, RequestBody};
use crate::error::EdgeError;
use crate::snapshot::CompiledDistribution;

/// What a request trigger decided.
#[derive(Debug)]
pub enum Flow {
    /// Go on with this (possibly changed) request.
    Continue(Request<RequestBody>),
    /// Answer with this generated response (`X-Cache: LambdaGeneratedResponse from cloudfront`).
    Respond(Response<EdgeBody>),
}

/// What a trigger sees of the request it runs for.
#[derive(Debug)]
pub struct TriggerCtx {
    /// The distribution serving the request.
    pub distribution: Arc<CompiledDistribution>,
    /// The matched behavior (its `LambdaFunctionAssociations` say what to run).
    pub behavior: Arc<CacheBehavior>,
    /// The request id (`X-Amz-Cf-Id`).
    pub request_id: HeaderValue,
    /// The viewer's address.
    pub client_ip: std::net::IpAddr,
    /// Whether the viewer came over HTTPS.
    pub https: bool,
}

/// The trigger points of the edge pipeline.
///
/// Implementations decide per call whether a function is associated
/// (`ctx.behavior.association(EventType::…)`); when none is, they should return at once.
/// Errors are [`EdgeError`]s of kind `LambdaValidationError` (502) or `LambdaExecutionError`
/// (503); the pipeline turns them into CloudFront's error responses, which are never cached.
pub trait Triggers: Send + Sync + 'static {
    /// Called after behavior selection, before the cache lookup, for every request.
    /// Default: continue with the request unchanged.
    fn viewer_request(
        &self,
        ctx: &TriggerCtx,
        req: Request<RequestBody>,
    ) -> impl Future<Output = Result<Flow, EdgeError>> + Send {
        let _ = ctx;
        async move { Ok(Flow::Continue(req)) }
    }

    /// Called with the request as the rest of the pipeline sees it once viewer-request is done
    /// and CloudFront's own headers are added (what a viewer-response event shows, §1.3).
    /// Not called when viewer-request answered itself. Default: nothing.
    fn viewer_request_done(&self, ctx: &TriggerCtx, req: &Request<RequestBody>) {
        let _ = (ctx, req);
    }

    /// Called on a cache miss, before the request goes to the origin.
    /// Default: continue with the request unchanged.
    fn origin_request(
        &self,
        ctx: &TriggerCtx,
        req: Request<RequestBody>,
    ) -> impl Future<Output = Result<Flow, EdgeError>> + Send {
        let _ = ctx;
        async move { Ok(Flow::Continue(req)) }
    }

    /// Called on every origin response (errors too), before it is cached.
    /// Default: the response unchanged.
    fn origin_response(
        &self,
        ctx: &TriggerCtx,
        resp: Response<EdgeBody>,
    ) -> impl Future<Output = Result<Response<EdgeBody>, EdgeError>> + Send {
        let _ = ctx;
        async move { Ok(resp) }
    }

    /// Called before a response goes to the viewer (hits, misses and generated responses),
    /// except when the origin answered with a status of 400 or more.
    /// Default: the response unchanged.
    fn viewer_response(
        &self,
        ctx: &TriggerCtx,
        resp: Response<EdgeBody>,
    ) -> impl Future<Output = Result<Response<EdgeBody>, EdgeError>> + Send {
        let _ = ctx;
        async move { Ok(resp) }
    }
}

/// No functions at all: every trigger point continues unchanged.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTriggers;

impl Triggers for NoTriggers {}
