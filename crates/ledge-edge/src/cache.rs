//! The pipeline's cache step. Until the cache crate is wired in, every request is a miss.

use std::future::Future;

use http::{Request, Response};

use crate::body::{EdgeBody, RequestBody};
use crate::response::{names, x_cache};
use crate::snapshot::{CompiledBehavior, CompiledDistribution};

/// The edge's cache.
#[derive(Debug, Default)]
pub struct EdgeCache {}

// === impl EdgeCache ===

impl EdgeCache {
    /// A cache that stores nothing.
    pub fn disabled() -> Self {
        Self {}
    }

    /// Answers from cache, or calls `fetch` (the origin path) on a miss and stores the result
    /// when it is cacheable. Sets `X-Cache`.
    pub async fn serve<F, Fut>(
        &self,
        distribution: &CompiledDistribution,
        behavior: &CompiledBehavior,
        req: Request<RequestBody>,
        fetch: F,
    ) -> Response<EdgeBody>
    where
        F: FnOnce(Request<RequestBody>) -> Fut,
        Fut: Future<Output = Response<EdgeBody>>,
    {
        let _ = (distribution, behavior);
        let mut resp = fetch(req).await;
        if !resp.headers().contains_key(names::X_CACHE) {
            resp.headers_mut().insert(names::X_CACHE, x_cache::MISS);
        }
        resp
    }

    /// Drops the entries of a distribution matching invalidation paths.
    pub fn invalidate(&self, distribution_id: &str, paths: &[String]) {
        let _ = (distribution_id, paths);
    }
}
