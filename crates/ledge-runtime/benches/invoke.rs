//! Warm-invocation overhead, throughput and cold start of ledge's workers, each compared in
//! the same run with its floor:
//! - the same handler called in a loop inside one interpreter (no ledge at all);
//! - a bare round trip of the same bytes over the same kind of channel (Unix socket, same
//!   framing) to a process that answers without calling any handler;
//! - the interpreter's bare start (`node -e 0`, `python3 -c 0`) for cold starts.
//!
//! Run: `cargo bench -p ledge-runtime --bench invoke` (env `BENCH_ITERS` to change the count).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ledge_runtime::{FunctionHandle, FunctionSpec, PackageRef, Runtime, RuntimeConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NODE_HANDLER: &str = "exports.handler = async (event) => ({ status: '200' });\n";
const PY_HANDLER: &str = "def handler(event, context):\n    return {'status': '200'}\n";

/// The no-op handler run in a loop inside one interpreter: parse the event, call, serialise.
const NODE_FLOOR: &str = r#"
const fs = require('fs');
const { handler } = require(process.argv[2]);
const event = fs.readFileSync(process.argv[3], 'utf8');
const n = Number(process.argv[4]);
(async () => {
  const samples = new Array(n);
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    const r = await handler(JSON.parse(event), {});
    JSON.stringify(r);
    samples[i] = Number(process.hrtime.bigint() - t);
  }
  process.stdout.write(JSON.stringify(samples));
})();
"#;

const PY_FLOOR: &str = r#"
import json, sys, time, importlib.util
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
event = open(sys.argv[2]).read()
n = int(sys.argv[3])
samples = []
for _ in range(n):
    t = time.perf_counter_ns()
    json.dumps(mod.handler(json.loads(event), None))
    samples.append(time.perf_counter_ns() - t)
sys.stdout.write(json.dumps(samples))
"#;

/// Answers every frame at once with a reply frame of ledge's format, calling nothing.
const NODE_ECHO: &str = r#"
const net = require('net');
const s = net.createConnection(process.argv[2]);
const body = Buffer.from('{"status":"200"}');
let inbox = Buffer.alloc(0);
s.on('data', (c) => {
  inbox = inbox.length ? Buffer.concat([inbox, c]) : c;
  while (inbox.length >= 4) {
    const n = inbox.readUInt32LE(0);
    if (inbox.length < 4 + n) break;
    inbox.toString('utf8', 4, 4 + n);
    inbox = inbox.subarray(4 + n);
    const f = Buffer.allocUnsafe(13 + body.length);
    f.writeUInt32LE(9 + body.length, 0); f.writeUInt8(0x52, 4); f.writeUInt32LE(0, 5); f.writeUInt32LE(0, 9);
    body.copy(f, 13);
    s.write(f);
  }
});
s.on('close', () => process.exit(0));
"#;

const PY_ECHO: &str = r#"
import socket, struct, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
body = b'{"status":"200"}'
reply = struct.pack("<IBII", 9 + len(body), 0x52, 0, 0) + body
def exact(n):
    buf = bytearray(n); view = memoryview(buf); got = 0
    while got < n:
        k = s.recv_into(view[got:])
        if k == 0: sys.exit(0)
        got += k
    return buf
while True:
    (n,) = struct.unpack("<I", exact(4)); exact(n).decode()
    s.sendall(reply)
"#;

/// A viewer-request event of about 2 KB.
fn event_2kb() -> Vec<u8> {
    let mut headers = serde_json::Map::new();
    for (k, v) in [
        ("host", "d111111abcdef8.cloudfront.net"),
        ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"),
        ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"),
        ("accept-language", "en-US,en;q=0.9,de;q=0.8"),
        ("accept-encoding", "gzip, deflate, br"),
        ("cookie", "session-id=s-42-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa; theme=dark; ab=B; tracking=bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"),
        ("referer", "https://www.example.net/some/long/path/to/a/page?with=query&and=more&params=here"),
        ("x-forwarded-for", "198.51.100.23, 203.0.113.77"),
        ("cache-control", "no-cache"),
        ("pragma", "no-cache"),
        ("upgrade-insecure-requests", "1"),
        ("sec-fetch-dest", "document"),
        ("sec-fetch-mode", "navigate"),
        ("sec-fetch-site", "same-origin"),
        ("sec-fetch-user", "?1"),
        ("sec-ch-ua", "\"Chromium\";v=\"120\", \"Not?A_Brand\";v=\"8\""),
        ("sec-ch-ua-platform", "\"Linux\""),
        ("dnt", "1"),
    ] {
        headers.insert(k.into(), serde_json::json!([{"key": k, "value": v}]));
    }
    let event = serde_json::json!({"Records": [{"cf": {
        "config": {
            "distributionDomainName": "d111111abcdef8.cloudfront.net",
            "distributionId": "EDFDVBD6EXAMPLE",
            "eventType": "viewer-request",
            "requestId": "A1WX3BGubpCdejqjkDqCftNkXsWmH1XwgsMigHOlOt2vhXzN6qPnYw=="
        },
        "request": {
            "clientIp": "198.51.100.23",
            "headers": headers,
            "method": "GET",
            "querystring": "lang=en&ref=mail&utm_source=newsletter&utm_medium=email&utm_campaign=spring",
            "uri": "/articles/2025/03/04/an-article-about-edge-functions.html"
        }
    }}]});
    serde_json::to_vec(&event).unwrap_or_default()
}

struct Stats {
    p50: Duration,
    p99: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    Stats {
        p50: at(0.50),
        p99: at(0.99),
    }
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn zip(name: &str, contents: &str) -> Bytes {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let _ = w.start_file(name, zip::write::SimpleFileOptions::default());
    let _ = w.write_all(contents.as_bytes());
    Bytes::from(w.finish().map(|c| c.into_inner()).unwrap_or_default())
}

async fn warm(f: &FunctionHandle, event: &[u8], iters: usize) -> Vec<Duration> {
    for _ in 0..200 {
        let _ = f.invoke(event).await;
    }
    let mut samples = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        let out = f.invoke(event).await;
        samples.push(t.elapsed());
        assert!(out.is_ok(), "{:?}", out.err());
    }
    samples
}

async fn throughput(
    f: &Arc<FunctionHandle>,
    event: &Arc<Vec<u8>>,
    clients: usize,
    window: Duration,
) -> f64 {
    let _ = f.prewarm(clients).await;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let f = f.clone();
        let event = event.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while start.elapsed() < window {
                if f.invoke(&event).await.is_ok() {
                    n += 1;
                }
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap_or(0);
    }
    total as f64 / start.elapsed().as_secs_f64()
}

fn floor(interp: &str, script: &Path, handler: &Path, event: &Path, iters: usize) -> Vec<Duration> {
    let out = std::process::Command::new(interp)
        .arg(script)
        .arg(handler)
        .arg(event)
        .arg(iters.to_string())
        .output()
        .expect("run the in-interpreter loop");
    let ns: Vec<u64> = serde_json::from_slice(&out.stdout).expect("samples");
    ns.into_iter()
        .skip(iters / 10)
        .map(Duration::from_nanos)
        .collect()
}

async fn bare_round_trip(
    interp: &str,
    script: &Path,
    dir: &Path,
    event: &[u8],
    iters: usize,
) -> Vec<Duration> {
    let sock = dir.join(format!(
        "echo-{}.sock",
        script.file_name().and_then(|s| s.to_str()).unwrap_or("x")
    ));
    let listener = tokio::net::UnixListener::bind(&sock).expect("bind");
    let mut child = tokio::process::Command::new(interp)
        .arg(script)
        .arg(&sock)
        .kill_on_drop(true)
        .spawn()
        .expect("spawn echo");
    let (mut stream, _) = listener.accept().await.expect("accept");
    // The same request frame ledge sends.
    let mut frame = Vec::new();
    let body = [
        &b"{\"id\":\"8f9e6c1a-3b2d-4e5f-8a7b-9c0d1e2f3a4b\",\"deadline\":1700000000000,\"event\":"
            [..],
        event,
        b"}",
    ]
    .concat();
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(&body);
    let mut reply = vec![0u8; 4 + 9 + 16];
    let mut samples = Vec::with_capacity(iters);
    for i in 0..iters + 200 {
        let t = Instant::now();
        stream.write_all(&frame).await.expect("write");
        stream.read_exact(&mut reply).await.expect("read");
        if i >= 200 {
            samples.push(t.elapsed());
        }
    }
    drop(stream);
    let _ = child.kill().await;
    samples
}

async fn bare_start(interp: &str, args: &[&str], n: usize) -> Vec<Duration> {
    let mut samples = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let _ = tokio::process::Command::new(interp)
            .args(args)
            .status()
            .await;
        samples.push(t.elapsed());
    }
    samples
}

async fn wait_for_spares(rt: &Runtime, n: usize) {
    for _ in 0..500 {
        if rt.spare_workers() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn cold(
    rt: &Runtime,
    runtime: &str,
    handler: &str,
    code: &Bytes,
    event: &[u8],
    n: usize,
) -> (Vec<Duration>, Vec<Duration>) {
    let mut total = Vec::new();
    let mut first = Vec::new();
    for i in 0..n {
        let mut spec = FunctionSpec::new(
            format!("cold-{runtime}-{i}"),
            runtime,
            handler,
            PackageRef::Zip(code.clone()),
        );
        spec.version = "1".into();
        if rt.config().spare_workers > 0 {
            wait_for_spares(rt, 2).await;
        }
        let t = Instant::now();
        let f = rt.load(spec).await.expect("load");
        let t_invoke = Instant::now();
        f.invoke(event).await.expect("cold invoke");
        total.push(t.elapsed());
        first.push(t_invoke.elapsed());
    }
    (total, first)
}

fn main() {
    let iters: usize = std::env::var("BENCH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    rt.block_on(async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let runtime = Runtime::new(RuntimeConfig::new(dir.path().join("data"))).expect("runtime");
        let event = event_2kb();
        let event_path = dir.path().join("event.json");
        std::fs::write(&event_path, &event).expect("write event");
        let scripts = dir.path().join("scripts");
        std::fs::create_dir_all(&scripts).expect("mkdir");
        let write = |name: &str, text: &str| {
            let p = scripts.join(name);
            std::fs::write(&p, text).expect("write script");
            p
        };
        let node_handler = write("handler.js", NODE_HANDLER);
        let py_handler = write("handler.py", PY_HANDLER);
        let node_floor = write("floor.js", NODE_FLOOR);
        let py_floor = write("floor.py", PY_FLOOR);
        let node_echo = write("echo.js", NODE_ECHO);
        let py_echo = write("echo.py", PY_ECHO);
        let python = python_path().await;

        println!("event: {} bytes, {iters} warm invocations per row\n", event.len());
        println!("| runtime | measure | p50 | p99 | note |");
        println!("| --- | --- | --- | --- | --- |");
        let node_zip = zip("index.js", NODE_HANDLER);
        let py_zip = zip("app.py", PY_HANDLER);
        let event_arc = Arc::new(event.clone());
        let mut tput = Vec::new();
        for (label, runtime_id, handler, code, interp, floor_script, handler_file, echo) in [
            ("Node.js", "nodejs20.x", "index.handler", &node_zip, "node".to_string(), &node_floor, &node_handler, &node_echo),
            ("Python", "python3.11", "app.handler", &py_zip, python.clone(), &py_floor, &py_handler, &py_echo),
        ] {
            let mut spec = FunctionSpec::new(format!("warm-{runtime_id}"), runtime_id, handler, PackageRef::Zip(code.clone()));
            spec.version = "1".into();
            spec.concurrency = Some(2);
            let f = runtime.load(spec).await.expect("load");
            let ledge = stats(warm(&f, &event, iters).await);
            let floor = stats(floor(&interp, floor_script, handler_file, &event_path, iters));
            let bare = stats(bare_round_trip(&interp, echo, dir.path(), &event, iters).await);
            println!("| {label} | ledge warm invoke | {} | {} | load → result, 2 KB event |", us(ledge.p50), us(ledge.p99));
            println!("| {label} | floor: handler in a loop | {} | {} | JSON.parse + call + stringify in one interpreter |", us(floor.p50), us(floor.p99));
            println!("| {label} | floor: bare round trip | {} | {} | same frame over a Unix socket, no handler |", us(bare.p50), us(bare.p99));
            println!(
                "| {label} | overhead over floors | {} | | ledge p50 − (loop p50 + round-trip p50) |",
                us(ledge.p50.saturating_sub(floor.p50 + bare.p50))
            );
            let one = throughput(&f, &event_arc, 1, Duration::from_secs(2)).await;
            let two = throughput(&f, &event_arc, 2, Duration::from_secs(2)).await;
            let four = throughput(&f, &event_arc, 4, Duration::from_secs(2)).await;
            tput.push((label, one, two, four));
        }
        println!("\n| runtime | invocations/s, 1 client | 2 clients | 4 clients (2 workers, queueing) |");
        println!("| --- | --- | --- | --- |");
        for (label, one, two, four) in tput {
            println!("| {label} | {one:.0} | {two:.0} | {four:.0} |");
        }

        let mut spare_config = RuntimeConfig::new(dir.path().join("spare-data"));
        spare_config.spare_workers = 1;
        let spare_runtime = Runtime::new(spare_config).expect("runtime");
        println!("\n| runtime | cold start p50 (load → first result) | first invoke only p50 | bare interpreter start p50 | ratio | with a spare interpreter: load → first result p50 |");
        println!("| --- | --- | --- | --- | --- | --- |");
        for (label, runtime_id, handler, code, interp, bare_args) in [
            ("Node.js", "nodejs20.x", "index.handler", &node_zip, "node".to_string(), &["-e", "0"][..]),
            ("Python", "python3.11", "app.handler", &py_zip, python.clone(), &["-c", "0"][..]),
            ("Python", "python3.11", "app.handler", &py_zip, python.clone(), &["-S", "-c", "0"][..]),
        ] {
            let (total, first) = cold(&runtime, runtime_id, handler, code, &event, 15).await;
            let bare = stats(bare_start(&interp, bare_args, 15).await);
            let (spared, _) = cold(&spare_runtime, runtime_id, handler, code, &event, 15).await;
            let total = stats(total);
            let first = stats(first);
            let spared = stats(spared);
            println!(
                "| {label} | {} | {} | {} (`{} {}`) | {:.2}× | {} |",
                ms(total.p50),
                ms(first.p50),
                ms(bare.p50),
                Path::new(&interp).file_name().and_then(|n| n.to_str()).unwrap_or("?"),
                bare_args.join(" "),
                total.p50.as_secs_f64() / bare.p50.as_secs_f64(),
                ms(spared.p50),
            );
        }
        // What a worker's PID namespace (RuntimeConfig::pid_namespaces, on as root) adds to the
        // cold start of a version that was just loaded.
        let mut plain_config = RuntimeConfig::new(dir.path().join("plain-data"));
        plain_config.pid_namespaces = false;
        let plain = Runtime::new(plain_config).expect("runtime");
        println!("\n| runtime | cold start p50, PID namespaces on ({}) | off |", runtime.pid_namespaces());
        println!("| --- | --- | --- |");
        for (label, runtime_id, handler, code) in [
            ("Node.js", "nodejs20.x", "index.handler", &node_zip),
            ("Python", "python3.11", "app.handler", &py_zip),
        ] {
            let (on, _) = cold(&runtime, runtime_id, handler, code, &event, 15).await;
            let (off, _) = cold(&plain, runtime_id, handler, code, &event, 15).await;
            println!("| {label} | {} | {} |", ms(stats(on).p50), ms(stats(off).p50));
        }
    });
}

/// The real Python binary (`python3` on PATH may be a shim).
async fn python_path() -> String {
    let out = tokio::process::Command::new("python3")
        .args(["-c", "import sys; sys.stdout.write(sys.executable)"])
        .output()
        .await;
    out.ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "python3".to_string())
}
