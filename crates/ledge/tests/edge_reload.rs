//! `ledge edge --config-file`: reload on SIGHUP and on file change, refusal of invalid or older
//! snapshots, and a swap under load without a failed request.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ledge_test::assert_eventually;
use ledge_test::client;
use ledge_test::edge::Edge;
use ledge_test::origin::{Origin, Route};
use ledge_test::snapshot::{self, CACHING_DISABLED};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_ledge");

fn dist(port: u16, comment: &str) -> serde_json::Value {
    let mut d = snapshot::distribution("E1", "d.ledge.localhost", port);
    d["Config"]["DefaultCacheBehavior"]["CachePolicyId"] = json!(CACHING_DISABLED);
    d["Config"]["Comment"] = json!(comment);
    d
}

async fn body(e: &Edge, host: &str) -> (u16, String) {
    let r = client::get(e.http, host, "/").await;
    (r.status, r.text())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_on_file_change_and_sighup_and_refuses_bad_snapshots() {
    let a = Origin::new().route("/", Route::ok("A")).run().await;
    let b = Origin::new().route("/", Route::ok("B")).run().await;
    let e = Edge::builder(BIN)
        .snapshot(snapshot::with(1, vec![dist(a.port(), "")]))
        .start();
    let h = "d.ledge.localhost";
    assert_eq!(body(&e, h).await, (200, "A".into()));

    // File change: version 2 points at origin B.
    e.write_snapshot(&snapshot::with(2, vec![dist(b.port(), "")]));
    assert_eventually!(body(&e, h).await == (200, "B".into()));

    // Invalid JSON is refused; the old config keeps serving.
    std::fs::write(&e.snapshot_file, b"{ not json").expect("write");
    e.sighup();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(body(&e, h).await, (200, "B".into()));
    assert_eventually!(e.stderr().contains("config snapshot refused"));

    // A valid snapshot with broken references is refused too.
    let mut broken = dist(a.port(), "");
    broken["Config"]["DefaultCacheBehavior"]["TargetOriginId"] = json!("missing");
    e.write_snapshot(&snapshot::with(3, vec![broken]));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(body(&e, h).await, (200, "B".into()));

    // A lower version is never installed.
    e.write_snapshot(&snapshot::with(1, vec![dist(a.port(), "old")]));
    e.sighup();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(body(&e, h).await, (200, "B".into()));

    // SIGHUP picks up a newer one at once (even if the poll has not run).
    e.write_snapshot(&snapshot::with(4, vec![dist(a.port(), "")]));
    e.sighup();
    assert_eventually!(body(&e, h).await == (200, "A".into()));

    // A new host appears, the old one disappears.
    let mut other = dist(b.port(), "");
    other["DomainName"] = json!("new.ledge.localhost");
    e.write_snapshot(&snapshot::with(5, vec![other]));
    assert_eventually!(body(&e, "new.ledge.localhost").await == (200, "B".into()));
    assert_eq!(body(&e, h).await.0, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swap_under_load_fails_no_request() {
    let a = Origin::new()
        .route("/", Route::ok("A").body_delay(Duration::from_millis(20)))
        .run()
        .await;
    let b = Origin::new().route("/", Route::ok("B")).run().await;
    let e = Arc::new(
        Edge::builder(BIN)
            .snapshot(snapshot::with(1, vec![dist(a.port(), "")]))
            .start(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (e, stop, failures, done) = (e.clone(), stop.clone(), failures.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match client::try_request(e.http, "GET", "d.ledge.localhost", "/", &[], "").await {
                    Ok(r) if r.status == 200 && (r.text() == "A" || r.text() == "B") => {}
                    other => {
                        eprintln!("failed: {other:?}");
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for v in 2..8u64 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let port = if v % 2 == 0 { b.port() } else { a.port() };
        e.write_snapshot(&snapshot::with(v, vec![dist(port, &format!("v{v}"))]));
        e.sighup();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("load task");
    }
    assert!(done.load(Ordering::Relaxed) > 50, "the load ran");
    assert_eq!(failures.load(Ordering::Relaxed), 0);
    assert!(e.stderr().contains("config snapshot installed"));
}
