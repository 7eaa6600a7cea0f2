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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_heads_and_urls_get_413_and_close() {
    let (o, e) = setup().await;
    let big = "x".repeat(21_000);
    let req = format!("GET /a HTTP/1.1\r\nHost: d.ledge.localhost\r\nX-Big: {big}\r\n\r\n");
    let out = raw(e.http, req.as_bytes(), WAIT).await;
    assert_eq!(
        status_of(&out),
        413,
        "{}",
        String::from_utf8_lossy(&out[..out.len().min(300)])
    );
    let r = parse_raw(&out).expect("reply");
    assert_eq!(r.header("connection"), "close");
    assert_eq!(r.x_cache(), "Error from cloudfront");

    let long = format!("/a?{}", "q".repeat(8_200));
    let req = format!("GET {long} HTTP/1.1\r\nHost: d.ledge.localhost\r\n\r\n");
    assert_eq!(status_of(&raw(e.http, req.as_bytes(), WAIT).await), 413);
    // Just under the limits passes.
    let ok = format!("/a?{}", "q".repeat(8_000));
    let r = client::get(e.http, "d.ledge.localhost", &ok).await;
    assert_eq!(r.status, 200);
    // Far beyond hyper's buffer: still an error status and a closed connection.
    let huge = "y".repeat(200_000);
    let req = format!("GET /a HTTP/1.1\r\nHost: d.ledge.localhost\r\nX-Huge: {huge}\r\n\r\n");
    let out = raw(e.http, req.as_bytes(), WAIT).await;
    let s = status_of(&out);
    assert!(s == 431 || s == 413 || s == 400, "status {s}");
    assert_eq!(o.hits("/a"), 1);
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
