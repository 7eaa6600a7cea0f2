//! The cache key (cloudfront-cache.md §3) and what reaches the origin (§3.5).
//!
//! # Design
//! A key is a 128-bit hash of its components (distribution domain, path, `OPTIONS`,
//! selected query parameters, headers, cookies, normalized `Accept-Encoding`). Building it
//! streams the components into a SipHash state with a random per-process key (so viewers
//! cannot forge collisions) and a seeded multiply-rotate hash (so honest keys never collide
//! by accident), and allocates nothing, except for
//! `all`/`allExcept` cookie keys, which are sorted by name first. Every component is
//! length-prefixed, so no two different component lists hash the same input.
//!
//! The path used by invalidations (path plus the keyed query) is built only when an entry is
//! stored ([`invalidation_path`]).

use std::hash::{BuildHasher, Hasher, RandomState};

use http::header::{ACCEPT_ENCODING, AUTHORIZATION, COOKIE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Version};

use crate::request::CacheRequest;
use crate::settings::{CacheSettings, KeySpec, NameFilter};

/// A cache key: a 128-bit keyed hash (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey(pub u128);

/// Builds [`CacheKey`]s with this process's random hash keys.
#[derive(Debug, Clone)]
pub struct Keyer {
    sip: RandomState,
    seed: u64,
}

/// The viewer's `Accept-Encoding` after §3.3 normalization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormalizedEncoding {
    /// Normalization is off, or the viewer sent none (or is HTTP/1.0): no header to the origin.
    Absent,
    /// The viewer named no enabled coding: not in the key, origin gets `identity`.
    Identity,
    /// `gzip`.
    Gzip,
    /// `br`.
    Br,
    /// `br,gzip`.
    BrGzip,
}

/// The viewer values that reach the origin under §3.5. The edge still removes the hop-by-hop
/// and always-stripped headers of §4.2 from `headers` (an all-viewer policy selects every
/// viewer header) and adds the fixed ones (`X-Forwarded-For`, `Via`, …).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginParams {
    /// Viewer headers to forward, in request order (without `Cookie` and `Accept-Encoding`,
    /// which are below). When `Host` is among them the viewer's `Host` is sent.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The rebuilt `Cookie` header, if any cookie is forwarded.
    pub cookie: Option<String>,
    /// The forwarded query string without `?`, parameters in their original order.
    pub query: Option<String>,
    /// `Accept-Encoding` for the origin: `None` means the viewer's header is forwarded only if
    /// listed in `headers`; `Some(v)` replaces it (§3.3).
    pub accept_encoding: Option<HeaderValue>,
}

/// Streams key components into a keyed SipHash (the high 64 bits: unpredictable to viewers)
/// and an independent seeded multiply-rotate hash (the low 64 bits: makes accidental
/// collisions between honest keys negligible at any cache size). Components are gathered in
/// a stack buffer first, so both hashes see few, large writes.
struct KeyHasher {
    sip: std::hash::DefaultHasher,
    mix: u64,
    buf: [u8; BUF],
    len: usize,
}

const BUF: usize = 256;
const MIX_K: u64 = 0x9E37_79B9_7F4A_7C15;

// === impl KeyHasher ===

impl KeyHasher {
    fn new(sip: std::hash::DefaultHasher, seed: u64) -> Self {
        Self {
            sip,
            mix: seed,
            buf: [0; BUF],
            len: 0,
        }
    }

    fn flush(&mut self) {
        let data = &self.buf[..self.len];
        self.sip.write(data);
        let mut m = self.mix;
        let mut chunks = data.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            m = (m ^ u64::from_le_bytes(w))
                .wrapping_mul(MIX_K)
                .rotate_left(31);
        }
        let rest = chunks.remainder();
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        // The chunk count is folded in, so a short tail never aliases zero padding.
        m = (m ^ u64::from_le_bytes(w) ^ ((data.len() as u64) << 56))
            .wrapping_mul(MIX_K)
            .rotate_left(31);
        self.mix = m;
        self.len = 0;
    }

    fn bytes(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.len == BUF {
                self.flush();
            }
            let n = bytes.len().min(BUF - self.len);
            self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
            self.len += n;
            bytes = &bytes[n..];
        }
    }

    fn part(&mut self, bytes: &[u8]) {
        self.bytes(&(bytes.len() as u32).to_le_bytes());
        self.bytes(bytes);
    }

    fn tag(&mut self, t: u8) {
        self.bytes(&[t]);
    }

    fn finish(&mut self) -> CacheKey {
        self.flush();
        // fmix64 (MurmurHash3's finalizer) spreads the last words over all bits.
        let mut m = self.mix;
        m ^= m >> 33;
        m = m.wrapping_mul(0xff51_afd7_ed55_8ccd);
        m ^= m >> 33;
        m = m.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        m ^= m >> 33;
        CacheKey((u128::from(self.sip.finish()) << 64) | u128::from(m))
    }
}

// === impl Keyer ===

impl Default for Keyer {
    fn default() -> Self {
        Self::new()
    }
}

impl Keyer {
    /// A keyer with fresh random hash keys.
    pub fn new() -> Self {
        let sip = RandomState::new();
        let seed = sip.hash_one(0x5eed_u64) | 1;
        Self { sip, seed }
    }

    /// The cache key of `req` (§3.1–3.4). GET and HEAD share keys; OPTIONS has its own.
    pub fn key(&self, req: &CacheRequest<'_>) -> CacheKey {
        let spec = &req.settings.key;
        let mut h = KeyHasher::new(self.sip.build_hasher(), self.seed);
        h.part(req.domain_name.as_bytes());
        h.part(req.path().as_bytes());
        if req.method == Method::OPTIONS {
            h.tag(b'O');
        }
        h.tag(b'Q');
        match &spec.query {
            NameFilter::None => {}
            NameFilter::All => {
                for (_, pair) in query_pairs(req.uri.query()) {
                    h.part(pair.as_bytes());
                }
            }
            filter => {
                for (name, pair) in query_pairs(req.uri.query()) {
                    if filter.selects(name, false, false) {
                        h.part(pair.as_bytes());
                    }
                }
            }
        }
        for name in &spec.headers {
            h.tag(b'H');
            h.part(name.as_str().as_bytes());
            let mut values = req.headers.get_all(name).iter().peekable();
            if values.peek().is_none() {
                h.tag(0);
            }
            for v in values {
                h.tag(1);
                h.part(v.as_bytes());
            }
        }
        hash_cookies(&mut h, spec, req.headers);
        let enc = normalize_accept_encoding(spec, req.headers, req.version);
        if let Some(coding) = enc.key_value() {
            h.tag(b'E');
            h.part(coding.as_bytes());
        }
        h.finish()
    }
}

fn hash_cookies(h: &mut KeyHasher, spec: &KeySpec, headers: &HeaderMap) {
    match &spec.cookies {
        NameFilter::None => {}
        NameFilter::Only(names) if !spec.cookie_wildcards => {
            // Parse the cookies once onto the stack (no allocation for up to 32), then walk
            // the policy's names in order so the viewer's cookie order never matters.
            const MAX: usize = 32;
            let mut seen: [(&str, &str); MAX] = [("", ""); MAX];
            let mut n = 0;
            let mut overflow = false;
            for c in cookie_pairs(headers) {
                if n == MAX {
                    overflow = true;
                    break;
                }
                seen[n] = c;
                n += 1;
            }
            for want in names {
                h.tag(b'C');
                if overflow {
                    for (name, pair) in cookie_pairs(headers) {
                        if name == want {
                            h.part(pair.as_bytes());
                        }
                    }
                } else {
                    for (name, pair) in &seen[..n] {
                        if name == want {
                            h.part(pair.as_bytes());
                        }
                    }
                }
            }
        }
        filter => {
            let mut pairs: Vec<(&str, &str)> = cookie_pairs(headers)
                .filter(|(n, _)| filter.selects(n, false, spec.cookie_wildcards))
                .collect();
            pairs.sort_by(|a, b| a.0.cmp(b.0));
            for (_, pair) in pairs {
                h.tag(b'C');
                h.part(pair.as_bytes());
            }
        }
    }
}

/// `(name, "name=value")` for each `&`-separated query parameter, in order, duplicates kept.
pub(crate) fn query_pairs(query: Option<&str>) -> impl Iterator<Item = (&str, &str)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| (p.split_once('=').map_or(p, |(n, _)| n), p))
}

/// `(name, "name=value")` for each cookie of every `Cookie` header; malformed pairs skipped.
pub(crate) fn cookie_pairs(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter_map(|p| p.split_once('=').map(|(n, _)| (n.trim(), p)))
        .filter(|(n, _)| !n.is_empty())
}

/// §3.3: the viewer's `Accept-Encoding` reduced to the enabled codings it names.
pub fn normalize_accept_encoding(
    spec: &KeySpec,
    headers: &HeaderMap,
    version: Version,
) -> NormalizedEncoding {
    if !(spec.gzip || spec.br) || version <= Version::HTTP_10 {
        return NormalizedEncoding::Absent;
    }
    let mut any = false;
    let (mut gzip, mut br) = (false, false);
    for v in headers.get_all(ACCEPT_ENCODING) {
        any = true;
        for item in v.as_bytes().split(|&b| b == b',') {
            let mut params = item.split(|&b| b == b';');
            let coding = params.next().unwrap_or_default().trim_ascii();
            if params.any(refuses) {
                continue;
            }
            if coding.eq_ignore_ascii_case(b"gzip") {
                gzip = true;
            } else if coding.eq_ignore_ascii_case(b"br") {
                br = true;
            }
        }
    }
    match (gzip && spec.gzip, br && spec.br, any) {
        (true, true, _) => NormalizedEncoding::BrGzip,
        (true, false, _) => NormalizedEncoding::Gzip,
        (false, true, _) => NormalizedEncoding::Br,
        (false, false, true) => NormalizedEncoding::Identity,
        (false, false, false) => NormalizedEncoding::Absent,
    }
}

/// A `q=0` (or `0.0`, `0.00`, `0.000`) parameter: the coding is not acceptable.
fn refuses(param: &[u8]) -> bool {
    let p = param.trim_ascii();
    let Some(q) = p
        .strip_prefix(b"q=")
        .or_else(|| p.strip_prefix(b"Q="))
        .map(<[u8]>::trim_ascii)
    else {
        return false;
    };
    match q.split_first() {
        Some((b'0', rest)) => {
            rest.is_empty()
                || (rest[0] == b'.' && rest.len() <= 4 && rest[1..].iter().all(|&c| c == b'0'))
        }
        _ => false,
    }
}

// === impl NormalizedEncoding ===

impl NormalizedEncoding {
    /// The value sent to the origin as `Accept-Encoding`, if the header is sent.
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            Self::Absent => None,
            Self::Identity => Some("identity"),
            Self::Gzip => Some("gzip"),
            Self::Br => Some("br"),
            Self::BrGzip => Some("br,gzip"),
        }
    }

    /// The key component: `None` when `Accept-Encoding` is not in the key (§3.3).
    pub fn key_value(self) -> Option<&'static str> {
        match self {
            Self::Absent | Self::Identity => None,
            other => other.as_str(),
        }
    }

    /// The coding the edge compresses with for this viewer (brotli preferred, §8.3).
    pub fn preferred(self) -> Option<&'static str> {
        match self {
            Self::Br | Self::BrGzip => Some("br"),
            Self::Gzip => Some("gzip"),
            Self::Absent | Self::Identity => None,
        }
    }
}

/// The path under which an entry is found by invalidations (§9): path plus `?` and the keyed
/// query parameters, when any are in the key.
pub fn invalidation_path(req: &CacheRequest<'_>) -> String {
    let mut s = String::from(req.path());
    let mut first = true;
    for (name, pair) in query_pairs(req.uri.query()) {
        if req.settings.key.query.selects(name, false, false) {
            s.push(if first { '?' } else { '&' });
            s.push_str(pair);
            first = false;
        }
    }
    s
}

/// What reaches the origin for `req` (§3.5, and §3.4 for legacy settings).
pub fn origin_params(req: &CacheRequest<'_>) -> OriginParams {
    let s: &CacheSettings = req.settings;
    let fwd = s.forward.as_ref();
    let none = NameFilter::None;
    let (fh, fc, fq) = fwd.map_or((&none, &none, &none), |f| {
        (&f.headers, &f.cookies, &f.query)
    });
    let ae = normalize_accept_encoding(&s.key, req.headers, req.version);
    let ae_on = s.key.gzip || s.key.br;

    let mut headers = Vec::new();
    for (name, value) in req.headers {
        if name == COOKIE || (ae_on && name == ACCEPT_ENCODING) {
            continue;
        }
        let keyed = s.key.headers.contains(name);
        let by_orp = fh.selects(name.as_str(), true, false)
            || fwd.is_some_and(|f| f.cloudfront_headers.contains(name));
        // `Authorization` reaches the origin only through the key, or through an all-viewer
        // origin request policy on a behavior that does not cache (§3.5).
        let by_orp = by_orp && (name != AUTHORIZATION || !s.caching_enabled());
        if keyed || by_orp {
            headers.push((name.clone(), value.clone()));
        }
    }

    let both_block = |key: &NameFilter, orp: &NameFilter| {
        matches!(key, NameFilter::AllExcept(_)) && matches!(orp, NameFilter::AllExcept(_))
    };
    let pick = |key: &NameFilter, orp: &NameFilter, name: &str, glob: bool| {
        let k = key.selects(name, false, glob);
        let o = orp.selects(name, false, false);
        if both_block(key, orp) {
            k && o
        } else {
            k || o
        }
    };

    let mut cookies: Vec<(&str, &str)> = Vec::new();
    let well_formed = !s.legacy || cookie_header_well_formed(req.headers);
    if well_formed {
        for (name, pair) in cookie_pairs(req.headers) {
            if pick(&s.key.cookies, fc, name, s.key.cookie_wildcards) {
                cookies.push((name, pair));
            }
        }
    }
    if s.legacy {
        cookies.sort_by(|a, b| a.0.cmp(b.0));
    }
    let cookie = (!cookies.is_empty()).then(|| {
        cookies
            .iter()
            .map(|(_, p)| *p)
            .collect::<Vec<_>>()
            .join("; ")
    });

    let mut query = String::new();
    for (name, pair) in query_pairs(req.uri.query()) {
        if pick(&s.key.query, fq, name, false) {
            if !query.is_empty() {
                query.push('&');
            }
            query.push_str(pair);
        }
    }

    OriginParams {
        headers,
        cookie,
        query: (!query.is_empty()).then_some(query),
        accept_encoding: ae.as_str().map(HeaderValue::from_static),
    }
}

fn cookie_header_well_formed(headers: &HeaderMap) -> bool {
    headers.get_all(COOKIE).iter().all(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(';')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .all(|p| p.split_once('=').is_some_and(|(n, _)| !n.trim().is_empty()))
        })
    })
}

#[cfg(test)]
mod tests;
