//! What `/proc` tells about a worker's processes.

use std::collections::HashSet;

/// The children of a process, as far as the kernel lists them (those its first thread
/// started: enough for the single-threaded launchers a worker starts through).
pub(crate) fn children(pid: u32) -> Vec<u32> {
    children_of_task(pid, pid)
}

fn children_of_task(pid: u32, tid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/children"))
        .map(|list| {
            list.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The children every thread of a process started.
fn all_children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|t| t.ok()?.file_name().to_str()?.parse().ok())
        .flat_map(|tid| children_of_task(pid, tid))
        .collect()
}

/// The highest peak resident set (`VmHWM`, KiB) among a process and its descendants: what a
/// worker that is about to be killed has used, interpreter included (in a PID namespace it is
/// a grandchild of the process ledge started). `None` when none of them can be read.
pub(crate) fn peak_rss_kib(pid: u32) -> Option<u32> {
    let mut peak = None;
    let mut seen = HashSet::new();
    let mut todo = vec![pid];
    // Bounded (it runs on an edge thread): a fork bomb's tree is not worth walking to the end
    // for a log line; the interpreter is within the first three levels.
    while let Some(p) = todo.pop() {
        if seen.len() >= 64 || !seen.insert(p) {
            continue;
        }
        if let Some(kib) = vm_hwm_kib(p) {
            peak = Some(peak.map_or(kib, |k: u32| k.max(kib)));
        }
        todo.extend(all_children(p));
    }
    peak
}

fn vm_hwm_kib(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    let kib = line.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()?;
    Some(u32::try_from(kib).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_tree_reports_its_largest_peak() {
        // A grandchild (behind a shell that does not exec it) that touches 64 MiB: the peak
        // comes from it, not from the shell that was started.
        let script = "python3 -c \"import time; b=bytearray(64<<20); b[::4096]=b'x'*(len(b)//4096); print(1, flush=True); time.sleep(30)\"; true";
        let mut child = std::process::Command::new("sh")
            .args(["-c", script])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sh");
        let mut out = child.stdout.take().expect("stdout");
        let mut byte = [0u8; 1];
        std::io::Read::read_exact(&mut out, &mut byte).expect("child ready");
        let peak = peak_rss_kib(child.id());
        let shell_alone = vm_hwm_kib(child.id());
        for grandchild in children(child.id()) {
            let _ = std::process::Command::new("kill")
                .arg(grandchild.to_string())
                .status();
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(peak.expect("readable") >= 64 * 1024, "{peak:?}");
        assert!(
            shell_alone.expect("readable") < 64 * 1024,
            "{shell_alone:?}"
        );
        assert_eq!(peak_rss_kib(u32::MAX), None);
    }
}
