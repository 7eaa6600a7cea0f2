//! Helpers shared by the unit tests.

use std::time::Duration;

use http::request::Parts;
use http::{HeaderMap, HeaderValue, Request};
use ledge_model::config::{CookiePreference, ForwardedValues};
use ledge_model::policy::{
    managed_cache_policy, CacheKeyParameters, CachePolicyConfig, CookiesConfig, HeadersConfig,
    QueryStringsConfig, CACHING_OPTIMIZED,
};

use crate::settings::{CacheSettings, TtlBounds};

pub(crate) fn optimized() -> CacheSettings {
    CacheSettings::from_policy(&managed_cache_policy(CACHING_OPTIMIZED).unwrap(), None)
}

pub(crate) fn ttl(min: u64, default: u64, max: u64) -> TtlBounds {
    TtlBounds {
        min: Duration::from_secs(min),
        default: Duration::from_secs(default),
        max: Duration::from_secs(max),
    }
}

pub(crate) fn legacy(fv: ForwardedValues, min: u64, default: u64, max: u64) -> CacheSettings {
    CacheSettings::from_legacy(&fv, ttl(min, default, max))
}

pub(crate) fn legacy_cookies(forward: &str, names: &[&str]) -> ForwardedValues {
    ForwardedValues {
        cookies: CookiePreference {
            forward: forward.into(),
            whitelisted_names: names.iter().map(|s| (*s).into()).collect(),
        },
        ..Default::default()
    }
}

pub(crate) fn policy(
    ttl: (u64, u64, u64),
    headers: &[&str],
    cookies: (&str, &[&str]),
    query: (&str, &[&str]),
) -> CacheSettings {
    let v = |l: &[&str]| l.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
    CacheSettings::from_policy(
        &CachePolicyConfig {
            name: "p".into(),
            comment: String::new(),
            min_ttl: ttl.0,
            default_ttl: ttl.1,
            max_ttl: ttl.2,
            parameters_in_cache_key_and_forwarded_to_origin: CacheKeyParameters {
                enable_accept_encoding_gzip: true,
                enable_accept_encoding_brotli: true,
                headers_config: HeadersConfig {
                    header_behavior: if headers.is_empty() {
                        "none"
                    } else {
                        "whitelist"
                    }
                    .into(),
                    headers: v(headers),
                },
                cookies_config: CookiesConfig {
                    cookie_behavior: cookies.0.into(),
                    cookies: v(cookies.1),
                },
                query_strings_config: QueryStringsConfig {
                    query_string_behavior: query.0.into(),
                    query_strings: v(query.1),
                },
            },
        },
        None,
    )
}

pub(crate) fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
    let mut b = Request::builder().method(method).uri(uri);
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    b.body(()).unwrap().into_parts().0
}

pub(crate) fn hmap(headers: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (n, v) in headers {
        h.append(
            http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}
