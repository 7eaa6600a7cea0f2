//! The pipeline's cache step, over `ledge-cache`: builds the [`CacheRequest`], hands the cache
//! a fetch closure that runs the origin path, buffers cacheable bodies (so a body cut short is
//! an error and never stored) and turns the outcome into the viewer's response.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderValue};
use http::request::Parts;
use http::{Request, Response};
use http_body::Body as _;
use http_body_util::BodyExt;
use ledge_cache::{Body, Cache, CacheError, CacheRequest, Conditional, OriginResponse, Refresh};
pub use ledge_cache::{CacheConfig, DiskConfig, DEFAULT_MAX_OBJECT_SIZE};

use crate::body::{EdgeBody, RequestBody};
use crate::error::{EdgeError, ErrorKind};
use crate::origin::BodyTimeout;
use crate::response::{self, names, x_cache};
use crate::snapshot::CompiledDistribution;

/// The edge's cache (or none: every request goes to the origin).
#[derive(Debug, Clone, Default)]
pub struct EdgeCache {
    cache: Option<Cache>,
}

/// A `stale-while-revalidate` refresh owed after a stale answer (§5.7): it holds the key's
/// refresh slot, so other viewers keep getting the stale copy meanwhile; dropping it unrun
/// gives the slot up.
#[derive(Debug)]
pub struct RefreshJob {
    cache: Cache,
    ticket: Refresh,
    distribution: Arc<CompiledDistribution>,
    behavior: usize,
    parts: Parts,
}

/// Viewer request headers the edge replaces with its own on a cache fill (§4.2).
const FILL_DROPPED: [header::HeaderName; 6] = [
    header::RANGE,
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_UNMODIFIED_SINCE,
    header::IF_RANGE,
];

// === impl EdgeCache ===

impl EdgeCache {
    /// A cache that stores nothing.
    pub fn disabled() -> Self {
        Self { cache: None }
    }

    /// A memory (and optional disk) cache.
    pub fn new(config: CacheConfig) -> Result<Self, CacheError> {
        Ok(Self {
            cache: Some(Cache::new(config)?),
        })
    }

    /// The underlying cache, if any.
    pub fn inner(&self) -> Option<&Cache> {
        self.cache.as_ref()
    }

    /// Answers from cache, or calls `fetch` (the origin path) on a miss and stores the result
    /// when it is cacheable. Sets `X-Cache`. A stale answer within `stale-while-revalidate`
    /// comes with a [`RefreshJob`] the caller runs after answering (§5.7).
    pub async fn serve<F, Fut>(
        &self,
        distribution: &Arc<CompiledDistribution>,
        behavior: usize,
        parts: Parts,
        body: RequestBody,
        request_id: &HeaderValue,
        fetch: F,
    ) -> (Response<EdgeBody>, Option<RefreshJob>)
    where
        F: FnOnce(Request<RequestBody>) -> Fut,
        Fut: Future<Output = Response<EdgeBody>>,
    {
        let Some(cache) = &self.cache else {
            let mut resp = fetch(Request::from_parts(parts, body)).await;
            set_default_x_cache(&mut resp);
            return (resp, None);
        };
        let Some(settings) = distribution
            .behaviors
            .get(behavior)
            .map(|b| &b.cache_settings)
        else {
            let e = EdgeError::new(ErrorKind::Internal).explain("behavior index");
            return (response::error_page(&e, request_id), None);
        };
        let req = CacheRequest::new(
            &distribution.id,
            &distribution.domain_name,
            &parts,
            settings,
        );
        let max = cache.max_object_size();
        let parts_ref = &parts;
        // Whether this request's own fetch ran a function that generated the response: it then
        // shows `LambdaGeneratedResponse`, not `Miss` (later hits show `Hit`).
        let generated = AtomicBool::new(false);
        let generated_ref = &generated;
        let outcome = cache
            .serve(&req, move |cond: Conditional| async move {
                let req = origin_request(parts_ref, body, &cond);
                let resp = fetch(req).await;
                if resp.headers().get(names::X_CACHE) == Some(&x_cache::LAMBDA_GENERATED) {
                    generated_ref.store(true, Ordering::Relaxed);
                }
                into_origin_response(resp, cond.cache_fill, max).await
            })
            .await;
        match outcome {
            Ok(mut o) => {
                let job = o.refresh.take().map(|ticket| RefreshJob {
                    cache: cache.clone(),
                    ticket,
                    distribution: distribution.clone(),
                    behavior,
                    parts: refresh_parts(&parts),
                });
                let body = match o.body {
                    Body::Full(b) => EdgeBody::full(b),
                    Body::Stream(s) => s,
                };
                let mut resp = Response::new(body);
                *resp.status_mut() = o.status;
                *resp.headers_mut() = o.headers;
                let x = if generated.load(Ordering::Relaxed) {
                    x_cache::LAMBDA_GENERATED
                } else if o.status.as_u16() >= 400 {
                    x_cache::ERROR
                } else {
                    HeaderValue::from_static(o.cache_status.as_str())
                };
                resp.headers_mut().insert(names::X_CACHE, x);
                (resp, job)
            }
            Err(e) => {
                tracing::warn!(error = %e, distribution = %distribution.id, "origin response unusable");
                (response::error_page(&e, request_id), None)
            }
        }
    }

    /// Drops the entries of a distribution matching invalidation paths; returns how many.
    pub fn invalidate(&self, distribution_id: &str, paths: &[String]) -> usize {
        self.cache
            .as_ref()
            .map_or(0, |c| c.invalidate(distribution_id, paths))
    }
}

// === impl RefreshJob ===

impl RefreshJob {
    /// Revalidates (or refetches) the stale entry through `fetch`, the same origin path as a
    /// miss, and stores the result; the next request gets it. Failures are logged: the stale
    /// copy stays until its window ends.
    pub async fn run<F, Fut>(self, fetch: F)
    where
        F: FnOnce(Request<RequestBody>) -> Fut,
        Fut: Future<Output = Response<EdgeBody>>,
    {
        let Self {
            cache,
            ticket,
            distribution,
            behavior,
            parts,
        } = self;
        let Some(b) = distribution.behaviors.get(behavior) else {
            return;
        };
        let req = CacheRequest::new(
            &distribution.id,
            &distribution.domain_name,
            &parts,
            &b.cache_settings,
        );
        let max = cache.max_object_size();
        let parts_ref = &parts;
        let result = cache
            .refresh(&req, ticket, move |cond: Conditional| async move {
                let resp = fetch(origin_request(parts_ref, RequestBody::Empty, &cond)).await;
                into_origin_response(resp, cond.cache_fill, max).await
            })
            .await;
        match result {
            Ok(status) => tracing::debug!(
                distribution = %distribution.id,
                path = parts.uri.path(),
                status = status.as_str(),
                "stale-while-revalidate refresh done"
            ),
            Err(e) => tracing::warn!(
                error = %e,
                distribution = %distribution.id,
                "stale-while-revalidate refresh failed"
            ),
        }
    }
}

/// The request a background refresh replays: the viewer's method, URI and headers (the
/// cache key's inputs); the body is never needed, only GET is served stale.
fn refresh_parts(parts: &Parts) -> Parts {
    let mut req = Request::new(());
    *req.method_mut() = parts.method.clone();
    *req.uri_mut() = parts.uri.clone();
    *req.version_mut() = parts.version;
    *req.headers_mut() = parts.headers.clone();
    req.into_parts().0
}

fn set_default_x_cache(resp: &mut Response<EdgeBody>) {
    if !resp.headers().contains_key(names::X_CACHE) {
        resp.headers_mut().insert(names::X_CACHE, x_cache::MISS);
    }
}

/// The request for the origin path: the viewer's, with the cache's validators on a fill.
fn origin_request(parts: &Parts, body: RequestBody, cond: &Conditional) -> Request<RequestBody> {
    let mut req = Request::new(body);
    *req.method_mut() = parts.method.clone();
    *req.uri_mut() = parts.uri.clone();
    *req.version_mut() = parts.version;
    let mut headers = parts.headers.clone();
    if cond.cache_fill {
        for h in &FILL_DROPPED {
            headers.remove(h);
        }
        cond.apply(&mut headers);
    }
    *req.headers_mut() = headers;
    req
}

/// Buffers a response the cache may store (up to `max` bytes); streams anything else.
async fn into_origin_response(
    resp: Response<EdgeBody>,
    fill: bool,
    max: u64,
) -> Result<OriginResponse<EdgeBody>, EdgeError> {
    let (mut parts, body) = resp.into_parts();
    parts.headers.remove(names::X_CACHE);
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let buffer = fill && declared.is_none_or(|n| n <= max);
    if !buffer {
        return Ok(OriginResponse {
            status: parts.status,
            headers: parts.headers,
            body: Body::Stream(body),
        });
    }
    let body = match buffer_body(body, declared, max).await? {
        Buffered::Full(bytes) => Body::Full(bytes),
        // A Stream body is passed through and never stored: the viewer still gets all of it.
        Buffered::TooBig(rest) => Body::Stream(rest),
    };
    let headers = match body {
        Body::Full(_) => detach(parts.headers),
        Body::Stream(_) => parts.headers,
    };
    Ok(OriginResponse {
        status: parts.status,
        headers,
        body,
    })
}

/// A body read into memory, or (past the cache's object size) what was read so far put back
/// in front of the rest.
enum Buffered {
    Full(Bytes),
    TooBig(EdgeBody),
}

async fn buffer_body(
    body: EdgeBody,
    declared: Option<u64>,
    max: u64,
) -> Result<Buffered, EdgeError> {
    let mut body = match body {
        EdgeBody::Empty => return Ok(Buffered::Full(Bytes::new())),
        EdgeBody::Full(b) => return Ok(Buffered::Full(b.unwrap_or_default())),
        other => other,
    };
    let mut buf =
        BytesMut::with_capacity(usize::try_from(declared.unwrap_or(0).min(max)).unwrap_or(0));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(body_error)?;
        if let Ok(data) = frame.into_data() {
            buf.extend_from_slice(&data);
        }
        if buf.len() as u64 > max {
            // Only a body without Content-Length gets here (a declared one over `max` is
            // streamed from the start).
            return Ok(Buffered::TooBig(EdgeBody::stream(Replay {
                first: Some(buf.freeze()),
                rest: body,
            })));
        }
    }
    if body.is_end_stream() && declared.is_some_and(|n| n != buf.len() as u64) {
        return Err(EdgeError::new(ErrorKind::OriginInvalidResponse).explain("short body"));
    }
    Ok(Buffered::Full(buf.freeze()))
}

/// The bytes already read from a body, then the rest of it.
struct Replay {
    first: Option<Bytes>,
    rest: EdgeBody,
}

impl http_body::Body for Replay {
    type Data = Bytes;
    type Error = crate::body::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if let Some(b) = self.first.take() {
            return std::task::Poll::Ready(Some(Ok(http_body::Frame::data(b))));
        }
        std::pin::Pin::new(&mut self.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.rest.is_end_stream()
    }
}

/// Copies header values out of the connection's read buffer: hyper's values are slices of it,
/// and a stored entry would otherwise keep the whole buffer alive (kilobytes per object).
fn detach(headers: http::HeaderMap) -> http::HeaderMap {
    let mut out = http::HeaderMap::with_capacity(headers.len());
    let mut last = None;
    for (name, value) in headers {
        if let Some(n) = name {
            last = Some(n);
        }
        if let Some(n) = &last {
            let v = HeaderValue::from_bytes(value.as_bytes()).unwrap_or(value);
            out.append(n.clone(), v);
        }
    }
    out
}

fn body_error(e: crate::body::BoxError) -> EdgeError {
    if e.is::<BodyTimeout>() {
        EdgeError::because(ErrorKind::OriginReadTimeout, e).explain("response body")
    } else {
        EdgeError::because(ErrorKind::OriginInvalidResponse, e).explain("response body")
    }
}
