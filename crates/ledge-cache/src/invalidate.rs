//! Invalidation by path pattern (§9), through an index of stored paths per distribution.
//!
//! # Design
//! The index maps distribution → ordered map of path (plus keyed query) → keys stored under
//! it (header/cookie/encoding variants). An exact path is one map lookup; a trailing-`*`
//! pattern is an ordered range scan over just the matching paths; `/*` drops the
//! distribution's whole map. Entries leave the index when invalidated, or when the tiers
//! evict them (see [`crate::Cache`]).

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::key::CacheKey;

type Paths = BTreeMap<Box<str>, Vec<CacheKey>>;

/// Paths of stored entries, per distribution.
#[derive(Debug, Default)]
pub struct PathIndex {
    dists: Mutex<HashMap<Arc<str>, Paths>>,
}

// === impl PathIndex ===

impl PathIndex {
    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, Paths>> {
        self.dists.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that `key` is stored under `path` of `dist`.
    pub fn add(&self, dist: &Arc<str>, path: &str, key: CacheKey) {
        let mut map = self.lock();
        let paths = match map.get_mut(&**dist) {
            Some(p) => p,
            None => map.entry(dist.clone()).or_default(),
        };
        match paths.get_mut(path) {
            Some(keys) => {
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
            None => {
                paths.insert(path.into(), vec![key]);
            }
        }
    }

    /// Forgets `key` under `path` of `dist`.
    pub fn remove(&self, dist: &str, path: &str, key: CacheKey) {
        let mut map = self.lock();
        let Some(paths) = map.get_mut(dist) else {
            return;
        };
        if let Some(keys) = paths.get_mut(path) {
            keys.retain(|k| *k != key);
            if keys.is_empty() {
                paths.remove(path);
            }
        }
        if paths.is_empty() {
            map.remove(dist);
        }
    }

    /// Removes and returns the keys of `dist` matching any of `patterns` (§9).
    pub fn take_matching(&self, dist: &str, patterns: &[String]) -> Vec<CacheKey> {
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
                            out.extend(keys);
                        }
                    }
                }
                None => {
                    if let Some(keys) = paths.remove(pat.as_str()) {
                        out.extend(keys);
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
            i.add(&d, p, CacheKey(n as u128));
        }
        i.add(&d, "/img/a.jpg", CacheKey(100));
        i.add(&"E2".into(), "/img/a.jpg", CacheKey(200));
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
    fn remove_forgets_one_key() {
        let i = index();
        i.remove("E1", "/img/a.jpg", CacheKey(0));
        assert_eq!(
            i.take_matching("E1", &["/img/a.jpg".into()]),
            vec![CacheKey(100)]
        );
    }
}
