//! Stopping a `ledge` process the way an operator does, and reading what it prints.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// Takes the piped stdout and stderr of `child`: its stderr collects in the returned string
/// (and is echoed, each line prefixed with `[tag]`, when `LEDGE_TEST_VERBOSE` is set), its
/// stdout lines arrive on the returned channel.
pub fn read_output(child: &mut Child, tag: &str) -> (Arc<Mutex<String>>, mpsc::Receiver<String>) {
    let stdout = child.stdout.take().expect("stdout");
    let stderr_pipe = child.stderr.take().expect("stderr");
    let stderr = Arc::new(Mutex::new(String::new()));
    let sink = stderr.clone();
    let tag = tag.to_string();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr_pipe).lines().map_while(Result::ok) {
            if std::env::var_os("LEDGE_TEST_VERBOSE").is_some() {
                eprintln!("[{tag}] {line}");
            }
            if let Ok(mut s) = sink.lock() {
                s.push_str(&line);
                s.push('\n');
            }
        }
    });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (stderr, rx)
}

/// Stops `child` with SIGTERM and waits for it (up to 5 s, then SIGKILL). A ledge killed
/// outright leaves what it cleans up on a normal exit behind: as root, the tmpfs mounts of its
/// functions' `/tmp`, which would outlive the test's temporary directory.
pub fn stop(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// True while `pid` runs (a zombie counts as gone).
pub fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

/// Waits up to 3 s for `pid` to end; true once it has (a zombie counts as ended).
pub async fn wait_gone(pid: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(3);
    while alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// Live processes whose environment names a worker socket under `sock_dir`: a ledge runtime's
/// function workers and the launchers prepared for them.
pub fn workers_under(sock_dir: &Path) -> Vec<u64> {
    let needle = format!("LEDGE_SOCKET={}", sock_dir.display());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u64>().ok())
        .filter(|pid| alive(*pid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
                env.split(|b| *b == 0)
                    .any(|var| var.starts_with(needle.as_bytes()))
            })
        })
        .collect()
}
