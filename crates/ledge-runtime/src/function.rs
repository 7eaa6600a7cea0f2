//! A loaded function version: its pool of warm workers, its limits, and invocation.
//!
//! # Design
//! An invocation first takes a permit from the version's and then the node's semaphore (waiting
//! in a bounded queue, or failing with [`InvokeError::Throttled`] when the queue is full), then
//! a worker: while as many workers as cores are busy with a version of short invocations, a
//! place behind the busiest one driven by the caller's runtime (more workers cannot run sooner);
//! else an idle one already driven by the caller's runtime, else an idle worker not yet in
//! use (prewarmed), else an idle one driven elsewhere (which moves to the caller's runtime once
//! that runtime's callers have used it several times in a row), else (when
//! [`RuntimeConfig::warm_wait`](crate::RuntimeConfig) allows) a place in the queue of a busy
//! one, else a new worker (a cold start; while cold starts are under way on every core and
//! there is no worker to queue behind, it waits for one of them to end). Workers in use are
//! [`Lane`]s: a task drives each, so an invocation whose caller goes away finishes on its own
//! and leaves the worker sound, and no lock is held across an `.await`. A worker that timed
//! out, crashed or broke the protocol is killed; invocations queued behind it, never started,
//! go to another worker.
//!
//! An edge sets `warm_wait`: an invocation that finds every worker of its version busy waits
//! that long in a busy worker's queue before it withdraws and pays a cold start, so a burst of
//! short invocations is served by a few warm workers instead of one new worker per concurrent
//! request (and, with requests written ahead, with fewer wake-ups of the worker).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::sync::futures::Notified;
use tokio::sync::{oneshot, Notify, Semaphore, SemaphorePermit};
use tokio::time::Instant;
use tracing::Instrument;

use crate::error::{FunctionError, InvokeError, ThrottleScope};
use crate::lane::{Common, Finished, Job, Lane};
use crate::logs::{self, LogBatch, LogDispatcher, LogLine};
use crate::package::PreparedPackage;
use crate::protocol;
use crate::worker::{Home, SpawnError, VersionInfo, Worker, WorkerFailure};

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

impl Invocation {
    /// An invocation with a new request id that has not run yet.
    fn new(no_logs: Arc<LogBatch>) -> Self {
        Invocation {
            request_id: uuid::Uuid::new_v4().to_string(),
            result: Ok(Bytes::new()),
            logs: no_logs,
            duration: Duration::ZERO,
            init_duration: None,
            max_memory_used_mb: 0,
        }
    }
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

/// Times an invocation looks for a worker again after the one it was queued on went away
/// before starting it.
const MAX_ATTEMPTS: usize = 4;

/// The workers of a version.
#[derive(Debug, Default)]
struct Pool {
    /// Workers in use, each driven by a task on its home runtime.
    lanes: Mutex<Vec<Arc<Lane>>>,
    /// Started workers nobody has used yet (prewarmed), most recent last.
    unused: Mutex<Vec<Worker>>,
    closed: AtomicBool,
    common: Arc<Common>,
    /// Cold starts under way.
    starting: AtomicUsize,
    /// Wakes the invocations waiting for a cold start to end ([`Pick::StartUnderWay`]).
    start_ended: Notify,
}

/// Counts one cold start while it lives.
struct Starting<'a>(&'a Pool);

impl<'a> Starting<'a> {
    fn enter(pool: &'a Pool) -> Self {
        pool.starting.fetch_add(1, Ordering::AcqRel);
        Starting(pool)
    }
}

impl Drop for Starting<'_> {
    fn drop(&mut self) {
        self.0.starting.fetch_sub(1, Ordering::AcqRel);
        self.0.start_ended.notify_waiters();
    }
}

/// The cores this process may run on.
fn parallelism() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// Where an invocation will run.
enum Pick {
    /// An idle lane, claimed.
    Idle(Arc<Lane>),
    /// An idle lane of another runtime, claimed, whose worker is to move to the caller's.
    Move(Arc<Lane>),
    /// A place in a busy lane's queue, claimed.
    Queued(Arc<Lane>),
    /// A started worker not in use yet.
    Unused(Box<Worker>),
    /// Nothing: a cold start.
    Nothing,
    /// Nothing to queue behind, and a cold start under way on every core (a burst with no warm
    /// worker): wait for one to end and look again, rather than start a worker per concurrent
    /// invocation.
    StartUnderWay,
}

impl Pool {
    fn lanes(&self) -> MutexGuard<'_, Vec<Arc<Lane>>> {
        self.lanes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn unused(&self) -> MutexGuard<'_, Vec<Worker>> {
        self.unused.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn put_unused(&self, worker: Worker) {
        if !self.closed.load(Ordering::Acquire) {
            self.unused().push(worker);
        }
    }

    /// Chooses a worker for one invocation (see the module's design notes). `queue`: the
    /// version's `warm_wait`, when the invocation may queue behind a busy worker.
    fn pick(&self, home: Home, queue: Option<Duration>) -> Pick {
        let may_queue = queue.is_some();
        {
            let mut lanes = self.lanes();
            lanes.retain(|l| l.is_alive());
            if let Some(lane) = queue.and_then(|w| self.packed_lane(&lanes, home, w)) {
                return Pick::Queued(lane);
            }
            // The most recently started lanes last: the warmest.
            if let Some(lane) = lanes
                .iter()
                .rev()
                .find(|l| l.home == home && l.try_claim_idle())
            {
                lane.note_caller(home);
                return Pick::Idle(lane.clone());
            }
        }
        if let Some(worker) = self.take_unused() {
            return Pick::Unused(Box::new(worker));
        }
        let lanes = self.lanes();
        if let Some(lane) = lanes.iter().rev().find(|l| l.try_claim_idle()) {
            // A thread with no worker of its own takes over an idle one of a thread that has
            // several, rather than borrow: a borrowed invocation costs two thread wake-ups,
            // and a thread that keeps using all its workers never leaves one alone long
            // enough for it to move by `note_caller`.
            let homed = |h: Home| lanes.iter().filter(|l| l.home == h && l.is_alive()).count();
            if lane.note_caller(home) || homed(home) == 0 && homed(lane.home) > 1 {
                return Pick::Move(lane.clone());
            }
            return Pick::Idle(lane.clone());
        }
        if may_queue {
            // Better a worker of its own than a place behind another thread's, while workers
            // are fewer than cores.
            let starting = self.starting.load(Ordering::Acquire);
            if !lanes.iter().any(|l| l.home == home) && lanes.len() + starting < parallelism() {
                return Pick::Nothing;
            }
            let shortest = |at_home: bool| {
                lanes
                    .iter()
                    .filter(|l| (l.home == home) == at_home)
                    .min_by_key(|l| l.outstanding())
            };
            for lane in [shortest(true), shortest(false)].into_iter().flatten() {
                if lane.try_claim_queued() {
                    lane.note_caller(home);
                    return Pick::Queued(lane.clone());
                }
            }
            if self.starts_full() {
                return Pick::StartUnderWay;
            }
        }
        Pick::Nothing
    }

    /// A place behind the busiest lane of `home`, when as many lanes as cores are busy and the
    /// version's invocations are short (within half of `warm_wait` on average, as for writing
    /// requests ahead): another worker could not run sooner, the cores being taken, and every
    /// worker in use costs wake-ups of its own. Workers left over from a burst then stay idle
    /// until they retire, instead of each taking a share of the requests: five Node.js
    /// workers for two edge threads cost 60 % more worker CPU per request than two.
    fn packed_lane(
        &self,
        lanes: &[Arc<Lane>],
        home: Home,
        warm_wait: Duration,
    ) -> Option<Arc<Lane>> {
        let short = self.common.pace().is_some_and(|avg| avg * 2 <= warm_wait);
        if !short || lanes.iter().filter(|l| l.outstanding() > 0).count() < parallelism() {
            return None;
        }
        // The busiest: behind the least busy, every worker that happened to be busy at once
        // would stay in use for as long as the load lasts. Another one if that one is full.
        let busy = || {
            lanes
                .iter()
                .filter(|l| l.home == home && l.outstanding() > 0)
        };
        let lane = busy()
            .max_by_key(|l| l.outstanding())
            .filter(|l| l.try_claim_queued())
            .or_else(|| busy().find(|l| l.try_claim_queued()))?;
        lane.note_caller(home);
        Some(lane.clone())
    }

    /// Whether a worker is idle: a live lane with nothing outstanding, or one not in use yet.
    fn any_idle(&self) -> bool {
        self.lanes()
            .iter()
            .any(|l| l.outstanding() == 0 && l.is_alive())
            || self.unused().iter().any(Worker::is_alive)
    }

    /// True when the version's invocations are short (within `patience` on average) and
    /// it has at least as many workers in use or starting as the machine has cores: the CPU,
    /// not a worker, is what is missing, and another worker would only add a cold start.
    /// Also true while as many workers as cores are starting: more would only slow them.
    fn saturated(&self, patience: Duration) -> bool {
        let cores = parallelism();
        self.starts_full()
            || self.common.pace().is_some_and(|avg| avg <= patience)
                && self.lanes().iter().filter(|l| l.is_alive()).count()
                    + self.starting.load(Ordering::Acquire)
                    >= cores
    }

    /// True while as many workers as cores are starting: another cold start would only slow
    /// them down.
    fn starts_full(&self) -> bool {
        self.starting.load(Ordering::Acquire) >= parallelism()
    }

    /// Returns once fewer workers than cores are starting.
    async fn start_ended(&self) {
        let ended = self.start_ended.notified();
        tokio::pin!(ended);
        // Registered before the check, so that an end between the two is not missed.
        ended.as_mut().enable();
        if self.starts_full() {
            ended.await;
        }
    }

    /// Takes the most recently started live unused worker.
    fn take_unused(&self) -> Option<Worker> {
        let mut unused = self.unused();
        while let Some(worker) = unused.pop() {
            if worker.is_alive() {
                return Some(worker);
            }
            // It died before its first invocation: its last words are on its real stderr.
            let mut lines = Vec::new();
            worker.drain_raw(&mut lines);
            if !lines.is_empty() {
                self.common
                    .keep_last_words(worker.log_stream.clone(), lines);
            }
        }
        None
    }

    /// Puts `worker` into use on the caller's runtime, with one invocation claimed.
    fn start_lane(
        &self,
        mut worker: Worker,
        info: &Arc<VersionInfo>,
    ) -> std::io::Result<Arc<Lane>> {
        worker.move_home()?;
        let lane = Lane::start(worker, info, self.common.clone());
        let mut lanes = self.lanes();
        if self.closed.load(Ordering::Acquire) {
            // Serves its one invocation, then ends.
            lane.stop();
        } else {
            lanes.push(lane.clone());
        }
        Ok(lane)
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
        let in_use = self
            .pool
            .lanes()
            .iter()
            .filter(|l| l.is_alive() && l.outstanding() == 0)
            .count();
        in_use + self.pool.unused().iter().filter(|w| w.is_alive()).count()
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
        let mut invocation = Invocation::new(self.no_logs.clone());
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(event) {
            invocation.result = Err(InvokeError::InvalidEvent(e.to_string()));
            return invocation;
        }
        self.invoke_valid(event, invocation).await
    }

    /// Invokes the function with an event the caller wrote as JSON itself (so it is not
    /// parsed again here), returning the outcome with its logs.
    pub async fn invoke_trusted(&self, event: &[u8]) -> Invocation {
        self.invoke_valid(event, Invocation::new(self.no_logs.clone()))
            .await
    }

    /// The language of the version's runtime (and so the layout of the JSON its worker
    /// writes, see [`crate::JsonStyle`]).
    pub fn language(&self) -> crate::Language {
        self.info.language
    }

    async fn invoke_valid(&self, event: &[u8], mut invocation: Invocation) -> Invocation {
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

    /// A new worker for this version: a spare interpreter adopted, else one spawned; with
    /// the count of the start, for the caller to end once the worker is in the pool.
    async fn cold_start(&self) -> (Result<Worker, SpawnError>, Starting<'_>) {
        self.flush_last_words();
        self.cold_starts.fetch_add(1, Ordering::Relaxed);
        tracing::debug!("cold start");
        let starting = Starting::enter(&self.pool);
        let started = match self.take_spare() {
            Some(spare) => spare.adopt(&self.info).await,
            None => Worker::spawn(&self.info, self.next_worker_id()).await,
        };
        (started, starting)
    }

    async fn run(&self, event: &[u8], mut invocation: Invocation) -> Invocation {
        let info = &self.info;
        let request_id = invocation.request_id.clone();
        let mut lines = Vec::with_capacity(8);
        let frame = Bytes::from(protocol::encode_request(
            &request_id,
            info.timeout.as_millis().min(u64::MAX as u128) as u64,
            event,
        ));
        let home = Home::current();
        let mut may_queue = !info.warm_wait.is_zero();
        let mut init_duration = None;
        let mut attempts = 0;
        let finished = loop {
            attempts += 1;
            if attempts > MAX_ATTEMPTS {
                invocation.result = Err(InvokeError::Protocol {
                    request_id: request_id.clone(),
                });
                return invocation;
            }
            let pick = self.pool.pick(home, may_queue.then_some(info.warm_wait));
            let (lane, patience) = match pick {
                Pick::StartUnderWay => {
                    // Then it queues behind the new workers; more start only if invocations
                    // prove long. Waiting is no failed attempt.
                    self.pool.start_ended().await;
                    attempts -= 1;
                    continue;
                }
                Pick::Idle(lane) => (lane, None),
                Pick::Queued(lane) => (lane, Some(info.warm_wait)),
                // A worker for a lane of this thread's own.
                Pick::Unused(_) | Pick::Move(_) | Pick::Nothing => {
                    // A started worker counts as starting until its lane is in the pool:
                    // others deciding whether to start one more must see it all along.
                    let mut _starting = None;
                    let worker = match pick {
                        Pick::Unused(worker) => *worker,
                        Pick::Move(lane) => match Box::pin(lane.hand_over()).await {
                            Some(worker) => worker,
                            None => continue,
                        },
                        // Boxed, as the hand-over: a warm invocation's future would
                        // otherwise carry a worker's start.
                        _ => match Box::pin(self.cold_start()).await {
                            (Ok(mut worker), starting) => {
                                _starting = Some(starting);
                                lines.append(&mut worker.init_logs);
                                init_duration = Some(worker.init_duration);
                                worker
                            }
                            (Err(e), _) => return self.init_failed(invocation, e),
                        },
                    };
                    match self.pool.start_lane(worker, info) {
                        Ok(lane) => (lane, None),
                        Err(e) => return self.init_failed(invocation, SpawnError::Io(e)),
                    }
                }
            };
            let seq = Job::next_seq();
            let (done, mut outcome) = oneshot::channel();
            let queued_at = Instant::now();
            let job = Job {
                seq,
                frame: frame.clone(),
                done,
                queued_at,
            };
            // Taken before the job is queued, so that no nudge for it is missed.
            let patience = patience.map(|p| (p, lane.patience.notified()));
            if lane.submit(job).is_err() {
                continue;
            }
            let finished = match patience {
                None => outcome.await,
                Some((patience, nudged)) => {
                    match wait_patiently(&lane, &mut outcome, nudged, queued_at, patience).await {
                        Some(finished) => finished,
                        // An idle worker (the busy one may have run long for once) beats
                        // waiting on, even when another worker would not be started.
                        None if self.pool.saturated(info.warm_wait) && !self.pool.any_idle() => {
                            outcome.await
                        }
                        None if lane.withdraw(seq) => {
                            // Waited long enough for a busy worker: an idle one, else a worker
                            // of its own.
                            may_queue = false;
                            continue;
                        }
                        None => outcome.await,
                    }
                }
            };
            match finished {
                Ok(finished) => break finished,
                // The worker went away before it started this invocation.
                Err(_) => continue,
            }
        };
        invocation.init_duration = init_duration;
        let Finished {
            result: outcome,
            lines: mut function_lines,
            duration,
            log_stream,
            max_rss_kib,
        } = finished;
        // One clock read for the runtime's three lines: START is dated when the worker took
        // the request, END and REPORT when its answer came.
        let ended = SystemTime::now();
        let started = ended.checked_sub(duration).unwrap_or(ended);
        lines.push(LogLine {
            timestamp: started,
            message: logs::start_line(&request_id, &info.version),
        });
        lines.append(&mut function_lines);
        invocation.duration = duration;

        invocation.result = match outcome {
            Ok(reply) => match reply.kind {
                protocol::RESULT => Ok(reply.body),
                protocol::ERROR => Err(InvokeError::Function(FunctionError::from_body(reply.body))),
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
            },
            Err(WorkerFailure::Timeout) => {
                // Lambda reports a timed-out invocation as having run exactly its timeout.
                invocation.duration = info.timeout;
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

        // The worker's peak, also after a failure that broke it (Lambda's REPORT shows the
        // real peak then too: a timeout's, or the whole memory size after an out-of-memory).
        let mut max_used = max_rss_kib.div_ceil(1024);
        if matches!(invocation.result, Err(InvokeError::OutOfMemory { .. })) {
            // It reached its memory size, as Lambda reports it, whatever was measured on the
            // way there (an address-space limit lets the resident set run past it).
            max_used = info.memory_mb;
        }
        invocation.max_memory_used_mb = max_used;
        let breakdown = match &invocation.result {
            Err(InvokeError::Timeout { .. }) => Some(logs::Breakdown::Timeout),
            Err(e @ (InvokeError::OutOfMemory { .. } | InvokeError::Exit { .. })) => {
                Some(logs::Breakdown::Error(e.error_type()))
            }
            _ => None,
        };
        let end = logs::end_line(&request_id);
        let report = logs::report_line(
            &request_id,
            invocation.duration,
            info.memory_mb,
            max_used,
            init_duration,
            breakdown,
        );
        lines.extend([end, report].map(|message| LogLine {
            timestamp: ended,
            message,
        }));
        let batch = Arc::new(self.batch(log_stream, lines));
        self.logs.send(batch.clone());
        invocation.logs = batch;
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
                    self.pool.put_unused(worker);
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
        let retired_unused = {
            let mut unused = self.pool.unused();
            let before = unused.len();
            unused.retain(|w| w.last_used >= cutoff && w.is_alive());
            before - unused.len()
        };
        let mut lanes = self.pool.lanes();
        let before = lanes.len();
        lanes.retain(|l| l.is_alive() && !l.retire_if_idle_since(cutoff));
        retired_unused + (before - lanes.len())
    }

    /// Stops every idle worker; busy ones finish their invocations, then stop.
    pub(crate) fn close(&self) {
        self.pool.closed.store(true, Ordering::Release);
        let lanes = std::mem::take(&mut *self.pool.lanes());
        for lane in lanes {
            lane.stop();
        }
        drop(std::mem::take(&mut *self.pool.unused()));
        drop(self.take_spare());
    }

    fn take_spare(&self) -> Option<Worker> {
        self.spare
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Sends the output of workers that died between invocations to the log sink.
    fn flush_last_words(&self) {
        for (stream, lines) in self.pool.common.take_last_words() {
            self.logs.send(Arc::new(self.batch(stream, lines)));
        }
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

/// Waits for a queued job's outcome until its lane says it has waited `patience` since
/// `queued_at` while still held back (`None` then: its caller may withdraw it). `nudged` was
/// taken before the job was queued.
async fn wait_patiently(
    lane: &Lane,
    outcome: &mut oneshot::Receiver<Finished>,
    nudged: Notified<'_>,
    queued_at: Instant,
    patience: Duration,
) -> Option<Result<Finished, oneshot::error::RecvError>> {
    tokio::pin!(nudged);
    loop {
        tokio::select! {
            biased;
            finished = &mut *outcome => return Some(finished),
            () = nudged.as_mut() => {}
        }
        // A nudge is for every caller of the lane: the next one is taken before this caller
        // looks at its own clock, so that none is missed in between.
        nudged.set(lane.patience.notified());
        if queued_at.elapsed() >= patience {
            return None;
        }
    }
}
