//! Stored responses ([`Entry`]) and the [`Storage`] tiers that hold them.
//!
//! # Design
//! - [`MemoryTier`]: a moka cache weighed in bytes (TinyLFU admission, LRU eviction). moka was
//!   chosen over foyer because it builds in a fraction of the time on 2 cores (foyer's hybrid
//!   cache pulls in a large async I/O stack), is widely deployed, and its `sync` cache alone
//!   gives what the memory tier needs: a byte weigher, a capacity, and an eviction listener.
//! - [`DiskTier`]: our own small file tier. Bodies live in one file each under the directory
//!   (emptied when the cache starts: the disk tier is a cache, not a persistent store); the
//!   entry heads (status, headers, timing) stay in memory, so a disk hit costs one file read.
//!   It is bounded in body bytes with LRU eviction (an ordered map of access ticks).
//! - The [`crate::Cache`] writes through to both tiers and promotes disk hits to memory.
//!
//! # Limitations
//! Heads of disk entries are kept in memory (about the size of the response headers plus
//! ~200 bytes each), outside the memory tier's budget.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ETAG, LAST_MODIFIED};
use http::{HeaderMap, HeaderValue, StatusCode};
use tokio::time::Instant;

use crate::key::CacheKey;
use crate::ttl::Freshness;

mod disk;
mod memory;

pub use disk::DiskTier;
pub use memory::MemoryTier;

/// Everything about a stored response except its body.
#[derive(Debug, Clone)]
pub struct Head {
    /// Unique per stored version ([`next_id`]): ties invalidation-index records to what the
    /// tiers hold, so a late eviction notice for an old version never unindexes a newer one.
    pub id: u64,
    /// Response status.
    pub status: StatusCode,
    /// Response headers as stored (Set-Cookie/Vary rules applied).
    pub headers: HeaderMap,
    /// When the response was fetched or last validated (for `Age` and freshness).
    pub stored_at: Instant,
    /// Freshness lifetime and reuse rules.
    pub freshness: Freshness,
    /// Distribution the entry belongs to (for invalidations).
    pub distribution_id: Arc<str>,
    /// Path plus keyed query (for invalidations).
    pub path: Box<str>,
    /// Never revalidate with conditional requests (legacy cookie forwarding, §3.4).
    pub no_conditional: bool,
    /// Served as fresh until then although expired: the origin failed and the stale copy
    /// stands in for `ErrorCachingMinTTL` (§5.3).
    pub stale_until: Option<Instant>,
    /// `headers` carry an `Age: 0` the cache put there (the origin sent none), so that hits
    /// replace `Age` in place instead of growing a copy of the map; answers that do not come
    /// from the cache drop it.
    pub age_placeholder: bool,
}

/// A fresh [`Head::id`].
pub fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A stored response: shared head plus body.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Status, headers and timing.
    pub head: Arc<Head>,
    /// The full body.
    pub body: Bytes,
}

/// A storage tier: a map from keys to entries with its own eviction.
///
/// Called from async code: implementations must not block for long (the disk tier is
/// called through `spawn_blocking` by the cache).
pub trait Storage: Send + Sync + 'static {
    /// The entry under `key`, if present.
    fn get(&self, key: &CacheKey) -> Option<Entry>;
    /// Stores `entry` under `key`, replacing any previous one.
    fn put(&self, key: CacheKey, entry: Entry);
    /// Replaces the head of a present entry, keeping its body (304 refresh).
    fn refresh(&self, key: &CacheKey, head: Arc<Head>);
    /// Removes the entry; returns whether it was present.
    fn remove(&self, key: &CacheKey) -> bool;
    /// Whether an entry is present.
    fn contains(&self, key: &CacheKey) -> bool;
    /// `(entries, bytes)` currently held.
    fn usage(&self) -> (u64, u64);
}

/// Called by a tier with each entry it evicted for space.
pub type EvictHook = Arc<dyn Fn(CacheKey, &Head) + Send + Sync>;

// === impl Head ===

impl Head {
    /// Time since the response was fetched or last validated.
    pub fn age(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.stored_at)
    }

    /// Fresh: within its TTL and servable without asking the origin.
    pub fn is_fresh(&self, now: Instant) -> bool {
        if self.stale_until.is_some_and(|t| now < t) {
            return true;
        }
        !self.freshness.origin_first
            && !self.freshness.refetch_always
            && self.age(now) < self.freshness.ttl
    }

    /// Time past expiry (zero while fresh).
    pub fn staleness(&self, now: Instant) -> Duration {
        self.age(now).saturating_sub(self.freshness.ttl)
    }

    /// The stored `ETag`.
    pub fn etag(&self) -> Option<&HeaderValue> {
        self.headers.get(ETAG)
    }

    /// The stored `Last-Modified`.
    pub fn last_modified(&self) -> Option<&HeaderValue> {
        self.headers.get(LAST_MODIFIED)
    }

    /// Whether the entry has a validator for conditional revalidation.
    pub fn has_validators(&self) -> bool {
        self.etag().is_some() || self.last_modified().is_some()
    }

    /// Estimated heap bytes of the head: the struct, the header map's buckets (about 104
    /// bytes each in `http` 1.x, plus the index table) and the bytes of names and values.
    pub fn weight(&self) -> usize {
        let bytes: usize = self
            .headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len())
            .sum();
        std::mem::size_of::<Self>()
            + self.headers.len() * HEADER_BUCKET
            + bytes
            + self.path.len()
            + self.distribution_id.len()
    }
}

/// Bytes of one `HeaderMap` bucket plus its share of the index table.
const HEADER_BUCKET: usize = 112;

// === impl Entry ===

impl Entry {
    /// Estimated memory bytes of the entry (body, head, per-entry bookkeeping).
    pub fn weight(&self) -> u32 {
        let w = self.body.len() + self.head.weight() + ENTRY_OVERHEAD;
        u32::try_from(w).unwrap_or(u32::MAX)
    }
}

/// What the weigher charges per entry on top of the body and the head's own estimate: moka's
/// per-entry bookkeeping, the invalidation index, allocator slack and `HeaderMap`'s spare
/// capacity. Calibrated so the charge matches the measured RSS per object (BENCHMARKS.md).
pub const ENTRY_OVERHEAD: usize = 570;

#[cfg(test)]
pub(crate) mod tests;
