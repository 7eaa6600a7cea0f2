//! The middleware in front of every API route: request id, body limit, SigV4, and the
//! rendering of CloudFront's XML errors (which need the request id).

use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

use crate::error::{ApiError, Protocol};
use crate::sigv4::SignedRequest;
use crate::AppState;

/// Largest request body: a 50 MB zip as base64 inside JSON (`apis.md` §2.8).
pub const MAX_BODY: usize = 69_905_067;

/// Bodies up to this size are read in full even when over the limit (see `verify`).
const DRAIN_LIMIT: usize = 8 * 1024 * 1024;

/// Which API, and so which signing service and error format, a path belongs to.
fn protocol_of(path: &str) -> (Protocol, &'static str) {
    if path.starts_with("/2020-05-31/") {
        (Protocol::CloudFront, "cloudfront")
    } else {
        (Protocol::Lambda, "lambda")
    }
}

/// The operation name used in Lambda's size-limit message.
fn operation_of(method: &axum::http::Method, path: &str) -> &'static str {
    if path.ends_with("/code") {
        "UpdateFunctionCode"
    } else if path.ends_with("/invocations") {
        "InvokeFunction"
    } else if method == axum::http::Method::POST
        && path.trim_end_matches('/').ends_with("/functions")
    {
        "CreateFunction"
    } else {
        "this"
    }
}

/// Assigns a request id, buffers the body (up to [`MAX_BODY`]), verifies the signature, and
/// stamps `x-amzn-RequestId` on whatever comes back.
pub async fn authenticate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let (protocol, service) = protocol_of(req.uri().path());
    let limit = match protocol {
        Protocol::CloudFront => crate::cloudfront::MAX_BODY,
        Protocol::Lambda => MAX_BODY,
    };
    let mut resp = match verify(&state, req, service, limit).await {
        Ok(req) => next.run(req).await,
        Err(e) => e.render(protocol, &request_id),
    };
    crate::cloudfront::error::render_pending(&mut resp, &request_id);
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-amzn-RequestId", v);
    }
    resp
}

async fn verify(
    state: &AppState,
    req: Request,
    service: &str,
    limit: usize,
) -> Result<Request, ApiError> {
    let (parts, body) = req.into_parts();
    let too_large = || {
        ApiError::TooLarge(format!(
            "Request must be smaller than {limit} bytes for the {} operation",
            operation_of(&parts.method, parts.uri.path())
        ))
    };
    let declared = parts
        .headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    // Bodies a little over the limit are read to the end before the refusal, so a client
    // still sending gets the error instead of a reset connection.
    let drain = limit.max(DRAIN_LIMIT);
    if declared.is_some_and(|n| n > drain) {
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(body, drain)
        .await
        .map_err(|_| too_large())?;
    if bytes.len() > limit {
        return Err(too_large());
    }
    let headers = parts
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let signed = SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or_default(),
        headers,
        body: &bytes,
    };
    state
        .inner
        .verifier
        .verify(&signed, service, SystemTime::now())?;
    Ok(Request::from_parts(parts, Body::from(bytes)))
}
