//! Many tasks on a multi-threaded runtime hit, miss, evict (both tiers) and invalidate at
//! once: nothing deadlocks, every answer is the object asked for, and the invalidation index
//! ends consistent with the tiers.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue, Request, StatusCode};
use ledge_cache::{
    Cache, CacheConfig, CacheRequest, CacheSettings, CacheStatus, DiskConfig, NoStream,
    OriginResponse,
};
use ledge_model::policy::{managed_cache_policy, CACHING_OPTIMIZED};

fn settings() -> CacheSettings {
    let policy = managed_cache_policy(CACHING_OPTIMIZED);
    CacheSettings::from_policy(&policy.unwrap_or_else(|| panic!("managed policy")), None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_traffic_with_evictions_and_invalidations() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(CacheConfig {
        memory_bytes: 200_000,
        disk: Some(DiskConfig {
            dir: dir.path().to_path_buf(),
            max_bytes: 400_000,
        }),
        max_object_size: 1 << 20,
    })
    .unwrap();
    let settings = Arc::new(settings());
    let fetches = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for t in 0..16u64 {
        let (cache, settings, fetches) = (cache.clone(), settings.clone(), fetches.clone());
        tasks.push(tokio::spawn(async move {
            let mut seed = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            for _ in 0..400 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let n = seed % 80;
                if seed % 97 == 0 {
                    cache.invalidate("E1", &[format!("/obj/{}*", n % 8)]);
                    continue;
                }
                let uri = format!("/obj/{n}");
                let (parts, ()) = Request::get(uri.as_str()).body(()).unwrap().into_parts();
                let req = CacheRequest::new("E1", "d1.ledge.localhost", &parts, &settings);
                let size = 2_000 + (n as usize) * 100;
                let fetches = fetches.clone();
                let out = cache
                    .serve(&req, |_c| async move {
                        fetches.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        let mut h = HeaderMap::new();
                        h.insert("cache-control", HeaderValue::from_static("max-age=600"));
                        h.insert("x-obj", HeaderValue::from(n));
                        Ok::<_, Infallible>(OriginResponse::<NoStream>::full(
                            StatusCode::OK,
                            h,
                            vec![b'a' + (n % 26) as u8; size],
                        ))
                    })
                    .await
                    .unwrap();
                assert_eq!(out.status, StatusCode::OK);
                assert_eq!(out.headers["x-obj"], n.to_string().as_str());
                let body = out.body.as_bytes().unwrap();
                assert_eq!(body.len(), size);
                assert!(body.iter().all(|&b| b == b'a' + (n % 26) as u8));
                assert!(matches!(
                    out.cache_status,
                    CacheStatus::Hit | CacheStatus::Miss
                ));
            }
        }));
    }
    let all = async {
        for t in tasks {
            t.await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("no deadlock");
    let stats = cache.stats();
    assert!(stats.memory_bytes <= 200_000, "{stats:?}");
    assert!(stats.disk_bytes <= 400_000, "{stats:?}");
    assert_eq!(stats.in_flight, 0);
    assert!(fetches.load(Ordering::Relaxed) < 16 * 400, "some hits");
    // Everything left is reachable by invalidation.
    cache.invalidate("E1", &["/*".into()]);
    let after = cache.stats();
    assert_eq!((after.disk_entries, after.indexed), (0, 0), "{after:?}");
    assert_eq!(after.memory_entries, 0, "{after:?}");
}
