//! The event bytes a function receives (lambda-edge.md §2), written straight from the records
//! in the layout of the function's own JSON encoder, with the place of the record the function
//! may hand back: a result equal to those bytes is that record unchanged.

use std::ops::Range;

use ledge_model::event as ev;
use ledge_runtime::JsonStyle;

/// An event as JSON, and where in it the record a result replaces is.
#[derive(Debug)]
pub(crate) struct EventJson {
    pub(crate) bytes: Vec<u8>,
    /// `cf.request` in request events, `cf.response` in response events.
    pub(crate) echo: Range<usize>,
}

impl EventJson {
    /// Whether a result is the record as the function was given it, byte for byte.
    pub(crate) fn is_echo(&self, result: &[u8]) -> bool {
        self.bytes.get(self.echo.clone()) == Some(result)
    }
}

/// `{"Records": [{"cf": {"config": …, "request": …, "response": …}}]}`, showing what the
/// trigger shows: no origin in viewer events, no body in response events, and a response
/// (`200 OK` when none is given) only in response events.
pub(crate) fn write_event(
    style: JsonStyle,
    config: &ev::EventConfig,
    request: &ev::Request,
    response: Option<&ev::Response>,
) -> serde_json::Result<EventJson> {
    let event_type = config.event_type;
    let hides_origin = event_type.is_viewer() && request.origin.is_some();
    let hides_body = !event_type.is_request() && request.body.is_some();
    let trimmed;
    let request = if hides_origin || hides_body {
        let mut r = request.clone();
        if hides_origin {
            r.origin = None;
        }
        if hides_body {
            r.body = None;
        }
        trimmed = r;
        &trimmed
    } else {
        request
    };
    let (ks, is) = (style.key_separator(), style.item_separator());
    let mut out = Vec::with_capacity(1024);
    let key = |out: &mut Vec<u8>, name: &str| {
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.push(b'"');
        out.extend_from_slice(ks.as_bytes());
    };
    out.push(b'{');
    key(&mut out, "Records");
    out.extend_from_slice(b"[{");
    key(&mut out, "cf");
    out.push(b'{');
    key(&mut out, "config");
    style.write(&mut out, config)?;
    out.extend_from_slice(is.as_bytes());
    key(&mut out, "request");
    let start = out.len();
    style.write(&mut out, request)?;
    let mut echo = start..out.len();
    if !event_type.is_request() {
        let default;
        let response = match response {
            Some(r) => r,
            None => {
                default = ev::Response::ok();
                &default
            }
        };
        out.extend_from_slice(is.as_bytes());
        key(&mut out, "response");
        let start = out.len();
        style.write(&mut out, response)?;
        echo = start..out.len();
    }
    out.extend_from_slice(b"}}]}");
    Ok(EventJson { bytes: out, echo })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledge_model::event::{EventInput, EventType};

    fn request() -> ev::Request {
        ev::Request {
            body: Some(ev::Body::from_bytes(b"hi")),
            client_ip: "203.0.113.9".into(),
            headers: ev::Headers::from_pairs([("Host", "d.example"), ("X-Tést", "ü")]),
            method: "POST".into(),
            origin: None,
            querystring: "a=1".into(),
            uri: "/x".into(),
        }
    }

    fn config(event_type: EventType) -> ev::EventConfig {
        ev::EventConfig {
            distribution_domain_name: "d.example".into(),
            distribution_id: "EDIST".into(),
            event_type,
            request_id: "rid".into(),
        }
    }

    /// The bytes parse to exactly the event `EventInput::into_event` builds, for every
    /// trigger and both styles; the echo range holds the record a result replaces.
    #[test]
    fn events_match_the_model_and_mark_the_record() {
        for event_type in [
            EventType::ViewerRequest,
            EventType::OriginRequest,
            EventType::OriginResponse,
            EventType::ViewerResponse,
        ] {
            for style in [JsonStyle::Compact, JsonStyle::Python] {
                let c = config(event_type);
                let json = write_event(style, &c, &request(), None).expect("event");
                let parsed: ev::Event = serde_json::from_slice(&json.bytes).expect("valid JSON");
                let model = EventInput {
                    event_type,
                    distribution_domain_name: c.distribution_domain_name.clone(),
                    distribution_id: c.distribution_id.clone(),
                    request_id: c.request_id.clone(),
                    request: request(),
                    response: None,
                }
                .into_event();
                assert_eq!(parsed, model, "{event_type:?} {style:?}");
                let echo: serde_json::Value =
                    serde_json::from_slice(&json.bytes[json.echo.clone()]).expect("record");
                let cf = serde_json::to_value(&model.records[0].cf).expect("cf");
                let name = if event_type.is_request() {
                    "request"
                } else {
                    "response"
                };
                assert_eq!(echo, cf[name]);
                assert!(json.is_echo(&json.bytes[json.echo.clone()]));
                assert!(!json.is_echo(b"{}"));
            }
        }
    }
}
