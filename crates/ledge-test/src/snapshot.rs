//! Config snapshots as JSON values, easy to tweak in a test with `value["…"] = json!(…)`.

use serde_json::{json, Value};

/// Managed `CachingOptimized`.
pub const CACHING_OPTIMIZED: &str = "658327ea-f89d-4fab-a63d-7e88639e58f6";
/// Managed `CachingDisabled`.
pub const CACHING_DISABLED: &str = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad";

/// A distribution with one custom HTTP origin `o` on `127.0.0.1:port` and a default
/// behavior on CachingOptimized allowing every method.
pub fn distribution(id: &str, domain: &str, port: u16) -> Value {
    json!({
        "Id": id,
        "DomainName": domain,
        "Config": {
            "Origins": [{
                "Id": "o",
                "DomainName": "127.0.0.1",
                "ConnectionAttempts": 1,
                "ConnectionTimeout": 2,
                "CustomOriginConfig": {"HTTPPort": port, "OriginProtocolPolicy": "http-only",
                                       "OriginReadTimeout": 2}
            }],
            "DefaultCacheBehavior": {
                "TargetOriginId": "o",
                "CachePolicyId": CACHING_OPTIMIZED,
                "AllowedMethods": ["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"]
            },
            "Enabled": true
        }
    })
}

/// A snapshot of these distributions at `version`.
pub fn with(version: u64, distributions: Vec<Value>) -> Value {
    json!({"Version": version, "Distributions": distributions})
}

/// A snapshot with one [`distribution`], version 1.
pub fn single(id: &str, domain: &str, port: u16) -> Value {
    with(1, vec![distribution(id, domain, port)])
}
