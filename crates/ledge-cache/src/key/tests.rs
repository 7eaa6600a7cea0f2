use super::*;
use crate::settings::CacheSettings;
use crate::testutil::{legacy, legacy_cookies, optimized, parts, policy};
use http::request::Parts;
use ledge_model::config::ForwardedValues;

fn key(k: &Keyer, s: &CacheSettings, p: &Parts) -> CacheKey {
    k.key(&CacheRequest::new("E1", "d1.ledge.localhost", p, s))
}

#[test]
fn path_and_domain_always_in_key_scheme_and_viewer_headers_not() {
    let k = Keyer::new();
    let s = optimized();
    let a = key(&k, &s, &parts("GET", "/a.css", &[("host", "alias.test")]));
    let b = key(
        &k,
        &s,
        &parts("GET", "http://other.test/a.css", &[("user-agent", "x")]),
    );
    assert_eq!(
        a, b,
        "alias host, scheme and other headers are not in the key"
    );
    assert_ne!(
        a,
        key(&k, &s, &parts("GET", "/A.css", &[])),
        "paths are case-sensitive"
    );
    let other = k.key(&CacheRequest::new(
        "E2",
        "d2.ledge.localhost",
        &parts("GET", "/a.css", &[]),
        &s,
    ));
    assert_ne!(a, other);
    assert_eq!(
        a,
        key(&k, &s, &parts("HEAD", "/a.css", &[])),
        "GET and HEAD share"
    );
    assert_ne!(
        a,
        key(&k, &s, &parts("OPTIONS", "/a.css", &[])),
        "OPTIONS has its own"
    );
    assert_eq!(
        a,
        key(&k, &s, &parts("GET", "/a.css?v=1", &[("cookie", "a=1")])),
        "query and cookies are not in CachingOptimized's key"
    );
}

#[test]
fn accept_encoding_normalization_table() {
    let s = optimized();
    let spec = &s.key;
    let n = |v: &str| {
        normalize_accept_encoding(
            spec,
            &crate::testutil::hmap(&[("accept-encoding", v)]),
            Version::HTTP_11,
        )
    };
    assert_eq!(n("gzip, deflate, br"), NormalizedEncoding::BrGzip);
    assert_eq!(n("gzip"), NormalizedEncoding::Gzip);
    assert_eq!(n("br"), NormalizedEncoding::Br);
    assert_eq!(n("deflate"), NormalizedEncoding::Identity);
    assert_eq!(n("gzip;q=0, br"), NormalizedEncoding::Br);
    assert_eq!(
        normalize_accept_encoding(spec, &HeaderMap::new(), Version::HTTP_11),
        NormalizedEncoding::Absent
    );
    assert_eq!(
        normalize_accept_encoding(
            spec,
            &crate::testutil::hmap(&[("accept-encoding", "gzip")]),
            Version::HTTP_10
        ),
        NormalizedEncoding::Absent,
        "HTTP/1.0 viewers: dropped"
    );
    let mut gzip_only = s.clone();
    gzip_only.key.br = false;
    let g = |v: &str| {
        normalize_accept_encoding(
            &gzip_only.key,
            &crate::testutil::hmap(&[("accept-encoding", v)]),
            Version::HTTP_11,
        )
    };
    assert_eq!(g("gzip, deflate, br"), NormalizedEncoding::Gzip);
    assert_eq!(g("br"), NormalizedEncoding::Identity);
    assert_eq!(NormalizedEncoding::BrGzip.as_str(), Some("br,gzip"));
    assert_eq!(NormalizedEncoding::Identity.as_str(), Some("identity"));

    let k = Keyer::new();
    let ae = |v: &str| key(&k, &s, &parts("GET", "/x", &[("accept-encoding", v)]));
    assert_eq!(ae("gzip, deflate, br"), ae("br,gzip"));
    assert_eq!(
        ae("deflate"),
        key(&k, &s, &parts("GET", "/x", &[])),
        "not in key"
    );
    assert_ne!(ae("gzip"), ae("br"));
}

#[test]
fn accept_encoding_listed_as_key_header_is_raw_and_disables_normalization() {
    let s = policy(
        (0, 60, 600),
        &["Accept-Encoding"],
        ("none", &[]),
        ("none", &[]),
    );
    assert!(!s.key.gzip && !s.key.br);
    let k = Keyer::new();
    let a = key(
        &k,
        &s,
        &parts("GET", "/x", &[("accept-encoding", "gzip, br")]),
    );
    let b = key(
        &k,
        &s,
        &parts("GET", "/x", &[("accept-encoding", "br, gzip")]),
    );
    assert_ne!(a, b, "raw value");
}

#[test]
fn headers_in_key_by_name_case_insensitive_values_case_sensitive() {
    let s = policy(
        (0, 60, 600),
        &["X-Tenant", "Origin"],
        ("none", &[]),
        ("none", &[]),
    );
    let k = Keyer::new();
    let one = key(
        &k,
        &s,
        &parts("GET", "/x", &[("x-tenant", "a"), ("origin", "o")]),
    );
    let swapped = key(
        &k,
        &s,
        &parts("GET", "/x", &[("Origin", "o"), ("X-TENANT", "a")]),
    );
    assert_eq!(one, swapped, "header order and name case do not matter");
    assert_ne!(
        one,
        key(
            &k,
            &s,
            &parts("GET", "/x", &[("x-tenant", "A"), ("origin", "o")])
        )
    );
    let absent = key(&k, &s, &parts("GET", "/x", &[("origin", "o")]));
    let empty = key(
        &k,
        &s,
        &parts("GET", "/x", &[("x-tenant", ""), ("origin", "o")]),
    );
    assert_ne!(absent, empty, "absent and empty differ");
}

#[test]
fn query_strings_order_significant_and_filters() {
    let k = Keyer::new();
    let all = policy((0, 60, 600), &[], ("none", &[]), ("all", &[]));
    let q = |s: &CacheSettings, u: &str| key(&k, s, &parts("GET", u, &[]));
    assert_ne!(
        q(&all, "/x?a=1&b=2"),
        q(&all, "/x?b=2&a=1"),
        "order is significant"
    );
    assert_ne!(q(&all, "/x?a=1"), q(&all, "/x?a=1&a=1"), "duplicates kept");
    assert_ne!(q(&all, "/x?a=1"), q(&all, "/x?a=2"));
    let wl = policy((0, 60, 600), &[], ("none", &[]), ("whitelist", &["a"]));
    assert_eq!(q(&wl, "/x?a=1&utm=9"), q(&wl, "/x?a=1"));
    assert_ne!(q(&wl, "/x?a=1"), q(&wl, "/x?A=1"), "names case-sensitive");
    let ex = policy((0, 60, 600), &[], ("none", &[]), ("allExcept", &["utm"]));
    assert_eq!(q(&ex, "/x?a=1&utm=9"), q(&ex, "/x?a=1"));
    assert_ne!(q(&ex, "/x?a=1&b=2"), q(&ex, "/x?a=1"));
    let none = optimized();
    assert_eq!(q(&none, "/x?a=1"), q(&none, "/x"));
}

#[test]
fn cookies_whitelist_all_except_and_order_insensitive() {
    let k = Keyer::new();
    let c = |s: &CacheSettings, v: &str| key(&k, s, &parts("GET", "/x", &[("cookie", v)]));
    let wl = policy(
        (0, 60, 600),
        &[],
        ("whitelist", &["sid", "lang"]),
        ("none", &[]),
    );
    assert_eq!(c(&wl, "sid=1; lang=en; t=9"), c(&wl, "lang=en; sid=1"));
    assert_ne!(c(&wl, "sid=1"), c(&wl, "sid=2"));
    assert_ne!(c(&wl, "sid=1"), c(&wl, "SID=1"));
    let all = policy((0, 60, 600), &[], ("all", &[]), ("none", &[]));
    assert_eq!(c(&all, "a=1; b=2"), c(&all, "b=2; a=1"));
    assert_ne!(c(&all, "a=1; b=2"), c(&all, "a=1"));
    let ex = policy((0, 60, 600), &[], ("allExcept", &["t"]), ("none", &[]));
    assert_eq!(c(&ex, "a=1; t=5"), c(&ex, "a=1"));
    let leg = legacy(legacy_cookies("whitelist", &["userid_*"]), 0, 60, 600);
    assert_eq!(c(&leg, "userid_1=a; other=1"), c(&leg, "userid_1=a"));
    assert_ne!(c(&leg, "userid_1=a"), c(&leg, "userid_2=a"));
}

#[test]
fn legacy_query_keys_and_invalidation_path() {
    let fv = ForwardedValues {
        query_string: true,
        query_string_cache_keys: vec!["v".into()],
        ..Default::default()
    };
    let s = legacy(fv, 0, 60, 600);
    let k = Keyer::new();
    let p1 = parts("GET", "/img/a.jpg?v=2&x=1", &[]);
    let p2 = parts("GET", "/img/a.jpg?x=3&v=2", &[]);
    assert_eq!(key(&k, &s, &p1), key(&k, &s, &p2));
    let r = CacheRequest::new("E1", "d", &p1, &s);
    assert_eq!(invalidation_path(&r), "/img/a.jpg?v=2");
    assert_eq!(
        origin_params(&r).query.as_deref(),
        Some("v=2&x=1"),
        "all forwarded"
    );
    let plain = optimized();
    let r = CacheRequest::new("E1", "d", &p1, &plain);
    assert_eq!(invalidation_path(&r), "/img/a.jpg");
}

#[test]
fn origin_params_follow_the_key_and_orp() {
    use ledge_model::policy::managed_origin_request_policy;
    let s = policy(
        (0, 60, 600),
        &["X-Tenant"],
        ("whitelist", &["sid"]),
        ("whitelist", &["a"]),
    );
    let p = parts(
        "GET",
        "/x?b=2&a=1",
        &[
            ("authorization", "Bearer t"),
            ("x-tenant", "t1"),
            ("user-agent", "ua"),
            ("cookie", "sid=1; other=2"),
            ("accept-encoding", "gzip, br"),
        ],
    );
    let r = CacheRequest::new("E1", "d", &p, &s);
    let o = origin_params(&r);
    assert_eq!(o.headers.len(), 1);
    assert_eq!(o.headers[0].0, "x-tenant");
    assert_eq!(o.cookie.as_deref(), Some("sid=1"));
    assert_eq!(o.query.as_deref(), Some("a=1"));
    assert_eq!(o.accept_encoding.as_ref().unwrap(), "br,gzip");

    // CachingOptimized + AllViewer ORP: everything but the normalized Accept-Encoding.
    let orp = managed_origin_request_policy("216adef6-5c7f-47e4-b989-5492eafa07d3").unwrap();
    let s = CacheSettings::from_policy(
        &ledge_model::policy::managed_cache_policy(ledge_model::policy::CACHING_OPTIMIZED).unwrap(),
        Some(&orp),
    );
    let r = CacheRequest::new("E1", "d", &p, &s);
    let o = origin_params(&r);
    assert_eq!(
        o.headers.len(),
        2,
        "x-tenant and user-agent, not authorization"
    );
    assert_eq!(o.cookie.as_deref(), Some("sid=1; other=2"));
    assert_eq!(o.query.as_deref(), Some("b=2&a=1"));

    let off = CacheSettings::from_policy(
        &ledge_model::policy::managed_cache_policy(ledge_model::policy::CACHING_DISABLED).unwrap(),
        Some(&orp),
    );
    let o = origin_params(&CacheRequest::new("E1", "d", &p, &off));
    assert!(
        o.headers.iter().any(|(n, _)| n == "authorization"),
        "no caching: forwarded"
    );
    let keyed = policy(
        (0, 60, 600),
        &["Authorization"],
        ("none", &[]),
        ("none", &[]),
    );
    let o = origin_params(&CacheRequest::new("E1", "d", &p, &keyed));
    assert_eq!(o.headers[0].0, "authorization");

    // Legacy cookies are sent sorted by name, only when well-formed.
    let s = legacy(legacy_cookies("all", &[]), 0, 60, 600);
    let p = parts("GET", "/x", &[("cookie", "b=2; a=1")]);
    assert_eq!(
        origin_params(&CacheRequest::new("E1", "d", &p, &s))
            .cookie
            .as_deref(),
        Some("a=1; b=2")
    );
    let p = parts("GET", "/x", &[("cookie", "b=2; junk")]);
    assert_eq!(
        origin_params(&CacheRequest::new("E1", "d", &p, &s)).cookie,
        None
    );
}

#[test]
fn distinct_requests_get_distinct_keys() {
    let k = Keyer::new();
    let s = policy((0, 60, 600), &["X-A"], ("all", &[]), ("all", &[]));
    let mut seen = std::collections::HashSet::new();
    for i in 0..20_000u32 {
        let uri = format!("/p/{}?q={}", i % 100, i / 100);
        let p = parts(
            "GET",
            &uri,
            &[("x-a", &format!("{}", i % 7)), ("cookie", "c=1")],
        );
        assert!(seen.insert(key(&k, &s, &p)), "{uri}");
    }
    // Component boundaries are unambiguous: moving bytes between parts changes the key.
    let a = key(&k, &s, &parts("GET", "/ab?c=d", &[]));
    let b = key(&k, &s, &parts("GET", "/a?bc=d", &[]));
    assert_ne!(a, b);
    // Two keyers (two processes) disagree: keys are not predictable from outside.
    let other = Keyer::new();
    let p = parts("GET", "/x", &[]);
    assert_ne!(key(&k, &s, &p), key(&other, &s, &p));
}
