//! The function runtime's settings reach it from `ledge invoke` flags and from an edge's
//! `--config` file: a 1 MiB `/tmp` holds one 600 KiB file but not two.

use std::time::Duration;

use ledge_test::client;
use ledge_test::edge::Edge;
use ledge_test::lambda::{self, Function};
use ledge_test::origin::{Origin, Route};
use ledge_test::snapshot;

const BIN: &str = env!("CARGO_BIN_EXE_ledge");

/// Writes two 600 KiB files into TMPDIR; the error code of the second write, or "ok".
const TWO_FILES_PY: &str = r#"
import errno, os

def write(name):
    try:
        with open(os.path.join(os.environ["TMPDIR"], name), "wb") as f:
            f.write(b"\1" * 600 * 1024)
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]

def handler(event, context):
    first, second = write("a"), write("b")
    os.unlink(os.path.join(os.environ["TMPDIR"], "a"))
    return {"status": "200", "body": first + " " + second}
"#;

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
    })
}

/// What a 1 MiB `/tmp` answers: a tmpfs as root, else a cap per file (both files fit).
fn expected() -> &'static str {
    if is_root() {
        "ok ENOSPC"
    } else {
        "ok ok"
    }
}

#[test]
fn invoke_takes_the_tmp_size_flag() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.py"), TWO_FILES_PY).unwrap();
    let out = std::process::Command::new(BIN)
        .args([
            "invoke",
            "--runtime",
            "python3.12",
            "--handler",
            "app.handler",
            "--dir",
        ])
        .arg(dir.path())
        .args(["--function-tmp-size", "1048576"])
        .output()
        .unwrap();
    let result: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(result["body"], expected(), "{result}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_reads_the_tmp_size_from_its_config_file() {
    let o = Origin::new().route("/a", Route::ok("origin")).run().await;
    let f = Function::python("two-files", TWO_FILES_PY);
    let mut d = snapshot::distribution("E1", "py.ledge.localhost", o.port());
    lambda::associate(&mut d, "viewer-request", &f, false);
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), "function-tmp-size = 1048576\n").unwrap();
    let e = Edge::builder(BIN)
        .snapshot(lambda::snapshot(1, vec![d], &[&f]))
        .data_file(&f.package_path(), f.zip.clone())
        .arg("--config")
        .arg(config.path().display().to_string())
        .start();
    let r = tokio::time::timeout(
        Duration::from_secs(20),
        client::request(e.http, "GET", "py.ledge.localhost", "/a", &[], ""),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}\n{}", r.text(), e.stderr());
    assert_eq!(r.text(), expected());
}
