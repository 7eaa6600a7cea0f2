//! Isolation of a version's workers: `/tmp` capped as a whole.
mod common;

use std::path::{Path, PathBuf};

use common::*;
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
