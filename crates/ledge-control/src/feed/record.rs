//! Edge contact (heartbeats and acks) written in batches: one transaction for everything that
//! arrived while the previous one was written, so a thousand edges acking one change cost a few
//! transactions instead of a thousand.

use tokio::sync::{mpsc, oneshot};

use super::edges;
use crate::store::Store;

/// Most contacts waiting to be written; a full queue makes edges wait (backpressure).
const QUEUE: usize = 4096;
/// Most contacts written in one transaction.
const BATCH: usize = 512;

/// One contact from an edge.
#[derive(Debug)]
pub(crate) enum Contact {
    /// A feed poll: the edge is alive (registered at version 0 when new).
    Heartbeat {
        pop: String,
        address: Option<String>,
        token: String,
    },
    /// What the edge applied, or why it refused a newer version.
    Ack {
        pop: String,
        address: Option<String>,
        token: String,
        version: i64,
        error: Option<String>,
    },
}

type Job = (Contact, oneshot::Sender<Result<(), String>>);

/// The handle of the writer task; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Recorder {
    tx: mpsc::Sender<Job>,
}

impl Recorder {
    /// Starts the writer task (needs a Tokio runtime); it ends when every handle is dropped.
    pub(crate) fn start(store: Store) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(store, rx));
        Self { tx }
    }

    /// Records `contact`; returns once it is committed.
    pub(crate) async fn record(&self, contact: Contact) -> Result<(), String> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send((contact, done))
            .await
            .map_err(|_| "the edge recorder stopped".to_owned())?;
        wait.await
            .map_err(|_| "the edge recorder stopped".to_owned())?
    }
}

async fn writer(store: Store, mut rx: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let result = write(&store, &batch).await.map_err(|e| e.to_string());
        if let Err(e) = &result {
            tracing::warn!(error = %e, n = batch.len(), "cannot record edge contact");
        }
        for (_, done) in batch.drain(..) {
            let _ = done.send(result.clone());
        }
    }
}

async fn write(store: &Store, batch: &[Job]) -> Result<(), sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    for (contact, _) in batch {
        match contact {
            Contact::Heartbeat {
                pop,
                address,
                token,
            } => edges::heartbeat(&mut tx, pop, address.as_deref(), token).await?,
            Contact::Ack {
                pop,
                address,
                token,
                version,
                error,
            } => {
                edges::ack(
                    &mut tx,
                    pop,
                    address.as_deref(),
                    token,
                    *version,
                    error.as_deref(),
                )
                .await?
            }
        }
    }
    tx.commit().await
}
