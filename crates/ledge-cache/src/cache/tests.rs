use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use http::request::Parts;

use super::*;
use crate::response::NoStream;
use crate::settings::CacheSettings;
use crate::testutil::{hmap, legacy, legacy_cookies, optimized, parts, policy};

/// A fake origin: counts fetches, records the conditionals it got, answers with `reply`.
#[derive(Default)]
struct Origin {
    hits: AtomicUsize,
    seen: Mutex<Vec<Conditional>>,
}

type Reply = (u16, Vec<(&'static str, String)>, Vec<u8>);

fn reply(status: u16, headers: &[(&'static str, &str)], body: &str) -> Reply {
    (
        status,
        headers
            .iter()
            .map(|(n, v)| (*n, (*v).to_string()))
            .collect(),
        body.as_bytes().to_vec(),
    )
}

impl Origin {
    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    async fn fetch(
        &self,
        c: Conditional,
        r: Reply,
        delay: Duration,
    ) -> Result<OriginResponse, Infallible> {
        self.hits.fetch_add(1, Ordering::SeqCst);
        self.seen.lock().unwrap().push(c);
        tokio::time::sleep(delay).await;
        let h: Vec<(&str, &str)> = r.1.iter().map(|(n, v)| (*n, v.as_str())).collect();
        Ok(OriginResponse::full(
            StatusCode::from_u16(r.0).unwrap(),
            hmap(&h),
            r.2,
        ))
    }

    fn last(&self) -> Conditional {
        self.seen.lock().unwrap().last().cloned().unwrap()
    }
}

fn cache() -> Cache {
    Cache::new(CacheConfig {
        memory_bytes: 16 << 20,
        ..Default::default()
    })
    .unwrap()
}

async fn get(
    cache: &Cache,
    origin: &Origin,
    s: &CacheSettings,
    p: &Parts,
    r: Reply,
) -> CacheOutcome<NoStream> {
    let req = CacheRequest::new("E1", "d1.ledge.localhost", p, s);
    cache
        .serve(&req, |c| origin.fetch(c, r, Duration::ZERO))
        .await
        .unwrap()
}

fn body(o: &CacheOutcome) -> &[u8] {
    o.body.as_bytes().unwrap()
}

#[tokio::test(start_paused = true)]
async fn miss_then_hit_with_age_until_expiry() {
    let (c, o, s) = (cache(), Origin::default(), optimized());
    let p = parts("GET", "/a.txt", &[]);
    let r = reply(200, &[("cache-control", "max-age=60")], "hello");
    let first = get(&c, &o, &s, &p, r.clone()).await;
    assert_eq!(
        (first.status, first.cache_status),
        (StatusCode::OK, CacheStatus::Miss)
    );
    assert!(first.stored && first.headers.get("age").is_none());
    assert!(o.last().cache_fill && !o.last().is_revalidation());
    tokio::time::sleep(Duration::from_secs(30)).await;
    let hit = get(&c, &o, &s, &p, r.clone()).await;
    assert_eq!(hit.cache_status, CacheStatus::Hit);
    assert_eq!(hit.headers["age"], "30");
    assert_eq!(body(&hit), b"hello");
    assert_eq!(o.hits(), 1);
    tokio::time::sleep(Duration::from_secs(31)).await;
    let again = get(&c, &o, &s, &p, r).await;
    assert_eq!(
        again.cache_status,
        CacheStatus::Miss,
        "expired, no validators"
    );
    assert_eq!(o.hits(), 2);
}

#[tokio::test(start_paused = true)]
async fn revalidation_304_gives_refresh_hit() {
    let (c, o, s) = (cache(), Origin::default(), optimized());
    let p = parts("GET", "/a.txt", &[]);
    let r = reply(
        200,
        &[("cache-control", "max-age=10"), ("etag", "\"v1\"")],
        "hello",
    );
    get(&c, &o, &s, &p, r).await;
    tokio::time::sleep(Duration::from_secs(11)).await;
    let nm = reply(304, &[("cache-control", "max-age=100"), ("x-new", "1")], "");
    let out = get(&c, &o, &s, &p, nm).await;
    assert_eq!(o.last().if_none_match.unwrap(), "\"v1\"");
    assert_eq!(out.cache_status, CacheStatus::RefreshHit);
    assert_eq!((out.status, body(&out)), (StatusCode::OK, &b"hello"[..]));
    assert_eq!(out.headers["x-new"], "1");
    assert_eq!(out.headers["age"], "0");
    tokio::time::sleep(Duration::from_secs(50)).await;
    let hit = get(&c, &o, &s, &p, reply(500, &[], "")).await;
    assert_eq!(hit.cache_status, CacheStatus::Hit, "new TTL from the 304");
    assert_eq!(o.hits(), 2);
    // A 200 on revalidation replaces the entry.
    tokio::time::sleep(Duration::from_secs(51)).await;
    let r2 = reply(
        200,
        &[
            ("cache-control", "max-age=100"),
            ("last-modified", "Wed, 21 Oct 2015 07:28:00 GMT"),
        ],
        "v2",
    );
    let out = get(&c, &o, &s, &p, r2).await;
    assert_eq!(
        (out.cache_status, body(&out)),
        (CacheStatus::Miss, &b"v2"[..])
    );
    tokio::time::sleep(Duration::from_secs(101)).await;
    get(&c, &o, &s, &p, reply(304, &[], "")).await;
    assert_eq!(
        o.last().if_modified_since.unwrap(),
        "Wed, 21 Oct 2015 07:28:00 GMT"
    );
}

#[tokio::test(start_paused = true)]
async fn viewer_conditional_answered_from_cache() {
    let (c, o, s) = (cache(), Origin::default(), optimized());
    let r = reply(
        200,
        &[("cache-control", "max-age=60"), ("etag", "\"v1\"")],
        "hello",
    );
    let p = parts("GET", "/a", &[("if-none-match", "\"v1\"")]);
    let first = get(&c, &o, &s, &p, r.clone()).await;
    assert_eq!(first.status, StatusCode::NOT_MODIFIED, "even on the miss");
    assert!(
        o.last().cache_fill,
        "the viewer's If-None-Match is not forwarded"
    );
    let second = get(&c, &o, &s, &p, r).await;
    assert_eq!(
        (second.status, second.cache_status),
        (StatusCode::NOT_MODIFIED, CacheStatus::Hit)
    );
    assert_eq!(o.hits(), 1);
}

#[tokio::test(start_paused = true)]
async fn concurrent_misses_collapse_into_one_fetch() {
    let c = cache();
    let o = Arc::new(Origin::default());
    let s = Arc::new(optimized());
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (c, o, s) = (c.clone(), o.clone(), s.clone());
        tasks.push(tokio::spawn(async move {
            let p = parts("GET", "/big", &[]);
            let req = CacheRequest::new("E1", "d1", &p, &s);
            let r = reply(200, &[("cache-control", "max-age=60")], "shared");
            let out = c
                .serve(&req, |cd| o.fetch(cd, r, Duration::from_millis(200)))
                .await
                .unwrap();
            (out.cache_status, body(&out).to_vec())
        }));
        tokio::task::yield_now().await;
    }
    let mut statuses = Vec::new();
    for t in tasks {
        let (st, b) = t.await.unwrap();
        assert_eq!(b, b"shared");
        statuses.push(st);
    }
    assert_eq!(o.hits(), 1);
    assert_eq!(
        statuses.iter().filter(|s| **s == CacheStatus::Miss).count(),
        1
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == CacheStatus::Hit).count(),
        19
    );
    assert_eq!(c.stats().in_flight, 0);
}

#[tokio::test(start_paused = true)]
async fn uncacheable_leader_sends_followers_to_the_origin() {
    let c = cache();
    let o = Arc::new(Origin::default());
    let s = Arc::new(optimized());
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let (c, o, s) = (c.clone(), o.clone(), s.clone());
        tasks.push(tokio::spawn(async move {
            let p = parts("GET", "/private", &[]);
            let req = CacheRequest::new("E1", "d1", &p, &s);
            let r = reply(200, &[("cache-control", "private")], "mine");
            let out = c
                .serve(&req, |cd| o.fetch(cd, r, Duration::from_millis(100)))
                .await
                .unwrap();
            out.cache_status
        }));
        tokio::task::yield_now().await;
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), CacheStatus::Miss);
    }
    assert_eq!(o.hits(), 5);
}

#[tokio::test(start_paused = true)]
async fn cancelled_leader_does_not_wedge_followers() {
    let c = cache();
    let o = Arc::new(Origin::default());
    let s = Arc::new(optimized());
    let leader = {
        let (c, o, s) = (c.clone(), o.clone(), s.clone());
        tokio::spawn(async move {
            let p = parts("GET", "/slow", &[]);
            let req = CacheRequest::new("E1", "d1", &p, &s);
            let r = reply(200, &[("cache-control", "max-age=60")], "late");
            c.serve(&req, |cd| o.fetch(cd, r, Duration::from_secs(3600)))
                .await
                .map(|o| o.cache_status)
        })
    };
    tokio::task::yield_now().await;
    let follower = {
        let (c, o, s) = (c.clone(), o.clone(), s.clone());
        tokio::spawn(async move {
            let p = parts("GET", "/slow", &[]);
            let req = CacheRequest::new("E1", "d1", &p, &s);
            let r = reply(200, &[("cache-control", "max-age=60")], "own");
            let out = c
                .serve(&req, |cd| o.fetch(cd, r, Duration::from_millis(10)))
                .await
                .unwrap();
            (out.cache_status, body(&out).to_vec())
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(o.hits(), 1, "the follower waits");
    leader.abort();
    let (st, b) = follower.await.unwrap();
    assert_eq!((st, b.as_slice()), (CacheStatus::Miss, &b"own"[..]));
    assert_eq!(o.hits(), 2);
}

#[tokio::test(start_paused = true)]
async fn stale_served_on_5xx_and_error_then_held_for_error_ttl() {
    let (c, o, s) = (cache(), Origin::default(), optimized());
    let p = parts("GET", "/a", &[]);
    get(
        &c,
        &o,
        &s,
        &p,
        reply(200, &[("cache-control", "max-age=10")], "good"),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(20)).await;
    let out = get(&c, &o, &s, &p, reply(503, &[], "down")).await;
    assert_eq!(
        (out.status, out.cache_status),
        (StatusCode::OK, CacheStatus::Hit)
    );
    assert_eq!(body(&out), b"good");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let out = get(&c, &o, &s, &p, reply(503, &[], "down")).await;
    assert_eq!(out.cache_status, CacheStatus::Hit);
    assert_eq!(o.hits(), 2, "held for ErrorCachingMinTTL without asking");
    tokio::time::sleep(Duration::from_secs(6)).await;
    let req = CacheRequest::new("E1", "d1.ledge.localhost", &p, &s);
    let out = c
        .serve(&req, |_| async {
            Err::<OriginResponse, &str>("connect refused")
        })
        .await
        .unwrap();
    assert_eq!(
        (out.cache_status, body(&out)),
        (CacheStatus::Hit, &b"good"[..])
    );
    // 4xx is returned, the stale object is not used.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let out = get(&c, &o, &s, &p, reply(403, &[], "no")).await;
    assert_eq!(
        (out.status, out.cache_status),
        (StatusCode::FORBIDDEN, CacheStatus::Error)
    );
}

#[tokio::test(start_paused = true)]
async fn stale_if_error_zero_forbids_stale_and_errors_pass_without_stale() {
    let (c, o, s) = (cache(), Origin::default(), optimized());
    let p = parts("GET", "/a", &[]);
    let r = reply(
        200,
        &[("cache-control", "max-age=10, stale-if-error=0")],
        "good",
    );
    get(&c, &o, &s, &p, r).await;
    tokio::time::sleep(Duration::from_secs(20)).await;
    let out = get(&c, &o, &s, &p, reply(502, &[], "bad")).await;
    assert_eq!(
        (out.status, out.cache_status),
        (StatusCode::BAD_GATEWAY, CacheStatus::Error)
    );
    let fresh = parts("GET", "/nothing", &[]);
    let req = CacheRequest::new("E1", "d1", &fresh, &s);
    let err = c
        .serve(&req, |_| async { Err::<OriginResponse, &str>("refused") })
        .await;
    assert_eq!(err.unwrap_err(), "refused");
}

#[tokio::test(start_paused = true)]
async fn errors_cached_for_error_caching_min_ttl() {
    let (c, o, mut s) = (cache(), Origin::default(), optimized());
    let p = parts("GET", "/missing", &[]);
    let out = get(&c, &o, &s, &p, reply(404, &[], "nf")).await;
    assert_eq!((out.cache_status, out.stored), (CacheStatus::Error, true));
    tokio::time::sleep(Duration::from_secs(9)).await;
    let out = get(&c, &o, &s, &p, reply(404, &[], "nf")).await;
    assert_eq!(out.cache_status, CacheStatus::Error);
    assert_eq!(out.headers["age"], "9");
    assert_eq!(o.hits(), 1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    get(&c, &o, &s, &p, reply(404, &[], "nf")).await;
    assert_eq!(o.hits(), 2);
    let p = parts("GET", "/denied", &[]);
    get(
        &c,
        &o,
        &s,
        &p,
        reply(401, &[("cache-control", "max-age=60")], ""),
    )
    .await;
    get(&c, &o, &s, &p, reply(401, &[], "")).await;
    assert_eq!(o.hits(), 4, "401 never cached");
    s.error_ttls.push((500, Duration::from_secs(60)));
    let p = parts("GET", "/boom", &[]);
    get(&c, &o, &s, &p, reply(500, &[], "")).await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    get(&c, &o, &s, &p, reply(500, &[], "")).await;
    assert_eq!(o.hits(), 5);
}

#[tokio::test(start_paused = true)]
async fn head_and_uncacheable_methods() {
    let (c, o, s) = (cache(), Origin::default(), optimized());
    let r = reply(200, &[("cache-control", "max-age=60")], "body");
    let head = parts("HEAD", "/h", &[]);
    let out = get(
        &c,
        &o,
        &s,
        &head,
        reply(200, &[("content-length", "4")], ""),
    )
    .await;
    assert!(
        !out.stored && !o.last().cache_fill,
        "HEAD miss forwarded, nothing stored"
    );
    get(&c, &o, &s, &parts("GET", "/h", &[]), r.clone()).await;
    let out = get(&c, &o, &s, &head, r.clone()).await;
    assert_eq!(out.cache_status, CacheStatus::Hit);
    assert!(body(&out).is_empty());
    assert_eq!(out.headers["content-length"], "4");
    let post = parts("POST", "/h", &[]);
    let out = get(&c, &o, &s, &post, r.clone()).await;
    assert_eq!((out.cache_status, out.stored), (CacheStatus::Miss, false));
    assert!(!o.last().cache_fill);
    let opts = parts("OPTIONS", "/h", &[]);
    get(&c, &o, &s, &opts, r.clone()).await;
    get(&c, &o, &s, &opts, r.clone()).await;
    assert_eq!(
        o.hits(),
        5,
        "OPTIONS not cached unless CachedMethods lists it"
    );
    let mut with_opts = optimized();
    with_opts.cache_options = true;
    get(&c, &o, &with_opts, &opts, r.clone()).await;
    let out = get(&c, &o, &with_opts, &opts, r).await;
    assert_eq!(out.cache_status, CacheStatus::Hit);
    assert_eq!(o.hits(), 6);
}

#[tokio::test(start_paused = true)]
async fn caching_disabled_passes_everything() {
    let (c, o) = (cache(), Origin::default());
    let s = CacheSettings::from_policy(
        &ledge_model::policy::managed_cache_policy(ledge_model::policy::CACHING_DISABLED).unwrap(),
        None,
    );
    let p = parts("GET", "/x", &[("range", "bytes=0-1")]);
    for _ in 0..3 {
        let out = get(
            &c,
            &o,
            &s,
            &p,
            reply(200, &[("cache-control", "max-age=60")], "abc"),
        )
        .await;
        assert_eq!((out.status, out.stored), (StatusCode::OK, false));
        assert!(!o.last().cache_fill, "viewer Range forwarded as is");
    }
    assert_eq!(o.hits(), 3);
}

#[tokio::test(start_paused = true)]
async fn range_on_a_miss_is_cut_from_the_full_object() {
    let (c, o, s) = (cache(), Origin::default(), optimized());
    let p = parts("GET", "/r", &[("range", "bytes=1-2")]);
    let r = reply(200, &[("cache-control", "max-age=60")], "abcdef");
    let out = get(&c, &o, &s, &p, r.clone()).await;
    assert!(o.last().cache_fill);
    assert_eq!(
        (out.status, body(&out)),
        (StatusCode::PARTIAL_CONTENT, &b"bc"[..])
    );
    let out = get(
        &c,
        &o,
        &s,
        &parts("GET", "/r", &[("range", "bytes=10-")]),
        r,
    )
    .await;
    assert_eq!(out.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(o.hits(), 1);
}

#[tokio::test(start_paused = true)]
async fn compression_variants_live_under_the_normalized_key() {
    let (c, o, mut s) = (cache(), Origin::default(), optimized());
    s.compress = true;
    let text = "lorem ipsum dolor sit amet ".repeat(100);
    let r = reply(
        200,
        &[
            ("cache-control", "max-age=60"),
            ("content-type", "text/html"),
            ("etag", "\"e\""),
        ],
        &text,
    );
    let gz = get(
        &c,
        &o,
        &s,
        &parts("GET", "/p", &[("accept-encoding", "gzip")]),
        r.clone(),
    )
    .await;
    assert_eq!(gz.headers["content-encoding"], "gzip");
    assert_eq!(gz.headers["vary"], "Accept-Encoding");
    assert_eq!(gz.headers["etag"], "W/\"e\"");
    assert!(body(&gz).len() < text.len() / 5);
    let br = get(
        &c,
        &o,
        &s,
        &parts("GET", "/p", &[("accept-encoding", "gzip, deflate, br")]),
        r.clone(),
    )
    .await;
    assert_eq!(br.headers["content-encoding"], "br");
    let plain = get(&c, &o, &s, &parts("GET", "/p", &[]), r.clone()).await;
    assert!(plain.headers.get("content-encoding").is_none());
    assert_eq!(body(&plain), text.as_bytes());
    assert_eq!(o.hits(), 3, "three variants");
    let again = get(
        &c,
        &o,
        &s,
        &parts("GET", "/p", &[("accept-encoding", "br, gzip")]),
        r.clone(),
    )
    .await;
    assert_eq!(
        (
            again.cache_status,
            again.headers["content-encoding"].to_str().unwrap()
        ),
        (CacheStatus::Hit, "br")
    );
    let pre = reply(
        200,
        &[("content-type", "text/html"), ("content-encoding", "gzip")],
        &text,
    );
    let out = get(
        &c,
        &o,
        &s,
        &parts("GET", "/pre", &[("accept-encoding", "br")]),
        pre,
    )
    .await;
    assert_eq!(
        out.headers["content-encoding"], "gzip",
        "origin encoding kept"
    );
    assert_eq!(
        c.invalidate("E1", &["/p".into()]),
        3,
        "all variants invalidated"
    );
}

#[tokio::test(start_paused = true)]
async fn invalidation_exact_and_prefix() {
    let (c, o, s) = (cache(), Origin::default(), optimized());
    let r = reply(200, &[("cache-control", "max-age=600")], "x");
    for path in ["/img/a.jpg", "/img/b.jpg", "/css/s.css", "/index.html"] {
        get(&c, &o, &s, &parts("GET", path, &[]), r.clone()).await;
    }
    assert_eq!(c.invalidate("E2", &["/*".into()]), 0, "other distribution");
    assert_eq!(c.invalidate("E1", &["/img/a.jpg".into()]), 1);
    assert_eq!(c.invalidate("E1", &["/img/a.jpg".into()]), 0);
    let out = get(&c, &o, &s, &parts("GET", "/img/a.jpg", &[]), r.clone()).await;
    assert_eq!(out.cache_status, CacheStatus::Miss);
    assert_eq!(
        c.invalidate("E1", &["/img/*".into(), "/css/s.css".into()]),
        3
    );
    let out = get(&c, &o, &s, &parts("GET", "/index.html", &[]), r.clone()).await;
    assert_eq!(out.cache_status, CacheStatus::Hit);
    assert_eq!(c.invalidate("E1", &["/*".into()]), 1);
    assert_eq!(c.stats().indexed, 0);
}

#[tokio::test]
async fn disk_tier_serves_what_memory_evicted_and_invalidates_it() {
    let dir = tempfile::tempdir().unwrap();
    let c = Cache::new(CacheConfig {
        memory_bytes: 40_000,
        disk: Some(DiskConfig {
            dir: dir.path().to_path_buf(),
            max_bytes: 10_000_000,
        }),
        max_object_size: 1 << 20,
    })
    .unwrap();
    let (o, s) = (Origin::default(), optimized());
    let big = "z".repeat(10_000);
    let r = reply(200, &[("cache-control", "max-age=600")], &big);
    for i in 0..20 {
        get(
            &c,
            &o,
            &s,
            &parts("GET", &format!("/o/{i}"), &[]),
            r.clone(),
        )
        .await;
    }
    let st = c.stats();
    assert_eq!(st.disk_entries, 20);
    assert!(st.memory_entries < 20, "{st:?}");
    for i in 0..20 {
        let out = get(
            &c,
            &o,
            &s,
            &parts("GET", &format!("/o/{i}"), &[]),
            r.clone(),
        )
        .await;
        assert_eq!(out.cache_status, CacheStatus::Hit, "/o/{i}");
        assert_eq!(body(&out).len(), 10_000);
    }
    assert_eq!(o.hits(), 20);
    assert_eq!(c.invalidate("E1", &["/o/*".into()]), 20);
    assert_eq!(c.stats().disk_entries, 0);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test(start_paused = true)]
async fn set_cookie_rules_and_no_collapsing_with_cookies() {
    let (c, o) = (cache(), Origin::default());
    let fwd = legacy(legacy_cookies("all", &[]), 0, 60, 600);
    let p = parts("GET", "/c", &[("cookie", "a=1")]);
    let r = reply(200, &[("set-cookie", "s=1")], "x");
    get(&c, &o, &fwd, &p, r.clone()).await;
    let hit = get(&c, &o, &fwd, &p, r).await;
    assert_eq!(hit.cache_status, CacheStatus::Hit);
    assert_eq!(hit.headers["set-cookie"], "s=1", "stored and replayed");
    let q = reply(
        200,
        &[
            ("set-cookie", "s=2"),
            ("cache-control", "no-cache=\"Set-Cookie\", max-age=60"),
        ],
        "y",
    );
    let p2 = parts("GET", "/c2", &[]);
    let first = get(&c, &o, &fwd, &p2, q.clone()).await;
    assert_eq!(first.headers["set-cookie"], "s=2", "first viewer gets it");
    let second = get(&c, &o, &fwd, &p2, q).await;
    assert_eq!(second.cache_status, CacheStatus::Hit);
    assert!(second.headers.get("set-cookie").is_none(), "not stored");
    let plain = optimized();
    let out = get(
        &c,
        &o,
        &plain,
        &parts("GET", "/c3", &[]),
        reply(200, &[("set-cookie", "s=3")], "z"),
    )
    .await;
    assert!(
        out.headers.get("set-cookie").is_none(),
        "stripped without cookie forwarding"
    );
}

#[tokio::test(start_paused = true)]
async fn legacy_cookie_forwarding_disables_conditionals() {
    let (c, o) = (cache(), Origin::default());
    let fwd = legacy(legacy_cookies("all", &[]), 0, 10, 600);
    let p = parts("GET", "/c", &[("if-none-match", "\"v1\"")]);
    let r = reply(200, &[("etag", "\"v1\"")], "x");
    let out = get(&c, &o, &fwd, &p, r.clone()).await;
    assert_eq!(out.status, StatusCode::OK, "no 304 from cache");
    tokio::time::sleep(Duration::from_secs(11)).await;
    get(&c, &o, &fwd, &p, r).await;
    assert!(!o.last().is_revalidation(), "full re-fetch");
}

#[tokio::test(start_paused = true)]
async fn no_cache_with_min_ttl_goes_to_the_origin_first() {
    let (c, o) = (cache(), Origin::default());
    let s = policy((30, 60, 600), &[], ("none", &[]), ("none", &[]));
    let p = parts("GET", "/nc", &[]);
    let r = reply(
        200,
        &[("cache-control", "no-cache"), ("etag", "\"n\"")],
        "nc",
    );
    get(&c, &o, &s, &p, r.clone()).await;
    let out = get(&c, &o, &s, &p, reply(304, &[], "")).await;
    assert_eq!(out.cache_status, CacheStatus::RefreshHit);
    assert_eq!(o.hits(), 2);
    let req = CacheRequest::new("E1", "d1.ledge.localhost", &p, &s);
    let out = c
        .serve(&req, |_| async { Err::<OriginResponse, &str>("down") })
        .await
        .unwrap();
    assert_eq!(
        (out.cache_status, body(&out)),
        (CacheStatus::Hit, &b"nc"[..])
    );
}

#[tokio::test(start_paused = true)]
async fn stale_while_revalidate_serves_stale_and_hands_out_one_refresh() {
    let (c, o, s) = (cache(), Origin::default(), optimized());
    let p = parts("GET", "/swr", &[]);
    let r = reply(
        200,
        &[
            ("cache-control", "max-age=10, stale-while-revalidate=60"),
            ("etag", "\"1\""),
        ],
        "old",
    );
    get(&c, &o, &s, &p, r).await;
    tokio::time::sleep(Duration::from_secs(15)).await;
    let first = get(&c, &o, &s, &p, reply(500, &[], "")).await;
    assert_eq!(
        (first.cache_status, body(&first)),
        (CacheStatus::Hit, &b"old"[..])
    );
    assert_eq!(first.headers["age"], "15");
    let ticket = first
        .refresh
        .expect("the first stale answer carries the refresh");
    let second = get(&c, &o, &s, &p, reply(500, &[], "")).await;
    assert_eq!(body(&second), b"old");
    assert!(second.refresh.is_none(), "one refresh per key");
    assert_eq!(o.hits(), 1, "nobody waited for the origin");
    let req = CacheRequest::new("E1", "d1.ledge.localhost", &p, &s);
    let r = reply(200, &[("cache-control", "max-age=10")], "new");
    let st = c
        .refresh(&req, ticket, |cd| o.fetch(cd, r, Duration::from_secs(1)))
        .await
        .unwrap();
    assert_eq!(st, CacheStatus::Miss);
    assert_eq!(o.last().if_none_match.unwrap(), "\"1\"");
    let out = get(&c, &o, &s, &p, reply(500, &[], "")).await;
    assert_eq!(
        (out.cache_status, body(&out)),
        (CacheStatus::Hit, &b"new"[..])
    );
    assert_eq!(o.hits(), 2);
    // Past the window the stale copy is not served without the origin.
    tokio::time::sleep(Duration::from_secs(100)).await;
    let out = get(
        &c,
        &o,
        &s,
        &p,
        reply(200, &[("cache-control", "max-age=10")], "newer"),
    )
    .await;
    assert_eq!(
        (out.cache_status, body(&out)),
        (CacheStatus::Miss, &b"newer"[..])
    );
    // A dropped ticket frees the key.
    let r = reply(
        200,
        &[("cache-control", "max-age=1, stale-while-revalidate=60")],
        "a",
    );
    get(&c, &o, &s, &parts("GET", "/drop", &[]), r).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let out = get(&c, &o, &s, &parts("GET", "/drop", &[]), reply(500, &[], "")).await;
    drop(out.refresh);
    let out = get(&c, &o, &s, &parts("GET", "/drop", &[]), reply(500, &[], "")).await;
    assert!(out.refresh.is_some());
}

#[tokio::test(start_paused = true)]
async fn objects_over_max_object_size_are_not_stored() {
    let c = Cache::new(CacheConfig {
        memory_bytes: 1 << 20,
        disk: None,
        max_object_size: 10,
    })
    .unwrap();
    let (o, s) = (Origin::default(), optimized());
    let p = parts("GET", "/big", &[]);
    let out = get(
        &c,
        &o,
        &s,
        &p,
        reply(200, &[("cache-control", "max-age=60")], "01234567890"),
    )
    .await;
    assert!(!out.stored);
    assert_eq!(c.max_object_size(), 10);
}

#[tokio::test(start_paused = true)]
async fn streamed_bodies_pass_through() {
    let (c, s) = (cache(), optimized());
    let p = parts("GET", "/stream", &[]);
    let req = CacheRequest::new("E1", "d1", &p, &s);
    let out = c
        .serve(&req, |cd| async move {
            assert!(cd.cache_fill);
            Ok::<_, Infallible>(OriginResponse {
                status: StatusCode::OK,
                headers: hmap(&[("cache-control", "max-age=60")]),
                body: Body::Stream(42u32),
            })
        })
        .await
        .unwrap();
    assert!(matches!(out.body, Body::Stream(42)));
    assert!(!out.stored);
}

#[tokio::test(start_paused = true)]
async fn a_fill_racing_an_invalidation_is_not_stored() {
    let c = cache();
    let o = Arc::new(Origin::default());
    let s = Arc::new(optimized());
    let fill = {
        let (c, o, s) = (c.clone(), o.clone(), s.clone());
        tokio::spawn(async move {
            let p = parts("GET", "/race", &[]);
            let req = CacheRequest::new("E1", "d1", &p, &s);
            let r = reply(200, &[("cache-control", "max-age=60")], "old");
            c.serve(&req, |cd| o.fetch(cd, r, Duration::from_secs(1)))
                .await
                .unwrap()
                .stored
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.invalidate("E1", &["/ra*".into()]);
    assert!(
        !fill.await.unwrap(),
        "fetched before the invalidation applied"
    );
    let r = reply(200, &[("cache-control", "max-age=60")], "new");
    let out = get(&c, &o, &s, &parts("GET", "/race", &[]), r).await;
    assert_eq!(
        (out.cache_status, body(&out)),
        (CacheStatus::Miss, &b"new"[..])
    );
}

#[tokio::test(start_paused = true)]
async fn vary_star_with_min_ttl_zero_refetches_in_full() {
    let (c, o) = (cache(), Origin::default());
    let s = policy((0, 60, 600), &[], ("none", &[]), ("none", &[]));
    let p = parts("GET", "/v", &[]);
    let r = reply(
        200,
        &[
            ("vary", "*"),
            ("etag", "\"v\""),
            ("cache-control", "max-age=60"),
        ],
        "v",
    );
    let first = get(&c, &o, &s, &p, r.clone()).await;
    assert!(first.headers.get("vary").is_some(), "kept with MinTTL 0");
    let second = get(&c, &o, &s, &p, r).await;
    assert_eq!(second.cache_status, CacheStatus::Miss);
    assert!(!o.last().is_revalidation(), "no conditional headers");
    assert_eq!(o.hits(), 2);
}

#[tokio::test(start_paused = true)]
async fn redirects_307_need_cache_control() {
    let (c, o, s) = (cache(), Origin::default(), optimized());
    let p = parts("GET", "/go", &[]);
    get(&c, &o, &s, &p, reply(307, &[("location", "/x")], "")).await;
    get(&c, &o, &s, &p, reply(307, &[("location", "/x")], "")).await;
    assert_eq!(o.hits(), 2);
    let p = parts("GET", "/go2", &[]);
    get(
        &c,
        &o,
        &s,
        &p,
        reply(
            307,
            &[("location", "/x"), ("cache-control", "max-age=60")],
            "",
        ),
    )
    .await;
    let out = get(&c, &o, &s, &p, reply(500, &[], "")).await;
    assert_eq!(
        (out.status, out.cache_status),
        (StatusCode::TEMPORARY_REDIRECT, CacheStatus::Hit)
    );
}

#[tokio::test(start_paused = true)]
async fn compression_skips_http10_viewers_and_covers_cached_404s() {
    let (c, o, mut s) = (cache(), Origin::default(), optimized());
    s.compress = true;
    let text = "not found here ".repeat(100);
    let r = reply(404, &[("content-type", "text/html")], &text);
    let mut p = parts("GET", "/nf", &[("accept-encoding", "gzip")]);
    p.version = http::Version::HTTP_10;
    let out = get(&c, &o, &s, &p, r.clone()).await;
    assert!(out.headers.get("content-encoding").is_none());
    let p = parts("GET", "/nf", &[("accept-encoding", "gzip")]);
    let out = get(&c, &o, &s, &p, r.clone()).await;
    assert_eq!(out.headers["content-encoding"], "gzip");
    assert_eq!(out.cache_status, CacheStatus::Error);
    let again = get(&c, &o, &s, &p, r).await;
    assert_eq!(
        (
            again.cache_status,
            again.headers["content-encoding"].to_str().unwrap()
        ),
        (CacheStatus::Error, "gzip")
    );
    assert_eq!(o.hits(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_304_for_an_entry_evicted_meanwhile_stores_it_again() {
    let (c, o, s) = (cache(), Origin::default(), optimized());
    let p = parts("GET", "/ev", &[]);
    let r = reply(
        200,
        &[("cache-control", "max-age=10"), ("etag", "\"e\"")],
        "body",
    );
    get(&c, &o, &s, &p, r).await;
    tokio::time::sleep(Duration::from_secs(11)).await;
    let req = CacheRequest::new("E1", "d1.ledge.localhost", &p, &s);
    let key = c.key(&req);
    let out = c
        .serve(&req, |cd| {
            // The entry disappears while the revalidation is in flight.
            c.inner.memory.remove(&key);
            o.fetch(
                cd,
                reply(304, &[("cache-control", "max-age=60")], ""),
                Duration::ZERO,
            )
        })
        .await
        .unwrap();
    assert_eq!(
        (out.cache_status, body(&out)),
        (CacheStatus::RefreshHit, &b"body"[..])
    );
    let hit = get(&c, &o, &s, &p, reply(500, &[], "")).await;
    assert_eq!(
        (hit.cache_status, body(&hit)),
        (CacheStatus::Hit, &b"body"[..])
    );
}

#[tokio::test(start_paused = true)]
async fn stored_bodies_and_header_values_do_not_pin_origin_buffers() {
    let (c, s) = (cache(), optimized());
    let buffer = Bytes::from(vec![b'x'; 1 << 20]);
    let range = buffer.as_ptr() as usize..buffer.as_ptr() as usize + buffer.len();
    let body = buffer.slice(10..110);
    let value = HeaderValue::from_maybe_shared(buffer.slice(0..5)).unwrap();
    let p = parts("GET", "/pin", &[]);
    let req = CacheRequest::new("E1", "d1", &p, &s);
    let out = c
        .serve(&req, |_| async move {
            let mut h = hmap(&[("cache-control", "max-age=60")]);
            h.insert("x-sliced", value);
            Ok::<_, Infallible>(OriginResponse::<NoStream>::full(StatusCode::OK, h, body))
        })
        .await
        .unwrap();
    assert!(out.stored);
    let stored = c.inner.memory.get(&c.key(&req)).unwrap();
    let outside = |p: *const u8| !range.contains(&(p as usize));
    assert!(outside(stored.body.as_ptr()), "body copied");
    assert!(
        outside(stored.head.headers["x-sliced"].as_bytes().as_ptr()),
        "value copied"
    );
    assert_eq!(stored.body.len(), 100);
}
