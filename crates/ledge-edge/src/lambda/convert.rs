//! Between HTTP messages and Lambda@Edge records (lambda-edge.md §2): HTTP headers to
//! CloudFront's `{key, value}` lists and back, and a validated result applied to the request
//! or response it replaces.

use base64::Engine as _;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Response, StatusCode};
use ledge_model::edge_result::{is_disallowed_header, ValidResult};
use ledge_model::event as ev;
use serde_json::{Map, Value};

use super::Outcome;
use crate::body::EdgeBody;
use crate::cloudfront_headers::CloudFrontHeader;
use crate::error::EdgeError;
use crate::sniff::WireNames;

/// A header value as functions see it: UTF-8, or ISO-8859-1 converted to UTF-8 (§3.7).
pub(crate) fn header_text(v: &HeaderValue) -> String {
    match std::str::from_utf8(v.as_bytes()) {
        Ok(s) => s.to_string(),
        Err(_) => v.as_bytes().iter().map(|&b| char::from(b)).collect(),
    }
}

/// Whose headers named like CloudFront's own (`CloudFront-Is-Mobile-Viewer`, …) an event shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloudFrontNames {
    /// Before viewer-request is done: any such header is the viewer's, keyed as it spelled it.
    Viewers,
    /// Afterwards: CloudFront's (it replaced the viewer's), keyed as CloudFront spells them.
    CloudFronts,
}

/// How a request's header names were spelled on the wire (§2.4: an event's `key`s keep it).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Spelling<'a> {
    /// HTTP/1: `Canonical-Case`, except the names the sniff saw spelled otherwise.
    Http1(Option<&'a WireNames>),
    /// HTTP/2: every name in lower case, as HTTP/2 requires on the wire.
    Http2,
}

/// HTTP headers as an event's `headers`, without the ones functions never see (§3.4), keyed
/// as the viewer spelled them (see [`Spelling`]).
pub(crate) fn event_headers(
    h: &HeaderMap,
    spelled: Spelling<'_>,
    cloudfront: CloudFrontNames,
) -> ev::Headers {
    let mut out = ev::Headers::new();
    for (name, value) in h {
        let n = name.as_str();
        if is_disallowed_header(n) {
            continue;
        }
        out.append(event_key(spelled, n, cloudfront), header_text(value));
    }
    out
}

/// The `key` an event shows for a (lower-case) header name (§2.4): CloudFront's spelling for
/// the headers CloudFront adds, else the viewer's.
fn event_key(spelled: Spelling<'_>, name: &str, cloudfront: CloudFrontNames) -> String {
    if cloudfront == CloudFrontNames::CloudFronts && name.starts_with("cloudfront-") {
        if let Some(h) = CloudFrontHeader::from_name(name) {
            return h.key().to_string();
        }
    }
    match spelled {
        Spelling::Http2 => name.to_string(),
        Spelling::Http1(wire) => match wire.and_then(|w| w.spelling(name)) {
            Some(wire) => wire.to_string(),
            None => ev::canonical_key(name),
        },
    }
}

/// A request record (no body, no origin).
pub(crate) fn request_record(
    method: &http::Method,
    uri: &http::Uri,
    headers: ev::Headers,
    client_ip: std::net::IpAddr,
) -> ev::Request {
    ev::Request {
        body: None,
        client_ip: client_ip.to_string(),
        headers,
        method: method.as_str().to_string(),
        origin: None,
        querystring: uri.query().unwrap_or("").to_string(),
        uri: uri.path().to_string(),
    }
}

/// A response record (`status` as a string, headers minus the disallowed ones).
pub(crate) fn response_record(status: StatusCode, headers: &HeaderMap) -> ev::Response {
    ev::Response {
        headers: event_headers(headers, Spelling::Http1(None), CloudFrontNames::CloudFronts),
        status: status.as_str().to_string(),
        status_description: status.canonical_reason().unwrap_or("").to_string(),
    }
}

/// A JSON value as a map (the validator's input form).
pub(crate) fn to_map<T: serde::Serialize>(v: &T) -> Map<String, Value> {
    match serde_json::to_value(v) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

fn validation(msg: impl Into<String>) -> EdgeError {
    super::invalid_result(ledge_model::edge_result::ValidationError(msg.into()))
}

/// The `headers` member of a validated result as HTTP headers (keys as the function gave
/// them are lost: HTTP/1 names are case-insensitive and hyper writes them lower case).
pub(crate) fn result_headers(obj: &Map<String, Value>) -> Result<HeaderMap, EdgeError> {
    let mut out = HeaderMap::new();
    let Some(Value::Object(map)) = obj.get("headers") else {
        return Ok(out);
    };
    for (name, entries) in map {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| validation(format!("The header name {name:?} is not valid.")))?;
        for entry in entries.as_array().into_iter().flatten() {
            let value = entry.get("value").and_then(Value::as_str).unwrap_or("");
            let value = HeaderValue::from_bytes(value.as_bytes()).map_err(|_| {
                validation(format!("The value of header {name} is not a valid value."))
            })?;
            out.append(name.clone(), value);
        }
    }
    Ok(out)
}

/// Bytes that cannot appear raw in a URI path or query, percent-encoded (a function's UTF-8
/// goes to the origin as UTF-8, §3.7).
fn encode_uri_part(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b > 0x7e || b <= 0x20 || b"\"<>\\^`{|}".contains(&b) {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(char::from(b));
        }
    }
    out
}

/// The URI of a changed request: `uri` and `querystring` of the result.
pub(crate) fn result_uri(obj: &Map<String, Value>) -> Result<http::Uri, EdgeError> {
    let path = obj.get("uri").and_then(Value::as_str).unwrap_or("/");
    let query = obj.get("querystring").and_then(Value::as_str).unwrap_or("");
    let pq = if query.is_empty() {
        encode_uri_part(path)
    } else {
        format!("{}?{}", encode_uri_part(path), encode_uri_part(query))
    };
    pq.parse::<http::Uri>()
        .map_err(|_| validation("Lambda function invalid URI format."))
}

/// The body a request result replaces the viewer's with (`action: replace`), if any.
pub(crate) fn replaced_request_body(obj: &Map<String, Value>) -> Result<Option<Bytes>, EdgeError> {
    let Some(Value::Object(body)) = obj.get("body") else {
        return Ok(None);
    };
    if body.get("action").and_then(Value::as_str) != Some("replace") {
        return Ok(None);
    }
    let data = body.get("data").and_then(Value::as_str).unwrap_or("");
    match body
        .get("encoding")
        .and_then(Value::as_str)
        .unwrap_or("base64")
    {
        "text" => Ok(Some(Bytes::copy_from_slice(data.as_bytes()))),
        _ => base64::engine::general_purpose::STANDARD
            .decode(data)
            .map(|b| Some(Bytes::from(b)))
            .map_err(|_| validation("The body is not valid base64.")),
    }
}

/// The `body`/`bodyEncoding` of a response result, decoded; `None` when absent.
pub(crate) fn result_response_body(obj: &Map<String, Value>) -> Result<Option<Bytes>, EdgeError> {
    let body = match obj.get("body") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(b)) => b,
        Some(_) => {
            return Err(validation(
                "The body is not a string, is not an object, or exceeds the maximum size.",
            ))
        }
    };
    if obj.get("bodyEncoding").and_then(Value::as_str) == Some("base64") {
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .map(|b| Some(Bytes::from(b)))
            .map_err(|_| validation("The body is not valid base64."))
    } else {
        Ok(Some(Bytes::copy_from_slice(body.as_bytes())))
    }
}

/// The status of a validated response result (a string or a number, 200–599).
pub(crate) fn result_status(obj: &Map<String, Value>) -> Result<StatusCode, EdgeError> {
    let n = match obj.get("status") {
        Some(Value::String(s)) => s.trim().parse::<u16>().ok(),
        Some(Value::Number(n)) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        _ => None,
    };
    n.and_then(|n| StatusCode::from_u16(n).ok())
        .ok_or_else(|| validation("The status code is not a number from 200 to 599."))
}

/// Sets the reason phrase when the function chose another than the standard one.
pub(crate) fn set_reason(resp: &mut Response<EdgeBody>, obj: &Map<String, Value>) {
    let Some(desc) = obj.get("statusDescription").and_then(Value::as_str) else {
        return;
    };
    if desc.is_empty() || Some(desc) == resp.status().canonical_reason() {
        return;
    }
    if let Ok(reason) = hyper::ext::ReasonPhrase::try_from(desc.as_bytes().to_vec()) {
        resp.extensions_mut().insert(reason);
    }
}

/// A response generated at viewer-request or origin-request (§3.3).
pub(crate) fn generated_response(
    obj: &Map<String, Value>,
) -> Result<Response<EdgeBody>, EdgeError> {
    let status = result_status(obj)?;
    let headers = result_headers(obj)?;
    let body = result_response_body(obj)?.unwrap_or_default();
    let mut resp = Response::new(EdgeBody::full(body.clone()));
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    let h = resp.headers_mut();
    h.remove(header::TRANSFER_ENCODING);
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    if !h.contains_key(header::SERVER) {
        h.insert(header::SERVER, HeaderValue::from_static("CloudFront"));
    }
    set_reason(&mut resp, obj);
    Ok(resp)
}

/// Applies what a response trigger's function gave back (see [`apply_response`]).
pub(crate) fn apply_outcome(
    resp: Response<EdgeBody>,
    outcome: &Outcome,
    keep: &[HeaderName],
) -> Result<Response<EdgeBody>, EdgeError> {
    match outcome {
        Outcome::Changed(
            ValidResult::Response(obj) | ValidResult::Request(obj) | ValidResult::Generated(obj),
        ) => apply_response(resp, obj, keep),
        Outcome::Unchanged => Ok(without_hidden(resp, keep)),
    }
}

/// The response as a function that returned its record unchanged leaves it: without the
/// headers functions never see (§3.4), except those in `keep`, as [`apply_response`] would.
fn without_hidden(mut resp: Response<EdgeBody>, keep: &[HeaderName]) -> Response<EdgeBody> {
    let hidden: Vec<HeaderName> = resp
        .headers()
        .keys()
        .filter(|n| is_disallowed_header(n.as_str()) && !keep.contains(n))
        .cloned()
        .collect();
    for name in hidden {
        resp.headers_mut().remove(name);
    }
    resp
}

/// Whether a result's `headers` hold exactly the record's entries (in any order of names).
pub(crate) fn same_headers(result: &Value, record: &ev::Headers) -> bool {
    let Value::Object(map) = result else {
        return false;
    };
    map.len() == record.len()
        && map.iter().all(|(name, entries)| {
            let (Some(entries), Some(given)) = (entries.as_array(), record.get(name)) else {
                return false;
            };
            entries.len() == given.len()
                && entries.iter().zip(given).all(|(e, g)| {
                    e.get("value").and_then(Value::as_str) == Some(g.value.as_str())
                        && e.get("key").and_then(Value::as_str) == g.key.as_deref()
                })
        })
}

/// Applies an origin-response or viewer-response result to the response it replaces:
/// status (origin-response), headers, and the body when the function set one.
pub(crate) fn apply_response(
    resp: Response<EdgeBody>,
    obj: &Map<String, Value>,
    keep: &[HeaderName],
) -> Result<Response<EdgeBody>, EdgeError> {
    let status = result_status(obj)?;
    let mut headers = result_headers(obj)?;
    let new_body = result_response_body(obj)?;
    let (mut parts, body) = resp.into_parts();
    for name in keep {
        if let Some(v) = parts.headers.get(name) {
            headers.insert(name.clone(), v.clone());
        }
    }
    let body = match new_body {
        Some(bytes) => {
            headers.remove(header::TRANSFER_ENCODING);
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            EdgeBody::full(bytes)
        }
        None => {
            // The origin's body goes on: its framing headers stay as they were.
            for name in [header::CONTENT_LENGTH, header::TRANSFER_ENCODING] {
                headers.remove(&name);
                for v in parts.headers.get_all(&name) {
                    headers.append(name.clone(), v.clone());
                }
            }
            body
        }
    };
    parts.status = status;
    parts.headers = headers;
    let mut resp = Response::from_parts(parts, body);
    set_reason(&mut resp, obj);
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn headers_round_trip_and_skip_disallowed() {
        let mut h = HeaderMap::new();
        h.append("cookie", HeaderValue::from_static("a=1"));
        h.append("cookie", HeaderValue::from_static("b=2"));
        h.append("x-cache", HeaderValue::from_static("Hit"));
        h.append(
            "x-latin",
            HeaderValue::from_bytes(b"caf\xe9").expect("obs-text"),
        );
        let e = event_headers(&h, Spelling::Http1(None), CloudFrontNames::CloudFronts);
        assert_eq!(e.get("cookie").map(<[_]>::len), Some(2));
        assert!(e.get("x-cache").is_none());
        assert_eq!(e.first("x-latin"), Some("café"));
        let obj = to_map(&json!({"headers": e}));
        let back = result_headers(&obj).expect("headers");
        assert_eq!(back.get_all("cookie").iter().count(), 2);
    }

    #[test]
    fn uris_are_percent_encoded() {
        let obj = to_map(&json!({"uri": "/caf\u{e9} x", "querystring": "q=ü"}));
        let uri = result_uri(&obj).expect("uri").to_string();
        assert_eq!(uri, "/caf%C3%A9%20x?q=%C3%BC");
    }

    #[test]
    fn generated_responses() {
        let obj = to_map(&json!({"status": "302", "statusDescription": "Found",
            "headers": {"location": [{"key": "Location", "value": "https://x.test/"}]}}));
        let r = generated_response(&obj).expect("generated");
        assert_eq!(r.status(), 302);
        assert_eq!(r.headers()["location"], "https://x.test/");
        assert_eq!(r.headers()["content-length"], "0");
        let obj = to_map(&json!({"status": 200, "body": "aGk=", "bodyEncoding": "base64"}));
        let r = generated_response(&obj).expect("generated");
        assert_eq!(r.headers()["content-length"], "2");
    }
}
