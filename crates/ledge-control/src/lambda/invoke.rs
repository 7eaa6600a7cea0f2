//! Invoke: RequestResponse, Event and DryRun, running the function in `ledge-runtime`.
//!
//! # Design
//! Loaded versions are cached per (function, version, revision): a published version never
//! changes, and a write to `$LATEST` changes its revision, so a stale `$LATEST` handle is
//! replaced on its next invocation (dropping the old handle retires its workers).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use bytes::Bytes;
use ledge_runtime::{FunctionHandle, FunctionSpec, InvokeError, LoadError, PackageRef, Runtime};

use super::QueryParams;
use crate::error::ApiError;
use crate::store::VersionRow;
use crate::AppState;

/// Largest synchronous request payload.
const SYNC_LIMIT: usize = 6_291_456;
/// Largest asynchronous (`Event`) request payload.
const EVENT_LIMIT: usize = 1_048_576;
/// `X-Amz-Log-Result` carries at most the last 4 KB of the log.
const LOG_TAIL: usize = 4096;
/// Extra attempts of a failed `Event` invocation.
const EVENT_RETRIES: usize = 2;

/// Loaded versions by (function, version number), with the revision each was loaded at.
type Loaded = HashMap<(String, i64), (String, Arc<FunctionHandle>)>;

/// The runtime and the versions loaded into it.
#[derive(Debug)]
pub struct Invoker {
    runtime: Runtime,
    loaded: Mutex<Loaded>,
}

// === impl Invoker ===

impl Invoker {
    /// Wraps a runtime.
    pub fn new(runtime: Runtime) -> Self {
        Self {
            runtime,
            loaded: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, row: &VersionRow) -> Option<Arc<FunctionHandle>> {
        let loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        loaded
            .get(&(row.function_name.clone(), row.version))
            .filter(|(rev, _)| *rev == row.revision_id)
            .map(|(_, h)| h.clone())
    }
}

/// The errors that keep a function from starting, as Lambda reports them (502).
fn load_error(e: LoadError) -> ApiError {
    match e {
        LoadError::UnsupportedRuntime(r) => ApiError::ExecutionEnvironment {
            code: "InvalidRuntimeException",
            message: format!("The runtime parameter of {r} is not supported on this ledge"),
        },
        LoadError::Package(p) => ApiError::ExecutionEnvironment {
            code: "InvalidZipFileException",
            message: p.to_string(),
        },
        LoadError::InvalidConfig(m) => ApiError::InvalidParameter(m),
        other => ApiError::internal(anyhow::Error::new(other)),
    }
}

// === impl AppState (invoke) ===

impl AppState {
    async fn load_function(
        &self,
        invoker: &Invoker,
        row: &VersionRow,
        arn: String,
    ) -> Result<Arc<FunctionHandle>, ApiError> {
        if let Some(h) = invoker.cached(row) {
            return Ok(h);
        }
        let zip = self.inner.blobs.get(&row.code_hex).await?;
        let c = &row.config;
        let mut spec = FunctionSpec::new(
            row.function_name.clone(),
            c.runtime.clone(),
            c.handler.clone(),
            PackageRef::Zip(zip),
        );
        spec.version = if row.version == 0 {
            "$LATEST".into()
        } else {
            row.version.to_string()
        };
        spec.memory_mb = u32::try_from(c.memory_size).unwrap_or(128);
        spec.timeout = Duration::from_secs(u64::try_from(c.timeout).unwrap_or(3));
        spec.env = c.environment.clone();
        spec.arn = Some(arn);
        let handle = invoker.runtime.load(spec).await.map_err(load_error)?;
        let mut loaded = invoker
            .loaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        loaded.insert(
            (row.function_name.clone(), row.version),
            (row.revision_id.clone(), handle.clone()),
        );
        Ok(handle)
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `POST /2015-03-31/functions/{name}/invocations`
pub(super) async fn invoke(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let invocation_type = header(&headers, "x-amz-invocation-type").unwrap_or("RequestResponse");
    let tail = match header(&headers, "x-amz-log-type").unwrap_or("None") {
        "None" => false,
        "Tail" => true,
        other => {
            return Err(ApiError::Validation(format!(
                "1 validation error detected: Value '{other}' at 'logType' failed to satisfy constraint: Member must satisfy enum value set: [Tail, None]"
            )))
        }
    };
    match invocation_type {
        "RequestResponse" | "DryRun" if body.len() > SYNC_LIMIT => {
            return Err(ApiError::TooLarge(format!(
                "Request must be smaller than {SYNC_LIMIT} bytes for the InvokeFunction operation"
            )))
        }
        "Event" if body.len() > EVENT_LIMIT => {
            return Err(ApiError::TooLarge(format!(
                "{} byte payload is too large for the Event invocation type (limit {EVENT_LIMIT} bytes)",
                body.len()
            )))
        }
        "RequestResponse" | "DryRun" | "Event" => {}
        other => {
            return Err(ApiError::Validation(format!(
                "1 validation error detected: Value '{other}' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]"
            )))
        }
    }
    let q = QueryParams::parse(query.as_deref());
    let sel = state.select(&raw, q.get("Qualifier")).await?;
    if invocation_type == "DryRun" {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let Some(invoker) = state.inner.invoker.clone() else {
        return Err(ApiError::ExecutionEnvironment {
            code: "ResourceNotReadyException",
            message: "This ledge runs no functions (no runtime configured).".into(),
        });
    };
    if !body.is_empty() && serde_json::from_slice::<serde_json::Value>(&body).is_err() {
        return Err(ApiError::InvalidRequestContent(
            "Could not parse request body into json: Could not parse payload into json".into(),
        ));
    }
    let executed = if sel.row.version == 0 {
        "$LATEST".to_owned()
    } else {
        sel.row.version.to_string()
    };
    let arn = match &sel.qualifier {
        Some(q) => format!("{}:{q}", state.function_arn(&sel.row.function_name)),
        None => state.function_arn(&sel.row.function_name),
    };
    let handle = state.load_function(&invoker, &sel.row, arn).await?;
    let event = if body.is_empty() {
        Bytes::from_static(b"{}")
    } else {
        body
    };
    if invocation_type == "Event" {
        tokio::spawn(async move {
            for attempt in 0..=EVENT_RETRIES {
                let inv = handle.invoke_detailed(&event).await;
                match inv.result {
                    Ok(_) => return,
                    Err(e) => tracing::info!(attempt, error = %e, "asynchronous invocation failed"),
                }
            }
        });
        return Ok(StatusCode::ACCEPTED.into_response());
    }
    let inv = handle.invoke_detailed(&event).await;
    let mut resp = match inv.result {
        Ok(payload) => (StatusCode::OK, payload).into_response(),
        Err(e) if e.is_function_error() => {
            let mut r = (StatusCode::OK, e.to_lambda_json()).into_response();
            r.headers_mut().insert(
                "X-Amz-Function-Error",
                HeaderValue::from_static("Unhandled"),
            );
            r
        }
        Err(InvokeError::Throttled(_)) => {
            return Err(ApiError::TooManyRequests("Rate Exceeded.".into()))
        }
        Err(InvokeError::InvalidEvent(m)) => {
            return Err(ApiError::InvalidRequestContent(format!(
                "Could not parse request body into json: {m}"
            )))
        }
        Err(e) => return Err(ApiError::internal(anyhow::Error::new(e))),
    };
    let h = resp.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(&executed) {
        h.insert("X-Amz-Executed-Version", v);
    }
    if tail {
        let text = inv.logs.text();
        let mut start = text.len().saturating_sub(LOG_TAIL);
        while !text.is_char_boundary(start) {
            start += 1;
        }
        if let Ok(v) = HeaderValue::from_str(&B64.encode(&text.as_bytes()[start..])) {
            h.insert("X-Amz-Log-Result", v);
        }
    }
    Ok(resp)
}
