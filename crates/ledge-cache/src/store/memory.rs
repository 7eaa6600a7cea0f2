//! The memory tier: moka weighed in bytes.

use std::sync::Arc;

use moka::notification::RemovalCause;

use super::{EvictHook, Head, Storage};
use crate::key::CacheKey;
use crate::store::Entry;

/// Memory tier bounded in bytes (see the module docs of [`crate::store`]).
#[derive(Clone)]
pub struct MemoryTier {
    cache: moka::sync::Cache<CacheKey, Entry>,
}

impl std::fmt::Debug for MemoryTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTier")
            .field("entries", &self.cache.entry_count())
            .field("bytes", &self.cache.weighted_size())
            .finish()
    }
}

// === impl MemoryTier ===

impl MemoryTier {
    /// A tier holding at most `max_bytes` of weighted entries; `on_evict` sees each entry
    /// evicted for space.
    pub fn new(max_bytes: u64, on_evict: Option<EvictHook>) -> Self {
        let mut b = moka::sync::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|_k: &CacheKey, e: &Entry| e.weight());
        if let Some(hook) = on_evict {
            b = b.eviction_listener(move |k: Arc<CacheKey>, e: Entry, cause| {
                if matches!(cause, RemovalCause::Size | RemovalCause::Expired) {
                    hook(*k, &e.head);
                }
            });
        }
        Self { cache: b.build() }
    }

    /// Runs moka's pending housekeeping (evictions, counters); used by tests and stats.
    pub fn sync(&self) {
        self.cache.run_pending_tasks();
    }
}

impl Storage for MemoryTier {
    fn get(&self, key: &CacheKey) -> Option<Entry> {
        self.cache.get(key)
    }

    fn put(&self, key: CacheKey, entry: Entry) {
        self.cache.insert(key, entry);
    }

    fn refresh(&self, key: &CacheKey, head: Arc<Head>) {
        if let Some(e) = self.cache.get(key) {
            self.cache.insert(*key, Entry { head, body: e.body });
        }
    }

    fn remove(&self, key: &CacheKey) -> bool {
        self.cache.remove(key).is_some()
    }

    fn contains(&self, key: &CacheKey) -> bool {
        self.cache.contains_key(key)
    }

    fn usage(&self) -> (u64, u64) {
        (self.cache.entry_count(), self.cache.weighted_size())
    }
}
