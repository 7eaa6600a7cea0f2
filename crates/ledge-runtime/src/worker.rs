//! One worker process: an interpreter running a bootstrap that serves one version's handler.
//!
//! # Design
//! The worker connects back to a Unix socket that ledge listens on (its path in
//! `LEDGE_SOCKET`); the socket file is removed as soon as the worker is connected. Output the
//! bootstrap captures (console, print, logging) arrives in the reply frame; anything written to
//! the real stdout/stderr (native code, child processes) is read by two small tasks, capped, and
//! attached to the invocation that is running when it arrives. The worker runs in its own
//! process group so that a kill reaches everything it started.
//!
//! A worker's socket is registered with the I/O driver of one tokio runtime: its [`Home`]. An
//! edge runs one single-threaded runtime per core, and a socket driven by another thread's
//! runtime costs cross-thread wake-ups on every invocation, so a worker taken into use is first
//! moved to the driver of the runtime that takes it ([`Worker::move_home`]), where a task then
//! drives it ([`crate::lane`]).

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::net::UnixListener;
use tokio::process::Child;
use tokio::time::Instant;

use crate::cgroup::{CgroupParent, WorkerCgroup};
use crate::config::Language;
use crate::error::FunctionError;
use crate::launch::{Launch, Launchers};
use crate::limits::{self, WorkerLimits};
use crate::logs::{self, LogLine};
use crate::pidns;
use crate::procfs;
use crate::protocol::{self, ReadError, Reply};
use crate::socket::WorkerSocket;
use crate::tmpfs::TmpMount;

/// Everything needed to start workers of one version; fixed at load.
#[derive(Debug)]
pub(crate) struct VersionInfo {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) language: Language,
    pub(crate) memory_mb: u32,
    pub(crate) timeout: Duration,
    pub(crate) interpreter: PathBuf,
    pub(crate) bootstrap: PathBuf,
    pub(crate) task_root: PathBuf,
    pub(crate) sock_dir: PathBuf,
    /// Environment shared by all workers of the version.
    pub(crate) env: Vec<(String, String)>,
    /// `(uid, gid)` to run as, when dropping privileges.
    pub(crate) user: Option<(u32, u32)>,
    pub(crate) log_group: Arc<str>,
    pub(crate) init_timeout: Duration,
    pub(crate) max_response_bytes: usize,
    pub(crate) raw_output_cap: usize,
    /// Where workers get a cgroup v2 memory limit, if the host delegates one.
    pub(crate) cgroup: Option<CgroupParent>,
    /// `RLIMIT_NPROC` for workers running as their own uid.
    pub(crate) max_processes: u64,
    /// prlimit(1), to limit workers that run as another uid.
    pub(crate) prlimit_tool: Option<PathBuf>,
    /// With PID namespaces (`RuntimeConfig::pid_namespaces`): how workers start in one, and
    /// the launch prepared ahead.
    pub(crate) launchers: Option<Arc<Launchers>>,
    /// How long to wait for a busy worker before a cold start (`RuntimeConfig::warm_wait`).
    pub(crate) warm_wait: Duration,
    /// A spare interpreter, not yet given a function.
    pub(crate) spare: bool,
    /// Largest file a worker may write (`RuntimeConfig::tmp_size_bytes`).
    pub(crate) max_file_bytes: u64,
    /// The version's `/tmp` tmpfs, kept mounted while the version is loaded (held for its
    /// `Drop`, which unmounts it).
    #[allow(dead_code)]
    pub(crate) tmp_mount: Option<Arc<TmpMount>>,
}

impl VersionInfo {
    pub(crate) fn limits(&self) -> WorkerLimits {
        let address_space = (self.language == Language::Python && !self.spare)
            .then(|| limits::python_address_space(self.memory_mb));
        WorkerLimits::new(
            address_space,
            self.user.map(|_| self.max_processes),
            self.max_file_bytes,
        )
    }
}

/// Output a worker wrote to its real stdout/stderr, waiting to join an invocation's logs.
#[derive(Debug, Default)]
struct RawOutput {
    lines: Mutex<Vec<LogLine>>,
    bytes: AtomicUsize,
    truncated: AtomicBool,
    heap_oom: AtomicBool,
    /// Pipes closed so far (of two): any closed pipe means the worker is going away.
    closed_pipes: AtomicUsize,
}

impl RawOutput {
    fn all_closed(&self) -> bool {
        self.closed_pipes.load(Ordering::Relaxed) >= 2
    }
}

/// How an invocation on a worker failed; the worker must not be reused.
#[derive(Debug)]
pub(crate) enum WorkerFailure {
    Timeout,
    Exit { status: String, oom: bool },
    TooLarge,
    Protocol,
}

/// Why a worker could not be started.
#[derive(Debug)]
pub(crate) enum SpawnError {
    /// The process could not be started at all.
    Io(std::io::Error),
    /// The init phase failed: Lambda's error document, plus the init logs.
    Init(FunctionError, Vec<LogLine>),
    /// The init phase crashed or timed out.
    Crashed(String, Vec<LogLine>),
}

/// The I/O driver a worker's socket is registered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Home {
    /// A multi-threaded runtime: any of its threads drives the socket.
    Shared,
    /// A single-threaded runtime, driven by this thread alone.
    Thread(std::thread::ThreadId),
}

impl Home {
    /// The driver of the runtime the caller runs on.
    pub(crate) fn current() -> Home {
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::CurrentThread) => {
                Home::Thread(std::thread::current().id())
            }
            _ => Home::Shared,
        }
    }
}

/// A running worker, idle or serving one invocation.
#[derive(Debug)]
pub(crate) struct Worker {
    pub(crate) home: Home,
    child: Child,
    pid: u32,
    stream: WorkerSocket,
    rbuf: BytesMut,
    raw: Arc<RawOutput>,
    pub(crate) log_stream: Arc<str>,
    pub(crate) init_duration: Duration,
    pub(crate) init_logs: Vec<LogLine>,
    pub(crate) last_used: Instant,
    /// Whether it has answered an invocation: the first one is slower (the interpreter
    /// compiles the handler's code as it runs) and says little about the version's pace.
    pub(crate) answered: bool,
    /// The highest peak resident set (KiB) the worker has reported (each answer carries it).
    pub(crate) peak_rss_kib: u32,
    cgroup: Option<WorkerCgroup>,
    /// Started in a PID namespace of its own (its exit status comes from the namespace's init).
    namespaced: bool,
}

impl Worker {
    /// Starts a worker and runs its init phase: with a launch prepared ahead if the version
    /// has one (then prepares the next), else from scratch.
    pub(crate) async fn spawn(info: &Arc<VersionInfo>, id: u64) -> Result<Worker, SpawnError> {
        let started = Instant::now();
        let prepared = match &info.launchers {
            Some(launchers) => launchers.take().await,
            None => None,
        };
        let socket_path = match &prepared {
            Some(launch) => launch.socket_path.clone(),
            None => info.sock_dir.join(id.to_string()),
        };
        let _ = std::fs::remove_file(&socket_path);
        let listener = UnixListener::bind(&socket_path).map_err(SpawnError::Io)?;
        let _cleanup = RemoveOnDrop(socket_path.clone());
        if let Some((uid, gid)) = info.user {
            std::os::unix::fs::chown(&socket_path, Some(uid), Some(gid)).map_err(SpawnError::Io)?;
        }
        std::fs::set_permissions(&socket_path, std::fs::Permissions::from_mode(0o600))
            .map_err(SpawnError::Io)?;

        let mut launch = match prepared {
            Some(launch) => launch,
            None => Launch::start(info, id).map_err(SpawnError::Io)?,
        };
        launch.go().await.map_err(SpawnError::Io)?;
        let Launch {
            mut child,
            pid,
            log_stream,
            cgroup,
            namespaced,
            ..
        } = launch;

        let raw = Arc::new(RawOutput::default());
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(tokio::spawn(read_raw(
                out,
                raw.clone(),
                info.raw_output_cap,
            )));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(tokio::spawn(read_raw(
                err,
                raw.clone(),
                info.raw_output_cap,
            )));
        }

        let deadline = started + info.init_timeout;
        let accepted = tokio::time::timeout_at(deadline, async {
            // Biased: a worker that connected, reported an init error and exited at once has
            // both ready, and its report must win.
            tokio::select! {
                biased;
                accepted = listener.accept() => accepted.ok().map(|(s, _)| s),
                _ = child.wait() => None,
            }
        })
        .await;
        let mut worker_stream = match accepted {
            Ok(Some(stream)) => match WorkerSocket::new(stream) {
                Ok(socket) => socket,
                Err(e) => {
                    limits::kill_group(pid);
                    return Err(SpawnError::Io(e));
                }
            },
            Ok(None) => {
                let status = wait_exit(&mut child, namespaced).await;
                settle(readers).await;
                return Err(SpawnError::Crashed(status, take_raw(&raw)));
            }
            Err(_) => {
                limits::kill_group(pid);
                return Err(init_timed_out(info, &raw));
            }
        };
        drop(listener);

        let mut rbuf = BytesMut::with_capacity(8 * 1024);
        let reply = tokio::time::timeout_at(
            deadline,
            protocol::read_reply(&mut worker_stream, &mut rbuf, info.max_response_bytes),
        )
        .await;
        let reply = match reply {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => {
                limits::kill_group(pid);
                let status = wait_exit(&mut child, namespaced).await;
                settle(readers).await;
                return Err(SpawnError::Crashed(status, take_raw(&raw)));
            }
            Err(_) => {
                limits::kill_group(pid);
                return Err(init_timed_out(info, &raw));
            }
        };
        let mut init_logs = split_lines(&reply.logs);
        init_logs.extend(take_raw(&raw));
        // Now that this worker is up, the next cold start's namespace is started ahead.
        if let Some(launchers) = &info.launchers {
            launchers.prepare(info);
        }
        match reply.kind {
            protocol::INIT_DONE => Ok(Worker {
                home: Home::current(),
                child,
                pid,
                stream: worker_stream,
                rbuf,
                raw,
                log_stream,
                init_duration: started.elapsed(),
                init_logs,
                last_used: Instant::now(),
                answered: false,
                peak_rss_kib: reply.max_rss_kib,
                cgroup,
                namespaced,
            }),
            protocol::INIT_ERROR | protocol::FATAL => {
                limits::kill_group(pid);
                Err(SpawnError::Init(
                    FunctionError::from_body(reply.body),
                    init_logs,
                ))
            }
            _ => {
                limits::kill_group(pid);
                Err(SpawnError::Crashed(
                    "Runtime returned an invalid response".to_string(),
                    init_logs,
                ))
            }
        }
    }

    /// Gives a spare (started with `LEDGE_SPARE=1`) its function: sends the version's
    /// environment and task root and runs the init phase.
    pub(crate) async fn adopt(mut self, info: &VersionInfo) -> Result<Worker, SpawnError> {
        let started = Instant::now();
        let log_stream: Arc<str> = logs::log_stream_name(&info.version).into();
        let mut env: serde_json::Map<String, serde_json::Value> = info
            .env
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        env.insert(
            "AWS_LAMBDA_LOG_STREAM_NAME".to_string(),
            serde_json::Value::String(log_stream.to_string()),
        );
        let load = serde_json::json!({"load": {"env": env, "root": info.task_root}});
        let body = serde_json::to_vec(&load).map_err(|e| SpawnError::Io(e.into()))?;
        let mut frame = Vec::with_capacity(4 + body.len());
        frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
        frame.extend_from_slice(&body);
        // Of the limits only Python's address space depends on the function; a Python spare
        // sets it itself from LEDGE_AS_LIMIT (lowering one's own limit needs no privilege).
        if info.user.is_none() && !self.namespaced {
            info.limits().apply(self.pid);
        }
        if let Some(group) = &self.cgroup {
            let _ = group.set_memory(info.memory_mb);
        }
        let exchange = async {
            self.stream
                .write_all(&frame)
                .await
                .map_err(|_| ReadError::Closed)?;
            protocol::read_reply(&mut self.stream, &mut self.rbuf, info.max_response_bytes).await
        };
        let reply = tokio::time::timeout(info.init_timeout, exchange).await;
        let reply = match reply {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => {
                let status = wait_exit(&mut self.child, self.namespaced).await;
                return Err(SpawnError::Crashed(status, take_raw(&self.raw)));
            }
            Err(_) => return Err(init_timed_out(info, &self.raw)),
        };
        let mut init_logs = split_lines(&reply.logs);
        init_logs.extend(take_raw(&self.raw));
        match reply.kind {
            protocol::INIT_DONE => {
                self.log_stream = log_stream;
                self.init_duration = started.elapsed();
                self.init_logs = init_logs;
                self.last_used = Instant::now();
                self.peak_rss_kib = self.peak_rss_kib.max(reply.max_rss_kib);
                Ok(self)
            }
            protocol::INIT_ERROR | protocol::FATAL => Err(SpawnError::Init(
                FunctionError::from_body(reply.body),
                init_logs,
            )),
            _ => Err(SpawnError::Crashed(
                "Runtime returned an invalid response".to_string(),
                init_logs,
            )),
        }
    }

    /// Registers the worker's socket with the caller's runtime, if it is not already there.
    /// Only for an idle worker (nothing is in flight on the socket).
    pub(crate) fn move_home(&mut self) -> std::io::Result<()> {
        let here = Home::current();
        if self.home == here {
            return Ok(());
        }
        self.stream = self.stream.rehome()?;
        self.home = here;
        Ok(())
    }

    /// False once the worker is known to have exited or closed its output.
    pub(crate) fn is_alive(&self) -> bool {
        self.raw.closed_pipes.load(Ordering::Relaxed) == 0
    }

    /// Writes encoded requests to the worker.
    pub(crate) async fn send(&mut self, frames: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(frames).await
    }

    /// Reads the worker's next answer. Cancel-safe: a partly read frame stays buffered.
    pub(crate) async fn next_reply(
        &mut self,
        max_response_bytes: usize,
    ) -> Result<Reply, ReadError> {
        protocol::read_reply(&mut self.stream, &mut self.rbuf, max_response_bytes).await
    }

    /// Why a worker whose socket closed went away: its exit status, and whether it ran out of
    /// memory.
    pub(crate) async fn exit_failure(&mut self) -> WorkerFailure {
        let status = wait_exit(&mut self.child, self.namespaced).await;
        // Let the output readers see the end of the pipes (an OOM message may be there).
        for _ in 0..20 {
            if self.raw.all_closed() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let oom = self.raw.heap_oom.load(Ordering::Relaxed)
            || self.cgroup.as_ref().is_some_and(WorkerCgroup::oom_killed);
        WorkerFailure::Exit { status, oom }
    }

    /// Moves output that arrived on the real stdout/stderr into `logs`.
    pub(crate) fn drain_raw(&self, logs: &mut Vec<LogLine>) {
        if self.raw.bytes.load(Ordering::Relaxed) == 0 {
            return;
        }
        logs.extend(take_raw(&self.raw));
    }

    /// The peak resident set (KiB) of a worker that is still running, for the REPORT line of
    /// an invocation that breaks it: read from its processes (the invocation may have grown
    /// it since the last answer), or the last reported.
    pub(crate) fn peak_rss_kib_now(&self) -> u32 {
        procfs::peak_rss_kib(self.pid).map_or(self.peak_rss_kib, |kib| kib.max(self.peak_rss_kib))
    }

    /// Kills the worker and everything it started.
    pub(crate) fn kill(&mut self) {
        limits::kill_group(self.pid);
        let _ = self.child.start_kill();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The init phase ran past `init_timeout`: a crash, with what the worker wrote meanwhile.
fn init_timed_out(info: &VersionInfo, raw: &RawOutput) -> SpawnError {
    SpawnError::Crashed(
        format!(
            "init timed out after {:.2} seconds",
            info.init_timeout.as_secs_f64()
        ),
        take_raw(raw),
    )
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn wait_exit(child: &mut Child, namespaced: bool) -> String {
    match tokio::time::timeout(Duration::from_secs(2), child.wait()).await {
        Ok(Ok(status)) if namespaced => pidns::describe_exit(Some(status)),
        Ok(Ok(status)) => limits::describe_exit(Some(status)),
        _ => {
            let _ = child.start_kill();
            limits::describe_exit(None)
        }
    }
}

async fn settle(readers: Vec<tokio::task::JoinHandle<()>>) {
    for reader in readers {
        let _ = tokio::time::timeout(Duration::from_millis(200), reader).await;
    }
}

fn take_raw(raw: &RawOutput) -> Vec<LogLine> {
    let mut lines = std::mem::take(&mut *raw.lines.lock().unwrap_or_else(PoisonError::into_inner));
    raw.bytes.store(0, Ordering::Relaxed);
    if raw.truncated.swap(false, Ordering::Relaxed) {
        lines.push(LogLine {
            timestamp: SystemTime::now(),
            message: "[ledge] output truncated: the function wrote too much to stdout/stderr"
                .to_string(),
        });
    }
    lines
}

/// Reads one of the worker's real output pipes line by line, keeping at most `cap` bytes
/// until the next invocation takes them.
async fn read_raw<R: AsyncRead + Unpin>(pipe: R, raw: Arc<RawOutput>, cap: usize) {
    let mut reader = BufReader::with_capacity(16 * 1024, pipe);
    let mut line = Vec::new();
    loop {
        line.clear();
        // Bound one line's size: a flood without newlines must not grow memory.
        let n = match (&mut reader)
            .take(cap as u64 + 1)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if line.windows(25).any(|w| w == b"JavaScript heap out of me") {
            raw.heap_oom.store(true, Ordering::Relaxed);
        }
        if raw.bytes.fetch_add(n, Ordering::Relaxed) + n > cap {
            raw.truncated.store(true, Ordering::Relaxed);
            continue;
        }
        while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            line.pop();
        }
        let message = String::from_utf8_lossy(&line).into_owned();
        raw.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(LogLine {
                timestamp: SystemTime::now(),
                message,
            });
    }
    raw.closed_pipes.fetch_add(1, Ordering::Relaxed);
}

/// Splits the captured log text into log events, one per line.
pub(crate) fn split_lines(text: &Bytes) -> Vec<LogLine> {
    if text.is_empty() {
        return Vec::new();
    }
    let now = SystemTime::now();
    String::from_utf8_lossy(text)
        .split_terminator('\n')
        .map(|line| LogLine {
            timestamp: now,
            message: line.to_string(),
        })
        .collect()
}
