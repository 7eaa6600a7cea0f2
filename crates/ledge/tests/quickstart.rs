//! The README's quickstart, run exactly as written: the shell block between
//! `<!-- quickstart:begin -->` and `<!-- quickstart:end -->` in README.md, with the `ledge`
//! under test first on `PATH`, in an empty directory. The quickstart uses the fixed ports of
//! the documentation (4000, 8080, 9000), so it runs in a network namespace of its own when
//! the machine allows one (`unshare -n`), else on the host's loopback.
//!
//! Needs bash, curl, Python 3, Node.js and the AWS CLI; when one is missing this test fails,
//! it never skips.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The shell commands of the README's quickstart.
fn quickstart_script() -> String {
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let text = std::fs::read_to_string(&readme).expect("README.md");
    let begin = text
        .find("<!-- quickstart:begin -->")
        .expect("quickstart:begin marker");
    let end = text
        .find("<!-- quickstart:end -->")
        .expect("quickstart:end marker");
    let block = &text[begin..end];
    let start = block.find("```sh\n").expect("a ```sh block") + "```sh\n".len();
    let stop = block.rfind("```").expect("the block's end");
    block[start..stop].to_owned()
}

/// Whether this process may create a network namespace.
fn can_unshare() -> bool {
    Command::new("unshare")
        .args(["-n", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn readme_quickstart_runs_as_written() {
    let script = quickstart_script();
    assert!(
        script.contains("ledge serve"),
        "the quickstart starts ledge serve"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("quickstart.sh"), &script).expect("write script");
    let bin: PathBuf = Path::new(env!("CARGO_BIN_EXE_ledge"))
        .parent()
        .expect("binary dir")
        .to_owned();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let inner = "ip link set lo up 2>/dev/null; exec bash -e quickstart.sh";
    let mut cmd = if can_unshare() {
        let mut c = Command::new("setsid");
        c.args(["unshare", "-n", "bash", "-c", inner]);
        c
    } else {
        let mut c = Command::new("setsid");
        c.args(["bash", "-e", "quickstart.sh"]);
        c
    };
    let mut child = cmd
        .current_dir(dir.path())
        .env("PATH", path)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SHARED_CREDENTIALS_FILE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the quickstart");
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(240);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // Whatever the script left behind (after a failure) goes with its process group.
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stderr(Stdio::null())
        .status();
    let output = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let log = std::fs::read_to_string(dir.path().join("ledge.log")).unwrap_or_default();
    let explain = format!("stdout:\n{stdout}\nstderr:\n{stderr}\nledge.log:\n{log}");
    let status = status.unwrap_or_else(|| panic!("the quickstart timed out\n{explain}"));
    assert!(
        status.success(),
        "the quickstart failed: {status}\n{explain}"
    );
    for expected in [
        "<h1>hello from the origin</h1>",
        "Hello from Lambda@Edge, version 1",
        "Hello from Lambda@Edge, version 2",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?}\n{explain}");
    }
    let v1 = stdout.find("version 1").unwrap_or(usize::MAX);
    let v2 = stdout.find("version 2").unwrap_or(0);
    assert!(v1 < v2, "version 1 then version 2\n{explain}");
}
