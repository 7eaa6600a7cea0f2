//! What of the viewer's request reaches the origin (§3.5, §4.2 of the edge semantics): the
//! union of the cache key's values and the origin request policy's, or the legacy
//! `ForwardedValues` rules. Computed once per behavior when a snapshot is compiled.

use http::header::{self, HeaderMap, HeaderValue};
use ledge_model::policy::CachePolicyConfig;
use ledge_model::{CacheBehavior, OriginRequestPolicyConfig};

use crate::cloudfront_headers::{self, CloudFrontHeader};

/// Which names of one kind (headers, cookies or query parameters) are forwarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameRule {
    /// None.
    None,
    /// All of them.
    All,
    /// Only these.
    Only(Vec<String>),
    /// All but these.
    AllExcept(Vec<String>),
}

/// The forwarding rules of one behavior.
#[derive(Debug, Clone)]
pub struct ForwardRules {
    /// Viewer headers (names lower-cased).
    pub headers: NameRule,
    /// Cookies (names case-sensitive; legacy whitelists may use `*`/`?`).
    pub cookies: NameRule,
    /// Query parameters (names case-sensitive).
    pub query: NameRule,
    /// Legacy mode: a fixed set of request headers passes without being listed.
    pub legacy: bool,
    /// `Accept-Encoding` normalization: (gzip, br) enabled in the cache policy.
    pub accept_encoding: (bool, bool),
    /// The CloudFront-generated headers the policies name (added after viewer-request).
    pub cloudfront: Vec<CloudFrontHeader>,
}

/// The header names a policy's `HeadersConfig` lists for inclusion.
fn included<'a>(behavior: &str, names: &'a [String]) -> &'a [String] {
    match behavior {
        "whitelist" | "allViewerAndWhitelistCloudFront" => names,
        _ => &[],
    }
}

/// Headers never sent to an origin (hop-by-hop and CloudFront's always-removed ones).
const ALWAYS_REMOVED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "x-forwarded-proto",
    "x-http-method-override",
    "x-real-ip",
    "host",
    "via",
    "x-forwarded-for",
    "x-amz-cf-id",
    "content-length",
];

/// Request headers the legacy mode drops unless listed.
const LEGACY_REMOVED: &[&str] = &[
    "accept",
    "accept-charset",
    "accept-language",
    "accept-encoding",
    "referer",
    "expect",
    "authorization",
    "cookie",
    "user-agent",
];

/// Headers that describe the request body or conditionals; forwarded in every mode so that the
/// origin sees a consistent request (the cache decides about conditionals on fills).
const ALWAYS_KEPT: &[&str] = &[
    "content-type",
    "content-encoding",
    "range",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "if-range",
];

// === impl NameRule ===

impl NameRule {
    fn from_behavior(behavior: &str, names: &[String], lower: bool) -> Self {
        let names = || {
            names
                .iter()
                .map(|n| {
                    if lower {
                        n.to_ascii_lowercase()
                    } else {
                        n.clone()
                    }
                })
                .collect::<Vec<_>>()
        };
        match behavior {
            "all" | "allViewer" | "allViewerAndWhitelistCloudFront" => Self::All,
            "whitelist" => Self::Only(names()),
            "allExcept" => Self::AllExcept(names()),
            _ => Self::None,
        }
    }

    /// Union of the cache key's rule and the origin request policy's (§3.5's table).
    fn union(self, other: Self) -> Self {
        use NameRule::*;
        match (self, other) {
            (None, x) | (x, None) => x,
            (All, _) | (_, All) => All,
            (Only(mut a), Only(b)) => {
                a.extend(b);
                Only(a)
            }
            (Only(k), AllExcept(o)) | (AllExcept(o), Only(k)) => {
                AllExcept(o.into_iter().filter(|n| !k.contains(n)).collect())
            }
            (AllExcept(mut a), AllExcept(b)) => {
                a.extend(b);
                AllExcept(a)
            }
        }
    }

    /// Whether a name passes (exact comparison; legacy cookie names use wildcards).
    pub fn allows(&self, name: &str) -> bool {
        match self {
            Self::None => false,
            Self::All => true,
            Self::Only(list) => list.iter().any(|n| name_matches(n, name)),
            Self::AllExcept(list) => !list.iter().any(|n| name_matches(n, name)),
        }
    }
}

fn name_matches(pattern: &str, name: &str) -> bool {
    if pattern.contains(['*', '?']) {
        crate::pattern::glob(pattern.as_bytes(), name.as_bytes())
    } else {
        pattern == name
    }
}

// === impl ForwardRules ===

impl ForwardRules {
    /// The rules of a behavior, given its resolved policies.
    pub fn new(
        b: &CacheBehavior,
        cache: Option<&CachePolicyConfig>,
        orp: Option<&OriginRequestPolicyConfig>,
    ) -> Self {
        if let Some(cp) = cache {
            let k = &cp.parameters_in_cache_key_and_forwarded_to_origin;
            let mut headers = NameRule::from_behavior(
                &k.headers_config.header_behavior,
                &k.headers_config.headers,
                true,
            );
            let mut cookies = NameRule::from_behavior(
                &k.cookies_config.cookie_behavior,
                &k.cookies_config.cookies,
                false,
            );
            let mut query = NameRule::from_behavior(
                &k.query_strings_config.query_string_behavior,
                &k.query_strings_config.query_strings,
                false,
            );
            let mut listed: Vec<&String> =
                included(&k.headers_config.header_behavior, &k.headers_config.headers)
                    .iter()
                    .collect();
            if let Some(o) = orp {
                listed.extend(included(
                    &o.headers_config.header_behavior,
                    &o.headers_config.headers,
                ));
                headers = headers.union(NameRule::from_behavior(
                    &o.headers_config.header_behavior,
                    &o.headers_config.headers,
                    true,
                ));
                cookies = cookies.union(NameRule::from_behavior(
                    &o.cookies_config.cookie_behavior,
                    &o.cookies_config.cookies,
                    false,
                ));
                query = query.union(NameRule::from_behavior(
                    &o.query_strings_config.query_string_behavior,
                    &o.query_strings_config.query_strings,
                    false,
                ));
            }
            return Self {
                headers,
                cookies,
                query,
                legacy: false,
                accept_encoding: (
                    k.enable_accept_encoding_gzip,
                    k.enable_accept_encoding_brotli,
                ),
                cloudfront: cloudfront_headers::listed(listed),
            };
        }
        let fv = b.forwarded_values.clone().unwrap_or_default();
        let headers = if fv.headers.iter().any(|h| h == "*") {
            NameRule::All
        } else {
            NameRule::Only(fv.headers.iter().map(|h| h.to_ascii_lowercase()).collect())
        };
        let cookies = match fv.cookies.forward.as_str() {
            "all" => NameRule::All,
            "whitelist" => NameRule::Only(fv.cookies.whitelisted_names.clone()),
            _ => NameRule::None,
        };
        Self {
            headers,
            cookies,
            query: if fv.query_string {
                NameRule::All
            } else {
                NameRule::None
            },
            legacy: true,
            accept_encoding: (false, false),
            cloudfront: cloudfront_headers::listed(&fv.headers),
        }
    }

    /// Whether cookies reach the origin (then `Set-Cookie` is kept and collapsing is off).
    pub fn forwards_cookies(&self) -> bool {
        self.cookies != NameRule::None
    }

    /// Whether the viewer's `Host` reaches the origin.
    pub fn forwards_host(&self) -> bool {
        self.headers.allows("host")
    }

    /// Copies the viewer headers that pass into `out` (fixed headers are added by the caller).
    pub fn copy_headers(&self, method: &http::Method, viewer: &HeaderMap, out: &mut HeaderMap) {
        let write = matches!(
            *method,
            http::Method::POST | http::Method::PUT | http::Method::PATCH | http::Method::DELETE
        );
        for (name, value) in viewer {
            let n = name.as_str();
            if n == "cookie" || n == "accept-encoding" {
                continue;
            }
            if ALWAYS_REMOVED.contains(&n) && !(n == "host" && self.forwards_host()) {
                continue;
            }
            if n == "host" {
                continue; // set by the caller from `forwards_host`
            }
            let pass = self.headers.allows(n)
                || ALWAYS_KEPT.contains(&n)
                || (self.legacy
                    && (!LEGACY_REMOVED.contains(&n) || (n == "authorization" && write)));
            if pass {
                out.append(name.clone(), value.clone());
            }
        }
        if self.forwards_cookies() {
            if let Some(c) = self.cookie_header(viewer) {
                out.insert(header::COOKIE, c);
            }
        }
        if let Some(ae) = self.accept_encoding_header(viewer) {
            out.insert(header::ACCEPT_ENCODING, ae);
        }
    }

    /// The `Cookie` header rebuilt from the cookies that pass (legacy: sorted by name).
    fn cookie_header(&self, viewer: &HeaderMap) -> Option<HeaderValue> {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        for v in viewer.get_all(header::COOKIE) {
            let Ok(s) = v.to_str() else { continue };
            for pair in s.split(';') {
                let pair = pair.trim();
                let Some((name, value)) = pair.split_once('=') else {
                    continue;
                };
                if self.cookies.allows(name) {
                    pairs.push((name, value));
                }
            }
        }
        if pairs.is_empty() {
            return None;
        }
        if self.legacy {
            pairs.sort_by(|a, b| a.0.cmp(b.0));
        }
        let joined = pairs
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        HeaderValue::from_str(&joined).ok()
    }

    /// The normalized `Accept-Encoding` (§3.3), or the viewer's when the header is forwarded.
    fn accept_encoding_header(&self, viewer: &HeaderMap) -> Option<HeaderValue> {
        let raw = viewer.get(header::ACCEPT_ENCODING);
        let (gzip, br) = self.accept_encoding;
        if !gzip && !br {
            return raw
                .filter(|_| self.headers.allows("accept-encoding"))
                .cloned();
        }
        let raw = raw?.to_str().ok()?;
        let has = |coding: &str| {
            raw.split(',').any(|t| {
                let mut parts = t.trim().split(';');
                let name = parts.next().unwrap_or("").trim();
                let q_zero = parts.any(|p| {
                    let p = p.trim();
                    p == "q=0" || p == "q=0.0" || p == "q=0.00" || p == "q=0.000"
                });
                name.eq_ignore_ascii_case(coding) && !q_zero
            })
        };
        Some(HeaderValue::from_static(
            match (br && has("br"), gzip && has("gzip")) {
                (true, true) => "br,gzip",
                (true, false) => "br",
                (false, true) => "gzip",
                (false, false) => "identity",
            },
        ))
    }

    /// The query string for the origin: the parameters that pass, in their original order.
    pub fn query<'a>(&self, query: Option<&'a str>) -> Option<std::borrow::Cow<'a, str>> {
        let q = query.filter(|q| !q.is_empty())?;
        match &self.query {
            NameRule::None => None,
            NameRule::All => Some(q.into()),
            rule => {
                let kept: Vec<&str> = q
                    .split('&')
                    .filter(|p| rule.allows(p.split_once('=').map_or(*p, |(n, _)| n)))
                    .collect();
                (!kept.is_empty()).then(|| kept.join("&").into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unions_follow_the_table() {
        let only = |v: &[&str]| NameRule::Only(v.iter().map(|s| s.to_string()).collect());
        let except = |v: &[&str]| NameRule::AllExcept(v.iter().map(|s| s.to_string()).collect());
        assert_eq!(only(&["a"]).union(NameRule::None), only(&["a"]));
        assert_eq!(only(&["a"]).union(only(&["b"])), only(&["a", "b"]));
        assert_eq!(only(&["a"]).union(except(&["a", "b"])), except(&["b"]));
        assert_eq!(NameRule::All.union(except(&["x"])), NameRule::All);
        assert!(only(&["userid_*"]).allows("userid_42"));
        assert!(!only(&["userid_*"]).allows("session"));
    }

    #[test]
    fn accept_encoding_is_normalized() {
        let rules = ForwardRules {
            headers: NameRule::None,
            cookies: NameRule::None,
            query: NameRule::None,
            legacy: false,
            accept_encoding: (true, true),
            cloudfront: Vec::new(),
        };
        let ae = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
            rules.accept_encoding_header(&h)
        };
        assert_eq!(ae("gzip, deflate, br").unwrap(), "br,gzip");
        assert_eq!(ae("deflate").unwrap(), "identity");
        assert_eq!(ae("gzip;q=0, br").unwrap(), "br");
    }

    #[test]
    fn legacy_mode_drops_accept_and_authorization_on_reads() {
        let b: CacheBehavior = serde_json::from_str(
            r#"{"TargetOriginId": "o", "ForwardedValues": {"Headers": ["X-Key"],
                "Cookies": {"Forward": "whitelist", "WhitelistedNames": ["b", "a"]}}}"#,
        )
        .unwrap();
        let rules = ForwardRules::new(&b, None, None);
        let mut viewer = HeaderMap::new();
        for (n, v) in [
            ("accept", "x"),
            ("referer", "r"),
            ("authorization", "secret"),
            ("x-key", "k"),
            ("x-custom", "c"),
            ("content-type", "t"),
            ("connection", "close"),
            ("cookie", "c=3; b=2; a=1"),
        ] {
            viewer.insert(
                http::HeaderName::from_static(n),
                HeaderValue::from_static(v),
            );
        }
        let mut out = HeaderMap::new();
        rules.copy_headers(&http::Method::GET, &viewer, &mut out);
        for gone in ["accept", "referer", "authorization", "connection"] {
            assert!(!out.contains_key(gone), "{gone}");
        }
        for kept in ["x-key", "x-custom", "content-type"] {
            assert!(out.contains_key(kept), "{kept}");
        }
        assert_eq!(out.get("cookie").unwrap(), "a=1; b=2", "sorted by name");
        let mut out = HeaderMap::new();
        rules.copy_headers(&http::Method::POST, &viewer, &mut out);
        assert!(out.contains_key("authorization"), "forwarded on writes");
    }

    #[test]
    fn query_keeps_order_of_chosen_parameters() {
        let mut rules = ForwardRules {
            headers: NameRule::None,
            cookies: NameRule::None,
            query: NameRule::Only(vec!["b".into(), "a".into()]),
            legacy: false,
            accept_encoding: (false, false),
            cloudfront: Vec::new(),
        };
        assert_eq!(rules.query(Some("a=1&c=2&b=3")).unwrap(), "a=1&b=3");
        assert_eq!(rules.query(Some("c=2")), None);
        rules.query = NameRule::All;
        assert_eq!(rules.query(Some("z=1&a=2")).unwrap(), "z=1&a=2");
    }
}
