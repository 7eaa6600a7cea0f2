//! Test support for replication tests: a `ledge control` and `ledge edge --control-url`
//! processes on loopback, the AWS CLI against the control plane, plain HTTP/1.1 requests to the
//! edges, and a TCP proxy that can be cut to partition one edge.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub(crate) const KEY: &str = "AKIAREPLICATIONTEST1";
pub(crate) const SECRET: &str = "replication-test-secret-key-0000000000000";
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_ledge");

/// A child process, killed when dropped.
pub(crate) struct Proc {
    pub(crate) child: Child,
    pub(crate) stderr: Arc<Mutex<String>>,
}

impl Proc {
    /// Spawns `ledge ARGS` and waits for a stdout line starting with `prefix`; returns the
    /// rest of that line.
    pub(crate) fn start(args: &[&str], env: &[(&str, &str)], prefix: &str) -> (Self, String) {
        let (p, mut found) = Self::start_multi(args, env, &[prefix]);
        (p, found.remove(0))
    }

    /// [`Proc::start`], waiting for a line with each of `prefixes` (in any order).
    pub(crate) fn start_multi(
        args: &[&str],
        env: &[(&str, &str)],
        prefixes: &[&str],
    ) -> (Self, Vec<String>) {
        let mut child = Command::new(BIN)
            .args(args)
            .envs(env.iter().copied())
            .env("LEDGE_LOG", "info")
            .env_remove("LEDGE_DATA_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ledge");
        let (stderr, rx) = ledge_test::process::read_output(&mut child, "ledge");
        let proc = Self { child, stderr };
        let mut found: Vec<Option<String>> = vec![None; prefixes.len()];
        while found.iter().any(Option::is_none) {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => {
                    for (i, prefix) in prefixes.iter().enumerate() {
                        if let Some(rest) = line.strip_prefix(prefix) {
                            found[i] = Some(rest.trim().to_owned());
                        }
                    }
                }
                Err(_) => panic!("ledge {args:?} did not print {prefixes:?}:\n{}", proc.log()),
            }
        }
        (proc, found.into_iter().flatten().collect())
    }

    /// What the process wrote on stderr so far.
    pub(crate) fn log(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// SIGKILL, and reap.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    /// SIGTERM, as an operator stops ledge (the crash stages call [`Proc::kill`] themselves): a
    /// killed edge would leave its functions' `/tmp` mounts behind the test's directory.
    fn drop(&mut self) {
        ledge_test::process::stop(&mut self.child);
    }
}

/// A port free right now.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// `ledge control` on `port`, data in `dir`, edges offline after `heartbeat` seconds.
pub(crate) fn start_control(dir: &Path, port: u16, heartbeat: u64) -> Proc {
    let listen = format!("127.0.0.1:{port}");
    let hb = heartbeat.to_string();
    let data = dir.display().to_string();
    let (p, _) = Proc::start(
        &[
            "control",
            "--data-dir",
            &data,
            "--api-listen",
            &listen,
            "--edge-heartbeat-timeout",
            &hb,
        ],
        &[
            ("LEDGE_ACCESS_KEY_ID", KEY),
            ("LEDGE_SECRET_ACCESS_KEY", SECRET),
        ],
        "ledge: api listening on ",
    );
    p
}

/// One `ledge edge` following a control plane.
pub(crate) struct EdgeProc {
    pub(crate) pop: String,
    pub(crate) dir: PathBuf,
    pub(crate) addr: SocketAddr,
    pub(crate) control_url: String,
    pub(crate) token: String,
    pub(crate) proc: Proc,
}

impl EdgeProc {
    /// Starts an edge (on `listen`, e.g. `127.0.0.1:0`).
    pub(crate) fn start(
        control_url: &str,
        token: &str,
        pop: &str,
        dir: &Path,
        listen: &str,
    ) -> Self {
        let data = dir.display().to_string();
        let (proc, addr) = Proc::start(
            &[
                "edge",
                "--control-url",
                control_url,
                "--edge-token",
                token,
                "--pop",
                pop,
                "--data-dir",
                &data,
                "--edge-listen",
                listen,
                "--edge-threads",
                "1",
            ],
            &[],
            "ledge: edge listening on http://",
        );
        Self {
            pop: pop.to_owned(),
            dir: dir.to_owned(),
            addr: addr.parse().expect("edge address"),
            control_url: control_url.to_owned(),
            token: token.to_owned(),
            proc,
        }
    }

    /// Kills and starts it again on the same address.
    pub(crate) fn restart(&mut self) {
        self.proc.kill();
        let next = Self::start(
            &self.control_url,
            &self.token,
            &self.pop,
            &self.dir,
            &self.addr.to_string(),
        );
        *self = next;
    }
}

/// `ledge ARGS` to completion; stdout on success.
pub(crate) fn ledge(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().expect("run ledge");
    assert!(
        out.status.success(),
        "ledge {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ledge edges --json` on `dir`.
pub(crate) fn edges(dir: &Path, heartbeat: u64) -> Vec<Value> {
    let data = dir.display().to_string();
    let hb = heartbeat.to_string();
    let out = ledge(&[
        "edges",
        "--json",
        "--data-dir",
        &data,
        "--edge-heartbeat-timeout",
        &hb,
    ]);
    serde_json::from_str::<Vec<Value>>(&out).expect("edges JSON")
}

/// The AWS CLI against `endpoint`, which must succeed; its JSON output.
pub(crate) fn aws_ok(endpoint: &str, args: &[&str]) -> Value {
    ledge_test::control::Aws::new(endpoint, KEY, SECRET).ok(args)
}

/// A zip holding `index.js` = `source`.
pub(crate) fn node_zip(dir: &Path, name: &str, source: &str) -> PathBuf {
    let src = dir.join(format!("{name}-src"));
    std::fs::create_dir_all(&src).expect("src dir");
    std::fs::write(src.join("index.js"), source).expect("index.js");
    let zip = dir.join(format!("{name}.zip"));
    let ok = Command::new("python3")
        .args(["-m", "zipfile", "-c"])
        .arg(&zip)
        .arg("index.js")
        .current_dir(&src)
        .status()
        .expect("python3");
    assert!(ok.success());
    zip
}

/// A viewer-request function answering every request with `text`.
pub(crate) fn answering(text: &str) -> String {
    format!(
        "exports.handler = async () => ({{ status: '200', headers: {{ 'content-type': \
         [{{ value: 'text/plain' }}] }}, body: '{text}' }});\n"
    )
}

/// `GET path` with `Host: host`; status and body (Connection: close).
pub(crate) fn get(addr: SocketAddr, host: &str, path: &str) -> std::io::Result<(u16, String)> {
    get_with(addr, host, path, "")
}

/// [`get`] with extra header lines (each ending in `\r\n`).
pub(crate) fn get_with(
    addr: SocketAddr,
    host: &str,
    path: &str,
    headers: &str,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\n{headers}Connection: close\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad response: {text:?}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Polls `f` every 50 ms until it returns true or `limit` passes; the time it took.
pub(crate) fn wait_until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

/// A TCP proxy to `target` that can be cut (existing connections reset, new ones dropped).
pub(crate) struct Proxy {
    pub(crate) addr: SocketAddr,
    up: Arc<AtomicBool>,
    garbage: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    /// Starts forwarding.
    pub(crate) fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy bind");
        let addr = listener.local_addr().expect("proxy addr");
        let up = Arc::new(AtomicBool::new(true));
        let garbage = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (up2, garbage2, conns2) = (up.clone(), garbage.clone(), conns.clone());
        std::thread::spawn(move || {
            for mut client in listener.incoming().map_while(Result::ok) {
                if !up2.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                if garbage2.load(Ordering::SeqCst) {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 4096];
                        let _ = client.read(&mut buf);
                        let _ = client.write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\n{garbage!",
                        );
                    });
                    continue;
                }
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                if let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) {
                    if let Ok(mut v) = conns2.lock() {
                        v.push(c2);
                        v.push(s2);
                    }
                }
                pipe(&client, &server);
                pipe(&server, &client);
            }
        });
        Self {
            addr,
            up,
            garbage,
            conns,
        }
    }

    /// Answers every new request with `200` and a body that is no snapshot.
    pub(crate) fn garble(&self) {
        self.garbage.store(true, Ordering::SeqCst);
        self.cut_connections();
    }

    /// Cuts the link.
    pub(crate) fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut_connections();
    }

    fn cut_connections(&self) {
        if let Ok(mut v) = self.conns.lock() {
            for c in v.drain(..) {
                let _ = c.shutdown(Shutdown::Both);
            }
        }
    }

    /// Restores it.
    pub(crate) fn restore(&self) {
        self.garbage.store(false, Ordering::SeqCst);
        self.up.store(true, Ordering::SeqCst);
    }
}

fn pipe(from: &TcpStream, to: &TcpStream) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Write);
    });
}
