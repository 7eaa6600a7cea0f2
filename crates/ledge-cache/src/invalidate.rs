//! Invalidation by path pattern (§9), through an index of stored paths per distribution.
//!
//! # Design
//! The index maps distribution → ordered map of path (plus keyed query) → keys stored under
//! it (header/cookie/encoding variants). An exact path is one map lookup; a trailing-`*`
//! pattern is an ordered range scan over just the matching paths; `/*` drops the
//! distribution's whole map. Entries leave the index when invalidated, or when the tiers
//! evict them (see [`crate::Cache`]).
//!
//! A fill whose origin fetch started before an invalidation and ends after it must not store
//! (§9: only entries fetched after the invalidation survive it). The index keeps a short log
//! of recent invalidations under a sequence number; a fill takes a [`PathIndex::mark`] before
//! fetching and asks [`PathIndex::invalidated_since`] before storing. Without invalidations
//! in between that is one atomic load.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::key::CacheKey;

/// Path → the keys stored under it, each with the [`crate::store::Head::id`] indexed.
type Paths = BTreeMap<Box<str>, Vec<(CacheKey, u64)>>;

/// Paths of stored entries, per distribution.
#[derive(Debug, Default)]
pub struct PathIndex {
    dists: Mutex<HashMap<Arc<str>, Paths>>,
    seq: AtomicU64,
    log: Mutex<VecDeque<Logged>>,
}

/// Invalidations remembered for in-flight fills.
const LOG_LEN: usize = 256;

#[derive(Debug)]
struct Logged {
    seq: u64,
    dist: Arc<str>,
    patterns: Vec<String>,
}

/// Whether an invalidation path matches an entry's path (§9): `prefix*` or exact.
pub fn path_matches(pattern: &str, path: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => pattern == path,
    }
}

// === impl PathIndex ===

impl PathIndex {
    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, Paths>> {
        self.dists.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that `key` (version `id`) is stored under `path` of `dist`.
    pub fn add(&self, dist: &Arc<str>, path: &str, key: CacheKey, id: u64) {
        let mut map = self.lock();
        let paths = match map.get_mut(&**dist) {
            Some(p) => p,
            None => map.entry(dist.clone()).or_default(),
        };
        match paths.get_mut(path) {
            Some(keys) => match keys.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = id,
                None => keys.push((key, id)),
            },
            None => {
                paths.insert(path.into(), vec![(key, id)]);
            }
        }
    }

    /// Forgets `key` under `path` of `dist` if version `id` is the one indexed.
    pub fn remove(&self, dist: &str, path: &str, key: CacheKey, id: u64) {
        let mut map = self.lock();
        let Some(paths) = map.get_mut(dist) else {
            return;
        };
        if let Some(keys) = paths.get_mut(path) {
            keys.retain(|&(k, i)| !(k == key && i == id));
            if keys.is_empty() {
                paths.remove(path);
            }
        }
        if paths.is_empty() {
            map.remove(dist);
        }
    }

    /// The current invalidation sequence number, taken before an origin fetch.
    pub fn mark(&self) -> u64 {
        self.seq.load(Ordering::Acquire)
    }

    /// Whether an invalidation since `mark` covers `path` of `dist` (then a fill that started
    /// at `mark` must not store). Conservatively `true` when the log no longer reaches back.
    pub fn invalidated_since(&self, mark: u64, dist: &str, path: &str) -> bool {
        if self.seq.load(Ordering::Acquire) == mark {
            return false;
        }
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        if log.front().is_some_and(|l| l.seq > mark + 1) {
            return true;
        }
        log.iter().any(|l| {
            l.seq > mark && &*l.dist == dist && l.patterns.iter().any(|p| path_matches(p, path))
        })
    }

    fn record(&self, dist: &str, patterns: &[String]) {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let seq = self.seq.load(Ordering::Acquire) + 1;
        log.push_back(Logged {
            seq,
            dist: dist.into(),
            patterns: patterns.to_vec(),
        });
        if log.len() > LOG_LEN {
            log.pop_front();
        }
        self.seq.store(seq, Ordering::Release);
    }

    /// Removes and returns the keys of `dist` matching any of `patterns` (§9).
    pub fn take_matching(&self, dist: &str, patterns: &[String]) -> Vec<CacheKey> {
        self.record(dist, patterns);
        let mut out = Vec::new();
        let mut map = self.lock();
        let Some(paths) = map.get_mut(dist) else {
            return out;
        };
        for pat in patterns {
            match pat.strip_suffix('*') {
                Some(prefix) => {
                    let hits: Vec<Box<str>> = paths
                        .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
                        .take_while(|(p, _)| p.starts_with(prefix))
                        .map(|(p, _)| p.clone())
                        .collect();
                    for p in hits {
                        if let Some(keys) = paths.remove(&p) {
                            out.extend(keys.into_iter().map(|(k, _)| k));
                        }
                    }
                }
                None => {
                    if let Some(keys) = paths.remove(pat.as_str()) {
                        out.extend(keys.into_iter().map(|(k, _)| k));
                    }
                }
            }
        }
        if paths.is_empty() {
            map.remove(dist);
        }
        out
    }

    /// Number of indexed keys (for tests and stats).
    pub fn len(&self) -> usize {
        self.lock()
            .values()
            .flat_map(|p| p.values())
            .map(Vec::len)
            .sum()
    }

    /// Nothing indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> PathIndex {
        let i = PathIndex::default();
        let d: Arc<str> = "E1".into();
        for (n, p) in [
            "/img/a.jpg",
            "/img/a.jpg?v=2",
            "/img/b.jpg",
            "/images/x",
            "/img",
            "/css/s.css",
        ]
        .iter()
        .enumerate()
        {
            i.add(&d, p, CacheKey(n as u128), 1);
        }
        i.add(&d, "/img/a.jpg", CacheKey(100), 1);
        i.add(&"E2".into(), "/img/a.jpg", CacheKey(200), 1);
        i
    }

    #[test]
    fn exact_paths_match_all_variants_but_not_other_queries() {
        let i = index();
        let mut k = i.take_matching("E1", &["/img/a.jpg".into()]);
        k.sort();
        assert_eq!(k, vec![CacheKey(0), CacheKey(100)]);
        assert_eq!(i.len(), 6);
    }

    #[test]
    fn trailing_star_is_a_prefix() {
        let i = index();
        assert_eq!(i.take_matching("E1", &["/img/*".into()]).len(), 4);
        let i = index();
        // A plain prefix: `/img*` takes `/img`, `/img/…` but not `/images/…`.
        assert_eq!(i.take_matching("E1", &["/img*".into()]).len(), 5);
        let i = index();
        assert_eq!(i.take_matching("E1", &["/im*".into()]).len(), 6);
        let i = index();
        assert_eq!(i.take_matching("E1", &["/*".into()]).len(), 7);
        assert_eq!(i.len(), 1, "other distributions keep their entries");
        let i = index();
        assert!(i.take_matching("E1", &["/i*g/a.jpg".into()]).is_empty());
    }

    #[test]
    fn fills_racing_an_invalidation_are_told_not_to_store() {
        let i = PathIndex::default();
        let m = i.mark();
        assert!(!i.invalidated_since(m, "E1", "/a"));
        i.take_matching("E1", &["/img/*".into()]);
        assert!(i.invalidated_since(m, "E1", "/img/x.png"));
        assert!(!i.invalidated_since(m, "E1", "/css/x.css"));
        assert!(!i.invalidated_since(m, "E2", "/img/x.png"));
        assert!(!i.invalidated_since(i.mark(), "E1", "/img/x.png"));
        for _ in 0..LOG_LEN + 1 {
            i.take_matching("E9", &["/z".into()]);
        }
        assert!(
            i.invalidated_since(m, "E1", "/css/x.css"),
            "log too short: conservative"
        );
    }

    #[test]
    fn remove_forgets_one_key() {
        let i = index();
        i.remove("E1", "/img/a.jpg", CacheKey(0), 2);
        assert_eq!(i.len(), 8, "another version: kept");
        i.add(&"E1".into(), "/img/a.jpg", CacheKey(0), 2);
        i.remove("E1", "/img/a.jpg", CacheKey(0), 2);
        assert_eq!(
            i.take_matching("E1", &["/img/a.jpg".into()]),
            vec![CacheKey(100)]
        );
    }
}
