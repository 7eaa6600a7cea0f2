//! What the edge hands to the cache ([`CacheRequest`]) and what the cache asks of the
//! origin fetch ([`Conditional`]).

use http::header::{IF_MODIFIED_SINCE, IF_NONE_MATCH};
use http::{HeaderMap, HeaderValue, Method, Uri, Version};

use crate::settings::CacheSettings;

/// One viewer request as the cache sees it.
///
/// `uri` must already carry the default-root-object rewrite (§1), and `headers` must already
/// contain any CloudFront-generated headers (`CloudFront-Viewer-Country` …) that the key names,
/// with their computed values.
#[derive(Debug, Clone, Copy)]
pub struct CacheRequest<'a> {
    /// Distribution id (scopes invalidations).
    pub distribution_id: &'a str,
    /// The distribution's own domain name (always in the key, §3.1), not the viewer's `Host`.
    pub domain_name: &'a str,
    /// Request method.
    pub method: &'a Method,
    /// Request URI (path and query are used).
    pub uri: &'a Uri,
    /// Viewer HTTP version (HTTP/1.0 viewers get no `Accept-Encoding` handling).
    pub version: Version,
    /// Viewer request headers.
    pub headers: &'a HeaderMap,
    /// The matched behavior's resolved settings.
    pub settings: &'a CacheSettings,
}

/// What the cache asks of one origin fetch.
///
/// Passed to the `fetch` closure of [`crate::Cache::serve`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditional {
    /// Send `If-None-Match` with this value (revalidation of a stored entry).
    pub if_none_match: Option<HeaderValue>,
    /// Send `If-Modified-Since` with this value (revalidation of a stored entry).
    pub if_modified_since: Option<HeaderValue>,
    /// This fetch fills the cache: do **not** forward the viewer's `Range`, `If-*` headers
    /// (§4.2); the cache answers those itself. When `false` the request is passed through and
    /// the viewer's conditionals and ranges are forwarded as received.
    pub cache_fill: bool,
}

// === impl CacheRequest ===

impl<'a> CacheRequest<'a> {
    /// A request from its parts.
    pub fn new(
        distribution_id: &'a str,
        domain_name: &'a str,
        parts: &'a http::request::Parts,
        settings: &'a CacheSettings,
    ) -> Self {
        Self {
            distribution_id,
            domain_name,
            method: &parts.method,
            uri: &parts.uri,
            version: parts.version,
            headers: &parts.headers,
            settings,
        }
    }

    /// The URL path (empty paths read as `/`).
    pub fn path(&self) -> &'a str {
        let p = self.uri.path();
        if p.is_empty() {
            "/"
        } else {
            p
        }
    }
}

// === impl Conditional ===

impl Conditional {
    /// A plain pass-through fetch: forward the request as the viewer sent it.
    pub fn pass() -> Self {
        Self::default()
    }

    /// A cache-filling fetch without validators.
    pub fn fill() -> Self {
        Self {
            cache_fill: true,
            ..Self::default()
        }
    }

    /// Whether this is a revalidation (some validator is set).
    pub fn is_revalidation(&self) -> bool {
        self.if_none_match.is_some() || self.if_modified_since.is_some()
    }

    /// Prepares an origin request's headers: for a cache fill, removes the viewer's `Range`,
    /// `If-Range`, `If-Match`, `If-None-Match`, `If-Modified-Since` and `If-Unmodified-Since`
    /// (§4.2), then adds this fetch's validators ([`Conditional::apply`]).
    pub fn prepare(&self, headers: &mut HeaderMap) {
        if self.cache_fill {
            for h in [
                http::header::RANGE,
                http::header::IF_RANGE,
                http::header::IF_MATCH,
                IF_NONE_MATCH,
                IF_MODIFIED_SINCE,
                http::header::IF_UNMODIFIED_SINCE,
            ] {
                headers.remove(h);
            }
        }
        self.apply(headers);
    }

    /// Puts the validators into an origin request's headers.
    pub fn apply(&self, headers: &mut HeaderMap) {
        if let Some(v) = &self.if_none_match {
            headers.insert(IF_NONE_MATCH, v.clone());
        }
        if let Some(v) = &self.if_modified_since {
            headers.insert(IF_MODIFIED_SINCE, v.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_strips_viewer_conditionals_on_fills_only() {
        let mut h = crate::testutil::hmap(&[
            ("range", "bytes=0-1"),
            ("if-none-match", "\"viewer\""),
            ("if-modified-since", "Wed, 21 Oct 2015 07:28:00 GMT"),
            ("accept", "*/*"),
        ]);
        let pass = h.clone();
        let mut kept = pass.clone();
        Conditional::pass().prepare(&mut kept);
        assert_eq!(kept, pass);
        let c = Conditional {
            if_none_match: Some(HeaderValue::from_static("\"stored\"")),
            ..Conditional::fill()
        };
        c.prepare(&mut h);
        assert!(h.get("range").is_none() && h.get("if-modified-since").is_none());
        assert_eq!(h["if-none-match"], "\"stored\"");
        assert_eq!(h["accept"], "*/*");
        assert!(c.is_revalidation() && !Conditional::fill().is_revalidation());
    }
}
