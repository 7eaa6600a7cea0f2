//! Round trips of the example events in lambda-edge.md §2.9.

use super::*;

const VIEWER_REQUEST: &str = r#"{
  "Records": [{
    "cf": {
      "config": {
        "distributionDomainName": "d2k7q9example.cloudfront.net",
        "distributionId": "E3LEDGEEXAMPLE",
        "eventType": "viewer-request",
        "requestId": "A1WX3BGubpCdejqjkDqCftNkXsWmH1XwgsMigHOlOt2vhXzN6qPnYw=="
      },
      "request": {
        "body": {
          "action": "read-only",
          "data": "bmFtZT1BZGEmdG9waWM9ZWRnZQ==",
          "encoding": "base64",
          "inputTruncated": false
        },
        "clientIp": "198.51.100.23",
        "headers": {
          "host": [{ "key": "Host", "value": "www.example.net" }],
          "user-agent": [{ "key": "User-Agent", "value": "curl/8.5.0" }],
          "content-type": [{ "key": "Content-Type", "value": "application/x-www-form-urlencoded" }],
          "content-length": [{ "key": "Content-Length", "value": "19" }],
          "cookie": [
            { "key": "Cookie", "value": "session-id=s-42; theme=dark" },
            { "key": "Cookie", "value": "ab=B" }
          ]
        },
        "method": "POST",
        "querystring": "lang=en&ref=mail",
        "uri": "/contact"
      }
    }
  }]
}"#;

const ORIGIN_REQUEST: &str = r#"{
  "Records": [{
    "cf": {
      "config": {
        "distributionDomainName": "d2k7q9example.cloudfront.net",
        "distributionId": "E3LEDGEEXAMPLE",
        "eventType": "origin-request",
        "requestId": "iihQFfyHLfRmnEPNjiGLPiOz6vOww9NuVtj59grGKBR1fLZgIZ_sMA=="
      },
      "request": {
        "clientIp": "203.0.113.77",
        "headers": {
          "x-forwarded-for": [{ "key": "X-Forwarded-For", "value": "203.0.113.77" }],
          "user-agent": [{ "key": "User-Agent", "value": "Amazon CloudFront" }],
          "via": [{ "key": "Via", "value": "1.1 5e0c7b3a9d2f41c68e7a0b1c2d3e4f50.cloudfront.net (CloudFront)" }],
          "host": [{ "key": "Host", "value": "origin.example.org" }],
          "cloudfront-viewer-country": [{ "key": "CloudFront-Viewer-Country", "value": "DE" }],
          "cloudfront-is-mobile-viewer": [{ "key": "CloudFront-Is-Mobile-Viewer", "value": "false" }]
        },
        "method": "GET",
        "origin": {
          "custom": {
            "customHeaders": {
              "x-origin-secret": [{ "key": "X-Origin-Secret", "value": "s3cr3t-value" }]
            },
            "domainName": "origin.example.org",
            "keepaliveTimeout": 5,
            "path": "/site",
            "port": 443,
            "protocol": "https",
            "readTimeout": 30,
            "sslProtocols": ["TLSv1.2"]
          }
        },
        "querystring": "",
        "uri": "/images/logo.png"
      }
    }
  }]
}"#;

const S3_ORIGIN: &str = r#""origin": {
  "s3": {
    "authMethod": "none",
    "customHeaders": {},
    "domainName": "assets-bucket-example.s3.eu-central-1.amazonaws.com",
    "path": "",
    "region": ""
  }
}"#;

const ORIGIN_RESPONSE: &str = r#"{
  "Records": [{
    "cf": {
      "config": {
        "distributionDomainName": "d2k7q9example.cloudfront.net",
        "distributionId": "E3LEDGEEXAMPLE",
        "eventType": "origin-response",
        "requestId": "iihQFfyHLfRmnEPNjiGLPiOz6vOww9NuVtj59grGKBR1fLZgIZ_sMA=="
      },
      "request": {
        "clientIp": "203.0.113.77",
        "headers": {
          "x-forwarded-for": [{ "key": "X-Forwarded-For", "value": "203.0.113.77" }],
          "user-agent": [{ "key": "User-Agent", "value": "Amazon CloudFront" }],
          "via": [{ "key": "Via", "value": "1.1 5e0c7b3a9d2f41c68e7a0b1c2d3e4f50.cloudfront.net (CloudFront)" }],
          "host": [{ "key": "Host", "value": "origin.example.org" }]
        },
        "method": "GET",
        "origin": {
          "custom": {
            "customHeaders": {},
            "domainName": "origin.example.org",
            "keepaliveTimeout": 5,
            "path": "",
            "port": 443,
            "protocol": "https",
            "readTimeout": 30,
            "sslProtocols": ["TLSv1.2"]
          }
        },
        "querystring": "",
        "uri": "/missing.html"
      },
      "response": {
        "headers": {
          "content-type": [{ "key": "Content-Type", "value": "text/html; charset=utf-8" }],
          "content-length": [{ "key": "Content-Length", "value": "153" }],
          "date": [{ "key": "Date", "value": "Tue, 04 Mar 2025 10:15:00 GMT" }],
          "server": [{ "key": "Server", "value": "ExampleOrigin/2.1" }]
        },
        "status": "404",
        "statusDescription": "Not Found"
      }
    }
  }]
}"#;

const VIEWER_RESPONSE: &str = r#"{
  "Records": [{
    "cf": {
      "config": {
        "distributionDomainName": "d2k7q9example.cloudfront.net",
        "distributionId": "E3LEDGEEXAMPLE",
        "eventType": "viewer-response",
        "requestId": "0GsYeBVtIPZUgKCc5JNt6JBvP6qfcXcLbnWcOthhk2Bjtg0jMUKrlw=="
      },
      "request": {
        "clientIp": "198.51.100.23",
        "headers": {
          "host": [{ "key": "Host", "value": "www.example.net" }],
          "user-agent": [{ "key": "User-Agent", "value": "Mozilla/5.0 (X11; Linux x86_64)" }],
          "accept": [{ "key": "Accept", "value": "text/html" }]
        },
        "method": "GET",
        "querystring": "",
        "uri": "/index.html"
      },
      "response": {
        "headers": {
          "content-type": [{ "key": "Content-Type", "value": "text/html" }],
          "content-length": [{ "key": "Content-Length", "value": "5120" }],
          "last-modified": [{ "key": "Last-Modified", "value": "Mon, 03 Mar 2025 08:00:00 GMT" }],
          "etag": [{ "key": "ETag", "value": "\"5f2a-1c00\"" }],
          "age": [{ "key": "Age", "value": "318" }]
        },
        "status": "200",
        "statusDescription": "OK"
      }
    }
  }]
}"#;

fn round_trip(fixture: &str) -> Event {
    let original: serde_json::Value = serde_json::from_str(fixture).unwrap();
    let event: Event = serde_json::from_str(fixture).unwrap();
    let again = serde_json::to_value(&event).unwrap();
    assert_eq!(original, again, "parse → serialize keeps every field");
    let reparsed: Event = serde_json::from_value(again).unwrap();
    assert_eq!(event, reparsed);
    // Header order survives, too.
    let text = serde_json::to_string(&event).unwrap();
    let first = event.cf().unwrap().request.headers.iter().next().unwrap().0;
    assert!(text.find(&format!("\"{first}\"")).is_some());
    event
}

#[test]
fn viewer_request_round_trips() {
    let event = round_trip(VIEWER_REQUEST);
    let cf = event.cf().unwrap();
    assert_eq!(cf.config.event_type, EventType::ViewerRequest);
    assert_eq!(cf.config.request_id.len(), 56);
    let body = cf.request.body.as_ref().unwrap();
    assert_eq!(body.action, BodyAction::ReadOnly);
    assert_eq!(body.encoding, BodyEncoding::Base64);
    assert!(!body.input_truncated);
    let cookies = cf.request.headers.get("Cookie").unwrap();
    assert_eq!(cookies.len(), 2);
    assert_eq!(cookies[1].value, "ab=B");
    assert!(cf.response.is_none() && cf.request.origin.is_none());
    let names: Vec<&str> = cf.request.headers.iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "host",
            "user-agent",
            "content-type",
            "content-length",
            "cookie"
        ]
    );
}

#[test]
fn origin_request_round_trips_with_custom_and_s3_origins() {
    let event = round_trip(ORIGIN_REQUEST);
    let cf = event.cf().unwrap();
    match cf.request.origin.as_ref().unwrap() {
        EventOrigin::Custom(c) => {
            assert_eq!(c.domain_name, "origin.example.org");
            assert_eq!(c.port, 443);
            assert_eq!(c.ssl_protocols, ["TLSv1.2"]);
            assert_eq!(
                c.custom_headers.first("x-origin-secret"),
                Some("s3cr3t-value")
            );
        }
        other => panic!("{other:?}"),
    }
    let origin: serde_json::Value = serde_json::from_str(&format!("{{{S3_ORIGIN}}}")).unwrap();
    let parsed: EventOrigin = serde_json::from_value(origin["origin"].clone()).unwrap();
    assert!(
        matches!(&parsed, EventOrigin::S3(s) if s.auth_method == "none" && s.region.is_empty())
    );
    assert_eq!(serde_json::to_value(&parsed).unwrap(), origin["origin"]);
}

#[test]
fn response_events_round_trip() {
    let event = round_trip(ORIGIN_RESPONSE);
    let response = event.cf().unwrap().response.as_ref().unwrap();
    assert_eq!(response.status, "404");
    assert_eq!(response.status_description, "Not Found");
    let event = round_trip(VIEWER_RESPONSE);
    let cf = event.cf().unwrap();
    assert_eq!(cf.config.event_type, EventType::ViewerResponse);
    assert_eq!(
        cf.response.as_ref().unwrap().headers.first("age"),
        Some("318")
    );
}

#[test]
fn header_values_must_be_arrays_and_keys_may_be_missing() {
    let err =
        serde_json::from_str::<Headers>(r#"{"host": {"key": "Host", "value": "a"}}"#).unwrap_err();
    assert!(err.to_string().contains("must be an array"), "{err}");
    let headers: Headers = serde_json::from_str(r#"{"x-my-header": [{"value": "1"}]}"#).unwrap();
    let lines: Vec<(String, &str)> = headers.lines().collect();
    assert_eq!(lines, [("X-My-Header".to_string(), "1")]);
    assert_eq!(canonical_key("content-type"), "Content-Type");
    assert_eq!(canonical_key("X-AMZ-cf-ID"), "X-Amz-Cf-Id");
}

#[test]
fn built_events_have_the_parts_each_trigger_shows() {
    let request = Request {
        body: Some(Body {
            action: BodyAction::ReadOnly,
            data: String::new(),
            encoding: BodyEncoding::Base64,
            input_truncated: false,
        }),
        client_ip: "203.0.113.1".into(),
        headers: Headers::from_pairs([
            ("Host", "d.example"),
            ("Accept", "*/*"),
            ("accept", "text/html"),
        ]),
        method: "GET".into(),
        origin: None,
        querystring: String::new(),
        uri: "/".into(),
    };
    let input = |event_type| EventInput {
        event_type,
        distribution_domain_name: "d.example".into(),
        distribution_id: "EDFDVBD6EXAMPLE".into(),
        request_id: cloudfront_request_id(&[7; 40]),
        request: request.clone(),
        response: None,
    };
    let vreq = input(EventType::ViewerRequest).into_event();
    let cf = vreq.cf().unwrap();
    assert!(cf.response.is_none());
    assert!(cf.request.body.is_some());
    assert_eq!(cf.request.headers.get("accept").unwrap().len(), 2);
    assert_eq!(cf.config.request_id.len(), 56);
    assert!(cf.config.request_id.ends_with('='));
    let vresp = input(EventType::ViewerResponse).into_event();
    let cf = vresp.cf().unwrap();
    assert_eq!(cf.response.as_ref().unwrap().status, "200");
    assert!(cf.request.body.is_none());
    let json = serde_json::to_value(&vresp).unwrap();
    assert_eq!(
        json["Records"][0]["cf"]["config"]["eventType"],
        "viewer-response"
    );
    assert_eq!(
        json["Records"][0]["cf"]["request"]["headers"]["host"][0]["key"],
        "Host"
    );
}
