//! Isolation of a version's workers: `/tmp` capped as a whole, and no process outliving the
//! worker that started it.
mod common;

use std::path::{Path, PathBuf};

use common::*;
use ledge_test::process::{alive, wait_gone, workers_under};
use serde_json::Value;

/// Writes two files of `size` bytes into TMPDIR, first each alone, then together.
const NODE_TMP: &str = r#"
const fs = require('fs');
const write = (name, size) => {
  try { fs.writeFileSync(process.env.TMPDIR + '/' + name, Buffer.alloc(size, 1)); return 'ok'; }
  catch (e) { return e.code; }
};
const rm = (name) => fs.rmSync(process.env.TMPDIR + '/' + name, { force: true });
exports.handler = async (event) => {
  const a = write('a', event.size); rm('a');
  const b = write('b', event.size); rm('b');
  const first = write('a', event.size);
  const both = write('b', event.size);
  rm('a'); rm('b');
  return { a, b, first, both, big: write('big', event.big), tmp: process.env.TMPDIR };
};
"#;

const PY_TMP: &str = r#"
import os

def write(name, size):
    try:
        with open(os.path.join(os.environ["TMPDIR"], name), "wb") as f:
            f.write(b"\1" * size)
        return "ok"
    except OSError as e:
        import errno
        return errno.errorcode[e.errno]

def rm(name):
    try:
        os.unlink(os.path.join(os.environ["TMPDIR"], name))
    except FileNotFoundError:
        pass

def handler(event, context):
    size = event["size"]
    a = write("a", size); rm("a")
    b = write("b", size); rm("b")
    first = write("a", size)
    both = write("b", size)
    rm("a"); rm("b")
    return {"a": a, "b": b, "first": first, "both": both, "big": write("big", event["big"]), "tmp": os.environ["TMPDIR"]}
"#;

const CAP: u64 = 1024 * 1024;

async fn tmp_is_capped_as_a_whole(runtime: &str, handler: &str, file: &str, src: &str) {
    let rt = runtime_with(|c| c.tmp_size_bytes = CAP);
    let f = rt.load(runtime, handler, &[(file, src)]).await;
    let event = format!(r#"{{"size": {}, "big": {}}}"#, CAP * 6 / 10, CAP * 3 / 2);
    let out: Value = call(&f, &event).await;
    // Each file alone fits under the cap.
    assert_eq!(out["a"], "ok", "{out}");
    assert_eq!(out["b"], "ok", "{out}");
    assert_eq!(out["first"], "ok", "{out}");
    let tmp = PathBuf::from(out["tmp"].as_str().unwrap());
    if is_root() {
        // A tmpfs of its own: two files together exceed it.
        assert_eq!(out["both"], "ENOSPC", "{out}");
        assert!(
            mount_points().contains(&tmp),
            "{} is not a mount",
            tmp.display()
        );
        drop(f);
        assert!(
            !mount_points().contains(&tmp),
            "{} still mounted after the version was dropped",
            tmp.display()
        );
    } else {
        // The fallback: a cap per file.
        assert_eq!(out["big"], "EFBIG", "{out}");
    }
}

#[tokio::test]
async fn node_tmp_is_capped_as_a_whole() {
    tmp_is_capped_as_a_whole("nodejs20.x", "index.handler", "index.js", NODE_TMP).await;
}

#[tokio::test]
async fn python_tmp_is_capped_as_a_whole() {
    tmp_is_capped_as_a_whole("python3.12", "app.handler", "app.py", PY_TMP).await;
}

#[tokio::test]
async fn tmp_mounts_go_with_the_runtime_and_stale_ones_are_detached() {
    if !is_root() {
        return;
    }
    let rt = runtime_with(|c| c.tmp_size_bytes = CAP);
    let data = rt.runtime.config().data_dir.clone();
    let f = rt
        .load("python3.12", "app.handler", &[("app.py", PY_TMP)])
        .await;
    let mounted = mounts_under(&data);
    assert_eq!(mounted.len(), 1, "{mounted:?}");
    // The handle outlives the runtime; its /tmp does not.
    let TestRuntime { runtime, dir } = rt;
    drop(runtime);
    assert!(mounts_under(&data).is_empty());
    drop(f);

    // A mount left by a ledge that was killed is detached by the next runtime on the same
    // data directory.
    let stale = data.join("tmp/left-behind");
    std::fs::create_dir_all(&stale).unwrap();
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "leftover"])
        .arg(&stale)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(mounts_under(&data), vec![stale.clone()]);
    let config = ledge_runtime::RuntimeConfig::new(&data);
    let again = ledge_runtime::Runtime::new(config).unwrap();
    assert!(mounts_under(&data).is_empty());
    drop(again);
    drop(dir);
}

fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    mount_points()
        .into_iter()
        .filter(|p| p.starts_with(dir))
        .collect()
}

/// Starts a process that leaves the worker's session (setsid) and keeps running; returns its
/// host PID (`/proc/self` names it even inside a PID namespace, whose `/proc` is the host's).
const PY_ESCAPE: &str = r#"
import os, subprocess, sys, time

ESCAPEE = "import os, sys, time\nos.setsid()\nopen(sys.argv[1], 'w').write(os.readlink('/proc/self'))\ntime.sleep(120)\n"

def handler(event, context):
    if event.get("hang"):
        time.sleep(60)
    path = os.path.join(os.environ["TMPDIR"], "escapee-%d" % time.monotonic_ns())
    subprocess.Popen([sys.executable, "-S", "-c", ESCAPEE, path],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(500):
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return int(open(path).read())
        time.sleep(0.01)
    raise RuntimeError("the escapee did not start")
"#;

#[tokio::test]
async fn a_process_that_left_the_session_dies_with_its_timed_out_worker() {
    if !is_root() {
        return;
    }
    let rt = runtime();
    assert!(
        rt.runtime.pid_namespaces(),
        "root should get PID namespaces"
    );
    let f = rt
        .load_with("python3.12", "app.handler", &[("app.py", PY_ESCAPE)], |s| {
            s.timeout = std::time::Duration::from_secs(1)
        })
        .await;
    let escapee = call(&f, "{}").await.as_u64().unwrap();
    assert!(
        alive(escapee),
        "the escapee should run until its worker is killed"
    );
    let err = f.invoke(br#"{"hang": true}"#).await.unwrap_err();
    assert_eq!(err.error_type(), "Sandbox.Timedout");
    assert!(
        wait_gone(escapee).await,
        "process {escapee} outlived its timed-out worker"
    );
}

#[tokio::test]
async fn a_process_that_left_the_session_dies_with_a_retired_worker_and_with_the_runtime() {
    if !is_root() {
        return;
    }
    let rt = runtime_with(|c| c.idle_timeout = std::time::Duration::from_millis(200));
    let f = rt
        .load("python3.12", "app.handler", &[("app.py", PY_ESCAPE)])
        .await;
    let retired = call(&f, "{}").await.as_u64().unwrap();
    assert!(alive(retired));
    // The idle worker is retired after 200 ms, and what it started with it.
    assert!(
        wait_gone(retired).await,
        "process {retired} outlived its retired worker"
    );

    // With no idle timeout in sight, the runtime's drop is what kills it.
    let rt = runtime();
    let f = rt
        .load("python3.12", "app.handler", &[("app.py", PY_ESCAPE)])
        .await;
    let kept = call(&f, "{}").await.as_u64().unwrap();
    assert!(alive(kept));
    drop(rt);
    assert!(wait_gone(kept).await, "process {kept} outlived the runtime");
}

fn children_of(pid: u64) -> Vec<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

const PY_SLEEP: &str =
    "import time\ndef handler(event, context):\n    time.sleep(event.get('s', 0))\n    return 1\n";

#[tokio::test]
async fn a_cold_start_takes_the_namespace_prepared_ahead_and_nothing_outlives_the_runtime() {
    if !is_root() {
        return;
    }
    let rt = runtime();
    let sock_dir = rt.runtime.config().data_dir.join("sock");
    let f = rt
        .load("python3.12", "app.handler", &[("app.py", PY_SLEEP)])
        .await;
    call(&f, "{}").await;
    // One worker (unshare, init, interpreter; it took the namespace prepared at load) and,
    // started after it, the next worker's namespace (unshare, init waiting for its go).
    // Polled until both show: the prepared namespace's processes appear before its init has
    // become `sh` (a loaded machine caught it in between).
    let waiting_init = |procs: &[u64]| -> Vec<u64> {
        procs
            .iter()
            .copied()
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "sh")
                    && children_of(*p).is_empty()
            })
            .collect()
    };
    let (mut procs, mut waiting) = (Vec::new(), Vec::new());
    for _ in 0..500 {
        procs = workers_under(&sock_dir);
        waiting = waiting_init(&procs);
        if procs.len() == 5 && waiting.len() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(procs.len(), 5, "{procs:?}");
    assert_eq!(waiting.len(), 1, "{procs:?}");

    // A second worker (the first is busy) starts in that namespace.
    let (a, b) = tokio::join!(f.invoke(br#"{"s": 0.5}"#), async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        f.invoke(b"{}").await
    });
    a.unwrap();
    b.unwrap();
    assert_eq!(f.cold_starts(), 2);
    assert_eq!(
        children_of(waiting[0]).len(),
        1,
        "the prepared init runs the second worker"
    );

    drop(rt);
    for _ in 0..150 {
        if workers_under(&sock_dir).is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        workers_under(&sock_dir),
        Vec::<u64>::new(),
        "outlived the runtime"
    );
    drop(f);
}
