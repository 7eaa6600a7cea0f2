//! [`CacheSettings`]: one behavior's caching rules, resolved once per config snapshot.
//!
//! The edge builds a `CacheSettings` for each cache behavior when a snapshot is loaded (from a
//! managed or custom cache policy plus an optional origin request policy, or from legacy
//! `ForwardedValues` and TTLs) and keeps it behind an `Arc`; the per-request path only reads it.

use std::time::Duration;

use http::HeaderName;
use ledge_model::config::ForwardedValues;
use ledge_model::policy::{
    managed_cache_policy, managed_origin_request_policy, CachePolicyConfig, CookiesConfig,
    HeadersConfig, OriginRequestPolicyConfig, QueryStringsConfig,
};
use ledge_model::{CacheBehavior, ConfigSnapshot, DistributionConfig, Method};

use crate::error::SettingsError;

/// CloudFront's default `ErrorCachingMinTTL` (§5.3).
pub const DEFAULT_ERROR_CACHING_MIN_TTL: Duration = Duration::from_secs(10);

/// Which names of a list (headers, cookies, query parameters) a rule selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameFilter {
    /// No names.
    None,
    /// Only the listed names (legacy cookie lists may use `*` and `?` wildcards).
    Only(Vec<String>),
    /// Every name but the listed ones.
    AllExcept(Vec<String>),
    /// Every name.
    All,
}

/// Min/Default/Max TTL of a behavior (cache policy or legacy fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtlBounds {
    /// The floor for every TTL.
    pub min: Duration,
    /// Used when the origin sends no caching directive.
    pub default: Duration,
    /// The ceiling for every header-derived TTL.
    pub max: Duration,
}

/// What the cache key is made of (§3.1–3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpec {
    /// Headers in the key, lower-case, sorted (so request order never matters).
    pub headers: Vec<HeaderName>,
    /// Cookies in the key.
    pub cookies: NameFilter,
    /// Query parameters in the key.
    pub query: NameFilter,
    /// `Accept-Encoding` normalized to gzip (§3.3).
    pub gzip: bool,
    /// `Accept-Encoding` normalized to br (§3.3).
    pub br: bool,
    /// Cookie names are glob patterns (`*`, `?`): legacy whitelists.
    pub cookie_wildcards: bool,
}

/// What reaches the origin beyond the key (origin request policy, or legacy forwarding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardSpec {
    /// Header rule of the origin request policy (`All` for `allViewer*`).
    pub headers: NameFilter,
    /// `allViewerAndWhitelistCloudFront`: the listed CloudFront-* headers on top of all viewer headers.
    pub cloudfront_headers: Vec<HeaderName>,
    /// Cookie rule.
    pub cookies: NameFilter,
    /// Query rule.
    pub query: NameFilter,
}

/// One behavior's caching rules, resolved (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSettings {
    /// TTL bounds.
    pub ttl: TtlBounds,
    /// Cache-key composition.
    pub key: KeySpec,
    /// Extra values sent to the origin (origin request policy), if any.
    pub forward: Option<ForwardSpec>,
    /// Legacy `ForwardedValues` mode (changes cookie, conditional and query rules, §3.4).
    pub legacy: bool,
    /// Legacy `Headers: ["*"]`: everything forwarded, nothing cached.
    pub forward_all_headers: bool,
    /// `OPTIONS` responses are cached (`CachedMethods` lists it).
    pub cache_options: bool,
    /// The behavior's `Compress` flag.
    pub compress: bool,
    /// `ErrorCachingMinTTL` per status from the distribution's `CustomErrorResponses`.
    pub error_ttls: Vec<(u16, Duration)>,
}

// === impl NameFilter ===

impl NameFilter {
    fn from_behavior(behavior: &str, names: &[String]) -> Self {
        match behavior {
            "whitelist" => Self::Only(names.to_vec()),
            "allExcept" => Self::AllExcept(names.to_vec()),
            "all" | "allViewer" | "allViewerAndWhitelistCloudFront" => Self::All,
            _ => Self::None,
        }
    }

    /// Whether `name` is selected; `ci` compares case-insensitively (header names),
    /// `glob` lets listed names use `*`/`?` wildcards.
    pub fn selects(&self, name: &str, ci: bool, glob: bool) -> bool {
        let eq = |pat: &String| {
            if glob {
                glob_match(pat.as_bytes(), name.as_bytes())
            } else if ci {
                pat.eq_ignore_ascii_case(name)
            } else {
                pat == name
            }
        };
        match self {
            Self::None => false,
            Self::All => true,
            Self::Only(list) => list.iter().any(eq),
            Self::AllExcept(list) => !list.iter().any(eq),
        }
    }

    /// Whether the filter selects anything at all.
    pub fn is_none(&self) -> bool {
        matches!(self, Self::None)
    }
}

/// Matches `name` against a pattern where `*` is any run and `?` one byte.
pub(crate) fn glob_match(pat: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pat.len() && (pat[p] == b'?' || pat[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pat.len() && pat[p] == b'*' {
            star = Some((p, n));
            p += 1;
        } else if let Some((sp, sn)) = star {
            p = sp + 1;
            n = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

// === impl CacheSettings ===

impl CacheSettings {
    /// Resolves a behavior of `dist` against the managed policies and those of `snapshot`.
    pub fn from_behavior(
        behavior: &CacheBehavior,
        dist: &DistributionConfig,
        snapshot: &ConfigSnapshot,
    ) -> Result<Self, SettingsError> {
        let mut s = if let Some(id) = &behavior.cache_policy_id {
            let policy = managed_cache_policy(id)
                .or_else(|| snapshot.cache_policy(id))
                .ok_or_else(|| SettingsError::UnknownCachePolicy(id.clone()))?;
            let orp = match &behavior.origin_request_policy_id {
                Some(id) => Some(
                    managed_origin_request_policy(id)
                        .or_else(|| snapshot.origin_request_policy(id))
                        .ok_or_else(|| SettingsError::UnknownOriginRequestPolicy(id.clone()))?,
                ),
                None => None,
            };
            Self::from_policy(&policy, orp.as_ref())
        } else {
            let fv = behavior.forwarded_values.clone().unwrap_or_default();
            let ttl = TtlBounds {
                min: secs(behavior.min_ttl.unwrap_or(0)),
                default: secs(behavior.default_ttl.unwrap_or(86_400)),
                max: secs(behavior.max_ttl.unwrap_or(31_536_000)),
            };
            Self::from_legacy(&fv, ttl)
        };
        s.cache_options = behavior.caches(Method::Options);
        s.compress = behavior.compress;
        if s.legacy && behavior.compress {
            // Legacy settings compress with gzip (§8.3), so the key carries gzip or not.
            s.key.gzip = true;
        }
        s.error_ttls = dist
            .custom_error_responses
            .iter()
            .map(|c| (c.error_code, secs(c.error_caching_min_ttl)))
            .collect();
        Ok(s)
    }

    /// Settings from a cache policy and an optional origin request policy.
    pub fn from_policy(
        policy: &CachePolicyConfig,
        orp: Option<&OriginRequestPolicyConfig>,
    ) -> Self {
        let p = &policy.parameters_in_cache_key_and_forwarded_to_origin;
        let headers = header_list(&p.headers_config);
        let ae_listed = headers.contains(&http::header::ACCEPT_ENCODING);
        let CookiesConfig {
            cookie_behavior,
            cookies,
        } = &p.cookies_config;
        let QueryStringsConfig {
            query_string_behavior,
            query_strings,
        } = &p.query_strings_config;
        Self {
            ttl: TtlBounds {
                min: secs(policy.min_ttl),
                default: secs(policy.default_ttl),
                max: secs(policy.max_ttl),
            },
            key: KeySpec {
                headers,
                cookies: NameFilter::from_behavior(cookie_behavior, cookies),
                query: NameFilter::from_behavior(query_string_behavior, query_strings),
                gzip: p.enable_accept_encoding_gzip && !ae_listed,
                br: p.enable_accept_encoding_brotli && !ae_listed,
                cookie_wildcards: false,
            },
            forward: orp.map(|o| ForwardSpec {
                headers: match o.headers_config.header_behavior.as_str() {
                    "allViewer" | "allViewerAndWhitelistCloudFront" => NameFilter::All,
                    b => NameFilter::from_behavior(b, &o.headers_config.headers),
                },
                cloudfront_headers: if o.headers_config.header_behavior
                    == "allViewerAndWhitelistCloudFront"
                {
                    header_names(&o.headers_config.headers)
                } else {
                    Vec::new()
                },
                cookies: NameFilter::from_behavior(
                    &o.cookies_config.cookie_behavior,
                    &o.cookies_config.cookies,
                ),
                query: NameFilter::from_behavior(
                    &o.query_strings_config.query_string_behavior,
                    &o.query_strings_config.query_strings,
                ),
            }),
            legacy: false,
            forward_all_headers: false,
            cache_options: false,
            compress: false,
            error_ttls: Vec::new(),
        }
    }

    /// Settings from legacy `ForwardedValues` and the behavior's legacy TTLs (§3.4).
    pub fn from_legacy(fv: &ForwardedValues, ttl: TtlBounds) -> Self {
        let all_headers = fv.headers.iter().any(|h| h == "*");
        let headers = if all_headers {
            Vec::new()
        } else {
            header_names(&fv.headers)
        };
        let query = match (fv.query_string, fv.query_string_cache_keys.is_empty()) {
            (false, _) => NameFilter::None,
            (true, true) => NameFilter::All,
            (true, false) => NameFilter::Only(fv.query_string_cache_keys.clone()),
        };
        let cookies = NameFilter::from_behavior(&fv.cookies.forward, &fv.cookies.whitelisted_names);
        Self {
            ttl,
            key: KeySpec {
                headers,
                cookies,
                query,
                gzip: false,
                br: false,
                cookie_wildcards: true,
            },
            forward: Some(ForwardSpec {
                headers: if all_headers {
                    NameFilter::All
                } else {
                    NameFilter::None
                },
                cloudfront_headers: Vec::new(),
                cookies: NameFilter::None,
                // Legacy: with QueryString=true every parameter reaches the origin.
                query: if fv.query_string {
                    NameFilter::All
                } else {
                    NameFilter::None
                },
            }),
            legacy: true,
            forward_all_headers: all_headers,
            cache_options: false,
            compress: false,
            error_ttls: Vec::new(),
        }
    }

    /// Caching is on: some TTL is above zero and the legacy `Headers: ["*"]` is not set (§5.1).
    pub fn caching_enabled(&self) -> bool {
        let all_zero =
            self.ttl.min.is_zero() && self.ttl.default.is_zero() && self.ttl.max.is_zero();
        !(self.forward_all_headers || all_zero)
    }

    /// Cookies reach the origin (key or origin request policy): collapsing is off and,
    /// in legacy mode, so are conditional requests (§3.4, §5.9).
    pub fn forwards_cookies(&self) -> bool {
        !self.key.cookies.is_none() || self.forward.as_ref().is_some_and(|f| !f.cookies.is_none())
    }

    /// `ErrorCachingMinTTL` for an error status (default 10 s).
    pub fn error_caching_min_ttl(&self, status: u16) -> Duration {
        self.error_ttls
            .iter()
            .find(|(s, _)| *s == status)
            .map(|(_, d)| *d)
            .unwrap_or(DEFAULT_ERROR_CACHING_MIN_TTL)
    }

    /// Whether the viewer's header `name` reaches the origin (key or origin request policy).
    pub fn forwards_header(&self, name: &HeaderName) -> bool {
        self.key.headers.contains(name)
            || self.forward.as_ref().is_some_and(|f| {
                f.headers.selects(name.as_str(), true, false) || f.cloudfront_headers.contains(name)
            })
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn header_list(h: &HeadersConfig) -> Vec<HeaderName> {
    if h.header_behavior == "whitelist" {
        header_names(&h.headers)
    } else {
        Vec::new()
    }
}

fn header_names(names: &[String]) -> Vec<HeaderName> {
    let mut v: Vec<HeaderName> = names
        .iter()
        .filter_map(|n| HeaderName::from_bytes(n.to_ascii_lowercase().as_bytes()).ok())
        .collect();
    v.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledge_model::policy::{CACHING_DISABLED, CACHING_OPTIMIZED};

    #[test]
    fn managed_policies_resolve() {
        let opt = managed_cache_policy(CACHING_OPTIMIZED).unwrap();
        let s = CacheSettings::from_policy(&opt, None);
        assert!(s.caching_enabled() && s.key.gzip && s.key.br);
        assert_eq!(s.ttl.min, Duration::from_secs(1));
        let off = managed_cache_policy(CACHING_DISABLED).unwrap();
        assert!(!CacheSettings::from_policy(&off, None).caching_enabled());
    }

    #[test]
    fn behaviors_resolve_against_the_snapshot() {
        let json = br#"{
            "Version": 3,
            "Distributions": [{"Id": "E1", "DomainName": "d1.ledge.localhost", "Config": {
                "Origins": [{"Id": "o", "DomainName": "127.0.0.1"}],
                "DefaultCacheBehavior": {"TargetOriginId": "o", "Compress": true,
                    "CachePolicyId": "custom-1",
                    "OriginRequestPolicyId": "216adef6-5c7f-47e4-b989-5492eafa07d3",
                    "CachedMethods": ["GET", "HEAD", "OPTIONS"]},
                "CacheBehaviors": [
                    {"PathPattern": "/api/*", "TargetOriginId": "o", "Compress": true,
                     "ForwardedValues": {"QueryString": true,
                        "Cookies": {"Forward": "whitelist", "WhitelistedNames": ["s_*"]}},
                     "MinTTL": 0, "DefaultTTL": 60, "MaxTTL": 600}],
                "CustomErrorResponses": [{"ErrorCode": 404, "ErrorCachingMinTTL": 30}],
                "Enabled": true}}],
            "CachePolicies": [{"Id": "custom-1", "Config": {"Name": "c", "MinTTL": 5,
                "DefaultTTL": 50, "MaxTTL": 500,
                "ParametersInCacheKeyAndForwardedToOrigin": {
                    "EnableAcceptEncodingGzip": true,
                    "HeadersConfig": {"HeaderBehavior": "whitelist", "Headers": ["X-Tenant"]},
                    "QueryStringsConfig": {"QueryStringBehavior": "allExcept",
                                           "QueryStrings": ["utm"]}}}}]
        }"#;
        let snap = ConfigSnapshot::from_json(json).unwrap();
        let dist = &snap.distributions[0].config;
        let s = CacheSettings::from_behavior(&dist.default_cache_behavior, dist, &snap).unwrap();
        assert_eq!(s.ttl.min, Duration::from_secs(5));
        assert!(s.key.gzip && !s.key.br && s.compress && s.cache_options);
        assert_eq!(s.key.headers, vec![HeaderName::from_static("x-tenant")]);
        assert_eq!(s.key.query, NameFilter::AllExcept(vec!["utm".into()]));
        assert_eq!(s.forward.as_ref().unwrap().headers, NameFilter::All);
        assert!(s.forwards_cookies(), "AllViewer forwards cookies");
        assert_eq!(s.error_caching_min_ttl(404), Duration::from_secs(30));
        let legacy = CacheSettings::from_behavior(&dist.cache_behaviors[0], dist, &snap).unwrap();
        assert!(legacy.legacy && legacy.key.cookie_wildcards);
        assert!(legacy.key.gzip, "legacy Compress normalizes to gzip");
        assert_eq!(legacy.ttl.default, Duration::from_secs(60));
        let mut unknown = dist.default_cache_behavior.clone();
        unknown.cache_policy_id = Some("nope".into());
        assert!(matches!(
            CacheSettings::from_behavior(&unknown, dist, &snap),
            Err(SettingsError::UnknownCachePolicy(id)) if id == "nope"
        ));
    }

    #[test]
    fn legacy_star_headers_disable_caching() {
        let fv = ForwardedValues {
            headers: vec!["*".into()],
            ..Default::default()
        };
        let ttl = TtlBounds {
            min: Duration::ZERO,
            default: Duration::from_secs(60),
            max: Duration::from_secs(600),
        };
        assert!(!CacheSettings::from_legacy(&fv, ttl).caching_enabled());
    }

    #[test]
    fn globs_and_error_ttls() {
        assert!(glob_match(b"userid_*", b"userid_42"));
        assert!(glob_match(b"a?c", b"abc"));
        assert!(!glob_match(b"a?c", b"abbc"));
        assert!(glob_match(b"*", b""));
        let mut s =
            CacheSettings::from_policy(&managed_cache_policy(CACHING_OPTIMIZED).unwrap(), None);
        assert_eq!(s.error_caching_min_ttl(404), Duration::from_secs(10));
        s.error_ttls.push((404, Duration::from_secs(30)));
        assert_eq!(s.error_caching_min_ttl(404), Duration::from_secs(30));
    }
}
