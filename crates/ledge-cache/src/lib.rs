//! The edge's HTTP cache, with CloudFront's semantics (`shared/reference/cloudfront-cache.md`
//! §3, §5, §8.3, §9). It knows no sockets: the edge's request pipeline calls [`Cache::serve`]
//! with a closure that fetches from the origin, and sends the [`CacheOutcome`] it gets back.
//!
//! # What this crate owns
//! Cache keys, what of the viewer request reaches the origin (§3.5), TTLs and cacheability,
//! the memory and disk tiers, request collapsing, revalidation, viewer conditionals, ranges,
//! HEAD, `Age`, stale serving, edge compression and invalidation. It does not own the origin
//! request itself (the §4.2 fixed headers, timeouts, failover), custom error pages (§8.4),
//! `X-Cache`/`Via`/`X-Amz-Cf-*` headers or Lambda@Edge: those are the edge's.
//!
//! # How to use
//! 1. At startup: [`Cache::new`] with a [`CacheConfig`] (memory bytes, optional
//!    [`DiskConfig`], `max_object_size`). Clone the `Cache` freely (it is an `Arc`).
//! 2. Per config snapshot: one [`CacheSettings::from_behavior`] per cache behavior, kept in an
//!    `Arc` beside the behavior.
//! 3. Per request: after behavior selection, the default-root-object rewrite and the
//!    viewer-request trigger, build a [`CacheRequest`] and call [`Cache::serve`]:
//!
//! ```no_run
//! # async fn demo(parts: http::request::Parts, settings: ledge_cache::CacheSettings)
//! #     -> Result<(), std::io::Error> {
//! use ledge_cache::{origin_params, Cache, CacheConfig, CacheRequest, NoStream, OriginResponse};
//! let cache = Cache::new(CacheConfig::default()).expect("cache");
//! let req = CacheRequest::new("E1ABC", "d111.ledge.localhost", &parts, &settings);
//! let out = cache
//!     .serve(&req, |cond| async move {
//!         // Origin request: viewer values from `origin_params(&req)` (§3.5) plus the fixed
//!         // §4.2 headers; `cond.prepare(&mut headers)` strips the viewer's Range/If-* on
//!         // cache fills and adds the revalidation validators. Run the origin-request and
//!         // origin-response triggers here too.
//!         let _ = (origin_params(&req), cond);
//!         Ok::<_, std::io::Error>(OriginResponse::<NoStream>::full(
//!             http::StatusCode::OK,
//!             http::HeaderMap::new(),
//!             "body",
//!         ))
//!     })
//!     .await?;
//! let x_cache = out.cache_status.as_str(); // "Miss from cloudfront"
//! # let _ = x_cache; Ok(()) }
//! ```
//!
//! - `fetch` is called at most once per `serve`, and not at all when the request is a hit or
//!   joins another caller's in-flight fetch for the same key (§5.9).
//! - [`CacheOutcome`] carries the status, headers (with `Age` on cached answers) and body to
//!   send, and the [`CacheStatus`] for `X-Cache`, logs and metrics. Bodies are empty for
//!   `HEAD` and 304 (`Content-Length` still tells the entity length for `HEAD`).
//! - An `Err` from `fetch` is returned unchanged unless a stale copy may stand in (§5.3).
//!   To have origin failures cached like an origin 502/504 (§6), return them as an
//!   [`OriginResponse`] instead.
//!
//! # Object size cap
//! Cacheable bodies are buffered whole as [`bytes::Bytes`]. The cap is
//! [`Cache::max_object_size`] (default 64 MiB, [`DEFAULT_MAX_OBJECT_SIZE`]; CloudFront's own
//! is 30 GB). The edge should check `Content-Length` (or count while reading) and, above the
//! cap, hand the body over as [`Body::Stream`]: such responses go to the viewer untouched and
//! are never stored nor compressed. A [`Body::Full`] above the cap is served but not stored.
//! Bodies must be complete: a truncated body must come back as an error or a stream (§5.1).
//!
//! # Design
//! - Keys are 128-bit hashes (per-process keyed SipHash + a seeded mixer) built without
//!   allocating ([`key`]).
//! - Memory tier: moka (byte weigher, TinyLFU; chosen over foyer for a much lighter build and
//!   a proven `sync` cache, see [`store`]); disk tier: our own, one file per body with the
//!   heads in memory, LRU by bytes; write-through, disk hits promoted.
//! - Collapsing: a per-key `watch` channel; no lock across `.await`; a cancelled leader
//!   releases its followers, who retry ([`collapse`]).
//! - Invalidation: per-distribution ordered index of stored paths; exact paths are one
//!   lookup, `prefix*` a range scan ([`invalidate`]).
//!
//! # Deviations and limitations
//! - `stale-while-revalidate`: the stale copy is served at once and the background refresh is
//!   handed to the edge as [`CacheOutcome::refresh`] (run it with [`Cache::refresh`]); the
//!   cache cannot spawn it itself because the fetch closure borrows the request.
//! - Origin 206 responses are passed through, not stored (fills never send `Range`, so an
//!   origin only answers 206 when it ignores that).
//! - HEAD misses are forwarded and store nothing (§5.11's ledge reading).
//! - Compression needs a `Content-Length` equal to the buffered body when one is present; a
//!   missing one counts as the body length.
//! - `stale-if-error=N` limits stale serving to N s past expiry; without it a stale copy stands
//!   in for any 5xx or fetch error (§5.3).
//! - The disk tier is a cache, not a store: it is emptied at start. The heads (status,
//!   headers, timing) of disk entries stay in memory, outside the memory tier's budget.
//!
//! Readings of points the spec leaves open (unverified there):
//! - `no-cache` with MinTTL 0 is stored with TTL 0 when it has a validator, so the next
//!   request revalidates (`RefreshHit` on 304); `no-store`/`private` with MinTTL 0 are not
//!   stored. With MinTTL > 0 all three are stored for MinTTL and revalidated first every time.
//! - Error TTLs: `Expires` on an error is ignored and the header part is not capped by MaxTTL;
//!   410 follows the ordinary TTL rules.
//! - Legacy `ForwardedValues` with `Compress`: `Accept-Encoding` is normalized to gzip (key and
//!   compression), never br.
//! - `Vary` is filtered on every response (stored and passed through); `Set-Cookie` is removed
//!   when no cookie is forwarded, for cache policies too.
//! - `/img*` is a plain prefix: it matches `/img`, `/img/…` and `/imgs`, not `/images/…`
//!   (the spec's example disagrees with its own prefix rule).
//! - Stored heads always carry the body's `Content-Length` (origins that sent chunked bodies
//!   get one on hits).
//!
//! Performance and memory per cached object: `BENCHMARKS.md` beside this crate.
//!
//! # Modules
//! - [`key`]: cache keys (§3) and what reaches the origin (§3.5).
//! - [`settings`]: a behavior's resolved rules ([`CacheSettings`]).
//! - [`ttl`]: freshness lifetimes and cacheability (§5.1–5.5, §5.7).
//! - [`status`]: [`CacheStatus`], the `X-Cache` value.
//! - [`store`]: the [`store::Storage`] tiers.
//! - [`collapse`]: one origin fetch per key among concurrent misses (§5.9).
//! - [`respond`]: answers from an entry: viewer conditionals, ranges, HEAD, `Age` (§5.6, §5.8,
//!   §5.10, §5.11).
//! - [`invalidate`]: path-pattern invalidation (§9).
//! - [`compress`]: gzip/br edge compression (§8.3).

pub mod cache;
pub mod collapse;
pub mod compress;
pub mod error;
pub mod invalidate;
pub mod key;
pub mod request;
pub mod respond;
pub mod response;
pub mod settings;
pub mod status;
pub mod store;
pub mod ttl;

pub use cache::{Cache, CacheConfig, CacheStats, DiskConfig, Refresh, DEFAULT_MAX_OBJECT_SIZE};
pub use error::{CacheError, SettingsError};
pub use key::origin_params;
pub use key::{CacheKey, OriginParams};
pub use request::{CacheRequest, Conditional};
pub use response::{Body, CacheOutcome, NoStream, OriginResponse};
pub use settings::{CacheSettings, TtlBounds};
pub use status::CacheStatus;

#[cfg(test)]
pub(crate) mod testutil;

#[cfg(test)]
mod fuzz_tests;
