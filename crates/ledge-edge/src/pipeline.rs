//! The request pipeline, top to bottom: checks → route → behavior → viewer-request trigger →
//! cache → (origin-request trigger → origin fetch → origin-response trigger) → custom error
//! responses → viewer-response trigger → the edge's response headers.

use std::net::SocketAddr;
use std::sync::Arc;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use hyper::body::Incoming;

use crate::body::{EdgeBody, RequestBody};
use crate::cache::EdgeCache;
use crate::cloudfront_headers;
use crate::error::{EdgeError, ErrorKind};
use crate::ids::{self, EdgeIdentity};
use crate::response::{self, names, x_cache};
use crate::snapshot::{CompiledDistribution, CompiledSnapshot};
use crate::sniff::Verdicts;
use crate::store::{InstallError, SnapshotStore};
use crate::triggers::{Flow, TriggerCtx, Triggers};
use ledge_model::{ConfigSnapshot, ViewerProtocolPolicy};

/// Limits on what viewers may send (§1).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Request line plus headers, default 20,480 bytes.
    pub max_head_bytes: usize,
    /// The URL, default 8,192 bytes.
    pub max_url_bytes: usize,
    /// Request bodies, default 1 GiB.
    pub max_body_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_head_bytes: 20_480,
            max_url_bytes: 8_192,
            max_body_bytes: 1 << 30,
        }
    }
}

/// Where a request came from.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The viewer's address (TCP peer).
    pub peer: SocketAddr,
    /// Whether the viewer used TLS.
    pub https: bool,
    /// The refusals of the connection's [`crate::sniff::Sniff`] (HTTP/1 listeners); it checks
    /// head sizes and framing on the raw bytes, so the pipeline does not.
    pub sniff: Option<Arc<Verdicts>>,
}

/// An edge node's request handler; shared by every connection.
#[derive(Debug)]
pub struct Edge<T> {
    store: Arc<SnapshotStore>,
    identity: EdgeIdentity,
    limits: Limits,
    triggers: T,
    cache: EdgeCache,
}

/// The state of one request as it goes through the pipeline.
struct Ctx {
    snapshot: Arc<CompiledSnapshot>,
    distribution: Arc<CompiledDistribution>,
    behavior: usize,
    trigger: TriggerCtx,
    peer: SocketAddr,
}

// === impl Ctx ===

impl Ctx {
    /// The context of a background refresh for this request: same distribution, behavior and
    /// viewer, but its own request id (the viewer's request is over by then).
    fn background(&self) -> Ctx {
        Ctx {
            snapshot: self.snapshot.clone(),
            distribution: self.distribution.clone(),
            behavior: self.behavior,
            trigger: TriggerCtx {
                distribution: self.trigger.distribution.clone(),
                behavior: self.trigger.behavior.clone(),
                request_id: ids::request_id(),
                client_ip: self.trigger.client_ip,
                https: self.trigger.https,
            },
            peer: self.peer,
        }
    }
}

// === impl Edge ===

impl<T: Triggers> Edge<T> {
    /// An edge serving the store's snapshots with these triggers and cache.
    pub fn new(
        store: Arc<SnapshotStore>,
        identity: EdgeIdentity,
        limits: Limits,
        triggers: T,
        cache: EdgeCache,
    ) -> Self {
        Self {
            store,
            identity,
            limits,
            triggers,
            cache,
        }
    }

    /// The snapshot store (for reloads).
    pub fn store(&self) -> &Arc<SnapshotStore> {
        &self.store
    }

    /// The limits on viewer requests.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The cache (for invalidations).
    pub fn cache(&self) -> &EdgeCache {
        &self.cache
    }

    /// Swaps in a newer snapshot and applies the invalidations it brings for the first time.
    /// Returns the installed version.
    pub fn install(&self, snapshot: ConfigSnapshot) -> Result<u64, InstallError> {
        let version = snapshot.version;
        let old = self.store.install(snapshot)?;
        let new = self.store.load();
        for inv in &new.source.invalidations {
            if !old.source.invalidations.iter().any(|o| o.id == inv.id) {
                self.cache.invalidate(&inv.distribution_id, &inv.paths);
            }
        }
        Ok(version)
    }

    /// Serves one viewer request; never fails (errors become CloudFront's error responses).
    /// Takes the `Arc` because a stale answer may leave a background refresh behind (§5.7).
    pub async fn handle(
        self: &Arc<Self>,
        req: Request<Incoming>,
        conn: ConnInfo,
    ) -> Response<EdgeBody> {
        let request_id = ids::request_id();
        let version = req.version();
        let mut resp = match self.serve(req, conn, &request_id).await {
            Ok(resp) => resp,
            Err(e) => {
                if e.error_source() == crate::error::ErrorSource::Viewer {
                    tracing::debug!(error = %e, "request refused");
                } else {
                    tracing::warn!(error = %e, "request failed");
                }
                response::error_page(&e, &request_id)
            }
        };
        response::decorate(
            resp.headers_mut(),
            &self.identity,
            request_id,
            version,
            x_cache::MISS,
        );
        resp
    }

    async fn serve(
        self: &Arc<Self>,
        mut req: Request<Incoming>,
        conn: ConnInfo,
        request_id: &HeaderValue,
    ) -> Result<Response<EdgeBody>, EdgeError> {
        // Called for every request, so the sniff's request numbers stay in step.
        if let Some(verdicts) = conn.sniff.as_ref() {
            let (refusal, spellings) = verdicts.next_request();
            if let Some(why) = refusal {
                let kind = if why.too_large() {
                    ErrorKind::RequestHeaderTooLarge
                } else {
                    ErrorKind::InvalidRequest
                };
                return Err(EdgeError::new(kind).explain(why.reason()));
            }
            if let Some(names) = spellings {
                req.extensions_mut().insert(names);
            }
        }
        let sniffed = conn.sniff.is_some() && req.version() != Version::HTTP_2;
        self.check_request(&req, sniffed)?;
        let snapshot = self.store.load();
        let distribution = {
            let host = viewer_host(req.uri(), req.headers(), req.version())?;
            match snapshot.route(host.as_ref()) {
                Some(d) => d.clone(),
                None => return Err(EdgeError::new(ErrorKind::NoSuchDistribution)),
            }
        };
        if !distribution.enabled {
            return Err(EdgeError::new(ErrorKind::DistributionDisabled));
        }
        let (mut parts, body) = req.into_parts();
        // Default root object: `/` becomes `/<object>` before behavior selection.
        if let Some(root) = &distribution.default_root_object {
            if parts.uri.path() == "/" {
                parts.uri = rewrite_path(&parts.uri, root)?;
            }
        }
        let behavior_index = distribution.behavior_index(parts.uri.path());
        let behavior = &distribution.behaviors[behavior_index];
        if !conn.https {
            match behavior.viewer_protocol_policy {
                ViewerProtocolPolicy::AllowAll => {}
                ViewerProtocolPolicy::HttpsOnly => {
                    return Err(EdgeError::new(ErrorKind::ProtocolNotAllowed))
                }
                ViewerProtocolPolicy::RedirectToHttps => {
                    let host = viewer_host(&parts.uri, &parts.headers, parts.version)?;
                    return redirect_to_https(&parts.method, parts.version, &host, &parts.uri);
                }
            }
        }
        if !behavior.allows(&parts.method) {
            return Err(EdgeError::new(ErrorKind::InvalidRequestMethod));
        }
        let body = self.request_body(&parts.method, &parts.headers, body)?;
        let ctx = Ctx {
            trigger: TriggerCtx {
                distribution: distribution.clone(),
                behavior: behavior.config.clone(),
                request_id: request_id.clone(),
                client_ip: conn.peer.ip(),
                https: conn.https,
            },
            snapshot,
            distribution,
            behavior: behavior_index,
            peer: conn.peer,
        };
        let req = Request::from_parts(parts, body);

        // ── viewer-request trigger ──
        let mut req = match self.triggers.viewer_request(&ctx.trigger, req).await? {
            Flow::Continue(req) => req,
            Flow::Respond(mut resp) => {
                set_x_cache(&mut resp, x_cache::LAMBDA_GENERATED);
                return self.viewer_response(&ctx, resp).await;
            }
        };
        // CloudFront's headers about the viewer, for the cache key, origin-facing functions
        // and the origin (never seen at viewer-request, §6.1).
        let version = req.version();
        cloudfront_headers::add(
            req.headers_mut(),
            &ctx.distribution.behaviors[ctx.behavior].forward.cloudfront,
            version,
            ctx.peer,
            ctx.trigger.https,
        );
        self.triggers.viewer_request_done(&ctx.trigger, &req);

        // ── cache lookup, origin fetch on a miss, cache store ──
        let resp = self.cache_or_fetch(&ctx, req).await;
        let from_origin_error = resp.status().as_u16() >= 400;

        // ── custom error responses ──
        let resp = self.custom_error_response(&ctx, resp).await;

        // ── viewer-response trigger (not for origin errors) ──
        if from_origin_error {
            Ok(resp)
        } else {
            self.viewer_response(&ctx, resp).await
        }
    }

    async fn viewer_response(
        &self,
        ctx: &Ctx,
        resp: Response<EdgeBody>,
    ) -> Result<Response<EdgeBody>, EdgeError> {
        self.triggers.viewer_response(&ctx.trigger, resp).await
    }

    /// The cache step: a hit is answered from cache; a miss goes to [`Self::fetch`]. A stale
    /// answer's refresh runs in a task of its own, so this viewer does not wait for it.
    async fn cache_or_fetch(
        self: &Arc<Self>,
        ctx: &Ctx,
        req: Request<RequestBody>,
    ) -> Response<EdgeBody> {
        let (parts, body) = req.into_parts();
        let (resp, refresh) = self
            .cache
            .serve(
                &ctx.distribution,
                ctx.behavior,
                parts,
                body,
                &ctx.trigger.request_id,
                // Boxed: the origin round trip is the largest future of the pipeline, and
                // every request's future (moved whole, whatever its state) would carry it.
                |req| Box::pin(self.fetch(ctx, req)),
            )
            .await;
        if let Some(job) = refresh {
            let edge = Arc::clone(self);
            let ctx = ctx.background();
            tokio::spawn(async move { job.run(|req| edge.fetch(&ctx, req)).await });
        }
        resp
    }

    /// A miss: origin-request trigger → origin fetch → origin-response trigger. Origin failures
    /// become generated error responses here, so the cache can store them like origin errors.
    async fn fetch(&self, ctx: &Ctx, req: Request<RequestBody>) -> Response<EdgeBody> {
        let result = async {
            // ── origin-request trigger ──
            let req = match self.triggers.origin_request(&ctx.trigger, req).await? {
                Flow::Continue(req) => req,
                Flow::Respond(mut resp) => {
                    set_x_cache(&mut resp, x_cache::LAMBDA_GENERATED);
                    return Ok(resp);
                }
            };
            let resp = crate::proxy::send(
                &ctx.distribution,
                &ctx.distribution.behaviors[ctx.behavior],
                req,
                &ctx.trigger.request_id,
                ctx.peer,
                ctx.trigger.https,
                &self.identity,
            )
            .await?;
            // ── origin-response trigger ──
            self.triggers.origin_response(&ctx.trigger, resp).await
        }
        .await;
        match result {
            Ok(resp) => resp,
            Err(e) => {
                tracing::warn!(error = %e, distribution = %ctx.distribution.id, "origin fetch failed");
                response::error_page(&e, &ctx.trigger.request_id)
            }
        }
    }

    /// §8.4: replaces an error with the configured page and/or status.
    async fn custom_error_response(
        self: &Arc<Self>,
        ctx: &Ctx,
        resp: Response<EdgeBody>,
    ) -> Response<EdgeBody> {
        let status = resp.status().as_u16();
        let Some(custom) = ctx.distribution.custom_error_response(status) else {
            return resp;
        };
        let code = custom
            .response_code
            .and_then(|c| StatusCode::from_u16(c).ok())
            .unwrap_or(resp.status());
        let Some(page) = custom.response_page_path.as_deref() else {
            let mut resp = resp;
            *resp.status_mut() = code;
            return resp;
        };
        let Ok(uri) = page.parse::<http::Uri>() else {
            return resp;
        };
        // The page goes through the normal pipeline: its own behavior, origin and cache.
        let page_behavior = ctx.distribution.behavior_index(uri.path());
        let mut req = Request::new(RequestBody::Empty);
        *req.uri_mut() = uri;
        let page_ctx = Ctx {
            snapshot: ctx.snapshot.clone(),
            distribution: ctx.distribution.clone(),
            behavior: page_behavior,
            trigger: TriggerCtx {
                behavior: ctx.distribution.behaviors[page_behavior].config.clone(),
                distribution: ctx.distribution.clone(),
                request_id: ctx.trigger.request_id.clone(),
                client_ip: ctx.trigger.client_ip,
                https: ctx.trigger.https,
            },
            peer: ctx.peer,
        };
        // Boxed: a second cache step inside the first would double every request's future.
        let mut page_resp = Box::pin(self.cache_or_fetch(&page_ctx, req)).await;
        if page_resp.status().as_u16() >= 400 {
            return page_resp;
        }
        *page_resp.status_mut() = code;
        set_x_cache_force(&mut page_resp, x_cache::ERROR);
        page_resp
    }

    /// §1's refusals that need no routing. The size limits are checked here only for requests
    /// the sniff did not see (HTTP/2), on the decoded head, which is close to its HTTP/1 size.
    fn check_request(&self, req: &Request<Incoming>, sniffed: bool) -> Result<(), EdgeError> {
        let uri_len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
        if !sniffed && uri_len > self.limits.max_url_bytes {
            return Err(EdgeError::new(ErrorKind::RequestHeaderTooLarge).explain("url"));
        }
        let head = || {
            req.method().as_str().len()
                + uri_len
                + 11
                + req
                    .headers()
                    .iter()
                    .map(|(n, v)| n.as_str().len() + v.len() + 4)
                    .sum::<usize>()
        };
        if !sniffed && head() > self.limits.max_head_bytes {
            return Err(EdgeError::new(ErrorKind::RequestHeaderTooLarge).explain("headers"));
        }
        let h = req.headers();
        if h.contains_key(header::TRANSFER_ENCODING)
            && (h.contains_key(header::CONTENT_LENGTH) || req.version() == Version::HTTP_10)
        {
            return Err(EdgeError::new(ErrorKind::InvalidRequest).explain("CL+TE"));
        }
        if h.get_all(header::CONTENT_LENGTH).iter().count() > 1 {
            return Err(EdgeError::new(ErrorKind::InvalidRequest).explain("two Content-Length"));
        }
        Ok(())
    }

    /// The viewer's body, refused when it may not have one or is too large.
    fn request_body(
        &self,
        method: &Method,
        headers: &HeaderMap,
        body: Incoming,
    ) -> Result<RequestBody, EdgeError> {
        use http_body::Body as _;
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let chunked = headers.contains_key(header::TRANSFER_ENCODING);
        let has_body = declared.is_some_and(|n| n > 0) || chunked || !body.is_end_stream();
        if !has_body {
            return Ok(RequestBody::Empty);
        }
        if *method == Method::GET || *method == Method::HEAD {
            return Err(EdgeError::new(ErrorKind::BodyNotAllowed));
        }
        let cap = self.limits.max_body_bytes;
        if declared.is_some_and(|n| n > cap) {
            return Err(EdgeError::new(ErrorKind::RequestBodyTooLarge));
        }
        if declared.is_some() {
            return Ok(RequestBody::Incoming(body));
        }
        let limited =
            http_body_util::Limited::new(body, usize::try_from(cap).unwrap_or(usize::MAX));
        Ok(RequestBody::Stream(http_body_util::BodyExt::boxed_unsync(
            limited,
        )))
    }
}

fn set_x_cache(resp: &mut Response<EdgeBody>, value: HeaderValue) {
    if !resp.headers().contains_key(names::X_CACHE) {
        resp.headers_mut().insert(names::X_CACHE, value);
    }
}

fn set_x_cache_force(resp: &mut Response<EdgeBody>, value: HeaderValue) {
    resp.headers_mut().insert(names::X_CACHE, value);
}

/// The viewer's host (HTTP/2 `:authority`, else `Host`), without port, lower-cased.
fn viewer_host<'a>(
    uri: &'a http::Uri,
    headers: &'a HeaderMap,
    version: Version,
) -> Result<std::borrow::Cow<'a, str>, EdgeError> {
    let invalid = || EdgeError::new(ErrorKind::InvalidRequest).explain("host");
    let raw = match uri.authority() {
        Some(a) if version == Version::HTTP_2 => a.as_str(),
        _ => match headers.get(header::HOST) {
            Some(h) => h.to_str().map_err(|_| invalid())?,
            None => uri.authority().map(|a| a.as_str()).ok_or_else(invalid)?,
        },
    };
    if headers.get_all(header::HOST).iter().count() > 1 {
        return Err(invalid());
    }
    let host = strip_port(raw).ok_or_else(invalid)?;
    if host.is_empty()
        || !host.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'[' | b']' | b':')
        })
    {
        return Err(invalid());
    }
    Ok(if host.bytes().any(|b| b.is_ascii_uppercase()) {
        host.to_ascii_lowercase().into()
    } else {
        host.into()
    })
}

fn strip_port(raw: &str) -> Option<&str> {
    if let Some(rest) = raw.strip_prefix('[') {
        let end = rest.find(']')?;
        let after = &rest[end + 1..];
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        return Some(&raw[..end + 2]);
    }
    match raw.rsplit_once(':') {
        Some((h, port)) if is_port(port) => Some(h),
        Some(_) => None,
        None => Some(raw),
    }
}

fn is_port(s: &str) -> bool {
    !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit())
}

fn rewrite_path(uri: &http::Uri, path: &str) -> Result<http::Uri, EdgeError> {
    let pq = match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(
        pq.parse()
            .map_err(|e| EdgeError::because(ErrorKind::Internal, e))?,
    );
    http::Uri::from_parts(parts).map_err(|e| EdgeError::because(ErrorKind::Internal, e))
}

/// §1 `redirect-to-https`: 301 for GET/HEAD, 307 for other methods, 403 on HTTP/1.0.
fn redirect_to_https(
    method: &Method,
    version: Version,
    host: &str,
    uri: &http::Uri,
) -> Result<Response<EdgeBody>, EdgeError> {
    let status = if *method == Method::GET || *method == Method::HEAD {
        StatusCode::MOVED_PERMANENTLY
    } else if version == Version::HTTP_10 || version == Version::HTTP_09 {
        return Err(EdgeError::new(ErrorKind::ProtocolNotAllowed));
    } else {
        StatusCode::TEMPORARY_REDIRECT
    };
    let pq = uri.path_and_query().map_or("/", |p| p.as_str());
    let location = HeaderValue::from_str(&format!("https://{host}{pq}"))
        .map_err(|e| EdgeError::because(ErrorKind::InvalidRequest, e))?;
    Ok(response::redirect(status, location))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_stripped() {
        assert_eq!(strip_port("a.test:8080"), Some("a.test"));
        assert_eq!(strip_port("a.test"), Some("a.test"));
        assert_eq!(strip_port("[::1]:80"), Some("[::1]"));
        assert_eq!(strip_port("a.test:x"), None);
        assert_eq!(strip_port("a.test:"), None);
    }

    #[test]
    fn viewer_host_is_lower_cased_without_port_and_checked() {
        let host = |h: &str, v: Version| {
            let mut headers = HeaderMap::new();
            if !h.is_empty() {
                headers.insert(header::HOST, HeaderValue::from_str(h).unwrap());
            }
            let uri: http::Uri = "/x".parse().unwrap();
            viewer_host(&uri, &headers, v).map(|c| c.into_owned()).ok()
        };
        assert_eq!(
            host("A.Test:8080", Version::HTTP_11).as_deref(),
            Some("a.test")
        );
        assert_eq!(host("a.test", Version::HTTP_11).as_deref(), Some("a.test"));
        assert_eq!(host("bad host", Version::HTTP_11), None);
        assert_eq!(host("a/b", Version::HTTP_11), None);
        assert_eq!(host("", Version::HTTP_11), None);
        let uri: http::Uri = "https://H2.Test:443/x".parse().unwrap();
        let none = HeaderMap::new();
        let got = viewer_host(&uri, &none, Version::HTTP_2).unwrap();
        assert_eq!(got, "h2.test");
    }
}
