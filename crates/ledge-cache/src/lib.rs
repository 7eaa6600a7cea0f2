//! The edge's HTTP cache, with CloudFront's semantics (`shared/reference/cloudfront-cache.md`
//! §3, §5, §8.3, §9). No sockets: the edge's request pipeline calls [`Cache::serve`] with a
//! closure that fetches from the origin.
//!
//! # Use
//! ```no_run
//! # async fn demo(parts: http::request::Parts, settings: ledge_cache::CacheSettings)
//! #     -> Result<(), std::io::Error> {
//! use ledge_cache::{Cache, CacheConfig, CacheRequest, NoStream, OriginResponse};
//! let cache = Cache::new(CacheConfig::default()).expect("cache");
//! let req = CacheRequest::new("E1ABC", "d111.ledge.localhost", &parts, &settings);
//! let out = cache
//!     .serve(&req, |cond| async move {
//!         // Build the origin request from `ledge_cache::key::origin_params(&req)`, strip the
//!         // viewer's Range/If-* when `cond.cache_fill`, add `cond`'s validators, send it.
//!         let _ = cond;
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
//! # Modules
//! - [`key`]: cache keys (§3) and what reaches the origin (§3.5).
//! - [`ttl`]: freshness lifetimes and cacheability (§5.1–5.5, §5.7).
//! - [`status`]: [`CacheStatus`], the `X-Cache` value.
//! - [`store`]: the [`store::Storage`] tiers (memory via moka, optional disk).
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

pub use cache::{Cache, CacheConfig, CacheStats, DiskConfig, DEFAULT_MAX_OBJECT_SIZE};
pub use error::{CacheError, SettingsError};
pub use key::origin_params;
pub use key::{CacheKey, OriginParams};
pub use request::{CacheRequest, Conditional};
pub use response::{Body, CacheOutcome, NoStream, OriginResponse};
pub use settings::{CacheSettings, TtlBounds};
pub use status::CacheStatus;

#[cfg(test)]
pub(crate) mod testutil;
