//! Cache policies and origin request policies, with CloudFront's managed ones built in.
//!
//! A snapshot carries only custom policies; the managed ones are the same everywhere, so every
//! role finds them here by their fixed ids.

use serde::{Deserialize, Serialize};

/// Id of the managed `CachingOptimized` policy.
pub const CACHING_OPTIMIZED: &str = "658327ea-f89d-4fab-a63d-7e88639e58f6";
/// Id of the managed `CachingOptimizedForUncompressedObjects` policy.
pub const CACHING_OPTIMIZED_UNCOMPRESSED: &str = "b2884449-e4de-46a7-ac36-70bc7f1ddd6d";
/// Id of the managed `CachingDisabled` policy.
pub const CACHING_DISABLED: &str = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad";

/// A cache policy: TTL bounds and what goes into the cache key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CachePolicyConfig {
    /// Unique name in the account.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub comment: String,
    /// Seconds; the floor for every TTL.
    #[serde(rename = "MinTTL")]
    pub min_ttl: u64,
    /// Seconds; used when the origin sends no caching directive.
    #[serde(rename = "DefaultTTL")]
    pub default_ttl: u64,
    /// Seconds; the ceiling for every TTL.
    #[serde(rename = "MaxTTL")]
    pub max_ttl: u64,
    /// What goes into the cache key (and so reaches the origin).
    pub parameters_in_cache_key_and_forwarded_to_origin: CacheKeyParameters,
}

/// The cache-key half of a cache policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CacheKeyParameters {
    /// Normalize `Accept-Encoding` to gzip in the key (and allow gzip compression).
    pub enable_accept_encoding_gzip: bool,
    /// Normalize `Accept-Encoding` to br in the key (and allow brotli compression).
    #[serde(default)]
    pub enable_accept_encoding_brotli: bool,
    /// Headers in the key.
    #[serde(default)]
    pub headers_config: HeadersConfig,
    /// Cookies in the key.
    #[serde(default)]
    pub cookies_config: CookiesConfig,
    /// Query strings in the key.
    #[serde(default)]
    pub query_strings_config: QueryStringsConfig,
}

/// Headers of a cache or origin request policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HeadersConfig {
    /// `none`, `whitelist`; origin request policies also `allViewer`,
    /// `allViewerAndWhitelistCloudFront`, `allExcept`.
    #[serde(default = "none")]
    pub header_behavior: String,
    /// Header names for the behaviors that take a list.
    #[serde(default)]
    pub headers: Vec<String>,
}

/// Cookies of a cache or origin request policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CookiesConfig {
    /// `none`, `whitelist`, `allExcept` or `all`.
    #[serde(default = "none")]
    pub cookie_behavior: String,
    /// Cookie names for `whitelist` and `allExcept`.
    #[serde(default)]
    pub cookies: Vec<String>,
}

/// Query strings of a cache or origin request policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueryStringsConfig {
    /// `none`, `whitelist`, `allExcept` or `all`.
    #[serde(default = "none")]
    pub query_string_behavior: String,
    /// Query string names for `whitelist` and `allExcept`.
    #[serde(default)]
    pub query_strings: Vec<String>,
}

/// An origin request policy: what reaches the origin beyond the cache key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OriginRequestPolicyConfig {
    /// Unique name in the account.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub comment: String,
    /// Headers forwarded.
    pub headers_config: HeadersConfig,
    /// Cookies forwarded.
    pub cookies_config: CookiesConfig,
    /// Query strings forwarded.
    pub query_strings_config: QueryStringsConfig,
}

fn none() -> String {
    "none".into()
}

fn list(behavior: &str, names: &[&str]) -> (String, Vec<String>) {
    (
        behavior.to_string(),
        names.iter().map(|s| (*s).to_string()).collect(),
    )
}

fn managed(
    name: &str,
    ttl: (u64, u64, u64),
    gzip_br: (bool, bool),
    headers: (String, Vec<String>),
    cookies: &str,
    query: (String, Vec<String>),
) -> CachePolicyConfig {
    CachePolicyConfig {
        name: name.into(),
        comment: format!("Managed policy {name}"),
        min_ttl: ttl.0,
        default_ttl: ttl.1,
        max_ttl: ttl.2,
        parameters_in_cache_key_and_forwarded_to_origin: CacheKeyParameters {
            enable_accept_encoding_gzip: gzip_br.0,
            enable_accept_encoding_brotli: gzip_br.1,
            headers_config: HeadersConfig {
                header_behavior: headers.0,
                headers: headers.1,
            },
            cookies_config: CookiesConfig {
                cookie_behavior: cookies.into(),
                cookies: Vec::new(),
            },
            query_strings_config: QueryStringsConfig {
                query_string_behavior: query.0,
                query_strings: query.1,
            },
        },
    }
}

/// CloudFront's managed cache policies as `(id, config)`.
pub fn managed_cache_policies() -> Vec<(&'static str, CachePolicyConfig)> {
    let year = 31_536_000;
    let nothing = || list("none", &[]);
    vec![
        (
            CACHING_OPTIMIZED,
            managed(
                "CachingOptimized",
                (1, 86400, year),
                (true, true),
                nothing(),
                "none",
                nothing(),
            ),
        ),
        (
            CACHING_OPTIMIZED_UNCOMPRESSED,
            managed(
                "CachingOptimizedForUncompressedObjects",
                (1, 86400, year),
                (false, false),
                nothing(),
                "none",
                nothing(),
            ),
        ),
        (
            CACHING_DISABLED,
            managed(
                "CachingDisabled",
                (0, 0, 0),
                (false, false),
                nothing(),
                "none",
                nothing(),
            ),
        ),
        (
            "2e54312d-136d-493c-8eb9-b001f22f67d2",
            managed(
                "Amplify",
                (2, 2, 600),
                (true, true),
                list(
                    "whitelist",
                    &["Authorization", "CloudFront-Viewer-Country", "Host"],
                ),
                "all",
                list("all", &[]),
            ),
        ),
        (
            "08627262-05a9-4f76-9ded-b50ca2e3a84f",
            managed(
                "Elemental-MediaPackage",
                (0, 86400, year),
                (true, false),
                list("whitelist", &["Origin"]),
                "none",
                list("whitelist", &["aws.manifestfilter", "start", "end", "m"]),
            ),
        ),
        (
            "83da9c7e-98b4-4e11-a168-04f0df8e2c65",
            managed(
                "UseOriginCacheControlHeaders",
                (0, 0, year),
                (true, true),
                list("whitelist", &["Host"]),
                "all",
                nothing(),
            ),
        ),
        (
            "4cc15a8a-d715-48a4-82b8-cc0b614638fe",
            managed(
                "UseOriginCacheControlHeaders-QueryStrings",
                (0, 0, year),
                (true, true),
                list("whitelist", &["Host"]),
                "all",
                list("all", &[]),
            ),
        ),
    ]
}

/// The managed cache policy with this id, if it is one.
pub fn managed_cache_policy(id: &str) -> Option<CachePolicyConfig> {
    managed_cache_policies()
        .into_iter()
        .find(|(pid, _)| *pid == id)
        .map(|(_, c)| c)
}

fn orp(
    name: &str,
    headers: (String, Vec<String>),
    cookies: &str,
    query: &str,
) -> OriginRequestPolicyConfig {
    OriginRequestPolicyConfig {
        name: name.into(),
        comment: format!("Managed policy {name}"),
        headers_config: HeadersConfig {
            header_behavior: headers.0,
            headers: headers.1,
        },
        cookies_config: CookiesConfig {
            cookie_behavior: cookies.into(),
            cookies: Vec::new(),
        },
        query_strings_config: QueryStringsConfig {
            query_string_behavior: query.into(),
            query_strings: Vec::new(),
        },
    }
}

/// CloudFront's managed origin request policies as `(id, config)`.
pub fn managed_origin_request_policies() -> Vec<(&'static str, OriginRequestPolicyConfig)> {
    let cors_s3 = [
        "Origin",
        "Access-Control-Request-Headers",
        "Access-Control-Request-Method",
    ];
    let mut tailor: Vec<&str> = cors_s3.to_vec();
    tailor.extend(["User-Agent", "X-Forwarded-For"]);
    vec![
        (
            "216adef6-5c7f-47e4-b989-5492eafa07d3",
            orp("AllViewer", list("allViewer", &[]), "all", "all"),
        ),
        (
            "33f36d7e-f396-46d9-90e0-52428a34d9dc",
            orp(
                "AllViewerAndCloudFrontHeaders-2022-06",
                list(
                    "allViewerAndWhitelistCloudFront",
                    CLOUDFRONT_HEADERS_2022_06,
                ),
                "all",
                "all",
            ),
        ),
        (
            "b689b0a8-53d0-40ab-baf2-68738e2966ac",
            orp(
                "AllViewerExceptHostHeader",
                list("allExcept", &["Host"]),
                "all",
                "all",
            ),
        ),
        (
            "59781a5b-3903-41f3-afcb-af62929ccde1",
            orp(
                "CORS-CustomOrigin",
                list("whitelist", &["Origin"]),
                "none",
                "none",
            ),
        ),
        (
            "88a5eaf4-2fd4-4709-b370-b4c650ea3fcf",
            orp("CORS-S3Origin", list("whitelist", &cors_s3), "none", "none"),
        ),
        (
            "775133bc-15f2-49f9-abea-afb2e0bf67d2",
            orp(
                "Elemental-MediaTailor-PersonalizedManifests",
                list("whitelist", &tailor),
                "none",
                "all",
            ),
        ),
        (
            "acba4595-bd28-49b8-b9fe-13317c0390fa",
            orp(
                "UserAgentRefererHeaders",
                list("whitelist", &["User-Agent", "Referer"]),
                "none",
                "none",
            ),
        ),
    ]
}

/// The CloudFront headers the managed `AllViewerAndCloudFrontHeaders-2022-06` policy adds: those
/// released through June 2022, as AWS's page on the managed origin request policies lists them
/// (not the later header count and order, nor the JA3 and JA4 fingerprints).
const CLOUDFRONT_HEADERS_2022_06: &[&str] = &[
    "CloudFront-Forwarded-Proto",
    "CloudFront-Is-Android-Viewer",
    "CloudFront-Is-Desktop-Viewer",
    "CloudFront-Is-IOS-Viewer",
    "CloudFront-Is-Mobile-Viewer",
    "CloudFront-Is-SmartTV-Viewer",
    "CloudFront-Is-Tablet-Viewer",
    "CloudFront-Viewer-Address",
    "CloudFront-Viewer-ASN",
    "CloudFront-Viewer-City",
    "CloudFront-Viewer-Country",
    "CloudFront-Viewer-Country-Name",
    "CloudFront-Viewer-Country-Region",
    "CloudFront-Viewer-Country-Region-Name",
    "CloudFront-Viewer-Http-Version",
    "CloudFront-Viewer-Latitude",
    "CloudFront-Viewer-Longitude",
    "CloudFront-Viewer-Metro-Code",
    "CloudFront-Viewer-Postal-Code",
    "CloudFront-Viewer-Time-Zone",
    "CloudFront-Viewer-TLS",
];

/// The managed origin request policy with this id, if it is one.
pub fn managed_origin_request_policy(id: &str) -> Option<OriginRequestPolicyConfig> {
    managed_origin_request_policies()
        .into_iter()
        .find(|(pid, _)| *pid == id)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managed_policies_have_their_documented_settings() {
        let opt = managed_cache_policy(CACHING_OPTIMIZED).unwrap();
        assert_eq!(
            (opt.min_ttl, opt.default_ttl, opt.max_ttl),
            (1, 86400, 31_536_000)
        );
        assert!(
            opt.parameters_in_cache_key_and_forwarded_to_origin
                .enable_accept_encoding_brotli
        );
        let off = managed_cache_policy(CACHING_DISABLED).unwrap();
        assert_eq!((off.min_ttl, off.default_ttl, off.max_ttl), (0, 0, 0));
        assert!(managed_cache_policy("nope").is_none());
        let all = managed_origin_request_policy("216adef6-5c7f-47e4-b989-5492eafa07d3").unwrap();
        assert_eq!(all.headers_config.header_behavior, "allViewer");
        assert_eq!(managed_cache_policies().len(), 7);
        assert_eq!(managed_origin_request_policies().len(), 7);
    }
}
