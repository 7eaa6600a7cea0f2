//! The cache through the real binary: hits and misses, `X-Cache` and `Age`, collapsing, TTL
//! edge cases, conditional requests and revalidation, ranges, HEAD, invalidation carried by a
//! snapshot, compression, and error caching.

use std::time::Duration;

use ledge_test::client::{self, Reply};
use ledge_test::edge::Edge;
use ledge_test::origin::{Origin, Route};
use ledge_test::snapshot::{self, CACHING_DISABLED};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_ledge");
const H: &str = "d.ledge.localhost";

fn legacy(d: &mut serde_json::Value, min: u64, default: u64, max: u64) {
    let b = &mut d["Config"]["DefaultCacheBehavior"];
    b.as_object_mut().expect("behavior").remove("CachePolicyId");
    b["ForwardedValues"] = json!({"QueryString": false});
    b["MinTTL"] = json!(min);
    b["DefaultTTL"] = json!(default);
    b["MaxTTL"] = json!(max);
}

async fn get(e: &Edge, path: &str) -> Reply {
    client::get(e.http, H, path).await
}

async fn get_with(e: &Edge, path: &str, headers: &[(&str, &str)]) -> Reply {
    client::request(e.http, "GET", H, path, headers, "").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hit_miss_age_and_head() {
    let o = Origin::new()
        .route(
            "/a",
            Route::ok("cached body").header("cache-control", "max-age=60"),
        )
        .run()
        .await;
    let e = Edge::builder(BIN)
        .snapshot(snapshot::single("E1", H, o.port()))
        .start();
    let r = get(&e, "/a").await;
    assert_eq!((r.status, r.x_cache()), (200, "Miss from cloudfront"));
    let r = get(&e, "/a").await;
    assert_eq!((r.status, r.x_cache()), (200, "Hit from cloudfront"));
    assert_eq!(r.text(), "cached body");
    assert!(r.header("age").parse::<u64>().is_ok(), "{:?}", r.headers);
    // The query string is not in the key (CachingOptimized).
    let r = get(&e, "/a?v=2").await;
    assert_eq!(r.x_cache(), "Hit from cloudfront");
    // HEAD is answered from the GET entry.
    let r = client::request(e.http, "HEAD", H, "/a", &[], "").await;
    assert_eq!((r.status, r.x_cache()), (200, "Hit from cloudfront"));
    assert!(r.body.is_empty());
    assert_eq!(o.hits("/a"), 1);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = get(&e, "/a").await;
    let age: u64 = r.header("age").parse().expect("age");
    assert!((2..=4).contains(&age), "age {age}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_collapse_into_one_fetch() {
    let o = Origin::new()
        .route(
            "/slow",
            Route::ok("once")
                .header("cache-control", "max-age=60")
                .delay(Duration::from_millis(500)),
        )
        .run()
        .await;
    let e = Edge::builder(BIN)
        .snapshot(snapshot::single("E1", H, o.port()))
        .start();
    let addr = e.http;
    let tasks: Vec<_> = (0..20)
        .map(|_| tokio::spawn(async move { client::get(addr, H, "/slow").await }))
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        let r = t.await.expect("task");
        assert_eq!((r.status, r.text().as_str()), (200, "once"));
        statuses.push(r.x_cache().to_string());
    }
    assert_eq!(
        o.hits("/slow"),
        1,
        "one origin fetch for 20 concurrent misses"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| *s == "Miss from cloudfront")
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_edge_cases() {
    let o = Origin::new()
        .route(
            "/nostore",
            Route::ok("n").header("cache-control", "no-store"),
        )
        .route(
            "/private",
            Route::ok("p").header("cache-control", "private, max-age=60"),
        )
        .route(
            "/maxage0",
            Route::ok("z").header("cache-control", "max-age=0"),
        )
        .route(
            "/short",
            Route::ok("s").header("cache-control", "max-age=2"),
        )
        .route("/plain", Route::ok("d"))
        .route(
            "/smax",
            Route::ok("m").header("cache-control", "max-age=0, s-maxage=60"),
        )
        .route(
            "/expired",
            Route::ok("x").header("expires", "Thu, 01 Jan 1970 00:00:00 GMT"),
        )
        .route("/missing", Route::status(404, "nope"))
        .route("/forbidden", Route::status(403, "no"))
        .run()
        .await;
    let mut d = snapshot::distribution("E1", H, o.port());
    legacy(&mut d, 0, 60, 600);
    let e = Edge::builder(BIN)
        .snapshot(snapshot::with(1, vec![d]))
        .start();
    for p in [
        "/nostore",
        "/private",
        "/maxage0",
        "/short",
        "/plain",
        "/smax",
        "/expired",
        "/missing",
        "/forbidden",
    ] {
        get(&e, p).await;
        get(&e, p).await;
    }
    assert_eq!(o.hits("/nostore"), 2, "no-store is never reused");
    assert_eq!(o.hits("/private"), 2, "private is never reused (MinTTL 0)");
    assert_eq!(o.hits("/maxage0"), 2);
    assert_eq!(o.hits("/expired"), 2, "an Expires in the past");
    assert_eq!(o.hits("/short"), 1);
    assert_eq!(o.hits("/plain"), 1, "DefaultTTL applies");
    assert_eq!(o.hits("/smax"), 1, "s-maxage beats max-age");
    assert_eq!(o.hits("/missing"), 1, "404 is cached (ErrorCachingMinTTL)");
    assert_eq!(o.hits("/forbidden"), 2, "403 without max-age is not cached");
    let r = get(&e, "/missing").await;
    assert_eq!((r.status, r.x_cache()), (404, "Error from cloudfront"));
    tokio::time::sleep(Duration::from_millis(2200)).await;
    get(&e, "/short").await;
    assert_eq!(o.hits("/short"), 2, "expired after max-age=2");

    // MinTTL above the origin's max-age wins.
    let mut d = snapshot::distribution("E1", H, o.port());
    legacy(&mut d, 30, 60, 600);
    d["Config"]["Comment"] = json!("min ttl");
    e.write_snapshot(&snapshot::with(2, vec![d]));
    e.sighup();
    ledge_test::assert_eventually!(e.stderr().contains("config snapshot installed"));
    let before = o.hits("/maxage0");
    get(&e, "/maxage0").await;
    get(&e, "/maxage0").await;
    assert!(o.hits("/maxage0") - before <= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_requests_revalidation_and_ranges() {
    let o = Origin::new()
        .route(
            "/v",
            Route::ok("0123456789")
                .header("cache-control", "max-age=3")
                .header("etag", "\"v1\"")
                .header("last-modified", "Wed, 21 Oct 2015 07:28:00 GMT"),
        )
        .run()
        .await;
    let e = Edge::builder(BIN)
        .snapshot(snapshot::single("E1", H, o.port()))
        .start();
    assert_eq!(get(&e, "/v").await.status, 200);
    let r = get_with(&e, "/v", &[("if-none-match", "\"v1\"")]).await;
    assert_eq!((r.status, r.x_cache()), (304, "Hit from cloudfront"));
    let r = get_with(&e, "/v", &[("if-none-match", "\"other\"")]).await;
    assert_eq!(r.status, 200);
    let r = get_with(&e, "/v", &[("range", "bytes=2-4")]).await;
    assert_eq!((r.status, r.text().as_str()), (206, "234"));
    assert_eq!(r.header("content-range"), "bytes 2-4/10");
    let r = get_with(&e, "/v", &[("range", "bytes=50-60")]).await;
    assert_eq!(r.status, 416);
    assert_eq!(o.hits("/v"), 1);
    // After expiry, the edge revalidates with the stored ETag.
    o.set_route(
        "/v",
        Route::status(304, "")
            .header("cache-control", "max-age=60")
            .header("etag", "\"v1\""),
    );
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let r = get(&e, "/v").await;
    assert_eq!((r.status, r.x_cache()), (200, "RefreshHit from cloudfront"));
    assert_eq!(r.text(), "0123456789");
    let seen = o.last("/v").expect("revalidation");
    assert_eq!(
        seen.headers
            .get("if-none-match")
            .and_then(|v| v.to_str().ok()),
        Some("\"v1\"")
    );
    let r = get(&e, "/v").await;
    assert_eq!(r.x_cache(), "Hit from cloudfront");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidation_from_a_snapshot_and_compression() {
    let text = "hello compressible world ".repeat(100);
    let o = Origin::new()
        .route(
            "/img/a.jpg",
            Route::ok("a").header("cache-control", "max-age=600"),
        )
        .route(
            "/img/b.jpg",
            Route::ok("b").header("cache-control", "max-age=600"),
        )
        .route(
            "/keep",
            Route::ok("k").header("cache-control", "max-age=600"),
        )
        .route(
            "/text",
            Route::ok(text.clone())
                .header("cache-control", "max-age=600")
                .header("content-type", "text/plain; charset=utf-8")
                .header("etag", "\"t1\""),
        )
        .run()
        .await;
    let mut d = snapshot::distribution("E1", H, o.port());
    d["Config"]["DefaultCacheBehavior"]["Compress"] = json!(true);
    let e = Edge::builder(BIN)
        .snapshot(snapshot::with(1, vec![d.clone()]))
        .start();
    for p in ["/img/a.jpg", "/img/b.jpg", "/keep"] {
        get(&e, p).await;
        assert_eq!(get(&e, p).await.x_cache(), "Hit from cloudfront");
    }
    let mut s = snapshot::with(2, vec![d.clone()]);
    s["Invalidations"] = json!([{"Id": "I1", "DistributionId": "E1", "Paths": ["/img/*"]}]);
    e.write_snapshot(&s);
    e.sighup();
    ledge_test::assert_eventually!(get(&e, "/img/a.jpg").await.x_cache() == "Miss from cloudfront");
    assert_eq!(
        get(&e, "/img/b.jpg").await.x_cache(),
        "Miss from cloudfront"
    );
    assert_eq!(get(&e, "/keep").await.x_cache(), "Hit from cloudfront");
    // The same invalidation in the next snapshot is not applied again.
    s["Version"] = json!(3);
    e.write_snapshot(&s);
    e.sighup();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(get(&e, "/img/a.jpg").await.x_cache(), "Hit from cloudfront");

    // Compression: gzip and br by Accept-Encoding, identity otherwise.
    let r = get_with(&e, "/text", &[("accept-encoding", "gzip")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), "gzip");
    assert!(r.body.len() < text.len());
    assert_eq!(r.header("etag"), "W/\"t1\"");
    let r = get_with(&e, "/text", &[("accept-encoding", "gzip, deflate, br")]).await;
    assert_eq!(r.header("content-encoding"), "br");
    let r = get(&e, "/text").await;
    assert_eq!(r.header("content-encoding"), "");
    assert_eq!(r.text(), text);
    // curl decodes what it asked for.
    let url = format!("{}/text", e.http_url());
    let host = format!("Host: {H}");
    let r = tokio::task::spawn_blocking(move || {
        ledge_test::client::curl(&["--compressed", "-H", &host, &url])
    })
    .await
    .expect("curl");
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caching_disabled_streams_and_generated_errors_are_cached() {
    let o = Origin::new()
        .route("/big", Route::ok(vec![b'q'; 300_000]).chunked())
        .run()
        .await;
    let closed = ledge_test::origin::closed_port().await;
    let mut d = snapshot::distribution("E1", H, o.port());
    d["Config"]["DefaultCacheBehavior"]["CachePolicyId"] = json!(CACHING_DISABLED);
    let down = snapshot::distribution("E2", "down.ledge.localhost", closed);
    let e = Edge::builder(BIN)
        .snapshot(snapshot::with(1, vec![d, down]))
        .start();
    let r = get(&e, "/big").await;
    assert_eq!((r.status, r.body.len()), (200, 300_000));
    assert_eq!(r.x_cache(), "Miss from cloudfront");
    get(&e, "/big").await;
    assert_eq!(o.hits("/big"), 2);
    // An unreachable origin's 502 is cached like an origin 502 (ErrorCachingMinTTL 10 s).
    let r = client::get(e.http, "down.ledge.localhost", "/x").await;
    assert_eq!((r.status, r.x_cache()), (502, "Error from cloudfront"));
    let r = client::get(e.http, "down.ledge.localhost", "/x").await;
    assert_eq!(r.status, 502);
    assert!(
        !r.header("age").is_empty(),
        "served from cache: {:?}",
        r.headers
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_body_over_the_object_size_streams_through_uncached() {
    // 3,000 bytes in two chunks of 1,500: the second pushes the buffer past the 2,000-byte
    // limit, so what was buffered must be put back in front of the rest.
    let big: String = (0..3000u32)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let o = Origin::new()
        .route(
            "/big",
            Route::ok(big.clone())
                .header("cache-control", "max-age=60")
                .chunked(),
        )
        .route(
            "/small",
            Route::ok("s".repeat(1500))
                .header("cache-control", "max-age=60")
                .chunked(),
        )
        .run()
        .await;
    let e = Edge::builder(BIN)
        .snapshot(snapshot::single("E1", H, o.port()))
        .arg("--cache-max-object-size")
        .arg("2000")
        .start();
    for _ in 0..2 {
        let r = get(&e, "/big").await;
        assert_eq!((r.status, r.x_cache()), (200, "Miss from cloudfront"));
        assert_eq!(r.text(), big);
    }
    assert_eq!(o.hits("/big"), 2, "an object over the limit is not cached");
    // Under the limit, a chunked body is still cached.
    assert_eq!(get(&e, "/small").await.x_cache(), "Miss from cloudfront");
    let r = get(&e, "/small").await;
    assert_eq!((r.x_cache(), r.body.len()), ("Hit from cloudfront", 1500));
    assert_eq!(o.hits("/small"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_while_revalidate_answers_stale_and_refreshes_in_the_background() {
    let o = Origin::new()
        .route(
            "/swr",
            Route::ok("old").header("cache-control", "max-age=1, stale-while-revalidate=30"),
        )
        .run()
        .await;
    let mut d = snapshot::distribution("E1", H, o.port());
    d["Config"]["Origins"][0]["CustomOriginConfig"]["OriginReadTimeout"] = json!(10);
    let e = Edge::builder(BIN)
        .snapshot(snapshot::with(1, vec![d]))
        .start();
    let r = get(&e, "/swr").await;
    assert_eq!(
        (r.x_cache(), r.text().as_str()),
        ("Miss from cloudfront", "old")
    );
    // The new version is slow, so a viewer that waited for it would notice.
    o.set_route(
        "/swr",
        Route::ok("new")
            .header("cache-control", "max-age=60")
            .delay(Duration::from_secs(3)),
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let started = std::time::Instant::now();
    let r = get(&e, "/swr").await;
    assert_eq!(
        (r.x_cache(), r.text().as_str()),
        ("Hit from cloudfront", "old")
    );
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "the stale answer waited for the origin: {:?}",
        started.elapsed()
    );
    // Until the refresh lands every answer is the stale copy; then the new one, from cache.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let r = get(&e, "/swr").await;
        assert_eq!(r.x_cache(), "Hit from cloudfront");
        if r.text() == "new" {
            break;
        }
        assert_eq!(r.text(), "old");
        assert!(
            std::time::Instant::now() < deadline,
            "the refresh never landed ({} origin hits); edge log:\n{}",
            o.hits("/swr"),
            e.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        o.hits("/swr"),
        2,
        "one background refresh for all the stale answers"
    );
}
