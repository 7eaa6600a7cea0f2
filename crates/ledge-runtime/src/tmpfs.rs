//! Each loaded version's `/tmp` as a tmpfs of its own, capped in size.
//!
//! # Design
//! Lambda gives every function 512 MB of ephemeral storage, a cap on the whole `/tmp`, not on
//! one file. When ledge runs as root it mounts a tmpfs with `size=` on each version's tmp
//! directory (owned by the version's uid, mode 0700, `nosuid,nodev`), so a write past the cap
//! fails with `ENOSPC` however the data is split into files. The mount is shared by all handles
//! of the same version in one [`Runtime`](crate::Runtime) and detached when the last one goes
//! away, or when the runtime is dropped. A ledge killed before it could unmount leaves its
//! mounts behind; the next runtime on the same data directory detaches every mount under its
//! tmp root before it mounts anything.
//!
//! Unmounting is lazy (`MNT_DETACH`): a worker that is being killed may still hold a file open,
//! and the mount must leave the tree now rather than fail with `EBUSY`; the kernel frees the
//! tmpfs when its last file is closed.
//!
//! # Limitations
//! Without root (or where mounting is refused, e.g. a container without `CAP_SYS_ADMIN`), the
//! cap falls back to `RLIMIT_FSIZE`: per file, not per directory.

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use rustix::mount::{MountFlags, UnmountFlags};

/// A tmpfs mounted on one version's tmp directory; detached when dropped.
#[derive(Debug)]
pub(crate) struct TmpMount {
    dir: PathBuf,
    mounted: AtomicBool,
}

impl TmpMount {
    /// Mounts a tmpfs of `size_bytes` on `dir`, owned by `owner` (uid, gid) or by root.
    fn mount(dir: &Path, size_bytes: u64, owner: Option<(u32, u32)>) -> io::Result<TmpMount> {
        let (uid, gid) = owner.unwrap_or((0, 0));
        let data = CString::new(format!("size={size_bytes},mode=0700,uid={uid},gid={gid}"))
            .map_err(io::Error::other)?;
        rustix::mount::mount(
            "ledge-tmp",
            dir,
            "tmpfs",
            MountFlags::NOSUID | MountFlags::NODEV,
            data.as_c_str(),
        )?;
        Ok(TmpMount {
            dir: dir.to_path_buf(),
            mounted: AtomicBool::new(true),
        })
    }

    /// Detaches the mount, once.
    fn unmount(&self) {
        if !self.mounted.swap(false, Ordering::AcqRel) {
            return;
        }
        if let Err(e) = rustix::mount::unmount(&self.dir, UnmountFlags::DETACH) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot unmount a function's /tmp");
        }
    }
}

impl Drop for TmpMount {
    fn drop(&mut self) {
        self.unmount();
    }
}

/// The tmp mounts of one runtime, by directory.
#[derive(Debug)]
pub(crate) struct TmpMounts {
    size_bytes: u64,
    /// False when ledge cannot mount (not root): versions then get a plain directory.
    enabled: AtomicBool,
    live: Mutex<HashMap<PathBuf, Weak<TmpMount>>>,
}

impl TmpMounts {
    /// Mounts of `size_bytes` under `root`; detaches whatever an earlier ledge left mounted
    /// there. `enabled` is false when this process cannot mount.
    pub(crate) fn new(root: &Path, size_bytes: u64, enabled: bool) -> TmpMounts {
        if enabled {
            let stale = sweep_stale(root);
            if stale > 0 {
                tracing::info!(
                    count = stale,
                    "detached /tmp mounts left by an earlier ledge"
                );
            }
        } else {
            tracing::warn!(
                "not running as root: a function's /tmp is capped per file (RLIMIT_FSIZE), not per directory"
            );
        }
        TmpMounts {
            size_bytes,
            enabled: AtomicBool::new(enabled),
            live: Mutex::new(HashMap::new()),
        }
    }

    /// The mount on `dir`, mounting it if no live handle of this version has one. `None` when
    /// mounting is off or failed (the directory is then used as it is).
    pub(crate) fn acquire(&self, dir: &Path, owner: Option<(u32, u32)>) -> Option<Arc<TmpMount>> {
        if !self.enabled.load(Ordering::Relaxed) {
            return None;
        }
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        live.retain(|_, m| m.strong_count() > 0);
        if let Some(mount) = live.get(dir).and_then(Weak::upgrade) {
            return Some(mount);
        }
        match TmpMount::mount(dir, self.size_bytes, owner) {
            Ok(mount) => {
                let mount = Arc::new(mount);
                live.insert(dir.to_path_buf(), Arc::downgrade(&mount));
                Some(mount)
            }
            Err(e) => {
                // One warning: a refused mount (no CAP_SYS_ADMIN) is refused every time.
                self.enabled.store(false, Ordering::Relaxed);
                tracing::warn!(
                    dir = %dir.display(),
                    error = %e,
                    "cannot mount a tmpfs for a function's /tmp; capping it per file (RLIMIT_FSIZE) instead"
                );
                None
            }
        }
    }

    /// Detaches every mount still live (the runtime is going away).
    pub(crate) fn unmount_all(&self) {
        let live = std::mem::take(&mut *self.live.lock().unwrap_or_else(PoisonError::into_inner));
        for mount in live.values().filter_map(Weak::upgrade) {
            mount.unmount();
        }
    }
}

/// Detaches every mount at or below `root` (deepest first); returns how many.
fn sweep_stale(root: &Path) -> usize {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return 0;
    };
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let mut found = mounts_below(&info, &root);
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found
        .iter()
        .filter(|dir| rustix::mount::unmount(dir.as_path(), UnmountFlags::DETACH).is_ok())
        .count()
}

/// Mount points below `root` (not `root` itself) listed in a `/proc/self/mountinfo` text.
fn mounts_below(mountinfo: &str, root: &Path) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape(field)))
        .filter(|point| point != root && point.starts_with(root))
        .collect()
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\011`, `\012`, `\134`).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            std::str::from_utf8(d)
                .ok()
                .and_then(|s| u8::from_str_radix(s, 8).ok())
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_below_the_root_are_found_and_unescaped() {
        let info = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
90 22 0:50 / /var/lib/ledge\\040a/runtime/tmp/fn-1 rw,nosuid,nodev - tmpfs ledge-tmp rw,size=1024k
91 22 0:51 / /var/lib/ledge\\040a/runtime/tmp rw - tmpfs x rw
92 22 0:52 / /var/lib/ledge\\040a/runtime/tmpx/fn-1 rw - tmpfs x rw
";
        let root = Path::new("/var/lib/ledge a/runtime/tmp");
        assert_eq!(
            mounts_below(info, root),
            vec![PathBuf::from("/var/lib/ledge a/runtime/tmp/fn-1")]
        );
        assert_eq!(unescape("a\\134b\\011"), "a\\b\t");
        assert_eq!(unescape("trailing\\04"), "trailing\\04");
    }
}
