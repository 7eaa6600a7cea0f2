//! Deterministic random inputs through the parsers: nothing may panic, ranges must stay in
//! bounds.

use std::time::SystemTime;

use http::{HeaderMap, HeaderValue, StatusCode, Version};

use crate::key::{normalize_accept_encoding, origin_params, Keyer};
use crate::request::CacheRequest;
use crate::respond::{parse_range, RangeRequest};
use crate::testutil::{optimized, parts, policy};
use crate::ttl::{freshness, CacheControl};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A short string over an alphabet that hits the parsers' special characters.
    fn text(&mut self) -> String {
        const ALPHA: &[u8] = b"0123456789-=,;\" qbytes=gzipbr*/?&.Wmax-ages-maxageno-cache";
        let len = (self.next() % 24) as usize;
        (0..len)
            .map(|_| ALPHA[(self.next() % ALPHA.len() as u64) as usize] as char)
            .collect()
    }
}

#[test]
fn ranges_stay_in_bounds() {
    let mut r = Rng(0x1234_5678_9abc_def1);
    for _ in 0..20_000 {
        let len = r.next() % 50;
        let spec = format!("bytes={}", r.text());
        if let RangeRequest::Ranges(v) = parse_range(&spec, len) {
            let mut last = None;
            for b in v {
                assert!(b.start <= b.end && b.end < len, "{spec} {len} {b:?}");
                assert!(last.is_none_or(|l| b.start > l), "{spec}: ascending");
                last = Some(b.end);
            }
        }
    }
}

#[test]
fn header_parsers_never_panic() {
    let mut r = Rng(0x0fed_cba9_8765_4321);
    let settings = [
        optimized(),
        policy((0, 1, 2), &["X-A"], ("all", &[]), ("allExcept", &["q"])),
    ];
    let keyer = Keyer::new();
    for i in 0..5_000 {
        let mut h = HeaderMap::new();
        for name in [
            "cache-control",
            "accept-encoding",
            "cookie",
            "expires",
            "vary",
            "x-a",
        ] {
            if let Ok(v) = HeaderValue::from_str(&r.text()) {
                h.append(name, v);
            }
        }
        let _ = CacheControl::parse(&h);
        let s = &settings[i % 2];
        let _ = freshness(StatusCode::OK, &h, s, SystemTime::now());
        let _ = normalize_accept_encoding(&s.key, &h, Version::HTTP_11);
        let uri = format!("/p?{}", r.text().replace([' ', '"'], ""));
        let mut p = parts("GET", "/", &[]);
        if let Ok(u) = uri.parse() {
            p.uri = u;
        }
        p.headers = h;
        let req = CacheRequest::new("E1", "d", &p, s);
        let _ = keyer.key(&req);
        let _ = origin_params(&req);
    }
}
