//! Python workers: resolution, context, errors, limits, logs.
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

const APP: &str = r#"
import os, time, logging
count = 0

def lambda_handler(event, context):
    global count
    count += 1
    return {
        "count": count,
        "pid": int(os.readlink("/proc/self")),
        "name": context.function_name,
        "version": context.function_version,
        "arn": context.invoked_function_arn,
        "memory": context.memory_limit_in_mb,
        "requestId": context.aws_request_id,
        "group": context.log_group_name,
        "stream": context.log_stream_name,
        "remaining": context.get_remaining_time_in_millis(),
        "identity": context.identity,
        "env": {k: os.environ.get(k) for k in ["AWS_LAMBDA_FUNCTION_NAME", "AWS_REGION", "_HANDLER", "LAMBDA_TASK_ROOT", "AWS_EXECUTION_ENV", "TZ", "GREETING"]},
        "tmp_ok": _write_tmp(),
    }

def _write_tmp():
    import tempfile
    with tempfile.NamedTemporaryFile(dir=os.environ["TMPDIR"]) as f:
        f.write(b"x")
    return True
"#;

#[tokio::test]
async fn warm_reuse_context_and_environment() {
    let rt = runtime();
    let f = rt
        .load_with(
            "python3.12",
            "lambda_function.lambda_handler",
            &[("lambda_function.py", APP)],
            |s| {
                s.name = "py".into();
                s.version = "2".into();
                s.memory_mb = 512;
                s.env.insert("GREETING".into(), "hello".into());
            },
        )
        .await;
    let first = f.invoke(b"{}").await.unwrap();
    let second = f.invoke(b"{}").await.unwrap();
    assert!(first.init_duration.is_some() && second.init_duration.is_none());
    let a: Value = serde_json::from_slice(&first.payload).unwrap();
    let b: Value = serde_json::from_slice(&second.payload).unwrap();
    assert_eq!(
        (a["count"].clone(), b["count"].clone()),
        (json!(1), json!(2))
    );
    assert_eq!(a["pid"], b["pid"]);
    assert_eq!(b["name"], "py");
    assert_eq!(b["version"], "2");
    assert_eq!(
        b["arn"],
        "arn:aws:lambda:us-east-1:000000000000:function:py:2"
    );
    assert_eq!(b["memory"], 512);
    assert_eq!(b["requestId"], second.request_id.as_str());
    assert_eq!(b["group"], "/aws/lambda/py");
    assert!(b["stream"].as_str().unwrap().contains("/[2]"));
    let remaining = b["remaining"].as_u64().unwrap();
    assert!(remaining > 2000 && remaining <= 3000, "{remaining}");
    assert_eq!(b["identity"], Value::Null);
    assert_eq!(b["env"]["AWS_LAMBDA_FUNCTION_NAME"], "py");
    assert_eq!(b["env"]["_HANDLER"], "lambda_function.lambda_handler");
    assert_eq!(b["env"]["AWS_EXECUTION_ENV"], "AWS_Lambda_python3.12");
    assert_eq!(b["env"]["TZ"], ":UTC");
    assert_eq!(b["env"]["GREETING"], "hello");
    assert_eq!(b["tmp_ok"], true);
}

#[tokio::test]
async fn handler_resolution_and_load_errors() {
    let rt = runtime();
    let ok: &[(&str, &[(&str, &str)])] = &[
        (
            "app.handle",
            &[("app.py", "def handle(e, c):\n    return 'app'\n")],
        ),
        (
            "pkg/sub/mod.handle",
            &[
                ("pkg/__init__.py", ""),
                ("pkg/sub/__init__.py", ""),
                ("pkg/sub/mod.py", "def handle(e, c):\n    return 'slash'\n"),
            ],
        ),
        (
            "pkg.mod.handle",
            &[
                ("pkg/__init__.py", ""),
                ("pkg/mod.py", "def handle(e, c):\n    return 'dotted'\n"),
            ],
        ),
    ];
    for (i, (handler, files)) in ok.iter().enumerate() {
        let f = rt
            .load_with("python3.11", handler, files, |s| s.name = format!("ok{i}"))
            .await;
        assert_eq!(call(&f, "{}").await, json!(["app", "slash", "dotted"][i]));
    }
    let bad: &[LoadCase] = &[
        (
            "missing.handler",
            &[("app.py", "")],
            "Runtime.ImportModuleError",
            "Unable to import module 'missing': No module named 'missing'",
        ),
        (
            "app.nope",
            &[("app.py", "x = 1\n")],
            "Runtime.HandlerNotFound",
            "Handler 'nope' missing on module 'app'",
        ),
        (
            "app.handler",
            &[("app.py", "def handler(e, c)\n    return 1\n")],
            "Runtime.UserCodeSyntaxError",
            "Syntax error in module 'app'",
        ),
        (
            "app",
            &[("app.py", "")],
            "Runtime.MalformedHandlerName",
            "Bad handler 'app'",
        ),
        (
            "sys.handler",
            &[("app.py", "")],
            "Runtime.BuiltInModuleConflict",
            "Cannot use built-in module sys as a handler module",
        ),
        (
            "app.handler",
            &[("app.py", "import not_installed_anywhere\n")],
            "Runtime.ImportModuleError",
            "not_installed_anywhere",
        ),
        (
            "app.handler",
            &[("app.py", "raise ValueError('init failed')\n")],
            "ValueError",
            "init failed",
        ),
    ];
    for (i, (handler, files, error_type, message)) in bad.iter().enumerate() {
        let f = rt
            .load_with("python3.11", handler, files, |s| s.name = format!("bad{i}"))
            .await;
        let inv = f.invoke_detailed(b"{}").await;
        let err = inv.result.unwrap_err();
        assert!(matches!(err, InvokeError::Init(_)), "case {i}: {err:?}");
        let doc = error_doc(&err);
        assert_eq!(doc["errorType"], *error_type, "case {i}: {doc}");
        assert!(
            doc["errorMessage"].as_str().unwrap().contains(message),
            "case {i}: {doc}"
        );
        assert!(
            inv.logs.text().contains(&format!("[ERROR] {error_type}")),
            "case {i}: {}",
            inv.logs.text()
        );
    }
}

#[tokio::test]
async fn errors_prints_and_logging_have_lambdas_format() {
    let rt = runtime();
    let src = r#"
import logging
logger = logging.getLogger()
logger.setLevel(logging.INFO)
print("init print")

def handler(event, context):
    if event.get("kind") == "raise":
        h = {}
        return h["cookie"]
    if event.get("kind") == "marshal":
        return {1, 2}
    if event.get("kind") == "circular":
        loop = {"a": []}
        loop["a"].append(loop)
        return loop
    print("hello from print")
    print("two\nlines")
    logger.info("info %s", "message")
    logger.warning("warned")
    return "ok"
"#;
    let f = rt
        .load_with("python3.11", "app.handler", &[("app.py", src)], |s| {
            s.version = "5".into()
        })
        .await;
    let out = f.invoke(b"{}").await.unwrap();
    let id = &out.request_id;
    let lines: Vec<&str> = out.logs.lines.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(lines[0], "init print");
    assert_eq!(lines[1], format!("START RequestId: {id} Version: 5"));
    assert_eq!(lines[2], "hello from print");
    assert_eq!(lines[3], "two");
    assert_eq!(lines[4], "lines");
    for (line, level, msg) in [
        (lines[5], "INFO", "info message"),
        (lines[6], "WARNING", "warned"),
    ] {
        let parts: Vec<&str> = line.split('\t').collect();
        assert_eq!(parts.len(), 4, "{line}");
        assert_eq!(parts[0], format!("[{level}]"));
        assert_eq!(parts[1].len(), 24, "{line}");
        assert!(parts[1].ends_with('Z'));
        assert_eq!(parts[2], id.as_str());
        assert_eq!(parts[3], msg);
    }
    assert_eq!(lines[7], format!("END RequestId: {id}"));
    assert!(lines[8].starts_with(&format!("REPORT RequestId: {id}\tDuration: ")));
    assert!(lines[8].contains("\tInit Duration: "));
    assert_eq!(lines.len(), 9, "{lines:#?}");

    let inv = f.invoke_detailed(br#"{"kind":"raise"}"#).await;
    let doc = error_doc(inv.result.as_ref().unwrap_err());
    assert_eq!(doc["errorType"], "KeyError");
    assert_eq!(doc["errorMessage"], "'cookie'");
    assert_eq!(doc["requestId"], inv.request_id.as_str());
    let trace = doc["stackTrace"].as_array().unwrap();
    assert_eq!(trace.len(), 1, "{doc}");
    let frame = trace[0].as_str().unwrap();
    assert!(
        frame.starts_with("  File \"")
            && frame.contains("app.py\", line 10, in handler\n    return h[\"cookie\"]\n"),
        "{frame:?}"
    );
    let logged = inv
        .logs
        .lines
        .iter()
        .find(|l| l.message.starts_with("[ERROR]"))
        .unwrap();
    let parts: Vec<&str> = logged.message.split('\r').collect();
    assert_eq!(parts[0], "[ERROR] KeyError: 'cookie'");
    assert_eq!(parts[1], "Traceback (most recent call last):");
    assert!(
        parts[2].starts_with("\u{a0}\u{a0}File \""),
        "{:?}",
        parts[2]
    );
    assert!(
        parts[3].starts_with("\u{a0}\u{a0}\u{a0}\u{a0}return"),
        "{:?}",
        parts[3]
    );

    let err = f.invoke(br#"{"kind":"marshal"}"#).await.unwrap_err();
    assert_eq!(err.error_type(), "Runtime.MarshalError");
    assert!(error_doc(&err)["errorMessage"]
        .as_str()
        .unwrap()
        .starts_with("Unable to marshal response:"));
    // json.dumps's own words, as on Lambda.
    let err = f.invoke(br#"{"kind":"circular"}"#).await.unwrap_err();
    assert_eq!(
        error_doc(&err)["errorMessage"],
        "Unable to marshal response: Circular reference detected"
    );
    assert_eq!(call(&f, "{}").await, json!("ok"));
    assert_eq!(f.cold_starts(), 1, "handled errors keep the worker");
}

#[tokio::test]
async fn timeout_crash_and_memory_limit() {
    let rt = runtime();
    let src = r#"
import os, time
def handler(event, context):
    kind = event.get("kind")
    if kind == "sleep":
        time.sleep(30)
    if kind == "hog":
        held = bytearray(80 * 1024 * 1024)
        held[::4096] = b"x" * (len(held) // 4096)
        time.sleep(30)
    if kind == "exit":
        os._exit(2)
    if kind == "oom":
        keep = []
        while True:
            keep.append(bytearray(16 * 1024 * 1024))
    if kind == "garbage":
        import sys, _socket
        frame = sys._getframe()
        while frame is not None:
            for obj in list(frame.f_locals.values()):
                if isinstance(obj, _socket.socket):
                    obj.sendall(b"\x0a\x00\x00\x00garbage!!!!!")
            frame = frame.f_back
        return "lied"
    return int(os.readlink('/proc/self'))
"#;
    let f = rt
        .load_with("python3.11", "app.handler", &[("app.py", src)], |s| {
            s.timeout = Duration::from_secs(1);
            s.concurrency = Some(7);
        })
        .await;
    // The memory bomb gets time enough to hit the limit even on a loaded machine.
    let roomy = rt
        .load_with("python3.11", "app.handler", &[("app.py", src)], |s| {
            s.name = "roomy".into();
            s.timeout = Duration::from_secs(20);
        })
        .await;
    let (sleep, hog, exit, oom, garbage) = tokio::join!(
        f.invoke(br#"{"kind":"sleep"}"#),
        f.invoke_detailed(br#"{"kind":"hog"}"#),
        f.invoke(br#"{"kind":"exit"}"#),
        roomy.invoke_detailed(br#"{"kind":"oom"}"#),
        f.invoke(br#"{"kind":"garbage"}"#),
    );
    // REPORT's Max Memory Used after a timeout is what the worker had grown to when it was
    // killed (its last answer, the init's, said ~10 MB); after an out-of-memory, the whole
    // memory size, as on Lambda.
    assert!(matches!(hog.result, Err(InvokeError::Timeout { .. })));
    assert!(hog.max_memory_used_mb >= 80, "{}", hog.max_memory_used_mb);
    assert!(
        hog.logs
            .text()
            .contains(&format!("Max Memory Used: {} MB", hog.max_memory_used_mb)),
        "{}",
        hog.logs.text()
    );
    // As Lambda writes them (2026): a timed-out invocation ran exactly its timeout and its
    // REPORT ends in `Status: timeout`; a runtime that died, `Status: error` and the type.
    let report = |text: String| text.lines().last().unwrap_or_default().to_string();
    let hog_report = report(hog.logs.text());
    assert!(
        hog_report.contains("\tDuration: 1000.00 ms\tBilled Duration: 1000 ms\t")
            && hog_report.ends_with("\tStatus: timeout"),
        "{hog_report}"
    );
    assert_eq!(hog.duration, Duration::from_secs(1));
    let oom_report = report(oom.logs.text());
    assert!(
        oom_report.ends_with("\tStatus: error\tError Type: Runtime.OutOfMemory"),
        "{oom_report}"
    );
    assert_eq!(oom.max_memory_used_mb, 128, "{}", oom.logs.text());
    let oom = oom.result;
    let sleep = sleep.unwrap_err();
    assert!(matches!(sleep, InvokeError::Timeout { .. }));
    assert!(sleep
        .to_string()
        .ends_with("Task timed out after 1.00 seconds"));
    let exit = exit.unwrap_err();
    assert_eq!(exit.error_type(), "Runtime.ExitError");
    assert!(exit.to_string().ends_with("exit status 2"), "{exit}");
    assert_eq!(oom.unwrap_err().error_type(), "Runtime.OutOfMemory");
    assert_eq!(garbage.unwrap_err().error_type(), "Runtime.InvalidResponse");
    // Still serving, from fresh workers.
    assert!(call(&f, "{}").await.is_u64());
}

#[tokio::test]
async fn workers_run_the_bootstrap_compiled_by_their_interpreter() {
    let rt = runtime();
    let data = rt.runtime.config().data_dir.clone();
    // A stale or foreign bytecode file where the compiled bootstrap goes is replaced, not run.
    let tag = std::process::Command::new("python3")
        .args([
            "-S",
            "-c",
            "import sys; print(sys.implementation.cache_tag)",
        ])
        .output()
        .unwrap();
    let tag = String::from_utf8(tag.stdout).unwrap();
    let compiled = data.join(format!("bootstrap/bootstrap.{}.pyc", tag.trim()));
    std::fs::write(&compiled, b"not bytecode").unwrap();
    let f = rt
        .load(
            "python3.11",
            "app.handler",
            &[(
                "app.py",
                "import sys\ndef handler(e, c):\n    return sys.argv[0]\n",
            )],
        )
        .await;
    assert_eq!(call(&f, "{}").await, json!(compiled.display().to_string()));
}

#[tokio::test]
async fn answers_larger_than_the_socket_buffer_arrive_whole() {
    // The bootstrap writes an answer straight to the socket and leaves what does not fit to
    // sendall: a 3 MB answer with 100 KB of output does not fit in one go.
    let rt = runtime();
    let f = rt
        .load(
            "python3.12",
            "app.handler",
            &[(
                "app.py",
                "def handler(event, context):\n    print('l' * event['log'])\n    return 'x' * event['n']\n",
            )],
        )
        .await;
    for n in [10, 3_000_000, 20] {
        let out = f
            .invoke(format!(r#"{{"n":{n},"log":100000}}"#).as_bytes())
            .await
            .unwrap();
        let v: Value = serde_json::from_slice(&out.payload).unwrap();
        assert_eq!(v.as_str().map(str::len), Some(n));
        assert!(out.logs.text().contains(&"l".repeat(100_000)));
    }
    assert_eq!(f.cold_starts(), 1);
}
