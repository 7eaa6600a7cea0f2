//! Edge contact (heartbeats and acks) written in batches: one transaction for everything that
//! arrived while the previous one was written, so a thousand edges acking one change cost a few
//! transactions instead of a thousand.

use tokio::sync::{mpsc, oneshot};

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

/// Writes a batch: the contacts of each edge merged (its last ack wins over heartbeats; every
/// contact refreshes `last_seen`), then one multi-row upsert for the acks and one for the
/// heartbeats, in one transaction.
async fn write(store: &Store, batch: &[Job]) -> Result<(), sqlx::Error> {
    let mut acks: Vec<&Contact> = Vec::new();
    let mut beats: Vec<&Contact> = Vec::new();
    for (contact, _) in batch.iter().rev() {
        let pop = contact.pop();
        if acks.iter().chain(&beats).any(|c| c.pop() == pop) {
            if matches!(contact, Contact::Ack { .. }) && !acks.iter().any(|c| c.pop() == pop) {
                // A later heartbeat does not hide an earlier ack.
                beats.retain(|c| c.pop() != pop);
                acks.push(contact);
            }
            continue;
        }
        match contact {
            Contact::Ack { .. } => acks.push(contact),
            Contact::Heartbeat { .. } => beats.push(contact),
        }
    }
    let now = chrono::Utc::now().timestamp();
    let mut tx = store.pool().begin().await?;
    for chunk in acks.chunks(ROWS_PER_STATEMENT) {
        let rows = placeholders(chunk.len(), 6);
        let sql = format!(
            "INSERT INTO cf_edge_acks (edge_name, acked_version, last_seen, address, token_name, \
             last_error) VALUES {rows} ON CONFLICT (edge_name) DO UPDATE SET \
             acked_version = excluded.acked_version, last_seen = excluded.last_seen, \
             address = COALESCE(excluded.address, cf_edge_acks.address), \
             token_name = excluded.token_name, last_error = excluded.last_error"
        );
        let mut q = sqlx::query(&sql);
        for c in chunk {
            if let Contact::Ack {
                pop,
                address,
                token,
                version,
                error,
            } = c
            {
                q = q
                    .bind(pop.as_str())
                    .bind(*version)
                    .bind(now)
                    .bind(address.as_deref())
                    .bind(token.as_str())
                    .bind(error.as_deref());
            }
        }
        q.execute(&mut *tx).await?;
    }
    for chunk in beats.chunks(ROWS_PER_STATEMENT) {
        let rows = placeholders(chunk.len(), 4);
        let sql = format!(
            "INSERT INTO cf_edge_acks (edge_name, acked_version, last_seen, address, token_name) \
             VALUES {rows} ON CONFLICT (edge_name) DO UPDATE SET last_seen = excluded.last_seen, \
             address = COALESCE(excluded.address, cf_edge_acks.address), \
             token_name = excluded.token_name"
        );
        let mut q = sqlx::query(&sql);
        for c in chunk {
            if let Contact::Heartbeat {
                pop,
                address,
                token,
            } = c
            {
                q = q
                    .bind(pop.as_str())
                    .bind(now)
                    .bind(address.as_deref())
                    .bind(token.as_str());
            }
        }
        q.execute(&mut *tx).await?;
    }
    tx.commit().await
}

/// Rows per multi-row statement (6 parameters each, far below both engines' limits).
const ROWS_PER_STATEMENT: usize = 256;

/// `($1, $2, …), (…)` for `rows` rows of `cols` columns; heartbeats (4 columns) insert
/// acked_version 0 as a literal.
fn placeholders(rows: usize, cols: usize) -> String {
    let mut out = String::new();
    let mut n = 0;
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        if cols == 6 {
            let v: Vec<String> = (0..6).map(|_| next()).collect();
            out.push_str(&format!("({})", v.join(", ")));
        } else {
            let (a, b, c, d) = (next(), next(), next(), next());
            out.push_str(&format!("({a}, 0, {b}, {c}, {d})"));
        }
    }
    out
}

impl Contact {
    fn pop(&self) -> &str {
        match self {
            Self::Heartbeat { pop, .. } | Self::Ack { pop, .. } => pop,
        }
    }
}
