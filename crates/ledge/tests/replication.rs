//! Replication through the real binaries: `ledge control`, three `ledge edge --control-url`
//! processes on loopback (one behind a TCP proxy that can be cut), the AWS CLI.
//!
//! One scenario, in stages, because each stage builds on the fleet's state: the fleet follows
//! changes (distribution, then a Lambda@Edge association) and reports `Deployed`; the control
//! plane dies (edges keep serving, one restarts from its last known good config); an edge is
//! killed mid-update (recovers on restart); a corrupted package is refused (last good keeps
//! serving, the error shows in `ledge edges`, repairing the blob heals it); one edge is
//! partitioned (offline after the heartbeat timeout, not holding `Deployed` back, catches up
//! when the link returns); a revoked token is refused. Throughout, a checker requests every
//! healthy edge and no request may fail.
//!
//! Needs Node.js, Python 3 and the AWS CLI; fails (never skips) without them.

#[path = "replication/fleet.rs"]
mod fleet;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fleet::*;
use serde_json::{json, Value};

const HOST_WAIT: Duration = Duration::from_secs(30);
const HEARTBEAT: u64 = 3;

/// Requests `/index.html` on every edge in `targets` every 20 ms; counts failures.
struct Checker {
    targets: Arc<Mutex<Vec<SocketAddr>>>,
    failures: Arc<Mutex<Vec<String>>>,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Checker {
    fn start(host: String) -> Self {
        let c = Self {
            targets: Arc::default(),
            failures: Arc::default(),
            requests: Arc::default(),
            stop: Arc::default(),
        };
        let (t, f, n, s) = (
            c.targets.clone(),
            c.failures.clone(),
            c.requests.clone(),
            c.stop.clone(),
        );
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let targets = t.lock().map(|v| v.clone()).unwrap_or_default();
                for addr in targets {
                    n.fetch_add(1, Ordering::SeqCst);
                    match get(addr, &host, "/index.html") {
                        Ok((200, body)) if body.contains("from the origin") => {}
                        other => {
                            if let Ok(mut v) = f.lock() {
                                v.push(format!("{addr}: {other:?}"));
                            }
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        c
    }

    /// Changes the edges checked; returns once a round in flight (on the old list) is over.
    fn set(&self, targets: &[SocketAddr]) {
        if let Ok(mut t) = self.targets.lock() {
            *t = targets.to_vec();
        }
        std::thread::sleep(Duration::from_millis(300));
    }

    fn assert_clean(&self) {
        let f = self.failures.lock().map(|v| v.clone()).unwrap_or_default();
        assert!(f.is_empty(), "requests to healthy edges failed: {f:#?}");
    }
}

impl Drop for Checker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn body_of(addr: SocketAddr, host: &str, path: &str) -> String {
    get(addr, host, path).map(|(_, b)| b).unwrap_or_default()
}

fn wait_body(edges: &[SocketAddr], host: &str, path: &str, want: &str) -> Duration {
    wait_until(
        HOST_WAIT,
        &format!("{path} = {want:?} on {edges:?}"),
        || edges.iter().all(|a| body_of(*a, host, path).contains(want)),
    )
}

fn status(api: &str, id: &str) -> String {
    aws_ok(api, &["cloudfront", "get-distribution", "--id", id])["Distribution"]["Status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Fetches the config, lets `edit` change it, puts it back.
fn update(api: &str, id: &str, dir: &std::path::Path, edit: impl FnOnce(&mut Value)) {
    let got = aws_ok(api, &["cloudfront", "get-distribution-config", "--id", id]);
    let etag = got["ETag"].as_str().expect("etag").to_owned();
    let mut config = got["DistributionConfig"].clone();
    edit(&mut config);
    let file = dir.join("update.json");
    std::fs::write(&file, config.to_string()).expect("write config");
    let arg = format!("file://{}", file.display());
    aws_ok(
        api,
        &[
            "cloudfront",
            "update-distribution",
            "--id",
            id,
            "--if-match",
            &etag,
            "--distribution-config",
            &arg,
        ],
    );
}

fn set_function(config: &mut Value, arn: &str) {
    config["CacheBehaviors"]["Items"][0]["LambdaFunctionAssociations"] = json!({
        "Quantity": 1,
        "Items": [{"LambdaFunctionARN": arn, "EventType": "viewer-request", "IncludeBody": false}]
    });
}

fn publish(api: &str, dir: &std::path::Path, text: &str) -> (String, std::path::PathBuf) {
    let zip = node_zip(dir, text, &answering(text));
    let arg = format!("fileb://{}", zip.display());
    aws_ok(
        api,
        &[
            "lambda",
            "update-function-code",
            "--function-name",
            "fleet-fn",
            "--zip-file",
            &arg,
        ],
    );
    let v = aws_ok(
        api,
        &["lambda", "publish-version", "--function-name", "fleet-fn"],
    );
    (v["FunctionArn"].as_str().expect("arn").to_owned(), zip)
}

fn edge_row(list: &[Value], pop: &str) -> Value {
    list.iter()
        .find(|e| e["pop"] == pop)
        .cloned()
        .unwrap_or_else(|| panic!("edge {pop} not listed: {list:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_of_three_edges_follows_and_survives_faults() {
    let origin = ledge_test::origin::Origin::new()
        .route(
            "/index.html",
            ledge_test::origin::Route::ok("hello from the origin"),
        )
        .run()
        .await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("control");
    let data_s = data.display().to_string();
    let port = free_port();
    let mut control = start_control(&data, port, HEARTBEAT);
    let api = format!("http://127.0.0.1:{port}");

    // Tokens: one shared by edges A and B, one of C's own (revoked at the end).
    let token = ledge(&[
        "edge-token",
        "create",
        "--name",
        "fleet",
        "--data-dir",
        &data_s,
    ])
    .trim()
    .to_owned();
    let token_c = ledge(&[
        "edge-token",
        "create",
        "--name",
        "edge-c",
        "--data-dir",
        &data_s,
    ])
    .trim()
    .to_owned();
    assert!(token.starts_with("ledge_et_") && !token.contains('\n'));
    let listed = ledge(&["edge-token", "list", "--data-dir", &data_s]);
    assert!(
        listed.contains("fleet") && listed.contains("edge-c"),
        "{listed}"
    );
    assert!(!listed.contains(&token), "list must not show tokens");

    let api_addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let proxy = Proxy::start(api_addr);
    let proxy_url = format!("http://{}", proxy.addr);
    let mut edges = vec![
        EdgeProc::start(&api, &token, "POP-A", &tmp.path().join("a"), "127.0.0.1:0"),
        EdgeProc::start(&api, &token, "POP-B", &tmp.path().join("b"), "127.0.0.1:0"),
        EdgeProc::start(
            &proxy_url,
            &token_c,
            "POP-C",
            &tmp.path().join("c"),
            "127.0.0.1:0",
        ),
    ];
    let addrs: Vec<SocketAddr> = edges.iter().map(|e| e.addr).collect();

    // Stage 1: a distribution and a Lambda@Edge association reach every edge.
    let config = json!({
        "CallerReference": "fleet-1",
        "Origins": {"Quantity": 1, "Items": [{"Id": "o", "DomainName": "127.0.0.1",
            "CustomOriginConfig": {"HTTPPort": origin.port(), "HTTPSPort": 443,
                "OriginProtocolPolicy": "http-only"}}]},
        "DefaultCacheBehavior": {"TargetOriginId": "o", "ViewerProtocolPolicy": "allow-all",
            "CachePolicyId": "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"},
        "CacheBehaviors": {"Quantity": 1, "Items": [{"PathPattern": "/fn",
            "TargetOriginId": "o", "ViewerProtocolPolicy": "allow-all",
            "CachePolicyId": "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"}]},
        "Comment": "fleet",
        "Enabled": true
    });
    let file = tmp.path().join("dist.json");
    std::fs::write(&file, config.to_string()).expect("write");
    let created = aws_ok(
        &api,
        &[
            "cloudfront",
            "create-distribution",
            "--distribution-config",
            &format!("file://{}", file.display()),
        ],
    );
    let id = created["Distribution"]["Id"]
        .as_str()
        .expect("id")
        .to_owned();
    let host = created["Distribution"]["DomainName"]
        .as_str()
        .expect("domain")
        .to_owned();
    let took = wait_body(&addrs, &host, "/index.html", "hello from the origin");
    eprintln!("create → served by 3 edges: {took:?}");
    wait_until(HOST_WAIT, "Deployed", || status(&api, &id) == "Deployed");
    let checker = Checker::start(host.clone());
    checker.set(&addrs);

    let zip = node_zip(tmp.path(), "v1", &answering("v1"));
    aws_ok(
        &api,
        &[
            "lambda",
            "create-function",
            "--function-name",
            "fleet-fn",
            "--runtime",
            "nodejs20.x",
            "--handler",
            "index.handler",
            "--role",
            "arn:aws:iam::000000000000:role/edge",
            "--zip-file",
            &format!("fileb://{}", zip.display()),
        ],
    );
    let v1 = aws_ok(
        &api,
        &["lambda", "publish-version", "--function-name", "fleet-fn"],
    )["FunctionArn"]
        .as_str()
        .expect("arn")
        .to_owned();
    update(&api, &id, tmp.path(), |c| set_function(c, &v1));
    let took = wait_body(&addrs, &host, "/fn", "v1");
    eprintln!("update (new function) → served by 3 edges: {took:?}");
    wait_until(HOST_WAIT, "Deployed after v1", || {
        status(&api, &id) == "Deployed"
    });
    // An invalidation turns Completed once every edge acked it.
    let inv = aws_ok(
        &api,
        &[
            "cloudfront",
            "create-invalidation",
            "--distribution-id",
            &id,
            "--paths",
            "/index.html",
        ],
    );
    let inv_id = inv["Invalidation"]["Id"]
        .as_str()
        .expect("inv id")
        .to_owned();
    wait_until(HOST_WAIT, "invalidation Completed", || {
        aws_ok(
            &api,
            &[
                "cloudfront",
                "get-invalidation",
                "--distribution-id",
                &id,
                "--id",
                &inv_id,
            ],
        )["Invalidation"]["Status"]
            == "Completed"
    });
    // The JSON endpoint lists the same edges as `ledge edges --json`; it wants a token.
    let auth = format!("Authorization: Bearer {token}\r\n");
    let (code, body) = get_with(api_addr, "control", "/ledge/edges", &auth).expect("edges");
    assert_eq!(code, 200, "{body}");
    let listed: Vec<Value> = serde_json::from_str(&body).expect("edges JSON");
    assert_eq!(listed.len(), 3, "{body}");
    let (code, _) = get_with(api_addr, "control", "/ledge/edges", "").expect("edges");
    assert_eq!(code, 401);
    let list = edges_json(&data);
    assert_eq!(list.len(), 3, "{list:#?}");
    for e in &list {
        assert_eq!(e["live"], true, "{list:#?}");
        assert_eq!(e["lag"], 0, "{list:#?}");
        assert!(e["last_error"].is_null(), "{list:#?}");
    }

    // Stage 2: the control plane dies; edges keep serving; A restarts from last known good.
    control.kill();
    std::thread::sleep(Duration::from_millis(300));
    checker.set(&addrs[1..]);
    edges[0].restart();
    checker.set(&addrs);
    assert_eq!(
        body_of(addrs[0], &host, "/fn"),
        "v1",
        "{}",
        edges[0].proc.log()
    );
    std::thread::sleep(Duration::from_millis(500));
    control = start_control(&data, port, HEARTBEAT);

    // Stage 3: an edge killed mid-update recovers to the newest version on restart.
    let (v2, _) = publish(&api, tmp.path(), "v2");
    checker.set(&[addrs[0], addrs[2]]);
    update(&api, &id, tmp.path(), |c| set_function(c, &v2));
    edges[1].proc.kill();
    wait_body(&[addrs[0], addrs[2]], &host, "/fn", "v2");
    edges[1].restart();
    wait_body(&addrs[1..2], &host, "/fn", "v2");
    // A damaged last-good file is refused on start; the edge fetches the config again.
    checker.set(&[addrs[0], addrs[2]]);
    edges[1].proc.kill();
    std::fs::write(
        edges[1].dir.join("last-good.json"),
        b"{\"Version\": 1, garbage",
    )
    .expect("damage last-good");
    edges[1].restart();
    wait_body(&addrs[1..2], &host, "/fn", "v2");
    assert!(
        edges[1]
            .proc
            .log()
            .contains("last known good snapshot refused"),
        "{}",
        edges[1].proc.log()
    );
    // Packages gone from the data directory are fetched again on start.
    edges[1].proc.kill();
    for entry in std::fs::read_dir(edges[1].dir.join("packages"))
        .expect("packages")
        .map_while(Result::ok)
    {
        std::fs::remove_file(entry.path()).expect("remove package");
    }
    edges[1].restart();
    wait_body(&addrs[1..2], &host, "/fn", "v2");
    // The edge serves from its unpacked copy at once; the refetch is logged when it completes,
    // after the versions are prepared again (worker cold starts: slow on a loaded CI host).
    ledge_test::assert_eventually!(
        edges[1].proc.log().contains("fetched again"),
        std::time::Duration::from_secs(30)
    );
    checker.set(&addrs);
    // v1 has no association left: once every edge applied that (Deployed), DeleteFunction
    // on it succeeds, and the edges dropped its package.
    wait_until(HOST_WAIT, "Deployed after v2", || {
        status(&api, &id) == "Deployed"
    });
    aws_ok(
        &api,
        &[
            "lambda",
            "delete-function",
            "--function-name",
            "fleet-fn",
            "--qualifier",
            "1",
        ],
    );
    for e in &edges {
        let n = std::fs::read_dir(e.dir.join("packages"))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(n, 1, "{} keeps only v2's package", e.pop);
    }

    // Stage 4: a corrupted package is refused; the last good version keeps serving.
    let (v3, v3_zip) = publish(&api, tmp.path(), "v3");
    let blob = find_blob(&data.join("blobs"), &v3_zip);
    std::fs::write(&blob, b"not the package").expect("corrupt blob");
    update(&api, &id, tmp.path(), |c| set_function(c, &v3));
    wait_until(HOST_WAIT, "corruption reported", || {
        edges_json(&data).iter().all(|e| {
            e["last_error"]
                .as_str()
                .is_some_and(|s| s.contains("refused"))
        })
    });
    for a in &addrs {
        assert_eq!(body_of(*a, &host, "/fn"), "v2");
    }
    assert_eq!(status(&api, &id), "InProgress");
    std::fs::copy(&v3_zip, &blob).expect("repair blob");
    wait_body(&addrs, &host, "/fn", "v3");
    wait_until(HOST_WAIT, "errors cleared", || {
        edges_json(&data).iter().all(|e| e["last_error"].is_null())
    });

    // Stage 5: a partitioned edge goes offline, does not hold Deployed, catches up later.
    proxy.cut();
    update(&api, &id, tmp.path(), |c| set_function(c, &v2));
    wait_body(&addrs[..2], &host, "/fn", "v2");
    assert_eq!(
        body_of(addrs[2], &host, "/fn"),
        "v3",
        "partitioned edge keeps serving"
    );
    wait_until(
        Duration::from_secs(HEARTBEAT * 4),
        "partitioned edge offline, Deployed",
        || status(&api, &id) == "Deployed",
    );
    assert_eq!(edge_row(&edges_json(&data), "POP-C")["live"], false);
    proxy.restore();
    wait_body(&addrs[2..], &host, "/fn", "v2");
    wait_until(HOST_WAIT, "POP-C live again", || {
        edge_row(&edges_json(&data), "POP-C")["live"] == true
    });

    // Stage 5b: the control plane (as this edge sees it) answers garbage: refused, the last
    // good config keeps serving, and the edge catches up once the answers make sense again.
    proxy.garble();
    update(&api, &id, tmp.path(), |c| set_function(c, &v3));
    wait_body(&addrs[..2], &host, "/fn", "v3");
    wait_until(HOST_WAIT, "garbage refused", || {
        edges[2].proc.log().contains("snapshot refused")
    });
    assert_eq!(body_of(addrs[2], &host, "/fn"), "v2");
    proxy.restore();
    wait_body(&addrs[2..], &host, "/fn", "v3");

    // Stage 6: a revoked token is refused; the edge keeps serving what it has.
    ledge(&["edge-token", "revoke", "edge-c", "--data-dir", &data_s]);
    wait_until(HOST_WAIT, "revocation noticed", || {
        edges[2].proc.log().contains("refused the edge token")
    });
    update(&api, &id, tmp.path(), |c| set_function(c, &v2));
    wait_body(&addrs[..2], &host, "/fn", "v2");
    assert_eq!(body_of(addrs[2], &host, "/fn"), "v3");

    checker.assert_clean();
    assert!(checker.requests.load(Ordering::SeqCst) > 100);
    drop(edges);
    drop(control);
}

fn edges_json(data: &std::path::Path) -> Vec<Value> {
    edges(data, HEARTBEAT)
}

/// The blob file holding the same bytes as `zip`.
fn find_blob(root: &std::path::Path, zip: &std::path::Path) -> std::path::PathBuf {
    let want = std::fs::read(zip).expect("zip");
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)
            .expect("read blobs")
            .map_while(Result::ok)
        {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p).is_ok_and(|b| b == want) {
                return p;
            }
        }
    }
    panic!("no blob matches {}", zip.display());
}

/// `ledge serve` on port 0: prints both addresses, and its edge follows its control plane.
#[test]
fn serve_on_port_zero_runs_control_and_edge() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let data_s = data.display().to_string();
    let (_serve, found) = Proc::start_multi(
        &[
            "serve",
            "--data-dir",
            &data_s,
            "--api-listen",
            "127.0.0.1:0",
            "--edge-listen",
            "127.0.0.1:0",
            "--pop",
            "SERVE1",
        ],
        &[
            ("LEDGE_ACCESS_KEY_ID", KEY),
            ("LEDGE_SECRET_ACCESS_KEY", SECRET),
        ],
        &[
            "ledge: api listening on ",
            "ledge: edge listening on http://",
        ],
    );
    let api = found[0].clone();
    let edge: SocketAddr = found[1].parse().expect("edge address");
    let config = json!({
        "CallerReference": "serve-1",
        "Origins": {"Quantity": 1, "Items": [{"Id": "o", "DomainName": "127.0.0.1",
            "CustomOriginConfig": {"HTTPPort": free_port(), "HTTPSPort": 443,
                "OriginProtocolPolicy": "http-only"}}]},
        "DefaultCacheBehavior": {"TargetOriginId": "o", "ViewerProtocolPolicy": "allow-all",
            "CachePolicyId": "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"},
        "Comment": "serve",
        "Enabled": false
    });
    let file = tmp.path().join("dist.json");
    std::fs::write(&file, config.to_string()).expect("write");
    let created = aws_ok(
        &api,
        &[
            "cloudfront",
            "create-distribution",
            "--distribution-config",
            &format!("file://{}", file.display()),
        ],
    );
    let id = created["Distribution"]["Id"]
        .as_str()
        .expect("id")
        .to_owned();
    let host = created["Distribution"]["DomainName"]
        .as_str()
        .expect("domain")
        .to_owned();
    wait_until(HOST_WAIT, "Deployed", || status(&api, &id) == "Deployed");
    // A disabled distribution answers 403 (an unknown host too, but with another reason):
    // the edge has the config.
    let (code, body) = get(edge, &host, "/").expect("edge");
    assert_eq!(code, 403, "{body}");
    assert!(!body.contains("no distribution is configured"), "{body}");
    let list = edges(&data, 60);
    assert_eq!(list.len(), 1, "{list:#?}");
    assert_eq!(list[0]["pop"], "SERVE1");
    assert_eq!(list[0]["live"], true);
    assert_eq!(list[0]["lag"], 0);
    assert_eq!(list[0]["token"], "ledge-serve");
}
