use serde_json::{json, Map, Value};

use super::*;
use crate::config::EventType::{OriginRequest, OriginResponse, ViewerRequest, ViewerResponse};

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

fn request() -> Map<String, Value> {
    obj(json!({
        "clientIp": "203.0.113.178", "method": "GET", "uri": "/index.html", "querystring": "a=1",
        "headers": {
            "host": [{"key": "Host", "value": "d111111abcdef8.cloudfront.net"}],
            "user-agent": [{"key": "User-Agent", "value": "curl/8.4.0"}],
            "via": [{"key": "Via", "value": "2.0 abc.cloudfront.net (CloudFront)"}]
        }
    }))
}

fn response() -> Map<String, Value> {
    obj(json!({
        "status": "200", "statusDescription": "OK",
        "headers": {"content-type": [{"key": "Content-Type", "value": "text/html"}]}
    }))
}

fn reason(r: Result<ValidResult, ValidationError>) -> String {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.0,
    }
}

#[test]
fn v1_results_must_be_objects() {
    for bad in [
        json!(null),
        json!([]),
        json!("x"),
        json!(3),
        json!({"Records": []}),
    ] {
        assert_eq!(
            reason(validate(ViewerRequest, &request(), bad)),
            "The Lambda function returned invalid JSON: The JSON output must be an object type."
        );
    }
}

#[test]
fn unchanged_request_passes_and_added_header_gets_its_key() {
    let mut r = request();
    r["headers"]["x-my-header"] = json!([{"value": "1"}]);
    let Ok(ValidResult::Request(out)) = validate(ViewerRequest, &request(), Value::Object(r))
    else {
        panic!("not a request");
    };
    assert_eq!(out["headers"]["x-my-header"][0]["key"], "X-My-Header");
    assert_eq!(crate::event::canonical_key("content-type"), "Content-Type");
}

#[test]
fn v2_header_entries_are_arrays_of_values() {
    let mut r = request();
    r["headers"]["x-a"] = json!({"key": "X-A", "value": "1"});
    assert!(
        reason(validate(ViewerRequest, &request(), Value::Object(r)))
            .contains("Each header entry in the headers object must be an array")
    );
    let mut r = request();
    r["headers"]["x-a"] = json!([{"key": "X-B", "value": "1"}]);
    assert!(
        reason(validate(ViewerRequest, &request(), Value::Object(r))).contains("does not match")
    );
    let mut r = request();
    r["headers"]["x-a"] = json!([{"value": "1\r\nSet-Cookie: evil=1"}]);
    assert!(reason(validate(ViewerRequest, &request(), Value::Object(r))).contains("line break"));
    let mut r = request();
    r["headers"]["x a"] = json!([{"value": "1"}]);
    assert!(reason(validate(ViewerRequest, &request(), Value::Object(r))).contains("header name"));
}

#[test]
fn v3_disallowed_headers_are_refused() {
    for name in [
        "x-cache",
        "connection",
        "x-amz-cf-pop",
        "x-edge-origin",
        "x-real-ip",
    ] {
        let mut r = request();
        r["headers"][name] = json!([{"value": "1"}]);
        assert!(
            reason(validate(ViewerRequest, &request(), Value::Object(r))).contains("disallowed"),
            "{name}"
        );
    }
}

#[test]
fn v4_read_only_headers_per_trigger() {
    // Host is read-only at viewer-request but writable at origin-request.
    let mut r = request();
    r["headers"]["host"] = json!([{"value": "other.example"}]);
    assert!(reason(validate(
        ViewerRequest,
        &request(),
        Value::Object(r.clone())
    ))
    .contains("read-only"));
    assert!(validate(OriginRequest, &request(), Value::Object(r)).is_ok());
    // Removing a read-only header counts as a change.
    let mut r = request();
    r["headers"].as_object_mut().unwrap().remove("via");
    assert!(reason(validate(OriginRequest, &request(), Value::Object(r))).contains("read-only"));
    // Warning is read-only at viewer-response only.
    let mut resp = response();
    resp["headers"]["warning"] = json!([{"value": "199 x"}]);
    assert!(validate(OriginResponse, &response(), Value::Object(resp.clone())).is_ok());
    assert!(
        reason(validate(ViewerResponse, &response(), Value::Object(resp))).contains("read-only")
    );
}

#[test]
fn v5_viewer_request_cannot_add_viewer_country() {
    let mut r = request();
    r["headers"]["cloudfront-viewer-country"] = json!([{"value": "US"}]);
    assert!(validate(ViewerRequest, &request(), Value::Object(r.clone())).is_err());
    assert!(validate(OriginRequest, &request(), Value::Object(r)).is_ok());
}

#[test]
fn generated_responses_and_their_rules() {
    let ok = json!({"status": "302", "statusDescription": "Found",
        "headers": {"location": [{"value": "https://example.com/"}]}});
    let Ok(ValidResult::Generated(g)) = validate(ViewerRequest, &request(), ok) else {
        panic!("not generated");
    };
    assert_eq!(g["headers"]["location"][0]["key"], "Location");
    // V6
    for s in [json!("199"), json!(600), json!("abc"), json!(null)] {
        let r = validate(ViewerRequest, &request(), json!({"status": s}));
        assert!(reason(r).contains("status code"));
    }
    assert!(validate(ViewerRequest, &request(), json!({"status": 200})).is_ok());
    // V7
    let r = validate(
        ViewerRequest,
        &request(),
        json!({"status": "204", "body": ""}),
    );
    assert!(reason(r).contains("204"));
    // V8
    let r = validate(
        ViewerRequest,
        &request(),
        json!({"status": "200", "body": "x", "bodyEncoding": "hex"}),
    );
    assert!(reason(r).contains("bodyEncoding"));
    let r = validate(
        ViewerRequest,
        &request(),
        json!({"status": "200", "body": "!!", "bodyEncoding": "base64"}),
    );
    assert!(reason(r).contains("base64"));
    // V10
    let r = validate(
        ViewerRequest,
        &request(),
        json!({"status": "200", "body": {"a": 1}}),
    );
    assert!(reason(r).contains("The body is not a string"));
    // V9: 40 KB at viewer-request, 1 MB at origin-request.
    let big = "x".repeat(VIEWER_BODY_LIMIT + 1);
    let r = validate(
        ViewerRequest,
        &request(),
        json!({"status": "200", "body": big}),
    );
    assert!(reason(r).contains("The body is not a string"));
    let near = "x".repeat(VIEWER_BODY_LIMIT - 10);
    let r = validate(
        ViewerRequest,
        &request(),
        json!({"status": "200", "body": near,
        "headers": {"content-type": [{"value": "text/plain"}]}}),
    );
    assert!(reason(r).contains("exceeded the CloudFront limit of 40960 bytes"));
    let big = "x".repeat(VIEWER_BODY_LIMIT + 1);
    assert!(validate(
        OriginRequest,
        &request(),
        json!({"status": "200", "body": big})
    )
    .is_ok());
}

#[test]
fn v11_v12_uri_and_query_rules() {
    let mut r = request();
    r["uri"] = json!("index.html");
    assert!(reason(validate(ViewerRequest, &request(), Value::Object(r))).contains("URI"));
    let mut r = request();
    r["querystring"] = json!("a=1 2");
    assert!(validate(ViewerRequest, &request(), Value::Object(r)).is_err());
    let mut r = request();
    r["uri"] = json!(format!("/{}", "a".repeat(MAX_URL_CHARS)));
    assert!(reason(validate(ViewerRequest, &request(), Value::Object(r))).contains("8192"));
    let mut r = request();
    r["uri"] = json!("/new/index.html");
    r["querystring"] = json!("b=2&c=%20");
    assert!(validate(ViewerRequest, &request(), Value::Object(r)).is_ok());
}

#[test]
fn v13_request_body_rules() {
    let with_body = |b: Value| {
        let mut r = request();
        r.insert("body".into(), b);
        validate(ViewerRequest, &request(), Value::Object(r))
    };
    assert!(with_body(json!({"action": "read-only", "data": "anything"})).is_ok());
    assert!(with_body(json!({"action": "replace", "encoding": "text", "data": "hi"})).is_ok());
    assert!(with_body(json!({"action": "replace", "encoding": "base64", "data": "aGk="})).is_ok());
    assert!(with_body(json!({"action": "replace", "encoding": "base64", "data": "*"})).is_err());
    assert!(with_body(json!({"action": "delete"})).is_err());
    let big = "x".repeat(VIEWER_BODY_LIMIT + 1);
    assert!(with_body(json!({"action": "replace", "encoding": "text", "data": big})).is_err());
}

#[test]
fn v14_origin_changes() {
    let custom = json!({"custom": {"domainName": "example.org", "port": 443, "protocol": "https",
        "path": "", "sslProtocols": ["TLSv1.2"], "readTimeout": 30, "keepaliveTimeout": 5,
        "customHeaders": {"x-origin-key": [{"value": "k"}]}}});
    let with_origin = |o: Value| {
        let mut r = request();
        r.insert("origin".into(), o);
        validate(OriginRequest, &request(), Value::Object(r))
    };
    let Ok(ValidResult::Request(out)) = with_origin(custom.clone()) else {
        panic!("refused a valid origin");
    };
    assert_eq!(
        out["origin"]["custom"]["customHeaders"]["x-origin-key"][0]["key"],
        "X-Origin-Key"
    );
    assert!(with_origin(
        json!({"s3": {"domainName": "bucket.s3.amazonaws.com", "authMethod": "none", "path": ""}})
    )
    .is_ok());
    let mut both = custom.clone();
    both["s3"] = json!({"domainName": "b"});
    assert!(with_origin(both).is_err());
    for (field, value) in [
        ("port", json!(81)),
        ("protocol", json!("ftp")),
        ("readTimeout", json!(3)),
        ("domainName", json!("10.0.0.1")),
        ("domainName", json!("a:80")),
        ("path", json!("/x/")),
    ] {
        let mut o = custom.clone();
        o["custom"][field] = value;
        assert!(with_origin(o).is_err(), "{field}");
    }
    let mut dup = custom;
    dup["custom"]["customHeaders"] = json!({"user-agent": [{"value": "x"}]});
    assert!(reason(with_origin(dup)).contains("also a request header"));
}

#[test]
fn response_triggers() {
    // V16: a request where a response belongs.
    assert!(validate(OriginResponse, &response(), Value::Object(request())).is_err());
    // OResp may change status and body.
    let mut r = response();
    r["status"] = json!(404);
    r.insert("body".into(), json!("<h1>not here</h1>"));
    assert!(validate(OriginResponse, &response(), Value::Object(r.clone())).is_ok());
    // V15: VResp may not change the status.
    assert!(
        reason(validate(ViewerResponse, &response(), Value::Object(r))).contains("status code")
    );
    let mut r = response();
    r["headers"]["strict-transport-security"] = json!([{"value": "max-age=63072000"}]);
    let Ok(ValidResult::Response(out)) = validate(ViewerResponse, &response(), Value::Object(r))
    else {
        panic!("refused");
    };
    assert_eq!(
        out["headers"]["strict-transport-security"][0]["key"],
        "Strict-Transport-Security"
    );
}

#[test]
fn v14_unchanged_origin_is_not_rechecked() {
    // The distribution's own origin may be an IP address; handing it back unchanged is fine,
    // changing it to an IP address is not.
    let mut input = request();
    input.insert(
        "origin".into(),
        json!({"custom": {"domainName": "127.0.0.1", "port": 8080, "protocol": "http",
            "path": "", "sslProtocols": ["TLSv1.2"], "readTimeout": 30, "keepaliveTimeout": 5,
            "customHeaders": {}}}),
    );
    assert!(validate(OriginRequest, &input, Value::Object(input.clone())).is_ok());
    let mut changed = input.clone();
    changed["origin"]["custom"]["domainName"] = json!("10.0.0.1");
    assert!(validate(OriginRequest, &input, Value::Object(changed)).is_err());
}
