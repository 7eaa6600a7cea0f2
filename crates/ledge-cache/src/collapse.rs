//! Request collapsing (§5.9): concurrent misses for one key make one origin fetch.
//!
//! # Design
//! A map from key to a `watch` channel of the in-flight fetch. The first caller becomes the
//! leader and holds a [`Leader`] guard; later callers get a [`Follower`] and await the
//! leader's [`Shared`] result. The map's lock is held only to look up or insert, never across
//! an `.await`. A leader that is dropped without finishing (its task was cancelled) removes
//! its map slot and closes the channel, and every follower then retries (one of them becomes
//! the new leader), so a cancelled leader never wedges anyone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::key::CacheKey;
use crate::store::Entry;

/// What a leader hands its followers.
#[derive(Debug, Clone)]
pub enum Shared {
    /// A fresh, cacheable entry: followers answer from it (as `Hit`).
    Entry(Entry),
    /// The response was not reusable: followers go to the origin individually.
    Uncacheable,
}

/// In-flight fetches: key → (flight id, the leader's channel).
type Flights = HashMap<CacheKey, (u64, watch::Receiver<Option<Shared>>)>;

/// The in-flight fetches, by key.
#[derive(Debug, Default)]
pub struct Collapser {
    flights: Mutex<Flights>,
    ids: AtomicU64,
}

/// The caller that fetches; finish with [`Leader::complete`].
#[derive(Debug)]
pub struct Leader {
    collapser: Arc<Collapser>,
    key: CacheKey,
    id: u64,
    tx: watch::Sender<Option<Shared>>,
}

/// A caller waiting for a leader.
#[derive(Debug)]
pub struct Follower {
    rx: watch::Receiver<Option<Shared>>,
}

/// Outcome of [`Collapser::join`].
#[derive(Debug)]
pub enum Role {
    /// Fetch, then complete.
    Leader(Leader),
    /// Wait for the leader.
    Follower(Follower),
}

// === impl Collapser ===

impl Collapser {
    fn lock(&self) -> MutexGuard<'_, Flights> {
        self.flights.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Joins the flight for `key`, or starts one.
    pub fn join(self: &Arc<Self>, key: CacheKey) -> Role {
        let mut map = self.lock();
        if let Some((_, rx)) = map.get(&key) {
            return Role::Follower(Follower { rx: rx.clone() });
        }
        let id = self.ids.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = watch::channel(None);
        map.insert(key, (id, rx));
        Role::Leader(Leader {
            collapser: self.clone(),
            key,
            id,
            tx,
        })
    }

    /// Whether a fetch for `key` is in flight.
    pub fn in_flight(&self, key: &CacheKey) -> bool {
        self.lock().contains_key(key)
    }

    /// Number of keys in flight.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// No fetch in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

// === impl Leader ===

impl Leader {
    /// Publishes the result to the followers and ends the flight.
    pub fn complete(self, shared: Shared) {
        // Remove first, so a caller arriving now finds the stored entry or starts anew.
        self.unregister();
        let _ = self.tx.send(Some(shared));
    }

    fn unregister(&self) {
        let mut map = self.collapser.lock();
        if map.get(&self.key).is_some_and(|(id, _)| *id == self.id) {
            map.remove(&self.key);
        }
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        // Complete already unregistered; after a cancellation this frees the key and dropping
        // `tx` wakes the followers with "closed".
        self.unregister();
    }
}

// === impl Follower ===

impl Follower {
    /// The leader's result, or `None` when the leader went away without one.
    pub async fn wait(mut self) -> Option<Shared> {
        match self.rx.wait_for(Option::is_some).await {
            Ok(v) => v.clone(),
            Err(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn one_leader_many_followers() {
        let c = Arc::new(Collapser::default());
        let k = CacheKey(7);
        let Role::Leader(leader) = c.join(k) else {
            panic!("first caller leads")
        };
        let mut waiters = Vec::new();
        for _ in 0..5 {
            let Role::Follower(f) = c.join(k) else {
                panic!("later callers follow")
            };
            waiters.push(tokio::spawn(f.wait()));
        }
        assert!(c.in_flight(&k));
        tokio::time::sleep(Duration::from_millis(10)).await;
        leader.complete(Shared::Uncacheable);
        for w in waiters {
            assert!(matches!(w.await.unwrap(), Some(Shared::Uncacheable)));
        }
        assert!(c.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn cancelled_leader_releases_followers() {
        let c = Arc::new(Collapser::default());
        let k = CacheKey(9);
        let Role::Leader(leader) = c.join(k) else {
            panic!()
        };
        let Role::Follower(f) = c.join(k) else {
            panic!()
        };
        let waiter = tokio::spawn(f.wait());
        drop(leader);
        assert!(waiter.await.unwrap().is_none());
        assert!(matches!(c.join(k), Role::Leader(_)));
    }
}
