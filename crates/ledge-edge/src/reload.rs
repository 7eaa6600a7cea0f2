//! Following a snapshot file: reload on SIGHUP and when the file changes (polled), swap in
//! only valid, newer snapshots, and log why any other is refused.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ledge_model::ConfigSnapshot;
use sha2::{Digest, Sha256};

use crate::pipeline::Edge;
use crate::store::InstallError;
use crate::triggers::Triggers;

/// What a file's content was last time it was looked at.
#[derive(Debug, Default, PartialEq, Eq, Clone)]
struct Seen {
    len: u64,
    modified: Option<std::time::SystemTime>,
    digest: [u8; 32],
}

/// Why a reload did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The snapshot was refused.
    #[error(transparent)]
    Install(#[from] InstallError),
}

/// Reads and parses a snapshot file.
pub fn read_snapshot(path: &Path) -> Result<ConfigSnapshot, ReloadError> {
    let bytes = std::fs::read(path).map_err(|source| ReloadError::Read {
        path: path.display().to_string(),
        source,
    })?;
    ConfigSnapshot::from_json(&bytes).map_err(|e| ReloadError::Install(InstallError::Invalid(e)))
}

fn look(path: &Path) -> Option<Seen> {
    let meta = std::fs::metadata(path).ok()?;
    let bytes = std::fs::read(path).ok()?;
    Some(Seen {
        len: meta.len(),
        modified: meta.modified().ok(),
        digest: Sha256::digest(&bytes).into(),
    })
}

/// Work done around a snapshot swap by whoever needs to get ready for it (the Lambda@Edge
/// triggers load and prewarm the function versions a snapshot names before it is served).
pub trait SnapshotHook: Send + Sync + 'static {
    /// Called with a parsed snapshot before it is installed; the swap waits for it.
    fn before_install(&self, next: &ConfigSnapshot)
        -> impl std::future::Future<Output = ()> + Send;
    /// Called after a snapshot was installed, with the one now served.
    fn after_install(&self, current: &ConfigSnapshot);
}

/// No preparation at all.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHook;

impl SnapshotHook for NoHook {
    async fn before_install(&self, _next: &ConfigSnapshot) {}
    fn after_install(&self, _current: &ConfigSnapshot) {}
}

/// Watches `path` until the task is dropped: every `interval` (cheap metadata check, then a
/// content hash) and on every SIGHUP.
pub async fn follow_file<T: Triggers>(path: PathBuf, edge: Arc<Edge<T>>, interval: Duration) {
    follow_file_with(path, edge, interval, NoHook).await;
}

/// [`follow_file`], running `hook` around every swap.
pub async fn follow_file_with<T: Triggers, H: SnapshotHook>(
    path: PathBuf,
    edge: Arc<Edge<T>>,
    interval: Duration,
    hook: H,
) {
    let mut seen = look(&path).unwrap_or_default();
    if read_snapshot(&path).is_ok_and(|s| s.version > edge.store().version()) {
        // The file changed between the first load and this look: the first tick reloads it.
        seen = Seen::default();
    }
    let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; file polling only");
            None
        }
    };
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let forced = tokio::select! {
            _ = tick.tick() => false,
            Some(()) = async {
                match hangup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            } => true,
        };
        if !forced {
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if meta.len() == seen.len && meta.modified().ok() == seen.modified {
                continue;
            }
            let Some(now) = look(&path) else { continue };
            if now.digest == seen.digest {
                seen = now;
                continue;
            }
            seen = now;
        } else if let Some(now) = look(&path) {
            seen = now;
        }
        if let Ok(next) = read_snapshot(&path) {
            if next.version > edge.store().version() {
                hook.before_install(&next).await;
            }
        }
        reload(&path, &edge, forced);
        hook.after_install(&edge.store().load().source);
    }
}

/// One reload attempt, logged either way.
pub fn reload<T: Triggers>(path: &Path, edge: &Edge<T>, forced: bool) {
    let trigger = if forced { "SIGHUP" } else { "file change" };
    match read_snapshot(path).and_then(|s| edge.install(s).map_err(ReloadError::from)) {
        Ok(version) => tracing::info!(version, trigger, "config snapshot installed"),
        Err(ReloadError::Install(InstallError::NotNewer { offered, current })) if forced => {
            tracing::info!(offered, current, trigger, "config snapshot unchanged")
        }
        Err(e) => {
            tracing::warn!(error = %e, trigger, path = %path.display(), "config snapshot refused; still serving the old one")
        }
    }
}
