//! [`Cache`]: the entry point the edge calls once per request.

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock, Weak};
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use http::header::{AGE, CONTENT_ENCODING, CONTENT_LENGTH, SET_COOKIE, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use tokio::time::Instant;

use crate::collapse::{Collapser, Leader, Role, Shared};
use crate::compress;
use crate::error::CacheError;
use crate::invalidate::PathIndex;
use crate::key::{invalidation_path, normalize_accept_encoding, CacheKey, Keyer};
use crate::request::{CacheRequest, Conditional};
use crate::respond::{answer, Answer};
use crate::response::{Body, CacheOutcome, OriginResponse};
use crate::status::CacheStatus;
use crate::store::{next_id, DiskTier, Entry, EvictHook, Head, MemoryTier, Storage};
use crate::ttl::{self, Freshness};

/// Default cap on a cacheable object: 64 MiB.
pub const DEFAULT_MAX_OBJECT_SIZE: u64 = 64 * 1024 * 1024;

/// Bodies larger than this are compressed on the blocking pool instead of inline.
const INLINE_COMPRESS_MAX: usize = 128 * 1024;

/// Sizes and places of the cache tiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// Memory tier budget in bytes (bodies plus headers plus bookkeeping estimate);
    /// default 256 MiB.
    pub memory_bytes: u64,
    /// Optional disk tier; default none.
    pub disk: Option<DiskConfig>,
    /// Largest body that is buffered and cached (default 64 MiB); the edge streams larger
    /// responses through as [`Body::Stream`] and they are never cached.
    pub max_object_size: u64,
}

/// The disk tier: a directory owned by the cache (its body files are deleted at start) and
/// its byte budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskConfig {
    /// Directory for body files.
    pub dir: PathBuf,
    /// Budget for the bodies on disk, in bytes.
    pub max_bytes: u64,
}

/// Counters for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Entries in the memory tier.
    pub memory_entries: u64,
    /// Weighted bytes in the memory tier.
    pub memory_bytes: u64,
    /// Entries in the disk tier.
    pub disk_entries: u64,
    /// Body bytes in the disk tier.
    pub disk_bytes: u64,
    /// Keys in the invalidation index.
    pub indexed: u64,
    /// Origin fetches in flight that others may join.
    pub in_flight: u64,
}

/// A `stale-while-revalidate` refresh handed to the edge with a stale answer; run it with
/// [`Cache::refresh`]. Holds the key's in-flight slot (so other requests get the stale copy
/// without waiting); dropping it gives the slot up.
#[derive(Debug)]
pub struct Refresh {
    leader: Leader,
    key: CacheKey,
    stale: Entry,
}

/// The edge's HTTP cache; cheap to clone (shared state behind an `Arc`).
#[derive(Debug, Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    cfg: CacheConfig,
    keyer: Keyer,
    memory: MemoryTier,
    disk: Option<Arc<DiskTier>>,
    index: Arc<PathIndex>,
    collapser: Arc<Collapser>,
}

// === impl CacheConfig ===

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            memory_bytes: 256 * 1024 * 1024,
            disk: None,
            max_object_size: DEFAULT_MAX_OBJECT_SIZE,
        }
    }
}

// === impl Cache ===

impl Cache {
    /// A cache with the given tiers; prepares the disk directory (deleting body files left
    /// by an earlier run).
    pub fn new(cfg: CacheConfig) -> Result<Self, CacheError> {
        if cfg.memory_bytes == 0 {
            return Err(CacheError::Config("memory_bytes must be above zero"));
        }
        if cfg.disk.as_ref().is_some_and(|d| d.max_bytes == 0) {
            return Err(CacheError::Config(
                "the disk tier's max_bytes must be above zero",
            ));
        }
        let index = Arc::new(PathIndex::default());
        let disk_slot: Arc<OnceLock<Weak<DiskTier>>> = Arc::new(OnceLock::new());
        let mem_hook: EvictHook = {
            let (index, disk_slot) = (index.clone(), disk_slot.clone());
            Arc::new(move |key: CacheKey, head: &Head| {
                let on_disk = disk_slot
                    .get()
                    .and_then(Weak::upgrade)
                    .is_some_and(|d| d.contains(&key));
                if !on_disk {
                    index.remove(&head.distribution_id, &head.path, key, head.id);
                }
            })
        };
        let memory = MemoryTier::new(cfg.memory_bytes, Some(mem_hook));
        let disk = match &cfg.disk {
            None => None,
            Some(d) => {
                let hook: EvictHook = {
                    let (index, memory) = (index.clone(), memory.clone());
                    Arc::new(move |key: CacheKey, head: &Head| {
                        // The index holds the union of both tiers.
                        if !memory.contains(&key) {
                            index.remove(&head.distribution_id, &head.path, key, head.id);
                        }
                    })
                };
                let tier = DiskTier::new(&d.dir, d.max_bytes, Some(hook)).map_err(|source| {
                    CacheError::DiskDir {
                        dir: d.dir.clone(),
                        source,
                    }
                })?;
                let tier = Arc::new(tier);
                let _ = disk_slot.set(Arc::downgrade(&tier));
                Some(tier)
            }
        };
        Ok(Self {
            inner: Arc::new(Inner {
                cfg,
                keyer: Keyer::new(),
                memory,
                disk,
                index,
                collapser: Arc::new(Collapser::default()),
            }),
        })
    }

    /// Largest body the cache buffers and stores; above it the edge should stream the
    /// response through as [`Body::Stream`].
    pub fn max_object_size(&self) -> u64 {
        self.inner.cfg.max_object_size
    }

    /// The cache key of a request (exposed for logs, tests and benchmarks).
    pub fn key(&self, req: &CacheRequest<'_>) -> CacheKey {
        self.inner.keyer.key(req)
    }

    /// Looks `req` up without fetching: the fresh entry's response (`Hit`), if any.
    /// The edge may use it for a fast path; [`Cache::serve`] does the same lookup first.
    pub async fn lookup_fresh<S>(&self, req: &CacheRequest<'_>) -> Option<CacheOutcome<S>> {
        if !self.cacheable(req) {
            return None;
        }
        let now = Instant::now();
        let e = self.lookup(self.key(req)).await?;
        e.head
            .is_fresh(now)
            .then(|| self.answer(&e, req, now, CacheStatus::Hit, true))
    }

    /// Serves `req` from the cache, or through `fetch`.
    ///
    /// - Fresh entry: answered from cache (`Hit`): viewer conditionals give 304, `Range`
    ///   gives 206/416, `HEAD` gets headers only, `Age` is set.
    /// - Stale entry with validators: `fetch` gets a [`Conditional`] with them; a 304
    ///   refreshes the entry (`RefreshHit`); a 5xx or an `Err` serves the stale copy (`Hit`)
    ///   when §5.3/§5.7 allow it.
    /// - Miss: `fetch` is called; concurrent callers with the same key wait for the first
    ///   one's result (§5.9) and their own `fetch` is never called, unless that result is not
    ///   reusable, in which case each calls its own.
    /// - Not cacheable (method, caching disabled): `fetch(Conditional::pass())`, the response
    ///   passed through (only §5.4/§5.5 header rules applied).
    ///
    /// `fetch` is called at most once. An `Err` from it is returned as is unless a stale entry
    /// stands in; an edge that wants origin failures cached like an origin 502/504 (§6) turns
    /// them into an [`OriginResponse`] itself. Bodies returned as [`Body::Stream`] are passed
    /// through and never stored. Dropping the returned future (viewer gone) is safe at any
    /// point: waiting callers then retry.
    pub async fn serve<S, F, Fut, E>(
        &self,
        req: &CacheRequest<'_>,
        fetch: F,
    ) -> Result<CacheOutcome<S>, E>
    where
        F: FnOnce(Conditional) -> Fut,
        Fut: Future<Output = Result<OriginResponse<S>, E>>,
    {
        // The rest is boxed: a hit needs none of it, and a future is moved whole, whatever
        // state it is in, so a hit would otherwise copy the origin round trip's state around.
        if !self.cacheable(req) {
            return Box::pin(self.pass(req, fetch)).await;
        }
        let key = self.key(req);
        let now = Instant::now();
        let stale = match self.lookup(key).await {
            Some(e) if e.head.is_fresh(now) => {
                return Ok(self.answer(&e, req, now, CacheStatus::Hit, true));
            }
            other => other,
        };
        Box::pin(self.serve_unfresh(req, key, now, stale, fetch)).await
    }

    /// [`Self::serve`] once the lookup at `now` found no fresh entry (`stale`: what it found).
    async fn serve_unfresh<S, F, Fut, E>(
        &self,
        req: &CacheRequest<'_>,
        key: CacheKey,
        now: Instant,
        stale: Option<Entry>,
        fetch: F,
    ) -> Result<CacheOutcome<S>, E>
    where
        F: FnOnce(Conditional) -> Fut,
        Fut: Future<Output = Result<OriginResponse<S>, E>>,
    {
        if *req.method == Method::HEAD {
            // §5.11: a HEAD miss is forwarded and stores nothing.
            return self.pass(req, fetch).await;
        }
        if let Some(e) = &stale {
            let f = &e.head.freshness;
            let swr = !f.stale_while_revalidate.is_zero()
                && !f.origin_first
                && e.head.staleness(now) <= f.stale_while_revalidate;
            if swr {
                // §5.7: serve the stale copy now; one refresh per key runs in the background.
                let mut out = self.answer(e, req, now, CacheStatus::Hit, true);
                if let Role::Leader(leader) = self.inner.collapser.join(key) {
                    out.refresh = Some(Refresh {
                        leader,
                        key,
                        stale: e.clone(),
                    });
                }
                return Ok(out);
            }
        }
        let leader = if req.settings.forwards_cookies() {
            None
        } else {
            loop {
                match self.inner.collapser.join(key) {
                    Role::Leader(l) => {
                        // Someone may have filled the entry between our lookup and join.
                        if let Some(e) = self.inner.memory.get(&key) {
                            let now = Instant::now();
                            if e.head.is_fresh(now) {
                                l.complete(Shared::Entry(e.clone()));
                                return Ok(self.answer(&e, req, now, CacheStatus::Hit, true));
                            }
                        }
                        break Some(l);
                    }
                    Role::Follower(f) => match f.wait().await {
                        Some(Shared::Entry(e)) => {
                            return Ok(self.answer(
                                &e,
                                req,
                                Instant::now(),
                                CacheStatus::Hit,
                                true,
                            ));
                        }
                        Some(Shared::Uncacheable) => break None,
                        None => continue,
                    },
                }
            }
        };
        let (result, shared) = self.fill(req, key, stale, fetch).await;
        if let Some(l) = leader {
            l.complete(shared);
        }
        result
    }

    /// Runs a `stale-while-revalidate` refresh handed out in [`CacheOutcome::refresh`]:
    /// one revalidation (or full fetch) of the stale entry through `fetch`, stored like any
    /// fill. `req` must describe the same request (same key) as the `serve` call that handed
    /// out `refresh`. Returns how the refresh went (`RefreshHit`, `Miss`, `Error`, or `Hit`
    /// when the stale copy stood in for a failed origin).
    pub async fn refresh<S, F, Fut, E>(
        &self,
        req: &CacheRequest<'_>,
        refresh: Refresh,
        fetch: F,
    ) -> Result<CacheStatus, E>
    where
        F: FnOnce(Conditional) -> Fut,
        Fut: Future<Output = Result<OriginResponse<S>, E>>,
    {
        let Refresh { leader, key, stale } = refresh;
        let (result, shared) = self.fill(req, key, Some(stale), fetch).await;
        leader.complete(shared);
        result.map(|o| o.cache_status)
    }

    /// Drops the entries of one distribution whose path (plus keyed query) matches one of
    /// `paths` (exact, or a prefix when ending in `*`, §9), in every tier, variants included.
    /// Returns how many entries were dropped. Cost: one index lookup per exact path, a range
    /// scan over the matching paths for a `*` pattern; no scan of the whole cache.
    pub fn invalidate(&self, distribution_id: &str, paths: &[String]) -> usize {
        let keys = self.inner.index.take_matching(distribution_id, paths);
        for k in &keys {
            self.inner.memory.remove(k);
            if let Some(d) = &self.inner.disk {
                d.remove(k);
            }
        }
        keys.len()
    }

    /// Current sizes of the tiers.
    pub fn stats(&self) -> CacheStats {
        self.inner.memory.sync();
        let (memory_entries, memory_bytes) = self.inner.memory.usage();
        let (disk_entries, disk_bytes) = self.inner.disk.as_ref().map_or((0, 0), |d| d.usage());
        CacheStats {
            memory_entries,
            memory_bytes,
            disk_entries,
            disk_bytes,
            indexed: self.inner.index.len() as u64,
            in_flight: self.inner.collapser.len() as u64,
        }
    }

    // --- internals ---

    fn cacheable(&self, req: &CacheRequest<'_>) -> bool {
        let m = req.method;
        req.settings.caching_enabled()
            && (*m == Method::GET
                || *m == Method::HEAD
                || (*m == Method::OPTIONS && req.settings.cache_options))
    }

    fn answer<S>(
        &self,
        e: &Entry,
        req: &CacheRequest<'_>,
        now: Instant,
        status: CacheStatus,
        with_age: bool,
    ) -> CacheOutcome<S> {
        answer(
            e,
            Answer {
                method: req.method,
                headers: req.headers,
                now,
                with_age,
                allow_304: !e.head.no_conditional,
                status,
            },
        )
    }

    async fn lookup(&self, key: CacheKey) -> Option<Entry> {
        if let Some(e) = self.inner.memory.get(&key) {
            return Some(e);
        }
        let disk = self.inner.disk.clone()?;
        if !disk.contains(&key) {
            // Most misses end here, without a hop to the blocking pool.
            return None;
        }
        let mark = self.inner.index.mark();
        let e = tokio::task::spawn_blocking(move || disk.get(&key))
            .await
            .ok()??;
        self.inner.memory.put(key, e.clone());
        // Indexed after the insert: an eviction notice racing the insert cannot unindex it.
        self.index(key, &e.head);
        let h = &e.head;
        if self
            .inner
            .index
            .invalidated_since(mark, &h.distribution_id, &h.path)
        {
            // An invalidation ran while we read the disk: do not resurrect the entry.
            self.drop_entry(key, h);
            return None;
        }
        Some(e)
    }

    fn index(&self, key: CacheKey, head: &Head) {
        self.inner
            .index
            .add(&head.distribution_id, &head.path, key, head.id);
    }

    /// Stores a new version: index, disk (first, so a memory eviction sees it there), memory,
    /// then index again (the disk tier may have evicted it meanwhile).
    async fn store(&self, key: CacheKey, entry: &Entry) {
        self.index(key, &entry.head);
        if let Some(disk) = self.inner.disk.clone() {
            let e = entry.clone();
            let _ = tokio::task::spawn_blocking(move || disk.put(key, e)).await;
        }
        self.inner.memory.put(key, entry.clone());
        self.index(key, &entry.head);
    }

    fn drop_entry(&self, key: CacheKey, head: &Head) {
        self.inner.memory.remove(&key);
        if let Some(d) = &self.inner.disk {
            d.remove(&key);
        }
        self.inner
            .index
            .remove(&head.distribution_id, &head.path, key, head.id);
    }

    /// Re-stores an entry whose head changed (304 refresh, stale stand-in): memory gets it
    /// back even if it was evicted meanwhile; the disk keeps its body file.
    /// Skipped when an invalidation covering the entry came in since `mark`.
    fn refresh_entry(&self, key: CacheKey, entry: &Entry, mark: u64) {
        let h = &entry.head;
        if self
            .inner
            .index
            .invalidated_since(mark, &h.distribution_id, &h.path)
        {
            return;
        }
        if let Some(d) = &self.inner.disk {
            d.refresh(&key, entry.head.clone());
        }
        self.inner.memory.put(key, entry.clone());
        self.index(key, &entry.head);
    }

    async fn pass<S, F, Fut, E>(
        &self,
        req: &CacheRequest<'_>,
        fetch: F,
    ) -> Result<CacheOutcome<S>, E>
    where
        F: FnOnce(Conditional) -> Fut,
        Fut: Future<Output = Result<OriginResponse<S>, E>>,
    {
        let OriginResponse {
            status,
            mut headers,
            body,
        } = fetch(Conditional::pass()).await?;
        ttl::filter_response_headers(&mut headers, req.settings);
        Ok(CacheOutcome {
            status,
            headers,
            body,
            cache_status: miss_or_error(status),
            stored: false,
            refresh: None,
        })
    }

    /// One origin fetch for a cacheable request: revalidation, stale fallbacks, compression,
    /// storing. Returns the viewer's result and what collapsed followers get.
    async fn fill<S, F, Fut, E>(
        &self,
        req: &CacheRequest<'_>,
        key: CacheKey,
        stale: Option<Entry>,
        fetch: F,
    ) -> (Result<CacheOutcome<S>, E>, Shared)
    where
        F: FnOnce(Conditional) -> Fut,
        Fut: Future<Output = Result<OriginResponse<S>, E>>,
    {
        let s = req.settings;
        let mut cond = Conditional::fill();
        if let Some(e) = &stale {
            let h = &e.head;
            if !h.no_conditional && !h.freshness.refetch_always && h.status == StatusCode::OK {
                cond.if_none_match = h.etag().cloned();
                cond.if_modified_since = h.last_modified().cloned();
            }
        }
        let revalidating = cond.is_revalidation();
        let mark = self.inner.index.mark();
        let result = fetch(cond).await;
        let now = Instant::now();
        let resp = match result {
            Ok(r) => r,
            Err(err) => {
                return match stale.filter(|e| stale_if_error_ok(e, now)) {
                    Some(e) => self.stand_in(req, key, &e, StatusCode::BAD_GATEWAY, now, mark),
                    None => (Err(err), Shared::Uncacheable),
                };
            }
        };
        let OriginResponse {
            status,
            mut headers,
            body,
        } = resp;
        let body = match body {
            Body::Full(b) => b,
            Body::Stream(st) => {
                ttl::filter_response_headers(&mut headers, s);
                let out = CacheOutcome {
                    status,
                    headers,
                    body: Body::Stream(st),
                    cache_status: miss_or_error(status),
                    stored: false,
                    refresh: None,
                };
                return (Ok(out), Shared::Uncacheable);
            }
        };
        if let Some(e) = stale {
            if status == StatusCode::NOT_MODIFIED && revalidating {
                return self.refreshed(req, key, &e, &headers, now, mark);
            }
            if status.is_server_error() && stale_if_error_ok(&e, now) {
                return self.stand_in(req, key, &e, status, now, mark);
            }
        }

        let strip_cookie = ttl::filter_response_headers(&mut headers, s);
        let (mut headers, body, compressed) =
            compress_if_eligible(req, status, headers, body).await;
        // Stored heads carry the body's length and an `Age` slot, so hits only replace values.
        headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        let age_placeholder = !headers.contains_key(AGE);
        if age_placeholder {
            headers.insert(AGE, HeaderValue::from_static("0"));
        }
        let fresh = ttl::freshness(status, &headers, s, SystemTime::now());
        let no_conditional = s.legacy && !s.key.cookies.is_none();
        let has_validators = headers.contains_key(http::header::ETAG)
            || headers.contains_key(http::header::LAST_MODIFIED);
        let path = invalidation_path(req);
        let mut storable = fresh.is_some_and(|f| !f.ttl.is_zero() || has_validators)
            && body.len() as u64 <= self.inner.cfg.max_object_size
            && !self
                .inner
                .index
                .invalidated_since(mark, req.distribution_id, &path);
        let viewer_headers = strip_cookie.then(|| headers.clone());
        let mut stored_headers = headers;
        if strip_cookie {
            stored_headers.remove(SET_COOKIE);
        }
        let mut body = body;
        if storable {
            // Own what is kept: values and bodies parsed by hyper are slices of its read
            // buffers and would pin whole buffers (and escape the weigher) while cached.
            // A clone is sized to its contents: the origin's map usually has room to grow.
            stored_headers = stored_headers.clone();
            own_values(&mut stored_headers);
            if !compressed {
                body = Bytes::copy_from_slice(&body);
            }
        }
        let head = Arc::new(Head {
            id: next_id(),
            status,
            headers: stored_headers,
            stored_at: now,
            freshness: fresh.unwrap_or(Freshness {
                ttl: std::time::Duration::ZERO,
                origin_first: false,
                refetch_always: false,
                stale_while_revalidate: std::time::Duration::ZERO,
                stale_if_error: None,
                is_error: status.as_u16() >= 400,
            }),
            distribution_id: req.distribution_id.into(),
            path: path.into_boxed_str(),
            no_conditional,
            stale_until: None,
            age_placeholder,
        });
        let entry = Entry { head, body };
        if storable {
            self.store(key, &entry).await;
            if self
                .inner
                .index
                .invalidated_since(mark, req.distribution_id, &entry.head.path)
            {
                // An invalidation slipped in while we stored: it wins.
                self.drop_entry(key, &entry.head);
                storable = false;
            }
        }
        let viewer_entry = match viewer_headers {
            Some(h) => Entry {
                head: Arc::new(Head {
                    headers: h,
                    ..(*entry.head).clone()
                }),
                body: entry.body.clone(),
            },
            None => entry.clone(),
        };
        let mut out = self.answer(&viewer_entry, req, now, CacheStatus::Miss, false);
        out.stored = storable;
        let shared = if storable && entry.head.is_fresh(now) {
            Shared::Entry(entry)
        } else {
            Shared::Uncacheable
        };
        (Ok(out), shared)
    }

    /// A 304 answered our revalidation: refresh the entry and serve it (`RefreshHit`).
    fn refreshed<S, E>(
        &self,
        req: &CacheRequest<'_>,
        key: CacheKey,
        stale: &Entry,
        not_modified: &HeaderMap,
        now: Instant,
        mark: u64,
    ) -> (Result<CacheOutcome<S>, E>, Shared) {
        let s = req.settings;
        let mut headers = stale.head.headers.clone();
        for name in not_modified.keys() {
            if [CONTENT_LENGTH, CONTENT_ENCODING, TRANSFER_ENCODING].contains(name) {
                continue;
            }
            headers.remove(name);
            for v in not_modified.get_all(name) {
                headers.append(name.clone(), v.clone());
            }
        }
        let strip_cookie = ttl::filter_response_headers(&mut headers, s);
        if strip_cookie {
            headers.remove(SET_COOKIE);
        }
        own_values(&mut headers);
        let fresh = ttl::freshness(stale.head.status, &headers, s, SystemTime::now());
        let head = Arc::new(Head {
            id: next_id(),
            headers,
            stored_at: now,
            freshness: fresh.unwrap_or(Freshness {
                ttl: std::time::Duration::ZERO,
                ..stale.head.freshness
            }),
            stale_until: None,
            ..(*stale.head).clone()
        });
        let entry = Entry {
            head,
            body: stale.body.clone(),
        };
        self.refresh_entry(key, &entry, mark);
        let mut out = self.answer(&entry, req, now, CacheStatus::RefreshHit, true);
        out.stored = true;
        let shared = if entry.head.is_fresh(now) {
            Shared::Entry(entry)
        } else {
            Shared::Uncacheable
        };
        (Ok(out), shared)
    }

    /// The origin failed: the stale copy stands in for `ErrorCachingMinTTL` (§5.3).
    fn stand_in<S, E>(
        &self,
        req: &CacheRequest<'_>,
        key: CacheKey,
        stale: &Entry,
        status: StatusCode,
        now: Instant,
        mark: u64,
    ) -> (Result<CacheOutcome<S>, E>, Shared) {
        let hold = req.settings.error_caching_min_ttl(status.as_u16());
        let head = Arc::new(Head {
            id: next_id(),
            stale_until: Some(now + hold),
            ..(*stale.head).clone()
        });
        let entry = Entry {
            head,
            body: stale.body.clone(),
        };
        self.refresh_entry(key, &entry, mark);
        let out = self.answer(&entry, req, now, CacheStatus::Hit, true);
        (Ok(out), Shared::Entry(entry))
    }
}

/// Re-homes every header value into one buffer owned by the map: values parsed by hyper are
/// slices of its read buffers and would pin them (outside the weigher's count) while cached;
/// one shared buffer costs one allocation instead of one or two per value.
fn own_values(map: &mut HeaderMap) {
    let total: usize = map.values().map(HeaderValue::len).sum();
    let mut buf = BytesMut::with_capacity(total);
    for v in map.values() {
        buf.extend_from_slice(v.as_bytes());
    }
    let buf = buf.freeze();
    let mut at = 0;
    for v in map.values_mut() {
        let n = v.len();
        if let Ok(mut owned) = HeaderValue::from_maybe_shared(buf.slice(at..at + n)) {
            owned.set_sensitive(v.is_sensitive());
            *v = owned;
        }
        at += n;
    }
}

fn miss_or_error(status: StatusCode) -> CacheStatus {
    if status.as_u16() >= 400 {
        CacheStatus::Error
    } else {
        CacheStatus::Miss
    }
}

/// §5.3/§5.7: may a stale entry replace an origin failure?
fn stale_if_error_ok(e: &Entry, now: Instant) -> bool {
    match e.head.freshness.stale_if_error {
        Some(w) => !w.is_zero() && e.head.staleness(now) <= w,
        None => !e.head.freshness.is_error,
    }
}

/// Compresses the body when §8.3 allows it; the flag says whether it did (the body is then a
/// fresh allocation).
async fn compress_if_eligible(
    req: &CacheRequest<'_>,
    status: StatusCode,
    mut headers: HeaderMap,
    body: Bytes,
) -> (HeaderMap, Bytes, bool) {
    let enc = normalize_accept_encoding(&req.settings.key, req.headers, req.version);
    let Some(coding) = compress::choose(req.settings, enc, status, &headers, body.len()) else {
        return (headers, body, false);
    };
    let encoded = if body.len() <= INLINE_COMPRESS_MAX {
        compress::encode(coding, &body).ok()
    } else {
        let b = body.clone();
        tokio::task::spawn_blocking(move || compress::encode(coding, &b))
            .await
            .ok()
            .and_then(Result::ok)
    };
    match encoded {
        Some(c) => {
            compress::rewrite_headers(&mut headers, coding, c.len());
            (headers, c, true)
        }
        None => (headers, body, false),
    }
}

#[cfg(test)]
mod tests;
