//! Validation of what a Lambda@Edge function hands back (lambda-edge.md §3).
//!
//! CloudFront checks every result in two steps, structure then values, and answers 502
//! `LambdaValidationError` on any failure. This module applies rules V1–V16 to the raw JSON a
//! function returned, comparing it with the record the function was given, and hands back the
//! result classified and normalized (missing header `key`s filled in), ready to be applied.
//! It works on `serde_json::Value` because that is what a function returns: the rules are about
//! the shape of arbitrary user output, which typed deserialization would reject too early and
//! with the wrong words.

use serde_json::{Map, Value};

use crate::config::EventType;

/// 40 KB (binary units, lambda-edge.md §4.1 \[ledge\]).
pub const VIEWER_BODY_LIMIT: usize = 40 * 1024;
/// 1 MB = 1,048,576 bytes.
pub const ORIGIN_BODY_LIMIT: usize = 1024 * 1024;
/// URI plus query string after a function changed them must stay under this.
pub const MAX_URL_CHARS: usize = 8192;

/// A function result that passed validation.
#[derive(Debug, Clone, PartialEq)]
pub enum ValidResult {
    /// The (possibly changed) request: processing continues (VReq, OReq).
    Request(Map<String, Value>),
    /// A response generated at VReq or OReq: sent without going to the origin.
    Generated(Map<String, Value>),
    /// The (possibly changed) response (OResp, VResp).
    Response(Map<String, Value>),
}

/// Why CloudFront would refuse a result; the message is the reason shown on the 502 page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValidationError(pub String);

fn invalid<T>(msg: impl Into<String>) -> Result<T, ValidationError> {
    Err(ValidationError(msg.into()))
}

fn failure(detail: &str) -> ValidationError {
    ValidationError(format!(
        "The Lambda function result failed validation: {detail}"
    ))
}

fn failed<T>(detail: &str) -> Result<T, ValidationError> {
    Err(failure(detail))
}

const NOT_OBJECT: &str =
    "The Lambda function returned invalid JSON: The JSON output must be an object type.";
const BAD_BODY: &str = "The body is not a string, is not an object, or exceeds the maximum size.";
const READ_ONLY: &str = "The function tried to add, delete, or change a read-only header.";

/// Headers no function may set (§3.4), lower case; `x-amz-cf-` and `x-edge-` are prefixes.
const DISALLOWED: &[&str] = &[
    "connection",
    "expect",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "trailer",
    "upgrade",
    "x-accel-buffering",
    "x-accel-charset",
    "x-accel-limit-rate",
    "x-accel-redirect",
    "x-amzn-auth",
    "x-amzn-cf-billing",
    "x-amzn-cf-id",
    "x-amzn-cf-xff",
    "x-amzn-errortype",
    "x-amzn-fle-profile",
    "x-amzn-header-count",
    "x-amzn-header-order",
    "x-amzn-lambda-integration-tag",
    "x-amzn-requestid",
    "x-cache",
    "x-forwarded-proto",
    "x-real-ip",
];

/// Whether a (lower-case) header name is one functions may never see or set.
pub fn is_disallowed_header(name: &str) -> bool {
    DISALLOWED.contains(&name) || name.starts_with("x-amz-cf-") || name.starts_with("x-edge-")
}

/// The read-only headers of a trigger (§3.5), lower case.
pub fn read_only_headers(event: EventType) -> &'static [&'static str] {
    match event {
        EventType::ViewerRequest => &["content-length", "host", "transfer-encoding", "via"],
        EventType::OriginRequest => &[
            "accept-encoding",
            "content-length",
            "if-modified-since",
            "if-none-match",
            "if-range",
            "if-unmodified-since",
            "transfer-encoding",
            "via",
        ],
        EventType::OriginResponse => &["transfer-encoding", "via"],
        EventType::ViewerResponse => &["warning", "via"],
    }
}

/// The failure of a result too large to be read at all (V9/V10: the body is over the limit).
pub fn oversize_result() -> ValidationError {
    failure(BAD_BODY)
}

/// Validates `result`, what the function at `event` returned, against `input`: the
/// `cf.request` (request triggers) or `cf.response` (response triggers) it was given.
pub fn validate(
    event: EventType,
    input: &Map<String, Value>,
    result: Value,
) -> Result<ValidResult, ValidationError> {
    let Value::Object(mut obj) = result else {
        return invalid(NOT_OBJECT);
    };
    // V16: returning the whole event is not a result.
    if obj.contains_key("Records") {
        return invalid(NOT_OBJECT);
    }
    match event {
        EventType::ViewerRequest | EventType::OriginRequest => {
            if obj.contains_key("status") {
                validate_generated(event, &mut obj)?;
                Ok(ValidResult::Generated(obj))
            } else {
                validate_request(event, input, &mut obj)?;
                Ok(ValidResult::Request(obj))
            }
        }
        EventType::OriginResponse | EventType::ViewerResponse => {
            validate_response(event, input, &mut obj)?;
            Ok(ValidResult::Response(obj))
        }
    }
}

fn validate_request(
    event: EventType,
    input: &Map<String, Value>,
    obj: &mut Map<String, Value>,
) -> Result<(), ValidationError> {
    // V16: a request needs its uri; a response-shaped object is the wrong kind.
    let uri = match obj.get("uri") {
        Some(Value::String(u)) => u.clone(),
        Some(_) => return failed("The uri is not a string."),
        None => return failed("The request object has no uri."),
    };
    if !uri.starts_with('/') {
        return failed("Lambda function invalid URI format: the uri must start with '/'.");
    }
    let query = match obj.get("querystring") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(q)) => q.clone(),
        Some(_) => return failed("The querystring is not a string."),
    };
    let changed = input.get("uri").and_then(Value::as_str) != Some(uri.as_str())
        || input
            .get("querystring")
            .and_then(Value::as_str)
            .unwrap_or("")
            != query;
    if changed {
        check_url(&uri, &query)?;
    }
    let empty = Map::new();
    let original = input
        .get("headers")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let headers = normalize_headers(obj.get_mut("headers"))?;
    check_headers(headers, original, read_only_headers(event))?;
    let adds_country = headers.contains_key("cloudfront-viewer-country");
    if event == EventType::ViewerRequest
        && adds_country
        && !original.contains_key("cloudfront-viewer-country")
    {
        return failed("A viewer request function cannot add CloudFront-Viewer-Country.");
    }
    if let Some(body) = obj.get("body") {
        check_request_body(event, body)?;
    }
    if event == EventType::OriginRequest {
        let request_names: Vec<String> = header_names(obj);
        // An origin handed back as it was given is the distribution's own: checked when
        // the distribution was configured (it may, for example, be an IP address).
        let unchanged = obj.get("origin") == input.get("origin");
        if let Some(origin) = obj.get_mut("origin").filter(|_| !unchanged) {
            check_origin(origin, &request_names)?;
        }
    }
    Ok(())
}

fn header_names(obj: &Map<String, Value>) -> Vec<String> {
    obj.get("headers")
        .and_then(Value::as_object)
        .map(|h| h.keys().cloned().collect())
        .unwrap_or_default()
}

fn check_url(uri: &str, query: &str) -> Result<(), ValidationError> {
    if uri
        .chars()
        .any(|c| c.is_control() || c == ' ' || c == '#' || c == '?')
    {
        return failed("Lambda function invalid URI format.");
    }
    if query
        .chars()
        .any(|c| c.is_control() || c == ' ' || c == '#')
    {
        return failed("The query string contains a space, a control character or '#'.");
    }
    if uri.chars().count() + query.chars().count() + 1 >= MAX_URL_CHARS {
        return failed("The URI and query string are longer than 8192 characters.");
    }
    Ok(())
}

fn check_request_body(event: EventType, body: &Value) -> Result<(), ValidationError> {
    let Value::Object(body) = body else {
        return failed(BAD_BODY);
    };
    let action = body
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or("read-only");
    if action == "read-only" {
        return Ok(());
    }
    if action != "replace" {
        return failed("The body action must be read-only or replace.");
    }
    let encoding = body
        .get("encoding")
        .and_then(Value::as_str)
        .unwrap_or("base64");
    let Some(data) = body.get("data").map_or(Some(""), Value::as_str) else {
        return failed(BAD_BODY);
    };
    let limit = if event.is_viewer() {
        VIEWER_BODY_LIMIT
    } else {
        ORIGIN_BODY_LIMIT
    };
    let size = match encoding {
        "text" => data.len(),
        "base64" => {
            if data.len() > base64_len(limit) {
                return failed(BAD_BODY);
            }
            decode_base64(data).ok_or_else(|| failure(BAD_BODY))?.len()
        }
        _ => return failed("The body encoding must be text or base64."),
    };
    if size > limit {
        return failed(BAD_BODY);
    }
    Ok(())
}

fn check_origin(origin: &mut Value, request_headers: &[String]) -> Result<(), ValidationError> {
    let Value::Object(origin) = origin else {
        return failed("The origin is not an object.");
    };
    let (kind, settings) = match (
        origin.get_mut("custom").is_some(),
        origin.get("s3").is_some(),
    ) {
        (true, false) => ("custom", origin.get_mut("custom")),
        (false, true) => ("s3", origin.get_mut("s3")),
        _ => return failed("The origin must have exactly one of custom and s3."),
    };
    let Some(Value::Object(o)) = settings else {
        return failed("The origin settings are not an object.");
    };
    let domain = o.get("domainName").and_then(Value::as_str).unwrap_or("");
    let domain_ok = match kind {
        "custom" => {
            !domain.is_empty()
                && domain.len() <= 253
                && !domain.contains(':')
                && domain.parse::<std::net::IpAddr>().is_err()
        }
        _ => !domain.is_empty() && domain.len() <= 128 && domain == domain.to_lowercase(),
    };
    if !domain_ok {
        return failed("The origin domainName is not valid.");
    }
    let path = o.get("path").and_then(Value::as_str).unwrap_or("");
    if !path.is_empty() && (!path.starts_with('/') || path.ends_with('/') || path.len() > 255) {
        return failed("The origin path is not valid.");
    }
    if kind == "custom" {
        let num = |k: &str| o.get(k).and_then(Value::as_u64);
        let port_ok =
            num("port").is_some_and(|p| p == 80 || p == 443 || (1024..=65535).contains(&p));
        let proto_ok = matches!(
            o.get("protocol").and_then(Value::as_str),
            Some("http" | "https")
        );
        let read_ok = num("readTimeout").is_none_or(|t| (4..=60).contains(&t));
        let keep_ok = num("keepaliveTimeout").is_none_or(|t| (1..=60).contains(&t));
        let ssl_ok = o.get("sslProtocols").is_none_or(|v| {
            v.as_array().is_some_and(|a| {
                a.iter()
                    .all(|p| matches!(p.as_str(), Some("TLSv1.2" | "TLSv1.1" | "TLSv1" | "SSLv3")))
            })
        });
        if !(port_ok && proto_ok && read_ok && keep_ok && ssl_ok) {
            return failed("The custom origin settings are out of range.");
        }
    } else {
        let auth = o
            .get("authMethod")
            .and_then(Value::as_str)
            .unwrap_or("none");
        if !matches!(auth, "origin-access-identity" | "none") {
            return failed("The s3 origin authMethod must be origin-access-identity or none.");
        }
        if auth == "origin-access-identity"
            && o.get("region")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
        {
            return failed("An s3 origin with origin-access-identity needs a region.");
        }
    }
    let custom = normalize_headers(o.get_mut("customHeaders"))?;
    for name in custom.keys() {
        if is_disallowed_header(name) {
            return failed(&format!("The function added the disallowed header {name}."));
        }
        if request_headers.contains(name) {
            return failed(&format!(
                "The origin custom header {name} is also a request header."
            ));
        }
    }
    Ok(())
}

fn validate_generated(
    event: EventType,
    obj: &mut Map<String, Value>,
) -> Result<(), ValidationError> {
    let status = parse_status(obj.get("status"))?;
    let headers = normalize_headers(obj.get_mut("headers"))?;
    check_headers(headers, &Map::new(), &[])?;
    let header_bytes: usize = headers
        .iter()
        .flat_map(|(name, entries)| {
            entries.as_array().into_iter().flatten().map(move |e| {
                name.len() + e.get("value").and_then(Value::as_str).map_or(0, str::len) + 4
            })
        })
        .sum();
    if event == EventType::ViewerRequest && status == 204 && obj.contains_key("body") {
        return failed("A 204 response generated at viewer request cannot have a body.");
    }
    let limit = if event.is_viewer() {
        VIEWER_BODY_LIMIT
    } else {
        ORIGIN_BODY_LIMIT
    };
    let body_bytes = check_response_body(obj, limit)?;
    if header_bytes + body_bytes > limit {
        return invalid(format!(
            "Validation error: The Lambda function returned an invalid response, the length of the body size and header was {} bytes which exceeded the CloudFront limit of {limit} bytes.",
            header_bytes + body_bytes
        ));
    }
    Ok(())
}

fn validate_response(
    event: EventType,
    input: &Map<String, Value>,
    obj: &mut Map<String, Value>,
) -> Result<(), ValidationError> {
    if !obj.contains_key("status") {
        // V16: a request (or anything else) where a response belongs.
        return failed("The function must return a response object.");
    }
    let status = parse_status(obj.get("status"))?;
    if event == EventType::ViewerResponse {
        let before = parse_status(input.get("status")).ok();
        if before != Some(status) {
            return failed("A viewer response function cannot change the status code.");
        }
    }
    let empty = Map::new();
    let original = input
        .get("headers")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let headers = normalize_headers(obj.get_mut("headers"))?;
    check_headers(headers, original, read_only_headers(event))?;
    let limit = if event.is_viewer() {
        VIEWER_BODY_LIMIT
    } else {
        ORIGIN_BODY_LIMIT
    };
    check_response_body(obj, limit)?;
    Ok(())
}

/// V6: a status code 200–599, as a string or a number.
fn parse_status(v: Option<&Value>) -> Result<u16, ValidationError> {
    let n = match v {
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(Value::Number(n)) => n.as_u64(),
        _ => None,
    };
    match n {
        Some(n @ 200..=599) => Ok(n as u16),
        _ => failed("The status code is not a number from 200 to 599."),
    }
}

/// V8–V10 for a generated or changed response body; returns its decoded size.
fn check_response_body(obj: &Map<String, Value>, limit: usize) -> Result<usize, ValidationError> {
    let encoding = match obj.get("bodyEncoding") {
        None | Some(Value::Null) => "text",
        Some(Value::String(e)) if e == "text" || e == "base64" => e.as_str(),
        Some(_) => return failed("The bodyEncoding must be text or base64."),
    };
    let body = match obj.get("body") {
        None | Some(Value::Null) => return Ok(0),
        Some(Value::String(b)) => b,
        Some(_) => return failed(BAD_BODY),
    };
    let size = if encoding == "base64" {
        if body.len() > base64_len(limit) {
            return failed(BAD_BODY);
        }
        match decode_base64(body) {
            Some(bytes) => bytes.len(),
            None => return failed("The body is not valid base64."),
        }
    } else {
        body.len()
    };
    if size > limit {
        return failed(BAD_BODY);
    }
    Ok(size)
}

/// V2: every header entry is an array of `{key?, value}` with a matching key; fills in
/// missing keys. Names must be HTTP tokens and values free of CR, LF and NUL, so nothing a
/// function returns can split a header.
fn normalize_headers(headers: Option<&mut Value>) -> Result<&Map<String, Value>, ValidationError> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    let map = match headers {
        None => return Ok(EMPTY.get_or_init(Map::new)),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return invalid(
                "The Lambda function returned an invalid entry in the headers object: The headers object must be an object.",
            )
        }
    };
    for (name, entries) in map.iter_mut() {
        if name.is_empty()
            || !name.bytes().all(is_token_byte)
            || name.bytes().any(|b| b.is_ascii_uppercase())
        {
            return failed(&format!(
                "The header name {name:?} is not a valid lower-case header name."
            ));
        }
        let Value::Array(entries) = entries else {
            return invalid("The Lambda function returned an invalid entry in the headers object: Each header entry in the headers object must be an array.");
        };
        for entry in entries.iter_mut() {
            let Value::Object(entry) = entry else {
                return invalid("The Lambda function returned an invalid entry in the headers object: Each header entry must be an object with a value.");
            };
            match entry.get("value") {
                Some(Value::String(v)) if !v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) => {}
                Some(Value::String(_)) => return failed(&format!("The value of header {name} contains a line break.")),
                _ => return invalid("The Lambda function returned an invalid entry in the headers object: Each header entry must have a string value."),
            }
            match entry.get("key") {
                None | Some(Value::Null) => {
                    entry.insert(
                        "key".into(),
                        Value::String(crate::event::canonical_key(name)),
                    );
                }
                Some(Value::String(k)) if k.eq_ignore_ascii_case(name) => {}
                Some(_) => {
                    return failed(&format!(
                        "The key of header {name} does not match its name."
                    ))
                }
            }
        }
    }
    Ok(map)
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// V3 and V4: no disallowed header, read-only headers exactly as given.
fn check_headers(
    headers: &Map<String, Value>,
    original: &Map<String, Value>,
    read_only: &[&str],
) -> Result<(), ValidationError> {
    for name in headers.keys() {
        if is_disallowed_header(name) {
            return failed(&format!("The function added the disallowed header {name}."));
        }
    }
    for name in read_only {
        let values = |m: &Map<String, Value>| -> Vec<Option<String>> {
            m.get(*name)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|e| e.get("value").and_then(Value::as_str).map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        if values(headers) != values(original) {
            return failed(READ_ONLY);
        }
    }
    Ok(())
}

fn base64_len(decoded: usize) -> usize {
    decoded.div_ceil(3) * 4
}

/// Decodes standard base64 (with padding), as CloudFront expects; `None` when invalid.
pub fn decode_base64(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

#[cfg(test)]
mod tests;
