//! A distribution's configuration, shaped after CloudFront's `DistributionConfig`.
//!
//! Member names are CloudFront's own (PascalCase). Where the CloudFront API wraps a list in
//! `{Quantity, Items}`, the JSON form here is a plain array: the XML layer of the control plane
//! converts. Every optional member has CloudFront's default, so a minimal JSON document is enough.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Everything CloudFront lets a user say about one distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DistributionConfig {
    /// Unique per account; identifies the create request.
    #[serde(default)]
    pub caller_reference: String,
    /// Extra host names (CNAMEs) the distribution answers to; `*.example.com` wildcards allowed.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Object served for a request to `/` (no leading slash), or empty.
    #[serde(default)]
    pub default_root_object: String,
    /// The origins requests can be sent to.
    pub origins: Vec<Origin>,
    /// Origin groups (stored and echoed; failover is not served yet).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub origin_groups: Vec<serde_json::Value>,
    /// The behavior for every path no ordered behavior matches.
    pub default_cache_behavior: CacheBehavior,
    /// Ordered behaviors; the first whose `PathPattern` matches wins.
    #[serde(default)]
    pub cache_behaviors: Vec<CacheBehavior>,
    /// Replacement pages and caching times for origin errors.
    #[serde(default)]
    pub custom_error_responses: Vec<CustomErrorResponse>,
    /// Free text, at most 128 characters.
    #[serde(default)]
    pub comment: String,
    /// A disabled distribution is not served.
    pub enabled: bool,
    /// `http1.1`, `http2`, `http3` or `http2and3`.
    #[serde(default = "default_http_version")]
    pub http_version: String,
    /// Stored and echoed; ledge has one price class.
    #[serde(default = "default_price_class")]
    pub price_class: String,
    /// Stored and echoed.
    #[serde(default, rename = "IsIPV6Enabled")]
    pub is_ipv6_enabled: bool,
}

/// One origin server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Origin {
    /// Unique in the distribution; behaviors name it in `TargetOriginId`.
    pub id: String,
    /// Host name or IP address, no scheme or path.
    pub domain_name: String,
    /// Prefix put before the request path: "" or "/dir/sub".
    #[serde(default)]
    pub origin_path: String,
    /// Headers added to every request sent to this origin.
    #[serde(default)]
    pub custom_headers: Vec<OriginCustomHeader>,
    /// How to reach a custom (HTTP) origin. Absent means an S3-style origin reached over HTTPS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_origin_config: Option<CustomOriginConfig>,
    /// Present for an S3 origin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_origin_config: Option<S3OriginConfig>,
    /// How many times to try to connect, 1 to 3.
    #[serde(default = "default_connection_attempts")]
    pub connection_attempts: u32,
    /// Seconds to wait for a connection, 1 to 10.
    #[serde(default = "default_connection_timeout")]
    pub connection_timeout: u64,
}

/// A header the edge adds to every request to an origin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OriginCustomHeader {
    /// Header name.
    pub header_name: String,
    /// Header value.
    pub header_value: String,
}

/// Connection settings of a custom origin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CustomOriginConfig {
    /// Port for HTTP, default 80.
    #[serde(rename = "HTTPPort", default = "default_http_port")]
    pub http_port: u16,
    /// Port for HTTPS, default 443.
    #[serde(rename = "HTTPSPort", default = "default_https_port")]
    pub https_port: u16,
    /// Which scheme to use towards the origin.
    #[serde(default)]
    pub origin_protocol_policy: OriginProtocolPolicy,
    /// TLS versions offered to the origin (stored; rustls offers TLS 1.2 and 1.3).
    #[serde(default = "default_ssl_protocols")]
    pub origin_ssl_protocols: Vec<String>,
    /// Seconds to wait for each response packet (the "response timeout"), default 30.
    #[serde(default = "default_read_timeout")]
    pub origin_read_timeout: u64,
    /// Seconds an idle pooled connection is kept, default 5.
    #[serde(default = "default_keepalive_timeout")]
    pub origin_keepalive_timeout: u64,
}

/// An S3 origin (ledge treats it as an HTTPS origin on port 443).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct S3OriginConfig {
    /// Legacy origin access identity, may be empty.
    #[serde(default)]
    pub origin_access_identity: String,
}

/// Scheme the edge uses towards a custom origin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum OriginProtocolPolicy {
    /// Always HTTP.
    #[default]
    #[serde(rename = "http-only")]
    HttpOnly,
    /// The scheme the viewer used.
    #[serde(rename = "match-viewer")]
    MatchViewer,
    /// Always HTTPS.
    #[serde(rename = "https-only")]
    HttpsOnly,
}

/// What the edge does with a request, for the paths its pattern matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CacheBehavior {
    /// Path pattern (`*` and `?` wildcards); absent on the default behavior.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_pattern: Option<String>,
    /// Id of the origin requests go to.
    pub target_origin_id: String,
    /// Which schemes viewers may use.
    #[serde(default)]
    pub viewer_protocol_policy: ViewerProtocolPolicy,
    /// Methods the edge accepts; others get 403.
    #[serde(default = "default_methods")]
    pub allowed_methods: Vec<Method>,
    /// Methods whose responses are cached (GET and HEAD, optionally OPTIONS).
    #[serde(default = "default_methods")]
    pub cached_methods: Vec<Method>,
    /// Compress eligible responses when the viewer accepts it.
    #[serde(default)]
    pub compress: bool,
    /// Lambda@Edge functions run at this behavior's trigger points.
    #[serde(default)]
    pub lambda_function_associations: Vec<LambdaFunctionAssociation>,
    /// Cache policy id (managed or custom); exclusive with `ForwardedValues`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_policy_id: Option<String>,
    /// Origin request policy id; only together with a cache policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_request_policy_id: Option<String>,
    /// Legacy cache key and forwarding settings; used when there is no cache policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarded_values: Option<ForwardedValues>,
    /// Legacy minimum TTL in seconds (only with `ForwardedValues`), default 0.
    #[serde(rename = "MinTTL", default, skip_serializing_if = "Option::is_none")]
    pub min_ttl: Option<u64>,
    /// Legacy default TTL in seconds, default 86400.
    #[serde(
        rename = "DefaultTTL",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub default_ttl: Option<u64>,
    /// Legacy maximum TTL in seconds, default 31536000.
    #[serde(rename = "MaxTTL", default, skip_serializing_if = "Option::is_none")]
    pub max_ttl: Option<u64>,
}

/// Which schemes a behavior serves viewers on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ViewerProtocolPolicy {
    /// HTTP and HTTPS.
    #[default]
    #[serde(rename = "allow-all")]
    AllowAll,
    /// HTTPS only; HTTP gets 403.
    #[serde(rename = "https-only")]
    HttpsOnly,
    /// HTTP gets a 301 to the HTTPS URL.
    #[serde(rename = "redirect-to-https")]
    RedirectToHttps,
}

/// HTTP methods CloudFront knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[allow(missing_docs)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Options,
    Delete,
}

/// A Lambda function version attached to a trigger point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LambdaFunctionAssociation {
    /// Qualified ARN of a numbered version.
    #[serde(rename = "LambdaFunctionARN")]
    pub lambda_function_arn: String,
    /// The trigger point.
    pub event_type: EventType,
    /// Whether the request body is given to the function (request events only).
    #[serde(default)]
    pub include_body: bool,
}

/// The four Lambda@Edge trigger points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    /// After the edge receives a viewer's request, before the cache.
    #[serde(rename = "viewer-request")]
    ViewerRequest,
    /// On a cache miss, before the request goes to the origin.
    #[serde(rename = "origin-request")]
    OriginRequest,
    /// After the origin answers, before the response is cached.
    #[serde(rename = "origin-response")]
    OriginResponse,
    /// Before the response goes back to the viewer.
    #[serde(rename = "viewer-response")]
    ViewerResponse,
}

/// Legacy cache key settings (`ForwardedValues`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ForwardedValues {
    /// Forward (and key on) the query string.
    #[serde(default)]
    pub query_string: bool,
    /// Cookies to forward.
    #[serde(default)]
    pub cookies: CookiePreference,
    /// Headers to forward and key on; `*` alone means all (and no caching).
    #[serde(default)]
    pub headers: Vec<String>,
    /// With `QueryString`, only these keys are in the cache key (empty: all).
    #[serde(default)]
    pub query_string_cache_keys: Vec<String>,
}

/// Legacy cookie forwarding.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CookiePreference {
    /// `none`, `whitelist` or `all`.
    #[serde(default = "default_forward")]
    pub forward: String,
    /// Cookie names when `Forward` is `whitelist`.
    #[serde(default)]
    pub whitelisted_names: Vec<String>,
}

/// What the edge serves in place of an origin error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CustomErrorResponse {
    /// Origin status this applies to.
    pub error_code: u16,
    /// Path of the replacement page, fetched through the distribution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_page_path: Option<String>,
    /// Status to give the viewer instead of `ErrorCode`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_code: Option<u16>,
    /// Seconds the error is cached, default 10.
    #[serde(rename = "ErrorCachingMinTTL", default = "default_error_ttl")]
    pub error_caching_min_ttl: u64,
}

// === impl DistributionConfig ===

impl DistributionConfig {
    /// The origin with this id, if any.
    pub fn origin(&self, id: &str) -> Option<&Origin> {
        self.origins.iter().find(|o| o.id == id)
    }

    /// All behaviors, ordered ones first, then the default.
    pub fn behaviors(&self) -> impl Iterator<Item = &CacheBehavior> {
        self.cache_behaviors
            .iter()
            .chain(std::iter::once(&self.default_cache_behavior))
    }

    /// The custom error response configured for this status, if any.
    pub fn custom_error_response(&self, status: u16) -> Option<&CustomErrorResponse> {
        self.custom_error_responses
            .iter()
            .find(|c| c.error_code == status)
    }
}

// === impl Origin ===

impl Origin {
    /// The connection timeout as a duration.
    pub fn connection_timeout(&self) -> Duration {
        Duration::from_secs(self.connection_timeout)
    }

    /// The custom origin settings, or those CloudFront uses for an S3 origin.
    pub fn custom_config(&self) -> CustomOriginConfig {
        self.custom_origin_config
            .clone()
            .unwrap_or_else(|| CustomOriginConfig {
                origin_protocol_policy: OriginProtocolPolicy::HttpsOnly,
                ..CustomOriginConfig::default()
            })
    }
}

impl Default for CustomOriginConfig {
    fn default() -> Self {
        Self {
            http_port: default_http_port(),
            https_port: default_https_port(),
            origin_protocol_policy: OriginProtocolPolicy::HttpOnly,
            origin_ssl_protocols: default_ssl_protocols(),
            origin_read_timeout: default_read_timeout(),
            origin_keepalive_timeout: default_keepalive_timeout(),
        }
    }
}

// === impl CacheBehavior ===

impl CacheBehavior {
    /// Whether viewers may use this method on this behavior.
    pub fn allows(&self, method: Method) -> bool {
        self.allowed_methods.contains(&method)
    }

    /// Whether responses to this method are cached.
    pub fn caches(&self, method: Method) -> bool {
        self.cached_methods.contains(&method)
    }

    /// The function associated with a trigger point, if any.
    pub fn association(&self, event: EventType) -> Option<&LambdaFunctionAssociation> {
        self.lambda_function_associations
            .iter()
            .find(|a| a.event_type == event)
    }
}

// === impl Method ===

impl Method {
    /// Parses an HTTP method name; `None` for methods CloudFront does not know.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "GET" => Self::Get,
            "HEAD" => Self::Head,
            "POST" => Self::Post,
            "PUT" => Self::Put,
            "PATCH" => Self::Patch,
            "OPTIONS" => Self::Options,
            "DELETE" => Self::Delete,
            _ => return None,
        })
    }

    /// The method's name as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Options => "OPTIONS",
            Self::Delete => "DELETE",
        }
    }
}

// === impl EventType ===

impl EventType {
    /// The name CloudFront uses (`viewer-request` …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ViewerRequest => "viewer-request",
            Self::OriginRequest => "origin-request",
            Self::OriginResponse => "origin-response",
            Self::ViewerResponse => "viewer-response",
        }
    }

    /// Parses CloudFront's name of a trigger point.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "viewer-request" => Self::ViewerRequest,
            "origin-request" => Self::OriginRequest,
            "origin-response" => Self::OriginResponse,
            "viewer-response" => Self::ViewerResponse,
            _ => return None,
        })
    }

    /// Viewer-facing triggers have the tighter limits (5 s, 128 MB, 1 MB package).
    pub fn is_viewer(self) -> bool {
        matches!(self, Self::ViewerRequest | Self::ViewerResponse)
    }

    /// Request triggers may receive the body (`IncludeBody`).
    pub fn is_request(self) -> bool {
        matches!(self, Self::ViewerRequest | Self::OriginRequest)
    }
}

fn default_http_version() -> String {
    "http2".into()
}
fn default_price_class() -> String {
    "PriceClass_All".into()
}
fn default_connection_attempts() -> u32 {
    3
}
fn default_connection_timeout() -> u64 {
    10
}
fn default_http_port() -> u16 {
    80
}
fn default_https_port() -> u16 {
    443
}
fn default_ssl_protocols() -> Vec<String> {
    vec!["TLSv1.2".into()]
}
fn default_read_timeout() -> u64 {
    30
}
fn default_keepalive_timeout() -> u64 {
    5
}
fn default_methods() -> Vec<Method> {
    vec![Method::Get, Method::Head]
}
fn default_forward() -> String {
    "none".into()
}
fn default_error_ttl() -> u64 {
    10
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_config_gets_cloudfront_defaults() {
        let json = r#"{
            "Origins": [{"Id": "o", "DomainName": "127.0.0.1",
                         "CustomOriginConfig": {"HTTPPort": 8081}}],
            "DefaultCacheBehavior": {"TargetOriginId": "o"},
            "Enabled": true
        }"#;
        let c: DistributionConfig = serde_json::from_str(json).unwrap();
        let o = &c.origins[0];
        assert_eq!(o.connection_attempts, 3);
        assert_eq!(o.connection_timeout, 10);
        let co = o.custom_config();
        assert_eq!((co.http_port, co.https_port), (8081, 443));
        assert_eq!(co.origin_read_timeout, 30);
        assert_eq!(co.origin_keepalive_timeout, 5);
        let b = &c.default_cache_behavior;
        assert_eq!(b.allowed_methods, vec![Method::Get, Method::Head]);
        assert_eq!(b.viewer_protocol_policy, ViewerProtocolPolicy::AllowAll);
        assert!(!b.compress);
        assert_eq!(c.http_version, "http2");
    }

    #[test]
    fn round_trips_through_json() {
        let json = r#"{
            "CallerReference": "r1", "Aliases": ["www.shop.test", "*.img.test"],
            "DefaultRootObject": "index.html",
            "Origins": [{"Id": "app", "DomainName": "app.test", "OriginPath": "/v2",
                "CustomHeaders": [{"HeaderName": "X-From-Edge", "HeaderValue": "ledge"}],
                "CustomOriginConfig": {"HTTPPort": 8081, "HTTPSPort": 8443,
                   "OriginProtocolPolicy": "match-viewer", "OriginReadTimeout": 10}}],
            "DefaultCacheBehavior": {"TargetOriginId": "app",
                "ViewerProtocolPolicy": "redirect-to-https",
                "AllowedMethods": ["GET", "HEAD", "OPTIONS"],
                "Compress": true,
                "LambdaFunctionAssociations": [{"LambdaFunctionARN":
                    "arn:aws:lambda:us-east-1:111122223333:function:hello:3",
                    "EventType": "viewer-request", "IncludeBody": true}],
                "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6"},
            "CacheBehaviors": [{"PathPattern": "/api/*", "TargetOriginId": "app",
                "ForwardedValues": {"QueryString": true, "Headers": ["Authorization"]},
                "MinTTL": 0, "DefaultTTL": 60, "MaxTTL": 600}],
            "CustomErrorResponses": [{"ErrorCode": 404, "ResponsePagePath": "/404.html",
                "ResponseCode": 404, "ErrorCachingMinTTL": 30}],
            "Comment": "c", "Enabled": true
        }"#;
        let c: DistributionConfig = serde_json::from_str(json).unwrap();
        let again: DistributionConfig =
            serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(c, again);
        let b = &c.default_cache_behavior;
        assert_eq!(
            b.association(EventType::ViewerRequest)
                .map(|a| a.include_body),
            Some(true)
        );
        assert!(b.allows(Method::Options) && !b.caches(Method::Options));
        assert_eq!(c.behaviors().count(), 2);
        assert_eq!(
            c.custom_error_response(404)
                .map(|e| e.error_caching_min_ttl),
            Some(30)
        );
    }

    #[test]
    fn names_parse_back() {
        for m in ["GET", "HEAD", "POST", "PUT", "PATCH", "OPTIONS", "DELETE"] {
            assert_eq!(Method::parse(m).map(Method::as_str), Some(m));
        }
        for e in [
            "viewer-request",
            "origin-request",
            "origin-response",
            "viewer-response",
        ] {
            assert_eq!(EventType::parse(e).map(EventType::as_str), Some(e));
        }
        assert!(EventType::ViewerResponse.is_viewer() && !EventType::OriginRequest.is_viewer());
        assert!(EventType::OriginRequest.is_request() && !EventType::OriginResponse.is_request());
    }
}
