//! Graceful stop: on SIGTERM the edge stops accepting, lets requests in flight finish (up to
//! `--drain-timeout`), closes idle connections, and exits 0.

use std::time::{Duration, Instant};

use ledge_test::client;
use ledge_test::edge::Edge;
use ledge_test::origin::{Origin, Route, RunningOrigin};
use ledge_test::snapshot::{self, CACHING_DISABLED};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_ledge");
const H: &str = "d.ledge.localhost";

async fn start(slow: Duration, drain_timeout: &str) -> (RunningOrigin, Edge) {
    let o = Origin::new()
        .route("/slow", Route::ok("finished").delay(slow))
        .route("/a", Route::ok("a"))
        .run()
        .await;
    let mut d = snapshot::distribution("E1", H, o.port());
    d["Config"]["Origins"][0]["CustomOriginConfig"]["OriginReadTimeout"] = json!(30);
    d["Config"]["DefaultCacheBehavior"]["CachePolicyId"] = json!(CACHING_DISABLED);
    let e = Edge::builder(BIN)
        .snapshot(snapshot::with(1, vec![d]))
        .arg("--drain-timeout")
        .arg(drain_timeout)
        .start();
    (o, e)
}

/// Waits until the origin has received the slow request, so it is really in flight.
async fn in_flight(o: &RunningOrigin) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while o.hits("/slow") == 0 {
        assert!(
            Instant::now() < deadline,
            "the request never reached the origin"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_requests_in_flight_finish_then_exits_0() {
    let (o, mut e) = start(Duration::from_secs(2), "20").await;
    let addr = e.http;
    // A keep-alive connection that served a request and now idles.
    let mut idle = TcpStream::connect(addr).await.expect("connect");
    idle.write_all(format!("GET /a HTTP/1.1\r\nHost: {H}\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut buf = vec![0; 4096];
    let n = idle.read(&mut buf).await.expect("read");
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );

    let slow =
        tokio::spawn(async move { client::try_request(addr, "GET", H, "/slow", &[], "").await });
    in_flight(&o).await;
    let signalled = Instant::now();
    e.sigterm();
    let draining = tokio::task::block_in_place(|| {
        e.wait_for_log("edge draining: listeners closed", Duration::from_secs(10))
    });
    assert!(draining, "no drain log; stderr:\n{}", e.stderr());
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "a new connection was accepted while draining"
    );
    // The idle connection is closed at once, without an answer.
    let n = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf))
        .await
        .expect("the idle connection stayed open")
        .unwrap_or(0);
    assert_eq!(n, 0, "{}", String::from_utf8_lossy(&buf[..n]));
    // The request in flight gets its whole answer.
    let r = slow
        .await
        .expect("task")
        .expect("the request in flight failed");
    assert_eq!((r.status, r.text().as_str()), (200, "finished"));
    let status = tokio::task::block_in_place(|| e.wait_exit(Duration::from_secs(10)));
    let status = status.unwrap_or_else(|| panic!("still running; stderr:\n{}", e.stderr()));
    assert_eq!(status.code(), Some(0), "stderr:\n{}", e.stderr());
    // Well before the 20 s drain timeout: it exited because nothing was left.
    assert!(
        signalled.elapsed() < Duration::from_secs(10),
        "{:?}",
        signalled.elapsed()
    );
    assert!(e.stderr().contains("edge drained"), "{}", e.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drain_timeout_bounds_the_wait() {
    let (o, mut e) = start(Duration::from_secs(20), "1").await;
    let addr = e.http;
    let slow =
        tokio::spawn(async move { client::try_request(addr, "GET", H, "/slow", &[], "").await });
    in_flight(&o).await;
    let signalled = Instant::now();
    e.sigterm();
    let status = tokio::task::block_in_place(|| e.wait_exit(Duration::from_secs(10)));
    let took = signalled.elapsed();
    let status = status.unwrap_or_else(|| panic!("still running; stderr:\n{}", e.stderr()));
    assert_eq!(status.code(), Some(0), "stderr:\n{}", e.stderr());
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(5)).contains(&took),
        "exited after {took:?} with a 1 s drain timeout"
    );
    assert!(e
        .stderr()
        .contains("drain timeout: exiting with connections open"));
    assert!(
        slow.await.expect("task").is_err(),
        "the cut-off request cannot succeed"
    );
}
