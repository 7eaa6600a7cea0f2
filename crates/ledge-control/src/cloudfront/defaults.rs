//! CloudFront's defaults for omitted members (`apis.md` §3.3), filled in before a config is
//! stored, so GetDistributionConfig returns what CloudFront would. Members the client sent
//! are never touched.

use serde_json::{json, Map, Value};

/// Inserts `value` under `key` when absent.
fn default(map: &mut Map<String, Value>, key: &str, value: Value) {
    if !map.contains_key(key) {
        map.insert(key.to_owned(), value);
    }
}

/// `{Quantity: 0}`.
fn empty_list() -> Value {
    json!({"Quantity": 0})
}

/// Items of a `{Quantity, Items}` member, mutably.
fn items_mut<'a>(map: &'a mut Map<String, Value>, key: &str) -> Vec<&'a mut Value> {
    map.get_mut(key)
        .and_then(|l| l.get_mut("Items"))
        .and_then(Value::as_array_mut)
        .map(|a| a.iter_mut().collect())
        .unwrap_or_default()
}

/// Fills the defaults of a `DistributionConfig`.
pub fn distribution(config: &mut Value) {
    let Some(map) = config.as_object_mut() else {
        return;
    };
    default(map, "Aliases", empty_list());
    default(map, "DefaultRootObject", json!(""));
    for origin in items_mut(map, "Origins") {
        if let Some(o) = origin.as_object_mut() {
            fill_origin(o);
        }
    }
    default(map, "OriginGroups", empty_list());
    if let Some(b) = map
        .get_mut("DefaultCacheBehavior")
        .and_then(Value::as_object_mut)
    {
        fill_behavior(b);
    }
    default(map, "CacheBehaviors", empty_list());
    for behavior in items_mut(map, "CacheBehaviors") {
        if let Some(b) = behavior.as_object_mut() {
            fill_behavior(b);
        }
    }
    default(map, "CustomErrorResponses", empty_list());
    for response in items_mut(map, "CustomErrorResponses") {
        if let Some(r) = response.as_object_mut() {
            default(r, "ErrorCachingMinTTL", json!(10));
        }
    }
    default(
        map,
        "Logging",
        json!({"Enabled": false, "IncludeCookies": false, "Bucket": "", "Prefix": ""}),
    );
    default(map, "PriceClass", json!("PriceClass_All"));
    default(
        map,
        "ViewerCertificate",
        json!({
            "CloudFrontDefaultCertificate": true,
            "MinimumProtocolVersion": "TLSv1",
            "CertificateSource": "cloudfront"
        }),
    );
    default(
        map,
        "Restrictions",
        json!({"GeoRestriction": {"RestrictionType": "none", "Quantity": 0}}),
    );
    default(map, "WebACLId", json!(""));
    default(map, "HttpVersion", json!("http2"));
    default(map, "IsIPV6Enabled", json!(false));
}

fn fill_origin(o: &mut Map<String, Value>) {
    default(o, "OriginPath", json!(""));
    default(o, "CustomHeaders", empty_list());
    if let Some(c) = o
        .get_mut("CustomOriginConfig")
        .and_then(Value::as_object_mut)
    {
        default(
            c,
            "OriginSslProtocols",
            json!({"Quantity": 1, "Items": ["TLSv1.2"]}),
        );
        default(c, "OriginReadTimeout", json!(30));
        default(c, "OriginKeepaliveTimeout", json!(5));
    }
    default(o, "ConnectionAttempts", json!(3));
    default(o, "ConnectionTimeout", json!(10));
    default(o, "OriginShield", json!({"Enabled": false}));
    default(o, "OriginAccessControlId", json!(""));
}

fn fill_behavior(b: &mut Map<String, Value>) {
    default(
        b,
        "TrustedSigners",
        json!({"Enabled": false, "Quantity": 0}),
    );
    default(
        b,
        "TrustedKeyGroups",
        json!({"Enabled": false, "Quantity": 0}),
    );
    let get_head = json!({"Quantity": 2, "Items": ["HEAD", "GET"]});
    default(
        b,
        "AllowedMethods",
        json!({"Quantity": 2, "Items": ["HEAD", "GET"], "CachedMethods": get_head}),
    );
    if let Some(a) = b.get_mut("AllowedMethods").and_then(Value::as_object_mut) {
        default(a, "CachedMethods", get_head);
    }
    default(b, "SmoothStreaming", json!(false));
    default(b, "Compress", json!(false));
    default(b, "LambdaFunctionAssociations", empty_list());
    default(b, "FunctionAssociations", empty_list());
    default(b, "FieldLevelEncryptionId", json!(""));
    if let Some(fv) = b.get_mut("ForwardedValues").and_then(Value::as_object_mut) {
        default(fv, "Headers", empty_list());
        default(fv, "QueryStringCacheKeys", empty_list());
        default(b, "MinTTL", json!(0));
        default(b, "DefaultTTL", json!(86_400));
        default(b, "MaxTTL", json!(31_536_000));
    }
}

/// Fills the defaults of a `CachePolicyConfig`: `DefaultTTL` max(86400, MinTTL), `MaxTTL`
/// max(31536000, DefaultTTL).
pub fn cache_policy(config: &mut Value) {
    let Some(map) = config.as_object_mut() else {
        return;
    };
    let min = map.get("MinTTL").and_then(Value::as_i64).unwrap_or(0);
    default(map, "DefaultTTL", json!(min.max(86_400)));
    let dflt = map.get("DefaultTTL").and_then(Value::as_i64).unwrap_or(0);
    default(map, "MaxTTL", json!(dflt.max(31_536_000)));
}
