//! Answers built from a stored (or just fetched) entry: viewer conditionals (§5.6), ranges
//! (§5.10), HEAD (§5.11) and `Age` (§5.8).

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{
    AGE, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE,
    RANGE,
};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use tokio::time::Instant;

use crate::response::{Body, CacheOutcome};
use crate::status::CacheStatus;
use crate::store::Entry;

/// How to answer from an entry.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    /// Viewer method (HEAD gets no body).
    pub method: &'a Method,
    /// Viewer headers (conditionals, `Range`).
    pub headers: &'a HeaderMap,
    /// Now, for `Age`.
    pub now: Instant,
    /// Add `Age` (responses served from cache).
    pub with_age: bool,
    /// Viewer conditionals may be answered with 304 (off with legacy cookie forwarding).
    pub allow_304: bool,
    /// Status to report for a successful answer (`Hit`, `RefreshHit`, `Miss`).
    pub status: CacheStatus,
}

/// A parsed, satisfiable byte range (inclusive bounds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// Last byte.
    pub end: u64,
}

/// What a `Range` header asks of a body of known length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeRequest {
    /// No (usable) range: send the whole body with 200.
    Full,
    /// Send these ranges with 206.
    Ranges(Vec<ByteRange>),
    /// Nothing satisfiable: 416.
    Unsatisfiable,
}

/// Builds the viewer's response from `entry` (see [`Answer`]).
pub fn answer<S>(entry: &Entry, a: Answer<'_>) -> CacheOutcome<S> {
    let head = &entry.head;
    let mut headers = head.headers.clone();
    if a.with_age {
        headers.insert(AGE, HeaderValue::from(head.age(a.now).as_secs()));
    } else if head.age_placeholder {
        headers.remove(AGE);
    }
    let status_of = |code: StatusCode| {
        if code.as_u16() >= 400 {
            CacheStatus::Error
        } else {
            a.status
        }
    };
    let is_head = a.method == Method::HEAD;
    let ok = head.status == StatusCode::OK;
    if ok && a.allow_304 && not_modified(entry, a.headers) {
        for h in [CONTENT_LENGTH, CONTENT_TYPE, CONTENT_RANGE] {
            headers.remove(h);
        }
        return CacheOutcome {
            status: StatusCode::NOT_MODIFIED,
            headers,
            body: Body::empty(),
            cache_status: a.status,
            stored: false,
            refresh: None,
        };
    }
    let len = entry.body.len() as u64;
    let range = if ok && !is_head && if_range_holds(entry, a.headers) {
        a.headers
            .get(RANGE)
            .and_then(|r| r.to_str().ok())
            .map_or(RangeRequest::Full, |r| parse_range(r, len))
    } else {
        RangeRequest::Full
    };
    let (status, body) = match range {
        RangeRequest::Full => {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
            (head.status, entry.body.clone())
        }
        RangeRequest::Unsatisfiable => {
            headers.insert(
                CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{len}"))
                    .unwrap_or(HeaderValue::from_static("bytes */0")),
            );
            headers.insert(CONTENT_LENGTH, HeaderValue::from(0));
            headers.remove(CONTENT_TYPE);
            (StatusCode::RANGE_NOT_SATISFIABLE, Bytes::new())
        }
        RangeRequest::Ranges(ranges) => {
            let body = if let [r] = ranges.as_slice() {
                if let Ok(v) = HeaderValue::from_str(&content_range(*r, len)) {
                    headers.insert(CONTENT_RANGE, v);
                }
                entry.body.slice(r.start as usize..=r.end as usize)
            } else {
                multipart(&entry.body, &ranges, &mut headers)
            };
            headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
            (StatusCode::PARTIAL_CONTENT, body)
        }
    };
    CacheOutcome {
        status,
        headers,
        body: Body::Full(if is_head { Bytes::new() } else { body }),
        cache_status: status_of(status),
        stored: false,
        refresh: None,
    }
}

fn content_range(r: ByteRange, len: u64) -> String {
    format!("bytes {}-{}/{len}", r.start, r.end)
}

fn multipart(body: &Bytes, ranges: &[ByteRange], headers: &mut HeaderMap) -> Bytes {
    const BOUNDARY: &str = "LEDGE_BYTERANGES_7b3e1f";
    let ct = headers.get(CONTENT_TYPE).cloned();
    let len = body.len() as u64;
    let mut out = BytesMut::new();
    for r in ranges {
        out.put_slice(b"\r\n--");
        out.put_slice(BOUNDARY.as_bytes());
        out.put_slice(b"\r\n");
        if let Some(ct) = &ct {
            out.put_slice(b"Content-Type: ");
            out.put_slice(ct.as_bytes());
            out.put_slice(b"\r\n");
        }
        out.put_slice(b"Content-Range: ");
        out.put_slice(content_range(*r, len).as_bytes());
        out.put_slice(b"\r\n\r\n");
        out.put_slice(&body[r.start as usize..=r.end as usize]);
    }
    out.put_slice(b"\r\n--");
    out.put_slice(BOUNDARY.as_bytes());
    out.put_slice(b"--\r\n");
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("multipart/byteranges; boundary=LEDGE_BYTERANGES_7b3e1f"),
    );
    out.freeze()
}

/// Parses `Range: bytes=…` against a body of `len` bytes (§5.10): malformed, descending or
/// overlapping ranges give [`RangeRequest::Full`].
pub fn parse_range(value: &str, len: u64) -> RangeRequest {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeRequest::Full;
    };
    let mut ranges = Vec::new();
    let mut any_satisfiable = false;
    let mut last_end: Option<u64> = None;
    for part in spec.split(',') {
        let part = part.trim();
        let Some((a, b)) = part.split_once('-') else {
            return RangeRequest::Full;
        };
        let num = |s: &str| {
            (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
                .then(|| s.parse::<u64>().ok())
                .flatten()
        };
        let (start, end) = match (a.trim(), b.trim()) {
            ("", suffix) => {
                let Some(n) = num(suffix) else {
                    return RangeRequest::Full;
                };
                if n == 0 {
                    continue;
                }
                (len.saturating_sub(n), len.saturating_sub(1))
            }
            (first, "") => {
                let Some(s) = num(first) else {
                    return RangeRequest::Full;
                };
                (s, len.saturating_sub(1))
            }
            (first, last) => {
                let (Some(s), Some(e)) = (num(first), num(last)) else {
                    return RangeRequest::Full;
                };
                if e < s {
                    return RangeRequest::Full;
                }
                (s, e.min(len.saturating_sub(1)))
            }
        };
        if let Some(prev) = last_end {
            if start <= prev {
                return RangeRequest::Full;
            }
        }
        if len == 0 || start >= len {
            // Unsatisfiable part; keep order checks going.
            last_end = Some(start);
            continue;
        }
        last_end = Some(end);
        any_satisfiable = true;
        ranges.push(ByteRange { start, end });
    }
    if any_satisfiable {
        RangeRequest::Ranges(ranges)
    } else {
        RangeRequest::Unsatisfiable
    }
}

fn if_range_holds(entry: &Entry, headers: &HeaderMap) -> bool {
    let Some(ir) = headers.get(IF_RANGE) else {
        return true;
    };
    let Ok(ir) = ir.to_str() else {
        return false;
    };
    let ir = ir.trim();
    if ir.starts_with('"') {
        // Strong comparison only.
        entry
            .head
            .etag()
            .and_then(|e| e.to_str().ok())
            .is_some_and(|e| e.trim() == ir)
    } else {
        entry
            .head
            .last_modified()
            .is_some_and(|lm| lm.as_bytes() == ir.as_bytes())
    }
}

/// Viewer `If-None-Match` (weak comparison) or, without it, `If-Modified-Since` (§5.6).
fn not_modified(entry: &Entry, headers: &HeaderMap) -> bool {
    if let Some(inm) = headers.get(IF_NONE_MATCH) {
        let Some(etag) = entry.head.etag().and_then(|e| e.to_str().ok()) else {
            return false;
        };
        let Ok(inm) = inm.to_str() else {
            return false;
        };
        let opaque = |t: &str| t.trim().trim_start_matches("W/").to_string();
        let mine = opaque(etag);
        return inm.split(',').any(|t| t.trim() == "*" || opaque(t) == mine);
    }
    let (Some(ims), Some(lm)) = (headers.get(IF_MODIFIED_SINCE), entry.head.last_modified()) else {
        return false;
    };
    let parse = |v: &HeaderValue| {
        v.to_str()
            .ok()
            .and_then(|s| httpdate::parse_http_date(s).ok())
    };
    match (parse(ims), parse(lm)) {
        (Some(ims), Some(lm)) => lm <= ims,
        _ => false,
    }
}

#[cfg(test)]
mod tests;
