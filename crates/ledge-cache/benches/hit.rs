//! Key building, cache hits and memory per cached object.
//!
//! Run: `cargo bench -p ledge-cache --bench hit` (results go in BENCHMARKS.md).

use std::convert::Infallible;
use std::hint::black_box;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use ledge_cache::{
    Cache, CacheConfig, CacheRequest, CacheSettings, Conditional, NoStream, OriginResponse,
};
use ledge_model::policy::{
    managed_cache_policy, CacheKeyParameters, CachePolicyConfig, CookiesConfig, HeadersConfig,
    QueryStringsConfig, CACHING_OPTIMIZED,
};

const ITERS: u32 = 1_000_000;

fn viewer(uri: &str) -> http::request::Parts {
    let (parts, ()) = Request::get(uri)
        .header("host", "www.shop.test")
        .header(
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
        )
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .header("accept-encoding", "gzip, deflate, br, zstd")
        .header("accept-language", "en-US,en;q=0.5")
        .header("cookie", "session=abc123; lang=en; theme=dark; _ga=GA1.2.3")
        .header("x-tenant", "acme")
        .body(())
        .map(|r| r.into_parts())
        .unwrap_or_else(|e| panic!("request: {e}"));
    parts
}

fn rich_policy() -> CacheSettings {
    let v = |l: &[&str]| l.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
    CacheSettings::from_policy(
        &CachePolicyConfig {
            name: "rich".into(),
            comment: String::new(),
            min_ttl: 0,
            default_ttl: 86_400,
            max_ttl: 31_536_000,
            parameters_in_cache_key_and_forwarded_to_origin: CacheKeyParameters {
                enable_accept_encoding_gzip: true,
                enable_accept_encoding_brotli: true,
                headers_config: HeadersConfig {
                    header_behavior: "whitelist".into(),
                    headers: v(&["X-Tenant", "Accept-Language"]),
                },
                cookies_config: CookiesConfig {
                    cookie_behavior: "whitelist".into(),
                    cookies: v(&["session", "lang"]),
                },
                query_strings_config: QueryStringsConfig {
                    query_string_behavior: "whitelist".into(),
                    query_strings: v(&["v", "page"]),
                },
            },
        },
        None,
    )
}

fn origin_response(body: Bytes) -> OriginResponse<NoStream> {
    let mut h = HeaderMap::new();
    for (n, v) in [
        ("content-type", "application/javascript"),
        ("cache-control", "public, max-age=31536000"),
        ("etag", "\"5d8c72a5edda8d6a\""),
        ("last-modified", "Wed, 21 Oct 2015 07:28:00 GMT"),
        ("server", "origin/1.0"),
        ("date", "Wed, 25 Nov 2026 03:00:00 GMT"),
    ] {
        h.insert(n, HeaderValue::from_static(v));
    }
    OriginResponse::full(StatusCode::OK, h, body)
}

async fn fill(cache: &Cache, req: &CacheRequest<'_>, body: Bytes) {
    let _ = cache
        .serve(req, |_c: Conditional| async move {
            Ok::<_, Infallible>(origin_response(body))
        })
        .await;
}

fn per_op(start: Instant, iters: u32) -> f64 {
    start.elapsed().as_nanos() as f64 / f64::from(iters)
}

fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let optimized = managed_cache_policy(CACHING_OPTIMIZED)
        .map(|p| CacheSettings::from_policy(&p, None))
        .unwrap_or_else(|| panic!("managed policy"));
    let rich = rich_policy();
    let cache = Cache::new(CacheConfig::default()).unwrap_or_else(|e| panic!("cache: {e}"));
    let parts = viewer("/static/app.3f2a9c.js?v=12&page=3&utm_source=x");

    // `cargo bench -p ledge-cache --bench hit -- key|hit|memory` runs one part.
    let only = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let run = |part: &str| only.as_deref().is_none_or(|o| o == part);
    println!("ledge-cache bench ({ITERS} iterations each)");
    for (name, s) in [("CachingOptimized", &optimized), ("rich policy", &rich)] {
        if !run("key") {
            break;
        }
        let req = CacheRequest::new("E1ABCDEF", "d111.ledge.localhost", &parts, s);
        let start = Instant::now();
        for _ in 0..ITERS {
            black_box(cache.key(black_box(&req)));
        }
        println!("key build, {name:<17}: {:>7.1} ns/op", per_op(start, ITERS));
    }

    if run("hit") {
        // Reference in the same run: the least a cache can do per hit, a `format!`-built
        // string key looked up in a std HashMap and the body's `Bytes` cloned.
        let mut naive = std::collections::HashMap::new();
        naive.insert(
            format!("d111.ledge.localhost{}", parts.uri.path()),
            Bytes::from(vec![b'a'; 1024]),
        );
        let start = Instant::now();
        for _ in 0..ITERS {
            let k = format!("d111.ledge.localhost{}", black_box(&parts).uri.path());
            black_box(naive.get(&k).cloned());
        }
        println!(
            "reference: format! key + HashMap get: {:>7.1} ns/op",
            per_op(start, ITERS)
        );
    }
    for (name, size) in [("1 KiB", 1024usize), ("100 KiB", 100 * 1024)] {
        if !run("hit") {
            break;
        }
        let body = Bytes::from(vec![b'a'; size]);
        let req = CacheRequest::new("E1ABCDEF", "d111.ledge.localhost", &parts, &optimized);
        rt.block_on(fill(&cache, &req, body));
        let start = Instant::now();
        rt.block_on(async {
            for _ in 0..ITERS {
                let out = cache
                    .serve(black_box(&req), |_c| async {
                        Err::<OriginResponse<NoStream>, ()>(())
                    })
                    .await;
                black_box(out.map(|o| o.status).ok());
            }
        });
        println!(
            "serve() hit, {name:<16}: {:>7.1} ns/op",
            per_op(start, ITERS)
        );
    }

    if !run("memory") {
        return;
    }
    // Memory per cached object: fill N small objects, compare RSS.
    const N: usize = 200_000;
    const BODY: usize = 64;
    let big = Cache::new(CacheConfig {
        memory_bytes: 8 << 30,
        ..CacheConfig::default()
    })
    .unwrap_or_else(|e| panic!("cache: {e}"));
    let body = Bytes::from(vec![b'b'; BODY]);
    let paths: Vec<String> = (0..N).map(|i| format!("/assets/{i:08}/app.js")).collect();
    let before = rss();
    rt.block_on(async {
        for p in &paths {
            let parts = viewer(p);
            let req = CacheRequest::new("E1ABCDEF", "d111.ledge.localhost", &parts, &optimized);
            // Each entry owns its body, as real origin bodies do.
            fill(&big, &req, Bytes::copy_from_slice(&body)).await;
        }
    });
    let after = rss();
    let stats = big.stats();
    let per = (after.saturating_sub(before)) as f64 / N as f64;
    println!(
        "memory: {N} objects of {BODY} B body + 6 origin headers: RSS +{:.1} MiB, {per:.0} B/object, \
         {:.0} B/object beyond the body; weigher charges {:.0} B/object (entries {})",
        (after - before) as f64 / (1 << 20) as f64,
        per - BODY as f64,
        stats.memory_bytes as f64 / stats.memory_entries.max(1) as f64,
        stats.memory_entries,
    );
}
