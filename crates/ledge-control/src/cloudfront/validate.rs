//! The checks CloudFront applies to a `DistributionConfig` (`apis.md` §3.7) that need no
//! store, and the Lambda@Edge association rules that need a function's configuration
//! (`lambda-edge.md` §4.4). The result names what the store must resolve: aliases, Lambda
//! versions, policy ids.

use std::collections::HashSet;

use ledge_model::lambda::{FunctionArn, Qualifier};
use serde_json::Value;

use super::CfError;
use crate::store::VersionRow;

/// What a valid config references.
#[derive(Debug, Default)]
pub struct Checked {
    /// Aliases, lower-cased.
    pub aliases: Vec<String>,
    /// Lambda@Edge associations, in config order.
    pub associations: Vec<Association>,
    /// Cache policy ids named by behaviors.
    pub cache_policies: Vec<String>,
    /// Origin request policy ids named by behaviors.
    pub origin_request_policies: Vec<String>,
}

/// One Lambda@Edge association.
#[derive(Debug, Clone)]
pub struct Association {
    /// The ARN as given.
    pub arn: String,
    /// The function name.
    pub function: String,
    /// The version number.
    pub version: i64,
    /// `viewer-request` …
    pub event_type: String,
}

/// Most aliases, origins, behaviors, origin groups, custom headers per distribution.
const MAX_ALIASES: usize = 100;
const MAX_ORIGINS: usize = 25;
const MAX_BEHAVIORS: usize = 25;
const MAX_ORIGIN_GROUPS: usize = 10;
const MAX_CUSTOM_HEADERS: usize = 10;
/// Most Lambda@Edge associations per distribution.
const MAX_LAMBDA: usize = 100;
/// Most forwarded headers / cookies / query string keys per behavior.
const MAX_FORWARDED: usize = 10;
/// Runtimes Lambda@Edge accepts (`lambda-edge.md` §4.5).
pub const EDGE_RUNTIMES: &[&str] = &[
    "nodejs18.x",
    "nodejs20.x",
    "nodejs22.x",
    "python3.9",
    "python3.10",
    "python3.11",
    "python3.12",
    "python3.13",
];

fn bad(code: &'static str, message: impl Into<String>) -> CfError {
    CfError::BadRequest(code, message.into())
}

fn invalid(message: impl Into<String>) -> CfError {
    CfError::invalid_argument(message)
}

/// The `Items` of a `{Quantity, Items}` member.
pub fn items<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(|l| l.get("Items"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn int_of(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
}

/// A DNS host name: labels of `[A-Za-z0-9-]`, not starting or ending with `-`.
fn is_host(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Checks a whole `DistributionConfig` (botocore form, before defaults are filled).
pub fn distribution(config: &Value, region: &str, account: &str) -> Result<Checked, CfError> {
    let mut checked = Checked::default();
    if config.get("Staging").and_then(Value::as_bool) == Some(true) {
        return Err(invalid(
            "Staging distributions are not supported by this CloudFront endpoint.",
        ));
    }
    if str_of(config, "Comment").chars().count() > 128 {
        return Err(invalid(
            "The parameter Comment is too long: it must be at most 128 characters.",
        ));
    }
    aliases(config, &mut checked)?;
    default_root_object(str_of(config, "DefaultRootObject"))?;
    let targets = origins(config)?;
    let mut lambda_count = 0;
    let behaviors = std::iter::once(config.get("DefaultCacheBehavior"))
        .flatten()
        .chain(items(config, "CacheBehaviors"));
    if items(config, "CacheBehaviors").len() > MAX_BEHAVIORS {
        return Err(bad(
            "TooManyCacheBehaviors",
            format!("Your request contains more than {MAX_BEHAVIORS} cache behaviors."),
        ));
    }
    for behavior in behaviors {
        cache_behavior(behavior, &targets, &mut checked)?;
        lambda_count += lambda_associations(behavior, region, account, &mut checked)?;
    }
    if lambda_count > MAX_LAMBDA {
        return Err(bad(
            "TooManyLambdaFunctionAssociations",
            format!("Your request contains more than {MAX_LAMBDA} Lambda function associations."),
        ));
    }
    custom_error_responses(config)?;
    viewer_certificate(config.get("ViewerCertificate"))?;
    Ok(checked)
}

fn aliases(config: &Value, checked: &mut Checked) -> Result<(), CfError> {
    let list = items(config, "Aliases");
    if list.len() > MAX_ALIASES {
        return Err(bad(
            "TooManyDistributionCNAMEs",
            format!("Your request contains more CNAMEs than are allowed per distribution ({MAX_ALIASES})."),
        ));
    }
    let mut seen = HashSet::new();
    for alias in list {
        let a = alias.as_str().unwrap_or_default();
        let host = a.strip_prefix("*.").unwrap_or(a);
        if !is_host(host) || a.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(invalid(format!(
                "The parameter CNAME contains {a}, which is not a valid lower-case domain name."
            )));
        }
        if !seen.insert(a.to_owned()) {
            return Err(invalid(format!("The parameter CNAME contains {a} twice.")));
        }
        checked.aliases.push(a.to_owned());
    }
    Ok(())
}

fn default_root_object(dro: &str) -> Result<(), CfError> {
    let ok_chars = dro
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.~!$&'()*+,;=:@/%".contains(c) || !c.is_ascii());
    if dro.starts_with('/') || dro.len() > 255 || !ok_chars {
        return Err(bad(
            "InvalidDefaultRootObject",
            "The specified default root object is invalid.",
        ));
    }
    Ok(())
}

fn port_ok(p: Option<i64>) -> bool {
    matches!(p, Some(80 | 443 | 1024..=65535))
}

/// Checks origins and origin groups; returns the ids a behavior may target.
fn origins(config: &Value) -> Result<HashSet<String>, CfError> {
    let list = items(config, "Origins");
    if list.is_empty() {
        return Err(invalid(
            "The parameter Origins must contain at least one origin.",
        ));
    }
    if list.len() > MAX_ORIGINS {
        return Err(bad(
            "TooManyOrigins",
            format!("You cannot create more than {MAX_ORIGINS} origins for a distribution."),
        ));
    }
    let mut ids = HashSet::new();
    for o in list {
        let id = str_of(o, "Id");
        if id.is_empty() || !ids.insert(id.to_owned()) {
            return Err(invalid(format!(
                "The parameter Origin Id must be unique and not empty: {id:?}."
            )));
        }
        let host = str_of(o, "DomainName");
        if !is_host(host) {
            return Err(invalid("The parameter origin name must be a domain name."));
        }
        let path = str_of(o, "OriginPath");
        if !path.is_empty()
            && (!path.starts_with('/') || path.ends_with('/') || path.contains("//"))
        {
            return Err(invalid(
                "The parameter OriginPath must begin with a / and must not end with a /.",
            ));
        }
        if items(o, "CustomHeaders").len() > MAX_CUSTOM_HEADERS {
            return Err(bad(
                "TooManyOriginCustomHeaders",
                format!("Your request contains more than {MAX_CUSTOM_HEADERS} custom headers for an origin."),
            ));
        }
        let kinds = ["S3OriginConfig", "CustomOriginConfig", "VpcOriginConfig"]
            .iter()
            .filter(|k| o.get(**k).is_some())
            .count();
        if kinds != 1 {
            return Err(invalid(format!(
                "Origin {id} must have exactly one of S3OriginConfig, CustomOriginConfig or VpcOriginConfig."
            )));
        }
        if let Some(c) = o.get("CustomOriginConfig") {
            if !port_ok(int_of(c, "HTTPPort")) || !port_ok(int_of(c, "HTTPSPort")) {
                return Err(invalid(
                    "The parameter HTTPPort/HTTPSPort must be 80, 443 or 1024-65535.",
                ));
            }
            if int_of(c, "OriginReadTimeout").is_some_and(|t| !(1..=60).contains(&t)) {
                return Err(bad(
                    "InvalidOriginReadTimeout",
                    "The read timeout specified for the origin is not valid (1-60 seconds).",
                ));
            }
            if int_of(c, "OriginKeepaliveTimeout").is_some_and(|t| !(1..=60).contains(&t)) {
                return Err(bad(
                    "InvalidOriginKeepaliveTimeout",
                    "The keep alive timeout specified for the origin is not valid (1-60 seconds).",
                ));
            }
        }
        if int_of(o, "ConnectionAttempts").is_some_and(|n| !(1..=3).contains(&n)) {
            return Err(invalid(
                "The parameter ConnectionAttempts must be between 1 and 3.",
            ));
        }
        if int_of(o, "ConnectionTimeout").is_some_and(|n| !(1..=10).contains(&n)) {
            return Err(invalid(
                "The parameter ConnectionTimeout must be between 1 and 10.",
            ));
        }
    }
    let groups = items(config, "OriginGroups");
    if groups.len() > MAX_ORIGIN_GROUPS {
        return Err(bad(
            "TooManyOriginGroupsPerDistribution",
            format!(
                "You cannot create more than {MAX_ORIGIN_GROUPS} origin groups for a distribution."
            ),
        ));
    }
    let origin_ids = ids.clone();
    for g in groups {
        let id = str_of(g, "Id");
        if id.is_empty() || !ids.insert(id.to_owned()) {
            return Err(invalid(format!(
                "The parameter OriginGroup Id must be unique among origins and origin groups: {id:?}."
            )));
        }
        let members = items(g, "Members");
        if members.len() != 2 {
            return Err(invalid("An origin group must have exactly two members."));
        }
        for m in members {
            let target = str_of(m, "OriginId");
            if !origin_ids.contains(target) {
                return Err(CfError::NotFound(
                    "NoSuchOrigin",
                    format!("One or more of your origins or origin groups do not exist: {target}."),
                ));
            }
        }
        let codes = g
            .get("FailoverCriteria")
            .map_or(&[][..], |f| items(f, "StatusCodes"));
        for c in codes {
            if !matches!(
                c.as_i64(),
                Some(400 | 403 | 404 | 416 | 500 | 502 | 503 | 504)
            ) {
                return Err(invalid(format!(
                    "The failover status code {c} is not allowed."
                )));
            }
        }
    }
    Ok(ids)
}

fn method_set(list: &[Value]) -> Option<Vec<&str>> {
    let mut m: Vec<&str> = list.iter().map(|v| v.as_str()).collect::<Option<_>>()?;
    m.sort_unstable();
    m.dedup();
    (m.len() == list.len()).then_some(m)
}

fn cache_behavior(
    b: &Value,
    targets: &HashSet<String>,
    checked: &mut Checked,
) -> Result<(), CfError> {
    if let Some(p) = b.get("PathPattern").and_then(Value::as_str) {
        let ok = !p.is_empty()
            && p.len() <= 255
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.*$/~\"'@:+&".contains(c));
        if !ok {
            return Err(invalid(format!(
                "The parameter PathPattern is invalid: {p}."
            )));
        }
    }
    let target = str_of(b, "TargetOriginId");
    if !targets.contains(target) {
        return Err(CfError::NotFound(
            "NoSuchOrigin",
            format!("One or more of your origins or origin groups do not exist: {target}."),
        ));
    }
    if let Some(allowed) = b.get("AllowedMethods") {
        let set = method_set(items(b, "AllowedMethods")).unwrap_or_default();
        let ok = [
            &["GET", "HEAD"][..],
            &["GET", "HEAD", "OPTIONS"][..],
            &["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"][..],
        ]
        .contains(&set.as_slice());
        let cached = allowed.get("CachedMethods").map(|c| {
            method_set(
                c.get("Items")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default(),
            )
        });
        let cached_ok = match cached {
            None => true,
            Some(Some(c)) => {
                (c == ["GET", "HEAD"] || c == ["GET", "HEAD", "OPTIONS"])
                    && c.iter().all(|m| set.contains(m))
            }
            Some(None) => false,
        };
        if !ok || !cached_ok {
            return Err(invalid(
                "The allowed or cached methods of a cache behavior are not one of the supported combinations.",
            ));
        }
    }
    let policy = b.get("CachePolicyId").and_then(Value::as_str);
    let forwarded = b.get("ForwardedValues");
    match (policy, forwarded) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "A cache behavior cannot have both a CachePolicyId and ForwardedValues.",
            ))
        }
        (None, None) => {
            return Err(invalid(
                "A cache behavior must have either a CachePolicyId or ForwardedValues.",
            ))
        }
        _ => {}
    }
    if let Some(p) = policy {
        checked.cache_policies.push(p.to_owned());
        if ["MinTTL", "DefaultTTL", "MaxTTL"]
            .iter()
            .any(|k| b.get(*k).is_some())
        {
            return Err(invalid(
                "The parameters MinTTL, DefaultTTL and MaxTTL cannot be used with a CachePolicyId.",
            ));
        }
    }
    if let Some(o) = b.get("OriginRequestPolicyId").and_then(Value::as_str) {
        if policy.is_none() {
            return Err(invalid(
                "An OriginRequestPolicyId can only be used together with a CachePolicyId.",
            ));
        }
        checked.origin_request_policies.push(o.to_owned());
    }
    if let Some(fv) = forwarded {
        let min = int_of(b, "MinTTL").unwrap_or(0);
        let dflt = int_of(b, "DefaultTTL").unwrap_or(86_400.max(min));
        let max = int_of(b, "MaxTTL").unwrap_or(31_536_000.max(dflt));
        if min < 0 || min > dflt || dflt > max {
            return Err(bad(
                "InvalidTTLOrder",
                "The TTL order specified in CacheBehavior is not valid.",
            ));
        }
        let headers = items(fv, "Headers");
        if headers.iter().any(|h| h.as_str() == Some("*")) && min != 0 {
            return Err(invalid(
                "The parameter MinTTL must be 0 when all headers (*) are forwarded.",
            ));
        }
        if headers.len() > MAX_FORWARDED {
            return Err(bad(
                "TooManyHeadersInForwardedValues",
                "Your request contains too many headers in forwarded values.",
            ));
        }
        let cookies = fv
            .get("Cookies")
            .map_or(&[][..], |c| items(c, "WhitelistedNames"));
        if cookies.len() > MAX_FORWARDED {
            return Err(bad(
                "TooManyCookieNamesInWhiteList",
                "Your request contains more cookie names in the whitelist than are allowed per cache behavior.",
            ));
        }
        if items(fv, "QueryStringCacheKeys").len() > MAX_FORWARDED {
            return Err(bad(
                "TooManyQueryStringParameters",
                "Your request contains too many query string parameters.",
            ));
        }
    }
    Ok(())
}

fn lambda_associations(
    b: &Value,
    region: &str,
    account: &str,
    checked: &mut Checked,
) -> Result<usize, CfError> {
    let lambdas = items(b, "LambdaFunctionAssociations");
    let functions = items(b, "FunctionAssociations");
    let mut events = HashSet::new();
    let invalid_assoc = |m: String| Err::<(), _>(bad("InvalidLambdaFunctionAssociation", m));
    for f in functions {
        let event = str_of(f, "EventType");
        let arn = str_of(f, "FunctionARN");
        let prefix = format!("arn:aws:cloudfront::{account}:function/");
        if !matches!(event, "viewer-request" | "viewer-response") || !arn.starts_with(&prefix) {
            return Err(bad(
                "InvalidFunctionAssociation",
                format!("The CloudFront function association is invalid: {arn} ({event})."),
            ));
        }
        events.insert(event.to_owned());
    }
    for a in lambdas {
        let arn = str_of(a, "LambdaFunctionARN");
        let event = str_of(a, "EventType");
        if !functions.is_empty() && event.starts_with("viewer-") {
            return Err(bad(
                "InvalidFunctionAssociation",
                format!("CloudFront Functions and Lambda@Edge functions cannot both be associated with viewer events of one cache behavior. ARN: {arn}"),
            ));
        }
        if !events.insert(event.to_owned()) {
            return Err(bad(
                "TooManyLambdaFunctionAssociations",
                format!("The event type of a function association must be unique in the cache behavior. Event type {event} cannot be associated with two functions"),
            ));
        }
        if a.get("IncludeBody").and_then(Value::as_bool) == Some(true)
            && !matches!(event, "viewer-request" | "origin-request")
        {
            invalid_assoc(format!(
                "The IncludeBody option can only be used with viewer-request or origin-request events. ARN: {arn}"
            ))?;
        }
        let parsed = FunctionArn::parse(arn);
        let version = match &parsed {
            Ok(FunctionArn {
                qualifier: Some(Qualifier::Version(n)),
                ..
            }) => i64::try_from(*n).unwrap_or(i64::MAX),
            _ => {
                invalid_assoc(format!(
                    "The function ARN must reference a specific function version. (The ARN must end with the version number.) ARN: {arn}"
                ))?;
                continue;
            }
        };
        let Ok(parsed) = parsed else { continue };
        if parsed.region != region {
            invalid_assoc(format!(
                "The function must be in region '{region}'. ARN: {arn}"
            ))?;
        }
        if parsed.account != account {
            invalid_assoc(format!("The function does not exist. ARN: {arn}"))?;
        }
        checked.associations.push(Association {
            arn: arn.to_owned(),
            function: parsed.name,
            version,
            event_type: event.to_owned(),
        });
    }
    Ok(lambdas.len())
}

fn custom_error_responses(config: &Value) -> Result<(), CfError> {
    const CODES: [i64; 11] = [400, 403, 404, 405, 414, 416, 500, 501, 502, 503, 504];
    for r in items(config, "CustomErrorResponses") {
        let code = int_of(r, "ErrorCode").unwrap_or_default();
        if !CODES.contains(&code) {
            return Err(bad(
                "InvalidErrorCode",
                format!("The error code {code} is not valid for a custom error response."),
            ));
        }
        let response_code = str_of(r, "ResponseCode");
        let page = str_of(r, "ResponsePagePath");
        if !response_code.is_empty() {
            let n: i64 = response_code.parse().unwrap_or(-1);
            if n != 200 && !CODES.contains(&n) {
                return Err(bad(
                    "InvalidResponseCode",
                    format!("The response code {response_code} is not valid."),
                ));
            }
        }
        if !page.is_empty() && !page.starts_with('/') {
            return Err(bad(
                "InvalidRelativePath",
                "The relative path for the custom error page must begin with a slash (/).",
            ));
        }
        if page.is_empty() != response_code.is_empty() {
            return Err(invalid(
                "ResponsePagePath and ResponseCode must be specified together.",
            ));
        }
    }
    Ok(())
}

fn viewer_certificate(vc: Option<&Value>) -> Result<(), CfError> {
    let Some(vc) = vc else { return Ok(()) };
    let default = vc
        .get("CloudFrontDefaultCertificate")
        .and_then(Value::as_bool)
        == Some(true);
    let custom = vc.get("ACMCertificateArn").is_some() || vc.get("IAMCertificateId").is_some();
    let invalid_vc = |m: &str| Err(bad("InvalidViewerCertificate", m));
    if default && custom {
        return invalid_vc("A viewer certificate cannot use both the CloudFront default certificate and a custom certificate.");
    }
    if !default && !custom {
        return invalid_vc("A viewer certificate must name the CloudFront default certificate or a custom certificate.");
    }
    if custom && vc.get("SSLSupportMethod").is_none() {
        return invalid_vc("SSLSupportMethod is required with a custom certificate.");
    }
    Ok(())
}

/// The association rules that need the function version's configuration.
pub fn lambda_version(a: &Association, row: &VersionRow) -> Result<(), CfError> {
    let arn = &a.arn;
    let err = |m: String| Err(bad("InvalidLambdaFunctionAssociation", m));
    let c = &row.config;
    if !EDGE_RUNTIMES.contains(&c.runtime.as_str()) {
        return err(format!(
            "The function has a runtime that is not supported by Lambda@Edge: {} Function: {arn} Supported runtimes: [{}]",
            c.runtime,
            EDGE_RUNTIMES.join(", ")
        ));
    }
    if !c.environment.is_empty() {
        return err(format!(
            "The function cannot have environment variables. Function: {arn}"
        ));
    }
    if c.architectures.iter().any(|x| x != "x86_64") {
        return err(format!(
            "The function must use the x86_64 architecture to be used with Lambda@Edge. Function: {arn}"
        ));
    }
    let viewer = a.event_type.starts_with("viewer-");
    let max_timeout = if viewer { 5 } else { 30 };
    if c.timeout > max_timeout {
        return err(format!(
            "The function timeout is larger than the maximum allowed for functions that are triggered by a CloudFront event: {} Max allowed: {max_timeout} Function: {arn}",
            c.timeout
        ));
    }
    if viewer && c.memory_size > 128 {
        return err(format!(
            "The function memory size is larger than the maximum allowed size for functions that are triggered by a CloudFront event: {} Max allowed: 128 Function: {arn}",
            c.memory_size
        ));
    }
    let max_code = if viewer { 1_048_576 } else { 52_428_800 };
    if row.code_size > max_code {
        return err(format!(
            "The function code size is larger than the maximum allowed size for functions that are triggered by a CloudFront event: {} Max allowed: {max_code} Function: {arn}",
            row.code_size
        ));
    }
    Ok(())
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
