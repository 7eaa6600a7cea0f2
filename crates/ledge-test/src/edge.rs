//! Starting the real `ledge edge` binary on port 0 with a snapshot file.
//!
//! ```no_run
//! # fn demo(snapshot: serde_json::Value) {
//! let edge = ledge_test::edge::Edge::builder(env!("CARGO_PKG_NAME")).snapshot(snapshot).start();
//! # }
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::certs::SelfSigned;

/// How to start an edge.
#[derive(Debug)]
pub struct EdgeBuilder {
    binary: PathBuf,
    snapshot: serde_json::Value,
    tls: Vec<SelfSigned>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    data_files: Vec<(String, Vec<u8>)>,
    relative_paths: bool,
}

/// A running `ledge edge` process; killed when dropped.
#[derive(Debug)]
pub struct Edge {
    /// The plain HTTP listener.
    pub http: SocketAddr,
    /// The HTTPS listener, when TLS was asked for.
    pub https: Option<SocketAddr>,
    /// The snapshot file the edge follows.
    pub snapshot_file: PathBuf,
    /// The temporary directory holding the snapshot, certificates and cache.
    pub dir: tempfile::TempDir,
    child: Child,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

// === impl EdgeBuilder ===

impl EdgeBuilder {
    /// Serves this snapshot (JSON).
    pub fn snapshot(mut self, snapshot: serde_json::Value) -> Self {
        self.snapshot = snapshot;
        self
    }

    /// Adds an HTTPS listener with this certificate (repeat for SNI tests).
    pub fn tls(mut self, cert: SelfSigned) -> Self {
        self.tls.push(cert);
        self
    }

    /// Adds command-line arguments.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Sets an environment variable for the process.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Starts the process in its temporary directory and names the snapshot file and the data
    /// directory relative to it, as a user typing `--data-dir data` would.
    pub fn relative_paths(mut self) -> Self {
        self.relative_paths = true;
        self
    }

    /// Writes a file under the edge's data directory (`rel` relative to it) before it starts,
    /// e.g. a function package `packages/<sha256>.zip`.
    pub fn data_file(mut self, rel: &str, bytes: Vec<u8>) -> Self {
        self.data_files.push((rel.to_string(), bytes));
        self
    }

    /// Starts the process and waits until it printed its listening addresses.
    ///
    /// # Panics
    /// When the process does not start or print its addresses within 30 s (a test failure).
    pub fn start(self) -> Edge {
        let dir = tempfile::tempdir().expect("tempdir");
        let snapshot_file = dir.path().join("snapshot.json");
        write_atomic(&snapshot_file, &self.snapshot);
        for (rel, bytes) in &self.data_files {
            let path = dir.path().join("data").join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("data dir");
            }
            std::fs::write(&path, bytes).expect("data file");
        }
        let mut cmd = Command::new(&self.binary);
        let base = if self.relative_paths {
            cmd.current_dir(dir.path());
            PathBuf::new()
        } else {
            dir.path().to_path_buf()
        };
        cmd.arg("edge")
            .arg("--config-file")
            .arg(base.join("snapshot.json"))
            .arg("--edge-listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(base.join("data"));
        if !self.tls.is_empty() {
            cmd.arg("--edge-tls-listen").arg("127.0.0.1:0");
            for (i, c) in self.tls.iter().enumerate() {
                let (cert, key) = c.write_to(dir.path(), &format!("tls{i}"));
                cmd.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
            }
        }
        cmd.args(&self.args)
            .env_remove("LEDGE_EDGE_LISTEN")
            .env("LEDGE_LOG", "info,ledge_edge=debug")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start ledge edge");
        let (stderr, rx) = crate::process::read_output(&mut child, "edge");
        let want_tls = !self.tls.is_empty();
        let (mut http, mut https) = (None, None);
        while http.is_none() || (want_tls && https.is_none()) {
            let line = match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(l) => l,
                Err(_) => {
                    let _ = child.kill();
                    let err = stderr.lock().map(|s| s.clone()).unwrap_or_default();
                    panic!("ledge edge did not print its address; stderr:\n{err}");
                }
            };
            if let Some(a) = line.strip_prefix("ledge: edge listening on http://") {
                http = a.trim().parse().ok();
            } else if let Some(a) = line.strip_prefix("ledge: edge-tls listening on https://") {
                https = a.trim().parse().ok();
            }
        }
        Edge {
            http: http.expect("http address"),
            https,
            snapshot_file,
            dir,
            child,
            stderr,
        }
    }
}

fn write_atomic(path: &Path, value: &serde_json::Value) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(value).expect("json")).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

// === impl Edge ===

impl Edge {
    /// A builder for the binary at `binary` (in tests: `env!("CARGO_BIN_EXE_ledge")`).
    pub fn builder(binary: impl Into<PathBuf>) -> EdgeBuilder {
        EdgeBuilder {
            binary: binary.into(),
            snapshot: serde_json::json!({"Version": 1, "Distributions": []}),
            tls: Vec::new(),
            args: Vec::new(),
            env: Vec::new(),
            data_files: Vec::new(),
            relative_paths: false,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// Replaces the snapshot file atomically (the edge notices within about a second).
    pub fn write_snapshot(&self, snapshot: &serde_json::Value) {
        write_atomic(&self.snapshot_file, snapshot);
    }

    /// Sends SIGHUP to the process.
    pub fn sighup(&self) {
        let status = Command::new("kill")
            .arg("-HUP")
            .arg(self.child.id().to_string())
            .status()
            .expect("kill -HUP");
        assert!(status.success());
    }

    /// Sends SIGTERM to the process (a graceful stop).
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("kill -TERM");
        assert!(status.success());
    }

    /// Waits up to `timeout` for the process to exit; its status, or `None` if it still runs.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to `timeout` for `needle` to appear in the process's stderr.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if self.stderr().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// What the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        crate::process::stop(&mut self.child);
    }
}
