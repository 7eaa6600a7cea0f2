//! A PID namespace per worker, so that killing a worker kills everything it started.
//!
//! # Design
//! A process group is not enough: a function may fork a child that calls `setsid` (or
//! double-forks) and keeps running after its worker was killed. Without a cgroup to kill as a
//! whole (cgroup v1 hosts, no delegation), every worker starts in a PID namespace of its own,
//! through unshare(1) from util-linux (the crate forbids `unsafe`, so no `unshare(2)` in a
//! `pre_exec`):
//!
//! ```text
//! unshare --pid --fork --kill-child [--setuid U --setgid G] -- /bin/sh -c 'ulimit …; INIT' \
//!     ledge-init <interpreter> <bootstrap>
//! ```
//!
//! The shell is the namespace's init (PID 1): when it dies the kernel kills every process in
//! the namespace, whatever session or process group they moved to. ledge kills the worker's
//! process group (unshare, the shell and the interpreter, started in one group), so the init
//! dies with it; a worker that exits on its own (ledge went away and closed its socket) ends
//! the shell too. (`--kill-child` is only a backstop: the kernel forgets it when unshare's child
//! changes its uid.) The shell stays in between rather than the interpreter being PID 1 itself:
//! PID 1 ignores signals it sends itself (`process.kill(process.pid, 'SIGSEGV')` would be
//! ignored), and the shell reaps orphans while it waits.
//!
//! unshare runs as root (creating a namespace needs `CAP_SYS_ADMIN`) and drops to the
//! version's uid and gid (`--setgid` also drops supplementary groups) before the shell starts;
//! the shell sets the worker's rlimits with `ulimit` (lowering one's own limits needs no
//! privilege), which saves prlimit(1)'s exec.
//!
//! # Limitations
//! - The shell exits with 128+N when the interpreter dies of signal N, so ledge reports an
//!   interpreter that called `exit(137)` itself as killed by signal 9.
//! - Inside the namespace the interpreter is PID 2 (`process.pid`, `os.getpid()`); `/proc` is
//!   the host's, so `/proc/self` still names the host PID.
//! - unshare and the shell hold the worker's stdout and stderr too: a worker that closes its own
//!   is not noticed and goes on serving (its console output travels in the reply frames).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::limits::WorkerLimits;

/// The namespace's init, after the limits (see [`WorkerLimits::ulimit_script`]): keeps its own
/// stderr quiet (dash reports a child's fatal signal there, which would land in the function's
/// logs), waits for the line that starts the worker (a launch may be prepared ahead; the end of
/// its stdin means ledge no longer wants it), runs the command as its child with stdin closed
/// and exits with its status.
const INIT: &str = r#"read -r go || exit 0; "$@" 2>&3 3>&- </dev/null; exit $?"#;

/// The shell that serves as init.
const SHELL: &str = "/bin/sh";

/// How to start workers in PID namespaces on this host.
#[derive(Debug, Clone)]
pub(crate) struct PidNamespaces {
    unshare: PathBuf,
}

impl PidNamespaces {
    /// unshare(1), if installed and allowed to create a PID namespace here (tried once: a
    /// container without `CAP_SYS_ADMIN` refuses it).
    pub(crate) fn detect() -> Option<PidNamespaces> {
        let unshare = ["/usr/bin/unshare", "/bin/unshare", "/usr/local/bin/unshare"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())?;
        if !Path::new(SHELL).is_file() {
            return None;
        }
        let works = Command::new(&unshare)
            .args([
                "--pid",
                "--fork",
                "--kill-child",
                "--",
                SHELL,
                "-c",
                "exit 0",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        works.then_some(PidNamespaces { unshare })
    }

    /// The program to run and the arguments that come before the worker's own command line.
    pub(crate) fn prefix(
        &self,
        user: Option<(u32, u32)>,
        limits: &WorkerLimits,
    ) -> (PathBuf, Vec<String>) {
        let mut args: Vec<String> = ["--pid", "--fork", "--kill-child"]
            .map(String::from)
            .to_vec();
        if let Some((uid, gid)) = user {
            args.push(format!("--setuid={uid}"));
            args.push(format!("--setgid={gid}"));
        }
        let script = format!(
            "exec 3>&2 2>/dev/null; {} || exit 125; {INIT}",
            limits.ulimit_script()
        );
        args.extend([
            "--".to_string(),
            SHELL.to_string(),
            "-c".to_string(),
            script,
        ]);
        args.push("ledge-init".to_string());
        (self.unshare.clone(), args)
    }
}

/// Describes how a namespaced worker ended: its init reports a fatal signal N of the
/// interpreter as exit status 128+N.
pub(crate) fn describe_exit(status: Option<std::process::ExitStatus>) -> String {
    let code = status.and_then(|s| s.code());
    match code {
        Some(code @ 129..=192) => {
            use std::os::unix::process::ExitStatusExt;
            crate::limits::describe_exit(Some(std::process::ExitStatus::from_raw(code - 128)))
        }
        _ => crate::limits::describe_exit(status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn a_signal_relayed_by_the_init_reads_as_the_signal() {
        let exited = |code: i32| Some(std::process::ExitStatus::from_raw(code << 8));
        assert_eq!(describe_exit(exited(139)), "signal: segmentation fault");
        assert_eq!(describe_exit(exited(137)), "signal: killed");
        assert_eq!(describe_exit(exited(3)), "exit status 3");
        assert_eq!(describe_exit(exited(200)), "exit status 200");
        assert_eq!(
            describe_exit(Some(std::process::ExitStatus::from_raw(9))),
            "signal: killed"
        );
    }

    #[test]
    fn the_prefix_drops_to_the_version_user_before_the_init() {
        let ns = PidNamespaces {
            unshare: PathBuf::from("/usr/bin/unshare"),
        };
        let limits = WorkerLimits::new(None, Some(64), 1 << 20);
        let (program, args) = ns.prefix(Some((200_001, 200_001)), &limits);
        assert_eq!(program, PathBuf::from("/usr/bin/unshare"));
        let at = |a: &str| args.iter().position(|x| x == a).unwrap();
        assert!(at("--setuid=200001") < at("--"));
        assert!(at("--setgid=200001") < at("--"));
        assert_eq!(args.last().map(String::as_str), Some("ledge-init"));
        assert!(!ns
            .prefix(None, &limits)
            .1
            .iter()
            .any(|a| a.starts_with("--set")));
    }
}
