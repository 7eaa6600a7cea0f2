//! `ledge edge` stopped with SIGTERM leaves nothing behind: no function worker, no process a
//! function started (even one that left its session), no `/tmp` mount.

use std::path::Path;
use std::time::Duration;

use ledge_test::client;
use ledge_test::edge::Edge;
use ledge_test::lambda::{self, Function};
use ledge_test::origin::{Origin, Route};
use ledge_test::process::{alive, workers_under};
use ledge_test::snapshot;

const BIN: &str = env!("CARGO_BIN_EXE_ledge");

/// Starts a process that calls setsid and sleeps; answers with its host PID.
const ESCAPE_PY: &str = r#"
import os, subprocess, sys, time

ESCAPEE = "import os, sys, time\nos.setsid()\nopen(sys.argv[1], 'w').write(os.readlink('/proc/self'))\ntime.sleep(120)\n"

def handler(event, context):
    path = os.path.join(os.environ["TMPDIR"], "escapee-%d" % time.monotonic_ns())
    subprocess.Popen([sys.executable, "-S", "-c", ESCAPEE, path],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(500):
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return {"status": "200", "body": open(path).read()}
        time.sleep(0.01)
    raise RuntimeError("the escapee did not start")
"#;

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
    })
}

fn mounts_under(dir: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| Path::new(p).starts_with(dir))
        .map(String::from)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_leaves_no_worker_no_escaped_process_and_no_mount() {
    let o = Origin::new().route("/a", Route::ok("origin")).run().await;
    let f = Function::python("escape-py", ESCAPE_PY);
    let mut d = snapshot::distribution("E1", "py.ledge.localhost", o.port());
    lambda::associate(&mut d, "viewer-request", &f, false);
    let e = Edge::builder(BIN)
        .snapshot(lambda::snapshot(1, vec![d], &[&f]))
        .data_file(&f.package_path(), f.zip.clone())
        .arg("--function-tmp-size")
        .arg("1048576")
        .start();
    let data = e.dir.path().join("data");
    let data = data.canonicalize().unwrap_or(data);
    let sock_dir = data.join("runtime/sock");

    let r = client::request(e.http, "GET", "py.ledge.localhost", "/a", &[], "").await;
    assert_eq!(r.status, 200, "{}\n{}", r.text(), e.stderr());
    let escapee: u64 = r.text().trim().parse().unwrap();
    assert!(alive(escapee));
    assert!(!workers_under(&sock_dir).is_empty());
    if is_root() {
        assert_eq!(mounts_under(&data).len(), 1, "{:?}", mounts_under(&data));
    }

    let status = std::process::Command::new("kill")
        .args(["-TERM", &e.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    for _ in 0..250 {
        if !alive(u64::from(e.pid())) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !alive(u64::from(e.pid())),
        "the edge did not exit on SIGTERM"
    );
    for _ in 0..100 {
        if workers_under(&sock_dir).is_empty() && !alive(escapee) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        workers_under(&sock_dir),
        Vec::<u64>::new(),
        "workers outlived the edge"
    );
    if is_root() {
        // Without PID namespaces (not root) a process that left the session survives.
        assert!(!alive(escapee), "process {escapee} outlived the edge");
    }
    assert_eq!(
        mounts_under(&data),
        Vec::<String>::new(),
        "mounts outlived the edge"
    );
}
