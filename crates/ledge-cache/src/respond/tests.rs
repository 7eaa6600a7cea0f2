use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::response::NoStream;
use crate::store::{next_id, Head};
use crate::testutil::hmap;
use crate::ttl::Freshness;

fn entry(status: u16, headers: &[(&str, &str)], body: &'static str) -> Entry {
    Entry {
        head: Arc::new(Head {
            id: next_id(),
            status: StatusCode::from_u16(status).unwrap(),
            headers: hmap(headers),
            stored_at: Instant::now(),
            freshness: Freshness {
                ttl: Duration::from_secs(60),
                origin_first: false,
                refetch_always: false,
                stale_while_revalidate: Duration::ZERO,
                stale_if_error: None,
                is_error: status >= 400,
            },
            distribution_id: "E1".into(),
            path: "/x".into(),
            no_conditional: false,
            stale_until: None,
            age_placeholder: false,
        }),
        body: Bytes::from_static(body.as_bytes()),
    }
}

fn ask(e: &Entry, method: &Method, h: &[(&str, &str)], now: Instant) -> CacheOutcome<NoStream> {
    let headers = hmap(h);
    answer(
        e,
        Answer {
            method,
            headers: &headers,
            now,
            with_age: true,
            allow_304: true,
            status: CacheStatus::Hit,
        },
    )
}

fn body(o: &CacheOutcome<NoStream>) -> &[u8] {
    o.body.as_bytes().unwrap()
}

#[tokio::test(start_paused = true)]
async fn age_and_plain_hit() {
    let e = entry(200, &[("etag", "\"v1\""), ("age", "999")], "0123456789");
    tokio::time::sleep(Duration::from_secs(7)).await;
    let o = ask(&e, &Method::GET, &[], Instant::now());
    assert_eq!(o.status, StatusCode::OK);
    assert_eq!(o.headers[AGE], "7");
    assert_eq!(o.headers[CONTENT_LENGTH], "10");
    assert_eq!(body(&o), b"0123456789");
    assert_eq!(o.cache_status, CacheStatus::Hit);
}

#[tokio::test(start_paused = true)]
async fn head_is_served_from_the_get_entry() {
    let e = entry(200, &[], "0123456789");
    let o = ask(&e, &Method::HEAD, &[], Instant::now());
    assert_eq!(o.status, StatusCode::OK);
    assert_eq!(o.headers[CONTENT_LENGTH], "10");
    assert!(body(&o).is_empty());
}

#[tokio::test(start_paused = true)]
async fn viewer_conditionals() {
    let lm = "Wed, 21 Oct 2015 07:28:00 GMT";
    let e = entry(
        200,
        &[("etag", "\"v1\""), ("last-modified", lm)],
        "0123456789",
    );
    let now = Instant::now();
    let o = ask(
        &e,
        &Method::GET,
        &[("if-none-match", "\"v0\", W/\"v1\"")],
        now,
    );
    assert_eq!(o.status, StatusCode::NOT_MODIFIED, "weak comparison");
    assert!(body(&o).is_empty());
    assert!(o.headers.get(CONTENT_LENGTH).is_none());
    assert_eq!(o.headers["etag"], "\"v1\"");
    assert_eq!(
        ask(&e, &Method::GET, &[("if-none-match", "*")], now).status,
        304
    );
    assert_eq!(
        ask(&e, &Method::GET, &[("if-none-match", "\"v2\"")], now).status,
        200
    );
    assert_eq!(
        ask(&e, &Method::GET, &[("if-modified-since", lm)], now).status,
        304
    );
    let earlier = "Tue, 20 Oct 2015 07:28:00 GMT";
    assert_eq!(
        ask(&e, &Method::GET, &[("if-modified-since", earlier)], now).status,
        200
    );
    assert_eq!(
        ask(
            &e,
            &Method::GET,
            &[("if-none-match", "\"v2\""), ("if-modified-since", lm)],
            now
        )
        .status,
        200,
        "If-None-Match takes precedence"
    );
    let err = entry(404, &[("etag", "\"v1\"")], "nope");
    let o = ask(&err, &Method::GET, &[("if-none-match", "\"v1\"")], now);
    assert_eq!(o.status, StatusCode::NOT_FOUND);
    assert_eq!(o.cache_status, CacheStatus::Error);
}

#[tokio::test(start_paused = true)]
async fn ranges_5_10() {
    let e = entry(
        200,
        &[("content-type", "text/plain"), ("etag", "\"v1\"")],
        "0123456789",
    );
    let now = Instant::now();
    let o = ask(&e, &Method::GET, &[("range", "bytes=2-4")], now);
    assert_eq!(o.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(o.headers[CONTENT_RANGE], "bytes 2-4/10");
    assert_eq!(o.headers[CONTENT_LENGTH], "3");
    assert_eq!(body(&o), b"234");
    let o = ask(&e, &Method::GET, &[("range", "bytes=-3")], now);
    assert_eq!(body(&o), b"789");
    let o = ask(&e, &Method::GET, &[("range", "bytes=7-")], now);
    assert_eq!(body(&o), b"789");
    let o = ask(&e, &Method::GET, &[("range", "bytes=8-100")], now);
    assert_eq!(o.headers[CONTENT_RANGE], "bytes 8-9/10");
    let o = ask(&e, &Method::GET, &[("range", "bytes=10-20")], now);
    assert_eq!(o.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(o.headers[CONTENT_RANGE], "bytes */10");
    assert_eq!(o.cache_status, CacheStatus::Error);
    for bad in [
        "bytes=5-2",
        "bytes=4-6,1-2",
        "bytes=1-5,3-7",
        "items=1-2",
        "bytes=a-b",
    ] {
        let o = ask(&e, &Method::GET, &[("range", bad)], now);
        assert_eq!(o.status, StatusCode::OK, "{bad}");
        assert_eq!(body(&o), b"0123456789");
    }
    let o = ask(&e, &Method::GET, &[("range", "bytes=0-1,5-6")], now);
    assert_eq!(o.status, StatusCode::PARTIAL_CONTENT);
    let ct = o.headers[CONTENT_TYPE].to_str().unwrap();
    assert!(ct.starts_with("multipart/byteranges; boundary="));
    let text = String::from_utf8(body(&o).to_vec()).unwrap();
    assert!(text.contains("Content-Range: bytes 0-1/10\r\n\r\n01"));
    assert!(text.contains("Content-Range: bytes 5-6/10\r\n\r\n56"));
    assert_eq!(o.headers[CONTENT_LENGTH], text.len().to_string().as_str());
    let o = ask(
        &e,
        &Method::GET,
        &[("range", "bytes=2-4"), ("if-range", "\"v1\"")],
        now,
    );
    assert_eq!(o.status, StatusCode::PARTIAL_CONTENT);
    let o = ask(
        &e,
        &Method::GET,
        &[("range", "bytes=2-4"), ("if-range", "\"v0\"")],
        now,
    );
    assert_eq!(o.status, StatusCode::OK);
}
