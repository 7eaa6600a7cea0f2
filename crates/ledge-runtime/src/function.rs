//! A loaded function version: its pool of warm workers, its limits, and invocation.
//!
//! # Design
//! Idle workers wait on a LIFO stack (the most recently used worker is the warmest). An
//! invocation first takes a permit from the version's and then the node's semaphore (waiting in
//! a bounded queue, or failing with [`InvokeError::Throttled`] when the queue is full), then pops
//! an idle worker or starts one (a cold start). The worker is owned by the invocation while it
//! runs, so no lock is held across an `.await`; a worker that timed out, crashed or broke the
//! protocol is killed instead of being returned.
//!
//! An edge sets [`RuntimeConfig::warm_wait`](crate::RuntimeConfig): an invocation that finds
//! every worker busy first waits that long for one to come back before it pays a cold start,
//! so a burst of short invocations is served by a few warm workers instead of one new worker
//! per concurrent request. Idle workers are taken from the caller's own runtime first (see
//! [`Home`](crate::worker::Home)).
//!
//! An invocation whose caller goes away (its future is dropped, e.g. the viewer disconnected)
//! does not lose the worker: a task waits for the abandoned reply, until the deadline, and
//! returns the worker to the pool.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{Notify, Semaphore, SemaphorePermit};
use tokio::time::Instant;
use tracing::Instrument;

use crate::error::{FunctionError, InvokeError, ThrottleScope};
use crate::logs::{self, LogBatch, LogDispatcher, LogLine};
use crate::package::PreparedPackage;
use crate::protocol;
use crate::worker::{Home, Phase, SpawnError, VersionInfo, Worker, WorkerFailure};

/// A concurrency limit with a bounded queue in front of it.
#[derive(Debug)]
pub(crate) struct Admission {
    permits: Semaphore,
    waiting: AtomicUsize,
    queue: usize,
    scope: ThrottleScope,
}

impl Admission {
    pub(crate) fn new(concurrency: usize, queue: usize, scope: ThrottleScope) -> Self {
        Admission {
            permits: Semaphore::new(concurrency.max(1)),
            waiting: AtomicUsize::new(0),
            queue,
            scope,
        }
    }

    async fn admit(&self) -> Result<SemaphorePermit<'_>, InvokeError> {
        if let Ok(permit) = self.permits.try_acquire() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.queue {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(InvokeError::Throttled(self.scope));
        }
        let _waiting = Waiting(&self.waiting);
        self.permits
            .acquire()
            .await
            .map_err(|_| InvokeError::Throttled(self.scope))
    }
}

/// Leaves the queue when the wait ends, also when the waiting future is dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The result of a successful invocation.
#[derive(Debug, Clone)]
pub struct InvokeOutput {
    /// The handler's result as JSON (`null` when it returned nothing).
    pub payload: Bytes,
    /// Lambda's request id of this invocation (a UUID).
    pub request_id: String,
    /// The invocation's log lines, START to REPORT (also sent to the log sink).
    pub logs: Arc<LogBatch>,
    /// Time the handler took.
    pub duration: Duration,
    /// Init duration when this invocation started the worker (a cold start).
    pub init_duration: Option<Duration>,
    /// Peak memory of the worker, in MB.
    pub max_memory_used_mb: u32,
}

/// An invocation's outcome together with its logs, whether it succeeded or failed.
#[derive(Debug)]
pub struct Invocation {
    /// Lambda's request id of this invocation.
    pub request_id: String,
    /// The result or the error.
    pub result: Result<Bytes, InvokeError>,
    /// The log lines (empty when the invocation was throttled or rejected before running).
    pub logs: Arc<LogBatch>,
    /// Time the handler took.
    pub duration: Duration,
    /// Init duration when this invocation paid a cold start.
    pub init_duration: Option<Duration>,
    /// Peak memory of the worker, in MB.
    pub max_memory_used_mb: u32,
}

/// A loaded function version. Cheap to share (`Arc`); invoke it from any task.
#[derive(Debug)]
pub struct FunctionHandle {
    info: Arc<VersionInfo>,
    package: PreparedPackage,
    pool: Arc<Pool>,
    version_limit: Admission,
    node_limit: Arc<Admission>,
    logs: LogDispatcher,
    worker_ids: Arc<AtomicU64>,
    cold_starts: AtomicU64,
    /// An interpreter started ahead of need, for this version's first cold start.
    spare: Mutex<Option<Worker>>,
    /// The logs of an invocation that never ran (rejected, throttled).
    no_logs: Arc<LogBatch>,
}

/// The idle workers of a version, shared with tasks that finish abandoned invocations.
#[derive(Debug, Default)]
struct Pool {
    idle: Mutex<Vec<Worker>>,
    closed: AtomicBool,
    /// Invocations between admission and the end of their exchange with a worker.
    running: AtomicUsize,
    /// Signalled whenever a worker comes back.
    returned: Notify,
}

impl Pool {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Worker>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn put(&self, worker: Worker) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        self.lock().push(worker);
        self.returned.notify_one();
    }
}

/// Counts one invocation in [`Pool::running`] while it lives.
struct Running<'a>(&'a Pool);

impl<'a> Running<'a> {
    /// Enters; returns the guard and how many others were running.
    fn enter(pool: &'a Pool) -> (Self, usize) {
        let others = pool.running.fetch_add(1, Ordering::AcqRel);
        (Running(pool), others)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A worker taken out of the pool for one invocation. If the invocation is dropped while the
/// worker awaits its reply, a task finishes the exchange and gives the worker back.
struct Checkout {
    worker: Option<Worker>,
    pool: Arc<Pool>,
    deadline: Instant,
    max_response_bytes: usize,
}

impl Drop for Checkout {
    fn drop(&mut self) {
        let Some(worker) = self.worker.take() else {
            return;
        };
        if worker.phase != Phase::Reading {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let pool = self.pool.clone();
        let (deadline, max) = (self.deadline, self.max_response_bytes);
        runtime.spawn(async move {
            if let Some(worker) = worker.finish_abandoned(deadline, max).await {
                pool.put(worker);
            }
        });
    }
}

impl FunctionHandle {
    pub(crate) fn new(
        info: Arc<VersionInfo>,
        package: PreparedPackage,
        version_limit: Admission,
        node_limit: Arc<Admission>,
        logs: LogDispatcher,
        worker_ids: Arc<AtomicU64>,
        spare: Option<Worker>,
    ) -> Self {
        let info_log_group = info.log_group.clone();
        FunctionHandle {
            info,
            package,
            pool: Arc::new(Pool::default()),
            version_limit,
            node_limit,
            logs,
            worker_ids,
            cold_starts: AtomicU64::new(0),
            spare: Mutex::new(spare),
            no_logs: Arc::new(LogBatch {
                log_group: info_log_group,
                log_stream: Arc::from(""),
                lines: Vec::new(),
            }),
        }
    }

    /// The function name.
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// The version.
    pub fn version(&self) -> &str {
        &self.info.version
    }

    /// The unpacked package (its SHA-256 and size).
    pub fn package(&self) -> &PreparedPackage {
        &self.package
    }

    /// Workers waiting for an invocation right now.
    pub fn idle_workers(&self) -> usize {
        self.pool.lock().len()
    }

    /// Workers started by invocations that found no idle worker (prewarm excluded).
    pub fn cold_starts(&self) -> u64 {
        self.cold_starts.load(Ordering::Relaxed)
    }

    /// Invokes the function with a JSON event.
    pub async fn invoke_json(
        &self,
        event: &serde_json::Value,
    ) -> Result<InvokeOutput, InvokeError> {
        let bytes =
            serde_json::to_vec(event).map_err(|e| InvokeError::InvalidEvent(e.to_string()))?;
        self.invoke(&bytes).await
    }

    /// Invokes the function with an event given as JSON bytes.
    pub async fn invoke(&self, event: &[u8]) -> Result<InvokeOutput, InvokeError> {
        let invocation = self.invoke_detailed(event).await;
        invocation.result.map(|payload| InvokeOutput {
            payload,
            request_id: invocation.request_id,
            logs: invocation.logs,
            duration: invocation.duration,
            init_duration: invocation.init_duration,
            max_memory_used_mb: invocation.max_memory_used_mb,
        })
    }

    /// Invokes the function and returns the outcome with its logs, also on failure.
    pub async fn invoke_detailed(&self, event: &[u8]) -> Invocation {
        let request_id = uuid::Uuid::new_v4().to_string();
        let mut invocation = Invocation {
            request_id,
            result: Ok(Bytes::new()),
            logs: self.no_logs.clone(),
            duration: Duration::ZERO,
            init_duration: None,
            max_memory_used_mb: 0,
        };
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(event) {
            invocation.result = Err(InvokeError::InvalidEvent(e.to_string()));
            return invocation;
        }
        let _version_permit = match self.version_limit.admit().await {
            Ok(p) => p,
            Err(e) => {
                invocation.result = Err(e);
                return invocation;
            }
        };
        let _node_permit = match self.node_limit.admit().await {
            Ok(p) => p,
            Err(e) => {
                invocation.result = Err(e);
                return invocation;
            }
        };
        let span = tracing::debug_span!(
            "invoke",
            function = %self.info.name,
            version = %self.info.version,
            request_id = %invocation.request_id,
        );
        let invocation = self.run(event, invocation).instrument(span).await;
        if let Err(e) = &invocation.result {
            if !matches!(e, InvokeError::Function(_)) {
                tracing::debug!(
                    function = %self.info.name,
                    request_id = %invocation.request_id,
                    error = %e,
                    "invocation failed"
                );
            }
        }
        invocation
    }

    async fn run(&self, event: &[u8], mut invocation: Invocation) -> Invocation {
        let info = &self.info;
        let request_id = invocation.request_id.clone();
        let mut lines = Vec::with_capacity(8);

        let (running, others) = Running::enter(&self.pool);
        let mut warm = self.take_idle();
        if warm.is_none() && others > 0 && !info.warm_wait.is_zero() {
            warm = self.wait_for_idle(info.warm_wait).await;
        }
        let (mut worker, init_duration) = match warm {
            Some(worker) => (worker, None),
            None => {
                self.cold_starts.fetch_add(1, Ordering::Relaxed);
                tracing::debug!("cold start");
                let started = match self.take_spare() {
                    Some(spare) => spare.adopt(info).await,
                    None => Worker::spawn(info, self.next_worker_id()).await,
                };
                match started {
                    Ok(mut worker) => {
                        lines.append(&mut worker.init_logs);
                        let init = worker.init_duration;
                        (worker, Some(init))
                    }
                    Err(e) => return self.init_failed(invocation, e),
                }
            }
        };
        if let Err(e) = worker.move_home() {
            return self.init_failed(invocation, SpawnError::Io(e));
        }
        invocation.init_duration = init_duration;
        lines.push(line(logs::start_line(&request_id, &info.version)));

        let started = Instant::now();
        let deadline = started + info.timeout;
        let deadline_epoch_ms = (SystemTime::now() + info.timeout)
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        let log_stream = worker.log_stream.clone();
        let mut checkout = Checkout {
            worker: Some(worker),
            pool: self.pool.clone(),
            deadline,
            max_response_bytes: info.max_response_bytes,
        };
        let outcome = match checkout.worker.as_mut() {
            Some(worker) => {
                worker
                    .invoke(
                        &request_id,
                        event,
                        deadline,
                        deadline_epoch_ms,
                        info.max_response_bytes,
                        &mut lines,
                    )
                    .await
            }
            None => Err(WorkerFailure::Protocol),
        };
        let worker = checkout.worker.take();
        drop(running);
        let duration = started.elapsed();
        invocation.duration = duration;

        let mut max_rss_kib = 0;
        let mut reusable = false;
        invocation.result = match outcome {
            Ok(reply) => {
                max_rss_kib = reply.max_rss_kib;
                match reply.kind {
                    protocol::RESULT => {
                        reusable = true;
                        Ok(reply.body)
                    }
                    protocol::ERROR => {
                        reusable = true;
                        Err(InvokeError::Function(FunctionError::from_body(reply.body)))
                    }
                    protocol::FATAL => {
                        let error = FunctionError::from_body(reply.body);
                        if error.error_type == "Runtime.OutOfMemory" {
                            Err(InvokeError::OutOfMemory {
                                request_id: request_id.clone(),
                            })
                        } else {
                            Err(InvokeError::Function(error))
                        }
                    }
                    _ => Err(InvokeError::Protocol {
                        request_id: request_id.clone(),
                    }),
                }
            }
            Err(WorkerFailure::Timeout) => {
                lines.push(line(logs::timeout_line(
                    SystemTime::now(),
                    &request_id,
                    info.timeout,
                )));
                Err(InvokeError::Timeout {
                    request_id: request_id.clone(),
                    timeout: info.timeout,
                })
            }
            Err(WorkerFailure::Exit { status, oom }) => {
                let error = if oom {
                    InvokeError::OutOfMemory {
                        request_id: request_id.clone(),
                    }
                } else {
                    InvokeError::Exit {
                        request_id: request_id.clone(),
                        status,
                    }
                };
                lines.push(line(format!("{error} {}", error.error_type())));
                Err(error)
            }
            Err(WorkerFailure::TooLarge) => Err(InvokeError::ResponseTooLarge {
                limit: info.max_response_bytes,
            }),
            Err(WorkerFailure::Protocol) => Err(InvokeError::Protocol {
                request_id: request_id.clone(),
            }),
        };

        let max_used = max_rss_kib.div_ceil(1024);
        invocation.max_memory_used_mb = max_used;
        lines.push(line(logs::end_line(&request_id)));
        lines.push(line(logs::report_line(
            &request_id,
            duration,
            info.memory_mb,
            max_used,
            init_duration,
        )));
        let batch = Arc::new(self.batch(log_stream, lines));
        self.logs.send(batch.clone());
        invocation.logs = batch;

        if let Some(mut worker) = worker.filter(|w| reusable && w.is_alive()) {
            worker.last_used = Instant::now();
            self.pool.put(worker);
        }
        invocation
    }

    fn init_failed(&self, mut invocation: Invocation, error: SpawnError) -> Invocation {
        let request_id = invocation.request_id.clone();
        let (error, mut lines) = match error {
            SpawnError::Io(e) => (InvokeError::Spawn(e), Vec::new()),
            SpawnError::Init(e, lines) => (InvokeError::Init(e), lines),
            SpawnError::Crashed(status, lines) => (
                InvokeError::Exit {
                    request_id: request_id.clone(),
                    status,
                },
                lines,
            ),
        };
        lines.push(line(logs::start_line(&request_id, &self.info.version)));
        lines.push(line(logs::end_line(&request_id)));
        lines.push(line(logs::report_line(
            &request_id,
            Duration::ZERO,
            self.info.memory_mb,
            0,
            None,
        )));
        let stream: Arc<str> = logs::log_stream_name(&self.info.version).into();
        let batch = Arc::new(self.batch(stream, lines));
        self.logs.send(batch.clone());
        invocation.logs = batch;
        invocation.result = Err(error);
        invocation
    }

    /// Starts workers until `n` are idle. Returns how many were started.
    pub async fn prewarm(&self, n: usize) -> Result<usize, InvokeError> {
        let missing = n.saturating_sub(self.idle_workers());
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..missing {
            let info = self.info.clone();
            match self.take_spare() {
                Some(spare) => set.spawn(async move { spare.adopt(&info).await }),
                None => {
                    let id = self.next_worker_id();
                    set.spawn(async move { Worker::spawn(&info, id).await })
                }
            };
        }
        let mut started = 0;
        let mut first_error = None;
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok(Ok(mut worker)) => {
                    let init_logs = std::mem::take(&mut worker.init_logs);
                    if !init_logs.is_empty() {
                        let batch = self.batch(worker.log_stream.clone(), init_logs);
                        self.logs.send(Arc::new(batch));
                    }
                    started += 1;
                    self.pool.put(worker);
                }
                Ok(Err(e)) => {
                    if first_error.is_none() {
                        first_error = Some(match e {
                            SpawnError::Io(e) => InvokeError::Spawn(e),
                            SpawnError::Init(e, _) => InvokeError::Init(e),
                            SpawnError::Crashed(status, _) => InvokeError::Exit {
                                request_id: String::new(),
                                status,
                            },
                        });
                    }
                }
                Err(e) => {
                    first_error.get_or_insert(InvokeError::Spawn(std::io::Error::other(e)));
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(started),
        }
    }

    /// Retires workers idle since before `cutoff`; returns how many.
    pub(crate) fn retire_idle(&self, cutoff: Instant) -> usize {
        let retired: Vec<Worker> = {
            let mut idle = self.pool.lock();
            let (keep, old): (Vec<Worker>, Vec<Worker>) = idle
                .drain(..)
                .partition(|w| w.last_used >= cutoff && w.is_alive());
            *idle = keep;
            old
        };
        retired.len()
    }

    /// Stops every idle worker and refuses to keep busy ones afterwards.
    pub(crate) fn close(&self) {
        self.pool.closed.store(true, Ordering::Release);
        let workers = std::mem::take(&mut *self.pool.lock());
        drop(workers);
        drop(self.take_spare());
    }

    fn take_spare(&self) -> Option<Worker> {
        self.spare
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Waits up to `patience` for a worker to come back to the pool.
    async fn wait_for_idle(&self, patience: Duration) -> Option<Worker> {
        let until = Instant::now() + patience;
        loop {
            let returned = self.pool.returned.notified();
            tokio::pin!(returned);
            // Registered before looking, so a worker put back in between is not missed.
            returned.as_mut().enable();
            if let Some(worker) = self.take_idle() {
                return Some(worker);
            }
            if tokio::time::timeout_at(until, returned).await.is_err() {
                return self.take_idle();
            }
        }
    }

    /// Takes the most recently used live worker, preferring one already registered with the
    /// caller's runtime.
    fn take_idle(&self) -> Option<Worker> {
        let home = Home::current();
        let mut dead = Vec::new();
        let found = {
            let mut idle = self.pool.lock();
            let mut found = None;
            while !idle.is_empty() {
                let at = idle
                    .iter()
                    .rposition(|w| w.home == home)
                    .unwrap_or(idle.len() - 1);
                let worker = idle.remove(at);
                if worker.is_alive() {
                    found = Some(worker);
                    break;
                }
                dead.push(worker);
            }
            found
        };
        // A worker that died between invocations (an error in a timer, say) leaves its last
        // words on its real stderr: they still belong in its log stream.
        for worker in dead {
            let lines = worker.take_output();
            if !lines.is_empty() {
                self.logs
                    .send(Arc::new(self.batch(worker.log_stream.clone(), lines)));
            }
        }
        found
    }

    fn next_worker_id(&self) -> u64 {
        self.worker_ids.fetch_add(1, Ordering::Relaxed)
    }

    fn batch(&self, log_stream: Arc<str>, lines: Vec<LogLine>) -> LogBatch {
        LogBatch {
            log_group: self.info.log_group.clone(),
            log_stream,
            lines,
        }
    }
}

impl Drop for FunctionHandle {
    fn drop(&mut self) {
        self.close();
    }
}

fn line(message: String) -> LogLine {
    LogLine {
        timestamp: SystemTime::now(),
        message,
    }
}
