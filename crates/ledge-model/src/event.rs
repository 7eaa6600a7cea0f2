//! Lambda@Edge event records: what a function receives at each of the four triggers, and the
//! request and response shapes it hands back (lambda-edge.md §2, §3).
//!
//! Headers keep CloudFront's representation: lower-cased names mapping to arrays of
//! `{key, value}` entries, one entry per header line, in wire order ([`Headers`]).

use std::fmt;

use base64::Engine as _;
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use crate::config::EventType;

/// The whole event: `{"Records": [{"cf": {...}}]}`, always with exactly one record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The records; CloudFront sends exactly one.
    #[serde(rename = "Records")]
    pub records: Vec<Record>,
}

/// One record of an [`Event`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The CloudFront part.
    pub cf: CfRecord,
}

/// `Records[0].cf`: config, request, and (in response events) the response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CfRecord {
    /// Read-only facts about the distribution and the request.
    pub config: EventConfig,
    /// The request (viewer request, or the request to the origin).
    pub request: Request,
    /// The response; present only in `origin-response` and `viewer-response` events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<Response>,
}

/// `cf.config` (§2.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventConfig {
    /// The distribution's domain name.
    pub distribution_domain_name: String,
    /// The distribution id.
    pub distribution_id: String,
    /// Which trigger this is.
    pub event_type: EventType,
    /// CloudFront's request id (`X-Amz-Cf-Id`), the same in all events of one request.
    pub request_id: String,
}

/// `cf.request` (§2.3); also the shape a request-trigger function returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    /// The body, when the association has IncludeBody.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Body>,
    /// The viewer's IP address.
    #[serde(default)]
    pub client_ip: String,
    /// Request headers.
    #[serde(default)]
    pub headers: Headers,
    /// HTTP method.
    #[serde(default)]
    pub method: String,
    /// The origin (origin events only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<EventOrigin>,
    /// Query string without `?`; `""` when none.
    #[serde(default)]
    pub querystring: String,
    /// Path, starting with `/`.
    #[serde(default)]
    pub uri: String,
}

/// `request.body` (§2.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Body {
    /// `read-only` as delivered; `replace` to send `data` to the origin.
    #[serde(default)]
    pub action: BodyAction,
    /// The body (base64 as delivered).
    #[serde(default)]
    pub data: String,
    /// How `data` is encoded.
    #[serde(default)]
    pub encoding: BodyEncoding,
    /// True when CloudFront truncated the body before exposing it.
    #[serde(default)]
    pub input_truncated: bool,
}

// === impl Body ===

impl Body {
    /// The body as CloudFront delivers it: base64, read-only, not truncated.
    pub fn from_bytes(data: &[u8]) -> Body {
        Body {
            action: BodyAction::ReadOnly,
            data: base64::engine::general_purpose::STANDARD.encode(data),
            encoding: BodyEncoding::Base64,
            input_truncated: false,
        }
    }
}

/// `body.action`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum BodyAction {
    /// The function's changes to the body are ignored.
    #[default]
    #[serde(rename = "read-only")]
    ReadOnly,
    /// The function's `data` replaces the body.
    #[serde(rename = "replace")]
    Replace,
}

/// `body.encoding` (also a generated response's `bodyEncoding`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum BodyEncoding {
    /// Base64.
    #[default]
    #[serde(rename = "base64")]
    Base64,
    /// Plain text.
    #[serde(rename = "text")]
    Text,
}

/// `request.origin` (§2.6): exactly one of `custom` or `s3`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EventOrigin {
    /// A custom (HTTP) origin.
    #[serde(rename = "custom")]
    Custom(CustomOrigin),
    /// An S3 origin.
    #[serde(rename = "s3")]
    S3(S3Origin),
}

/// `origin.custom`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomOrigin {
    /// Headers CloudFront adds for this origin.
    #[serde(default)]
    pub custom_headers: Headers,
    /// The origin's DNS name.
    pub domain_name: String,
    /// Keep-alive timeout in seconds (1–60).
    pub keepalive_timeout: u32,
    /// Origin path prefix; `""` when none.
    #[serde(default)]
    pub path: String,
    /// Port (80, 443, or 1024–65535).
    pub port: u16,
    /// `http` or `https`.
    pub protocol: String,
    /// Read timeout in seconds (4–60).
    pub read_timeout: u32,
    /// Allowed TLS versions.
    #[serde(default)]
    pub ssl_protocols: Vec<String>,
}

/// `origin.s3`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Origin {
    /// `origin-access-identity` or `none`.
    pub auth_method: String,
    /// Headers CloudFront adds for this origin.
    #[serde(default)]
    pub custom_headers: Headers,
    /// The bucket's DNS name.
    pub domain_name: String,
    /// Origin path prefix; `""` when none.
    #[serde(default)]
    pub path: String,
    /// The bucket's region (`""` unless using an OAI).
    #[serde(default)]
    pub region: String,
}

/// `cf.response` (§2.7); also the shape a response-trigger function returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    /// Response headers.
    #[serde(default)]
    pub headers: Headers,
    /// Status code as a string, e.g. `"200"`.
    pub status: String,
    /// Reason phrase, e.g. `"OK"`.
    #[serde(default)]
    pub status_description: String,
}

impl Response {
    /// `200 OK` with no headers: the response a response event shows when it has none.
    pub fn ok() -> Response {
        Response {
            headers: Headers::new(),
            status: "200".to_string(),
            status_description: "OK".to_string(),
        }
    }
}

/// One header line: `key` keeps the wire spelling; it may be missing in function results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderEntry {
    /// The header name as on the wire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The raw value.
    pub value: String,
}

/// CloudFront's header map: lower-cased name → entries, in the order they were added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, Vec<HeaderEntry>)>);

// === impl Headers ===

impl Headers {
    /// An empty map.
    pub fn new() -> Self {
        Headers(Vec::new())
    }

    /// Builds the map from header lines in wire order (`name` as on the wire).
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut headers = Headers::new();
        for (name, value) in pairs {
            headers.append(name, value);
        }
        headers
    }

    /// Adds one header line, keeping `name` as its key.
    pub fn append(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let key: String = name.into();
        let lower = key.to_ascii_lowercase();
        let entry = HeaderEntry {
            key: Some(key),
            value: value.into(),
        };
        match self.0.iter_mut().find(|(n, _)| *n == lower) {
            Some((_, entries)) => entries.push(entry),
            None => self.0.push((lower, vec![entry])),
        }
    }

    /// The entries for a name (any case).
    pub fn get(&self, name: &str) -> Option<&[HeaderEntry]> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, e)| e.as_slice())
    }

    /// The first value for a name (any case).
    pub fn first(&self, name: &str) -> Option<&str> {
        self.get(name)
            .and_then(|e| e.first())
            .map(|e| e.value.as_str())
    }

    /// Replaces all entries for `name`; returns the old ones.
    pub fn insert(&mut self, name: &str, entries: Vec<HeaderEntry>) -> Option<Vec<HeaderEntry>> {
        let lower = name.to_ascii_lowercase();
        match self.0.iter_mut().find(|(n, _)| *n == lower) {
            Some((_, old)) => Some(std::mem::replace(old, entries)),
            None => {
                self.0.push((lower, entries));
                None
            }
        }
    }

    /// Removes a header; returns its entries.
    pub fn remove(&mut self, name: &str) -> Option<Vec<HeaderEntry>> {
        let at = self
            .0
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(name))?;
        Some(self.0.remove(at).1)
    }

    /// `(lower-cased name, entries)` in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[HeaderEntry])> {
        self.0.iter().map(|(n, e)| (n.as_str(), e.as_slice()))
    }

    /// Header lines in order, with the wire name (the key, or the name with CloudFront's
    /// capitalisation when the key is missing).
    pub fn lines(&self) -> impl Iterator<Item = (String, &str)> {
        self.0.iter().flat_map(|(name, entries)| {
            entries.iter().map(move |e| {
                let key = e.key.clone().unwrap_or_else(|| canonical_key(name));
                (key, e.value.as_str())
            })
        })
    }

    /// Number of distinct header names.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no headers.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Headers {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, entries) in &self.0 {
            map.serialize_entry(name, entries)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Headers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HeadersVisitor;

        impl<'de> Visitor<'de> for HeadersVisitor {
            type Value = Headers;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of header names to arrays of {key, value}")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Headers, A::Error> {
                let mut out = Vec::new();
                while let Some(name) = access.next_key::<String>()? {
                    let entries = access.next_value::<EntryList>()?.0;
                    out.push((name, entries));
                }
                Ok(Headers(out))
            }
        }

        deserializer.deserialize_map(HeadersVisitor)
    }
}

/// A header map value, which must be an array (CloudFront's validation message otherwise).
struct EntryList(Vec<HeaderEntry>);

impl<'de> Deserialize<'de> for EntryList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        if !value.is_array() {
            return Err(serde::de::Error::custom(
                "Each header entry in the headers object must be an array",
            ));
        }
        serde_json::from_value(value)
            .map(EntryList)
            .map_err(serde::de::Error::custom)
    }
}

/// CloudFront's capitalisation for a header key it fills in: `x-my-header` → `X-My-Header`.
pub fn canonical_key(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        if upper {
            out.push(c.to_ascii_uppercase());
        } else {
            out.push(c.to_ascii_lowercase());
        }
        upper = c == '-';
    }
    out
}

/// A CloudFront request id from 40 random bytes: URL-safe base64 with padding, 56 characters.
pub fn cloudfront_request_id(random: &[u8; 40]) -> String {
    base64::engine::general_purpose::URL_SAFE.encode(random)
}

/// What to put in an event built by [`EventInput::into_event`].
#[derive(Debug, Clone)]
pub struct EventInput {
    /// Which trigger.
    pub event_type: EventType,
    /// The distribution's domain name.
    pub distribution_domain_name: String,
    /// The distribution id.
    pub distribution_id: String,
    /// CloudFront's request id (see [`cloudfront_request_id`]).
    pub request_id: String,
    /// The request.
    pub request: Request,
    /// The response, used only for response events (a `200 OK` when missing there).
    pub response: Option<Response>,
}

impl EventInput {
    /// Builds the event, dropping the parts the trigger does not show (the origin in viewer
    /// events, the body in response events) and adding those it requires.
    pub fn into_event(self) -> Event {
        let mut request = self.request;
        let is_response = matches!(
            self.event_type,
            EventType::OriginResponse | EventType::ViewerResponse
        );
        let at_origin = matches!(
            self.event_type,
            EventType::OriginRequest | EventType::OriginResponse
        );
        if !at_origin {
            request.origin = None;
        }
        if is_response {
            request.body = None;
        }
        let response = if is_response {
            Some(self.response.unwrap_or_else(Response::ok))
        } else {
            None
        };
        Event {
            records: vec![Record {
                cf: CfRecord {
                    config: EventConfig {
                        distribution_domain_name: self.distribution_domain_name,
                        distribution_id: self.distribution_id,
                        event_type: self.event_type,
                        request_id: self.request_id,
                    },
                    request,
                    response,
                },
            }],
        }
    }
}

impl Event {
    /// The single record's CloudFront part, if any.
    pub fn cf(&self) -> Option<&CfRecord> {
        self.records.first().map(|r| &r.cf)
    }
}

#[cfg(test)]
#[path = "event_tests.rs"]
mod tests;
