//! The origin side of a behavior with origin-facing functions: the request CloudFront would
//! send to the origin (what origin-request and origin-response functions see, §2.8), the
//! `request.origin` object (§2.6), and sending exactly what the function left, to the origin
//! it chose (§3.8).

use std::net::IpAddr;
use std::time::Duration;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use http::Response;
use ledge_model::event::{self as ev, canonical_key, EventOrigin};
use ledge_model::OriginProtocolPolicy;
use serde_json::{Map, Value};

use crate::body::{EdgeBody, RequestBody};
use crate::error::{EdgeError, ErrorKind};
use crate::ids::EdgeIdentity;
use crate::origin::OriginClients;
use crate::proxy::Exchange;
use crate::response::{names, x_cache};
use crate::snapshot::{CompiledBehavior, CompiledOrigin};

/// Where an origin request goes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Target {
    https: bool,
    domain: String,
    port: u16,
    path: String,
    custom_headers: Vec<(HeaderName, HeaderValue)>,
    read_timeout: Duration,
    keepalive: Duration,
}

/// Whether the behavior's origin is reached over HTTPS for this viewer.
fn uses_https(origin: &CompiledOrigin, viewer_https: bool) -> bool {
    match origin.protocol_policy {
        OriginProtocolPolicy::HttpOnly => false,
        OriginProtocolPolicy::HttpsOnly => true,
        OriginProtocolPolicy::MatchViewer => viewer_https,
    }
}

/// The behavior's own origin as a [`Target`].
pub(crate) fn default_target(origin: &CompiledOrigin, viewer_https: bool) -> Target {
    let https = uses_https(origin, viewer_https);
    Target {
        https,
        domain: origin.domain_name.to_string(),
        port: if https {
            origin.https_port
        } else {
            origin.http_port
        },
        path: origin.origin_path.to_string(),
        custom_headers: origin.custom_headers.clone(),
        read_timeout: origin.read_timeout,
        keepalive: Duration::from_secs(5),
    }
}

/// `request.origin` for a target (ledge's origins are all shown as custom origins).
pub(crate) fn event_origin(t: &Target) -> EventOrigin {
    let mut custom = ev::Headers::new();
    for (n, v) in &t.custom_headers {
        custom.append(canonical_key(n.as_str()), super::convert::header_text(v));
    }
    EventOrigin::Custom(ev::CustomOrigin {
        custom_headers: custom,
        domain_name: t.domain.clone(),
        // Shown within the ranges the event object accepts (§2.6), so a function that hands
        // the origin back with one field changed is not refused for a value it did not set.
        keepalive_timeout: u32::try_from(t.keepalive.as_secs())
            .unwrap_or(5)
            .clamp(1, 60),
        path: t.path.clone(),
        port: t.port,
        protocol: if t.https { "https" } else { "http" }.to_string(),
        read_timeout: u32::try_from(t.read_timeout.as_secs())
            .unwrap_or(30)
            .clamp(4, 60),
        ssl_protocols: vec!["TLSv1.2".to_string()],
    })
}

fn validation(msg: &str) -> EdgeError {
    super::invalid_result(ledge_model::edge_result::ValidationError(msg.to_string()))
}

/// The target a validated origin-request result names (`origin.custom` or `origin.s3`).
pub(crate) fn result_target(
    obj: &Map<String, Value>,
    current: &Target,
) -> Result<Target, EdgeError> {
    let Some(Value::Object(origin)) = obj.get("origin") else {
        return Ok(current.clone());
    };
    let (o, s3) = match (origin.get("custom"), origin.get("s3")) {
        (Some(Value::Object(o)), None) => (o, false),
        (None, Some(Value::Object(o))) => (o, true),
        _ => {
            return Err(validation(
                "The origin must have exactly one of custom and s3.",
            ))
        }
    };
    let text = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let secs = |k: &str, d: Duration| {
        o.get(k)
            .and_then(Value::as_u64)
            .map_or(d, Duration::from_secs)
    };
    let https = s3 || text("protocol") == "https";
    let port = if s3 {
        443
    } else {
        o.get("port")
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(if https { 443 } else { 80 })
    };
    let mut custom_headers = Vec::new();
    let headers = super::convert::result_headers(&{
        let mut m = Map::new();
        if let Some(h) = o.get("customHeaders") {
            m.insert("headers".into(), h.clone());
        }
        m
    })?;
    for (n, v) in &headers {
        custom_headers.push((n.clone(), v.clone()));
    }
    Ok(Target {
        https,
        domain: text("domainName"),
        port,
        path: text("path"),
        custom_headers,
        read_timeout: if s3 {
            current.read_timeout
        } else {
            secs("readTimeout", current.read_timeout)
        },
        keepalive: if s3 {
            current.keepalive
        } else {
            secs("keepaliveTimeout", current.keepalive)
        },
    })
}

/// The headers CloudFront sends the origin for this request (§2.8, §6.3), without
/// `X-Amz-Cf-Id`, `Connection` and the origin's custom headers (added when sending).
pub(crate) fn origin_headers(
    behavior: &CompiledBehavior,
    parts: &Parts,
    target: &Target,
    client_ip: IpAddr,
    identity: &EdgeIdentity,
) -> HeaderMap {
    crate::proxy::origin_headers(behavior, parts, &host_value(target), client_ip, identity)
}

fn host_value(t: &Target) -> HeaderValue {
    let default_port = if t.https { 443 } else { 80 };
    let host = if t.port == default_port {
        t.domain.clone()
    } else {
        format!("{}:{}", t.domain, t.port)
    };
    HeaderValue::from_str(&host).unwrap_or(HeaderValue::from_static("localhost"))
}

/// What the origin fetch needs besides the request.
pub(crate) struct Send<'a> {
    /// Origin clients for targets other than the behavior's origin.
    pub clients: &'a OriginClients,
    /// The behavior's origin.
    pub origin: &'a CompiledOrigin,
    /// The behavior's origin as a target (to reuse its pooled client).
    pub default: &'a Target,
    /// `X-Amz-Cf-Id`.
    pub request_id: &'a HeaderValue,
    /// Whether `Set-Cookie` reaches the viewer.
    pub forwards_cookies: bool,
}

/// Sends `parts` (headers exactly as given) and `body` to `target`.
pub(crate) async fn send(
    s: Send<'_>,
    target: &Target,
    parts: Parts,
    body: RequestBody,
) -> Result<Response<EdgeBody>, EdgeError> {
    let scheme = if target.https { "https" } else { "http" };
    let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!(
        "{scheme}://{}:{}{}{pq}",
        target.domain, target.port, target.path
    );
    let uri: http::Uri = url
        .parse()
        .map_err(|e| EdgeError::because(ErrorKind::OriginConnectError, e).explain("origin url"))?;
    let other;
    let client = if target == s.default {
        &s.origin.client
    } else {
        other = s.clients.client(Duration::from_secs(10), target.keepalive);
        &other
    };
    let exchange = Exchange {
        client,
        attempts: s.origin.connection_attempts,
        read_timeout: target.read_timeout,
        request_id: s.request_id,
        custom_headers: &target.custom_headers,
        forwards_cookies: s.forwards_cookies,
    };
    let mut resp = exchange.run(parts.method, uri, parts.headers, body).await?;
    if resp.status().as_u16() < 400 {
        resp.headers_mut().insert(names::X_CACHE, x_cache::MISS);
    }
    Ok(resp)
}
