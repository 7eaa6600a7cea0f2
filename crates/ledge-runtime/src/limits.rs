//! Resource limits and privilege separation for worker processes.
//!
//! # Design
//! Memory is bounded twice: the interpreter's own heap limit (`--max-old-space-size` for
//! Node.js, whose V8 reserves far more address space than it uses and so cannot live under
//! `RLIMIT_AS`) and `RLIMIT_AS` for Python, applied with `prlimit` on the child right after it
//! starts. Every worker also gets `RLIMIT_FSIZE` (the 512 MB `/tmp` of Lambda@Edge, per file),
//! `RLIMIT_NOFILE` 1024 (Lambda's), no core dumps, and, when it runs as its own unprivileged
//! uid, `RLIMIT_NPROC` against fork bombs.
//!
//! # Limitations
//! cgroup v2 memory limits are not used yet: the `/tmp` cap is per file, not per directory,
//! and Node.js memory outside the V8 heap (buffers) is not capped.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use rustix::process::{prlimit, Pid, Resource, Rlimit, Signal};

use crate::config::Language;

/// Address space granted to a Python worker beyond its memory size (the interpreter's own
/// mappings, shared libraries).
const PYTHON_AS_OVERHEAD_MB: u64 = 96;
/// `/tmp` of Lambda@Edge: 512 MB.
const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;
/// Lambda's file-descriptor limit.
const MAX_OPEN_FILES: u64 = 1024;
/// Processes (and threads) one unprivileged version may run at once.
const MAX_PROCESSES: u64 = 1024;

/// The V8 heap size for a Node.js worker of `memory_mb`.
pub(crate) fn node_heap_mb(memory_mb: u32) -> u32 {
    (memory_mb * 85 / 100).max(32)
}

/// True when this process runs as root and may hand workers another uid.
pub(crate) fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Applies the limits to a freshly started worker.
pub(crate) fn apply(pid: u32, language: Language, memory_mb: u32, unprivileged: bool) {
    let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return;
    };
    let set = |resource: Resource, limit: u64| {
        let limit = Rlimit {
            current: Some(limit),
            maximum: Some(limit),
        };
        if let Err(e) = prlimit(Some(pid), resource, limit) {
            tracing::debug!(?resource, error = %e, "cannot set worker rlimit");
        }
    };
    set(Resource::Core, 0);
    set(Resource::Fsize, MAX_FILE_BYTES);
    set(Resource::Nofile, MAX_OPEN_FILES);
    if unprivileged {
        set(Resource::Nproc, MAX_PROCESSES);
    }
    if language == Language::Python {
        set(
            Resource::As,
            (u64::from(memory_mb) + PYTHON_AS_OVERHEAD_MB) * 1024 * 1024,
        );
    }
}

/// Kills a worker's whole process group (the worker and anything it started).
pub(crate) fn kill_group(pid: u32) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = rustix::process::kill_process_group(pid, Signal::KILL);
    }
}

/// True when a user other than the owner can reach and execute `path`: every ancestor
/// directory is searchable by others and the file is executable by others.
pub(crate) fn executable_by_others(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    if meta.permissions().mode() & 0o001 == 0 {
        return false;
    }
    let mut dir = path.parent();
    while let Some(d) = dir {
        if d.as_os_str().is_empty() {
            break;
        }
        match std::fs::metadata(d) {
            Ok(m) if m.mode() & 0o001 != 0 => {}
            _ => return false,
        }
        dir = d.parent();
    }
    true
}

/// Describes how a worker ended, as Lambda does (Go's `ProcessState` wording).
pub(crate) fn describe_exit(status: Option<std::process::ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    let Some(status) = status else {
        return "signal: killed".to_string();
    };
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    match status.signal() {
        Some(9) => "signal: killed".to_string(),
        Some(6) => "signal: aborted".to_string(),
        Some(11) => "signal: segmentation fault".to_string(),
        Some(15) => "signal: terminated".to_string(),
        Some(7) => "signal: bus error".to_string(),
        Some(n) => format!("signal: {n}"),
        None => "unknown".to_string(),
    }
}
