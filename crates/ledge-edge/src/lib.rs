//! The edge node: a caching reverse proxy with CloudFront's semantics.
//!
//! What this crate owns: the viewer listeners (HTTP/1.1, and HTTP/2 + HTTP/1.1 over TLS with
//! SNI), routing by host to a distribution and by path to a cache behavior, the request
//! pipeline with its four trigger points ([`Triggers`]), the cache step, the pooled origin
//! client, CloudFront's response headers and error pages, and following a snapshot file.
//!
//! How to use: build a [`SnapshotStore`] from a [`ledge_model::ConfigSnapshot`], an
//! [`Edge`] over it, then run [`server::serve_http`] / [`server::serve_https`] on bound
//! listeners (a [`Drain`] stops them gracefully) and, for a file, [`reload::follow_file`]. The `ledge edge` command does exactly
//! that; `docs/edge.md` describes the behaviour.

pub mod accept;
pub mod body;
pub mod cache;
pub mod cloudfront_headers;
pub mod drain;
pub mod error;
pub mod feed;
pub mod forward;
pub mod ids;
pub mod lambda;
pub mod origin;
pub mod pattern;
pub mod pipeline;
mod proxy;
pub mod reload;
pub mod response;
pub mod server;
pub mod snapshot;
pub mod sniff;
pub mod store;
pub mod tls;
pub mod triggers;

pub use body::{EdgeBody, RequestBody};
pub use cache::EdgeCache;
pub use drain::Drain;
pub use error::{EdgeError, ErrorKind, ErrorSource};
pub use ids::EdgeIdentity;
pub use origin::OriginClients;
pub use pipeline::{ConnInfo, Edge, Limits};
pub use server::ServerSettings;
pub use snapshot::CompiledSnapshot;
pub use store::{InstallError, SnapshotStore};
pub use triggers::{Flow, NoTriggers, TriggerCtx, Triggers};
