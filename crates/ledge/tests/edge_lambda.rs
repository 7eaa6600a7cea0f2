//! Lambda@Edge through the real binary, with real Node.js and Python functions, written as
//! users write them: each trigger, the documented example behaviors, and hostile functions.

use ledge_test::client::{self, Reply};
use ledge_test::edge::{Edge, EdgeBuilder};
use ledge_test::lambda::{self, Function};
use ledge_test::origin::{Origin, Route, RunningOrigin};
use ledge_test::snapshot;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ledge");

/// Starts an edge serving `distributions` with `functions` installed in its data directory.
fn start(distributions: Vec<Value>, functions: &[&Function]) -> Edge {
    start_with(distributions, functions, |b| b)
}

/// [`start`], with the builder adjusted by `tweak` before the edge starts.
fn start_with(
    distributions: Vec<Value>,
    functions: &[&Function],
    tweak: impl FnOnce(EdgeBuilder) -> EdgeBuilder,
) -> Edge {
    let mut b = Edge::builder(BIN).snapshot(lambda::snapshot(1, distributions, functions));
    for f in functions {
        b = b.data_file(&f.package_path(), f.zip.clone());
    }
    tweak(b).start()
}

async fn get(e: &Edge, host: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    client::request(e.http, "GET", host, path, headers, "").await
}

fn log_text(e: &Edge, f: &Function) -> String {
    std::fs::read_to_string(f.log_file(&e.dir.path().join("data"))).unwrap_or_default()
}

const REDIRECT_JS: &str = r#"
exports.handler = async (event) => ({
  status: '302',
  statusDescription: 'Found',
  headers: { location: [{ key: 'Location', value: 'https://example.com/new' + event.Records[0].cf.request.uri }] },
});
"#;

const REDIRECT_PY: &str = r#"
def handler(event, context):
    uri = event['Records'][0]['cf']['request']['uri']
    return {
        'status': '302',
        'statusDescription': 'Found',
        'headers': {'location': [{'key': 'Location', 'value': 'https://example.com/py' + uri}]},
    }
"#;

/// An origin serving `/a` and an edge (its builder adjusted by `tweak`) with the redirect
/// functions at viewer-request: Node.js on `js.ledge.localhost`, Python on `py.ledge.localhost`.
async fn redirect_edge(
    tweak: impl FnOnce(EdgeBuilder) -> EdgeBuilder,
) -> (RunningOrigin, Function, Function, Edge) {
    let o = Origin::new().route("/a", Route::ok("origin")).run().await;
    let node = Function::node("redirect-js", REDIRECT_JS);
    let py = Function::python("redirect-py", REDIRECT_PY);
    let mut d1 = snapshot::distribution("E1", "js.ledge.localhost", o.port());
    lambda::associate(&mut d1, "viewer-request", &node, false);
    let mut d2 = snapshot::distribution("E2", "py.ledge.localhost", o.port());
    lambda::associate(&mut d2, "viewer-request", &py, false);
    let e = start_with(vec![d1, d2], &[&node, &py], tweak);
    (o, node, py, e)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_request_redirect_node_and_python() {
    let (o, node, py, e) = redirect_edge(|b| b).await;

    let r = get(&e, "js.ledge.localhost", "/a", &[]).await;
    assert_eq!(r.status, 302, "{}\n{}", r.text(), e.stderr());
    assert_eq!(r.header("location"), "https://example.com/new/a");
    assert_eq!(r.x_cache(), "LambdaGeneratedResponse from cloudfront");
    assert!(r.body.is_empty());
    let r = get(&e, "py.ledge.localhost", "/a", &[]).await;
    assert_eq!(r.status, 302, "{}\n{}", r.text(), e.stderr());
    assert_eq!(r.header("location"), "https://example.com/py/a");
    assert_eq!(o.hits("/a"), 0);
    // Logs: the function's log group holds START/END/REPORT.
    ledge_test::assert_eventually!(log_text(&e, &node).contains("REPORT RequestId:"));
    ledge_test::assert_eventually!(log_text(&e, &py).contains("START RequestId:"));
}

/// `--data-dir data`, relative to where ledge was started: workers run in directories of their
/// own, where a relative path to their bootstrap named nothing (every invocation failed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_run_with_a_relative_data_dir() {
    let (_o, node, _py, e) = redirect_edge(EdgeBuilder::relative_paths).await;

    let r = get(&e, "js.ledge.localhost", "/a", &[]).await;
    assert_eq!(r.status, 302, "{}\n{}", r.text(), e.stderr());
    assert_eq!(r.header("location"), "https://example.com/new/a");
    let r = get(&e, "py.ledge.localhost", "/a", &[]).await;
    assert_eq!(r.status, 302, "{}\n{}", r.text(), e.stderr());
    assert_eq!(r.header("location"), "https://example.com/py/a");
    ledge_test::assert_eventually!(log_text(&e, &node).contains("REPORT RequestId:"));
}

const SECURITY_HEADERS_JS: &str = r#"
exports.handler = (event, context, callback) => {
  const response = event.Records[0].cf.response;
  const h = response.headers;
  h['strict-transport-security'] = [{ key: 'Strict-Transport-Security', value: 'max-age=63072000' }];
  h['x-content-type-options'] = [{ key: 'X-Content-Type-Options', value: 'nosniff' }];
  h['x-frame-options'] = [{ value: 'DENY' }];
  callback(null, response);
};
"#;

const AB_PY: &str = r#"
def handler(event, context):
    request = event['Records'][0]['cf']['request']
    if request['uri'] == '/experiment':
        cookies = [c['value'] for c in request['headers'].get('cookie', [])]
        if any('group=B' in c for c in cookies):
            request['uri'] = '/experiment-b'
        else:
            request['uri'] = '/experiment-a'
    return request
"#;

const SPA_JS: &str = r#"
exports.handler = async (event) => {
  const request = event.Records[0].cf.request;
  if (!request.uri.includes('.')) request.uri = '/index.html';
  return request;
};
"#;

const STATIC_PY: &str = r#"
def handler(event, context):
    return {
        'status': '200',
        'headers': {
            'content-type': [{'key': 'Content-Type', 'value': 'text/html'}],
            'cache-control': [{'key': 'Cache-Control', 'value': 'max-age=100'}],
        },
        'body': '<h1>static from python</h1>',
    }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_triggers_security_headers_ab_spa_static() {
    let o = Origin::new()
        .route(
            "/page",
            Route::ok("page").header("cache-control", "max-age=60"),
        )
        .route("/experiment-a", Route::ok("A"))
        .route("/experiment-b", Route::ok("B"))
        .route("/index.html", Route::ok("spa shell"))
        .route("/missing", Route::status(404, "nope"))
        .run()
        .await;
    let sec = Function::node("security", SECURITY_HEADERS_JS);
    let ab = Function::python("ab", AB_PY);
    let spa = Function::node("spa", SPA_JS);
    let stat = Function::python("static", STATIC_PY);
    let mut d1 = snapshot::distribution("E1", "sec.ledge.localhost", o.port());
    lambda::associate(&mut d1, "viewer-response", &sec, false);
    let mut d2 = snapshot::distribution("E2", "ab.ledge.localhost", o.port());
    d2["Config"]["DefaultCacheBehavior"]["CachePolicyId"] = snapshot::CACHING_DISABLED.into();
    lambda::associate(&mut d2, "viewer-request", &ab, false);
    let mut d3 = snapshot::distribution("E3", "spa.ledge.localhost", o.port());
    lambda::associate(&mut d3, "viewer-request", &spa, false);
    let mut d4 = snapshot::distribution("E4", "static.ledge.localhost", o.port());
    lambda::associate(&mut d4, "viewer-request", &stat, false);
    let e = start(vec![d1, d2, d3, d4], &[&sec, &ab, &spa, &stat]);

    // Security headers at viewer-response, on a miss and on a hit.
    for expect in ["Miss from cloudfront", "Hit from cloudfront"] {
        let r = get(&e, "sec.ledge.localhost", "/page", &[]).await;
        assert_eq!((r.status, r.x_cache()), (200, expect), "{}", e.stderr());
        assert_eq!(r.header("strict-transport-security"), "max-age=63072000");
        assert_eq!(r.header("x-frame-options"), "DENY");
        assert_eq!(r.text(), "page");
    }
    // Origin errors skip viewer-response.
    let r = get(&e, "sec.ledge.localhost", "/missing", &[]).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.header("x-frame-options"), "");

    // A/B by cookie.
    let r = get(
        &e,
        "ab.ledge.localhost",
        "/experiment",
        &[("cookie", "x=1; group=B")],
    )
    .await;
    assert_eq!(r.text(), "B", "{}", e.stderr());
    let r = get(&e, "ab.ledge.localhost", "/experiment", &[]).await;
    assert_eq!(r.text(), "A");
    let r = get(&e, "ab.ledge.localhost", "/page", &[("cookie", "group=B")]).await;
    assert_eq!(r.text(), "page");

    // SPA: paths without an extension serve the shell.
    let r = get(&e, "spa.ledge.localhost", "/app/settings", &[]).await;
    assert_eq!((r.status, r.text().as_str()), (200, "spa shell"));
    assert_eq!(
        o.last("/index.html").map(|s| s.uri),
        Some("/index.html".into())
    );

    // A static page generated at viewer-request.
    let hits = o.hits("/page");
    let r = get(&e, "static.ledge.localhost", "/page", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "<h1>static from python</h1>");
    assert_eq!(r.header("content-type"), "text/html");
    assert_eq!(r.header("cache-control"), "max-age=100");
    assert_eq!(r.x_cache(), "LambdaGeneratedResponse from cloudfront");
    assert_eq!(o.hits("/page"), hits);
}

const CACHE_CONTROL_JS: &str = r#"
exports.handler = async (event) => {
  const response = event.Records[0].cf.response;
  if (response.status === '404') {
    return {
      status: '404',
      statusDescription: 'Not Found',
      headers: { 'content-type': [{ value: 'text/html' }] },
      body: '<h1>custom not found</h1>',
    };
  }
  response.headers['cache-control'] = [{ key: 'Cache-Control', value: 'max-age=300' }];
  return response;
};
"#;

const SELECT_ORIGIN_PY: &str = r#"
def handler(event, context):
    request = event['Records'][0]['cf']['request']
    pick = request['headers'].get('x-pick')
    if pick and pick[0]['value'] == 'b':
        origin = request['origin']['custom']
        origin['domainName'] = 'localhost'
        origin['port'] = int(request['headers']['x-port'][0]['value'])
        request['headers']['host'] = [{'key': 'Host', 'value': 'localhost'}]
    return request
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_triggers_cache_control_custom_404_and_origin_selection() {
    let o = Origin::new()
        .route("/doc", Route::ok("doc").header("cache-control", "no-store"))
        .route("/gone", Route::status(404, "plain 404"))
        .route("/who", Route::ok("origin A"))
        .run()
        .await;
    let b = Origin::new()
        .route("/who", Route::ok("origin B"))
        .run()
        .await;
    let cc = Function::node("cache-control", CACHE_CONTROL_JS);
    let sel = Function::python("select", SELECT_ORIGIN_PY);
    let mut d1 = snapshot::distribution("E1", "cc.ledge.localhost", o.port());
    lambda::associate(&mut d1, "origin-response", &cc, false);
    let mut d2 = snapshot::distribution("E2", "sel.ledge.localhost", o.port());
    d2["Config"]["DefaultCacheBehavior"]["CachePolicyId"] = snapshot::CACHING_DISABLED.into();
    // AllViewer: the viewer's headers reach the origin, so the function sees x-pick.
    d2["Config"]["DefaultCacheBehavior"]["OriginRequestPolicyId"] =
        "216adef6-5c7f-47e4-b989-5492eafa07d3".into();
    lambda::associate(&mut d2, "origin-request", &sel, false);
    let e = start(vec![d1, d2], &[&cc, &sel]);

    // The origin says no-store; the function's max-age=300 is what the cache honors.
    let r = get(&e, "cc.ledge.localhost", "/doc", &[]).await;
    assert_eq!(
        (r.status, r.x_cache()),
        (200, "Miss from cloudfront"),
        "{}",
        e.stderr()
    );
    assert_eq!(r.header("cache-control"), "max-age=300");
    let r = get(&e, "cc.ledge.localhost", "/doc", &[]).await;
    assert_eq!(r.x_cache(), "Hit from cloudfront");
    assert_eq!(r.header("cache-control"), "max-age=300");
    assert_eq!(o.hits("/doc"), 1);
    // Ran once per cache fill.
    ledge_test::assert_eventually!(log_text(&e, &cc).matches("REPORT RequestId").count() == 1);

    // A custom 404 page from origin-response.
    let r = get(&e, "cc.ledge.localhost", "/gone", &[]).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.text(), "<h1>custom not found</h1>");

    // Origin selection by header at origin-request.
    let port = b.port().to_string();
    let r = get(
        &e,
        "sel.ledge.localhost",
        "/who",
        &[("x-pick", "b"), ("x-port", &port)],
    )
    .await;
    assert_eq!(r.text(), "origin B", "{}", e.stderr());
    let r = get(&e, "sel.ledge.localhost", "/who", &[]).await;
    assert_eq!(r.text(), "origin A");
}

const FORM_JS: &str = r#"
exports.handler = async (event) => {
  const request = event.Records[0].cf.request;
  if (request.method === 'POST') {
    const form = Buffer.from(request.body.data, 'base64').toString();
    console.log('form: ' + form);
    if (request.body.inputTruncated) throw new Error('truncated');
    request.body.action = 'replace';
    request.body.encoding = 'text';
    request.body.data = form + '&added=1';
  }
  return request;
};
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_body_with_include_body() {
    let o = Origin::new()
        .route("/form", Route::ok("thanks").echo())
        .run()
        .await;
    let f = Function::node("form", FORM_JS);
    let mut d = snapshot::distribution("E1", "form.ledge.localhost", o.port());
    d["Config"]["DefaultCacheBehavior"]["CachePolicyId"] = snapshot::CACHING_DISABLED.into();
    lambda::associate(&mut d, "viewer-request", &f, true);
    let e = start(vec![d], &[&f]);
    let r = client::request(
        e.http,
        "POST",
        "form.ledge.localhost",
        "/form",
        &[("content-type", "application/x-www-form-urlencoded")],
        "name=Ada&topic=edge",
    )
    .await;
    assert_eq!(r.status, 200, "{}", e.stderr());
    let seen = o.last("/form").expect("origin saw the POST");
    assert_eq!(seen.body, "name=Ada&topic=edge&added=1");
    ledge_test::assert_eventually!(log_text(&e, &f).contains("form: name=Ada&topic=edge"));
}

const TRUNCATED_PY: &str = r#"
import base64
def handler(event, context):
    request = event['Records'][0]['cf']['request']
    body = request['body']
    seen = len(base64.b64decode(body['data']))
    request['headers']['x-seen'] = [{'key': 'X-Seen', 'value': '%d %s' % (seen, body['inputTruncated'])}]
    return request
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_body_is_truncated_for_the_function_and_sent_whole() {
    let o = Origin::new()
        .route("/up", Route::ok("ok").echo())
        .run()
        .await;
    let f = Function::python("truncated", TRUNCATED_PY);
    let mut d = snapshot::distribution("E1", "up.ledge.localhost", o.port());
    d["Config"]["DefaultCacheBehavior"]["CachePolicyId"] = snapshot::CACHING_DISABLED.into();
    // AllViewer: the header the function adds reaches the origin.
    d["Config"]["DefaultCacheBehavior"]["OriginRequestPolicyId"] =
        "216adef6-5c7f-47e4-b989-5492eafa07d3".into();
    lambda::associate(&mut d, "viewer-request", &f, true);
    let e = start(vec![d], &[&f]);
    let body = vec![b'x'; 100_000];
    let r = client::request(e.http, "PUT", "up.ledge.localhost", "/up", &[], body).await;
    assert_eq!(r.status, 200, "{}", e.stderr());
    let seen = o.last("/up").expect("origin saw the PUT");
    assert_eq!(seen.body.len(), 100_000);
    assert_eq!(seen.headers["x-seen"], "40960 True");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_request_generated_page_is_cached() {
    let o = Origin::new()
        .route("/page", Route::ok("origin"))
        .run()
        .await;
    let f = Function::python("static-oreq", STATIC_PY);
    let mut d = snapshot::distribution("E1", "gen.ledge.localhost", o.port());
    lambda::associate(&mut d, "origin-request", &f, false);
    let e = start(vec![d], &[&f]);
    let r = get(&e, "gen.ledge.localhost", "/page", &[]).await;
    assert_eq!(r.status, 200, "{}", e.stderr());
    assert_eq!(r.text(), "<h1>static from python</h1>");
    // lambda-edge.md §6.2: the request that ran the generating function says so.
    assert_eq!(r.x_cache(), "LambdaGeneratedResponse from cloudfront");
    let r = get(&e, "gen.ledge.localhost", "/page", &[]).await;
    assert_eq!(r.text(), "<h1>static from python</h1>");
    assert_eq!(r.x_cache(), "Hit from cloudfront");
    assert_eq!(o.hits("/page"), 0);
    ledge_test::assert_eventually!(log_text(&e, &f).contains("REPORT RequestId"));
    assert_eq!(log_text(&e, &f).matches("REPORT RequestId").count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_logs_rotate_at_the_configured_size() {
    // 300 KB of output per invocation (over the 256 KiB per-invocation cap, so each one
    // writes just over 256 KiB): a 1 MiB file fills every 4 invocations.
    let o = Origin::new().route("/a", Route::ok("fine")).run().await;
    let f = Function::node(
        "chatty",
        "exports.handler = async (e) => { console.log('x'.repeat(300000)); return e.Records[0].cf.request; };",
    );
    let mut d = snapshot::distribution("E1", "chatty.ledge.localhost", o.port());
    d["Config"]["DefaultCacheBehavior"]["CachePolicyId"] = snapshot::CACHING_DISABLED.into();
    lambda::associate(&mut d, "viewer-request", &f, false);
    let e = Edge::builder(BIN)
        .snapshot(lambda::snapshot(1, vec![d], &[&f]))
        .data_file(&f.package_path(), f.zip.clone())
        .env("LEDGE_LAMBDA_LOG_FILE_MB", "1")
        .env("LEDGE_LAMBDA_LOG_FILES_KEPT", "1")
        .start();
    for _ in 0..12 {
        let r = get(&e, "chatty.ledge.localhost", "/a", &[]).await;
        assert_eq!(r.status, 200, "{}", e.stderr());
        // Longer than the log sink's pause between rounds: a round then holds about one
        // invocation's lines (the file is rotated after the round that takes it past 1 MiB).
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let file = f.log_file(&e.dir.path().join("data"));
    let rotated = |n: u32| {
        let mut name = file.as_os_str().to_owned();
        name.push(format!(".{n}"));
        std::path::PathBuf::from(name)
    };
    ledge_test::assert_eventually!(rotated(1).exists());
    let size = std::fs::metadata(rotated(1)).unwrap().len();
    // Under 1 MiB before its last round, which added one invocation's 256 KiB, or two on a
    // loaded machine (1.5 MiB in one CI run when the requests came back to back).
    let invocation = 300_000;
    assert!(
        (1 << 20..(1 << 20) + 2 * invocation).contains(&size),
        "{size}"
    );
    assert!(!rotated(2).exists(), "one rotated file is kept");
    assert!(log_text(&e, &f).len() < 1 << 20);
}
