use super::*;
use crate::testutil::{hmap, legacy, legacy_cookies, optimized, policy};
use ledge_model::config::ForwardedValues;

const OK: StatusCode = StatusCode::OK;

fn s(min: u64, default: u64, max: u64) -> CacheSettings {
    policy((min, default, max), &[], ("none", &[]), ("none", &[]))
}

fn ttl_of(settings: &CacheSettings, status: StatusCode, h: &[(&str, &str)]) -> Option<u64> {
    freshness(status, &hmap(h), settings, SystemTime::now()).map(|f| f.ttl.as_secs())
}

#[test]
fn the_5_2_algorithm() {
    let b = s(10, 100, 1000);
    assert_eq!(ttl_of(&b, OK, &[]), Some(100), "default");
    assert_eq!(
        ttl_of(&s(200, 100, 1000), OK, &[]),
        Some(200),
        "max(default, min)"
    );
    assert_eq!(ttl_of(&b, OK, &[("cache-control", "max-age=50")]), Some(50));
    assert_eq!(
        ttl_of(&b, OK, &[("cache-control", "max-age=5")]),
        Some(10),
        "clamped up"
    );
    assert_eq!(
        ttl_of(&b, OK, &[("cache-control", "max-age=5000")]),
        Some(1000),
        "down"
    );
    assert_eq!(
        ttl_of(&b, OK, &[("cache-control", "max-age=50, s-maxage=500")]),
        Some(500),
        "s-maxage wins"
    );
    let now = SystemTime::now();
    let date = httpdate::fmt_http_date(now);
    let exp = httpdate::fmt_http_date(now + Duration::from_secs(300));
    assert_eq!(
        ttl_of(&b, OK, &[("date", &date), ("expires", &exp)]),
        Some(300)
    );
    assert_eq!(
        ttl_of(
            &b,
            OK,
            &[
                ("date", &date),
                ("expires", &exp),
                ("cache-control", "max-age=20")
            ]
        ),
        Some(20),
        "max-age beats Expires"
    );
    let past = httpdate::fmt_http_date(now - Duration::from_secs(300));
    assert_eq!(
        ttl_of(&b, OK, &[("date", &date), ("expires", &past)]),
        Some(10)
    );
    assert_eq!(
        ttl_of(&b, OK, &[("expires", "garbage")]),
        Some(10),
        "invalid = expired"
    );
    assert_eq!(ttl_of(&s(0, 100, 1000), OK, &[("expires", "0")]), Some(0));
}

#[test]
fn no_store_no_cache_private() {
    let zero_min = s(0, 100, 1000);
    assert_eq!(
        ttl_of(&zero_min, OK, &[("cache-control", "no-store")]),
        None
    );
    assert_eq!(
        ttl_of(&zero_min, OK, &[("cache-control", "private, max-age=60")]),
        None
    );
    let f = freshness(
        OK,
        &hmap(&[("cache-control", "no-cache")]),
        &zero_min,
        SystemTime::now(),
    )
    .unwrap();
    assert_eq!(f.ttl, Duration::ZERO, "kept for revalidation only");
    let min = s(30, 100, 1000);
    let f = freshness(
        OK,
        &hmap(&[("cache-control", "no-store")]),
        &min,
        SystemTime::now(),
    )
    .unwrap();
    assert_eq!(f.ttl, Duration::from_secs(30));
    assert!(f.origin_first);
    let q = freshness(
        OK,
        &hmap(&[("cache-control", "no-cache=\"Set-Cookie\", max-age=60")]),
        &zero_min,
        SystemTime::now(),
    )
    .unwrap();
    assert_eq!(
        q.ttl,
        Duration::from_secs(60),
        "field-qualified no-cache is not no-cache"
    );
    assert!(!q.origin_first);
}

#[test]
fn cacheable_statuses() {
    let b = s(0, 100, 1000);
    for code in [200, 203, 204, 300, 301, 302, 410] {
        assert_eq!(
            ttl_of(&b, StatusCode::from_u16(code).unwrap(), &[]),
            Some(100),
            "{code}"
        );
    }
    assert_eq!(ttl_of(&b, StatusCode::TEMPORARY_REDIRECT, &[]), None);
    assert_eq!(
        ttl_of(
            &b,
            StatusCode::PERMANENT_REDIRECT,
            &[("cache-control", "max-age=9")]
        ),
        Some(9)
    );
    assert_eq!(ttl_of(&b, StatusCode::PARTIAL_CONTENT, &[]), None);
    assert_eq!(ttl_of(&b, StatusCode::NOT_MODIFIED, &[]), None);
    assert_eq!(ttl_of(&b, StatusCode::CREATED, &[]), None);
}

#[test]
fn error_caching_5_3() {
    let mut b = s(0, 100, 1000);
    for code in [404, 414, 500, 501, 502, 503, 504] {
        assert_eq!(
            ttl_of(&b, StatusCode::from_u16(code).unwrap(), &[]),
            Some(10),
            "{code}"
        );
    }
    for code in [400, 403, 405, 412, 415] {
        let st = StatusCode::from_u16(code).unwrap();
        assert_eq!(ttl_of(&b, st, &[]), None, "{code}");
        assert_eq!(ttl_of(&b, st, &[("cache-control", "max-age=60")]), Some(60));
    }
    for code in [401, 408, 409, 416, 429] {
        let st = StatusCode::from_u16(code).unwrap();
        assert_eq!(
            ttl_of(&b, st, &[("cache-control", "max-age=60")]),
            None,
            "{code}"
        );
    }
    assert_eq!(
        ttl_of(
            &b,
            StatusCode::NOT_FOUND,
            &[("cache-control", "s-maxage=3")]
        ),
        Some(10),
        "max(ErrorCachingMinTTL, header)"
    );
    assert_eq!(
        ttl_of(&b, StatusCode::NOT_FOUND, &[("cache-control", "no-store")]),
        Some(10),
        "other directives leave the error TTL"
    );
    b.error_ttls.push((404, Duration::from_secs(300)));
    assert_eq!(ttl_of(&b, StatusCode::NOT_FOUND, &[]), Some(300));
    b.error_ttls.push((503, Duration::ZERO));
    assert_eq!(ttl_of(&b, StatusCode::SERVICE_UNAVAILABLE, &[]), None);
}

#[test]
fn stale_directives_parse() {
    let f = freshness(
        OK,
        &hmap(&[(
            "cache-control",
            "max-age=1, stale-while-revalidate=30, stale-if-error=0",
        )]),
        &s(0, 100, 1000),
        SystemTime::now(),
    )
    .unwrap();
    assert_eq!(f.stale_while_revalidate, Duration::from_secs(30));
    assert_eq!(f.stale_if_error, Some(Duration::ZERO));
}

#[test]
fn vary_star_with_min_zero_refetches() {
    let f = freshness(
        OK,
        &hmap(&[("vary", "*")]),
        &s(0, 100, 1000),
        SystemTime::now(),
    )
    .unwrap();
    assert!(f.refetch_always);
    let f = freshness(
        OK,
        &hmap(&[("vary", "*")]),
        &s(5, 100, 1000),
        SystemTime::now(),
    )
    .unwrap();
    assert!(!f.refetch_always);
}

#[test]
fn set_cookie_5_4() {
    let mut h = hmap(&[("set-cookie", "a=1"), ("cache-control", "max-age=5")]);
    assert!(!filter_response_headers(&mut h, &optimized()));
    assert!(
        h.get(SET_COOKIE).is_none(),
        "stripped without cookie forwarding"
    );

    let fwd = legacy(legacy_cookies("all", &[]), 0, 60, 600);
    let mut h = hmap(&[("set-cookie", "a=1")]);
    assert!(!filter_response_headers(&mut h, &fwd));
    assert!(h.get(SET_COOKIE).is_some(), "kept and stored");
    let mut h = hmap(&[
        ("set-cookie", "a=1"),
        ("cache-control", "no-cache=\"Set-Cookie\""),
    ]);
    assert!(filter_response_headers(&mut h, &fwd), "first viewer only");
    assert!(h.get(SET_COOKIE).is_some());
}

#[test]
fn vary_5_5() {
    let s = policy(
        (0, 60, 600),
        &["X-Tenant", "CloudFront-Is-Mobile-Viewer"],
        ("none", &[]),
        ("none", &[]),
    );
    let mut h = hmap(&[
        ("vary", "Accept-Encoding, X-Tenant, Origin"),
        ("vary", "User-Agent, Cookie, *"),
    ]);
    filter_response_headers(&mut h, &s);
    assert_eq!(h[VARY], "Accept-Encoding, X-Tenant, User-Agent, Cookie, *");
    let plain = legacy(ForwardedValues::default(), 5, 60, 600);
    let mut h = hmap(&[("vary", "Origin, *")]);
    filter_response_headers(&mut h, &plain);
    assert!(h.get(VARY).is_none(), "MinTTL > 0 filters * too");
}
