//! Starting a worker's process: its command line (interpreter, limits, user, PID namespace)
//! and, with PID namespaces, one process prepared ahead per version.
//!
//! # Design
//! In a PID namespace a worker starts as `unshare … -- /bin/sh -c INIT` (see
//! [`pidns`](crate::pidns)): two execs and a namespace before the interpreter, a few
//! milliseconds on a busy host. So, as the runtime's spare interpreters do for whole workers,
//! each loaded version keeps its next worker's namespace started ahead (from the load, and
//! again after each cold start): its init has set the limits and waits on its stdin for one
//! line before it starts the interpreter. That costs two small idle processes (unshare and
//! the shell) per loaded version, until the idle timeout retires them. A cold start then only binds the worker's socket and writes that line; what
//! remains on its path is one fork and exec of the interpreter (without namespaces, a worker
//! of another uid pays prlimit(1)'s exec on top of that).
//!
//! A prepared process that is never used ends when its version is dropped or closed, when it
//! has waited longer than the idle timeout, or when ledge exits: its init then reads the end
//! of its stdin and exits without starting anything.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::Notify;
use tokio::time::{Duration, Instant};

use crate::cgroup::{CgroupParent, WorkerCgroup};
use crate::config::Language;
use crate::limits;
use crate::logs;
use crate::pidns::PidNamespaces;
use crate::procfs;
use crate::worker::VersionInfo;

/// How long a cold start waits for a launch being prepared before it starts its own.
const PREPARE_PATIENCE: Duration = Duration::from_millis(50);

/// A started worker process, not yet connected.
#[derive(Debug)]
pub(crate) struct Launch {
    pub(crate) child: Child,
    pub(crate) pid: u32,
    pub(crate) socket_path: PathBuf,
    pub(crate) log_stream: Arc<str>,
    pub(crate) cgroup: Option<WorkerCgroup>,
    /// Started in a PID namespace (its exit status comes from the namespace's init).
    pub(crate) namespaced: bool,
    /// The init's stdin: one line starts the interpreter. `None` once started (or without a
    /// namespace, where the interpreter starts at once).
    go: Option<ChildStdin>,
    prepared_at: Instant,
}

impl Launch {
    /// Starts the process of worker `id`. In a namespace it waits for [`Launch::go`]; a
    /// caller that binds the worker's socket first may call `go` right away.
    pub(crate) fn start(info: &VersionInfo, id: u64) -> std::io::Result<Launch> {
        let socket_path = info.sock_dir.join(id.to_string());
        let log_stream: Arc<str> = logs::log_stream_name(&info.version).into();
        let worker_limits = info.limits();
        let namespaces = info.launchers.as_ref().map(|l| &l.namespaces);
        // A worker of another uid sets its limits itself, through prlimit(1), before exec: ledge
        // may not change another user's limits. In a namespace the init sets them.
        let wrapped = namespaces.is_none() && info.user.is_some() && info.prlimit_tool.is_some();
        let mut cmd = match (namespaces, &info.prlimit_tool) {
            (Some(ns), _) => {
                let (unshare, prefix) = ns.prefix(info.user, &worker_limits);
                let mut cmd = Command::new(unshare);
                cmd.args(prefix).arg(&info.interpreter);
                cmd
            }
            (None, Some(tool)) if wrapped => {
                let mut cmd = Command::new(tool);
                cmd.args(worker_limits.prlimit_args())
                    .arg(&info.interpreter);
                cmd
            }
            _ => Command::new(&info.interpreter),
        };
        match info.language {
            Language::Node => {
                cmd.arg(format!(
                    "--max-old-space-size={}",
                    limits::node_heap_mb(info.memory_mb)
                ));
                // V8 without helper threads: a worker runs one invocation at a time, and
                // helpers for its collections and compiles only wake up on the cores the edge
                // and the other workers use (about 230 wake-ups a second per busy worker;
                // without them a no-op invocation costs about 4 % less CPU).
                cmd.arg("--single-threaded");
            }
            Language::Python => {
                // No site: a function sees only its package and the standard library, as on
                // Lambda, and starts without importing whatever the host installed.
                cmd.args(["-S", "-s", "-B"]);
            }
        }
        cmd.arg(&info.bootstrap)
            .env_clear()
            .envs(info.env.iter().map(|(k, v)| (k, v)))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", &*log_stream)
            .env("LEDGE_SOCKET", &socket_path)
            .current_dir(&info.task_root)
            .stdin(if namespaces.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        // In a namespace, unshare (which must stay root to create it) changes the user.
        if let (Some((uid, gid)), None) = (info.user, namespaces) {
            cmd.uid(uid).gid(gid);
        }
        let mut child = cmd.spawn()?;
        let pid = child.id().unwrap_or(0);
        if namespaces.is_none() && !wrapped {
            worker_limits.apply(pid);
        }
        let cgroup = join_cgroup(info.cgroup.as_ref(), id, info.memory_mb, pid);
        Ok(Launch {
            go: child.stdin.take(),
            child,
            pid,
            socket_path,
            log_stream,
            cgroup,
            namespaced: namespaces.is_some(),
            prepared_at: Instant::now(),
        })
    }

    /// Lets a namespaced worker's init start the interpreter (the worker's socket must be
    /// listening by now).
    pub(crate) async fn go(&mut self) -> std::io::Result<()> {
        match self.go.take() {
            Some(mut stdin) => stdin.write_all(b"\n").await,
            None => Ok(()),
        }
    }

    /// False once the process is known to have ended.
    fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// Creates the worker's cgroup, if the host delegates one, and moves the process in.
fn join_cgroup(
    parent: Option<&CgroupParent>,
    id: u64,
    memory_mb: u32,
    pid: u32,
) -> Option<WorkerCgroup> {
    let group = parent?.worker(id, memory_mb).ok()?;
    group.add(pid).ok()?;
    // unshare may have forked the namespace's init before it joined the group.
    for child in procfs::children(pid) {
        let _ = group.add(child);
    }
    Some(group)
}

/// A launch prepared ahead; killed if dropped unused.
#[derive(Debug)]
struct Prepared(Option<Launch>);

impl Drop for Prepared {
    fn drop(&mut self) {
        if let Some(launch) = &self.0 {
            limits::kill_group(launch.pid);
        }
    }
}

/// One version's PID namespace settings and the launch it keeps prepared.
#[derive(Debug)]
pub(crate) struct Launchers {
    namespaces: PidNamespaces,
    /// Prepare a launch after each cold start (not for spare interpreters).
    ahead: bool,
    ids: Arc<AtomicU64>,
    slot: Mutex<Option<Prepared>>,
    /// A launch is being prepared.
    preparing: AtomicBool,
    /// Signalled when a preparation ends.
    prepared: Notify,
    closed: AtomicBool,
}

impl Launchers {
    /// `ids` numbers workers (sockets and cgroups are named by them).
    pub(crate) fn new(namespaces: PidNamespaces, ahead: bool, ids: Arc<AtomicU64>) -> Self {
        Launchers {
            namespaces,
            ahead,
            ids,
            slot: Mutex::new(None),
            preparing: AtomicBool::new(false),
            prepared: Notify::new(),
            closed: AtomicBool::new(false),
        }
    }

    /// The prepared launch, if there is a live one; waits for one being prepared (it started
    /// earlier than a fresh launch would, so it is ready sooner), up to a bound.
    pub(crate) async fn take(&self) -> Option<Launch> {
        let until = Instant::now() + PREPARE_PATIENCE;
        loop {
            let prepared = self.prepared.notified();
            tokio::pin!(prepared);
            // Registered before looking, so a preparation that ends in between is not missed.
            prepared.as_mut().enable();
            if let Some(launch) = self.take_now() {
                return Some(launch);
            }
            if !self.preparing.load(Ordering::Acquire) {
                return None;
            }
            if tokio::time::timeout_at(until, prepared).await.is_err() {
                return self.take_now();
            }
        }
    }

    fn take_now(&self) -> Option<Launch> {
        let mut prepared = self
            .slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()?;
        let mut launch = prepared.0.take()?;
        launch.is_alive().then_some(launch)
    }

    /// Prepares the next launch in the background, unless one is ready or on its way.
    pub(crate) fn prepare(self: &Arc<Self>, info: &Arc<VersionInfo>) {
        if !self.ahead || self.closed.load(Ordering::Acquire) {
            return;
        }
        if self
            .slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
            || self.preparing.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let (launchers, info) = (self.clone(), info.clone());
        // Spawning waits for unshare's exec: off the async threads.
        tokio::task::spawn_blocking(move || {
            let id = launchers.ids.fetch_add(1, Ordering::Relaxed);
            match Launch::start(&info, id) {
                Ok(launch) if !launchers.closed.load(Ordering::Acquire) => {
                    *launchers
                        .slot
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) = Some(Prepared(Some(launch)));
                }
                Ok(launch) => drop(Prepared(Some(launch))),
                Err(e) => tracing::debug!(error = %e, "cannot prepare a worker launch"),
            }
            launchers.preparing.store(false, Ordering::Release);
            launchers.prepared.notify_waiters();
        });
    }

    /// Ends a prepared launch that waited since before `cutoff`.
    pub(crate) fn retire(&self, cutoff: Instant) {
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        let stale = slot
            .as_ref()
            .and_then(|p| p.0.as_ref())
            .is_some_and(|l| l.prepared_at < cutoff);
        if stale {
            slot.take();
        }
    }

    /// Ends the prepared launch and prepares no more.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        drop(
            self.slot
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
    }
}

impl Drop for Launchers {
    fn drop(&mut self) {
        self.close();
    }
}
