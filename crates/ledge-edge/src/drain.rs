//! Graceful shutdown of the viewer listeners: once [`Drain::start`] is called every listener
//! stops accepting (its socket is closed, so new connections are refused), and every open
//! connection finishes the request it is serving and closes. [`Drain::closed`] and
//! [`Drain::idle`] let the caller wait for both, typically under a deadline.
//!
//! Listeners and connections run on several worker threads, each with its own runtime, so
//! the state is shared through atomics, a `watch` channel and a `Notify` (all
//! runtime-agnostic), and counted with guards that cannot be forgotten.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{watch, Notify};

/// The drain state shared by the listeners, their connections and whoever stops them.
#[derive(Debug)]
pub struct Drain {
    draining: watch::Sender<bool>,
    listeners: AtomicUsize,
    connections: AtomicUsize,
    /// Signalled whenever a count drops.
    dropped: Notify,
}

/// Counts one open listener or connection until dropped.
#[derive(Debug)]
pub struct Guard {
    drain: Arc<Drain>,
    listener: bool,
}

impl Drain {
    /// A drain not started, with nothing open.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            draining: watch::Sender::new(false),
            listeners: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            dropped: Notify::new(),
        })
    }

    /// Tells every listener to stop accepting and every connection to finish.
    pub fn start(&self) {
        self.draining.send_replace(true);
    }

    /// Resolves once [`Self::start`] was called.
    pub async fn started(&self) {
        let mut rx = self.draining.subscribe();
        // An error means the sender is gone, which cannot happen while `self` lives.
        let _ = rx.wait_for(|d| *d).await;
    }

    /// Counts an open listener.
    pub fn listener(self: &Arc<Self>) -> Guard {
        self.listeners.fetch_add(1, Ordering::AcqRel);
        Guard {
            drain: self.clone(),
            listener: true,
        }
    }

    /// Counts an open connection.
    pub fn connection(self: &Arc<Self>) -> Guard {
        self.connections.fetch_add(1, Ordering::AcqRel);
        Guard {
            drain: self.clone(),
            listener: false,
        }
    }

    /// Open connections right now.
    pub fn open_connections(&self) -> usize {
        self.connections.load(Ordering::Acquire)
    }

    /// Resolves once no listener is open.
    pub async fn closed(&self) {
        self.wait_zero(&self.listeners).await;
    }

    /// Resolves once no connection is open.
    pub async fn idle(&self) {
        self.wait_zero(&self.connections).await;
    }

    async fn wait_zero(&self, count: &AtomicUsize) {
        loop {
            let dropped = self.dropped.notified();
            tokio::pin!(dropped);
            // Registered before the check, so a drop in between is not missed.
            dropped.as_mut().enable();
            if count.load(Ordering::Acquire) == 0 {
                return;
            }
            dropped.await;
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let count = if self.listener {
            &self.drain.listeners
        } else {
            &self.drain.connections
        };
        count.fetch_sub(1, Ordering::AcqRel);
        self.drain.dropped.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn waits_for_every_guard() {
        let d = Drain::new();
        let l = d.listener();
        let c = d.connection();
        let started = tokio::time::timeout(Duration::from_millis(20), d.started()).await;
        assert!(started.is_err(), "not started yet");
        d.start();
        d.started().await;
        let idle = tokio::spawn({
            let d = d.clone();
            async move { d.idle().await }
        });
        drop(l);
        d.closed().await;
        assert!(!idle.is_finished());
        assert_eq!(d.open_connections(), 1);
        drop(c);
        tokio::time::timeout(Duration::from_secs(5), idle)
            .await
            .expect("idle after the last connection")
            .expect("task");
    }
}
