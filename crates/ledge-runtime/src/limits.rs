//! Resource limits and privilege separation for worker processes.
//!
//! # Design
//! Memory is bounded twice: the interpreter's own heap limit (`--max-old-space-size` for
//! Node.js, whose V8 reserves far more address space than it uses and so cannot live under
//! `RLIMIT_AS`) and `RLIMIT_AS` for Python. A worker in a PID namespace gets its limits from
//! the shell that is the namespace's init (`ulimit`, see [`pidns`](crate::pidns)); otherwise a
//! worker that runs as its own uid gets them from prlimit(1), which it runs as before exec'ing
//! the interpreter (setting another user's limits would need CAP_SYS_RESOURCE), and a worker
//! of ledge's own user by `prlimit(2)` right after it starts. Every worker also gets `RLIMIT_FSIZE` (the size of its `/tmp`: the whole
//! cap where `/tmp` cannot be a tmpfs of its own, see [`tmpfs`](crate::tmpfs)),
//! `RLIMIT_NOFILE` 1024 (Lambda's), no core dumps, and, when it runs as its own unprivileged
//! uid, `RLIMIT_NPROC` against fork bombs.
//!
//! # Limitations
//! Without a delegated cgroup v2, Node.js memory outside the V8 heap (buffers) is not capped.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use rustix::process::{prlimit, Pid, Resource, Rlimit, Signal};

/// Address space granted to a Python worker beyond its memory size (the interpreter's own
/// mappings, shared libraries).
const PYTHON_AS_OVERHEAD_MB: u64 = 96;
/// Lambda's file-descriptor limit.
const MAX_OPEN_FILES: u64 = 1024;
/// The V8 heap size for a Node.js worker of `memory_mb`.
pub(crate) fn node_heap_mb(memory_mb: u32) -> u32 {
    (memory_mb * 85 / 100).max(32)
}

/// The address-space limit of a Python worker of `memory_mb`, in bytes.
pub(crate) fn python_address_space(memory_mb: u32) -> u64 {
    (u64::from(memory_mb) + PYTHON_AS_OVERHEAD_MB) * 1024 * 1024
}

/// True when this process runs as root and may hand workers another uid.
pub(crate) fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The rlimits of one worker.
#[derive(Debug, Clone)]
pub(crate) struct WorkerLimits {
    limits: Vec<(Resource, &'static str, u64)>,
}

impl WorkerLimits {
    /// The limits for a worker; `address_space` is Python's `RLIMIT_AS` (none for a spare,
    /// which sets its own once it knows its memory size), `max_processes` only applies to
    /// workers with a uid of their own (the kernel ignores it for root), `max_file_bytes` is
    /// the size of `/tmp`.
    pub(crate) fn new(
        address_space: Option<u64>,
        max_processes: Option<u64>,
        max_file_bytes: u64,
    ) -> Self {
        let mut limits = vec![
            (Resource::Core, "core", 0),
            (Resource::Fsize, "fsize", max_file_bytes),
            (Resource::Nofile, "nofile", MAX_OPEN_FILES),
        ];
        if let Some(n) = max_processes {
            limits.push((Resource::Nproc, "nproc", n));
        }
        if let Some(bytes) = address_space {
            limits.push((Resource::As, "as", bytes));
        }
        WorkerLimits { limits }
    }

    /// Arguments for prlimit(1), which sets them on itself and then execs the interpreter:
    /// the way to limit a worker that runs as another uid, since changing another user's
    /// limits needs CAP_SYS_RESOURCE, which containers often drop.
    pub(crate) fn prlimit_args(&self) -> Vec<String> {
        let mut args: Vec<String> = self
            .limits
            .iter()
            .map(|(_, name, n)| format!("--{name}={n}:{n}"))
            .collect();
        args.push("--".to_string());
        args
    }

    /// The limits as `ulimit` commands joined by `&&`, for the shell that starts a worker in a
    /// PID namespace. Sizes are in the units POSIX shells use: 512-byte blocks for `-c` and
    /// `-f`, KiB for `-v`; dash names the process limit `-p`, bash `-u`.
    pub(crate) fn ulimit_script(&self) -> String {
        self.limits
            .iter()
            .map(|(resource, _, n)| match resource {
                Resource::Core => format!("ulimit -c {}", n / 512),
                Resource::Fsize => format!("ulimit -f {}", n / 512),
                Resource::Nofile => format!("ulimit -n {n}"),
                Resource::Nproc => format!("{{ ulimit -u {n} || ulimit -p {n}; }}"),
                Resource::As => format!("ulimit -v {}", n / 1024),
                _ => "true".to_string(),
            })
            .collect::<Vec<_>>()
            .join(" && ")
    }

    /// Applies the limits to a running process of the same user (`prlimit(2)`).
    pub(crate) fn apply(&self, pid: u32) {
        let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
            return;
        };
        for (resource, _, n) in &self.limits {
            let limit = Rlimit {
                current: Some(*n),
                maximum: Some(*n),
            };
            if let Err(e) = prlimit(Some(pid), *resource, limit) {
                tracing::debug!(?resource, error = %e, "cannot set worker rlimit");
            }
        }
    }
}

/// The prlimit(1) tool, if installed.
pub(crate) fn find_prlimit_tool() -> Option<std::path::PathBuf> {
    ["/usr/bin/prlimit", "/bin/prlimit", "/usr/local/bin/prlimit"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| executable_by_others(p))
}

/// Kills a worker's whole process group (the worker and anything it started). A process that
/// was being forked while the signal went out escapes it, so the kill is repeated a few times
/// (from a task, when there is a runtime) until the group is gone.
pub(crate) fn kill_group(pid: u32) {
    let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return;
    };
    if rustix::process::kill_process_group(pid, Signal::KILL).is_err() {
        return;
    }
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            for delay in [5, 20, 50, 100, 200] {
                tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
                if rustix::process::kill_process_group(pid, Signal::KILL).is_err() {
                    return;
                }
            }
        });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shell_sets_the_same_limits_as_prlimit() {
        let limits = WorkerLimits::new(Some(300 << 20), Some(77), 5 << 20);
        let script = format!("{} && cat /proc/self/limits", limits.ulimit_script());
        let out = std::process::Command::new("/bin/sh")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let limit = |name: &str| {
            text.lines()
                .find(|l| l.starts_with(name))
                .map(|l| l.split_whitespace().rev().nth(1).unwrap().to_string())
                .unwrap()
        };
        assert_eq!(limit("Max file size"), (5u64 << 20).to_string());
        assert_eq!(limit("Max address space"), (300u64 << 20).to_string());
        assert_eq!(limit("Max open files"), "1024");
        assert_eq!(limit("Max processes"), "77");
        assert_eq!(limit("Max core file size"), "0");
    }
}
