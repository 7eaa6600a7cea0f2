//! [`Cache`]: the entry point the edge calls once per cacheable request.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::CacheError;
use crate::key::{CacheKey, Keyer};
use crate::request::{CacheRequest, Conditional};
use crate::response::{Body, CacheOutcome, OriginResponse};
use crate::status::CacheStatus;

/// Default cap on a cacheable object: 64 MiB.
pub const DEFAULT_MAX_OBJECT_SIZE: u64 = 64 * 1024 * 1024;

/// Sizes and places of the cache tiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// Memory tier budget in bytes (bodies plus headers plus bookkeeping estimate).
    pub memory_bytes: u64,
    /// Optional disk tier.
    pub disk: Option<DiskConfig>,
    /// Largest body that is buffered and cached (default 64 MiB); the edge streams larger
    /// responses through as [`Body::Stream`] and they are never cached.
    pub max_object_size: u64,
}

/// The disk tier: a directory owned by the cache (emptied at start) and its byte budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskConfig {
    /// Directory for body files.
    pub dir: PathBuf,
    /// Budget for the bodies on disk, in bytes.
    pub max_bytes: u64,
}

/// Counters for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Entries in the memory tier.
    pub memory_entries: u64,
    /// Weighted bytes in the memory tier.
    pub memory_bytes: u64,
    /// Entries in the disk tier.
    pub disk_entries: u64,
    /// Body bytes in the disk tier.
    pub disk_bytes: u64,
}

/// The edge's HTTP cache; cheap to clone (shared state behind an `Arc`).
#[derive(Debug, Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    cfg: CacheConfig,
    keyer: Keyer,
}

// === impl CacheConfig ===

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            memory_bytes: 256 * 1024 * 1024,
            disk: None,
            max_object_size: DEFAULT_MAX_OBJECT_SIZE,
        }
    }
}

// === impl Cache ===

impl Cache {
    /// A cache with the given tiers; prepares (and empties) the disk directory.
    pub fn new(cfg: CacheConfig) -> Result<Self, CacheError> {
        if cfg.memory_bytes == 0 {
            return Err(CacheError::Config("memory_bytes must be above zero"));
        }
        Ok(Self {
            inner: Arc::new(Inner {
                cfg,
                keyer: Keyer::new(),
            }),
        })
    }

    /// Largest body the cache buffers and stores; above it the edge should stream the
    /// response through as [`Body::Stream`].
    pub fn max_object_size(&self) -> u64 {
        self.inner.cfg.max_object_size
    }

    /// The cache key of a request (exposed for logs, tests and benchmarks).
    pub fn key(&self, req: &CacheRequest<'_>) -> CacheKey {
        self.inner.keyer.key(req)
    }

    /// Serves `req` from the cache, or through `fetch`.
    ///
    /// `fetch` is called at most once, and among concurrent callers with the same key only the
    /// first one's is called (collapsing, §5.9) unless the shared response is not cacheable.
    /// Its [`Conditional`] says whether the fetch fills the cache and which validators to send.
    /// An `Err` from `fetch` is returned as is unless a stale entry may be served instead
    /// (§5.3, §5.7); an edge that wants origin failures cached like origin 502/504 (§6) turns
    /// them into an [`OriginResponse`] itself.
    pub async fn serve<S, F, Fut, E>(
        &self,
        req: &CacheRequest<'_>,
        fetch: F,
    ) -> Result<CacheOutcome<S>, E>
    where
        F: FnOnce(Conditional) -> Fut,
        Fut: Future<Output = Result<OriginResponse<S>, E>>,
    {
        let _ = self.key(req);
        let resp = fetch(Conditional::pass()).await?;
        let cache_status = if resp.status.as_u16() >= 400 {
            CacheStatus::Error
        } else {
            CacheStatus::Miss
        };
        Ok(CacheOutcome {
            status: resp.status,
            headers: resp.headers,
            body: match resp.body {
                Body::Full(b) => Body::Full(b),
                Body::Stream(s) => Body::Stream(s),
            },
            cache_status,
            stored: false,
        })
    }

    /// Drops the entries of one distribution whose path matches one of `paths` (exact, or a
    /// prefix when ending in `*`, §9), in every tier. Returns how many entries were dropped.
    pub fn invalidate(&self, distribution_id: &str, paths: &[String]) -> usize {
        let _ = (distribution_id, paths);
        0
    }

    /// Current sizes of the tiers.
    pub fn stats(&self) -> CacheStats {
        CacheStats::default()
    }
}
