//! The function versions an edge runs: loaded from the edge's package directory by hash,
//! prewarmed before the snapshot that names them is served, retired once no snapshot does.
//!
//! Package layout: `<data-dir>/packages/<CodeSha256 hex>.zip`. The file's SHA-256 is checked
//! against the snapshot's `CodeSha256` before the runtime sees it.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use ledge_model::snapshot::FunctionVersion;
use ledge_model::ConfigSnapshot;
use ledge_runtime::{FunctionHandle, FunctionSpec, PackageRef, Runtime};
use sha2::{Digest, Sha256};

/// How long a version no longer named by the served snapshot stays loaded, so requests that
/// started on the previous snapshot finish on the version they began with.
const RETIRE_GRACE: Duration = Duration::from_secs(30);

/// Why a function version cannot run.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadFailure {
    /// The served snapshot does not name this ARN (should not happen: snapshots are validated).
    #[error("function {0} is not in the served snapshot")]
    Unknown(String),
    /// The package is missing, does not match its hash, or the runtime refused it.
    #[error("function {arn} cannot be loaded: {reason}")]
    Load {
        /// The version's ARN.
        arn: String,
        /// Why.
        reason: String,
    },
}

/// One function version: loaded at most once, shared by every request that runs it.
struct Entry {
    version: FunctionVersion,
    handle: tokio::sync::OnceCell<Result<Arc<FunctionHandle>, LoadFailure>>,
}

/// The loaded function versions of an edge, by qualified ARN.
pub struct FunctionSet {
    runtime: Runtime,
    packages: PathBuf,
    prewarm: usize,
    entries: ArcSwap<HashMap<String, Arc<Entry>>>,
    /// ARNs named by the served snapshot (for retiring); never held across an await.
    current: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for FunctionSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionSet")
            .field("packages", &self.packages)
            .field("loaded", &self.entries.load().len())
            .finish_non_exhaustive()
    }
}

// === impl FunctionSet ===

impl FunctionSet {
    /// A set running functions on `runtime`, packages looked up in `packages`, `prewarm`
    /// workers started per version before it is served.
    pub fn new(runtime: Runtime, packages: PathBuf, prewarm: usize) -> Self {
        Self {
            runtime,
            packages,
            prewarm,
            entries: ArcSwap::default(),
            current: Mutex::default(),
        }
    }

    /// The runtime the functions run on.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Loads and prewarms every version `next` associates with a behavior (already loaded
    /// ones are kept as they are; failed loads are retried). Returns when all are ready.
    pub async fn prepare(&self, next: &ConfigSnapshot) {
        let wanted = referenced(next);
        let mut added = Vec::new();
        {
            let old = self.entries.load();
            let mut map: HashMap<String, Arc<Entry>> = (**old).clone();
            for arn in &wanted {
                let keep = map.get(arn).is_some_and(|e| {
                    !matches!(e.handle.get(), Some(Err(_)))
                        && next.function(arn).is_none_or(|v| *v == e.version)
                });
                if keep {
                    continue;
                }
                let Some(version) = next.function(arn) else {
                    continue;
                };
                let entry = Arc::new(Entry {
                    version: version.clone(),
                    handle: tokio::sync::OnceCell::new(),
                });
                map.insert(arn.clone(), entry.clone());
                added.push(entry);
            }
            self.entries.store(Arc::new(map));
        }
        let mut warmups = Vec::new();
        for arn in &wanted {
            if let Some(entry) = self.entries.load().get(arn).cloned() {
                warmups.push(entry);
            }
        }
        for entry in warmups {
            match self.handle_of(&entry).await {
                Ok(handle) => {
                    if let Err(e) = handle.prewarm(self.prewarm).await {
                        tracing::warn!(arn = %entry.version.arn, error = %e, "function prewarm failed");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "function version not loaded"),
            }
        }
        tracing::debug!(added = added.len(), "function versions ready");
    }

    /// Records the snapshot now served and retires, after a grace period, the versions it no
    /// longer names. Needs a Tokio runtime.
    pub fn installed(self: &Arc<Self>, current: &ConfigSnapshot) {
        let wanted = referenced(current);
        {
            let mut cur = self.current.lock().unwrap_or_else(PoisonError::into_inner);
            *cur = wanted;
        }
        let stale = self.entries.load().keys().any(|arn| !self.is_current(arn));
        if !stale {
            return;
        }
        let set = self.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                tokio::time::sleep(RETIRE_GRACE).await;
                set.retire();
            });
        }
    }

    fn is_current(&self, arn: &str) -> bool {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(arn)
    }

    /// Drops every version the served snapshot does not name (their workers stop).
    pub fn retire(&self) {
        let old = self.entries.load();
        let map: HashMap<String, Arc<Entry>> = old
            .iter()
            .filter(|(arn, _)| self.is_current(arn))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let retired = old.len() - map.len();
        if retired > 0 {
            self.entries.store(Arc::new(map));
            tracing::info!(retired, "function versions retired");
        }
    }

    /// Number of versions currently loaded (or loading).
    pub fn loaded(&self) -> usize {
        self.entries.load().len()
    }

    /// The handle of a version, loading it on first use.
    pub async fn get(&self, arn: &str) -> Result<Arc<FunctionHandle>, LoadFailure> {
        let entry = self
            .entries
            .load()
            .get(arn)
            .cloned()
            .ok_or_else(|| LoadFailure::Unknown(arn.to_string()))?;
        self.handle_of(&entry).await
    }

    async fn handle_of(&self, entry: &Entry) -> Result<Arc<FunctionHandle>, LoadFailure> {
        if let Some(handle) = entry.handle.get() {
            return handle.clone();
        }
        // Boxed: loading is rare, and every invocation's future would otherwise carry it.
        Box::pin(entry.handle.get_or_init(|| self.load(&entry.version)))
            .await
            .clone()
    }

    async fn load(&self, v: &FunctionVersion) -> Result<Arc<FunctionHandle>, LoadFailure> {
        let fail = |reason: String| LoadFailure::Load {
            arn: v.arn.clone(),
            reason,
        };
        let hash = v.code_sha256.to_ascii_lowercase();
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(fail(format!("invalid CodeSha256 {:?}", v.code_sha256)));
        }
        let path = self.packages.join(format!("{hash}.zip"));
        let zip = tokio::fs::read(&path)
            .await
            .map_err(|e| fail(format!("{}: {e}", path.display())))?;
        let actual = hex::encode(Sha256::digest(&zip));
        if actual != hash {
            return Err(fail(format!(
                "{}: content hash {actual} does not match",
                path.display()
            )));
        }
        let (name, version) =
            name_and_version(&v.arn).ok_or_else(|| fail("not a qualified function ARN".into()))?;
        let mut spec = FunctionSpec::new(
            name,
            v.runtime.clone(),
            v.handler.clone(),
            PackageRef::Zip(Bytes::from(zip)),
        );
        spec.version = version;
        spec.memory_mb = v.memory_size;
        spec.timeout = Duration::from_secs(u64::from(v.timeout.max(1)));
        spec.arn = Some(v.arn.clone());
        let handle = self
            .runtime
            .load(spec)
            .await
            .map_err(|e| fail(e.to_string()))?;
        tracing::info!(arn = %v.arn, "function version loaded");
        Ok(handle)
    }
}

/// `arn:aws:lambda:<region>:<acct>:function:<name>:<version>` → (`<region>.<name>`, version):
/// the replica name Lambda@Edge gives a function outside its home region, which is also the
/// name of its log group (`/aws/lambda/us-east-1.<name>`).
pub fn name_and_version(arn: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "lambda", region, _, "function", name, version]
            if !name.is_empty() && !version.is_empty() =>
        {
            Some((format!("{region}.{name}"), (*version).to_string()))
        }
        _ => None,
    }
}

/// Every ARN an association of `snapshot` names.
fn referenced(snapshot: &ConfigSnapshot) -> HashSet<String> {
    let mut out = HashSet::new();
    for d in &snapshot.distributions {
        let c = &d.config;
        for b in std::iter::once(&c.default_cache_behavior).chain(c.cache_behaviors.iter()) {
            for a in &b.lambda_function_associations {
                out.insert(a.lambda_function_arn.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_names() {
        assert_eq!(
            name_and_version("arn:aws:lambda:us-east-1:111122223333:function:hello:3"),
            Some(("us-east-1.hello".into(), "3".into()))
        );
        assert_eq!(
            name_and_version("arn:aws:lambda:us-east-1:1:function:hello"),
            None
        );
    }
}

#[cfg(test)]
mod timing {
    use super::*;

    /// Raw runtime round trip of a warm no-op Node.js function (run by hand:
    /// `cargo test -p ledge-edge --release -- --ignored warm_invoke_cost --nocapture`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs node; a measurement, not a check"]
    async fn warm_invoke_cost() {
        let dir = tempfile_dir();
        let runtime = Runtime::new(ledge_runtime::RuntimeConfig::new(dir.join("rt"))).expect("rt");
        let src = dir.join("src");
        std::fs::create_dir_all(&src).expect("src");
        std::fs::write(
            src.join("index.js"),
            "exports.handler = async (e) => e.Records[0].cf.request;",
        )
        .expect("write");
        let spec = FunctionSpec::new("t", "nodejs20.x", "index.handler", PackageRef::Dir(src));
        let h = runtime.load(spec).await.expect("load");
        h.prewarm(1).await.expect("prewarm");
        let event = br#"{"Records":[{"cf":{"config":{},"request":{"uri":"/","headers":{}}}}]}"#;
        for _ in 0..200 {
            h.invoke(event).await.expect("invoke");
        }
        let n = 2000;
        let t = std::time::Instant::now();
        for _ in 0..n {
            h.invoke(event).await.expect("invoke");
        }
        eprintln!("warm invoke: {:?} per call", t.elapsed() / n);
        drop(h);
        drop(runtime);
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("ledge-timing-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("dir");
        d
    }
}
