//! Hostile Lambda@Edge functions through the real binary: each failure gets the status and
//! error page of lambda-edge.md §5, is logged where §5.4 says, and nothing else breaks.

use ledge_test::client::{self, Reply};
use ledge_test::edge::Edge;
use ledge_test::lambda::{self, Function};
use ledge_test::origin::{Origin, Route};
use ledge_test::snapshot;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ledge");

fn start(distributions: Vec<Value>, functions: &[&Function]) -> Edge {
    let mut b = Edge::builder(BIN).snapshot(lambda::snapshot(1, distributions, functions));
    for f in functions {
        b = b.data_file(&f.package_path(), f.zip.clone());
    }
    b.start()
}

async fn get(e: &Edge, host: &str) -> Reply {
    client::get(e.http, host, "/a").await
}

fn read(e: &Edge, rel: &str) -> String {
    std::fs::read_to_string(e.dir.path().join("data").join(rel)).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_functions_get_the_spec_status_and_nothing_else_breaks() {
    let o = Origin::new().route("/a", Route::ok("fine")).run().await;
    let cases: Vec<(&str, &str, Function)> = vec![
        (
            "readonly",
            "viewer-request",
            Function::node(
                "readonly",
                "exports.handler = async (e) => { const r = e.Records[0].cf.request; \
                 r.headers.host = [{value: 'evil.example'}]; return r; };",
            ),
        ),
        (
            "xcache",
            "origin-response",
            Function::node(
                "xcache",
                "exports.handler = async (e) => { const r = e.Records[0].cf.response; \
                 r.headers['x-cache'] = [{value: 'Hit'}]; return r; };",
            ),
        ),
        (
            "notobject",
            "viewer-request",
            Function::python("notobject", "def handler(event, context):\n    return 'hello'\n"),
        ),
        (
            "bigbody",
            "origin-request",
            Function::node(
                "bigbody",
                "exports.handler = async () => ({status: '200', body: 'x'.repeat(10 * 1024 * 1024)});",
            ),
        ),
        (
            "throws",
            "viewer-request",
            Function::node("throws", "exports.handler = async () => { throw new TypeError('boom'); };"),
        ),
        (
            "raises",
            "viewer-response",
            Function::python("raises", "def handler(event, context):\n    raise KeyError('cookie')\n"),
        ),
        (
            "hangs",
            "viewer-request",
            Function::node("hangs", "exports.handler = () => new Promise(() => {});").timeout(1),
        ),
        (
            "crashes",
            "origin-request",
            Function::node("crashes", "exports.handler = async () => { process.exit(1); };"),
        ),
        (
            "nohandler",
            "viewer-request",
            Function::node("nohandler", "exports.other = async (e) => e.Records[0].cf.request;"),
        ),
    ];
    let mut dists = Vec::new();
    for (i, (name, event, f)) in cases.iter().enumerate() {
        let mut d = snapshot::distribution(
            &format!("E{i}"),
            &format!("{name}.ledge.localhost"),
            o.port(),
        );
        lambda::associate(&mut d, event, f, false);
        dists.push(d);
    }
    dists.push(snapshot::distribution(
        "EOK",
        "ok.ledge.localhost",
        o.port(),
    ));
    let functions: Vec<&Function> = cases.iter().map(|(_, _, f)| f).collect();
    let e = start(dists, &functions);

    // Status, X-Cache, and the reason the error page gives (§5.3).
    const EXECUTION: &str = "The Lambda function associated with the CloudFront distribution is invalid or doesn't have the required permissions.";
    let expect = [
        ("readonly", 502, "LambdaValidationError from cloudfront",
            "The Lambda function result failed validation: The function tried to add, delete, or change a read-only header."),
        ("xcache", 502, "LambdaValidationError from cloudfront",
            "The Lambda function result failed validation: The function added the disallowed header x-cache."),
        ("notobject", 502, "LambdaValidationError from cloudfront",
            "The Lambda function returned invalid JSON: The JSON output must be an object type."),
        ("bigbody", 502, "LambdaValidationError from cloudfront",
            "The Lambda function result failed validation: The body is not a string, is not an object, or exceeds the maximum size."),
        ("throws", 503, "LambdaExecutionError from cloudfront", EXECUTION),
        ("raises", 503, "LambdaExecutionError from cloudfront", EXECUTION),
        ("hangs", 503, "LambdaExecutionError from cloudfront", EXECUTION),
        ("crashes", 503, "LambdaExecutionError from cloudfront", EXECUTION),
        ("nohandler", 503, "LambdaExecutionError from cloudfront", EXECUTION),
    ];
    let host = |n: &str| format!("{n}.ledge.localhost");
    let mut tasks = Vec::new();
    for (name, status, x, reason) in expect {
        let addr = e.http;
        tasks.push(tokio::spawn(async move {
            let r = client::get(addr, &host(name), "/a").await;
            (name, status, x, reason, r)
        }));
    }
    // Meanwhile, the healthy distribution answers.
    let r = get(&e, "ok.ledge.localhost").await;
    assert_eq!((r.status, r.text().as_str()), (200, "fine"));
    for t in tasks {
        let (name, status, x, reason, r) = t.await.expect("task");
        assert_eq!(
            (r.status, r.x_cache()),
            (status, x),
            "{name}: {}",
            e.stderr()
        );
        assert!(r.text().contains(&format!("{status} ERROR")), "{name}");
        assert!(r.text().contains(reason), "{name}: {}", r.text());
        assert!(!r.header("x-amz-cf-id").is_empty());
    }
    // Failures are not cached: the same failure again, and the healthy one still works.
    let r = get(&e, "xcache.ledge.localhost").await;
    assert_eq!(r.status, 502);
    let r = get(&e, "throws.ledge.localhost").await;
    assert_eq!(r.status, 503);
    let r = get(&e, "ok.ledge.localhost").await;
    assert_eq!(r.status, 200);
    // The crashed and timed-out workers are replaced.
    let r = get(&e, "crashes.ledge.localhost").await;
    assert_eq!(r.status, 503);

    // Logs: validation errors in the CloudFront log group, execution errors in the function's.
    ledge_test::assert_eventually!(
        read(&e, "logs/aws_cloudfront_LambdaEdge_E0.log").contains("read-only header")
    );
    ledge_test::assert_eventually!(
        read(&e, "logs/aws_lambda_us-east-1.throws.log").contains("TypeError")
    );
    ledge_test::assert_eventually!(
        read(&e, "logs/aws_lambda_us-east-1.hangs.log").contains("Task timed out")
    );
    // REPORT says how the worker ended, as Lambda's does.
    ledge_test::assert_eventually!(read(&e, "logs/aws_lambda_us-east-1.hangs.log")
        .lines()
        .any(|l| l.contains("\tREPORT RequestId: ") && l.ends_with("\tStatus: timeout")));
    ledge_test::assert_eventually!(read(&e, "logs/aws_lambda_us-east-1.crashes.log")
        .lines()
        .any(|l| l.contains("\tREPORT RequestId: ")
            && l.ends_with("\tStatus: error\tError Type: Runtime.ExitError")));
    ledge_test::assert_eventually!(
        read(&e, "logs/aws_lambda_us-east-1.nohandler.log").contains("HandlerNotFound")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_response_failures_are_not_cached() {
    let o = Origin::new()
        .route(
            "/a",
            Route::ok("fine").header("cache-control", "max-age=60"),
        )
        .run()
        .await;
    let f = Function::node(
        "flaky",
        "let n = 0;\nexports.handler = async (e) => { if (n++ === 0) throw new Error('first'); \
         return e.Records[0].cf.response; };",
    );
    let mut d = snapshot::distribution("E1", "flaky.ledge.localhost", o.port());
    lambda::associate(&mut d, "origin-response", &f, false);
    let e = start(vec![d], &[&f]);
    let r = get(&e, "flaky.ledge.localhost").await;
    assert_eq!(
        (r.status, r.x_cache()),
        (503, "LambdaExecutionError from cloudfront"),
        "{}",
        e.stderr()
    );
    assert!(r.text().contains("503 ERROR"));
    let r = get(&e, "flaky.ledge.localhost").await;
    assert_eq!((r.status, r.x_cache()), (200, "Miss from cloudfront"));
    let r = get(&e, "flaky.ledge.localhost").await;
    assert_eq!((r.status, r.x_cache()), (200, "Hit from cloudfront"));
    assert_eq!(o.hits("/a"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_invocations_get_lambda_limit_exceeded() {
    let o = Origin::new().route("/a", Route::ok("fine")).run().await;
    let f = Function::node(
        "slow",
        "exports.handler = (e) => new Promise((ok) => setTimeout(() => ok(e.Records[0].cf.request), 800));",
    );
    let mut d = snapshot::distribution("E1", "slow.ledge.localhost", o.port());
    d["Config"]["DefaultCacheBehavior"]["CachePolicyId"] = snapshot::CACHING_DISABLED.into();
    lambda::associate(&mut d, "viewer-request", &f, false);
    let e = Edge::builder(BIN)
        .snapshot(lambda::snapshot(1, vec![d], &[&f]))
        .data_file(&f.package_path(), f.zip.clone())
        .env("LEDGE_LAMBDA_CONCURRENCY", "1")
        .env("LEDGE_LAMBDA_QUEUE", "0")
        .start();
    let addr = e.http;
    let first = tokio::spawn(async move { client::get(addr, "slow.ledge.localhost", "/a").await });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let r = get(&e, "slow.ledge.localhost").await;
    assert_eq!(
        (r.status, r.x_cache()),
        (503, "LambdaLimitExceeded from cloudfront"),
        "{}",
        e.stderr()
    );
    let r = first.await.expect("first request");
    assert_eq!(r.status, 200);
}
