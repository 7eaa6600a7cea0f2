//! cgroup v2 memory limits for workers, where the host delegates a cgroup to ledge.
//!
//! # Design
//! ledge never reorganises the host's cgroups. It uses a parent cgroup only when the memory
//! controller is already enabled for its children (`memory` in `cgroup.subtree_control`):
//! the one configured in [`RuntimeConfig::cgroup_parent`](crate::RuntimeConfig), or else its
//! own cgroup when systemd (`Delegate=yes`) or a container runtime set it up so. Each worker
//! gets a child `ledge-<pid>-w<id>` with `memory.max` = its memory size and no swap; the worker is
//! moved in right after it starts, and `memory.events` tells an OOM kill from a crash.
//! Elsewhere (cgroup v1, no delegation) workers fall back to rlimits and heap limits.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

const MOUNT: &str = "/sys/fs/cgroup";

/// A parent cgroup whose children may have memory limits.
#[derive(Debug, Clone)]
pub(crate) struct CgroupParent {
    dir: PathBuf,
}

impl CgroupParent {
    /// The configured parent, or this process's own cgroup, if it delegates memory.
    pub(crate) fn detect(configured: Option<&Path>) -> Option<CgroupParent> {
        let dir = match configured {
            Some(dir) => dir.to_path_buf(),
            None => {
                let own = fs::read_to_string("/proc/self/cgroup").ok()?;
                let rel = own.lines().find_map(|l| l.strip_prefix("0::"))?;
                Path::new(MOUNT).join(rel.trim_start_matches('/'))
            }
        };
        let controllers = fs::read_to_string(dir.join("cgroup.subtree_control")).ok()?;
        if !controllers.split_whitespace().any(|c| c == "memory") {
            return None;
        }
        Some(CgroupParent { dir })
    }

    /// Creates the cgroup of one worker with its memory limit.
    pub(crate) fn worker(&self, id: u64, memory_mb: u32) -> io::Result<WorkerCgroup> {
        let dir = self.dir.join(format!("{}{id}", prefix()));
        fs::create_dir(&dir)?;
        let group = WorkerCgroup { dir };
        fs::write(
            group.dir.join("memory.max"),
            (u64::from(memory_mb) * 1024 * 1024).to_string(),
        )?;
        // Swap would let a function exceed its memory size unnoticed.
        let _ = fs::write(group.dir.join("memory.swap.max"), "0");
        Ok(group)
    }

    /// Removes this process's worker cgroups that are empty by now (a cgroup cannot be removed
    /// until its killed processes are reaped, which may be after the worker was dropped).
    pub(crate) fn sweep(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        let prefix = prefix();
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = fs::remove_dir(entry.path());
            }
        }
    }
}

/// Names of this process's worker cgroups start with this.
fn prefix() -> String {
    format!("ledge-{}-w", std::process::id())
}

/// One worker's cgroup; removed when dropped (after the worker is gone).
#[derive(Debug)]
pub(crate) struct WorkerCgroup {
    dir: PathBuf,
}

impl WorkerCgroup {
    /// Moves a process into the cgroup.
    pub(crate) fn add(&self, pid: u32) -> io::Result<()> {
        fs::write(self.dir.join("cgroup.procs"), pid.to_string())
    }

    /// Changes the memory limit (a spare taking on a function's memory size).
    pub(crate) fn set_memory(&self, memory_mb: u32) -> io::Result<()> {
        fs::write(
            self.dir.join("memory.max"),
            (u64::from(memory_mb) * 1024 * 1024).to_string(),
        )
    }

    /// True when the kernel's OOM killer acted in this cgroup.
    pub(crate) fn oom_killed(&self) -> bool {
        fs::read_to_string(self.dir.join("memory.events"))
            .map(|events| {
                events.lines().any(|l| {
                    l.strip_prefix("oom_kill ")
                        .and_then(|n| n.trim().parse::<u64>().ok())
                        .is_some_and(|n| n > 0)
                })
            })
            .unwrap_or(false)
    }
}

impl Drop for WorkerCgroup {
    fn drop(&mut self) {
        // Fails while processes remain; the kill that precedes the drop makes that rare.
        let _ = fs::remove_dir(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parent_without_memory_delegation_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("cgroup.subtree_control"), "cpu io\n").unwrap();
        assert!(CgroupParent::detect(Some(dir.path())).is_none());
        fs::write(
            dir.path().join("cgroup.subtree_control"),
            "cpu memory pids\n",
        )
        .unwrap();
        let parent = CgroupParent::detect(Some(dir.path())).unwrap();
        // A plain directory stands in for cgroupfs: the files are written as the kernel expects.
        let worker = parent.worker(7, 128).unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join(format!("{}7/memory.max", prefix()))).unwrap(),
            "134217728"
        );
        assert!(!worker.oom_killed());
        fs::write(
            dir.path().join(format!("{}7/memory.events", prefix())),
            "oom 1\noom_kill 1\n",
        )
        .unwrap();
        assert!(worker.oom_killed());
    }
}
