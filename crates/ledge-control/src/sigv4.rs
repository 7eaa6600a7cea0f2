//! AWS Signature Version 4 verification (header and presigned forms) and presigning.
//!
//! The canonical request is built here from the request exactly as received (raw path and
//! query), because a server must reproduce what the client signed rather than what a client
//! library would send; the key derivation and HMAC come from the `aws-sigv4` crate.
//!
//! # Design
//! Verification follows the order of the reference (`apis.md` §1.9): missing credentials,
//! malformed authorization, expired or skewed timestamp, unknown key, then signature mismatch.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// SHA-256 of the empty string, the payload hash of a bodiless request.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const UNSIGNED: &str = "UNSIGNED-PAYLOAD";

/// Characters left literal by SigV4 encoding: `A-Z a-z 0-9 - _ . ~`.
const STRICT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// As [`STRICT`], keeping `/` literal too (for paths).
const PATH: &AsciiSet = &STRICT.remove(b'/');

/// A root key pair.
#[derive(Clone)]
pub struct Credentials {
    /// The access key id (`AKID...`).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// The parts of a request that a signature covers, as received on the wire.
#[derive(Debug)]
pub struct SignedRequest<'a> {
    /// Upper-case HTTP method.
    pub method: &'a str,
    /// Raw path, still percent-encoded.
    pub path: &'a str,
    /// Raw query string (without `?`), possibly empty.
    pub query: &'a str,
    /// Headers with lower-case names, in received order.
    pub headers: Vec<(String, String)>,
    /// The body as received.
    pub body: &'a [u8],
}

/// What a successful verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The region of the credential scope.
    pub region: String,
    /// The service of the credential scope.
    pub service: String,
}

/// Server-side verification settings.
#[derive(Debug, Clone)]
pub struct Verifier {
    /// The only key pair ledge accepts.
    pub credentials: Credentials,
    /// How far a request's timestamp may be from the server clock.
    pub max_skew: Duration,
}

/// The parsed signature parameters, from either form.
struct Params {
    access_key: String,
    date: String,
    region: String,
    service: String,
    signed_headers: String,
    signature: String,
    timestamp: String,
    expires: Option<u64>,
    security_token: bool,
    presigned: bool,
}

// === impl Verifier ===

impl Verifier {
    /// Checks the request's signature for `expected_service` at time `now`.
    pub fn verify(
        &self,
        req: &SignedRequest<'_>,
        expected_service: &str,
        now: SystemTime,
    ) -> Result<Verified, ApiError> {
        let params = parse_params(req)?;
        let signed_at = parse_amz_date(&params.timestamp).ok_or_else(|| {
            ApiError::IncompleteSignature(format!(
                "Date must be in ISO-8601 'basic format'. Got '{}'.",
                params.timestamp
            ))
        })?;
        self.check_time(&params, signed_at, now)?;
        if params.access_key != self.credentials.access_key_id || params.security_token {
            return Err(ApiError::UnrecognizedClient);
        }
        if !params.timestamp.starts_with(&params.date) {
            return Err(ApiError::InvalidSignature(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{}'.",
                params.date,
                params.timestamp.get(..8).unwrap_or_default(),
                params.timestamp
            )));
        }
        if params.service != expected_service {
            return Err(ApiError::InvalidSignature(format!(
                "Credential should be scoped to correct service: '{expected_service}'. "
            )));
        }
        let signed: Vec<&str> = params.signed_headers.split(';').collect();
        if !signed.contains(&"host") {
            return Err(ApiError::InvalidSignature(
                "'Host' must be a 'SignedHeader' in the AWS Authorization.".into(),
            ));
        }
        if !params.presigned {
            // Headers the server relies on must be covered by the signature.
            for (name, shown) in [
                ("x-amz-date", "X-Amz-Date"),
                ("x-amz-content-sha256", "X-Amz-Content-Sha256"),
            ] {
                if header(req, name).is_some() && !signed.contains(&name) {
                    return Err(ApiError::InvalidSignature(format!(
                        "'{shown}' must be a 'SignedHeader' in the AWS Authorization."
                    )));
                }
            }
        }
        let payload_hash = payload_hash(req)?;
        let canonical = canonical_request(req, &params, &signed, &payload_hash)?;
        let scope = format!(
            "{}/{}/{}/aws4_request",
            params.date, params.region, params.service
        );
        let string_to_sign = string_to_sign(&params.timestamp, &scope, &canonical);
        let expected = sign(
            &self.credentials.secret_access_key,
            signed_at,
            &params.region,
            &params.service,
            &string_to_sign,
        );
        if !constant_time_eq(expected.as_bytes(), params.signature.as_bytes()) {
            return Err(ApiError::InvalidSignature(format!(
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.\n\nThe Canonical String for this request should have been\n'{canonical}'\n\nThe String-to-Sign should have been\n'{string_to_sign}'\n"
            )));
        }
        Ok(Verified {
            region: params.region,
            service: params.service,
        })
    }

    fn check_time(
        &self,
        params: &Params,
        signed_at: SystemTime,
        now: SystemTime,
    ) -> Result<(), ApiError> {
        let skew = self.max_skew;
        let now_s = format_amz_date(now);
        if let Some(expires) = params.expires {
            let not_before = signed_at
                .checked_sub(skew)
                .unwrap_or(SystemTime::UNIX_EPOCH);
            let end = signed_at + Duration::from_secs(expires);
            if now < not_before {
                return Err(ApiError::InvalidSignature(format!(
                    "Signature not yet current: {} is still later than {}",
                    params.timestamp,
                    format_amz_date(now + skew)
                )));
            }
            if now >= end {
                return Err(ApiError::InvalidSignature("Request has expired".into()));
            }
            return Ok(());
        }
        let minutes = skew.as_secs() / 60;
        if now > signed_at + skew {
            return Err(ApiError::InvalidSignature(format!(
                "Signature expired: {} is now earlier than {} ({now_s} - {minutes} min.)",
                params.timestamp,
                format_amz_date(now - skew)
            )));
        }
        if signed_at > now + skew {
            return Err(ApiError::InvalidSignature(format!(
                "Signature not yet current: {} is still later than {} ({now_s} + {minutes} min.)",
                params.timestamp,
                format_amz_date(now + skew)
            )));
        }
        Ok(())
    }
}

fn header<'r>(req: &'r SignedRequest<'_>, name: &str) -> Option<&'r str> {
    req.headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Decoded query parameters, in order.
fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|item| !item.is_empty())
        .map(|item| {
            let (name, value) = item.split_once('=').unwrap_or((item, ""));
            (decode(name), decode(value))
        })
        .collect()
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

fn parse_params(req: &SignedRequest<'_>) -> Result<Params, ApiError> {
    let query = query_pairs(req.query);
    let q = |name: &str| {
        query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    if let Some(auth) = header(req, "authorization") {
        let rest = auth.trim_start().strip_prefix(ALGORITHM).ok_or_else(|| {
            ApiError::IncompleteSignature(format!(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Unsupported algorithm in: '{auth}'"
            ))
        })?;
        let mut credential = None;
        let mut signed_headers = None;
        let mut signature = None;
        for part in rest.split(',') {
            let Some((k, v)) = part.split_once('=') else {
                continue;
            };
            match k.trim() {
                "Credential" => credential = Some(v.trim().to_owned()),
                "SignedHeaders" => signed_headers = Some(v.trim().to_owned()),
                "Signature" => signature = Some(v.trim().to_owned()),
                _ => {}
            }
        }
        let missing = |what: &str| {
            ApiError::IncompleteSignature(format!(
                "Authorization header requires '{what}' parameter. Authorization={auth}"
            ))
        };
        let credential = credential.ok_or_else(|| missing("Credential"))?;
        let signed_headers = signed_headers.ok_or_else(|| missing("SignedHeaders"))?;
        let signature = signature.ok_or_else(|| missing("Signature"))?;
        let timestamp = header(req, "x-amz-date")
            .map(str::to_owned)
            .or_else(|| header(req, "date").and_then(rfc1123_to_amz))
            .ok_or_else(|| {
                ApiError::IncompleteSignature(
                    "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
                        .into(),
                )
            })?;
        let (access_key, date, region, service) = parse_credential(&credential)?;
        Ok(Params {
            access_key,
            date,
            region,
            service,
            signed_headers,
            signature,
            timestamp,
            expires: None,
            security_token: header(req, "x-amz-security-token").is_some(),
            presigned: false,
        })
    } else if let Some(algorithm) = q("X-Amz-Algorithm") {
        let missing = |what: &str| {
            ApiError::IncompleteSignature(format!(
                "AWS query-string parameters must include '{what}'. Re-examine the query-string parameters."
            ))
        };
        if algorithm != ALGORITHM {
            return Err(ApiError::IncompleteSignature(format!(
                "Unsupported AWS 'algorithm': '{algorithm}'"
            )));
        }
        let credential = q("X-Amz-Credential").ok_or_else(|| missing("X-Amz-Credential"))?;
        let (access_key, date, region, service) = parse_credential(&credential)?;
        let expires = q("X-Amz-Expires")
            .ok_or_else(|| missing("X-Amz-Expires"))?
            .parse::<u64>()
            .ok()
            .filter(|e| (1..=604_800).contains(e))
            .ok_or_else(|| {
                ApiError::IncompleteSignature(
                    "X-Amz-Expires must be a number of seconds between 1 and 604800".into(),
                )
            })?;
        Ok(Params {
            access_key,
            date,
            region,
            service,
            signed_headers: q("X-Amz-SignedHeaders")
                .ok_or_else(|| missing("X-Amz-SignedHeaders"))?,
            signature: q("X-Amz-Signature").ok_or_else(|| missing("X-Amz-Signature"))?,
            timestamp: q("X-Amz-Date").ok_or_else(|| missing("X-Amz-Date"))?,
            expires: Some(expires),
            security_token: q("X-Amz-Security-Token").is_some(),
            presigned: true,
        })
    } else {
        Err(ApiError::MissingAuthentication)
    }
}

fn parse_credential(credential: &str) -> Result<(String, String, String, String), ApiError> {
    let parts: Vec<&str> = credential.split('/').collect();
    match parts.as_slice() {
        [key, date, region, service, "aws4_request"]
            if !key.is_empty()
                && date.len() == 8
                && date.bytes().all(|b| b.is_ascii_digit())
                && !region.is_empty()
                && !service.is_empty() =>
        {
            Ok((
                (*key).to_owned(),
                (*date).to_owned(),
                (*region).to_owned(),
                (*service).to_owned(),
            ))
        }
        _ => Err(ApiError::IncompleteSignature(format!(
            "Credential should be scoped to a valid region, not a malformed scope. Credential={credential}"
        ))),
    }
}

fn payload_hash(req: &SignedRequest<'_>) -> Result<String, ApiError> {
    let body_hash = hex::encode(Sha256::digest(req.body));
    match header(req, "x-amz-content-sha256") {
        Some(UNSIGNED) => Ok(UNSIGNED.to_owned()),
        Some(given) if given.starts_with("STREAMING-") => Err(ApiError::InvalidSignature(
            "Streaming (chunked) payload signing is not supported by this service.".into(),
        )),
        Some(given) => {
            if !given.eq_ignore_ascii_case(&body_hash) {
                return Err(ApiError::InvalidSignature(
                    "The provided 'x-amz-content-sha256' header does not match what was computed."
                        .into(),
                ));
            }
            Ok(given.to_owned())
        }
        None => Ok(body_hash),
    }
}

/// The canonical URI: the raw path normalised, then encoded a second time.
pub fn canonical_uri(raw_path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for seg in raw_path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut path = String::from("/");
    path.push_str(&segments.join("/"));
    if raw_path.ends_with('/') && !segments.is_empty() {
        path.push('/');
    }
    utf8_percent_encode(&path, PATH).to_string()
}

/// The canonical query string; `drop_signature` removes `X-Amz-Signature` (presigned form).
pub fn canonical_query(raw_query: &str, drop_signature: bool) -> String {
    let mut pairs: Vec<(String, String)> = query_pairs(raw_query)
        .into_iter()
        .filter(|(n, _)| !(drop_signature && n == "X-Amz-Signature"))
        .map(|(n, v)| (encode_strict(&n), encode_strict(&v)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes everything but the unreserved set.
pub fn encode_strict(s: &str) -> String {
    utf8_percent_encode(s, STRICT).to_string()
}

fn canonical_request(
    req: &SignedRequest<'_>,
    params: &Params,
    signed: &[&str],
    payload_hash: &str,
) -> Result<String, ApiError> {
    let mut headers = String::new();
    for name in signed {
        let values: Vec<String> = req
            .headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| collapse_spaces(v))
            .collect();
        if values.is_empty() {
            return Err(ApiError::InvalidSignature(format!(
                "The request signature we calculated does not match the signature you provided. Signed header '{name}' is missing from the request."
            )));
        }
        headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    Ok(format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        canonical_uri(req.path),
        canonical_query(req.query, params.presigned),
        headers,
        params.signed_headers,
        payload_hash
    ))
}

fn collapse_spaces(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The string to sign for a timestamp, scope and canonical request.
pub fn string_to_sign(timestamp: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{timestamp}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

/// The hex signature of `string_to_sign` (signing maths from `aws-sigv4`).
pub fn sign(
    secret: &str,
    time: SystemTime,
    region: &str,
    service: &str,
    string_to_sign: &str,
) -> String {
    let key = aws_sigv4::sign::v4::generate_signing_key(secret, time, region, service);
    aws_sigv4::sign::v4::calculate_signature(key, string_to_sign.as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Parses `yyyymmddThhmmssZ`.
pub fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let naive = NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%SZ").ok()?;
    Some(Utc.from_utc_datetime(&naive).into())
}

/// Formats `yyyymmddThhmmssZ`.
pub fn format_amz_date(t: SystemTime) -> String {
    DateTime::<Utc>::from(t)
        .format("%Y%m%dT%H%M%SZ")
        .to_string()
}

fn rfc1123_to_amz(date: &str) -> Option<String> {
    DateTime::parse_from_rfc2822(date)
        .ok()
        .map(|d| format_amz_date(d.with_timezone(&Utc).into()))
}

/// Builds a presigned GET URL for `http://{host}{path}` valid for `expires`.
pub fn presign_get(
    creds: &Credentials,
    host: &str,
    path: &str,
    region: &str,
    service: &str,
    now: SystemTime,
    expires: Duration,
) -> String {
    let timestamp = format_amz_date(now);
    let date = &timestamp[..8];
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let query = format!(
        "X-Amz-Algorithm={ALGORITHM}&X-Amz-Credential={}&X-Amz-Date={timestamp}&X-Amz-Expires={}&X-Amz-SignedHeaders=host",
        encode_strict(&format!("{}/{scope}", creds.access_key_id)),
        expires.as_secs()
    );
    let canonical = format!(
        "GET\n{}\n{}\nhost:{host}\n\nhost\n{EMPTY_SHA256}",
        canonical_uri(path),
        canonical_query(&query, true)
    );
    let sts = string_to_sign(&timestamp, &scope, &canonical);
    let signature = sign(&creds.secret_access_key, now, region, service, &sts);
    format!("http://{host}{path}?{query}&X-Amz-Signature={signature}")
}

#[cfg(test)]
#[path = "sigv4_tests.rs"]
mod tests;
