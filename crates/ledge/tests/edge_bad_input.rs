//! Malformed and oversized requests: CloudFront's 400/403/413 answers, closed connections,
//! slow clients cut off, and never a hung connection.

use std::time::Duration;

use ledge_test::client::{self, parse_raw, raw};
use ledge_test::edge::Edge;
use ledge_test::origin::{Origin, Route};
use ledge_test::snapshot::{self, CACHING_DISABLED};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_ledge");
const WAIT: Duration = Duration::from_secs(5);

async fn setup() -> (ledge_test::origin::RunningOrigin, Edge) {
    let o = Origin::new()
        .route("/a", Route::ok("a"))
        .route("/echo", Route::ok("").echo())
        .run()
        .await;
    let mut d = snapshot::distribution("E1", "d.ledge.localhost", o.port());
    d["Config"]["DefaultCacheBehavior"]["CachePolicyId"] = json!(CACHING_DISABLED);
    let e = Edge::builder(BIN)
        .snapshot(snapshot::with(1, vec![d]))
        .arg("--max-body-size")
        .arg("1000")
        .arg("--header-read-timeout")
        .arg("1")
        .start();
    (o, e)
}

fn status_of(bytes: &[u8]) -> u16 {
    parse_raw(bytes).map_or(0, |r| r.status)
}

/// A `GET target` head of exactly `total` bytes (padded with a header), closing after the
/// answer so that [`raw`] returns as soon as the edge is done.
fn head_of(total: usize, target: &str) -> Vec<u8> {
    let head = |pad: &str| {
        format!(
            "GET {target} HTTP/1.1\r\nHost: d.ledge.localhost\r\nConnection: close\r\nX-Pad: {pad}\r\n\r\n"
        )
    };
    let fixed = head("").len();
    let out = head(&"p".repeat(total - fixed)).into_bytes();
    assert_eq!(out.len(), total);
    out
}

/// The responses in `bytes`, in order: status and body (Content-Length or chunked framing).
fn responses(mut bytes: &[u8]) -> Vec<(u16, String)> {
    let mut out = Vec::new();
    while let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
        let Some(r) = parse_raw(&bytes[..end + 4]) else {
            break;
        };
        let mut rest = &bytes[end + 4..];
        let mut body = Vec::new();
        if r.header("transfer-encoding") == "chunked" {
            while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
                let size = std::str::from_utf8(&rest[..eol])
                    .ok()
                    .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
                    .unwrap_or(0);
                rest = &rest[eol + 2..];
                if size == 0 {
                    rest = rest.get(2..).unwrap_or(&[]);
                    break;
                }
                let take = size.min(rest.len());
                body.extend_from_slice(&rest[..take]);
                rest = rest.get(take + 2..).unwrap_or(&[]);
            }
        } else {
            let n: usize = r.header("content-length").parse().unwrap_or(0);
            let take = n.min(rest.len());
            body.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
        }
        out.push((r.status, String::from_utf8_lossy(&body).into_owned()));
        bytes = rest;
    }
    out
}

/// Checks a refusal: status, CloudFront's error page, and the connection closed.
fn assert_refused(out: &[u8], status: u16, what: &str) {
    let text = String::from_utf8_lossy(&out[..out.len().min(600)]).into_owned();
    let r = parse_raw(out).unwrap_or_else(|| panic!("{what}: no response: {text}"));
    assert_eq!(r.status, status, "{what}: {text}");
    assert_eq!(r.header("connection"), "close", "{what}");
    assert_eq!(r.x_cache(), "Error from cloudfront", "{what}");
    assert_eq!(r.header("server"), "CloudFront", "{what}");
    assert!(
        r.text()
            .contains("<TITLE>ERROR: The request could not be satisfied</TITLE>"),
        "{what}: {text}"
    );
    assert_eq!(
        responses(out).len(),
        1,
        "{what}: one answer, then close: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_heads_and_urls_get_413_and_close() {
    let (o, e) = setup().await;
    // Request line + headers: 20,480 bytes pass, 20,481 do not.
    let out = raw(e.http, &head_of(20_480, "/a"), WAIT).await;
    assert_eq!(responses(&out), [(200, "a".to_string())]);
    let started = std::time::Instant::now();
    let out = raw(e.http, &head_of(20_481, "/a"), WAIT).await;
    assert_refused(&out, 413, "head of 20,481 bytes");
    assert!(started.elapsed() < WAIT, "the connection was not closed");
    // The URL: 8,192 bytes pass, 8,193 do not.
    let target = |n: usize| format!("/a?{}", "q".repeat(n - 3));
    let out = raw(e.http, &head_of(9_000, &target(8_192)), WAIT).await;
    assert_eq!(responses(&out), [(200, "a".to_string())]);
    let out = raw(e.http, &head_of(9_000, &target(8_193)), WAIT).await;
    assert_refused(&out, 413, "URL of 8,193 bytes");
    // Far beyond hyper's own buffer (64 KiB): the same 413, not hyper's 431.
    let out = raw(e.http, &head_of(200_000, "/a"), WAIT).await;
    assert_refused(&out, 413, "head of 200,000 bytes");
    // On a keep-alive connection the requests before an oversized one are answered.
    let mut two = b"GET /a HTTP/1.1\r\nHost: d.ledge.localhost\r\n\r\n".to_vec();
    two.extend_from_slice(&head_of(30_000, "/a"));
    let out = raw(e.http, &two, WAIT).await;
    let got: Vec<u16> = responses(&out).iter().map(|r| r.0).collect();
    assert_eq!(got, [200, 413], "{}", String::from_utf8_lossy(&out));
    assert_eq!(o.hits("/a"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_host_smuggling_and_bodies() {
    let (o, e) = setup().await;
    for host in ["bad host", "a/b", ""] {
        let req = format!("GET /a HTTP/1.1\r\nHost: {host}\r\n\r\n");
        let s = status_of(&raw(e.http, req.as_bytes(), WAIT).await);
        assert_eq!(s, 400, "host {host:?}");
    }
    let s = status_of(&raw(e.http, b"GET /a HTTP/1.1\r\n\r\n", WAIT).await);
    assert_eq!(s, 400, "missing Host");
    let smuggle = b"POST /echo HTTP/1.1\r\nHost: d.ledge.localhost\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /a HTTP/1.1\r\nHost: d.ledge.localhost\r\n\r\n";
    let out = raw(e.http, smuggle, WAIT).await;
    assert_eq!(status_of(&out), 400, "{}", String::from_utf8_lossy(&out));
    assert_eq!(o.hits("/echo"), 0);
    assert_eq!(
        o.hits("/a"),
        0,
        "the smuggled request never reached the origin"
    );

    let r = client::request(e.http, "GET", "d.ledge.localhost", "/a", &[], "body").await;
    assert_eq!(r.status, 403, "GET with a body");
    let r = client::request(
        e.http,
        "POST",
        "d.ledge.localhost",
        "/echo",
        &[],
        vec![b'z'; 2000],
    )
    .await;
    assert_eq!(r.status, 413, "body over --max-body-size");
    let r = client::request(
        e.http,
        "POST",
        "d.ledge.localhost",
        "/echo",
        &[],
        vec![b'z'; 900],
    )
    .await;
    assert_eq!((r.status, r.body.len()), (200, 900));
    // Chunked body over the cap.
    let mut chunked =
        b"POST /echo HTTP/1.1\r\nHost: d.ledge.localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    for _ in 0..3 {
        chunked.extend_from_slice(b"258\r\n");
        chunked.extend_from_slice(&[b'c'; 600]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let s = status_of(&raw(e.http, &chunked, WAIT).await);
    assert!(s == 413 || s == 0, "chunked over the cap: {s}");
    // Garbage request line.
    let out = raw(e.http, b"\x00\x01garbage\r\n\r\n", WAIT).await;
    assert!(out.is_empty() || status_of(&out) == 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggling_attempts_get_400_and_never_reach_the_origin() {
    let (o, e) = setup().await;
    // Each attack is followed by a request that only exists if the framing is read the
    // attacker's way; neither may reach the origin.
    let next = "GET /a HTTP/1.1\r\nHost: d.ledge.localhost\r\n\r\n";
    let attacks = [
        (
            "CL+TE",
            "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        ),
        (
            "TE+CL",
            "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
        ),
        (
            "two Content-Lengths",
            "Content-Length: 5\r\nContent-Length: 48\r\n",
        ),
        ("Content-Length list", "Content-Length: 5, 48\r\n"),
        ("TE gzip", "Transfer-Encoding: gzip\r\n"),
        ("TE list", "Transfer-Encoding: chunked, identity\r\n"),
        ("space before colon", "Transfer-Encoding : chunked\r\n"),
        (
            "TE twice",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n",
        ),
        ("folded TE", "X-A: 1\r\n Transfer-Encoding: chunked\r\n"),
        (
            "TE with a control byte",
            "Transfer-Encoding: \x0bchunked\r\n",
        ),
    ];
    for (what, headers) in attacks {
        let req = format!(
            "POST /echo HTTP/1.1\r\nHost: d.ledge.localhost\r\n{headers}\r\n0\r\n\r\n{next}"
        );
        let started = std::time::Instant::now();
        let out = raw(e.http, req.as_bytes(), WAIT).await;
        assert_refused(&out, 400, what);
        assert!(
            started.elapsed() < WAIT,
            "{what}: the connection was not closed"
        );
    }
    // An attack in the second request of a keep-alive connection: the first is served.
    let req = format!(
        "GET /a HTTP/1.1\r\nHost: d.ledge.localhost\r\n\r\n\
         POST /echo HTTP/1.1\r\nHost: d.ledge.localhost\r\nContent-Length: 5\r\n\
         Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n{next}"
    );
    let out = raw(e.http, req.as_bytes(), WAIT).await;
    let got: Vec<u16> = responses(&out).iter().map(|r| r.0).collect();
    assert_eq!(got, [200, 400], "{}", String::from_utf8_lossy(&out));
    assert_eq!(o.hits("/echo"), 0, "no attack reached the origin");
    assert_eq!(o.hits("/a"), 1, "only the request before the attack");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_with_bodies_are_all_answered() {
    let (o, e) = setup().await;
    // A body that looks like a smuggling head is just a body.
    let body = "GET /a HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
    let req = format!(
        "POST /echo HTTP/1.1\r\nHost: d.ledge.localhost\r\nContent-Length: {}\r\n\r\n{body}\
         POST /echo HTTP/1.1\r\nHost: d.ledge.localhost\r\nTransfer-Encoding: chunked\r\n\r\n\
         5\r\nhello\r\n0\r\n\r\n\
         GET /a HTTP/1.1\r\nHost: d.ledge.localhost\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let out = raw(e.http, req.as_bytes(), WAIT).await;
    assert_eq!(
        responses(&out),
        [
            (200, body.to_string()),
            (200, "hello".to_string()),
            (200, "a".to_string())
        ],
        "{}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!((o.hits("/echo"), o.hits("/a")), (2, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off() {
    let (_o, e) = setup().await;
    let started = std::time::Instant::now();
    // Half a request head, then silence: the edge must close within the header timeout.
    let out = raw(
        e.http,
        b"GET /a HTTP/1.1\r\nHost: d.le",
        Duration::from_secs(8),
    )
    .await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "connection held for {took:?}"
    );
    let s = status_of(&out);
    assert!(s == 0 || s == 408, "status {s}");
    // The edge still serves.
    assert_eq!(
        client::get(e.http, "d.ledge.localhost", "/a").await.status,
        200
    );
}
