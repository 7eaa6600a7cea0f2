//! Lambda@Edge at the edge: the four trigger points run the function version a behavior
//! associates, with the event CloudFront would build, and apply what it returns after
//! validating it (lambda-edge.md §1–§7).
//!
//! How it fits the pipeline ([`crate::triggers`]):
//! - **viewer-request** builds the event from the viewer's request (body per IncludeBody,
//!   truncated at 40 KB), applies a changed request or answers with a generated response
//!   (marked so that viewer-response does not run on it, §1.2 S4).
//! - **origin-request / origin-response**: when a behavior has either, this module sends the
//!   origin request itself, so that the functions see (and change) the request exactly as it
//!   goes to the origin (§2.8), may pick another origin (§3.8), and the origin-response
//!   function sees that request. The fetched (and changed) response is handed back to the
//!   pipeline, which caches it like any origin response.
//! - **viewer-response** gets the viewer request as the pipeline handed it on (after
//!   viewer-request, with CloudFront's own headers) from a small per-request stash keyed by the
//!   request id, filled by `viewer_request_done`, since the pipeline hands it only the response.
//!
//! Behaviors without associations cost one scan of their (empty) association list.
//! Failures map to §5.1: validation → 502 `LambdaValidationError` (logged to
//! `/aws/cloudfront/LambdaEdge/<DistributionId>`), throttling → 503 `LambdaLimitExceeded`,
//! anything else → 503 `LambdaExecutionError`.

mod body;
mod convert;
mod event;
mod fetch;
pub mod functions;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime};

use http::header::{self, HeaderName, HeaderValue};
use http::{Request, Response};
use ledge_model::edge_result::{self, ValidResult, ORIGIN_BODY_LIMIT, VIEWER_BODY_LIMIT};
use ledge_model::event::{self as ev, EventType};
use ledge_model::{CacheBehavior, ConfigSnapshot, LambdaFunctionAssociation};
use ledge_runtime::{FileSink, InvokeError, LogBatch, LogLine, LogSink, Runtime, RuntimeConfig};
use serde_json::{Map, Value};

use crate::body::{EdgeBody, RequestBody};
use crate::error::{EdgeError, ErrorKind, ErrorSource};
use crate::ids::EdgeIdentity;
use crate::origin::OriginClients;
use crate::reload::SnapshotHook;
use crate::response::{names, x_cache};
use crate::snapshot::CompiledBehavior;
use crate::triggers::{Flow, TriggerCtx, Triggers};
use convert::{CloudFrontNames, Spelling};

pub use functions::{FunctionSet, LoadFailure};

/// What became of a function's result.
#[derive(Debug)]
enum Outcome {
    /// The function handed back the record it was given, unchanged.
    Unchanged,
    /// A different result, validated.
    Changed(ValidResult),
}

/// Marks a response generated at viewer-request: viewer-response does not run on it.
#[derive(Debug, Clone, Copy)]
struct FromViewerRequest;

/// Stashed viewer requests older than this are dropped (their viewer-response never came,
/// e.g. because the origin answered with an error).
const STASH_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// The Lambda@Edge triggers of an edge. Cheap to clone (shared state).
#[derive(Debug, Clone)]
pub struct LambdaTriggers {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    functions: Arc<FunctionSet>,
    clients: OriginClients,
    identity: EdgeIdentity,
    logs: Arc<FileSink>,
    /// Viewer requests waiting for their viewer-response, by request id.
    stash: Mutex<HashMap<HeaderValue, (Instant, ev::Request)>>,
}

/// Settings of [`LambdaTriggers::new`].
#[derive(Debug, Clone)]
pub struct LambdaSettings {
    /// Workers started per function version before a snapshot naming it is served.
    pub prewarm: usize,
    /// Interpreters by runtime identifier (default `node` / `python3` on `PATH`).
    pub interpreters: HashMap<String, std::path::PathBuf>,
    /// Concurrent invocations per version (the runtime's default when `None`); more are
    /// queued, and beyond the queue throttled (503 `LambdaLimitExceeded`).
    pub version_concurrency: Option<usize>,
    /// Invocations per version that may wait for a worker (the runtime's default when `None`).
    pub version_queue: Option<usize>,
    /// How long an invocation that finds every worker of its version busy waits for one
    /// before starting another (see `RuntimeConfig::warm_wait`).
    pub warm_wait: std::time::Duration,
    /// Size of each version's `/tmp` in bytes (the runtime's default, 512 MiB, when `None`;
    /// see `RuntimeConfig::tmp_size_bytes`).
    pub tmp_size_bytes: Option<u64>,
    /// Workers in PID namespaces of their own (the runtime's default, on when root, when
    /// `None`; see `RuntimeConfig::pid_namespaces`).
    pub pid_namespaces: Option<bool>,
    /// When each log group's file under `logs/` is rotated, and how many rotated files are kept.
    pub log_rotation: ledge_runtime::Rotation,
}

impl Default for LambdaSettings {
    /// Defaults, overridden by the environment variables `LEDGE_LAMBDA_PREWARM`,
    /// `LEDGE_LAMBDA_CONCURRENCY`, `LEDGE_LAMBDA_QUEUE`, `LEDGE_LAMBDA_WARM_WAIT_MS`,
    /// `LEDGE_LAMBDA_LOG_FILE_MB` and `LEDGE_LAMBDA_LOG_FILES_KEPT` when set to a number.
    fn default() -> Self {
        let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<usize>().ok());
        let rotation = ledge_runtime::Rotation::default();
        Self {
            prewarm: env("LEDGE_LAMBDA_PREWARM").unwrap_or(1),
            interpreters: HashMap::new(),
            version_concurrency: env("LEDGE_LAMBDA_CONCURRENCY"),
            version_queue: env("LEDGE_LAMBDA_QUEUE"),
            warm_wait: std::time::Duration::from_millis(
                env("LEDGE_LAMBDA_WARM_WAIT_MS").unwrap_or(5) as u64,
            ),
            tmp_size_bytes: None,
            pid_namespaces: None,
            log_rotation: ledge_runtime::Rotation {
                max_bytes: env("LEDGE_LAMBDA_LOG_FILE_MB")
                    .map_or(rotation.max_bytes, |mb| (mb.max(1) as u64) << 20),
                keep: env("LEDGE_LAMBDA_LOG_FILES_KEPT").unwrap_or(rotation.keep),
            },
        }
    }
}

// === impl LambdaTriggers ===

impl LambdaTriggers {
    /// Triggers keeping their state under `data_dir`: packages in `packages/<sha256>.zip`,
    /// the runtime's files in `runtime/`, logs in `logs/` (one file per log group).
    pub fn new(
        data_dir: &Path,
        identity: EdgeIdentity,
        clients: OriginClients,
        settings: LambdaSettings,
    ) -> std::io::Result<Self> {
        let packages = data_dir.join("packages");
        std::fs::create_dir_all(&packages)?;
        let logs =
            Arc::new(FileSink::new(data_dir.join("logs"))?.with_rotation(settings.log_rotation));
        let mut config = RuntimeConfig::new(data_dir.join("runtime"));
        config.log_sink = Some(logs.clone());
        config.interpreters = settings.interpreters;
        config.warm_wait = settings.warm_wait;
        if let Some(n) = settings.version_concurrency {
            config.version_concurrency = n.max(1);
        }
        if let Some(n) = settings.version_queue {
            config.version_queue = n;
        }
        if let Some(bytes) = settings.tmp_size_bytes {
            config.tmp_size_bytes = bytes;
        }
        if let Some(on) = settings.pid_namespaces {
            config.pid_namespaces = on;
        }
        let runtime = Runtime::new(config)?;
        Ok(Self {
            inner: Arc::new(Inner {
                functions: Arc::new(FunctionSet::new(runtime, packages, settings.prewarm)),
                clients,
                identity,
                logs,
                stash: Mutex::default(),
            }),
        })
    }

    /// The function versions this edge runs.
    pub fn functions(&self) -> &Arc<FunctionSet> {
        &self.inner.functions
    }

    /// One invocation: event → function → validated result (§2, §3, §5). `request` and
    /// `response` are the records as the function sees them.
    async fn run(
        &self,
        ctx: &TriggerCtx,
        event_type: EventType,
        assoc: &LambdaFunctionAssociation,
        request: &ev::Request,
        response: Option<&ev::Response>,
    ) -> Result<Outcome, EdgeError> {
        let arn = assoc.lambda_function_arn.as_str();
        let handle = match self.inner.functions.get(arn).await {
            Ok(h) => h,
            Err(e) => {
                self.function_log(arn, &format!("ERROR\t{e}"));
                return Err(EdgeError::because(ErrorKind::LambdaExecutionError, e)
                    .explain("function not loaded"));
            }
        };
        let request_id = ctx.request_id.to_str().unwrap_or("");
        let config = ev::EventConfig {
            distribution_domain_name: ctx.distribution.domain_name.to_string(),
            distribution_id: ctx.distribution.id.to_string(),
            event_type,
            request_id: request_id.to_string(),
        };
        let style = handle.language().json_style();
        let event = event::write_event(style, &config, request, response)
            .map_err(|e| EdgeError::because(ErrorKind::Internal, e).explain("event"))?;
        let invocation = handle.invoke_trusted(&event.bytes).await;
        let payload = match invocation.result {
            Ok(p) => p,
            Err(e @ InvokeError::ResponseTooLarge { .. }) => {
                // An oversize result is a result that fails validation (§3.2 V9/V10).
                let invalid = edge_result::oversize_result();
                let logged = format!("{} ({e})", invalid.0);
                self.validation_log(ctx, request_id, &invocation.request_id, arn, &logged);
                return Err(
                    EdgeError::because(ErrorKind::LambdaValidationError, e).with_reason(invalid.0)
                );
            }
            Err(e) => {
                let kind = match e {
                    InvokeError::Throttled(_) => ErrorKind::LambdaLimitExceeded,
                    _ => ErrorKind::LambdaExecutionError,
                };
                if matches!(
                    e,
                    InvokeError::Throttled(_)
                        | InvokeError::Spawn(_)
                        | InvokeError::InvalidEvent(_)
                ) {
                    self.function_log(arn, &format!("ERROR\t{}: {e}", e.error_type()));
                }
                return Err(EdgeError::because(kind, e).explain("function invocation"));
            }
        };
        // The record handed back as it came (the common case: a function that only looks)
        // passes validation by construction.
        if event.is_echo(&payload) {
            return Ok(Outcome::Unchanged);
        }
        let input = match response {
            Some(r) => convert::to_map(r),
            None => convert::to_map(request),
        };
        let result = serde_json::from_slice::<Value>(&payload).map_err(|_| {
            edge_result::ValidationError(
                "The Lambda function returned invalid JSON: The JSON output is not parsable."
                    .into(),
            )
        });
        match result.and_then(|v| edge_result::validate(event_type, &input, v)) {
            Ok(valid) => Ok(Outcome::Changed(valid)),
            Err(e) => {
                self.validation_log(ctx, request_id, &invocation.request_id, arn, &e.0);
                Err(invalid_result(e))
            }
        }
    }

    fn write_log(&self, group: String, stream: &str, message: String) {
        let batch = LogBatch {
            log_group: group.into(),
            log_stream: stream.into(),
            lines: vec![LogLine {
                timestamp: SystemTime::now(),
                message,
            }],
        };
        self.inner.logs.write(&batch);
    }

    /// A line in the function's log group (failures the runtime did not log itself).
    fn function_log(&self, arn: &str, message: &str) {
        let name = functions::name_and_version(arn).map_or_else(|| arn.to_string(), |(n, _)| n);
        self.write_log(format!("/aws/lambda/{name}"), "edge", message.to_string());
    }

    /// §7.3: `/aws/cloudfront/LambdaEdge/<DistributionId>`.
    fn validation_log(
        &self,
        ctx: &TriggerCtx,
        cf_id: &str,
        lambda_id: &str,
        arn: &str,
        reason: &str,
    ) {
        tracing::info!(distribution = %ctx.distribution.id, %arn, %reason, "Lambda@Edge validation error");
        self.write_log(
            format!("/aws/cloudfront/LambdaEdge/{}", ctx.distribution.id),
            self.inner.identity.pop.to_str().unwrap_or("edge"),
            format!(
                "ERROR Validation error: {reason} CloudFront request id: {cf_id} Lambda request id: {lambda_id} Function: {arn}"
            ),
        );
    }

    fn stash(&self, ctx: &TriggerCtx, request: ev::Request) {
        let mut stash = self
            .inner
            .stash
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if stash.len() >= 256 {
            let now = Instant::now();
            stash.retain(|_, (at, _)| now.duration_since(*at) < STASH_TTL);
        }
        stash.insert(ctx.request_id.clone(), (Instant::now(), request));
    }

    fn unstash(&self, ctx: &TriggerCtx) -> Option<ev::Request> {
        self.inner
            .stash
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&ctx.request_id)
            .map(|(_, r)| r)
    }

    async fn viewer_request_inner(
        &self,
        ctx: &TriggerCtx,
        req: Request<RequestBody>,
    ) -> Result<Flow, EdgeError> {
        let Some(assoc) = ctx.behavior.association(EventType::ViewerRequest) else {
            return Ok(Flow::Continue(req));
        };
        let mut record = viewer_record(ctx, &req, CloudFrontNames::Viewers);
        let (mut parts, mut body) = req.into_parts();
        if assoc.include_body {
            let (b, exposed) = body::expose(body, VIEWER_BODY_LIMIT).await?;
            body = b;
            record.body = Some(exposed);
        }
        match self
            .run(ctx, EventType::ViewerRequest, assoc, &record, None)
            .await?
        {
            Outcome::Changed(ValidResult::Generated(obj)) => {
                let mut resp = convert::generated_response(&obj)?;
                resp.extensions_mut().insert(FromViewerRequest);
                return Ok(Flow::Respond(resp));
            }
            Outcome::Unchanged => {}
            Outcome::Changed(ValidResult::Request(obj) | ValidResult::Response(obj)) => {
                body = apply_request(&mut parts, body, &obj, &record)?;
            }
        }
        Ok(Flow::Continue(Request::from_parts(parts, body)))
    }

    async fn origin_inner(
        &self,
        ctx: &TriggerCtx,
        behavior: &CompiledBehavior,
        req: Request<RequestBody>,
    ) -> Result<Flow, EdgeError> {
        let oreq = ctx.behavior.association(EventType::OriginRequest);
        let oresp = ctx.behavior.association(EventType::OriginResponse);
        let origin = ctx
            .distribution
            .origins
            .get(behavior.origin)
            .ok_or_else(|| EdgeError::new(ErrorKind::Internal).explain("behavior origin"))?;
        let default = fetch::default_target(origin, ctx.https);
        let (mut parts, mut body) = req.into_parts();
        // What the policy forwards of the query string, as the origin would get it.
        let query = behavior
            .forward
            .query(parts.uri.query())
            .map(|q| q.into_owned());
        parts.uri = with_path_and_query(&parts.uri, parts.uri.path(), query.as_deref())?;
        parts.headers = fetch::origin_headers(
            behavior,
            &parts,
            &default,
            ctx.client_ip,
            &self.inner.identity,
        );
        let mut target = default.clone();
        let mut record = origin_record(&parts, &target, ctx.client_ip);
        if let Some(assoc) = oreq {
            if assoc.include_body {
                let (b, exposed) = body::expose(body, ORIGIN_BODY_LIMIT).await?;
                body = b;
                record.body = Some(exposed);
            }
            match self
                .run(ctx, EventType::OriginRequest, assoc, &record, None)
                .await?
            {
                Outcome::Unchanged => {}
                Outcome::Changed(ValidResult::Generated(obj)) => {
                    return Ok(Flow::Respond(convert::generated_response(&obj)?));
                }
                Outcome::Changed(ValidResult::Request(obj) | ValidResult::Response(obj)) => {
                    body = apply_request(&mut parts, body, &obj, &record)?;
                    target = fetch::result_target(&obj, &default)?;
                    record = origin_record(&parts, &target, ctx.client_ip);
                }
            }
        }
        let send = fetch::Send {
            clients: &self.inner.clients,
            origin,
            default: &default,
            request_id: &ctx.request_id,
            forwards_cookies: behavior.forward.forwards_cookies(),
        };
        let resp = fetch::send(send, &target, parts, body).await?;
        let Some(assoc) = oresp else {
            return Ok(Flow::Respond(resp));
        };
        record.body = None;
        let response = convert::response_record(resp.status(), resp.headers());
        let outcome = self
            .run(
                ctx,
                EventType::OriginResponse,
                assoc,
                &record,
                Some(&response),
            )
            .await?;
        let mut resp = convert::apply_outcome(resp, &outcome, &[])?;
        let x = if resp.status().as_u16() >= 400 {
            x_cache::ERROR
        } else {
            x_cache::MISS
        };
        resp.headers_mut().insert(names::X_CACHE, x);
        Ok(Flow::Respond(resp))
    }

    async fn viewer_response_inner(
        &self,
        ctx: &TriggerCtx,
        assoc: &LambdaFunctionAssociation,
        resp: Response<EdgeBody>,
    ) -> Result<Response<EdgeBody>, EdgeError> {
        let Some(request) = self.unstash(ctx) else {
            tracing::debug!("viewer-response without its viewer request; skipped");
            return Ok(resp);
        };
        let response = convert::response_record(resp.status(), resp.headers());
        let outcome = self
            .run(
                ctx,
                EventType::ViewerResponse,
                assoc,
                &request,
                Some(&response),
            )
            .await?;
        convert::apply_outcome(resp, &outcome, &[names::X_CACHE])
    }
}

/// A viewer request as a record (no body): header names as the viewer spelled them, an
/// HTTP/2 viewer's `:authority` as `Host`.
fn viewer_record(
    ctx: &TriggerCtx,
    req: &Request<RequestBody>,
    cloudfront: CloudFrontNames,
) -> ev::Request {
    let spelled = if req.version() == http::Version::HTTP_2 {
        Spelling::Http2
    } else {
        Spelling::Http1(req.extensions().get())
    };
    let mut headers = convert::event_headers(req.headers(), spelled, cloudfront);
    if headers.get("host").is_none() {
        if let Some(a) = req.uri().authority() {
            headers.append("Host", a.as_str());
        }
    }
    convert::request_record(req.method(), req.uri(), headers, ctx.client_ip)
}

/// The request CloudFront sends to the origin `target`, as origin-request and
/// origin-response show it. Its headers are spelled as an HTTP/1 viewer's own where they are
/// forwarded, else `Canonical-Case` (also for an HTTP/2 viewer: the names go out on
/// CloudFront's HTTP/1.1 connection to the origin, which spells them so).
fn origin_record(
    parts: &http::request::Parts,
    target: &fetch::Target,
    client_ip: std::net::IpAddr,
) -> ev::Request {
    let headers = convert::event_headers(
        &parts.headers,
        Spelling::Http1(parts.extensions.get()),
        CloudFrontNames::CloudFronts,
    );
    let mut record = convert::request_record(&parts.method, &parts.uri, headers, client_ip);
    record.origin = Some(fetch::event_origin(target));
    record
}

/// A result that failed validation: 502, with the reason on the error page (§5.3).
fn invalid_result(e: edge_result::ValidationError) -> EdgeError {
    let reason = e.0.clone();
    EdgeError::because(ErrorKind::LambdaValidationError, e).with_reason(reason)
}

/// Marks the placeholder that carries an origin-facing function's failure through the cache
/// step to [`Triggers::viewer_response`], where it becomes the error response.
const FAILURE: HeaderName = HeaderName::from_static("x-ledge-lambda-failure");
/// The failure's reason for the error page, beside [`FAILURE`] (the placeholder goes through
/// the cache step, which keeps headers but not extensions).
const FAILURE_REASON: HeaderName = HeaderName::from_static("x-ledge-lambda-failure-reason");

/// A failure at origin-request or origin-response must reach the viewer as CloudFront's error
/// (status, `X-Cache`, error page) and must not be cached (§5.1), but the pipeline's cache
/// step would store an error page made at that point like an origin error (and rewrite its
/// `X-Cache`). So the failure travels as an uncacheable 200 placeholder, which the
/// viewer-response hook (always called for a 200) turns into the error.
fn failure_placeholder(e: &EdgeError) -> Response<EdgeBody> {
    let kind = e.kind();
    let mut resp = Response::new(EdgeBody::Empty);
    if let Ok(reason) = HeaderValue::from_str(e.reason()) {
        resp.headers_mut().insert(FAILURE_REASON, reason);
    }
    let h = resp.headers_mut();
    let code = match kind {
        ErrorKind::LambdaValidationError => "validation",
        ErrorKind::LambdaLimitExceeded => "limit",
        _ => "execution",
    };
    h.insert(FAILURE, HeaderValue::from_static(code));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, private"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    h.insert(names::X_CACHE, x_cache::MISS);
    resp
}

fn failure_kind(v: &HeaderValue) -> Option<ErrorKind> {
    match v.as_bytes() {
        b"validation" => Some(ErrorKind::LambdaValidationError),
        b"limit" => Some(ErrorKind::LambdaLimitExceeded),
        b"execution" => Some(ErrorKind::LambdaExecutionError),
        _ => None,
    }
}

/// The compiled behavior a trigger context's behavior belongs to.
fn compiled(ctx: &TriggerCtx) -> Option<&CompiledBehavior> {
    ctx.distribution
        .behaviors
        .iter()
        .find(|b| Arc::ptr_eq(&b.config, &ctx.behavior))
}

fn has_origin_functions(b: &CacheBehavior) -> bool {
    b.lambda_function_associations.iter().any(|a| {
        matches!(
            a.event_type,
            EventType::OriginRequest | EventType::OriginResponse
        )
    })
}

/// A URI with another path and query, keeping scheme and authority (HTTP/2).
fn with_path_and_query(
    uri: &http::Uri,
    path: &str,
    query: Option<&str>,
) -> Result<http::Uri, EdgeError> {
    let pq = match query {
        Some(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path.to_string(),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(
        pq.parse()
            .map_err(|e| EdgeError::because(ErrorKind::Internal, e))?,
    );
    http::Uri::from_parts(parts).map_err(|e| EdgeError::because(ErrorKind::Internal, e))
}

/// Applies a validated request result: URI and query string (when changed), headers (when
/// changed; headers functions never see are kept), and a replaced body.
fn apply_request(
    parts: &mut http::request::Parts,
    body: RequestBody,
    obj: &Map<String, Value>,
    input: &ev::Request,
) -> Result<RequestBody, EdgeError> {
    let uri = obj.get("uri").and_then(Value::as_str).unwrap_or("/");
    let query = obj.get("querystring").and_then(Value::as_str).unwrap_or("");
    if uri != input.uri || query != input.querystring {
        let new = convert::result_uri(obj)?;
        let pq = new.path_and_query().map_or("/", |p| p.as_str());
        let mut p = parts.uri.clone().into_parts();
        p.path_and_query = pq.parse().ok();
        parts.uri = http::Uri::from_parts(p)
            .map_err(|e| EdgeError::because(ErrorKind::LambdaValidationError, e))?;
    }
    let unchanged = obj
        .get("headers")
        .is_some_and(|h| convert::same_headers(h, &input.headers));
    if !unchanged {
        let mut headers = convert::result_headers(obj)?;
        for (name, value) in &parts.headers {
            if edge_result::is_disallowed_header(name.as_str()) {
                headers.append(name.clone(), value.clone());
            }
        }
        parts.headers = headers;
    }
    match convert::replaced_request_body(obj)? {
        Some(bytes) => {
            parts.headers.remove(header::TRANSFER_ENCODING);
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            Ok(RequestBody::Full(Some(bytes)))
        }
        None => Ok(body),
    }
}

impl Triggers for LambdaTriggers {
    fn viewer_request_done(&self, ctx: &TriggerCtx, req: &Request<RequestBody>) {
        if ctx
            .behavior
            .association(EventType::ViewerResponse)
            .is_none()
        {
            return;
        }
        self.stash(ctx, viewer_record(ctx, req, CloudFrontNames::CloudFronts));
    }

    async fn viewer_request(
        &self,
        ctx: &TriggerCtx,
        req: Request<RequestBody>,
    ) -> Result<Flow, EdgeError> {
        if ctx.behavior.lambda_function_associations.is_empty() {
            return Ok(Flow::Continue(req));
        }
        // Boxed, as the other triggers' work: only requests with a function pay for the
        // invocation's future, instead of every request's future carrying it.
        Box::pin(self.viewer_request_inner(ctx, req)).await
    }

    async fn origin_request(
        &self,
        ctx: &TriggerCtx,
        req: Request<RequestBody>,
    ) -> Result<Flow, EdgeError> {
        if !has_origin_functions(&ctx.behavior) {
            return Ok(Flow::Continue(req));
        }
        let Some(behavior) = compiled(ctx) else {
            return Ok(Flow::Continue(req));
        };
        match Box::pin(self.origin_inner(ctx, behavior, req)).await {
            Err(e) if e.error_source() == ErrorSource::Function => {
                tracing::warn!(error = %e, distribution = %ctx.distribution.id, "origin-facing function failed");
                Ok(Flow::Respond(failure_placeholder(&e)))
            }
            other => other,
        }
    }

    async fn viewer_response(
        &self,
        ctx: &TriggerCtx,
        resp: Response<EdgeBody>,
    ) -> Result<Response<EdgeBody>, EdgeError> {
        if has_origin_functions(&ctx.behavior) {
            if let Some(kind) = resp.headers().get(FAILURE).and_then(failure_kind) {
                self.unstash(ctx);
                let mut e = EdgeError::new(kind).explain("origin-facing function");
                if let Some(reason) = resp.headers().get(FAILURE_REASON) {
                    e = e.with_reason(String::from_utf8_lossy(reason.as_bytes()));
                }
                return Err(e);
            }
        }
        let Some(assoc) = ctx.behavior.association(EventType::ViewerResponse) else {
            return Ok(resp);
        };
        if resp.extensions().get::<FromViewerRequest>().is_some() {
            self.unstash(ctx);
            return Ok(resp);
        }
        Box::pin(self.viewer_response_inner(ctx, assoc, resp)).await
    }
}

impl SnapshotHook for LambdaTriggers {
    async fn before_install(&self, next: &ConfigSnapshot) {
        self.inner.functions.prepare(next).await;
    }

    fn after_install(&self, current: &ConfigSnapshot) {
        self.inner.functions.installed(current);
    }
}
