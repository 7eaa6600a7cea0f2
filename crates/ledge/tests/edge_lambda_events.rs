//! The event a function receives, field by field against lambda-edge.md §2, for all four
//! event types; and versions switching atomically when a new snapshot names a new version.

use std::collections::BTreeSet;

use ledge_test::certs::SelfSigned;
use ledge_test::client::{self, Reply};
use ledge_test::edge::Edge;
use ledge_test::lambda::{self, Function};
use ledge_test::origin::{Origin, Route};
use ledge_test::snapshot;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_ledge");

/// Hands the event back: as the body of a generated response at request triggers, in an
/// `x-event` header (hex) at response triggers.
const DUMP_JS: &str = r#"
exports.handler = async (event) => {
  const cf = event.Records[0].cf;
  const text = JSON.stringify(event);
  if (cf.response) {
    cf.response.headers['x-event'] = [{ value: Buffer.from(text).toString('hex') }];
    return cf.response;
  }
  return { status: '200', headers: { 'content-type': [{ value: 'application/json' }] }, body: text };
};
"#;

/// An edge serving `distributions`, all associated with the one function `f`.
fn start_with(f: &Function, distributions: Vec<Value>) -> Edge {
    Edge::builder(BIN)
        .snapshot(lambda::snapshot(1, distributions, &[f]))
        .data_file(&f.package_path(), f.zip.clone())
        .start()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn event_of(r: &Reply) -> Value {
    let text = if r.header("x-event").is_empty() {
        r.text()
    } else {
        let hex = r.header("x-event").as_bytes();
        let bytes: Vec<u8> = hex
            .chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).expect("hex"), 16).expect("hex"))
            .collect();
        String::from_utf8(bytes).expect("utf-8")
    };
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not an event: {e}: {text}"))
}

fn check_headers(h: &Value) {
    for (name, entries) in h.as_object().expect("headers object") {
        assert_eq!(name, &name.to_lowercase());
        for entry in entries.as_array().expect("array of entries") {
            assert_eq!(keys(entry), set(&["key", "value"]), "{name}");
            assert!(entry["key"]
                .as_str()
                .expect("key")
                .eq_ignore_ascii_case(name));
            assert!(entry["value"].is_string());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_match_the_spec_for_all_four_types() {
    let o = Origin::new()
        .route("/obj", Route::ok("body").header("x-origin", "yes"))
        .run()
        .await;
    let f = Function::node("dump", DUMP_JS);
    let types = [
        "viewer-request",
        "origin-request",
        "origin-response",
        "viewer-response",
    ];
    let mut dists = Vec::new();
    for (i, t) in types.iter().enumerate() {
        let mut d =
            snapshot::distribution(&format!("E{i}"), &format!("{t}.ledge.localhost"), o.port());
        lambda::associate(&mut d, t, &f, false);
        dists.push(d);
    }
    let e = start_with(&f, dists);

    for (i, t) in types.iter().enumerate() {
        let host = format!("{t}.ledge.localhost");
        let r = client::request(
            e.http,
            "GET",
            &host,
            "/obj?b=2&a=1",
            &[("cookie", "session=1"), ("x-custom", "v")],
            "",
        )
        .await;
        assert_eq!(r.status, 200, "{t}: {}\n{}", r.text(), e.stderr());
        let ev = event_of(&r);
        assert_eq!(keys(&ev), set(&["Records"]));
        let records = ev["Records"].as_array().expect("records");
        assert_eq!(records.len(), 1);
        assert_eq!(keys(&records[0]), set(&["cf"]));
        let cf = &records[0]["cf"];
        let response_event = t.ends_with("response");
        let want_cf = if response_event {
            set(&["config", "request", "response"])
        } else {
            set(&["config", "request"])
        };
        assert_eq!(keys(cf), want_cf, "{t}");
        // config
        let c = &cf["config"];
        assert_eq!(
            keys(c),
            set(&[
                "distributionDomainName",
                "distributionId",
                "eventType",
                "requestId"
            ])
        );
        assert_eq!(c["distributionDomainName"], json!(host));
        assert_eq!(c["distributionId"], json!(format!("E{i}")));
        assert_eq!(c["eventType"], json!(t));
        let id = c["requestId"].as_str().expect("requestId");
        assert_eq!(id.len(), 56);
        assert_eq!(id, r.header("x-amz-cf-id"));
        // request
        let q = &cf["request"];
        let at_origin = t.starts_with("origin");
        let mut want = vec!["clientIp", "headers", "method", "querystring", "uri"];
        if at_origin {
            want.push("origin");
        }
        assert_eq!(keys(q), set(&want), "{t}");
        assert_eq!(q["clientIp"], json!("127.0.0.1"));
        assert_eq!(q["method"], json!("GET"));
        assert_eq!(q["uri"], json!("/obj"));
        check_headers(&q["headers"]);
        let h = &q["headers"];
        if at_origin {
            // The request as it goes to the origin: CachingOptimized forwards no query string
            // and no viewer cookie; CloudFront's own headers are there.
            assert_eq!(q["querystring"], json!(""), "{t}");
            assert!(h.get("cookie").is_none(), "{t}");
            assert_eq!(h["user-agent"][0]["value"], json!("Amazon CloudFront"));
            assert_eq!(h["x-forwarded-for"][0]["value"], json!("127.0.0.1"));
            assert_eq!(h["x-forwarded-for"][0]["key"], json!("X-Forwarded-For"));
            assert!(h["via"][0]["value"]
                .as_str()
                .expect("via")
                .contains("(CloudFront)"));
            assert_eq!(
                h["host"][0]["value"],
                json!(format!("127.0.0.1:{}", o.port()))
            );
            let origin = &q["origin"];
            assert_eq!(keys(origin), set(&["custom"]));
            assert_eq!(
                keys(&origin["custom"]),
                set(&[
                    "customHeaders",
                    "domainName",
                    "keepaliveTimeout",
                    "path",
                    "port",
                    "protocol",
                    "readTimeout",
                    "sslProtocols"
                ])
            );
            assert_eq!(origin["custom"]["domainName"], json!("127.0.0.1"));
            assert_eq!(origin["custom"]["port"], json!(o.port()));
            assert_eq!(origin["custom"]["protocol"], json!("http"));
        } else {
            // The viewer's request as received.
            assert_eq!(q["querystring"], json!("b=2&a=1"), "{t}");
            assert_eq!(h["host"][0]["value"], json!(host));
            // Keys as on the wire: hyper's client writes names in lower case.
            assert_eq!(
                h["cookie"][0],
                json!({"key": "cookie", "value": "session=1"})
            );
            assert_eq!(h["x-custom"][0], json!({"key": "x-custom", "value": "v"}));
            assert!(h.get("via").is_none());
        }
        // response
        if response_event {
            let p = &cf["response"];
            assert_eq!(keys(p), set(&["headers", "status", "statusDescription"]));
            assert_eq!(p["status"], json!("200"));
            assert_eq!(p["statusDescription"], json!("OK"));
            check_headers(&p["headers"]);
            assert_eq!(p["headers"]["x-origin"][0]["value"], json!("yes"));
            assert!(p["headers"].get("x-cache").is_none());
        }
    }
}

/// Header keys keep the viewer's spelling, line by line, also on the second request of a
/// connection; names CloudFront adds or a viewer spells `Canonical-Case` read that way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_keys_are_spelled_as_on_the_wire() {
    let o = Origin::new().route("/obj", Route::ok("body")).run().await;
    let f = Function::node("dump", DUMP_JS);
    let mut d = snapshot::distribution("E0", "vreq.ledge.localhost", o.port());
    lambda::associate(&mut d, "viewer-request", &f, false);
    let e = start_with(&f, vec![d]);
    let head = "GET /obj HTTP/1.1\r\nhost: vreq.ledge.localhost\r\nX-MiXeD-case: a\r\n\
                USER-AGENT: t\r\nAccept: */*\r\ncookie: a=1\r\nCookie: b=2\r\n";
    let raw = format!("{head}\r\n{head}Connection: close\r\n\r\n");
    let out = client::raw(e.http, raw.as_bytes(), std::time::Duration::from_secs(10)).await;
    let text = String::from_utf8_lossy(&out);
    let bodies: Vec<&str> = text
        .split("HTTP/1.1 ")
        .skip(1)
        .map(|r| r.split("\r\n\r\n").nth(1).expect("a body"))
        .collect();
    assert_eq!(bodies.len(), 2, "{text}");
    for body in bodies {
        let ev: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
        let h = &ev["Records"][0]["cf"]["request"]["headers"];
        assert_eq!(h["host"][0]["key"], json!("host"));
        assert_eq!(h["x-mixed-case"][0]["key"], json!("X-MiXeD-case"));
        assert_eq!(h["user-agent"][0]["key"], json!("USER-AGENT"));
        assert_eq!(h["accept"][0]["key"], json!("Accept"));
        assert_eq!(h["cookie"].as_array().map(Vec::len), Some(2), "{h}");
        assert_eq!(h["cookie"][0]["value"], json!("a=1"));
    }
}

/// An HTTP/2 viewer's names are lower case on the wire, and so are the event's keys at
/// viewer-request (`:authority` shows as `Host`); at origin-request the headers are those
/// CloudFront sends to the origin over HTTP/1.1, `Canonical-Case`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_viewers_header_keys_are_lower_case_at_viewer_request() {
    const ALL_VIEWER: &str = "216adef6-5c7f-47e4-b989-5492eafa07d3";
    let o = Origin::new().route("/obj", Route::ok("body")).run().await;
    let f = Function::node("dump", DUMP_JS);
    let mut v = snapshot::distribution("E0", "vreq.ledge.localhost", o.port());
    lambda::associate(&mut v, "viewer-request", &f, false);
    let mut r = snapshot::distribution("E1", "oreq.ledge.localhost", o.port());
    lambda::associate(&mut r, "origin-request", &f, false);
    r["Config"]["DefaultCacheBehavior"]["OriginRequestPolicyId"] = json!(ALL_VIEWER);
    let cert = SelfSigned::new(&["vreq.ledge.localhost", "oreq.ledge.localhost"]);
    let e = Edge::builder(BIN)
        .snapshot(lambda::snapshot(1, vec![v, r], &[&f]))
        .data_file(&f.package_path(), f.zip.clone())
        .tls(cert.clone())
        .start();
    let https = e.https.expect("tls listener");
    let dir = tempfile::tempdir().expect("tmp");
    let (ca, _) = cert.write_to(dir.path(), "ca");
    let h = h2_request_headers(&ca, https.port(), "vreq.ledge.localhost").await;
    assert_eq!(h["host"][0]["key"], json!("Host"), "{h}");
    assert_eq!(h["x-mixed-case"][0]["key"], json!("x-mixed-case"), "{h}");
    assert_eq!(h["user-agent"][0]["key"], json!("user-agent"), "{h}");
    assert_eq!(h["accept"][0]["key"], json!("accept"), "{h}");

    let h = h2_request_headers(&ca, https.port(), "oreq.ledge.localhost").await;
    assert_eq!(h["host"][0]["key"], json!("Host"), "{h}");
    assert_eq!(h["x-mixed-case"][0]["key"], json!("X-Mixed-Case"), "{h}");
}

/// The request headers of the event dumped for `GET /obj` on `host`, asked with curl over
/// HTTP/2 (TLS, `ca` trusted) with an `X-MiXeD-case` header; checked against §2.4's shape.
async fn h2_request_headers(ca: &std::path::Path, port: u16, host: &str) -> Value {
    let args = [
        "--http2".to_string(),
        "--cacert".to_string(),
        ca.display().to_string(),
        "--resolve".to_string(),
        format!("{host}:{port}:127.0.0.1"),
        "-H".to_string(),
        "X-MiXeD-case: a".to_string(),
        format!("https://{host}:{port}/obj"),
    ];
    let reply = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        client::curl(&args)
    })
    .await
    .expect("curl");
    assert_eq!(reply.status, 200, "{host}: {}", reply.text());
    let h = event_of(&reply)["Records"][0]["cf"]["request"]["headers"].clone();
    check_headers(&h);
    h
}

/// An origin-request function sees the request exactly as the pipeline would send it to the
/// origin: no `Accept-Encoding` from an HTTP/1.0 viewer (§3.3 of the cache semantics).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_request_sees_what_the_origin_would_get() {
    let o = Origin::new().route("/obj", Route::ok("body")).run().await;
    let f = Function::node("dump", DUMP_JS);
    let mut d = snapshot::distribution("E0", "oreq.ledge.localhost", o.port());
    lambda::associate(&mut d, "origin-request", &f, false);
    let e = start_with(&f, vec![d]);
    for (version, forwarded) in [("1.1", true), ("1.0", false)] {
        let raw = format!(
            "GET /obj HTTP/{version}\r\nHost: oreq.ledge.localhost\r\nAccept-Encoding: gzip\r\n\
             Connection: close\r\n\r\n"
        );
        let out = client::raw(e.http, raw.as_bytes(), std::time::Duration::from_secs(10)).await;
        let r = client::parse_raw(&out).expect("a response");
        assert_eq!(r.status, 200, "HTTP/{version}: {}", r.text());
        let ev = event_of(&r);
        let h = &ev["Records"][0]["cf"]["request"]["headers"];
        assert_eq!(
            h.get("accept-encoding").is_some(),
            forwarded,
            "HTTP/{version}: {h}"
        );
        assert_eq!(h["user-agent"][0]["value"], json!("Amazon CloudFront"));
    }
}

/// CloudFront's headers about the viewer (§6.1), when the origin request policy names them:
/// origin-facing functions, viewer-response and the origin get CloudFront's values (over the
/// viewer's), a viewer-request function sees only what the viewer sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudfront_headers_reach_origin_facing_functions_and_the_origin() {
    const ALL_VIEWER_AND_CLOUDFRONT: &str = "33f36d7e-f396-46d9-90e0-52428a34d9dc";
    let o = Origin::new().route("/obj", Route::ok("body")).run().await;
    let f = Function::node("dump", DUMP_JS);
    let mut dists = Vec::new();
    for (i, t) in [
        "viewer-request",
        "origin-request",
        "viewer-response",
        "none",
    ]
    .iter()
    .enumerate()
    {
        let mut d =
            snapshot::distribution(&format!("E{i}"), &format!("{t}.ledge.localhost"), o.port());
        let b = &mut d["Config"]["DefaultCacheBehavior"];
        b["CachePolicyId"] = snapshot::CACHING_DISABLED.into();
        b["OriginRequestPolicyId"] = ALL_VIEWER_AND_CLOUDFRONT.into();
        if *t != "none" {
            lambda::associate(&mut d, t, &f, false);
        }
        dists.push(d);
    }
    let e = start_with(&f, dists);
    let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148";
    let headers = [
        ("user-agent", iphone),
        ("cloudfront-is-mobile-viewer", "spoofed"),
    ];
    let send = |host: &'static str| client::request(e.http, "GET", host, "/obj", &headers, "");
    let value = |h: &Value, name: &str| h[name][0]["value"].as_str().map(str::to_string);

    let r = send("viewer-request.ledge.localhost").await;
    let h = &event_of(&r)["Records"][0]["cf"]["request"]["headers"];
    assert_eq!(
        value(h, "cloudfront-is-mobile-viewer").as_deref(),
        Some("spoofed")
    );
    // The viewer's header, keyed as the viewer spelled it.
    assert_eq!(
        h["cloudfront-is-mobile-viewer"][0]["key"],
        json!("cloudfront-is-mobile-viewer")
    );
    assert!(h.get("cloudfront-forwarded-proto").is_none(), "{h}");

    let r = send("origin-request.ledge.localhost").await;
    let h = &event_of(&r)["Records"][0]["cf"]["request"]["headers"];
    for (name, want) in [
        ("cloudfront-is-mobile-viewer", "true"),
        ("cloudfront-is-ios-viewer", "true"),
        ("cloudfront-is-desktop-viewer", "false"),
        ("cloudfront-is-android-viewer", "false"),
        ("cloudfront-forwarded-proto", "http"),
        ("cloudfront-viewer-http-version", "1.1"),
    ] {
        assert_eq!(value(h, name).as_deref(), Some(want), "{name}: {h}");
    }
    assert_eq!(
        h["cloudfront-is-mobile-viewer"][0]["key"],
        json!("CloudFront-Is-Mobile-Viewer")
    );
    let address = value(h, "cloudfront-viewer-address").expect("address");
    assert!(address.starts_with("127.0.0.1:"), "{address}");
    assert!(
        h.get("cloudfront-viewer-country").is_none(),
        "no geo data: {h}"
    );

    // Viewer-response sees the request as the pipeline handed it on, CloudFront's headers too.
    let r = send("viewer-response.ledge.localhost").await;
    let h = &event_of(&r)["Records"][0]["cf"]["request"]["headers"];
    assert_eq!(
        value(h, "cloudfront-is-mobile-viewer").as_deref(),
        Some("true"),
        "{h}"
    );

    let r = send("none.ledge.localhost").await;
    assert_eq!(r.status, 200);
    let seen = o.last("/obj").expect("the origin saw the request");
    assert_eq!(seen.headers["cloudfront-is-mobile-viewer"], "true");
    assert_eq!(seen.headers["cloudfront-forwarded-proto"], "http");
}

const VERSION_JS: &str = r#"
exports.handler = async (event) => {
  const r = event.Records[0].cf.response;
  r.headers['x-version'] = [{ value: 'VERSION' }];
  return r;
};
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_is_prewarmed_and_switched_atomically() {
    let o = Origin::new().route("/a", Route::ok("a")).run().await;
    let v1 = Function::node("ver", &VERSION_JS.replace("VERSION", "1"));
    let v2 = Function::node("ver", &VERSION_JS.replace("VERSION", "2")).version(2);
    let dist = |f: &Function| {
        let mut d = snapshot::distribution("E1", "ver.ledge.localhost", o.port());
        d["Config"]["DefaultCacheBehavior"]["CachePolicyId"] = snapshot::CACHING_DISABLED.into();
        lambda::associate(&mut d, "viewer-response", f, false);
        d
    };
    let e = Edge::builder(BIN)
        .snapshot(lambda::snapshot(1, vec![dist(&v1)], &[&v1]))
        .data_file(&v1.package_path(), v1.zip.clone())
        .start();
    let r = client::get(e.http, "ver.ledge.localhost", "/a").await;
    assert_eq!(r.header("x-version"), "1", "{}", e.stderr());

    // Publish version 2: its package goes to the data directory, then the snapshot.
    let data = e.dir.path().join("data");
    std::fs::write(data.join(v2.package_path()), &v2.zip).expect("package");
    e.write_snapshot(&lambda::snapshot(2, vec![dist(&v2)], &[&v2]));
    let mut seen_two = false;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while std::time::Instant::now() < deadline {
        let r = client::get(e.http, "ver.ledge.localhost", "/a").await;
        assert_eq!(r.status, 200, "{}", e.stderr());
        match r.header("x-version") {
            "1" => assert!(!seen_two, "version 1 after version 2"),
            "2" => {
                seen_two = true;
                break;
            }
            other => panic!("unexpected version {other:?}"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(seen_two, "version 2 never served:\n{}", e.stderr());
    for _ in 0..5 {
        let r = client::get(e.http, "ver.ledge.localhost", "/a").await;
        assert_eq!(r.header("x-version"), "2");
    }
    // Version 2 was started before the swap: its first invocation was warm (no
    // `Init Duration` in a REPORT line).
    let log = v2.log_file(&data);
    ledge_test::assert_eventually!(std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("REPORT RequestId"));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let first_report = text
        .lines()
        .find(|l| l.contains("REPORT RequestId"))
        .unwrap_or_default();
    assert!(
        !first_report.contains("Init Duration"),
        "cold start after the swap: {first_report}"
    );
}

/// Hostile viewer bytes (lambda-edge.md §3.7): header values that are not UTF-8 reach the
/// function as UTF-8 (read as ISO-8859-1), a raw UTF-8 request target as it is; a target
/// whose raw bytes are not UTF-8 gets CloudFront's 400 page (hyper's own was a bare 400).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_utf8_viewer_bytes_reach_the_function_as_utf8() {
    let o = Origin::new()
        .route("/caf\u{e9}/x", Route::ok("body"))
        .run()
        .await;
    let f = Function::node("dump", DUMP_JS);
    let mut d = snapshot::distribution("E0", "vreq.ledge.localhost", o.port());
    lambda::associate(&mut d, "viewer-request", &f, false);
    let plain = snapshot::distribution("E1", "plain.ledge.localhost", o.port());
    let e = start_with(&f, vec![d, plain]);
    let ask = |raw: &'static [u8]| async move {
        let out = client::raw(e.http, raw, std::time::Duration::from_secs(10)).await;
        String::from_utf8(out).unwrap_or_else(|e| panic!("{e:?}"))
    };

    let text = ask(
        b"GET /caf\xc3\xa9/x?q=\xe2\x82\xac HTTP/1.1\r\nhost: vreq.ledge.localhost\r\n\
X-Latin: caf\xe9\r\nX-Utf8: caf\xc3\xa9\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
    let body = text.split("\r\n\r\n").nth(1).expect("a body");
    let ev: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    let request = &ev["Records"][0]["cf"]["request"];
    assert_eq!(request["uri"], json!("/caf\u{e9}/x"));
    assert_eq!(request["querystring"], json!("q=\u{20ac}"));
    assert_eq!(
        request["headers"]["x-latin"][0]["value"],
        json!("caf\u{e9}")
    );
    assert_eq!(request["headers"]["x-utf8"][0]["value"], json!("caf\u{e9}"));

    // Unchanged by any function, the target goes to the origin as the viewer sent it.
    let text = ask(
        b"GET /caf\xc3\xa9/x HTTP/1.1\r\nhost: plain.ledge.localhost\r\n\
Connection: close\r\n\r\n",
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
    let seen = o.last("/caf\u{e9}/x").expect("the origin was asked");
    assert_eq!(seen.uri, "/caf\u{e9}/x");

    for raw in [
        &b"GET /caf\xe9/x HTTP/1.1\r\nhost: vreq.ledge.localhost\r\n\r\n"[..],
        &b"GET /x?r=\xe9 HTTP/1.1\r\nhost: vreq.ledge.localhost\r\n\r\n"[..],
    ] {
        let text = ask(raw).await;
        assert!(text.starts_with("HTTP/1.1 400 "), "{text}");
        let lower = text.to_ascii_lowercase();
        assert!(lower.contains("x-cache: error from cloudfront"), "{text}");
        assert!(
            text.contains("The request could not be satisfied"),
            "{text}"
        );
    }
}
