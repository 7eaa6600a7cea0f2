//! Freshness lifetimes and cacheability (cloudfront-cache.md §5.1–5.5, §5.7).

use std::time::{Duration, SystemTime};

use http::header::{CACHE_CONTROL, DATE, EXPIRES, SET_COOKIE, VARY};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use crate::settings::CacheSettings;

/// The `Cache-Control` directives the edge acts on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheControl {
    /// Any `Cache-Control` header was present.
    pub present: bool,
    /// `no-store`.
    pub no_store: bool,
    /// Unqualified `no-cache` (a field-qualified one is not this, §5.2).
    pub no_cache: bool,
    /// `no-cache="Set-Cookie"`: keep `Set-Cookie` out of the stored copy (§5.4).
    pub no_cache_set_cookie: bool,
    /// `private` (qualified or not).
    pub private: bool,
    /// `max-age=N` seconds.
    pub max_age: Option<u64>,
    /// `s-maxage=N` seconds.
    pub s_maxage: Option<u64>,
    /// `stale-while-revalidate=N` seconds.
    pub stale_while_revalidate: Option<u64>,
    /// `stale-if-error=N` seconds.
    pub stale_if_error: Option<u64>,
}

/// How long a stored response is fresh and how it may be reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// Freshness lifetime from the time of fetch (may be zero: stored for revalidation only).
    pub ttl: Duration,
    /// `no-cache`/`no-store`/`private` stored for MinTTL: every request asks the origin
    /// first; the copy is used only when the origin fails (§5.2).
    pub origin_first: bool,
    /// `Vary: *` with MinTTL 0: refetch in full every time, no conditionals (§5.5).
    pub refetch_always: bool,
    /// Window after expiry in which a stale copy is served while one refresh runs (§5.7).
    pub stale_while_revalidate: Duration,
    /// Window after expiry in which a stale copy replaces an origin error; `None` means the
    /// default rule of §5.3 (always, for 5xx), `Some(0)` forbids it.
    pub stale_if_error: Option<Duration>,
    /// The response is an error cached by §5.3.
    pub is_error: bool,
}

/// Statuses cached even without caching headers (§5.3).
const ALWAYS_CACHED_ERRORS: [u16; 7] = [404, 414, 500, 501, 502, 503, 504];
/// Errors cached only with an explicit `max-age`/`s-maxage` (§5.3).
const CC_CACHED_ERRORS: [u16; 5] = [400, 403, 405, 412, 415];

// === impl CacheControl ===

impl CacheControl {
    /// Parses every `Cache-Control` header of `headers`.
    pub fn parse(headers: &HeaderMap) -> Self {
        let mut cc = Self::default();
        for v in headers.get_all(CACHE_CONTROL) {
            cc.present = true;
            let Ok(v) = v.to_str() else { continue };
            for d in split_directives(v) {
                let (name, arg) = match d.split_once('=') {
                    Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
                    None => (d.trim(), None),
                };
                let secs = || arg.and_then(|a| a.parse::<u64>().ok());
                match name.to_ascii_lowercase().as_str() {
                    "no-store" => cc.no_store = true,
                    "no-cache" => match arg {
                        Some(fields) if !fields.is_empty() => {
                            if fields
                                .split(',')
                                .any(|f| f.trim().eq_ignore_ascii_case("set-cookie"))
                            {
                                cc.no_cache_set_cookie = true;
                            }
                        }
                        _ => cc.no_cache = true,
                    },
                    "private" => cc.private = true,
                    "max-age" => cc.max_age = secs().or(Some(0)),
                    "s-maxage" => cc.s_maxage = secs().or(Some(0)),
                    "stale-while-revalidate" => cc.stale_while_revalidate = secs(),
                    "stale-if-error" => cc.stale_if_error = secs(),
                    _ => {}
                }
            }
        }
        cc
    }
}

/// Splits on commas outside quotes (`no-cache="a, b"` is one directive).
fn split_directives(v: &str) -> impl Iterator<Item = &str> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in v.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&v[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&v[start..]);
    out.into_iter().map(str::trim).filter(|d| !d.is_empty())
}

/// Decides whether an origin response may be stored and for how long (§5.1–5.3, §5.7).
/// `None`: not stored at all. `now` is the edge's wall clock (for `Expires` without `Date`).
pub fn freshness(
    status: StatusCode,
    headers: &HeaderMap,
    settings: &CacheSettings,
    now: SystemTime,
) -> Option<Freshness> {
    let cc = CacheControl::parse(headers);
    let code = status.as_u16();
    let b = settings.ttl;
    let mut f = Freshness {
        ttl: Duration::ZERO,
        origin_first: false,
        refetch_always: false,
        stale_while_revalidate: Duration::from_secs(cc.stale_while_revalidate.unwrap_or(0)),
        stale_if_error: cc.stale_if_error.map(Duration::from_secs),
        is_error: code >= 400 && code != 410,
    };
    // 410 Gone follows the ordinary TTL rules (§5.1).
    if code >= 400 && code != 410 {
        let header_ttl = cc.s_maxage.or(cc.max_age);
        let cacheable = ALWAYS_CACHED_ERRORS.contains(&code)
            || (CC_CACHED_ERRORS.contains(&code) && header_ttl.is_some());
        if !cacheable {
            return None;
        }
        let min = settings.error_caching_min_ttl(code);
        f.ttl = min.max(Duration::from_secs(header_ttl.unwrap_or(0)));
        return (!f.ttl.is_zero()).then_some(f);
    }
    let ok = matches!(code, 200 | 203 | 204 | 300 | 301 | 302 | 410)
        || (matches!(code, 307 | 308) && cc.present);
    if !ok {
        return None;
    }
    let clamp = |secs: u64| Duration::from_secs(secs).clamp(b.min, b.max.max(b.min));
    if cc.no_store || cc.no_cache || cc.private {
        if b.min.is_zero() {
            // Not reused without the origin: keep only `no-cache` objects, for revalidation.
            if cc.no_store || cc.private {
                return None;
            }
        } else {
            f.origin_first = true;
        }
        f.ttl = b.min;
    } else if let Some(s) = cc.s_maxage {
        f.ttl = clamp(s);
    } else if let Some(m) = cc.max_age {
        f.ttl = clamp(m);
    } else if let Some(exp) = headers.get(EXPIRES) {
        let exp = exp
            .to_str()
            .ok()
            .and_then(|e| httpdate::parse_http_date(e).ok());
        let date = headers
            .get(DATE)
            .and_then(|d| d.to_str().ok())
            .and_then(|d| httpdate::parse_http_date(d).ok())
            .unwrap_or(now);
        let secs = exp
            .and_then(|e| e.duration_since(date).ok())
            .map_or(0, |d| d.as_secs());
        f.ttl = clamp(secs);
    } else {
        f.ttl = b.default.max(b.min);
    }
    if b.min.is_zero() && vary_has_star(headers) {
        f.refetch_always = true;
    }
    Some(f)
}

fn vary_has_star(headers: &HeaderMap) -> bool {
    headers
        .get_all(VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim() == "*")
}

/// Applies §5.4 (`Set-Cookie`) and §5.5 (`Vary`) to an origin response's headers, giving
/// the viewer's copy. Returns `true` when `Set-Cookie` goes to this viewer only and must be
/// left out of the stored copy (`no-cache="Set-Cookie"` with cookies forwarded).
pub fn filter_response_headers(headers: &mut HeaderMap, settings: &CacheSettings) -> bool {
    let cookies_forwarded = settings.forwards_cookies();
    if !cookies_forwarded {
        headers.remove(SET_COOKIE);
    }
    filter_vary(headers, settings);
    cookies_forwarded && CacheControl::parse(headers).no_cache_set_cookie
}

fn filter_vary(headers: &mut HeaderMap, settings: &CacheSettings) {
    if !headers.contains_key(VARY) {
        return;
    }
    let keep_star = !settings.ttl.min.is_zero();
    let device = settings
        .key
        .headers
        .iter()
        .any(|h| h.as_str().starts_with("cloudfront-is-") && h.as_str().ends_with("-viewer"));
    let mut kept: Vec<String> = Vec::new();
    for v in headers.get_all(VARY).iter().filter_map(|v| v.to_str().ok()) {
        for name in v.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let keep = if name == "*" {
                !keep_star
            } else {
                name.eq_ignore_ascii_case("accept-encoding")
                    || name.eq_ignore_ascii_case("cookie")
                    || (name.eq_ignore_ascii_case("user-agent") && device)
                    || HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
                        .is_ok_and(|h| settings.forwards_header(&h))
            };
            if keep && !kept.iter().any(|k| k.eq_ignore_ascii_case(name)) {
                kept.push(name.to_string());
            }
        }
    }
    headers.remove(VARY);
    if !kept.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&kept.join(", ")) {
            headers.insert(VARY, v);
        }
    }
}

#[cfg(test)]
mod tests;
