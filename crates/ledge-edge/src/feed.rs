//! Following the control plane's config feed (`ledge edge --control-url URL --edge-token T`).
//!
//! The loop: long-poll `GET /ledge/feed?after=<served version>`; for a newer snapshot, fetch
//! every package it names that is not on disk yet (`GET /ledge/packages/<sha256>`, checked
//! against its hash), let the hook (the Lambda@Edge triggers) load and prewarm the function
//! versions, swap the snapshot in, write it to `<data-dir>/last-good.json`, drop the packages
//! no longer named, and acknowledge the version (`POST /ledge/ack`). A snapshot or package that
//! fails its checks is refused: the edge keeps serving what it has and reports the error in
//! its ack. Network failures are retried with exponential backoff.
//!
//! On start, [`last_known_good`] gives the snapshot written last, so an edge restarted while
//! the control plane is down serves what it served before.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use ledge_model::ConfigSnapshot;
use sha2::{Digest, Sha256};

use crate::pipeline::Edge;
use crate::reload::SnapshotHook;
use crate::triggers::Triggers;

/// File name of the last applied snapshot in the data directory.
pub const LAST_GOOD_FILE: &str = "last-good.json";

/// Largest snapshot or package accepted from the control plane.
const MAX_BODY: usize = 256 << 20;

/// Settings of [`follow`].
#[derive(Debug, Clone)]
pub struct FeedSettings {
    /// Base URL of the control plane, `http://host:port`.
    pub control_url: String,
    /// The edge token (sent as `Authorization: Bearer`).
    pub token: String,
    /// This edge's location name: its identity towards the control plane.
    pub pop: String,
    /// Where this edge serves viewers (reported, for `ledge edges`).
    pub address: String,
    /// The edge's data directory: `last-good.json` and `packages/<sha256>.zip`.
    pub data_dir: PathBuf,
    /// Longest wait between retries. Default 5 s.
    pub max_backoff: Duration,
    /// Longest a feed request may take (above the control plane's poll timeout). Default 60 s.
    pub request_timeout: Duration,
}

impl FeedSettings {
    /// Settings with the default backoff and timeout.
    pub fn new(control_url: &str, token: &str, pop: &str, address: &str, data_dir: &Path) -> Self {
        Self {
            control_url: control_url.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            pop: pop.to_owned(),
            address: address.to_owned(),
            data_dir: data_dir.to_owned(),
            max_backoff: Duration::from_secs(5),
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// Why one step of following the feed failed.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The control plane could not be reached, or timed out.
    #[error("control plane unreachable: {0}")]
    Unreachable(String),
    /// The control plane refused the edge token.
    #[error("the control plane refused the edge token (revoked or unknown)")]
    Unauthorized,
    /// The control plane answered something unexpected.
    #[error("unexpected answer from the control plane: {0}")]
    Protocol(String),
    /// The snapshot is not valid or cannot be served.
    #[error("snapshot refused: {0}")]
    Snapshot(String),
    /// A package does not match its hash.
    #[error("package {0} refused: its content does not match its SHA-256")]
    Corrupt(String),
    /// The data directory could not be written.
    #[error("cannot write {0}: {1}")]
    Disk(String, std::io::Error),
}

impl FeedError {
    /// Whether the edge should report this error in its ack (a refused config, not a network
    /// failure).
    fn reportable(&self) -> bool {
        matches!(
            self,
            Self::Snapshot(_) | Self::Corrupt(_) | Self::Disk(..) | Self::Protocol(_)
        )
    }
}

/// The last snapshot this edge applied, if any; a damaged file is refused (and logged).
pub fn last_known_good(data_dir: &Path) -> Option<ConfigSnapshot> {
    let path = data_dir.join(LAST_GOOD_FILE);
    let bytes = std::fs::read(&path).ok()?;
    match ConfigSnapshot::from_json(&bytes) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "last known good snapshot refused");
            None
        }
    }
}

/// A client of the control plane's feed.
struct FeedClient {
    settings: FeedSettings,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl FeedClient {
    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), FeedError> {
        let uri = format!("{}{}", self.settings.control_url, path);
        let req = Request::builder()
            .method(method)
            .uri(&uri)
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", self.settings.token),
            )
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .map_err(|e| FeedError::Protocol(format!("{uri}: {e}")))?;
        let call = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| FeedError::Unreachable(format!("{uri}: {e}")))?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| FeedError::Unreachable(format!("{uri}: {e}")))?
                .to_bytes();
            Ok::<_, FeedError>((status, body))
        };
        let (status, body) = tokio::time::timeout(self.settings.request_timeout, call)
            .await
            .map_err(|_| FeedError::Unreachable(format!("{uri}: timed out")))??;
        if status == StatusCode::UNAUTHORIZED {
            return Err(FeedError::Unauthorized);
        }
        Ok((status, body))
    }

    /// Waits for a snapshot newer than `after`; `None` when the poll ended without one.
    async fn poll(&self, after: u64) -> Result<Option<Bytes>, FeedError> {
        let path = format!(
            "/ledge/feed?after={after}&pop={}&address={}",
            encode(&self.settings.pop),
            encode(&self.settings.address)
        );
        match self.request(Method::GET, &path, Bytes::new()).await? {
            (StatusCode::OK, body) => Ok(Some(body)),
            (StatusCode::NO_CONTENT, _) => Ok(None),
            (status, _) => Err(FeedError::Unreachable(format!("feed answered {status}"))),
        }
    }

    async fn ack(&self, version: u64, error: Option<String>) -> Result<(), FeedError> {
        let body = serde_json::json!({
            "Version": version,
            "Pop": self.settings.pop,
            "Address": self.settings.address,
            "Error": error,
        });
        let (status, _) = self
            .request(Method::POST, "/ledge/ack", Bytes::from(body.to_string()))
            .await?;
        if !status.is_success() {
            return Err(FeedError::Unreachable(format!("ack answered {status}")));
        }
        Ok(())
    }

    /// Makes sure `packages/<sha>.zip` holds the package with that hash; true when it had to
    /// be fetched.
    async fn ensure_package(&self, sha: &str) -> Result<bool, FeedError> {
        let dir = self.settings.data_dir.join("packages");
        let path = dir.join(format!("{sha}.zip"));
        if let Ok(bytes) = tokio::fs::read(&path).await {
            if hex::encode(Sha256::digest(&bytes)).eq_ignore_ascii_case(sha) {
                return Ok(false);
            }
        }
        let body = match self
            .request(Method::GET, &format!("/ledge/packages/{sha}"), Bytes::new())
            .await?
        {
            (StatusCode::OK, body) => body,
            (status, _) => {
                return Err(FeedError::Protocol(format!("package {sha}: {status}")));
            }
        };
        if !hex::encode(Sha256::digest(&body)).eq_ignore_ascii_case(sha) {
            return Err(FeedError::Corrupt(sha.to_owned()));
        }
        write_atomic(&dir, &path, &body).await?;
        Ok(true)
    }
}

/// Percent-encodes a query value (unreserved characters kept).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Writes `bytes` to `path` through a temporary file in `dir` and a rename, so a crash never
/// leaves half a file under the real name.
async fn write_atomic(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), FeedError> {
    let disk = |e| FeedError::Disk(path.display().to_string(), e);
    tokio::fs::create_dir_all(dir).await.map_err(disk)?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    tokio::fs::write(&tmp, bytes).await.map_err(disk)?;
    tokio::fs::rename(&tmp, path).await.map_err(disk)
}

/// Follows the feed until the task is dropped, installing every newer snapshot into `edge`
/// with `hook` run around the swap.
pub async fn follow<T: Triggers, H: SnapshotHook>(
    settings: FeedSettings,
    edge: Arc<Edge<T>>,
    hook: H,
) {
    let client = FeedClient {
        settings,
        client: Client::builder(TokioExecutor::new()).build_http(),
    };
    let min_backoff = Duration::from_millis(100);
    let mut backoff = min_backoff;
    let mut acked: Option<u64> = None;
    let mut repaired = false;
    loop {
        if !repaired {
            repaired = repair(&client, &edge, &hook).await;
        }
        let served = edge.store().version();
        if acked != Some(served) {
            // Tell the control plane what we serve (also after a restart from last known good).
            match client.ack(served, None).await {
                Ok(()) => acked = Some(served),
                Err(e) => tracing::debug!(error = %e, "ack failed"),
            }
        }
        let polled = if repaired {
            client.poll(served).await
        } else {
            // A repair that failed is tried again soon, not after a whole long poll.
            match tokio::time::timeout(backoff, client.poll(served)).await {
                Ok(polled) => polled,
                Err(_) => {
                    backoff = (backoff * 2).min(client.settings.max_backoff);
                    continue;
                }
            }
        };
        let step = match polled {
            Ok(None) => Ok(None),
            Ok(Some(body)) => apply(&client, &edge, &hook, &body).await.map(Some),
            Err(e) => Err(e),
        };
        match step {
            Ok(Some(version)) => {
                tracing::info!(version, "config snapshot installed from the control plane");
                backoff = min_backoff;
                match client.ack(version, None).await {
                    Ok(()) => acked = Some(version),
                    Err(e) => tracing::debug!(error = %e, "ack failed"),
                }
            }
            Ok(None) => backoff = min_backoff,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "config feed: still serving version {served}");
                if e.reportable() {
                    // This ack stands until a newer version is applied: the error stays visible.
                    if client.ack(served, Some(e.to_string())).await.is_ok() {
                        acked = Some(served);
                    }
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(client.settings.max_backoff);
            }
        }
    }
}

/// Fetches the packages of the served snapshot (last known good) that are missing or damaged
/// on disk, and lets the hook load them again; true when nothing is missing any more.
async fn repair<T: Triggers, H: SnapshotHook>(
    client: &FeedClient,
    edge: &Edge<T>,
    hook: &H,
) -> bool {
    let current = edge.store().load();
    let mut fetched = false;
    for f in &current.source.functions {
        match client.ensure_package(&f.code_sha256).await {
            Ok(got) => fetched |= got,
            Err(e) => {
                tracing::warn!(error = %e, "a package of the served config is missing");
                return false;
            }
        }
    }
    if fetched {
        hook.before_install(&current.source).await;
        hook.after_install(&current.source);
        tracing::info!("missing packages of the served config fetched again");
    }
    true
}

/// Checks, prepares and installs one snapshot; returns the version now served.
async fn apply<T: Triggers, H: SnapshotHook>(
    client: &FeedClient,
    edge: &Edge<T>,
    hook: &H,
    body: &[u8],
) -> Result<u64, FeedError> {
    let snapshot =
        ConfigSnapshot::from_json(body).map_err(|e| FeedError::Snapshot(e.to_string()))?;
    if snapshot.version <= edge.store().version() {
        return Ok(edge.store().version());
    }
    for f in &snapshot.functions {
        client.ensure_package(&f.code_sha256).await?;
    }
    hook.before_install(&snapshot).await;
    let version = edge
        .install(snapshot)
        .map_err(|e| FeedError::Snapshot(e.to_string()))?;
    let current = edge.store().load();
    hook.after_install(&current.source);
    let dir = &client.settings.data_dir;
    write_atomic(dir, &dir.join(LAST_GOOD_FILE), body).await?;
    drop_unused_packages(&dir.join("packages"), &current.source).await;
    Ok(version)
}

/// Removes the packages the served snapshot no longer names (their versions' workers are
/// retired by the hook).
async fn drop_unused_packages(dir: &Path, current: &ConfigSnapshot) {
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
        return;
    };
    while let Ok(Some(entry)) = entries.next_entry().await {
        let name = entry.file_name();
        let Some(sha) = name.to_str().and_then(|n| n.strip_suffix(".zip")) else {
            continue;
        };
        if !current
            .functions
            .iter()
            .any(|f| f.code_sha256.eq_ignore_ascii_case(sha))
        {
            if let Err(e) = tokio::fs::remove_file(entry.path()).await {
                tracing::debug!(error = %e, "cannot remove an unused package");
            }
        }
    }
}
