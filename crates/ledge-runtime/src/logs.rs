//! Function logs: Lambda's line formats, and delivery to a [`LogSink`] off the invoke path.
//!
//! # Design
//! Each invocation produces one [`LogBatch`] (START, the function's lines, END, REPORT). The
//! batch goes to the sink through a bounded channel with `try_send`: a slow sink loses log
//! batches (counted in [`LogDispatcher::dropped`]) but never slows an invocation. The sink runs
//! on its own thread, so it may block on I/O.
//!
//! The sink thread takes everything queued at once and then pauses for [`COALESCE`]: at high
//! invocation rates the invoking threads never wake it (a wake-up is a context switch on the
//! request path's cores), and a file is opened and written once per group per round instead of
//! once per invocation. A quiet function's lines still reach the sink at once.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

/// One log event: a line as CloudWatch Logs would store it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// When ledge received the line.
    pub timestamp: SystemTime,
    /// The line, without its trailing newline. Multi-line entries keep `\r` between lines.
    pub message: String,
}

/// The log lines of one invocation (or of one init phase).
#[derive(Debug, Clone)]
pub struct LogBatch {
    /// Log group, `/aws/lambda/<function name>`.
    pub log_group: Arc<str>,
    /// Log stream of the worker, `YYYY/MM/DD/[<version>]<32 hex>`.
    pub log_stream: Arc<str>,
    /// The lines, in order.
    pub lines: Vec<LogLine>,
}

impl LogBatch {
    /// The messages joined by newlines, each line ending in `\n` (for printing).
    pub fn text(&self) -> String {
        let mut out = String::new();
        for line in &self.lines {
            out.push_str(&line.message);
            out.push('\n');
        }
        out
    }
}

impl LogBatch {
    /// The last `max_bytes` of [`text`](LogBatch::text), cut at a character boundary: what
    /// Lambda's `Invoke` returns base64-encoded in `X-Amz-Log-Result` with `LogType: Tail`
    /// (4 KB).
    pub fn tail(&self, max_bytes: usize) -> String {
        let text = self.text();
        let mut start = text.len().saturating_sub(max_bytes);
        while !text.is_char_boundary(start) {
            start += 1;
        }
        text[start..].to_string()
    }
}

/// How long the sink thread pauses after a round of writes before it looks for more.
pub(crate) const COALESCE: Duration = Duration::from_millis(5);

/// Most batches handed to the sink in one round.
const MAX_ROUND: usize = 1024;

/// Receives function logs. Called on a dedicated thread, in order.
pub trait LogSink: Send + Sync + 'static {
    /// Stores one batch. Blocking is allowed; errors are the sink's to report.
    fn write(&self, batch: &LogBatch);

    /// Stores several batches, in order (by default one [`write`](LogSink::write) each).
    fn write_all(&self, batches: &[Arc<LogBatch>]) {
        for batch in batches {
            self.write(batch);
        }
    }
}

/// Appends log lines to one file per log group under a directory:
/// `<dir>/<log group with '/' replaced by '_'>.log`, one line per event:
/// `<ISO-8601 timestamp>\t<log stream>\t<message>`. A file that reaches
/// [`Rotation::max_bytes`] becomes `<file>.1` (the older ones move up to `.2`, …, the oldest
/// beyond [`Rotation::keep`] goes): a busy function writes START/END/REPORT lines for every
/// invocation, several MB a second, and an edge's disk must not fill with them.
#[derive(Debug)]
pub struct FileSink {
    dir: PathBuf,
    lock: Mutex<()>,
    rotation: Rotation,
}

/// When a log group's file is rotated, and how many rotated files are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Size at which the file is rotated.
    pub max_bytes: u64,
    /// Rotated files kept (`<file>.1` the newest); 0 keeps none.
    pub keep: usize,
}

impl Default for Rotation {
    /// 64 MiB per file, 4 rotated files: at most about 320 MiB per log group.
    fn default() -> Self {
        Rotation {
            max_bytes: 64 << 20,
            keep: 4,
        }
    }
}

impl FileSink {
    /// A sink writing under `dir` (created if missing).
    pub fn new(dir: impl Into<PathBuf>) -> io::Result<FileSink> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        Ok(FileSink {
            dir,
            lock: Mutex::new(()),
            rotation: Rotation::default(),
        })
    }

    /// The same sink, rotating its files as `rotation` says.
    pub fn with_rotation(self, rotation: Rotation) -> FileSink {
        FileSink { rotation, ..self }
    }

    /// The file that holds a log group's lines.
    pub fn path_for(&self, log_group: &str) -> PathBuf {
        let name: String = log_group
            .trim_start_matches('/')
            .chars()
            .map(|c| if c == '/' { '_' } else { c })
            .collect();
        self.dir.join(format!("{name}.log"))
    }

    /// Appends the batches, grouped into one write per log group (order kept within a group).
    fn append(&self, batches: &[&LogBatch]) -> io::Result<()> {
        let mut groups: HashMap<&str, Vec<u8>> = HashMap::new();
        let mut clock = Iso8601::default();
        for batch in batches {
            let buf = groups.entry(&batch.log_group).or_default();
            for line in &batch.lines {
                clock.write(buf, line.timestamp);
                buf.push(b'\t');
                buf.extend_from_slice(batch.log_stream.as_bytes());
                buf.push(b'\t');
                buf.extend_from_slice(line.message.as_bytes());
                buf.push(b'\n');
            }
        }
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let mut first_error = None;
        for (group, buf) in groups {
            let path = self.path_for(group);
            let written = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut file| {
                    file.write_all(&buf)?;
                    file.metadata()
                });
            let rotated = match written {
                Ok(meta) if meta.len() >= self.rotation.max_bytes => self.rotate(&path),
                Ok(_) => Ok(()),
                Err(e) => Err(e),
            };
            if let Err(e) = rotated {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// `<file>` becomes `<file>.1`, `<file>.1` becomes `<file>.2`, …; the oldest beyond
    /// `keep` is dropped. Called with the lock held.
    fn rotate(&self, path: &Path) -> io::Result<()> {
        let numbered = |n: usize| {
            let mut name = path.as_os_str().to_owned();
            name.push(format!(".{n}"));
            PathBuf::from(name)
        };
        if self.rotation.keep == 0 {
            return fs::remove_file(path);
        }
        for n in (1..self.rotation.keep).rev() {
            match fs::rename(numbered(n), numbered(n + 1)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        fs::rename(path, numbered(1))
    }
}

impl LogSink for FileSink {
    fn write(&self, batch: &LogBatch) {
        if let Err(e) = self.append(&[batch]) {
            tracing::warn!(error = %e, "cannot write function logs");
        }
    }

    fn write_all(&self, batches: &[Arc<LogBatch>]) {
        let refs: Vec<&LogBatch> = batches.iter().map(|b| &**b).collect();
        if let Err(e) = self.append(&refs) {
            tracing::warn!(error = %e, "cannot write function logs");
        }
    }
}

/// The sending side of the log channel, shared by every version of a runtime.
#[derive(Debug, Clone)]
pub(crate) struct LogDispatcher {
    tx: Option<mpsc::Sender<Arc<LogBatch>>>,
    dropped: Arc<AtomicU64>,
}

impl LogDispatcher {
    /// Starts the sink thread, or a dispatcher that discards when there is no sink.
    pub(crate) fn start(sink: Option<Arc<dyn LogSink>>, capacity: usize) -> io::Result<Self> {
        let dropped = Arc::new(AtomicU64::new(0));
        let Some(sink) = sink else {
            return Ok(LogDispatcher { tx: None, dropped });
        };
        let (tx, mut rx) = mpsc::channel::<Arc<LogBatch>>(capacity.max(1));
        std::thread::Builder::new()
            .name("ledge-function-logs".to_string())
            .spawn(move || {
                let mut round = Vec::with_capacity(64);
                while let Some(batch) = rx.blocking_recv() {
                    round.push(batch);
                    while round.len() < MAX_ROUND {
                        match rx.try_recv() {
                            Ok(batch) => round.push(batch),
                            Err(_) => break,
                        }
                    }
                    sink.write_all(&round);
                    round.clear();
                    std::thread::sleep(COALESCE);
                }
            })?;
        Ok(LogDispatcher {
            tx: Some(tx),
            dropped,
        })
    }

    /// Hands a batch to the sink without waiting.
    pub(crate) fn send(&self, batch: Arc<LogBatch>) {
        if let Some(tx) = &self.tx {
            if tx.try_send(batch).is_err() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Batches lost because the sink fell behind.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// `START RequestId: <id> Version: <version>`
pub(crate) fn start_line(request_id: &str, version: &str) -> String {
    let mut line = String::with_capacity(36 + request_id.len() + version.len());
    line.push_str("START RequestId: ");
    line.push_str(request_id);
    line.push_str(" Version: ");
    line.push_str(version);
    line
}

/// `END RequestId: <id>`
pub(crate) fn end_line(request_id: &str) -> String {
    let mut line = String::with_capacity(16 + request_id.len());
    line.push_str("END RequestId: ");
    line.push_str(request_id);
    line
}

/// How an invocation that broke its worker ended, for the REPORT line's `Status` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Breakdown<'a> {
    /// The timeout passed: `Status: timeout`.
    Timeout,
    /// The runtime died (a crash, out of memory): `Status: error`, with its error type.
    Error(&'a str),
}

/// Lambda's REPORT line, tab separated, with a trailing tab; after an invocation that broke
/// its worker, a `Status` field last (as Lambda writes it: `…\tMax Memory Used: 1201 MB\tStatus:
/// timeout`, with no tab after it).
///
/// Written with integer arithmetic: it is formatted for every invocation, and `{:.2}` on a
/// float was a third of the cost of an invocation's log lines.
pub(crate) fn report_line(
    request_id: &str,
    duration: Duration,
    memory_mb: u32,
    max_memory_used_mb: u32,
    init: Option<Duration>,
    breakdown: Option<Breakdown<'_>>,
) -> String {
    use std::fmt::Write as _;
    let billed = nanos(duration).div_ceil(1_000_000).max(1);
    let mut line = String::with_capacity(128 + request_id.len());
    line.push_str("REPORT RequestId: ");
    line.push_str(request_id);
    line.push_str("\tDuration: ");
    push_ms(&mut line, duration);
    // Writing to a String cannot fail.
    let _ = write!(
        line,
        " ms\tBilled Duration: {billed} ms\tMemory Size: {memory_mb} MB\tMax Memory Used: {max_memory_used_mb} MB\t"
    );
    if let Some(init) = init {
        line.push_str("Init Duration: ");
        push_ms(&mut line, init);
        line.push_str(" ms\t");
    }
    match breakdown {
        None => {}
        Some(Breakdown::Timeout) => line.push_str("Status: timeout"),
        Some(Breakdown::Error(error_type)) => {
            line.push_str("Status: error\tError Type: ");
            line.push_str(error_type);
        }
    }
    line
}

/// A duration in nanoseconds, as a `u64` (584 years): `u128` formats slower.
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Milliseconds with two decimals, rounded half up: `15.74`.
fn push_ms(out: &mut String, d: Duration) {
    use std::fmt::Write as _;
    let hundredths = nanos(d).saturating_add(5_000) / 10_000;
    let _ = write!(out, "{}.{:02}", hundredths / 100, hundredths % 100);
}

/// `<timestamp> <id> Task timed out after <s> seconds`
pub(crate) fn timeout_line(now: SystemTime, request_id: &str, timeout: Duration) -> String {
    format!(
        "{} {request_id} Task timed out after {:.2} seconds",
        iso8601(now),
        timeout.as_secs_f64()
    )
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`
pub fn iso8601(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Writes [`iso8601`] timestamps, formatting the date and time of day once per second.
#[derive(Default)]
struct Iso8601 {
    second: Option<u64>,
    prefix: String,
}

impl Iso8601 {
    fn write(&mut self, buf: &mut Vec<u8>, t: SystemTime) {
        let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs();
        if self.second != Some(secs) {
            let full = iso8601(t);
            self.prefix = full[..full.len() - 5].to_string(); // up to `:SS`, without `.mmmZ`
            self.second = Some(secs);
        }
        buf.extend_from_slice(self.prefix.as_bytes());
        let ms = since.subsec_millis();
        buf.extend_from_slice(&[
            b'.',
            b'0' + (ms / 100) as u8,
            b'0' + (ms / 10 % 10) as u8,
            b'0' + (ms % 10) as u8,
            b'Z',
        ]);
    }
}

/// A new log stream name, `YYYY/MM/DD/[<version>]<32 hex>`.
pub(crate) fn log_stream_name(version: &str) -> String {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        / 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}/{m:02}/{d:02}/[{version}]{}",
        uuid::Uuid::new_v4().simple()
    )
}

/// Days since 1970-01-01 to (year, month, day), after Howard Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_log_file_is_rotated_and_the_oldest_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let sink = FileSink::new(dir.path()).unwrap().with_rotation(Rotation {
            max_bytes: 1000,
            keep: 2,
        });
        let batch = |i: usize| LogBatch {
            log_group: "/aws/lambda/us-east-1.f".into(),
            log_stream: "s".into(),
            lines: vec![LogLine {
                timestamp: UNIX_EPOCH,
                message: format!("line {i:03} {}", "x".repeat(63)),
            }],
        };
        for i in 0..45 {
            sink.write(&batch(i)); // 100 bytes each: a rotation every 10 lines
        }
        let path = sink.path_for("/aws/lambda/us-east-1.f");
        let read = |suffix: &str| {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            std::fs::read_to_string(name)
        };
        let (current, newer, older) = (read(""), read(".1"), read(".2"));
        assert!(read(".3").is_err(), "only two rotated files are kept");
        // `<timestamp>\t<stream>\t` is 27 bytes; then the message.
        let first = |text: &io::Result<String>| text.as_ref().unwrap()[27..35].to_string();
        // The newest lines in the file, then .1, then .2 (lines 0-19 are gone).
        assert_eq!(first(&older), "line 020");
        assert_eq!(first(&newer), "line 030");
        assert_eq!(first(&current), "line 040");
        assert_eq!(older.unwrap().len(), 1000);
        assert_eq!(newer.unwrap().len(), 1000);
        assert_eq!(current.unwrap().lines().count(), 5);
    }

    #[test]
    fn timestamps_written_in_rounds_match_iso8601() {
        let mut clock = Iso8601::default();
        let mut buf = Vec::new();
        for ms in [0u64, 7, 999, 1_000, 61_042, 86_400_000] {
            let t = UNIX_EPOCH + Duration::from_millis(1_741_083_300_000 + ms);
            buf.clear();
            clock.write(&mut buf, t);
            assert_eq!(String::from_utf8_lossy(&buf), iso8601(t));
        }
    }

    #[test]
    fn timestamps_are_iso8601_utc_with_millis() {
        let t = UNIX_EPOCH + Duration::from_millis(1_741_083_300_123);
        assert_eq!(iso8601(t), "2025-03-04T10:15:00.123Z");
        assert_eq!(iso8601(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn tail_keeps_the_end_on_a_char_boundary() {
        let batch = LogBatch {
            log_group: Arc::from("/aws/lambda/f"),
            log_stream: Arc::from("s"),
            lines: ["START x", "héllo", "END x"]
                .iter()
                .map(|m| LogLine {
                    timestamp: UNIX_EPOCH,
                    message: m.to_string(),
                })
                .collect(),
        };
        assert_eq!(batch.tail(4096), "START x\nhéllo\nEND x\n");
        assert_eq!(batch.tail(6), "END x\n");
        assert_eq!(batch.tail(12), "éllo\nEND x\n");
        assert_eq!(batch.tail(11), "llo\nEND x\n", "never half a character");
    }

    #[test]
    fn report_line_matches_lambda() {
        let line = report_line(
            "r-1",
            Duration::from_micros(15_740),
            128,
            40,
            Some(Duration::from_micros(120_500)),
            None,
        );
        assert_eq!(
            line,
            "REPORT RequestId: r-1\tDuration: 15.74 ms\tBilled Duration: 16 ms\tMemory Size: 128 MB\tMax Memory Used: 40 MB\tInit Duration: 120.50 ms\t"
        );
        let warm = report_line("r-2", Duration::from_micros(300), 256, 50, None, None);
        assert!(warm.contains("\tDuration: 0.30 ms\t"), "{warm}");
        assert!(
            warm.ends_with("Billed Duration: 1 ms\tMemory Size: 256 MB\tMax Memory Used: 50 MB\t")
        );
        let rounded = |nanos: u64| {
            let line = report_line("r", Duration::from_nanos(nanos), 128, 1, None, None);
            line.split('\t').nth(1).unwrap_or_default().to_string()
        };
        assert_eq!(rounded(0), "Duration: 0.00 ms");
        assert_eq!(rounded(4_999), "Duration: 0.00 ms");
        assert_eq!(rounded(5_000), "Duration: 0.01 ms", "half rounds up");
        assert_eq!(rounded(1_999_994_999), "Duration: 1999.99 ms");
        assert_eq!(rounded(1_999_995_000), "Duration: 2000.00 ms");
        let billed = report_line("r", Duration::from_nanos(2_000_000_001), 128, 1, None, None);
        assert!(billed.contains("Billed Duration: 2001 ms"), "{billed}");
        // As a timed-out invocation's REPORT reads in CloudWatch (2026).
        let timeout = report_line(
            "r-3",
            Duration::from_secs(180),
            1280,
            1201,
            None,
            Some(Breakdown::Timeout),
        );
        assert_eq!(
            timeout,
            "REPORT RequestId: r-3\tDuration: 180000.00 ms\tBilled Duration: 180000 ms\tMemory Size: 1280 MB\tMax Memory Used: 1201 MB\tStatus: timeout"
        );
        let crashed = report_line(
            "r-4",
            Duration::from_millis(5),
            128,
            128,
            Some(Duration::from_millis(30)),
            Some(Breakdown::Error("Runtime.OutOfMemory")),
        );
        assert!(
            crashed.ends_with(
                "\tMax Memory Used: 128 MB\tInit Duration: 30.00 ms\tStatus: error\tError Type: Runtime.OutOfMemory"
            ),
            "{crashed}"
        );
    }
}
