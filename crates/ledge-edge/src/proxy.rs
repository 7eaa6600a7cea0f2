//! Building the origin request (§4) and turning the origin's answer into the response the
//! pipeline carries on with.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response};
use ledge_model::OriginProtocolPolicy;

use crate::body::{EdgeBody, RequestBody};
use crate::error::{EdgeError, ErrorKind};
use crate::ids::EdgeIdentity;
use crate::origin::OriginClient;
use crate::response::{self, names, x_cache};
use crate::snapshot::{CompiledBehavior, CompiledDistribution};

const USER_AGENT_CLOUDFRONT: HeaderValue = HeaderValue::from_static("Amazon CloudFront");
const KEEP_ALIVE: HeaderValue = HeaderValue::from_static("Keep-Alive");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Sends the request to the behavior's origin and returns its response (hop-by-hop headers
/// removed; `X-Cache: Error from cloudfront` on statuses of 400 and more).
pub(crate) async fn send(
    distribution: &CompiledDistribution,
    behavior: &CompiledBehavior,
    req: Request<RequestBody>,
    request_id: &HeaderValue,
    peer: SocketAddr,
    viewer_https: bool,
    identity: &EdgeIdentity,
) -> Result<Response<EdgeBody>, EdgeError> {
    let origin = distribution
        .origins
        .get(behavior.origin)
        .ok_or_else(|| EdgeError::new(ErrorKind::Internal).explain("behavior origin"))?;
    let https = match origin.protocol_policy {
        OriginProtocolPolicy::HttpOnly => false,
        OriginProtocolPolicy::HttpsOnly => true,
        OriginProtocolPolicy::MatchViewer => viewer_https,
    };
    let (parts, body) = req.into_parts();
    let rules = &behavior.forward;
    let query = rules.query(parts.uri.query());
    let (scheme, port) = if https {
        ("https", origin.https_port)
    } else {
        ("http", origin.http_port)
    };
    let url = match &query {
        Some(q) => format!(
            "{scheme}://{}:{port}{}{}?{q}",
            origin.domain_name,
            origin.origin_path,
            parts.uri.path()
        ),
        None => format!(
            "{scheme}://{}:{port}{}{}",
            origin.domain_name,
            origin.origin_path,
            parts.uri.path()
        ),
    };
    let uri: http::Uri = url
        .parse()
        .map_err(|e| EdgeError::because(ErrorKind::OriginConnectError, e).explain("origin url"))?;
    let origin_host = if https {
        &origin.host_https
    } else {
        &origin.host_http
    };
    let headers = origin_headers(behavior, &parts, origin_host, peer.ip(), identity);
    let exchange = Exchange {
        client: &origin.client,
        attempts: origin.connection_attempts,
        read_timeout: origin.read_timeout,
        request_id,
        custom_headers: &origin.custom_headers,
        forwards_cookies: rules.forwards_cookies(),
    };
    exchange.run(parts.method, uri, headers, body).await
}

/// The headers CloudFront sends the origin for a viewer request (§4, §6.3): those the policy
/// forwards, `Host` (the viewer's when forwarded, else `origin_host`), `User-Agent: Amazon
/// CloudFront` unless forwarded, `X-Forwarded-For` and `Via` with this hop appended. Not yet
/// `X-Amz-Cf-Id`, `Connection` and the origin's custom headers ([`Exchange::run`] adds them).
pub(crate) fn origin_headers(
    behavior: &CompiledBehavior,
    parts: &http::request::Parts,
    origin_host: &HeaderValue,
    client_ip: IpAddr,
    identity: &EdgeIdentity,
) -> HeaderMap {
    let rules = &behavior.forward;
    let mut headers = HeaderMap::with_capacity(parts.headers.len() + 8);
    rules.copy_headers(&parts.method, &parts.headers, &mut headers);
    if parts.version <= http::Version::HTTP_10 {
        // §3.3: HTTP/1.0 viewers get no Accept-Encoding handling.
        headers.remove(header::ACCEPT_ENCODING);
    }
    // HTTP/2 viewers carry the host in `:authority`.
    let viewer_host = parts.headers.get(header::HOST).cloned().or_else(|| {
        parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    let host = match viewer_host {
        Some(h) if rules.forwards_host() => h,
        _ => origin_host.clone(),
    };
    headers.insert(header::HOST, host);
    if !rules.headers.allows("user-agent") {
        headers.insert(header::USER_AGENT, USER_AGENT_CLOUDFRONT);
    }
    headers.insert(X_FORWARDED_FOR, forwarded_for(&parts.headers, client_ip));
    headers.insert(header::VIA, via(&parts.headers, identity));
    headers
}

/// One request to an origin, with what its sending needs besides the request.
pub(crate) struct Exchange<'a> {
    pub(crate) client: &'a OriginClient,
    pub(crate) attempts: u32,
    pub(crate) read_timeout: Duration,
    /// `X-Amz-Cf-Id`.
    pub(crate) request_id: &'a HeaderValue,
    /// The origin's custom headers, which replace any of the same name.
    pub(crate) custom_headers: &'a [(HeaderName, HeaderValue)],
    /// Whether `Set-Cookie` reaches the viewer.
    pub(crate) forwards_cookies: bool,
}

impl Exchange<'_> {
    /// Sends the request (with `X-Amz-Cf-Id`, `Connection: Keep-Alive` and the custom headers
    /// added) and returns the response, hop-by-hop headers removed, `Set-Cookie` unless
    /// forwarded, `X-Cache: Error from cloudfront` on statuses of 400 and more.
    pub(crate) async fn run(
        self,
        method: http::Method,
        uri: http::Uri,
        mut headers: HeaderMap,
        body: RequestBody,
    ) -> Result<Response<EdgeBody>, EdgeError> {
        headers.insert(names::X_AMZ_CF_ID, self.request_id.clone());
        headers.insert(header::CONNECTION, KEEP_ALIVE);
        for (name, value) in self.custom_headers {
            headers.insert(name.clone(), value.clone());
        }
        // Bodies that can be rebuilt allow a retry; a streamed one is sent once.
        let mut body = Some(body);
        let make = || {
            let b = match body.take()? {
                RequestBody::Empty => {
                    body = Some(RequestBody::Empty);
                    RequestBody::Empty
                }
                RequestBody::Full(Some(bytes)) => {
                    body = Some(RequestBody::Full(Some(bytes.clone())));
                    RequestBody::Full(Some(bytes))
                }
                other => other,
            };
            let mut r = Request::new(b);
            *r.method_mut() = method.clone();
            *r.uri_mut() = uri.clone();
            *r.headers_mut() = headers.clone();
            Some(r)
        };
        let resp = self
            .client
            .send(make, self.attempts, self.read_timeout)
            .await
            .map_err(|e| {
                if is_body_limit(&e) {
                    EdgeError::new(ErrorKind::RequestBodyTooLarge)
                } else {
                    e
                }
            })?;
        let (mut parts, body) = resp.into_parts();
        response::strip_hop_by_hop(&mut parts.headers);
        if !self.forwards_cookies {
            parts.headers.remove(header::SET_COOKIE);
        }
        if parts.status.as_u16() >= 400 {
            parts.headers.insert(names::X_CACHE, x_cache::ERROR);
        }
        Ok(Response::from_parts(parts, EdgeBody::stream(body)))
    }
}

fn is_body_limit(e: &EdgeError) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = cur {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// `X-Forwarded-For`: the viewer's value with the TCP peer's address appended.
fn forwarded_for(viewer: &HeaderMap, client_ip: IpAddr) -> HeaderValue {
    let ip = client_ip.to_string();
    let joined = match viewer.get(X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(prev) if !prev.trim().is_empty() => format!("{},{ip}", prev.trim()),
        _ => ip,
    };
    HeaderValue::from_str(&joined).unwrap_or(HeaderValue::from_static("0.0.0.0"))
}

/// `Via`: the viewer's value with the edge's entry appended.
fn via(viewer: &HeaderMap, identity: &EdgeIdentity) -> HeaderValue {
    let joined = match viewer.get(header::VIA).and_then(|v| v.to_str().ok()) {
        Some(prev) if !prev.trim().is_empty() => {
            format!("{}, {}", prev.trim(), identity.via_origin)
        }
        _ => identity.via_origin.clone(),
    };
    HeaderValue::from_str(&joined).unwrap_or_else(|_| HeaderValue::from_static("1.1 ledge"))
}
