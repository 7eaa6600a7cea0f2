//! Lambda@Edge through the real binary, with real Node.js and Python functions, written as
//! users write them: each trigger, the documented example behaviors, and hostile functions.

use ledge_test::client::{self, Reply};
use ledge_test::edge::Edge;
use ledge_test::lambda::{self, Function};
use ledge_test::origin::{Origin, Route};
use ledge_test::snapshot;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ledge");

/// Starts an edge serving `distributions` with `functions` installed in its data directory.
fn start(distributions: Vec<Value>, functions: &[&Function]) -> Edge {
    let mut b = Edge::builder(BIN).snapshot(lambda::snapshot(1, distributions, functions));
    for f in functions {
        b = b.data_file(&f.package_path(), f.zip.clone());
    }
    b.start()
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_request_redirect_node_and_python() {
    let o = Origin::new().route("/a", Route::ok("origin")).run().await;
    let node = Function::node("redirect-js", REDIRECT_JS);
    let py = Function::python("redirect-py", REDIRECT_PY);
    let mut d1 = snapshot::distribution("E1", "js.ledge.localhost", o.port());
    lambda::associate(&mut d1, "viewer-request", &node, false);
    let mut d2 = snapshot::distribution("E2", "py.ledge.localhost", o.port());
    lambda::associate(&mut d2, "viewer-request", &py, false);
    let e = start(vec![d1, d2], &[&node, &py]);

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
