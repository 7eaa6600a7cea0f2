//! The disk tier: one file per body, heads in memory, LRU by body bytes.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use super::{Entry, EvictHook, Head, Storage};
use crate::key::CacheKey;

/// Disk tier bounded in body bytes (see the module docs of [`crate::store`]).
pub struct DiskTier {
    dir: PathBuf,
    max_bytes: u64,
    on_evict: Option<EvictHook>,
    state: Mutex<State>,
    /// Numbers temporary files, so concurrent writes of one key never share one.
    writes: AtomicU64,
}

#[derive(Default)]
struct State {
    slots: HashMap<CacheKey, Slot>,
    lru: BTreeMap<u64, CacheKey>,
    tick: u64,
    bytes: u64,
}

struct Slot {
    head: Arc<Head>,
    len: u64,
    tick: u64,
}

impl std::fmt::Debug for DiskTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskTier")
            .field("dir", &self.dir)
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

// === impl DiskTier ===

impl DiskTier {
    /// A tier in `dir` (created, and emptied of earlier body files) holding at most
    /// `max_bytes` of bodies.
    pub fn new(dir: &Path, max_bytes: u64, on_evict: Option<EvictHook>) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        for f in std::fs::read_dir(dir)? {
            let f = f?;
            let name = f.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".body") || name.ends_with(".tmp") {
                std::fs::remove_file(f.path())?;
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            max_bytes,
            on_evict,
            state: Mutex::new(State::default()),
            writes: AtomicU64::new(0),
        })
    }

    fn path(&self, key: &CacheKey) -> PathBuf {
        self.dir.join(format!("{:032x}.body", key.0))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the maps consistent enough to keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn forget(&self, key: &CacheKey) -> Option<Slot> {
        let mut st = self.lock();
        let slot = st.slots.remove(key)?;
        st.lru.remove(&slot.tick);
        st.bytes -= slot.len;
        Some(slot)
    }
}

impl Storage for DiskTier {
    fn get(&self, key: &CacheKey) -> Option<Entry> {
        let head = {
            let mut st = self.lock();
            st.tick += 1;
            let tick = st.tick;
            let slot = st.slots.get_mut(key)?;
            let old = std::mem::replace(&mut slot.tick, tick);
            let head = slot.head.clone();
            st.lru.remove(&old);
            st.lru.insert(tick, *key);
            head
        };
        match std::fs::read(self.path(key)) {
            Ok(body) => Some(Entry {
                head,
                body: Bytes::from(body),
            }),
            Err(e) => {
                tracing::warn!(error = %e, "cache body file unreadable; dropping the entry");
                self.forget(key);
                None
            }
        }
    }

    fn put(&self, key: CacheKey, entry: Entry) {
        let len = entry.body.len() as u64;
        if len > self.max_bytes {
            return;
        }
        let path = self.path(&key);
        let n = self.writes.fetch_add(1, Ordering::Relaxed);
        let tmp = path.with_extension(format!("{n}.tmp"));
        let written = std::fs::write(&tmp, &entry.body).and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            tracing::warn!(error = %e, "cannot write a cache body file");
            let _ = std::fs::remove_file(&tmp);
            return;
        }
        let mut evicted = Vec::new();
        {
            let mut st = self.lock();
            st.tick += 1;
            let tick = st.tick;
            if let Some(old) = st.slots.insert(
                key,
                Slot {
                    head: entry.head,
                    len,
                    tick,
                },
            ) {
                st.lru.remove(&old.tick);
                st.bytes -= old.len;
            }
            st.lru.insert(tick, key);
            st.bytes += len;
            while st.bytes > self.max_bytes {
                let Some((_, victim)) = st.lru.pop_first() else {
                    break;
                };
                if let Some(slot) = st.slots.remove(&victim) {
                    st.bytes -= slot.len;
                    evicted.push((victim, slot.head));
                }
            }
        }
        for (k, head) in evicted {
            let _ = std::fs::remove_file(self.path(&k));
            if let Some(hook) = &self.on_evict {
                hook(k, &head);
            }
        }
    }

    fn refresh(&self, key: &CacheKey, head: Arc<Head>) {
        if let Some(slot) = self.lock().slots.get_mut(key) {
            slot.head = head;
        }
    }

    fn remove(&self, key: &CacheKey) -> bool {
        let present = self.forget(key).is_some();
        if present {
            let _ = std::fs::remove_file(self.path(key));
        }
        present
    }

    fn contains(&self, key: &CacheKey) -> bool {
        self.lock().slots.contains_key(key)
    }

    fn usage(&self) -> (u64, u64) {
        let st = self.lock();
        (st.slots.len() as u64, st.bytes)
    }
}
