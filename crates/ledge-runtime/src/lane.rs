//! A worker in service: one task on the runtime that took the worker into use drives it,
//! running the invocations queued for it one at a time, in order.
//!
//! # Why a driver task
//! Under load an invocation costs mostly wake-ups: ledge writes a request, the interpreter
//! wakes, answers, ledge wakes. A lane lets invocations queue behind one another on a busy
//! worker (for at most `warm_wait`) and writes queued requests to the worker while it is still
//! busy: the interpreter then finds the next request waiting when it answers the last, and one
//! wake-up serves several invocations. The worker still runs one invocation at a time, and an
//! invocation's timeout counts from the moment the worker starts it (the bootstrap starts its
//! clock when it takes the request; the driver when the previous answer arrives).
//!
//! A request is written ahead only while the version's invocations are known to be short (the
//! time the running one has taken plus the average duration of those ahead fits in half of
//! `warm_wait`). Otherwise it stays in the lane's queue, from where its caller can withdraw it
//! and pay a cold start instead of a long wait, as Lambda would.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;

use crate::logs::LogLine;
use crate::protocol::{self, ReadError, Reply};
use crate::worker::{split_lines, Home, VersionInfo, Worker, WorkerFailure};

/// Requests written to a worker ahead of the one it runs, at most.
const MAX_AHEAD: usize = 16;
/// Bytes of requests written ahead, at most: far below a socket buffer, so a write never
/// waits for a worker that is busy writing its own answer.
const MAX_AHEAD_BYTES: usize = 64 * 1024;
/// Outstanding invocations on one lane, at most, before a caller looks elsewhere.
pub(crate) const MAX_QUEUED: usize = 64;
/// Invocations in a row from another runtime's thread after which an idle lane moves there...
const MOVE_AFTER: u32 = 8;
/// ...if its own runtime has not used it for this long (milliseconds): under load every thread
/// borrows idle lanes from the others, and lanes moving back and forth would cost more than
/// the borrowing.
const MOVE_QUIET_MS: u64 = 50;

/// One invocation for a lane: its encoded request and where its outcome goes.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) seq: u64,
    pub(crate) frame: Bytes,
    pub(crate) done: oneshot::Sender<Finished>,
    /// When its caller queued it: a job held back longer than `warm_wait` gets its caller
    /// nudged (see [`Lane::patience`]).
    pub(crate) queued_at: Instant,
}

impl Job {
    /// A number no other job of this process has, to find a queued job again.
    pub(crate) fn next_seq() -> u64 {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        SEQ.fetch_add(1, Ordering::Relaxed)
    }
}

/// What became of an invocation the worker started.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) result: Result<Reply, WorkerFailure>,
    /// The function's lines of this invocation (captured output and raw stdout/stderr).
    pub(crate) lines: Vec<LogLine>,
    /// From the moment the worker took the request to its answer.
    pub(crate) duration: Duration,
    pub(crate) log_stream: Arc<str>,
    /// The worker's peak resident set (KiB) when the invocation ended.
    pub(crate) max_rss_kib: u32,
}

/// What the lanes of one version share.
#[derive(Debug, Default)]
pub(crate) struct Common {
    /// The average duration of the version's invocations, for deciding whether to write ahead.
    pace: Pace,
    /// Output of workers that died between invocations, by log stream, for the log sink.
    last_words: Mutex<Vec<(Arc<str>, Vec<LogLine>)>>,
}

impl Common {
    /// Keeps the output of a worker that died between invocations.
    pub(crate) fn keep_last_words(&self, stream: Arc<str>, lines: Vec<LogLine>) {
        self.last_words
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((stream, lines));
    }

    /// The average duration of the version's invocations, once one has ended.
    pub(crate) fn pace(&self) -> Option<Duration> {
        self.pace.average()
    }

    /// Takes the output of workers that died between invocations.
    pub(crate) fn take_last_words(&self) -> Vec<(Arc<str>, Vec<LogLine>)> {
        std::mem::take(
            &mut *self
                .last_words
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }
}

/// An exponentially weighted average of durations.
///
/// A worker's first answer is slower than the ones after it (the interpreter compiles the
/// handler's code as it runs it: 2-5 ms for a no-op Node.js handler that then takes 0.1 ms).
/// It only stands in until a second kind of answer comes, and is left out once the average
/// rests on those: else the first answers made a short version look long at the start of a
/// load, and its queued invocations left for cold starts of workers it did not need.
#[derive(Debug, Default)]
struct Pace {
    /// Nanoseconds; 0 until the first sample.
    avg_ns: AtomicU64,
    /// Whether the average is only a worker's first answer.
    provisional: AtomicBool,
}

impl Pace {
    /// Records how long an answer took; `first`: the worker's first answer.
    fn record(&self, d: Duration, first: bool) {
        let d = d.as_nanos().min(u64::MAX as u128) as u64;
        let old = self.avg_ns.load(Ordering::Relaxed);
        let provisional = self.provisional.load(Ordering::Relaxed);
        let new = match (old, first) {
            (0, _) => d.max(1),
            (_, true) => return,
            _ if provisional => d.max(1),
            _ => (old - old / 8 + d / 8).max(1),
        };
        self.avg_ns.store(new, Ordering::Relaxed);
        if provisional != (old == 0 && first) {
            self.provisional.store(old == 0 && first, Ordering::Relaxed);
        }
    }

    fn average(&self) -> Option<Duration> {
        match self.avg_ns.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(Duration::from_nanos(ns)),
        }
    }
}

/// A worker's queue of invocations, shared by the callers and the task that drives it.
#[derive(Debug)]
pub(crate) struct Lane {
    pub(crate) home: Home,
    /// Jobs not yet written to the worker; `None` once the driver has ended.
    queue: Mutex<Option<VecDeque<Job>>>,
    wake: Notify,
    /// Nudges the callers waiting on this lane when a job held back in its queue has waited
    /// `warm_wait`: each looks at its own clock and may withdraw its job for a cold start.
    /// The driver keeps the one timer this needs, so a caller sets none of its own (a timer
    /// per invocation cost a lock and, often, a wake-up of the thread through its eventfd).
    pub(crate) patience: Notify,
    /// Invocations claimed on this lane and not yet finished (queued, written or running).
    outstanding: AtomicUsize,
    /// Set to end the driver once nothing is outstanding (retired, or the version closed).
    stop: AtomicBool,
    last_used: Mutex<Instant>,
    /// Invocations in a row that came from another runtime than the lane's.
    strays: AtomicU32,
    /// When the lane's own runtime last claimed it ([`clock_ms`]).
    home_claimed_ms: AtomicU64,
    /// Where the driver hands its worker over to a caller on another runtime (see
    /// [`Lane::hand_over`]). Locked after `queue`, never before.
    handover: Mutex<Option<oneshot::Sender<Worker>>>,
}

/// A claim that makes a lane unclaimable: it is being retired.
const RETIRING: usize = usize::MAX / 2;

impl Lane {
    /// Starts driving `worker` on the caller's runtime, with one invocation claimed.
    pub(crate) fn start(worker: Worker, info: &VersionInfo, common: Arc<Common>) -> Arc<Lane> {
        let lane = Arc::new(Lane {
            home: worker.home,
            queue: Mutex::new(Some(VecDeque::new())),
            wake: Notify::new(),
            patience: Notify::new(),
            outstanding: AtomicUsize::new(1),
            stop: AtomicBool::new(false),
            last_used: Mutex::new(Instant::now()),
            strays: AtomicU32::new(0),
            home_claimed_ms: AtomicU64::new(clock_ms()),
            handover: Mutex::new(None),
        });
        // Only these settings, not the version itself: a version's resources (its /tmp mount)
        // go when its last handle does, not when the last driver has noticed.
        let limits = Limits {
            timeout: info.timeout,
            max_response_bytes: info.max_response_bytes,
            warm_wait: info.warm_wait,
        };
        tokio::spawn(drive(lane.clone(), worker, limits, common));
        lane
    }

    fn lock(&self) -> MutexGuard<'_, Option<VecDeque<Job>>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// True while the driver runs.
    pub(crate) fn is_alive(&self) -> bool {
        self.lock().is_some()
    }

    /// Invocations claimed and not finished.
    pub(crate) fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Acquire)
    }

    /// Claims the lane if nothing is outstanding on it.
    pub(crate) fn try_claim_idle(&self) -> bool {
        self.outstanding
            .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Claims a place in the lane's queue, unless it is full or retiring.
    pub(crate) fn try_claim_queued(&self) -> bool {
        self.outstanding
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_QUEUED).then_some(n + 1)
            })
            .is_ok()
    }

    /// Notes who claimed the lane: true when callers on another runtime have used it
    /// [`MOVE_AFTER`] times in a row and its own runtime has not for [`MOVE_QUIET_MS`]: it had
    /// better move to them (see [`Lane::hand_over`]).
    ///
    /// A lane serves callers of any runtime, but each invocation from elsewhere costs two
    /// wake-ups of another thread (the call there, the outcome back): with one connection on
    /// one edge thread and the version's worker driven by the other, every request paid them.
    pub(crate) fn note_caller(&self, home: Home) -> bool {
        let now = clock_ms();
        if home == self.home {
            // Loads first: the lane is shared by threads, and unchanged values stay unwritten.
            if self.home_claimed_ms.load(Ordering::Relaxed) != now {
                self.home_claimed_ms.store(now, Ordering::Relaxed);
            }
            if self.strays.load(Ordering::Relaxed) != 0 {
                self.strays.store(0, Ordering::Relaxed);
            }
            return false;
        }
        self.strays.fetch_add(1, Ordering::Relaxed) + 1 >= MOVE_AFTER
            && now.saturating_sub(self.home_claimed_ms.load(Ordering::Relaxed)) >= MOVE_QUIET_MS
    }

    /// Ends this lane, which the caller claimed idle, and gives the caller its worker, to
    /// drive on the caller's runtime. `None` if the worker went away meanwhile.
    pub(crate) async fn hand_over(&self) -> Option<Worker> {
        let (tx, rx) = oneshot::channel();
        {
            let queue = self.lock();
            if queue.is_none() {
                return None;
            }
            *self.handover.lock().unwrap_or_else(PoisonError::into_inner) = Some(tx);
        }
        self.wake.notify_one();
        rx.await.ok()
    }

    fn take_handover(&self) -> Option<oneshot::Sender<Worker>> {
        self.handover
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Gives back a claim that was not used.
    pub(crate) fn release(&self) {
        self.outstanding.fetch_sub(1, Ordering::AcqRel);
    }

    /// Queues a claimed job; gives it back if the driver has ended (the claim is released).
    pub(crate) fn submit(&self, job: Job) -> Result<(), Job> {
        let mut queue = self.lock();
        let Some(queue) = queue.as_mut() else {
            drop(queue);
            self.release();
            return Err(job);
        };
        queue.push_back(job);
        self.wake.notify_one();
        Ok(())
    }

    /// Takes a job back if the worker has not been given it yet.
    pub(crate) fn withdraw(&self, seq: u64) -> bool {
        let job = {
            let mut queue = self.lock();
            let queue = queue.as_mut();
            queue.and_then(|q| {
                let at = q.iter().position(|j| j.seq == seq)?;
                q.remove(at)
            })
        };
        let withdrawn = job.is_some();
        if withdrawn {
            self.release();
        }
        withdrawn
    }

    /// When the lane last finished an invocation.
    pub(crate) fn last_used(&self) -> Instant {
        *self
            .last_used
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Ends the lane if it is idle and was last used before `cutoff`.
    pub(crate) fn retire_if_idle_since(&self, cutoff: Instant) -> bool {
        if self.last_used() >= cutoff {
            return false;
        }
        if self
            .outstanding
            .compare_exchange(0, RETIRING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        self.stop();
        true
    }

    /// Ends the driver once nothing is outstanding (in-flight invocations finish).
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.wake.notify_one();
    }
}

/// Milliseconds on a clock of this process, for comparing claim times.
fn clock_ms() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis()
        .min(u128::from(u64::MAX)) as u64
}

/// Ends a lane when its driver ends, also when the driver's runtime shuts down: queued jobs
/// are dropped, which tells their callers the invocation never started.
struct Ending<'a>(&'a Lane);

impl Drop for Ending<'_> {
    fn drop(&mut self) {
        let jobs = self.0.lock().take();
        for _ in jobs.into_iter().flatten() {
            self.0.release();
        }
        // A caller waiting for the worker hears that it is gone.
        drop(self.0.take_handover());
    }
}

/// The settings of its version a driver needs.
#[derive(Debug, Clone, Copy)]
struct Limits {
    timeout: Duration,
    max_response_bytes: usize,
    warm_wait: Duration,
}

/// A request written to the worker and not yet answered.
struct Written {
    done: oneshot::Sender<Finished>,
    bytes: usize,
}

/// Runs the lane's jobs on `worker` until the lane stops or the worker breaks.
async fn drive(lane: Arc<Lane>, mut worker: Worker, info: Limits, common: Arc<Common>) {
    let pace = &common.pace;
    let _ending = Ending(&lane);
    let mut written: VecDeque<Written> = VecDeque::new();
    let mut written_bytes = 0;
    let mut out = Vec::with_capacity(8 * 1024);
    // When the worker took the request at the head of `written`.
    let mut front_started = Instant::now();
    // One timer for the running invocation's timeout, set again only when it goes off before
    // the deadline: the deadline only ever moves later, and setting a timer for every answer
    // costs a lock and, when it becomes the thread's earliest, a wake-up of the thread.
    let timer = tokio::time::sleep_until(front_started + info.timeout);
    tokio::pin!(timer);
    // The patience timer (see `Lane::patience`): when it is set, and up to when every job
    // queued has had its callers nudged.
    let nudge = tokio::time::sleep_until(front_started);
    tokio::pin!(nudge);
    let mut nudge_at: Option<Instant> = None;
    let mut nudged_through: Option<Instant> = None;
    loop {
        // Hand the worker what may go now.
        {
            let mut queue = lane.lock();
            let Some(queue) = queue.as_mut() else { return };
            while let Some(job) = queue.front() {
                if job.done.is_closed() {
                    // Its caller went away before the worker saw it: nothing to run.
                    queue.pop_front();
                    lane.release();
                    continue;
                }
                if !written.is_empty() {
                    let ahead_bytes = written_bytes + job.frame.len();
                    let wait = pace.average().map(|avg| {
                        front_started.elapsed() + avg.saturating_mul(written.len() as u32)
                    });
                    let soon = wait.is_some_and(|w| w * 2 <= info.warm_wait);
                    if !soon || written.len() >= MAX_AHEAD || ahead_bytes > MAX_AHEAD_BYTES {
                        break;
                    }
                }
                let Some(job) = queue.pop_front() else { break };
                if written.is_empty() {
                    front_started = Instant::now();
                }
                out.extend_from_slice(&job.frame);
                written_bytes += job.frame.len();
                written.push_back(Written {
                    done: job.done,
                    bytes: job.frame.len(),
                });
            }
            // Jobs held back: the first one not yet nudged for sets the patience timer.
            if nudge_at.is_none() && !info.warm_wait.is_zero() {
                let held = queue
                    .iter()
                    .find(|j| nudged_through.is_none_or(|t| j.queued_at > t));
                if let Some(job) = held {
                    let at = job.queued_at + info.warm_wait;
                    nudge.as_mut().reset(at);
                    nudge_at = Some(at);
                }
            }
        }
        if !out.is_empty() {
            let sent =
                tokio::time::timeout_at(front_started + info.timeout, worker.send(&out)).await;
            out.clear();
            let broken = match sent {
                Ok(Ok(())) => None,
                // The worker closed its end: it went away (its exit status tells how).
                Ok(Err(_)) => Some(Some(ReadError::Closed)),
                // It stopped reading for longer than the invocation may take.
                Err(_) => Some(None),
            };
            if let Some(read) = broken {
                fail_front(&mut worker, &mut written, &lane, front_started, read).await;
                return;
            }
        }
        if written.is_empty() {
            if lane.stop.load(Ordering::Acquire) && lane.outstanding() == 0
                || lane.outstanding() >= RETIRING
            {
                return;
            }
            if let Some(to) = lane.take_handover() {
                // Jobs queued from now on are dropped with the lane: their callers look again.
                let _ = to.send(worker);
                return;
            }
            tokio::select! {
                biased;
                // Nothing is asked of an idle worker: whatever comes means it is going away
                // (an error in a timer, say). Its last words still belong in its log stream.
                _ = worker.next_reply(info.max_response_bytes) => {
                    let _ = worker.exit_failure().await;
                    worker.kill();
                    let mut lines = Vec::new();
                    worker.drain_raw(&mut lines);
                    if !lines.is_empty() {
                        common.keep_last_words(worker.log_stream.clone(), lines);
                    }
                    return;
                }
                () = lane.wake.notified() => {}
            }
            continue;
        }
        let deadline = front_started + info.timeout;
        tokio::select! {
            biased;
            reply = worker.next_reply(info.max_response_bytes) => {
                let now = Instant::now();
                let duration = now - front_started;
                front_started = now;
                let Some(front) = written.pop_front() else { return };
                written_bytes -= front.bytes;
                let reply = match reply {
                    Ok(reply) => reply,
                    Err(e) => {
                        written.push_front(front);
                        fail_front(&mut worker, &mut written, &lane, now - duration, Some(e)).await;
                        return;
                    }
                };
                let reusable = matches!(reply.kind, protocol::RESULT | protocol::ERROR);
                if reusable {
                    pace.record(duration, !worker.answered);
                }
                worker.answered = true;
                worker.peak_rss_kib = worker.peak_rss_kib.max(reply.max_rss_kib);
                let mut lines = split_lines(&reply.logs);
                worker.drain_raw(&mut lines);
                *lane.last_used.lock().unwrap_or_else(PoisonError::into_inner) = now;
                // Idle again before the caller hears back, so that it sees the worker idle.
                lane.release();
                // The worker's own count for the function's log: answers written ahead arrive
                // together, and the time between arrivals is then near zero. The arrivals
                // still pace the writing ahead and start the next invocation's clock.
                let ran = Duration::from_micros(u64::from(reply.duration_us));
                let _ = front.done.send(Finished {
                    result: Ok(reply),
                    lines,
                    duration: ran,
                    log_stream: worker.log_stream.clone(),
                    max_rss_kib: worker.peak_rss_kib,
                });
                if !reusable || !worker.is_alive() {
                    return;
                }
            }
            () = timer.as_mut() => {
                if Instant::now() < deadline {
                    timer.as_mut().reset(deadline);
                    continue;
                }
                fail_front(&mut worker, &mut written, &lane, front_started, None).await;
                return;
            }
            () = lane.wake.notified() => {
                // The worker is busy: let the other requests ready on this thread queue up too,
                // so that they go to the worker in one write.
                tokio::task::yield_now().await;
            }
            () = nudge.as_mut(), if nudge_at.is_some() => {
                nudge_at = None;
                // Jobs queued by `due` have waited `warm_wait`; those still held back (others
                // may have gone to the worker meanwhile) get their callers nudged.
                let Some(due) = Instant::now().checked_sub(info.warm_wait) else { continue };
                let ran_out = lane.lock().as_ref().is_some_and(|q| {
                    q.iter().any(|j| {
                        j.queued_at <= due && nudged_through.is_none_or(|t| j.queued_at > t)
                    })
                });
                nudged_through = Some(due);
                if ran_out {
                    lane.patience.notify_waiters();
                }
            }
        }
    }
}

/// Ends the invocation the worker is running with the failure that broke the worker
/// (`read`: what reading its answer gave; `None`: its timeout passed), kills the worker, and
/// drops the requests written behind it, which never started.
async fn fail_front(
    worker: &mut Worker,
    written: &mut VecDeque<Written>,
    lane: &Lane,
    started: Instant,
    read: Option<ReadError>,
) {
    // Read before the kill: a worker that has exited can tell no more than it last reported.
    let max_rss_kib = match read {
        Some(ReadError::Closed) => worker.peak_rss_kib,
        _ => worker.peak_rss_kib_now(),
    };
    let failure = match read {
        None => WorkerFailure::Timeout,
        Some(ReadError::TooLarge) => WorkerFailure::TooLarge,
        Some(ReadError::Garbage) => WorkerFailure::Protocol,
        Some(ReadError::Closed) => worker.exit_failure().await,
    };
    worker.kill();
    let mut lines = Vec::new();
    worker.drain_raw(&mut lines);
    if let Some(front) = written.pop_front() {
        let _ = front.done.send(Finished {
            result: Err(failure),
            lines,
            duration: started.elapsed(),
            log_stream: worker.log_stream.clone(),
            max_rss_kib,
        });
        lane.release();
    }
    for _ in written.drain(..) {
        lane.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_workers_first_answer_only_stands_in_until_others_come() {
        let pace = Pace::default();
        assert_eq!(pace.average(), None);
        pace.record(5 * MS, true);
        assert_eq!(pace.average(), Some(5 * MS), "known after one answer");
        pace.record(MS / 10, false);
        assert_eq!(
            pace.average(),
            Some(MS / 10),
            "the first answer is replaced"
        );
        pace.record(8 * MS, true);
        assert_eq!(
            pace.average(),
            Some(MS / 10),
            "later first answers are left out"
        );
        pace.record(MS / 10 + 8 * MS, false);
        assert_eq!(pace.average(), Some(MS / 10 + MS), "then an average");
    }
}
