use std::sync::Mutex;

use super::*;
use crate::testutil::hmap;

pub(crate) fn entry(path: &str, body: usize) -> Entry {
    Entry {
        head: Arc::new(Head {
            id: next_id(),
            status: StatusCode::OK,
            headers: hmap(&[("content-type", "text/plain"), ("etag", "\"x\"")]),
            stored_at: Instant::now(),
            freshness: crate::ttl::Freshness {
                ttl: Duration::from_secs(60),
                origin_first: false,
                refetch_always: false,
                stale_while_revalidate: Duration::ZERO,
                stale_if_error: None,
                is_error: false,
            },
            distribution_id: "E1".into(),
            path: path.into(),
            no_conditional: false,
            stale_until: None,
            age_placeholder: false,
        }),
        body: Bytes::from(vec![b'x'; body]),
    }
}

#[test]
fn memory_tier_is_bounded_in_bytes_and_reports_evictions() {
    let evicted = Arc::new(Mutex::new(0usize));
    let ev = evicted.clone();
    let hook: EvictHook = Arc::new(move |_, _| *ev.lock().unwrap() += 1);
    let m = MemoryTier::new(100_000, Some(hook));
    for i in 0..100u128 {
        m.put(CacheKey(i), entry("/a", 10_000));
        m.sync();
    }
    m.sync();
    let (n, bytes) = m.usage();
    assert!(bytes <= 100_000, "{bytes}");
    assert!(n < 10, "{n}");
    assert!(*evicted.lock().unwrap() >= 90);
}

#[test]
fn disk_tier_round_trip_lru_and_refresh() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("old.body"), b"left over").unwrap();
    let evicted = Arc::new(Mutex::new(Vec::new()));
    let ev = evicted.clone();
    let hook: EvictHook = Arc::new(move |k, _| ev.lock().unwrap().push(k));
    let d = DiskTier::new(dir.path(), 25_000, Some(hook)).unwrap();
    assert!(!dir.path().join("old.body").exists(), "emptied at start");
    d.put(CacheKey(1), entry("/1", 10_000));
    d.put(CacheKey(2), entry("/2", 10_000));
    assert_eq!(
        d.get(&CacheKey(1)).unwrap().body.len(),
        10_000,
        "1 is now most recent"
    );
    d.put(CacheKey(3), entry("/3", 10_000));
    assert_eq!(*evicted.lock().unwrap(), vec![CacheKey(2)], "LRU victim");
    assert!(d.get(&CacheKey(2)).is_none());
    assert_eq!(d.usage(), (2, 20_000));
    let mut head = (*entry("/1", 0).head).clone();
    head.status = StatusCode::NOT_FOUND;
    d.refresh(&CacheKey(1), Arc::new(head));
    let e = d.get(&CacheKey(1)).unwrap();
    assert_eq!(
        (e.head.status, e.body.len()),
        (StatusCode::NOT_FOUND, 10_000)
    );
    assert!(d.remove(&CacheKey(1)));
    assert!(!d.contains(&CacheKey(1)));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    d.put(CacheKey(9), entry("/9", 30_000));
    assert!(!d.contains(&CacheKey(9)), "larger than the whole tier");
}
