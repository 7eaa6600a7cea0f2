//! Origins over HTTPS (trusted through `--origin-ca`, refused otherwise), `match-viewer`, query
//! and cookie forwarding by policy, and settings from `--config FILE` and the environment.

use ledge_test::certs::SelfSigned;
use ledge_test::client;
use ledge_test::edge::Edge;
use ledge_test::origin::{Origin, Route};
use ledge_test::snapshot::{self, CACHING_DISABLED};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_ledge");
const H: &str = "d.ledge.localhost";

fn https_origin(port: u16, policy: &str, http_port: u16) -> serde_json::Value {
    let mut d = snapshot::distribution("E1", H, http_port);
    d["Config"]["Origins"][0]["DomainName"] = json!("localhost");
    d["Config"]["Origins"][0]["CustomOriginConfig"]["HTTPSPort"] = json!(port);
    d["Config"]["Origins"][0]["CustomOriginConfig"]["OriginProtocolPolicy"] = json!(policy);
    d["Config"]["DefaultCacheBehavior"]["CachePolicyId"] = json!(CACHING_DISABLED);
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_origins_need_a_trusted_certificate() {
    let cert = SelfSigned::new(&["localhost"]);
    let tls = Origin::new()
        .route("/p", Route::ok("over tls"))
        .run_tls(&cert)
        .await;
    let plain = Origin::new().route("/p", Route::ok("plain")).run().await;
    let dir = tempfile::tempdir().expect("tmp");
    let (ca, _) = cert.write_to(dir.path(), "origin-ca");

    let trusted = Edge::builder(BIN)
        .snapshot(snapshot::with(
            1,
            vec![https_origin(tls.port(), "https-only", plain.port())],
        ))
        .arg("--origin-ca")
        .arg(ca.display().to_string())
        .start();
    let r = client::get(trusted.http, H, "/p").await;
    assert_eq!((r.status, r.text().as_str()), (200, "over tls"));
    let seen = tls.last("/p").expect("origin request");
    assert_eq!(
        seen.headers.get("host").and_then(|v| v.to_str().ok()),
        Some(&*format!("localhost:{}", tls.port()))
    );

    // Without the CA the self-signed origin is refused: 502.
    let untrusted = Edge::builder(BIN)
        .snapshot(snapshot::with(
            1,
            vec![https_origin(tls.port(), "https-only", plain.port())],
        ))
        .start();
    let r = client::get(untrusted.http, H, "/p").await;
    assert_eq!((r.status, r.x_cache()), (502, "Error from cloudfront"));

    // match-viewer: plain HTTP viewers reach the HTTP port.
    let mv = Edge::builder(BIN)
        .snapshot(snapshot::with(
            1,
            vec![https_origin(tls.port(), "match-viewer", plain.port())],
        ))
        .start();
    let r = client::get(mv.http, H, "/p").await;
    assert_eq!(r.text(), "plain");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_choose_the_query_cookies_and_headers_sent() {
    let o = Origin::new().route("/q", Route::ok("q")).run().await;
    let mut d = snapshot::distribution("E1", H, o.port());
    d["Config"]["DefaultCacheBehavior"]["CachePolicyId"] =
        json!("c0ffee00-0000-4000-8000-000000000001");
    let mut s = snapshot::with(1, vec![d]);
    s["CachePolicies"] = json!([{"Id": "c0ffee00-0000-4000-8000-000000000001", "Config": {
    "Name": "custom", "MinTTL": 0, "DefaultTTL": 0, "MaxTTL": 0,
    "ParametersInCacheKeyAndForwardedToOrigin": {
        "EnableAcceptEncodingGzip": false,
        "HeadersConfig": {"HeaderBehavior": "whitelist", "Headers": ["X-Version"]},
        "CookiesConfig": {"CookieBehavior": "whitelist", "Cookies": ["session"]},
        "QueryStringsConfig": {"QueryStringBehavior": "whitelist", "QueryStrings": ["b", "a"]}
    }}}]);
    let e = Edge::builder(BIN).snapshot(s).start();
    let r = client::request(
        e.http,
        "GET",
        H,
        "/q?a=1&c=2&b=3",
        &[
            ("x-version", "7"),
            ("x-other", "no"),
            ("cookie", "tracking=1; session=abc"),
        ],
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    let seen = o.last("/q").expect("request");
    let h = |n: &str| {
        seen.headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    assert_eq!(seen.uri, "/q?a=1&b=3");
    assert_eq!(h("x-version").as_deref(), Some("7"));
    assert_eq!(h("x-other"), None);
    assert_eq!(h("cookie").as_deref(), Some("session=abc"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_from_config_file_and_environment() {
    let o = Origin::new().route("/", Route::ok("x")).run().await;
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = dir.path().join("edge.toml");
    std::fs::write(
        &cfg,
        "# edge settings\npop = \"SEA19-C1\"\nedge-domain = \"edge.test\"\n",
    )
    .expect("write");
    let e = Edge::builder(BIN)
        .snapshot(snapshot::single("E1", H, o.port()))
        .arg("--config")
        .arg(cfg.display().to_string())
        .start();
    let r = client::get(e.http, H, "/").await;
    assert_eq!(r.header("x-amz-cf-pop"), "SEA19-C1");
    assert!(r.header("via").ends_with(".edge.test (CloudFront)"));
    // The environment beats the file.
    let e = Edge::builder(BIN)
        .snapshot(snapshot::single("E1", H, o.port()))
        .arg("--config")
        .arg(cfg.display().to_string())
        .env("LEDGE_POP", "FRA2")
        .start();
    let r = client::get(e.http, H, "/").await;
    assert_eq!(r.header("x-amz-cf-pop"), "FRA2");
}

#[test]
fn refuses_to_start_on_an_invalid_snapshot() {
    let dir = tempfile::tempdir().expect("tmp");
    let f = dir.path().join("s.json");
    std::fs::write(&f, "{\"Version\": 1, \"Distributions\": [{}]}").expect("write");
    let out = std::process::Command::new(BIN)
        .args(["edge", "--edge-listen", "127.0.0.1:0", "--config-file"])
        .arg(&f)
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid config snapshot"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_timeouts_retry_get_but_not_post() {
    let o = Origin::new()
        .route(
            "/flaky",
            Route::ok("second try").delay_first(1, std::time::Duration::from_secs(3)),
        )
        .route(
            "/post",
            Route::ok("late").delay_first(1, std::time::Duration::from_secs(3)),
        )
        .run()
        .await;
    let mut d = snapshot::distribution("E1", H, o.port());
    d["Config"]["Origins"][0]["ConnectionAttempts"] = json!(2);
    d["Config"]["Origins"][0]["CustomOriginConfig"]["OriginReadTimeout"] = json!(1);
    d["Config"]["DefaultCacheBehavior"]["CachePolicyId"] = json!(CACHING_DISABLED);
    let e = Edge::builder(BIN)
        .snapshot(snapshot::with(1, vec![d]))
        .start();
    let started = std::time::Instant::now();
    let r = client::get(e.http, H, "/flaky").await;
    assert_eq!((r.status, r.text().as_str()), (200, "second try"));
    assert_eq!(o.hits("/flaky"), 2, "GET retried after the read timeout");
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    let r = client::request(e.http, "POST", H, "/post", &[], "x").await;
    assert_eq!(r.status, 504, "POST is not retried once sent");
    assert_eq!(o.hits("/post"), 1);
}

/// A loopback port whose listener never accepts and whose accept queue is full, so the
/// kernel drops further SYNs: a connect there neither succeeds nor fails, it times out.
/// The returned values must stay alive for as long as the port should stay silent.
async fn silent_origin() -> (tokio::net::TcpListener, Vec<tokio::net::TcpStream>) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let listener = socket.listen(0).expect("listen");
    let addr = listener.local_addr().expect("addr");
    let mut held = Vec::new();
    // Fill the queue: connects complete until it is full, then one hangs.
    for _ in 0..8 {
        let c = tokio::time::timeout(
            std::time::Duration::from_millis(300),
            tokio::net::TcpStream::connect(addr),
        )
        .await;
        match c {
            Ok(Ok(s)) => held.push(s),
            Ok(Err(e)) => panic!("connect to the silent origin: {e}"),
            Err(_) => return (listener, held),
        }
    }
    panic!("the accept queue never filled up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_timeouts_use_every_attempt_then_504() {
    let (listener, _held) = silent_origin().await;
    let port = listener.local_addr().expect("addr").port();
    let mut d = snapshot::distribution("E1", H, port);
    d["Config"]["Origins"][0]["ConnectionTimeout"] = json!(1);
    d["Config"]["Origins"][0]["ConnectionAttempts"] = json!(2);
    d["Config"]["DefaultCacheBehavior"]["CachePolicyId"] = json!(CACHING_DISABLED);
    let e = Edge::builder(BIN)
        .snapshot(snapshot::with(1, vec![d]))
        .start();
    let started = std::time::Instant::now();
    let r = client::get(e.http, H, "/x").await;
    let took = started.elapsed();
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(r.x_cache(), "Error from cloudfront");
    assert_eq!(r.header("server"), "CloudFront");
    assert!(r
        .text()
        .contains("<TITLE>ERROR: The request could not be satisfied</TITLE>"));
    assert!(r.text().contains("504 ERROR"), "{}", r.text());
    // Two attempts of one second each; one attempt would answer after about one second.
    assert!(
        took >= std::time::Duration::from_millis(1900),
        "answered after {took:?}: not every attempt was made"
    );
    assert!(
        took < std::time::Duration::from_secs(6),
        "answered after {took:?}"
    );
}
