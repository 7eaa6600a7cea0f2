//! The CloudFront API (REST-XML, 2020-05-31): routes and the helpers every handler shares.
//!
//! Request bodies are decoded with `ledge-restxml` against botocore's CloudFront model into
//! botocore's JSON form, checked ([`validate`]), completed with CloudFront's defaults
//! ([`defaults`]) and stored verbatim; responses are encoded from that form by the same model.
//! One handler file per resource family: [`distributions`], [`invalidations`],
//! [`cache_policies`] (cache and origin request policies), [`tags`].

mod cache_policies;
pub mod defaults;
mod distributions;
pub mod error;
mod invalidations;
mod tags;
pub mod validate;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use ledge_restxml::ServiceModel;
use serde_json::Value;

use crate::AppState;
pub use error::CfError;

/// Largest CloudFront request body accepted (bigger bodies get an XML 413).
pub const MAX_BODY: usize = 1024 * 1024;
/// Default and largest `MaxItems` of the list operations.
const PAGE: i64 = 100;

/// The CloudFront routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/2020-05-31/distribution",
            post(distributions::create).get(distributions::list),
        )
        .route(
            "/2020-05-31/distribution/{id}",
            get(distributions::get).delete(distributions::delete),
        )
        .route(
            "/2020-05-31/distribution/{id}/config",
            get(distributions::get_config).put(distributions::update),
        )
        .route(
            "/2020-05-31/distribution/{id}/invalidation",
            post(invalidations::create).get(invalidations::list),
        )
        .route(
            "/2020-05-31/distribution/{id}/invalidation/{inv}",
            get(invalidations::get),
        )
        .route(
            "/2020-05-31/cache-policy",
            post(cache_policies::create_cache).get(cache_policies::list_cache),
        )
        .route(
            "/2020-05-31/cache-policy/{id}",
            get(cache_policies::get_cache)
                .put(cache_policies::update_cache)
                .delete(cache_policies::delete_cache),
        )
        .route(
            "/2020-05-31/cache-policy/{id}/config",
            get(cache_policies::get_cache_config),
        )
        .route(
            "/2020-05-31/origin-request-policy",
            post(cache_policies::create_origin).get(cache_policies::list_origin),
        )
        .route(
            "/2020-05-31/origin-request-policy/{id}",
            get(cache_policies::get_origin)
                .put(cache_policies::update_origin)
                .delete(cache_policies::delete_origin),
        )
        .route(
            "/2020-05-31/origin-request-policy/{id}/config",
            get(cache_policies::get_origin_config),
        )
        .route("/2020-05-31/tagging", post(tags::change).get(tags::list))
}

/// The embedded CloudFront service model.
fn model() -> Result<&'static ServiceModel, CfError> {
    ServiceModel::cloudfront().map_err(|e| CfError::internal(anyhow::anyhow!("{e}")))
}

/// Decodes a request body whose root element is `root` of shape `shape`.
fn decode_body(body: &[u8], shape: &str, root: &str) -> Result<Value, CfError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(CfError::BadRequest(
            "MissingBody",
            "The request body is missing.".into(),
        ));
    }
    Ok(model()?.decode(shape, root, body)?)
}

/// An XML response: `value` (botocore's form of `shape`) under root element `root`.
fn xml_response(
    status: StatusCode,
    shape: &str,
    root: &str,
    value: &Value,
    headers: &[(&'static str, String)],
) -> Result<Response, CfError> {
    let body = model()?.encode(shape, root, value);
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert("content-type", HeaderValue::from_static("text/xml"));
    for (name, value) in headers {
        let v = HeaderValue::from_str(value).map_err(CfError::internal)?;
        h.insert(*name, v);
    }
    Ok(resp)
}

/// The If-Match header, required by Update and Delete.
fn if_match(headers: &HeaderMap) -> Result<String, CfError> {
    headers
        .get("if-match")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
        .ok_or_else(CfError::missing_if_match)
}

/// `http://<Host><path>`, for `Location` headers.
fn location(headers: &HeaderMap, path: &str) -> String {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("http");
    format!("{scheme}://{host}{path}")
}

/// `prefix` followed by `len` random characters from `[A-Z0-9]` (or `[a-z0-9]`).
fn random_id(prefix: &str, len: usize, lower: bool) -> String {
    const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut out = String::with_capacity(prefix.len() + len);
    out.push_str(prefix);
    let mut bytes = Vec::new();
    while bytes.len() < len {
        bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    for b in bytes.iter().take(len) {
        let c = char::from(UPPER[usize::from(*b) % UPPER.len()]);
        out.push(if lower { c.to_ascii_lowercase() } else { c });
    }
    out
}

/// A new ETag.
fn new_etag() -> String {
    random_id("E", 13, false)
}

/// Now, as CloudFront writes timestamps.
fn now_iso() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// One query parameter, percent-decoded.
fn query_param(raw: Option<&str>, name: &str) -> Option<String> {
    raw.unwrap_or_default().split('&').find_map(|item| {
        let (n, v) = item.split_once('=').unwrap_or((item, ""));
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        (decode(n) == name).then(|| decode(v))
    })
}

/// `MaxItems` of a list request: default and cap [`PAGE`].
fn max_items(raw: Option<&str>) -> Result<i64, CfError> {
    match query_param(raw, "MaxItems") {
        None => Ok(PAGE),
        Some(s) if s.is_empty() => Ok(PAGE),
        Some(s) => match s.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(n.min(PAGE)),
            _ => Err(CfError::invalid_argument(format!(
                "MaxItems must be a non-negative integer, got {s:?}."
            ))),
        },
    }
}

/// `Deployed` when every live edge applied `version`, else `InProgress` (module docs of
/// `store::cloudfront`).
fn deploy_status(deployed: Option<i64>, version: i64, done: &'static str) -> &'static str {
    match deployed {
        Some(d) if d < version => "InProgress",
        _ => done,
    }
}
