//! From the CloudFront API's form of a `DistributionConfig` to ledge's [`DistributionConfig`].
//!
//! The API form (botocore's JSON form, what the XML decodes to) wraps every list in
//! `{Quantity, Items}`, nests `CachedMethods` inside `AllowedMethods` and spells some numbers
//! as strings. The control plane stores that form verbatim, so what a client puts is what it
//! gets back, and derives the edge's form from it with [`distribution_config_from_api`].

use serde_json::{Map, Value};

use crate::config::DistributionConfig;

/// Converts an API-form `DistributionConfig` to ledge's form.
pub fn distribution_config_from_api(api: &Value) -> Result<DistributionConfig, serde_json::Error> {
    serde_json::from_value(unwrap_lists(api))
}

/// Converts any API-form value (a cache or origin request policy config, an invalidation's
/// `Paths`) to its ledge form, with the same rewriting as [`distribution_config_from_api`].
pub fn from_api<T: serde::de::DeserializeOwned>(api: &Value) -> Result<T, serde_json::Error> {
    serde_json::from_value(unwrap_lists(api))
}

/// Rewrites `{Quantity, Items}` wrappers to plain arrays, hoists `CachedMethods` next to
/// `AllowedMethods`, and turns `ResponseCode` strings into numbers.
fn unwrap_lists(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            if map.contains_key("Quantity") && map.keys().all(|k| k == "Quantity" || k == "Items") {
                return match map.get("Items") {
                    Some(Value::Array(items)) => {
                        Value::Array(items.iter().map(unwrap_lists).collect())
                    }
                    _ => Value::Array(Vec::new()),
                };
            }
            let mut out = Map::with_capacity(map.len());
            for (k, val) in map {
                match (k.as_str(), val) {
                    ("AllowedMethods", Value::Object(allowed)) => {
                        let items = allowed.get("Items").map(unwrap_lists);
                        out.insert(k.clone(), items.unwrap_or(Value::Array(Vec::new())));
                        if let Some(cached) = allowed.get("CachedMethods") {
                            out.insert("CachedMethods".into(), unwrap_lists(cached));
                        }
                    }
                    ("ResponseCode", Value::String(code)) => {
                        let n = code.trim().parse::<u16>().map_or(Value::Null, Value::from);
                        out.insert(k.clone(), n);
                    }
                    _ => {
                        out.insert(k.clone(), unwrap_lists(val));
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(unwrap_lists).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::{EventType, Method, ViewerProtocolPolicy};

    #[test]
    fn converts_the_api_form() {
        let api = json!({
            "CallerReference": "r",
            "Aliases": {"Quantity": 1, "Items": ["www.shop.test"]},
            "DefaultRootObject": "index.html",
            "Origins": {"Quantity": 1, "Items": [{
                "Id": "app", "DomainName": "app.test", "OriginPath": "/v2",
                "CustomHeaders": {"Quantity": 1, "Items": [{"HeaderName": "X-A", "HeaderValue": "1"}]},
                "CustomOriginConfig": {"HTTPPort": 8081, "HTTPSPort": 443,
                    "OriginProtocolPolicy": "http-only",
                    "OriginSslProtocols": {"Quantity": 1, "Items": ["TLSv1.2"]},
                    "OriginReadTimeout": 10, "OriginKeepaliveTimeout": 5},
                "ConnectionAttempts": 2, "ConnectionTimeout": 3,
                "OriginShield": {"Enabled": false}}]},
            "DefaultCacheBehavior": {
                "TargetOriginId": "app",
                "TrustedSigners": {"Enabled": false, "Quantity": 0},
                "ViewerProtocolPolicy": "redirect-to-https",
                "AllowedMethods": {"Quantity": 3, "Items": ["GET", "HEAD", "OPTIONS"],
                    "CachedMethods": {"Quantity": 2, "Items": ["GET", "HEAD"]}},
                "Compress": true,
                "LambdaFunctionAssociations": {"Quantity": 1, "Items": [{
                    "LambdaFunctionARN": "arn:aws:lambda:us-east-1:111122223333:function:hello:3",
                    "EventType": "viewer-request", "IncludeBody": false}]},
                "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6"},
            "CacheBehaviors": {"Quantity": 0},
            "CustomErrorResponses": {"Quantity": 1, "Items": [{"ErrorCode": 404,
                "ResponsePagePath": "/404.html", "ResponseCode": "200", "ErrorCachingMinTTL": 30}]},
            "Comment": "c", "Enabled": true,
            "ViewerCertificate": {"CloudFrontDefaultCertificate": true}
        });
        let c = distribution_config_from_api(&api).unwrap();
        assert_eq!(c.aliases, vec!["www.shop.test"]);
        assert_eq!(c.origins[0].custom_headers[0].header_value, "1");
        assert_eq!(
            c.origins[0].custom_config().origin_ssl_protocols,
            vec!["TLSv1.2"]
        );
        let b = &c.default_cache_behavior;
        assert_eq!(
            b.viewer_protocol_policy,
            ViewerProtocolPolicy::RedirectToHttps
        );
        assert_eq!(
            b.allowed_methods,
            vec![Method::Get, Method::Head, Method::Options]
        );
        assert_eq!(b.cached_methods, vec![Method::Get, Method::Head]);
        assert!(b.association(EventType::ViewerRequest).is_some());
        assert!(c.cache_behaviors.is_empty());
        assert_eq!(c.custom_error_responses[0].response_code, Some(200));
    }
}
