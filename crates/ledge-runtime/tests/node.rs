//! Node.js workers: handler styles, resolution, context, errors, limits, logs.
mod common;

use std::time::Duration;

use common::*;
use ledge_runtime::InvokeError;
use serde_json::{json, Value};

/// Handler, package files, expected errorType, expected message part.
type LoadCase<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str, &'a str);

fn error_doc(e: &InvokeError) -> Value {
    serde_json::from_slice(&e.to_lambda_json()).unwrap()
}

#[tokio::test]
async fn handler_styles_and_resolution() {
    let rt = runtime();
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "index.handler",
            vec![(
                "index.js",
                "exports.handler = async (e) => ({ style: 'async', e });",
            )],
        ),
        (
            "index.handler",
            vec![(
                "index.js",
                "exports.handler = (e, ctx, cb) => { cb(null, { style: 'callback', e }); };",
            )],
        ),
        (
            "index.handler",
            vec![(
                "index.js",
                "exports.handler = (e) => Promise.resolve({ style: 'promise', e });",
            )],
        ),
        (
            "src/app.handler",
            vec![(
                "src/app.js",
                "module.exports.handler = async (e) => ({ style: 'nested', e });",
            )],
        ),
        (
            "index.handlers.main",
            vec![(
                "index.js",
                "exports.handlers = { main: async (e) => ({ style: 'deep', e }) };",
            )],
        ),
        (
            "index.handler",
            vec![(
                "index.mjs",
                "export const handler = async (e) => ({ style: 'mjs', e });",
            )],
        ),
        (
            "index.handler",
            vec![
                ("package.json", r#"{"type":"module"}"#),
                (
                    "index.js",
                    "export async function handler(e) { return { style: 'esm-js', e }; }",
                ),
            ],
        ),
        (
            "app.handler",
            vec![(
                "app.cjs",
                "exports.handler = async (e) => ({ style: 'cjs', e });",
            )],
        ),
        (
            "index.handler",
            vec![(
                "index.js",
                "exports.handler = (e, ctx) => { ctx.succeed({ style: 'succeed', e }); };",
            )],
        ),
        (
            "index.handler",
            vec![(
                "index.js",
                "exports.handler = (e, ctx) => { ctx.done(null, { style: 'done', e }); };",
            )],
        ),
        (
            "index.handler",
            vec![("index.js", "exports.handler = async () => undefined;")],
        ),
    ];
    let expected = [
        "async", "callback", "promise", "nested", "deep", "mjs", "esm-js", "cjs", "succeed", "done",
    ];
    for (i, (handler, files)) in cases.iter().enumerate() {
        let f = rt
            .load_with("nodejs20.x", handler, files, |s| s.name = format!("f{i}"))
            .await;
        let got = call(&f, r#"{"n":7}"#).await;
        if i < expected.len() {
            assert_eq!(
                got,
                json!({"style": expected[i], "e": {"n": 7}}),
                "case {i} {handler}"
            );
        } else {
            assert_eq!(got, Value::Null, "undefined result is null");
        }
    }
}

#[tokio::test]
async fn warm_reuse_keeps_module_state_and_context_is_lambdas() {
    let rt = runtime();
    let src = r#"
let count = 0;
const loadedAt = Date.now();
exports.handler = async (event, context) => {
  count += 1;
  return {
    count,
    pid: Number(require('fs').readlinkSync('/proc/self')),
    name: context.functionName,
    version: context.functionVersion,
    arn: context.invokedFunctionArn,
    memory: context.memoryLimitInMB,
    requestId: context.awsRequestId,
    group: context.logGroupName,
    stream: context.logStreamName,
    remaining: context.getRemainingTimeInMillis(),
    waits: context.callbackWaitsForEmptyEventLoop,
    env: {
      name: process.env.AWS_LAMBDA_FUNCTION_NAME,
      version: process.env.AWS_LAMBDA_FUNCTION_VERSION,
      memory: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
      region: process.env.AWS_REGION,
      exec: process.env.AWS_EXECUTION_ENV,
      handler: process.env._HANDLER,
      root: process.env.LAMBDA_TASK_ROOT,
      tz: process.env.TZ,
      custom: process.env.GREETING,
      tmp: process.env.TMPDIR,
      group: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    },
  };
};
"#;
    let f = rt
        .load_with("nodejs20.x", "index.handler", &[("index.js", src)], |s| {
            s.name = "counter".into();
            s.version = "3".into();
            s.memory_mb = 256;
            s.timeout = Duration::from_secs(5);
            s.env.insert("GREETING".into(), "hi".into());
        })
        .await;
    let first = f.invoke(b"{}").await.unwrap();
    assert!(
        first.init_duration.is_some(),
        "first invocation is a cold start"
    );
    let second = f.invoke(b"{}").await.unwrap();
    assert!(second.init_duration.is_none(), "second invocation is warm");
    let a: Value = serde_json::from_slice(&first.payload).unwrap();
    let b: Value = serde_json::from_slice(&second.payload).unwrap();
    assert_eq!(a["count"], 1);
    assert_eq!(b["count"], 2);
    assert_eq!(a["pid"], b["pid"]);
    assert_eq!(f.cold_starts(), 1);
    assert_eq!(b["name"], "counter");
    assert_eq!(b["version"], "3");
    assert_eq!(
        b["arn"],
        "arn:aws:lambda:us-east-1:000000000000:function:counter:3"
    );
    assert_eq!(b["memory"], "256");
    assert_eq!(b["requestId"], second.request_id.as_str());
    assert_eq!(b["group"], "/aws/lambda/counter");
    let stream = b["stream"].as_str().unwrap();
    assert_eq!(stream.len(), "2025/03/04/[3]".len() + 32, "{stream}");
    assert!(stream.contains("/[3]"), "{stream}");
    assert_eq!(&*second.logs.log_stream, stream);
    let remaining = b["remaining"].as_u64().unwrap();
    assert!(remaining > 4000 && remaining <= 5000, "{remaining}");
    assert_eq!(b["waits"], true);
    let env = &b["env"];
    assert_eq!(env["name"], "counter");
    assert_eq!(env["version"], "3");
    assert_eq!(env["memory"], "256");
    assert_eq!(env["region"], "us-east-1");
    assert_eq!(env["exec"], "AWS_Lambda_nodejs20.x");
    assert_eq!(env["handler"], "index.handler");
    assert_eq!(env["tz"], ":UTC");
    assert_eq!(env["custom"], "hi");
    assert_eq!(env["group"], "/aws/lambda/counter");
    assert!(env["root"]
        .as_str()
        .unwrap()
        .starts_with(rt.dir.path().to_str().unwrap()));
    assert!(env["tmp"].as_str().unwrap().contains("counter-3"));
}

#[tokio::test]
async fn callback_waits_for_empty_event_loop_unless_told_not_to() {
    let rt = runtime();
    let src = r#"
exports.handler = (event, context, callback) => {
  context.callbackWaitsForEmptyEventLoop = event.wait;
  setTimeout(() => {}, 300);
  callback(null, 'ok');
};
"#;
    let f = rt
        .load("nodejs20.x", "index.handler", &[("index.js", src)])
        .await;
    f.prewarm(1).await.unwrap();
    let waited = f.invoke(br#"{"wait":true}"#).await.unwrap();
    assert!(
        waited.duration >= Duration::from_millis(280),
        "{:?}",
        waited.duration
    );
    let quick = f.invoke(br#"{"wait":false}"#).await.unwrap();
    assert!(
        quick.duration < Duration::from_millis(250),
        "{:?}",
        quick.duration
    );
    assert_eq!(&quick.payload[..], b"\"ok\"");
}

#[tokio::test]
async fn load_errors_have_lambdas_types() {
    let rt = runtime();
    let cases: &[LoadCase] = &[
        (
            "missing.handler",
            &[("index.js", "")],
            "Runtime.ImportModuleError",
            "Cannot find module 'missing'",
        ),
        (
            "index.nope",
            &[("index.js", "exports.handler = 1;")],
            "Runtime.HandlerNotFound",
            "index.nope is undefined or not exported",
        ),
        (
            "index.handler",
            &[("index.js", "exports.handler = 1;")],
            "Runtime.HandlerNotFound",
            "index.handler is not a function",
        ),
        (
            "index.handler",
            &[("index.js", "exports.handler = async (e) => {")],
            "Runtime.UserCodeSyntaxError",
            "SyntaxError",
        ),
        (
            "index.handler",
            &[("index.js", "require('left-pad');")],
            "Runtime.ImportModuleError",
            "left-pad",
        ),
        (
            "index",
            &[("index.js", "")],
            "Runtime.MalformedHandlerName",
            "Bad handler",
        ),
        (
            "../x.handler",
            &[("index.js", "")],
            "Runtime.MalformedHandlerName",
            "is not a valid handler name",
        ),
        (
            "index.handler",
            &[("index.js", "throw new TypeError('bad init');")],
            "TypeError",
            "bad init",
        ),
    ];
    for (i, (handler, files, error_type, message)) in cases.iter().enumerate() {
        let f = rt
            .load_with("nodejs20.x", handler, files, |s| s.name = format!("e{i}"))
            .await;
        let invocation = f.invoke_detailed(b"{}").await;
        let err = invocation.result.unwrap_err();
        assert!(matches!(err, InvokeError::Init(_)), "case {i}: {err:?}");
        assert_eq!(err.error_type(), *error_type, "case {i}");
        let doc = error_doc(&err);
        assert_eq!(doc["errorType"], *error_type);
        assert!(
            doc["errorMessage"].as_str().unwrap().contains(message),
            "case {i}: {doc}"
        );
        assert!(err.is_function_error());
        let text = invocation.logs.text();
        assert!(text.contains("Uncaught Exception"), "case {i}: {text}");
        assert!(text.contains("START RequestId:"), "{text}");
    }
}

#[tokio::test]
async fn handler_errors_become_lambdas_error_json() {
    let rt = runtime();
    let src = r#"
exports.handler = async (event) => {
  if (event.kind === 'throw') { const o = undefined; return o.cf; }
  if (event.kind === 'reject') return Promise.reject(new RangeError('out of range'));
  if (event.kind === 'custom') { const e = new Error('teapot'); e.name = 'TeapotError'; e.code = 'E418'; throw e; }
  if (event.kind === 'string') throw 'just a string';
  return 'fine';
};
exports.cb = (event, context, callback) => callback(new Error('called back'));
exports.fail = (event, context) => context.fail(new Error('failed'));
exports.circular = async () => { const a = {}; a.a = a; return a; };
"#;
    let files = [("index.js", src)];
    let f = rt.load("nodejs20.x", "index.handler", &files).await;
    let err = f.invoke(br#"{"kind":"throw"}"#).await.unwrap_err();
    let doc = error_doc(&err);
    assert_eq!(doc["errorType"], "TypeError");
    assert_eq!(
        doc["errorMessage"],
        "Cannot read properties of undefined (reading 'cf')"
    );
    let trace = doc["trace"].as_array().unwrap();
    assert!(trace[0]
        .as_str()
        .unwrap()
        .starts_with("TypeError: Cannot read"));
    assert!(
        trace
            .iter()
            .any(|l| l.as_str().unwrap().contains("index.js")),
        "{doc}"
    );

    let inv = f.invoke_detailed(br#"{"kind":"custom"}"#).await;
    let doc = error_doc(inv.result.as_ref().unwrap_err());
    assert_eq!(doc["errorType"], "TeapotError");
    assert_eq!(doc["errorMessage"], "teapot");
    // The log copy has `code` and `stack`, after "Invoke Error " and a tab.
    let line = inv
        .logs
        .lines
        .iter()
        .find(|l| l.message.contains("Invoke Error"))
        .unwrap();
    let parts: Vec<&str> = line.message.splitn(5, '\t').collect();
    assert_eq!(parts[1], inv.request_id);
    assert_eq!(parts[2], "ERROR");
    assert_eq!(parts[3], "Invoke Error ");
    let logged: Value = serde_json::from_str(parts[4]).unwrap();
    assert_eq!(logged["errorType"], "TeapotError");
    assert_eq!(logged["code"], "E418");
    assert!(logged["stack"].is_array());

    let doc = error_doc(&f.invoke(br#"{"kind":"reject"}"#).await.unwrap_err());
    assert_eq!(doc["errorType"], "RangeError");
    let doc = error_doc(&f.invoke(br#"{"kind":"string"}"#).await.unwrap_err());
    assert_eq!(
        doc,
        json!({"errorType": "string", "errorMessage": "just a string", "trace": []})
    );
    // The worker survives handled errors.
    assert_eq!(call(&f, "{}").await, json!("fine"));
    assert_eq!(f.cold_starts(), 1);

    let cb = rt
        .load_with("nodejs20.x", "index.cb", &files, |s| s.name = "cb".into())
        .await;
    assert_eq!(
        error_doc(&cb.invoke(b"{}").await.unwrap_err())["errorMessage"],
        "called back"
    );
    let fail = rt
        .load_with("nodejs20.x", "index.fail", &files, |s| {
            s.name = "fail".into()
        })
        .await;
    assert_eq!(
        error_doc(&fail.invoke(b"{}").await.unwrap_err())["errorMessage"],
        "failed"
    );
    let circ = rt
        .load_with("nodejs20.x", "index.circular", &files, |s| {
            s.name = "circ".into()
        })
        .await;
    assert_eq!(
        circ.invoke(b"{}").await.unwrap_err().error_type(),
        "Runtime.MarshalError"
    );
}

#[tokio::test]
async fn timeout_crash_oom_and_uncaught_errors_replace_the_worker() {
    let rt = runtime();
    let src = r#"
exports.handler = async (event) => {
  if (event.kind === 'hang') return new Promise(() => { setInterval(() => {}, 1000); });
  if (event.kind === 'spin') { for (;;) {} }
  if (event.kind === 'exit') process.exit(3);
  if (event.kind === 'segv') process.kill(process.pid, 'SIGSEGV');
  if (event.kind === 'oom') { const keep = []; for (;;) keep.push(new Array(1e6).fill(Math.random())); }
  if (event.kind === 'uncaught') { setTimeout(() => { throw new Error('later'); }, 1); return new Promise(() => {}); }
  return { pid: Number(require('fs').readlinkSync('/proc/self')) };
};
"#;
    let f = rt
        .load_with("nodejs20.x", "index.handler", &[("index.js", src)], |s| {
            s.timeout = Duration::from_secs(1);
            s.concurrency = Some(8);
        })
        .await;
    let pid = call(&f, "{}").await["pid"].clone();

    let (hang, spin, exit, segv, uncaught) = tokio::join!(
        f.invoke_detailed(br#"{"kind":"hang"}"#),
        f.invoke_detailed(br#"{"kind":"spin"}"#),
        f.invoke(br#"{"kind":"exit"}"#),
        f.invoke(br#"{"kind":"segv"}"#),
        f.invoke(br#"{"kind":"uncaught"}"#),
    );
    for t in [&hang, &spin] {
        let err = t.result.as_ref().unwrap_err();
        assert_eq!(err.error_type(), "Sandbox.Timedout");
        let doc = error_doc(err);
        assert_eq!(
            doc["errorMessage"],
            format!(
                "RequestId: {} Error: Task timed out after 1.00 seconds",
                t.request_id
            )
        );
        let text = t.logs.text();
        assert!(
            text.contains(&format!(
                "{} Task timed out after 1.00 seconds",
                t.request_id
            )),
            "{text}"
        );
        assert!(t.duration >= Duration::from_secs(1));
        // The worker's memory when it was killed, not nothing.
        assert!(t.max_memory_used_mb >= 10, "{}", t.max_memory_used_mb);
        assert!(text.trim_end().ends_with("\tStatus: timeout"), "{text}");
    }
    let exit = exit.unwrap_err();
    assert_eq!(exit.error_type(), "Runtime.ExitError");
    assert!(
        exit.to_string()
            .ends_with("Runtime exited with error: exit status 3"),
        "{exit}"
    );
    let segv = segv.unwrap_err();
    assert_eq!(segv.error_type(), "Runtime.ExitError");
    assert!(
        segv.to_string().contains("signal: segmentation fault"),
        "{segv}"
    );
    let uncaught = uncaught.unwrap_err();
    assert_eq!(error_doc(&uncaught)["errorMessage"], "later");

    let oom = rt
        .load_with("nodejs20.x", "index.handler", &[("index.js", src)], |s| {
            s.name = "oom".into();
            s.timeout = Duration::from_secs(20);
        })
        .await;
    let err = oom.invoke(br#"{"kind":"oom"}"#).await.unwrap_err();
    assert_eq!(err.error_type(), "Runtime.OutOfMemory", "{err}");

    // Every broken worker was replaced; the function still answers.
    let after = call(&f, "{}").await["pid"].clone();
    assert_ne!(after, Value::Null);
    let _ = pid;
}

#[tokio::test]
async fn log_lines_have_lambdas_format() {
    let rt = runtime();
    let src = r#"
console.log('init line');
exports.handler = async () => {
  console.log('hello %s', 'world');
  console.info({ a: 1 });
  console.warn('careful');
  console.error('two\nlines');
  process.stdout.write('raw write\n');
  require('child_process').execSync('echo from-child', { stdio: 'inherit' });
  return 1;
};
"#;
    let f = rt
        .load_with("nodejs20.x", "index.handler", &[("index.js", src)], |s| {
            s.version = "7".into()
        })
        .await;
    let out = f.invoke(b"{}").await.unwrap();
    let id = &out.request_id;
    let all: Vec<&str> = out.logs.lines.iter().map(|l| l.message.as_str()).collect();
    // Output of a child process comes through the real stdout pipe, read concurrently: it
    // joins this invocation when it arrived before the reply, else the next one.
    let child_here = all.contains(&"from-child");
    let lines: Vec<&str> = all.into_iter().filter(|l| *l != "from-child").collect();
    assert_eq!(lines.len(), 9, "{lines:#?}");
    let ts = |line: &str| {
        let t = line.split('\t').next().unwrap();
        assert_eq!(t.len(), 24, "{line}");
        assert!(t.ends_with('Z') && &t[10..11] == "T", "{line}");
    };
    ts(lines[0]);
    assert!(
        lines[0].ends_with("\tundefined\tINFO\tinit line"),
        "{}",
        lines[0]
    );
    assert_eq!(lines[1], format!("START RequestId: {id} Version: 7"));
    for (line, rest) in [
        (lines[2], format!("\t{id}\tINFO\thello world")),
        (lines[3], format!("\t{id}\tINFO\t{{ a: 1 }}")),
        (lines[4], format!("\t{id}\tWARN\tcareful")),
        (lines[5], format!("\t{id}\tERROR\ttwo\rlines")),
    ] {
        ts(line);
        assert!(line.ends_with(&rest), "{line:?} vs {rest:?}");
    }
    assert_eq!(lines[6], "raw write");
    assert_eq!(lines[7], format!("END RequestId: {id}"));
    let report = lines[8];
    assert!(
        report.starts_with(&format!("REPORT RequestId: {id}\tDuration: ")),
        "{report}"
    );
    let fields: Vec<&str> = report.split('\t').collect();
    assert_eq!(fields.len(), 7, "{report:?}");
    assert!(fields[1].starts_with("Duration: ") && fields[1].ends_with(" ms"));
    assert!(fields[2].starts_with("Billed Duration: ") && fields[2].ends_with(" ms"));
    assert_eq!(fields[3], "Memory Size: 128 MB");
    assert!(fields[4].starts_with("Max Memory Used: ") && fields[4].ends_with(" MB"));
    assert!(fields[5].starts_with("Init Duration: ") && fields[5].ends_with(" ms"));
    assert_eq!(fields[6], "");
    if !child_here {
        let next = f.invoke(b"{}").await.unwrap();
        assert!(next.logs.lines.iter().any(|l| l.message == "from-child"));
    }
}

#[tokio::test]
async fn log_floods_are_capped() {
    let rt = runtime_with(|c| c.log_cap_bytes = 64 * 1024);
    let src = r#"
exports.handler = async () => {
  for (let i = 0; i < 100000; i++) console.log('flood line ' + i);
  for (let i = 0; i < 2000; i++) process.stdout.write('x'.repeat(1000));
  return 'survived';
};
"#;
    let f = rt
        .load("nodejs20.x", "index.handler", &[("index.js", src)])
        .await;
    let out = f.invoke(b"{}").await.unwrap();
    assert_eq!(&out.payload[..], b"\"survived\"");
    let total: usize = out.logs.lines.iter().map(|l| l.message.len()).sum();
    assert!(total < 80 * 1024, "{total}");
    assert!(out.logs.text().contains("log output truncated"));
}

#[tokio::test]
async fn an_error_between_invocations_ends_only_that_worker() {
    let logs = tempfile::tempdir().unwrap();
    let sink = std::sync::Arc::new(ledge_runtime::FileSink::new(logs.path()).unwrap());
    let path = sink.path_for("/aws/lambda/fn");
    let rt = runtime_with(|c| c.log_sink = Some(sink));
    let src = r#"
exports.handler = async (event) => {
  if (event.later) setTimeout(() => { throw new Error('after the reply'); }, 20);
  return Number(require('fs').readlinkSync('/proc/self'));
};
"#;
    let f = rt
        .load("nodejs20.x", "index.handler", &[("index.js", src)])
        .await;
    let first = call(&f, r#"{"later":true}"#).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The worker died between invocations; the next invocation gets a fresh one, and the
    // error was logged, not mistaken for the next invocation's reply.
    let next = f.invoke(b"{}").await.unwrap();
    let second: Value = serde_json::from_slice(&next.payload).unwrap();
    assert_ne!(first, second);
    assert!(next.init_duration.is_some());
    assert_eq!(f.cold_starts(), 2);
    let mut text = String::new();
    for _ in 0..100 {
        text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.contains("Uncaught Exception") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(text.contains("ERROR\tUncaught Exception \t{\"errorType\":\"Error\",\"errorMessage\":\"after the reply\""), "{text}");
}
