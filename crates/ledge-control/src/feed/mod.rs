//! The config feed edges follow: the stored state as a versioned [`ConfigSnapshot`], served over
//! HTTP to edges holding an edge token (`Authorization: Bearer <token>`, never SigV4).
//!
//! # Protocol (see `docs/replication.md`)
//! - `GET /ledge/feed?after=V&pop=P&address=A`: the newest snapshot when its version is above
//!   `V` (200, JSON, `X-Ledge-Version`); otherwise waits (long poll) until there is one, and
//!   answers 204 after the poll timeout. Every poll is also the edge's heartbeat.
//! - `GET /ledge/packages/<sha256>`: a function package by its hex SHA-256.
//! - `POST /ledge/ack` `{"Version", "Pop", "Address", "Error"}`: what the edge applied (or why
//!   it refused a newer version).
//! - `GET /ledge/edges`: the edges the control plane knows, as JSON.
//!
//! # Design
//! One task builds the snapshot whenever the stored config version moves and publishes it,
//! serialized once, in a `watch` channel; every long poll just waits on that channel, so a
//! thousand edges cost a thousand parked futures and one build per change. The task wakes on
//! [`Feed::poke`] (the API calls it after every successful write) and polls the database every
//! second besides, so several control processes on one PostgreSQL all see every change. The
//! valid tokens are reloaded on the same tick, and a long poll whose token was revoked is ended
//! with 401.

mod build;
pub mod edges;
mod record;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::{watch, Notify};

pub use build::{build_snapshot, BuildError};

use self::record::{Contact, Recorder};
use crate::blobs::BlobStore;
use crate::store::Store;

/// Header carrying the snapshot's version on a feed answer.
pub const VERSION_HEADER: &str = "x-ledge-version";

/// Settings of the feed.
#[derive(Debug, Clone)]
pub struct FeedConfig {
    /// Longest a feed request waits for a newer version before answering 204. Default 20 s,
    /// capped at a third of the store's edge heartbeat timeout (each poll is a heartbeat).
    pub poll_timeout: Duration,
    /// How often the database is checked for changes made by other processes. Default 1 s.
    pub refresh_interval: Duration,
}

impl Default for FeedConfig {
    fn default() -> Self {
        Self {
            poll_timeout: Duration::from_secs(20),
            refresh_interval: Duration::from_secs(1),
        }
    }
}

/// A published snapshot: its version and its JSON, serialized once.
#[derive(Debug, Clone, Default)]
struct Published {
    version: u64,
    body: Bytes,
}

/// The feed; cheap to clone.
#[derive(Debug, Clone)]
pub struct Feed {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    blobs: BlobStore,
    config: FeedConfig,
    published: watch::Sender<Arc<Published>>,
    /// Token hash → token name.
    tokens: watch::Sender<Arc<HashMap<String, String>>>,
    poke: Notify,
    recorder: Recorder,
}

// === impl Feed ===

impl Feed {
    /// A feed over `store` and `blobs`, with the current snapshot already built.
    pub async fn open(
        store: Store,
        blobs: BlobStore,
        mut config: FeedConfig,
    ) -> Result<Self, BuildError> {
        let third = Duration::from_secs(u64::try_from(store.edge_liveness_secs() / 3).unwrap_or(1));
        config.poll_timeout = config.poll_timeout.min(third.max(Duration::from_secs(1)));
        let (published, _) = watch::channel(Arc::new(Published::default()));
        let (tokens, _) = watch::channel(Arc::new(HashMap::new()));
        let feed = Self {
            inner: Arc::new(Inner {
                recorder: Recorder::start(store.clone()),
                store,
                blobs,
                config,
                published,
                tokens,
                poke: Notify::new(),
            }),
        };
        feed.refresh().await?;
        Ok(feed)
    }

    /// The version now published.
    pub fn version(&self) -> u64 {
        self.inner.published.borrow().version
    }

    /// Wakes the builder: something may have changed.
    pub fn poke(&self) {
        self.inner.poke.notify_one();
    }

    /// Reloads the tokens and, when the stored version moved, builds and publishes it.
    pub async fn refresh(&self) -> Result<(), BuildError> {
        let tokens: HashMap<String, String> = edges::token_hashes(&self.inner.store)
            .await?
            .into_iter()
            .collect();
        if **self.inner.tokens.borrow() != tokens {
            self.inner.tokens.send_replace(Arc::new(tokens));
        }
        let stored = u64::try_from(self.inner.store.config_version().await?).unwrap_or(0);
        if stored > self.version() || self.inner.published.borrow().body.is_empty() {
            let snapshot = build_snapshot(&self.inner.store).await?;
            if snapshot.version > self.version() || self.inner.published.borrow().body.is_empty() {
                let published = Published {
                    version: snapshot.version,
                    body: Bytes::from(snapshot.to_json()),
                };
                tracing::debug!(version = published.version, "config snapshot published");
                self.inner.published.send_replace(Arc::new(published));
            }
        }
        Ok(())
    }

    /// Keeps the published snapshot and the tokens current, forever.
    pub async fn run(self) {
        loop {
            tokio::select! {
                _ = self.inner.poke.notified() => {}
                _ = tokio::time::sleep(self.inner.config.refresh_interval) => {}
            }
            if let Err(e) = self.refresh().await {
                tracing::warn!(error = %e, "config feed refresh failed");
            }
        }
    }

    /// The feed's routes (`/ledge/...`), to merge beside the API router.
    pub fn routes(&self) -> Router {
        Router::new()
            .route("/ledge/feed", get(feed))
            .route("/ledge/packages/{sha256}", get(package))
            .route("/ledge/ack", post(ack))
            .route("/ledge/edges", get(list_edges))
            .with_state(self.clone())
    }

    /// The token name of a valid `Authorization: Bearer` header.
    fn authenticate(&self, headers: &HeaderMap) -> Option<(String, String)> {
        let token = bearer(headers)?;
        let hash = edges::token_hash(token);
        let name = self.inner.tokens.borrow().get(&hash).cloned()?;
        Some((hash, name))
    }
}

/// Middleware for the API router: pokes the feed after every successful write, so edges hear
/// of it at once.
pub async fn poke_after_writes(State(feed): State<Feed>, req: Request, next: Next) -> Response {
    let write = !matches!(req.method().as_str(), "GET" | "HEAD" | "OPTIONS");
    let resp = next.run(req).await;
    if write && resp.status().is_success() {
        feed.poke();
    }
    resp
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ")?.trim();
    (!token.is_empty()).then_some(token)
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "missing, unknown or revoked edge token\n",
    )
        .into_response()
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::warn!(error = %e, "feed request failed");
    (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response()
}

/// Query of `GET /ledge/feed`.
#[derive(Debug, Deserialize)]
struct FeedQuery {
    #[serde(default)]
    after: u64,
    pop: String,
    address: Option<String>,
}

async fn feed(
    State(feed): State<Feed>,
    headers: HeaderMap,
    Query(q): Query<FeedQuery>,
) -> Response {
    let Some((hash, name)) = feed.authenticate(&headers) else {
        return unauthorized();
    };
    let heartbeat = Contact::Heartbeat {
        pop: q.pop.clone(),
        address: q.address.clone(),
        token: name,
    };
    if let Err(e) = feed.inner.recorder.record(heartbeat).await {
        return internal(e);
    }
    let mut published = feed.inner.published.subscribe();
    let mut tokens = feed.inner.tokens.subscribe();
    let deadline = tokio::time::sleep(feed.inner.config.poll_timeout);
    tokio::pin!(deadline);
    loop {
        let current = published.borrow_and_update().clone();
        if current.version > q.after && !current.body.is_empty() {
            let mut resp = (StatusCode::OK, current.body.clone()).into_response();
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            h.insert(VERSION_HEADER, HeaderValue::from(current.version));
            return resp;
        }
        tokio::select! {
            changed = published.changed() => {
                if changed.is_err() {
                    return internal("the feed is shutting down");
                }
            }
            changed = tokens.changed() => {
                let revoked = changed.is_err() || !tokens.borrow_and_update().contains_key(&hash);
                if revoked {
                    return unauthorized();
                }
            }
            () = &mut deadline => return StatusCode::NO_CONTENT.into_response(),
        }
    }
}

async fn package(
    State(feed): State<Feed>,
    headers: HeaderMap,
    Path(sha): Path<String>,
) -> Response {
    if feed.authenticate(&headers).is_none() {
        return unauthorized();
    }
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return (StatusCode::BAD_REQUEST, "expected a hex SHA-256\n").into_response();
    }
    match feed.inner.blobs.get(&sha.to_ascii_lowercase()).await {
        Ok(bytes) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/zip")],
            bytes,
        )
            .into_response(),
        Err(object_store::Error::NotFound { .. }) => {
            (StatusCode::NOT_FOUND, "no such package\n").into_response()
        }
        Err(e) => internal(e),
    }
}

/// Body of `POST /ledge/ack`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AckBody {
    version: u64,
    pop: String,
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

async fn ack(State(feed): State<Feed>, headers: HeaderMap, Json(body): Json<AckBody>) -> Response {
    let Some((_, name)) = feed.authenticate(&headers) else {
        return unauthorized();
    };
    let version = i64::try_from(body.version).unwrap_or(i64::MAX);
    let error = body.error.as_deref().map(|e| truncate(e, 1000));
    let ack = Contact::Ack {
        pop: body.pop,
        address: body.address,
        token: name,
        version,
        error: error.map(str::to_owned),
    };
    match feed.inner.recorder.record(ack).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => internal(e),
    }
}

async fn list_edges(State(feed): State<Feed>, headers: HeaderMap) -> Response {
    if feed.authenticate(&headers).is_none() {
        return unauthorized();
    }
    match edges::list_edges(&feed.inner.store).await {
        Ok(list) => Json(list).into_response(),
        Err(e) => internal(e),
    }
}

/// `s` cut to at most `max` bytes, on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests;
